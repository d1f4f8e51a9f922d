//! Header names and values that live as long as the process: cloning one copies a pointer.
//!
//! A name or value parsed at run time keeps its bytes behind a reference count, which every
//! clone and every drop updates with an atomic instruction. The interned header names (the
//! identity headers', the assertion's and the signature's) and the public host are cloned into
//! every forwarded request, from every thread: each of those counts is a cache line the cores
//! hand back and forth on every request. Made from a copy that is never freed, a clone is a pointer copy and
//! a drop does nothing. Each distinct text is copied once (a set remembers them); the texts
//! come from the configuration and the bounded table of claim names, never from a request.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use http::{HeaderName, HeaderValue};

/// The texts copied so far, each once.
fn kept() -> &'static Mutex<HashSet<&'static [u8]>> {
    static KEPT: OnceLock<Mutex<HashSet<&'static [u8]>>> = OnceLock::new();
    KEPT.get_or_init(|| Mutex::new(HashSet::new()))
}

/// `bytes`, copied for the rest of the process (once per distinct text).
fn keep(bytes: &[u8]) -> &'static [u8] {
    let mut kept = kept().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(found) = kept.get(bytes) {
        return found;
    }
    let copy: &'static [u8] = Box::leak(bytes.to_vec().into_boxed_slice());
    kept.insert(copy);
    copy
}

/// `name`, with its text kept for the process's life.
pub fn name(name: &HeaderName) -> HeaderName {
    // A `HeaderName`'s text is lowercase and valid, which is what `from_static` accepts.
    match std::str::from_utf8(keep(name.as_str().as_bytes())) {
        Ok(text) => HeaderName::from_static(text),
        Err(_) => name.clone(),
    }
}

/// `value`, with its bytes kept for the process's life.
pub fn value(value: &HeaderValue) -> HeaderValue {
    HeaderValue::from_maybe_shared(Bytes::from_static(keep(value.as_bytes())))
        .unwrap_or_else(|_| value.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_header_is_the_same_header_and_its_text_is_kept_once() {
        for text in ["x-guichet-sub", "accept-language", "x-a", "from"] {
            let parsed = HeaderName::from_bytes(text.as_bytes()).unwrap();
            let kept = name(&parsed);
            assert_eq!(kept, parsed);
            assert_eq!(kept.as_str(), text);
        }
        let upper = HeaderName::from_bytes(b"X-Guichet-Given-Name").unwrap();
        assert_eq!(name(&upper).as_str(), "x-guichet-given-name");

        let first = keep(b"app.example.gouv.fr:8443");
        let second = keep(b"app.example.gouv.fr:8443");
        assert!(std::ptr::eq(first, second));
        assert!(!std::ptr::eq(first, keep(b"other.example.gouv.fr")));

        for text in ["app.example.gouv.fr", "", "H%C3%A9l%C3%A8ne"] {
            let parsed = HeaderValue::from_str(text).unwrap();
            assert_eq!(value(&parsed), parsed);
        }
    }
}
