//! What can go wrong while exchanging messages. [`ChannelError`] says with whom and in which
//! way; each way carries a typed reason whose text is the sentence users read, so that
//! callers and tests match on the reason instead of on its words.
//!
//! Text that comes from below mpc (the HTTP client, TLS, the operating system, a peer or
//! the relay explaining itself) stays text inside the reason that carries it.

use std::fmt;

use reqwest::StatusCode;
use thiserror::Error;

use super::identity::Seat;
use super::{PeerNames, Phase};
use crate::net::client::Delivery;

/// Everything that can go wrong while exchanging messages.
#[derive(Debug, Error, Clone)]
pub enum ChannelError {
    /// Nothing arrived from a peer within the timeout.
    #[error("no message from {peer} in phase '{phase}' after {secs} s")]
    Timeout {
        /// Who stayed silent.
        peer: String,
        /// What we were waiting for.
        phase: Phase,
        /// The timeout that elapsed.
        secs: u64,
    },
    /// A peer sent a message of another phase than the one the protocol expects now.
    #[error("{peer} sent a message of phase '{got}' while phase '{expected}' was expected")]
    UnexpectedPhase {
        /// The sender.
        peer: String,
        /// The phase the frame carried.
        got: String,
        /// The phase the protocol is in.
        expected: Phase,
    },
    /// A peer stopped the session and said why.
    #[error("{peer} aborted: {reason}")]
    PeerAborted {
        /// Who aborted.
        peer: String,
        /// The reason it gave (its own words).
        reason: String,
    },
    /// A peer disappeared without a word (killed, crashed, disconnected).
    #[error("lost {peer}: {detail}")]
    PeerLost {
        /// Who was lost.
        peer: String,
        /// How we noticed.
        detail: LostReason,
    },
    /// A frame that cannot be decoded or arrived out of sequence.
    #[error("malformed frame from {peer}: {detail}")]
    Malformed {
        /// The sender.
        peer: String,
        /// What is wrong with it.
        detail: MalformedReason,
    },
    /// A sealed frame failed its authentication check: it was altered, replayed, reordered
    /// or dropped on the way, or the endpoints do not share the same keys.
    #[error("message from {peer} failed authentication: {detail}")]
    Authentication {
        /// The claimed sender.
        peer: String,
        /// Which frame, and what to do about it.
        detail: AuthFailure,
    },
    /// A peer could not prove the identity the roster gives its seat (an impostor, another
    /// roster, or a key exchange altered on the way).
    #[error("{peer} did not prove the identity the roster gives it: {detail}")]
    Identity {
        /// The seat that failed to prove its key.
        peer: String,
        /// Why, and what to do about it.
        detail: IdentityFailure,
    },
    /// A peer is set up for another session: other party count, dealer choice or
    /// authentication.
    #[error("{peer} is set up differently: {detail}")]
    Setup {
        /// The peer.
        peer: String,
        /// What differs and what to do.
        detail: SetupMismatch,
    },
    /// A peer refused the key exchange and said why.
    #[error("{peer} refused the key exchange: {reason}")]
    Refused {
        /// The peer.
        peer: String,
        /// Its reason (its own words).
        reason: String,
    },
    /// The transport failed to deliver (network, relay refused, ...).
    #[error("cannot exchange messages with {peer}: {detail}")]
    Transport {
        /// The peer we tried to reach.
        peer: String,
        /// What the transport reported.
        detail: TransportFailure,
    },
}

/// How a peer was noticed gone.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LostReason {
    /// Its end of the in-memory channel is closed.
    #[error("it has stopped (its end of the in-memory channel is closed)")]
    Stopped,
    /// Direct mode: its heartbeats stopped.
    #[error(
        "no heartbeat from its endpoint {endpoint} for {secs} s: it stopped, or the network \
         between us failed"
    )]
    NoHeartbeat {
        /// The peer's URL.
        endpoint: String,
        /// How long it has been silent.
        secs: u64,
    },
    /// The relay reports the peer lost, in its words.
    #[error("{0} (reported by the relay)")]
    ReportedByRelay(String),
}

/// What is wrong with a frame (or a key-exchange frame) that arrived.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MalformedReason {
    /// Too short to hold a frame header.
    #[error("frame shorter than its header")]
    ShortHeader,
    /// A frame number other than the next one.
    #[error("frame number {got} arrived where {due} was due")]
    OutOfSequence {
        /// The number the frame carried.
        got: u64,
        /// The number that was due.
        due: u64,
    },
    /// A frame kind this version does not know.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// The peer does not seal, this endpoint does.
    #[error(
        "{peer} does not seal its messages (was it started with --no-seal?) but this endpoint \
         does; start every participant with the same options"
    )]
    NotSealed {
        /// The peer's name.
        peer: String,
    },
    /// The peer seals, this endpoint was started with `--no-seal`.
    #[error(
        "{peer} seals its messages but this endpoint was started with --no-seal; start every \
         participant with the same options"
    )]
    Sealed {
        /// The peer's name.
        peer: String,
    },
    /// Frame 0 is neither sealed nor plain.
    #[error(
        "its first frame is not a key exchange; is every participant running the same version \
         of mpc?"
    )]
    NotKeyExchange,
    /// Another version of the sealing scheme.
    #[error(
        "it seals with scheme version {theirs}, this endpoint with version {ours}; run the same \
         version of mpc everywhere"
    )]
    SchemeVersion {
        /// The peer's version.
        theirs: u8,
        /// Ours.
        ours: u8,
    },
    /// A key exchange shorter than its header.
    #[error("its key exchange is {len} bytes, shorter than its {header}-byte header")]
    ShortKeyExchange {
        /// Its length.
        len: usize,
        /// The header's length.
        header: usize,
    },
    /// A key exchange addressed between other endpoints.
    #[error(
        "its key exchange is from endpoint {from} to {to}, expected from {expected_from} to \
         {expected_to}"
    )]
    Misaddressed {
        /// The sender it names.
        from: usize,
        /// The receiver it names.
        to: usize,
        /// The sender expected.
        expected_from: usize,
        /// The receiver expected (this endpoint).
        expected_to: usize,
    },
    /// A handshake message longer than any handshake takes.
    #[error("its handshake message is {len} bytes, more than the {max} a handshake takes")]
    LongHandshake {
        /// Its length.
        len: usize,
        /// The largest handshake message.
        max: usize,
    },
}

/// Why a key exchange or a sealed frame failed its authentication.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// The pre-shared secrets differ (or the key exchange was altered).
    #[error(
        "the shared secrets differ: {peer}'s key exchange does not verify with this endpoint's \
         secret; give every participant the same --secret-file or MPC_SECRET (if they already \
         have the same one, something on the way altered the key exchange)"
    )]
    SecretsDiffer {
        /// The peer's name.
        peer: String,
    },
    /// An unauthenticated key exchange that does not verify.
    #[error("its key exchange does not verify: it was altered on the way")]
    KeyExchangeAltered,
    /// A sealed frame too short to hold its tag.
    #[error("frame {seq} is {len} bytes, shorter than its authentication tag")]
    ShortFrame {
        /// The frame's number.
        seq: u64,
        /// Its length.
        len: usize,
    },
    /// A sealed frame whose tag does not verify.
    #[error(
        "frame {seq} does not verify: it was altered, replayed, reordered or dropped on the \
         way (or was not sealed by {peer} with this session's keys)"
    )]
    FrameAltered {
        /// The frame's number.
        seq: u64,
        /// The claimed sender's name.
        peer: String,
    },
}

/// Why a peer did not prove the identity the roster gives its seat.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum IdentityFailure {
    /// The roster lists no key for the seat.
    #[error("the roster has no seat {0}")]
    NoSeat(Seat),
    /// The key exchange does not verify against the roster's key.
    #[error(
        "its key-exchange message does not verify against the roster's key for seat \
         {seat}{suffix}: it may be an impostor, or the message was altered on the way",
        suffix = Optional(" (", .key.as_deref(), ")")
    )]
    KeyMismatch {
        /// The seat.
        seat: Seat,
        /// The roster's key for it, if it has one.
        key: Option<String>,
    },
    /// The peer's roster hashes differently.
    #[error(
        "it uses another roster (hash {theirs}…, {me}'s is {mine}…); give every participant \
         the same roster file (if it has the same one, it may be an impostor)"
    )]
    OtherRoster {
        /// The start of the peer's roster hash, in hex.
        theirs: String,
        /// This endpoint's name.
        me: String,
        /// The start of this endpoint's roster hash, in hex.
        mine: String,
    },
}

/// Whether an endpoint runs with a dealer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DealerUse {
    /// Started with `--dealer`.
    With,
    /// Started without.
    Without,
}

impl fmt::Display for DealerUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DealerUse::With => "with a dealer (--dealer)",
            DealerUse::Without => "without a dealer",
        })
    }
}

/// How an endpoint authenticates its peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Neither a roster nor a shared secret.
    None,
    /// A shared secret.
    Secret,
    /// A roster and an identity.
    Roster,
    /// A mode tag this version does not know.
    Unknown(u8),
}

impl fmt::Display for AuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthMode::None => "no authentication (neither --roster nor a shared secret)",
            AuthMode::Secret => "a shared secret (--secret-file or MPC_SECRET)",
            AuthMode::Roster => "a roster (--roster and --identity)",
            AuthMode::Unknown(_) => "an unknown authentication",
        })
    }
}

/// What differs between a peer's setup and this endpoint's.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SetupMismatch {
    /// Another session name.
    #[error("it is in another session than '{0}'")]
    OtherSession(String),
    /// Another number of parties.
    #[error("it expects a session of {theirs} parties, {me} one of {ours}")]
    PartyCount {
        /// The peer's count.
        theirs: usize,
        /// This endpoint's name.
        me: String,
        /// This endpoint's count.
        ours: usize,
    },
    /// One runs with a dealer, the other without.
    #[error(
        "{peer} runs {session}{theirs}, {me} {ours}: start every party with the same dealer \
         choice",
        session = Optional("session '", .session.as_deref(), "' ")
    )]
    DealerChoice {
        /// The peer's name.
        peer: String,
        /// The session, where the message names it.
        session: Option<String>,
        /// The peer's choice.
        theirs: DealerUse,
        /// This endpoint's name.
        me: String,
        /// This endpoint's choice.
        ours: DealerUse,
    },
    /// A dealer reached a party that runs without one.
    #[error(
        "{peer} runs session '{session}' without a dealer (it was not started with --dealer); \
         a party uses a dealer only when asked to"
    )]
    UninvitedDealer {
        /// The party's name.
        peer: String,
        /// The session.
        session: String,
    },
    /// Another way of authenticating.
    #[error("{peer} uses {theirs}, {me} {ours}; give every participant the same roster or secret")]
    Authentication {
        /// The peer's name.
        peer: String,
        /// The peer's mode.
        theirs: AuthMode,
        /// This endpoint's name.
        me: String,
        /// This endpoint's mode.
        ours: AuthMode,
    },
}

/// Why the relay no longer has this party's session.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SessionLost {
    /// Another relay instance answers: the old one took the session with it.
    #[error(
        "the relay at {url} restarted (instance {was} is now {now}) and lost session \
         '{session}' with its messages; start every participant of the session again (a relay \
         started with --store redis://... keeps sessions across restarts)"
    )]
    Restarted {
        /// The relay's URL.
        url: String,
        /// The session.
        session: String,
        /// The instance that answered the join.
        was: String,
        /// The instance answering now.
        now: String,
    },
    /// The relay says the session is gone (deleted, expired).
    #[error("the relay at {url} lost session '{session}': {body}")]
    Gone {
        /// The relay's URL.
        url: String,
        /// The session.
        session: String,
        /// The relay's explanation.
        body: String,
    },
    /// The relay gave this party's seat to another client.
    #[error(
        "the relay at {url} gave this party's seat to another client (it had reported this \
         party lost): {body}"
    )]
    SeatTaken {
        /// The relay's URL.
        url: String,
        /// The relay's explanation.
        body: String,
    },
}

/// Why a transport could not set up, send or receive.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum TransportFailure {
    /// A peer number outside the session (the framing layer).
    #[error("no such peer (this endpoint is {me})")]
    NoSuchPeer {
        /// This endpoint's name.
        me: String,
    },
    /// A peer number outside the session (the in-memory transport).
    #[error("no such peer of {me}")]
    NoSuchPeerOf {
        /// This endpoint's name.
        me: String,
    },
    /// A peer number outside the session (direct mode).
    #[error("no such peer of {me} in a session of {endpoints} endpoints")]
    NoSuchEndpoint {
        /// This endpoint's name.
        me: String,
        /// The session's endpoints.
        endpoints: usize,
    },
    /// A peer number outside the session (the relay client).
    #[error("no such peer in a session of {parties} parties (and a dealer)")]
    NoSuchSeat {
        /// The session's parties.
        parties: usize,
    },
    /// A peer with no sealed channel.
    #[error("no sealed channel with it (this endpoint is {me})")]
    NotSealedWith {
        /// This endpoint's name.
        me: String,
    },
    /// A frame addressed to its sender.
    #[error("that is this endpoint itself")]
    Itself,
    /// Direct mode: this endpoint's number has no URL.
    #[error("endpoint {me} is not among the {urls} URLs given")]
    NotAmongUrls {
        /// This endpoint's number.
        me: usize,
        /// How many URLs were given.
        urls: usize,
    },
    /// A seat beyond the session's parties and dealer.
    #[error("peer {me} does not exist in a session of {parties} parties")]
    NoSeat {
        /// The seat asked for.
        me: usize,
        /// The session's parties.
        parties: usize,
    },
    /// An empty session name.
    #[error("the session name is empty")]
    EmptySession,
    /// A URL that does not parse.
    #[error("'{url}' is not a valid URL: {why}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// The parser's reason.
        why: String,
    },
    /// A URL of another scheme, or one that cannot take a path.
    #[error("'{0}' is not an http:// or https:// URL")]
    NotHttp(String),
    /// Direct mode: an https:// URL to serve without a certificate.
    #[error(
        "its URL {0} is https:// but no certificate was given to serve with (--cert FILE \
         --key FILE)"
    )]
    HttpsWithoutCertificate(String),
    /// Direct mode: this endpoint cannot listen where its URL says.
    #[error(
        "cannot listen on {addr} (taken from its URL {url}): {why}; choose another port in \
         --peers, or give --listen ADDR"
    )]
    CannotListen {
        /// The address.
        addr: std::net::SocketAddr,
        /// This endpoint's URL.
        url: String,
        /// The operating system's reason.
        why: String,
    },
    /// Setting up the HTTP client or server failed (certificate files, URLs); the
    /// explanation of the part that failed.
    #[error("{0}")]
    Config(String),
    /// A TLS failure, explained (not worth retrying).
    #[error("{0}")]
    Tls(String),
    /// The answer to a join lacks the relay's header.
    #[error(
        "{url} is not an mpc relay: it answered PUT {path} with {status}{server} and without \
         the {header} header an mpc relay sends; check the URL (the address `mpc serve` \
         listens on)",
        header = crate::net::headers::INSTANCE_HEADER
    )]
    NotARelay {
        /// The URL given.
        url: String,
        /// The path of the join.
        path: String,
        /// The answer's status.
        status: StatusCode,
        /// " (server: NAME)" where the answer names its server.
        server: String,
    },
    /// The relay's join answer lacks the session's incarnation.
    #[error(
        "the relay did not say which incarnation of session '{0}' it joined us to: update mpc \
         serve"
    )]
    NoEpoch(String),
    /// The relay refused the join for good (its seat is taken, for instance).
    #[error("cannot join session '{session}': {body}")]
    JoinRefused {
        /// The session.
        session: String,
        /// The relay's explanation.
        body: String,
    },
    /// The relay refused the join with a status not worth retrying.
    #[error("cannot join session '{session}': {status}: {body}")]
    JoinRefusedWith {
        /// The session.
        session: String,
        /// The relay's status.
        status: StatusCode,
        /// The relay's explanation.
        body: String,
    },
    /// The join kept failing until the timeout.
    #[error("gave up joining session '{session}' after {secs} s: {why}")]
    GaveUpJoining {
        /// The session.
        session: String,
        /// The timeout.
        secs: u64,
        /// The last failure.
        why: String,
    },
    /// Not every expected participant joined before the timeout.
    #[error(
        "{joined} of {expected} expected participants of session '{session}' joined in time; \
         missing: {missing}{last}",
        missing = .missing.join(", "),
        last = Optional(" (last error: ", .last_error.as_deref(), ")")
    )]
    NotAllJoined {
        /// Seats joined.
        joined: usize,
        /// Seats expected.
        expected: usize,
        /// The session.
        session: String,
        /// The names of the participants missing.
        missing: Vec<String>,
        /// The last failure to ask the relay, if any.
        last_error: Option<String>,
    },
    /// The relay lost the session.
    #[error("{0}")]
    SessionLost(Box<SessionLost>),
    /// The relay says the session is gone (deleted, expired).
    #[error("the relay says: {0}")]
    SessionGone(String),
    /// The relay answered a session query with an unexpected status.
    #[error("the relay answered {status}: {body}")]
    RelayAnswered {
        /// Its status.
        status: StatusCode,
        /// Its explanation.
        body: String,
    },
    /// The relay cannot be reached, or its answer cannot be read (the HTTP client's words).
    #[error("{0}")]
    Network(String),
    /// The relay predates the join order of seats.
    #[error("this relay does not report the join order of seats: update mpc serve")]
    NoJoinOrder,
    /// The relay refused to hand out a frame.
    #[error("the relay refused to deliver frame {seq}: {status}: {body}")]
    DeliveryRefused {
        /// The frame's number.
        seq: u64,
        /// The relay's status.
        status: StatusCode,
        /// The relay's explanation.
        body: String,
    },
    /// Receiving kept failing until the timeout.
    #[error("no frame {seq} before the timeout: {why}")]
    NoFrame {
        /// The frame's number.
        seq: u64,
        /// The last failure.
        why: String,
    },
    /// The receiver refused a frame with a status not worth retrying.
    #[error("{answerer} refused frame {seq}: {status}: {body}")]
    FrameRefused {
        /// Who answered: "the relay" or "it" (the peer).
        answerer: &'static str,
        /// The frame's number.
        seq: u64,
        /// Its status.
        status: StatusCode,
        /// Its explanation.
        body: String,
    },
    /// Sending kept failing until the timeout.
    #[error("gave up sending frame {seq} after {secs} s: {why}")]
    GaveUp {
        /// The frame's number.
        seq: u64,
        /// How long the sender kept trying.
        secs: u64,
        /// The last failure.
        why: String,
    },
    /// A frame number that was sealed before for another message.
    #[error("frame {seq} was sealed before for another message; refusing to reuse its nonce")]
    NonceReuse {
        /// The frame's number.
        seq: u64,
    },
    /// Direct mode: one peer did not answer its health check in time.
    #[error(
        "it did not come up within {waited} s (last attempt: {why}); start it with the same \
         --session and --peers, or check the URL"
    )]
    NotUp {
        /// How long we waited, in seconds.
        waited: f64,
        /// The last failure.
        why: String,
    },
    /// Direct mode: several peers did not answer their health checks in time.
    #[error(
        "they did not come up within {waited} s: {list}; start them with the same --session \
         and --peers, or check the URLs",
        list = .peers.join("; ")
    )]
    NoneUp {
        /// How long we waited, in seconds.
        waited: f64,
        /// Each peer with its URL and last failure.
        peers: Vec<String>,
    },
    /// Direct mode: the URL serves another endpoint or session.
    #[error(
        "the endpoint there serves {} of {peers} endpoints in session '{session}', but this \
         endpoint expects {} of {expected_peers} in session '{expected_session}'; give every \
         participant the same --session and --peers",
        PeerNames::new(*.parties).name(*.serves),
        PeerNames::new(*.parties).name(*.expected)
    )]
    OtherEndpoint {
        /// The computing parties of this endpoint's session (to name endpoints).
        parties: usize,
        /// The endpoint it serves.
        serves: usize,
        /// Its session's endpoints.
        peers: usize,
        /// Its session.
        session: String,
        /// The endpoint expected there.
        expected: usize,
        /// Our session's endpoints.
        expected_peers: usize,
        /// Our session.
        expected_session: String,
    },
    /// A bug in the sealing layer.
    #[error("internal error in the sealing layer: {0} (please report this bug)")]
    Internal(&'static str),
}

impl TransportFailure {
    /// Why sending frame `seq` failed, in the words of both transports (`answerer`: "the
    /// relay", "it"; `timeout`: how long the sender kept trying); `None` if it was delivered.
    pub(crate) fn of_delivery(
        delivery: Delivery,
        seq: u64,
        answerer: &'static str,
        timeout: std::time::Duration,
    ) -> Option<TransportFailure> {
        match delivery {
            Delivery::Delivered => None,
            Delivery::Refused { status, body } => Some(TransportFailure::FrameRefused {
                answerer,
                seq,
                status,
                body,
            }),
            Delivery::GaveUp(why) => Some(TransportFailure::GaveUp {
                seq,
                secs: timeout.as_secs(),
                why,
            }),
        }
    }
}

/// `value` between `before` and `after`, or nothing where there is no value: the optional
/// parts of a sentence (" (KEY)", "session 'NAME' ", " (last error: WHY)").
struct Optional<'a>(&'static str, Option<&'a str>, &'static str);

impl fmt::Display for Optional<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(value) => write!(f, "{}{value}{}", self.0, self.2),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_parts_keep_the_wording() {
        let dealer = |session: Option<&str>| SetupMismatch::DealerChoice {
            peer: "party 1".into(),
            session: session.map(str::to_string),
            theirs: DealerUse::With,
            me: "party 0".into(),
            ours: DealerUse::Without,
        };
        assert_eq!(
            dealer(None).to_string(),
            "party 1 runs with a dealer (--dealer), party 0 without a dealer: start every \
             party with the same dealer choice"
        );
        assert_eq!(
            dealer(Some("s")).to_string(),
            "party 1 runs session 's' with a dealer (--dealer), party 0 without a dealer: \
             start every party with the same dealer choice"
        );
        let key = |key: Option<&str>| IdentityFailure::KeyMismatch {
            seat: Seat::Dealer,
            key: key.map(str::to_string),
        };
        assert!(key(None).to_string().contains("for seat dealer: it may"));
        assert!(
            key(Some("k"))
                .to_string()
                .contains("for seat dealer (k): it may")
        );
    }
}
