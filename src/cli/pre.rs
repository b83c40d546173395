//! `mpc pre`: the trusted dealer. Joins a session on the relay, waits for the parties, deals
//! their correlated randomness and exits.

use std::time::{Duration, Instant};

use crate::channel::Channel;
use crate::engine::PartyConfig;
use crate::engine::preprocess::dealer::run_dealer;
use crate::progress::StderrProgress;

use super::Failure;
use super::connect::{self, ConnectArgs, Role};

/// Arguments of `mpc pre`.
#[derive(clap::Args, Debug)]
pub struct PreArgs {
    /// How to reach the parties: a relay URL, or --peers for direct mode (the dealer's URL
    /// is the last entry); TLS; sealing.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Session name (shared by all parties of one computation).
    #[arg(long)]
    pub session: String,
    /// Number of computing parties.
    #[arg(long)]
    pub parties: usize,
    /// How long to wait for the parties and for each message, in seconds.
    #[arg(long, default_value = "300", value_parser = super::units::duration)]
    pub timeout: Duration,
    /// No progress output on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs the dealer.
pub async fn run(args: PreArgs) -> Result<(), Failure> {
    PartyConfig::check_party_count(args.parties).map_err(|e| {
        if args.parties < 2 {
            Failure::usage(format!(
                "--parties must be at least 2, not {}",
                args.parties
            ))
        } else {
            Failure::usage(e)
        }
    })?;
    let n = args.parties;
    let progress = StderrProgress::new("dealer", args.quiet);
    let role = Role::dealer(n, &args.session, args.timeout);
    let ch = connect::connect(&args.connect, &role, &progress).await?;
    let started = Instant::now();
    let result = run_dealer(&ch, n, &progress).await;
    progress.clear();
    match result {
        Ok(summary) => {
            progress.note(&format!(
                "dealt {} AND triples and {} input bits to {} parties ({}) in {:.3} s",
                summary.ands,
                summary.inputs,
                summary.parties,
                indicatif::HumanBytes(summary.bytes_sent),
                started.elapsed().as_secs_f64()
            ));
            connect::leave(&ch).await;
            Ok(())
        }
        Err(e) => {
            ch.abort(&format!("the dealer stopped: {}", e.notice()))
                .await;
            connect::leave(&ch).await;
            Err(Failure::protocol(e))
        }
    }
}
