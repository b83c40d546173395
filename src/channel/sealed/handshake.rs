//! The key exchange of one pair of participants, without I/O: it takes the peer's frame 0
//! and returns ours. The driver in [`super`] moves the frames.
//!
//! The exchange is a Noise Protocol Framework handshake (the `snow` crate), so that the
//! analysis of a well-studied protocol covers it rather than a key schedule of our own:
//!
//! | authentication | pattern | what it proves |
//! |---|---|---|
//! | roster (`--roster`, `--identity`) | `Noise_KK_25519_ChaChaPoly_SHA256` | each side holds the secret key that the roster lists for the peer's seat |
//! | shared secret (`--secret-file`) | `Noise_NNpsk0_25519_ChaChaPoly_SHA256` | each side knows the secret (not *which* participant it is) |
//! | none | `Noise_NN_25519_ChaChaPoly_SHA256` | nothing: it only stops passive eavesdroppers |
//!
//! The dealer initiates towards every party; between two parties the lower index initiates.
//! The prologue binds the protocol label, the authentication mode, the endpoint and party
//! counts, SHA-256 of the session name, the roster hash and both seats, so that a message
//! from another session, roster or seat never completes a handshake. All patterns give
//! forward secrecy through fresh ephemeral keys.
//!
//! Each handshake message travels as transport frame 0 of its direction, after a plain
//! header that repeats what the prologue binds:
//!
//! ```text
//! "mpc-seal" | version 3 | mode | from u32 | to u32 | endpoints u32 | parties u32 |
//! SHA-256(session) | roster hash (32, zero without a roster) | Noise message
//! ```
//!
//! (integers little-endian). The header lets a participant say *what* differs (the session,
//! the dealer choice, the roster) instead of only that the handshake failed; it is checked
//! again by the handshake itself, through the prologue. Mode `0xff` marks a refusal: the rest
//! of the frame is a UTF-8 reason (a responder that rejects the initiator's message, or a
//! party that runs without a dealer answering one).
//!
//! The result is Noise's Split(): one key per direction, which [`super::Sealed`] uses with
//! AES-256-GCM and the frame number as nonce, as Noise's own transport messages do; we
//! take the raw keys (`risky-raw-split`) only because our frames exceed Noise's 64 KiB
//! message limit.

use bytes::{BufMut, Bytes, BytesMut};
use sha2::{Digest, Sha256};
use snow::{Builder, HandshakeState};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::super::identity::{Identity, Roster, Seat};
use super::super::{
    AuthFailure, AuthMode, ChannelError, DealerUse, FRAME_HEADER, IdentityFailure, MalformedReason,
    PeerNames, Phase, SetupMismatch, TransportFailure,
};

/// First bytes of every key-exchange frame.
pub const MAGIC: &[u8; 8] = b"mpc-seal";
/// Version of the scheme described above.
pub const VERSION: u8 = 3;
/// Length of the plain header before the Noise message.
const HEADER_LEN: usize = 8 + 1 + 1 + 4 * 4 + 32 + 32;
/// Largest Noise handshake message (KK's first message with an empty payload is 96 bytes).
const MAX_NOISE: usize = 256;
/// Header mode of a refusal.
const MODE_REFUSAL: u8 = 0xff;
/// Label at the start of every prologue.
const PROLOGUE_LABEL: &[u8] = b"mpc sealed channel v3";
/// Domain separation of the pre-shared key derived from a shared secret.
const PSK_LABEL: &[u8] = b"mpc sealed channel v2: shared secret";

/// How the participants authenticate each other.
pub enum Authentication<'a> {
    /// Nobody: an unauthenticated exchange.
    Anonymous,
    /// A secret every participant knows (already hashed to a Noise pre-shared key).
    Secret(&'a Zeroizing<[u8; 32]>),
    /// Per-seat keys.
    Roster {
        /// Who holds which key.
        roster: &'a Roster,
        /// This participant's key.
        identity: &'a Identity,
    },
}

impl Authentication<'_> {
    fn mode(&self) -> u8 {
        match self {
            Authentication::Anonymous => 0,
            Authentication::Secret(_) => 1,
            Authentication::Roster { .. } => 2,
        }
    }

    fn pattern(&self) -> &'static str {
        match self {
            Authentication::Anonymous => "Noise_NN_25519_ChaChaPoly_SHA256",
            Authentication::Secret(_) => "Noise_NNpsk0_25519_ChaChaPoly_SHA256",
            Authentication::Roster { .. } => "Noise_KK_25519_ChaChaPoly_SHA256",
        }
    }

    fn roster_hash(&self) -> [u8; 32] {
        match self {
            Authentication::Roster { roster, .. } => roster.hash(),
            _ => [0; 32],
        }
    }
}

/// The Noise pre-shared key of a shared secret.
pub fn psk_of(secret: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut h = Sha256::new();
    h.update(PSK_LABEL);
    h.update(secret);
    Zeroizing::new(h.finalize().into())
}

/// What every pair of one session agrees on.
pub struct SessionFacts<'a> {
    /// The session name.
    pub session: &'a str,
    /// This endpoint.
    pub me: usize,
    /// Endpoints in the session (parties, plus the dealer if there is one).
    pub endpoints: usize,
    /// Computing parties.
    pub parties: usize,
}

impl SessionFacts<'_> {
    fn names(&self) -> PeerNames {
        PeerNames::new(self.parties)
    }

    fn seat(&self, endpoint: usize) -> Seat {
        if endpoint == self.parties {
            Seat::Dealer
        } else {
            Seat::Party(endpoint)
        }
    }

    /// Whether this endpoint sends the first handshake message to `peer`.
    pub fn initiates(&self, peer: usize) -> bool {
        let dealer = self.parties;
        self.me == dealer || (peer != dealer && self.me < peer)
    }

    fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.session.as_bytes()).into()
    }

    fn header(&self, mode: u8, to: usize, roster_hash: &[u8; 32]) -> BytesMut {
        let mut b = BytesMut::with_capacity(HEADER_LEN + MAX_NOISE);
        b.put_slice(MAGIC);
        b.put_u8(VERSION);
        b.put_u8(mode);
        b.put_u32_le(self.me as u32);
        b.put_u32_le(to as u32);
        b.put_u32_le(self.endpoints as u32);
        b.put_u32_le(self.parties as u32);
        b.put_slice(&self.digest());
        b.put_slice(roster_hash);
        b
    }
}

/// A frame 0 that refuses a peer's key exchange, with the reason.
pub fn refusal(facts: &SessionFacts<'_>, to: usize, reason: &str) -> Bytes {
    let mut b = facts.header(MODE_REFUSAL, to, &[0; 32]);
    b.put_slice(reason.as_bytes());
    b.freeze()
}

/// The keys one pair agreed on.
pub struct PairSecrets {
    /// For frames this endpoint sends.
    pub send: Zeroizing<[u8; 32]>,
    /// For frames it receives.
    pub recv: Zeroizing<[u8; 32]>,
}

/// The handshake with one peer.
pub struct PairHandshake<'a> {
    facts: &'a SessionFacts<'a>,
    auth: &'a Authentication<'a>,
    peer: usize,
    state: HandshakeState,
}

impl<'a> PairHandshake<'a> {
    /// Prepares the handshake with `peer`.
    pub fn new(
        facts: &'a SessionFacts<'a>,
        auth: &'a Authentication<'a>,
        peer: usize,
    ) -> Result<Self, ChannelError> {
        let initiator = facts.initiates(peer);
        let (i, r) = if initiator {
            (facts.me, peer)
        } else {
            (peer, facts.me)
        };
        let mut prologue = Vec::with_capacity(PROLOGUE_LABEL.len() + 1 + 4 * 4 + 64);
        prologue.extend_from_slice(PROLOGUE_LABEL);
        prologue.push(auth.mode());
        for v in [facts.endpoints, facts.parties, i, r] {
            prologue.extend_from_slice(&(v as u32).to_le_bytes());
        }
        prologue.extend_from_slice(&facts.digest());
        prologue.extend_from_slice(&auth.roster_hash());
        let params = auth
            .pattern()
            .parse()
            .map_err(|_| internal("unknown Noise pattern"))?;
        let builder = Builder::with_resolver(params, super::noise_crypto::resolver())
            .prologue(&prologue)
            .map_err(|_| internal("prologue"))?;
        let remote;
        let builder = match auth {
            Authentication::Anonymous => builder,
            Authentication::Secret(psk) => builder.psk(0, psk).map_err(|_| internal("psk"))?,
            Authentication::Roster { roster, identity } => {
                let Some(key) = roster.key(facts.seat(peer)) else {
                    return Err(ChannelError::Identity {
                        peer: facts.names().name(peer),
                        detail: IdentityFailure::NoSeat(facts.seat(peer)),
                    });
                };
                remote = key;
                builder
                    .local_private_key(identity.secret_bytes())
                    .and_then(|b| b.remote_public_key(remote.as_bytes()))
                    .map_err(|_| internal("static keys"))?
            }
        };
        let state = if initiator {
            builder.build_initiator()
        } else {
            builder.build_responder()
        }
        .map_err(|_| internal("cannot start the handshake"))?;
        Ok(PairHandshake {
            facts,
            auth,
            peer,
            state,
        })
    }

    /// Whether this endpoint speaks first.
    pub fn initiator(&self) -> bool {
        self.state.is_initiator()
    }

    /// Writes our handshake message (the first if we initiate, else the answer).
    pub fn write(&mut self) -> Result<Bytes, ChannelError> {
        let mut frame = self
            .facts
            .header(self.auth.mode(), self.peer, &self.auth.roster_hash());
        let mut noise = [0u8; MAX_NOISE];
        let len = self
            .state
            .write_message(&[], &mut noise)
            .map_err(|_| internal("cannot write the handshake message"))?;
        frame.put_slice(&noise[..len]);
        Ok(frame.freeze())
    }

    /// Checks the peer's frame 0 and reads its handshake message.
    pub fn read(&mut self, frame: &[u8]) -> Result<(), ChannelError> {
        let noise = self.check_header(frame)?;
        let mut payload = [0u8; MAX_NOISE];
        match self.state.read_message(noise, &mut payload) {
            Ok(_) => Ok(()),
            Err(_) => Err(self.unverified()),
        }
    }

    /// The keys, once both messages have passed.
    pub fn finish(mut self) -> Result<PairSecrets, ChannelError> {
        if !self.state.is_handshake_finished() {
            return Err(internal("the handshake is not finished"));
        }
        let (to_responder, to_initiator) = self.state.dangerously_get_raw_split();
        let (to_responder, to_initiator) =
            (Zeroizing::new(to_responder), Zeroizing::new(to_initiator));
        Ok(if self.state.is_initiator() {
            PairSecrets {
                send: to_responder,
                recv: to_initiator,
            }
        } else {
            PairSecrets {
                send: to_initiator,
                recv: to_responder,
            }
        })
    }

    /// The error for a handshake message that does not verify.
    fn unverified(&self) -> ChannelError {
        let name = self.facts.names().name(self.peer);
        match self.auth {
            Authentication::Roster { roster, .. } => {
                let seat = self.facts.seat(self.peer);
                ChannelError::Identity {
                    peer: name,
                    detail: IdentityFailure::KeyMismatch {
                        seat,
                        key: roster.key(seat).map(|k| k.to_string()),
                    },
                }
            }
            Authentication::Secret(_) => ChannelError::Authentication {
                peer: name.clone(),
                detail: AuthFailure::SecretsDiffer { peer: name },
            },
            Authentication::Anonymous => ChannelError::Authentication {
                peer: name,
                detail: AuthFailure::KeyExchangeAltered,
            },
        }
    }

    /// Checks the plain header of the peer's frame 0; returns the Noise message after it.
    fn check_header<'f>(&self, frame: &'f [u8]) -> Result<&'f [u8], ChannelError> {
        let facts = self.facts;
        let name = facts.names().name(self.peer);
        let me = facts.names().name(facts.me);
        let malformed = |detail: MalformedReason| ChannelError::Malformed {
            peer: name.clone(),
            detail,
        };
        let differs = |detail: SetupMismatch| ChannelError::Setup {
            peer: name.clone(),
            detail,
        };
        if frame.len() < MAGIC.len() || &frame[..MAGIC.len()] != MAGIC {
            if looks_plain(frame) {
                return Err(malformed(MalformedReason::NotSealed { peer: name.clone() }));
            }
            return Err(malformed(MalformedReason::NotKeyExchange));
        }
        if frame.len() > MAGIC.len() && frame[MAGIC.len()] != VERSION {
            return Err(malformed(MalformedReason::SchemeVersion {
                theirs: frame[MAGIC.len()],
                ours: VERSION,
            }));
        }
        if frame.len() < HEADER_LEN {
            return Err(malformed(MalformedReason::ShortKeyExchange {
                len: frame.len(),
                header: HEADER_LEN,
            }));
        }
        let word = |at: usize| {
            u32::from_le_bytes([frame[at], frame[at + 1], frame[at + 2], frame[at + 3]]) as usize
        };
        let mode = frame[9];
        let (from, to, endpoints, parties) = (word(10), word(14), word(18), word(22));
        let (digest, roster_hash) = (&frame[26..58], &frame[58..90]);
        if from != self.peer || to != facts.me {
            return Err(malformed(MalformedReason::Misaddressed {
                from,
                to,
                expected_from: self.peer,
                expected_to: facts.me,
            }));
        }
        if digest != facts.digest() {
            return Err(differs(SetupMismatch::OtherSession(
                facts.session.to_string(),
            )));
        }
        if mode == MODE_REFUSAL {
            return Err(ChannelError::Refused {
                peer: name.clone(),
                reason: String::from_utf8_lossy(&frame[HEADER_LEN..]).into_owned(),
            });
        }
        if parties != facts.parties {
            return Err(differs(SetupMismatch::PartyCount {
                theirs: parties,
                me,
                ours: facts.parties,
            }));
        }
        if endpoints != facts.endpoints {
            let dealer = |e: usize| {
                if e > facts.parties {
                    DealerUse::With
                } else {
                    DealerUse::Without
                }
            };
            return Err(differs(SetupMismatch::DealerChoice {
                peer: name.clone(),
                session: None,
                theirs: dealer(endpoints),
                me,
                ours: dealer(facts.endpoints),
            }));
        }
        let mine = self.auth.mode();
        if mode != mine {
            let describe = |m: u8| match m {
                0 => AuthMode::None,
                1 => AuthMode::Secret,
                2 => AuthMode::Roster,
                other => AuthMode::Unknown(other),
            };
            return Err(differs(SetupMismatch::Authentication {
                peer: name.clone(),
                theirs: describe(mode),
                me,
                ours: describe(mine),
            }));
        }
        let my_hash = self.auth.roster_hash();
        if !bool::from(roster_hash.ct_eq(&my_hash)) {
            return Err(ChannelError::Identity {
                peer: name,
                detail: IdentityFailure::OtherRoster {
                    theirs: hex::encode(&roster_hash[..6]),
                    me,
                    mine: hex::encode(&my_hash[..6]),
                },
            });
        }
        let noise = &frame[HEADER_LEN..];
        if noise.len() > MAX_NOISE {
            return Err(malformed(MalformedReason::LongHandshake {
                len: noise.len(),
                max: MAX_NOISE,
            }));
        }
        Ok(noise)
    }
}

/// Whether a frame looks like an unsealed [`super::super::Framed`] frame.
fn looks_plain(frame: &[u8]) -> bool {
    frame.len() >= FRAME_HEADER && frame[0] <= 1 && Phase::from_tag(frame[1]).is_some()
}

pub(super) fn internal(what: &'static str) -> ChannelError {
    ChannelError::Transport {
        peer: "this endpoint".into(),
        detail: TransportFailure::Internal(what),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roster_of(ids: &[Identity]) -> Roster {
        let text: String = ids
            .iter()
            .enumerate()
            .map(|(i, id)| format!("{i} {}\n", id.public()))
            .collect();
        Roster::parse(&text, "test").unwrap()
    }

    fn facts(me: usize) -> SessionFacts<'static> {
        SessionFacts {
            session: "s",
            me,
            endpoints: 2,
            parties: 2,
        }
    }

    /// Runs the two messages between endpoints 0 and 1; returns both results.
    fn run(
        auth0: &Authentication<'_>,
        auth1: &Authentication<'_>,
        tamper: impl Fn(&mut Vec<u8>),
    ) -> (
        Result<PairSecrets, ChannelError>,
        Result<PairSecrets, ChannelError>,
    ) {
        let (f0, f1) = (facts(0), facts(1));
        let mut a = PairHandshake::new(&f0, auth0, 1).unwrap();
        let mut b = PairHandshake::new(&f1, auth1, 0).unwrap();
        assert!(a.initiator() && !b.initiator());
        let mut m1 = a.write().unwrap().to_vec();
        tamper(&mut m1);
        if let Err(e) = b.read(&m1) {
            return (Err(internal("responder failed")), Err(e));
        }
        let m2 = b.write().unwrap();
        let rb = b.finish();
        let ra = a.read(&m2).and_then(|()| a.finish());
        (ra, rb)
    }

    #[test]
    fn every_mode_agrees_on_keys() {
        let ids = [Identity::generate(), Identity::generate()];
        let roster = roster_of(&ids);
        let psk = psk_of(b"shared");
        let modes = [
            (Authentication::Anonymous, Authentication::Anonymous),
            (Authentication::Secret(&psk), Authentication::Secret(&psk)),
            (
                Authentication::Roster {
                    roster: &roster,
                    identity: &ids[0],
                },
                Authentication::Roster {
                    roster: &roster,
                    identity: &ids[1],
                },
            ),
        ];
        for (x, y) in &modes {
            let (a, b) = run(x, y, |_| {});
            let (a, b) = (a.unwrap(), b.unwrap());
            assert_eq!(*a.send, *b.recv);
            assert_eq!(*a.recv, *b.send);
            assert_ne!(*a.send, *a.recv);
        }
    }

    #[test]
    fn an_impostor_does_not_prove_the_roster_identity() {
        let ids = [Identity::generate(), Identity::generate()];
        let roster = roster_of(&ids);
        let impostor = Identity::generate();
        let (_, b) = run(
            &Authentication::Roster {
                roster: &roster,
                identity: &impostor,
            },
            &Authentication::Roster {
                roster: &roster,
                identity: &ids[1],
            },
            |_| {},
        );
        let err = b.err().expect("must fail").to_string();
        assert!(
            err.contains("party 0 did not prove the identity the roster gives it"),
            "{err}"
        );
    }

    #[test]
    fn header_differences_are_named() {
        let psk = psk_of(b"x");
        let (_, b) = run(
            &Authentication::Secret(&psk),
            &Authentication::Anonymous,
            |_| {},
        );
        let err = b.err().unwrap().to_string();
        assert!(err.contains("uses a shared secret"), "{err}");
        let other = psk_of(b"y");
        let (_, b) = run(
            &Authentication::Secret(&psk),
            &Authentication::Secret(&other),
            |_| {},
        );
        let err = b.err().unwrap().to_string();
        assert!(err.contains("the shared secrets differ"), "{err}");
        let (_, b) = run(
            &Authentication::Anonymous,
            &Authentication::Anonymous,
            |m| m[18] = 3,
        );
        let err = b.err().unwrap().to_string();
        assert!(err.contains("with a dealer"), "{err}");
        // The roster hash of an anonymous exchange is all zeros; anything else is another
        // roster.
        let (_, b) = run(
            &Authentication::Anonymous,
            &Authentication::Anonymous,
            |m| m[HEADER_LEN - 1] ^= 1,
        );
        let err = b.err().unwrap().to_string();
        assert!(err.contains("another roster"), "{err}");
        // NN's first message is the bare ephemeral key: an altered one is noticed by the
        // initiator, whose answer then does not verify.
        let (a, _) = run(
            &Authentication::Anonymous,
            &Authentication::Anonymous,
            |m| {
                let last = m.len() - 1;
                m[last] ^= 1
            },
        );
        let err = a.err().expect("an altered handshake must fail").to_string();
        assert!(err.contains("altered on the way"), "{err}");
    }

    #[test]
    fn refusals_carry_their_reason() {
        let f = facts(0);
        let frame = refusal(&f, 1, "no dealer here");
        let f1 = facts(1);
        let auth = Authentication::Anonymous;
        let mut b = PairHandshake::new(&f1, &auth, 0).unwrap();
        let err = b.read(&frame).unwrap_err().to_string();
        assert!(
            err.contains("refused") && err.contains("no dealer here"),
            "{err}"
        );
    }
}
