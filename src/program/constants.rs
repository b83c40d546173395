//! Party constants: a Garble program may size its types by values that each party provides
//! (`const ROWS: usize = PARTY_0::ROWS;`), as polytune lets parties do. Every party must
//! compile the same circuit, so the parties exchange their constants before compiling; the
//! program hash in the handshake then shows any disagreement.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use garble_lang::TypedProgram;
use garble_lang::ast::Type;
use garble_lang::literal::Literal;

use super::ProgramError;

/// Constant values by party and name, as Garble literals (`3`, `3usize`).
pub type ConstValues = BTreeMap<usize, BTreeMap<String, String>>;

/// The party constants a Garble program declares.
pub struct DeclaredConstants {
    path: PathBuf,
    parties: usize,
    by_party: BTreeMap<usize, BTreeMap<String, Type>>,
    checked: TypedProgram,
}

impl DeclaredConstants {
    /// Reads and type-checks a program and returns the party constants it declares, or
    /// `None` for a Bristol circuit or a program that declares none.
    pub fn of(path: &Path) -> Result<Option<DeclaredConstants>, ProgramError> {
        let text = fs::read_to_string(path).map_err(|source| ProgramError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if super::detect_kind(path, &text) != super::ProgramKind::Garble {
            return Ok(None);
        }
        let checked = garble_lang::check(&text).map_err(|e| ProgramError::Compile {
            path: path.to_path_buf(),
            pretty: e.prettify(&text),
        })?;
        if checked.const_deps.is_empty() {
            return Ok(None);
        }
        let parties = checked
            .fn_defs
            .get("main")
            .map(|main| main.params.len())
            .unwrap_or(0);
        let mut by_party: BTreeMap<usize, BTreeMap<String, Type>> = BTreeMap::new();
        for (party_name, consts) in &checked.const_deps {
            let party = party_index(party_name)
                .filter(|&p| p < parties)
                .ok_or_else(|| ProgramError::Constants {
                    path: path.to_path_buf(),
                    reason: format!(
                        "constants come from {party_name}, which is not a party of main \
                         (PARTY_0 to PARTY_{})",
                        parties.saturating_sub(1)
                    ),
                })?;
            let entry = by_party.entry(party).or_default();
            for (name, (ty, _)) in consts {
                entry.insert(name.clone(), ty.clone());
            }
        }
        Ok(Some(DeclaredConstants {
            path: path.to_path_buf(),
            parties,
            by_party,
            checked,
        }))
    }

    /// The number of parties (parameters of `main`).
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// What party `party` must provide, as `NAME: TYPE` for messages.
    pub fn describe(&self, party: usize) -> String {
        match self.by_party.get(&party) {
            Some(consts) if !consts.is_empty() => consts
                .iter()
                .map(|(name, ty)| format!("{name}: {ty}"))
                .collect::<Vec<_>>()
                .join(", "),
            _ => "nothing".into(),
        }
    }

    /// Checks party `party`'s constants: exactly the declared names, each a literal of its
    /// type. The error says what is missing, unknown or malformed.
    pub fn check(&self, party: usize, values: &BTreeMap<String, String>) -> Result<(), String> {
        self.literals(party, values).map(|_| ())
    }

    fn literals(
        &self,
        party: usize,
        values: &BTreeMap<String, String>,
    ) -> Result<HashMap<String, Literal>, String> {
        let empty = BTreeMap::new();
        let declared = self.by_party.get(&party).unwrap_or(&empty);
        if let Some(name) = values.keys().find(|n| !declared.contains_key(*n)) {
            return Err(format!(
                "the program declares no constant PARTY_{party}::{name}; party {party} provides {}",
                self.describe(party)
            ));
        }
        let mut out = HashMap::new();
        for (name, ty) in declared {
            let text = values.get(name).ok_or_else(|| {
                format!(
                    "party {party} must provide PARTY_{party}::{name}: {ty} (`mpc party --const \
                     {name}=VALUE`, or `--const PARTY_{party}::{name}=VALUE` for mpc run and check)"
                )
            })?;
            let literal = Literal::parse(&self.checked, ty, text).map_err(|e| {
                format!(
                    "PARTY_{party}::{name} = {text} is not a {ty}: {}",
                    e.prettify(text).trim()
                )
            })?;
            out.insert(name.clone(), literal);
        }
        Ok(out)
    }

    /// Every party's constants as garble_lang takes them; each party's values are checked.
    pub(super) fn to_garble(
        &self,
        values: &ConstValues,
    ) -> Result<HashMap<String, HashMap<String, Literal>>, ProgramError> {
        let mut out = HashMap::new();
        for party in 0..self.parties {
            let given = values.get(&party).cloned().unwrap_or_default();
            let literals =
                self.literals(party, &given)
                    .map_err(|reason| ProgramError::Constants {
                        path: self.path.clone(),
                        reason,
                    })?;
            if !literals.is_empty() {
                out.insert(format!("PARTY_{party}"), literals);
            }
        }
        Ok(out)
    }
}

/// `PARTY_3` → 3.
fn party_index(name: &str) -> Option<usize> {
    name.strip_prefix("PARTY_")?.parse().ok()
}

/// A canonical text of the constants, for the compile cache key.
pub(super) fn canonical(values: &ConstValues) -> String {
    let mut out = String::new();
    for (party, consts) in values {
        for (name, value) in consts {
            out.push_str(&format!("{party}\u{0}{name}\u{0}{value}\u{0}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn party_names_are_indices() {
        assert_eq!(party_index("PARTY_0"), Some(0));
        assert_eq!(party_index("PARTY_12"), Some(12));
        assert_eq!(party_index("PARTY_X"), None);
        assert_eq!(party_index("ALICE"), None);
    }
}
