//! Routes against the real binary: public paths, optional sessions, method rules, CORS
//! preflights, several upstreams chosen by path, scripts told where to sign in, and paths with
//! dot segments refused.

mod support;

use support::{echoed, start_upstream, Browser, GatewayOptions, Stack};

/// A gateway with these routes (and a second upstream, `[upstreams.other]`).
async fn stack_with_routes(name: &str, routes: &str) -> (Stack, u16) {
    let other = start_upstream().await;
    let extra = format!("[upstreams.other]\nurl = \"http://{other}\"\n\n{routes}");
    let stack = Stack::start(
        name,
        GatewayOptions {
            extra,
            ..GatewayOptions::default()
        },
    )
    .await;
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
    for path in ["/static/../admin", "/static/%2e%2e/admin", "/static/./x"] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
    }
}

#[test]
fn route_mistakes_are_reported_by_check() {
    let dir = support::scratch_dir("routes-check");
    let config = dir.join("routes.toml");
    std::fs::write(
        &config,
        r#"
[server]
listen = "127.0.0.1:1"
public_url = "http://127.0.0.1:1"
[upstream]
url = "http://127.0.0.1:2"
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
"#,
    )
    .unwrap();
    let output = std::process::Command::new(support::BIN)
        .args(["check", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "route[1]: never used: route \"route[0]\" before it matches all its requests",
        "route[2]: give exactly one of path, exact or glob",
        "route[3].upstream: no [upstreams.nowhere] section",
        "route[3].auth: expected \"none\", \"optional\" or \"required\"",
        "route[3].methods[1]",
        "route[4].path: expected an absolute path",
    ] {
        assert!(
            stderr.contains(expected),
            "{expected} missing in:\n{stderr}"
        );
    }
}
