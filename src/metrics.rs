//! The metric set, registered once, and the internal `/metrics` listener that serves it.
//!
//! All names start with `guichet_`; label values are bounded (outcomes, status classes, provider
//! ids and failure reasons from fixed lists), never paths or user data.

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use std::sync::Arc;
use std::time::Duration;

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::http::proxy::Outcome;
use crate::session::SessionStore;

pub mod sharded;
use sharded::{CounterId, Family, HistogramId, Sharded, ShardedBuilder};

/// Every metric family guichet exports.
pub struct Metrics {
    registry: Registry,
    /// `guichet_requests_total`, `guichet_request_duration_seconds`,
    /// `guichet_upstream_response_seconds`, `guichet_bytes_total`,
    /// `guichet_session_lookups_total`: counted per thread.
    pub per_request: Arc<RequestMetrics>,
    /// `guichet_logins_total{provider, result, reason}`
    pub logins: IntCounterVec,
    /// `guichet_callback_duration_seconds{provider}`
    pub callback_duration: HistogramVec,
    /// `guichet_provider_request_duration_seconds{provider, endpoint, result}`
    pub provider_requests: HistogramVec,
    /// `guichet_provider_refreshes_total{provider, document, result}`
    pub provider_refreshes: IntCounterVec,
    /// `guichet_sessions_active`
    pub sessions_active: IntGauge,
    /// `guichet_sessions_created_total`
    pub sessions_created: IntCounter,
    /// `guichet_sessions_ended_total{reason}`: `idle`, `lifetime`, `logout`, `evicted`.
    pub sessions_ended: IntCounterVec,
    /// `guichet_shared_store_errors_total{entry, operation}`: calls to `[session.shared]` that
    /// failed or timed out (the replica then serves from its memory).
    pub shared_store_errors: IntCounterVec,
    /// `guichet_shared_store_refused_total{reason}`: session entries read from the store and
    /// refused (`unauthenticated`, `malformed`, `unknown_provider`), and lookups not made for
    /// lack of budget (`budget`).
    pub shared_store_refused: IntCounterVec,
    /// `guichet_access_denied_total{route, reason}`: signed-in requests a route's rules refused
    /// (`provider`, `organisation`, `email_domain`, `claim`).
    pub access_denied: IntCounterVec,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("static metric definition is valid")
}

fn histogram(name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
        labels,
    )
    .expect("static metric definition is valid")
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let metrics = Metrics {
            per_request: Arc::new(RequestMetrics::new()),
            logins: counter(
                "guichet_logins_total",
                "Logins by provider and result (started, completed, failed) with a failure reason",
                &["provider", "result", "reason"],
            ),
            callback_duration: histogram(
                "guichet_callback_duration_seconds",
                "Time to complete a login callback (code exchange, verification, userinfo)",
                &["provider"],
            ),
            provider_requests: histogram(
                "guichet_provider_request_duration_seconds",
                "HTTP calls to providers by endpoint (discovery, jwks, token, userinfo) and result",
                &["provider", "endpoint", "result"],
            ),
            provider_refreshes: counter(
                "guichet_provider_refreshes_total",
                "Discovery and JWKS loads by provider and result",
                &["provider", "document", "result"],
            ),
            sessions_active: IntGauge::new(
                "guichet_sessions_active",
                "Sessions currently in the store",
            )
            .expect("static metric definition is valid"),
            sessions_created: IntCounter::new(
                "guichet_sessions_created_total",
                "Sessions created by a completed login",
            )
            .expect("static metric definition is valid"),
            sessions_ended: counter(
                "guichet_sessions_ended_total",
                "Sessions ended, by reason: idle, lifetime, logout, evicted (memory bound)",
                &["reason"],
            ),
            shared_store_errors: counter(
                "guichet_shared_store_errors_total",
                "Calls to the shared session store that failed or timed out, by entry (session, login, logout) and operation (put, put_new, get, delete)",
                &["entry", "operation"],
            ),
            access_denied: counter(
                "guichet_access_denied_total",
                "Signed-in requests refused by a route's rules, by route name and reason (provider, organisation, email_domain, claim)",
                &["route", "reason"],
            ),
            shared_store_refused: counter(
                "guichet_shared_store_refused_total",
                "Session entries read from the shared store and refused (unauthenticated, malformed, unknown_provider), and lookups not made for lack of budget (budget)",
                &["reason"],
            ),
            registry,
        };
        let build_info = IntGaugeVec::new(
            Opts::new(
                "guichet_build_info",
                "Version and git commit of this build; always 1",
            ),
            &["version", "git_hash"],
        )
        .expect("static metric definition is valid");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), env!("GUICHET_GIT_HASH")])
            .set(1);
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(PerRequestCollector(metrics.per_request.clone())),
            Box::new(metrics.logins.clone()),
            Box::new(metrics.callback_duration.clone()),
            Box::new(metrics.provider_requests.clone()),
            Box::new(metrics.provider_refreshes.clone()),
            Box::new(metrics.sessions_active.clone()),
            Box::new(metrics.sessions_created.clone()),
            Box::new(metrics.sessions_ended.clone()),
            Box::new(metrics.shared_store_errors.clone()),
            Box::new(metrics.shared_store_refused.clone()),
            Box::new(metrics.access_denied.clone()),
            Box::new(build_info),
            Box::new(prometheus::process_collector::ProcessCollector::new(
                std::process::id() as i32,
                "guichet",
            )),
        ];
        for collector in collectors {
            metrics
                .registry
                .register(collector)
                .expect("each metric is registered once");
        }
        metrics
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }

    pub fn login(&self, provider: &str, result: &str, reason: &str) {
        self.logins
            .with_label_values(&[provider, result, reason])
            .inc();
    }

    /// Records one HTTP call to a provider.
    pub fn provider_request(&self, provider: &str, endpoint: &str, ok: bool, seconds: f64) {
        self.provider_requests
            .with_label_values(&[provider, endpoint, if ok { "ok" } else { "error" }])
            .observe(seconds);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The `status_class` label values, in [`status_class_index`] order.
pub const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];

/// The index of a status's class in [`STATUS_CLASSES`].
pub fn status_class_index(status: u16) -> usize {
    match status {
        100..=599 => usize::from(status / 100 - 1),
        _ => 5,
    }
}

/// The metrics every proxied request updates, counted per thread ([`sharded`]): what the proxy
/// calls on its hot path.
pub struct RequestMetrics {
    set: Sharded,
    requests: CounterId,
    durations: HistogramId,
    upstream: HistogramId,
    bytes: CounterId,
    lookups: CounterId,
}

impl RequestMetrics {
    fn new() -> Self {
        let mut set = ShardedBuilder::default();
        let requests = set.counter(Family::new(
            "guichet_requests_total",
            "Requests handled, by outcome and response status class",
            &["outcome", "status_class"],
            Outcome::ALL
                .iter()
                .flat_map(|o| STATUS_CLASSES.iter().map(|c| vec![o.as_str(), *c]))
                .collect(),
        ));
        let durations = set.histogram(
            Family::new(
                "guichet_request_duration_seconds",
                "Time from the request header to the end of the response, by outcome",
                &["outcome"],
                Outcome::ALL.iter().map(|o| vec![o.as_str()]).collect(),
            ),
            LATENCY_BUCKETS,
        );
        let upstream = set.histogram(
            Family::new(
                "guichet_upstream_response_seconds",
                "Time from sending a request to the application to its response header",
                &[],
                vec![vec![]],
            ),
            LATENCY_BUCKETS,
        );
        let bytes = set.counter(Family::new(
            "guichet_bytes_total",
            "Body bytes: request bodies received (in), response bodies sent (out)",
            &["direction"],
            vec![vec!["in"], vec!["out"]],
        ));
        let lookups = set.counter(Family::new(
            "guichet_session_lookups_total",
            "Session cookie lookups in the store: hit or miss",
            &["result"],
            vec![vec!["hit"], vec!["miss"]],
        ));
        RequestMetrics {
            set: set.build(),
            requests,
            durations,
            upstream,
            bytes,
            lookups,
        }
    }

    /// A finished request: its outcome, status (0: none sent), duration and body bytes.
    pub fn request(&self, outcome: Outcome, status: u16, duration: Duration, bytes: (u64, u64)) {
        let series = outcome as usize * STATUS_CLASSES.len() + status_class_index(status);
        self.set.add(self.requests.series(series), 1);
        self.set.observe(self.durations, outcome as usize, duration);
        self.set.add(self.bytes, bytes.0);
        self.set.add(self.bytes.series(1), bytes.1);
    }

    /// The time the application took to send its response header.
    pub fn upstream_response(&self, latency: Duration) {
        self.set.observe(self.upstream, 0, latency);
    }

    /// A session cookie looked up: found live or not.
    pub fn session_lookup(&self, hit: bool) {
        self.set.add(self.lookups.series(usize::from(!hit)), 1);
    }
}

/// The registry's handle on [`RequestMetrics`].
struct PerRequestCollector(Arc<RequestMetrics>);

impl prometheus::core::Collector for PerRequestCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.0.set.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.0.set.collect()
    }
}

/// The internal metrics listener's app.
pub struct MetricsApp {
    pub metrics: std::sync::Arc<Metrics>,
    /// Read at each scrape for `guichet_sessions_active`.
    pub sessions: SessionStore,
}

#[async_trait]
impl ServeHttp for MetricsApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path();
        let (status, content_type, body) = if path == "/metrics" {
            let active = self.sessions.count();
            self.metrics
                .sessions_active
                .set(i64::try_from(active).unwrap_or(i64::MAX));
            (
                200,
                "text/plain; version=0.0.4",
                self.metrics.render().into_bytes(),
            )
        } else {
            (404, "text/plain", b"not found; try /metrics\n".to_vec())
        };
        Response::builder()
            .status(status)
            .header("content-type", content_type)
            .header("content-length", body.len())
            .body(body)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_registered_families() {
        let metrics = Metrics::new();
        metrics
            .per_request
            .request(Outcome::Proxied, 204, Duration::from_millis(3), (10, 20));
        metrics.login("ac", "completed", "");
        let text = metrics.render();
        assert!(text.contains(r#"guichet_requests_total{outcome="proxied",status_class="2xx"} 1"#));
        assert!(text.contains(r#"guichet_requests_total{outcome="denied",status_class="none"} 0"#));
        assert!(text.contains(
            r#"guichet_request_duration_seconds_bucket{outcome="proxied",le="0.0025"} 0"#
        ));
        assert!(text.contains(
            r#"guichet_request_duration_seconds_bucket{outcome="proxied",le="0.005"} 1"#
        ));
        assert!(text.contains(r#"guichet_bytes_total{direction="out"} 20"#));
        assert!(text.contains("guichet_upstream_response_seconds_count 0"));
        assert!(
            text.contains(r#"guichet_logins_total{provider="ac",reason="",result="completed"} 1"#)
        );
        for (status, class) in [
            (101, "1xx"),
            (200, "2xx"),
            (302, "3xx"),
            (404, "4xx"),
            (599, "5xx"),
        ] {
            assert_eq!(STATUS_CLASSES[status_class_index(status)], class);
        }
        for nothing_sent in [0, 99, 600, u16::MAX] {
            assert_eq!(STATUS_CLASSES[status_class_index(nothing_sent)], "none");
        }
    }
}
