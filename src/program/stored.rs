//! The instructions of a compiled circuit on disk, in the compile cache file after its head
//! (see [`super::cache`]): written once in checksummed blocks, read back sequentially a block
//! at a time, so that a run can stream a circuit of tens of millions of instructions
//! through a buffer of one block ([`InstFile`], an [`InstSource`] for the engine).
//!
//! Each block is `count: u32`, `len: u32` (little-endian), a 16-byte tag and `len` bytes of
//! postcard-encoded instructions (about 7 bytes each). The tag is BLAKE3 over the head's
//! checksum, the block number and the bytes, so a damaged, reordered or foreign block is
//! refused; a block with count and length 0 (its tag over the block number and `end`)
//! closes the list, so a cut-off file is refused too.

use std::{
    fs::File,
    io::{self, BufReader, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use garble_lang::register_circuit::Inst;

use crate::engine::{InstSource, InstSourceError};

/// Instructions per block.
const BLOCK_INSTS: usize = 1 << 16;

/// Largest encoded block accepted: postcard needs at most 1 + 4 · 5 bytes per instruction.
const MAX_BLOCK_BYTES: usize = BLOCK_INSTS * 21;

/// Bytes of a block's header: count, length, tag.
const BLOCK_HEADER: usize = 4 + 4 + 16;

/// Most instructions [`InstFile::read_all`] reserves room for before reading them.
const RESERVE_MAX: u64 = 1 << 24;

/// Why a circuit stored in the compile cache cannot be read; each message names the file
/// and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoredCircuitError {
    /// The file could not be opened or read.
    #[error(
        "cannot read the compiled circuit in {}: {source}; check the cache directory, or delete the file and run `mpc check PROGRAM` to compile the program again",
        path.display()
    )]
    Io {
        /// The cache file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file ends too early.
    #[error(
        "the compiled circuit in {} is truncated ({detail}); delete the file and run `mpc check PROGRAM` to compile the program again",
        path.display()
    )]
    Truncated {
        /// The cache file.
        path: PathBuf,
        /// Where it ends.
        detail: String,
    },
    /// A block fails its checksum or does not decode.
    #[error(
        "the compiled circuit in {} is corrupt ({detail}); delete the file and run `mpc check PROGRAM` to compile the program again",
        path.display()
    )]
    Corrupt {
        /// The cache file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// Where a circuit's instructions start in a cache file.
#[derive(Debug, Clone)]
pub(super) struct Stored {
    /// The cache file.
    pub(super) path: PathBuf,
    /// Offset of the first block.
    pub(super) offset: u64,
    /// The head's checksum, which every block's tag covers.
    pub(super) head_hash: [u8; 32],
}

fn block_tag(head_hash: &[u8; 32], block: u64, payload: &[u8]) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    h.update(head_hash);
    h.update(&block.to_le_bytes());
    h.update(payload);
    let mut tag = [0; 16];
    tag.copy_from_slice(&h.finalize().as_bytes()[..16]);
    tag
}

/// Writes `insts` as blocks, then the closing block.
pub(super) fn write_blocks(
    w: &mut impl Write,
    head_hash: &[u8; 32],
    insts: &[Inst],
) -> io::Result<()> {
    let mut block = 0u64;
    for chunk in insts.chunks(BLOCK_INSTS) {
        let payload = postcard::to_stdvec(chunk).map_err(io::Error::other)?;
        w.write_all(&(chunk.len() as u32).to_le_bytes())?;
        w.write_all(&(payload.len() as u32).to_le_bytes())?;
        w.write_all(&block_tag(head_hash, block, &payload))?;
        w.write_all(&payload)?;
        block += 1;
    }
    w.write_all(&[0; 8])?;
    w.write_all(&block_tag(head_hash, block, b"end"))
}

/// A stored circuit's instructions, read in order a block at a time.
pub struct InstFile {
    path: PathBuf,
    reader: BufReader<File>,
    head_hash: [u8; 32],
    block: u64,
    read: u64,
    done: bool,
    payload: Vec<u8>,
}

impl InstFile {
    /// Opens the instructions of `stored`.
    pub(super) fn open(stored: &Stored) -> Result<Self, StoredCircuitError> {
        let io_err = |source| StoredCircuitError::Io {
            path: stored.path.clone(),
            source,
        };
        let mut file = File::open(&stored.path).map_err(io_err)?;
        file.seek(SeekFrom::Start(stored.offset)).map_err(io_err)?;
        Ok(Self {
            path: stored.path.clone(),
            reader: BufReader::with_capacity(1 << 16, file),
            head_hash: stored.head_hash,
            block: 0,
            read: 0,
            done: false,
            payload: Vec::new(),
        })
    }

    /// Fills `buf` from the file; a premature end is [`StoredCircuitError::Truncated`].
    fn fill(&mut self, buf_len: usize, what: &str) -> Result<(), StoredCircuitError> {
        self.payload.resize(buf_len, 0);
        match self.reader.read_exact(&mut self.payload) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Err(StoredCircuitError::Truncated {
                    path: self.path.clone(),
                    detail: format!(
                        "it ends in {what} of block {} after {} instructions",
                        self.block, self.read
                    ),
                })
            }
            Err(source) => Err(StoredCircuitError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// A [`StoredCircuitError::Corrupt`] naming this file.
    fn corrupt(&self, detail: String) -> StoredCircuitError {
        StoredCircuitError::Corrupt {
            path: self.path.clone(),
            detail,
        }
    }

    /// Appends the next block's instructions to `out`; `Ok(false)` after the last one.
    pub fn read_block(&mut self, out: &mut Vec<Inst>) -> Result<bool, StoredCircuitError> {
        if self.done {
            return Ok(false);
        }
        self.fill(BLOCK_HEADER, "the header")?;
        let word = |at: usize| u32::from_le_bytes([0, 1, 2, 3].map(|i| self.payload[at + i]));
        let (count, len) = (word(0) as usize, word(4) as usize);
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&self.payload[8..BLOCK_HEADER]);
        if count == 0 && len == 0 {
            if tag != block_tag(&self.head_hash, self.block, b"end") {
                return Err(self.corrupt(format!(
                    "the end mark after block {} fails its checksum",
                    self.block
                )));
            }
            self.done = true;
            return Ok(false);
        }
        if count == 0 || count > BLOCK_INSTS || len > MAX_BLOCK_BYTES {
            return Err(self.corrupt(format!(
                "block {} claims {count} instructions in {len} bytes",
                self.block
            )));
        }
        self.fill(len, "the instructions")?;
        if tag != block_tag(&self.head_hash, self.block, &self.payload) {
            return Err(self.corrupt(format!("block {} fails its checksum", self.block)));
        }
        let insts: Vec<Inst> = postcard::from_bytes(&self.payload)
            .map_err(|e| self.corrupt(format!("block {} does not decode: {e}", self.block)))?;
        if insts.len() != count {
            return Err(self.corrupt(format!(
                "block {} holds {} instructions, its header says {count}",
                self.block,
                insts.len()
            )));
        }
        out.extend_from_slice(&insts);
        self.block += 1;
        self.read += count as u64;
        Ok(true)
    }

    /// Every remaining instruction of a circuit announced to have `instructions` of them
    /// (room is reserved for at most [`RESERVE_MAX`] up front, so that a damaged count
    /// cannot make it reserve gigabytes before the blocks are checked).
    pub(super) fn read_all(mut self, instructions: u64) -> Result<Vec<Inst>, StoredCircuitError> {
        let reserve = usize::try_from(instructions.min(RESERVE_MAX)).unwrap_or(0);
        let mut insts = Vec::with_capacity(reserve);
        while self.read_block(&mut insts)? {}
        Ok(insts)
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl InstSource for InstFile {
    fn next_block(&mut self, out: &mut Vec<Inst>) -> Result<bool, InstSourceError> {
        Ok(self.read_block(out)?)
    }
}
