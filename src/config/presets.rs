//! Provider presets: what a `kind` (and its `environment`, `platform`) implies, from the
//! federations' public documentation. Every value can be overridden in `[[provider]]`.

use super::spelling::Spelled;

/// The federations guichet knows, plus any standard OpenID provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderKind {
    Oidc,
    ProConnect,
    AgentConnect,
    FranceConnectV1,
    FranceConnectV2,
    FranceConnectPlus,
}

impl Spelled for ProviderKind {
    const SPELLINGS: &'static [(&'static str, Self)] = &[
        ("oidc", ProviderKind::Oidc),
        ("proconnect", ProviderKind::ProConnect),
        ("agentconnect", ProviderKind::AgentConnect),
        ("franceconnect-v1", ProviderKind::FranceConnectV1),
        ("franceconnect-v2", ProviderKind::FranceConnectV2),
        ("franceconnect-plus", ProviderKind::FranceConnectPlus),
    ];
}

/// How the required authentication level is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcrRequest {
    /// `acr_values=eidas1` (FranceConnect, most providers).
    AcrValues,
    /// `claims={"id_token":{"acr":{"essential":true,"values":[…]}}}` (ProConnect).
    ClaimsParameter,
}

/// The userinfo response format a provider must use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserinfoFormat {
    Any,
    Json,
    Jwt,
}

impl Spelled for UserinfoFormat {
    const SPELLINGS: &'static [(&'static str, Self)] = &[
        ("any", UserinfoFormat::Any),
        ("json", UserinfoFormat::Json),
        ("jwt", UserinfoFormat::Jwt),
    ];
}

/// Endpoints a federation documents instead of publishing a discovery document: the issuer
/// followed by these paths. Its id_token is signed with the client secret (HS256).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentedEndpoints {
    /// The path all endpoints share, after the issuer.
    pub base: &'static str,
    pub authorize: &'static str,
    pub token: &'static str,
    pub userinfo: &'static str,
    pub jwks: &'static str,
    pub logout: &'static str,
}

/// FranceConnect v1 (`/api/v1/…`).
const FRANCECONNECT_V1_ENDPOINTS: DocumentedEndpoints = DocumentedEndpoints {
    base: "/api/v1",
    authorize: "/api/v1/authorize",
    token: "/api/v1/token",
    userinfo: "/api/v1/userinfo",
    jwks: "/api/v1/jwks",
    logout: "/api/v1/logout",
};

const PROCONNECT_BUTTON: Button = Button {
    brand: "ProConnect",
    modifier: Some("fr-connect--pro"),
    about_name: "ProConnect",
    about_url: "https://www.proconnect.gouv.fr/",
    intro: "ProConnect vous permet d’accéder à de nombreux services en ligne en utilisant l’un de vos comptes professionnels existants.",
};

const FRANCECONNECT_BUTTON: Button = Button {
    brand: "FranceConnect",
    modifier: None,
    about_name: "FranceConnect",
    about_url: "https://franceconnect.gouv.fr/",
    intro: "FranceConnect est la solution proposée par l’État pour sécuriser et simplifier la connexion à vos services en ligne.",
};

const FRANCECONNECT_PLUS_BUTTON: Button = Button {
    brand: "FranceConnect",
    modifier: Some("fr-connect--plus"),
    about_name: "FranceConnect+",
    about_url: "https://franceconnect.gouv.fr/france-connect-plus",
    intro: "FranceConnect+ est la solution proposée par l’État pour sécuriser et simplifier la connexion aux services en ligne demandant un niveau de sécurité élevé.",
};

/// The values a kind implies.
#[derive(Clone, Debug)]
pub struct Preset {
    /// The federation's name, as its official button says it ("" for `oidc`).
    pub display_name: &'static str,
    /// Its official button on the chooser (the State design system's `fr-connect` component,
    /// as both federations document it).
    pub button: Option<Button>,
    pub scopes: &'static [&'static str],
    pub acr: &'static [&'static str],
    pub acr_request: AcrRequest,
    pub pkce: bool,
    pub userinfo: UserinfoFormat,
    /// Authorize parameters a login may pass through from `/.guichet/login?…`.
    pub hints: &'static [&'static str],
    /// Claims a login must deliver, else it is refused.
    pub mandatory_claims: &'static [&'static str],
    /// Endpoints documented rather than discovered (FranceConnect v1).
    pub documented_endpoints: Option<DocumentedEndpoints>,
    /// The federation encrypts id_token and userinfo (JWE) to the client's keys.
    pub encrypts_tokens: bool,
}

const PROCONNECT_SCOPES: &[&str] = &[
    "openid",
    "given_name",
    "usual_name",
    "email",
    "uid",
    "siret",
    "idp_id",
];
const FRANCECONNECT_SCOPES: &[&str] = &[
    "openid",
    "given_name",
    "family_name",
    "birthdate",
    "gender",
    "birthplace",
    "birthcountry",
    "email",
    "preferred_username",
];
const FRANCECONNECT_PIVOT: &[&str] = &[
    "given_name",
    "family_name",
    "birthdate",
    "gender",
    "birthplace",
    "birthcountry",
];

/// Claims ProConnect/AgentConnect may send besides those named like their scopes.
const PROCONNECT_MORE_CLAIMS: &[&str] = &[
    "siren",
    "organizational_unit",
    "belonging_population",
    "phone_number",
    "idp_acr",
    "roles",
    "organization_label",
    "chorusdt:matricule",
    "chorusdt:societe",
    "custom",
];

/// Claims FranceConnect may send besides those named like its scopes.
const FRANCECONNECT_MORE_CLAIMS: &[&str] = &["given_name_array", "idp_id", "idp_birthdate"];

impl ProviderKind {
    /// Whether a federation may send a claim (its scopes' claims and the others it documents);
    /// `None` for any standard provider, which may send anything.
    pub fn sends_claim(self, claim: &str) -> Option<bool> {
        let (scopes, more) = match self {
            ProviderKind::Oidc => return None,
            ProviderKind::ProConnect | ProviderKind::AgentConnect => {
                (PROCONNECT_SCOPES, PROCONNECT_MORE_CLAIMS)
            }
            ProviderKind::FranceConnectV1
            | ProviderKind::FranceConnectV2
            | ProviderKind::FranceConnectPlus => (FRANCECONNECT_SCOPES, FRANCECONNECT_MORE_CLAIMS),
        };
        Some(scopes.contains(&claim) || more.contains(&claim))
    }

    /// A federation's official button; `None` for `oidc`.
    pub fn button(self) -> Option<Button> {
        self.preset().button
    }

    pub fn is_franceconnect(self) -> bool {
        matches!(
            self,
            ProviderKind::FranceConnectV1
                | ProviderKind::FranceConnectV2
                | ProviderKind::FranceConnectPlus
        )
    }

    /// The issuer for an environment (`integration`, `production`) and, for ProConnect and
    /// AgentConnect, a platform (`internet`, `rie`). `None` for `oidc` or an unknown pair.
    pub fn issuer(self, environment: &str, platform: &str) -> Option<&'static str> {
        Some(match (self, environment, platform) {
            (ProviderKind::ProConnect | ProviderKind::AgentConnect, "integration", "internet") => {
                "https://fca.integ01.dev-agentconnect.fr/api/v2"
            }
            (ProviderKind::ProConnect | ProviderKind::AgentConnect, "integration", "rie") => {
                "https://fca.integ02.agentconnect.rie.gouv.fr/api/v2"
            }
            (ProviderKind::ProConnect | ProviderKind::AgentConnect, "production", "internet") => {
                "https://auth.agentconnect.gouv.fr/api/v2"
            }
            (ProviderKind::ProConnect | ProviderKind::AgentConnect, "production", "rie") => {
                "https://auth.agentconnect.rie.gouv.fr/api/v2"
            }
            (ProviderKind::FranceConnectV1, "integration", _) => {
                "https://fcp.integ01.dev-franceconnect.fr"
            }
            (ProviderKind::FranceConnectV1, "production", _) => "https://app.franceconnect.gouv.fr",
            (ProviderKind::FranceConnectV2, "integration", _) => {
                "https://fcp-low.integ01.dev-franceconnect.fr/api/v2"
            }
            (ProviderKind::FranceConnectV2, "production", _) => {
                "https://oidc.franceconnect.gouv.fr/api/v2"
            }
            (ProviderKind::FranceConnectPlus, "integration", _) => {
                "https://auth.integ01.dev-franceconnect.fr/api/v2"
            }
            (ProviderKind::FranceConnectPlus, "production", _) => {
                "https://auth.franceconnect.gouv.fr/api/v2"
            }
            _ => return None,
        })
    }

    pub fn preset(self) -> Preset {
        match self {
            ProviderKind::Oidc => Preset {
                display_name: "",
                button: None,
                scopes: &["openid"],
                acr: &[],
                acr_request: AcrRequest::AcrValues,
                pkce: true,
                userinfo: UserinfoFormat::Any,
                hints: &["login_hint"],
                mandatory_claims: &[],
                documented_endpoints: None,
                encrypts_tokens: false,
            },
            ProviderKind::ProConnect | ProviderKind::AgentConnect => Preset {
                display_name: if self == ProviderKind::ProConnect {
                    "ProConnect"
                } else {
                    "AgentConnect"
                },
                // AgentConnect is ProConnect's former name: its button is ProConnect's.
                button: Some(PROCONNECT_BUTTON),
                scopes: PROCONNECT_SCOPES,
                acr: &["eidas1"],
                acr_request: AcrRequest::ClaimsParameter,
                pkce: true,
                userinfo: UserinfoFormat::Jwt,
                hints: &["idp_hint", "login_hint", "siret_hint"],
                mandatory_claims: &["given_name", "usual_name", "email", "uid"],
                documented_endpoints: None,
                encrypts_tokens: false,
            },
            ProviderKind::FranceConnectV1 => Preset {
                display_name: "FranceConnect",
                button: Some(FRANCECONNECT_BUTTON),
                scopes: FRANCECONNECT_SCOPES,
                acr: &["eidas1"],
                acr_request: AcrRequest::AcrValues,
                pkce: false,
                userinfo: UserinfoFormat::Json,
                hints: &["idp_hint"],
                mandatory_claims: FRANCECONNECT_PIVOT,
                documented_endpoints: Some(FRANCECONNECT_V1_ENDPOINTS),
                encrypts_tokens: false,
            },
            ProviderKind::FranceConnectV2 => Preset {
                display_name: "FranceConnect",
                button: Some(FRANCECONNECT_BUTTON),
                scopes: FRANCECONNECT_SCOPES,
                acr: &["eidas1"],
                acr_request: AcrRequest::AcrValues,
                pkce: false,
                userinfo: UserinfoFormat::Jwt,
                hints: &["idp_hint"],
                mandatory_claims: FRANCECONNECT_PIVOT,
                documented_endpoints: None,
                encrypts_tokens: false,
            },
            ProviderKind::FranceConnectPlus => Preset {
                display_name: "FranceConnect+",
                button: Some(FRANCECONNECT_PLUS_BUTTON),
                scopes: FRANCECONNECT_SCOPES,
                acr: &["eidas2", "eidas3"],
                acr_request: AcrRequest::AcrValues,
                pkce: false,
                userinfo: UserinfoFormat::Jwt,
                hints: &["idp_hint"],
                mandatory_claims: FRANCECONNECT_PIVOT,
                documented_endpoints: None,
                encrypts_tokens: true,
            },
        }
    }
}

/// The rank of an eIDAS level: (level, multi-factor), so `eidas1` < `eidas1-mfa` < `eidas2`.
fn eidas_rank(acr: &str) -> Option<(u32, bool)> {
    let level = acr.strip_prefix("eidas")?;
    let (digits, mfa) = match level.strip_suffix("-mfa") {
        Some(digits) => (digits, true),
        None => (level, false),
    };
    Some((digits.parse().ok()?, mfa))
}

/// Whether a returned `acr` satisfies the required ones: it is one of them, or every required
/// value is an eIDAS level and it is an eIDAS level at least as high as the lowest of them.
pub fn acr_satisfies(returned: Option<&str>, required: &[String]) -> bool {
    if required.is_empty() {
        return true;
    }
    let Some(returned) = returned else {
        return false;
    };
    if required.iter().any(|r| r == returned) {
        return true;
    }
    let ranks: Option<Vec<(u32, bool)>> = required.iter().map(|r| eidas_rank(r)).collect();
    match (
        ranks.and_then(|r| r.into_iter().min()),
        eidas_rank(returned),
    ) {
        (Some(minimum), Some(rank)) => rank >= minimum,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn acr_levels_are_ordered() {
        assert!(acr_satisfies(Some("eidas2"), &levels(&["eidas2"])));
        assert!(acr_satisfies(Some("eidas3"), &levels(&["eidas2"])));
        assert!(!acr_satisfies(
            Some("eidas1"),
            &levels(&["eidas2", "eidas3"])
        ));
        assert!(!acr_satisfies(None, &levels(&["eidas1"])));
        assert!(acr_satisfies(None, &[]));
        assert!(acr_satisfies(Some("eidas1-mfa"), &levels(&["eidas1-mfa"])));
        assert!(acr_satisfies(Some("eidas2"), &levels(&["eidas1-mfa"])));
        assert!(!acr_satisfies(Some("eidas1"), &levels(&["eidas1-mfa"])));
        let dirigeant = "https://proconnect.gouv.fr/assurance/certification-dirigeant";
        assert!(acr_satisfies(Some(dirigeant), &levels(&[dirigeant])));
        assert!(!acr_satisfies(Some("eidas3"), &levels(&[dirigeant])));
    }

    #[test]
    fn issuers_come_from_the_documented_hosts() {
        assert_eq!(
            ProviderKind::ProConnect.issuer("production", "rie"),
            Some("https://auth.agentconnect.rie.gouv.fr/api/v2")
        );
        assert_eq!(
            ProviderKind::FranceConnectV2.issuer("integration", "internet"),
            Some("https://fcp-low.integ01.dev-franceconnect.fr/api/v2")
        );
        assert_eq!(ProviderKind::Oidc.issuer("production", "internet"), None);
        assert!(!ProviderKind::FranceConnectV2.preset().pkce);
        assert_eq!(
            ProviderKind::AgentConnect.preset().acr_request,
            AcrRequest::ClaimsParameter
        );
    }
}

/// A federation's sign-in button: the brand it shows, its DSFR variant, its "what is it?" link
/// and the sentence that introduces it when several ways of signing in coexist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Button {
    pub brand: &'static str,
    pub modifier: Option<&'static str>,
    pub about_name: &'static str,
    pub about_url: &'static str,
    pub intro: &'static str,
}
