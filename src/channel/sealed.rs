//! End-to-end sealing of frames: [`Sealed`] wraps any [`Transport`] so that whatever carries
//! the frames (the relay, the network, a proxy) can neither read nor change them.
//!
//! # Establishment (transport frame 0 of every direction)
//!
//! Every endpoint sends every peer, concurrently, one *hello* as the transport's frame 0:
//!
//! ```text
//! "mpc-seal" | version 1 | flags (bit 0: a shared secret is used) | from u32 | to u32 |
//! peers u32 | SHA-256(session) | X25519 public key (32) | [confirmation tag (32)]
//! ```
//!
//! (integers little-endian). The public key is fresh for every run and every pair.
//!
//! With a shared session secret `S`, `psk = HKDF-Extract(salt "mpc sealed channel v1:
//! secret", S)` and the hello carries a key-confirmation tag `HKDF-Expand(psk, "confirm" |
//! context(from, to) | public key)`, which proves that the sender knows `S` and binds its
//! public key to it: a relay that does not know `S` cannot substitute its own key, and a
//! peer with another secret fails here, at the start, with a message saying the secrets
//! differ. Without a secret the exchange is unauthenticated: it defeats a passive relay
//! (one that only reads), but an active one could run an exchange with each side.
//!
//! # Keys and frames
//!
//! For the direction `x → y`: `key = HKDF-SHA256(salt = psk (or none), ikm = X25519 shared
//! secret).expand("key" | context(x, y) | pk_x | pk_y)` where `context(a, b) = "mpc sealed
//! channel v1" | u64 length | session | u32 peers | u32 a | u32 b`. Mixing the fresh X25519
//! secret into every key means keys never repeat across runs, even when a session name and
//! secret are reused, so counters may start from zero every time.
//!
//! Data frame `n` of a direction (as numbered by [`super::Framed`]) travels as transport
//! frame `n + 1` and is the whole plain frame (header with kind, phase, flags and number,
//! then payload) encrypted with ChaCha20-Poly1305: nonce = 4 zero bytes | `n + 1` (u64),
//! associated data = `"mpc sealed frame v1" | SHA-256(session) | u32 from | u32 to | u64
//! n + 1`, followed by the 16-byte tag. A frame that was altered, replayed, reordered,
//! dropped (the next one then arrives under the dropped one's number) or sealed with other
//! keys fails to open, and receiving fails with [`ChannelError::Authentication`] naming the
//! sender.

use std::fmt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce, Tag};
use futures_util::future::try_join_all;
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use thiserror::Error;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroize;

use super::{ChannelError, FRAME_HEADER, PeerNames, Phase, Transport};

/// First bytes of a hello frame.
const HELLO_MAGIC: &[u8; 8] = b"mpc-seal";
/// Version of the sealing scheme described in the module documentation.
const VERSION: u8 = 1;
/// Hello flag: the sender uses a shared secret (and the hello ends with its tag).
const FLAG_SECRET: u8 = 1;
/// Length of a hello without the confirmation tag.
const HELLO_LEN: usize = 8 + 1 + 1 + 4 + 4 + 4 + 32 + 32;
/// Length of the confirmation tag.
const CONFIRM_LEN: usize = 32;
/// Length of the AEAD tag appended to every sealed frame.
pub const TAG_LEN: usize = 16;
/// How long our other hellos may still take once establishment has failed.
const HELLO_GRACE: Duration = Duration::from_secs(2);
/// Transport frames used by establishment before the first data frame.
const SEQ_OFFSET: u64 = 1;

const CONTEXT_LABEL: &[u8] = b"mpc sealed channel v1";
const SECRET_SALT: &[u8] = b"mpc sealed channel v1: secret";
const AD_LABEL: &[u8] = b"mpc sealed frame v1";

/// A shared session secret (from `--secret-file` or `MPC_SECRET`). Never printed.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

/// Why a secret could not be used.
#[derive(Debug, Error)]
pub enum SecretError {
    /// The secret file cannot be read.
    #[error("cannot read the secret file {path}: {source}; give a readable file to --secret-file")]
    Read {
        /// The file.
        path: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The secret is empty (after trimming surrounding whitespace).
    #[error(
        "the shared secret from {origin} is empty; put the same random string (e.g. 32 hex characters) in it for every participant"
    )]
    Empty {
        /// Where it came from: the file or `MPC_SECRET`.
        origin: String,
    },
}

impl Secret {
    /// A secret from raw bytes; surrounding ASCII whitespace (a trailing newline) is ignored.
    pub fn new(bytes: &[u8], origin: &str) -> Result<Secret, SecretError> {
        let trimmed = bytes.trim_ascii();
        if trimmed.is_empty() {
            return Err(SecretError::Empty {
                origin: origin.to_string(),
            });
        }
        Ok(Secret(trimmed.to_vec()))
    }

    /// Reads a secret from a file.
    pub fn from_file(path: &Path) -> Result<Secret, SecretError> {
        let bytes = std::fs::read(path).map_err(|source| SecretError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Secret::new(&bytes, &format!("the file {}", path.display()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes, redacted)", self.0.len())
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// The keys of one peer's two directions.
struct PairKeys {
    send: ChaCha20Poly1305,
    recv: ChaCha20Poly1305,
    guard: Mutex<SendGuard>,
}

/// Makes sure a nonce (frame number) never seals two different frames.
#[derive(Default)]
struct SendGuard {
    /// Frame numbers below this one have been sealed already.
    next_unused: u64,
    /// A frame whose delivery failed: it may be sealed again (identically) for a retry.
    failed: Option<(u64, blake3::Hash)>,
}

enum Mode {
    /// No sealing (`--no-seal`): frames pass through unchanged.
    Plain,
    /// Per-peer keys (`None` for this endpoint itself).
    Sealed {
        keys: Vec<Option<PairKeys>>,
        secret: bool,
    },
}

/// A [`Transport`] whose frames are encrypted and authenticated end to end; see the module
/// documentation for the wire format and key schedule.
pub struct Sealed<T: Transport> {
    inner: T,
    me: usize,
    names: PeerNames,
    session_digest: [u8; 32],
    mode: Mode,
}

/// What the endpoints of one session agree on before sealing.
#[derive(Debug, Clone)]
pub struct SealParams<'a> {
    /// The session name (bound into every key and frame).
    pub session: &'a str,
    /// This endpoint's number.
    pub me: usize,
    /// Number of endpoints, including this one.
    pub peers: usize,
    /// Number of computing parties (for naming peers: peer `parties` is the dealer).
    pub parties: usize,
    /// How long establishment may wait for each peer.
    pub timeout: Duration,
}

impl<T: Transport> Sealed<T> {
    /// Runs the key exchange with every peer concurrently (bounded by `params.timeout`) and
    /// returns the sealed transport. With `secret`, every peer must hold the same secret:
    /// a peer with another one is reported at once ("the shared secrets differ").
    pub async fn establish(
        inner: T,
        params: &SealParams<'_>,
        secret: Option<&Secret>,
    ) -> Result<Self, ChannelError> {
        let names = PeerNames::new(params.parties);
        let session_digest: [u8; 32] = Sha256::digest(params.session.as_bytes()).into();
        let psk: Option<[u8; 32]> = secret.map(|s| {
            let (prk, _) = Hkdf::<Sha256>::extract(Some(SECRET_SALT), &s.0);
            prk.into()
        });
        let deadline = Instant::now() + params.timeout;
        let hellos = (0..params.peers)
            .filter(|&p| p != params.me)
            .map(|peer| hello(params, peer, psk.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        // Every hello is sent whatever happens to the others, so that a peer learns from us
        // (e.g. that the secrets differ) even if we stop early because of a third one.
        let sends = futures_util::future::join_all(
            hellos
                .iter()
                .map(|h| inner.send_frame(h.peer, 0, h.frame.clone())),
        );
        let verified = try_join_all(
            hellos
                .iter()
                .map(|h| receive_hello(&inner, params, &names, h, psk.as_ref(), deadline)),
        );
        let run = async {
            tokio::pin!(sends, verified);
            let mut sent = None;
            let verified = loop {
                tokio::select! {
                    result = &mut sends, if sent.is_none() => sent = Some(result),
                    result = &mut verified => break result,
                }
            };
            match verified {
                Ok(established) => {
                    let sent = match sent {
                        Some(sent) => sent,
                        None => sends.await,
                    };
                    Ok((established, sent))
                }
                Err(err) => {
                    // Give the other hellos a moment to get through, not the whole timeout
                    // (a peer that already stopped would hold us up).
                    if sent.is_none() {
                        let _ = tokio::time::timeout(HELLO_GRACE, sends).await;
                    }
                    Err(err)
                }
            }
        };
        let (established, sent) =
            tokio::time::timeout_at((deadline + Duration::from_secs(1)).into(), run)
                .await
                .map_err(|_| ChannelError::Timeout {
                    peer: "the other participants".into(),
                    phase: Phase::KeyExchange,
                    secs: params.timeout.as_secs(),
                })??;
        for result in sent {
            result?;
        }
        let mut keys: Vec<Option<PairKeys>> = (0..params.peers).map(|_| None).collect();
        for (peer, pair) in established {
            keys[peer] = Some(pair);
        }
        Ok(Sealed {
            inner,
            me: params.me,
            names,
            session_digest,
            mode: Mode::Sealed {
                keys,
                secret: secret.is_some(),
            },
        })
    }

    /// A pass-through wrapper that seals nothing (`--no-seal`, for measurements and for
    /// talking to endpoints that do not seal): whoever carries the frames reads them all.
    pub fn plain(inner: T, me: usize, parties: usize) -> Self {
        Sealed {
            inner,
            me,
            names: PeerNames::new(parties),
            session_digest: [0; 32],
            mode: Mode::Plain,
        }
    }

    /// The wrapped transport.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// Whether frames are sealed.
    pub fn is_sealed(&self) -> bool {
        matches!(self.mode, Mode::Sealed { .. })
    }

    /// Whether the keys are authenticated by a shared secret (so that an active relay
    /// cannot interpose), not only agreed by an anonymous exchange.
    pub fn uses_secret(&self) -> bool {
        matches!(self.mode, Mode::Sealed { secret: true, .. })
    }

    fn pair(&self, peer: usize) -> Result<Option<&PairKeys>, ChannelError> {
        match &self.mode {
            Mode::Plain => Ok(None),
            Mode::Sealed { keys, .. } => match keys.get(peer).and_then(Option::as_ref) {
                Some(pair) => Ok(Some(pair)),
                None => Err(ChannelError::Transport {
                    peer: self.names.name(peer),
                    detail: format!(
                        "no sealed channel with it (this endpoint is {})",
                        self.names.name(self.me)
                    ),
                }),
            },
        }
    }

    fn associated_data(&self, from: usize, to: usize, seq: u64) -> Vec<u8> {
        let mut ad = Vec::with_capacity(AD_LABEL.len() + 32 + 16);
        ad.extend_from_slice(AD_LABEL);
        ad.extend_from_slice(&self.session_digest);
        ad.extend_from_slice(&(from as u32).to_le_bytes());
        ad.extend_from_slice(&(to as u32).to_le_bytes());
        ad.extend_from_slice(&seq.to_le_bytes());
        ad
    }
}

/// The nonce of transport frame `seq`: 4 zero bytes, then the counter.
fn nonce(seq: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&seq.to_le_bytes());
    Nonce::from(n)
}

/// `context(a, b)` of the module documentation.
fn context(out: &mut Vec<u8>, session: &str, peers: usize, a: usize, b: usize) {
    out.extend_from_slice(CONTEXT_LABEL);
    out.extend_from_slice(&(session.len() as u64).to_le_bytes());
    out.extend_from_slice(session.as_bytes());
    out.extend_from_slice(&(peers as u32).to_le_bytes());
    out.extend_from_slice(&(a as u32).to_le_bytes());
    out.extend_from_slice(&(b as u32).to_le_bytes());
}

/// The key-confirmation tag of `from`'s hello to `to`.
fn confirmation(
    psk: &[u8; 32],
    params: &SealParams<'_>,
    from: usize,
    to: usize,
    public: &[u8; 32],
) -> Result<[u8; CONFIRM_LEN], ChannelError> {
    let mut info = b"confirm".to_vec();
    context(&mut info, params.session, params.peers, from, to);
    info.extend_from_slice(public);
    let hk = Hkdf::<Sha256>::from_prk(psk).map_err(|_| internal("bad PRK length"))?;
    let mut tag = [0u8; CONFIRM_LEN];
    hk.expand(&info, &mut tag)
        .map_err(|_| internal("bad HKDF output length"))?;
    Ok(tag)
}

/// The traffic key of direction `x → y`.
fn traffic_key(
    hk: &Hkdf<Sha256>,
    params: &SealParams<'_>,
    x: usize,
    y: usize,
    pk_x: &[u8; 32],
    pk_y: &[u8; 32],
) -> Result<ChaCha20Poly1305, ChannelError> {
    let mut info = b"key".to_vec();
    context(&mut info, params.session, params.peers, x, y);
    info.extend_from_slice(pk_x);
    info.extend_from_slice(pk_y);
    let mut key = [0u8; 32];
    hk.expand(&info, &mut key)
        .map_err(|_| internal("bad HKDF output length"))?;
    let cipher = ChaCha20Poly1305::new_from_slice(&key).map_err(|_| internal("bad key length"));
    key.zeroize();
    cipher
}

fn internal(what: &str) -> ChannelError {
    ChannelError::Transport {
        peer: "this endpoint".into(),
        detail: format!("internal error in the sealing layer: {what} (please report this bug)"),
    }
}

/// Constant-time equality of two byte strings of equal length.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn read_u32(bytes: &[u8], at: usize) -> usize {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b) as usize
}

/// Our hello to one peer and the ephemeral secret behind it.
struct Hello {
    peer: usize,
    secret: StaticSecret,
    public: [u8; 32],
    frame: Bytes,
}

/// Builds our hello to `peer` (fresh X25519 key; confirmation tag with a secret).
fn hello(
    params: &SealParams<'_>,
    peer: usize,
    psk: Option<&[u8; 32]>,
) -> Result<Hello, ChannelError> {
    let me = params.me;
    let secret = StaticSecret::from(rand::random::<[u8; 32]>());
    let public = PublicKey::from(&secret).to_bytes();
    let session_digest: [u8; 32] = Sha256::digest(params.session.as_bytes()).into();
    let mut frame = BytesMut::with_capacity(HELLO_LEN + CONFIRM_LEN);
    frame.put_slice(HELLO_MAGIC);
    frame.put_u8(VERSION);
    frame.put_u8(if psk.is_some() { FLAG_SECRET } else { 0 });
    frame.put_u32_le(me as u32);
    frame.put_u32_le(peer as u32);
    frame.put_u32_le(params.peers as u32);
    frame.put_slice(&session_digest);
    frame.put_slice(&public);
    if let Some(psk) = psk {
        frame.put_slice(&confirmation(psk, params, me, peer, &public)?);
    }
    Ok(Hello {
        peer,
        secret,
        public,
        frame: frame.freeze(),
    })
}

/// Receives `ours.peer`'s hello, checks it and derives the pair's keys.
async fn receive_hello<T: Transport>(
    inner: &T,
    params: &SealParams<'_>,
    names: &PeerNames,
    ours: &Hello,
    psk: Option<&[u8; 32]>,
    deadline: Instant,
) -> Result<(usize, PairKeys), ChannelError> {
    let me = params.me;
    let peer = ours.peer;
    let name = names.name(peer);
    let session_digest: [u8; 32] = Sha256::digest(params.session.as_bytes()).into();
    let theirs = match inner.recv_frame(peer, 0, deadline).await? {
        Some(frame) => frame,
        None => {
            return Err(ChannelError::Timeout {
                peer: name.clone(),
                phase: Phase::KeyExchange,
                secs: params.timeout.as_secs(),
            });
        }
    };
    let (secret, public) = (&ours.secret, ours.public);

    let malformed = |detail: String| ChannelError::Malformed {
        peer: name.clone(),
        detail,
    };
    let refused = |detail: String| ChannelError::Authentication {
        peer: name.clone(),
        detail,
    };
    if theirs.len() < HELLO_MAGIC.len() || &theirs[..HELLO_MAGIC.len()] != HELLO_MAGIC {
        if looks_plain(&theirs) {
            return Err(malformed(format!(
                "{name} does not seal its messages (was it started with --no-seal?) but this \
                 endpoint does; start every participant with the same options"
            )));
        }
        return Err(malformed(
            "its first frame is not a key exchange; is every participant running the same \
             version of mpc?"
                .into(),
        ));
    }
    if theirs.len() < HELLO_LEN {
        return Err(malformed(format!(
            "its key exchange is {} bytes, shorter than the {HELLO_LEN} bytes expected",
            theirs.len()
        )));
    }
    if theirs[8] != VERSION {
        return Err(malformed(format!(
            "it seals with scheme version {}, this endpoint with version {VERSION}; run the \
             same version of mpc everywhere",
            theirs[8]
        )));
    }
    let their_flags = theirs[9];
    let (from, to, peers) = (
        read_u32(&theirs, 10),
        read_u32(&theirs, 14),
        read_u32(&theirs, 18),
    );
    if from != peer || to != me || peers != params.peers {
        return Err(malformed(format!(
            "its key exchange is from endpoint {from} to {to} of {peers}, expected from {peer} \
             to {me} of {}; do all participants agree on the parties and the dealer?",
            params.peers
        )));
    }
    if theirs[22..54] != session_digest {
        return Err(malformed(format!(
            "it is in another session than '{}'",
            params.session
        )));
    }
    let mut their_public = [0u8; 32];
    their_public.copy_from_slice(&theirs[54..86]);
    let they_have_secret = their_flags & FLAG_SECRET != 0;
    match (psk, they_have_secret) {
        (Some(_), false) => {
            return Err(refused(format!(
                "{name} has no shared secret but this endpoint has one; give every participant \
                 the same --secret-file or MPC_SECRET"
            )));
        }
        (None, true) => {
            return Err(refused(format!(
                "{name} uses a shared secret but this endpoint has none; give every participant \
                 the same --secret-file or MPC_SECRET"
            )));
        }
        (Some(psk), true) => {
            if theirs.len() != HELLO_LEN + CONFIRM_LEN {
                return Err(malformed(format!(
                    "its key exchange is {} bytes, expected {}",
                    theirs.len(),
                    HELLO_LEN + CONFIRM_LEN
                )));
            }
            let expected = confirmation(psk, params, peer, me, &their_public)?;
            if !same(&expected, &theirs[HELLO_LEN..]) {
                return Err(refused(format!(
                    "the shared secrets differ: {name}'s key confirmation does not match this \
                     endpoint's secret; give every participant the same --secret-file or \
                     MPC_SECRET (if they already have the same one, something on the way \
                     altered the key exchange)"
                )));
            }
        }
        (None, false) => {
            if theirs.len() != HELLO_LEN {
                return Err(malformed(format!(
                    "its key exchange is {} bytes, expected {HELLO_LEN}",
                    theirs.len()
                )));
            }
        }
    }
    let shared = secret.diffie_hellman(&PublicKey::from(their_public));
    if !shared.was_contributory() {
        return Err(refused(
            "its key-exchange public key is invalid (a low-order point)".into(),
        ));
    }
    let hk = Hkdf::<Sha256>::new(psk.map(|p| p.as_slice()), shared.as_bytes());
    let send = traffic_key(&hk, params, me, peer, &public, &their_public)?;
    let recv = traffic_key(&hk, params, peer, me, &their_public, &public)?;
    Ok((
        peer,
        PairKeys {
            send,
            recv,
            guard: Mutex::new(SendGuard::default()),
        },
    ))
}

/// Whether a frame looks like an unsealed [`super::Framed`] frame.
fn looks_plain(frame: &[u8]) -> bool {
    frame.len() >= FRAME_HEADER && frame[0] <= 1 && Phase::from_tag(frame[1]).is_some()
}

impl<T: Transport> Transport for Sealed<T> {
    async fn send_frame(&self, to: usize, seq: u64, frame: Bytes) -> Result<(), ChannelError> {
        let Some(pair) = self.pair(to)? else {
            return self.inner.send_frame(to, seq, frame).await;
        };
        let outer = seq + SEQ_OFFSET;
        {
            let mut guard = pair.guard.lock().unwrap_or_else(|p| p.into_inner());
            if seq < guard.next_unused {
                let retry = guard
                    .failed
                    .is_some_and(|(n, hash)| n == seq && hash == blake3::hash(&frame));
                if !retry {
                    return Err(ChannelError::Transport {
                        peer: self.names.name(to),
                        detail: format!(
                            "frame {seq} was sealed before for another message; refusing to \
                             reuse its nonce"
                        ),
                    });
                }
            }
            guard.next_unused = guard.next_unused.max(seq + 1);
        }
        let mut buf = Vec::with_capacity(frame.len() + TAG_LEN);
        buf.extend_from_slice(&frame);
        let ad = self.associated_data(self.me, to, outer);
        let tag = pair
            .send
            .encrypt_inout_detached(&nonce(outer), &ad, buf.as_mut_slice().into())
            .map_err(|_| internal("frame too large to seal"))?;
        buf.extend_from_slice(&tag);
        match self.inner.send_frame(to, outer, Bytes::from(buf)).await {
            Ok(()) => {
                let mut guard = pair.guard.lock().unwrap_or_else(|p| p.into_inner());
                if guard.failed.is_some_and(|(n, _)| n == seq) {
                    guard.failed = None;
                }
                Ok(())
            }
            Err(err) => {
                let mut guard = pair.guard.lock().unwrap_or_else(|p| p.into_inner());
                guard.failed = Some((seq, blake3::hash(&frame)));
                Err(err)
            }
        }
    }

    async fn recv_frame(
        &self,
        from: usize,
        seq: u64,
        deadline: Instant,
    ) -> Result<Option<Bytes>, ChannelError> {
        let Some(pair) = self.pair(from)? else {
            let frame = self.inner.recv_frame(from, seq, deadline).await?;
            if seq == 0
                && let Some(frame) = &frame
                && frame.starts_with(HELLO_MAGIC)
            {
                let name = self.names.name(from);
                return Err(ChannelError::Malformed {
                    peer: name.clone(),
                    detail: format!(
                        "{name} seals its messages but this endpoint was started with \
                         --no-seal; start every participant with the same options"
                    ),
                });
            }
            return Ok(frame);
        };
        let outer = seq + SEQ_OFFSET;
        let Some(sealed) = self.inner.recv_frame(from, outer, deadline).await? else {
            return Ok(None);
        };
        let name = self.names.name(from);
        if sealed.len() < TAG_LEN {
            return Err(ChannelError::Authentication {
                peer: name,
                detail: format!(
                    "frame {seq} is {} bytes, shorter than its authentication tag",
                    sealed.len()
                ),
            });
        }
        let mut buf = sealed
            .try_into_mut()
            .unwrap_or_else(|b| BytesMut::from(&b[..]));
        let body_len = buf.len() - TAG_LEN;
        let tag = Tag::try_from(&buf[body_len..]).map_err(|_| internal("bad tag length"))?;
        let ad = self.associated_data(from, self.me, outer);
        pair.recv
            .decrypt_inout_detached(&nonce(outer), &ad, (&mut buf[..body_len]).into(), &tag)
            .map_err(|_| ChannelError::Authentication {
                peer: name.clone(),
                detail: format!(
                    "frame {seq} does not verify: it was altered, replayed, reordered or \
                     dropped on the way (or was not sealed by {name} with this session's keys)"
                ),
            })?;
        buf.truncate(body_len);
        Ok(Some(buf.freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::memory::{MemoryTransport, memory_channels};
    use crate::channel::{Channel, Framed};

    fn transports(n: usize) -> Vec<MemoryTransport> {
        memory_channels(n, n, Duration::from_secs(5))
            .into_iter()
            .map(Framed::into_transport)
            .collect()
    }

    async fn establish_all(
        n: usize,
        secrets: Vec<Option<Secret>>,
    ) -> Vec<Result<Sealed<MemoryTransport>, ChannelError>> {
        let tasks = transports(n).into_iter().zip(secrets).enumerate().map(
            |(me, (t, secret))| async move {
                let params = SealParams {
                    session: "test",
                    me,
                    peers: n,
                    parties: n,
                    timeout: Duration::from_secs(5),
                };
                Sealed::establish(t, &params, secret.as_ref()).await
            },
        );
        futures_util::future::join_all(tasks).await
    }

    fn secret(s: &str) -> Option<Secret> {
        Some(Secret::new(s.as_bytes(), "a test").unwrap())
    }

    #[tokio::test]
    async fn sealed_messages_round_trip() {
        for secrets in [
            vec![None, None, None],
            vec![secret("k"), secret("k"), secret("k")],
        ] {
            let sealed = establish_all(3, secrets).await;
            let chans: Vec<_> = sealed
                .into_iter()
                .enumerate()
                .map(|(me, s)| Framed::new(s.unwrap(), me, 3, 3, Duration::from_secs(5)))
                .collect();
            let big = Bytes::from(vec![7u8; (4 << 20) + 5]);
            chans[0]
                .send(1, Phase::Handshake, big.clone())
                .await
                .unwrap();
            chans[2]
                .send(1, Phase::GarbledRows, Bytes::from_static(b"hi"))
                .await
                .unwrap();
            assert_eq!(chans[1].recv(0, Phase::Handshake).await.unwrap(), big);
            assert_eq!(
                chans[1].recv(2, Phase::GarbledRows).await.unwrap(),
                Bytes::from_static(b"hi")
            );
        }
    }

    #[tokio::test]
    async fn different_secrets_fail_at_the_start() {
        let results = establish_all(2, vec![secret("one"), secret("two")]).await;
        for r in results {
            let err = r.err().expect("must fail").to_string();
            assert!(err.contains("the shared secrets differ"), "{err}");
        }
        let results = establish_all(2, vec![secret("one"), None]).await;
        let errs: Vec<String> = results
            .into_iter()
            .map(|r| r.err().unwrap().to_string())
            .collect();
        assert!(
            errs[0].contains("party 1 has no shared secret"),
            "{}",
            errs[0]
        );
        assert!(
            errs[1].contains("party 0 uses a shared secret"),
            "{}",
            errs[1]
        );
    }

    #[tokio::test]
    async fn altered_frames_fail_authentication() {
        let mut sealed = establish_all(2, vec![secret("k"), secret("k")]).await;
        let b = sealed.pop().unwrap().unwrap();
        let a = sealed.pop().unwrap().unwrap();
        // Seal two frames from 0 to 1 by hand, then deliver them altered and reordered.
        a.send_frame(1, 0, Bytes::from_static(b"frame zero"))
            .await
            .unwrap();
        a.send_frame(1, 1, Bytes::from_static(b"frame one"))
            .await
            .unwrap();
        // Receive frame 0 as frame 1's slot would see it: read raw and swap.
        let deadline = Instant::now() + Duration::from_secs(1);
        let raw0 = b.inner().recv_frame(0, 1, deadline).await.unwrap().unwrap();
        let raw1 = b.inner().recv_frame(0, 2, deadline).await.unwrap().unwrap();
        let open = |raw: Bytes, seq: u64| {
            let pair = b.pair(0).unwrap().unwrap();
            let mut buf = raw.to_vec();
            let n = buf.len() - TAG_LEN;
            let tag = Tag::try_from(&buf[n..]).unwrap();
            let ad = b.associated_data(0, 1, seq + 1);
            pair.recv
                .decrypt_inout_detached(&nonce(seq + 1), &ad, (&mut buf[..n]).into(), &tag)
                .is_ok()
        };
        assert!(open(raw0.clone(), 0));
        assert!(open(raw1.clone(), 1));
        assert!(!open(raw1.clone(), 0), "reordered frame must not verify");
        assert!(!open(raw0.clone(), 1), "replayed frame must not verify");
        let mut flipped = raw0.to_vec();
        flipped[3] ^= 1;
        assert!(
            !open(Bytes::from(flipped), 0),
            "altered frame must not verify"
        );
        // Reusing a nonce for another message is refused.
        let err = a
            .send_frame(1, 1, Bytes::from_static(b"another"))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("refusing to reuse its nonce"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod throughput {
    use super::*;
    use crate::channel::Framed;
    use crate::channel::memory::memory_channels;

    /// `cargo test --release --lib seal_throughput -- --ignored --nocapture`
    #[tokio::test]
    #[ignore = "a measurement, not a check"]
    async fn seal_throughput() {
        let mut ts: Vec<_> = memory_channels(2, 2, Duration::from_secs(5))
            .into_iter()
            .map(Framed::into_transport)
            .collect();
        let (b, a) = (ts.pop().unwrap(), ts.pop().unwrap());
        let secret = Secret::new(b"k", "test").unwrap();
        let p = |me| SealParams {
            session: "t",
            me,
            peers: 2,
            parties: 2,
            timeout: Duration::from_secs(5),
        };
        let (p0, p1) = (p(0), p(1));
        let (a, b) = tokio::join!(
            Sealed::establish(a, &p0, Some(&secret)),
            Sealed::establish(b, &p1, Some(&secret))
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        let frame = Bytes::from(vec![0x5a; 4 << 20]);
        let rounds = 64u64;
        let started = Instant::now();
        for seq in 0..rounds {
            a.send_frame(1, seq, frame.clone()).await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(1);
            b.recv_frame(0, seq, deadline).await.unwrap().unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        let mib = (rounds * 4) as f64;
        eprintln!(
            "sealed and opened {mib} MiB in {secs:.3} s: {:.0} MiB/s",
            mib / secs
        );
    }
}
