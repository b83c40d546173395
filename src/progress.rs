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
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix}: {msg:<24} [{bar:30}] {human_pos}/{human_len} ({per_sec}, {elapsed})",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
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
