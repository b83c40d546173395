//! How a role (a party or the dealer) connects to its session: through a relay (`URL`) or
//! directly to its peers (`--peers`), with TLS options, then seals every message end to
//! end ([`crate::channel::sealed`]). `mpc party` and `mpc pre` flatten [`ConnectArgs`] and
//! call [`connect`]; the protocol then runs over the returned [`SessionChannel`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::channel::direct::{DirectConfig, DirectLimits, DirectTransport, parse_url};
use crate::channel::relay::{ClientTls, RelayTransport};
use crate::channel::sealed::{SealParams, Sealed, Secret};
use crate::channel::{ChannelError, Framed, Transport};
use crate::progress::StderrProgress;
use crate::relay::tls::{self as tls_files, ServerTlsFiles};

use super::Failure;

/// How long a late dealer looks for a party that asked for it (--dealer) before it
/// concludes that the parties run without one.
const DEALER_PROBE: Duration = Duration::from_secs(3);

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

    /// File holding the secret shared by all participants of the session (or set
    /// MPC_SECRET; the file takes precedence). It authenticates the key exchange, so that
    /// not even an active relay can read or change messages. Without it, keys are agreed
    /// anonymously, which stops passive eavesdroppers only.
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,

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
    /// Whether a party takes its correlated randomness from a dealer.
    pub dealer: DealerChoice,
}

/// Whether a party uses a trusted dealer (`--dealer`, `--no-dealer`, or neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DealerChoice {
    /// Use the dealer if one joined the session before the last party did (relay), or if
    /// --peers lists one (direct); otherwise run the OT-based preprocessing.
    Auto,
    /// Wait for a dealer.
    Require,
    /// Never use a dealer.
    Forbid,
}

impl Role {
    /// Computing party `me` of `parties`.
    pub fn party(
        me: usize,
        parties: usize,
        session: &str,
        timeout: Duration,
        dealer: DealerChoice,
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
        Self::party(parties, parties, session, timeout, DealerChoice::Require)
    }

    fn is_dealer(&self) -> bool {
        self.me == self.parties
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
    secret: Option<Secret>,
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
            let wanted = match role.dealer {
                DealerChoice::Require => n + 1,
                DealerChoice::Forbid => n,
                DealerChoice::Auto if urls.len() == n => n,
                DealerChoice::Auto => n + 1,
            };
            if role.dealer == DealerChoice::Forbid && urls.len() == n + 1 {
                return Err(Failure::usage(format!(
                    "--no-dealer, but --peers lists {} URLs: a session of {n} parties without a \
                     dealer takes exactly {n}",
                    urls.len()
                )));
            }
            if urls.len() != wanted {
                return Err(Failure::usage(format!(
                    "--peers lists {} URL{}, but a session of {} parties and a dealer needs {wanted}: \
                     party 0 to party {}, then the dealer's URL last",
                    urls.len(),
                    if urls.len() == 1 { "" } else { "s" },
                    role.parties,
                    role.parties - 1
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
    let secret = match (&args.secret_file, std::env::var_os(SECRET_ENV)) {
        (Some(path), _) => Some(Secret::from_file(path).map_err(Failure::usage)?),
        (None, Some(value)) => {
            Some(Secret::new(value.as_encoded_bytes(), SECRET_ENV).map_err(Failure::usage)?)
        }
        (None, None) => None,
    };
    if args.no_seal && secret.is_some() {
        return Err(Failure::usage(
            "--no-seal contradicts the shared secret (--secret-file or MPC_SECRET): a secret \
             is only used to seal messages",
        ));
    }
    Ok(Plan {
        mode,
        client_tls,
        secret,
    })
}

/// Connects `role` to its session as `args` says: joins the relay and waits for every
/// participant (parties wait for the dealer too), or starts this endpoint's server and
/// waits for every peer; then agrees on keys with every peer and returns the sealed
/// channel, and whether the session uses a dealer. Usage errors exit 2, communication
/// failures exit 1.
pub async fn connect(
    args: &ConnectArgs,
    role: &Role,
    progress: &StderrProgress,
) -> Result<(SessionChannel, bool), Failure> {
    let plan = plan(args, role)?;
    let n = role.parties;
    let deadline = Instant::now() + role.timeout;
    let session = &role.session;
    let with_dealer;
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
            let want_dealer = !role.is_dealer() && role.dealer == DealerChoice::Require;
            progress.waiting(&if want_dealer {
                format!("waiting for the parties and the dealer of session '{session}'")
            } else {
                format!("waiting for the {n} parties of session '{session}'")
            });
            let total = if want_dealer { n + 1 } else { n };
            let waited = transport
                .wait_for(n, want_dealer, deadline, |joined| {
                    progress.waiting(&format!("session '{session}': {joined}/{total} joined"))
                })
                .await;
            progress.clear();
            if let Err(e) = waited {
                transport.leave().await;
                return Err(Failure::protocol(e));
            }
            with_dealer = match (role.is_dealer(), role.dealer) {
                (false, DealerChoice::Require) => true,
                (false, DealerChoice::Forbid) => false,
                (is_dealer, _) => {
                    let order = match transport.join_order().await {
                        Ok(order) => order,
                        Err(e) => {
                            transport.leave().await;
                            return Err(Failure::protocol(e));
                        }
                    };
                    let dealer_at = order.iter().position(|s| s == "dealer");
                    let last_party = order
                        .iter()
                        .rposition(|s| s.parse::<usize>().is_ok_and(|i| i < n));
                    let joined_in_time =
                        matches!((dealer_at, last_party), (Some(d), Some(p)) if d < p);
                    if is_dealer && !joined_in_time {
                        // The parties ran the automatic choice without this dealer, unless
                        // they asked for one with --dealer: then party 0's key-exchange
                        // message to the dealer is already waiting (a look, not a take: the
                        // relay keeps message 0 until message 1 is asked for).
                        let probe = Instant::now() + DEALER_PROBE.min(role.timeout);
                        let asked = matches!(transport.recv_frame(0, 0, probe).await, Ok(Some(_)));
                        if !asked {
                            transport.leave().await;
                            return Err(Failure::protocol(format!(
                                "the parties of session '{session}' had all joined before the \
                                 dealer, so they run without a dealer (OT-based preprocessing); \
                                 start the dealer before the last party, or the parties with \
                                 --dealer"
                            )));
                        }
                    }
                    // The dealer always talks to the parties (its own channel has n + 1
                    // endpoints); a party uses the dealer when it joined in time.
                    is_dealer || joined_in_time
                }
            };
            (Link::Relay(transport), "the relay")
        }
        Mode::Direct { urls, server_tls } => {
            let total = urls.len();
            with_dealer = total == n + 1;
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
                    progress.waiting(&format!(
                        "session '{session}': {up}/{total} up (parties and dealer)"
                    ))
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

    let endpoints = if with_dealer { n + 1 } else { n };
    let sealed = if args.no_seal {
        tracing::warn!(
            "messages are not sealed (--no-seal): {carrier} and anyone on the way can read and \
             change every message"
        );
        Sealed::plain(link, role.me, n)
    } else {
        progress.waiting("agreeing on keys with the other participants");
        let params = SealParams {
            session,
            me: role.me,
            peers: endpoints,
            parties: n,
            timeout: role.timeout,
        };
        // On failure the link is dropped, which leaves the session (heartbeats, server stop).
        let established = Sealed::establish(link, &params, plan.secret.as_ref()).await;
        progress.clear();
        let sealed = established.map_err(Failure::protocol)?;
        if !sealed.uses_secret() {
            let active = if carrier == "the relay" {
                "an active relay"
            } else {
                "an active attacker on the network"
            };
            tracing::warn!(
                "messages are encrypted end to end with keys agreed through {carrier}: a passive \
                 observer learns nothing, but {active} could still interpose itself; to prevent \
                 that, give every participant the same secret with --secret-file FILE or \
                 {SECRET_ENV}"
            );
        }
        sealed
    };
    Ok((
        Framed::new(sealed, role.me, endpoints, n, role.timeout),
        with_dealer,
    ))
}

/// Leaves the session (stops heartbeats; in direct mode, this endpoint's server).
pub async fn leave(ch: &SessionChannel) {
    ch.transport().inner().leave().await;
}
