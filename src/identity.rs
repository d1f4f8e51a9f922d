//! The verified identity of a visitor: who signed in, through which provider, at which level, and
//! every claim the provider sent, flattened to text.
//!
//! `oidc` builds an [`Identity`] from the verified id_token and userinfo claims; `assertion` turns it
//! into headers. Protocol claims (`iss`, `aud`, `exp`, `nonce`, …) are not part of the identity.

use std::collections::BTreeMap;

use serde_json::Value;

mod compact;
pub use compact::{ClaimRef, CompactIdentity};

/// Claims that describe the token, not the person.
const PROTOCOL_CLAIMS: &[&str] = &[
    "iss",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "nonce",
    "at_hash",
    "c_hash",
    "auth_time",
    "azp",
    "sid",
    "sub",
    "acr",
    "amr",
];

/// A verified identity. Serializable: sessions handed over to a new process or kept in the
/// shared store carry it (sealed), and each process rebuilds the headers from it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub provider: String,
    pub sub: String,
    pub acr: Option<String>,
    pub amr: Vec<String>,
    /// Identity claims by name (`given_name`, `usual_name`, `email`, `uid`, `siret`, …).
    pub claims: BTreeMap<String, Claim>,
}

/// One claim's value: text, or a list of texts (a JSON array of scalars), kept apart so that
/// `["a,admin"]` and `["a", "admin"]` never look alike.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Claim {
    Text(String),
    List(Vec<String>),
}

impl Claim {
    /// Each value: the text, or each element of the list.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        let (one, many): (Option<&str>, &[String]) = match self {
            Claim::Text(text) => (Some(text), &[]),
            Claim::List(items) => (None, items),
        };
        one.into_iter().chain(many.iter().map(String::as_str))
    }

    /// The claim as one header value: text as it is; a list joined with `,`, each element's
    /// `\` and `,` escaped as `\\` and `\,`.
    pub fn to_header_text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Claim::Text(text) => std::borrow::Cow::Borrowed(text),
            Claim::List(items) => {
                std::borrow::Cow::Owned(join_list(items.iter().map(String::as_str)))
            }
        }
    }

    /// The claim in the signed assertion: a string or an array of strings.
    pub fn to_json(&self) -> Value {
        match self {
            Claim::Text(text) => Value::String(text.clone()),
            Claim::List(items) => Value::Array(items.iter().cloned().map(Value::String).collect()),
        }
    }
}

impl From<Vec<String>> for Claim {
    fn from(items: Vec<String>) -> Self {
        Claim::List(items)
    }
}

impl From<&str> for Claim {
    fn from(text: &str) -> Self {
        Claim::Text(text.to_string())
    }
}

/// A list as one header value: elements joined with `,`, their `\` and `,` escaped with `\`.
pub fn join_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for c in item.chars() {
            if c == ',' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

impl Identity {
    /// An identity with no claim, level or method yet (see the `with_` methods).
    pub fn new(provider: &str, sub: &str) -> Self {
        Identity {
            provider: provider.to_string(),
            sub: sub.to_string(),
            acr: None,
            amr: Vec::new(),
            claims: BTreeMap::new(),
        }
    }

    /// The same identity with one more claim.
    pub fn with_claim(mut self, name: &str, value: impl Into<Claim>) -> Self {
        self.claims.insert(name.to_string(), value.into());
        self
    }

    /// The same identity signed in at level `acr`.
    pub fn with_acr(mut self, acr: &str) -> Self {
        self.acr = Some(acr.to_string());
        self
    }

    /// Merges the id_token claims and the userinfo claims (userinfo wins for a claim both carry).
    /// Both must be JSON objects whose `sub` was already checked by the caller.
    pub fn from_claims(
        provider: &str,
        sub: &str,
        id_token: &Value,
        userinfo: Option<&Value>,
    ) -> Self {
        let mut claims = BTreeMap::new();
        for source in [Some(id_token), userinfo].into_iter().flatten() {
            let Some(object) = source.as_object() else {
                continue;
            };
            for (name, value) in object {
                if PROTOCOL_CLAIMS.contains(&name.as_str()) || name.contains('#') {
                    continue;
                }
                if let Some(claim) = claim_value(value) {
                    claims.insert(name.clone(), claim);
                }
            }
        }
        let acr = id_token
            .get("acr")
            .and_then(Value::as_str)
            .map(str::to_string);
        let amr = id_token
            .get("amr")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Identity {
            provider: provider.to_string(),
            sub: sub.to_string(),
            acr,
            amr,
            claims,
        }
    }
}

/// A claim: strings as they are, numbers and booleans printed, arrays of scalars as lists,
/// objects and nested arrays as compact JSON. `null` and empty arrays are no claim.
fn claim_value(value: &Value) -> Option<Claim> {
    match value {
        Value::Array(items) if items.is_empty() => None,
        Value::Array(items) if items.iter().all(|i| !i.is_array() && !i.is_object()) => {
            Some(Claim::List(items.iter().filter_map(scalar_text).collect()))
        }
        Value::Array(_) | Value::Object(_) => Some(Claim::Text(value.to_string())),
        scalar => scalar_text(scalar).map(Claim::Text),
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_claims_and_drops_protocol_ones() {
        let id_token = json!({
            "iss": "https://idp", "aud": "c", "exp": 1, "iat": 0, "nonce": "n", "sub": "s",
            "acr": "eidas1", "amr": ["pwd", "mfa"], "idp_id": "fia1v2", "at_hash": "x"
        });
        let userinfo = json!({
            "sub": "s", "given_name": "Angela Claire", "usual_name": "Dubois",
            "email": "a@b.fr", "siret": "21920023500014", "roles": ["a", "b"],
            "custom": {"k": 1}, "phone_number": null, "given_name#fr": "x", "verified": true
        });
        let id = Identity::from_claims("ac", "s", &id_token, Some(&userinfo));
        assert_eq!(id.acr.as_deref(), Some("eidas1"));
        assert_eq!(id.amr, ["pwd", "mfa"]);
        let names: Vec<&str> = id.claims.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "custom",
                "email",
                "given_name",
                "idp_id",
                "roles",
                "siret",
                "usual_name",
                "verified"
            ]
        );
        assert_eq!(
            id.claims["roles"],
            Claim::List(vec!["a".into(), "b".into()])
        );
        assert_eq!(id.claims["custom"], Claim::from(r#"{"k":1}"#));
        assert_eq!(id.claims["verified"], Claim::from("true"));
    }

    #[test]
    fn lists_stay_apart_from_texts_with_commas() {
        let one = Claim::List(vec!["a,admin".into()]);
        let two = Claim::List(vec!["a".into(), "admin".into()]);
        assert_eq!(one.to_header_text(), "a\\,admin");
        assert_eq!(two.to_header_text(), "a,admin");
        assert_ne!(one.to_json(), two.to_json());
        assert_eq!(
            Claim::List(vec!["c:\\".into(), "".into()]).to_header_text(),
            "c:\\\\,"
        );
        assert_eq!(two.values().collect::<Vec<_>>(), ["a", "admin"]);
        assert_eq!(Claim::from("x").values().collect::<Vec<_>>(), ["x"]);
        // The JSON form round-trips (sessions kept by the shared store carry it).
        let text = serde_json::to_string(&[&one, &Claim::from("t")]).unwrap();
        let back: Vec<Claim> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, [one, Claim::from("t")]);
    }
}
