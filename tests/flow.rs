//! End-to-end: the real gateway binary, the mock provider binary and a test upstream on loopback.

mod support;

use std::time::Duration;

use sha2::{Digest, Sha256};
use support::{
    assert_websocket_echoes, echoed, free_port, peak_rss_kib, websocket_upgrade, Browser,
    GatewayOptions, Stack,
};

/// The correlation id printed on an error page.
fn correlation_id(body: &str) -> String {
    let start = body.find("Reference").expect("reference on the page");
    let start = start + body[start..].find("<code>").expect("the id") + "<code>".len();
    let end = start + body[start..].find("</code>").expect("the id's end");
    body[start..end].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn login_delivers_the_verified_identity_to_the_app() {
    let stack = Stack::start("identity", GatewayOptions::default()).await;
    let mut browser = Browser::new();
    let page = browser.login(&stack, "/dossiers?id=42").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.starts_with("GET /dossiers?id=42 "),
        "{}",
        page.body
    );
    let one = |name: &str| {
        let values = echoed(&page.body, name);
        assert_eq!(values.len(), 1, "{name}: {values:?}\n{}", page.body);
        values[0].to_string()
    };
    assert_eq!(one("x-guichet-sub"), "7f6c1e54-3b8a-4d8e-9a0f-2c1d5e6f7a80");
    assert_eq!(one("x-guichet-provider"), "agentconnect");
    assert_eq!(one("x-guichet-acr"), "eidas1");
    assert_eq!(one("x-guichet-given-name"), "H%C3%A9l%C3%A8ne Marie");
    assert_eq!(one("x-guichet-usual-name"), "Dupr%C3%A9-Lef%C3%A8vre");
    assert_eq!(
        one("x-guichet-email"),
        "helene.dupre-lefevre@interieur.gouv.fr"
    );
    assert_eq!(one("x-guichet-uid"), "hdupre");
    assert_eq!(one("x-guichet-siret"), "21920023500014");
    assert_eq!(one("x-forwarded-for"), "127.0.0.1");
    assert_eq!(one("x-forwarded-proto"), "http");
    assert_eq!(
        one("x-forwarded-host"),
        stack.gateway_url.trim_start_matches("http://")
    );
    // guichet's own cookies (the session, the logout hint) stay with guichet; the
    // application's own pass.
    assert!(browser.cookies.contains_key("guichet-logout"));
    assert!(echoed(&page.body, "cookie").is_empty(), "{}", page.body);
    browser.cookies.insert("app_pref".into(), "dark".into());
    let with_app_cookie = browser.get(&stack.url("/prefs")).await;
    assert_eq!(echoed(&with_app_cookie.body, "cookie"), ["app_pref=dark"]);
    browser.cookies.remove("app_pref");

    // The session serves further requests without the provider.
    let again = browser.get(&stack.url("/other")).await;
    assert_eq!(again.status, 200);
    assert_eq!(echoed(&again.body, "x-guichet-uid"), ["hdupre"]);

    // Metrics saw the login.
    let metrics = stack.metrics().await;
    assert!(
        metrics.contains(
            r#"guichet_logins_total{provider="agentconnect",reason="",result="completed"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("guichet_sessions_active 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_identity_headers_never_reach_the_app() {
    let stack = Stack::start("spoof", GatewayOptions::default()).await;
    let mut browser = Browser::new();

    // Without a session nothing is proxied at all.
    let anonymous = browser
        .get_with(&stack.url("/x"), &[("x-guichet-sub", "evil")])
        .await;
    assert_eq!(anonymous.status, 302);
    assert!(anonymous.headers.get("x-upstream").is_none());

    browser.login(&stack, "/").await;
    let spoofed = browser
        .get_with(
            &stack.url("/x"),
            &[
                ("X-Guichet-Sub", "evil"),
                ("x_guichet_email", "evil@example.org"),
                ("X-GUICHET-ROLE", "admin"),
                ("x-guichet_uid", "root"),
                ("X-Guichet", "evil"),
            ],
        )
        .await;
    assert_eq!(spoofed.status, 200);
    let body = spoofed.body.to_ascii_lowercase();
    assert!(!body.contains("evil"), "{body}");
    assert!(!body.contains("admin"), "{body}");
    assert!(!body.contains("root"), "{body}");
    assert!(!body.contains("x_guichet"), "{body}");
    assert_eq!(
        echoed(&spoofed.body, "x-guichet-sub"),
        ["7f6c1e54-3b8a-4d8e-9a0f-2c1d5e6f7a80"]
    );
    assert_eq!(
        echoed(&spoofed.body, "x-guichet-email"),
        ["helene.dupre-lefevre@interieur.gouv.fr"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_cookies_mean_login_and_api_calls_get_401() {
    let stack = Stack::start("cookies", GatewayOptions::default()).await;
    let mut browser = Browser::new();
    browser.login(&stack, "/").await;
    let good = browser.cookies["guichet"].clone();

    let mut tampered = good.clone().into_bytes();
    tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let unknown = "A".repeat(43);
    for value in [tampered.as_str(), unknown.as_str(), "garbage", "", "%00%01"] {
        let mut other = Browser::new();
        other.cookies.insert("guichet".into(), value.to_string());
        let page = other.get(&stack.url("/private")).await;
        assert_eq!(page.status, 302, "cookie {value:?}");
        assert_eq!(
            page.location.as_deref(),
            Some("/.guichet/login?rd=%2Fprivate")
        );
    }
    // The good one still works.
    assert_eq!(browser.get(&stack.url("/private")).await.status, 200);

    // API calls without a session get 401, not a redirect.
    let api = reqwest::Client::new()
        .get(stack.url("/api/items"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);
    let post = reqwest::Client::new()
        .post(stack.url("/api/items"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_sessions_expire() {
    let stack = Stack::start(
        "idle",
        GatewayOptions {
            idle_timeout: "1s",
            max_lifetime: "1h",
            ..GatewayOptions::default()
        },
    )
    .await;
    let mut browser = Browser::new();
    assert_eq!(browser.login(&stack, "/").await.status, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        browser.get(&stack.url("/")).await.status,
        200,
        "used within the idle time"
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let expired = browser.get(&stack.url("/")).await;
    assert_eq!(expired.status, 302, "idle session must be gone");
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_end_at_max_lifetime_even_when_active() {
    let stack = Stack::start(
        "lifetime",
        GatewayOptions {
            idle_timeout: "2s",
            max_lifetime: "3s",
            ..GatewayOptions::default()
        },
    )
    .await;
    let mut browser = Browser::new();
    assert_eq!(browser.login(&stack, "/").await.status, 200);
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(browser.get(&stack.url("/")).await.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(browser.get(&stack.url("/")).await.status, 302);
}

#[tokio::test(flavor = "multi_thread")]
async fn state_is_bound_to_its_browser_and_single_use() {
    let stack = Stack::start("state", GatewayOptions::default()).await;
    let mut alice = Browser::new();
    let confirm = alice.start_login(&stack, "/a", 1).await;
    let back = alice.get(&confirm).await;
    let callback = back.location.expect("callback");

    // Another browser replaying Alice's callback URL gets no session (it has no login cookie
    // for that state): it is sent through a login of its own, once...
    let mut mallory = Browser::new();
    let restarted = mallory.get(&callback).await;
    assert_eq!(restarted.status, 302, "{}", restarted.body);
    assert_eq!(
        restarted.location.as_deref(),
        Some("/.guichet/login?rd=%2F")
    );
    assert!(!mallory.cookies.contains_key("guichet"));
    // ...and gets the error page the second time.
    let stolen = mallory.get(&callback).await;
    assert_eq!(stolen.status, 400, "{}", stolen.body);
    assert!(stolen.body.contains("autre navigateur"), "{}", stolen.body);
    let id = correlation_id(&stolen.body);
    assert!(
        stack.gateway.log_text().contains(&id),
        "correlation id in the log"
    );
    assert!(!mallory.cookies.contains_key("guichet"));

    // ...and Alice's own login still completes.
    let mut copy = Browser::new();
    copy.cookies = alice.cookies.clone();
    let done = alice.get(&callback).await;
    assert_eq!(done.status, 302, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/a"));
    assert!(alice.cookies.contains_key("guichet"));

    // Replaying it (the back button) creates nothing: the callback deleted the login cookie,
    // and Alice, signed in, goes back to the application with the same session...
    let session = alice.cookies["guichet"].clone();
    let replay = alice.get(&callback).await;
    assert_eq!(replay.status, 302, "{}", replay.body);
    assert_eq!(replay.location.as_deref(), Some("/"));
    assert_eq!(alice.cookies["guichet"], session);
    // ...and a copy of the cookie taken before is refused too: the state was used.
    let replay = copy.get(&callback).await;
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert!(
        stack
            .gateway
            .log_text()
            .contains("login state already used"),
        "{}",
        stack.gateway.log_text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logins_in_several_tabs_all_complete() {
    let stack = Stack::start("tabs", GatewayOptions::default()).await;
    let mut browser = Browser::new();
    let first = browser.start_login(&stack, "/one", 0).await;
    let second = browser.start_login(&stack, "/two", 2).await;
    // Finish them in the reverse order.
    let done_two = browser.confirm(&second).await;
    assert_eq!(done_two.status, 302, "{}", done_two.body);
    assert_eq!(done_two.location.as_deref(), Some("/two"));
    let done_one = browser.confirm(&first).await;
    assert_eq!(done_one.status, 302, "{}", done_one.body);
    assert_eq!(done_one.location.as_deref(), Some("/one"));
    let page = browser.get(&stack.url("/one")).await;
    assert_eq!(echoed(&page.body, "x-guichet-uid"), ["hdupre"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_error_shows_a_page() {
    let stack = Stack::start("provider-error", GatewayOptions::default()).await;
    let mut browser = Browser::new();
    let confirm = browser.start_login(&stack, "/", 0).await;
    let cancel = confirm.replace("&agent=0", "&cancel=1");
    let page = browser.confirm(&cancel).await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("Connexion annulée"), "{}", page.body);
    assert!(page.body.contains("access_denied"), "{}", page.body);
    assert!(page.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let id = correlation_id(&page.body);
    let log = stack.gateway.log_text();
    assert!(log.contains(&id), "correlation id {id} in the log:\n{log}");
    assert!(!browser.cookies.contains_key("guichet"));
}

#[tokio::test(flavor = "multi_thread")]
async fn return_to_is_always_on_this_site() {
    let stack = Stack::start("redirect", GatewayOptions::default()).await;
    for (rd, expected) in [
        ("%2F%2Fevil.example", "/"),
        ("%2F%5Cevil.example", "/"),
        ("https%3A%2F%2Fevil.example%2F", "/"),
        ("%2Fok%3Fa%3D1", "/ok?a=1"),
    ] {
        let mut browser = Browser::new();
        let to_provider = browser
            .get(&stack.url(&format!("/.guichet/login?rd={rd}")))
            .await;
        assert_eq!(to_provider.status, 302);
        let page = browser.get(&to_provider.location.unwrap()).await;
        let confirm = support::confirm_link(&page.body, 0, &stack);
        let done = browser.confirm(&confirm).await;
        assert_eq!(done.location.as_deref(), Some(expected), "rd={rd}");
    }
}

/// Signs `browser` out from guichet's origin: guichet's cookies are cleared and the browser goes
/// to the provider's end-session endpoint with the id_token hint, which the provider verifies
/// before sending it back to the signed-out page with a state: that page's URL.
async fn logout_at_the_provider(browser: &mut Browser, stack: &Stack) -> String {
    let out = browser.logout(&stack.url("/.guichet/logout")).await;
    assert_eq!(out.status, 302);
    let end_session = out.location.unwrap();
    assert!(
        end_session.starts_with(&stack.provider_url("/api/v2/session/end?")),
        "{end_session}"
    );
    assert!(end_session.contains("id_token_hint=ey"), "{end_session}");
    assert!(
        end_session.contains("post_logout_redirect_uri="),
        "{end_session}"
    );
    assert!(!browser.cookies.contains_key("guichet"), "cookie cleared");
    assert!(
        !browser.cookies.contains_key("guichet-logout"),
        "hint cleared"
    );
    let back = browser.get(&end_session).await;
    assert_eq!(back.status, 302, "{}", back.body);
    let logged_out = back.location.unwrap();
    assert!(logged_out.starts_with(&stack.url("/.guichet/logged-out?state=")));
    logged_out
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_ends_the_session_at_the_provider_too() {
    let stack = Stack::start("logout", GatewayOptions::default()).await;
    let mut browser = Browser::new();
    browser.login(&stack, "/").await;
    let old_cookie = browser.cookies["guichet"].clone();

    let logged_out = logout_at_the_provider(&mut browser, &stack).await;
    let page = browser.get(&logged_out).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Vous êtes déconnecté"));
    // The state is single-use and must be one guichet sent.
    let replayed = browser.get(&logged_out).await;
    assert_eq!(replayed.status, 400, "{}", replayed.body);
    let forged = browser
        .get(&stack.url("/.guichet/logged-out?state=forged"))
        .await;
    assert_eq!(forged.status, 400);
    assert!(forged.body.contains("Retour de déconnexion inattendu"));

    // The old cookie is dead even if replayed.
    browser.cookies.insert("guichet".into(), old_cookie);
    assert_eq!(browser.get(&stack.url("/")).await.status, 302);
}

/// The browser keeps the id_token for the logout (sealed, bound to its session). A hint that is
/// missing or another session's ends the session here only, with a log line; with
/// `forward_id_token` the session keeps the token and no hint cookie is set.
#[tokio::test(flavor = "multi_thread")]
async fn the_logout_hint_is_kept_by_the_browser_for_its_own_session() {
    let stack = Stack::start("logout-hint", GatewayOptions::default()).await;
    let (mut alice, mut bob, mut carol) = (Browser::new(), Browser::new(), Browser::new());
    for browser in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(browser.login(&stack, "/").await.status, 200);
        // Sealed: not the token's text (whose header starts `eyJhbGciOi`).
        let hint = &browser.cookies["guichet-logout"];
        assert!(hint.len() > 500 && !hint.contains("eyJhbGciOi"), "{hint}");
    }
    let ends_here_only = |out: &support::Page, browser: &Browser| {
        assert_eq!(out.status, 302);
        assert_eq!(out.location.as_deref(), Some("/.guichet/logged-out"));
        assert!(!browser.cookies.contains_key("guichet"));
        assert!(!browser.cookies.contains_key("guichet-logout"));
    };

    // Another session's hint does not open for Alice's: her session ends, here only.
    let bobs = bob.cookies["guichet-logout"].clone();
    alice.cookies.insert("guichet-logout".into(), bobs);
    let out = alice.logout(&stack.url("/.guichet/logout")).await;
    ends_here_only(&out, &alice);
    // Bob's hint was deleted: the same.
    bob.cookies.remove("guichet-logout");
    let out = bob.logout(&stack.url("/.guichet/logout")).await;
    ends_here_only(&out, &bob);
    for browser in [&mut alice, &mut bob] {
        assert_eq!(browser.get(&stack.url("/")).await.status, 302, "signed out");
    }
    let log = stack.gateway.log_text();
    assert_eq!(
        log.matches("logout without the id_token hint").count(),
        2,
        "{log}"
    );
    // Carol's own hint goes to the provider, which verifies it.
    let out = carol.logout(&stack.url("/.guichet/logout")).await;
    let end_session = out.location.unwrap();
    assert!(end_session.contains("id_token_hint=ey"), "{end_session}");
    assert!(!carol.cookies.contains_key("guichet-logout"));
    assert_eq!(carol.get(&end_session).await.status, 302);

    // The id_token forwarded to the application stays in the session: no hint cookie.
    let forwarded = Stack::start_with_extra(
        "logout-hint-forwarded",
        "[headers]\nforward_id_token = true\n".into(),
    )
    .await;
    let mut dave = Browser::new();
    let page = dave.login(&forwarded, "/").await;
    assert_eq!(page.status, 200);
    assert!(!dave.cookies.contains_key("guichet-logout"));
    let token = echoed(&page.body, "x-guichet-id-token");
    assert_eq!(token.len(), 1, "{}", page.body);
    let out = dave.logout(&forwarded.url("/.guichet/logout")).await;
    let end_session = out.location.unwrap();
    let hint = url::Url::parse(&end_session)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "id_token_hint")
        .map(|(_, v)| v.into_owned());
    assert_eq!(hint.as_deref(), Some(token[0]));
}

/// A session that ended by itself (here idle) leaves the visitor signed in at the provider; the
/// logout still ends the provider's session with the hint the browser kept for that session. A
/// hint sealed for another session still opens nothing.
#[tokio::test(flavor = "multi_thread")]
async fn logout_after_an_idle_timeout_still_ends_the_provider_session() {
    let stack = Stack::start(
        "logout-after-idle",
        GatewayOptions {
            idle_timeout: "1s",
            max_lifetime: "1h",
            ..GatewayOptions::default()
        },
    )
    .await;
    let (mut alice, mut bob) = (Browser::new(), Browser::new());
    for browser in [&mut alice, &mut bob] {
        assert_eq!(browser.login(&stack, "/").await.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(2000)).await;
    // Both sessions are gone: the application is behind a login again (the visitor's tab
    // still shows its page, with its sign-out link).
    assert_eq!(alice.get(&stack.url("/")).await.status, 302);

    // Bob's hint does not open for Alice's ended session: nothing ends at the provider.
    let alices = alice.cookies["guichet-logout"].clone();
    alice.cookies.insert(
        "guichet-logout".into(),
        bob.cookies["guichet-logout"].clone(),
    );
    let out = alice.logout(&stack.url("/.guichet/logout")).await;
    assert_eq!(out.location.as_deref(), Some("/.guichet/logged-out"));
    assert!(!alice.cookies.contains_key("guichet-logout"));

    // Bob's own hint: the provider's session is ended, and the provider accepts the hint.
    let logged_out = logout_at_the_provider(&mut bob, &stack).await;
    assert_eq!(bob.get(&logged_out).await.status, 200);
    let log = stack.gateway.log_text();
    assert_eq!(
        log.matches("logout after the session ended by itself")
            .count(),
        1,
        "{log}"
    );

    // Alice's own hint without her session cookie opens nothing either (it is bound to it).
    let mut stranger = Browser::new();
    stranger.cookies.insert("guichet-logout".into(), alices);
    let out = stranger.logout(&stack.url("/.guichet/logout")).await;
    assert_eq!(out.location.as_deref(), Some("/.guichet/logged-out"));
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_outage_spares_existing_sessions() {
    let mut stack = Stack::start("outage", GatewayOptions::default()).await;
    let mut signed_in = Browser::new();
    signed_in.login(&stack, "/").await;

    // A login half-way through when the provider goes down.
    let mut late = Browser::new();
    let confirm = late.start_login(&stack, "/", 0).await;
    let back = late.get(&confirm).await;
    stack.provider.as_mut().unwrap().kill();
    let failed = late.get(&back.location.unwrap()).await;
    assert_eq!(failed.status, 502, "{}", failed.body);
    assert!(failed.body.contains("injoignable"), "{}", failed.body);

    // The signed-in visitor carries on.
    let page = signed_in.get(&stack.url("/still-here")).await;
    assert_eq!(page.status, 200);
    assert_eq!(echoed(&page.body, "x-guichet-uid"), ["hdupre"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_down_at_start_means_503_until_it_comes_up() {
    let mut stack = Stack::start(
        "down-at-start",
        GatewayOptions {
            start_provider: false,
            ..GatewayOptions::default()
        },
    )
    .await;
    support::wait_for_status(
        &stack.url("/.guichet/healthz"),
        200,
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    let ready = reqwest::get(stack.url("/.guichet/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    let mut browser = Browser::new();
    let login = browser.get(&stack.url("/.guichet/login?rd=/")).await;
    assert_eq!(login.status, 503, "{}", login.body);
    assert!(login.body.contains("indisponible"), "{}", login.body);

    stack.start_provider();
    stack.wait_ready().await;
    assert_eq!(browser.login(&stack, "/").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_down_gives_a_502_page() {
    let dead = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let stack = Stack::start(
        "upstream-down",
        GatewayOptions {
            upstream: Some(dead),
            ..GatewayOptions::default()
        },
    )
    .await;
    let mut browser = Browser::new();
    let page = browser.login(&stack, "/").await;
    assert_eq!(page.status, 502, "{}", page.body);
    assert!(
        page.body.contains("Application injoignable"),
        "{}",
        page.body
    );
    let id = correlation_id(&page.body);
    assert!(stack.gateway.log_text().contains(&id));
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_mebibytes_round_trip_without_being_buffered() {
    let stack = Stack::start("large", GatewayOptions::default()).await;
    let mut browser = Browser::new();
    browser.login(&stack, "/").await;
    let before = peak_rss_kib(stack.gateway.pid());

    let size = 50 * 1024 * 1024;
    let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let expected = Sha256::digest(&payload);
    let response = browser
        .client
        .post(stack.url("/echo"))
        .header("cookie", browser.cookie_header())
        .header("content-type", "application/octet-stream")
        .body(payload)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.unwrap();
    assert_eq!(body.len(), size);
    assert_eq!(Sha256::digest(&body), expected);

    let after = peak_rss_kib(stack.gateway.pid());
    eprintln!("gateway peak RSS: {before} KiB before, {after} KiB after the 50 MiB round trip");
    assert!(before > 0 && after > 0);
    assert!(
        after - before < 25 * 1024,
        "gateway peak memory grew by {} KiB for a 50 MiB body",
        after - before
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn websockets_are_proxied() {
    let stack = Stack::start("websocket", GatewayOptions::default()).await;
    let mut browser = Browser::new();
    browser.login(&stack, "/").await;
    let address = stack.gateway_url.trim_start_matches("http://").to_string();
    assert_websocket_echoes(&address, &browser.cookie_header()).await;

    // Without a session the upgrade is refused.
    let (_, head) = websocket_upgrade(&address, None).await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
}

#[tokio::test(flavor = "multi_thread")]
async fn http2_without_tls_is_proxied() {
    let stack = Stack::start("h2c", GatewayOptions::default()).await;
    let mut browser = Browser::new();
    browser.login(&stack, "/").await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = client
        .get(stack.url("/over-h2"))
        .header("cookie", browser.cookie_header())
        .header("x-guichet-sub", "evil")
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.starts_with("GET /over-h2 "), "{body}");
    assert_eq!(
        echoed(&body, "x-guichet-sub"),
        ["7f6c1e54-3b8a-4d8e-9a0f-2c1d5e6f7a80"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_are_json_without_secrets_and_metrics_count_the_login() {
    let stack =
        Stack::start_with_extra("observability", "\n[log]\nformat = \"json\"\n".into()).await;
    let mut browser = Browser::new();
    let page = browser
        .login(&stack, "/dossiers?nir=1850575123456&vue=1")
        .await;
    assert_eq!(page.status, 200);
    let cookie = browser.cookies["guichet"].clone();

    // A valid client request id is kept and passed upstream; an invalid one is replaced.
    let kept = browser
        .get_with(&stack.url("/traced"), &[("x-request-id", "trace-42.a")])
        .await;
    assert_eq!(echoed(&kept.body, "x-request-id"), ["trace-42.a"]);
    let replaced = browser
        .get_with(&stack.url("/traced"), &[("x-request-id", "<bad id>")])
        .await;
    let generated = echoed(&replaced.body, "x-request-id");
    assert_eq!(generated.len(), 1);
    assert_ne!(generated[0], "<bad id>");

    // The id_token, seen in the logout redirect, must never be logged.
    let out = browser.logout(&stack.url("/.guichet/logout")).await;
    let end_session = out.location.unwrap();
    let id_token = url::Url::parse(&end_session)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "id_token_hint")
        .unwrap()
        .1
        .into_owned();

    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = stack.gateway.log_text();
    for secret in [cookie.as_str(), id_token.as_str(), stack.secret.as_str()] {
        assert!(!log.contains(secret), "a secret is in the log:\n{log}");
    }
    assert!(
        !log.contains("7f6c1e54-3b8a-4d8e-9a0f-2c1d5e6f7a80"),
        "raw sub in the log"
    );
    assert!(
        !log.contains("1850575123456"),
        "a query value is in the log"
    );
    let access: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "access")
        .collect();
    let dossier = access
        .iter()
        .find(|v| v["path"] == "/dossiers?nir=&vue=" && v["outcome"] == "proxied")
        .unwrap_or_else(|| panic!("no access line for /dossiers:\n{log}"));
    assert_eq!(dossier["status"], 200);
    assert_eq!(dossier["outcome"], "proxied");
    assert_eq!(dossier["provider"], "agentconnect");
    assert_eq!(dossier["sub_hash"].as_str().unwrap().len(), 16);
    assert!(dossier["upstream_ms"].as_f64().is_some());
    assert!(access
        .iter()
        .any(|v| v["correlation_id"] == "trace-42.a" && v["path"] == "/traced"));
    // Every line is JSON.
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not JSON: {line}"
        );
    }

    let metrics = stack.metrics().await;
    for expected in [
        "guichet_sessions_created_total 1",
        r#"guichet_sessions_ended_total{reason="logout"} 1"#,
        r#"guichet_session_lookups_total{result="hit"} 3"#,
        r#"guichet_provider_request_duration_seconds_count{endpoint="token",provider="agentconnect",result="ok"} 1"#,
        r#"guichet_provider_request_duration_seconds_count{endpoint="userinfo",provider="agentconnect",result="ok"} 1"#,
        r#"guichet_provider_refreshes_total{document="discovery",provider="agentconnect",result="ok"}"#,
        r#"guichet_callback_duration_seconds_count{provider="agentconnect"} 1"#,
        r#"guichet_requests_total{outcome="proxied",status_class="2xx"} 3"#,
        "guichet_upstream_response_seconds_count 3",
        "guichet_build_info{",
        "guichet_process_resident_memory_bytes",
        "guichet_sessions_active 0",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} missing in:\n{metrics}"
        );
    }
    // Label values stay bounded: no paths, no user data.
    assert!(!metrics.contains("dossiers"));
    assert!(!metrics.contains("hdupre"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_requests_in_flight_finish_then_exits_zero() {
    let mut stack = Stack::start("drain", GatewayOptions::default()).await;
    let mut browser = Browser::new();
    browser.login(&stack, "/").await;
    let request = browser
        .client
        .get(stack.url("/slow"))
        .header("cookie", browser.cookie_header())
        .send();
    let in_flight = tokio::spawn(request);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stack.gateway.signal("TERM");
    // New connections are refused at once while the request in flight goes on.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let address = stack.gateway_url.trim_start_matches("http://").to_string();
    assert!(tokio::net::TcpStream::connect(&address).await.is_err());

    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "slow done");

    // grace_period 3 s + shutdown_timeout 2 s in the test configuration.
    let exit = stack.gateway.wait_exit(Duration::from_secs(15)).await;
    assert!(exit.success(), "exit status {exit:?}");
}

/// SIGINT stops the gateway at once, every time. Through pingora's own fast stop, an accept
/// loop whose listening socket was registered with a worker runtime stopped before the loop's
/// own could fail at once, forever: a thread at 100 %, the log growing by over a hundred
/// megabytes a second, a process that never exited — about one stop in ten, more with more
/// threads. Eight threads, forty stops, each with connections open.
#[tokio::test(flavor = "multi_thread")]
async fn sigint_stops_at_once_every_time() {
    let mut stack = Stack::start("sigint", GatewayOptions::default()).await;
    stack.gateway.kill();
    let config = std::fs::read_to_string(&stack.config_path)
        .unwrap()
        .replace("threads = 2", "threads = 8");
    assert!(config.contains("threads = 8"));
    let config_path = stack.dir.join("sigint.toml");
    std::fs::write(&config_path, config).unwrap();
    let client = reqwest::Client::new();
    for round in 0..40 {
        stack.gateway = support::Process::spawn(
            &["run", "--config", config_path.to_str().unwrap()],
            stack.dir.join(format!("sigint-{round}.log")),
        );
        stack.wait_ready().await;
        // Keep-alive connections open on several worker threads.
        for _ in 0..8 {
            let _ = client.get(stack.url("/")).send().await;
        }
        stack.gateway.signal("INT");
        let started = std::time::Instant::now();
        let exit = loop {
            if let Some(exit) = stack.gateway.child.try_wait().unwrap() {
                break exit;
            }
            if started.elapsed() > Duration::from_secs(5) {
                stack.gateway.kill();
                let log = std::fs::metadata(&stack.gateway.log).map_or(0, |m| m.len());
                panic!("stop {round}: still running 5 s after SIGINT; its log holds {log} bytes");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(exit.success(), "stop {round}: exit status {exit:?}");
        let log = stack.gateway.log_text();
        assert!(!log.contains("Accept() failed"), "stop {round}:\n{log}");
        assert!(log.contains("SIGINT received, stopping now"), "{log}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_required_level_is_asked_for_and_checked() {
    let stack = Stack::start_with_extra("acr", "acr = [\"eidas2\"]\n".into()).await;
    // ProConnect's way: the claims parameter, with essential and values.
    let mut browser = Browser::new();
    let first = browser.get(&stack.url("/")).await;
    let to_provider = browser
        .get(&stack.url(first.location.as_deref().unwrap()))
        .await;
    let authorize = url::Url::parse(&to_provider.location.unwrap()).unwrap();
    let claims = authorize
        .query_pairs()
        .find(|(k, _)| k == "claims")
        .map(|(_, v)| v.into_owned())
        .expect("claims parameter");
    let claims: serde_json::Value = serde_json::from_str(&claims).unwrap();
    assert_eq!(
        claims,
        serde_json::json!({"id_token": {"acr": {"essential": true, "values": ["eidas2"]}}})
    );
    assert!(!authorize.query_pairs().any(|(k, _)| k == "acr_values"));

    // Agent 0's provider vouches for eidas3: eidas2 is granted and reaches the app.
    let page = browser.login(&stack, "/").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(echoed(&page.body, "x-guichet-acr"), ["eidas2"]);

    // Agent 2's provider only reaches eidas1: refused, with a page saying why.
    let mut weak = Browser::new();
    let confirm = weak.start_login(&stack, "/", 2).await;
    let refused = weak.confirm(&confirm).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains("Niveau de sécurité insuffisant"),
        "{}",
        refused.body
    );
    assert!(!weak.cookies.contains_key("guichet"));
    let metrics = stack.metrics().await;
    assert!(
        metrics.contains(r#"guichet_logins_total{provider="agentconnect",reason="acr_too_low",result="failed"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hints_pass_through_and_missing_claims_are_refused() {
    let stack = Stack::start(
        "claims",
        GatewayOptions {
            extra: "mandatory_claims = [\"given_name\", \"usual_name\", \"roles\"]\n".into(),
            ..GatewayOptions::default()
        },
    )
    .await;
    let mut browser = Browser::new();
    let to_provider = browser
        .get(&stack.url(
            "/.guichet/login?rd=/&login_hint=helene%40interieur.gouv.fr&siret_hint=21920023500014&prompt=none",
        ))
        .await;
    let authorize = url::Url::parse(to_provider.location.as_deref().unwrap()).unwrap();
    let params: std::collections::HashMap<String, String> =
        authorize.query_pairs().into_owned().collect();
    assert_eq!(params["login_hint"], "helene@interieur.gouv.fr");
    assert_eq!(params["siret_hint"], "21920023500014");
    assert!(!params.contains_key("prompt"), "only the kind's hints pass");
    assert!(params.contains_key("code_challenge"), "PKCE for ProConnect");

    let page = browser.get(authorize.as_str()).await;
    let confirm = support::confirm_link(&page.body, 0, &stack);
    let refused = browser.confirm(&confirm).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains("Informations manquantes"),
        "{}",
        refused.body
    );
    assert!(stack.gateway.log_text().contains("roles"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_configured_userinfo_format_is_enforced() {
    // The mock signs userinfo; asking for JSON-only shows the format is enforced both ways.
    let stack =
        Stack::start_with_extra("userinfo-format", "userinfo_format = \"json\"\n".into()).await;
    let mut browser = Browser::new();
    let confirm = browser.start_login(&stack, "/", 0).await;
    let refused = browser.confirm(&confirm).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(stack
        .gateway
        .log_text()
        .contains("expected JSON userinfo, got application/jwt"));
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_and_citizens_choose_their_federation() {
    let stack = Stack::start(
        "chooser",
        GatewayOptions {
            franceconnect: true,
            ..GatewayOptions::default()
        },
    )
    .await;
    let mut browser = Browser::new();
    let first = browser.get(&stack.url("/dossier?id=3")).await;
    let chooser = browser
        .get(&stack.url(&format!(
            "{}&login_hint=a%40b.fr",
            first.location.as_deref().unwrap()
        )))
        .await;
    assert_eq!(chooser.status, 200, "{}", chooser.body);
    for expected in [
        // AgentConnect is ProConnect's former name: the federation's button is ProConnect's.
        "<a class=\"fr-connect fr-connect--pro\" href=\"/.guichet/login?provider=agentconnect&amp;login_hint=a%40b.fr&amp;rd=%2Fdossier%3Fid%3D3\"><span class=\"fr-connect__login\">S’identifier avec</span> <span class=\"fr-connect__brand\">ProConnect</span></a>",
        "<a class=\"fr-connect\" href=\"/.guichet/login?provider=franceconnect",
        "<span class=\"fr-connect__brand\">FranceConnect</span>",
        "Qu’est-ce que FranceConnect ?",
        "Qu’est-ce que ProConnect ?",
        "<p class=\"or\"><span>ou</span></p>",
        "target=\"_blank\"",
        "nouvelle fenêtre",
        "lang=\"fr\"",
    ] {
        assert!(chooser.body.contains(expected), "{expected} missing:\n{}", chooser.body);
    }
    let start = chooser
        .body
        .find("/.guichet/login?provider=franceconnect")
        .unwrap();
    let end = start + chooser.body[start..].find('"').unwrap();
    let href = chooser.body[start..end].replace("&amp;", "&");
    assert!(href.contains("rd=%2Fdossier%3Fid%3D3"), "{href}");

    // FranceConnect's rules: acr_values, no PKCE, no login_hint (the mock refuses them anyway).
    let to_provider = browser.get(&stack.url(&href)).await;
    assert_eq!(to_provider.status, 302, "{}", to_provider.body);
    let authorize = url::Url::parse(to_provider.location.as_deref().unwrap()).unwrap();
    let params: std::collections::HashMap<String, String> =
        authorize.query_pairs().into_owned().collect();
    assert_eq!(params["acr_values"], "eidas1");
    assert!(!params.contains_key("code_challenge"));
    assert!(!params.contains_key("login_hint"));
    assert!(params["scope"].contains("family_name"));
    assert_eq!(authorize.port(), Some(stack.franceconnect_port));

    let page = browser.get(authorize.as_str()).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let confirm = {
        let needle = "&amp;agent=1\"";
        let end = page.body.find(needle).unwrap();
        let start = page.body[..end].rfind("href=\"").unwrap() + 6;
        format!(
            "http://127.0.0.1:{}{}",
            stack.franceconnect_port,
            page.body[start..end + needle.len() - 1].replace("&amp;", "&")
        )
    };
    let done = browser.confirm(&confirm).await;
    assert_eq!(done.status, 302, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/dossier?id=3"));
    let app = browser.get(&stack.url("/dossier?id=3")).await;
    assert_eq!(app.status, 200);
    assert_eq!(echoed(&app.body, "x-guichet-provider"), ["franceconnect"]);
    assert_eq!(echoed(&app.body, "x-guichet-family-name"), ["EL AMRANI"]);
    assert_eq!(
        echoed(&app.body, "x-guichet-given-name"),
        ["Yasmine H%C3%A9lo%C3%AFse"]
    );
    assert_eq!(echoed(&app.body, "x-guichet-birthcountry"), ["99350"]);
    assert_eq!(echoed(&app.body, "x-guichet-birthdate"), ["1992-11-01"]);
    // Born abroad: an empty birthplace is still a claim the app can see as empty.
    assert_eq!(echoed(&app.body, "x-guichet-birthplace"), [""]);
    assert_eq!(echoed(&app.body, "x-guichet-acr"), ["eidas1"]);

    // Logout goes back to the provider that signed this session in.
    let out = browser.logout(&stack.url("/.guichet/logout")).await;
    assert!(out.location.unwrap().starts_with(&format!(
        "http://127.0.0.1:{}/api/v2/session/end?",
        stack.franceconnect_port
    )));
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_key_rotation_is_followed_and_forged_userinfo_refused() {
    let stack = Stack::start("keys", GatewayOptions::default()).await;
    let mut before = Browser::new();
    assert_eq!(before.login(&stack, "/").await.status, 200);

    // The provider rotates its signing key: guichet's cached JWKS no longer has the kid, so it
    // fetches the JWKS once more and accepts the new signatures.
    let rotated: serde_json::Value = reqwest::get(stack.provider_url("/api/v2/debug/rotate-keys"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut after = Browser::new();
    let page = after.login(&stack, "/").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let metrics = stack.metrics().await;
    assert!(
        metrics.contains(r#"guichet_provider_refreshes_total{document="jwks",provider="agentconnect",result="ok"} 1"#),
        "JWKS refreshed once for kid {}:\n{metrics}",
        rotated["kid"]
    );

    // A userinfo JWT signed by another key under the published kid is refused.
    reqwest::get(stack.provider_url("/api/v2/debug/forge-next-userinfo"))
        .await
        .unwrap();
    let mut forged = Browser::new();
    let confirm = forged.start_login(&stack, "/", 0).await;
    let refused = forged.confirm(&confirm).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(!forged.cookies.contains_key("guichet"));
    assert!(stack.gateway.log_text().contains("userinfo rejected"));
}

#[tokio::test(flavor = "multi_thread")]
async fn franceconnect_v1_works_without_discovery_and_with_hs256() {
    let gateway_port = free_port();
    let fc_port = free_port();
    let secret = "a-franceconnect-v1-client-secret";
    let dir = support::scratch_dir("fc-v1");
    let _fc = support::start_flavoured_provider(
        "franceconnect-v1",
        fc_port,
        secret,
        &format!("http://127.0.0.1:{gateway_port}/.guichet/callback"),
        &dir,
    );
    let stack = Stack::start(
        "fc-v1",
        GatewayOptions {
            gateway_port: Some(gateway_port),
            provider_section: Some(format!(
                "[[provider]]\nid = \"franceconnect\"\nkind = \"franceconnect-v1\"\n\
                 issuer = \"http://127.0.0.1:{fc_port}\"\nclient_id = \"guichet-demo\"\nclient_secret = \"{secret}\"\n"
            )),
            ..GatewayOptions::default()
        },
    )
    .await;
    support::wait_for_status(
        &format!("http://127.0.0.1:{fc_port}/api/v1/jwks"),
        200,
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    let mut browser = Browser::new();
    let first = browser.get(&stack.url("/")).await;
    let to_provider = browser
        .get(&stack.url(first.location.as_deref().unwrap()))
        .await;
    let authorize = to_provider.location.unwrap();
    assert!(
        authorize.starts_with(&format!("http://127.0.0.1:{fc_port}/api/v1/authorize?")),
        "{authorize}"
    );
    assert!(!authorize.contains("code_challenge"));
    assert!(authorize.contains("acr_values=eidas1"));
    let page = browser.get(&authorize).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let needle = "&amp;agent=0\"";
    let end = page.body.find(needle).unwrap();
    let start = page.body[..end].rfind("href=\"").unwrap() + 6;
    let confirm = format!(
        "http://127.0.0.1:{fc_port}{}",
        page.body[start..end + needle.len() - 1].replace("&amp;", "&")
    );
    let done = browser.confirm(&confirm).await;
    assert_eq!(done.status, 302, "{}", done.body);
    let app = browser.get(&stack.url("/")).await;
    assert_eq!(echoed(&app.body, "x-guichet-family-name"), ["DUBOIS"]);
    assert_eq!(echoed(&app.body, "x-guichet-birthplace"), ["75107"]);
    assert_eq!(echoed(&app.body, "x-guichet-acr"), ["eidas1"]);

    let out = browser.logout(&stack.url("/.guichet/logout")).await;
    let logout = out.location.unwrap();
    assert!(logout.starts_with(&format!("http://127.0.0.1:{fc_port}/api/v1/logout?")));
    let back = browser.get(&logout).await;
    assert_eq!(
        back.status, 302,
        "the provider accepts the HS256 id_token_hint: {}",
        back.body
    );
    let done = browser.get(&back.location.unwrap()).await;
    assert_eq!(done.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_me_page_shows_who_is_signed_in_and_signs_out() {
    let stack = Stack::start("me", GatewayOptions::default()).await;
    let mut browser = Browser::new();
    let me = browser.get(&stack.url("/.guichet/me")).await;
    assert_eq!(me.status, 200);
    assert!(me.body.contains("pas connecté"), "{}", me.body);
    assert!(me.body.contains("href=\"/.guichet/login\""), "{}", me.body);

    assert_eq!(browser.login(&stack, "/").await.status, 200);
    let me = browser.get(&stack.url("/.guichet/me")).await;
    assert_eq!(me.status, 200);
    for shown in [
        "Vous êtes connecté",
        "Hélène Marie Dupré-Lefèvre",
        "helene.dupre-lefevre@interieur.gouv.fr",
        "eidas1",
        "method=\"post\" action=\"/.guichet/logout\"",
    ] {
        assert!(me.body.contains(shown), "{shown} missing: {}", me.body);
    }
    assert_eq!(me.headers["cache-control"], "no-store");
    // Its button: a POST from guichet's own origin signs out.
    let out = browser
        .client
        .post(stack.url("/.guichet/logout"))
        .header("cookie", browser.cookie_header())
        .header("origin", &stack.gateway_url)
        .send()
        .await
        .unwrap();
    let out = browser.read(out).await;
    assert_eq!(out.status, 302);
    let me = browser.get(&stack.url("/.guichet/me")).await;
    assert!(me.body.contains("pas connecté"), "{}", me.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_cookie_from_before_a_restart_starts_the_login_again() {
    let stack = Stack::start("restart-login", GatewayOptions::default()).await;
    let mut browser = Browser::new();
    let confirm = browser.start_login(&stack, "/dossiers", 0).await;
    let back = browser.get(&confirm).await;
    let callback = back.location.expect("callback");
    // The login cookie as a process with another key (before a restart) sealed it.
    let name = browser
        .cookies
        .keys()
        .find(|name| name.starts_with("guichet-login-"))
        .cloned()
        .expect("login cookie");
    browser
        .cookies
        .insert(name, "c2VhbGVkIGJ5IGFub3RoZXIga2V5IGxvbmcgZW5vdWdo".into());
    let again = browser.get(&callback).await;
    assert_eq!(again.status, 302, "{}", again.body);
    assert_eq!(again.location.as_deref(), Some("/.guichet/login?rd=%2F"));
    assert!(stack.gateway.log_text().contains("sealed by another key"));
    // The new login completes.
    let page = browser.login(&stack, "/dossiers").await;
    assert_eq!(page.status, 200, "{}", page.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_carry_the_operators_branding_and_the_alternative_sign_in() {
    let dir = std::env::temp_dir().join(format!("guichet-branding-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let logo = dir.join("logo.png");
    std::fs::write(&logo, b"\x89PNG\r\n\x1a\n-not-really-drawn").unwrap();
    let stack = Stack::start(
        "branding",
        GatewayOptions {
            extra: format!(
                "[pages]\napplication_name = \"Registre des actes\"\norganisation = \"Ministère\\nde l'Exemple\"\nsupport_url = \"mailto:aide@example.gouv.fr\"\nlogo = \"{}\"\nlogo_alt = \"Ministère de l'Exemple\"\nalternative_login_url = \"/connexion-locale\"\nalternative_login_label = \"Identifiant et mot de passe\"\n",
                logo.display()
            ),
            ..GatewayOptions::default()
        },
    )
    .await;
    let mut browser = Browser::new();
    // One provider, but an alternative: the chooser is shown, not a redirect to the provider.
    let first = browser.get(&stack.url("/dossier")).await;
    let chooser = browser
        .get(&stack.url(first.location.as_deref().unwrap()))
        .await;
    assert_eq!(chooser.status, 200, "{}", chooser.body);
    let csp = chooser.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("style-src 'self';"), "{csp}");
    for expected in [
        "<title>Connexion — Registre des actes</title>",
        "<h1>Connexion à Registre des actes</h1>",
        "Ministère<br>de l&#39;Exemple",
        "ProConnect vous permet d’accéder à de nombreux services en ligne",
        "<p class=\"or\"><span>ou</span></p>",
        "<a class=\"button button--secondary\" href=\"/connexion-locale\">Identifiant et mot de passe</a>",
        "<a href=\"mailto:aide@example.gouv.fr\">",
    ] {
        assert!(chooser.body.contains(expected), "{expected}:\n{}", chooser.body);
    }
    // The style sheets and the logo are served from guichet itself, cacheable.
    for (path, content_type) in [
        ("/.guichet/assets/guichet.css", "text/css; charset=utf-8"),
        (
            "/.guichet/assets/dsfr-connect.min.css",
            "text/css; charset=utf-8",
        ),
        ("/.guichet/assets/logo", "image/png"),
    ] {
        let asset = browser.get(&stack.url(path)).await;
        assert_eq!(asset.status, 200, "{path}");
        assert_eq!(asset.headers["content-type"], content_type, "{path}");
        assert_eq!(asset.headers["cache-control"], "public, max-age=86400");
    }
    assert!(browser
        .get(&stack.url("/.guichet/assets/dsfr-connect.min.css"))
        .await
        .body
        .contains(".fr-connect--pro"));
    for missing in [
        "/.guichet/assets/absent.css",
        "/.guichet/assets/%2e%2e%2fme",
        "/.guichet/assets/guichet.css/x",
        "/.guichet/assets/",
    ] {
        assert_eq!(
            browser.get(&stack.url(missing)).await.status,
            404,
            "{missing}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
