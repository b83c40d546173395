//! The output: the transcript comparison, then the evaluator's masked outputs (with a digest
//! of each output party's labels) and everyone's shares of the output masks to the output
//! parties, who check them and then tell the others that they have the result.

use bytes::Bytes;
use subtle::ConstantTimeEq;

use super::Online;
use crate::channel::Phase;
use crate::engine::EngineError;
use crate::engine::share::{MacDigest, bit_at, pack_bits, packed_len};
use crate::engine::transcript;

/// What an output party tells the others once it has checked its result.
pub(crate) const OUTPUT_DONE: &[u8] = b"output received";

/// Who sends what to whom in the output phase, from this party's side.
pub(crate) struct OutputPlan {
    /// Whether this party learns the result.
    pub(crate) i_learn: bool,
    /// The other output parties: this party sends each its output messages.
    pub(crate) learners: Vec<usize>,
    /// The other parties that do not learn the result: an output party sends each
    /// [`OUTPUT_DONE`] once it has the result.
    pub(crate) non_learners: Vec<usize>,
    /// The parties this party takes output messages from (every other party if it learns).
    pub(crate) sources: Vec<usize>,
    /// The evaluator, when this party takes the output labels from it.
    pub(crate) labels_from: Option<usize>,
}

/// Output messages from one party: the masked outputs with a digest of the labels (from the
/// evaluator only), and its shares of the output masks.
pub(crate) type OutputMessages = (Option<Bytes>, Bytes);

impl Online<'_> {
    /// Every coin toss must have given every party the same result: compares this party's
    /// transcript digest `run` with the other parties' (`received`, in the order of
    /// [`Online::others`]).
    pub(crate) fn check_transcripts(
        &self,
        run: &[u8; 32],
        received: &[Bytes],
    ) -> Result<(), EngineError> {
        for (j, msg) in self.slots.others().zip(received) {
            transcript::check(self.names.name(j), msg, run, "before the output")?;
        }
        Ok(())
    }

    /// Who sends what to whom.
    pub(crate) fn output_plan(&self) -> OutputPlan {
        let cfg = self.cfg;
        let i_learn = cfg.learns(cfg.me);
        let (learners, non_learners) = self.slots.others().partition(|&j| cfg.learns(j));
        OutputPlan {
            i_learn,
            learners,
            non_learners,
            sources: if i_learn { self.others() } else { Vec::new() },
            labels_from: (i_learn && !self.is_eval).then_some(cfg.evaluator),
        }
    }

    fn output_regs(&self) -> Vec<usize> {
        self.circuit
            .output_regs
            .iter()
            .map(|r| r.0 as usize)
            .collect()
    }

    /// The output messages for output party `j`. Evaluator → every other party: masked
    /// outputs and a digest of that party's labels. Everyone → everyone: its shares of the
    /// output masks and a digest of their MACs.
    pub(crate) fn output_messages(&self, j: usize) -> OutputMessages {
        let outs = self.output_regs();
        let labels = self.is_eval.then(|| {
            let m = self.m();
            let s = self.slots.slot(j);
            let mut msg = pack_bits(outs.iter().map(|&r| self.ev_m[r]));
            let mut digest = MacDigest::with_capacity(outs.len());
            for &r in &outs {
                digest.push(self.ev_labels[r * m + s]);
            }
            msg.extend_from_slice(&digest.finish());
            Bytes::from(msg)
        });
        (labels, self.share_opening(&outs, j))
    }

    /// A party that does not learn the result: checks the output parties' notices
    /// (`done`, in the order of [`OutputPlan::learners`]).
    pub(crate) fn check_done(&self, learners: &[usize], done: &[Bytes]) -> Result<(), EngineError> {
        for (&j, msg) in learners.iter().zip(done) {
            if msg.as_ref() != OUTPUT_DONE {
                return Err(self.malformed(j, Phase::OutputDone, "not the output notice".into()));
            }
        }
        Ok(())
    }

    /// An output party: checks the output messages of `sources` (`received`, in that order)
    /// and returns the result.
    pub(crate) fn learn(
        &self,
        sources: &[usize],
        received: &[OutputMessages],
    ) -> Result<Vec<bool>, EngineError> {
        let outs = self.output_regs();
        let nb = packed_len(outs.len());
        let mut masked: Vec<bool> = if self.is_eval {
            outs.iter().map(|&r| self.ev_m[r]).collect()
        } else {
            vec![false; outs.len()]
        };
        let mut lambda: Vec<bool> = outs.iter().map(|&r| self.bits[r]).collect();
        for (&j, (labels, shares)) in sources.iter().zip(received) {
            if let Some(msg) = labels {
                if msg.len() != nb + 32 {
                    return Err(self.malformed(
                        j,
                        Phase::OutputLabels,
                        format!("expected {} bytes, got {}", nb + 32, msg.len()),
                    ));
                }
                let mut digest = MacDigest::with_capacity(outs.len());
                for (x, &r) in outs.iter().enumerate() {
                    masked[x] = bit_at(msg, x);
                    let l = self.labels[r];
                    digest.push(if masked[x] { l ^ self.delta } else { l });
                }
                if !bool::from(digest.finish().ct_eq(&msg[nb..])) {
                    return Err(EngineError::Check {
                        check: "output label check",
                        peer: self.names.name(j),
                        detail: "the labels of the masked outputs do not match this party's labels (the evaluator may have flipped an output)".into(),
                    });
                }
            }
            self.check_share_opening(
                &outs,
                j,
                shares,
                &mut lambda,
                Phase::OutputShares,
                "output share MAC check",
                "its shares of the output masks do not match their MACs",
            )?;
        }
        Ok(masked.iter().zip(&lambda).map(|(a, b)| a ^ b).collect())
    }
}
