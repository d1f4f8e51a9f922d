//! Authenticated encryption of what guichet hands to someone else to keep: login states and
//! logout hints kept by the visitor's browser (cookies) and sessions kept by the shared store. Both come back as
//! hostile bytes; [`Sealer::open`] accepts only what a holder of the same key sealed for the same
//! purpose and deployment.
//!
//! AES-256-GCM with a random 96-bit nonce per message, written as base64url of
//! `nonce ‖ ciphertext ‖ tag`. The associated data names the purpose (`login`, `session`,
//! `logout-hint`), the deployment (`public_url`, the configured provider ids) and, for a session
//! or its logout hint, the session's store key: a
//! sealed value cannot be moved from one purpose, deployment or key to another. Keys are derived
//! from one deployment secret with HMAC-SHA256 (one derived key per purpose).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// What a sealed value is for; part of its key derivation and associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A login in progress, kept in the visitor's browser.
    Login,
    /// A session, kept in the store shared by replicas.
    Session,
    /// A session's id_token, kept in the visitor's browser for the logout's `id_token_hint`.
    LogoutHint,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Login => b"guichet login-state v1",
            Purpose::Session => b"guichet shared-session v1",
            Purpose::LogoutHint => b"guichet logout-hint v1",
        }
    }
}

/// The secret every replica of one deployment shares (`session.shared.key_file`), or a random
/// one for a lone process. Its `Debug` hides it.
#[derive(Clone)]
pub struct DeploymentKey([u8; 32]);

impl DeploymentKey {
    /// A fresh random key (a process without replicas).
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        DeploymentKey(key)
    }

    /// The key shared by replicas, from the configured secret (at least 32 bytes, checked by the
    /// configuration).
    pub fn from_secret(secret: &[u8]) -> Self {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length");
        mac.update(b"guichet deployment key");
        DeploymentKey(mac.finalize().into_bytes().into())
    }

    /// The key as base64url, for the hand-over file of a graceful upgrade (a lone process's
    /// random key must outlive it, or what its browsers hold would no longer open).
    pub fn to_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// A key written by [`Self::to_text`]; `None` for anything else.
    pub fn from_text(text: &str) -> Option<Self> {
        let bytes: [u8; 32] = URL_SAFE_NO_PAD.decode(text).ok()?.try_into().ok()?;
        Some(DeploymentKey(bytes))
    }

    /// A sealer for one purpose, bound to this deployment's `context` (public URL, providers).
    pub fn sealer(&self, purpose: Purpose, context: &str) -> Sealer {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC accepts 32-byte keys");
        mac.update(purpose.label());
        let key: [u8; 32] = mac.finalize().into_bytes().into();
        let mut aad = purpose.label().to_vec();
        aad.push(0);
        aad.extend_from_slice(context.as_bytes());
        Sealer {
            cipher: Aes256Gcm::new(&key.into()),
            aad,
        }
    }
}

impl std::fmt::Debug for DeploymentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeploymentKey(REDACTED)")
    }
}

/// Seals and opens values for one purpose and deployment.
pub struct Sealer {
    cipher: Aes256Gcm,
    aad: Vec<u8>,
}

impl Sealer {
    fn aad(&self, binding: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(self.aad.len() + 1 + binding.len());
        aad.extend_from_slice(&self.aad);
        aad.push(0);
        aad.extend_from_slice(binding);
        aad
    }

    /// Encrypts `plaintext`, bound to `binding` (e.g. the session's store key), as base64url.
    pub fn seal(&self, binding: &[u8], plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let aad = self.aad(binding);
        let ciphertext = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("AES-GCM encrypts any message shorter than 64 GiB");
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// The plaintext, if `sealed` was sealed by this deployment's key for this purpose and
    /// `binding`; `None` for anything else (altered, foreign, truncated, not base64url).
    pub fn open(&self, binding: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &self.aad(binding),
                },
            )
            .ok()
    }
}

/// The deployment context sealed values are bound to: the public URL and the provider ids.
pub fn deployment_context<'a>(
    public_url: &str,
    providers: impl Iterator<Item = &'a str>,
) -> String {
    let mut ids: Vec<&str> = providers.collect();
    ids.sort_unstable();
    format!("{public_url}\n{}", ids.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_for_their_key_purpose_deployment_and_binding() {
        let key = DeploymentKey::from_secret(&[7u8; 40]);
        let sealer = key.sealer(Purpose::Session, "https://a.example\np");
        let sealed = sealer.seal(b"k1", b"hello");
        assert_eq!(
            sealer.open(b"k1", sealed.as_bytes()).as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(sealer.open(b"k2", sealed.as_bytes()), None, "other binding");
        for purpose in [Purpose::Login, Purpose::LogoutHint] {
            let other_purpose = key.sealer(purpose, "https://a.example\np");
            assert_eq!(other_purpose.open(b"k1", sealed.as_bytes()), None);
        }
        let other_deployment = key.sealer(Purpose::Session, "https://b.example\np");
        assert_eq!(other_deployment.open(b"k1", sealed.as_bytes()), None);
        let other_key =
            DeploymentKey::from_secret(&[8u8; 40]).sealer(Purpose::Session, "https://a.example\np");
        assert_eq!(other_key.open(b"k1", sealed.as_bytes()), None);
        // Every single-byte alteration of the encoded value is refused.
        let bytes = sealed.as_bytes();
        for i in 0..bytes.len() {
            let mut altered = bytes.to_vec();
            altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
            assert_eq!(sealer.open(b"k1", &altered), None, "byte {i}");
        }
        for garbage in [&b""[..], b"!!!", b"AAAA", &[0xffu8; 40]] {
            assert_eq!(sealer.open(b"k1", garbage), None);
        }
        assert!(!format!("{key:?}").contains('7'));
    }

    #[test]
    fn a_key_survives_its_text_form_and_nothing_else_is_a_key() {
        let key = DeploymentKey::random();
        let text = key.to_text();
        let again = DeploymentKey::from_text(&text).expect("a key");
        let sealed = key.sealer(Purpose::LogoutHint, "c").seal(b"k", b"t");
        assert_eq!(
            again
                .sealer(Purpose::LogoutHint, "c")
                .open(b"k", sealed.as_bytes())
                .as_deref(),
            Some(&b"t"[..])
        );
        for bad in ["", "AAAA", &text[..42], &format!("{text}A"), "!!!!"] {
            assert!(DeploymentKey::from_text(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn deployment_context_does_not_depend_on_provider_order() {
        assert_eq!(
            deployment_context("u", ["b", "a"].into_iter()),
            deployment_context("u", ["a", "b"].into_iter())
        );
        assert_ne!(
            deployment_context("u", ["a"].into_iter()),
            deployment_context("u", ["a", "b"].into_iter())
        );
    }
}
