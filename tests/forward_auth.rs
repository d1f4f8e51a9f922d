//! Forward-auth: guichet beside a real front proxy (nginx `auth_request`, Caddy `forward_auth`)
//! configured from the files in `examples/forward-auth/` — the same files the README quotes —
//! with the echo application behind the front proxy; and the check endpoint asked directly.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::*;

const RULES: &str = r#"
[[route]]
name = "public"
path = "/public/"
auth = "none"

[[route]]
name = "admin"
path = "/admin/"
[[route.allow]]
email_domain = ["nowhere.example"]
"#;

fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/forward-auth")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The example's addresses replaced by the test's.
fn localised(text: &str, guichet: u16, app: std::net::SocketAddr) -> String {
    text.replace("127.0.0.1:8080", &format!("127.0.0.1:{guichet}"))
        .replace("127.0.0.1:9000", &app.to_string())
}

fn start_nginx(dir: &Path, front: u16, guichet: u16, app: std::net::SocketAddr) -> Process {
    let site = localised(&example("nginx.conf"), guichet, app)
        .replace("listen 80;", &format!("listen 127.0.0.1:{front};"));
    let d = dir.display();
    let conf = format!(
        "load_module /usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so;\n\
         daemon off;\nmaster_process off;\nuser root;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log info;\n\
         events {{ worker_connections 512; }}\n\
         http {{\n  access_log {d}/nginx-access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n{site}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    Process::spawn_program(
        "nginx",
        &[
            "-e",
            &format!("{d}/nginx-error.log"),
            "-c",
            path.to_str().unwrap(),
        ],
        dir.join("nginx.log"),
    )
}

fn start_caddy(dir: &Path, front: u16, guichet: u16, app: std::net::SocketAddr) -> Process {
    let site = localised(&example("Caddyfile"), guichet, app).replace(
        "app.example.gouv.fr {",
        &format!("http://127.0.0.1:{front} {{"),
    );
    let path = dir.join("Caddyfile");
    std::fs::write(&path, format!("{{\n\tadmin off\n}}\n{site}")).unwrap();
    let mut command_dir = PathBuf::from(dir);
    command_dir.push("caddy-home");
    std::fs::create_dir_all(&command_dir).unwrap();
    std::env::set_var("XDG_DATA_HOME", &command_dir);
    std::env::set_var("XDG_CONFIG_HOME", &command_dir);
    Process::spawn_program(
        "caddy",
        &[
            "run",
            "--adapter",
            "caddyfile",
            "--config",
            path.to_str().unwrap(),
        ],
        dir.join("caddy.log"),
    )
}

fn start_apache(dir: &Path, front: u16, guichet: u16, app: std::net::SocketAddr) -> Process {
    let site = localised(&example("apache.conf"), guichet, app).replace(
        "<VirtualHost *:80>",
        &format!("<VirtualHost 127.0.0.1:{front}>"),
    );
    let d = dir.display();
    let modules = ["mpm_event", "authz_core", "proxy", "proxy_http"]
        .iter()
        .map(|m| format!("LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so\n"))
        .collect::<String>();
    let conf = format!(
        "{modules}ServerName localhost\nListen 127.0.0.1:{front}\nDefaultRuntimeDir {d}\n\
         PidFile {d}/apache.pid\nErrorLog {d}/apache-error.log\nUser www-data\nGroup www-data\n{site}\n"
    );
    let path = dir.join("apache.conf");
    std::fs::write(&path, conf).unwrap();
    Process::spawn_program(
        "apache2",
        &["-X", "-f", path.to_str().unwrap()],
        dir.join("apache.log"),
    )
}

/// How guichet stands behind the front proxy.
#[derive(Clone, Copy, PartialEq)]
enum Beside {
    /// `mode = "auth"`: the front proxy asks `/.guichet/auth` and serves the application.
    Check,
    /// `mode = "proxy"`: the front proxy sends everything to guichet (Apache).
    Proxy,
}

/// guichet listening on its own port behind the front proxy started by `front`.
async fn behind(
    name: &str,
    front: fn(&Path, u16, u16, std::net::SocketAddr) -> Process,
    beside: Beside,
) -> (Stack, Process) {
    let app = start_upstream().await;
    let front_port = free_port();
    let guichet_port = free_port();
    let dir = scratch_dir(&format!("{name}-front"));
    // Apache's children run as www-data and keep their runtime files here.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let proxy = front(&dir, front_port, guichet_port, app);
    let mode = match beside {
        Beside::Check => "mode = \"auth\"\n",
        Beside::Proxy => "",
    };
    let stack = Stack::start(
        name,
        GatewayOptions {
            gateway_port: Some(guichet_port),
            public_url: Some(format!("http://127.0.0.1:{front_port}")),
            upstream: Some(app),
            no_upstream: beside == Beside::Check,
            server_extra: format!("{mode}trusted_proxies = [\"127.0.0.1\"]"),
            extra: RULES.into(),
            ..GatewayOptions::default()
        },
    )
    .await;
    (stack, proxy)
}

/// The whole journey through a front proxy: sign-in redirect, login, identity at the app,
/// spoofing, scripts, a refused route, the check endpoint hidden, logout.
async fn journey(stack: &Stack, beside: Beside) {
    let mut browser = stack.browser();
    // Not signed in: the browser is sent to the login, on the application's origin.
    let first = browser.get(&stack.url("/page?x=1&y=%C3%A9")).await;
    assert_eq!(first.status, 302, "{}", first.body);
    // Absolute from a check (the front proxy passes it on), relative from the proxy mode.
    let location = Browser::absolute(&stack.gateway_url, first.location.as_deref().unwrap());
    assert!(
        location.starts_with(&format!("{}/.guichet/login?", stack.gateway_url)),
        "{location}"
    );
    assert!(
        location.contains("rd=%2Fpage%3Fx%3D1%26y%3D%25C3%25A9"),
        "{location}"
    );

    // A script gets a 401, never a redirect.
    let script = reqwest::Client::new()
        .get(stack.url("/api/data"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 401);

    // A public route: served without a session, without any identity, spoofed or not.
    let public = browser
        .get_with(
            &stack.url("/public/a"),
            &[
                ("x-guichet-sub", "forged"),
                ("X-Guichet-Email", "boss@example.gouv.fr"),
            ],
        )
        .await;
    assert_eq!(public.status, 200, "{}", public.body);
    assert!(
        !public.body.to_ascii_lowercase().contains("x-guichet-"),
        "{}",
        public.body
    );

    // Sign in through the front proxy, back to where the visitor was going.
    let page = browser.login(stack, "/page?x=1").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.starts_with("GET /page?x=1 HTTP/1.1"),
        "{}",
        page.body
    );
    assert_eq!(echoed(&page.body, "x-guichet-provider"), ["agentconnect"]);
    assert_eq!(
        echoed(&page.body, "x-guichet-email"),
        ["helene.dupre-lefevre@interieur.gouv.fr"]
    );
    assert_eq!(echoed(&page.body, "x-guichet-sub").len(), 1);

    // Spoofed identity headers are removed at the front proxy, in any spelling; the app's own
    // cookies reach it, guichet's session does not.
    let spoofed = browser
        .get_with(
            &stack.url("/page"),
            &[
                ("x-guichet-sub", "forged"),
                ("X-GUICHET-EMAIL", "boss@example.gouv.fr"),
                ("x-guichet-idp-id", "forged"),
                ("x_guichet_sub", "forged"),
            ],
        )
        .await;
    assert_eq!(spoofed.status, 200, "{}", spoofed.body);
    assert!(!spoofed.body.contains("forged"), "{}", spoofed.body);
    assert!(!spoofed.body.contains("boss@"), "{}", spoofed.body);
    assert_eq!(
        echoed(&spoofed.body, "x-guichet-email"),
        ["helene.dupre-lefevre@interieur.gouv.fr"]
    );
    // guichet's cookies (session, logout hint) never reach the application.
    assert!(browser.cookies.contains_key("guichet-logout"));
    browser.cookies.insert("app_pref".into(), "dark".into());
    let with_cookie = browser.get(&stack.url("/page")).await;
    let cookies = echoed(&with_cookie.body, "cookie");
    assert_eq!(cookies, ["app_pref=dark"], "{}", with_cookie.body);

    // A route the rules refuse: 403.
    let admin = browser.get(&stack.url("/admin/panel")).await;
    assert_eq!(admin.status, 403, "{}", admin.body);

    // The check endpoint is not reachable from outside through the front proxy.
    let check = browser
        .get_with(&stack.url("/.guichet/auth"), &[("x-original-uri", "/page")])
        .await;
    assert_eq!(check.status, 404, "{}", check.body);

    // Logout through the front proxy ends the session, at the provider too (the logout hint
    // cookie went through the proxy; the application never saw it, above): the next visit
    // signs in again.
    let out = browser.logout(&stack.url("/.guichet/logout")).await;
    assert_eq!(out.status, 302, "{}", out.body);
    let end_session = out.location.unwrap_or_default();
    assert!(end_session.contains("id_token_hint=ey"), "{end_session}");
    let again = browser.get(&stack.url("/page")).await;
    assert_eq!(again.status, 302, "{}", again.body);

    let metrics = stack.metrics().await;
    let outcome = match beside {
        Beside::Check => "authorized",
        Beside::Proxy => "proxied",
    };
    assert!(
        metrics.contains(&format!(
            "guichet_requests_total{{outcome=\"{outcome}\",status_class=\"2xx\"}}"
        )),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn beside_nginx() {
    let (stack, nginx) = behind("nginx", start_nginx, Beside::Check).await;
    journey(&stack, Beside::Check).await;
    websocket_through_the_front(&stack).await;
    drop(nginx);
}

#[tokio::test(flavor = "multi_thread")]
async fn beside_caddy() {
    let (stack, caddy) = behind("caddy", start_caddy, Beside::Check).await;
    journey(&stack, Beside::Check).await;
    drop(caddy);
}

/// Apache cannot ask guichet (no auth_request module): it stands in front of guichet's proxy
/// mode, and the same journey holds.
#[tokio::test(flavor = "multi_thread")]
async fn behind_apache() {
    let (stack, apache) = behind("apache", start_apache, Beside::Proxy).await;
    journey(&stack, Beside::Proxy).await;
    websocket_through_the_front(&stack).await;
    // The visitor's address reaches the application through Apache and guichet.
    let mut browser = stack.browser();
    let page = browser.login(&stack, "/").await;
    assert_eq!(
        echoed(&page.body, "x-real-ip"),
        ["127.0.0.1"],
        "{}",
        page.body
    );
    drop(apache);
}

/// A websocket upgrade through the front proxy, with the session's cookie; refused without.
async fn websocket_through_the_front(stack: &Stack) {
    let mut browser = stack.browser();
    browser.login(stack, "/").await;
    let address = stack.gateway_url.trim_start_matches("http://").to_string();
    assert_websocket_echoes(&address, &browser.cookie_header()).await;

    let (_, head) = websocket_upgrade(&address, None).await;
    assert!(
        head.starts_with("HTTP/1.1 401") || head.starts_with("HTTP/1.1 302"),
        "{head}"
    );
}

/// The check endpoint asked directly, as Traefik, Envoy or a script would: each form of the
/// question, each answer, and `mode = "both"` still proxying.
#[tokio::test(flavor = "multi_thread")]
async fn the_check_endpoint_answers_each_form_of_the_question() {
    let stack = Stack::start(
        "check-both",
        GatewayOptions {
            server_extra: "mode = \"both\"\ntrusted_proxies = [\"127.0.0.1\"]".into(),
            extra: RULES.into(),
            ..GatewayOptions::default()
        },
    )
    .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let ask = |path: &str, headers: &[(&str, &str)]| {
        let mut request = client.get(stack.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    let header = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let login = format!("{}/.guichet/login?rd=%2Fpage%3Fa%3D1", stack.gateway_url);

    // No session, a browser: redirected (Traefik, Caddy, Envoy pass it on), or a 401 naming the
    // login (nginx, ?redirect=false).
    let html = ("accept", "text/html");
    let traefik = ask(
        "/.guichet/auth",
        &[
            html,
            ("x-forwarded-uri", "/page?a=1"),
            ("x-forwarded-method", "GET"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(traefik.status(), 302);
    assert_eq!(header(&traefik, "location"), Some(login.clone()));
    let nginx = ask(
        "/.guichet/auth?redirect=false",
        &[html, ("x-original-uri", "/page?a=1")],
    )
    .await
    .unwrap();
    assert_eq!(nginx.status(), 401);
    assert_eq!(header(&nginx, "x-guichet-redirect"), Some(login.clone()));
    // Envoy's path_prefix form.
    let envoy = ask("/.guichet/auth/page?a=1", &[html]).await.unwrap();
    assert_eq!(envoy.status(), 302);
    assert_eq!(header(&envoy, "location"), Some(login.clone()));
    // A script, or a non-GET method: 401 without a redirect header.
    let script = ask(
        "/.guichet/auth",
        &[("accept", "application/json"), ("x-forwarded-uri", "/page")],
    )
    .await
    .unwrap();
    assert_eq!(script.status(), 401);
    assert_eq!(header(&script, "x-guichet-redirect"), None);
    let post = ask(
        "/.guichet/auth?redirect=false",
        &[
            html,
            ("x-original-uri", "/page"),
            ("x-original-method", "POST"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(post.status(), 401);
    assert_eq!(header(&post, "x-guichet-redirect"), None);
    // A public route: yes, without identity.
    let public = ask(
        "/.guichet/auth",
        &[
            ("x-forwarded-uri", "/public/x"),
            ("x-guichet-sub", "forged"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(public.status(), 200);
    assert_eq!(header(&public, "x-guichet-sub"), None);
    // Questions guichet cannot answer (400, 403: the front proxy's configuration is wrong), and
    // a path with dot segments, which the route table refuses (a 403 for nginx).
    for (headers, status) in [
        (vec![], 400),
        (vec![("x-forwarded-uri", "https://evil.example/")], 400),
        (
            vec![
                ("x-forwarded-uri", "/"),
                ("x-forwarded-host", "evil.example"),
            ],
            403,
        ),
        (vec![("x-forwarded-uri", "/a/../admin/x")], 403),
    ] {
        let response = ask("/.guichet/auth?redirect=false", &headers)
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{headers:?}");
    }

    // Signed in: the identity for the front proxy, and the same request still proxied.
    let mut browser = stack.browser();
    let page = browser.login(&stack, "/page").await;
    let proxied_sub = echoed(&page.body, "x-guichet-sub")[0].to_string();
    let cookies = format!("{}; app=1", browser.cookie_header());
    let yes = ask(
        "/.guichet/auth",
        &[("x-forwarded-uri", "/page"), ("cookie", &cookies)],
    )
    .await
    .unwrap();
    assert_eq!(yes.status(), 200);
    assert_eq!(header(&yes, "x-guichet-sub"), Some(proxied_sub));
    assert_eq!(header(&yes, "x-guichet-cookie").as_deref(), Some("app=1"));
    let head = client
        .head(stack.url("/.guichet/auth"))
        .header("x-forwarded-uri", "/page")
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert!(head.headers().contains_key("x-guichet-email"));
    let denied = ask(
        "/.guichet/auth",
        &[("x-forwarded-uri", "/admin/x"), ("cookie", &cookies), html],
    )
    .await
    .unwrap();
    assert_eq!(denied.status(), 403);
    assert!(denied.text().await.unwrap().contains("Accès refusé"));
    // The access line is written after the answer: give it a moment.
    let mut log = String::new();
    for _ in 0..50 {
        log = stack.gateway.log_text();
        if log.contains("checked=\"/admin/x\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        log.contains("checked=\"/admin/x\""),
        "the access line names the checked path"
    );
}

/// Only the configured front proxies are answered; in auth mode nothing else is served; in
/// proxy mode the endpoint does not exist.
#[tokio::test(flavor = "multi_thread")]
async fn only_front_proxies_are_answered_and_each_mode_serves_its_own() {
    let auth = Stack::start(
        "check-untrusted",
        GatewayOptions {
            server_extra: "mode = \"auth\"\ntrusted_proxies = [\"192.0.2.10\"]".into(),
            no_upstream: true,
            ..GatewayOptions::default()
        },
    )
    .await;
    let client = reqwest::Client::new();
    let untrusted = client
        .get(auth.url("/.guichet/auth"))
        .header("x-forwarded-uri", "/")
        .send()
        .await
        .unwrap();
    assert_eq!(untrusted.status(), 403);
    assert!(untrusted.text().await.unwrap().contains("front proxies"));
    assert!(auth
        .gateway
        .log_text()
        .contains("not in server.trusted_proxies"));
    let outside = client
        .get(auth.url("/page"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(outside.status(), 404);
    assert!(outside.text().await.unwrap().contains("authentification"));
    let readyz = client
        .get(auth.url("/.guichet/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(readyz.status(), 200);

    let proxy = Stack::start("check-proxy-mode", GatewayOptions::default()).await;
    let absent = client
        .get(proxy.url("/.guichet/auth"))
        .header("x-forwarded-uri", "/")
        .send()
        .await
        .unwrap();
    assert_eq!(absent.status(), 404);
}
