//! An identity as a session keeps it in memory: every text in one buffer.
//!
//! [`Identity`] holds a `BTreeMap` node and two heap strings per claim, about 1 KB for a
//! ProConnect identity; a million sessions each keep one. [`CompactIdentity`] keeps the same
//! texts, length-prefixed, in a single allocation, and reads them back by scanning it (a dozen
//! claims: tens of nanoseconds, only for routes with claim rules and guichet's own pages).
//!
//! Layout: `provider`, `sub`, then `acr` as a flag byte and a text when present, then `amr` as a
//! count and its texts, then the claims, sorted by name, each as its name, a kind byte (text or
//! list) and its text or its count and texts. Counts and lengths are LEB128 numbers.

use std::borrow::Cow;

use bytes::Bytes;

use super::{join_list, Claim, Identity};

/// An identity in one buffer. Built from an [`Identity`] and turned back into one losslessly.
/// A session's buffer goes on with the bytes of its identity headers that are not already in
/// the identity ([`crate::assertion::packed::PackedHeaders::pack_after`]): most header values
/// are the claims' own texts. The reader stops at the identity's end.
#[derive(Clone, PartialEq, Eq)]
pub struct CompactIdentity {
    bytes: Bytes,
}

impl std::fmt::Debug for CompactIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompactIdentity")
            .field("provider", &self.provider())
            .finish_non_exhaustive()
    }
}

const TEXT: u8 = 0;
const LIST: u8 = 1;

fn put_number(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

fn put_text(out: &mut Vec<u8>, text: &str) {
    put_number(out, text.len());
    out.extend_from_slice(text.as_bytes());
}

/// Reads the buffer front to back. Every method returns `None` on a malformed buffer (which
/// [`CompactIdentity::new`] never writes) instead of panicking.
#[derive(Clone)]
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn number(&mut self) -> Option<usize> {
        let mut n = 0usize;
        for shift in (0..usize::BITS).step_by(7) {
            let (&byte, rest) = self.rest.split_first()?;
            self.rest = rest;
            n |= usize::from(byte & 0x7f).checked_shl(shift)?;
            if byte & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    fn byte(&mut self) -> Option<u8> {
        let (&byte, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(byte)
    }

    fn raw(&mut self) -> Option<&'a [u8]> {
        let len = self.number()?;
        if len > self.rest.len() {
            return None;
        }
        let (text, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(text)
    }

    fn text(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.raw()?).ok()
    }

    /// One claim's values: its kind, its count, and the reader at its first value (the caller
    /// skips them with [`Reader::skip_values`]).
    fn values(&mut self) -> Option<(bool, usize, Reader<'a>)> {
        let is_list = match self.byte()? {
            TEXT => false,
            LIST => true,
            _ => return None,
        };
        let count = if is_list { self.number()? } else { 1 };
        Some((is_list, count, self.clone()))
    }

    fn skip_values(&mut self, count: usize) -> Option<()> {
        for _ in 0..count {
            self.raw()?;
        }
        Some(())
    }
}

/// One claim of a [`CompactIdentity`]: a text, or a list of texts.
#[derive(Clone)]
pub struct ClaimRef<'a> {
    is_list: bool,
    count: usize,
    values: Reader<'a>,
}

impl<'a> ClaimRef<'a> {
    /// Each value: the text, or each element of the list.
    pub fn values(&self) -> impl Iterator<Item = &'a str> + 'a {
        let mut reader = self.values.clone();
        (0..self.count).map_while(move |_| reader.text())
    }

    /// The claim as one header value, as [`Claim::to_header_text`] writes it.
    pub fn to_header_text(&self) -> Cow<'a, str> {
        if self.is_list {
            Cow::Owned(join_list(self.values()))
        } else {
            Cow::Borrowed(self.values().next().unwrap_or_default())
        }
    }

    fn to_claim(&self) -> Claim {
        if self.is_list {
            Claim::List(self.values().map(str::to_string).collect())
        } else {
            Claim::Text(self.values().next().unwrap_or_default().to_string())
        }
    }
}

impl CompactIdentity {
    pub fn new(identity: &Identity) -> Self {
        CompactIdentity {
            bytes: Bytes::from(Self::encode(identity)),
        }
    }

    /// The identity's bytes as [`Self::from_encoded`] reads them (with room for more after).
    pub fn encode(identity: &Identity) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            identity.provider.len()
                + identity.sub.len()
                + identity.acr.as_ref().map_or(0, String::len)
                + identity
                    .claims
                    .iter()
                    .map(|(name, claim)| name.len() + claim.values().map(str::len).sum::<usize>())
                    .sum::<usize>()
                + 8
                + 4 * identity.claims.len(),
        );
        put_text(&mut out, &identity.provider);
        put_text(&mut out, &identity.sub);
        match &identity.acr {
            Some(acr) => {
                out.push(1);
                put_text(&mut out, acr);
            }
            None => out.push(0),
        }
        put_number(&mut out, identity.amr.len());
        for method in &identity.amr {
            put_text(&mut out, method);
        }
        put_number(&mut out, identity.claims.len());
        for (name, claim) in &identity.claims {
            put_text(&mut out, name);
            match claim {
                Claim::Text(text) => {
                    out.push(TEXT);
                    put_text(&mut out, text);
                }
                Claim::List(items) => {
                    out.push(LIST);
                    put_number(&mut out, items.len());
                    for item in items {
                        put_text(&mut out, item);
                    }
                }
            }
        }
        out
    }

    /// An identity from bytes [`Self::encode`] wrote, possibly followed by others; other bytes
    /// give empty or partial answers, never a panic.
    pub fn from_encoded(bytes: Bytes) -> Self {
        CompactIdentity { bytes }
    }

    /// The whole buffer (the identity, then whatever followed it in [`Self::from_encoded`]).
    pub fn buffer(&self) -> &Bytes {
        &self.bytes
    }

    fn reader(&self) -> Reader<'_> {
        Reader { rest: &self.bytes }
    }

    /// `acr`, and the reader at `amr`'s count.
    fn after_acr(&self) -> Option<(Option<&str>, Reader<'_>)> {
        let mut reader = self.reader();
        reader.raw()?;
        reader.raw()?;
        let acr = match reader.byte()? {
            0 => None,
            _ => Some(reader.text()?),
        };
        Some((acr, reader))
    }

    /// The claims' count and the reader at the first claim (`amr` skipped).
    fn claims_reader(&self) -> Option<(usize, Reader<'_>)> {
        let (_, mut reader) = self.after_acr()?;
        let methods = reader.number()?;
        reader.skip_values(methods)?;
        let count = reader.number()?;
        Some((count, reader))
    }

    /// The id of the provider the visitor signed in with.
    pub fn provider(&self) -> &str {
        self.reader().text().unwrap_or_default()
    }

    pub fn sub(&self) -> &str {
        let mut reader = self.reader();
        reader.raw();
        reader.text().unwrap_or_default()
    }

    /// The authentication level (`acr`), when the provider said.
    pub fn acr(&self) -> Option<&str> {
        self.after_acr()?.0
    }

    /// The claim called `name`.
    pub fn claim(&self, name: &str) -> Option<ClaimRef<'_>> {
        let (count, mut reader) = self.claims_reader()?;
        for _ in 0..count {
            let this = reader.raw()?;
            let (is_list, values_count, values) = reader.values()?;
            if this == name.as_bytes() {
                return Some(ClaimRef {
                    is_list,
                    count: values_count,
                    values,
                });
            }
            reader.skip_values(values_count)?;
        }
        None
    }

    /// The identity back in its ordinary form (the shared store, the hand-over file).
    pub fn to_identity(&self) -> Identity {
        let mut identity = Identity::new(self.provider(), self.sub());
        let Some((acr, mut reader)) = self.after_acr() else {
            return identity;
        };
        identity.acr = acr.map(str::to_string);
        let methods = reader.number().unwrap_or(0);
        for _ in 0..methods {
            let Some(method) = reader.text() else {
                return identity;
            };
            identity.amr.push(method.to_string());
        }
        let count = reader.number().unwrap_or(0);
        for _ in 0..count {
            let Some(name) = reader.text() else { break };
            let Some((is_list, values_count, values)) = reader.values() else {
                break;
            };
            let claim = ClaimRef {
                is_list,
                count: values_count,
                values,
            };
            identity.claims.insert(name.to_string(), claim.to_claim());
            if reader.skip_values(values_count).is_none() {
                break;
            }
        }
        identity
    }

    /// The bytes of the buffer.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.len()
    }
}

impl From<&Identity> for CompactIdentity {
    fn from(identity: &Identity) -> Self {
        CompactIdentity::new(identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identities() -> Vec<Identity> {
        let long = "é".repeat(200); // 400 bytes: a two-byte length
        vec![
            Identity::new("", ""),
            Identity::new("agentconnect", "4f1c-ab"),
            Identity::new("p", "s")
                .with_acr("eidas2")
                .with_claim("given_name", "Hélène Marie")
                .with_claim("email", "agent@interieur.gouv.fr")
                .with_claim(
                    "roles",
                    Claim::List(vec!["user,admin".into(), "".into(), "a\\b".into()]),
                )
                .with_claim("empty_list", Claim::List(vec![]))
                .with_claim("", "a claim without a name")
                .with_claim("long", long.as_str()),
            {
                let mut id = Identity::new("fc", "sub").with_acr("");
                id.amr = vec!["pwd".into(), "mfa".into()];
                id
            },
        ]
    }

    #[test]
    fn every_identity_comes_back_unchanged() {
        for identity in identities() {
            let compact = CompactIdentity::new(&identity);
            assert_eq!(compact.to_identity(), identity);
            assert_eq!(compact.provider(), identity.provider);
            assert_eq!(compact.sub(), identity.sub);
            assert_eq!(compact.acr(), identity.acr.as_deref());
            for (name, claim) in &identity.claims {
                let found = compact.claim(name).unwrap();
                assert_eq!(
                    found.values().collect::<Vec<_>>(),
                    claim.values().collect::<Vec<_>>(),
                    "{name}"
                );
                assert_eq!(found.to_header_text(), claim.to_header_text(), "{name}");
            }
            assert!(compact.claim("absent").is_none());
            assert!(compact.claim("given_nam").is_none());
        }
    }

    #[test]
    fn a_damaged_buffer_reads_as_less_never_panics() {
        let identity = identities().remove(2);
        let whole = CompactIdentity::new(&identity);
        for cut in 0..whole.bytes.len() {
            let mut bytes = whole.bytes.to_vec();
            bytes.truncate(cut);
            let damaged = CompactIdentity::from_encoded(Bytes::from(bytes.clone()));
            let _ = (
                damaged.provider(),
                damaged.sub(),
                damaged.acr(),
                damaged.to_identity(),
            );
            let _ = damaged
                .claim("email")
                .map(|c| c.to_header_text().into_owned());
            bytes.push(0xff);
            bytes.extend_from_slice(&[0xff; 12]);
            let damaged = CompactIdentity::from_encoded(Bytes::from(bytes));
            let _ = (damaged.to_identity(), damaged.claim("roles").is_some());
        }
    }
}
