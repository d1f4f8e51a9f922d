//! The metric set, registered once, and the internal `/metrics` listener that serves it.
//!
//! All names start with `guichet_`; label values are bounded (outcomes, status classes, provider
//! ids and failure reasons from fixed lists), never paths or user data.

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

use crate::session::SessionStore;

/// Every metric family guichet exports.
pub struct Metrics {
    registry: Registry,
    /// `guichet_requests_total{outcome, status_class}`
    pub requests: IntCounterVec,
    /// `guichet_logins_total{provider, result, reason}`
    pub logins: IntCounterVec,
    /// `guichet_sessions_active`
    pub sessions_active: IntGauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "guichet_requests_total",
                "Requests handled, by outcome and response status class",
            ),
            &["outcome", "status_class"],
        )
        .expect("static metric definition is valid");
        let logins = IntCounterVec::new(
            Opts::new(
                "guichet_logins_total",
                "Logins by provider and result (started, completed, failed) with a failure reason",
            ),
            &["provider", "result", "reason"],
        )
        .expect("static metric definition is valid");
        let sessions_active =
            IntGauge::new("guichet_sessions_active", "Sessions currently in the store")
                .expect("static metric definition is valid");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(logins.clone()),
            Box::new(sessions_active.clone()),
        ] {
            registry
                .register(collector)
                .expect("each metric is registered once");
        }
        Metrics {
            registry,
            requests,
            logins,
            sessions_active,
        }
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
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// `status_class` label: `2xx`, `3xx`, … or `none` when nothing was sent.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "none",
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
            let active = self.sessions.count().await;
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
            .requests
            .with_label_values(&["proxied", "2xx"])
            .inc();
        metrics.login("ac", "completed", "");
        let text = metrics.render();
        assert!(text.contains(r#"guichet_requests_total{outcome="proxied",status_class="2xx"} 1"#));
        assert!(
            text.contains(r#"guichet_logins_total{provider="ac",reason="",result="completed"} 1"#)
        );
        assert_eq!(status_class(302), "3xx");
        assert_eq!(status_class(0), "none");
    }
}
