//! `[headers]`, `[assertion]` and `[signature]`: what the application receives, and the names
//! an identity header may not take.

use std::collections::BTreeMap;

use url::Url;

use super::Checker;
use crate::config::file::{FileConfig, HeadersSection};
use crate::config::settings::{
    AssertionSettings, Encoding, HeaderPreset, HeaderSettings, SignatureSettings,
};

/// Headers an identity header may not be called: hop-by-hop and framing headers, and those the
/// proxy itself sets or routes by.
const FORBIDDEN_HEADER_NAMES: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
    "cookie",
    "set-cookie",
    "authorization",
    "expect",
    "content-type",
    "content-encoding",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-real-ip",
    "x-request-id",
    "http2-settings",
];

/// A header name as configured, checked and lower-cased.
pub(super) fn header_name(check: &mut Checker, key: &str, name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        check.problem(key, format!("{name:?} is not a valid HTTP header name"));
    } else if FORBIDDEN_HEADER_NAMES.contains(&lower.replace('_', "-").as_str())
        || lower.starts_with(':')
    {
        check.problem(
            key,
            format!("{name:?} is a hop-by-hop, framing or proxy header: an identity header cannot take its name"),
        );
    }
    lower
}

/// A size: a number of bytes, or a number followed by `KiB`, `MiB`, `GiB` (or `KB`, `MB`, `GB`).
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// Claim → header name (`None`: not sent), each name checked.
pub(super) fn claim_headers(
    check: &mut Checker,
    key: &str,
    map: &BTreeMap<String, String>,
) -> BTreeMap<String, Option<String>> {
    map.iter()
        .map(|(claim, name)| {
            let target =
                (!name.is_empty()).then(|| header_name(check, &format!("{key}.{claim}"), name));
            (claim.clone(), target)
        })
        .collect()
}

pub(super) fn headers(check: &mut Checker, section: &HeadersSection) -> HeaderSettings {
    let encoding = check.choice(
        "headers.encoding",
        section.encoding.as_deref(),
        Encoding::Percent,
    );
    let encodings = section
        .encodings
        .iter()
        .map(|(name, value)| {
            let key = format!("headers.encodings.{name}");
            let encoding = check.choice(&key, Some(value.as_str()), Encoding::Percent);
            (name.to_ascii_lowercase(), encoding)
        })
        .collect();
    HeaderSettings {
        preset: check.choice(
            "headers.preset",
            section.preset.as_deref(),
            HeaderPreset::Guichet,
        ),
        encoding,
        claims: claim_headers(check, "headers.claims", &section.claims),
        encodings,
        forward_access_token: section.forward_access_token,
        forward_id_token: section.forward_id_token,
    }
}

/// `[assertion]` and `[signature]`, the two proofs of the identity headers.
pub(super) fn proofs(
    check: &mut Checker,
    file: &FileConfig,
    public_url: &Url,
) -> (Option<AssertionSettings>, Option<SignatureSettings>) {
    let assertion = file.assertion.as_ref().map(|section| {
        let header = header_name(check, "assertion.header", &section.header);
        if section.keys.is_empty() {
            check.problem(
                "assertion.keys",
                "give at least one PEM key file (guichet keygen --out FILE makes one)",
            );
        }
        AssertionSettings {
            header,
            keys: check.key_files("assertion.keys", &section.keys),
            lifetime: check.duration("assertion.lifetime", &section.lifetime),
            issuer: public_url.as_str().trim_end_matches('/').to_string(),
            audience: section
                .audience
                .clone()
                .unwrap_or_else(|| match &file.upstream {
                    Some(upstream) => upstream.url.trim_end_matches('/').to_string(),
                    None => public_url.as_str().trim_end_matches('/').to_string(),
                }),
        }
    });
    let signature = file.signature.as_ref().and_then(|section| {
        let header = header_name(check, "signature.header", &section.header);
        let key = check.secret("signature.key", section.key_source(), 32)?;
        Some(SignatureSettings { header, key })
    });
    if let (Some(a), Some(s)) = (&assertion, &signature) {
        if a.header == s.header {
            check.problem("signature.header", "must differ from assertion.header");
        }
    }
    (assertion, signature)
}
