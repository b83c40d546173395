//! Log lines on stderr: one plain line per event (`warning: ...`), like the progress lines
//! around them, and `MPC_LOG` aimed at mpc's own code.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Starts logging to stderr. `MPC_LOG` takes tracing's filter syntax; a bare level
/// (`MPC_LOG=debug`) applies to mpc alone and leaves its dependencies at `warn`, so the lines
/// a user asked for are not buried under theirs.
pub fn init(quiet: bool) {
    let default_level = if quiet { "error" } else { "info" };
    let filter = std::env::var("MPC_LOG")
        .ok()
        .and_then(|spec| EnvFilter::try_new(filter_spec(&spec)).ok())
        .unwrap_or_else(|| EnvFilter::new(filter_spec(default_level)));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(filter)
        .event_format(PlainLine)
        .init();
}

/// Turns a bare level into a filter for mpc's targets; passes any other spec through.
fn filter_spec(spec: &str) -> String {
    let spec = spec.trim();
    let is_level = matches!(
        spec.to_ascii_lowercase().as_str(),
        "trace" | "debug" | "info" | "warn" | "error" | "off"
    );
    if is_level {
        format!("warn,mpc={spec}")
    } else {
        spec.to_string()
    }
}

/// `warning: message (key=value ...)`: no timestamp, no ANSI, one line. Debug and trace
/// lines name their module, since they are read by someone looking for where it happened.
struct PlainLine;

impl<S, N> FormatEvent<S, N> for PlainLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let level = *meta.level();
        let word = match level {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        write!(writer, "{word}: ")?;
        if level >= Level::DEBUG {
            write!(writer, "[{}] ", meta.target())?;
        }
        ctx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_level_is_for_mpc_alone() {
        assert_eq!(filter_spec("debug"), "warn,mpc=debug");
        assert_eq!(filter_spec("DEBUG"), "warn,mpc=DEBUG");
        assert_eq!(filter_spec("hyper=trace,mpc=info"), "hyper=trace,mpc=info");
    }
}
