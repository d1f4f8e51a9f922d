//! guichet: an authenticating reverse proxy for French public administrations' legacy
//! applications. Visitors sign in through AgentConnect/ProConnect, FranceConnect or any OpenID
//! Connect provider; the application receives the verified identity as HTTP headers.
//!
//! The request flow is drawn in `ARCHITECTURE.md`; each module's doc says what it owns.
#![forbid(unsafe_code)]
// No `unwrap` outside tests: what the gateway reads (requests, provider answers, store entries)
// is handled as an error, never as a panic. Tests may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod access_log;
pub mod assertion;
pub mod clock;
pub mod config;
pub mod cookies;
pub mod demo;
pub mod gateway;
pub mod http;
pub mod identity;
pub mod jose;
pub mod lasting;
pub mod login_state;
pub mod logout_hint;
pub mod metrics;
pub mod oidc;
pub mod one_time;
pub mod policy;
pub mod seal;
pub mod server;
pub mod session;
pub mod shared;
pub mod signatures;
