//! Programs: loading Garble source or Bristol Fashion circuits, compiling them (once, with an
//! on-disk cache keyed by content) into garble_lang's register circuit, parsing party inputs,
//! formatting outputs and panics exactly as `garble run` does, and the program hash that the
//! parties compare in their handshake.
//!
//! Nothing here knows about the protocol: the engine only sees [`Program::circuit`], the
//! bits that [`Program::parse_input`] produces and the bits that it hands back to
//! [`Program::format_output`].
//!
//! # Bristol Fashion circuits
//!
//! A `*.txt` or `*.bristol` file whose first line is two numbers (`ngates nwires`) is read as
//! a [Bristol Fashion](https://nigelsmart.github.io/MPC-Circuits/) circuit; any other file is
//! Garble source. Input value `i` of the circuit is the input of party `i`, so a circuit with
//! two input values is a two-party program. Supported gates: `XOR`, `AND`, `INV` (or `NOT`),
//! `MAND`, `EQW` (a copy) and `EQ` (a constant).
//!
//! Inputs and outputs are written as hexadecimal numbers with exactly as many digits as the
//! value's width needs (`0x` is optional). Bit order: the Bristol Fashion circuits of Nigel
//! Smart's collection number the wires of a value from its least significant bit, so wire `j`
//! of an input value is bit `j` of the hex number read as one big-endian integer (the last
//! hex digit holds wires 0 to 3). With this convention hex in and hex out are in the usual
//! byte order of the standards: Smart's `aes_128.txt` takes the key as input 0 and the
//! plaintext as input 1, and key `000102030405060708090a0b0c0d0e0f` with plaintext
//! `00112233445566778899aabbccddeeff` gives `69c4e0d86a7b0430d8cdb78070b4c55a` (FIPS-197,
//! appendix C.1); `sha256.txt` (the SHA-256 compression function) takes the 512-bit message
//! block as input 0 and the 256-bit chaining value as input 1 and outputs the new chaining
//! value, all as big-endian hex as in FIPS 180-4.
//!
//! [`Program::to_bristol`] (`mpc check --bristol-out FILE`) writes any panic-free program as
//! such a circuit, numbering the bits of each Garble value from the most significant so that
//! the hex reads like the value's bytes: `programs/aes128.garble.rs` and
//! `programs/sha256.garble.rs` export to circuits with exactly the interfaces above.

use std::{
    collections::{HashMap, HashSet},
    fmt::{self, Write as _},
    fs,
    io::{self, Write as _},
    mem,
    panic::{AssertUnwindSafe, catch_unwind},
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use garble_lang::{
    CircuitKind, CompileOptions, CompileTimeError, GarbleProgram, TypedProgram,
    ast::{Type, Variant},
    circuit::PANIC_RESULT_SIZE_IN_BITS,
    circuit_type::CircuitType,
    eval::EvalError,
    literal::Literal,
    register_circuit::{Circuit, Op},
};
use serde::{Deserialize, Serialize};

mod bristol;

pub use bristol::BristolText;
use bristol::{BristolInfo, Layout, bits_to_hex, hex_to_bits, parse_bristol, write_bristol};

/// The garble_lang version this crate is built against. It is part of the cache key, so that
/// circuits compiled by another compiler version are never reused; a test checks it against
/// `Cargo.lock`.
pub const GARBLE_LANG_VERSION: &str = "0.7.0-alpha.1";

/// Version of the on-disk cache format; bump it when [`CachedProgram`] changes shape.
const CACHE_FORMAT: &str = "mpc-program-cache-v1";

/// The compile options used for every Garble program; also part of the cache key.
const COMPILE_OPTIONS: &str = "register circuit, optimize_duplicate_gates=true";

/// First bytes of every cache file.
const CACHE_MAGIC: &[u8; 8] = b"MPCPRG\x00\x01";

/// Deepest bracket nesting accepted in an input literal: garble's literal parser is
/// recursive, so deeper input could overflow the stack. Real types are far shallower.
const MAX_LITERAL_NESTING: usize = 128;

/// Stack size of the thread that runs garble's (recursive) compiler.
const COMPILER_STACK_BYTES: usize = 256 << 20;

/// Longest input echoed back in an error message.
const MAX_ECHOED_INPUT: usize = 80;

/// Bits of a `u32`/`usize` field in garble's panic header.
const PANIC_FIELD_BITS: usize = 32;

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
}

/// What kind of file a program was loaded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProgramKind {
    /// Garble source code, compiled by garble_lang.
    Garble,
    /// A Bristol Fashion circuit.
    Bristol,
}

impl ProgramKind {
    fn tag(self) -> u8 {
        match self {
            ProgramKind::Garble => 1,
            ProgramKind::Bristol => 2,
        }
    }
}

impl fmt::Display for ProgramKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProgramKind::Garble => "Garble program",
            ProgramKind::Bristol => "Bristol Fashion circuit",
        })
    }
}

/// The result of a computation, decoded from the circuit's output bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The program returned this value, formatted as `garble run` prints it (Garble's
    /// `Literal` display, e.g. `6` for a `u32`), or space-separated hex values for a Bristol
    /// circuit.
    Value(String),
    /// The program panicked (overflow, division by zero, out-of-bounds access). The text is
    /// exactly what `garble run` writes to stderr for it with `eprintln!`: the reason, the
    /// line and column, and the highlighted source lines (it ends with a newline).
    Panic(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Value(v) => f.write_str(v),
            Outcome::Panic(p) => f.write_str(p),
        }
    }
}

/// How [`Program::load_with_cache`] obtained the circuit.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// True when the compiled program came from the cache, false when it was compiled now.
    pub from_cache: bool,
    /// Wall time of the load: reading the file and compiling or reading the cache.
    pub elapsed: Duration,
    /// The cache file for this program, when a cache directory was used.
    pub cache_file: Option<PathBuf>,
}

/// A party's input parameter, for [`Summary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartyParam {
    /// Parameter name (`x`, `bids[2]` when `main` takes one array, `input 0` for Bristol).
    pub name: String,
    /// The parameter's type as written in Garble, or e.g. `128-bit hex` for Bristol.
    pub ty: String,
    /// Number of input bits.
    pub bits: usize,
}

/// What `mpc check` prints about a program.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The program file.
    pub path: PathBuf,
    /// Garble source or Bristol circuit.
    pub kind: ProgramKind,
    /// One entry per party, in party order.
    pub parties: Vec<PartyParam>,
    /// The output type (Garble return type, or the Bristol output widths).
    pub output_type: String,
    /// Bits of the output value (without garble's panic bits).
    pub output_bits: usize,
    /// Extra output bits carrying garble's panic information (0 for Bristol circuits).
    pub panic_bits: usize,
    /// Number of AND instructions.
    pub and_gates: usize,
    /// Number of XOR instructions.
    pub xor_gates: usize,
    /// Number of NOT instructions.
    pub not_gates: usize,
    /// Maximum number of registers needed to evaluate the circuit.
    pub max_registers: usize,
    /// Definitions of the structs and enums used by the parameters and the output, e.g.
    /// `enum Richer { Party0, Party1, Tie }` (empty for Bristol circuits).
    pub definitions: Vec<String>,
}

/// The kind-specific part of a [`Program`].
enum Inner {
    Garble {
        source: String,
        /// The compiled program with its circuit taken out (kept in [`Program::circuit`]).
        program: Box<GarbleProgram>,
    },
    Bristol(BristolInfo),
}

/// A loaded program: its register circuit and what is needed to parse inputs and format
/// outputs. Cheap to share by reference; the engine only needs [`Program::circuit`].
pub struct Program {
    path: PathBuf,
    circuit: Circuit,
    hash: [u8; 32],
    inner: Inner,
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Program")
            .field("path", &self.path)
            .field("kind", &self.kind())
            .field("parties", &self.parties())
            .field("and_ops", &self.circuit.and_ops)
            .field("hash", &hex::encode(self.hash))
            .finish()
    }
}

/// The cache directory used by [`Program::load`]: `$MPC_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/mpc`, else `$HOME/.cache/mpc`; `None` when none of these is set.
pub fn default_cache_dir() -> Option<PathBuf> {
    let from_env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = from_env("MPC_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = from_env("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("mpc"));
    }
    from_env("HOME").map(|home| PathBuf::from(home).join(".cache").join("mpc"))
}

impl Program {
    /// Loads a program file: `*.txt`/`*.bristol` files whose first line is a Bristol Fashion
    /// header (`ngates nwires`) are Bristol circuits, any other file is Garble source. The
    /// compiled circuit (and what is needed to parse inputs and format outputs) is cached by
    /// content hash in [`default_cache_dir`], so a program is compiled only once.
    pub fn load(path: &Path) -> Result<Program, ProgramError> {
        Self::load_with_cache(path, None).map(|(program, _)| program)
    }

    /// Like [`Program::load`], and reports whether the program was compiled or came from the
    /// cache, and how long it took. `cache` is the cache directory; `None` means
    /// [`default_cache_dir`] (no caching when that is unknown too).
    ///
    /// A missing, corrupt or unreadable cache entry is never an error: it is recompiled (with
    /// a warning for a corrupt one) and rewritten atomically. Failing to write the cache is
    /// only a warning.
    pub fn load_with_cache(
        path: &Path,
        cache: Option<&Path>,
    ) -> Result<(Program, LoadReport), ProgramError> {
        match cache {
            Some(dir) => Self::load_from(path, Some(dir)),
            None => Self::load_from(path, default_cache_dir().as_deref()),
        }
    }

    /// Loads and compiles a program without reading or writing any cache.
    pub fn load_uncached(path: &Path) -> Result<(Program, LoadReport), ProgramError> {
        Self::load_from(path, None)
    }

    fn load_from(path: &Path, cache: Option<&Path>) -> Result<(Program, LoadReport), ProgramError> {
        let start = Instant::now();
        let bytes = fs::read(path).map_err(|source| ProgramError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|_| ProgramError::NotText {
            path: path.to_path_buf(),
        })?;
        let kind = detect_kind(path, &text);
        let cache_file = cache.map(|dir| dir.join(format!("{}.bin", cache_key(kind, &text))));

        if let Some(file) = &cache_file
            && let Some(entry) = read_cache(file)
        {
            match Program::from_entry(path, kind, &text, entry) {
                Ok(program) => {
                    let report = LoadReport {
                        from_cache: true,
                        elapsed: start.elapsed(),
                        cache_file,
                    };
                    return Ok((program, report));
                }
                Err(e) => {
                    tracing::warn!(cache_file = %file.display(), "ignoring unusable compile cache entry ({e}); recompiling");
                }
            }
        }

        let program = match kind {
            ProgramKind::Garble => {
                let (program, circuit) = compile_garble(path, &text)?;
                let entry = CachedProgramRef::Garble(&program, &circuit);
                if let Some(file) = &cache_file {
                    write_cache(file, &entry);
                }
                Program::new(
                    path,
                    circuit,
                    Inner::Garble {
                        source: text,
                        program: Box::new(program),
                    },
                )?
            }
            ProgramKind::Bristol => {
                let (info, circuit) = parse_bristol(path, &text)?;
                if let Some(file) = &cache_file {
                    write_cache(file, &CachedProgramRef::Bristol(&info, &circuit));
                }
                Program::new(path, circuit, Inner::Bristol(info))?
            }
        };
        let report = LoadReport {
            from_cache: false,
            elapsed: start.elapsed(),
            cache_file,
        };
        Ok((program, report))
    }

    /// Builds a program from a cache entry, checking that it fits the file's kind.
    fn from_entry(
        path: &Path,
        kind: ProgramKind,
        text: &str,
        entry: CachedProgram,
    ) -> Result<Program, ProgramError> {
        let inner_and_circuit = match (kind, entry) {
            (ProgramKind::Garble, CachedProgram::Garble(program, circuit)) => (
                Inner::Garble {
                    source: text.to_string(),
                    program,
                },
                circuit,
            ),
            (ProgramKind::Bristol, CachedProgram::Bristol(info, circuit)) => {
                (Inner::Bristol(info), circuit)
            }
            _ => {
                return Err(ProgramError::InvalidCircuit {
                    path: path.to_path_buf(),
                    reason: "cache entry is of the wrong program kind".into(),
                });
            }
        };
        let (inner, circuit) = inner_and_circuit;
        Program::new(path, circuit, inner)
    }

    /// Validates the circuit against the program's signature and computes the hash.
    fn new(path: &Path, circuit: Circuit, inner: Inner) -> Result<Program, ProgramError> {
        let invalid = |reason: String| ProgramError::InvalidCircuit {
            path: path.to_path_buf(),
            reason,
        };
        circuit.validate().map_err(|e| invalid(format!("{e:?}")))?;
        // The engine relies on the inputs coming first, party by party, bit by bit.
        let expected_inputs = circuit
            .input_regs
            .iter()
            .enumerate()
            .flat_map(|(party, &width)| (0..width).map(move |bit| (party, bit)));
        let mut insts = circuit.insts.iter().enumerate();
        for (party, bit) in expected_inputs {
            match insts.next() {
                Some((_, inst))
                    if matches!(inst.op, Op::Input(input)
                        if input.party as usize == party && input.input as usize == bit) => {}
                _ => {
                    return Err(invalid(format!(
                        "the circuit does not start with input bit {bit} of party {party}"
                    )));
                }
            }
        }
        if let Some((i, _)) = insts.find(|(_, inst)| matches!(inst.op, Op::Input(_))) {
            return Err(invalid(format!(
                "instruction {i} is an input after the first gate"
            )));
        }
        let mut program = Program {
            path: path.to_path_buf(),
            circuit,
            hash: [0; 32],
            inner,
        };
        match &program.inner {
            Inner::Garble { program: prg, .. } => {
                if program.circuit.output_regs.len() < PANIC_RESULT_SIZE_IN_BITS {
                    return Err(invalid(
                        "the circuit has fewer outputs than garble's panic bits".into(),
                    ));
                }
                for party in 0..program.parties() {
                    if program.garble_param(prg, party).is_none() {
                        return Err(invalid(format!(
                            "the circuit has {} parties but `main` has no parameter for party {party}",
                            program.parties()
                        )));
                    }
                }
            }
            Inner::Bristol(info) => {
                if info.inputs != program.circuit.input_regs
                    || info.outputs.iter().sum::<usize>() != program.circuit.output_regs.len()
                {
                    return Err(invalid(
                        "the circuit does not match the Bristol header".into(),
                    ));
                }
            }
        }
        program.hash = program.compute_hash();
        Ok(program)
    }

    /// The register circuit that the protocol evaluates: `input_regs` per party, `insts`
    /// (validated: the `Input` instructions come first, party by party and bit by bit, and
    /// only there; every register is written before it is read), `output_regs`. For Garble programs the first
    /// [`PANIC_RESULT_SIZE_IN_BITS`] output bits are garble's panic information.
    pub fn circuit(&self) -> &Circuit {
        &self.circuit
    }

    /// Number of parties (one per `main` parameter, or per element when `main` takes a single
    /// array; one per input value of a Bristol circuit).
    pub fn parties(&self) -> usize {
        self.circuit.input_regs.len()
    }

    /// The file the program was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this is Garble source or a Bristol circuit.
    pub fn kind(&self) -> ProgramKind {
        match self.inner {
            Inner::Garble { .. } => ProgramKind::Garble,
            Inner::Bristol(_) => ProgramKind::Bristol,
        }
    }

    /// 32-byte hash identifying the program for the parties' handshake: BLAKE3 over a
    /// canonical encoding of the register circuit and of the signature (each party's
    /// parameter name and type, the return type, with the definitions of the structs and
    /// enums they use), so that parties with different programs disagree. Comments do not
    /// change it as long as the code stays on the same lines and columns (garble compiles
    /// the location of every possible panic into the circuit).
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// Parses party `party`'s input into its input bits.
    ///
    /// Garble: a Garble literal of the party's parameter type (e.g. `2u32`, `(1u8, true)`,
    /// `[1u8, 2u8]`, `Op::Div(4u8, 2u8)`); a bad literal gives an error naming the party's
    /// parameter and the expected type. Bristol: hex with exactly as many digits as the
    /// input's width needs, with or without `0x` (see the module docs for the bit order).
    pub fn parse_input(&self, party: usize, literal: &str) -> Result<Vec<bool>, ProgramError> {
        let Some(&width) = self.circuit.input_regs.get(party) else {
            return Err(ProgramError::NoSuchParty {
                party,
                parties: self.parties(),
                path: self.path.clone(),
            });
        };
        match &self.inner {
            Inner::Garble { program, .. } => {
                let (name, ty) =
                    self.garble_param(program, party)
                        .ok_or_else(|| ProgramError::NoSuchParty {
                            party,
                            parties: self.parties(),
                            path: self.path.clone(),
                        })?;
                let bad = |reason: String| ProgramError::BadInput {
                    party,
                    name: name.clone(),
                    ty: ty.to_string(),
                    input: echo(literal),
                    reason,
                };
                if nesting_depth(literal) > MAX_LITERAL_NESTING {
                    return Err(bad(format!(
                        "brackets are nested more than {MAX_LITERAL_NESTING} levels deep"
                    )));
                }
                let ty = resolve_const_sizes(&ty, &program.const_sizes);
                let parsed = catch_unwind(AssertUnwindSafe(|| {
                    Literal::parse(&program.program, &ty, literal)
                        .map(|lit| lit.as_bits(&program.program, &program.const_sizes))
                }));
                let bits = match parsed {
                    Ok(Ok(bits)) => bits,
                    Ok(Err(e)) => return Err(bad(one_line_error(&e))),
                    Err(panic) => {
                        return Err(bad(format!(
                            "garble_lang crashed while parsing it: {}",
                            panic_message(&panic)
                        )));
                    }
                };
                if bits.len() != width {
                    return Err(bad(format!(
                        "it encodes to {} bits but the circuit expects {width}",
                        bits.len()
                    )));
                }
                Ok(bits)
            }
            Inner::Bristol(_) => {
                hex_to_bits(literal, width).map_err(|reason| ProgramError::BadInput {
                    party,
                    name: format!("input {party}"),
                    ty: format!("{width}-bit hex"),
                    input: echo(literal),
                    reason,
                })
            }
        }
    }

    /// Formats the circuit's output bits exactly as `garble run` prints them (garble's
    /// `Literal` display: `6` for a `u32` six, `Richer::Party0`, `(1, true)`), or, when the
    /// program panicked (garble's panic bits), [`Outcome::Panic`] with exactly what
    /// `garble run` writes to stderr for it. Bristol: lowercase hex per output value,
    /// separated by spaces.
    pub fn format_output(&self, bits: &[bool]) -> Result<Outcome, ProgramError> {
        let expected = self.circuit.output_regs.len();
        if bits.len() != expected {
            return Err(ProgramError::OutputLength {
                path: self.path.clone(),
                expected,
                actual: bits.len(),
            });
        }
        match &self.inner {
            Inner::Garble { source, program } => self.format_garble_output(source, program, bits),
            Inner::Bristol(info) => {
                let mut out = String::new();
                let mut offset = 0;
                for (i, &width) in info.outputs.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(&bits_to_hex(&bits[offset..offset + width]));
                    offset += width;
                }
                Ok(Outcome::Value(out))
            }
        }
    }

    fn format_garble_output(
        &self,
        source: &str,
        program: &GarbleProgram,
        bits: &[bool],
    ) -> Result<Outcome, ProgramError> {
        let bad = |reason: String| ProgramError::BadOutput {
            path: self.path.clone(),
            reason,
        };
        // garble's decoder panics on an unknown panic reason and on panic locations outside
        // the source; check the header before handing the bits over.
        let field = |i: usize| bits_to_u64(&bits[1 + i * PANIC_FIELD_BITS..][..PANIC_FIELD_BITS]);
        let reason = field(0);
        if !(1..=3).contains(&reason) {
            return Err(bad(format!("unknown panic reason code {reason}")));
        }
        if bits[0] {
            let (start_line, start_col, end_line, end_col) =
                (field(1), field(2), field(3), field(4));
            let lines: Vec<&str> = source.lines().collect();
            let line_len = |l: u64| lines.get(l as usize).map(|s| s.len() as u64);
            let valid = start_line <= end_line
                && line_len(start_line).is_some_and(|len| start_col <= len + 1)
                && line_len(end_line).is_some_and(|len| end_col <= len + 1);
            if !valid {
                return Err(bad(format!(
                    "panic location {}:{}-{}:{} is outside the program source",
                    start_line + 1,
                    start_col + 1,
                    end_line + 1,
                    end_col + 1
                )));
            }
        }
        let decoded = catch_unwind(AssertUnwindSafe(|| {
            Literal::from_result_bits(
                &program.program,
                &program.main.ty,
                bits,
                &program.const_sizes,
            )
            .map_err(|e| match e {
                EvalError::Panic(_) => Ok(e.prettify(source)),
                other => Err(other.to_string()),
            })
        }));
        match decoded {
            Ok(Ok(literal)) => Ok(Outcome::Value(literal.to_string())),
            Ok(Err(Ok(panic))) => Ok(Outcome::Panic(panic)),
            Ok(Err(Err(reason))) => Err(bad(reason)),
            Err(panic) => Err(bad(format!(
                "they are not a valid {}: {}",
                program.main.ty,
                panic_message(&panic)
            ))),
        }
    }

    /// Plaintext evaluation with garble_lang's own register-circuit evaluator, for tests and
    /// `mpc run` cross-checks. `inputs[i]` are party `i`'s bits from [`Program::parse_input`].
    ///
    /// # Panics
    ///
    /// If the inputs do not fit the circuit (wrong number of parties or bits); use
    /// [`Program::try_eval_plain`] for inputs that did not come from `parse_input`.
    pub fn eval_plain(&self, inputs: &[Vec<bool>]) -> Vec<bool> {
        match self.try_eval_plain(inputs) {
            Ok(bits) => bits,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`Program::eval_plain`], but returns an error when the inputs do not fit the
    /// circuit.
    pub fn try_eval_plain(&self, inputs: &[Vec<bool>]) -> Result<Vec<bool>, ProgramError> {
        let bad = |reason: String| ProgramError::BadEvalInputs {
            path: self.path.clone(),
            reason,
        };
        if inputs.len() != self.parties() {
            return Err(bad(format!(
                "{} inputs given, the program has {} parties",
                inputs.len(),
                self.parties()
            )));
        }
        for (party, (input, &width)) in inputs.iter().zip(&self.circuit.input_regs).enumerate() {
            if input.len() != width {
                return Err(bad(format!(
                    "party {party} gave {} bits, its input has {width}",
                    input.len()
                )));
            }
        }
        Ok(self.circuit.eval(inputs))
    }

    /// The program as a Bristol Fashion circuit (`mpc check --bristol-out`) that this module
    /// reads back as the same function: input value `i` is party `i`'s input, and the output
    /// is one value with every output bit (a Garble program's return value, without garble's
    /// panic information) or the circuit's own output values. Hex in and out read like the
    /// Garble values: bits are numbered from the most significant, so a `[u8; 16]` is its
    /// bytes in order and a `[u32; 8]` its big-endian words (see the module docs).
    ///
    /// Constants are folded and unused gates dropped, so the AND count does not grow. A
    /// Garble program that can panic is refused: Bristol Fashion cannot report a panic.
    pub fn to_bristol(&self) -> Result<BristolText, ProgramError> {
        let outputs = &self.circuit.output_regs;
        let (values, panic, msb_first, widths) = match &self.inner {
            Inner::Garble { .. } => {
                let values = &outputs[PANIC_RESULT_SIZE_IN_BITS..];
                (values, outputs.first().copied(), true, vec![values.len()])
            }
            Inner::Bristol(info) => (&outputs[..], None, false, info.outputs.clone()),
        };
        let layout = Layout {
            outputs: values,
            output_widths: &widths,
            panic,
            msb_first,
        };
        write_bristol(&self.circuit, &layout).map_err(|reason| ProgramError::BristolExport {
            path: self.path.clone(),
            reason,
        })
    }

    /// For `mpc check`: each party's parameter (name, type, bits), the output type, the
    /// AND/XOR/NOT counts and the register count.
    pub fn summary(&self) -> Summary {
        let (mut and_gates, mut xor_gates, mut not_gates) = (0, 0, 0);
        for inst in &self.circuit.insts {
            match inst.op {
                Op::And(_) => and_gates += 1,
                Op::Xor(_) => xor_gates += 1,
                Op::Not(_) => not_gates += 1,
                Op::Input(_) => {}
            }
        }
        let widths = &self.circuit.input_regs;
        let mut definitions = Vec::new();
        let (parties, output_type, output_bits, panic_bits) = match &self.inner {
            Inner::Garble { program, .. } => {
                let parties = (0..self.parties())
                    .map(|party| {
                        let (name, ty) = self
                            .garble_param(program, party)
                            .unwrap_or_else(|| (format!("party {party}"), Type::Bool));
                        PartyParam {
                            name,
                            ty: ty.to_string(),
                            bits: widths[party],
                        }
                    })
                    .collect();
                let bits = self.circuit.output_regs.len() - PANIC_RESULT_SIZE_IN_BITS;
                let mut seen = HashSet::new();
                for party in 0..self.parties() {
                    if let Some((_, ty)) = self.garble_param(program, party) {
                        collect_definitions(&ty, &program.program, &mut seen, &mut definitions);
                    }
                }
                collect_definitions(
                    &program.main.ty,
                    &program.program,
                    &mut seen,
                    &mut definitions,
                );
                (
                    parties,
                    program.main.ty.to_string(),
                    bits,
                    PANIC_RESULT_SIZE_IN_BITS,
                )
            }
            Inner::Bristol(info) => {
                let parties = widths
                    .iter()
                    .enumerate()
                    .map(|(party, &bits)| PartyParam {
                        name: format!("input {party}"),
                        ty: format!("{bits}-bit hex"),
                        bits,
                    })
                    .collect();
                let output_type = info
                    .outputs
                    .iter()
                    .map(|w| format!("{w}-bit hex"))
                    .collect::<Vec<_>>()
                    .join(", ");
                (parties, output_type, self.circuit.output_regs.len(), 0)
            }
        };
        Summary {
            path: self.path.clone(),
            kind: self.kind(),
            parties,
            output_type,
            output_bits,
            panic_bits,
            and_gates,
            xor_gates,
            not_gates,
            max_registers: self.circuit.max_reg_count,
            definitions,
        }
    }

    /// The parameter (name, declared type) that party `party` supplies. When `main` takes a
    /// single array, garble makes each element one party's input.
    fn garble_param(&self, program: &GarbleProgram, party: usize) -> Option<(String, Type)> {
        let params = &program.main.params;
        if let [param] = params.as_slice() {
            let elem = match &param.ty {
                Type::Array(elem, _) | Type::ArrayConst(elem, _) => Some(elem),
                _ => None,
            };
            if let Some(elem) = elem {
                return (party < self.parties())
                    .then(|| (format!("{}[{party}]", param.name), (**elem).clone()));
            }
        }
        params
            .get(party)
            .map(|param| (param.name.clone(), param.ty.clone()))
    }

    fn compute_hash(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(b"mpc program hash v1\0");
        h.update(&[self.kind().tag()]);
        let mut signature = String::new();
        match &self.inner {
            Inner::Garble { program, .. } => {
                for party in 0..self.parties() {
                    if let Some((name, ty)) = self.garble_param(program, party) {
                        let _ = write!(signature, "param {name}: ");
                        describe_type(&ty, program, &mut signature, &mut HashSet::new());
                        signature.push('\n');
                    }
                }
                signature.push_str("returns ");
                describe_type(
                    &program.main.ty,
                    program,
                    &mut signature,
                    &mut HashSet::new(),
                );
            }
            Inner::Bristol(info) => {
                let _ = write!(
                    signature,
                    "bristol inputs {:?} outputs {:?}",
                    info.inputs, info.outputs
                );
            }
        }
        h.update(&(signature.len() as u64).to_le_bytes());
        h.update(signature.as_bytes());

        let c = &self.circuit;
        let mut buf = Vec::with_capacity(1 << 16);
        let put = |buf: &mut Vec<u8>, n: u64| buf.extend_from_slice(&n.to_le_bytes());
        put(&mut buf, c.input_regs.len() as u64);
        for &w in &c.input_regs {
            put(&mut buf, w as u64);
        }
        put(&mut buf, c.max_reg_count as u64);
        put(&mut buf, c.and_ops as u64);
        put(&mut buf, c.insts.len() as u64);
        for inst in &c.insts {
            let (code, a, b) = match inst.op {
                Op::Input(i) => (0u8, i.party, i.input),
                Op::Xor(x) => (1, x.0.0, x.1.0),
                Op::And(x) => (2, x.0.0, x.1.0),
                Op::Not(x) => (3, x.0.0, 0),
            };
            buf.push(code);
            buf.extend_from_slice(&inst.out.0.to_le_bytes());
            buf.extend_from_slice(&a.to_le_bytes());
            buf.extend_from_slice(&b.to_le_bytes());
            if buf.len() >= 1 << 16 {
                h.update(&buf);
                buf.clear();
            }
        }
        put(&mut buf, c.output_regs.len() as u64);
        for r in &c.output_regs {
            buf.extend_from_slice(&r.0.to_le_bytes());
        }
        h.update(&buf);
        *h.finalize().as_bytes()
    }
}

/// Writes a canonical description of `ty`, expanding struct and enum definitions (once each).
fn describe_type(ty: &Type, program: &GarbleProgram, out: &mut String, seen: &mut HashSet<String>) {
    let prg: &TypedProgram = &program.program;
    match ty {
        Type::Array(elem, n) => {
            out.push('[');
            describe_type(elem, program, out, seen);
            let _ = write!(out, "; {n}]");
        }
        Type::ArrayConst(elem, name) => {
            out.push('[');
            describe_type(elem, program, out, seen);
            let size = program.const_sizes.get(name);
            let _ = write!(out, "; {name}={size:?}]");
        }
        Type::ArrayConstExpr(elem, expr) => {
            out.push('[');
            describe_type(elem, program, out, seen);
            let _ = write!(out, "; {expr}]");
        }
        Type::Tuple(fields) => {
            out.push('(');
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                describe_type(f, program, out, seen);
            }
            out.push(')');
        }
        Type::Struct(name) => {
            let _ = write!(out, "struct {name}");
            if seen.insert(name.clone())
                && let Some(def) = prg.struct_defs.get(name)
            {
                out.push_str(" {");
                for (field, fty) in &def.fields {
                    let _ = write!(out, " {field}: ");
                    describe_type(fty, program, out, seen);
                    out.push(',');
                }
                out.push_str(" }");
            }
        }
        Type::Enum(name) => {
            let _ = write!(out, "enum {name}");
            if seen.insert(name.clone())
                && let Some(def) = prg.enum_defs.get(name)
            {
                out.push_str(" {");
                for variant in &def.variants {
                    match variant {
                        Variant::Unit(v) => {
                            let _ = write!(out, " {v},");
                        }
                        Variant::Tuple(v, types) => {
                            let _ = write!(out, " {v}(");
                            for (i, t) in types.iter().enumerate() {
                                if i > 0 {
                                    out.push_str(", ");
                                }
                                describe_type(t, program, out, seen);
                            }
                            out.push_str("),");
                        }
                    }
                }
                out.push_str(" }");
            }
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

/// Appends the definitions of the structs and enums that `ty` uses (each once, in the order
/// they are first used), formatted like Garble source on one line.
fn collect_definitions(
    ty: &Type,
    prg: &TypedProgram,
    seen: &mut HashSet<String>,
    out: &mut Vec<String>,
) {
    match ty {
        Type::Array(elem, _) | Type::ArrayConst(elem, _) | Type::ArrayConstExpr(elem, _) => {
            collect_definitions(elem, prg, seen, out)
        }
        Type::Tuple(fields) => {
            for f in fields {
                collect_definitions(f, prg, seen, out);
            }
        }
        Type::Struct(name) if seen.insert(name.clone()) => {
            if let Some(def) = prg.struct_defs.get(name) {
                let fields: Vec<String> = def
                    .fields
                    .iter()
                    .map(|(field, fty)| format!("{field}: {fty}"))
                    .collect();
                out.push(format!("struct {name} {{ {} }}", fields.join(", ")));
                for (_, fty) in &def.fields {
                    collect_definitions(fty, prg, seen, out);
                }
            }
        }
        Type::Enum(name) if seen.insert(name.clone()) => {
            if let Some(def) = prg.enum_defs.get(name) {
                let variants: Vec<String> = def
                    .variants
                    .iter()
                    .map(|v| match v {
                        Variant::Unit(v) => v.clone(),
                        Variant::Tuple(v, types) => {
                            let types: Vec<String> = types.iter().map(|t| t.to_string()).collect();
                            format!("{v}({})", types.join(", "))
                        }
                    })
                    .collect();
                out.push(format!("enum {name} {{ {} }}", variants.join(", ")));
                for v in &def.variants {
                    if let Variant::Tuple(_, types) = v {
                        for t in types {
                            collect_definitions(t, prg, seen, out);
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// Replaces array sizes given by named constants (`[u8; N]`) with their values, so that
/// literals like `[1u8, 2u8, 3u8]` type-check against the parameter type.
fn resolve_const_sizes(ty: &Type, const_sizes: &HashMap<String, usize>) -> Type {
    match ty {
        Type::ArrayConst(elem, name) => {
            let elem = Box::new(resolve_const_sizes(elem, const_sizes));
            match const_sizes.get(name) {
                Some(&n) => Type::Array(elem, n),
                None => Type::ArrayConst(elem, name.clone()),
            }
        }
        Type::Array(elem, n) => Type::Array(Box::new(resolve_const_sizes(elem, const_sizes)), *n),
        Type::ArrayConstExpr(elem, expr) => Type::ArrayConstExpr(
            Box::new(resolve_const_sizes(elem, const_sizes)),
            expr.clone(),
        ),
        Type::Tuple(fields) => Type::Tuple(
            fields
                .iter()
                .map(|f| resolve_const_sizes(f, const_sizes))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Decides whether a file is a Bristol circuit: a `.txt`/`.bristol` file whose first non-empty
/// line is exactly two numbers.
fn detect_kind(path: &Path, text: &str) -> ProgramKind {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if !matches!(ext.as_deref(), Some("txt" | "bristol")) {
        return ProgramKind::Garble;
    }
    let header = text.lines().find(|l| !l.trim().is_empty());
    let looks_bristol = header.is_some_and(|line| {
        let parts: Vec<&str> = line.split_whitespace().collect();
        parts.len() == 2 && parts.iter().all(|p| p.parse::<u64>().is_ok())
    });
    if looks_bristol {
        ProgramKind::Bristol
    } else {
        ProgramKind::Garble
    }
}

/// Compiles Garble source to a register circuit; returns the program (with its circuit field
/// emptied) and the circuit.
fn compile_garble(path: &Path, source: &str) -> Result<(GarbleProgram, Circuit), ProgramError> {
    let options = CompileOptions {
        circuit_kind: CircuitKind::Register,
        optimize_duplicate_gates: true,
        ..Default::default()
    };
    let compiled = with_big_stack(|| garble_lang::compile_with_options(source, options));
    let mut program = match compiled {
        Ok(Ok(program)) => program,
        Ok(Err(e)) => {
            return Err(ProgramError::Compile {
                path: path.to_path_buf(),
                pretty: e.prettify(source),
            });
        }
        Err(panic) => {
            return Err(ProgramError::CompilerCrash {
                path: path.to_path_buf(),
                message: panic_message(&panic),
            });
        }
    };
    let circuit = match mem::replace(&mut program.circuit, CircuitType::Register(empty_circuit())) {
        CircuitType::Register(circuit) => circuit,
        CircuitType::Ssa(circuit) => Circuit::from(circuit),
    };
    Ok((program, circuit))
}

/// Runs `f` on a thread with a large stack (garble's compiler recurses over the program), or
/// on this thread when no thread can be started; a panic in `f` is returned as `Err`.
fn with_big_stack<T: Send>(
    f: impl FnOnce() -> T + Send,
) -> Result<T, Box<dyn std::any::Any + Send>> {
    let slot = std::sync::Mutex::new(Some(f));
    let take = || slot.lock().ok().and_then(|mut guard| guard.take());
    let spawned = std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("garble-compiler".into())
            .stack_size(COMPILER_STACK_BYTES)
            .spawn_scoped(scope, || take().map(|f| catch_unwind(AssertUnwindSafe(f))))
            .ok()?;
        handle.join().ok().flatten()
    });
    match spawned {
        Some(result) => result,
        None => match take() {
            Some(f) => catch_unwind(AssertUnwindSafe(f)),
            None => Err(Box::new("the compiler thread failed")),
        },
    }
}

/// The deepest nesting of `(`, `[` and `{` in a literal.
fn nesting_depth(literal: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for c in literal.chars() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// An input as shown in error messages: shortened when long.
fn echo(input: &str) -> String {
    if input.chars().count() <= MAX_ECHOED_INPUT {
        input.to_string()
    } else {
        let head: String = input.chars().take(MAX_ECHOED_INPUT).collect();
        format!("{head}…")
    }
}

fn empty_circuit() -> Circuit {
    Circuit {
        input_regs: vec![],
        insts: vec![],
        max_reg_count: 0,
        output_regs: vec![],
        and_ops: 0,
    }
}

/// A one-line description of a literal parse error: each error's message with its column.
fn one_line_error(e: &CompileTimeError) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut push = |kind: &str, msg: String, col: usize| {
        parts.push(format!("{kind} at column {}: {msg}", col + 1));
    };
    match e {
        CompileTimeError::ScanErrors(errs) => {
            for err in errs {
                push("scan error", err.0.to_string(), err.1.start.1);
            }
        }
        CompileTimeError::ParseError(errs) => {
            for err in errs {
                push("parse error", err.0.to_string(), err.1.start.1);
            }
        }
        CompileTimeError::TypeError(errs) => {
            for err in errs {
                push("type error", err.0.to_string(), err.1.start.1);
            }
        }
        CompileTimeError::CompilerError(errs) => {
            for err in errs {
                parts.push(err.to_string());
            }
        }
    }
    if parts.is_empty() {
        "not a valid literal".to_string()
    } else {
        parts.join("; ")
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Big-endian (first bit most significant) bits to a number; at most 64 bits.
fn bits_to_u64(bits: &[bool]) -> u64 {
    bits.iter().fold(0, |n, &b| (n << 1) | b as u64)
}

// ---------------------------------------------------------------------------------------------
// Cache
// ---------------------------------------------------------------------------------------------

/// What a cache file holds (owned, for reading).
#[derive(Deserialize)]
enum CachedProgram {
    Garble(Box<GarbleProgram>, Circuit),
    Bristol(BristolInfo, Circuit),
}

/// What a cache file holds (borrowed, for writing); encodes exactly like [`CachedProgram`].
#[derive(Serialize)]
enum CachedProgramRef<'a> {
    Garble(&'a GarbleProgram, &'a Circuit),
    Bristol(&'a BristolInfo, &'a Circuit),
}

/// The cache key: BLAKE3 of the crate versions, compile options, file kind and content.
fn cache_key(kind: ProgramKind, text: &str) -> String {
    let mut h = blake3::Hasher::new();
    for part in [
        CACHE_FORMAT,
        env!("CARGO_PKG_VERSION"),
        GARBLE_LANG_VERSION,
        COMPILE_OPTIONS,
    ] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.update(&[kind.tag()]);
    h.update(&(text.len() as u64).to_le_bytes());
    h.update(text.as_bytes());
    h.finalize().to_hex().to_string()
}

/// Reads a cache entry; `None` when it is missing or unusable (a corrupt one is logged).
fn read_cache(file: &Path) -> Option<CachedProgram> {
    let bytes = match fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(cache_file = %file.display(), "cannot read compile cache entry ({e}); recompiling");
            return None;
        }
    };
    let corrupt = |why: &str| {
        tracing::warn!(cache_file = %file.display(), "ignoring corrupt compile cache entry ({why}); recompiling");
    };
    let header = CACHE_MAGIC.len() + 32;
    if bytes.len() < header || &bytes[..CACHE_MAGIC.len()] != CACHE_MAGIC {
        corrupt("bad header");
        return None;
    }
    let payload = &bytes[header..];
    if blake3::hash(payload).as_bytes()[..] != bytes[CACHE_MAGIC.len()..header] {
        corrupt("checksum mismatch");
        return None;
    }
    match postcard::from_bytes::<CachedProgram>(payload) {
        Ok(entry) => Some(entry),
        Err(e) => {
            corrupt(&e.to_string());
            None
        }
    }
}

/// Writes a cache entry atomically (temporary file, then rename); failures are warnings.
fn write_cache(file: &Path, entry: &CachedProgramRef<'_>) {
    if let Err(e) = try_write_cache(file, entry) {
        tracing::warn!(cache_file = %file.display(), "cannot write compile cache entry ({e}); the program will be compiled again next time");
    }
}

fn try_write_cache(file: &Path, entry: &CachedProgramRef<'_>) -> io::Result<()> {
    let payload = postcard::to_stdvec(entry).map_err(io::Error::other)?;
    let dir = file
        .parent()
        .ok_or_else(|| io::Error::other("cache file has no directory"))?;
    fs::create_dir_all(dir)?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("entry");
    let tmp = dir.join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(CACHE_MAGIC)?;
        f.write_all(blake3::hash(&payload).as_bytes())?;
        f.write_all(&payload)?;
        f.sync_all()?;
        fs::rename(&tmp, file)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
