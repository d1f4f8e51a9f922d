//! The verified identity of a visitor: who signed in, through which provider, at which level, and
//! every claim the provider sent, flattened to text.
//!
//! `oidc` builds an [`Identity`] from the verified id_token and userinfo claims; `assertion` turns it
//! into headers. Protocol claims (`iss`, `aud`, `exp`, `nonce`, …) are not part of the identity.

use std::collections::BTreeMap;

use serde_json::Value;

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

/// A verified identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub provider: String,
    pub sub: String,
    pub acr: Option<String>,
    pub amr: Vec<String>,
    /// Identity claims by name (`given_name`, `usual_name`, `email`, `uid`, `siret`, …), as text.
    pub claims: BTreeMap<String, String>,
}

impl Identity {
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
                if let Some(text) = claim_text(value) {
                    claims.insert(name.clone(), text);
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

/// A claim as text: strings as they are, numbers and booleans printed, arrays of scalars joined
/// with `,`, objects as compact JSON. `null` and empty arrays are no claim.
fn claim_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) => {
            if items.is_empty() {
                return None;
            }
            if items.iter().all(|i| !i.is_array() && !i.is_object()) {
                Some(
                    items
                        .iter()
                        .filter_map(claim_text)
                        .collect::<Vec<_>>()
                        .join(","),
                )
            } else {
                Some(value.to_string())
            }
        }
        Value::Object(_) => Some(value.to_string()),
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
        assert_eq!(id.claims["roles"], "a,b");
        assert_eq!(id.claims["custom"], r#"{"k":1}"#);
        assert_eq!(id.claims["verified"], "true");
    }
}
