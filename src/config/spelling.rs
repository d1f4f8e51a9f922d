//! One spelling table per configuration enum: the words an operator writes, parsed and printed
//! from the same list, and listed in the error for a word that is not in it.

/// An enum written in the configuration as one of a fixed list of words.
pub trait Spelled: Copy + PartialEq + 'static {
    /// Every value with its spelling.
    const SPELLINGS: &'static [(&'static str, Self)];

    /// The value a word names.
    fn parse(text: &str) -> Option<Self> {
        Self::SPELLINGS
            .iter()
            .find(|(word, _)| *word == text)
            .map(|(_, value)| *value)
    }

    /// The word for this value.
    fn as_str(self) -> &'static str {
        Self::SPELLINGS
            .iter()
            .find(|(_, value)| *value == self)
            .map_or("", |(word, _)| word)
    }

    /// `"a", "b" or "c"`, for an error message.
    fn expected() -> String {
        let words: Vec<String> = Self::SPELLINGS
            .iter()
            .map(|(word, _)| format!("{word:?}"))
            .collect();
        match words.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Encoding, HeaderPreset, ProviderKind, TokenAuthMethod, UserinfoFormat};

    fn round_trips<T: Spelled + std::fmt::Debug>() {
        for (word, value) in T::SPELLINGS {
            assert_eq!(T::parse(word), Some(*value));
            assert_eq!(value.as_str(), *word);
        }
        assert_eq!(T::parse("nope"), None);
    }

    #[test]
    fn every_enum_parses_and_prints_from_one_table() {
        round_trips::<ProviderKind>();
        round_trips::<UserinfoFormat>();
        round_trips::<TokenAuthMethod>();
        round_trips::<Encoding>();
        round_trips::<HeaderPreset>();
        assert_eq!(HeaderPreset::expected(), "\"guichet\" or \"oauth2-proxy\"");
    }
}
