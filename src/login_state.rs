//! Logins in progress, kept by the visitor's browser: nothing is stored server-side between
//! `/.guichet/login` and `/.guichet/callback`, so a flood of login requests, from one client or
//! many, costs no memory and cannot push a real visitor's login out of a store.
//!
//! Each login is a [`LoginState`] (state, nonce, PKCE verifier, provider, return path, expiry)
//! sealed with the deployment key ([`crate::seal`], AES-256-GCM) into its own short-lived cookie,
//! `<prefix><first 12 characters of state>`, `HttpOnly`, `SameSite=Lax`, limited to the
//! `/.guichet/` path. Several tabs may log in at once (one cookie each, at most
//! [`MAX_LOGINS_PER_BROWSER`]: starting one more drops the oldest). The cookie is the binding to
//! the browser: a callback whose `state` has no matching cookie was started elsewhere (or has
//! expired, or was used) and is refused. A state is used once: this process remembers the states
//! it completed (bounded; a forgotten one still needs its single-use code and its cookie, which
//! the callback clears), and with a shared store a completed login is marked there too, so a
//! replayed callback on another replica is refused.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use serde::{Deserialize, Serialize};

use crate::cookies::{self, SetCookie};
use crate::seal::Sealer;
use crate::shared::{Entry, SharedStore};

/// How long a started login may take before its state is refused.
pub const LOGIN_STATE_TTL: Duration = Duration::from_secs(600);

/// Logins a browser may have in progress at once.
pub const MAX_LOGINS_PER_BROWSER: usize = 4;

/// Login cookies of a request looked at when a login starts: a client sending thousands costs
/// no more than this many decryptions (the rest are ignored and expire).
const MAX_COOKIES_EXAMINED: usize = 4 * MAX_LOGINS_PER_BROWSER;

/// Characters of the `state` in the cookie's name.
const NAME_CHARS: usize = 12;

/// A login in progress.
#[derive(Clone, Serialize, Deserialize)]
pub struct LoginState {
    pub state: String,
    pub provider: String,
    pub nonce: String,
    pub pkce_verifier: Option<String>,
    pub return_to: String,
    /// Unix seconds after which the login is refused.
    pub expires: u64,
    /// The levels this login asked for, above the provider's (a route's step-up); empty: the
    /// provider's own.
    #[serde(default)]
    pub acr: Vec<String>,
}

impl std::fmt::Debug for LoginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginState")
            .field("provider", &self.provider)
            .field("return_to", &self.return_to)
            .finish_non_exhaustive()
    }
}

/// Why a callback's `state` was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginStateError {
    /// No cookie for it in this browser: started elsewhere, expired, or already used.
    NotInThisBrowser,
    /// A cookie whose content does not open or does not match (altered, or sealed by another
    /// deployment or an earlier process).
    Invalid,
    /// Past its expiry (where the visitor was going).
    Expired { return_to: String },
    /// Used already.
    Used,
}

/// Issues and checks login-state cookies.
pub struct LoginStates {
    sealer: Sealer,
    prefix: String,
    secure: bool,
    /// States completed or being completed in this process.
    used: moka::sync::Cache<String, ()>,
    shared: Option<Arc<SharedStore>>,
}

impl LoginStates {
    pub fn new(sealer: Sealer, prefix: String, secure: bool) -> Self {
        LoginStates {
            sealer,
            prefix,
            secure,
            used: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(LOGIN_STATE_TTL)
                .build(),
            shared: None,
        }
    }

    /// Marks completed logins in a store shared with other replicas too.
    pub fn with_shared(mut self, shared: Arc<SharedStore>) -> Self {
        self.shared = Some(shared);
        self
    }

    fn cookie_name(&self, state: &str) -> String {
        let short: String = state.chars().take(NAME_CHARS).collect();
        format!("{}{short}", self.prefix)
    }

    fn set_cookie(&self, name: &str, value: &str, max_age: Duration) -> String {
        SetCookie {
            name,
            value,
            path: crate::http::routes::PREFIX,
            max_age: Some(max_age),
            secure: self.secure,
        }
        .to_string()
    }

    /// The `Set-Cookie` values that start `login`: its cookie, and the deletion of the oldest
    /// logins in progress beyond [`MAX_LOGINS_PER_BROWSER`] (and of unreadable ones).
    pub fn begin<'a>(
        &self,
        login: &LoginState,
        request_cookies: impl Iterator<Item = &'a HeaderValue>,
    ) -> Vec<String> {
        let mut set = Vec::new();
        let mut current: Vec<(u64, String)> = Vec::new();
        let found = cookies::find_prefixed(request_cookies, &self.prefix);
        for (name, value) in found.into_iter().take(MAX_COOKIES_EXAMINED) {
            let name = String::from_utf8_lossy(name).into_owned();
            if name == self.restart_name() {
                continue;
            }
            match self.open(value) {
                Some(existing) if self.cookie_name(&existing.state) == name => {
                    current.push((existing.expires, name))
                }
                _ => set.push(self.set_cookie(&name, "", Duration::ZERO)),
            }
        }
        current.sort_unstable();
        let excess = (current.len() + 1).saturating_sub(MAX_LOGINS_PER_BROWSER);
        for (_, name) in current.into_iter().take(excess) {
            set.push(self.set_cookie(&name, "", Duration::ZERO));
        }
        let sealed = self.sealer.seal(
            b"",
            &serde_json::to_vec(login).expect("a login state serializes"),
        );
        set.push(self.set_cookie(&self.cookie_name(&login.state), &sealed, LOGIN_STATE_TTL));
        set
    }

    fn open(&self, value: &[u8]) -> Option<LoginState> {
        let json = self.sealer.open(b"", value)?;
        serde_json::from_slice(&json).ok()
    }

    /// The cookie marking that a login was restarted after a callback it could not use.
    fn restart_name(&self) -> String {
        format!("{}restart", self.prefix)
    }

    /// `Set-Cookie` for the restart mark (two minutes): a second unusable callback then gets the
    /// error page instead of another restart.
    pub fn mark_restart(&self) -> String {
        self.set_cookie(&self.restart_name(), "1", Duration::from_secs(120))
    }

    /// Whether this browser's login was already restarted once.
    pub fn was_restarted<'a>(
        &self,
        request_cookies: impl Iterator<Item = &'a HeaderValue>,
    ) -> bool {
        cookies::find(request_cookies, &self.restart_name()).is_some()
    }

    /// The `Set-Cookie` value that deletes the cookie of `state`.
    pub fn clear(&self, state: &str) -> String {
        self.set_cookie(&self.cookie_name(state), "", Duration::ZERO)
    }

    /// Takes the login for `state` from this browser's cookies, at `now` (Unix seconds). A
    /// state is taken once in this process.
    pub fn take<'a>(
        &self,
        state: &str,
        request_cookies: impl Iterator<Item = &'a HeaderValue>,
        now: u64,
    ) -> Result<LoginState, LoginStateError> {
        let value = cookies::find(request_cookies, &self.cookie_name(state))
            .ok_or(LoginStateError::NotInThisBrowser)?;
        let login = self.open(value).ok_or(LoginStateError::Invalid)?;
        if login.state != state {
            return Err(LoginStateError::Invalid);
        }
        if now > login.expires {
            return Err(LoginStateError::Expired {
                return_to: login.return_to,
            });
        }
        let fresh = self
            .used
            .entry(login.state.clone())
            .or_insert(())
            .is_fresh();
        if !fresh {
            return Err(LoginStateError::Used);
        }
        Ok(login)
    }

    /// After the provider vouched for the login: marks it completed in the shared store, once
    /// across replicas. `false` when another replica completed it already. The store being
    /// down does not stop a login (the provider's code is single-use anyway).
    pub async fn complete(&self, state: &str) -> bool {
        match &self.shared {
            Some(shared) => shared
                .put_new(Entry::Login, state, "1", LOGIN_STATE_TTL)
                .await
                .unwrap_or(true),
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::{DeploymentKey, Purpose};

    fn states(key: &DeploymentKey) -> LoginStates {
        LoginStates::new(
            key.sealer(Purpose::Login, "https://app.example"),
            "guichet-login-".into(),
            true,
        )
    }

    fn login(state: &str, expires: u64) -> LoginState {
        LoginState {
            state: state.into(),
            provider: "p".into(),
            nonce: "n".into(),
            pkce_verifier: Some("v".into()),
            return_to: "/dossiers?id=1".into(),
            expires,
            acr: vec![],
        }
    }

    /// The request's Cookie header from `Set-Cookie` values (what a browser sends back).
    fn cookie_header(set: &[String]) -> HeaderValue {
        let pairs: Vec<&str> = set
            .iter()
            .filter(|c| !c.contains("Max-Age=0"))
            .map(|c| c.split(';').next().unwrap())
            .collect();
        HeaderValue::from_str(&pairs.join("; ")).unwrap()
    }

    #[test]
    fn a_login_is_taken_once_from_its_own_browser_only() {
        let key = DeploymentKey::random();
        let states = states(&key);
        let set = states.begin(&login("STATE0123456789abcdef", 2000), std::iter::empty());
        assert_eq!(set.len(), 1);
        for part in [
            "HttpOnly",
            "SameSite=Lax",
            "Path=/.guichet/",
            "Secure",
            "Max-Age=600",
        ] {
            assert!(set[0].contains(part), "{}", set[0]);
        }
        assert!(!set[0].contains("dossiers"), "sealed, not readable");
        let header = cookie_header(&set);
        let other_browser = HeaderValue::from_static("a=1");
        assert_eq!(
            states
                .take("STATE0123456789abcdef", [&other_browser].into_iter(), 1000)
                .unwrap_err(),
            LoginStateError::NotInThisBrowser
        );
        // Same 12-character prefix, other state: the cookie does not vouch for it.
        assert_eq!(
            states
                .take("STATE0123456789OTHER", [&header].into_iter(), 1000)
                .unwrap_err(),
            LoginStateError::Invalid
        );
        assert_eq!(
            states
                .take("STATE0123456789abcdef", [&header].into_iter(), 2001)
                .unwrap_err(),
            LoginStateError::Expired {
                return_to: "/dossiers?id=1".into()
            }
        );
        let taken = states
            .take("STATE0123456789abcdef", [&header].into_iter(), 1000)
            .unwrap();
        assert_eq!(taken.return_to, "/dossiers?id=1");
        assert_eq!(
            states
                .take("STATE0123456789abcdef", [&header].into_iter(), 1000)
                .unwrap_err(),
            LoginStateError::Used
        );
        // Another deployment's key (or a restarted lone process) cannot open it.
        let foreign = self::states(&DeploymentKey::random());
        assert_eq!(
            foreign
                .take("STATE0123456789abcdef", [&header].into_iter(), 1000)
                .unwrap_err(),
            LoginStateError::Invalid
        );
    }

    #[test]
    fn a_browser_keeps_at_most_a_few_logins_the_oldest_dropped() {
        let states = states(&DeploymentKey::random());
        let mut jar: Vec<String> = Vec::new();
        for i in 0..10u64 {
            let header = cookie_header(&jar);
            let set = states.begin(
                &login(&format!("state{i:02}-padding-0000"), 1000 + i),
                [&header].into_iter(),
            );
            for cookie in set {
                let name = cookie.split('=').next().unwrap().to_string();
                jar.retain(|c| !c.starts_with(&format!("{name}=")));
                if !cookie.contains("Max-Age=0") {
                    jar.push(cookie);
                }
            }
            assert!(jar.len() <= MAX_LOGINS_PER_BROWSER, "{jar:?}");
        }
        let header = cookie_header(&jar);
        assert!(states
            .take("state09-padding-0000", [&header].into_iter(), 900)
            .is_ok());
        assert_eq!(
            states
                .take("state00-padding-0000", [&header].into_iter(), 900)
                .unwrap_err(),
            LoginStateError::NotInThisBrowser
        );
        // An unreadable login cookie is deleted at the next login.
        let junk = HeaderValue::from_static("guichet-login-zzz=garbage");
        let set = states.begin(&login("fresh-state-000000", 5), [&junk].into_iter());
        assert!(set.iter().any(|c| c.starts_with("guichet-login-zzz=;")));
    }
}
