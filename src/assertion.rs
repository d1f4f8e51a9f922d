//! Identity headers: stripping what the client sent, building what the application receives.
//!
//! Every header in guichet's namespace (`X-Guichet-*`, any case, and the `X_Guichet_*` spelling
//! that CGI-style servers fold into the same variable) is removed from every proxied request before
//! the verified ones are added: a client can never inject an identity. The verified headers are
//! built once at login ([`identity_headers`]) and kept in the session, so the per-request work is a
//! scan of the header names plus copies of prebuilt values.

use http::{HeaderName, HeaderValue};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use pingora::http::RequestHeader;

use crate::identity::Identity;

/// Characters escaped in header values: controls, `%` itself (so decoding is unambiguous) and,
/// implicitly, every non-ASCII byte.
const HEADER_VALUE_ESCAPES: &AsciiSet = &CONTROLS.add(b'%');

/// Whether a header name (lower-case, as `http` stores it) is in guichet's namespace.
pub fn is_identity_header(name: &str) -> bool {
    let Some(rest) = name
        .strip_prefix("x-guichet")
        .or_else(|| name.strip_prefix("x_guichet"))
    else {
        return false;
    };
    rest.is_empty() || rest.starts_with(['-', '_'])
}

/// Removes every identity-namespace header the client sent, whatever its case or spelling.
pub fn strip_identity_headers(request: &mut RequestHeader) {
    let doomed: Vec<HeaderName> = request
        .headers
        .keys()
        .filter(|name| is_identity_header(name.as_str()))
        .cloned()
        .collect();
    for name in doomed {
        request.remove_header(&name);
    }
}

/// `X-Guichet-` + the claim name in title case with `-` for `_` (`usual_name` → `Usual-Name`);
/// `None` for a claim whose name cannot be a header name.
pub fn claim_header_name(claim: &str) -> Option<HeaderName> {
    if claim.is_empty()
        || !claim
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return None;
    }
    let mut name = String::from("x-guichet-");
    name.extend(claim.chars().map(|c| match c {
        '_' => '-',
        c => c.to_ascii_lowercase(),
    }));
    HeaderName::from_bytes(name.as_bytes()).ok()
}

/// A header value: percent-encoded UTF-8 for anything outside printable ASCII, and for `%`.
pub fn encode_value(value: &str) -> HeaderValue {
    let encoded = utf8_percent_encode(value, HEADER_VALUE_ESCAPES).to_string();
    // Percent-encoding leaves only visible ASCII and spaces: always a valid value.
    HeaderValue::from_str(&encoded).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The headers an application receives for this identity, built once per session.
pub fn identity_headers(identity: &Identity) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = vec![
        (
            HeaderName::from_static("x-guichet-sub"),
            encode_value(&identity.sub),
        ),
        (
            HeaderName::from_static("x-guichet-provider"),
            encode_value(&identity.provider),
        ),
    ];
    if let Some(acr) = &identity.acr {
        headers.push((HeaderName::from_static("x-guichet-acr"), encode_value(acr)));
    }
    if !identity.amr.is_empty() {
        headers.push((
            HeaderName::from_static("x-guichet-amr"),
            encode_value(&identity.amr.join(",")),
        ));
    }
    for (claim, value) in &identity.claims {
        let Some(name) = claim_header_name(claim) else {
            tracing::debug!(claim = %claim, "claim name cannot be a header name; not forwarded");
            continue;
        };
        if headers.iter().any(|(existing, _)| *existing == name) {
            continue;
        }
        headers.push((name, encode_value(value)));
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn namespace_matches_every_spelling() {
        for name in [
            "x-guichet-sub",
            "x_guichet_sub",
            "x-guichet_sub",
            "x-guichet",
            "x_guichet-email",
        ] {
            assert!(is_identity_header(name), "{name}");
        }
        for name in [
            "x-guichetsub",
            "x-forwarded-user",
            "guichet-sub",
            "x-guichex",
        ] {
            assert!(!is_identity_header(name), "{name}");
        }
    }

    #[test]
    fn stripping_removes_all_cases_and_duplicates() {
        let mut request = RequestHeader::build("GET", b"/", None).unwrap();
        request.append_header("X-Guichet-Sub", "evil").unwrap();
        request.append_header("x-guichet-sub", "evil2").unwrap();
        request.append_header("X-GUICHET-EMAIL", "evil").unwrap();
        request.append_header("X_Guichet_Uid", "evil").unwrap();
        request.append_header("Accept", "text/html").unwrap();
        strip_identity_headers(&mut request);
        let left: Vec<&str> = request.headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["accept"]);
    }

    #[test]
    fn values_are_percent_encoded_utf8() {
        assert_eq!(encode_value("Hélène").to_str().unwrap(), "H%C3%A9l%C3%A8ne");
        assert_eq!(encode_value("a b-c@d.fr").to_str().unwrap(), "a b-c@d.fr");
        assert_eq!(encode_value("100%").to_str().unwrap(), "100%25");
        assert_eq!(encode_value("a\r\nb").to_str().unwrap(), "a%0D%0Ab");
    }

    #[test]
    fn headers_cover_identity_and_every_claim() {
        let identity = Identity {
            provider: "agentconnect".into(),
            sub: "abc".into(),
            acr: Some("eidas1".into()),
            amr: vec![],
            claims: BTreeMap::from([
                ("given_name".to_string(), "Jean-Édouard".to_string()),
                ("usual_name".to_string(), "Dupont".to_string()),
                ("bad name".to_string(), "x".to_string()),
            ]),
        };
        let headers = identity_headers(&identity);
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("x-guichet-sub", "abc"),
                ("x-guichet-provider", "agentconnect"),
                ("x-guichet-acr", "eidas1"),
                ("x-guichet-given-name", "Jean-%C3%89douard"),
                ("x-guichet-usual-name", "Dupont"),
            ]
        );
    }
}
