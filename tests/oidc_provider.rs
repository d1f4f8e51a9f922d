//! Against a real, third-party OpenID provider: panva's `oidc-provider` (npm), configured in
//! `tests/oidc-provider/server.mjs` like ProConnect, FranceConnect v2 or FranceConnect+ (ES256
//! id_token and signed userinfo, each federation's scopes and claims, acr, RP-initiated logout;
//! for FranceConnect+ JWE-encrypted id_token and userinfo and `private_key_jwt`).
//! `scripts/test.sh` installs it with `npm ci`; a missing Node or package fails the test loudly.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{echoed, free_port, Browser, GatewayOptions, Page, Stack};

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn package_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc-provider"))
}

/// oidc-provider, configured with one profile of `server.mjs`, and a guichet in front of it.
struct Pair {
    op: Option<Node>,
    stack: Stack,
    op_port: u16,
    gateway_port: u16,
    secret: String,
}

impl Pair {
    /// Starts the provider (`{gateway}` in an `env` value stands for the gateway's URL), then a
    /// gateway whose `[[provider]]` section is `section(op_port)`.
    async fn start(
        name: &str,
        profile: &str,
        secret: &str,
        env: &[(&str, &str)],
        section: impl FnOnce(u16) -> String,
    ) -> Pair {
        let gateway_port = free_port();
        let op_port = free_port();
        let op = start_op_as(op_port, gateway_port, secret, profile, env).await;
        let stack = Stack::start(
            name,
            GatewayOptions {
                gateway_port: Some(gateway_port),
                provider_section: Some(section(op_port)),
                ..GatewayOptions::default()
            },
        )
        .await;
        Pair {
            op: Some(op),
            stack,
            op_port,
            gateway_port,
            secret: secret.to_string(),
        }
    }

    /// Restarts the provider on the same port, with this profile and environment.
    async fn restart_op(&mut self, profile: &str, env: &[(&str, &str)]) {
        self.op = None;
        self.op =
            Some(start_op_as(self.op_port, self.gateway_port, &self.secret, profile, env).await);
    }
}

/// Starts oidc-provider with a `profile` of `server.mjs` and environment variables; waits for
/// its discovery document.
async fn start_op_as(
    port: u16,
    gateway_port: u16,
    secret: &str,
    profile: &str,
    env: &[(&str, &str)],
) -> Node {
    assert!(
        package_dir().join("node_modules/oidc-provider").exists(),
        "tests/oidc-provider/node_modules is missing: scripts/test.sh runs npm ci there"
    );
    let gateway = format!("http://127.0.0.1:{gateway_port}");
    let child = Command::new("node")
        .current_dir(package_dir())
        .args([
            "server.mjs",
            &port.to_string(),
            secret,
            &format!("{gateway}/.guichet/callback"),
            &format!("{gateway}/.guichet/logged-out"),
            profile,
        ])
        .envs(
            env.iter()
                .map(|(name, value)| (*name, value.replace("{gateway}", &gateway))),
        )
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(std::env::temp_dir().join(format!("guichet-test-op-{port}.log")))
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
        )
        .spawn()
        .expect("node must be installed (scripts/test.sh checks it)");
    let node = Node(child);
    support::wait_for_status(
        &format!("http://127.0.0.1:{port}/.well-known/openid-configuration"),
        200,
        Duration::from_secs(20),
    )
    .await
    .expect("oidc-provider starts");
    node
}

/// A `proconnect` provider whose issuer is the local oidc-provider (everything else from the
/// preset: scopes, acr eidas1 through the claims parameter, signed userinfo, mandatory claims).
fn proconnect_section(op_port: u16, secret: &str) -> String {
    format!(
        "[[provider]]\nid = \"op\"\nkind = \"proconnect\"\nissuer = \"http://127.0.0.1:{op_port}\"\n\
         client_id = \"guichet\"\nclient_secret = \"{secret}\"\nhttp_timeout = \"5s\"\n"
    )
}

fn provider_section(op_port: u16, secret: &str, acr: &str) -> String {
    format!(
        "[[provider]]\nid = \"op\"\nkind = \"oidc\"\nissuer = \"http://127.0.0.1:{op_port}\"\n\
         client_id = \"guichet\"\nclient_secret = \"{secret}\"\n\
         scopes = [\"openid\", \"given_name\", \"usual_name\", \"email\", \"uid\", \"siret\", \"idp_id\"]\n\
         userinfo_format = \"jwt\"\nmandatory_claims = [\"given_name\", \"usual_name\", \"email\", \"uid\"]\n\
         acr = {acr}\nhttp_timeout = \"5s\"\n"
    )
}

/// Follows redirects and oidc-provider's development login and consent forms until the
/// browser lands back on the gateway; returns that response.
async fn sign_in_at_op(browser: &mut Browser, stack: &Stack, start: &str) -> Page {
    sign_in_as(browser, stack, start, "hdupre").await
}

async fn sign_in_as(browser: &mut Browser, stack: &Stack, start: &str, who: &str) -> Page {
    let mut url = start.to_string();
    let mut page = browser.get(&url).await;
    for _ in 0..12 {
        if url.starts_with(&stack.gateway_url) && url.contains("/.guichet/callback") {
            return page;
        }
        match page.status {
            302 | 303 => {
                let location = page.location.clone().expect("location");
                url = url::Url::parse(&url)
                    .unwrap()
                    .join(&location)
                    .unwrap()
                    .to_string();
                if url.starts_with(&stack.gateway_url) && url.contains("/.guichet/callback") {
                    return browser.get(&url).await;
                }
                page = browser.get(&url).await;
            }
            200 if page.body.contains("name=\"login\"") => {
                page = browser
                    .submit_form(&url, &page.body.clone(), &[("login", who)])
                    .await;
            }
            200 if page.body.contains("value=\"consent\"") => {
                page = browser.submit_form(&url, &page.body.clone(), &[]).await;
            }
            other => panic!("unexpected {other} at {url}:\n{}", page.body),
        }
    }
    panic!("too many steps at the provider");
}

async fn login(browser: &mut Browser, stack: &Stack) -> Page {
    login_as(browser, stack, "hdupre").await
}

async fn login_as(browser: &mut Browser, stack: &Stack, who: &str) -> Page {
    let (back, _) = callback_for(browser, stack, who).await;
    assert_eq!(back.status, 302, "callback: {}", back.body);
    back
}

/// The gateway's answer at the callback, and the authorize URL the browser was sent to.
async fn callback_for(browser: &mut Browser, stack: &Stack, who: &str) -> (Page, String) {
    let first = browser.get(&stack.url("/dossiers")).await;
    let to_op = browser
        .get(&stack.url(first.location.as_deref().expect("login redirect")))
        .await;
    let authorize = to_op.location.expect("authorize URL");
    (sign_in_as(browser, stack, &authorize, who).await, authorize)
}

#[tokio::test(flavor = "multi_thread")]
async fn login_key_rotation_and_logout_with_oidc_provider() {
    let secret = "a-secret-for-the-oidc-provider-client";
    let mut pair = Pair::start("oidc-provider", "proconnect", secret, &[], |op_port| {
        proconnect_section(op_port, secret)
    })
    .await;
    let stack = &pair.stack;

    let mut browser = Browser::new();
    let (back, authorize) = callback_for(&mut browser, stack, "hdupre").await;
    assert_eq!(back.status, 302, "callback: {}", back.body);
    // ProConnect asks for the level through the claims parameter.
    assert!(authorize.contains("claims="), "{authorize}");
    assert!(!authorize.contains("acr_values"), "{authorize}");
    assert_eq!(back.location.as_deref(), Some("/dossiers"));
    let page = browser.get(&stack.url("/dossiers")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(echoed(&page.body, "x-guichet-sub"), ["hdupre"]);
    assert_eq!(
        echoed(&page.body, "x-guichet-given-name"),
        ["H%C3%A9l%C3%A8ne Marie"]
    );
    assert_eq!(
        echoed(&page.body, "x-guichet-usual-name"),
        ["Dupr%C3%A9-Lef%C3%A8vre"]
    );
    assert_eq!(echoed(&page.body, "x-guichet-siret"), ["21920023500014"]);
    assert_eq!(echoed(&page.body, "x-guichet-provider"), ["op"]);
    assert_eq!(echoed(&page.body, "x-guichet-acr"), ["eidas1"]);

    // Key rotation: the provider restarts with a new signing key; a new login is accepted
    // (guichet refetches the JWKS for the unknown kid) and the existing session is untouched.
    pair.restart_op("proconnect", &[]).await;
    let stack = &pair.stack;
    let mut second = Browser::new();
    login(&mut second, stack).await;
    assert_eq!(second.get(&stack.url("/x")).await.status, 200);
    assert_eq!(browser.get(&stack.url("/x")).await.status, 200);
    let metrics = stack.metrics().await;
    assert!(
        metrics.contains(
            r#"guichet_provider_refreshes_total{document="jwks",provider="op",result="ok"} 1"#
        ),
        "the rotated key was fetched:\n{metrics}"
    );

    // Logout round trip: guichet, then the provider's end_session (with its confirmation
    // form), then back to /.guichet/logged-out with the state guichet sent.
    logout_round_trip(&mut second, stack, pair.op_port).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_level_the_provider_did_not_vouch_for_is_refused() {
    let secret = "a-secret-for-the-oidc-provider-client";
    // Asked for eidas2, the provider signs the visitor in at eidas1 (as FranceConnect may).
    let pair = Pair::start(
        "oidc-provider-acr",
        "proconnect",
        secret,
        &[("GRANTED_ACR", "eidas1")],
        |op_port| provider_section(op_port, secret, "[\"eidas2\"]"),
    )
    .await;
    let stack = &pair.stack;
    let mut browser = Browser::new();
    let back = {
        let first = browser.get(&stack.url("/dossiers")).await;
        let to_op = browser
            .get(&stack.url(first.location.as_deref().unwrap()))
            .await;
        let authorize = to_op.location.unwrap();
        assert!(authorize.contains("acr_values=eidas2"), "{authorize}");
        sign_in_at_op(&mut browser, stack, &authorize).await
    };
    assert_eq!(back.status, 403, "{}", back.body);
    assert!(back.body.contains("Niveau de sécurité insuffisant"));
    assert!(!browser.cookies.contains_key("guichet"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_route_steps_the_session_up_at_oidc_provider() {
    let secret = "a-secret-for-the-oidc-provider-client";
    // A ProConnect-like provider (the level asked through the claims parameter); an admin
    // route needs eidas2 while logins default to eidas1.
    let pair = Pair::start(
        "oidc-provider-step-up",
        "proconnect",
        secret,
        &[],
        |op_port| {
            format!(
                "{}\n[[route]]\nname = \"admin\"\npath = \"/admin/\"\nacr = [\"eidas2\"]\n",
                proconnect_section(op_port, secret)
            )
        },
    )
    .await;
    let stack = &pair.stack;
    let mut browser = Browser::new();
    let back = login(&mut browser, stack).await;
    let page = browser
        .get(&stack.url(back.location.as_deref().unwrap()))
        .await;
    assert_eq!(echoed(&page.body, "x-guichet-acr"), ["eidas1"]);

    let step = browser.get(&stack.url("/admin/dossiers?id=7")).await;
    assert_eq!(step.status, 302);
    let to_op = browser
        .get(&stack.url(step.location.as_deref().unwrap()))
        .await;
    let authorize = to_op.location.expect("authorize URL");
    assert!(authorize.contains("prompt=login"), "{authorize}");
    assert!(authorize.contains("eidas2"), "{authorize}");
    let back = sign_in_at_op(&mut browser, stack, &authorize).await;
    assert_eq!(back.status, 302, "{}", back.body);
    assert_eq!(back.location.as_deref(), Some("/admin/dossiers?id=7"));
    let admin = browser.get(&stack.url("/admin/dossiers?id=7")).await;
    assert_eq!(admin.status, 200, "{}", admin.body);
    assert_eq!(echoed(&admin.body, "x-guichet-acr"), ["eidas2"]);
}

/// Logs out through guichet and the provider's end_session (and its confirmation form), back to
/// `/.guichet/logged-out` with the state guichet sent; the session is gone.
async fn logout_round_trip(browser: &mut Browser, stack: &Stack, op_port: u16) {
    logout_round_trip_at(browser, stack, op_port, "/session/end").await
}

async fn logout_round_trip_at(browser: &mut Browser, stack: &Stack, op_port: u16, path: &str) {
    let out = browser.logout(&stack.url("/.guichet/logout")).await;
    let end_session = out.location.expect("end_session URL");
    assert!(
        end_session.starts_with(&format!("http://127.0.0.1:{op_port}{path}")),
        "{end_session}"
    );
    assert!(end_session.contains("id_token_hint="));
    let mut url = end_session;
    let mut page = browser.get(&url).await;
    for _ in 0..6 {
        match page.status {
            302 | 303 => {
                url = url::Url::parse(&url)
                    .unwrap()
                    .join(page.location.as_deref().unwrap())
                    .unwrap()
                    .to_string();
                if url.starts_with(&stack.gateway_url) {
                    break;
                }
                page = browser.get(&url).await;
            }
            200 => {
                page = browser
                    .submit_form(&url, &page.body.clone(), &[("logout", "yes")])
                    .await;
            }
            other => panic!("unexpected {other} during logout: {}", page.body),
        }
    }
    assert!(
        url.starts_with(&stack.url("/.guichet/logged-out?state=")),
        "{url}"
    );
    let done = browser.get(&url).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Vous êtes déconnecté"));
    assert_eq!(browser.get(&stack.url("/x")).await.status, 302);
}

/// A `franceconnect-v2` provider whose issuer is the local oidc-provider.
fn franceconnect_section(op_port: u16, secret: &str) -> String {
    format!(
        "[[provider]]\nid = \"fc\"\nkind = \"franceconnect-v2\"\nissuer = \"http://127.0.0.1:{op_port}\"\n\
         client_id = \"guichet\"\nclient_secret = \"{secret}\"\nhttp_timeout = \"5s\"\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn franceconnect_v2_pivot_identity_and_a_forged_userinfo_signature() {
    let secret = "a-secret-for-the-franceconnect-client";
    let mut pair = Pair::start(
        "oidc-provider-fc",
        "franceconnect",
        secret,
        &[],
        |op_port| franceconnect_section(op_port, secret),
    )
    .await;
    let stack = &pair.stack;

    // The provider refuses any authorize parameter outside FranceConnect's list (PKCE
    // included): the preset sends none, and asks for the level with acr_values.
    let mut browser = Browser::new();
    let (back, authorize) = callback_for(&mut browser, stack, "eloise").await;
    assert_eq!(back.status, 302, "callback: {}", back.body);
    assert!(!authorize.contains("code_challenge"), "{authorize}");
    assert!(authorize.contains("acr_values=eidas1"), "{authorize}");
    let page = browser.get(&stack.url("/dossiers")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        echoed(&page.body, "x-guichet-given-name"),
        ["%C3%89lo%C3%AFse Ana%C3%AFs"]
    );
    assert_eq!(
        echoed(&page.body, "x-guichet-family-name"),
        ["LEF%C3%88VRE"]
    );
    assert_eq!(echoed(&page.body, "x-guichet-birthdate"), ["1985-07-14"]);
    assert_eq!(echoed(&page.body, "x-guichet-birthcountry"), ["99217"]);
    assert_eq!(echoed(&page.body, "x-guichet-birthplace"), [""]);
    assert_eq!(echoed(&page.body, "x-guichet-acr"), ["eidas1"]);

    // The same provider, now answering userinfo with an altered signature: refused.
    pair.restart_op("franceconnect", &[("TAMPER_USERINFO", "1")])
        .await;
    let stack = &pair.stack;
    let mut second = Browser::new();
    let (back, _) = callback_for(&mut second, stack, "eloise").await;
    assert_eq!(back.status, 401, "{}", back.body);
    assert!(!second.cookies.contains_key("guichet"));
    let metrics = stack.metrics().await;
    assert!(
        metrics.contains(
            r#"guichet_logins_total{provider="fc",reason="token_invalid",result="failed"} 1"#
        ),
        "{metrics}"
    );
}

/// Writes an RSA (openssl) or P-256 (`guichet keygen`) private key and returns its path.
fn key_file(dir: &std::path::Path, name: &str, rsa: bool) -> PathBuf {
    let path = dir.join(name);
    if !rsa {
        return support::keygen(&path, "ES256");
    }
    let status = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&path)
        .stderr(Stdio::null())
        .status()
        .expect("openssl must be installed (scripts/setup-test-peers.sh)");
    assert!(status.success(), "cannot make {name}");
    path
}

/// FranceConnect+: id_token and userinfo encrypted (JWE) to guichet's key, fetched by the
/// provider from `/.guichet/provider-jwks.json`; `private_key_jwt` at the token endpoint; the
/// preset's eidas2 level. Each key management algorithm the federation offers is tried.
#[tokio::test(flavor = "multi_thread")]
async fn franceconnect_plus_encrypted_tokens_and_private_key_jwt() {
    let dir = support::scratch_dir("fcplus-keys");
    let rsa = key_file(&dir, "enc-rsa.pem", true);
    let ec = key_file(&dir, "enc-ec.pem", false);
    let sig = key_file(&dir, "sig-ec.pem", false);
    // The provider restarts with other encryption algorithms, but keeps its signing key.
    let op_key = dir.join("op-signing-key.json");
    let op_key = op_key.to_str().unwrap();
    let jwks_uri = "{gateway}/.guichet/provider-jwks.json";
    let env = |alg: &'static str| {
        [
            ("CLIENT_JWKS_URI", jwks_uri),
            ("ENC_ALG", alg),
            ("SIGNING_KEY_FILE", op_key),
        ]
    };
    let mut pair = Pair::start(
        "oidc-provider-fcplus",
        "franceconnect-plus",
        "unused",
        &env("RSA-OAEP-256"),
        |op_port| {
            format!(
                "[[provider]]\nid = \"fcplus\"\nkind = \"franceconnect-plus\"\n\
                 issuer = \"http://127.0.0.1:{op_port}\"\nclient_id = \"guichet\"\n\
                 token_auth_method = \"private_key_jwt\"\n\
                 encryption_keys = [{rsa:?}, {ec:?}]\nsigning_keys = [{sig:?}]\nhttp_timeout = \"5s\"\n"
            )
        },
    )
    .await;

    // What the federation fetches: two encryption keys and one signing key, public halves only.
    let url = pair.stack.url("/.guichet/provider-jwks.json");
    let jwks: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    let uses: Vec<&str> = keys.iter().map(|k| k["use"].as_str().unwrap()).collect();
    assert_eq!(uses, ["enc", "enc", "sig"]);
    assert!(keys.iter().all(|k| k.get("d").is_none()));

    for alg in ["RSA-OAEP-256", "ECDH-ES", "RSA-OAEP"] {
        if alg != "RSA-OAEP-256" {
            pair.restart_op("franceconnect-plus", &env(alg)).await;
        }
        let stack = &pair.stack;
        let mut browser = Browser::new();
        let (back, authorize) = callback_for(&mut browser, stack, "eloise").await;
        assert_eq!(
            back.status,
            302,
            "{alg}: {}\n{}",
            back.body,
            stack.gateway.log_text()
        );
        assert!(authorize.contains("acr_values=eidas2"), "{authorize}");
        let page = browser.get(&stack.url("/dossiers")).await;
        assert_eq!(page.status, 200, "{alg}: {}", page.body);
        assert_eq!(echoed(&page.body, "x-guichet-sub"), ["eloise"], "{alg}");
        assert_eq!(echoed(&page.body, "x-guichet-acr"), ["eidas2"], "{alg}");
        assert_eq!(
            echoed(&page.body, "x-guichet-birthcountry"),
            ["99217"],
            "{alg}"
        );
        if alg == "ECDH-ES" {
            // The id_token_hint guichet sends back is the provider's own signed id_token.
            logout_round_trip(&mut browser, stack, pair.op_port).await;
        }
    }

    // FranceConnect+ signing the visitor in at a lower level than asked: refused.
    let mut downgraded = env("ECDH-ES").to_vec();
    downgraded.push(("GRANTED_ACR", "eidas1"));
    pair.restart_op("franceconnect-plus", &downgraded).await;
    let mut browser = Browser::new();
    let (back, _) = callback_for(&mut browser, &pair.stack, "eloise").await;
    assert_eq!(back.status, 403, "{}", back.body);
    assert!(back.body.contains("Niveau de sécurité insuffisant"));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn franceconnect_v1_and_a_generic_oidc_provider() {
    // FranceConnect v1: no discovery (the preset's /api/v1/ endpoints), id_token HS256 with
    // the client secret, JSON userinfo.
    let secret = "a-long-secret-for-the-franceconnect-v1-client-hs256";
    let pair = Pair::start(
        "oidc-provider-fcv1",
        "franceconnect-v1",
        secret,
        &[],
        |op_port| {
            franceconnect_section(op_port, secret).replace("franceconnect-v2", "franceconnect-v1")
        },
    )
    .await;
    let (stack, op_port) = (&pair.stack, pair.op_port);
    let mut browser = Browser::new();
    let (back, authorize) = callback_for(&mut browser, stack, "eloise").await;
    assert_eq!(
        back.status,
        302,
        "{}\n{}",
        back.body,
        stack.gateway.log_text()
    );
    assert!(
        authorize.starts_with(&format!("http://127.0.0.1:{op_port}/api/v1/authorize?")),
        "{authorize}"
    );
    let page = browser.get(&stack.url("/dossiers")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        echoed(&page.body, "x-guichet-family-name"),
        ["LEF%C3%88VRE"]
    );
    assert_eq!(echoed(&page.body, "x-guichet-acr"), ["eidas1"]);
    logout_round_trip_at(&mut browser, stack, op_port, "/api/v1/logout").await;

    // kind = "oidc": only the issuer and the client; userinfo JSON or JWT.
    let secret = "a-secret-for-the-oidc-provider-client";
    let pair = Pair::start("oidc-provider-generic", "proconnect", secret, &[], |op_port| {
        format!(
            "[[provider]]\nid = \"op\"\nissuer = \"http://127.0.0.1:{op_port}\"\n\
             client_id = \"guichet\"\nclient_secret = \"{secret}\"\nscopes = [\"openid\", \"email\"]\n"
        )
    })
    .await;
    let stack = &pair.stack;
    let mut browser = Browser::new();
    let (back, authorize) = callback_for(&mut browser, stack, "hdupre").await;
    assert_eq!(back.status, 302, "{}", back.body);
    assert!(
        authorize.contains("code_challenge="),
        "PKCE by default: {authorize}"
    );
    let page = browser.get(&stack.url("/x")).await;
    assert_eq!(echoed(&page.body, "x-guichet-sub"), ["hdupre"]);
    assert_eq!(
        echoed(&page.body, "x-guichet-email"),
        ["helene.dupre-lefevre@interieur.gouv.fr"]
    );
}
