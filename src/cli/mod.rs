//! The command line: one file per subcommand. Each subcommand returns a [`Failure`] that
//! carries the exit code a script sees.

pub mod check;
pub mod connect;
pub mod keygen;
pub mod party;
pub mod pre;
pub mod run;
pub mod serve;

use std::fmt;
use std::time::Duration;

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
        Failure::protocol(format!("{e:#}"))
    }
}

/// The longest duration a flag accepts, in seconds: far beyond any session, and small
/// enough that adding it to the current time cannot overflow.
const MAX_SECS: f64 = 1e9;

/// Parses a duration in seconds for `--timeout`.
pub fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("'{s}' must be a positive number of seconds"));
    }
    if secs > MAX_SECS {
        return Err(format!(
            "'{s}' is too long: at most {MAX_SECS} seconds (about 31 years)"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Output format of results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The result alone, as a Garble literal.
    Text,
    /// `{"result": ..., "party": ..., "stats": ...}`.
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
    fn durations_are_bounded() {
        assert_eq!(parse_secs("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_secs("1e9"), Ok(Duration::from_secs(1_000_000_000)));
        for bad in ["0", "-1", "nan", "inf", "soon"] {
            assert!(parse_secs(bad).is_err(), "{bad}");
        }
        let err = parse_secs("1e20").unwrap_err();
        assert!(err.contains("too long"), "{err}");
    }
}
