//! The request pipeline: the listening application (`h1`: every request served by guichet's
//! own loop on pingora-core, with idle upstream connections kept in `pool` and request bodies
//! sent through `duplex`), the decisions it calls (`proxy`), guichet's own routes
//! (`routes`) and their handlers (`endpoints`), the pages a visitor sees (`pages`), what the
//! application is told about the request's way (`forwarded`) and the decisions about a visitor
//! (`visitor`: browser or script, where to send them back), and the answers to a front proxy's
//! checks (`forward_auth`). Nothing outside this module depends
//! on it but the server assembly.

pub mod client;
pub mod downstream;
pub mod duplex;
pub mod endpoints;
pub mod forward_auth;
pub mod forwarded;
pub mod h1;
pub mod inbound;
pub mod pages;
pub mod pool;
pub mod proxy;
pub mod routes;
pub mod visitor;
