//! The optional store shared by several replicas (`[session.shared]`): Redis or Valkey, through
//! the `redis` crate (plain TCP, TLS with `rediss://` over rustls, or a unix socket). It holds three kinds of entries, under `key_prefix`:
//!
//! - `session:<store key>`: a session record sealed with the deployment key (see
//!   [`crate::session`]), with a TTL of the idle timeout (refreshed when read, `GETEX`) capped
//!   by the absolute lifetime; after a logout, a tombstone in its place, so that a replica still
//!   holding the session knows it ended rather than that the store lost it (a restart without
//!   persistence, a flush: a session the store lost is written back by the replicas holding it);
//! - `login:<state>`: a login completed, so that its callback is not replayed on another replica
//!   (written only after the provider vouched for the login: bounded by real logins);
//! - `logout:<state>`: an RP-initiated logout's `state`, checked once at `logged-out`.
//!
//! What comes back from the store is hostile until checked: the callers open sealed values and
//! compare the rest with what they expect. Every call is bounded by `timeout`. The store is a
//! help, never a single point of failure: when it does not answer, a replica goes on with what
//! it holds in memory, logs the failure once per burst and counts it in
//! `guichet_shared_store_errors_total`. A connection error drops the connection, which is
//! re-established at the next call, at most once a second; a slow answer does not (the
//! multiplexed connection serves the other calls meanwhile).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;

use crate::config::SharedSettings;

/// Waits this long after a failed connection before trying again.
const RECONNECT_INTERVAL: Duration = Duration::from_secs(1);

/// The kinds of entries, for key names and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    Session,
    Login,
    Logout,
}

impl Entry {
    fn as_str(self) -> &'static str {
        match self {
            Entry::Session => "session",
            Entry::Login => "login",
            Entry::Logout => "logout",
        }
    }
}

/// Why a call to the store failed (the caller falls back on its memory).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("shared store did not answer within {0:?}")]
    Timeout(Duration),
    #[error("shared store: {0}")]
    Redis(String),
    #[error("shared store: not reconnecting yet after a failure")]
    Backoff,
    #[error("session.shared: {0}")]
    Configuration(String),
}

struct Connection {
    current: Option<MultiplexedConnection>,
    failed_at: Option<Instant>,
    /// One task connects; the others do not wait for it (they serve from memory meanwhile).
    connecting: bool,
}

/// A connection to Redis/Valkey, re-established after failures.
pub struct SharedStore {
    client: redis::Client,
    connection: Mutex<Connection>,
    prefix: String,
    pub recheck: Duration,
    timeout: Duration,
    errors: prometheus::IntCounterVec,
    last_logged: Mutex<Option<Instant>>,
}

impl SharedStore {
    /// Parses the URL; connects lazily, at the first call.
    pub fn new(
        settings: &SharedSettings,
        errors: prometheus::IntCounterVec,
    ) -> Result<Self, StoreError> {
        let client = match &settings.ca {
            // rediss:// with a private CA.
            Some(ca) => redis::Client::build_with_tls(
                settings.url.expose(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.clone()),
                },
            ),
            None => redis::Client::open(settings.url.expose()),
        }
        // The error names the problem, never the URL (it may hold a password).
        .map_err(|e| {
            StoreError::Configuration(match e.detail() {
                Some(detail) => format!("{:?}: {detail}", e.kind()),
                None => format!("{:?}", e.kind()),
            })
        })?;
        Ok(SharedStore {
            client,
            connection: Mutex::new(Connection {
                current: None,
                failed_at: None,
                connecting: false,
            }),
            prefix: settings.key_prefix.clone(),
            recheck: settings.recheck,
            timeout: settings.timeout,
            errors,
            last_logged: Mutex::new(None),
        })
    }

    fn key(&self, entry: Entry, id: &str) -> String {
        format!("{}{}:{id}", self.prefix, entry.as_str())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn connection(&self) -> Result<MultiplexedConnection, StoreError> {
        {
            let mut state = self.state();
            if let Some(connection) = &state.current {
                return Ok(connection.clone());
            }
            if state.connecting
                || state
                    .failed_at
                    .is_some_and(|at| at.elapsed() < RECONNECT_INTERVAL)
            {
                return Err(StoreError::Backoff);
            }
            state.connecting = true;
        }
        let connected =
            tokio::time::timeout(self.timeout, self.client.get_multiplexed_async_connection())
                .await;
        let mut state = self.state();
        state.connecting = false;
        match connected {
            Ok(Ok(connection)) => {
                state.current = Some(connection.clone());
                state.failed_at = None;
                Ok(connection)
            }
            Ok(Err(e)) => {
                state.failed_at = Some(Instant::now());
                Err(StoreError::Redis(e.to_string()))
            }
            Err(_) => {
                state.failed_at = Some(Instant::now());
                Err(StoreError::Timeout(self.timeout))
            }
        }
    }

    /// Runs one command, bounded by the timeout; a failure drops the connection.
    async fn call<T, F, Fut>(
        &self,
        entry: Entry,
        operation: &'static str,
        f: F,
    ) -> Result<T, StoreError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let result = match self.connection().await {
            Ok(connection) => match tokio::time::timeout(self.timeout, f(connection)).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) => Err(StoreError::Redis(e.to_string())),
                Err(_) => Err(StoreError::Timeout(self.timeout)),
            },
            Err(e) => Err(e),
        };
        if matches!(result, Err(StoreError::Redis(_))) {
            let mut state = self.state();
            state.current = None;
            state.failed_at = Some(Instant::now());
        }
        self.errors
            .with_label_values(&[entry.as_str(), operation])
            .inc();
        if let Err(e) = &result {
            self.log_failure(entry, operation, e);
        }
        result
    }

    /// Whether a warning may be logged now: one per second at most, so that a store that is
    /// down, or a flood of bad entries, does not flood the log.
    fn may_warn(&self) -> bool {
        let mut last = self
            .last_logged
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if last.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    fn log_failure(&self, entry: Entry, operation: &'static str, error: &StoreError) {
        if self.may_warn() {
            tracing::warn!(
                entry = entry.as_str(),
                operation,
                error = %error,
                "shared store unavailable: serving from this replica's memory"
            );
        }
    }

    /// Writes an entry that expires after `ttl` (at least a second).
    pub async fn put(
        &self,
        entry: Entry,
        id: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let key = self.key(entry, id);
        let value = value.to_string();
        let seconds = ttl.as_secs().max(1);
        self.call(entry, "put", move |mut c| async move {
            c.set_ex::<_, _, ()>(key, value, seconds).await
        })
        .await
    }

    /// Writes an entry unless it exists (`SET … NX EX`); `true` when this call wrote it.
    pub async fn put_new(
        &self,
        entry: Entry,
        id: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let key = self.key(entry, id);
        let value = value.to_string();
        let seconds = ttl.as_secs().max(1);
        self.call(entry, "put_new", move |mut c| async move {
            let options = redis::SetOptions::default()
                .conditional_set(redis::ExistenceCheck::NX)
                .with_expiration(redis::SetExpiry::EX(seconds));
            c.set_options::<_, _, Option<String>>(key, value, options)
                .await
                .map(|written| written.is_some())
        })
        .await
    }

    /// Warns, at most once a second, that an entry read back was refused (`reason`): another
    /// deployment's key or `public_url` sharing this prefix, or a forged entry.
    pub fn warn_refused(&self, reason: &'static str) {
        if self.may_warn() {
            tracing::warn!(
                reason,
                "shared store: a session entry failed its check and is ignored (another deployment using the same key_prefix, a changed session.shared.key or public_url, or a forged entry)"
            );
        }
    }

    /// Reads an entry and, with `refresh`, restarts its TTL (`GETEX … EX`).
    pub async fn get(
        &self,
        entry: Entry,
        id: &str,
        refresh: Option<Duration>,
    ) -> Result<Option<String>, StoreError> {
        let key = self.key(entry, id);
        self.call(entry, "get", move |mut c| async move {
            match refresh {
                Some(ttl) => c.get_ex(key, redis::Expiry::EX(ttl.as_secs().max(1))).await,
                None => c.get(key).await,
            }
        })
        .await
    }

    /// Deletes an entry; `true` when it existed (so that exactly one caller "takes" it).
    pub async fn delete(&self, entry: Entry, id: &str) -> Result<bool, StoreError> {
        let key = self.key(entry, id);
        self.call(entry, "delete", move |mut c| async move {
            c.del::<_, u64>(key).await.map(|n| n > 0)
        })
        .await
    }
}
