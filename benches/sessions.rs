//! Sessions at scale, through guichet's own constructors (`Gateway::new`, `Gateway::start_session`
//! as a login calls it, hence `SessionPlan::build` with the default header set).
//!
//! - Without arguments (as `cargo bench` runs it): fills a store with `SESSIONS` sessions
//!   (default 1,000,000) of AgentConnect-like identities with a realistic id_token, and prints
//!   the process's RSS before and after, and the bytes per session.
//! - `--serve CONFIG --fill N`: runs the gateway of CONFIG with N sessions already in its store
//!   and prints the cookie of one of them on standard output, for `benches/load.sh` to measure
//!   the proxied path with a full store; `--cookies K` prints the last K cookies, one per line
//!   (K users signed in at once). `--upstream-headers FILE` also writes, one `name: value` per
//!   line, the headers guichet adds to such a request (`GET /` with the first of those
//!   cookies) on its way to the application — forwarding headers, the session's identity, and
//!   the assertion and signature when configured —, made by the proxy's own `prepare_upstream`:
//!   `benches/passthrough.rs --add-headers FILE` sends them, to measure what the larger
//!   request alone costs.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::time::Instant;

use guichet::gateway::Gateway;
use guichet::identity::Identity;
use guichet::session::SessionRecord;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

/// The i-th visitor: an AgentConnect identity with every claim of the default scopes, and an
/// id_token of the size AgentConnect's are (an ES256 JWT of about 820 characters).
fn record(provider: &str, i: usize) -> SessionRecord {
    let identity = Identity::new(provider, &format!("{i:08x}-3b8a-4d8e-9a0f-2c1d5e6f7a80"))
        .with_claim("given_name", "Hélène Marie")
        .with_claim("usual_name", "Dupré-Lefèvre")
        .with_claim("email", format!("agent.{i}@interieur.gouv.fr").as_str())
        .with_claim("uid", format!("agent{i}").as_str())
        .with_claim("siret", "21920023500014")
        .with_claim("organizational_unit", "DGSI/SDIT/BUREAU 3")
        .with_claim("idp_id", "71144ab3-ee1a-4401-b7b3-79b44f7daeeb")
        .with_claim("idp_acr", "eidas1");
    // A JWS of the size AgentConnect's are: header, a 700-character payload, and an ES256
    // signature (64 bytes, 86 base64url characters), unique per visitor.
    let mut signature = [0u8; 64];
    signature[..8].copy_from_slice(&(i as u64).to_le_bytes());
    let mut id_token = format!(
        "eyJhbGciOiJFUzI1NiIsImtpZCI6ImFjIn0.{}.{}",
        "x".repeat(700),
        URL_SAFE_NO_PAD.encode(signature)
    );
    // As a login keeps it (a copy of the token's text): no spare capacity, which `format!`
    // leaves and which would count here as session memory.
    id_token.shrink_to_fit();
    SessionRecord {
        identity,
        id_token,
        access_token: None,
        created_at_ms: guichet::clock::unix_now() * 1000,
    }
}

fn settings(config: Option<&str>) -> guichet::config::Settings {
    match config {
        Some(path) => guichet::config::load(std::path::Path::new(path)).expect("configuration"),
        None => {
            let any = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
            let addresses = guichet::demo::DemoAddresses::all(any);
            let mut settings = guichet::demo::demo_settings(&addresses, &"s".repeat(40));
            // The defaults of a configuration file, not the demo's smaller bounds.
            settings.session.max_sessions = 1_000_000;
            settings.session.max_memory = 1 << 30;
            settings
        }
    }
}

/// Fills the gateway's store with `count` sessions, as logins do (`Gateway::start_session`: the
/// browser keeps the logout hint); the cookie values of the last `cookies` ones, and the sum of
/// the sessions' own estimates (`Session::estimated_bytes`).
async fn fill(gateway: &Gateway, count: usize, cookies: usize) -> (Vec<String>, usize) {
    let provider = gateway.settings().providers[0].id.clone();
    let mut kept = Vec::new();
    let mut estimated = 0;
    for i in 0..count {
        let new = gateway
            .start_session(record(&provider, i))
            .await
            .expect("a valid session");
        // What the session's first request does (its header buffer becomes shared).
        assert!(new.session.identity_headers().count() > 0);
        estimated += new.session.estimated_bytes();
        if i + cookies >= count {
            kept.push(new.id.to_cookie_value());
        }
    }
    (kept, estimated)
}

/// The headers guichet adds to `GET /` with the session cookie `cookie`, as `name: value` lines:
/// what the proxy's own `prepare_upstream` adds.
async fn upstream_headers(gateway: &Gateway, cookie: &str) -> String {
    use guichet::http::forwarded::ForwardedHeaders;
    use guichet::http::pages::CorrelationId;

    let cookie_name = &gateway.cookies().session;
    let mut request = pingora::http::RequestHeader::build("GET", b"/", None).expect("request");
    request
        .insert_header("host", "127.0.0.1")
        .and_then(|()| request.insert_header("cookie", format!("{cookie_name}={cookie}")))
        .expect("headers");
    let id = guichet::session::SessionId::from_cookie_value(cookie.as_bytes()).expect("cookie");
    let session = gateway.sessions().get(&id).await.expect("the session");
    let before: Vec<http::HeaderName> = request.headers.keys().cloned().collect();
    let correlation_id = CorrelationId::of(&request.headers);
    let mut request = guichet::http::forwarded::UpstreamParts::copy_of(&request);
    guichet::http::proxy::prepare_upstream(
        gateway,
        &ForwardedHeaders::new(gateway.settings()),
        &mut request,
        Some(std::net::Ipv4Addr::LOCALHOST.into()),
        &correlation_id,
        Some(&session),
        false,
    )
    .expect("the request prepared");
    let mut lines = String::new();
    for (name, value) in &request.parts.headers {
        if !before.contains(name) {
            let value = value.to_str().expect("visible ASCII");
            lines.push_str(&format!("{name}: {value}\n"));
        }
    }
    lines
}

#[path = "common/args.rs"]
mod args;
use args::value;

fn main() {
    if let Some(config) = value("--serve") {
        let count: usize = value("--fill").map_or(1, |n| n.parse().expect("--fill N"));
        let settings = settings(Some(&config));
        let mut server = guichet::server::new_server(&settings, guichet::server::Launch::default());
        let gateway = guichet::server::add_gateway(&mut server, settings).expect("gateway");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let cookies: usize = value("--cookies").map_or(1, |n| n.parse().expect("--cookies N"));
        let (cookies, _) =
            runtime.block_on(fill(&gateway, count.max(1), cookies.clamp(1, count.max(1))));
        if let Some(path) = value("--upstream-headers") {
            let added = runtime.block_on(upstream_headers(&gateway, &cookies[0]));
            std::fs::write(&path, added).expect("--upstream-headers FILE");
        }
        for cookie in cookies {
            println!("{cookie}");
        }
        eprintln!(
            "{count} sessions in the store; RSS {} MiB",
            rss_bytes() >> 20
        );
        server.run_forever();
    }

    let count: usize =
        std::env::var("SESSIONS").map_or(1_000_000, |n| n.parse().expect("SESSIONS"));
    let gateway = Arc::new(Gateway::new(settings(None)).expect("gateway"));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    if std::env::var_os("WITHOUT_STORE").is_some() {
        // Where the bytes go: the same sessions built (as a login builds them, the id_token
        // kept by the browser) and held in a vector, without the cache's entries.
        let provider = gateway.settings().providers[0].id.clone();
        let before = rss_bytes();
        let sessions: Vec<Arc<guichet::session::Session>> = (0..count)
            .map(|i| {
                let mut record = record(&provider, i);
                record.id_token = String::new();
                let session = gateway.sessions().plan().build(record).expect("a session");
                assert!(session.identity_headers().count() > 0);
                Arc::new(session)
            })
            .collect();
        let after = rss_bytes();
        println!(
            "without the store: {} sessions in a vector, {:.0} bytes per session (8 of them the vector's slot)",
            sessions.len(),
            after.saturating_sub(before) as f64 / count.max(1) as f64
        );
        return;
    }
    let before = rss_bytes();
    let started = Instant::now();
    let (_, estimated) = runtime.block_on(fill(&gateway, count, 0));
    let held = gateway.sessions().count();
    let weighed = gateway.sessions().weighted_size();
    let after = rss_bytes();
    let per_session = (after.saturating_sub(before)) as f64 / held.max(1) as f64;
    println!(
        "sessions: {count} created in {:.1} s, {held} held; RSS {} MiB -> {} MiB: {per_session:.0} bytes per session; the sessions' own estimate {:.0} bytes each; the store counts {:.0} each (at least max_memory / max_sessions)",
        started.elapsed().as_secs_f64(),
        before >> 20,
        after >> 20,
        estimated as f64 / count.max(1) as f64,
        weighed as f64 / held.max(1) as f64,
    );
}
