//! Against a real, third-party OpenID provider: panva's `oidc-provider` (npm), configured like
//! ProConnect in `tests/oidc-provider/server.mjs` (ES256 id_token and signed userinfo, the
//! ProConnect scopes and claims, RP-initiated logout). `scripts/test.sh` installs it with
//! `npm ci`; a missing Node or package fails the test loudly.

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

/// Starts oidc-provider on `port` for a gateway on `gateway_port`; waits for its discovery.
async fn start_op(port: u16, gateway_port: u16, secret: &str) -> Node {
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
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
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
                    .submit_form(
                        &url,
                        &page.body.clone(),
                        &[("login", "hdupre"), ("password", "x")],
                    )
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
    let first = browser.get(&stack.url("/dossiers")).await;
    let to_op = browser
        .get(&stack.url(first.location.as_deref().expect("login redirect")))
        .await;
    let authorize = to_op.location.expect("authorize URL");
    let back = sign_in_at_op(browser, stack, &authorize).await;
    assert_eq!(back.status, 302, "callback: {}", back.body);
    back
}

#[tokio::test(flavor = "multi_thread")]
async fn login_key_rotation_and_logout_with_oidc_provider() {
    let gateway_port = free_port();
    let op_port = free_port();
    let secret = "a-secret-for-the-oidc-provider-client";
    let mut op = start_op(op_port, gateway_port, secret).await;
    let stack = Stack::start(
        "oidc-provider",
        GatewayOptions {
            gateway_port: Some(gateway_port),
            provider_section: Some(provider_section(op_port, secret, "[]")),
            ..GatewayOptions::default()
        },
    )
    .await;

    let mut browser = Browser::new();
    let back = login(&mut browser, &stack).await;
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

    // Key rotation: the provider restarts with a new signing key; a new login is accepted
    // (guichet refetches the JWKS for the unknown kid) and the existing session is untouched.
    drop(op);
    op = start_op(op_port, gateway_port, secret).await;
    let mut second = Browser::new();
    login(&mut second, &stack).await;
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
    let out = second.get(&stack.url("/.guichet/logout")).await;
    let end_session = out.location.expect("end_session URL");
    assert!(end_session.starts_with(&format!("http://127.0.0.1:{op_port}/session/end")));
    assert!(end_session.contains("id_token_hint="));
    let mut url = end_session;
    let mut page = second.get(&url).await;
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
                page = second.get(&url).await;
            }
            200 => {
                page = second
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
    let done = second.get(&url).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Vous êtes déconnecté"));
    assert_eq!(second.get(&stack.url("/x")).await.status, 302);
    drop(op);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_level_the_provider_did_not_vouch_for_is_refused() {
    let gateway_port = free_port();
    let op_port = free_port();
    let secret = "a-secret-for-the-oidc-provider-client";
    let _op = start_op(op_port, gateway_port, secret).await;
    let stack = Stack::start(
        "oidc-provider-acr",
        GatewayOptions {
            gateway_port: Some(gateway_port),
            provider_section: Some(provider_section(op_port, secret, "[\"eidas2\"]")),
            ..GatewayOptions::default()
        },
    )
    .await;
    let mut browser = Browser::new();
    let back = {
        let first = browser.get(&stack.url("/dossiers")).await;
        let to_op = browser
            .get(&stack.url(first.location.as_deref().unwrap()))
            .await;
        let authorize = to_op.location.unwrap();
        assert!(authorize.contains("acr_values=eidas2"), "{authorize}");
        sign_in_at_op(&mut browser, &stack, &authorize).await
    };
    assert_eq!(back.status, 403, "{}", back.body);
    assert!(back.body.contains("Niveau de sécurité insuffisant"));
    assert!(!browser.cookies.contains_key("guichet"));
}
