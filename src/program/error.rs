//! Everything that can go wrong with a program, as one error type.

use super::*;

/// Everything that can go wrong while loading a program, parsing an input or decoding an
/// output.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    /// The program file could not be read.
    #[error("cannot read program file {}: {source}; check the path and its permissions", path.display())]
    Read {
        /// The file that was to be read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// The program file is not UTF-8 text.
    #[error("program file {} is not UTF-8 text; pass a Garble source file (*.garble.rs) or a Bristol Fashion circuit (*.txt, *.bristol)", path.display())]
    NotText {
        /// The offending file.
        path: PathBuf,
    },
    /// The Garble source does not compile; `pretty` is garble's own report with the line and
    /// an excerpt of the source.
    #[error("cannot compile {}:\n{}", path.display(), pretty.trim_end())]
    Compile {
        /// The program file.
        path: PathBuf,
        /// garble's prettified error (scan, parse, type or compiler errors with source lines).
        pretty: String,
    },
    /// The garble compiler crashed on this program (a bug in garble_lang).
    #[error("the Garble compiler crashed on {}: {message}; simplify the program around the reported construct or report the bug to garble_lang", path.display())]
    CompilerCrash {
        /// The program file.
        path: PathBuf,
        /// The compiler's panic message.
        message: String,
    },
    /// The file looks like a Bristol Fashion circuit but is malformed.
    #[error("{}:{line}: not a valid Bristol Fashion circuit: {reason}", path.display())]
    Bristol {
        /// The circuit file.
        path: PathBuf,
        /// 1-based line number of the problem (0 when it concerns the whole file).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Party constants are missing, unknown or not of their declared type.
    #[error("{}: {reason}", path.display())]
    Constants {
        /// The program file.
        path: PathBuf,
        /// What is wrong, naming the party and the constant.
        reason: String,
    },
    /// The compiled or imported circuit failed garble's validation.
    #[error("program {} produced an invalid circuit: {reason}", path.display())]
    InvalidCircuit {
        /// The program file.
        path: PathBuf,
        /// What garble's validation reported.
        reason: String,
    },
    /// The party index does not exist in this program.
    #[error("there is no party {party}: {} is a program for {parties} parties (numbered 0 to {})", path.display(), parties.saturating_sub(1))]
    NoSuchParty {
        /// The requested party.
        party: usize,
        /// How many parties the program has.
        parties: usize,
        /// The program file.
        path: PathBuf,
    },
    /// A party's input is not a valid literal of its parameter's type.
    #[error(
        "input {input:?} of party {party} is not a valid value for parameter `{name}: {ty}`: {reason}"
    )]
    BadInput {
        /// The party whose input failed.
        party: usize,
        /// The party's parameter name.
        name: String,
        /// The expected type (Garble type, or e.g. `128-bit hex` for Bristol circuits).
        ty: String,
        /// The input as given.
        input: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The number of output bits does not match the circuit.
    #[error("expected {expected} output bits from the circuit of {}, got {actual}", path.display())]
    OutputLength {
        /// The program file.
        path: PathBuf,
        /// Output bits of the circuit.
        expected: usize,
        /// Bits received.
        actual: usize,
    },
    /// The output bits cannot be decoded as a value of the output type.
    #[error("the output bits of {} cannot be decoded: {reason}", path.display())]
    BadOutput {
        /// The program file.
        path: PathBuf,
        /// Why decoding failed.
        reason: String,
    },
    /// The program cannot be written as a Bristol Fashion circuit ([`Program::to_bristol`]).
    #[error("cannot export {} as a Bristol Fashion circuit: {reason}", path.display())]
    BristolExport {
        /// The program file.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
    /// The inputs given to [`Program::try_eval_plain`] do not fit the circuit.
    #[error("plaintext evaluation of {}: {reason}", path.display())]
    BadEvalInputs {
        /// The program file.
        path: PathBuf,
        /// What does not fit.
        reason: String,
    },
    /// The compiled circuit kept in the compile cache cannot be read.
    #[error(transparent)]
    Stored(#[from] StoredCircuitError),
}
