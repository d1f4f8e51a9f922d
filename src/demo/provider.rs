//! A mock OpenID provider that behaves like AgentConnect/ProConnect: discovery, an authorize page
//! where the visitor picks a test agent, a `client_secret_post` token endpoint, ES256 id_tokens,
//! userinfo as an ES256-signed JWT, a JWKS, and `session/end`. Like the federation it refuses
//! unknown authorize parameters, short `state`/`nonce`, and unregistered redirect URIs.
//!
//! It signs with `jsonwebtoken`, a different JOSE implementation from the one guichet verifies
//! id_tokens with, so the two check each other.
//!
//! Flavours: FranceConnect (citizens, `acr_values`, no PKCE), FranceConnect v1 (`/api/v1`, HS256
//! with the client secret, JSON userinfo) and FranceConnect+ (id_token and userinfo signed, then
//! encrypted to the client's key fetched from its JWKS URL; `private_key_jwt` verified with it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use http::Response;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::http::pages::{escape_html, page};
use crate::session::random_token;

/// Authorize parameters AgentConnect accepts; anything else is refused (its error `Y000400`).
const AGENTCONNECT_PARAMS: &[&str] = &[
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "acr_values",
    "claims",
    "prompt",
    "idp_hint",
    "login_hint",
    "siret_hint",
    "code_challenge",
    "code_challenge_method",
];

/// Authorize parameters FranceConnect accepts: no PKCE, no `login_hint`.
const FRANCECONNECT_PARAMS: &[&str] = &[
    "client_id",
    "acr_values",
    "claims",
    "response_type",
    "nonce",
    "state",
    "redirect_uri",
    "scope",
    "prompt",
    "idp_hint",
    "ui_locales",
];

/// Which federation the mock behaves like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    AgentConnect,
    FranceConnect,
    /// FranceConnect v1: `/api/v1/…` endpoints, no discovery, id_token HS256 with the client
    /// secret, userinfo as JSON.
    FranceConnectV1,
    /// FranceConnect+: id_token and userinfo encrypted (JWE) to the client's key, client
    /// authenticated by `private_key_jwt`, citizens vouched for up to `eidas2`.
    FranceConnectPlus,
}

impl Flavour {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "agentconnect" => Some(Flavour::AgentConnect),
            "franceconnect" => Some(Flavour::FranceConnect),
            "franceconnect-v1" => Some(Flavour::FranceConnectV1),
            "franceconnect-plus" => Some(Flavour::FranceConnectPlus),
            _ => None,
        }
    }

    fn people(self) -> &'static [TestPerson] {
        match self {
            Flavour::AgentConnect => AGENTS,
            Flavour::FranceConnect | Flavour::FranceConnectV1 | Flavour::FranceConnectPlus => {
                CITIZENS
            }
        }
    }

    fn allowed_params(self) -> &'static [&'static str] {
        match self {
            Flavour::AgentConnect => AGENTCONNECT_PARAMS,
            Flavour::FranceConnect | Flavour::FranceConnectV1 | Flavour::FranceConnectPlus => {
                FRANCECONNECT_PARAMS
            }
        }
    }

    fn title(self) -> &'static str {
        match self {
            Flavour::AgentConnect => "AgentConnect (démonstration)",
            Flavour::FranceConnect => "FranceConnect (démonstration)",
            Flavour::FranceConnectV1 => "FranceConnect v1 (démonstration)",
            Flavour::FranceConnectPlus => "FranceConnect+ (démonstration)",
        }
    }

    /// The highest level the flavour vouches for a person at.
    fn max_acr(self, person: &TestPerson) -> &'static str {
        match self {
            // FranceConnect+ identity providers are substantial (eIDAS 2) at least.
            Flavour::FranceConnectPlus => "eidas2",
            _ => person.max_acr,
        }
    }
}

/// A test identity: who is shown on the authorize page and which claims userinfo returns.
pub struct TestPerson {
    pub sub: &'static str,
    pub label: &'static str,
    pub description: &'static str,
    /// The highest level this person's identity provider can vouch for (the federation returns
    /// it, whatever was asked).
    pub max_acr: &'static str,
    /// Sent in the id_token too.
    pub idp_id: &'static str,
    pub claims: &'static [(&'static str, &'static str)],
}

/// The test agents offered by the AgentConnect flavour.
pub const AGENTS: &[TestPerson] = &[
    TestPerson {
        sub: "7f6c1e54-3b8a-4d8e-9a0f-2c1d5e6f7a80",
        label: "Hélène Marie Dupré-Lefèvre",
        description: "Direction du numérique (agent)",
        max_acr: "eidas3",
        idp_id: "fia1v2",
        claims: &[
            ("given_name", "Hélène Marie"),
            ("usual_name", "Dupré-Lefèvre"),
            ("email", "helene.dupre-lefevre@interieur.gouv.fr"),
            ("uid", "hdupre"),
            ("siret", "21920023500014"),
            ("siren", "219200235"),
            ("organizational_unit", "Direction du numérique"),
            ("belonging_population", "agent"),
            ("phone_number", "+33 1 23 45 67 89"),
            ("idp_id", "fia1v2"),
        ],
    },
    TestPerson {
        sub: "0b2d9c71-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
        label: "Jean-Édouard Lœvenbruck",
        description: "Bureau des systèmes d'information (agent)",
        max_acr: "eidas2",
        idp_id: "fia2v2",
        claims: &[
            ("given_name", "Jean-Édouard"),
            ("usual_name", "Lœvenbruck"),
            ("email", "jean-edouard.loevenbruck@finances.gouv.fr"),
            ("uid", "jloevenbruck"),
            ("siret", "11000201100044"),
            ("siren", "110002011"),
            ("organizational_unit", "Bureau des systèmes d'information"),
            ("belonging_population", "agent"),
            ("phone_number", "+33 1 40 04 04 04"),
            ("idp_id", "fia2v2"),
        ],
    },
    TestPerson {
        sub: "c3a1f2e4-6b7d-4c8e-a9f0-b1c2d3e4f5a6",
        label: "Zoé N'Guessan",
        description: "Mission appui (prestataire)",
        max_acr: "eidas1",
        idp_id: "fia1v2",
        claims: &[
            ("given_name", "Zoé"),
            ("usual_name", "N'Guessan"),
            ("email", "zoe.nguessan@prestataire.example.fr"),
            ("uid", "znguessan"),
            ("siret", "21750001600019"),
            ("siren", "217500016"),
            ("organizational_unit", "Mission appui"),
            ("belonging_population", "prestataire"),
            ("phone_number", "+33 6 12 34 56 78"),
            ("idp_id", "fia1v2"),
        ],
    },
];

/// The test citizens offered by the FranceConnect flavour, in the spirit of the federation's
/// published test accounts: accents, a person born abroad, partial birthdates, a usage name.
pub const CITIZENS: &[TestPerson] = &[
    TestPerson {
        sub: "b6048e95bb134ec5b1d1e1fa69f287172e91722b9354d637a1bcf2ebb0fd2ef5v1",
        label: "Angela Claire Louise DUBOIS",
        description: "née le 24 août 1962 à Paris 7e",
        max_acr: "eidas1",
        idp_id: "fip1-low",
        claims: &[
            ("given_name", "Angela Claire Louise"),
            ("family_name", "DUBOIS"),
            ("birthdate", "1962-08-24"),
            ("gender", "female"),
            ("birthplace", "75107"),
            ("birthcountry", "99100"),
            ("preferred_username", ""),
            ("email", "wossewodda-3728@yopmail.com"),
        ],
    },
    TestPerson {
        sub: "4d327dd1e427daf4d50296ab71d6f3fc82ccc40742943521d42cb2bae4df41afv1",
        label: "Yasmine Héloïse EL AMRANI",
        description: "née au Maroc, date de naissance présumée 1992-11",
        max_acr: "eidas1",
        idp_id: "fip1-low",
        claims: &[
            ("given_name", "Yasmine Héloïse"),
            ("family_name", "EL AMRANI"),
            ("birthdate", "1992-11-01"),
            ("gender", "female"),
            ("birthplace", ""),
            ("birthcountry", "99350"),
            ("preferred_username", ""),
            ("email", "yasmine.elamrani@example.fr"),
        ],
    },
    TestPerson {
        sub: "8f2b3c1d7e6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0cv1",
        label: "Jean-Noël François MARTIN (usage : LE GOFF)",
        description: "né en 1978 en Corse-du-Sud",
        max_acr: "eidas1",
        idp_id: "fip1-low",
        claims: &[
            ("given_name", "Jean-Noël François"),
            ("family_name", "MARTIN"),
            ("birthdate", "1978-01-01"),
            ("gender", "male"),
            ("birthplace", "2A004"),
            ("birthcountry", "99100"),
            ("preferred_username", "LE GOFF"),
            ("email", "jn.martin@example.fr"),
        ],
    },
];

struct PendingAuthorization {
    redirect_uri: String,
    state: String,
    nonce: String,
    code_challenge: Option<String>,
    acr: String,
}

struct Grant {
    agent: usize,
    redirect_uri: String,
    nonce: String,
    code_challenge: Option<String>,
    acr: String,
    issued: u64,
}

/// The shortest `state` and `nonce` the mock provider accepts by default.
pub const MIN_RANDOM_LENGTH: usize = 32;

/// The mock provider's configuration and state.
pub struct MockProvider {
    flavour: Flavour,
    issuer: String,
    /// The path prefix of every endpoint (the issuer's path, e.g. `/api/v2`).
    base_path: String,
    client_id: String,
    client_secret: String,
    redirect_uris: Vec<String>,
    key: std::sync::RwLock<Arc<MockKey>>,
    /// Keys retired by a rotation, still accepted for `id_token_hint`.
    retired: Mutex<Vec<Arc<MockKey>>>,
    /// Sign the next userinfo response with a key that is not the published one.
    forge_next_userinfo: std::sync::atomic::AtomicBool,
    pending: Mutex<HashMap<String, PendingAuthorization>>,
    grants: Mutex<HashMap<String, Grant>>,
    access_tokens: Mutex<HashMap<String, usize>>,
    /// FranceConnect+: where the client publishes its keys (encryption, client assertion).
    client_jwks_uri: Option<String>,
    /// The shortest `state` and `nonce` accepted (32, as AgentConnect's documentation asks).
    min_random_length: usize,
    http: openidconnect::reqwest::Client,
}

use crate::clock::unix_now as now;

fn json_response(status: u16, body: &Value) -> Response<Vec<u8>> {
    respond(status, "application/json", body.to_string().into_bytes())
}

fn respond(status: u16, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-length", body.len())
        .header("cache-control", "no-store")
        .body(body)
        .unwrap_or_default()
}

fn redirect(location: &str) -> Response<Vec<u8>> {
    Response::builder()
        .status(302)
        .header("location", location)
        .header("content-length", 0)
        .body(Vec::new())
        .unwrap_or_default()
}

fn html(status: u16, title: &str, body: &str) -> Response<Vec<u8>> {
    respond(
        status,
        "text/html; charset=utf-8",
        page(title, body).into_bytes(),
    )
}

fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut url = base.to_string();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    url.push(if url.contains('?') { '&' } else { '?' });
    url.push_str(&query);
    url
}

/// A P-256 signing key with its `kid` and public JWK.
struct MockKey {
    kid: String,
    encoding_key: EncodingKey,
    decoding_key: DecodingKey,
    jwk: Value,
}

impl MockKey {
    fn generate() -> Result<Self, String> {
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let der = secret
            .to_pkcs8_der()
            .map_err(|e| format!("key encoding: {e}"))?;
        let point = secret.public_key().to_encoded_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err("public key has no coordinates".into());
        };
        let x = URL_SAFE_NO_PAD.encode(x);
        let y = URL_SAFE_NO_PAD.encode(y);
        let kid = format!("mock-{}", &random_token()[..8]);
        let decoding_key =
            DecodingKey::from_ec_components(&x, &y).map_err(|e| format!("public key: {e}"))?;
        Ok(MockKey {
            encoding_key: EncodingKey::from_ec_der(der.as_bytes()),
            decoding_key,
            jwk: json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "use": "sig", "alg": "ES256"}),
            kid,
        })
    }
}

impl MockProvider {
    /// `issuer` like `http://127.0.0.1:8081/api/v2`; a fresh P-256 key is generated.
    pub fn new(
        flavour: Flavour,
        issuer: &str,
        client_id: &str,
        client_secret: &str,
        redirect_uris: Vec<String>,
    ) -> Result<Self, String> {
        crate::signatures::install();
        let parsed = url::Url::parse(issuer).map_err(|e| format!("issuer: {e}"))?;
        Ok(MockProvider {
            flavour,
            issuer: issuer.trim_end_matches('/').to_string(),
            // FranceConnect v1 serves the endpoints its preset documents.
            base_path: match flavour {
                Flavour::FranceConnectV1 => crate::config::ProviderKind::FranceConnectV1
                    .preset()
                    .documented_endpoints
                    .map_or("", |paths| paths.base)
                    .to_string(),
                _ => parsed.path().trim_end_matches('/').to_string(),
            },
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            redirect_uris,
            key: std::sync::RwLock::new(Arc::new(MockKey::generate()?)),
            retired: Mutex::new(Vec::new()),
            forge_next_userinfo: std::sync::atomic::AtomicBool::new(false),
            pending: Mutex::new(HashMap::new()),
            grants: Mutex::new(HashMap::new()),
            access_tokens: Mutex::new(HashMap::new()),
            client_jwks_uri: None,
            min_random_length: MIN_RANDOM_LENGTH,
            http: openidconnect::reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .redirect(openidconnect::reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| e.to_string())?,
        })
    }

    /// Accepts shorter `state` and `nonce` values (to measure clients that send them).
    pub fn with_min_random_length(mut self, length: usize) -> Self {
        self.min_random_length = length;
        self
    }

    /// The client's JWKS URL (FranceConnect+: its encryption and client-assertion keys).
    pub fn with_client_jwks_uri(mut self, uri: Option<String>) -> Self {
        self.client_jwks_uri = uri;
        self
    }

    /// Fetches the client's public keys, as FranceConnect+ does from the registered URL.
    async fn client_keys(&self) -> Result<Vec<jsonwebtoken::jwk::Jwk>, String> {
        let uri = self
            .client_jwks_uri
            .as_deref()
            .ok_or("no client jwks_uri registered")?;
        let response = self
            .http
            .get(uri)
            .send()
            .await
            .map_err(|e| format!("client jwks_uri: {e}"))?;
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("client jwks_uri: {e}"))?;
        let set: jsonwebtoken::jwk::JwkSet =
            serde_json::from_slice(&body).map_err(|e| format!("client jwks_uri: {e}"))?;
        Ok(set.keys)
    }

    /// Checks a `private_key_jwt` client assertion against the client's published keys.
    async fn check_client_assertion(&self, form: &HashMap<String, String>) -> Result<(), String> {
        let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        if get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        {
            return Err("private_key_jwt expected".into());
        }
        let assertion = get("client_assertion");
        let header = jsonwebtoken::decode_header(assertion).map_err(|e| e.to_string())?;
        if !matches!(header.alg, Algorithm::ES256 | Algorithm::RS256) {
            return Err("client assertion must be ES256 or RS256".into());
        }
        let keys = self.client_keys().await?;
        let jwk = keys
            .iter()
            .find(|k| {
                k.common.key_id == header.kid
                    && k.common.public_key_use == Some(jsonwebtoken::jwk::PublicKeyUse::Signature)
            })
            .ok_or("no client signing key with that kid")?;
        let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[format!("{}/token", self.issuer)]);
        validation.set_issuer(&[&self.client_id]);
        validation.sub = Some(self.client_id.clone());
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        jsonwebtoken::decode::<Value>(assertion, &key, &validation)
            .map(|_| ())
            .map_err(|e| format!("client assertion: {e}"))
    }

    /// FranceConnect+ encrypts what it signed to the client's encryption key (P-256 first).
    async fn encrypt_for_client(&self, signed: String) -> Result<String, String> {
        if self.flavour != Flavour::FranceConnectPlus {
            return Ok(signed);
        }
        let keys = self.client_keys().await?;
        let encryption: Vec<&jsonwebtoken::jwk::Jwk> = keys
            .iter()
            .filter(|k| {
                k.common.public_key_use == Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
            })
            .collect();
        let key = encryption
            .iter()
            .find(|k| {
                matches!(
                    k.algorithm,
                    jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_)
                )
            })
            .or(encryption.first())
            .ok_or("the client publishes no encryption key")?;
        crate::jose::encrypt_to(key, signed.as_bytes())
    }

    fn current_key(&self) -> Arc<MockKey> {
        self.key
            .read()
            .map(|k| k.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    fn sign(&self, claims: &Value) -> Result<String, jsonwebtoken::errors::Error> {
        if self.flavour == Flavour::FranceConnectV1 {
            return jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                claims,
                &EncodingKey::from_secret(self.client_secret.as_bytes()),
            );
        }
        let key = self.current_key();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding_key)
    }

    /// Key rotation as a federation does it: a new key signs from now on and the JWKS lists
    /// only it.
    fn rotate(&self) -> Response<Vec<u8>> {
        let Ok(fresh) = MockKey::generate() else {
            return json_response(500, &json!({"error": "key generation failed"}));
        };
        let fresh = Arc::new(fresh);
        let kid = fresh.kid.clone();
        if let Ok(mut current) = self.key.write() {
            let old = std::mem::replace(&mut *current, fresh);
            if let Ok(mut retired) = self.retired.lock() {
                retired.push(old);
            }
        }
        json_response(200, &json!({"kid": kid}))
    }

    fn discovery(&self) -> Value {
        let i = &self.issuer;
        let mut document = json!({
            "issuer": i,
            "authorization_endpoint": format!("{i}/authorize"),
            "token_endpoint": format!("{i}/token"),
            "userinfo_endpoint": format!("{i}/userinfo"),
            "jwks_uri": format!("{i}/jwks"),
            "end_session_endpoint": format!("{i}/session/end"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "userinfo_signing_alg_values_supported": ["ES256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "claims_supported": self.flavour.people()[0].claims.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            "acr_values_supported": ["eidas1", "eidas2", "eidas3"],
            "claims_parameter_supported": true,
            "code_challenge_methods_supported": if self.flavour == Flavour::AgentConnect { json!(["S256"]) } else { json!([]) },
        });
        if self.flavour == Flavour::FranceConnectPlus {
            let algs = json!(["ECDH-ES", "RSA-OAEP-256"]);
            for (key, value) in [
                (
                    "token_endpoint_auth_methods_supported",
                    json!(["private_key_jwt"]),
                ),
                (
                    "token_endpoint_auth_signing_alg_values_supported",
                    json!(["ES256", "RS256"]),
                ),
                ("id_token_encryption_alg_values_supported", algs.clone()),
                (
                    "id_token_encryption_enc_values_supported",
                    json!(["A256GCM"]),
                ),
                ("userinfo_encryption_alg_values_supported", algs),
                (
                    "userinfo_encryption_enc_values_supported",
                    json!(["A256GCM"]),
                ),
            ] {
                document[key] = value;
            }
        }
        document
    }

    fn error_page(&self, status: u16, code: &str, message: &str) -> Response<Vec<u8>> {
        html(
            status,
            "Erreur",
            &format!("<h1>Erreur {code}</h1><p>{}</p>", escape_html(message)),
        )
    }

    fn authorize(&self, params: &HashMap<String, String>) -> Response<Vec<u8>> {
        if let Some(unknown) = params
            .keys()
            .find(|k| !self.flavour.allowed_params().contains(&k.as_str()))
        {
            return self.error_page(400, "Y000400", &format!("paramètre inconnu : {unknown}"));
        }
        let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
        if get("client_id") != self.client_id {
            return self.error_page(400, "Y000400", "client_id inconnu");
        }
        if !self.redirect_uris.iter().any(|r| r == get("redirect_uri")) {
            return self.error_page(400, "Y000400", "redirect_uri non enregistrée");
        }
        if get("response_type") != "code" {
            return self.error_page(400, "Y000400", "response_type doit valoir code");
        }
        if !get("scope").split(' ').any(|s| s == "openid") {
            return self.error_page(400, "Y000400", "le scope openid est obligatoire");
        }
        let shortest = self.min_random_length;
        if get("state").len() < shortest || get("nonce").len() < shortest {
            return self.error_page(
                400,
                "Y000400",
                &format!("state et nonce : au moins {shortest} caractères"),
            );
        }
        let code_challenge = params.get("code_challenge").cloned();
        if code_challenge.is_some() && get("code_challenge_method") != "S256" {
            return self.error_page(400, "Y000400", "seule la méthode PKCE S256 est acceptée");
        }
        // The level asked for, through acr_values or (as ProConnect prefers) the claims parameter.
        let from_claims = params
            .get("claims")
            .and_then(|c| serde_json::from_str::<Value>(c).ok())
            .and_then(|c| {
                c["id_token"]["acr"]["values"][0]
                    .as_str()
                    .map(str::to_string)
            });
        let acr = from_claims.unwrap_or_else(|| {
            get("acr_values")
                .split(' ')
                .find(|v| !v.is_empty())
                .unwrap_or("eidas1")
                .to_string()
        });
        let tx = random_token();
        let pending = PendingAuthorization {
            redirect_uri: get("redirect_uri").to_string(),
            state: get("state").to_string(),
            nonce: get("nonce").to_string(),
            code_challenge,
            acr,
        };
        if let Ok(mut map) = self.pending.lock() {
            map.insert(tx.clone(), pending);
        }
        let base = &self.base_path;
        let mut items = String::new();
        for (index, person) in self.flavour.people().iter().enumerate() {
            items.push_str(&format!(
                "<li><a class=\"button\" href=\"{base}/authorize/confirm?tx={tx}&amp;agent={index}\">{}</a> — {}</li>\n",
                escape_html(person.label),
                escape_html(person.description),
            ));
        }
        html(
            200,
            "Fournisseur d'identité de démonstration",
            &format!(
                "<h1>{title}</h1>\n<p>Fournisseur d'identité de démonstration : choisissez une identité de test.</p>\n<p class=\"en\" lang=\"en\">Demonstration identity provider: pick a test identity.</p>\n<ul>\n{items}</ul>\n<p><a href=\"{base}/authorize/confirm?tx={tx}&amp;cancel=1\">Annuler / Cancel</a></p>",
                title = escape_html(self.flavour.title()),
            ),
        )
    }

    fn confirm(&self, params: &HashMap<String, String>) -> Response<Vec<u8>> {
        let Some(pending) = params
            .get("tx")
            .and_then(|tx| self.pending.lock().ok()?.remove(tx))
        else {
            return self.error_page(400, "Y000400", "demande inconnue ou déjà traitée");
        };
        if params.contains_key("cancel") {
            return redirect(&with_query(
                &pending.redirect_uri,
                &[
                    ("error", "access_denied"),
                    ("error_description", "L'utilisateur a annulé la connexion"),
                    ("state", &pending.state),
                ],
            ));
        }
        let Some(agent) = params
            .get("agent")
            .and_then(|a| a.parse::<usize>().ok())
            .filter(|a| *a < self.flavour.people().len())
        else {
            return self.error_page(400, "Y000400", "agent inconnu");
        };
        let code = random_token();
        if let Ok(mut grants) = self.grants.lock() {
            grants.insert(
                code.clone(),
                Grant {
                    agent,
                    redirect_uri: pending.redirect_uri.clone(),
                    nonce: pending.nonce,
                    code_challenge: pending.code_challenge,
                    acr: pending.acr,
                    issued: now(),
                },
            );
        }
        redirect(&with_query(
            &pending.redirect_uri,
            &[("code", &code), ("state", &pending.state)],
        ))
    }

    async fn token(&self, authorization: Option<&str>, body: &[u8]) -> Response<Vec<u8>> {
        let form: HashMap<String, String> =
            url::form_urlencoded::parse(body).into_owned().collect();
        let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        let oauth_error = |status: u16, error: &str, description: &str| {
            json_response(
                status,
                &json!({"error": error, "error_description": description}),
            )
        };
        let (client_id, client_secret) = client_credentials(authorization, &form);
        if self.flavour == Flavour::FranceConnectPlus {
            if let Err(reason) = self.check_client_assertion(&form).await {
                return oauth_error(401, "invalid_client", &reason);
            }
        } else if client_id != self.client_id || client_secret != self.client_secret {
            return oauth_error(401, "invalid_client", "client authentication failed");
        }
        if get("grant_type") != "authorization_code" {
            return oauth_error(400, "unsupported_grant_type", "only authorization_code");
        }
        let Some(grant) = self
            .grants
            .lock()
            .ok()
            .and_then(|mut g| g.remove(get("code")))
        else {
            return oauth_error(400, "invalid_grant", "unknown or already used code");
        };
        if now().saturating_sub(grant.issued) > 60 {
            return oauth_error(400, "invalid_grant", "code expired");
        }
        if grant.redirect_uri != get("redirect_uri") {
            return oauth_error(400, "invalid_grant", "redirect_uri mismatch");
        }
        if let Some(challenge) = &grant.code_challenge {
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(get("code_verifier").as_bytes()));
            if &computed != challenge {
                return oauth_error(400, "invalid_grant", "PKCE verification failed");
            }
        }
        let agent = &self.flavour.people()[grant.agent];
        // Like a federation, answer with what the agent's provider can vouch for.
        let max_acr = self.flavour.max_acr(agent);
        let acr = if grant.acr.as_str() > max_acr && grant.acr.starts_with("eidas") {
            max_acr.to_string()
        } else {
            grant.acr.clone()
        };
        let access_token = random_token();
        if let Ok(mut tokens) = self.access_tokens.lock() {
            tokens.insert(access_token.clone(), grant.agent);
        }
        let iat = now();
        let id_token = self.sign(&json!({
            "iss": self.issuer, "sub": agent.sub, "aud": self.client_id,
            "exp": iat + 60, "iat": iat, "auth_time": iat, "nonce": grant.nonce,
            "acr": acr, "amr": ["pwd"], "idp_id": agent.idp_id,
            "sid": random_token(),
            // Both ES256 and HS256 (FranceConnect v1) hash with SHA-256.
            "at_hash": URL_SAFE_NO_PAD.encode(&Sha256::digest(access_token.as_bytes())[..16]),
        }));
        let id_token = match id_token {
            Ok(signed) => self.encrypt_for_client(signed).await,
            Err(e) => Err(e.to_string()),
        };
        match id_token {
            Ok(id_token) => json_response(
                200,
                &json!({"access_token": access_token, "token_type": "Bearer",
                    "expires_in": 60, "id_token": id_token, "scope": "openid"}),
            ),
            Err(e) => oauth_error(500, "server_error", &e),
        }
    }

    async fn userinfo(&self, authorization: Option<&str>) -> Response<Vec<u8>> {
        let agent = authorization
            .and_then(|a| a.strip_prefix("Bearer "))
            .and_then(|t| self.access_tokens.lock().ok()?.get(t.trim()).copied());
        let Some(person) = agent.and_then(|a| self.flavour.people().get(a)) else {
            return json_response(401, &json!({"error": "invalid_token"}));
        };
        let iat = now();
        let mut claims = json!({
            "iss": self.issuer, "aud": self.client_id, "iat": iat, "exp": iat + 60,
            "sub": person.sub,
        });
        for (name, value) in person.claims {
            claims[*name] = json!(value);
        }
        let forged = self
            .forge_next_userinfo
            .swap(false, std::sync::atomic::Ordering::SeqCst);
        let signed = if forged {
            // Signed by someone else, claiming the published key id.
            MockKey::generate()
                .map_err(|_| jsonwebtoken::errors::ErrorKind::InvalidEcdsaKey.into())
                .and_then(|other| {
                    let mut header = Header::new(Algorithm::ES256);
                    header.kid = Some(self.current_key().kid.clone());
                    jsonwebtoken::encode(&header, &claims, &other.encoding_key)
                })
        } else {
            self.sign(&claims)
        };
        if self.flavour == Flavour::FranceConnectV1 {
            return json_response(200, &claims);
        }
        let sent = match signed {
            Ok(jwt) => self.encrypt_for_client(jwt).await,
            Err(e) => Err(e.to_string()),
        };
        match sent {
            Ok(jwt) => respond(200, "application/jwt", jwt.into_bytes()),
            Err(e) => json_response(
                500,
                &json!({"error": "server_error", "error_description": e}),
            ),
        }
    }

    fn end_session(&self, params: &HashMap<String, String>) -> Response<Vec<u8>> {
        let algorithm = if self.flavour == Flavour::FranceConnectV1 {
            Algorithm::HS256
        } else {
            Algorithm::ES256
        };
        let mut validation = Validation::new(algorithm);
        validation.validate_exp = false;
        validation.set_required_spec_claims::<&str>(&[]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.client_id]);
        let mut keys: Vec<DecodingKey> = vec![self.current_key().decoding_key.clone()];
        if let Ok(retired) = self.retired.lock() {
            keys.extend(retired.iter().map(|k| k.decoding_key.clone()));
        }
        if self.flavour == Flavour::FranceConnectV1 {
            keys = vec![DecodingKey::from_secret(self.client_secret.as_bytes())];
        }
        let hint_ok = params.get("id_token_hint").is_some_and(|t| {
            keys.iter()
                .any(|k| jsonwebtoken::decode::<Value>(t, k, &validation).is_ok())
        });
        if !hint_ok {
            return self.error_page(400, "Y030118", "id_token_hint absent ou invalide");
        }
        let Some(target) = params.get("post_logout_redirect_uri") else {
            return self.error_page(400, "Y030111", "post_logout_redirect_uri manquante");
        };
        let state = params.get("state").map(String::as_str).unwrap_or("");
        redirect(&with_query(target, &[("state", state)]))
    }
}

/// The client's id and secret: from HTTP Basic (`client_secret_basic`, each part
/// form-urlencoded) or from the form (`client_secret_post`).
fn client_credentials(
    authorization: Option<&str>,
    form: &HashMap<String, String>,
) -> (String, String) {
    let Some(basic) = authorization.and_then(|a| a.strip_prefix("Basic ")) else {
        let get = |k: &str| form.get(k).cloned().unwrap_or_default();
        return (get("client_id"), get("client_secret"));
    };
    let decoded = STANDARD
        .decode(basic.trim())
        .ok()
        .and_then(|d| String::from_utf8(d).ok())
        .unwrap_or_default();
    let (id, secret) = decoded.split_once(':').unwrap_or_default();
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    (decode(id), decode(secret))
}

#[async_trait]
impl ServeHttp for MockProvider {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let request = session.req_header();
        let path = request.uri.path().to_string();
        let params: HashMap<String, String> = request
            .uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let authorization = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = session.read_request_body().await {
            if body.len() + chunk.len() > 64 * 1024 {
                return json_response(413, &json!({"error": "invalid_request"}));
            }
            body.extend_from_slice(&chunk);
        }
        let Some(route) = path.strip_prefix(&self.base_path) else {
            return self.error_page(404, "404", "page inconnue");
        };
        match route {
            "/.well-known/openid-configuration" => json_response(200, &self.discovery()),
            "/jwks" => json_response(200, &json!({"keys": [self.current_key().jwk]})),
            // Test controls of the mock (a real federation has no such thing).
            "/debug/rotate-keys" => self.rotate(),
            "/debug/forge-next-userinfo" => {
                self.forge_next_userinfo
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                json_response(200, &json!({"forge": true}))
            }
            "/authorize" => self.authorize(&params),
            "/authorize/confirm" => self.confirm(&params),
            "/token" => self.token(authorization.as_deref(), &body).await,
            "/userinfo" => self.userinfo(authorization.as_deref()).await,
            "/session/end" | "/logout" => self.end_session(&params),
            _ => self.error_page(404, "404", "page inconnue"),
        }
    }
}
