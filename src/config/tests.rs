//! Tests of loading and validation, on configuration texts.

use super::*;
use std::collections::HashMap;
use std::time::Duration;
use validate::parse_size;

struct MapEnvironment(HashMap<&'static str, &'static str>);
impl Environment for MapEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).map(|v| v.to_string())
    }
}

fn no_env() -> MapEnvironment {
    MapEnvironment(HashMap::new())
}

/// The problems a configuration text is refused with, as printed.
fn refusal(text: &str) -> String {
    from_toml(text, Path::new("t.toml"), &no_env())
        .unwrap_err()
        .to_string()
}

const MINIMAL: &str = r#"
[server]
listen = "127.0.0.1:8080"
public_url = "https://app.example.gouv.fr"

[upstream]
url = "http://127.0.0.1:9000"

[[provider]]
id = "agentconnect"
issuer = "https://fca.integ01.dev-agentconnect.fr/api/v2"
client_id = "abc"
client_secret_env = "AC_SECRET"
scopes = ["openid", "given_name", "usual_name", "email", "uid"]
"#;

#[test]
fn minimal_config_gets_defaults() {
    let env = MapEnvironment(HashMap::from([("AC_SECRET", "s3cret")]));
    let s = from_toml(MINIMAL, Path::new("t.toml"), &env).unwrap();
    assert_eq!(s.session.idle_timeout, Duration::from_secs(30 * 60));
    assert_eq!(s.session.max_lifetime, Duration::from_secs(12 * 3600));
    assert_eq!(s.session.cookie_name, "__Host-guichet");
    assert!(s.session.secure);
    assert!(s.threads >= 1);
    assert!(!s.work_stealing);
    assert!(!crate::server::tuned_conf(s.threads).work_stealing);
    let stealing = MINIMAL.replace("[upstream]", "work_stealing = true\n[upstream]");
    let s = from_toml(&stealing, Path::new("t.toml"), &env).unwrap();
    assert!(s.work_stealing);
    assert!(
        refusal(&MINIMAL.replace("[upstream]", "work_stealing = \"yes\"\n[upstream]"))
            .contains("work_stealing")
    );
    assert_eq!(s.public_url.as_str(), "https://app.example.gouv.fr/");
    let p = &s.providers[0];
    assert_eq!(p.scopes, ["given_name", "usual_name", "email", "uid"]);
    assert_eq!(p.client_secret.as_ref().unwrap().expose(), "s3cret");
    assert_eq!(p.token_auth_method, TokenAuthMethod::ClientSecretPost);
    assert!(p.pkce);
}

#[test]
fn secrets_never_show_in_debug() {
    let env = MapEnvironment(HashMap::from([("AC_SECRET", "s3cret-value")]));
    let s = from_toml(MINIMAL, Path::new("t.toml"), &env).unwrap();
    let printed = format!("{s:?}");
    assert!(!printed.contains("s3cret-value"));
    assert!(printed.contains("REDACTED"));
}

#[test]
fn unknown_key_is_an_error_with_its_line() {
    let text = MINIMAL.replace("[upstream]", "[upstream]\nurll = \"x\"");
    let err = from_toml(&text, Path::new("t.toml"), &no_env()).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("unknown field `urll`"), "{message}");
    assert!(message.contains("line 7"), "{message}");
}

#[test]
fn every_problem_is_reported_with_its_key() {
    let text = r#"
[server]
listen = "nowhere"
public_url = "ftp://x"
[upstream]
url = "http://127.0.0.1:9000/app"
[session]
idle_timeout = "soon"
[[provider]]
id = "bad id"
issuer = "x"
client_id = ""
client_secret = "a"
client_secret_env = "B"
token_auth_method = "tls_client_auth"
"#;
    let err = from_toml(text, Path::new("t.toml"), &no_env()).unwrap_err();
    let ConfigError::Invalid { problems, .. } = err else {
        panic!("expected validation problems, got {err}");
    };
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    let listen = problems.iter().find(|p| p.key == "server.listen").unwrap();
    assert_eq!(listen.location, Some((3, 10)), "{listen}");
    let token = problems
        .iter()
        .find(|p| p.key == "provider[0].token_auth_method")
        .unwrap();
    assert_eq!(token.location, Some((15, 21)), "{token}");
    for expected in [
        "server.listen",
        "server.public_url",
        "upstream.url",
        "session.idle_timeout",
        "provider[0].id",
        "provider[0].issuer",
        "provider[0].client_id",
        "provider[0].client_secret",
        "provider[0].token_auth_method",
    ] {
        assert!(keys.contains(&expected), "{expected} missing in {keys:?}");
    }
}

#[test]
fn franceconnect_plus_needs_decryption_keys_and_private_key_jwt_signing_keys() {
    let plus = |extra: &str| {
        format!(
            "[server]\nlisten = \"127.0.0.1:8080\"\npublic_url = \"https://app.example.gouv.fr\"\n\
             [upstream]\nurl = \"http://127.0.0.1:9000\"\n[[provider]]\nid = \"fcplus\"\n\
             kind = \"franceconnect-plus\"\nenvironment = \"integration\"\nclient_id = \"abc\"\n{extra}"
        )
    };
    let err = refusal(&plus("token_auth_method = \"private_key_jwt\"\n"));
    assert!(
        err.contains("provider[0].encryption_keys: franceconnect-plus encrypts"),
        "{err}"
    );
    assert!(
        err.contains("provider[0].signing_keys: private_key_jwt signs"),
        "{err}"
    );
    assert!(
        !err.contains("client_secret"),
        "no secret is needed with private_key_jwt: {err}"
    );

    let dir = std::env::temp_dir().join(format!("guichet-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("enc.pem");
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\n").unwrap();
    let text = plus(&format!(
        "token_auth_method = \"private_key_jwt\"\nencryption_keys = [{key:?}]\nsigning_keys = [{key:?}, \"/nonexistent/sig.pem\"]\n"
    ));
    let err = refusal(&text);
    assert!(
        err.contains("provider[0].signing_keys[1]: cannot read /nonexistent/sig.pem"),
        "{err}"
    );
    let text = plus(&format!(
        "token_auth_method = \"private_key_jwt\"\nencryption_keys = [{key:?}]\nsigning_keys = [{key:?}]\n"
    ));
    let settings = from_toml(&text, Path::new("t.toml"), &no_env()).unwrap();
    let provider = &settings.providers[0];
    assert!(provider.client_secret.is_none());
    assert_eq!(provider.token_auth_method, TokenAuthMethod::PrivateKeyJwt);
    assert_eq!(
        provider.issuer,
        "https://auth.integ01.dev-franceconnect.fr/api/v2"
    );
    assert!(provider
        .describe()
        .contains("no client secret, token endpoint auth private_key_jwt"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shared_store_settings_are_checked_without_echoing_the_url() {
    let with = |shared: &str| {
        format!(
            "{}\n[session.shared]\n{shared}",
            MINIMAL.replace("client_secret_env = \"AC_SECRET\"", "client_secret = \"s\"")
        )
    };
    let key = "key = \"0123456789abcdef0123456789abcdef\"\n";
    let settings = from_toml(
        &with(&format!(
            "url = \"redis://:pw@127.0.0.1:6379/2\"\nrecheck = \"2s\"\n{key}"
        )),
        Path::new("t.toml"),
        &no_env(),
    )
    .unwrap();
    let shared = settings.session.shared.unwrap();
    assert_eq!(shared.url.expose(), "redis://:pw@127.0.0.1:6379/2");
    assert_eq!(shared.recheck, Duration::from_secs(2));
    assert_eq!(shared.timeout, Duration::from_millis(250));
    assert_eq!(shared.key_prefix, "guichet:");
    assert!(!format!("{shared:?}").contains("pw"));

    let err = refusal(&with(
        "url = \"http://:hunter2@cache:6379\"\ntimeout = \"0s\"",
    ));
    assert!(
        err.contains("session.shared.url: expected redis://"),
        "{err}"
    );
    assert!(
        err.contains("session.shared.timeout: must be longer than zero"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    // The replicas' key: required, long enough, never echoed.
    let err = refusal(&with("url = \"redis://a\""));
    assert!(
        err.contains("session.shared.key: give exactly one of"),
        "{err}"
    );
    let err = refusal(&with("url = \"redis://a\"\nkey = \"short-secret-k3y\""));
    assert!(err.contains("session.shared.key: use at least 32"), "{err}");
    assert!(!err.contains("short-secret-k3y"), "{err}");
    let err = refusal(&with("url = \"redis://a\"\nurl_env = \"R\""));
    assert!(err.contains("session.shared.url"), "{err}");
    let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let err = refusal(&with(&format!("url = \"redis://a\"\nca_file = {ca:?}")));
    assert!(
        err.contains("session.shared.ca_file: only for a TLS store"),
        "{err}"
    );
}

#[test]
fn proxies_sizes_and_header_names_are_checked() {
    let text = MINIMAL
        .replace(
            "[upstream]",
            "trusted_proxies = [\"10.0.0.0/8\", \"::1\", \"10.0.0.0/40\"]\n[session]\nmax_memory = \"lots\"\n[headers.claims]\nemail = \"Content-Length\"\nuid = \"X_Forwarded_For\"\nsiret = \"X-Siret\"\n[upstream]",
        )
        .replace("client_secret_env = \"AC_SECRET\"", "client_secret = \"s\"")
        + "\n[assertion]\nheader = \"Transfer-Encoding\"\nkeys = []\n";
    let err = refusal(&text);
    for expected in [
        "server.trusted_proxies[2]: expected an address or a CIDR",
        "session.max_memory: expected a size",
        "headers.claims.email: \"Content-Length\" is a hop-by-hop",
        "headers.claims.uid: \"X_Forwarded_For\" is a hop-by-hop",
        "assertion.header: \"Transfer-Encoding\" is a hop-by-hop",
    ] {
        assert!(err.contains(expected), "{expected} missing in {err}");
    }
    assert!(!err.contains("headers.claims.siret"), "{err}");
    assert!(!err.contains("trusted_proxies[0]") && !err.contains("trusted_proxies[1]"));
    assert_eq!(parse_size("512MiB"), Some(512 << 20));
    assert_eq!(parse_size("2GiB"), Some(2 << 30));
    assert_eq!(parse_size("1000"), Some(1000));
    assert_eq!(parse_size("1 GB"), Some(1_000_000_000));
    assert_eq!(parse_size("1TiB"), None);
    assert_eq!(parse_size("99999999999999999999GiB"), None);
}

#[test]
fn parse_errors_never_quote_a_secret() {
    let secret_lines = [
        "client_secret = \"s3cr3t-value\"\nclient_secret = \"s3cr3t-value\"",
        "client_secret = 12345678901",
    ];
    for lines in secret_lines {
        let text = MINIMAL.replace("client_secret_env = \"AC_SECRET\"", lines);
        let err = from_toml(&text, Path::new("t.toml"), &no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("line"), "{err}");
        assert!(err.contains("client_secret"), "the key is named: {err}");
        assert!(
            !err.contains("s3cr3t") && !err.contains("12345678901"),
            "{err}"
        );
    }
    let text = format!(
        "{}\n[session.shared]\nurl = \"redis://:hunter2@cache:6379\"\nurl = \"redis://:hunter2@cache:6379\"\n",
        MINIMAL
    );
    let err = from_toml(&text, Path::new("t.toml"), &no_env())
        .unwrap_err()
        .to_string();
    assert!(err.contains("url"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    // A mistake elsewhere still shows its key, with the value hidden.
    let text = MINIMAL.replace("max_sessions", "x").replace(
        "[upstream]",
        "[session]\nmax_sessions = \"many\"\n[upstream]",
    );
    let err = from_toml(&text, Path::new("t.toml"), &no_env())
        .unwrap_err()
        .to_string();
    assert!(err.contains("max_sessions ="), "{err}");
}

#[test]
fn missing_env_secret_is_named() {
    let err = from_toml(MINIMAL, Path::new("t.toml"), &no_env()).unwrap_err();
    assert!(err
        .to_string()
        .contains("provider[0].client_secret_env: environment variable AC_SECRET is not set"));
}

#[test]
fn plain_http_public_url_drops_host_prefix_and_secure() {
    let text = MINIMAL.replace("https://app.example.gouv.fr", "http://127.0.0.1:8080");
    let env = MapEnvironment(HashMap::from([("AC_SECRET", "x")]));
    let s = from_toml(&text, Path::new("t.toml"), &env).unwrap();
    assert_eq!(s.session.cookie_name, "guichet");
    assert!(!s.session.secure);
}

#[test]
fn the_mode_decides_whether_an_upstream_and_front_proxies_are_needed() {
    let env = MapEnvironment(HashMap::from([("AC_SECRET", "s3cret")]));
    let without_upstream = MINIMAL.replace("[upstream]\nurl = \"http://127.0.0.1:9000\"\n", "");
    let with_mode = |text: &str, mode: &str, proxies: &str| {
        text.replace(
            "public_url = \"https://app.example.gouv.fr\"",
            &format!("public_url = \"https://app.example.gouv.fr\"\nmode = \"{mode}\"\ntrusted_proxies = [{proxies}]"),
        )
    };
    assert_eq!(
        from_toml(MINIMAL, Path::new("t.toml"), &env).unwrap().mode,
        Mode::Proxy
    );

    // auth: no upstream needed, and one given is ignored with a warning.
    let auth = from_toml(
        &with_mode(&without_upstream, "auth", "\"127.0.0.1\""),
        Path::new("t.toml"),
        &env,
    )
    .unwrap();
    assert_eq!(auth.mode, Mode::Auth);
    assert!(auth.upstream.is_none() && auth.warnings.is_empty());
    let ignored = from_toml(
        &with_mode(MINIMAL, "auth", "\"127.0.0.1\""),
        Path::new("t.toml"),
        &env,
    )
    .unwrap();
    assert!(ignored.upstream.is_none());
    assert!(
        ignored
            .warnings
            .iter()
            .any(|w| w.starts_with("upstream: ignored")),
        "{:?}",
        ignored.warnings
    );

    // both: an upstream and front proxies.
    let both = from_toml(
        &with_mode(MINIMAL, "both", "\"10.0.0.0/8\""),
        Path::new("t.toml"),
        &env,
    )
    .unwrap();
    assert_eq!(both.mode, Mode::Both);
    assert!(both.upstream.is_some());

    let cases = [
        (without_upstream.clone(), "upstream: missing"),
        (
            with_mode(&without_upstream, "both", "\"::1\""),
            "upstream: missing",
        ),
        (
            with_mode(&without_upstream, "auth", ""),
            "server.trusted_proxies: list the front proxy",
        ),
        (
            with_mode(MINIMAL, "both", ""),
            "server.trusted_proxies: list the front proxy",
        ),
        (
            with_mode(MINIMAL, "forward", "\"::1\""),
            "server.mode: expected \"proxy\", \"auth\" or \"both\"",
        ),
    ];
    for (text, expected) in cases {
        let err = from_toml(&text, Path::new("t.toml"), &env)
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{expected} missing in {err}");
    }
}

#[test]
fn pages_files_are_read_and_checked() {
    let env = MapEnvironment(HashMap::from([("AC_SECRET", "s3cret")]));
    let dir = std::env::temp_dir().join(format!("guichet-pages-{}", std::process::id()));
    let templates = dir.join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(dir.join("logo.png"), b"\x89PNG\r\n\x1a\nrest").unwrap();
    std::fs::write(dir.join("logo.txt"), b"not an image").unwrap();
    std::fs::write(dir.join("big.svg"), vec![b' '; 600 * 1024]).unwrap();
    std::fs::write(templates.join("error.html"), "{{ error.title }}").unwrap();
    std::fs::write(templates.join("notes.txt"), "ignored: not .html").unwrap();
    let with_pages =
        |pages: &str| format!("{MINIMAL}\n[pages]\n{pages}").replace("$DIR", dir.to_str().unwrap());

    let s = from_toml(
        &with_pages(
            "application_name = \"Registre\"\norganisation = \"Ministère\\nde l'Intérieur\"\nsupport_url = \"mailto:aide@example.gouv.fr\"\nlogo = \"$DIR/logo.png\"\nlogo_alt = \"Ministère\"\nalternative_login_url = \"/login\"\ntemplates = \"$DIR/templates\"",
        ),
        Path::new("t.toml"),
        &env,
    )
    .unwrap();
    assert_eq!(s.pages.logo.as_ref().unwrap().content_type, "image/png");
    assert_eq!(
        s.pages.alternative_login,
        Some(("/login".into(), "Se connecter autrement".into()))
    );
    assert_eq!(
        s.pages.templates,
        [("error.html".to_string(), "{{ error.title }}".to_string())]
    );

    for (pages, expected) in [
        (
            "logo = \"$DIR/logo.png\"",
            "pages.logo_alt: required with pages.logo",
        ),
        (
            "logo = \"$DIR/logo.txt\"\nlogo_alt = \"x\"",
            "is not a PNG, JPEG, WebP or SVG image",
        ),
        (
            "logo = \"$DIR/big.svg\"\nlogo_alt = \"x\"",
            "at most 524288 are accepted",
        ),
        (
            "logo = \"$DIR/absent.png\"\nlogo_alt = \"x\"",
            "pages.logo: cannot read",
        ),
        (
            "support_url = \"javascript:alert(1)\"",
            "pages.support_url: expected an https://",
        ),
        (
            "alternative_login_url = \"//evil.example\"",
            "pages.alternative_login_url: expected a path",
        ),
        (
            "alternative_login_url = \"javascript:x\"",
            "pages.alternative_login_url",
        ),
        (
            "alternative_login_label = \"x\"",
            "set pages.alternative_login_url too",
        ),
        (
            "application_name = \"  \"",
            "pages.application_name: must be 1 to 200",
        ),
        (
            "templates = \"$DIR/absent\"",
            "pages.templates: cannot read the directory",
        ),
        ("colour = \"blue\"", "unknown field `colour`"),
    ] {
        let error = from_toml(&with_pages(pages), Path::new("t.toml"), &env)
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{pages}: {error}");
    }
    // The application's own sign-in must be reachable without a session.
    assert!(
        s.warnings
            .iter()
            .any(|w| w.starts_with("pages.alternative_login_url: /login requires a session")),
        "{:?}",
        s.warnings
    );
    let public = from_toml(
        &(with_pages("alternative_login_url = \"/login?next=/\"")
            + "\n[[route]]\nexact = \"/login\"\nauth = \"none\"\n"),
        Path::new("t.toml"),
        &env,
    )
    .unwrap();
    assert!(
        !public.warnings.iter().any(|w| w.starts_with("pages.")),
        "{:?}",
        public.warnings
    );
    std::fs::write(templates.join("eror.html"), "typo").unwrap();
    let error = from_toml(
        &with_pages("templates = \"$DIR/templates\""),
        Path::new("t.toml"),
        &env,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("eror.html: not a template guichet renders"),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
