//! guichet's own endpoints, as a type: every path under `/.guichet/` is a [`Route`], and this is
//! the only file that spells that prefix. Paths (`Route::path`), absolute URLs (`Route::url`) and
//! the login link with its return path (`login_path`) are all built here.

use url::Url;

/// The prefix under which guichet serves its own endpoints.
pub const PREFIX: &str = "/.guichet/";

/// One of guichet's own endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Starts a login (or shows the chooser).
    Login,
    /// The OpenID Connect redirect URI.
    Callback,
    /// Signs out here and at the provider.
    Logout,
    /// The post-logout redirect URI and "signed out" page.
    LoggedOut,
    Healthz,
    Readyz,
    /// The assertion's public keys.
    Jwks,
    /// guichet's public keys for the providers (encryption, client assertions).
    ProviderJwks,
    /// Who the visitor is signed in as, with which provider and level, and a sign-out button.
    Me,
    /// A front proxy's question about a request (`server.mode = "auth"` or `"both"`); also
    /// answered below it (`/.guichet/auth/<original path>`, Envoy's `path_prefix`).
    Auth,
    /// The pages' style sheets and the operator's logo: `/.guichet/assets/<name>`.
    Assets,
}

impl Route {
    /// Where [`Route::Assets`] serves its files.
    pub const ASSETS_PREFIX: &'static str = "/.guichet/assets";

    pub const ALL: [Route; 11] = [
        Route::Login,
        Route::Callback,
        Route::Logout,
        Route::LoggedOut,
        Route::Healthz,
        Route::Readyz,
        Route::Jwks,
        Route::ProviderJwks,
        Route::Me,
        Route::Auth,
        Route::Assets,
    ];

    /// The absolute path, e.g. `/.guichet/login`.
    pub const fn path(self) -> &'static str {
        match self {
            Route::Login => "/.guichet/login",
            Route::Callback => "/.guichet/callback",
            Route::Logout => "/.guichet/logout",
            Route::LoggedOut => "/.guichet/logged-out",
            Route::Healthz => "/.guichet/healthz",
            Route::Readyz => "/.guichet/readyz",
            Route::Jwks => "/.guichet/jwks.json",
            Route::ProviderJwks => "/.guichet/provider-jwks.json",
            Route::Me => "/.guichet/me",
            Route::Auth => "/.guichet/auth",
            Route::Assets => Route::ASSETS_PREFIX,
        }
    }

    /// The URL visitors and providers use: `public_url` + the path.
    pub fn url(self, public_url: &Url) -> String {
        format!(
            "{}{}",
            public_url.as_str().trim_end_matches('/'),
            self.path()
        )
    }

    /// The route a request path names: `None` outside `/.guichet/`, `Some(None)` for a path
    /// under it that is none of guichet's (a 404).
    pub fn from_path(path: &str) -> Option<Option<Route>> {
        if !path.starts_with(PREFIX) {
            return None;
        }
        let below_auth = path
            .strip_prefix(Route::Auth.path())
            .is_some_and(|rest| rest.starts_with('/'));
        if below_auth {
            return Some(Some(Route::Auth));
        }
        let below_assets = path
            .strip_prefix(Route::ASSETS_PREFIX)
            .is_some_and(|rest| rest.len() > 1 && rest.starts_with('/'));
        if below_assets {
            return Some(Some(Route::Assets));
        }
        Some(Route::ALL.into_iter().find(|route| route.path() == path))
    }
}

/// Whether a (decoded, lower-cased) path is guichet's own: `/.guichet` or below.
pub fn is_own_path(path: &str) -> bool {
    path.starts_with(PREFIX) || path == PREFIX.trim_end_matches('/')
}

/// `/.guichet/login?rd=<return path>`, the query parameters percent-encoded, with `extra`
/// parameters (`provider`, hints) after it.
pub fn login_path(return_to: &str, extra: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in extra {
        query.append_pair(name, value);
    }
    query.append_pair("rd", return_to);
    format!("{}?{}", Route::Login.path(), query.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_round_trips_and_lives_under_the_prefix() {
        for route in Route::ALL {
            assert!(route.path().starts_with(PREFIX), "{route:?}");
            assert_eq!(Route::from_path(route.path()), Some(Some(route)));
        }
        assert_eq!(Route::from_path("/.guichet/nope"), Some(None));
        assert_eq!(Route::from_path("/.guichet/login/x"), Some(None));
        assert_eq!(
            Route::from_path("/.guichet/auth/app/x"),
            Some(Some(Route::Auth))
        );
        assert_eq!(Route::from_path("/.guichet/authx"), Some(None));
        assert_eq!(
            Route::from_path("/.guichet/assets/guichet.css"),
            Some(Some(Route::Assets))
        );
        assert_eq!(Route::from_path("/.guichet/assets/"), Some(None));
        assert_eq!(Route::from_path("/app/.guichet/login"), None);
        assert!(is_own_path("/.guichet") && is_own_path("/.guichet/x"));
        assert!(!is_own_path("/.guichetx"));
        let public = Url::parse("https://app.example.gouv.fr").unwrap();
        assert_eq!(
            Route::Callback.url(&public),
            "https://app.example.gouv.fr/.guichet/callback"
        );
        assert_eq!(
            login_path("/a?b=1&c", &[("provider", "ac")]),
            "/.guichet/login?provider=ac&rd=%2Fa%3Fb%3D1%26c"
        );
    }
}
