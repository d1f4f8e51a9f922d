//! Shared test harness: starts the real `guichet` binary as gateway and as mock provider on free
//! loopback ports, plus a small upstream application in the test process, and drives them with a
//! browser-like client that keeps its own cookie jar. One file per concern.
#![allow(dead_code)]

mod browser;
mod keys;
mod process;
mod stack;
mod upstream;
mod websocket;

pub use browser::*;
pub use keys::*;
pub use process::*;
pub use stack::*;
pub use upstream::*;
#[allow(unused_imports)]
pub use websocket::*;
