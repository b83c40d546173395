//! The relay server behind `mpc serve`: routes opaque messages between the parties of many
//! named sessions, so that parties behind NAT or firewalls only need to reach one address.
//!
//! Built directly on hyper 1 and hyper-util (HTTP/1.1 and HTTP/2 on the same port). The
//! module is split into:
//! - [`routes`]: request parsing and the HTTP routes (see the design document); the only
//!   place that picks a status code;
//! - [`sessions`]: seats, tokens and refusals every store shares;
//! - [`store`]: where sessions live (this process, or Redis);
//! - [`budget`], [`metrics`]: the memory budget and the `/metrics` counters;
//! - this file: configuration, binding, expiry and shutdown. The accept loop, TLS and body
//!   handling are the shared plumbing of [`crate::net`].
//!
//! Every session has its own (std) mutex, held only for short, non-async critical sections;
//! waiting receivers are woken through a [`tokio::sync::Notify`] per ordered pair.

pub(crate) mod budget;
pub(crate) mod metrics;
mod refusal;
pub(crate) mod routes;
pub mod sessions;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::Request;
use hyper::body::Incoming;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::net::connections::{self, ConnectionLimits, Connections};
use crate::net::server::serve_http_with;
use crate::net::tls::{self, ServerTlsFiles, TlsError};
use budget::Budget;
use metrics::Metrics;
use sessions::TokenDigest;
use store::{AnyStore, Store, StoreContext, StoreKind, StoreLimits};

/// Settings of the relay; every limit is in bytes and answered with a clear status when hit.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// A session with no request for this long is removed with all its messages.
    pub session_ttl: Duration,
    /// Largest message body accepted (larger: 413).
    pub max_message: usize,
    /// Most bytes queued from one seat to another (beyond: 429, the sender retries).
    pub max_queue: usize,
    /// Most bytes queued in one session (beyond: 429).
    pub max_session: usize,
    /// Most bytes the relay holds overall, including bookkeeping (beyond: 429).
    pub max_total: usize,
    /// A seat that joined with a client id and has not been heard from for this long is
    /// reported lost (410) to whoever waits for a message from it.
    pub lost_after: Duration,
    /// A connection with no request in progress for this long is closed.
    pub idle_timeout: Duration,
    /// Most connections open at once (also kept under the open-file limit); beyond it the
    /// longest-idle connection is closed to make room.
    pub max_connections: usize,
    /// A message body that delivers no data for this long is dropped (408) with its charge.
    pub body_timeout: Duration,
    /// Where sessions are kept: in this process (default) or in Redis.
    pub store: StoreKind,
    /// The operator's token: lists sessions and deletes any session (`None`: nobody can).
    pub admin_token: Option<String>,
    /// Serve HTTPS with this certificate and key (and, optionally, demand client
    /// certificates from a CA); `None` serves plain HTTP.
    pub tls: Option<ServerTlsFiles>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            session_ttl: Duration::from_secs(600),
            max_message: 16 << 20,
            max_queue: 256 << 20,
            max_session: 1 << 30,
            max_total: 4 << 30,
            lost_after: Duration::from_secs(5),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            store: StoreKind::Memory,
            admin_token: None,
            tls: None,
        }
    }
}

impl RelayConfig {
    /// Checks that the limits are usable together.
    pub fn validate(&self) -> Result<(), RelayError> {
        let bad = |why: String| Err(RelayError::Config(why));
        if self.max_message == 0 {
            return bad("the message size limit must be at least 1 byte".into());
        }
        if self.max_queue < self.max_message {
            return bad(format!(
                "the queue limit ({} bytes) is smaller than the message limit ({} bytes)",
                self.max_queue, self.max_message
            ));
        }
        if self.max_session < self.max_queue {
            return bad(format!(
                "the session limit ({} bytes) is smaller than the queue limit ({} bytes)",
                self.max_session, self.max_queue
            ));
        }
        if self.max_total < self.max_session {
            return bad(format!(
                "the total limit ({} bytes) is smaller than the session limit ({} bytes)",
                self.max_total, self.max_session
            ));
        }
        if self.session_ttl.is_zero() {
            return bad("the session time-to-live must be positive".into());
        }
        if self.idle_timeout.is_zero() {
            return bad("the idle connection timeout must be positive".into());
        }
        if self.max_connections == 0 {
            return bad("the connection limit must be at least 1".into());
        }
        if self.body_timeout.is_zero() {
            return bad("the body timeout must be positive".into());
        }
        if self.lost_after.is_zero() {
            return bad("the lost-peer delay must be positive".into());
        }
        if let Some(token) = &self.admin_token
            && (token.len() < 16
                || token.len() > 128
                || !token.bytes().all(|b| b.is_ascii_graphic()))
        {
            return bad("the admin token must be 16 to 128 visible ASCII characters".into());
        }
        Ok(())
    }
}

/// Why the relay could not start or keep running.
#[derive(Debug, Error)]
pub enum RelayError {
    /// The configuration is inconsistent.
    #[error("invalid relay configuration: {0}")]
    Config(String),
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address we tried.
        addr: SocketAddr,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The TLS certificate, key or client CA cannot be used.
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] TlsError),
    /// The session store cannot be opened (e.g. Redis is unreachable).
    #[error("cannot open the session store: {0}")]
    Store(String),
}

/// Everything the routes of a running relay share.
pub struct RelayState {
    /// The configuration.
    pub config: RelayConfig,
    /// Where the sessions live.
    pub store: AnyStore,
    /// The memory budget (`--max-total`).
    pub budget: Arc<Budget>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The open connections.
    pub connections: Arc<Connections>,
    /// The digest of the admin token, if one is configured.
    pub admin: Option<TokenDigest>,
}

/// A relay bound to its listening socket, ready to [`run`](Relay::run).
pub struct Relay {
    listener: TcpListener,
    addr: SocketAddr,
    state: Arc<RelayState>,
    tls: Option<TlsAcceptor>,
}

/// Binds a relay to `config.listen` (port 0 picks a free port; see [`Relay::local_addr`]).
pub async fn bind(config: RelayConfig) -> Result<Relay, RelayError> {
    Relay::bind(config).await
}

/// Runs a relay on `config.listen` until `shutdown` completes.
pub async fn serve(
    config: RelayConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RelayError> {
    bind(config).await?.run(shutdown).await
}

impl Relay {
    /// Validates `config` and opens the listening socket.
    pub async fn bind(config: RelayConfig) -> Result<Relay, RelayError> {
        config.validate()?;
        // Every rustls user in the process (this server, reqwest clients) shares one provider.
        tls::install_crypto_provider();
        let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| RelayError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| RelayError::Bind {
            addr: config.listen,
            source,
        })?;
        let connections = Connections::new(ConnectionLimits {
            idle_timeout: config.idle_timeout,
            max_connections: connections::fit_to_fd_limit(config.max_connections),
        });
        let budget = Budget::new(config.max_total);
        let metrics = Arc::new(Metrics::default());
        let context = StoreContext {
            limits: StoreLimits {
                max_queue: config.max_queue,
                max_session: config.max_session,
                session_ttl: config.session_ttl,
                lost_after: config.lost_after,
            },
            budget: budget.clone(),
            metrics: metrics.clone(),
        };
        let store = AnyStore::open(&config.store, context)
            .await
            .map_err(RelayError::Store)?;
        let admin = config.admin_token.as_deref().map(TokenDigest::of);
        Ok(Relay {
            listener,
            addr,
            state: Arc::new(RelayState {
                config,
                store,
                budget,
                metrics,
                connections,
                admin,
            }),
            tls,
        })
    }

    /// The address actually bound (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The most connections served at once (the configured cap, lowered to fit the
    /// process's open-file limit).
    pub fn max_connections(&self) -> usize {
        self.state.connections.limits().max_connections
    }

    /// Where the sessions live, for the start-up line.
    pub fn store_description(&self) -> String {
        self.state.store.describe()
    }

    /// The instance id the relay reports (`x-mpc-relay`, `/health`).
    pub fn instance(&self) -> &str {
        self.state.store.instance()
    }

    /// The URL clients use: `https://ADDR` with TLS, `http://ADDR` without.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Serves connections until `shutdown` completes, then lets open connections finish
    /// their current requests for a short grace period and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), RelayError> {
        let Relay {
            listener,
            addr,
            state,
            tls,
        } = self;
        tracing::debug!(%addr, tls = tls.is_some(), "relay accepting connections");
        let expiry = tokio::spawn(expire_sessions(state.clone()));
        let handler = {
            let state = state.clone();
            move |req: Request<Incoming>| {
                let state = state.clone();
                async move { routes::handle(&state, req).await }
            }
        };
        let connections = state.connections.clone();
        let stopping = state.clone();
        serve_http_with(connections, listener, tls, handler, shutdown, move || {
            tracing::info!("relay shutting down");
            expiry.abort();
            // Wake waiting receives, so they answer before the connections drain.
            tokio::spawn(async move { stopping.store.shut_down().await });
        })
        .await;
        Ok(())
    }
}

/// Removes idle sessions periodically.
async fn expire_sessions(state: Arc<RelayState>) {
    let ttl = state.config.session_ttl;
    let period = (ttl / 4).clamp(Duration::from_millis(50), Duration::from_secs(10));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        state.store.expire_idle().await;
    }
}
