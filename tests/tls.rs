//! HTTPS: guichet terminating TLS (HTTP/2 by ALPN, Secure `__Host-` cookies, the HTTP redirect
//! listener) and verifying an HTTPS upstream against a configured CA.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{echoed, free_port, scratch_dir, GatewayOptions, Stack, TestCerts};

struct Python(Child);

/// The HTTPS test application, serving `certs` on `port`.
fn https_upstream(port: u16, certs: &TestCerts) -> Python {
    Python(
        Command::new(python())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/support/https_upstream.py"
            ))
            .arg(port.to_string())
            .arg(&certs.cert)
            .arg(&certs.key)
            .stdout(Stdio::null())
            .spawn()
            .expect("python3"),
    )
}

/// The real interpreter behind `python3` (which may be a shim whose PID is not the server's).
fn python() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 must be installed for the TLS tests");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn https_end_to_end_with_a_verified_https_upstream() {
    let dir = scratch_dir("tls-certs");
    let certs = TestCerts::generate(&dir);
    let upstream_port = free_port();
    let _upstream = https_upstream(upstream_port, &certs);
    let redirect_port = free_port();
    let stack = Stack::start(
        "tls",
        GatewayOptions {
            tls: Some(certs.clone()),
            redirect_port: Some(redirect_port),
            upstream_url: Some(format!("https://127.0.0.1:{upstream_port}")),
            ..GatewayOptions::default()
        },
    )
    .await;
    assert!(stack.gateway_url.starts_with("https://"));

    let mut browser = stack.browser();
    let first = browser.get(&stack.url("/secure?x=1")).await;
    assert_eq!(first.status, 302);
    let login = browser
        .get(&stack.url(first.location.as_deref().unwrap()))
        .await;
    let authorize = login.location.unwrap();
    assert!(
        authorize.contains("redirect_uri=https%3A%2F%2F127.0.0.1"),
        "{authorize}"
    );
    // The login-state cookie is Secure, __Secure- prefixed and sent to /.guichet/ only.
    let set = login.headers["set-cookie"].to_str().unwrap();
    assert!(set.starts_with("__Secure-guichet-login-"), "{set}");
    assert!(set.contains("Secure"), "{set}");
    assert!(set.contains("Path=/.guichet/"), "{set}");

    let page = browser.get(&authorize).await;
    let confirm = support::confirm_link(&page.body, 0, &stack);
    let done = browser.confirm(&confirm).await;
    assert_eq!(done.status, 302, "{}", done.body);
    let set = done.headers["set-cookie"].to_str().unwrap();
    assert!(set.starts_with("__Host-guichet="), "{set}");
    assert!(set.contains("Secure") && set.contains("HttpOnly"), "{set}");
    // The logout hint: Secure, __Secure- prefixed, sent to the logout path only.
    let hint = done
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("__Secure-guichet-logout="))
        .expect("a logout hint cookie");
    for attribute in [
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/.guichet/logout",
    ] {
        assert!(hint.contains(attribute), "{attribute}: {hint}");
    }

    // Wait for the HTTPS upstream to listen, then go through.
    let mut page = browser.get(&stack.url("/secure?x=1")).await;
    for _ in 0..50 {
        if page.status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        page = browser.get(&stack.url("/secure?x=1")).await;
    }
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("over: tls"), "{}", page.body);
    assert_eq!(echoed(&page.body, "x-forwarded-proto"), ["https"]);
    assert_eq!(echoed(&page.body, "x-guichet-uid"), ["hdupre"]);

    // HTTP/2 is negotiated by ALPN.
    let h2 = stack
        .client_builder()
        .build()
        .unwrap()
        .get(stack.url("/over-h2"))
        .header("cookie", browser.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(h2.version(), reqwest::Version::HTTP_2);
    assert_eq!(h2.status(), 200);

    // Plain HTTP on the redirect listener goes to the same path over HTTPS.
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{redirect_port}/secure?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 308);
    assert_eq!(redirect.headers()["location"], stack.url("/secure?x=1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_certificate_from_an_unknown_ca_is_refused() {
    let dir = scratch_dir("tls-untrusted");
    let certs = TestCerts::generate(&dir);
    let other = TestCerts::generate(&scratch_dir("tls-other-ca"));
    let upstream_port = free_port();
    let _upstream = https_upstream(upstream_port, &other);
    let stack = Stack::start(
        "tls-untrusted",
        GatewayOptions {
            tls: Some(certs),
            upstream_url: Some(format!("https://127.0.0.1:{upstream_port}")),
            ..GatewayOptions::default()
        },
    )
    .await;
    let mut browser = stack.browser();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let page = browser.login(&stack, "/").await;
    assert_eq!(page.status, 502, "{}", page.body);
}

/// `openssl s_client` with only `version` enabled (security level 0, so that the client itself
/// is willing to offer old versions): whether a protocol was negotiated, and what it printed.
fn handshake(port: u16, version: &str) -> (bool, String) {
    let output = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            version,
            "-cipher",
            "DEFAULT:@SECLEVEL=0",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl (scripts/setup-test-peers.sh installs it)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    // "New, TLSv1.3, Cipher is …" after a handshake; "New, (NONE), Cipher is (NONE)" without.
    let negotiated = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("New, "))
        .and_then(|rest| rest.split(',').next())
        .unwrap_or("(NONE)")
        .to_string();
    (negotiated.starts_with("TLSv1."), negotiated + "\n" + &text)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_listener_speaks_tls_1_2_and_1_3_only() {
    let dir = scratch_dir("tls-versions");
    let certs = TestCerts::generate(&dir);
    let stack = Stack::start(
        "tls-versions",
        GatewayOptions {
            tls: Some(certs.clone()),
            ..GatewayOptions::default()
        },
    )
    .await;
    let port: u16 = stack
        .gateway_url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap();
    for (version, name) in [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")] {
        let (ok, text) = handshake(port, version);
        assert!(ok && text.starts_with(name), "{version} refused:\n{text}");
    }
    for version in ["-tls1_1", "-tls1"] {
        let (ok, text) = handshake(port, version);
        assert!(!ok, "{version} accepted:\n{text}");
        // Refused by the server (an alert), not by this client.
        assert!(
            text.contains("SSL alert number") && !text.contains("no protocols available"),
            "{version}:\n{text}"
        );
    }
}
