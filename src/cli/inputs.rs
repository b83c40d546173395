//! Where a party's input and constants come from: the command line (`--input LIT`,
//! `--const NAME=VALUE`) or, so that a private input shows neither in `ps` nor in the shell's
//! history, a file or standard input (`--input-file FILE`, `--input-file -`).

use std::io::Read;
use std::path::{Path, PathBuf};

use super::Failure;

/// One party's input as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    /// `--input LIT`.
    Literal(String),
    /// `--input-file FILE` (`-` for standard input).
    File(PathBuf),
}

impl InputSource {
    /// The input literal: as given, or read from the file (surrounding whitespace removed, so
    /// a file written by `echo` works).
    pub fn read(&self) -> Result<String, Failure> {
        match self {
            InputSource::Literal(text) => Ok(text.clone()),
            InputSource::File(path) => read_input_file(path),
        }
    }
}

/// Reads an input literal from `path`, or from standard input when `path` is `-`.
pub fn read_input_file(path: &Path) -> Result<String, Failure> {
    let (text, name) = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| {
            Failure::usage(format!("cannot read the input from standard input: {e}"))
        })?;
        (text, "standard input".to_string())
    } else {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::usage(format!(
                "cannot read the input file {}: {e}",
                path.display()
            ))
        })?;
        (text, path.display().to_string())
    };
    let literal = text.trim();
    if literal.is_empty() {
        return Err(Failure::usage(format!(
            "{name} is empty: it should hold this party's input, e.g. a Garble literal like 2u32"
        )));
    }
    Ok(literal.to_string())
}

/// Puts `mpc run`'s `--input` and `--input-file` values in party order: the order in which
/// they appear on the command line (`positions` are clap's argument indices).
pub fn in_command_line_order(
    literals: &[String],
    literal_positions: &[usize],
    files: &[PathBuf],
    file_positions: &[usize],
) -> Result<Vec<InputSource>, Failure> {
    let mut tagged: Vec<(usize, InputSource)> = literal_positions
        .iter()
        .zip(literals)
        .map(|(&at, lit)| (at, InputSource::Literal(lit.clone())))
        .chain(
            file_positions
                .iter()
                .zip(files)
                .map(|(&at, path)| (at, InputSource::File(path.clone()))),
        )
        .collect();
    tagged.sort_by_key(|(at, _)| *at);
    let stdin_count = tagged
        .iter()
        .filter(|(_, s)| matches!(s, InputSource::File(p) if p == Path::new("-")))
        .count();
    if stdin_count > 1 {
        return Err(Failure::usage(
            "--input-file - (standard input) can be given for one party only",
        ));
    }
    Ok(tagged.into_iter().map(|(_, s)| s).collect())
}

/// Parses `NAME=VALUE` for `--const`.
pub fn parse_const(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not NAME=VALUE (e.g. ROWS=3)"))?;
    let (name, value) = (name.trim(), value.trim());
    if name.is_empty() || value.is_empty() {
        return Err(format!("'{s}' is not NAME=VALUE (e.g. ROWS=3)"));
    }
    Ok((name.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_keep_their_command_line_order() {
        let order = in_command_line_order(
            &["1u8".into(), "3u8".into()],
            &[2, 6],
            &[PathBuf::from("b.txt")],
            &[4],
        )
        .unwrap_or_else(|e| panic!("{}", e.message));
        assert_eq!(
            order,
            vec![
                InputSource::Literal("1u8".into()),
                InputSource::File("b.txt".into()),
                InputSource::Literal("3u8".into()),
            ]
        );
        let twice = in_command_line_order(&[], &[], &["-".into(), "-".into()], &[2, 4]);
        assert!(twice.is_err());
    }

    #[test]
    fn constants_are_name_equals_value() {
        assert_eq!(parse_const("ROWS=3"), Ok(("ROWS".into(), "3".into())));
        assert_eq!(
            parse_const("PARTY_1::ROWS = 3usize"),
            Ok(("PARTY_1::ROWS".into(), "3usize".into()))
        );
        assert!(parse_const("ROWS").is_err());
        assert!(parse_const("=3").is_err());
    }
}
