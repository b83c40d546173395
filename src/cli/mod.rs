//! The command line: one file per subcommand. Each subcommand returns a [`Failure`] that
//! carries the exit code a script sees.

pub mod cert;
pub mod check;
pub mod connect;
pub mod constants;
pub mod heap;
pub mod inputs;
pub mod keygen;
pub mod logging;
pub mod party;
pub mod pre;
pub mod run;
pub mod serve;
pub mod units;

use std::fmt;

/// Exit codes, as README.md documents them.
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// Protocol or communication failure, including detected cheating.
    pub const PROTOCOL: i32 = 1;
    /// Usage, program or input error.
    pub const USAGE: i32 = 2;
    /// The program panicked (overflow, division by zero, out-of-bounds access).
    pub const PANIC: i32 = 70;
}

/// A failed command: what to print on stderr and the exit code.
pub struct Failure {
    /// Exit code (see [`exit`]).
    pub code: i32,
    /// The message, printed as `error: ...` (already formatted; may span lines).
    pub message: String,
}

impl Failure {
    /// A usage, program or input error (exit 2).
    pub fn usage(message: impl fmt::Display) -> Self {
        Self {
            code: exit::USAGE,
            message: message.to_string(),
        }
    }

    /// A protocol or communication failure (exit 1).
    pub fn protocol(message: impl fmt::Display) -> Self {
        Self {
            code: exit::PROTOCOL,
            message: message.to_string(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::protocol(describe_chain(e.chain()))
    }
}

/// An error and its causes on one line, each cause once: many errors already print their
/// source in their own message, and repeating it ("cannot listen on ...: Address already in
/// use: Address already in use") only makes the line harder to read.
pub fn describe_chain<'a>(
    chain: impl Iterator<Item = &'a (dyn std::error::Error + 'static)>,
) -> String {
    let mut line = String::new();
    for cause in chain {
        let text = cause.to_string();
        if line.is_empty() {
            line = text;
        } else if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

/// Output format of results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The result alone, as a Garble literal.
    Text,
    /// One JSON object: `result` (Garble's JSON value), `text`, `party`, `stats`,
    /// `bytes_sent_per_party`.
    Json,
}

/// Peak resident set size of this process (Linux: VmHWM in /proc/self/status), for stats.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use");
        let e = anyhow::Error::new(io)
            .context("cannot listen on 127.0.0.1:8000: Address already in use")
            .context("the relay stopped");
        assert_eq!(
            Failure::from(e).message,
            "the relay stopped: cannot listen on 127.0.0.1:8000: Address already in use"
        );
        let e = anyhow::anyhow!("connection refused").context("cannot reach the relay");
        assert_eq!(
            Failure::from(e).message,
            "cannot reach the relay: connection refused"
        );
    }
}
