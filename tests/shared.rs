//! Several replicas behind one address, sharing `[session.shared]` in a real Redis server
//! (Debian's `redis-server`, started here on a free port): a session made on one replica is
//! served by the other, a login's callback may reach either (its `state` still used once), a
//! logout on one ends the session on both within `recheck`, and when the store goes away each
//! replica keeps serving from its own memory.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{echoed, free_port, Browser, GatewayOptions, Process, Stack};

/// The secret the replicas share (`session.shared.key`).
const SHARED_KEY: &str = "key = \"test-replicas-share-this-32-byte-secret\"\n";

struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_redis(port: u16) -> Redis {
    start_redis_with(port, &["--port", &port.to_string()]).await
}

/// Starts redis-server with `args` and waits until `port` accepts connections.
async fn start_redis_with(port: u16, args: &[&str]) -> Redis {
    let child = Command::new("redis-server")
        .args(args)
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server must be installed (scripts/setup-test-peers.sh)");
    let redis = Redis(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return redis;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis-server did not start on {port}");
}

/// Replica B of a stack: the same configuration (same public_url, provider, store), another
/// port; returns it once ready, and its URL.
async fn start_replica(a: &Stack) -> (Process, String) {
    let (process, url, _) = start_other(a, "replica-b", &[]).await;
    (process, url)
}

/// A command to the Redis server, for the test's own checks.
async fn redis_command<T: redis::FromRedisValue>(port: u16, command: &mut redis::Cmd) -> T {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/0")).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    command.query_async(&mut connection).await.unwrap()
}

/// How many `GETEX` the Redis server has answered.
async fn getex_calls(port: u16) -> u64 {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/0")).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut connection)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("cmdstat_getex:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_sessions_logins_and_logouts() {
    let redis_port = free_port();
    let redis = start_redis(redis_port).await;
    let shared = format!(
        "[session.shared]\nurl = \"redis://127.0.0.1:{redis_port}/0\"\nrecheck = \"1s\"\ntimeout = \"300ms\"\n{SHARED_KEY}"
    );
    let a = Stack::start_with_extra("shared-a", shared).await;
    let (b_process, b) = start_replica(&a).await;

    // Signed in on A, served by B.
    let mut first = Browser::new();
    let page = first.login(&a, "/x").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let sub = echoed(&page.body, "x-guichet-sub")[0].to_string();
    let on_b = first.get(&format!("{b}/x")).await;
    assert_eq!(on_b.status, 200, "{}", on_b.body);
    assert_eq!(echoed(&on_b.body, "x-guichet-sub"), [sub.as_str()]);

    // Under concurrent load, one request per session and `recheck` period asks the store.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = getex_calls(redis_port).await;
    let cookie = first.cookie_header();
    let burst: Vec<_> = (0..32)
        .map(|_| {
            let request = first
                .client
                .get(format!("{b}/x"))
                .header("cookie", cookie.clone())
                .send();
            tokio::spawn(request)
        })
        .collect();
    for request in burst {
        assert_eq!(request.await.unwrap().unwrap().status(), 200);
    }
    let calls = getex_calls(redis_port).await - before;
    assert!(
        (1..=2).contains(&calls),
        "{calls} calls to the store for 32 requests"
    );

    // The store loses everything (a restart without persistence): the replicas holding the
    // session write it back instead of signing the visitor out.
    let () = redis_command(redis_port, &mut redis::cmd("FLUSHALL")).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(first.get(&a.url("/x")).await.status, 200);
    let keys: Vec<String> =
        redis_command(redis_port, redis::cmd("KEYS").arg("guichet:session:*")).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(first.get(&format!("{b}/x")).await.status, 200);

    // A login started on A whose callback reaches B; the session then works on A too.
    let mut second = Browser::new();
    let confirm = second.start_login(&a, "/y", 1).await;
    // What an attacker copying the browser's cookies before the callback would hold.
    let mut replay = Browser::new();
    replay.cookies = second.cookies.clone();
    let back = second.get(&confirm).await;
    let callback = back
        .location
        .expect("callback URL")
        .replace(&a.gateway_url, &b);
    let done = second.get(&callback).await;
    assert_eq!(done.status, 302, "{}\n{}", done.body, b_process.log_text());
    assert_eq!(second.get(&a.url("/y")).await.status, 200);
    // The same state again, with its login cookie, at the other replica: refused (the code is
    // single-use at the provider, and the completed login is marked in the store).
    let again = replay.get(&callback.replace(&b, &a.gateway_url)).await;
    assert!(
        (400..500).contains(&again.status),
        "{} {}",
        again.status,
        again.body
    );
    assert!(!replay.cookies.contains_key("guichet"), "no session");

    // Logout on B ends the session on A within `recheck` (the cookie kept as it was).
    let mut stale = Browser::new();
    stale.cookies = first.cookies.clone();
    assert_eq!(stale.get(&a.url("/x")).await.status, 200);
    let out = first.logout(&format!("{b}/.guichet/logout")).await;
    assert_eq!(out.status, 302);
    // The logout hint the browser got from A opens on B (the replicas share the key).
    let end_session = out.location.unwrap_or_default();
    assert!(end_session.contains("id_token_hint=ey"), "{end_session}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(stale.get(&a.url("/x")).await.status, 302);

    // The store goes away: each replica serves the sessions it holds, and new logins still
    // work (their state and session kept in memory); the failures are counted.
    drop(redis);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let still = second.get(&a.url("/y")).await;
    assert_eq!(still.status, 200, "{}", still.body);
    let mut third = Browser::new();
    let page = third.login(&a, "/z").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let metrics = a.metrics().await;
    assert!(
        metrics.contains("guichet_shared_store_errors_total{entry=\"session\""),
        "{metrics}"
    );
    assert!(a.gateway.log_text().contains("shared store unavailable"));
    drop(b_process);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_behind_tls_with_a_private_ca() {
    // redis-server listening on TLS only, with a certificate from a test CA.
    let dir = support::scratch_dir("shared-tls");
    let certs = support::TestCerts::generate(&dir);
    let port = free_port();
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let _redis = start_redis_with(
        port,
        &[
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            &path(&certs.cert),
            "--tls-key-file",
            &path(&certs.key),
            "--tls-ca-cert-file",
            &path(&certs.ca),
            "--tls-auth-clients",
            "no",
        ],
    )
    .await;
    let a = Stack::start(
        "shared-tls-a",
        GatewayOptions {
            extra: format!(
                "[session.shared]\nurl = \"rediss://127.0.0.1:{port}/0\"\nca_file = \"{}\"\n{SHARED_KEY}",
                path(&certs.ca)
            ),
            ..GatewayOptions::default()
        },
    )
    .await;
    let (b_process, b) = start_replica(&a).await;
    let mut browser = Browser::new();
    assert_eq!(browser.login(&a, "/x").await.status, 200);
    let on_b = browser.get(&format!("{b}/x")).await;
    assert_eq!(on_b.status, 200, "{}\n{}", on_b.body, b_process.log_text());
    let metrics = a.metrics().await;
    assert!(
        !metrics.contains("guichet_shared_store_errors_total{"),
        "{metrics}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Another gateway from `a`'s configuration, on its own port, with `replace` applied (none: a
/// replica; another `session.shared.key` or `public_url`: another deployment); returns it once
/// ready, its URL and its metrics port.
async fn start_other(a: &Stack, name: &str, replace: &[(&str, &str)]) -> (Process, String, String) {
    let a_port = a.gateway_url.rsplit(':').next().unwrap().to_string();
    let port = free_port();
    let mut text = std::fs::read_to_string(&a.config_path)
        .unwrap()
        .replace(
            &format!("listen = \"127.0.0.1:{a_port}\""),
            &format!("listen = \"127.0.0.1:{port}\""),
        )
        .replace(
            a.metrics_url
                .trim_start_matches("http://")
                .trim_end_matches("/metrics"),
            &format!("127.0.0.1:{}", free_port()),
        );
    let metrics_port = text
        .split("[metrics]\nlisten = \"127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    for (from, to) in replace {
        assert!(text.contains(from), "{from} not in the configuration");
        text = text.replace(from, to);
    }
    let path = a.dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    let process = Process::spawn(
        &["run", "--config", path.to_str().unwrap()],
        a.dir.join(format!("{name}.log")),
    );
    let url = format!("http://127.0.0.1:{port}");
    support::wait_for_status(
        &format!("{url}/.guichet/readyz"),
        200,
        Duration::from_secs(20),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", process.log_text()));
    (process, url, metrics_port)
}

/// The store key text of a session cookie value.
fn store_key(cookie: &str) -> String {
    guichet::session::SessionId::from_cookie_value(cookie.as_bytes())
        .expect("a session cookie")
        .to_key()
        .to_text()
}

#[tokio::test(flavor = "multi_thread")]
async fn what_the_store_returns_is_authenticated_bound_and_bounded() {
    let redis_port = free_port();
    let _redis = start_redis(redis_port).await;
    let a = Stack::start_with_extra("shared-hostile", format!(
                "[session.shared]\nurl = \"redis://127.0.0.1:{redis_port}/0\"\nrecheck = \"1s\"\ntimeout = \"300ms\"\n{SHARED_KEY}"
            )).await;
    let (b_process, b) = start_replica(&a).await;
    let mut alice = Browser::new();
    let page = alice.login(&a, "/x").await;
    let sub = echoed(&page.body, "x-guichet-sub")[0].to_string();
    let cookie = alice.cookies["guichet"].clone();
    let key = format!("guichet:session:{}", store_key(&cookie));
    let sealed: String = redis_command(redis_port, redis::cmd("GET").arg(&key)).await;
    assert!(
        !sealed.contains(&sub),
        "the store holds no readable identity"
    );
    assert!(!sealed.contains("x-guichet"), "nor headers");

    // Another deployment on the same store and prefix, with its own key: not its session.
    let (c_process, c_url, c_metrics) = start_other(
        &a,
        "other-key",
        &[(
            SHARED_KEY,
            "key = \"another-deployment-has-its-own-secret-key\"\n",
        )],
    )
    .await;
    assert_eq!(alice.get(&format!("{c_url}/x")).await.status, 302);
    // The same key but another public_url: not its session either.
    let (d_process, d_url, _) = start_other(
        &a,
        "other-url",
        &[(
            &format!("public_url = \"{}\"", a.gateway_url),
            "public_url = \"http://app-b.example\"",
        )],
    )
    .await;
    assert_eq!(alice.get(&format!("{d_url}/x")).await.status, 302);
    let metrics = reqwest::get(format!("http://127.0.0.1:{c_metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("guichet_shared_store_refused_total{reason=\"unauthenticated\"} 1"),
        "{metrics}"
    );
    assert!(c_process.log_text().contains("failed its check"));

    // Someone who can write to the store copies Alice's entry under a cookie of their own, or
    // writes a plain record: neither opens a session.
    let forged = guichet::session::random_token();
    let () = redis_command(
        redis_port,
        redis::cmd("SET")
            .arg(format!("guichet:session:{}", store_key(&forged)))
            .arg(&sealed),
    )
    .await;
    let plain = guichet::session::random_token();
    let () = redis_command(
        redis_port,
        redis::cmd("SET")
            .arg(format!("guichet:session:{}", store_key(&plain)))
            .arg(format!(
                "{{\"identity\":{{\"provider\":\"agentconnect\",\"sub\":\"{sub}\",\"acr\":\"eidas3\",\"amr\":[],\"claims\":{{}}}},\"id_token\":\"x\",\"access_token\":null,\"created_at_ms\":1000}}"
            )),
    )
    .await;
    for cookie in [&forged, &plain] {
        let mut mallory = Browser::new();
        mallory.cookies.insert("guichet".into(), cookie.clone());
        assert_eq!(mallory.get(&format!("{b}/x")).await.status, 302);
    }
    assert_eq!(
        alice.get(&format!("{b}/x")).await.status,
        200,
        "Alice's own still works"
    );

    // A flood of made-up cookies: each unknown id costs at most one lookup, repeated ones none.
    let before = getex_calls(redis_port).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let repeated = guichet::session::random_token();
    for i in 0..200 {
        let made_up = if i % 2 == 0 {
            guichet::session::random_token()
        } else {
            repeated.clone()
        };
        let response = client
            .get(format!("{b}/x"))
            .header("cookie", format!("guichet={made_up}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302);
    }
    let calls = getex_calls(redis_port).await - before;
    assert!(calls <= 101, "{calls} lookups for 101 distinct made-up ids");

    // The store stalls (all clients paused past the timeout): sessions held in memory are
    // served throughout, and the store serves again as soon as it is back (no back-off).
    let mut bob = Browser::new();
    assert_eq!(bob.login(&a, "/y").await.status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let () = redis_command(
        redis_port,
        redis::cmd("CLIENT").arg("PAUSE").arg(600).arg("ALL"),
    )
    .await;
    assert_eq!(
        alice.get(&format!("{b}/x")).await.status,
        200,
        "held in memory"
    );
    assert_eq!(bob.get(&a.url("/y")).await.status, 200, "held in memory");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let on_b = bob.get(&format!("{b}/y")).await;
    assert_eq!(on_b.status, 200, "{}", b_process.log_text());

    // A logout leaves a tombstone in the session's place: no replica can write it back.
    let out = alice.logout(&a.url("/.guichet/logout")).await;
    assert_eq!(out.status, 302);
    let value: String = redis_command(redis_port, redis::cmd("GET").arg(&key)).await;
    assert_eq!(value, "!ended");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut stale = Browser::new();
    stale.cookies.insert("guichet".into(), cookie);
    assert_eq!(stale.get(&format!("{b}/x")).await.status, 302);
    let value: String = redis_command(redis_port, redis::cmd("GET").arg(&key)).await;
    assert_eq!(value, "!ended");
    drop((b_process, c_process, d_process));
}
