//! How a role (a party or the dealer) connects to its session: through a relay (`URL`) or
//! directly to its peers (`--peers`), with TLS options, then authenticates every peer and
//! seals every message end to end ([`crate::channel::sealed`]). `mpc party` and `mpc pre`
//! flatten [`ConnectArgs`] and call [`connect`]; the protocol then runs over the returned
//! [`SessionChannel`].
//!
//! A dealer takes part only when the parties ask for one (`--dealer`); nothing about who
//! joins which seat changes that. A party without `--dealer` answers a dealer that turns up
//! with a refusal, so the dealer can say why it is not used.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::channel::direct::{DirectConfig, DirectLimits, DirectTransport, parse_url};
use crate::channel::identity::{Identity, Roster, Seat};
use crate::channel::relay::RelayTransport;
use crate::channel::sealed::{Auth, SealParams, Sealed, Secret, refusal_frame};
use crate::channel::{ChannelError, Framed, Phase, Transport};
use crate::net::client::ClientTls;
use crate::net::tls::{self as tls_files, ServerTlsFiles};
use crate::progress::StderrProgress;

use super::Failure;

/// How long a party without a dealer spends telling a dealer seat that it is not used.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Environment variable holding the shared session secret (alternative to --secret-file).
pub const SECRET_ENV: &str = "MPC_SECRET";

/// How to reach the other participants of a session; shared by `mpc party` and `mpc pre`.
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
#[command(group(clap::ArgGroup::new("relay_or_peers").required(true).args(["url", "peers"])))]
pub struct ConnectArgs {
    /// URL of the relay (`mpc serve`), e.g. http://127.0.0.1:8000 or
    /// https://relay.example:8443. Required unless --peers is given.
    #[arg(value_name = "URL", conflicts_with = "peers")]
    pub url: Option<String>,

    /// Direct mode (no relay): every participant's URL, comma-separated, in this order:
    /// party 0, party 1, ..., party n-1, then the dealer's URL last (n+1 URLs). This
    /// process serves on the port of its own entry (entry --party I for `mpc party`, the
    /// last entry for `mpc pre`); all participants give the same list.
    #[arg(long, value_name = "URL,URL,...", value_delimiter = ',', num_args = 1..)]
    pub peers: Option<Vec<String>>,

    /// Direct mode: listen on this address instead of the host and port of this
    /// endpoint's own URL in --peers (e.g. 0.0.0.0:9000 behind NAT or in a container).
    #[arg(long, value_name = "ADDR", requires = "peers")]
    pub listen: Option<SocketAddr>,

    /// The session's roster: one line `SEAT PUBKEY` per seat (0, 1, ..., n-1, and dealer
    /// when there is one), the public keys `mpc keygen` printed. Every participant gets the
    /// same roster; each then proves its seat's key and checks everyone else's, so nobody
    /// (not the relay, not another participant) can take a seat. Needs --identity.
    #[arg(long, value_name = "FILE", requires = "identity")]
    pub roster: Option<PathBuf>,

    /// This participant's secret key, written by `mpc keygen FILE` (the FILE, not FILE.pub):
    /// it proves the key the roster lists for this seat. Needs --roster.
    #[arg(long, value_name = "FILE", requires = "roster")]
    pub identity: Option<PathBuf>,

    /// File holding a secret shared by all participants (or set MPC_SECRET; the file takes
    /// precedence). It keeps out anyone who does not know it, but any participant that
    /// knows it could pose as another: prefer --roster. Without either, keys are agreed
    /// anonymously, which stops passive eavesdroppers only.
    #[arg(long, value_name = "FILE", conflicts_with = "roster")]
    pub secret_file: Option<PathBuf>,

    /// The shared secret itself, normally from the environment: a value typed here shows
    /// in `ps` and the shell's history. --secret-file takes precedence.
    #[arg(long, value_name = "SECRET", env = SECRET_ENV, hide_env_values = true)]
    pub secret: Option<String>,

    /// Trust only this CA certificate (PEM) for https:// URLs (the relay, or peers in
    /// direct mode) instead of the system's roots: for certificates from a private CA.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,

    /// This endpoint's certificate (PEM): presented as client certificate to a relay (or
    /// peers) that demand one (--client-ca); in direct mode with an https:// URL of its
    /// own, also the certificate it serves with. Needs --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,

    /// The private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,

    /// Direct mode: admit only peers presenting a client certificate issued by this CA
    /// (PEM). Needs an https:// URL of its own, --cert and --key.
    #[arg(long, value_name = "FILE", requires = "peers")]
    pub client_ca: Option<PathBuf>,

    /// Do not seal messages end to end (for measurements only: whoever carries the
    /// messages reads and can change all of them). Every participant must agree.
    #[arg(long, hide = true)]
    pub no_seal: bool,
}

/// Who is connecting.
#[derive(Debug, Clone)]
pub struct Role {
    /// Peer number: the party index, or `parties` for the dealer.
    pub me: usize,
    /// Number of computing parties (the session also has a dealer, peer `parties`).
    pub parties: usize,
    /// The session name.
    pub session: String,
    /// How long to wait for the others and for each message.
    pub timeout: Duration,
    /// Whether the session has a dealer: a party started with `--dealer`, or the dealer.
    pub dealer: bool,
}

impl Role {
    /// Computing party `me` of `parties`, with a dealer exactly when `dealer`.
    pub fn party(
        me: usize,
        parties: usize,
        session: &str,
        timeout: Duration,
        dealer: bool,
    ) -> Self {
        Self {
            me,
            parties,
            session: session.to_string(),
            timeout,
            dealer,
        }
    }

    /// The dealer of a session of `parties` parties.
    pub fn dealer(parties: usize, session: &str, timeout: Duration) -> Self {
        Self::party(parties, parties, session, timeout, true)
    }

    fn is_dealer(&self) -> bool {
        self.me == self.parties
    }

    fn seat(&self) -> Seat {
        if self.is_dealer() {
            Seat::Dealer
        } else {
            Seat::Party(self.me)
        }
    }

    fn endpoints(&self) -> usize {
        if self.dealer {
            self.parties + 1
        } else {
            self.parties
        }
    }
}

/// The transport under the sealing layer: the relay or direct HTTP.
pub enum Link {
    /// Through `mpc serve`.
    Relay(RelayTransport),
    /// Directly to every peer's own endpoint.
    Direct(DirectTransport),
}

impl Transport for Link {
    async fn send_frame(&self, to: usize, seq: u64, frame: Bytes) -> Result<(), ChannelError> {
        match self {
            Link::Relay(t) => t.send_frame(to, seq, frame).await,
            Link::Direct(t) => t.send_frame(to, seq, frame).await,
        }
    }

    async fn recv_frame(
        &self,
        from: usize,
        seq: u64,
        deadline: Instant,
    ) -> Result<Option<Bytes>, ChannelError> {
        match self {
            Link::Relay(t) => t.recv_frame(from, seq, deadline).await,
            Link::Direct(t) => t.recv_frame(from, seq, deadline).await,
        }
    }
}

impl Link {
    /// Leaves the session: stops heartbeats (and, in direct mode, this endpoint's server).
    pub async fn leave(&self) {
        match self {
            Link::Relay(t) => t.leave().await,
            Link::Direct(t) => t.leave().await,
        }
    }
}

/// The channel a role runs the protocol over.
pub type SessionChannel = Framed<Sealed<Link>>;

/// Everything [`connect`] needs, checked: the usage errors come out before any network.
struct Plan {
    mode: Mode,
    client_tls: ClientTls,
    auth: Auth,
}

enum Mode {
    Relay(String),
    Direct {
        urls: Vec<String>,
        server_tls: Option<ServerTlsFiles>,
    },
}

fn plan(args: &ConnectArgs, role: &Role) -> Result<Plan, Failure> {
    let mode = match (&args.url, &args.peers) {
        (Some(url), None) => {
            parse_url(url).map_err(|e| Failure::usage(format!("the relay URL {e}")))?;
            Mode::Relay(url.clone())
        }
        (None, Some(urls)) => {
            let n = role.parties;
            let wanted = role.endpoints();
            if urls.len() != wanted {
                let why = if role.is_dealer() {
                    format!(
                        "the dealer of a session of {n} parties needs {wanted}: party 0 to party {}, then the dealer's URL last",
                        n - 1
                    )
                } else if role.dealer {
                    format!(
                        "with --dealer, a session of {n} parties needs {wanted}: party 0 to party {}, then the dealer's URL last",
                        n - 1
                    )
                } else if urls.len() == n + 1 {
                    format!(
                        "a session of {n} parties without a dealer takes exactly {n}; to use the dealer listed last, start every party with --dealer"
                    )
                } else {
                    format!(
                        "a session of {n} parties needs {wanted}, party 0 to party {}",
                        n - 1
                    )
                };
                return Err(Failure::usage(format!(
                    "--peers lists {} URL{}, but {why}",
                    urls.len(),
                    if urls.len() == 1 { "" } else { "s" },
                )));
            }
            let mut parsed = Vec::with_capacity(urls.len());
            for (i, raw) in urls.iter().enumerate() {
                let url = parse_url(raw).map_err(|e| Failure::usage(format!("--peers: {e}")))?;
                if let Some(j) = parsed.iter().position(|u: &reqwest::Url| u == &url) {
                    return Err(Failure::usage(format!(
                        "--peers lists {url} twice (entries {j} and {i}); every participant \
                         needs its own URL"
                    )));
                }
                parsed.push(url);
            }
            let own_https = parsed[role.me].scheme() == "https";
            let server_tls = match (&args.cert, &args.key) {
                (Some(cert), Some(key)) if own_https => Some(ServerTlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                    client_ca: args.client_ca.clone(),
                }),
                _ if own_https => {
                    return Err(Failure::usage(format!(
                        "this endpoint's URL {} is https://: give --cert FILE --key FILE with \
                         the certificate to serve it with",
                        parsed[role.me]
                    )));
                }
                _ => None,
            };
            if args.client_ca.is_some() && !own_https {
                return Err(Failure::usage(format!(
                    "--client-ca needs TLS: make this endpoint's URL https:// (it is {})",
                    parsed[role.me]
                )));
            }
            if let Some(files) = &server_tls {
                tls_files::server_config(files).map_err(Failure::usage)?;
            }
            Mode::Direct {
                urls: urls.clone(),
                server_tls,
            }
        }
        _ => {
            return Err(Failure::usage(
                "give either the relay URL or --peers URL,URL,... (direct mode), not both",
            ));
        }
    };
    let any_https = match &mode {
        Mode::Relay(url) => url.starts_with("https:"),
        Mode::Direct { urls, .. } => urls.iter().any(|u| u.starts_with("https:")),
    };
    if !any_https && (args.ca_cert.is_some() || args.cert.is_some()) {
        return Err(Failure::usage(
            "--ca-cert, --cert and --key only matter for https:// URLs, and none is given",
        ));
    }
    if let Some(ca) = &args.ca_cert {
        tls_files::load_roots(ca, "CA certificate").map_err(Failure::usage)?;
    }
    if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        tls_files::load_certs(cert, "certificate").map_err(Failure::usage)?;
        tls_files::load_key(key).map_err(Failure::usage)?;
    }
    let client_tls = ClientTls {
        ca_cert: args.ca_cert.clone(),
        identity: args.cert.clone().zip(args.key.clone()),
    };
    let auth = authentication(args, role)?;
    if args.no_seal && !matches!(auth, Auth::Anonymous) {
        return Err(Failure::usage(
            "--no-seal contradicts --roster and the shared secret (--secret-file or MPC_SECRET): \
             they are only used to authenticate and seal messages",
        ));
    }
    Ok(Plan {
        mode,
        client_tls,
        auth,
    })
}

/// How this participant authenticates the others: a roster and its identity, a shared
/// secret, or nothing.
fn authentication(args: &ConnectArgs, role: &Role) -> Result<Auth, Failure> {
    let secret = match (&args.secret_file, &args.secret) {
        (Some(path), _) => Some(Secret::from_file(path).map_err(Failure::usage)?),
        (None, Some(value)) => {
            Some(Secret::new(value.as_bytes(), SECRET_ENV).map_err(Failure::usage)?)
        }
        (None, None) => None,
    };
    match (&args.roster, &args.identity) {
        (Some(roster_path), Some(identity_path)) => {
            if secret.is_some() {
                return Err(Failure::usage(format!(
                    "--roster already authenticates every participant; unset {SECRET_ENV} or drop --secret (a \
                     shared secret cannot be combined with a roster)"
                )));
            }
            let roster = Roster::read(roster_path).map_err(Failure::usage)?;
            let identity = Identity::read(identity_path).map_err(Failure::usage)?;
            roster
                .check_session(
                    role.parties,
                    role.dealer,
                    role.seat(),
                    &identity,
                    &format!("the roster {}", roster_path.display()),
                )
                .map_err(Failure::usage)?;
            Ok(Auth::Roster {
                roster: Box::new(roster),
                identity: Box::new(identity),
            })
        }
        (None, None) => Ok(secret.map_or(Auth::Anonymous, Auth::Secret)),
        // clap requires both together; a library caller may not.
        _ => Err(Failure::usage(
            "--roster and --identity go together: the roster says which key holds which seat, \
             the identity is this participant's secret key",
        )),
    }
}

/// Connects `role` to its session as `args` says: joins the relay and waits for the other
/// parties, or starts this endpoint's server and waits for every peer; then authenticates
/// every peer (and the dealer, when the session has one) and returns the sealed channel.
/// Usage errors exit 2, communication failures (including a peer that does not prove its
/// roster identity) exit 1.
pub async fn connect(
    args: &ConnectArgs,
    role: &Role,
    progress: &StderrProgress,
) -> Result<SessionChannel, Failure> {
    let plan = plan(args, role)?;
    let n = role.parties;
    let deadline = Instant::now() + role.timeout;
    let session = &role.session;
    let endpoints = role.endpoints();
    let params = SealParams {
        session,
        me: role.me,
        peers: endpoints,
        parties: n,
        timeout: role.timeout,
    };
    let mut key_wait = "agreeing on keys with the other participants".to_string();
    let (link, carrier) = match plan.mode {
        Mode::Relay(url) => {
            let transport = RelayTransport::join_with(
                &url,
                session,
                role.me,
                n,
                role.timeout,
                &plan.client_tls,
            )
            .await
            .map_err(Failure::protocol)?;
            progress.waiting(&format!(
                "waiting for the {n} parties of session '{session}'"
            ));
            let waited = transport
                .wait_for(n, false, deadline, |joined| {
                    progress.waiting(&format!("session '{session}': {joined}/{n} parties joined"))
                })
                .await;
            progress.clear();
            if let Err(e) = waited {
                transport.leave().await;
                return Err(Failure::protocol(e));
            }
            if !role.dealer && !args.no_seal {
                // A dealer may sit (or later sit) in the dealer seat; tell it that this party
                // does not use it, so it exits saying why instead of waiting.
                let reason = format!(
                    "{} runs session '{session}' without a dealer (it was not started with \
                     --dealer); a party uses a dealer only when asked to",
                    crate::channel::PeerNames::new(n).name(role.me)
                );
                let frame = refusal_frame(&params, n, &reason);
                if let Ok(Err(e)) =
                    tokio::time::timeout(REFUSAL_TIMEOUT, transport.send_frame(n, 0, frame)).await
                {
                    tracing::debug!("could not leave the refusal for a dealer: {e}");
                }
            }
            let dealer_missing = role.dealer
                && !role.is_dealer()
                && !transport.dealer_joined().await.unwrap_or(true);
            if dealer_missing {
                key_wait = format!(
                    "waiting for the dealer of session '{session}' (this party was started with \
                     --dealer)"
                );
            }
            (Link::Relay(transport), "the relay")
        }
        Mode::Direct { urls, server_tls } => {
            let total = urls.len();
            let transport = DirectTransport::start(DirectConfig {
                urls,
                me: role.me,
                parties: n,
                session: session.clone(),
                timeout: role.timeout,
                listen: args.listen,
                client_tls: plan.client_tls.clone(),
                server_tls,
                limits: DirectLimits::default(),
            })
            .await
            .map_err(Failure::protocol)?;
            progress.waiting(&format!(
                "serving on {}, waiting for the peers of session '{session}'",
                transport.local_addr()
            ));
            let waited = transport
                .wait_for_peers(deadline, |up| {
                    progress.waiting(&format!("session '{session}': {up}/{total} up"))
                })
                .await;
            progress.clear();
            if let Err(e) = waited {
                transport.leave().await;
                return Err(Failure::protocol(e));
            }
            (Link::Direct(transport), "the network")
        }
    };

    let sealed = if args.no_seal {
        progress.note(&format!(
            "messages are not sealed (--no-seal): {carrier} and anyone on the way can read and \
             change every message"
        ));
        Sealed::plain(link, role.me, n)
    } else {
        progress.waiting(&key_wait);
        // On failure the link is dropped, which leaves the session (heartbeats, server stop).
        let established = Sealed::establish(link, &params, &plan.auth).await;
        progress.clear();
        let sealed = established.map_err(|e| Failure::protocol(explain_missing_dealer(e, role)))?;
        if let Some(notice) = authentication_notice(&plan.auth, carrier) {
            progress.note(&notice);
        }
        sealed
    };
    Ok(Framed::new(sealed, role.me, endpoints, n, role.timeout))
}

/// What a participant should know about whom it computes with, said once: with a roster,
/// that everyone proved its seat; without, who could take a seat.
fn authentication_notice(auth: &Auth, carrier: &str) -> Option<String> {
    let who = if carrier == "the relay" {
        "the relay, or anyone who can reach it,"
    } else {
        "anyone on the network between the participants"
    };
    match auth {
        Auth::Roster { roster, .. } => Some(format!(
            "every participant proved the key the roster gives its seat (roster {}…)",
            hex::encode(&roster.hash()[..6])
        )),
        Auth::Anonymous => Some(format!(
            "participants are not authenticated (no --roster): {who} could take a seat and \
             compute in its place; give every participant a key (`mpc keygen`) and the same \
             --roster"
        )),
        Auth::Secret(_) => Some(
            "participants are authenticated by the shared secret only: it keeps out whoever \
             does not know it, but a participant could pose as another; use --roster for \
             per-seat identities"
                .into(),
        ),
    }
}

/// A party waiting for a dealer that never came is told how to start one.
fn explain_missing_dealer(e: ChannelError, role: &Role) -> String {
    match &e {
        ChannelError::Timeout {
            peer,
            phase: Phase::KeyExchange,
            secs,
        } if role.dealer && !role.is_dealer() && peer == "the dealer" => format!(
            "the dealer of session '{}' did not answer within {secs} s: this party was started \
             with --dealer, so it needs `mpc pre URL --session {} --parties {}`",
            role.session, role.session, role.parties
        ),
        _ => e.to_string(),
    }
}

/// Leaves the session (stops heartbeats; in direct mode, this endpoint's server).
pub async fn leave(ch: &SessionChannel) {
    ch.transport().inner().leave().await;
}
