//! The on-disk compile cache: where it lives, its key, and reading and writing entries
//! atomically (a corrupt entry is a warning and a recompile, never an error).

use super::*;

/// Version of the on-disk cache format; bump it when [`CachedProgram`] changes shape.
pub(super) const CACHE_FORMAT: &str = "mpc-program-cache-v1";

/// The compile options used for every Garble program; also part of the cache key.
pub(super) const COMPILE_OPTIONS: &str = "register circuit, optimize_duplicate_gates=true";

/// First bytes of every cache file.
pub(super) const CACHE_MAGIC: &[u8; 8] = b"MPCPRG\x00\x01";

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

/// What a cache file holds (owned, for reading).
#[derive(Deserialize)]
pub(super) enum CachedProgram {
    Garble(Box<GarbleProgram>, Circuit),
    Bristol(BristolInfo, Circuit),
}

/// What a cache file holds (borrowed, for writing); encodes exactly like [`CachedProgram`].
#[derive(Serialize)]
pub(super) enum CachedProgramRef<'a> {
    Garble(&'a GarbleProgram, &'a Circuit),
    Bristol(&'a BristolInfo, &'a Circuit),
}

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

/// Reads a cache entry; `None` when it is missing or unusable (a corrupt one is logged).
pub(super) fn read_cache(file: &Path) -> Option<CachedProgram> {
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
pub(super) fn write_cache(file: &Path, entry: &CachedProgramRef<'_>) {
    if let Err(e) = try_write_cache(file, entry) {
        tracing::warn!(cache_file = %file.display(), "cannot write compile cache entry ({e}); the program will be compiled again next time");
    }
}

pub(super) fn try_write_cache(file: &Path, entry: &CachedProgramRef<'_>) -> io::Result<()> {
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
