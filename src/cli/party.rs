//! `mpc party`: one computing party. Compiles the program, joins the session, runs the
//! protocol with the others and prints the result alone on stdout.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::channel::Channel;
use crate::engine::preprocess::SourceKind;
use crate::engine::protocol::DEFAULT_CHUNK_ANDS;
use crate::engine::{PartyConfig, run_party};
use crate::program::{Outcome, Program};
use crate::progress::StderrProgress;

use super::connect::{self, ConnectArgs, Role};
use super::{Failure, Format, exit, parse_secs};

/// Arguments of `mpc party`.
#[derive(clap::Args, Debug)]
pub struct PartyArgs {
    /// How to reach the others: a relay URL, or --peers for direct mode; TLS; sealing.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Session name (shared by all parties of one computation).
    #[arg(long)]
    pub session: String,
    /// The program: Garble source (`.garble.rs`) or a Bristol Fashion circuit.
    #[arg(long)]
    pub program: PathBuf,
    /// This party's index (0-based): which parameter of `main` it provides.
    #[arg(long)]
    pub party: usize,
    /// This party's input: a Garble literal of its parameter's type (e.g. `2u32`), or hex
    /// for a Bristol circuit.
    #[arg(long)]
    pub input: String,
    /// The evaluating party (all parties must agree).
    #[arg(long, default_value_t = 0)]
    pub evaluator: usize,
    /// How long to wait for the other parties and for each message, in seconds.
    #[arg(long, default_value = "300", value_parser = parse_secs)]
    pub timeout: Duration,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// AND gates per streamed chunk (memory vs. round trips; all parties must agree).
    #[arg(long, default_value_t = DEFAULT_CHUNK_ANDS, hide = true)]
    pub chunk_ands: usize,
    /// Take the correlated randomness from a trusted dealer (`mpc pre`), waiting for it.
    /// Every party must say so; a dealer can read every input if it also sees the parties'
    /// traffic, so it is used only when asked for, never because one joined.
    #[arg(long, conflicts_with = "no_dealer")]
    pub dealer: bool,
    /// Never use a dealer: the parties make their correlated randomness themselves
    /// (OT-based preprocessing). This is the default; the flag makes it explicit.
    #[arg(long)]
    pub no_dealer: bool,
    /// No progress output on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs one party.
pub async fn run(args: PartyArgs) -> Result<(), Failure> {
    let who = format!("party {}", args.party);
    let progress = StderrProgress::new(&who, args.quiet);
    let (program, report) =
        Program::load_with_cache(&args.program, None).map_err(Failure::usage)?;
    progress.note(&format!(
        "{} {} in {:.3} s",
        if report.from_cache {
            "loaded cached"
        } else {
            "compiled"
        },
        args.program.display(),
        report.elapsed.as_secs_f64()
    ));
    let n = program.parties();
    if args.party >= n {
        return Err(Failure::usage(format!(
            "--party {} does not exist: {} takes inputs from {n} parties (0..{})",
            args.party,
            args.program.display(),
            n - 1
        )));
    }
    if args.evaluator >= n {
        return Err(Failure::usage(format!(
            "--evaluator {} does not exist in a session of {n} parties",
            args.evaluator
        )));
    }
    if args.chunk_ands == 0 {
        return Err(Failure::usage("--chunk-ands must be at least 1"));
    }
    let input = program
        .parse_input(args.party, &args.input)
        .map_err(Failure::usage)?;

    let role = Role::party(args.party, n, &args.session, args.timeout, args.dealer);
    let ch = connect::connect(&args.connect, &role, &progress).await?;
    let source = if args.dealer {
        SourceKind::Dealer
    } else {
        SourceKind::Ot
    };
    progress.note(&format!("correlated randomness from {}", source.describe()));
    let cfg = PartyConfig {
        me: args.party,
        parties: n,
        evaluator: args.evaluator,
        program_hash: program.hash(),
        session_id: crate::engine::session_id(&args.session, ch.transport().roster_hash()),
        source,
        chunk_ands: args.chunk_ands,
    };
    let started = Instant::now();
    let result = run_party(&ch, &cfg, program.circuit(), &input, &progress).await;
    progress.clear();
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(e) => {
            ch.abort(&format!("party {} stopped: {}", args.party, e.notice()))
                .await;
            connect::leave(&ch).await;
            return Err(Failure::protocol(e));
        }
    };
    connect::leave(&ch).await;
    let elapsed = started.elapsed();
    progress.note(&format!(
        "computed {} AND gates in {:.3} s, sent {} bytes",
        outcome.stats.and_gates,
        elapsed.as_secs_f64(),
        outcome.stats.bytes_sent
    ));
    let formatted = program
        .format_output(&outcome.output)
        .map_err(Failure::protocol)?;
    let mut stats = outcome.stats;
    stats.peak_rss_bytes = super::peak_rss_bytes();
    print_outcome(&formatted, args.format, Some(args.party), &stats, None)
}

/// Prints a result on stdout (or a panic on stderr, exiting 70).
pub fn print_outcome(
    outcome: &Outcome,
    format: Format,
    party: Option<usize>,
    stats: &crate::engine::Stats,
    per_party_bytes: Option<Vec<u64>>,
) -> Result<(), Failure> {
    match outcome {
        Outcome::Value(v) => {
            match format {
                Format::Text => println!("{v}"),
                Format::Json => {
                    let mut json =
                        serde_json::json!({ "result": v, "party": party, "stats": stats });
                    if let Some(bytes) = per_party_bytes {
                        json["bytes_sent_per_party"] = serde_json::json!(bytes);
                    }
                    println!("{json}");
                }
            }
            Ok(())
        }
        Outcome::Panic(p) => Err(Failure {
            code: exit::PANIC,
            message: p.trim_end().to_string(),
        }),
    }
}
