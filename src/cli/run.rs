//! `mpc run`: every party (and the dealer) in one process over the in-memory channel: the
//! quickest way to try a program, and a cross-check against plaintext evaluation.

use std::path::PathBuf;
use std::time::Instant;

use crate::engine::Stats;
use crate::local::{LocalOptions, run_local};
use crate::program::Program;

use super::party::print_outcome;
use super::{Failure, Format};

/// Arguments of `mpc run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The program: Garble source or a Bristol Fashion circuit.
    pub program: PathBuf,
    /// One input per party, in party order.
    #[arg(long = "input", required = true)]
    pub inputs: Vec<String>,
    /// The evaluating party.
    #[arg(long, default_value_t = 0)]
    pub evaluator: usize,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Run without a dealer: the parties make their correlated randomness themselves.
    #[arg(long)]
    pub no_dealer: bool,
    /// AND gates per streamed chunk.
    #[arg(long, default_value_t = crate::engine::protocol::DEFAULT_CHUNK_ANDS, hide = true)]
    pub chunk_ands: usize,
}

/// Runs all parties locally.
pub async fn run(args: RunArgs) -> Result<(), Failure> {
    let (program, _) = Program::load_with_cache(&args.program, None).map_err(Failure::usage)?;
    let n = program.parties();
    if args.inputs.len() != n {
        return Err(Failure::usage(format!(
            "{} takes inputs from {n} parties, but {} --input were given",
            args.program.display(),
            args.inputs.len()
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
    let inputs = args
        .inputs
        .iter()
        .enumerate()
        .map(|(p, lit)| program.parse_input(p, lit))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Failure::usage)?;
    let opts = LocalOptions {
        evaluator: args.evaluator,
        chunk_ands: args.chunk_ands,
        source: if args.no_dealer {
            crate::engine::preprocess::SourceKind::Ot
        } else {
            crate::engine::preprocess::SourceKind::Dealer
        },
        ..LocalOptions::default()
    };
    let started = Instant::now();
    let outcomes = run_local(program.circuit(), program.hash(), &inputs, &opts)
        .await
        .map_err(Failure::protocol)?;
    let elapsed = started.elapsed();
    let first = &outcomes[0].output;
    if outcomes.iter().any(|o| &o.output != first) {
        return Err(Failure::protocol(
            "the parties computed different outputs (this is a bug in mpc, please report it)",
        ));
    }
    let mut stats: Stats = outcomes[0].stats.clone();
    stats.bytes_sent = outcomes.iter().map(|o| o.stats.bytes_sent).sum();
    stats.record("total", elapsed);
    stats.peak_rss_bytes = super::peak_rss_bytes();
    let formatted = program.format_output(first).map_err(Failure::protocol)?;
    let per_party = outcomes.iter().map(|o| o.stats.bytes_sent).collect();
    print_outcome(&formatted, args.format, None, &stats, Some(per_party))
}
