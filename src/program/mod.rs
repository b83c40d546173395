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
    fs, io, mem,
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
    register_circuit::{Circuit, Inst, Op, Reg},
};
use serde::{Deserialize, Serialize};

mod bristol;
mod cache;
mod compile;
mod constants;
mod describe;
mod error;
#[cfg(any(test, feature = "testing"))]
pub mod random;
mod stored;
mod values;

pub use cache::default_cache_dir;
use cache::*;
use compile::*;
use describe::*;
pub use error::ProgramError;
use stored::Stored;
pub use stored::{InstFile, StoredCircuitError};

use crate::engine::{CircuitShape, InstSource, InstSourceError, SliceSource};

pub use constants::{ConstValues, DeclaredConstants};

pub use bristol::BristolText;
use bristol::{BristolInfo, Layout, bits_to_hex, hex_to_bits, parse_bristol, write_bristol};

/// The garble_lang version this crate is built against. It is part of the cache key, so that
/// circuits compiled by another compiler version are never reused; a test checks it against
/// `Cargo.lock`.
pub const GARBLE_LANG_VERSION: &str = "0.7.0-alpha.1";

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
/// outputs. Cheap to share by reference; the engine only needs [`Program::shape`] and
/// [`Program::instructions`] (or, for a program held in memory, [`Program::circuit`]).
pub struct Program {
    path: PathBuf,
    /// The circuit; without its instructions when they stay on disk (`stored`).
    circuit: Circuit,
    hash: [u8; 32],
    inner: Inner,
    stored: Option<StoredInsts>,
}

/// The instructions of a program that were left in its compile cache entry.
struct StoredInsts {
    at: Stored,
    instructions: u64,
    xor_ops: u64,
    not_ops: u64,
}

/// How [`Program::load_with`] loads a program.
#[derive(Clone, Copy, Default)]
pub struct LoadOptions<'a> {
    /// The cache directory; `None` means [`default_cache_dir`] (no caching when that is
    /// unknown too).
    pub cache: Option<&'a Path>,
    /// The party constants: what [`DeclaredConstants::of`] found and every party's values.
    pub constants: Option<(&'a DeclaredConstants, &'a ConstValues)>,
    /// When the circuit comes from the cache and has at least this many instructions, they
    /// stay in the cache file and are streamed from it during a run ([`Program::instructions`]),
    /// so that memory does not grow with the circuit. `None`: always read into memory.
    pub stream_from: Option<u64>,
}

/// Circuits with at least this many instructions (16 MiB in memory) are streamed from the
/// compile cache by `mpc run` and `mpc party`.
pub const STREAM_FROM_INSTRUCTIONS: u64 = 1 << 20;

/// A program's instructions for the engine: from memory or streamed from the cache file.
pub enum ProgramInsts<'a> {
    /// The instructions of a program held in memory.
    Memory(SliceSource<'a>),
    /// Instructions read from the compile cache, a block at a time.
    File(InstFile),
}

impl InstSource for ProgramInsts<'_> {
    fn next_block(&mut self, out: &mut Vec<Inst>) -> Result<bool, InstSourceError> {
        match self {
            ProgramInsts::Memory(s) => s.next_block(out),
            ProgramInsts::File(f) => f.next_block(out),
        }
    }
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
        Self::load_with(
            path,
            &LoadOptions {
                cache,
                ..LoadOptions::default()
            },
        )
    }

    /// Loads and compiles a program without reading or writing any cache.
    pub fn load_uncached(path: &Path) -> Result<(Program, LoadReport), ProgramError> {
        Self::load_from(path, None, None, None)
    }

    /// Like [`Program::load_with_cache`] for a program with party constants: `declared` is
    /// what [`DeclaredConstants::of`] found in it and `values` every party's constants.
    pub fn load_with_constants(
        path: &Path,
        cache: Option<&Path>,
        declared: &DeclaredConstants,
        values: &ConstValues,
    ) -> Result<(Program, LoadReport), ProgramError> {
        Self::load_with(
            path,
            &LoadOptions {
                cache,
                constants: Some((declared, values)),
                stream_from: None,
            },
        )
    }

    /// Loads a program as `opts` says (see [`Program::load_with_cache`]).
    pub fn load_with(
        path: &Path,
        opts: &LoadOptions<'_>,
    ) -> Result<(Program, LoadReport), ProgramError> {
        let default_dir;
        let cache = match opts.cache {
            Some(dir) => Some(dir),
            None => {
                default_dir = default_cache_dir();
                default_dir.as_deref()
            }
        };
        Self::load_from(path, cache, opts.constants, opts.stream_from)
    }

    fn load_from(
        path: &Path,
        cache: Option<&Path>,
        consts: Option<(&DeclaredConstants, &ConstValues)>,
        stream_from: Option<u64>,
    ) -> Result<(Program, LoadReport), ProgramError> {
        let start = Instant::now();
        let bytes = fs::read(path).map_err(|source| ProgramError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|_| ProgramError::NotText {
            path: path.to_path_buf(),
        })?;
        let kind = detect_kind(path, &text);
        let garble_consts = match consts {
            Some((declared, values)) => declared.to_garble(values)?,
            None => HashMap::new(),
        };
        let const_text = consts
            .map(|(_, values)| constants::canonical(values))
            .unwrap_or_default();
        let cache_file =
            cache.map(|dir| dir.join(format!("{}.bin", cache_key(kind, &text, &const_text))));

        if let Some(file) = &cache_file
            && let Some(entry) = read_cache(file, stream_from)
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
                let (program, circuit) = compile_garble(path, &text, garble_consts)?;
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
                Program::new(path, circuit, Inner::Bristol(info))?
            }
        };
        if let Some(file) = &cache_file {
            program.write_cache(file);
        }
        let report = LoadReport {
            from_cache: false,
            elapsed: start.elapsed(),
            cache_file,
        };
        Ok((program, report))
    }

    /// Writes this (validated, in-memory) program to the compile cache.
    fn write_cache(&self, file: &Path) {
        let c = &self.circuit;
        let count = |f: fn(&Op) -> bool| c.insts.iter().filter(|i| f(&i.op)).count() as u64;
        let head = CachedHead {
            meta: match &self.inner {
                Inner::Garble { program, .. } => CachedMetaRef::Garble(program),
                Inner::Bristol(info) => CachedMetaRef::Bristol(info),
            },
            input_regs: c.input_regs.clone(),
            max_reg_count: c.max_reg_count,
            output_regs: c.output_regs.clone(),
            and_ops: c.and_ops,
            instructions: c.insts.len() as u64,
            xor_ops: count(|op| matches!(op, Op::Xor(_))),
            not_ops: count(|op| matches!(op, Op::Not(_))),
            hash: self.hash,
        };
        write_cache(file, &head, &c.insts);
    }

    /// Builds a program from a cache entry, checking that it fits the file's kind. Its
    /// instructions were validated when the entry was written; those read now are checked
    /// again, those left in the file are checked by the engine as they stream in.
    fn from_entry(
        path: &Path,
        kind: ProgramKind,
        text: &str,
        entry: CacheEntry,
    ) -> Result<Program, ProgramError> {
        let head = entry.head;
        let inner = match (kind, head.meta) {
            (ProgramKind::Garble, CachedMeta::Garble(program)) => Inner::Garble {
                source: text.to_string(),
                program,
            },
            (ProgramKind::Bristol, CachedMeta::Bristol(info)) => Inner::Bristol(info),
            _ => {
                return Err(ProgramError::InvalidCircuit {
                    path: path.to_path_buf(),
                    reason: "cache entry is of the wrong program kind".into(),
                });
            }
        };
        let mut circuit = Circuit {
            input_regs: head.input_regs,
            insts: Vec::new(),
            max_reg_count: head.max_reg_count,
            output_regs: head.output_regs,
            and_ops: head.and_ops,
        };
        match entry.insts {
            EntryInsts::Memory(insts) => {
                circuit.insts = insts;
                let program = Program::new(path, circuit, inner)?;
                if program.hash != head.hash {
                    return Err(ProgramError::InvalidCircuit {
                        path: path.to_path_buf(),
                        reason: "the cache entry's program hash does not match its circuit".into(),
                    });
                }
                Ok(program)
            }
            EntryInsts::Stored(at) => {
                let program = Program {
                    path: path.to_path_buf(),
                    circuit,
                    hash: head.hash,
                    inner,
                    stored: Some(StoredInsts {
                        at,
                        instructions: head.instructions,
                        xor_ops: head.xor_ops,
                        not_ops: head.not_ops,
                    }),
                };
                program.check_signature()?;
                Ok(program)
            }
        }
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
            stored: None,
        };
        program.check_signature()?;
        program.hash = program.compute_hash();
        Ok(program)
    }

    /// Checks the circuit's inputs and outputs against the program's signature.
    fn check_signature(&self) -> Result<(), ProgramError> {
        let invalid = |reason: String| ProgramError::InvalidCircuit {
            path: self.path.clone(),
            reason,
        };
        match &self.inner {
            Inner::Garble { program: prg, .. } => {
                if self.circuit.output_regs.len() < PANIC_RESULT_SIZE_IN_BITS {
                    return Err(invalid(
                        "the circuit has fewer outputs than garble's panic bits".into(),
                    ));
                }
                for party in 0..self.parties() {
                    if self.garble_param(prg, party).is_none() {
                        return Err(invalid(format!(
                            "the circuit has {} parties but `main` has no parameter for party {party}",
                            self.parties()
                        )));
                    }
                }
            }
            Inner::Bristol(info) => {
                if info.inputs != self.circuit.input_regs
                    || info.outputs.iter().sum::<usize>() != self.circuit.output_regs.len()
                {
                    return Err(invalid(
                        "the circuit does not match the Bristol header".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The register circuit that the protocol evaluates: `input_regs` per party, `insts`
    /// (validated: the `Input` instructions come first, party by party and bit by bit, and
    /// only there; every register is written before it is read), `output_regs`. For Garble programs the first
    /// [`PANIC_RESULT_SIZE_IN_BITS`] output bits are garble's panic information.
    ///
    /// For a program whose instructions stay on disk ([`Program::is_streamed`]), `insts` is
    /// empty: run it with [`Program::shape`] and [`Program::instructions`].
    pub fn circuit(&self) -> &Circuit {
        &self.circuit
    }

    /// Whether the instructions stay in the compile cache file and are streamed from it
    /// (see [`LoadOptions::stream_from`]).
    pub fn is_streamed(&self) -> bool {
        self.stored.is_some()
    }

    /// What the engine needs of the circuit before its instructions.
    pub fn shape(&self) -> CircuitShape {
        let mut shape = CircuitShape::of(&self.circuit);
        if let Some(stored) = &self.stored {
            shape.instructions = stored.instructions;
        }
        shape
    }

    /// The circuit's instructions for one run, from memory or read from the compile cache
    /// file a block at a time (a corrupt or truncated file fails the run with
    /// [`StoredCircuitError`]). Each call starts from the first instruction.
    pub fn instructions(&self) -> Result<ProgramInsts<'_>, ProgramError> {
        match &self.stored {
            None => Ok(ProgramInsts::Memory(SliceSource::new(&self.circuit.insts))),
            Some(stored) => Ok(ProgramInsts::File(InstFile::open(&stored.at)?)),
        }
    }

    /// [`Program::instructions`] as the engine's boxed stream (what
    /// [`crate::local::run_local_streamed`] opens once per party).
    pub fn open_instructions(&self) -> Result<Box<dyn InstSource + '_>, InstSourceError> {
        self.instructions()
            .map(|insts| Box::new(insts) as Box<dyn InstSource + '_>)
            .map_err(|e| Box::new(e) as InstSourceError)
    }

    /// The whole circuit in memory: this program's, or read from the cache file when its
    /// instructions stay there (for the tools that need all of it at once).
    fn whole_circuit(&self) -> Result<std::borrow::Cow<'_, Circuit>, ProgramError> {
        let Some(stored) = &self.stored else {
            return Ok(std::borrow::Cow::Borrowed(&self.circuit));
        };
        let insts = InstFile::open(&stored.at)?.read_all(stored.instructions)?;
        Ok(std::borrow::Cow::Owned(Circuit {
            insts,
            ..self.circuit.clone()
        }))
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
