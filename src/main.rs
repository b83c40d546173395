//! The `mpc` binary: argument parsing and dispatch only.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use mpc::cli::{self, Failure};

/// Secure multi-party computation of Garble programs over HTTP.
#[derive(Parser, Debug)]
#[command(name = "mpc", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the relay that routes messages between the parties of many sessions.
    Serve(cli::serve::ServeArgs),
    /// Run the trusted dealer of a session (optional correlated randomness).
    Pre(cli::pre::PreArgs),
    /// Run one computing party of a session and print the result.
    Party(cli::party::PartyArgs),
    /// Create a participant's key pair: secret key to FILE, public key to FILE.pub and stdout.
    Keygen(cli::keygen::KeygenArgs),
    /// Type-check a program and print its parameters and gate counts.
    Check(cli::check::CheckArgs),
    /// Run all parties of a program in this process (quick try-out).
    Run(cli::run::RunArgs),
    /// Make a private CA and certificates for a TLS relay and its clients.
    Cert(cli::cert::CertArgs),
    /// Print a shell completion script (e.g. `mpc completions bash > /etc/bash_completion.d/mpc`).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

impl Command {
    /// Whether the user asked for silence on stderr.
    fn quiet(&self) -> bool {
        match self {
            Command::Pre(args) => args.quiet,
            Command::Party(args) => args.quiet,
            _ => false,
        }
    }
}

/// Exits for a command line clap refused (usage error, exit 2) or answered (help, version).
fn exit_for(e: clap::Error) -> ! {
    let code = if e.use_stderr() {
        cli::exit::USAGE
    } else {
        cli::exit::OK
    };
    let _ = e.print();
    std::process::exit(code);
}

/// Parses the command line; `mpc run`'s inputs are put in the order they were given.
fn parse() -> Cli {
    let matches = Cli::command()
        .try_get_matches()
        .unwrap_or_else(|e| exit_for(e));
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| exit_for(e));
    if let (Command::Run(args), Some(("run", sub))) = (&mut cli.command, matches.subcommand()) {
        let positions = |id: &str| {
            sub.indices_of(id)
                .map(|i| i.collect::<Vec<_>>())
                .unwrap_or_default()
        };
        match cli::inputs::in_command_line_order(
            &args.inputs,
            &positions("inputs"),
            &args.input_files,
            &positions("input_files"),
        ) {
            Ok(order) => args.ordered_inputs = order,
            Err(f) => {
                mpc::progress::eprint_line(&format!("error: {}", f.message));
                std::process::exit(f.code);
            }
        }
    }
    cli
}

/// Prints the completion script; a reader that stops early (`| head`) is not an error.
fn completions(shell: clap_complete::Shell) -> Result<(), Failure> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "mpc", &mut script);
    match std::io::Write::write_all(&mut std::io::stdout(), &script) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::protocol(format!(
            "cannot write the completion script: {e}"
        ))),
        _ => Ok(()),
    }
}

fn main() {
    let cli = parse();
    // --quiet silences progress and warnings alike; errors still reach stderr.
    cli::logging::init(cli.command.quiet());
    if matches!(
        cli.command,
        Command::Party(_) | Command::Pre(_) | Command::Run(_)
    ) {
        cli::heap::keep_freed_memory();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            mpc::progress::eprint_line(&format!("error: cannot start the async runtime: {e}"));
            std::process::exit(cli::exit::PROTOCOL);
        }
    };
    let result: Result<(), Failure> = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => cli::serve::run(args).await.map_err(Failure::from),
            Command::Pre(args) => cli::pre::run(args).await,
            Command::Party(args) => cli::party::run(args).await,
            Command::Check(args) => cli::check::run(args),
            Command::Keygen(args) => cli::keygen::run(args),
            Command::Run(args) => cli::run::run(args).await,
            Command::Cert(args) => cli::cert::run(args),
            Command::Completions { shell } => completions(shell),
        }
    });
    // Pending background tasks (heartbeats, abort notices) must not delay the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(()) => std::process::exit(cli::exit::OK),
        Err(f) => {
            if f.code == cli::exit::PANIC {
                mpc::progress::eprint_line(&f.message);
            } else {
                mpc::progress::eprint_line(&format!("error: {}", f.message));
            }
            std::process::exit(f.code);
        }
    }
}
