//! Forwarding the identity, as one operation: [`IdentityForwarder::apply`] strips every
//! identity header the client sent, then, for a request with a session, adds the session's
//! prebuilt headers, its signed assertion and the request's HMAC signature. The proxy calls it
//! once per request; the benchmark measures it as it is.

use std::sync::Arc;

use http::request::Parts;

use super::{AssertionError, AssertionSigner, HeaderPlan, RequestSigner};
use crate::session::Session;

/// Everything that decides what identity headers the application receives.
pub struct IdentityForwarder {
    headers: Arc<HeaderPlan>,
    assertion: Option<AssertionSigner>,
    signature: Option<RequestSigner>,
}

impl IdentityForwarder {
    pub fn new(
        headers: Arc<HeaderPlan>,
        assertion: Option<AssertionSigner>,
        signature: Option<RequestSigner>,
    ) -> Self {
        IdentityForwarder {
            headers,
            assertion,
            signature,
        }
    }

    /// The assertion signer, when `[assertion]` is configured (its keys are published).
    pub fn assertion(&self) -> Option<&AssertionSigner> {
        self.assertion.as_ref()
    }

    /// How many headers [`IdentityForwarder::apply`] adds at most for `session`, so that the
    /// request's header map can make room once.
    pub fn added_headers(&self, session: Option<&Session>) -> usize {
        session.map_or(0, |session| {
            session.identity_header_count()
                + usize::from(self.assertion.is_some())
                + usize::from(self.signature.is_some())
        })
    }

    /// Strips the client's identity headers; with a session, adds its headers, assertion and
    /// signature (signed at `now()`, Unix seconds: the clock is read only when `[assertion]` or
    /// `[signature]` is configured, once). Without a session the request leaves with no
    /// identity at all.
    pub fn apply(
        &self,
        request: &mut Parts,
        session: Option<&Session>,
        now: impl FnOnce() -> u64,
    ) -> Result<(), AssertionError> {
        self.headers.strip(&mut request.headers);
        let Some(session) = session else {
            return Ok(());
        };
        let now = if self.assertion.is_some() || self.signature.is_some() {
            now()
        } else {
            0
        };
        for (name, value) in session.identity_headers() {
            request.headers.insert(name, value);
        }
        if let Some(signer) = &self.assertion {
            let value = signer.current(session, now)?;
            request.headers.insert(signer.header().clone(), value);
        }
        if let Some(signer) = &self.signature {
            let path = request.uri.path_and_query().map_or("/", |pq| pq.as_str());
            let value = signer.sign(
                request.method.as_str(),
                path,
                now,
                session.signature_block(),
            );
            request.headers.insert(signer.header().clone(), value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Secret, SignatureSettings};
    use crate::identity::Identity;
    use crate::session::{SessionPlan, SessionRecord};

    #[test]
    fn the_client_s_identity_goes_and_the_session_s_comes_signed() {
        let headers = Arc::new(HeaderPlan::default());
        let signature = RequestSigner::new(&SignatureSettings {
            header: "x-guichet-signature".into(),
            key: Secret::new("k".repeat(40)),
        })
        .unwrap();
        let forwarder = IdentityForwarder::new(headers.clone(), None, Some(signature));
        let session = SessionPlan {
            signatures: true,
            headers,
            assertions: false,
            forward_access_token: false,
            providers: vec!["p".into()],
        }
        .build(SessionRecord {
            identity: Identity::new("p", "real").with_claim("uid", "u1"),
            id_token: String::new(),
            access_token: None,
            created_at_ms: 0,
        })
        .unwrap();
        let forged = || {
            let mut request = pingora::http::RequestHeader::build("GET", b"/a?b=1", None).unwrap();
            for (name, value) in [
                ("X-Guichet-Sub", "forged"),
                ("x_guichet_uid", "forged"),
                ("X-Guichet-Signature", "forged"),
            ] {
                request.append_header(name, value).unwrap();
            }
            request.as_owned_parts()
        };
        let mut anonymous = forged();
        forwarder.apply(&mut anonymous, None, || 1000).unwrap();
        assert!(anonymous
            .headers
            .keys()
            .all(|n| !n.as_str().contains("guichet")));

        let mut signed_in = forged();
        forwarder
            .apply(&mut signed_in, Some(&session), || 1000)
            .unwrap();
        let values = |name: &str| -> Vec<&str> {
            signed_in
                .headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect()
        };
        assert_eq!(values("x-guichet-sub"), ["real"]);
        assert_eq!(values("x-guichet-uid"), ["u1"]);
        assert!(signed_in.headers.get("x_guichet_uid").is_none());
        let signature = values("x-guichet-signature");
        assert_eq!(signature.len(), 1);
        assert!(signature[0].starts_with("t=1000, v1="), "{signature:?}");

        // The room the proxy makes beforehand is what the headers take.
        let mut clean = pingora::http::RequestHeader::build("GET", b"/", None)
            .unwrap()
            .as_owned_parts();
        forwarder
            .apply(&mut clean, Some(&session), || 1000)
            .unwrap();
        assert_eq!(clean.headers.len(), forwarder.added_headers(Some(&session)));
        assert_eq!(forwarder.added_headers(None), 0);

        // Without [assertion] or [signature] the clock is not read.
        let plain = IdentityForwarder::new(Arc::new(HeaderPlan::default()), None, None);
        let mut unsigned = forged();
        plain
            .apply(&mut unsigned, Some(&session), || {
                panic!("the clock is read only to sign")
            })
            .unwrap();
        assert_eq!(
            unsigned.headers.get("x-guichet-sub").map(|v| v.as_bytes()),
            Some(&b"real"[..])
        );
        assert!(unsigned.headers.get("x-guichet-signature").is_none());
    }
}
