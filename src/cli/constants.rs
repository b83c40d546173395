//! `--const`: the party constants of a Garble program (`PARTY_i::NAME`). `mpc run` and
//! `mpc check` take every party's (`--const PARTY_1::ROWS=3`); `mpc party` takes its own
//! (`--const ROWS=3`) and swaps them with the other parties before compiling.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use futures_util::future::{try_join, try_join_all};

use crate::channel::{Channel, Phase};
use crate::program::{ConstValues, DeclaredConstants, LoadOptions, LoadReport, Program};

use super::Failure;

/// Loads a program, compiling it with the given constants (`PARTY_i::NAME`, value) when it
/// declares party constants; `stream_from` as in [`LoadOptions::stream_from`].
pub fn load_with_all(
    path: &Path,
    given: &[(String, String)],
    stream_from: Option<u64>,
) -> Result<(Program, LoadReport), Failure> {
    let declared = DeclaredConstants::of(path).map_err(Failure::usage)?;
    let Some(declared) = declared else {
        if let Some((name, _)) = given.first() {
            return Err(Failure::usage(format!(
                "--const {name}: {} declares no party constants",
                path.display()
            )));
        }
        let opts = LoadOptions {
            stream_from,
            ..LoadOptions::default()
        };
        return Program::load_with(path, &opts).map_err(Failure::usage);
    };
    let mut values = ConstValues::new();
    for (name, value) in given {
        let (party, bare) = split_party(name).ok_or_else(|| {
            Failure::usage(format!(
                "--const {name}={value}: name the party's constant as PARTY_<i>::NAME (e.g. PARTY_0::ROWS=3)"
            ))
        })?;
        values
            .entry(party)
            .or_default()
            .insert(bare.to_string(), value.clone());
    }
    let opts = LoadOptions {
        constants: Some((&declared, &values)),
        stream_from,
        ..LoadOptions::default()
    };
    Program::load_with(path, &opts).map_err(Failure::usage)
}

/// This party's constants from `--const NAME=VALUE` (or `PARTY_<me>::NAME=VALUE`), checked
/// against what the program declares for it.
pub fn own(
    declared: &DeclaredConstants,
    me: usize,
    given: &[(String, String)],
) -> Result<BTreeMap<String, String>, Failure> {
    let mut mine = BTreeMap::new();
    for (name, value) in given {
        let bare = match split_party(name) {
            Some((p, bare)) if p == me => bare,
            Some((p, _)) => {
                return Err(Failure::usage(format!(
                    "--const {name}: party {me} sets only its own constants (PARTY_{me}::...), not party {p}'s"
                )));
            }
            None => name.as_str(),
        };
        mine.insert(bare.to_string(), value.clone());
    }
    declared.check(me, &mine).map_err(Failure::usage)?;
    Ok(mine)
}

/// Sends this party's constants to every other party and takes theirs, checking each against
/// the program; returns every party's.
pub async fn exchange<C: Channel>(
    ch: &C,
    me: usize,
    declared: &DeclaredConstants,
    mine: BTreeMap<String, String>,
) -> Result<ConstValues, Failure> {
    let n = declared.parties();
    let others: Vec<usize> = (0..n).filter(|&j| j != me).collect();
    let encoded = serde_json::to_vec(&mine)
        .map_err(|e| Failure::protocol(format!("cannot encode this party's constants: {e}")))?;
    let message = Bytes::from(encoded);
    let sends = try_join_all(
        others
            .iter()
            .map(|&j| ch.send(j, Phase::Constants, message.clone())),
    );
    let recvs = try_join_all(others.iter().map(|&j| ch.recv(j, Phase::Constants)));
    let (_, received) = try_join(sends, recvs)
        .await
        .map_err(|e| Failure::protocol(format!("while exchanging party constants: {e}")))?;
    let mut all = ConstValues::new();
    all.insert(me, mine);
    for (&j, msg) in others.iter().zip(&received) {
        let theirs: BTreeMap<String, String> = serde_json::from_slice(msg).map_err(|e| {
            Failure::protocol(format!(
                "party {j} sent constants that are not a name-value map: {e}"
            ))
        })?;
        declared.check(j, &theirs).map_err(|why| {
            Failure::protocol(format!(
                "party {j} sent constants that do not fit the program: {why}"
            ))
        })?;
        all.insert(j, theirs);
    }
    Ok(all)
}

/// `PARTY_2::ROWS` → (2, "ROWS").
fn split_party(name: &str) -> Option<(usize, &str)> {
    let (party, bare) = name.split_once("::")?;
    let index = party.strip_prefix("PARTY_")?.parse().ok()?;
    (!bare.is_empty()).then_some((index, bare))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names_split() {
        assert_eq!(split_party("PARTY_2::ROWS"), Some((2, "ROWS")));
        assert_eq!(split_party("ROWS"), None);
        assert_eq!(split_party("PARTY_x::ROWS"), None);
        assert_eq!(split_party("PARTY_1::"), None);
    }
}
