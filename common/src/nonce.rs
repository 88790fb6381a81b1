//! Stateless DPoP server nonces (RFC 9449 §8–9).
//!
//! As node-oidc-provider does, a nonce is an HMAC-SHA256 over the current
//! time step under a server secret: no storage, every edge isolate and origin
//! replica sharing the secret agrees, and a nonce stays valid for the current
//! step plus `window_steps` earlier ones. The secret never leaves this type
//! (`Debug` is redacted) and comparisons are constant-time.

use crate::{b64, UnixTime};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use subtle::ConstantTimeEq;

/// Issues and checks stateless nonces.
#[derive(Clone)]
pub struct NonceIssuer {
    secret: Vec<u8>,
    step_secs: i64,
    window_steps: u32,
}

impl fmt::Debug for NonceIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceIssuer")
            .field("secret", &"[redacted]")
            .field("step_secs", &self.step_secs)
            .field("window_steps", &self.window_steps)
            .finish()
    }
}

/// The secret is too short to key the HMAC safely.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("DPoP nonce secret must be at least 32 bytes")]
pub struct WeakNonceSecret;

impl NonceIssuer {
    /// Default time step: a nonce rotates every minute.
    pub const DEFAULT_STEP_SECS: i64 = 60;
    /// Default window: the previous step's nonce is still accepted.
    pub const DEFAULT_WINDOW_STEPS: u32 = 1;

    /// An issuer keyed with `secret` (≥ 32 bytes), stepping every
    /// `step_secs` (at least 1) and accepting `window_steps` earlier steps.
    pub fn new(secret: &[u8], step_secs: i64, window_steps: u32) -> Result<Self, WeakNonceSecret> {
        if secret.len() < 32 {
            return Err(WeakNonceSecret);
        }
        Ok(Self {
            secret: secret.to_vec(),
            step_secs: step_secs.max(1),
            window_steps,
        })
    }

    /// An issuer with the default step and window.
    pub fn with_defaults(secret: &[u8]) -> Result<Self, WeakNonceSecret> {
        Self::new(secret, Self::DEFAULT_STEP_SECS, Self::DEFAULT_WINDOW_STEPS)
    }

    fn step(&self, now: UnixTime) -> i64 {
        now.0.div_euclid(self.step_secs)
    }

    fn nonce_for_step(&self, step: i64) -> [u8; 32] {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.secret) else {
            // HMAC accepts keys of any length; unreachable, but never panic.
            return [0; 32];
        };
        mac.update(b"gatehouse/dpop-nonce/v1\0");
        mac.update(&step.to_be_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The nonce to hand out at `now` (send it in a `DPoP-Nonce` header).
    #[must_use]
    pub fn issue(&self, now: UnixTime) -> String {
        b64::encode(&self.nonce_for_step(self.step(now)))
    }

    /// Whether `nonce` was issued in the current step or within the window.
    #[must_use]
    pub fn is_valid(&self, nonce: &str, now: UnixTime) -> bool {
        let Ok(bytes) = b64::decode(nonce) else {
            return false;
        };
        if bytes.len() != 32 {
            return false;
        }
        let current = self.step(now);
        let mut ok = subtle::Choice::from(0);
        for back in 0..=i64::from(self.window_steps) {
            ok |= self
                .nonce_for_step(current.saturating_sub(back))
                .ct_eq(bytes.as_slice());
        }
        ok.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn nonces_are_valid_for_the_step_and_window_only() {
        let n = NonceIssuer::new(SECRET, 60, 1).unwrap();
        let t = UnixTime(1_700_000_040);
        let nonce = n.issue(t);
        assert_eq!(nonce.len(), 43);
        assert!(n.is_valid(&nonce, t));
        assert!(
            n.is_valid(&nonce, t.plus(60)),
            "previous step still accepted"
        );
        assert!(!n.is_valid(&nonce, t.plus(120)), "two steps later: stale");
        assert!(
            !n.is_valid(&nonce, t.plus(-60)),
            "a nonce from the future is refused"
        );
        assert_ne!(n.issue(t), n.issue(t.plus(60)));
    }

    #[test]
    fn other_secrets_and_garbage_are_refused() {
        let a = NonceIssuer::with_defaults(SECRET).unwrap();
        let b = NonceIssuer::with_defaults(b"another secret of thirty-two b!!").unwrap();
        let t = UnixTime(1_700_000_000);
        assert!(!b.is_valid(&a.issue(t), t));
        assert!(!a.is_valid("", t));
        assert!(!a.is_valid("not base64!", t));
        assert!(!a.is_valid(&b64::encode(&[0; 31]), t));
        assert_eq!(
            NonceIssuer::with_defaults(b"short").unwrap_err(),
            WeakNonceSecret
        );
        assert!(!format!("{a:?}").contains("0123"));
    }
}
