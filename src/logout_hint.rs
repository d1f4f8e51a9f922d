//! The logout hint: the id_token a provider wants back as `id_token_hint` when the visitor signs
//! out (AgentConnect/ProConnect and FranceConnect refuse a logout without it).
//!
//! It is needed once per session, at its end, and is the largest thing a session holds, so the
//! visitor's browser keeps it: at login it goes into a cookie sealed with the deployment key
//! ([`Purpose::LogoutHint`]) and bound to the session's store key, `HttpOnly`, `SameSite=Lax`,
//! sent to `/.guichet/logout` only, and living as long as the session may. The logout opens it
//! for the session being ended; a hint sealed for another session, another deployment or another
//! key does not open. The session keeps the id_token in memory instead when it is forwarded to
//! the application (`headers.forward_id_token`) or too long for a cookie.
//!
//! A hint that does not open (the cookie was deleted, or the key changed: a lone process's key
//! is random, and only a graceful upgrade hands it over) ends the session here only; the logout
//! says so in the log.

use pingora::http::RequestHeader;

use crate::config::SessionSettings;
use crate::cookies::{self, SetCookie};
use crate::http::routes::Route;
use crate::seal::Sealer;
use crate::session::{CompactToken, StoreKey};

/// The longest sealed hint set as a cookie: with its name and attributes, the cookie stays under
/// the 4,096 bytes every browser keeps (RFC 6265 §6.1). About a 2,700-character id_token.
const MAX_SEALED_LEN: usize = 3_800;

/// Seals, opens and clears logout-hint cookies.
pub struct LogoutHints {
    sealer: Sealer,
    cookie_name: String,
    secure: bool,
    max_age: std::time::Duration,
    /// Sessions keep their id_token in memory (it is forwarded to the application anyway).
    in_memory: bool,
}

impl LogoutHints {
    pub fn new(sealer: Sealer, settings: &SessionSettings, in_memory: bool) -> Self {
        LogoutHints {
            sealer,
            cookie_name: settings.logout_cookie_name.clone(),
            secure: settings.secure,
            max_age: settings.max_lifetime,
            in_memory,
        }
    }

    /// The `Set-Cookie` that hands `id_token` to the browser for the session stored under `key`;
    /// `None` when the session keeps it in memory (forwarded to the application, or too long).
    pub fn to_cookie(&self, key: &StoreKey, id_token: &str) -> Option<String> {
        if self.in_memory || id_token.is_empty() {
            return None;
        }
        let token = CompactToken::new(id_token);
        let sealed = self.sealer.seal(key.to_text().as_bytes(), token.as_bytes());
        (sealed.len() <= MAX_SEALED_LEN).then(|| self.set_cookie(&sealed, Some(self.max_age)))
    }

    /// The id_token in the request's hint cookie, if it was sealed for the session stored under
    /// `key`.
    pub fn from_request(&self, key: &StoreKey, request: &RequestHeader) -> Option<String> {
        let sealed = cookies::find(
            request.headers.get_all(http::header::COOKIE).iter(),
            &self.cookie_name,
        )?;
        let bytes = self.sealer.open(key.to_text().as_bytes(), sealed)?;
        let text = CompactToken::from_bytes(bytes).to_text();
        (!text.is_empty()).then_some(text)
    }

    /// The `Set-Cookie` that deletes the hint.
    pub fn clear(&self) -> String {
        self.set_cookie("", Some(std::time::Duration::ZERO))
    }

    fn set_cookie(&self, value: &str, max_age: Option<std::time::Duration>) -> String {
        SetCookie {
            name: &self.cookie_name,
            value,
            path: Route::Logout.path(),
            max_age,
            secure: self.secure,
        }
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::{DeploymentKey, Purpose};
    use crate::session::SessionId;

    fn hints(key: &DeploymentKey, in_memory: bool) -> LogoutHints {
        let mut settings = crate::session::tests::settings(
            std::time::Duration::from_secs(60),
            std::time::Duration::from_secs(3600),
        );
        settings.secure = true;
        settings.logout_cookie_name = "__Secure-guichet-logout".into();
        LogoutHints::new(
            key.sealer(Purpose::LogoutHint, "https://a.example\np"),
            &settings,
            in_memory,
        )
    }

    /// The request the browser sends to the logout path with the cookie `set` set.
    fn request_with(set: &str) -> RequestHeader {
        let pair = set.split(';').next().unwrap();
        let mut request = RequestHeader::build("GET", b"/.guichet/logout", None).unwrap();
        request
            .append_header("cookie", format!("a=1; {pair}; b=2"))
            .unwrap();
        request
    }

    fn jws(payload_len: usize) -> String {
        format!(
            "eyJhbGciOiJFUzI1NiJ9.{}.{}",
            "eyJz".repeat(payload_len / 4),
            "c2ln".repeat(21)
        )
    }

    #[test]
    fn a_hint_opens_for_its_session_only() {
        let key = DeploymentKey::random();
        let hints = hints(&key, false);
        let session = SessionId::generate().to_key();
        let token = jws(700);
        let set = hints.to_cookie(&session, &token).expect("a cookie");
        assert!(set.starts_with("__Secure-guichet-logout="), "{set}");
        for attribute in [
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
            "Path=/.guichet/logout",
            "Max-Age=3600",
        ] {
            assert!(set.contains(attribute), "{attribute}: {set}");
        }
        assert!(!set.contains(&token[..24]), "the token is sealed: {set}");
        let request = request_with(&set);
        assert_eq!(hints.from_request(&session, &request), Some(token.clone()));
        // Another session, another deployment key, another purpose: nothing.
        let other = SessionId::generate().to_key();
        assert_eq!(hints.from_request(&other, &request), None);
        assert_eq!(
            self::hints(&DeploymentKey::random(), false).from_request(&session, &request),
            None
        );
        let login_sealer = key.sealer(Purpose::Login, "https://a.example\np");
        let value = set.split(';').next().unwrap().split_once('=').unwrap().1;
        assert_eq!(
            login_sealer.open(session.to_text().as_bytes(), value.as_bytes()),
            None
        );
        // Any text round-trips, not only a JWS.
        for token in ["x", "a.b.c", "not base64 !", "é.é"] {
            let set = hints.to_cookie(&session, token).unwrap();
            assert_eq!(
                hints.from_request(&session, &request_with(&set)).as_deref(),
                Some(token)
            );
        }
    }

    #[test]
    fn a_hint_too_long_or_forwarded_stays_in_memory() {
        let key = DeploymentKey::random();
        let session = SessionId::generate().to_key();
        let hints = hints(&key, false);
        // A JWE id_token of a few KiB does not fit a cookie.
        assert!(hints.to_cookie(&session, &jws(2_600)).is_some());
        assert!(hints.to_cookie(&session, &jws(4_000)).is_none());
        assert!(hints.to_cookie(&session, "").is_none());
        assert!(self::hints(&key, true)
            .to_cookie(&session, &jws(700))
            .is_none());
    }

    #[test]
    fn missing_altered_or_cleared_hints_open_to_nothing() {
        let hints = hints(&DeploymentKey::random(), false);
        let session = SessionId::generate().to_key();
        let set = hints.to_cookie(&session, &jws(700)).unwrap();
        let value = set.split(';').next().unwrap().to_string();
        let mut request = RequestHeader::build("GET", b"/.guichet/logout", None).unwrap();
        assert_eq!(hints.from_request(&session, &request), None);
        for altered in [
            value.replace("=", "=A"),
            format!("{value}A"),
            value[..value.len() - 4].to_string(),
            "__Secure-guichet-logout=".to_string(),
            "__Secure-guichet-logout=%ff%fe".to_string(),
        ] {
            request = request_with(&altered);
            assert_eq!(hints.from_request(&session, &request), None, "{altered}");
        }
        let clear = hints.clear();
        assert!(clear.starts_with("__Secure-guichet-logout=;"), "{clear}");
        assert!(clear.contains("Max-Age=0") && clear.contains("Path=/.guichet/logout"));
    }
}
