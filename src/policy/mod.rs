//! Access policy: which route a request is on, and what that route requires (a session or
//! not, which upstream, what to answer a visitor without a session). Routes are tried in file
//! order and the first that matches the path and the method wins; a request matching none
//! gets the default route (`auth = "required"`, `[upstream]`): with no `[[route]]`, every path
//! needs a session, as before routes existed. Matching walks a segment trie
//! ([`matcher::Matcher`]), so its cost does not grow with the number of routes.

pub mod matcher;
pub mod rules;

use http::Method;

use crate::config::Spelled;
pub use matcher::Pattern;
pub use rules::{AllowBlock, Denial, Requirement};

/// Whether a route needs a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// No session looked up, no identity sent (the client's identity headers still stripped).
    None,
    /// The identity when a live session exists, nothing otherwise; never a redirect.
    Optional,
    /// A live session, else a login redirect (browsers) or a 401 (scripts).
    Required,
}

impl Spelled for Auth {
    const SPELLINGS: &'static [(&'static str, Self)] = &[
        ("none", Auth::None),
        ("optional", Auth::Optional),
        ("required", Auth::Required),
    ];
}

/// What a visitor without a session gets on a route that requires one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WithoutSession {
    /// Browsers navigating are redirected to the login, scripts get a 401 (the default).
    ByClient,
    /// Always the login redirect.
    Redirect,
    /// Always a 401.
    Reject,
}

impl Spelled for WithoutSession {
    const SPELLINGS: &'static [(&'static str, Self)] = &[
        ("redirect", WithoutSession::Redirect),
        ("401", WithoutSession::Reject),
    ];
}

/// A route, validated.
#[derive(Clone, Debug)]
pub struct Route {
    /// For logs (and `route[i]` when unnamed).
    pub name: String,
    pub pattern: Pattern,
    /// `None`: every method.
    pub methods: Option<Vec<Method>>,
    pub auth: Auth,
    /// Index in `Settings::upstreams`; `None`: `[upstream]`.
    pub upstream: Option<usize>,
    pub without_session: WithoutSession,
    /// The providers whose sessions the route accepts; `None`: any.
    pub providers: Option<Vec<String>>,
    /// With blocks, a session needs one block whose every requirement holds.
    pub allow: Vec<AllowBlock>,
    /// The levels the route accepts (empty: any); a lower session is stepped up.
    pub acr: Vec<String>,
}

impl Route {
    /// The route a request matching no `[[route]]` gets.
    pub fn default_route() -> Self {
        Route {
            name: "default".into(),
            pattern: Pattern::Prefix("/".into()),
            methods: None,
            auth: Auth::Required,
            upstream: None,
            without_session: WithoutSession::ByClient,
            providers: None,
            allow: Vec::new(),
            acr: Vec::new(),
        }
    }

    /// Whether a session at level `acr` must sign in again at a higher level for this route.
    pub fn needs_step_up(&self, acr: Option<&str>) -> bool {
        !crate::config::acr_satisfies(acr, &self.acr)
    }

    /// Whether a signed-in identity may use this route; the requirement it misses if not.
    pub fn admits(&self, identity: &crate::identity::CompactIdentity) -> Result<(), Denial> {
        if let Some(providers) = &self.providers {
            if !providers.iter().any(|id| id == identity.provider()) {
                return Err(Denial::Provider);
            }
        }
        rules::admits(&self.allow, identity)
    }

    fn allows(&self, method: &Method) -> bool {
        self.methods
            .as_ref()
            .is_none_or(|methods| methods.contains(method))
    }
}

/// The configured routes, compiled once.
pub struct RouteTable {
    routes: Vec<Route>,
    matcher: matcher::Matcher,
    default: Route,
}

impl RouteTable {
    pub fn new(routes: Vec<Route>) -> Self {
        let mut matcher = matcher::Matcher::default();
        for (index, route) in routes.iter().enumerate() {
            matcher.insert(index, &route.pattern);
        }
        RouteTable {
            routes,
            matcher,
            default: Route::default_route(),
        }
    }

    /// Whether any `[[route]]` is configured.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The first route, in file order, matching the path and the method; else the default.
    pub fn find(&self, method: &Method, path: &str) -> &Route {
        if self.routes.is_empty() {
            return &self.default;
        }
        let mut candidates = Vec::new();
        self.matcher.matches(path, &mut candidates);
        candidates.sort_unstable();
        candidates
            .into_iter()
            .map(|index| &self.routes[index])
            .find(|route| route.allows(method))
            .unwrap_or(&self.default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, pattern: Pattern, methods: Option<&[&str]>, auth: Auth) -> Route {
        Route {
            name: name.into(),
            pattern,
            methods: methods.map(|m| m.iter().map(|m| m.parse().unwrap()).collect()),
            auth,
            upstream: None,
            without_session: WithoutSession::ByClient,
            providers: None,
            allow: Vec::new(),
            acr: Vec::new(),
        }
    }

    #[test]
    fn the_first_matching_route_in_file_order_wins_and_methods_filter() {
        use Pattern::*;
        let table = RouteTable::new(vec![
            route(
                "form-post",
                Exact("/form".into()),
                Some(&["POST"]),
                Auth::None,
            ),
            route(
                "preflight",
                Glob("/api/**".into()),
                Some(&["OPTIONS"]),
                Auth::None,
            ),
            route("health", Exact("/healthz".into()), None, Auth::None),
            route(
                "static",
                Prefix("/static/".into()),
                Some(&["GET", "HEAD"]),
                Auth::None,
            ),
            route("optional", Prefix("/".into()), None, Auth::Optional),
            route("never", Exact("/healthz".into()), None, Auth::Required),
        ]);
        let cases: &[(&str, &str, &str)] = &[
            ("POST", "/form", "form-post"),
            ("GET", "/form", "optional"),
            ("OPTIONS", "/api/v1/x", "preflight"),
            ("GET", "/api/v1/x", "optional"),
            ("GET", "/healthz", "health"),
            ("GET", "/static/app.js", "static"),
            ("POST", "/static/app.js", "optional"),
            ("GET", "/staticx", "optional"),
        ];
        for (method, path, name) in cases {
            let found = table.find(&method.parse().unwrap(), path);
            assert_eq!(found.name, *name, "{method} {path}");
        }
        let empty = RouteTable::new(vec![]);
        assert_eq!(empty.find(&Method::GET, "/x").auth, Auth::Required);
        let partial = RouteTable::new(vec![route("s", Prefix("/s/".into()), None, Auth::None)]);
        assert_eq!(partial.find(&Method::GET, "/x").name, "default");
    }
}
