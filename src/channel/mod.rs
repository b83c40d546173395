//! The channel: how every role (party, dealer) exchanges messages, whatever the transport.
//!
//! Two layers:
//! - a [`Transport`] moves opaque *frames* between numbered peers, exactly once and in order
//!   per ordered pair (the relay client, the in-memory transport, later direct HTTP);
//! - [`Framed`] turns a transport into a [`Channel`]: it tags every frame with its phase and a
//!   per-pair sequence number, splits large messages into frames of at most
//!   [`MAX_FRAME_PAYLOAD`] bytes, reassembles them, enforces the receive timeout and carries
//!   abort notices, so that a failing party can stop the whole session quickly.
//!
//! Peers are numbered `0..parties` for the computing parties; a dealer, when present, is
//! peer number `parties`.

pub mod direct;
mod error;
pub mod identity;
pub mod memory;
pub mod relay;
pub mod sealed;
#[cfg(any(test, feature = "testing"))]
pub mod tamper;

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::Mutex;

pub use error::{
    AuthFailure, AuthMode, ChannelError, DealerUse, IdentityFailure, LostReason, MalformedReason,
    SessionLost, SetupMismatch, TransportFailure,
};

/// Largest payload carried by one frame; larger messages are split and streamed.
pub const MAX_FRAME_PAYLOAD: usize = 4 << 20;

/// Size of the frame header: kind, phase, flags, sequence number.
pub const FRAME_HEADER: usize = 11;

/// How long an abort notice may take to reach a peer before we give up on telling it.
const ABORT_NOTICE_TIMEOUT: Duration = Duration::from_secs(3);

/// The protocol phase a message belongs to. Every frame carries it, so that a party that
/// receives a message of the wrong phase can say exactly what went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Phase {
    /// Parties agree on program, party count, roles and preprocessing source.
    Handshake = 1,
    /// A party tells the dealer how much correlated randomness it needs.
    DealerRequest = 2,
    /// The dealer's correlated randomness (seeds, MACs, corrections).
    DealerMaterial = 3,
    /// Shares of the Beaver differences d, f for the AND gates.
    BeaverOpening = 4,
    /// Shares of the input wire masks, sent to the input's owner.
    InputMasks = 5,
    /// Masked input values, sent by the input's owner to everyone.
    MaskedInputs = 6,
    /// The garblers' labels for the masked input values, sent to the evaluator.
    InputLabels = 7,
    /// Garbled AND rows, streamed from each garbler to the evaluator.
    GarbledRows = 8,
    /// Hashes of all masked inputs received (broadcast consistency).
    InputConsistency = 9,
    /// Masked output values and output labels from the evaluator.
    OutputLabels = 10,
    /// Shares of the output wire masks, sent to every output party.
    OutputShares = 11,
    /// Base oblivious transfers (preprocessing without a dealer).
    BaseOt = 12,
    /// OT extension matrices (preprocessing without a dealer).
    OtExtension = 13,
    /// The OT extension consistency check.
    OtCheck = 14,
    /// The authenticated-bit consistency check.
    ABitCheck = 15,
    /// Leaky AND triple generation.
    LeakyAnd = 16,
    /// Openings made while bucketing leaky triples.
    Bucketing = 17,
    /// Key agreement for end-to-end sealing.
    KeyExchange = 18,
    /// Each party's Garble constants (`PARTY_i::NAME`), exchanged before compiling.
    Constants = 19,
    /// An output party's notice to a party that does not learn the result: it has it.
    OutputDone = 20,
    /// Two parties: the evaluator's masked AND outputs of a chunk and a digest of their
    /// labels, for the garbler's part of the AND gate check.
    MaskedAndOutputs = 21,
    /// Two parties: the garbler's digest of its AND gate check values, for the evaluator.
    GateCheck = 22,
}

impl Phase {
    /// Every phase, for decoding tags and for tests that tamper with each phase in turn.
    pub const ALL: [Phase; 22] = [
        Phase::Handshake,
        Phase::DealerRequest,
        Phase::DealerMaterial,
        Phase::BeaverOpening,
        Phase::InputMasks,
        Phase::MaskedInputs,
        Phase::InputLabels,
        Phase::GarbledRows,
        Phase::InputConsistency,
        Phase::OutputLabels,
        Phase::OutputShares,
        Phase::BaseOt,
        Phase::OtExtension,
        Phase::OtCheck,
        Phase::ABitCheck,
        Phase::LeakyAnd,
        Phase::Bucketing,
        Phase::KeyExchange,
        Phase::Constants,
        Phase::OutputDone,
        Phase::MaskedAndOutputs,
        Phase::GateCheck,
    ];

    /// The human-readable name used in logs, progress and errors.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Handshake => "handshake",
            Phase::DealerRequest => "dealer request",
            Phase::DealerMaterial => "dealer material",
            Phase::BeaverOpening => "Beaver opening",
            Phase::InputMasks => "input masks",
            Phase::MaskedInputs => "masked inputs",
            Phase::InputLabels => "input labels",
            Phase::GarbledRows => "garbled tables",
            Phase::InputConsistency => "input consistency",
            Phase::OutputLabels => "output labels",
            Phase::OutputShares => "output shares",
            Phase::BaseOt => "base OT",
            Phase::OtExtension => "OT extension",
            Phase::OtCheck => "OT check",
            Phase::ABitCheck => "aBit check",
            Phase::LeakyAnd => "leaky AND",
            Phase::Bucketing => "bucketing",
            Phase::KeyExchange => "key exchange",
            Phase::Constants => "party constants",
            Phase::OutputDone => "output notice",
            Phase::MaskedAndOutputs => "masked AND outputs",
            Phase::GateCheck => "AND gate check",
        }
    }

    /// Decodes a phase tag from a frame header.
    pub fn from_tag(tag: u8) -> Option<Phase> {
        Phase::ALL.iter().copied().find(|p| *p as u8 == tag)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Moves opaque frames between peers. Implementations deliver every frame exactly once and
/// in order per ordered pair, retrying as needed; `seq` is the frame's number in that order
/// (starting at 0), which lets a transport make retries idempotent.
pub trait Transport: Send + Sync + 'static {
    /// Delivers one frame to peer `to`.
    fn send_frame(
        &self,
        to: usize,
        seq: u64,
        frame: Bytes,
    ) -> impl Future<Output = Result<(), ChannelError>> + Send;

    /// Waits for frame number `seq` from peer `from`, until `deadline` at the latest
    /// (returning [`ChannelError::Timeout`]-like errors is left to the caller: a transport
    /// returns `Ok(None)` when the deadline passes).
    fn recv_frame(
        &self,
        from: usize,
        seq: u64,
        deadline: Instant,
    ) -> impl Future<Output = Result<Option<Bytes>, ChannelError>> + Send;
}

/// A message channel between the parties (and the dealer) of one session.
pub trait Channel: Send + Sync {
    /// This endpoint's peer number.
    fn me(&self) -> usize;

    /// Number of peers, including this endpoint.
    fn peers(&self) -> usize;

    /// Sends one message to `to`.
    fn send(
        &self,
        to: usize,
        phase: Phase,
        data: Bytes,
    ) -> impl Future<Output = Result<(), ChannelError>> + Send;

    /// Receives the next message from `from`, which must belong to `phase`.
    fn recv(
        &self,
        from: usize,
        phase: Phase,
    ) -> impl Future<Output = Result<Bytes, ChannelError>> + Send;

    /// Tells every peer that this endpoint is stopping, and why; best effort, bounded time.
    fn abort(&self, reason: &str) -> impl Future<Output = ()> + Send;

    /// Total payload bytes sent so far (for statistics).
    fn bytes_sent(&self) -> u64;

    /// Test only (feature `testing`): the deviation a security test wants this endpoint's
    /// engine to make ([`crate::cheat`]); `None` for every real channel.
    #[cfg(feature = "testing")]
    fn cheat(&self) -> Option<&crate::cheat::Cheat> {
        None
    }
}

/// Frame kinds.
const KIND_DATA: u8 = 0;
const KIND_ABORT: u8 = 1;
/// Flag: this frame ends its message.
const FLAG_LAST: u8 = 1;

/// Names peers in messages: "party 2", "the dealer".
#[derive(Debug, Clone)]
pub struct PeerNames {
    parties: usize,
}

impl PeerNames {
    /// Names for a session of `parties` computing parties (plus possibly a dealer).
    pub fn new(parties: usize) -> Self {
        Self { parties }
    }

    /// The name of peer `i`.
    pub fn name(&self, i: usize) -> String {
        if i == self.parties {
            "the dealer".to_string()
        } else {
            format!("party {i}")
        }
    }
}

struct RecvState {
    next_seq: u64,
}

struct SendState {
    next_seq: u64,
    /// A frame whose send did not complete: it failed, or the caller stopped waiting for it
    /// (e.g. a joined receive from another peer failed first). It keeps its number and goes
    /// out again, unchanged, before anything else to that peer, so that a later abort notice
    /// does not queue behind a frame the peer never gets.
    unfinished: Option<Bytes>,
}

/// A [`Channel`] over any [`Transport`]: phase tags, sequence numbers, fragmentation,
/// timeouts and abort notices.
pub struct Framed<T: Transport> {
    transport: T,
    me: usize,
    peers: usize,
    names: PeerNames,
    timeout: Duration,
    send_state: Vec<Mutex<SendState>>,
    recv_state: Vec<Mutex<RecvState>>,
    sent: AtomicU64,
}

impl<T: Transport> Framed<T> {
    /// Wraps `transport` for endpoint `me` among `peers` endpoints, of which the first
    /// `parties` are computing parties; receives wait at most `timeout`.
    pub fn new(transport: T, me: usize, peers: usize, parties: usize, timeout: Duration) -> Self {
        Self {
            transport,
            me,
            peers,
            names: PeerNames::new(parties),
            timeout,
            send_state: (0..peers)
                .map(|_| {
                    Mutex::new(SendState {
                        next_seq: 0,
                        unfinished: None,
                    })
                })
                .collect(),
            recv_state: (0..peers)
                .map(|_| Mutex::new(RecvState { next_seq: 0 }))
                .collect(),
            sent: AtomicU64::new(0),
        }
    }

    /// The underlying transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Takes the underlying transport back (e.g. to wrap it in [`sealed::Sealed`]).
    pub fn into_transport(self) -> T {
        self.transport
    }

    fn check_peer(&self, peer: usize) -> Result<(), ChannelError> {
        if peer >= self.peers || peer == self.me {
            return Err(ChannelError::Transport {
                peer: self.names.name(peer),
                detail: TransportFailure::NoSuchPeer {
                    me: self.names.name(self.me),
                },
            });
        }
        Ok(())
    }

    async fn send_frames(
        &self,
        to: usize,
        kind: u8,
        phase: Phase,
        data: &[u8],
    ) -> Result<(), ChannelError> {
        let mut state = self.send_state[to].lock().await;
        if let Some(frame) = state.unfinished.clone() {
            self.transport.send_frame(to, state.next_seq, frame).await?;
            state.unfinished = None;
            state.next_seq += 1;
        }
        let mut chunks = data.chunks(MAX_FRAME_PAYLOAD);
        let mut chunk = chunks.next().unwrap_or_default();
        loop {
            // An empty message is still one (empty) frame.
            let next = chunks.next();
            let flags = if next.is_none() { FLAG_LAST } else { 0 };
            let frame = encode_frame(kind, phase, flags, state.next_seq, chunk);
            state.unfinished = Some(frame.clone());
            self.transport.send_frame(to, state.next_seq, frame).await?;
            state.unfinished = None;
            state.next_seq += 1;
            match next {
                Some(c) => chunk = c,
                None => return Ok(()),
            }
        }
    }
}

fn encode_frame(kind: u8, phase: Phase, flags: u8, seq: u64, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(FRAME_HEADER + payload.len());
    buf.put_u8(kind);
    buf.put_u8(phase as u8);
    buf.put_u8(flags);
    buf.put_u64_le(seq);
    buf.put_slice(payload);
    buf.freeze()
}

/// A decoded frame header and its payload.
pub struct FrameView {
    /// Data or abort.
    pub kind: u8,
    /// Phase tag (raw, may be unknown).
    pub phase_tag: u8,
    /// Flags (last fragment).
    pub flags: u8,
    /// Sequence number claimed by the frame.
    pub seq: u64,
    /// The payload.
    pub payload: Bytes,
}

/// Splits a frame into header fields and payload.
pub fn decode_frame(frame: Bytes) -> Option<FrameView> {
    if frame.len() < FRAME_HEADER {
        return None;
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&frame[3..11]);
    Some(FrameView {
        kind: frame[0],
        phase_tag: frame[1],
        flags: frame[2],
        seq: u64::from_le_bytes(seq),
        payload: frame.slice(FRAME_HEADER..),
    })
}

impl<T: Transport> Channel for Framed<T> {
    fn me(&self) -> usize {
        self.me
    }

    fn peers(&self) -> usize {
        self.peers
    }

    async fn send(&self, to: usize, phase: Phase, data: Bytes) -> Result<(), ChannelError> {
        self.check_peer(to)?;
        self.send_frames(to, KIND_DATA, phase, &data).await?;
        self.sent.fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    async fn recv(&self, from: usize, phase: Phase) -> Result<Bytes, ChannelError> {
        self.check_peer(from)?;
        let peer = self.names.name(from);
        let deadline = Instant::now() + self.timeout;
        let mut state = self.recv_state[from].lock().await;
        let mut parts: Vec<Bytes> = Vec::new();
        loop {
            let seq = state.next_seq;
            let frame = match self.transport.recv_frame(from, seq, deadline).await? {
                Some(frame) => frame,
                None => {
                    return Err(ChannelError::Timeout {
                        peer,
                        phase,
                        secs: self.timeout.as_secs(),
                    });
                }
            };
            let view = decode_frame(frame).ok_or_else(|| ChannelError::Malformed {
                peer: peer.clone(),
                detail: MalformedReason::ShortHeader,
            })?;
            if view.seq != seq {
                return Err(ChannelError::Malformed {
                    peer,
                    detail: MalformedReason::OutOfSequence {
                        got: view.seq,
                        due: seq,
                    },
                });
            }
            state.next_seq += 1;
            if view.kind == KIND_ABORT {
                return Err(ChannelError::PeerAborted {
                    peer,
                    reason: String::from_utf8_lossy(&view.payload).into_owned(),
                });
            }
            if view.kind != KIND_DATA {
                return Err(ChannelError::Malformed {
                    peer,
                    detail: MalformedReason::UnknownKind(view.kind),
                });
            }
            if view.phase_tag != phase as u8 {
                let got = Phase::from_tag(view.phase_tag)
                    .map(|p| p.name().to_string())
                    .unwrap_or_else(|| format!("unknown tag {}", view.phase_tag));
                return Err(ChannelError::UnexpectedPhase {
                    peer,
                    got,
                    expected: phase,
                });
            }
            let last = view.flags & FLAG_LAST != 0;
            parts.push(view.payload);
            if last {
                break;
            }
        }
        if parts.len() == 1 {
            return Ok(parts.pop().unwrap_or_default());
        }
        let total = parts.iter().map(|p| p.len()).sum();
        let mut out = BytesMut::with_capacity(total);
        for p in parts {
            out.put_slice(&p);
        }
        Ok(out.freeze())
    }

    async fn abort(&self, reason: &str) {
        let sends = (0..self.peers)
            .filter(|&p| p != self.me)
            .map(|p| async move {
                let _ = tokio::time::timeout(
                    ABORT_NOTICE_TIMEOUT,
                    self.send_frames(p, KIND_ABORT, Phase::Handshake, reason.as_bytes()),
                )
                .await;
            });
        futures_util::future::join_all(sends).await;
    }

    fn bytes_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

/// A shared reference to a channel is a channel (so callers can keep ownership, e.g. to
/// inspect a test channel after a run).
impl<C: Channel> Channel for &C {
    fn me(&self) -> usize {
        (**self).me()
    }

    fn peers(&self) -> usize {
        (**self).peers()
    }

    fn send(
        &self,
        to: usize,
        phase: Phase,
        data: Bytes,
    ) -> impl Future<Output = Result<(), ChannelError>> + Send {
        (**self).send(to, phase, data)
    }

    fn recv(
        &self,
        from: usize,
        phase: Phase,
    ) -> impl Future<Output = Result<Bytes, ChannelError>> + Send {
        (**self).recv(from, phase)
    }

    fn abort(&self, reason: &str) -> impl Future<Output = ()> + Send {
        (**self).abort(reason)
    }

    fn bytes_sent(&self) -> u64 {
        (**self).bytes_sent()
    }

    #[cfg(feature = "testing")]
    fn cheat(&self) -> Option<&crate::cheat::Cheat> {
        (**self).cheat()
    }
}
