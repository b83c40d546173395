//! `mpc run`: every party (and the dealer) in one process over the in-memory channel: the
//! quickest way to try a program, and a cross-check against plaintext evaluation.

use std::path::PathBuf;
use std::time::Instant;

use crate::engine::Stats;
use crate::local::{LocalOptions, run_local, run_local_streamed};
use crate::program::STREAM_FROM_INSTRUCTIONS;

use super::inputs::InputSource;
use super::party::{Report, check_flags};
use super::{Failure, Format};

/// Arguments of `mpc run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The program: Garble source or a Bristol Fashion circuit.
    pub program: PathBuf,
    /// A party's input literal; give one per party, in party order (mixed freely with
    /// --input-file: their order on the command line is the party order).
    #[arg(long = "input", value_name = "LIT")]
    pub inputs: Vec<String>,
    /// A party's input, read from FILE (`-`: standard input, for one party).
    #[arg(long = "input-file", value_name = "FILE")]
    pub input_files: Vec<PathBuf>,
    /// Every party's input in party order, filled in from the command line's order by the
    /// caller (see [`super::inputs::in_command_line_order`]).
    #[arg(skip)]
    pub ordered_inputs: Vec<InputSource>,
    /// A party constant, PARTY_<i>::NAME=VALUE (repeat for several).
    #[arg(long = "const", value_name = "PARTY_i::NAME=VALUE", value_parser = super::inputs::parse_const)]
    pub consts: Vec<(String, String)>,
    /// The parties that learn the result, e.g. `0,2` (default: every party); the result
    /// printed is theirs.
    #[arg(long, value_delimiter = ',', value_name = "PARTIES")]
    pub outputs: Vec<usize>,
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
    let (program, _) = super::constants::load_with_all(
        &args.program,
        &args.consts,
        Some(STREAM_FROM_INSTRUCTIONS),
    )?;
    let n = program.parties();
    let sources = if args.ordered_inputs.is_empty() {
        args.inputs
            .iter()
            .cloned()
            .map(InputSource::Literal)
            .chain(args.input_files.iter().cloned().map(InputSource::File))
            .collect()
    } else {
        args.ordered_inputs.clone()
    };
    if sources.len() != n {
        return Err(Failure::usage(format!(
            "{} takes inputs from {n} parties, but {} were given (--input or --input-file, one per party)",
            args.program.display(),
            sources.len()
        )));
    }
    let outputs = check_flags(
        &args.program,
        n,
        None,
        args.evaluator,
        &args.outputs,
        args.chunk_ands,
    )?;
    let mut inputs = Vec::with_capacity(n);
    for (p, source) in sources.iter().enumerate() {
        let literal = source.read()?;
        inputs.push(program.parse_input(p, &literal).map_err(Failure::usage)?);
    }
    let opts = LocalOptions {
        evaluator: args.evaluator,
        chunk_ands: args.chunk_ands,
        source: if args.no_dealer {
            crate::engine::preprocess::SourceKind::Ot
        } else {
            crate::engine::preprocess::SourceKind::Dealer
        },
        outputs: Some(outputs.clone()),
        ..LocalOptions::default()
    };
    let started = Instant::now();
    let outcomes = if program.is_streamed() {
        let shape = program.shape();
        let open = || program.open_instructions();
        run_local_streamed(&shape, &open, program.hash(), &inputs, &opts).await
    } else {
        run_local(program.circuit(), program.hash(), &inputs, &opts).await
    }
    .map_err(Failure::protocol)?;
    let elapsed = started.elapsed();
    let learned: Vec<&Vec<bool>> = outcomes.iter().filter_map(|o| o.output.as_ref()).collect();
    let (Some(first), true) = (learned.first(), learned.len() == outputs.len()) else {
        return Err(Failure::protocol(
            "the output parties did not all learn the result (this is a bug in mpc, please report it)",
        ));
    };
    if learned.iter().any(|o| o != first) {
        return Err(Failure::protocol(
            "the parties computed different outputs (this is a bug in mpc, please report it)",
        ));
    }
    let mut stats: Stats = outcomes[0].stats.clone();
    stats.bytes_sent = outcomes.iter().map(|o| o.stats.bytes_sent).sum();
    stats.record("total", elapsed);
    stats.peak_rss_bytes = super::peak_rss_bytes();
    Report {
        outcome: program.format_output(first).map_err(Failure::protocol)?,
        json: program.result_json(first),
        party: None,
        stats,
        bytes_sent_per_party: Some(outcomes.iter().map(|o| o.stats.bytes_sent).collect()),
    }
    .print(args.format)
}
