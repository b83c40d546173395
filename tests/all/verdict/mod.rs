//! The verdict on a run in which one endpoint cheated: what every *honest* endpoint ended with,
//! judged one by one. Shared by the security tests (`mod verdict;`).
//!
//! The rules, for every honest endpoint (every party and the dealer except the cheater):
//! - it returned the correct output, or
//! - it failed a check itself: an [`EngineError::Check`] naming one of the expected checks and
//!   blaming the cheater (see [`Blame`]), never an honest party alone, or
//! - it stopped on an abort notice ([`ChannelError::PeerAborted`]) from the cheater or from
//!   another honest endpoint that stopped too (and is judged by the same rules), so every
//!   chain of notices starts at a detector or at the cheater. The notice's wording is not
//!   inspected.
//!
//! Anything else (a wrong output, a timeout, a malformed message, a check that blames only
//! honest parties or names another check) fails the test. The cheater's own result is not
//! judged: it runs honest code over a cheating channel, so it may well notice its own
//! deviation, but what counts is what the honest parties found. A run is *caught* when at
//! least one honest endpoint failed a check itself (the detectors); the abort notices that
//! the others report are only the detectors' findings passed on.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fmt::Write as _;

use mpc::channel::ChannelError;
use mpc::engine::{EngineError, PartyOutcome};

/// How one endpoint of a run ended.
#[derive(Debug)]
pub enum End {
    /// A party's output.
    Output(Vec<bool>),
    /// The dealer finished.
    Dealt,
    /// The endpoint stopped with this error.
    Failed(EngineError),
}

/// Turns the results of `run_local_each` into one [`End`] per endpoint (parties in order,
/// then the dealer when `with_dealer`).
pub fn ends(
    results: Vec<Result<Option<PartyOutcome>, EngineError>>,
    dealt: Result<(), EngineError>,
    with_dealer: bool,
) -> Vec<End> {
    let mut out: Vec<End> = results
        .into_iter()
        .map(|r| match r {
            Ok(Some(o)) => End::Output(
                o.output
                    .expect("every party learns the output in these tests"),
            ),
            Ok(None) => End::Dealt,
            Err(e) => End::Failed(e),
        })
        .collect();
    if with_dealer {
        out.push(match dealt {
            Ok(()) => End::Dealt,
            Err(e) => End::Failed(e),
        });
    }
    out
}

/// Whom an honest party's failed check may blame.
#[derive(Debug, Clone)]
pub struct Blame {
    /// Endpoints the blame must include at least one of (the cheater, as a rule).
    pub must: Vec<usize>,
    /// Endpoints the blame may name at all. A check that cannot tell two parties apart
    /// ("one of party 1, party 2") may name an honest party next to the cheater.
    pub may: Vec<usize>,
}

impl Blame {
    /// Only the cheater.
    pub fn only(cheater: usize) -> Self {
        Blame {
            must: vec![cheater],
            may: vec![cheater],
        }
    }

    /// The cheater, possibly together with some of `others` (for checks that cannot tell
    /// which of several parties deviated).
    pub fn among(cheater: usize, others: &[usize]) -> Self {
        let mut may = vec![cheater];
        may.extend_from_slice(others);
        Blame {
            must: vec![cheater],
            may,
        }
    }
}

/// The honest endpoints that failed a check themselves, and who else stopped.
#[derive(Debug)]
pub struct Verdict {
    /// Honest endpoints whose own check failed (each blaming the cheater).
    pub detectors: Vec<usize>,
    /// Honest endpoints that stopped on an abort notice.
    pub relayed: Vec<usize>,
    /// Honest endpoints that returned the correct output.
    pub correct: Vec<usize>,
}

impl Verdict {
    /// Whether an honest endpoint caught the cheater.
    pub fn caught(&self) -> bool {
        !self.detectors.is_empty()
    }
}

/// The endpoints a blame string names: "party 2", "the dealer", "one of party 1, party 2".
fn named(peer: &str, parties: usize) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    if peer.contains("the dealer") {
        out.insert(parties);
    }
    let mut rest = peer;
    while let Some(at) = rest.find("party ") {
        rest = &rest[at + "party ".len()..];
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        if let Ok(i) = digits.parse() {
            out.insert(i);
        }
    }
    out
}

fn describe(ends: &[End]) -> String {
    let mut s = String::new();
    for (i, e) in ends.iter().enumerate() {
        let what = match e {
            End::Output(o) => format!("output {o:?}"),
            End::Dealt => "dealt".into(),
            End::Failed(e) => format!("error: {e}"),
        };
        let _ = writeln!(s, "  endpoint {i}: {what}");
    }
    s
}

/// Judges every honest endpoint of a run in which endpoint `cheater` cheated (`parties`
/// computing parties; endpoint `parties` is the dealer if there is one): panics on any
/// outcome the rules of this module forbid, and returns who detected what.
pub fn judge(
    ends: &[End],
    parties: usize,
    cheater: usize,
    expected: &[bool],
    checks: &[&str],
    blame: &Blame,
) -> Verdict {
    let all = describe(ends);
    let mut v = Verdict {
        detectors: Vec::new(),
        relayed: Vec::new(),
        correct: Vec::new(),
    };
    for (i, end) in ends.iter().enumerate() {
        if i == cheater {
            continue;
        }
        match end {
            End::Output(o) => {
                assert_eq!(
                    o, expected,
                    "honest party {i} accepted a WRONG result:\n{all}"
                );
                v.correct.push(i);
            }
            End::Dealt => v.correct.push(i),
            End::Failed(EngineError::Check { check, peer, .. }) => {
                assert!(
                    checks.contains(check),
                    "honest endpoint {i} failed '{check}', none of {checks:?}:\n{all}"
                );
                let names = named(peer, parties);
                assert!(
                    names.iter().any(|n| blame.must.contains(n))
                        && names.iter().all(|n| blame.may.contains(n)),
                    "honest endpoint {i} blames '{peer}' for '{check}' (must name one of {:?}, \
                     may name only {:?}):\n{all}",
                    blame.must,
                    blame.may
                );
                v.detectors.push(i);
            }
            End::Failed(EngineError::Channel(ChannelError::PeerAborted { peer, .. })) => {
                let from: Vec<usize> = named(peer, parties).into_iter().collect();
                assert!(
                    matches!(from[..], [s] if s != i
                        && (s == cheater || matches!(ends.get(s), Some(End::Failed(_))))),
                    "honest endpoint {i} stopped on an abort notice from '{peer}', neither the \
                     cheater nor an endpoint that stopped:\n{all}"
                );
                v.relayed.push(i);
            }
            End::Failed(e) => {
                panic!(
                    "honest endpoint {i} failed with neither a check nor an abort notice ({e}):\n{all}"
                )
            }
        }
    }
    v
}

/// [`judge`], and the run must have been caught: some honest endpoint's own check failed.
pub fn assert_detected(
    ends: &[End],
    parties: usize,
    cheater: usize,
    expected: &[bool],
    checks: &[&str],
    blame: &Blame,
) -> Verdict {
    let v = judge(ends, parties, cheater, expected, checks, blame);
    assert!(
        v.caught(),
        "no honest endpoint detected the cheating itself:\n{}",
        describe(ends)
    );
    v
}
