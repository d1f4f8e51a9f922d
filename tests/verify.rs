//! The verification examples of `examples/verify/` (Python, Node, Java, PHP, Rust) run against a
//! live guichet: each must accept what guichet sent and reject a tampered assertion, a tampered
//! header, a wrong audience and an expired assertion/signature.

mod support;

#[path = "../examples/verify/rust/verify.rs"]
mod rust_verifier;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::{echoed, scratch_dir, Browser, Stack, BIN};

const HMAC_KEY: &str = "a-long-shared-secret-for-the-hmac-signature-0123456789";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The external verifiers: name and command line. A missing runtime is a failure, not a skip.
fn external_verifiers() -> Vec<(&'static str, Vec<String>)> {
    let root = root();
    let python = root.join("target/verify-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: scripts/test.sh creates it (python3 -m venv + pip install -r examples/verify/python/requirements.txt)",
        python.display()
    );
    assert!(
        root.join("examples/verify/node/node_modules/jose").exists(),
        "examples/verify/node/node_modules is missing: scripts/test.sh runs npm ci there"
    );
    let path = |p: &str| root.join(p).display().to_string();
    vec![
        (
            "python",
            vec![
                python.display().to_string(),
                path("examples/verify/python/verify.py"),
            ],
        ),
        (
            "node",
            vec!["node".into(), path("examples/verify/node/verify.mjs")],
        ),
        (
            "java",
            vec!["java".into(), path("examples/verify/java/Verify.java")],
        ),
        (
            "php",
            vec!["php".into(), path("examples/verify/php/verify.php")],
        ),
    ]
}

struct Expectation {
    jwks_url: String,
    issuer: String,
    audience: String,
    /// Signature max age, seconds.
    max_age: u64,
}

/// Runs every verifier on a request; returns (name, accepted, output).
async fn run_all(request: &Value, expect: &Expectation) -> Vec<(&'static str, bool, String)> {
    let mut results = Vec::new();
    for (name, command) in external_verifiers() {
        let mut child = Command::new(&command[0])
            .args(&command[1..])
            .args([
                "--jwks-url",
                &expect.jwks_url,
                "--issuer",
                &expect.issuer,
                "--audience",
                &expect.audience,
                "--hmac-key-env",
                "GUICHET_HMAC_KEY",
                "--max-age",
                &expect.max_age.to_string(),
            ])
            .env("GUICHET_HMAC_KEY", HMAC_KEY)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run the {name} verifier ({}): {e}", command[0]));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(request.to_string().as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        results.push((name, output.status.success(), text));
    }
    // The Rust example, in-process.
    let headers: BTreeMap<String, String> = request["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let token = headers
        .get(rust_verifier::ASSERTION_HEADER)
        .cloned()
        .unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let rust = async {
        let claims = rust_verifier::verify_assertion(
            &token,
            &expect.jwks_url,
            &expect.issuer,
            &expect.audience,
        )
        .await?;
        rust_verifier::verify_signature(
            request["method"].as_str().unwrap(),
            request["path"].as_str().unwrap(),
            &headers,
            HMAC_KEY.as_bytes(),
            expect.max_age,
            now,
        )?;
        Ok::<Value, String>(claims)
    }
    .await;
    results.push((
        "rust",
        rust.is_ok(),
        match rust {
            Ok(claims) => format!("OK sub={}", claims["sub"].as_str().unwrap_or_default()),
            Err(e) => format!("REJECTED: {e}"),
        },
    ));
    results
}

/// Starts a stack signing assertions with a fresh key, and captures what the app receives.
async fn signed_stack(name: &str, lifetime: &str) -> (Stack, Value, PathBuf) {
    let dir = scratch_dir(&format!("{name}-keys"));
    let key = support::keygen(&dir.join("assertion.pem"), "ES256");
    std::fs::write(dir.join("hmac.key"), HMAC_KEY).unwrap();
    let extra = format!(
        "\n[assertion]\nkeys = [\"{}\"]\nlifetime = \"{lifetime}\"\n\n[signature]\nkey_file = \"{}\"\n",
        key.display(),
        dir.join("hmac.key").display()
    );
    let stack = Stack::start_with_extra(name, extra).await;
    let mut browser = Browser::new();
    let page = browser.login(&stack, "/dossiers/7?vue=complete").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let request = captured_request(&page.body);
    (stack, request, dir)
}

/// The request as the app saw it, from the test upstream's echo.
fn captured_request(body: &str) -> Value {
    let mut lines = body.lines();
    let first: Vec<&str> = lines.next().unwrap().split(' ').collect();
    let mut headers = serde_json::Map::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(": ") {
            headers.insert(name.to_string(), Value::String(value.to_string()));
        }
    }
    json!({"method": first[0], "path": first[1], "headers": headers})
}

fn expectation(stack: &Stack, audience: &str) -> Expectation {
    Expectation {
        jwks_url: stack.url("/.guichet/jwks.json"),
        issuer: stack.gateway_url.clone(),
        audience: audience.to_string(),
        max_age: 300,
    }
}

/// Every verifier accepted (`reason` = None) or rejected with a message containing `reason`.
fn assert_all(results: &[(&str, bool, String)], reason: Option<&str>, case: &str) {
    for (name, ok, output) in results {
        eprintln!("{case} / {name}: {}", output.trim());
        assert_eq!(
            *ok,
            reason.is_none(),
            "{case}: the {name} verifier said: {output}"
        );
        match reason {
            None => assert!(
                output.contains("OK sub=7f6c1e54-3b8a-4d8e-9a0f-2c1d5e6f7a80"),
                "{case}, {name}: {output}"
            ),
            Some(reason) => assert!(
                output.contains("REJECTED") && output.to_lowercase().contains(reason),
                "{case}, {name}: expected a rejection for {reason:?}: {output}"
            ),
        }
    }
    assert_eq!(results.len(), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_example_accepts_genuine_and_rejects_forged_identities() {
    let (stack, request, _dir) = signed_stack("verify", "5m").await;
    let captured_at = std::time::Instant::now();
    let audience = format!("http://{}", stack.upstream);
    let headers = request["headers"].as_object().unwrap();
    assert!(headers.contains_key("x-guichet-assertion"), "{request}");
    assert!(headers["x-guichet-signature"]
        .as_str()
        .unwrap()
        .starts_with("t="));

    let jwks = reqwest::get(stack.url("/.guichet/jwks.json"))
        .await
        .unwrap();
    assert_eq!(jwks.headers()["cache-control"], "public, max-age=300");
    let jwks: Value = jwks.json().await.unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    assert!(jwks["keys"][0].get("d").is_none(), "private part published");

    let genuine = run_all(&request, &expectation(&stack, &audience)).await;
    assert_all(&genuine, None, "genuine");

    let mut forged_token = request.clone();
    let token = forged_token["headers"]["x-guichet-assertion"]
        .as_str()
        .unwrap()
        .to_string();
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, parts[1])
            .unwrap(),
    )
    .unwrap();
    claims["email"] = json!("someone.else@interieur.gouv.fr");
    let payload = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        claims.to_string(),
    );
    forged_token["headers"]["x-guichet-assertion"] =
        json!(format!("{}.{}.{}", parts[0], payload, parts[2]));
    assert_all(
        &run_all(&forged_token, &expectation(&stack, &audience)).await,
        Some("signature"),
        "tampered assertion",
    );

    let mut forged_header = request.clone();
    forged_header["headers"]["x-guichet-email"] = json!("someone.else@interieur.gouv.fr");
    assert_all(
        &run_all(&forged_header, &expectation(&stack, &audience)).await,
        Some("mismatch"),
        "tampered header",
    );

    let mut other_path = request.clone();
    other_path["path"] = json!("/admin");
    assert_all(
        &run_all(&other_path, &expectation(&stack, &audience)).await,
        Some("mismatch"),
        "signature replayed on another path",
    );

    assert_all(
        &run_all(&request, &expectation(&stack, "http://another-app.example")).await,
        Some("aud"),
        "wrong audience",
    );

    // By now the captured signature is older than a 3 s window (the runs above take longer),
    // while the assertion (5 min) is still valid.
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(captured_at.elapsed())).await;
    let mut short_window = expectation(&stack, &audience);
    short_window.max_age = 3;
    assert_all(
        &run_all(&request, &short_window).await,
        Some("too old"),
        "old signature",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_example_rejects_expired_identities() {
    let (stack, request, _dir) = signed_stack("verify-expiry", "1s").await;
    let audience = format!("http://{}", stack.upstream);
    // Past the assertion's life plus the examples' 5 s leeway.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_all(
        &run_all(&request, &expectation(&stack, &audience)).await,
        Some("xp"),
        "expired assertion",
    );
}

#[test]
fn keygen_never_overwrites_a_key() {
    let dir = scratch_dir("keygen");
    let key: &Path = &dir.join("k.pem");
    for algorithm in ["ES256", "EdDSA"] {
        let _ = std::fs::remove_file(key);
        let first = Command::new(BIN)
            .args([
                "keygen",
                "--algorithm",
                algorithm,
                "--out",
                key.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(first.status.success(), "{first:?}");
        let pem = std::fs::read_to_string(key).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let second = Command::new(BIN)
            .args(["keygen", "--out", key.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!second.status.success());
        assert_eq!(std::fs::read_to_string(key).unwrap(), pem);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_client_supplied_identity_header_survives_in_any_spelling() {
    let dir = scratch_dir("strip-keys");
    let key = support::keygen(&dir.join("assertion.pem"), "ES256");
    let extra = format!(
        "headers = {{ uid = \"X-Agent-Id\" }}\n\n[headers]\npreset = \"oauth2-proxy\"\nclaims = {{ email = \"X-Remote-Mail\" }}\n\n\
         [assertion]\nkeys = [\"{}\"]\nheader = \"X-App-Identity\"\n\n[signature]\nkey = \"{HMAC_KEY}\"\nheader = \"X-App-Signature\"\n",
        key.display()
    );
    let stack = Stack::start_with_extra("strip-all", extra).await;
    let mut browser = Browser::new();
    browser.login(&stack, "/").await;
    let forged = [
        ("X-Forwarded-User", "evil"),
        ("x_forwarded_user", "evil"),
        ("X-Forwarded-Email", "evil@example.org"),
        ("x-forwarded-email", "evil2@example.org"),
        ("X_FORWARDED_PREFERRED_USERNAME", "evil"),
        ("X-Agent-Id", "evil"),
        ("x_agent_id", "evil"),
        ("X-Remote-Mail", "evil@example.org"),
        ("X-App-Identity", "evil.jwt.value"),
        ("x_app_identity", "evil.jwt.value"),
        ("X-App-Signature", "t=1, v1=evil"),
        ("X-Guichet-Sub", "evil"),
        ("x_guichet_given_name", "evil"),
    ];
    let page = browser.get_with(&stack.url("/"), &forged).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        !page.body.contains("evil"),
        "a forged header reached the app:\n{}",
        page.body
    );
    // Header names only: "x_" may well occur inside a base64url value (the JWT, the ids).
    assert!(
        !page
            .body
            .lines()
            .any(|line| line.to_ascii_lowercase().starts_with("x_")),
        "an underscore spelling reached the app:\n{}",
        page.body
    );
    let one = |name: &str| {
        let values = echoed(&page.body, name);
        assert_eq!(values.len(), 1, "{name}: {values:?}\n{}", page.body);
        values[0].to_string()
    };
    assert_eq!(
        one("x-forwarded-user"),
        "7f6c1e54-3b8a-4d8e-9a0f-2c1d5e6f7a80"
    );
    assert_eq!(
        one("x-forwarded-email"),
        "helene.dupre-lefevre@interieur.gouv.fr"
    );
    assert_eq!(one("x-agent-id"), "hdupre");
    assert_eq!(
        one("x-remote-mail"),
        "helene.dupre-lefevre@interieur.gouv.fr"
    );
    assert!(one("x-app-identity").starts_with("ey"));
    assert!(one("x-app-signature").starts_with("t="));
    assert!(
        echoed(&page.body, "x-guichet-uid").is_empty(),
        "uid is renamed for this provider"
    );
}
