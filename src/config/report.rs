//! Reporting configuration problems: where a key is in the file (line, column), and parse
//! errors with every value that may be secret hidden.

/// Where a key path (`provider[0].client_id`) is written in the TOML text: the value's line and
/// column, or, for a key that is absent, those of the nearest enclosing table.
pub(super) fn locate(text: &str, key: &str) -> Option<(usize, usize)> {
    use toml::de::{DeTable, DeValue};
    let parsed = DeTable::parse(text).ok()?;
    let mut span = None;
    let mut table: Option<&DeTable> = Some(parsed.get_ref());
    let mut value: Option<&DeValue> = None;
    for segment in key.split('.') {
        let (name, index) = match segment.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        let nested = match value {
            Some(DeValue::Table(t)) => Some(t),
            _ => None,
        };
        let Some(current) = table.take().or(nested) else {
            break;
        };
        let Some((_, found)) = current.iter().find(|(k, _)| k.get_ref() == name) else {
            break;
        };
        span = Some(found.span());
        value = Some(found.get_ref());
        if let (Some(i), DeValue::Array(items)) = (index, found.get_ref()) {
            let Some(item) = items.get(i) else { break };
            span = Some(item.span());
            value = Some(item.get_ref());
        }
    }
    let offset = span?.start;
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, column))
}

/// Hides values in a TOML parse error, which quotes the offending line (`12 | client_secret =
/// "…"`) and sometimes the value itself (`invalid type: string "…"`): the message goes to a
/// terminal and, through `ExecStartPre`, to the journal. A quoted line keeps its key and loses its
/// value; when that key may name a secret (`secret`, `key`, `password`, `token`, `url`), every
/// quoted string in the message is hidden too.
pub(super) fn redact_parse_error(message: &str) -> String {
    const HIDDEN: &str = "«hidden»";
    let secretive = |key: &str| {
        let key = key.to_ascii_lowercase();
        [
            "secret",
            "key",
            "password",
            "passwd",
            "token",
            "url",
            "credential",
        ]
        .iter()
        .any(|word| key.contains(word))
    };
    let mut sensitive = false;
    let mut lines: Vec<String> = Vec::new();
    for line in message.lines() {
        let quoted = line.split_once(" | ").filter(|(number, _)| {
            let number = number.trim();
            !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())
        });
        match quoted {
            Some((number, content)) => {
                let trimmed = content.trim_start();
                let shown = if trimmed.starts_with('[') || trimmed.starts_with('#') {
                    content.to_string()
                } else if let Some((key, _)) = content.split_once('=') {
                    sensitive |= secretive(key);
                    format!("{}= {HIDDEN}", key)
                } else {
                    sensitive = true;
                    HIDDEN.to_string()
                };
                lines.push(format!("{number} | {shown}"));
            }
            None => lines.push(line.to_string()),
        }
    }
    if !sensitive {
        return lines.join("\n");
    }
    lines
        .iter()
        .map(|line| hide_quoted(line, HIDDEN))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Replaces the content of every `"…"` in a line, and of every `` `…` `` but key names (`` `url` ``
/// in "unknown field", made of lower-case letters, digits and `_`).
fn hide_quoted(line: &str, hidden: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut open: Option<(char, String)> = None;
    for c in line.chars() {
        match &mut open {
            Some((quote, content)) if c == *quote => {
                let is_key = *quote == '`'
                    && content.starts_with(|c: char| c.is_ascii_lowercase())
                    && content
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                out.push_str(if is_key { content } else { hidden });
                out.push(c);
                open = None;
            }
            Some((_, content)) => content.push(c),
            None => {
                out.push(c);
                if c == '"' || c == '`' {
                    open = Some((c, String::new()));
                }
            }
        }
    }
    if open.is_some() {
        out.push_str(hidden);
    }
    out
}
