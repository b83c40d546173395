//! Participant identities: long-term X25519 key pairs (`mpc keygen`) and the session's
//! roster, which says which public key belongs to which seat. With a roster, the sealed
//! channel ([`super::sealed`]) authenticates every pair of participants with these keys, so
//! each party knows whom it computes with; that is what WRK17's security argument assumes.
//!
//! Formats (one line each, so they paste into mail and chat):
//! - a public key is the standard base64 of its 32 bytes (44 characters), as WireGuard
//!   prints its keys;
//! - a secret key file holds the base64 of the 32-byte secret on one line and must not be
//!   readable by group or others (mode 0600), as ssh insists for its keys;
//! - a roster has one line per seat, `SEAT PUBKEY`, where SEAT is `0` … `n-1` or `dealer`;
//!   blank lines and lines starting with `#` are ignored. Its hash (over the seats and keys in
//!   seat order, not the file's bytes) is bound into every key exchange, so comments and
//!   spacing may differ between participants but seats and keys may not.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};
use thiserror::Error;
use x25519_dalek::{PublicKey as DalekPublic, StaticSecret};
use zeroize::Zeroizing;

/// Length of keys in bytes.
const KEY_LEN: usize = 32;

/// A participant's public key, as the roster lists it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; KEY_LEN]);

impl PublicKey {
    /// Parses the one-line form `mpc keygen` prints.
    pub fn parse(text: &str) -> Result<PublicKey, KeyFormatError> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|_| KeyFormatError::NotBase64)?;
        let bytes: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| KeyFormatError::WrongLength(b.len()))?;
        Ok(PublicKey(bytes))
    }

    /// The raw key.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&BASE64.encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

/// Why a key's text is not a key.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum KeyFormatError {
    /// Not base64 at all.
    #[error("it is not base64 (a key is the 44-character line `mpc keygen` prints)")]
    NotBase64,
    /// Base64 of the wrong length.
    #[error("it decodes to {0} bytes, not 32 (a key is the 44-character line `mpc keygen` prints)")]
    WrongLength(usize),
}

/// This participant's secret key (`--identity FILE`). Never printed.
#[derive(Clone)]
pub struct Identity {
    secret: Zeroizing<[u8; KEY_LEN]>,
    public: PublicKey,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity(public {}, secret redacted)", self.public)
    }
}

/// Why an identity cannot be created, read or written.
#[derive(Debug, Error)]
pub enum IdentityError {
    /// The file cannot be read.
    #[error("cannot read the identity file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The file is readable by others.
    #[error(
        "the identity file {path} is readable by others (mode {mode:o}); a secret key must be \
         private: run `chmod 600 {path}`"
    )]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file does not hold a secret key.
    #[error(
        "the identity file {path} does not hold a secret key: {why}; create one with `mpc keygen \
         FILE` (and give --identity the FILE, not FILE.pub)"
    )]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: KeyFormatError,
    },
    /// The key file exists already.
    #[error(
        "{path} already exists; pass --force to replace it (the old key is lost, and every \
         roster that lists it must change)"
    )]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// Writing a key file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}

impl Identity {
    /// A fresh random identity.
    pub fn generate() -> Identity {
        Identity::from_secret(rand::random::<[u8; KEY_LEN]>())
    }

    fn from_secret(secret: [u8; KEY_LEN]) -> Identity {
        let public = DalekPublic::from(&StaticSecret::from(secret)).to_bytes();
        Identity {
            secret: Zeroizing::new(secret),
            public: PublicKey(public),
        }
    }

    /// Reads a secret key file written by [`Identity::write`] (`mpc keygen`), refusing one
    /// that others can read.
    pub fn read(path: &Path) -> Result<Identity, IdentityError> {
        let read_err = |source| IdentityError::Read {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(IdentityError::TooOpen {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        #[cfg(not(unix))]
        let _ = meta;
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(read_err)?);
        let bytes =
            Zeroizing::new(
                BASE64
                    .decode(text.trim())
                    .map_err(|_| IdentityError::Format {
                        path: path.to_path_buf(),
                        why: KeyFormatError::NotBase64,
                    })?,
            );
        let secret: [u8; KEY_LEN] =
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| IdentityError::Format {
                    path: path.to_path_buf(),
                    why: KeyFormatError::WrongLength(bytes.len()),
                })?;
        Ok(Identity::from_secret(secret))
    }

    /// Writes the secret key to `path` (mode 0600, created anew unless `force`) and the
    /// public key to `path.pub`.
    pub fn write(&self, path: &Path, force: bool) -> Result<PathBuf, IdentityError> {
        let public_path = public_path(path);
        for p in [path, public_path.as_path()] {
            if !force && p.exists() {
                return Err(IdentityError::Exists {
                    path: p.to_path_buf(),
                });
            }
        }
        let write_err = |p: &Path| {
            let p = p.to_path_buf();
            move |source| IdentityError::Write { path: p, source }
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true);
        if force {
            options.create(true).truncate(true);
        } else {
            options.create_new(true);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(write_err(path))?;
        #[cfg(unix)]
        {
            // An existing file (--force) keeps its old mode unless we set it.
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(write_err(path))?;
        }
        let line = Zeroizing::new(format!("{}\n", BASE64.encode(*self.secret)));
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(write_err(path))?;
        std::fs::write(&public_path, format!("{}\n", self.public))
            .map_err(write_err(&public_path))?;
        Ok(public_path)
    }

    /// The public key that goes into the roster.
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// The raw secret key, for the key exchange.
    pub(crate) fn secret_bytes(&self) -> &[u8; KEY_LEN] {
        &self.secret
    }
}

/// Where `mpc keygen FILE` puts the public key: `FILE.pub`.
pub fn public_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".pub");
    PathBuf::from(name)
}

/// A seat of a session: a computing party or the dealer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Seat {
    /// Computing party `i`.
    Party(usize),
    /// The trusted dealer.
    Dealer,
}

impl fmt::Display for Seat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seat::Party(i) => write!(f, "{i}"),
            Seat::Dealer => f.write_str("dealer"),
        }
    }
}

/// Who holds which key in a session (`--roster FILE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roster {
    /// Party `i`'s key at index `i`.
    parties: Vec<PublicKey>,
    dealer: Option<PublicKey>,
    hash: [u8; 32],
}

/// Why a roster cannot be used.
#[derive(Debug, Error)]
pub enum RosterError {
    /// The file cannot be read.
    #[error("cannot read the roster {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `SEAT PUBKEY`.
    #[error("{origin} line {line}: {why}")]
    Line {
        /// The file.
        origin: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// The roster does not fit the session.
    #[error("{origin}: {why}")]
    Mismatch {
        /// The file.
        origin: String,
        /// What does not fit.
        why: String,
    },
}

impl Roster {
    /// Reads a roster file.
    pub fn read(path: &Path) -> Result<Roster, RosterError> {
        let text = std::fs::read_to_string(path).map_err(|source| RosterError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Roster::parse(&text, &format!("the roster {}", path.display()))
    }

    /// Parses roster text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Roster, RosterError> {
        let mut seats: BTreeMap<Seat, (PublicKey, usize)> = BTreeMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let bad = |why: String| RosterError::Line {
                origin: origin.to_string(),
                line,
                why,
            };
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = trimmed.split_whitespace().collect();
            let [seat, key] = fields[..] else {
                return Err(bad(format!(
                    "expected `SEAT PUBKEY` (SEAT is 0, 1, ... or dealer), got {} field{}",
                    fields.len(),
                    if fields.len() == 1 { "" } else { "s" }
                )));
            };
            let seat = match seat {
                "dealer" => Seat::Dealer,
                number => Seat::Party(number.parse().map_err(|_| {
                    bad(format!(
                        "'{number}' is not a seat: use 0, 1, ... for the parties or dealer"
                    ))
                })?),
            };
            let key = PublicKey::parse(key)
                .map_err(|why| bad(format!("the key of seat {seat} is not a public key: {why}")))?;
            if let Some((_, first)) = seats.get(&seat) {
                return Err(bad(format!(
                    "seat {seat} is listed twice (first on line {first})"
                )));
            }
            if let Some((other, _)) = seats.iter().find(|(_, (k, _))| *k == key) {
                return Err(bad(format!(
                    "seats {other} and {seat} have the same key; every participant needs its own \
                     (`mpc keygen`)"
                )));
            }
            seats.insert(seat, (key, line));
        }
        let mismatch = |why: String| RosterError::Mismatch {
            origin: origin.to_string(),
            why,
        };
        let dealer = seats.remove(&Seat::Dealer).map(|(k, _)| k);
        let mut parties = Vec::with_capacity(seats.len());
        for (i, (seat, (key, _))) in seats.into_iter().enumerate() {
            if seat != Seat::Party(i) {
                return Err(mismatch(format!(
                    "it has no seat {i} (the party seats must be 0, 1, ... without gaps)"
                )));
            }
            parties.push(key);
        }
        if parties.len() < 2 {
            return Err(mismatch(format!(
                "it lists {} party seat{}; a session needs at least 2",
                parties.len(),
                if parties.len() == 1 { "" } else { "s" }
            )));
        }
        let hash = roster_hash(&parties, dealer.as_ref());
        Ok(Roster {
            parties,
            dealer,
            hash,
        })
    }

    /// Checks that the roster fits a session of `parties` parties (with a dealer if
    /// `dealer`) and that `identity` holds the key of seat `me`.
    pub fn check_session(
        &self,
        parties: usize,
        dealer: bool,
        me: Seat,
        identity: &Identity,
        origin: &str,
    ) -> Result<(), RosterError> {
        let mismatch = |why: String| RosterError::Mismatch {
            origin: origin.to_string(),
            why,
        };
        if self.parties.len() != parties {
            return Err(mismatch(format!(
                "it lists {} party seats, but the session has {parties} parties",
                self.parties.len()
            )));
        }
        if dealer && self.dealer.is_none() {
            return Err(mismatch(
                "it has no `dealer` line, but this session uses a dealer; with a roster the \
                 dealer must prove its key too"
                    .into(),
            ));
        }
        let Some(expected) = self.key(me) else {
            return Err(mismatch(format!("it has no seat {me}")));
        };
        if expected != identity.public() {
            return Err(mismatch(format!(
                "seat {me} belongs to the key {expected}, but --identity holds the key {}; give \
                 the secret key of seat {me} (or fix the roster)",
                identity.public()
            )));
        }
        Ok(())
    }

    /// The key of a seat, if the roster lists it.
    pub fn key(&self, seat: Seat) -> Option<PublicKey> {
        match seat {
            Seat::Party(i) => self.parties.get(i).copied(),
            Seat::Dealer => self.dealer,
        }
    }

    /// Number of party seats.
    pub fn parties(&self) -> usize {
        self.parties.len()
    }

    /// The hash that every key exchange binds: equal rosters, equal hashes.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }
}

/// SHA-256 over the seats and keys in seat order (parties, then the dealer if any).
fn roster_hash(parties: &[PublicKey], dealer: Option<&PublicKey>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"mpc roster v1\n");
    for (i, key) in parties.iter().enumerate() {
        h.update(format!("{i} {key}\n").as_bytes());
    }
    if let Some(key) = dealer {
        h.update(format!("dealer {key}\n").as_bytes());
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roster_text(keys: &[&Identity], dealer: Option<&Identity>) -> String {
        let mut text = String::from("# test roster\n\n");
        for (i, k) in keys.iter().enumerate() {
            text.push_str(&format!("{i}   {}\n", k.public()));
        }
        if let Some(d) = dealer {
            text.push_str(&format!("dealer {}\n", d.public()));
        }
        text
    }

    #[test]
    fn keys_round_trip_through_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alice.key");
        let id = Identity::generate();
        let public_path = id.write(&path, false).unwrap();
        assert_eq!(public_path, dir.path().join("alice.key.pub"));
        let back = Identity::read(&path).unwrap();
        assert_eq!(back.public(), id.public());
        let printed = std::fs::read_to_string(&public_path).unwrap();
        assert_eq!(PublicKey::parse(&printed).unwrap(), id.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // No silent overwrite; --force replaces.
        let err = Identity::generate().write(&path, false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        let other = Identity::generate();
        other.write(&path, true).unwrap();
        assert_eq!(Identity::read(&path).unwrap().public(), other.public());
    }

    #[cfg(unix)]
    #[test]
    fn a_readable_secret_key_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        Identity::generate().write(&path, false).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Identity::read(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn a_public_key_file_is_not_an_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "not a key\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let err = Identity::read(&path).unwrap_err().to_string();
        assert!(err.contains("does not hold a secret key"), "{err}");
    }

    #[test]
    fn rosters_parse_and_hash_by_content() {
        let ids: Vec<Identity> = (0..4).map(|_| Identity::generate()).collect();
        let refs: Vec<&Identity> = ids[..3].iter().collect();
        let a = Roster::parse(&roster_text(&refs, Some(&ids[3])), "a").unwrap();
        assert_eq!(a.parties(), 3);
        assert_eq!(a.key(Seat::Party(1)), Some(ids[1].public()));
        assert_eq!(a.key(Seat::Dealer), Some(ids[3].public()));
        // Order of lines and comments do not matter; seats and keys do.
        let shuffled = format!(
            "dealer {}\n# comment\n2 {}\n0 {}\n1 {}\n",
            ids[3].public(),
            ids[2].public(),
            ids[0].public(),
            ids[1].public()
        );
        assert_eq!(Roster::parse(&shuffled, "b").unwrap().hash(), a.hash());
        let swapped = format!(
            "0 {}\n1 {}\n2 {}\ndealer {}\n",
            ids[1].public(),
            ids[0].public(),
            ids[2].public(),
            ids[3].public()
        );
        assert_ne!(Roster::parse(&swapped, "c").unwrap().hash(), a.hash());
        let without_dealer = Roster::parse(&roster_text(&refs, None), "d").unwrap();
        assert_ne!(without_dealer.hash(), a.hash());
        assert!(
            a.check_session(3, true, Seat::Party(2), &ids[2], "a")
                .is_ok()
        );
        let err = a
            .check_session(3, true, Seat::Party(1), &ids[2], "a")
            .unwrap_err()
            .to_string();
        assert!(err.contains("seat 1 belongs to the key"), "{err}");
        let err = without_dealer
            .check_session(3, true, Seat::Party(0), &ids[0], "d")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no `dealer` line"), "{err}");
        let err = a
            .check_session(4, false, Seat::Party(0), &ids[0], "a")
            .unwrap_err()
            .to_string();
        assert!(err.contains("the session has 4 parties"), "{err}");
    }

    #[test]
    fn bad_rosters_say_which_line() {
        let k = Identity::generate().public();
        let k2 = Identity::generate().public();
        for (text, needle) in [
            (format!("0 {k}\n1\n"), "line 2: expected `SEAT PUBKEY`"),
            (format!("0 {k}\nx {k2}\n"), "'x' is not a seat"),
            (
                format!("0 {k}\n1 abc\n"),
                "the key of seat 1 is not a public key",
            ),
            (format!("0 {k}\n0 {k2}\n"), "seat 0 is listed twice"),
            (format!("0 {k}\n1 {k}\n"), "have the same key"),
            (format!("0 {k}\n2 {k2}\n"), "no seat 1"),
            (format!("0 {k}\n"), "at least 2"),
        ] {
            let err = Roster::parse(&text, "r").unwrap_err().to_string();
            assert!(err.contains(needle), "{err} should contain {needle}");
        }
    }
}
