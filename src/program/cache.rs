//! The on-disk compile cache: where it lives, its key, and reading and writing entries
//! atomically (a corrupt entry is a warning and a recompile, never an error).
//!
//! An entry is the magic, the file's length, the head's length and checksum, the head (a
//! [`CachedHead`]: what is needed to parse inputs and format outputs, the circuit's shape and
//! counts, the program hash), then the instructions in checksummed blocks
//! ([`super::stored`]), so that a large circuit can be streamed from the entry during a run
//! instead of being held in memory.

use std::io::{Read as _, Seek as _, SeekFrom, Write as _};

use super::stored::{InstFile, Stored, write_blocks};
use super::*;

/// Version of the on-disk cache format; bump it when [`CachedProgram`] changes shape.
pub(super) const CACHE_FORMAT: &str = "mpc-program-cache-v2";

/// The compile options used for every Garble program; also part of the cache key.
pub(super) const COMPILE_OPTIONS: &str = "register circuit, optimize_duplicate_gates=true";

/// First bytes of every cache file.
pub(super) const CACHE_MAGIC: &[u8; 8] = b"MPCPRG\x00\x02";

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

/// The kind-specific part of a cache entry (owned, for reading).
#[derive(Deserialize)]
pub(super) enum CachedMeta {
    Garble(Box<GarbleProgram>),
    Bristol(BristolInfo),
}

/// The kind-specific part of a cache entry (borrowed, for writing); encodes exactly like
/// [`CachedMeta`].
#[derive(Serialize)]
pub(super) enum CachedMetaRef<'a> {
    Garble(&'a GarbleProgram),
    Bristol(&'a BristolInfo),
}

/// Everything a cache entry holds but the instructions, which follow it in blocks
/// ([`super::stored`]); `M` is [`CachedMeta`] or [`CachedMetaRef`].
#[derive(Serialize, Deserialize)]
pub(super) struct CachedHead<M> {
    pub(super) meta: M,
    pub(super) input_regs: Vec<usize>,
    pub(super) max_reg_count: usize,
    pub(super) output_regs: Vec<Reg>,
    pub(super) and_ops: usize,
    pub(super) instructions: u64,
    pub(super) xor_ops: u64,
    pub(super) not_ops: u64,
    /// The program hash, computed when the entry was written from the validated circuit.
    pub(super) hash: [u8; 32],
}

/// A cache entry read back: its head and its instructions, either read into memory or left
/// in the file to be streamed.
pub(super) struct CacheEntry {
    pub(super) head: CachedHead<CachedMeta>,
    pub(super) insts: EntryInsts,
}

/// Where a cache entry's instructions are.
pub(super) enum EntryInsts {
    Memory(Vec<Inst>),
    Stored(Stored),
}

/// Bytes before the head: magic, file length, head length, head checksum.
const PREFIX: usize = 8 + 8 + 8 + 32;

/// The cache key: BLAKE3 of the crate versions, compile options, file kind, content and
/// party constants.
pub(super) fn cache_key(kind: ProgramKind, text: &str, consts: &str) -> String {
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
    if !consts.is_empty() {
        h.update(&(consts.len() as u64).to_le_bytes());
        h.update(consts.as_bytes());
    }
    h.finalize().to_hex().to_string()
}

/// Reads a cache entry; `None` when it is missing or unusable (a corrupt or truncated one is
/// logged). The instructions are left in the file when there are at least `stream_from` of
/// them (the head and the file's length are checked now, every block as it is read),
/// else read and checked now.
pub(super) fn read_cache(file: &Path, stream_from: Option<u64>) -> Option<CacheEntry> {
    match try_read_cache(file, stream_from) {
        Ok(entry) => Some(entry),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            tracing::warn!(cache_file = %file.display(), "ignoring corrupt compile cache entry ({e}); recompiling");
            None
        }
        Err(e) => {
            tracing::warn!(cache_file = %file.display(), "cannot read compile cache entry ({e}); recompiling");
            None
        }
    }
}

fn try_read_cache(file: &Path, stream_from: Option<u64>) -> io::Result<CacheEntry> {
    let corrupt = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    let mut f = fs::File::open(file)?;
    let actual_len = f.metadata()?.len();
    let mut prefix = [0u8; PREFIX];
    f.read_exact(&mut prefix)
        .map_err(|_| corrupt("bad header".into()))?;
    if &prefix[..8] != CACHE_MAGIC {
        return Err(corrupt("bad header".into()));
    }
    let word = |at: usize| u64::from_le_bytes(prefix[at..at + 8].try_into().unwrap_or([0; 8]));
    let (file_len, head_len) = (word(8), word(16));
    if actual_len != file_len {
        return Err(corrupt(format!(
            "truncated or extended: {actual_len} bytes, written as {file_len}"
        )));
    }
    if head_len > file_len.saturating_sub(PREFIX as u64) {
        return Err(corrupt("bad header".into()));
    }
    let mut head_bytes = vec![0u8; head_len as usize];
    f.read_exact(&mut head_bytes)?;
    let head_hash = head_checksum(file_len, &head_bytes);
    if head_hash[..] != prefix[24..PREFIX] {
        return Err(corrupt("checksum mismatch".into()));
    }
    let head: CachedHead<CachedMeta> =
        postcard::from_bytes(&head_bytes).map_err(|e| corrupt(e.to_string()))?;
    let stored = Stored {
        path: file.to_path_buf(),
        offset: PREFIX as u64 + head_len,
        head_hash,
    };
    let insts = if stream_from.is_some_and(|min| head.instructions >= min) {
        EntryInsts::Stored(stored)
    } else {
        let insts = InstFile::open(&stored)
            .and_then(|f| f.read_all(head.instructions))
            .map_err(|e| corrupt(e.to_string()))?;
        EntryInsts::Memory(insts)
    };
    Ok(CacheEntry { head, insts })
}

/// BLAKE3 over the file length and the head: it binds every block's tag to this entry.
fn head_checksum(file_len: u64, head: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&file_len.to_le_bytes());
    h.update(head);
    *h.finalize().as_bytes()
}

/// Writes a cache entry atomically (temporary file, then rename); failures are warnings.
pub(super) fn write_cache(file: &Path, head: &CachedHead<CachedMetaRef<'_>>, insts: &[Inst]) {
    if let Err(e) = try_write_cache(file, head, insts) {
        tracing::warn!(cache_file = %file.display(), "cannot write compile cache entry ({e}); the program will be compiled again next time");
    }
}

pub(super) fn try_write_cache(
    file: &Path,
    head: &CachedHead<CachedMetaRef<'_>>,
    insts: &[Inst],
) -> io::Result<()> {
    let head_bytes = postcard::to_stdvec(head).map_err(io::Error::other)?;
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
        // Every block's tag covers the head's checksum, which covers the file's length: the
        // blocks are encoded once to learn that length, then written after room for the
        // prefix and the head, which go last.
        let mut w = io::BufWriter::new(fs::File::create(&tmp)?);
        let body_at = (PREFIX + head_bytes.len()) as u64;
        w.seek(SeekFrom::Start(body_at))?;
        let mut counter = CountingWriter::default();
        write_blocks(&mut counter, &[0; 32], insts)?;
        let file_len = body_at + counter.0;
        let head_hash = head_checksum(file_len, &head_bytes);
        write_blocks(&mut w, &head_hash, insts)?;
        w.seek(SeekFrom::Start(0))?;
        w.write_all(CACHE_MAGIC)?;
        w.write_all(&file_len.to_le_bytes())?;
        w.write_all(&(head_bytes.len() as u64).to_le_bytes())?;
        w.write_all(&head_hash)?;
        w.write_all(&head_bytes)?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        fs::rename(&tmp, file)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Counts the bytes written to it (the blocks' length before they are written).
#[derive(Default)]
struct CountingWriter(u64);

impl io::Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
