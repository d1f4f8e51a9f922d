//! Validation: the file's sections checked one by one (`server`, `session`, `headers`,
//! `upstream`, `provider`), every problem reported at once with its key path, and the runtime
//! [`Settings`] built when there is none.

mod headers;
mod pages;

pub use pages::TEMPLATE_NAMES;
mod provider;
mod routes;
mod server;
mod session;
mod upstream;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file::{FileConfig, SecretSource};
use super::settings::{Secret, Settings};
use super::spelling::Spelled;
use super::{Environment, Problem};

#[cfg(test)]
pub(super) use headers::parse_size;

/// Collects problems while the sections are checked.
pub(super) struct Checker<'a> {
    pub problems: Vec<Problem>,
    /// What is valid but probably not meant (`guichet check` prints them; start-up logs them).
    pub warnings: Vec<String>,
    env: &'a dyn Environment,
}

impl Checker<'_> {
    pub fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            key: key.into(),
            message: message.into(),
            location: None,
        });
    }

    pub fn duration(&mut self, key: &str, value: &str) -> Duration {
        match humantime::parse_duration(value) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                self.problem(key, "must be longer than zero");
                Duration::from_secs(1)
            }
            Err(e) => {
                self.problem(
                    key,
                    format!("expected a duration such as \"30s\", \"30m\" or \"12h\", got {value:?} ({e})"),
                );
                Duration::from_secs(1)
            }
        }
    }

    pub fn socket_addr(&mut self, key: &str, value: &str) -> SocketAddr {
        match value.parse() {
            Ok(a) => a,
            Err(_) => {
                self.problem(
                    key,
                    format!("expected an address:port such as \"127.0.0.1:8080\", got {value:?}"),
                );
                SocketAddr::from(([127, 0, 0, 1], 0))
            }
        }
    }

    /// One of an enum's spellings; `default` when absent, and (with a problem) when unknown.
    pub fn choice<T: Spelled>(&mut self, key: &str, text: Option<&str>, default: T) -> T {
        let Some(text) = text else {
            return default;
        };
        T::parse(text).unwrap_or_else(|| {
            self.problem(key, format!("expected {}; got {text:?}", T::expected()));
            default
        })
    }

    /// A file that must exist (checked now, read later).
    pub fn existing_file(&mut self, key: &str, path: &Path) {
        if let Err(e) = std::fs::metadata(path) {
            self.problem(key, format!("cannot read {}: {e}", path.display()));
        }
    }

    /// Reads PEM key files; a file that cannot be read is a problem at `key[i]`.
    pub fn key_files(&mut self, key: &str, paths: &[PathBuf]) -> Vec<(PathBuf, Secret)> {
        let mut keys = Vec::new();
        for (i, path) in paths.iter().enumerate() {
            match std::fs::read_to_string(path) {
                Ok(pem) => keys.push((path.clone(), Secret::new(pem))),
                Err(e) => self.problem(
                    format!("{key}[{i}]"),
                    format!("cannot read {}: {e}", path.display()),
                ),
            }
        }
        keys
    }

    /// A secret given as exactly one of: inline value (`key`), `key_env` variable, `key_file`
    /// path; at least `min_len` characters when given.
    pub fn secret(
        &mut self,
        key: &str,
        (inline, env_name, file): SecretSource<'_>,
        min_len: usize,
    ) -> Option<Secret> {
        let given = [inline.is_some(), env_name.is_some(), file.is_some()];
        if given.iter().filter(|g| **g).count() != 1 {
            self.problem(
                key,
                format!("give exactly one of {key}, {key}_env or {key}_file"),
            );
            return None;
        }
        let value = if let Some(v) = inline {
            v.to_string()
        } else if let Some(name) = env_name {
            let Some(v) = self.env.var(name) else {
                self.problem(
                    format!("{key}_env"),
                    format!("environment variable {name} is not set"),
                );
                return None;
            };
            v
        } else {
            let path = file?;
            match std::fs::read_to_string(path) {
                Ok(v) => v.trim_end_matches(['\r', '\n']).to_string(),
                Err(e) => {
                    self.problem(
                        format!("{key}_file"),
                        format!("cannot read {}: {e}", path.display()),
                    );
                    return None;
                }
            }
        };
        if value.is_empty() {
            self.problem(key, "the secret is empty");
            return None;
        }
        if value.len() < min_len {
            self.problem(
                key,
                format!("use at least {min_len} characters (e.g. openssl rand -base64 48)"),
            );
        }
        Some(Secret::new(value))
    }
}

/// Checks every key, reporting all problems at once.
pub fn validate(file: &FileConfig, env: &dyn Environment) -> Result<Settings, Vec<Problem>> {
    let mut check = Checker {
        problems: Vec::new(),
        warnings: Vec::new(),
        env,
    };
    let server = server::settings(&mut check, file);
    let upstream = upstream::settings(&mut check, file, server.mode);
    let session = session::settings(&mut check, &file.session, &server.public_url);
    let (log_level, log_json) = server::log(&mut check, &file.log);
    let headers = headers::headers(&mut check, &file.headers);
    let (assertion, signature) = headers::proofs(&mut check, file, &server.public_url);
    let providers = provider::all(&mut check, &file.providers);
    let upstreams: Vec<_> = file
        .upstreams
        .iter()
        .map(|(name, section)| {
            (
                name.clone(),
                upstream::named(&mut check, &format!("upstreams.{name}"), section),
            )
        })
        .collect();
    let routes = routes::all(&mut check, &file.routes, &upstreams, &file.providers);
    let pages = pages::settings(&mut check, &file.pages);
    if let Some((url, _)) = &pages.alternative_login {
        let path = url.split(['?', '#']).next().unwrap_or("/");
        let table = crate::policy::RouteTable::new(routes.clone());
        if url.starts_with('/')
            && table.find(&http::Method::GET, path).auth == crate::policy::Auth::Required
        {
            check.warnings.push(format!(
                "pages.alternative_login_url: {path} requires a session (no [[route]] with auth = \"none\" covers it), so the application's own sign-in would send visitors back to the chooser; add a route for it"
            ));
        }
    }
    if !check.problems.is_empty() {
        return Err(check.problems);
    }
    Ok(Settings {
        mode: server.mode,
        listen: server.listen,
        trusted_proxies: server.trusted_proxies,
        tls: server.tls,
        upgrade_sock: server.upgrade_sock,
        pid_file: server.pid_file,
        public_url: server.public_url,
        threads: server.threads,
        work_stealing: server.work_stealing,
        grace_period: server.grace_period,
        shutdown_timeout: server.shutdown_timeout,
        metrics_listen: server.metrics_listen,
        upstream,
        session,
        log_level,
        log_json,
        access_log: file.log.access,
        headers,
        assertion,
        signature,
        providers,
        upstreams,
        routes,
        pages,
        warnings: check.warnings,
    })
}
