//! Durations and sizes on the command line, with or without units: `300` or `5m`, `1048576`
//! or `1MiB`. A bare number keeps its historical meaning (seconds, bytes) so existing scripts
//! keep working.

use std::time::Duration;

/// The longest duration a flag accepts: far beyond any session, and small enough that adding
/// it to the current time can never overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(1_000_000_000);

/// Parses a duration: a positive number of seconds (`300`, `1.5`) or a number with units
/// (`500ms`, `10m`, `1h 30m`, as humantime reads them).
pub fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let parsed = match s.parse::<f64>() {
        Ok(secs) => {
            if !(secs > 0.0 && secs.is_finite()) {
                return Err(format!("'{s}' must be a positive duration"));
            }
            if secs > MAX_DURATION.as_secs_f64() {
                return Err(too_long(s));
            }
            Duration::from_secs_f64(secs)
        }
        Err(_) => humantime::parse_duration(s).map_err(|e| {
            format!("'{s}' is not a duration ({e}); give seconds (300) or units (500ms, 10m, 2h)")
        })?,
    };
    if parsed.is_zero() {
        return Err(format!("'{s}' must be a positive duration"));
    }
    if parsed > MAX_DURATION {
        return Err(too_long(s));
    }
    Ok(parsed)
}

fn too_long(s: &str) -> String {
    format!(
        "'{s}' is too long: at most {} seconds (about 31 years)",
        MAX_DURATION.as_secs()
    )
}

/// Parses a size in bytes: a whole number (`1048576`) or a number with a unit (`64KiB`,
/// `16MiB`, `1.5GB`; binary and decimal units as bytesize reads them, case-insensitive).
pub fn size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Ok(n);
    }
    s.parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| {
            format!("'{s}' is not a size ({e}); give bytes (1048576) or units (64KiB, 16MiB)")
        })
}

/// Like [`size`], as a `usize` (the size of something held in memory).
pub fn size_usize(s: &str) -> Result<usize, String> {
    let n = size(s)?;
    usize::try_from(n).map_err(|_| format!("'{s}' is larger than this machine can address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_seconds_or_units() {
        assert_eq!(duration("300"), Ok(Duration::from_secs(300)));
        assert_eq!(duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(duration("1e9"), Ok(MAX_DURATION));
        for bad in ["0", "-1", "nan", "inf", "soon", "0s", ""] {
            assert!(duration(bad).is_err(), "{bad}");
        }
        for huge in ["1e20", "100000years"] {
            let err = duration(huge).unwrap_err();
            assert!(err.contains("too long"), "{huge}: {err}");
        }
    }

    #[test]
    fn sizes_take_bytes_or_units() {
        assert_eq!(size("1048576"), Ok(1 << 20));
        assert_eq!(size("16MiB"), Ok(16 << 20));
        assert_eq!(size("64 KiB"), Ok(64 << 10));
        assert_eq!(size("1kb"), Ok(1000));
        assert_eq!(size("2GiB"), Ok(2 << 30));
        for bad in ["-1", "lots", "16MiBs", ""] {
            assert!(size(bad).is_err(), "{bad}");
        }
    }
}
