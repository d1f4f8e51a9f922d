//! `[session]` and `[session.shared]`.

use url::Url;

use super::Checker;
use crate::config::file::{SessionSection, SharedSection};
use crate::config::settings::{Secret, SessionSettings, SharedSettings};

/// Smallest `session.max_memory`.
const MIN_MEMORY: u64 = 1024 * 1024;

pub(super) fn settings(
    check: &mut Checker,
    section: &SessionSection,
    public_url: &Url,
) -> SessionSettings {
    let secure = public_url.scheme() == "https";
    let name = &section.cookie_name;
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        check.problem(
            "session.cookie_name",
            "must be non-empty and use only letters, digits, '-' and '_'",
        );
    }
    let idle_timeout = check.duration("session.idle_timeout", &section.idle_timeout);
    let max_lifetime = check.duration("session.max_lifetime", &section.max_lifetime);
    if idle_timeout > max_lifetime {
        check.problem(
            "session.idle_timeout",
            "must not be longer than session.max_lifetime",
        );
    }
    if section.max_sessions == 0 {
        check.problem("session.max_sessions", "must be at least 1");
    }
    SessionSettings {
        idle_timeout,
        max_lifetime,
        max_sessions: section.max_sessions,
        max_memory: max_memory(check, &section.max_memory),
        cookie_name: if secure {
            format!("__Host-{name}")
        } else {
            name.clone()
        },
        login_cookie_prefix: if secure {
            format!("__Secure-{name}-login-")
        } else {
            format!("{name}-login-")
        },
        logout_cookie_name: if secure {
            format!("__Secure-{name}-logout")
        } else {
            format!("{name}-logout")
        },
        secure,
        shared: section.shared.as_ref().and_then(|s| shared(check, s)),
    }
}

fn max_memory(check: &mut Checker, text: &str) -> u64 {
    match super::headers::parse_size(text) {
        Some(bytes) if bytes >= MIN_MEMORY => bytes,
        _ => {
            check.problem(
                "session.max_memory",
                format!(
                    "expected a size of at least 1MiB such as \"512MiB\" or \"2GiB\", got {text:?}"
                ),
            );
            1 << 30
        }
    }
}

fn shared(check: &mut Checker, section: &SharedSection) -> Option<SharedSettings> {
    let url = check
        .secret("session.shared.url", section.url_source(), 0)
        .and_then(|url| store_url(check, &url));
    let ca = section
        .ca_file
        .as_ref()
        .and_then(|path| match std::fs::read(path) {
            Ok(pem) => Some(pem),
            Err(e) => {
                check.problem(
                    "session.shared.ca_file",
                    format!("cannot read {}: {e}", path.display()),
                );
                None
            }
        });
    let plain = url
        .as_ref()
        .is_some_and(|url| !url.expose().starts_with("rediss://"));
    if ca.is_some() && plain {
        check.problem(
            "session.shared.ca_file",
            "only for a TLS store: use a rediss:// URL",
        );
    }
    let key = check.secret("session.shared.key", section.key_source(), 32);
    Some(SharedSettings {
        recheck: check.duration("session.shared.recheck", &section.recheck),
        timeout: check.duration("session.shared.timeout", &section.timeout),
        url: url?,
        key: key?,
        ca,
        key_prefix: section.key_prefix.clone(),
    })
}

/// The store's URL, checked without ever echoing it (it may carry a password).
fn store_url(check: &mut Checker, url: &Secret) -> Option<Secret> {
    let text = url.expose().trim();
    match Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "redis" | "rediss" | "redis+unix" | "unix") => {
            Some(Secret::new(text))
        }
        _ => {
            check.problem(
                "session.shared.url",
                "expected redis://host:port/db, rediss://host:port/db or redis+unix:///path/to.sock",
            );
            None
        }
    }
}
