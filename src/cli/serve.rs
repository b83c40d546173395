//! `mpc serve`: run the relay that routes messages between the parties of many sessions.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::net::tls::ServerTlsFiles;
use crate::relay::store::StoreKind;
use crate::relay::{self, RelayConfig};

/// Options of `mpc serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SOCKET_ADDRESS", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,

    /// Remove a session after this many seconds without requests.
    #[arg(long, value_name = "DURATION", default_value = "600", value_parser = super::units::duration)]
    pub session_ttl: Duration,

    /// Largest message accepted, in bytes (larger: 413).
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = super::units::size_usize)]
    pub max_message: usize,

    /// Most bytes queued from one party to another (beyond: 429, the sender retries).
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = super::units::size_usize)]
    pub max_queue: usize,

    /// Most bytes queued in one session.
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = super::units::size_usize)]
    pub max_session: usize,

    /// Most bytes the relay holds in total.
    #[arg(long, value_name = "SIZE", default_value = "4GiB", value_parser = super::units::size_usize)]
    pub max_total: usize,

    /// Report a party lost after this many seconds without contact.
    #[arg(long, value_name = "DURATION", default_value = "5", value_parser = super::units::duration)]
    pub lost_after: Duration,

    /// Close a connection that has had no request in progress for this many seconds.
    #[arg(long, value_name = "DURATION", default_value = "60", value_parser = super::units::duration)]
    pub idle_timeout: Duration,

    /// Most connections open at once (lowered to fit the open-file limit); when full, the
    /// connection idle the longest is closed to make room for a new one.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Drop a message body (408) that delivers no data for this many seconds.
    #[arg(long, value_name = "DURATION", default_value = "30", value_parser = super::units::duration)]
    pub body_timeout: Duration,

    /// Where sessions live: `memory` (this process; lost when it stops) or a Redis URL,
    /// redis://HOST:PORT[/DB], shared by every relay given the same URL, so that a relay
    /// can restart, or others serve the same sessions, without losing them.
    #[arg(long, value_name = "memory|redis://HOST:PORT[/DB]", default_value = "memory", value_parser = StoreKind::parse)]
    pub store: StoreKind,

    /// The operator's token (16 to 128 characters; or set MPC_ADMIN_TOKEN): sent as
    /// `authorization: Bearer TOKEN`, it lists sessions (GET /sessions) and deletes any
    /// session. Without it, nobody can list sessions, and only a session's own clients can
    /// delete it.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "MPC_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,

    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key.
    /// Clients then use an https:// URL (and --ca-cert FILE if the CA is private).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Mutual TLS: admit only clients presenting a certificate issued by this CA (PEM);
    /// parties and dealers then give --cert FILE --key FILE. Needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
}

impl ServeArgs {
    /// The relay configuration these options describe.
    pub fn config(&self) -> anyhow::Result<RelayConfig> {
        Ok(RelayConfig {
            listen: self.listen,
            session_ttl: self.session_ttl,
            max_message: self.max_message,
            max_queue: self.max_queue,
            max_session: self.max_session,
            max_total: self.max_total,
            lost_after: self.lost_after,
            body_timeout: self.body_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
            store: self.store.clone(),
            admin_token: self.admin_token.clone(),
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Some(ServerTlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                    client_ca: self.client_ca.clone(),
                }),
                _ => None,
            },
        })
    }
}

/// Serves until Ctrl-C.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let relay = relay::bind(config.clone()).await?;
    let client_auth = if config.tls.as_ref().is_some_and(|t| t.client_ca.is_some()) {
        ", client certificates required"
    } else {
        ""
    };
    crate::progress::eprint_line(&format!(
        "mpc relay {} listening on {} ({}, instance {}, message limit {} bytes, sessions \
         expire after {} s idle, at most {} connections{client_auth})",
        env!("CARGO_PKG_VERSION"),
        relay.url(),
        relay.store_description(),
        relay.instance(),
        config.max_message,
        config.session_ttl.as_secs(),
        relay.max_connections()
    ));
    relay
        .run(async {
            if let Err(err) = tokio::signal::ctrl_c().await {
                tracing::warn!("cannot listen for Ctrl-C ({err}); stop the relay another way");
                std::future::pending::<()>().await;
            }
        })
        .await
        .context("the relay stopped")?;
    crate::progress::eprint_line("mpc relay stopped");
    Ok(())
}
