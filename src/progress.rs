//! Progress on stderr: an indicatif bar per phase when stderr is a terminal, plain log lines
//! otherwise (so that scripts and CI logs stay readable). Never touches stdout.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::Progress;

/// Reports the phases of one role (party, dealer) on stderr.
pub struct StderrProgress {
    who: String,
    quiet: bool,
    bars: bool,
    current: Mutex<Option<Current>>,
}

struct Current {
    name: String,
    started: Instant,
    bar: Option<ProgressBar>,
}

impl StderrProgress {
    /// Progress for `who` ("party 1", "dealer"); `quiet` silences it entirely.
    pub fn new(who: &str, quiet: bool) -> Self {
        Self {
            who: who.to_string(),
            quiet,
            bars: std::io::stderr().is_terminal(),
            current: Mutex::new(None),
        }
    }

    /// Prints one informational line (unless quiet), above any bar.
    pub fn note(&self, line: &str) {
        if self.quiet {
            return;
        }
        let current = self.current.lock().ok();
        match current
            .as_ref()
            .and_then(|c| c.as_ref())
            .and_then(|c| c.bar.as_ref())
        {
            Some(bar) => bar.println(format!("{}: {line}", self.who)),
            None => eprint_line(&format!("{}: {line}", self.who)),
        }
    }

    /// A spinner message for waiting (joining, waiting for peers).
    pub fn waiting(&self, message: &str) {
        if self.quiet {
            return;
        }
        if let Ok(mut current) = self.current.lock() {
            if let Some(bar) = current.as_ref().and_then(|c| c.bar.as_ref()) {
                bar.set_message(message.to_string());
                return;
            }
            if self.bars {
                let bar = ProgressBar::new_spinner();
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {prefix}: {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(self.who.clone());
                bar.set_message(message.to_string());
                bar.enable_steady_tick(Duration::from_millis(100));
                *current = Some(Current {
                    name: "waiting".into(),
                    started: Instant::now(),
                    bar: Some(bar),
                });
            } else {
                eprint_line(&format!("{}: {message}", self.who));
            }
        }
    }

    /// Ends the current phase; `completed` says whether it finished (a phase interrupted
    /// by an error must not be reported as done).
    fn close(&self, current: &mut Option<Current>, completed: bool) {
        if let Some(c) = current.take() {
            if let Some(bar) = c.bar {
                bar.finish_and_clear();
            }
            if completed && !self.bars && c.name != "waiting" {
                eprint_line(&format!(
                    "{}: {} done in {:.3} s",
                    self.who,
                    c.name,
                    c.started.elapsed().as_secs_f64()
                ));
            }
        }
    }

    /// Clears any bar left on screen (before printing an error or the result) without
    /// reporting the phase as done.
    pub fn clear(&self) {
        if let Ok(mut current) = self.current.lock() {
            self.close(&mut current, false);
        }
    }
}

/// The style of a phase with a known amount of work. At most 79 columns with a party
/// prefix of up to 9 characters ("party 255"), a message of up to 22 and a rate of up to 11
/// ("99999999/s"): 9 + 2 + 22 + 2 + 20 + 2 + 4 + 1 + 11 + 1 + 5 = 79. The rate is a whole
/// number of units per second.
fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix}: {msg:<22.22} [{bar:20}] {percent:>3}% {rate:>11} {elapsed:>5}",
    )
    .map(|style| {
        style.with_key(
            "rate",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0}/s", state.per_sec().max(0.0));
            },
        )
    })
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

impl Progress for StderrProgress {
    fn phase(&self, name: &str, total: u64) {
        if self.quiet {
            return;
        }
        let Ok(mut current) = self.current.lock() else {
            return;
        };
        self.close(&mut current, true);
        let bar = if self.bars {
            let bar = if total > 0 {
                let bar = ProgressBar::new(total);
                bar.set_style(bar_style());
                bar
            } else {
                let bar = ProgressBar::new_spinner();
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {prefix}: {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.enable_steady_tick(Duration::from_millis(100));
                bar
            };
            bar.set_prefix(self.who.clone());
            bar.set_message(name.to_string());
            Some(bar)
        } else {
            if total > 0 {
                eprint_line(&format!("{}: {name} ({total} units)", self.who));
            } else {
                eprint_line(&format!("{}: {name}", self.who));
            }
            None
        };
        *current = Some(Current {
            name: name.to_string(),
            started: Instant::now(),
            bar,
        });
    }

    fn detail(&self, what: &str) {
        if let Ok(current) = self.current.lock()
            && let Some(c) = current.as_ref()
        {
            match &c.bar {
                Some(bar) if what.is_empty() => bar.set_message(c.name.clone()),
                Some(bar) => bar.set_message(what.to_string()),
                // Plain logs get one line per phase, not one per batch.
                None => {}
            }
        }
    }

    fn advance(&self, delta: u64) {
        if let Ok(current) = self.current.lock()
            && let Some(bar) = current.as_ref().and_then(|c| c.bar.as_ref())
        {
            bar.inc(delta);
        }
    }

    fn finish(&self) {
        if let Ok(mut current) = self.current.lock() {
            self.close(&mut current, true);
        }
    }
}

/// Writes one line to stderr in a single write, so that the lines of processes sharing a
/// terminal or a log file never interleave mid-line (`eprintln!` writes a line in pieces).
pub fn eprint_line(line: &str) {
    use std::io::Write as _;
    let mut buf = String::with_capacity(line.len() + 1);
    buf.push_str(line);
    buf.push('\n');
    let _ = std::io::stderr().lock().write_all(buf.as_bytes());
}
