//! The handshake: every party tells every other what it is about to compute, and any
//! difference stops the session with a [`HandshakeError`] naming the party and what differs.
//! Every party also sends a fresh nonce; all of them make the run id, which the parties then
//! compare (as their first transcript), so a party that sent different nonces to different
//! parties is caught here. No I/O: [`Handshake`] takes what arrived and returns what to send.

use bytes::Bytes;

use crate::channel::PeerNames;
use crate::engine::preprocess::SourceKind;
use crate::engine::transcript::{self, Transcript};
use crate::engine::{EngineError, MAX_PARTIES};

use super::PartyConfig;

const MAGIC: &[u8; 4] = b"MPCh";
/// Version 5: leaky triples bucketed by coin-tossed rotations of layers, one hash per key
/// for the half AND and the leaky-AND check (4: half gates for two parties, 64-bit
/// leaky-AND check values).
const VERSION: u8 = 5;
/// The output parties as a bitmap of [`MAX_PARTIES`] bits.
const OUTPUTS_LEN: usize = MAX_PARTIES / 8;
/// Magic, version, program hash, party count, index, evaluator, source, chunk size, session
/// id, nonce, output parties.
const HELLO_LEN: usize = 4 + 1 + 32 + 4 + 4 + 4 + 1 + 4 + 32 + 32 + OUTPUTS_LEN;

/// The set of output parties as the handshake carries it: bit `p % 8` of byte `p / 8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputSet([u8; OUTPUTS_LEN]);

impl OutputSet {
    fn of(outputs: &[usize]) -> Self {
        let mut map = [0u8; OUTPUTS_LEN];
        for &p in outputs {
            map[p / 8] |= 1 << (p % 8);
        }
        Self(map)
    }

    /// The bitmap, as the run id hashes it.
    fn bytes(&self) -> &[u8; OUTPUTS_LEN] {
        &self.0
    }
}

impl std::fmt::Display for OutputSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parties: Vec<String> = (0..OUTPUTS_LEN * 8)
            .filter(|&p| self.0[p / 8] >> (p % 8) & 1 == 1)
            .map(|p| p.to_string())
            .collect();
        write!(f, "parties {}", parties.join(","))
    }
}

/// Why a peer's handshake was refused. The wording says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// Wrong length or magic: not a handshake of this format.
    #[error("party {party} sent a handshake this version of mpc does not understand")]
    Unreadable {
        /// The sender.
        party: usize,
    },
    /// Another protocol version.
    #[error(
        "party {party} speaks protocol version {theirs}, this party version {VERSION}: use the same mpc release"
    )]
    Version {
        /// The sender.
        party: usize,
        /// Its version.
        theirs: u8,
    },
    /// Another party count.
    #[error("party {party} expects {theirs} parties, this party {ours}")]
    PartyCount {
        /// The sender.
        party: usize,
        /// Its party count.
        theirs: u32,
        /// This party's.
        ours: usize,
    },
    /// The peer in a seat claims another index.
    #[error("the party in seat {seat} says it is party {claims}: check the --party flags")]
    Seat {
        /// The seat the message came from.
        seat: usize,
        /// The index the message claims.
        claims: u32,
    },
    /// Another session id.
    #[error(
        "party {party} binds the run to another session (id {}…, this party {}…): all parties must join the same session",
        hex::encode(&.theirs[..6]),
        hex::encode(&.ours[..6])
    )]
    Session {
        /// The sender.
        party: usize,
        /// Its session id.
        theirs: [u8; 32],
        /// This party's.
        ours: [u8; 32],
    },
    /// Another program.
    #[error(
        "party {party} runs a different program (hash {}…, this party {}…): all parties must use the same program file",
        hex::encode(&.theirs[..6]),
        hex::encode(&.ours[..6])
    )]
    Program {
        /// The sender.
        party: usize,
        /// Its program hash.
        theirs: [u8; 32],
        /// This party's.
        ours: [u8; 32],
    },
    /// Another evaluator.
    #[error("party {party} wants party {theirs} as evaluator, this party wants party {ours}")]
    Evaluator {
        /// The sender.
        party: usize,
        /// Its evaluator.
        theirs: u32,
        /// This party's.
        ours: usize,
    },
    /// Other output parties.
    #[error(
        "party {party} lets {theirs} learn the result, this party {ours}: give every party the same --outputs"
    )]
    Outputs {
        /// The sender.
        party: usize,
        /// Its output parties.
        theirs: OutputSet,
        /// This party's.
        ours: OutputSet,
    },
    /// Another chunk size.
    #[error(
        "party {party} streams {theirs} AND gates per chunk, this party {ours}: use the same --chunk-ands everywhere"
    )]
    ChunkAnds {
        /// The sender.
        party: usize,
        /// Its chunk size.
        theirs: u32,
        /// This party's.
        ours: usize,
    },
    /// Another source of correlated randomness.
    #[error(
        "party {party} uses {}, this party uses {}: start all parties with the same dealer choice",
        .theirs.describe(),
        .ours.describe()
    )]
    Source {
        /// The sender.
        party: usize,
        /// Its source.
        theirs: SourceKind,
        /// This party's.
        ours: SourceKind,
    },
}

/// One party's handshake message: what it is about to compute, and its nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hello {
    program_hash: [u8; 32],
    parties: u32,
    index: u32,
    evaluator: u32,
    /// [`SourceKind::code`]; kept raw so that an unknown code is still reported.
    source: u8,
    chunk_ands: u32,
    session_id: [u8; 32],
    nonce: [u8; 32],
    outputs: OutputSet,
}

/// Why a message is not a [`Hello`] of this version.
#[derive(Debug, PartialEq, Eq)]
enum DecodeError {
    Unreadable,
    Version(u8),
}

/// Reads `N` bytes from the front of `at`.
fn take<const N: usize>(at: &mut &[u8]) -> [u8; N] {
    let (head, rest) = at.split_at(N);
    *at = rest;
    head.try_into().expect("split_at gave N bytes")
}

impl Hello {
    fn new(cfg: &PartyConfig, nonce: [u8; 32]) -> Self {
        Self {
            program_hash: cfg.program_hash,
            parties: cfg.parties as u32,
            index: cfg.me as u32,
            evaluator: cfg.evaluator as u32,
            source: cfg.source.code(),
            chunk_ands: cfg.chunk_ands as u32,
            session_id: cfg.session_id,
            nonce,
            outputs: OutputSet::of(&cfg.outputs),
        }
    }

    /// The wire form: fields in declaration order after magic and version, integers as
    /// 32-bit little endian.
    fn encode(&self) -> Bytes {
        let mut b = Vec::with_capacity(HELLO_LEN);
        b.extend_from_slice(MAGIC);
        b.push(VERSION);
        b.extend_from_slice(&self.program_hash);
        b.extend_from_slice(&self.parties.to_le_bytes());
        b.extend_from_slice(&self.index.to_le_bytes());
        b.extend_from_slice(&self.evaluator.to_le_bytes());
        b.push(self.source);
        b.extend_from_slice(&self.chunk_ands.to_le_bytes());
        b.extend_from_slice(&self.session_id);
        b.extend_from_slice(&self.nonce);
        b.extend_from_slice(self.outputs.bytes());
        debug_assert_eq!(b.len(), HELLO_LEN);
        Bytes::from(b)
    }

    fn decode(msg: &[u8]) -> Result<Self, DecodeError> {
        if msg.len() != HELLO_LEN || &msg[..4] != MAGIC {
            return Err(DecodeError::Unreadable);
        }
        if msg[4] != VERSION {
            return Err(DecodeError::Version(msg[4]));
        }
        let mut at = &msg[5..];
        let word = |at: &mut &[u8]| u32::from_le_bytes(take(at));
        Ok(Self {
            program_hash: take(&mut at),
            parties: word(&mut at),
            index: word(&mut at),
            evaluator: word(&mut at),
            source: take::<1>(&mut at)[0],
            chunk_ands: word(&mut at),
            session_id: take(&mut at),
            nonce: take(&mut at),
            outputs: OutputSet(take(&mut at)),
        })
    }

    /// Compares the message from seat `j` with this party's configuration, in a fixed order
    /// (so the first difference found is the one reported).
    fn check(&self, j: usize, cfg: &PartyConfig) -> Result<(), HandshakeError> {
        if self.parties as usize != cfg.parties {
            return Err(HandshakeError::PartyCount {
                party: j,
                theirs: self.parties,
                ours: cfg.parties,
            });
        }
        if self.index as usize != j {
            return Err(HandshakeError::Seat {
                seat: j,
                claims: self.index,
            });
        }
        if self.session_id != cfg.session_id {
            return Err(HandshakeError::Session {
                party: j,
                theirs: self.session_id,
                ours: cfg.session_id,
            });
        }
        if self.program_hash != cfg.program_hash {
            return Err(HandshakeError::Program {
                party: j,
                theirs: self.program_hash,
                ours: cfg.program_hash,
            });
        }
        if self.evaluator as usize != cfg.evaluator {
            return Err(HandshakeError::Evaluator {
                party: j,
                theirs: self.evaluator,
                ours: cfg.evaluator,
            });
        }
        let ours = OutputSet::of(&cfg.outputs);
        if self.outputs != ours {
            return Err(HandshakeError::Outputs {
                party: j,
                theirs: self.outputs,
                ours,
            });
        }
        if self.chunk_ands as usize != cfg.chunk_ands {
            return Err(HandshakeError::ChunkAnds {
                party: j,
                theirs: self.chunk_ands,
                ours: cfg.chunk_ands,
            });
        }
        if self.source != cfg.source.code() {
            let theirs = if self.source == SourceKind::Dealer.code() {
                SourceKind::Dealer
            } else {
                SourceKind::Ot
            };
            return Err(HandshakeError::Source {
                party: j,
                theirs,
                ours: cfg.source,
            });
        }
        Ok(())
    }
}

/// The run id: everything the handshake agreed on and every party's nonce, in party order.
fn run_id(cfg: &PartyConfig, nonces: &[[u8; 32]]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"mpc run id v1");
    h.update(&cfg.session_id);
    h.update(&cfg.program_hash);
    h.update(&(cfg.parties as u32).to_le_bytes());
    h.update(&(cfg.evaluator as u32).to_le_bytes());
    h.update(&[cfg.source.code()]);
    h.update(&(cfg.chunk_ands as u32).to_le_bytes());
    h.update(OutputSet::of(&cfg.outputs).bytes());
    for nonce in nonces {
        h.update(nonce);
    }
    *h.finalize().as_bytes()
}

/// One party's handshake in two rounds: [`Handshake::hello`] to every other party, then
/// [`Handshake::receive`] with their hellos, which gives the run id and the digest to send
/// every other party, then [`Handshake::confirm`] with their digests.
pub(crate) struct Handshake<'a> {
    cfg: &'a PartyConfig,
    nonce: [u8; 32],
}

/// What the first round agreed on.
pub(crate) struct Agreed {
    /// The run id.
    pub(crate) run_id: [u8; 32],
    /// Its transcript digest, to send every other party and compare with theirs.
    pub(crate) digest: [u8; 32],
}

impl<'a> Handshake<'a> {
    /// A handshake with this party's fresh `nonce`.
    pub(crate) fn new(cfg: &'a PartyConfig, nonce: [u8; 32]) -> Self {
        Self { cfg, nonce }
    }

    /// This party's hello, the same for every other party.
    pub(crate) fn hello(&self) -> Bytes {
        Hello::new(self.cfg, self.nonce).encode()
    }

    /// Checks the hellos of `others` (in that order) and computes the run id.
    pub(crate) fn receive(
        &self,
        others: &[usize],
        hellos: &[Bytes],
    ) -> Result<Agreed, EngineError> {
        let mut nonces = vec![[0u8; 32]; self.cfg.parties];
        nonces[self.cfg.me] = self.nonce;
        for (&j, msg) in others.iter().zip(hellos) {
            let hello = Hello::decode(msg).map_err(|e| match e {
                DecodeError::Unreadable => HandshakeError::Unreadable { party: j },
                DecodeError::Version(theirs) => HandshakeError::Version { party: j, theirs },
            })?;
            hello.check(j, self.cfg)?;
            nonces[j] = hello.nonce;
        }
        let run_id = run_id(self.cfg, &nonces);
        let digest = Transcript::new(&run_id).digest();
        Ok(Agreed { run_id, digest })
    }

    /// Everyone must have received the same nonces: compares the digests of `others`.
    pub(crate) fn confirm(
        &self,
        agreed: &Agreed,
        others: &[usize],
        digests: &[Bytes],
    ) -> Result<(), EngineError> {
        let names = PeerNames::new(self.cfg.parties);
        for (&j, msg) in others.iter().zip(digests) {
            transcript::check(names.name(j), msg, &agreed.digest, "after the handshake")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(me: usize) -> PartyConfig {
        PartyConfig {
            me,
            parties: 3,
            evaluator: 1,
            program_hash: [7; 32],
            session_id: [9; 32],
            source: SourceKind::Ot,
            chunk_ands: 4096,
            outputs: vec![0, 2],
        }
    }

    #[test]
    fn a_hello_survives_the_round_trip() {
        let hello = Hello::new(&config(2), [5; 32]);
        let wire = hello.encode();
        assert_eq!(wire.len(), HELLO_LEN);
        assert_eq!(Hello::decode(&wire), Ok(hello));
    }

    /// The bytes as the handshake wrote them before it had a message type, field by field
    /// at fixed offsets (the nonce at 86, the output bitmap at 118).
    #[test]
    fn a_hello_written_the_old_way_decodes() {
        let mut old = Vec::new();
        old.extend_from_slice(b"MPCh");
        old.push(VERSION);
        old.extend_from_slice(&[0xab; 32]);
        old.extend_from_slice(&[3, 0, 0, 0]);
        old.extend_from_slice(&[2, 0, 0, 0]);
        old.extend_from_slice(&[1, 0, 0, 0]);
        old.push(0);
        old.extend_from_slice(&[0x00, 0x40, 0, 0]);
        old.extend_from_slice(&[0xcd; 32]);
        old.extend_from_slice(&[0xef; 32]);
        let mut outputs = [0u8; 32];
        outputs[0] = 0b101;
        old.extend_from_slice(&outputs);
        assert_eq!(old.len(), 150);
        assert_eq!(old[86], 0xef);
        let hello = Hello::decode(&old).expect("decodes");
        assert_eq!(
            hello,
            Hello {
                program_hash: [0xab; 32],
                parties: 3,
                index: 2,
                evaluator: 1,
                source: SourceKind::Dealer.code(),
                chunk_ands: 1 << 14,
                session_id: [0xcd; 32],
                nonce: [0xef; 32],
                outputs: OutputSet::of(&[0, 2]),
            }
        );
        assert_eq!(hello.encode().as_ref(), &old[..]);
    }

    #[test]
    fn unreadable_and_other_versions_are_told_apart() {
        let mut wire = Hello::new(&config(0), [1; 32]).encode().to_vec();
        assert_eq!(Hello::decode(&wire[1..]), Err(DecodeError::Unreadable));
        wire[4] = 2;
        assert_eq!(Hello::decode(&wire), Err(DecodeError::Version(2)));
        wire[0] = b'X';
        assert_eq!(Hello::decode(&wire), Err(DecodeError::Unreadable));
    }

    #[test]
    fn differences_are_named_with_the_old_wording() {
        let mine = config(0);
        let mut theirs = config(1);
        assert_eq!(Hello::new(&theirs, [0; 32]).check(1, &mine), Ok(()));
        theirs.evaluator = 2;
        let e = Hello::new(&theirs, [0; 32]).check(1, &mine).unwrap_err();
        assert_eq!(
            e.to_string(),
            "party 1 wants party 2 as evaluator, this party wants party 1"
        );
        theirs = config(1);
        theirs.outputs = vec![1];
        let e = Hello::new(&theirs, [0; 32]).check(1, &mine).unwrap_err();
        assert_eq!(
            e.to_string(),
            "party 1 lets parties 1 learn the result, this party parties 0,2: give every party the same --outputs"
        );
        theirs = config(1);
        theirs.source = SourceKind::Dealer;
        let e = Hello::new(&theirs, [0; 32]).check(1, &mine).unwrap_err();
        assert_eq!(
            e.to_string(),
            "party 1 uses a trusted dealer, this party uses OT-based preprocessing without a dealer: start all parties with the same dealer choice"
        );
        let e = Hello::new(&config(2), [0; 32]).check(1, &mine).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the party in seat 1 says it is party 2: check the --party flags"
        );
        theirs = config(1);
        theirs.session_id = [0x11; 32];
        let e = Hello::new(&theirs, [0; 32]).check(1, &mine).unwrap_err();
        assert_eq!(
            e.to_string(),
            "party 1 binds the run to another session (id 111111111111…, this party 090909090909…): all parties must join the same session"
        );
        let e = HandshakeError::Version {
            party: 2,
            theirs: 2,
        };
        assert_eq!(
            e.to_string(),
            format!(
                "party 2 speaks protocol version 2, this party version {VERSION}: use the same \
                 mpc release"
            )
        );
    }
}
