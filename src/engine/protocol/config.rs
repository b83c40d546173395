//! What a party needs to know about the session, and the one place where party parameters
//! (party count, this party's index, the evaluator, the output parties, the chunk size) are
//! checked. The engine checks a whole [`PartyConfig`] before it sends anything; the CLI
//! checks its flags with the same functions and words the refusal after its flags.

use garble_lang::register_circuit::{Circuit, Op};

use super::circuit::{CircuitShape, inputs_not_first, validate_shape};
use crate::engine::preprocess::SourceKind;
use crate::engine::{EngineError, MAX_PARTIES};

/// Default number of AND gates per chunk.
pub const DEFAULT_CHUNK_ANDS: usize = 1 << 14;

/// What a party needs to know about the session.
#[derive(Debug, Clone)]
pub struct PartyConfig {
    /// This party's index.
    pub me: usize,
    /// Number of computing parties.
    pub parties: usize,
    /// The evaluator's index.
    pub evaluator: usize,
    /// Hash of the program, compared in the handshake.
    pub program_hash: [u8; 32],
    /// The caller's binding of the session, e.g. a hash of the session name and the roster
    /// ([`crate::engine::session_id`]); compared in the handshake and part of the run id.
    pub session_id: [u8; 32],
    /// Where the correlated randomness comes from.
    pub source: SourceKind,
    /// AND gates per chunk (memory bound vs. rounds).
    pub chunk_ands: usize,
    /// The parties that learn the result (sorted, no repeats; every party by default, see
    /// [`PartyConfig::all_learn`]). The others get nothing from the output phase but a
    /// notice that the output parties have their result.
    pub outputs: Vec<usize>,
}

/// Why party parameters cannot make a session. The messages name the engine's fields; the
/// CLI words the same refusals after its flags.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Fewer than 2 or more than [`MAX_PARTIES`] parties.
    #[error("a session needs at least 2 and at most {MAX_PARTIES} parties, not {parties}")]
    PartyCount {
        /// The party count asked for.
        parties: usize,
    },
    /// This party's index is not below the party count.
    #[error(
        "party index {party} and evaluator {evaluator} must both be below the party count {parties}"
    )]
    Party {
        /// This party's index.
        party: usize,
        /// The evaluator's index.
        evaluator: usize,
        /// The party count.
        parties: usize,
    },
    /// The evaluator's index is not below the party count.
    #[error(
        "party index {} and evaluator {evaluator} must both be below the party count {parties}",
        party.map_or_else(|| "-".to_string(), |p| p.to_string())
    )]
    Evaluator {
        /// This party's index, when one party is being configured.
        party: Option<usize>,
        /// The evaluator's index.
        evaluator: usize,
        /// The party count.
        parties: usize,
    },
    /// An output party that does not exist.
    #[error(
        "the output parties {outputs:?} must be distinct party indices below {parties}, at least one"
    )]
    OutputParty {
        /// The first party named that does not exist.
        party: usize,
        /// Every output party named.
        outputs: Vec<usize>,
        /// The party count.
        parties: usize,
    },
    /// No output party, or output parties not sorted without repeats.
    #[error(
        "the output parties {outputs:?} must be distinct party indices below {parties}, at least one"
    )]
    Outputs {
        /// The output parties given.
        outputs: Vec<usize>,
        /// The party count.
        parties: usize,
    },
    /// Chunks of no AND gates (the online phase would never finish).
    #[error("a chunk must hold at least 1 AND gate")]
    ChunkAnds,
}

impl PartyConfig {
    /// Every party index of a session of `parties`, for [`PartyConfig::outputs`].
    pub fn all_learn(parties: usize) -> Vec<usize> {
        (0..parties).collect()
    }

    /// The party count alone: at least 2, at most [`MAX_PARTIES`].
    pub fn check_party_count(parties: usize) -> Result<(), ConfigError> {
        if !(2..=MAX_PARTIES).contains(&parties) {
            return Err(ConfigError::PartyCount { parties });
        }
        Ok(())
    }

    /// The one check of party parameters, in this order: party count, this party's index
    /// (`me`, absent when every party is run locally), evaluator, output parties, chunk
    /// size. `outputs` is a list as a user gives it (any order, repeats allowed, empty for
    /// every party); returns it sorted without repeats, for [`PartyConfig::outputs`].
    pub fn check_params(
        parties: usize,
        me: Option<usize>,
        evaluator: usize,
        outputs: &[usize],
        chunk_ands: usize,
    ) -> Result<Vec<usize>, ConfigError> {
        Self::check_party_count(parties)?;
        if let Some(party) = me.filter(|&p| p >= parties) {
            return Err(ConfigError::Party {
                party,
                evaluator,
                parties,
            });
        }
        if evaluator >= parties {
            return Err(ConfigError::Evaluator {
                party: me,
                evaluator,
                parties,
            });
        }
        if let Some(&party) = outputs.iter().find(|&&p| p >= parties) {
            return Err(ConfigError::OutputParty {
                party,
                outputs: outputs.to_vec(),
                parties,
            });
        }
        if chunk_ands == 0 {
            return Err(ConfigError::ChunkAnds);
        }
        if outputs.is_empty() {
            return Ok(Self::all_learn(parties));
        }
        let mut sorted = outputs.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        Ok(sorted)
    }

    /// [`PartyConfig::check_params`] on this configuration, whose output parties must
    /// already be sorted without repeats (and not empty).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let outputs = Self::check_params(
            self.parties,
            Some(self.me),
            self.evaluator,
            &self.outputs,
            self.chunk_ands,
        )?;
        if self.outputs != outputs {
            return Err(ConfigError::Outputs {
                outputs: self.outputs.clone(),
                parties: self.parties,
            });
        }
        Ok(())
    }

    /// Whether `party` learns the result.
    pub(crate) fn learns(&self, party: usize) -> bool {
        self.outputs.binary_search(&party).is_ok()
    }
}

/// Checks the configuration, then the circuit's shape and this party's input against it:
/// everything the engine needs before it sends its first message. The instructions are
/// checked as they stream in ([`super::circuit`]); an in-memory circuit is also checked as a
/// whole first ([`validate_circuit`]).
pub(crate) fn validate_run(
    cfg: &PartyConfig,
    shape: &CircuitShape,
    input: &[bool],
) -> Result<(), EngineError> {
    cfg.validate()?;
    let n = cfg.parties;
    if shape.input_regs.len() != n {
        return Err(EngineError::Setup(format!(
            "the program takes inputs from {} parties, but the session has {n}",
            shape.input_regs.len()
        )));
    }
    if input.len() != shape.input_regs[cfg.me] {
        return Err(EngineError::Setup(format!(
            "party {} must provide {} input bits, got {}",
            cfg.me,
            shape.input_regs[cfg.me],
            input.len()
        )));
    }
    validate_shape(shape)
}

/// Checks a whole in-memory circuit before the run: garble_lang's own validation, and the
/// inputs before the first gate.
pub(crate) fn validate_circuit(circuit: &Circuit) -> Result<(), EngineError> {
    circuit
        .validate()
        .map_err(|e| EngineError::Setup(format!("the compiled circuit is invalid: {e:?}")))?;
    let total = circuit.total_inputs();
    let inputs_first = circuit
        .insts
        .iter()
        .enumerate()
        .all(|(i, inst)| matches!(inst.op, Op::Input(_)) == (i < total));
    if !inputs_first || circuit.insts.len() < total {
        return Err(inputs_not_first());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::preprocess::SourceKind;

    fn config(parties: usize, me: usize, evaluator: usize, outputs: &[usize]) -> PartyConfig {
        PartyConfig {
            me,
            parties,
            evaluator,
            program_hash: [0; 32],
            session_id: [0; 32],
            source: SourceKind::Ot,
            chunk_ands: 64,
            outputs: outputs.to_vec(),
        }
    }

    #[test]
    fn the_engine_wording_is_kept() {
        let e = config(MAX_PARTIES + 1, 0, 0, &[0]).validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("a session needs at least 2 and at most {MAX_PARTIES} parties, not 257")
        );
        let e = config(3, 3, 0, &[0]).validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "party index 3 and evaluator 0 must both be below the party count 3"
        );
        let e = config(3, 1, 4, &[0]).validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "party index 1 and evaluator 4 must both be below the party count 3"
        );
        let e = config(3, 1, 0, &[2, 1]).validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "the output parties [2, 1] must be distinct party indices below 3, at least one"
        );
        let e = config(3, 1, 0, &[]).validate().unwrap_err();
        assert!(matches!(e, ConfigError::Outputs { .. }), "{e:?}");
        let e = config(3, 1, 0, &[1, 1]).validate().unwrap_err();
        assert!(matches!(e, ConfigError::Outputs { .. }), "{e:?}");
        let e = config(3, 1, 0, &[0, 3]).validate().unwrap_err();
        assert_eq!(
            e,
            ConfigError::OutputParty {
                party: 3,
                outputs: vec![0, 3],
                parties: 3
            }
        );
        assert_eq!(
            e.to_string(),
            "the output parties [0, 3] must be distinct party indices below 3, at least one"
        );
        let mut cfg = config(3, 1, 0, &[0]);
        cfg.chunk_ands = 0;
        assert_eq!(cfg.validate(), Err(ConfigError::ChunkAnds));
        assert_eq!(config(3, 1, 2, &[0, 2]).validate(), Ok(()));
    }

    #[test]
    fn output_parties_are_sorted_without_repeats() {
        let check = |outputs: &[usize]| PartyConfig::check_params(3, None, 0, outputs, 1);
        assert_eq!(check(&[]), Ok(vec![0, 1, 2]));
        assert_eq!(check(&[2, 0, 2]), Ok(vec![0, 2]));
        assert_eq!(
            check(&[1, 5]),
            Err(ConfigError::OutputParty {
                party: 5,
                outputs: vec![1, 5],
                parties: 3
            })
        );
    }
}
