//! `mpc party`: one computing party. Compiles the program (after swapping party constants
//! with the others, when it has some), joins the session, runs the protocol with the others
//! and prints the result alone on stdout (output parties only).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::channel::Channel;
use crate::engine::preprocess::SourceKind;
use crate::engine::protocol::DEFAULT_CHUNK_ANDS;
use crate::engine::{ConfigError, PartyConfig, run_party, run_party_streamed};
use crate::program::{DeclaredConstants, LoadOptions, Outcome, Program, STREAM_FROM_INSTRUCTIONS};
use crate::progress::StderrProgress;

use super::connect::{self, ConnectArgs, Role};
use super::{Failure, Format, exit};

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
    /// for a Bristol circuit. Visible to other users in `ps`: prefer --input-file for a
    /// private input.
    #[arg(
        long,
        required_unless_present = "input_file",
        conflicts_with = "input_file"
    )]
    pub input: Option<String>,
    /// Read this party's input from FILE (`-`: standard input), so that it shows neither in
    /// `ps` nor in the shell's history.
    #[arg(long, value_name = "FILE")]
    pub input_file: Option<PathBuf>,
    /// Set this party's Garble constant PARTY_<i>::NAME (the program declares it, e.g.
    /// `const ROWS: usize = PARTY_0::ROWS;`); repeat for several. The parties swap their
    /// constants before compiling.
    #[arg(long = "const", value_name = "NAME=VALUE", value_parser = super::inputs::parse_const)]
    pub consts: Vec<(String, String)>,
    /// The parties that learn the result, e.g. `0,2` (default: every party). The others
    /// print nothing on stdout and exit 0 once the output parties have the result. All
    /// parties must give the same list.
    #[arg(long, value_delimiter = ',', value_name = "PARTIES")]
    pub outputs: Vec<usize>,
    /// The evaluating party (all parties must agree).
    #[arg(long, default_value_t = 0)]
    pub evaluator: usize,
    /// How long to wait for the other parties and for each message, in seconds.
    #[arg(long, default_value = "300", value_parser = super::units::duration)]
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
    let literal = match (&args.input, &args.input_file) {
        (Some(text), _) => text.clone(),
        (None, Some(path)) => super::inputs::read_input_file(path)?,
        (None, None) => return Err(Failure::usage("give --input or --input-file")),
    };
    let declared = DeclaredConstants::of(&args.program).map_err(Failure::usage)?;
    match declared {
        None => {
            if let Some((name, _)) = args.consts.first() {
                return Err(Failure::usage(format!(
                    "--const {name}: {} declares no party constants",
                    args.program.display()
                )));
            }
            let opts = LoadOptions {
                stream_from: Some(STREAM_FROM_INSTRUCTIONS),
                ..LoadOptions::default()
            };
            let loaded = Program::load_with(&args.program, &opts).map_err(Failure::usage)?;
            let n = loaded.0.parties();
            check_indices(&args, n)?;
            // A typo in the input is found before anyone waits for this party.
            loaded
                .0
                .parse_input(args.party, &literal)
                .map_err(Failure::usage)?;
            let ch = join(&args, n, &progress).await?;
            compute(&args, &ch, loaded, &literal, &progress).await
        }
        Some(declared) => {
            let n = declared.parties();
            check_indices(&args, n)?;
            let mine = super::constants::own(&declared, args.party, &args.consts)?;
            let ch = join(&args, n, &progress).await?;
            let all = match super::constants::exchange(&ch, args.party, &declared, mine).await {
                Ok(all) => all,
                Err(failure) => {
                    ch.abort(&format!("party {} stopped: party constants", args.party))
                        .await;
                    connect::leave(&ch).await;
                    return Err(failure);
                }
            };
            let opts = LoadOptions {
                constants: Some((&declared, &all)),
                stream_from: Some(STREAM_FROM_INSTRUCTIONS),
                ..LoadOptions::default()
            };
            let loaded = match Program::load_with(&args.program, &opts) {
                Ok(loaded) => loaded,
                Err(e) => {
                    ch.abort(&format!("party {} stopped: cannot compile", args.party))
                        .await;
                    connect::leave(&ch).await;
                    return Err(Failure::usage(e));
                }
            };
            compute(&args, &ch, loaded, &literal, &progress).await
        }
    }
}

/// Checks --party, --evaluator, --outputs and --chunk-ands against the party count.
fn check_indices(args: &PartyArgs, n: usize) -> Result<(), Failure> {
    check_flags(
        &args.program,
        n,
        Some(args.party),
        args.evaluator,
        &args.outputs,
        args.chunk_ands,
    )
    .map(drop)
}

/// The engine's one check of party parameters ([`PartyConfig::check_params`]) on the flags
/// --party (when there is one), --evaluator, --outputs and --chunk-ands, a refusal worded
/// after the flag; returns the sorted output parties (empty --outputs: every party).
pub(crate) fn check_flags(
    program: &Path,
    n: usize,
    party: Option<usize>,
    evaluator: usize,
    outputs: &[usize],
    chunk_ands: usize,
) -> Result<Vec<usize>, Failure> {
    PartyConfig::check_params(n, party, evaluator, outputs, chunk_ands).map_err(|e| match e {
        ConfigError::Party { party, .. } => Failure::usage(format!(
            "--party {party} does not exist: {} takes inputs from {n} parties (0..{})",
            program.display(),
            n - 1
        )),
        ConfigError::Evaluator { evaluator, .. } => Failure::usage(format!(
            "--evaluator {evaluator} does not exist in a session of {n} parties"
        )),
        ConfigError::OutputParty { party, .. } => Failure::usage(format!(
            "--outputs names party {party}, which does not exist in a session of {n} parties"
        )),
        ConfigError::ChunkAnds => Failure::usage("--chunk-ands must be at least 1"),
        // The program's party count, refused as the engine would refuse it.
        ConfigError::PartyCount { .. } | ConfigError::Outputs { .. } => Failure::protocol(e),
    })
}

/// Joins the session as party `args.party` of `n`.
async fn join(
    args: &PartyArgs,
    n: usize,
    progress: &StderrProgress,
) -> Result<connect::SessionChannel, Failure> {
    let role = Role::party(args.party, n, &args.session, args.timeout, args.dealer);
    connect::connect(&args.connect, &role, progress).await
}

/// Runs the protocol on a compiled program and prints the result.
async fn compute(
    args: &PartyArgs,
    ch: &connect::SessionChannel,
    (program, report): (Program, crate::program::LoadReport),
    literal: &str,
    progress: &StderrProgress,
) -> Result<(), Failure> {
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
    let input = match program.parse_input(args.party, literal) {
        Ok(input) => input,
        Err(e) => {
            ch.abort(&format!("party {} stopped: invalid input", args.party))
                .await;
            connect::leave(ch).await;
            return Err(Failure::usage(e));
        }
    };
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
        outputs: check_flags(
            &args.program,
            n,
            Some(args.party),
            args.evaluator,
            &args.outputs,
            args.chunk_ands,
        )?,
    };
    let started = Instant::now();
    let result = if program.is_streamed() {
        match program.instructions() {
            Ok(mut insts) => {
                let shape = program.shape();
                run_party_streamed(ch, &cfg, &shape, &mut insts, &input, progress).await
            }
            Err(e) => {
                ch.abort(&format!(
                    "party {} stopped: cannot read its compiled circuit",
                    args.party
                ))
                .await;
                connect::leave(ch).await;
                return Err(Failure::usage(e));
            }
        }
    } else {
        run_party(ch, &cfg, program.circuit(), &input, progress).await
    };
    progress.clear();
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(e) => {
            ch.abort(&format!("party {} stopped: {}", args.party, e.notice()))
                .await;
            connect::leave(ch).await;
            return Err(Failure::protocol(e));
        }
    };
    connect::leave(ch).await;
    let elapsed = started.elapsed();
    progress.note(&format!(
        "computed {} AND gates in {:.3} s, sent {}",
        outcome.stats.and_gates,
        elapsed.as_secs_f64(),
        indicatif::HumanBytes(outcome.stats.bytes_sent)
    ));
    let Some(bits) = outcome.output else {
        progress.note("the output parties have the result; this party does not learn it");
        return Ok(());
    };
    let mut stats = outcome.stats;
    stats.peak_rss_bytes = super::peak_rss_bytes();
    let result = Report {
        outcome: program.format_output(&bits).map_err(Failure::protocol)?,
        json: program.result_json(&bits),
        party: Some(args.party),
        stats,
        bytes_sent_per_party: None,
    };
    result.print(args.format)
}

/// A result as `mpc party` and `mpc run` print it.
pub struct Report {
    /// The decoded output (or panic).
    pub outcome: Outcome,
    /// The output as Garble's JSON value ([`Program::result_json`]).
    pub json: Option<serde_json::Value>,
    /// The party that computed it (`None` for `mpc run`).
    pub party: Option<usize>,
    /// Figures about the run.
    pub stats: crate::engine::Stats,
    /// Bytes each party sent (`mpc run` knows them all).
    pub bytes_sent_per_party: Option<Vec<u64>>,
}

impl Report {
    /// Prints the result on stdout: the Garble literal alone (`text`), or one JSON object
    /// with the same keys for `run` and `party`: `result` (Garble's JSON value), `text`
    /// (the literal), `party`, `stats` and `bytes_sent_per_party`. A panic goes to stderr
    /// with exit code 70.
    pub fn print(&self, format: Format) -> Result<(), Failure> {
        match &self.outcome {
            Outcome::Value(text) => {
                match format {
                    Format::Text => println!("{text}"),
                    Format::Json => {
                        let json = serde_json::json!({
                            "result": self.json.clone().unwrap_or(serde_json::Value::Null),
                            "text": text,
                            "party": self.party,
                            "stats": self.stats,
                            "bytes_sent_per_party": self.bytes_sent_per_party,
                        });
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
}
