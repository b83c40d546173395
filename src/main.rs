//! The `mpc` binary: argument parsing and dispatch only.

use clap::{Parser, Subcommand};
use mpc::cli::{self, Failure};

/// Secure multi-party computation of Garble programs over HTTP.
#[derive(Parser, Debug)]
#[command(name = "mpc", version, about, long_about = None)]
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

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                cli::exit::USAGE
            } else {
                cli::exit::OK
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    // --quiet silences progress and warnings alike; errors still reach stderr.
    let default_filter = if cli.command.quiet() { "error" } else { "info" };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MPC_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(cli::exit::PROTOCOL);
        }
    };
    let result: Result<(), Failure> = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => cli::serve::run(args).await.map_err(Failure::from),
            Command::Pre(args) => cli::pre::run(args).await,
            Command::Party(args) => cli::party::run(args).await,
            Command::Check(args) => cli::check::run(args).map_err(Failure::usage),
            Command::Keygen(args) => cli::keygen::run(args),
            Command::Run(args) => cli::run::run(args).await,
        }
    });
    // Pending background tasks (heartbeats, abort notices) must not delay the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(()) => std::process::exit(cli::exit::OK),
        Err(f) => {
            if f.code == cli::exit::PANIC {
                eprintln!("{}", f.message);
            } else {
                eprintln!("error: {}", f.message);
            }
            std::process::exit(f.code);
        }
    }
}
