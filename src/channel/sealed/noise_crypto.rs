//! The primitives of our Noise handshakes (X25519, ChaCha20-Poly1305, SHA-256), for `snow`.
//!
//! Why not snow's own: snow 0.10 (the newest release) builds its primitives on the previous
//! RustCrypto and dalek generations (`chacha20poly1305` 0.10 with `cipher` 0.4, `sha2` 0.10,
//! `curve25519-dalek` 4), which would put a second copy of each into the binary beside the
//! ones the rest of `mpc` uses. snow takes an application's primitives through a resolver,
//! so it gets them from here, from the same crates as the sealed frames and the identities.
//! Each adapter only moves bytes; the constructions are the ones the Noise specification
//! fixes (ChaChaPoly's nonce is 32 zero bits, then the 64-bit counter little-endian, with the
//! 16-byte tag appended), so peers that use snow's own primitives interoperate.

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce, Tag};
use rand::TryRngCore;
use sha2::{Digest, Sha256};
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{BoxedCryptoResolver, CryptoResolver};
use snow::types::{Cipher, Dh, Hash, Random};
use x25519_dalek::{PublicKey, StaticSecret};

/// Bytes of a Poly1305 tag.
const TAG_LEN: usize = 16;

/// The resolver to build every handshake with.
pub(crate) fn resolver() -> BoxedCryptoResolver {
    Box::new(Primitives)
}

/// Resolves exactly the primitives of `Noise_*_25519_ChaChaPoly_SHA256`; any other choice
/// is unavailable, which snow reports as an error when the handshake is built.
struct Primitives;

impl CryptoResolver for Primitives {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(OsRandom))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        match choice {
            DHChoice::Curve25519 => Some(Box::new(X25519::default())),
            _ => None,
        }
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        match choice {
            HashChoice::SHA256 => Some(Box::new(Sha256Hash::default())),
            _ => None,
        }
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        match choice {
            CipherChoice::ChaChaPoly => Some(Box::new(ChaChaPoly::default())),
            _ => None,
        }
    }
}

/// The operating system's randomness (ephemeral keys).
struct OsRandom;

impl Random for OsRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        rand::rngs::OsRng
            .try_fill_bytes(dest)
            .map_err(|_| snow::Error::Rng)
    }
}

/// An X25519 key pair (snow sets or generates the secret; the public key follows it).
#[derive(Default)]
struct X25519 {
    secret: [u8; 32],
    public: [u8; 32],
}

impl X25519 {
    fn derive_public(&mut self) {
        self.public = PublicKey::from(&StaticSecret::from(self.secret)).to_bytes();
    }
}

impl Dh for X25519 {
    fn name(&self) -> &'static str {
        "25519"
    }

    fn pub_len(&self) -> usize {
        32
    }

    fn priv_len(&self) -> usize {
        32
    }

    fn set(&mut self, privkey: &[u8]) {
        let n = privkey.len().min(32);
        self.secret = [0; 32];
        self.secret[..n].copy_from_slice(&privkey[..n]);
        self.derive_public();
    }

    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        rng.try_fill_bytes(&mut self.secret)?;
        self.derive_public();
        Ok(())
    }

    fn pubkey(&self) -> &[u8] {
        &self.public
    }

    fn privkey(&self) -> &[u8] {
        &self.secret
    }

    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        let peer: [u8; 32] = pubkey
            .get(..32)
            .and_then(|b| b.try_into().ok())
            .ok_or(snow::Error::Dh)?;
        let shared = StaticSecret::from(self.secret).diffie_hellman(&PublicKey::from(peer));
        out.get_mut(..32)
            .ok_or(snow::Error::Dh)?
            .copy_from_slice(shared.as_bytes());
        Ok(())
    }
}

/// SHA-256 as Noise's hash (snow builds HMAC and HKDF on top of it).
#[derive(Default)]
struct Sha256Hash(Sha256);

impl Hash for Sha256Hash {
    fn name(&self) -> &'static str {
        "SHA256"
    }

    fn block_len(&self) -> usize {
        64
    }

    fn hash_len(&self) -> usize {
        32
    }

    fn reset(&mut self) {
        self.0 = Sha256::default();
    }

    fn input(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn result(&mut self, out: &mut [u8]) {
        out[..32].copy_from_slice(&self.0.finalize_reset());
    }
}

/// One Noise cipher state's AEAD: the key snow sets, used with snow's nonces.
#[derive(Default)]
struct ChaChaPoly {
    key: [u8; 32],
}

/// Noise's nonce encoding for ChaChaPoly.
fn nonce(n: u64) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&n.to_le_bytes());
    Nonce::from(bytes)
}

impl Cipher for ChaChaPoly {
    fn name(&self) -> &'static str {
        "ChaChaPoly"
    }

    fn set(&mut self, key: &[u8; 32]) {
        self.key = *key;
    }

    /// snow sizes `out` for the plaintext and the tag; a shorter buffer is a bug in snow, so
    /// it panics as snow's own ciphers do.
    fn encrypt(&self, nonce_n: u64, authtext: &[u8], plaintext: &[u8], out: &mut [u8]) -> usize {
        let len = plaintext.len();
        out[..len].copy_from_slice(plaintext);
        let tag = ChaCha20Poly1305::new(&self.key.into())
            .encrypt_inout_detached(&nonce(nonce_n), authtext, (&mut out[..len]).into())
            .unwrap_or_else(|_| panic!("a Noise handshake message of {len} bytes"));
        out[len..len + TAG_LEN].copy_from_slice(&tag);
        len + TAG_LEN
    }

    fn decrypt(
        &self,
        nonce_n: u64,
        authtext: &[u8],
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, snow::Error> {
        let Some(len) = ciphertext.len().checked_sub(TAG_LEN) else {
            return Err(snow::Error::Decrypt);
        };
        let tag = Tag::try_from(&ciphertext[len..]).map_err(|_| snow::Error::Decrypt)?;
        out[..len].copy_from_slice(&ciphertext[..len]);
        ChaCha20Poly1305::new(&self.key.into())
            .decrypt_inout_detached(&nonce(nonce_n), authtext, (&mut out[..len]).into(), &tag)
            .map_err(|_| snow::Error::Decrypt)?;
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Noise's nonce: four zero bytes, then the counter little-endian.
    #[test]
    fn noise_nonce_layout() {
        assert_eq!(
            nonce(0x0807060504030201).as_slice(),
            &[0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]
        );
    }

    #[test]
    fn round_trip_and_tamper() {
        let mut c = ChaChaPoly::default();
        c.set(&[9u8; 32]);
        let mut sealed = [0u8; 5 + TAG_LEN];
        assert_eq!(c.encrypt(3, b"ad", b"hello", &mut sealed), 5 + TAG_LEN);
        let mut out = [0u8; 5];
        assert_eq!(c.decrypt(3, b"ad", &sealed, &mut out), Ok(5));
        assert_eq!(&out, b"hello");
        assert!(c.decrypt(4, b"ad", &sealed, &mut out).is_err());
        assert!(c.decrypt(3, b"AD", &sealed, &mut out).is_err());
        sealed[0] ^= 1;
        assert!(c.decrypt(3, b"ad", &sealed, &mut out).is_err());
        assert!(
            c.decrypt(3, b"ad", &sealed[..TAG_LEN - 1], &mut out)
                .is_err()
        );
    }

    /// A full Noise NN handshake and a transport message through the resolver: both sides
    /// derive the same handshake hash and the message arrives.
    #[test]
    fn handshake_through_the_resolver() {
        let params: snow::params::NoiseParams =
            "Noise_NN_25519_ChaChaPoly_SHA256".parse().expect("pattern");
        let mut a = snow::Builder::with_resolver(params.clone(), resolver())
            .build_initiator()
            .expect("initiator");
        let mut b = snow::Builder::with_resolver(params, resolver())
            .build_responder()
            .expect("responder");
        let mut buf = [0u8; 256];
        let mut got = [0u8; 256];
        let n = a.write_message(b"", &mut buf).expect("msg 1");
        b.read_message(&buf[..n], &mut got).expect("read 1");
        let n = b.write_message(b"payload", &mut buf).expect("msg 2");
        let m = a.read_message(&buf[..n], &mut got).expect("read 2");
        assert_eq!(&got[..m], b"payload");
        assert_eq!(a.get_handshake_hash(), b.get_handshake_hash());
        let mut a = a.into_transport_mode().expect("transport a");
        let mut b = b.into_transport_mode().expect("transport b");
        let n = a.write_message(b"frame", &mut buf).expect("frame");
        let m = b.read_message(&buf[..n], &mut got).expect("read frame");
        assert_eq!(&got[..m], b"frame");
    }
}
