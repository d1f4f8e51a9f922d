//! The authenticated request path, piece by piece, each piece the function the proxy calls: the
//! session lookup, the identity forwarding (`IdentityForwarder::apply`), the cookie and
//! forwarding-header rewrite. Run with `cargo bench --bench hot_path`.
//!
//! The `assertion` group shows that signing is not on that path: a request reuses the session's
//! signed assertion (`reuse`), and only about one request per two-thirds of the assertion's
//! lifetime per session pays for `sign`.

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use guichet::assertion::forward::IdentityForwarder;
use guichet::assertion::{AssertionSigner, HeaderPlan, RequestSigner};
use guichet::clock::unix_now;
use guichet::config::{AssertionSettings, Secret, SignatureSettings};
use guichet::cookies::{self, CookieNames};
use guichet::demo::{demo_settings, DemoAddresses};
use guichet::http::forwarded::{ForwardedHeaders, UpstreamParts};
use guichet::http::pages::CorrelationId;
use guichet::identity::Identity;
use guichet::policy::{Pattern, Requirement, Route, RouteTable};
use guichet::session::{SessionId, SessionPlan, SessionRecord, SessionStore};
use pingora::http::RequestHeader;

/// The demo's first test agent, with every claim AgentConnect sends.
fn identity() -> Identity {
    let agent = &guichet::demo::provider::AGENTS[0];
    let mut identity = Identity::new("agentconnect", agent.sub).with_acr("eidas1");
    identity.amr = vec!["pwd".into()];
    agent
        .claims
        .iter()
        .fold(identity, |identity, (name, value)| {
            identity.with_claim(name, *value)
        })
}

fn browser_request(cookie: &str) -> RequestHeader {
    let mut request = RequestHeader::build("GET", b"/dossiers/42?vue=complete", None).unwrap();
    for (name, value) in [
        ("host", "app.example.gouv.fr"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        (
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("accept-language", "fr-FR,fr;q=0.8,en-US;q=0.5,en;q=0.3"),
        ("accept-encoding", "gzip, deflate, br"),
        ("referer", "https://app.example.gouv.fr/dossiers"),
        ("connection", "keep-alive"),
    ] {
        request.append_header(name, value).unwrap();
    }
    request
        .append_header(
            "cookie",
            format!("_pk_id=abc.123; guichet={cookie}; lang=fr"),
        )
        .unwrap();
    request
}

fn bench(c: &mut Criterion) {
    guichet::signatures::install();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addresses = DemoAddresses {
        gateway: "127.0.0.1:8080".parse().unwrap(),
        provider: "127.0.0.1:8081".parse().unwrap(),
        franceconnect: "127.0.0.1:8083".parse().unwrap(),
        franceconnect_plus: "127.0.0.1:8084".parse().unwrap(),
        app: "127.0.0.1:8082".parse().unwrap(),
    };
    let mut settings = demo_settings(&addresses, "secret");
    let key_pem = guichet::assertion::generate_key_pem(jsonwebtoken::Algorithm::ES256).unwrap();
    settings.assertion = Some(AssertionSettings {
        header: "x-guichet-assertion".into(),
        keys: vec![("bench.pem".into(), Secret::new(key_pem))],
        lifetime: Duration::from_secs(300),
        issuer: "https://app.example.gouv.fr".into(),
        audience: "http://127.0.0.1:8082".into(),
    });
    let signature = SignatureSettings {
        header: "x-guichet-signature".into(),
        key: Secret::new("k".repeat(48)),
    };
    let plan = Arc::new(HeaderPlan::new(&settings));
    let signer = AssertionSigner::new(settings.assertion.as_ref().unwrap()).unwrap();
    let request_signer = RequestSigner::new(&signature).unwrap();
    let store = SessionStore::new(
        &settings.session,
        Arc::new(SessionPlan {
            signatures: true,
            headers: plan.clone(),
            assertions: true,
            forward_access_token: false,
            providers: vec!["agentconnect".into()],
        }),
    );
    let record = SessionRecord {
        identity: identity(),
        id_token: "x".into(),
        access_token: None,
        created_at_ms: unix_now() * 1000,
    };
    let (id, _) = runtime.block_on(store.create(record)).unwrap();
    let forwarded = ForwardedHeaders::new(&settings);
    let names = CookieNames {
        session: "guichet".into(),
        login_prefix: "guichet-login-".into(),
        logout: "guichet-logout".into(),
    };
    let cookie = id.to_cookie_value();
    let request = browser_request(&cookie);
    let live = runtime.block_on(store.get(&id)).unwrap();

    let mut group = c.benchmark_group("session");
    group.bench_function("find cookie + parse id + store lookup", |b| {
        b.to_async(&runtime).iter(|| async {
            let value = cookies::find(request.headers.get_all("cookie").iter(), "guichet").unwrap();
            let id = SessionId::from_cookie_value(value).unwrap();
            store.get(&id).await.unwrap()
        })
    });
    group.finish();

    // The identity forwarding the proxy does, as it does it: without signing, then with the
    // assertion (reused) and the HMAC signature.
    let plain = IdentityForwarder::new(plan.clone(), None, None);
    let signed = IdentityForwarder::new(
        plan.clone(),
        Some(AssertionSigner::new(settings.assertion.as_ref().unwrap()).unwrap()),
        Some(RequestSigner::new(&signature).unwrap()),
    );
    let mut group = c.benchmark_group("identity");
    for (name, forwarder) in [
        (
            "forward: strip client identity headers + add 14 prebuilt ones",
            &plain,
        ),
        (
            "forward: the same + assertion (reused) + HMAC signature",
            &signed,
        ),
    ] {
        forwarder
            .apply(&mut request.as_owned_parts(), Some(&live), unix_now)
            .unwrap();
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || {
                    let mut r = request.clone();
                    r.append_header("X-Guichet-Sub", "evil").unwrap();
                    r.as_owned_parts()
                },
                |upstream| forwarder.apply(upstream, Some(&live), unix_now).unwrap(),
                criterion::BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group("forwarding");
    group.bench_function(
        "make the correlation id, copy the request into http parts, remove guichet's cookie, set Host, X-Forwarded-*, X-Real-IP, X-Request-Id, pingora's header made of them",
        |b| {
            let peer = Some("203.0.113.7".parse().unwrap());
            b.iter(|| {
                // As the proxy does: the correlation id made when the request arrives, the
                // client's request copied (pingora still reads it), the copy rewritten.
                let id = CorrelationId::of(&request.headers);
                let mut upstream = UpstreamParts::copy_of(&request);
                names.rewrite_for_upstream(&mut upstream.parts.headers);
                forwarded.apply(&mut upstream.parts, peer, id.header_value(), false);
                upstream.into_header().unwrap()
            })
        },
    );
    group.finish();

    // 1,000 routes (exact paths, prefixes, globs); the request matches one near the end.
    let routes: Vec<Route> = (0..1000)
        .map(|i| {
            let pattern = match i % 3 {
                0 => Pattern::Exact(format!("/app{i}/page")),
                1 => Pattern::Prefix(format!("/static{i}/")),
                _ => Pattern::Glob(format!("/api{i}/*/export")),
            };
            Route {
                name: format!("r{i}"),
                pattern,
                ..Route::default_route()
            }
        })
        .collect();
    let table = RouteTable::new(routes);
    let get = http::Method::GET;
    let mut group = c.benchmark_group("routes");
    group.bench_function("find the route of a request among 1,000", |b| {
        b.iter(|| table.find(&get, "/api998/42/export"))
    });
    group.bench_function("find the default route (no match) among 1,000", |b| {
        b.iter(|| table.find(&get, "/dossiers/42"))
    });
    // A route allowing 1,000 SIRETs, or an email domain: the rules a signed-in request passes.
    let mut ruled = Route::default_route();
    ruled.allow = vec![
        vec![Requirement::Claim {
            name: "siret".into(),
            values: (0..1000)
                .map(|i| format!("{:014}", 21920023500000u64 + i))
                .collect(),
        }],
        vec![Requirement::EmailDomain(vec!["interieur.gouv.fr".into()])],
    ];
    let agent = guichet::identity::CompactIdentity::new(&identity());
    group.bench_function("find among 1,000 + check a 1,000-SIRET rule", |b| {
        b.iter(|| {
            table.find(&get, "/api998/42/export");
            ruled.admits(&agent)
        })
    });
    group.finish();

    let mut group = c.benchmark_group("assertion");
    let now = unix_now();
    signer.current(&live, now).unwrap();
    group.bench_function("reuse (every request)", |b| {
        b.iter(|| signer.current(&live, now).unwrap())
    });
    group.bench_function("sign (once per 2/3 lifetime per session)", |b| {
        b.iter(|| signer.sign(live.assertion().unwrap().claims, now).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("hmac");
    group.bench_function("sign request (every request, when configured)", |b| {
        b.iter(|| {
            request_signer.sign(
                "GET",
                "/dossiers/42?vue=complete",
                now,
                live.signature_block(),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
