//! What ties one run of the protocol together: the session id the caller gives, the run id
//! the parties agree on in the handshake, and the transcript hash they compare.
//!
//! - The **session id** is the caller's binding of the session (for now a hash of the
//!   session name; see [`session_id`]). Parties with different session ids refuse each
//!   other in the handshake.
//! - The **run id** hashes the session id, everything the handshake agrees on and one fresh
//!   random nonce from every party, so no two runs share it, even of the same session and
//!   program, and no party can fix it alone. Every commitment and coin toss of the
//!   preprocessing is bound to it, so nothing sent in one run verifies in another.
//! - The **transcript** is a running hash of the run id and every coin-toss result. A party
//!   that sends different nonces or different coin-toss openings to different parties
//!   leaves the honest parties with different transcripts; they compare them right after
//!   the handshake and again before any output is released (the
//!   [`TRANSCRIPT_CHECK`]), so such a party is caught even where the checks that use the
//!   coins would not notice.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::EngineError;

/// The check that parties holding different transcripts of the run fail.
pub const TRANSCRIPT_CHECK: &str = "transcript consistency check";

/// The session id: SHA-256 of a fixed label, the session's name and what the channel
/// authenticated the participants against (the roster's hash; empty without a roster), so
/// that a run is bound to whom it runs with as well as to its name. Local runs (`mpc run`,
/// tests) use the name `local`.
pub fn session_id(name: &str, authenticated_by: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"mpc session id v2\0");
    h.update((name.len() as u64).to_le_bytes());
    h.update(name.as_bytes());
    h.update(authenticated_by);
    h.finalize().into()
}

/// A running hash of the run: its id, then every coin-toss result in the order they were
/// tossed. Every honest party absorbs the same values in the same order, so equal digests
/// mean equal views of everything the coins decided.
#[derive(Clone)]
pub struct Transcript {
    hasher: blake3::Hasher,
}

impl Transcript {
    /// The transcript of a run that has only agreed on its id.
    pub fn new(run_id: &[u8; 32]) -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"mpc transcript v1");
        hasher.update(run_id);
        Self { hasher }
    }

    /// Absorbs the result of the coin toss `label` of batch `batch`.
    pub fn absorb(&mut self, label: &[u8], batch: u64, value: &[u8]) {
        self.hasher.update(&(label.len() as u64).to_le_bytes());
        self.hasher.update(label);
        self.hasher.update(&batch.to_le_bytes());
        self.hasher.update(&(value.len() as u64).to_le_bytes());
        self.hasher.update(value);
    }

    /// The digest of everything absorbed so far.
    pub fn digest(&self) -> [u8; 32] {
        *self.hasher.finalize().as_bytes()
    }
}

/// Compares `peer`'s transcript digest with this party's in constant time; `when` says at
/// which point of the run (for the error message).
pub(crate) fn check(
    peer: String,
    theirs: &[u8],
    mine: &[u8; 32],
    when: &str,
) -> Result<(), EngineError> {
    if bool::from(theirs.ct_eq(&mine[..])) {
        return Ok(());
    }
    Err(EngineError::Check {
        check: TRANSCRIPT_CHECK,
        peer,
        detail: format!(
            "its transcript of the run {when} differs from this party's (some party sent different handshake nonces or coin-toss openings to different parties)"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_differ_by_name() {
        assert_eq!(session_id("a", b""), session_id("a", b""));
        assert_ne!(session_id("a", b""), session_id("b", b""));
        assert_ne!(session_id("a", b""), session_id("a", &[7; 32]));
        assert_ne!(session_id("", b""), [0; 32]);
    }

    #[test]
    fn transcripts_depend_on_run_and_every_coin() {
        let base = {
            let mut t = Transcript::new(&[1; 32]);
            t.absorb(b"coin", 0, &[7; 32]);
            t.digest()
        };
        let variants = [
            (Transcript::new(&[2; 32]), &b"coin"[..], 0, [7; 32]),
            (Transcript::new(&[1; 32]), &b"coim"[..], 0, [7; 32]),
            (Transcript::new(&[1; 32]), &b"coin"[..], 1, [7; 32]),
            (Transcript::new(&[1; 32]), &b"coin"[..], 0, [8; 32]),
        ];
        for (mut t, label, batch, coin) in variants {
            t.absorb(label, batch, &coin);
            assert_ne!(t.digest(), base);
        }
        assert!(check("party 1".into(), &base, &base, "at the end").is_ok());
        let mut other = base;
        other[31] ^= 1;
        let err = check("party 1".into(), &other, &base, "at the end").unwrap_err();
        assert!(matches!(
            err,
            EngineError::Check {
                check: TRANSCRIPT_CHECK,
                ..
            }
        ));
        assert!(check("party 1".into(), &base[..31], &base, "at the end").is_err());
    }
}
