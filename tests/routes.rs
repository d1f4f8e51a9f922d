//! Routes against the real binary: public paths, optional sessions, method rules, CORS
//! preflights, several upstreams chosen by path, scripts told where to sign in, and paths with
//! dot segments refused.

mod support;

use support::{echoed, start_upstream, Browser, GatewayOptions, Stack};

/// A gateway with these routes (and a second upstream, `[upstreams.other]`).
async fn stack_with_routes(name: &str, routes: &str) -> (Stack, u16) {
    let other = start_upstream().await;
    let extra = format!("[upstreams.other]\nurl = \"http://{other}\"\n\n{routes}");
    let stack = Stack::start_with_extra(name, extra).await;
    (stack, other.port())
}

const ROUTES: &str = r#"
[[route]]
name = "health"
exact = "/healthz"
auth = "none"

[[route]]
name = "static"
path = "/static/"
methods = ["GET", "HEAD"]
auth = "none"

[[route]]
name = "form"
exact = "/form"
methods = ["POST"]
auth = "none"

[[route]]
name = "preflight"
glob = "/api/**"
methods = ["OPTIONS"]
auth = "none"

[[route]]
name = "api"
path = "/api/"
unauthenticated = "401"

[[route]]
name = "home"
exact = "/"
auth = "optional"

[[route]]
name = "other"
path = "/other/"
auth = "none"
upstream = "other"
"#;

fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn public_optional_and_method_routes_behave_as_configured() {
    let (stack, other_port) = stack_with_routes("routes", ROUTES).await;
    let client = plain_client();
    let spoofed = [("x-guichet-sub", "forged"), ("X_Guichet_Uid", "forged")];
    let send = |method: &str, path: &str| {
        let mut request = client.request(method.parse().unwrap(), stack.url(path));
        for (name, value) in spoofed {
            request = request.header(name, value);
        }
        request.header("accept", "text/html").send()
    };

    // Public paths: no session needed, no identity sent, spoofed identity stripped.
    for (method, path) in [
        ("GET", "/healthz"),
        ("GET", "/static/app.js"),
        ("HEAD", "/static"),
        ("POST", "/form"),
        ("OPTIONS", "/api/v1/items"),
    ] {
        let response = send(method, path).await.unwrap();
        assert_eq!(response.status(), 200, "{method} {path}");
        let upstream = response.headers()["x-upstream"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(
            upstream,
            stack.upstream.port().to_string(),
            "{method} {path}"
        );
        let body = response.text().await.unwrap();
        assert!(
            !body.to_ascii_lowercase().contains("x-guichet")
                && !body.to_ascii_lowercase().contains("x_guichet"),
            "{method} {path}: {body}"
        );
    }
    // The same paths with other methods, or a near miss, need a session.
    for (method, path) in [
        ("GET", "/form"),
        ("POST", "/static/app.js"),
        ("GET", "/staticx"),
        ("GET", "/healthz/x"),
    ] {
        let response = send(method, path).await.unwrap();
        assert_ne!(response.status(), 200, "{method} {path}");
    }
    // A script on a route that answers 401 is told where to sign in.
    let response = send("GET", "/api/items?page=2").await.unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert_eq!(
        challenge,
        "Guichet login=\"/.guichet/login?rd=%2Fapi%2Fitems%3Fpage%3D2\""
    );

    // Another upstream, chosen by path.
    let response = send("GET", "/other/x").await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-upstream"],
        other_port.to_string().as_str()
    );

    // An optional route: no session, no identity; with a session, the identity.
    let anonymous = send("GET", "/").await.unwrap();
    assert_eq!(anonymous.status(), 200, "never a redirect");
    assert!(!anonymous.text().await.unwrap().contains("x-guichet-sub"));
    let mut browser = Browser::new();
    let page = browser.login(&stack, "/protected").await;
    assert_eq!(page.status, 200);
    let home = browser.get(&stack.url("/")).await;
    assert_eq!(home.status, 200);
    assert_eq!(
        echoed(&home.body, "x-guichet-sub").len(),
        1,
        "{}",
        home.body
    );
    // A public route never carries the identity, session or not.
    let health = browser.get_with(&stack.url("/healthz"), &spoofed).await;
    assert!(
        echoed(&health.body, "x-guichet-sub").is_empty(),
        "{}",
        health.body
    );

    // Paths with dot segments could reach elsewhere in the application: refused. (Sent raw:
    // HTTP clients, like browsers, remove them before sending.)
    let address = stack.gateway_url.trim_start_matches("http://").to_string();
    for path in [
        "/static/../admin",
        "/static/%2e%2e/admin",
        "/static/./x",
        "/static/..;/admin",
        "/static/..%2fadmin",
    ] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
    }
}

/// `guichet check` on a configuration with a server, an upstream and `rest`: (exit success,
/// stdout, stderr).
fn check(name: &str, rest: &str) -> (bool, String, String) {
    let dir = support::scratch_dir(name);
    let config = dir.join("routes.toml");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:1\"\npublic_url = \"http://127.0.0.1:1\"\n[upstream]\nurl = \"http://127.0.0.1:2\"\n{rest}"
    );
    std::fs::write(&config, text).unwrap();
    let output = std::process::Command::new(support::BIN)
        .args(["check", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn route_mistakes_are_reported_by_check() {
    let (ok, _, stderr) = check(
        "routes-check",
        r#"
[[provider]]
id = "ac"
issuer = "http://127.0.0.1:3"
client_id = "c"
client_secret = "s"

[[route]]
path = "/static/"
auth = "none"
[[route]]
exact = "/static/app.js"
[[route]]
path = "/a/"
exact = "/a"
[[route]]
path = "/x/"
upstream = "nowhere"
auth = "sometimes"
methods = ["GET", "NOT A METHOD"]
[[route]]
path = "relative/../x"
[[route]]
path = "/y/"
[[route.allow]]
[[route]]
path = "/z/"
providers = ["nope"]
[[route.allow]]
siret_file = "/nonexistent/sirets.txt"
email_domain = []
[[route]]
glob = "/a/**/b/**"
"#,
    );
    assert!(!ok);
    for expected in [
        "route[1]: never used: route \"route[0]\" before it matches all its requests",
        "route[2]: give exactly one of path, exact or glob",
        "route[3].upstream: no [upstreams.nowhere] section",
        "route[3].auth: expected \"none\", \"optional\" or \"required\"",
        "route[3].methods[1]",
        "route[4].path: expected an absolute path",
        "route[5].allow[0]: an empty allow block would let every signed-in visitor in",
        "route[6].providers[0]: no [[provider]] has id \"nope\"",
        "route[6].allow[0].siret_file: cannot read /nonexistent/sirets.txt",
        "route[6].allow[0].email_domain: no accepted value",
        "route[7].glob: use `**` at most once in a glob",
    ] {
        assert!(
            stderr.contains(expected),
            "{expected} missing in:\n{stderr}"
        );
    }
}

/// Signs in with provider `provider` as the mock's person `agent`, starting at `path`.
async fn sign_in(browser: &mut Browser, stack: &Stack, provider: &str, agent: usize, path: &str) {
    let login = browser
        .get(&stack.url(&format!("/.guichet/login?provider={provider}&rd={path}")))
        .await;
    assert_eq!(login.status, 302, "{}", login.body);
    let page = browser.get(login.location.as_deref().unwrap()).await;
    let base = login.location.as_deref().unwrap();
    let origin = &base[..base[8..].find('/').unwrap() + 8];
    let confirm = format!("{origin}{}", support::agent_link(&page.body, agent));
    let done = browser.confirm(&confirm).await;
    assert_eq!(done.status, 302, "{}", done.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn claim_rules_and_provider_restrictions_refuse_with_a_clear_403() {
    let dir = support::scratch_dir("routes-rules-files");
    let sirets = dir.join("sirets.txt");
    std::fs::write(
        &sirets,
        "# the ministry's establishments\n 21920023500014 \n\n11000201100045 # closed\n",
    )
    .unwrap();
    let routes = format!(
        r#"
[[route]]
name = "ministry"
path = "/ministry/"
[[route.allow]]
siret = ["21920023500014"]

[[route]]
name = "mail"
path = "/mail/"
[[route.allow]]
email_domain = ["interieur.gouv.fr"]
[[route.allow]]
provider = ["franceconnect"]

[[route]]
name = "listed"
path = "/listed/"
[[route.allow]]
siret_file = "{}"

[[route]]
name = "citizens"
path = "/citizens/"
providers = ["franceconnect"]
"#,
        sirets.display()
    );
    let stack = Stack::start(
        "routes-rules",
        GatewayOptions {
            extra: routes,
            franceconnect: true,
            ..GatewayOptions::default()
        },
    )
    .await;

    // Hélène (agent 0): interieur.gouv.fr, SIRET 21920023500014. Jean-Édouard (agent 1):
    // finances.gouv.fr, SIRET 11000201100044.
    let mut helene = Browser::new();
    sign_in(&mut helene, &stack, "agentconnect", 0, "/").await;
    let mut jean = Browser::new();
    sign_in(&mut jean, &stack, "agentconnect", 1, "/").await;
    for path in ["/ministry/x", "/mail/x", "/listed/x"] {
        let page = helene.get(&stack.url(path)).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert_eq!(echoed(&page.body, "x-guichet-siret"), ["21920023500014"]);
    }
    for (path, sentence) in [
        ("/ministry/x", "Votre organisation n&#39;est pas autorisée"),
        ("/mail/x", "Votre adresse de messagerie"),
        ("/listed/x", "Votre organisation n&#39;est pas autorisée"),
    ] {
        let page = jean.get(&stack.url(path)).await;
        assert_eq!(page.status, 403, "{path}");
        assert!(page.body.contains(sentence), "{path}: {}", page.body);
        assert!(page.body.contains("Référence"), "correlation id shown");
        assert!(
            !page.body.contains("21920023500014") && !page.body.contains("interieur"),
            "accepted values never listed"
        );
    }
    // A script gets a short 403.
    let script = jean
        .client
        .get(stack.url("/ministry/x"))
        .header("cookie", jean.cookie_header())
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 403);
    assert_eq!(
        script.text().await.unwrap(),
        "access denied (organisation)\n"
    );

    // A route for another federation: the agent is refused with a way to sign in there...
    let page = helene.get(&stack.url("/citizens/page")).await;
    assert_eq!(page.status, 403);
    assert!(
        page.body.contains("providers=franceconnect"),
        "{}",
        page.body
    );
    // ...and a visitor without a session is sent straight to that federation.
    let mut visitor = Browser::new();
    let first = visitor.get(&stack.url("/citizens/page")).await;
    assert_eq!(first.status, 302);
    let login = first.location.unwrap();
    assert!(login.contains("providers=franceconnect"), "{login}");
    let to_provider = visitor.get(&stack.url(&login)).await;
    assert_eq!(to_provider.status, 302, "{}", to_provider.body);
    assert!(
        to_provider
            .location
            .unwrap()
            .starts_with(&format!("http://127.0.0.1:{}/", stack.franceconnect_port)),
        "straight to FranceConnect"
    );

    let metrics = stack.metrics().await;
    for line in [
        "guichet_access_denied_total{reason=\"organisation\",route=\"ministry\"} 2",
        "guichet_access_denied_total{reason=\"email_domain\",route=\"mail\"} 1",
        "guichet_access_denied_total{reason=\"provider\",route=\"citizens\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing in {metrics}");
    }
    // Access lines are written in batches, at least every 100 ms.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let log = stack.gateway.log_text();
    assert!(
        log.contains("outcome=\"denied\"") || log.contains("outcome=denied"),
        "{log}"
    );
    assert!(
        log.contains("denied=\"organisation\"") || log.contains("denied=organisation"),
        "{log}"
    );
}

/// Follows a login from guichet's redirect to the provider, signs in as `agent`, and returns
/// the callback's answer.
async fn complete_login(
    browser: &mut Browser,
    stack: &Stack,
    login: &str,
    agent: usize,
) -> support::Page {
    let to_provider = browser.get(&stack.url(login)).await;
    assert_eq!(to_provider.status, 302, "{}", to_provider.body);
    let authorize = to_provider.location.unwrap();
    let page = browser.get(&authorize).await;
    assert_eq!(page.status, 200, "{}", page.body);
    browser
        .confirm(&support::confirm_link(&page.body, agent, stack))
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_route_above_the_session_s_level_steps_up() {
    let stack = Stack::start_with_extra(
        "routes-step-up",
        "[[route]]\nname = \"admin\"\npath = \"/admin/\"\nacr = [\"eidas2\"]\n".into(),
    )
    .await;
    // Hélène (agent 0) can reach eidas3; she signs in at the provider's default, eidas1.
    let mut helene = Browser::new();
    let page = helene.login(&stack, "/").await;
    assert_eq!(echoed(&page.body, "x-guichet-acr"), ["eidas1"]);
    let first_session = helene.cookies["guichet"].clone();

    // The admin area asks for eidas2: a new login at the same provider, back to the same URL.
    let step = helene.get(&stack.url("/admin/x?y=1")).await;
    assert_eq!(step.status, 302);
    let login = step.location.unwrap();
    assert!(
        login.contains("provider=agentconnect") && login.contains("acr=eidas2"),
        "{login}"
    );
    let to_provider = helene.get(&stack.url(&login)).await;
    let authorize = to_provider.location.clone().unwrap();
    assert!(authorize.contains("prompt=login"), "{authorize}");
    assert!(authorize.contains("eidas2"), "{authorize}");
    let done = complete_login(&mut helene, &stack, &login, 0).await;
    assert_eq!(done.status, 302, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/admin/x?y=1"));
    let admin = helene.get(&stack.url("/admin/x?y=1")).await;
    assert_eq!(admin.status, 200);
    assert_eq!(echoed(&admin.body, "x-guichet-acr"), ["eidas2"]);

    // Zoé (agent 2) cannot reach eidas2: a clear page, no loop.
    let mut zoe = Browser::new();
    zoe.login(&stack, "/").await;
    let step = zoe.get(&stack.url("/admin/")).await;
    let done = complete_login(&mut zoe, &stack, &step.location.unwrap(), 2).await;
    assert_eq!(done.status, 403, "{}", done.body);
    assert!(done.body.contains("Niveau de sécurit"), "{}", done.body);

    // The step-up signed in as another person (Jean, agent 1): the first session has ended.
    let mut shared_desk = Browser::new();
    shared_desk.login(&stack, "/").await;
    let before = shared_desk.cookies["guichet"].clone();
    let step = shared_desk.get(&stack.url("/admin/")).await;
    let done = complete_login(&mut shared_desk, &stack, &step.location.unwrap(), 1).await;
    assert_eq!(done.status, 302, "{}", done.body);
    let mut stale = Browser::new();
    stale.cookies.insert("guichet".into(), before);
    assert_eq!(
        stale.get(&stack.url("/")).await.status,
        302,
        "the old session ended"
    );
    assert_ne!(shared_desk.cookies["guichet"], first_session);
}

#[test]
fn a_rule_on_a_claim_no_accepted_provider_sends_is_a_warning() {
    let (ok, stdout, stderr) = check(
        "routes-warning",
        r#"
[[provider]]
id = "agents"
kind = "proconnect"
issuer = "http://127.0.0.1:3"
client_id = "c"
client_secret = "s"
[[provider]]
id = "other"
issuer = "http://127.0.0.1:4"
client_id = "c"
client_secret = "s"

[[route]]
path = "/agents/"
providers = ["agents"]
[[route.allow]]
birthdate = ["1970-01-01"]
[[route]]
path = "/any/"
[[route.allow]]
birthdate = ["1970-01-01"]
[[route.allow]]
siret = ["11002001300097"]
"#,
    );
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(
            "warning: route[0].allow[0].birthdate: no provider this route accepts sends this claim"
        ),
        "{stdout}"
    );
    // The generic provider may send anything; ProConnect sends siret.
    assert_eq!(stdout.matches("warning:").count(), 1, "{stdout}");
}
