//! The command line: `guichet check` on the shipped configurations and on broken ones.

mod support;

use std::process::Command;

use support::BIN;

fn check(path: &str, secret: Option<&str>) -> (bool, String, String) {
    let mut command = Command::new(BIN);
    command
        .args(["check", "--config", path])
        .env_remove("GUICHET_AGENTCONNECT_SECRET")
        .env_remove("GUICHET_FRANCECONNECT_SECRET")
        .env_remove("RUNTIME_DIRECTORY");
    if let Some(secret) = secret {
        command.env("GUICHET_AGENTCONNECT_SECRET", secret);
        command.env("GUICHET_FRANCECONNECT_SECRET", secret);
        command.env(
            "GUICHET_HMAC_KEY",
            "an-example-hmac-key-of-at-least-32-characters",
        );
        command.env(
            "GUICHET_SHARED_KEY",
            "the-replicas-share-this-secret-of-32-characters-or-more",
        );
    }
    let output = command.output().expect("run guichet check");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The shipped file with its absolute key path pointed at a fresh key in a scratch directory.
fn with_scratch_key(path: &str) -> String {
    let dir = std::env::temp_dir().join(format!("guichet-cli-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("assertion.pem");
    if !key.exists() {
        support::keygen(&key, "ES256");
    }
    // Real files for the ones the example names under /etc/guichet: `check` loads them.
    let certs = support::TestCerts::generate(&dir);
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace("/etc/guichet/assertion.pem", key.to_str().unwrap())
        .replace("/etc/guichet/fcplus-enc.pem", key.to_str().unwrap())
        .replace("/etc/guichet/fcplus-sig.pem", key.to_str().unwrap())
        .replace(
            "/etc/guichet/tls/fullchain.pem",
            certs.cert.to_str().unwrap(),
        )
        .replace("/etc/guichet/tls/privkey.pem", certs.key.to_str().unwrap())
        .replace("/etc/guichet/upstream-ca.pem", certs.ca.to_str().unwrap())
        .replace("/etc/guichet/redis-ca.pem", certs.ca.to_str().unwrap());
    let copy = dir.join(path.replace('/', "_"));
    std::fs::write(&copy, text).unwrap();
    copy.to_str().unwrap().to_string()
}

#[test]
fn shipped_configurations_pass_check() {
    for path in [
        "config/guichet.example.toml",
        "examples/guichet.toml",
        "config/proconnect-integration.toml",
        "config/proconnect-production.toml",
        "config/proconnect-rie-production.toml",
        "config/franceconnect-integration.toml",
        "config/franceconnect-production.toml",
        "config/franceconnect-plus-integration.toml",
        "config/franceconnect-plus-production.toml",
    ] {
        let path = with_scratch_key(path);
        let path = path.as_str();
        let (ok, stdout, stderr) = check(path, Some("very-secret-value"));
        assert!(ok, "{path}: {stderr}");
        assert!(stdout.contains("OK"), "{stdout}");
        assert!(
            stdout.contains("client secret set (masked)")
                || stdout.contains("no client secret, token endpoint auth private_key_jwt"),
            "{stdout}"
        );
        assert!(!stdout.contains("very-secret-value"));
        if path.contains("guichet.example") {
            assert!(
                stdout.contains(
                    "sessions: shared by replicas in rediss:// (recheck 5s, timeout 250ms)"
                ),
                "{stdout}"
            );
        }
        if path.contains("franceconnect-plus") {
            assert!(
                stdout.contains("published at /.guichet/provider-jwks.json: encryption key, kid ")
                    && stdout.contains("signing key, kid "),
                "{stdout}"
            );
        }
    }
}

#[test]
fn missing_secret_is_reported() {
    let (ok, _, stderr) = check("examples/guichet.toml", None);
    assert!(!ok);
    assert!(
        stderr.contains("provider[0].client_secret_env: environment variable GUICHET_AGENTCONNECT_SECRET is not set"),
        "{stderr}"
    );
}

#[test]
fn every_problem_is_printed_with_its_key_and_check_fails() {
    let dir = std::env::temp_dir().join(format!("guichet-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        r#"
[server]
listen = "localhost"
public_url = "app.example.gouv.fr"
[upstream]
url = "http://127.0.0.1:9000"
[session]
max_lifetime = "forever"
[[provider]]
id = "ac"
issuer = "https://idp.example/api/v2"
client_id = "x"
client_secret = "inline-secret-value"
scopes = ["openid", "two words"]
"#,
    )
    .unwrap();
    let (ok, _, stderr) = check(bad.to_str().unwrap(), None);
    assert!(!ok);
    for key in [
        "server.listen",
        "server.public_url",
        "session.max_lifetime",
        "provider[0].scopes[1]",
    ] {
        assert!(stderr.contains(key), "{key} missing in:\n{stderr}");
    }
    assert!(!stderr.contains("inline-secret-value"));

    let typo = dir.join("typo.toml");
    std::fs::write(
        &typo,
        "[server]\nlisten = \"127.0.0.1:1\"\npublic_url = \"http://x\"\n[upstream]\nurl = \"http://127.0.0.1:2\"\nread_timeut = \"1s\"\n",
    )
    .unwrap();
    let (ok, _, stderr) = check(typo.to_str().unwrap(), None);
    assert!(!ok);
    assert!(stderr.contains("unknown field `read_timeut`"), "{stderr}");
    assert!(stderr.contains("line 6"), "{stderr}");

    // A syntax error on a line holding a secret: the line is named, its value never printed
    // (`guichet check` runs as ExecStartPre: stderr goes to the journal).
    for (name, text) in [
        (
            "dup-secret.toml",
            "[server]\nlisten = \"127.0.0.1:1\"\npublic_url = \"http://x\"\n[upstream]\nurl = \"http://127.0.0.1:2\"\n[[provider]]\nid = \"a\"\nclient_id = \"c\"\nclient_secret = \"Sup3rS3cret-one\"\nclient_secret = \"Sup3rS3cret-two\"\n",
        ),
        (
            "dup-url.toml",
            "[server]\nlisten = \"127.0.0.1:1\"\npublic_url = \"http://x\"\n[upstream]\nurl = \"http://127.0.0.1:2\"\n[session.shared]\nurl = \"redis://:Sup3rS3cret@db:6379\"\nurl = \"redis://:Sup3rS3cret@db:6379\"\n",
        ),
        (
            "bad-type.toml",
            "[server]\nlisten = \"127.0.0.1:1\"\npublic_url = \"http://x\"\n[upstream]\nurl = \"http://127.0.0.1:2\"\n[signature]\nkey = 4815162342\n",
        ),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let (ok, stdout, stderr) = check(path.to_str().unwrap(), None);
        assert!(!ok, "{name}");
        assert!(stderr.contains("line"), "{name}: {stderr}");
        for secret in ["Sup3rS3cret", "4815162342"] {
            assert!(
                !stderr.contains(secret) && !stdout.contains(secret),
                "{name}: {stderr}"
            );
        }
    }

    let missing = dir.join("nope.toml");
    let (ok, _, stderr) = check(missing.to_str().unwrap(), None);
    assert!(!ok);
    assert!(stderr.contains("cannot read"), "{stderr}");
}

#[test]
fn an_unusable_assertion_key_fails_check_with_its_path() {
    let dir = std::env::temp_dir().join(format!("guichet-cli-badkey-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("not-a-key.pem");
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let config = dir.join("g.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:1\"\npublic_url = \"http://x\"\n[upstream]\nurl = \"http://127.0.0.1:2\"\n\
             [assertion]\nkeys = [\"{}\"]\n[[provider]]\nid = \"p\"\nissuer = \"http://idp\"\nclient_id = \"c\"\nclient_secret = \"s\"\n",
            key.display()
        ),
    )
    .unwrap();
    let (ok, _, stderr) = check(config.to_str().unwrap(), None);
    assert!(!ok);
    assert!(stderr.contains("not-a-key.pem"), "{stderr}");
    assert!(stderr.contains("ES256"), "{stderr}");
}

#[test]
fn a_certificate_that_cannot_be_loaded_fails_check() {
    let dir = std::env::temp_dir().join(format!("guichet-cli-badtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cert.pem"), "not a certificate").unwrap();
    std::fs::write(dir.join("key.pem"), "not a key").unwrap();
    let config = dir.join("g.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:1\"\npublic_url = \"https://x\"\n[server.tls]\ncert = \"{0}/cert.pem\"\nkey = \"{0}/key.pem\"\n\
             [upstream]\nurl = \"http://127.0.0.1:2\"\n[[provider]]\nid = \"p\"\nissuer = \"http://idp\"\nclient_id = \"c\"\nclient_secret = \"s\"\n",
            dir.display()
        ),
    )
    .unwrap();
    let (ok, _, stderr) = check(config.to_str().unwrap(), None);
    assert!(!ok);
    assert!(stderr.contains("server.tls"), "{stderr}");
}

#[test]
fn check_prints_the_effective_preset_settings() {
    let (ok, stdout, stderr) = check("config/franceconnect-production.toml", Some("s3cret-value"));
    assert!(ok, "{stderr}");
    for expected in [
        "kind franceconnect-v2",
        "issuer https://oidc.franceconnect.gouv.fr/api/v2",
        "acr eidas1 (AcrValues)",
        "pkce false",
        "(Jwt)",
        "mandatory claims given_name family_name birthdate gender birthplace birthcountry",
        "hints passed through idp_hint",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected} missing in:\n{stdout}"
        );
    }
    assert!(!stdout.contains("s3cret-value"));
    let (ok, stdout, _) = check("config/proconnect-rie-production.toml", Some("s"));
    assert!(ok);
    assert!(
        stdout.contains("issuer https://auth.agentconnect.rie.gouv.fr/api/v2"),
        "{stdout}"
    );
    assert!(stdout.contains("(ClaimsParameter)"), "{stdout}");
}

#[test]
fn unsupported_kinds_and_bad_presets_are_refused() {
    let dir = std::env::temp_dir().join(format!("guichet-cli-kinds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("g.toml");
    std::fs::write(
        &config,
        "[server]\nlisten = \"127.0.0.1:1\"\npublic_url = \"http://x\"\n[upstream]\nurl = \"http://127.0.0.1:2\"\n\
         [[provider]]\nid = \"fcplus\"\nkind = \"franceconnect-plus\"\nenvironment = \"integration\"\nclient_id = \"c\"\nclient_secret = \"s\"\n\
         [[provider]]\nid = \"fc\"\nkind = \"franceconnect-v2\"\nplatform = \"rie\"\nclient_id = \"c\"\nclient_secret = \"s\"\n",
    )
    .unwrap();
    let (ok, _, stderr) = check(config.to_str().unwrap(), None);
    assert!(!ok);
    assert!(
        stderr.contains(
            "provider[0].encryption_keys: franceconnect-plus encrypts id_token and userinfo"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("provider[1].platform"), "{stderr}");
    assert!(
        stderr.contains("provider[1].issuer: give environment"),
        "{stderr}"
    );

    // A key file that is not a usable key is named by `check`.
    let not_a_key = dir.join("enc.pem");
    std::fs::write(
        &not_a_key,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:1\"\npublic_url = \"http://x\"\n[upstream]\nurl = \"http://127.0.0.1:2\"\n\
             [[provider]]\nid = \"fcplus\"\nkind = \"franceconnect-plus\"\nenvironment = \"integration\"\nclient_id = \"c\"\nclient_secret = \"s\"\n\
             encryption_keys = [{not_a_key:?}]\n"
        ),
    )
    .unwrap();
    let (ok, _, stderr) = check(config.to_str().unwrap(), None);
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "provider fcplus: {}: not a PEM private key",
            not_a_key.display()
        )),
        "{stderr}"
    );
}

#[test]
fn version_names_the_release_and_the_commit() {
    let output = Command::new(BIN).arg("--version").output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with(&format!("guichet {} (git ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    let hash = text
        .trim()
        .trim_end_matches(')')
        .rsplit(' ')
        .next()
        .unwrap();
    assert!(
        hash == "unknown" || (hash.len() == 12 && hash.bytes().all(|b| b.is_ascii_hexdigit())),
        "{text}"
    );
}

#[test]
fn a_template_override_that_cannot_render_fails_check_with_its_file() {
    let dir = std::env::temp_dir().join(format!("guichet-cli-templates-{}", std::process::id()));
    let templates = dir.join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    let config = dir.join("guichet.toml");
    let text = std::fs::read_to_string("examples/guichet.toml").unwrap()
        + &format!("\n[pages]\ntemplates = \"{}\"\n", templates.display());
    std::fs::write(&config, text).unwrap();
    let config = config.to_str().unwrap();

    // A valid override passes.
    std::fs::write(
        templates.join("chooser.html"),
        "{% extends \"base.html\" %}{% block content %}{% for m in methods %}<a href=\"{{ m.href }}\">{{ m.label }}</a>{% endfor %}{% endblock %}",
    )
    .unwrap();
    let (ok, stdout, stderr) = check(config, Some("very-secret-value"));
    assert!(ok, "{stdout}{stderr}");

    // One that cannot render (an unknown filter, found only when rendering) fails, naming it.
    std::fs::write(
        templates.join("error.html"),
        "{% extends \"base.html\" %}{% block content %}{{ error.title | shout }}{% endblock %}",
    )
    .unwrap();
    let (ok, _, stderr) = check(config, Some("very-secret-value"));
    assert!(!ok);
    assert!(
        stderr.contains("pages.templates: error.html") && stderr.contains("shout"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_kubernetes_sidecar_configuration_passes_check() {
    let yaml = std::fs::read_to_string("examples/kubernetes/sidecar.yaml").unwrap();
    let start = yaml
        .find("  guichet.toml: |\n")
        .expect("the ConfigMap's guichet.toml")
        + "  guichet.toml: |\n".len();
    let toml: String = yaml[start..]
        .lines()
        .take_while(|line| line.is_empty() || line.starts_with("    "))
        .map(|line| format!("{}\n", line.strip_prefix("    ").unwrap_or(line)))
        .collect();
    assert!(
        toml.contains("[upstream]") && toml.contains("client_secret_file"),
        "{toml}"
    );
    let dir = std::env::temp_dir().join(format!("guichet-cli-k8s-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("client-secret");
    std::fs::write(&secret, "a-client-secret\n").unwrap();
    let config = dir.join("guichet.toml");
    std::fs::write(
        &config,
        toml.replace(
            "/run/secrets/guichet/client-secret",
            secret.to_str().unwrap(),
        ),
    )
    .unwrap();
    let (ok, stdout, stderr) = check(config.to_str().unwrap(), None);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("OK — listen 0.0.0.0:8080"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}
