//! What every step of the OT-based preprocessing shares: the per-party context, the
//! fixed-key hash, and coin tossing.

use bytes::Bytes;
use subtle::ConstantTimeEq;

use crate::channel::{Channel, PeerNames, Phase};
use crate::engine::aes::{Aes, Prg, sigma};
use crate::engine::share::{Block, Slots};
use crate::engine::transcript::Transcript;
use crate::engine::{EngineError, exchange};

/// The fixed, public key of the hash's permutation π. Distinct from the garbling hash's key,
/// so that preprocessing and garbling never evaluate π on related inputs by construction.
const TCCR_KEY: [u8; 16] = *b"mpc prep TCCR v1";

/// The tweakable correlation-robust hash of Guo–Katz–Wang–Yu over fixed-key AES:
/// `H(x, t) = π(σ(x) ⊕ t) ⊕ σ(x)`, σ(x_L ‖ x_R) = (x_L ⊕ x_R) ‖ x_L. The half-AND and the
/// leaky-AND check hash keys of the form K and K ⊕ Δ, exactly the correlation it is built for.
pub struct Tccr {
    cipher: Aes,
}

impl Default for Tccr {
    fn default() -> Self {
        Self::new()
    }
}

impl Tccr {
    /// The hash with its fixed key.
    pub fn new() -> Self {
        Self {
            cipher: Aes::new(TCCR_KEY),
        }
    }

    /// Replaces every `buf[i]` by `H(buf[i], tweaks[i])`; `scratch` avoids allocating.
    pub fn hash(&self, buf: &mut [Block], tweaks: &[Block], scratch: &mut Vec<Block>) {
        // One pass keeps σ(x) in `scratch` and puts σ(x) ⊕ t in `buf` for the cipher.
        scratch.clear();
        scratch.reserve(buf.len());
        for (b, t) in buf.iter_mut().zip(tweaks) {
            let s = sigma(*b);
            scratch.push(s);
            *b = s ^ t;
        }
        self.cipher.encrypt(buf);
        for (b, s) in buf.iter_mut().zip(scratch.iter()) {
            // π(σ(x) ⊕ t) ⊕ σ(x).
            *b ^= s;
        }
    }
}

/// What one party knows while preprocessing: its channel, position and global key.
pub struct Ctx<'c, C: Channel> {
    /// The session channel.
    pub ch: &'c C,
    /// This party and its peers.
    pub slots: Slots,
    /// The other parties in slot order.
    pub others: Vec<usize>,
    /// Names for error messages.
    pub names: PeerNames,
    /// This party's global key Δ (lowest bit 1).
    pub delta: Block,
    /// Number of the current batch (part of every hash tweak and commitment).
    pub batch: u64,
    /// Identifies this run of the protocol (agreed in the handshake); binds every hash,
    /// commitment and coin toss to it.
    pub run_id: [u8; 32],
    /// Secret local randomness.
    pub rng: Prg,
    /// The run id and every coin-toss result so far, compared before the output.
    pub transcript: Transcript,
}

impl<C: Channel> Ctx<'_, C> {
    /// Sends one message to every peer and receives one from each (slot order).
    pub async fn broadcast(&self, phase: Phase, msg: Bytes) -> Result<Vec<Bytes>, EngineError> {
        let out = self.others.iter().map(|&j| (j, msg.clone())).collect();
        exchange(self.ch, phase, out, &self.others).await
    }

    /// Sends `msgs[s]` to the peer in slot s and receives one message from each.
    pub async fn exchange_each(
        &self,
        phase: Phase,
        msgs: Vec<Bytes>,
    ) -> Result<Vec<Bytes>, EngineError> {
        let out = self.others.iter().copied().zip(msgs).collect();
        exchange(self.ch, phase, out, &self.others).await
    }

    /// A malformed-message error for the peer in slot `s`.
    pub fn malformed(&self, s: usize, phase: Phase, detail: String) -> EngineError {
        EngineError::Malformed {
            peer: self.names.name(self.others[s]),
            phase,
            detail,
        }
    }

    /// Checks that the message from slot `s` has exactly `len` bytes.
    pub fn expect_len(
        &self,
        s: usize,
        phase: Phase,
        msg: &[u8],
        len: usize,
    ) -> Result<(), EngineError> {
        if msg.len() != len {
            return Err(self.malformed(
                s,
                phase,
                format!("expected {len} bytes, got {}", msg.len()),
            ));
        }
        Ok(())
    }

    /// A failed-check error naming the peer in slot `s`.
    pub fn check_failed(&self, check: &'static str, s: usize, detail: String) -> EngineError {
        EngineError::Check {
            check,
            peer: self.names.name(self.others[s]),
            detail,
        }
    }

    /// "party 1" or "one of party 1, party 2" for a check that cannot tell who cheated.
    pub fn some_peer(&self) -> String {
        if self.others.len() == 1 {
            self.names.name(self.others[0])
        } else {
            let all: Vec<String> = self.others.iter().map(|&j| self.names.name(j)).collect();
            format!("one of {}", all.join(", "))
        }
    }
}

/// A multi-party coin toss in two rounds: everyone commits to a random seed, then opens it;
/// the coin is the XOR of all seeds, uniform as long as one party is honest. The commitments
/// go out before the value the coin must not depend on is known to anyone but its sender
/// (e.g. before the OT extension's challenge is needed), the openings after.
///
/// Commitments are bound to the run id, the batch, the coin's label and the committing
/// party, so none verifies in another run or place. A party can still send different
/// commitments and openings to different parties; then the honest parties hold different
/// coins, which is why every coin goes into the transcript ([`Ctx::transcript`]) that the
/// parties compare before any output.
pub struct CoinToss {
    label: &'static [u8],
    seed: [u8; 32],
    commitments: Vec<[u8; 32]>,
}

/// The commitment of `party` to its `seed` for the coin `label` of batch `batch` of run
/// `run_id`. Its inputs have fixed lengths except the label, which comes last but one and
/// is preceded by its length, so distinct inputs never hash the same bytes.
fn coin_commitment(
    run_id: &[u8; 32],
    label: &[u8],
    party: usize,
    batch: u64,
    seed: &[u8; 32],
) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"mpc coin toss v2");
    h.update(run_id);
    h.update(&(label.len() as u64).to_le_bytes());
    h.update(label);
    h.update(&(party as u64).to_le_bytes());
    h.update(&batch.to_le_bytes());
    h.update(seed);
    *h.finalize().as_bytes()
}

/// The name of the check that a wrong coin opening fails.
pub const COIN_CHECK: &str = "coin toss commitment check";

/// Bytes of a coin commitment.
pub const COMMITMENT: usize = 32;

/// This party's seed and commitment of a coin toss whose commitments travel at the head of
/// another message, which saves the commitments a round of their own. That message must go
/// out before the value the coin must not depend on is known to anyone but its sender (the
/// same condition as for [`CoinToss::commit`]).
pub struct DrawnCoin {
    label: &'static [u8],
    seed: [u8; 32],
    commitment: [u8; COMMITMENT],
}

impl DrawnCoin {
    /// This party's commitment, to put at the head of its message.
    pub fn commitment(&self) -> &[u8; COMMITMENT] {
        &self.commitment
    }

    /// `msg` with this party's commitment at its head.
    pub fn prefixed(&self, msg: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(COMMITMENT + msg.len());
        out.extend_from_slice(&self.commitment);
        out.extend_from_slice(msg);
        Bytes::from(out)
    }

    /// Takes every peer's commitment off the head of its message (slot order) and returns
    /// the coin, ready to open, and the rest of each message. A message too short to hold a
    /// commitment is malformed.
    pub fn received<C: Channel>(
        self,
        ctx: &Ctx<'_, C>,
        phase: Phase,
        msgs: Vec<Bytes>,
    ) -> Result<(CoinToss, Vec<Bytes>), EngineError> {
        let mut commitments = Vec::with_capacity(msgs.len());
        let mut rest = Vec::with_capacity(msgs.len());
        for (s, mut msg) in msgs.into_iter().enumerate() {
            if msg.len() < COMMITMENT {
                return Err(ctx.malformed(
                    s,
                    phase,
                    format!(
                        "{} bytes cannot hold the {}-byte coin commitment at its head",
                        msg.len(),
                        COMMITMENT
                    ),
                ));
            }
            let head = msg.split_to(COMMITMENT);
            let mut c = [0u8; COMMITMENT];
            c.copy_from_slice(&head);
            commitments.push(c);
            rest.push(msg);
        }
        let coin = CoinToss {
            label: self.label,
            seed: self.seed,
            commitments,
        };
        Ok((coin, rest))
    }
}

impl CoinToss {
    /// This party's seed for the coin `label` and its commitment, for a message of its own
    /// ([`CoinToss::commit`]) or the head of another ([`DrawnCoin`]).
    pub fn draw<C: Channel>(ctx: &mut Ctx<'_, C>, label: &'static [u8]) -> DrawnCoin {
        let mut seed = [0u8; 32];
        let mut blocks = [0u128; 2];
        ctx.rng.fill(&mut blocks);
        seed[..16].copy_from_slice(&blocks[0].to_le_bytes());
        seed[16..].copy_from_slice(&blocks[1].to_le_bytes());
        let commitment = coin_commitment(&ctx.run_id, label, ctx.slots.me, ctx.batch, &seed);
        DrawnCoin {
            label,
            seed,
            commitment,
        }
    }

    /// Round 1: sends this party's commitment and receives everyone else's.
    pub async fn commit<C: Channel>(
        ctx: &mut Ctx<'_, C>,
        phase: Phase,
        label: &'static [u8],
    ) -> Result<CoinToss, EngineError> {
        let drawn = Self::draw(ctx, label);
        let received = ctx
            .broadcast(phase, Bytes::copy_from_slice(drawn.commitment()))
            .await?;
        for (s, msg) in received.iter().enumerate() {
            ctx.expect_len(s, phase, msg, COMMITMENT)?;
        }
        let (coin, _) = drawn.received(ctx, phase, received)?;
        Ok(coin)
    }

    /// Round 2: opens the seeds, checks every opening against its commitment, absorbs the
    /// coin into the transcript and returns it.
    pub async fn open<C: Channel>(
        self,
        ctx: &mut Ctx<'_, C>,
        phase: Phase,
    ) -> Result<[u8; 32], EngineError> {
        let received = ctx
            .broadcast(phase, Bytes::copy_from_slice(&self.seed))
            .await?;
        let mut coin = self.seed;
        for (s, msg) in received.iter().enumerate() {
            ctx.expect_len(s, phase, msg, 32)?;
            let mut seed = [0u8; 32];
            seed.copy_from_slice(msg);
            let expected =
                coin_commitment(&ctx.run_id, self.label, ctx.others[s], ctx.batch, &seed);
            if !bool::from(expected.ct_eq(&self.commitments[s])) {
                return Err(ctx.check_failed(
                    COIN_CHECK,
                    s,
                    format!(
                        "its opened {} seed does not match its commitment",
                        String::from_utf8_lossy(self.label)
                    ),
                ));
            }
            for (c, b) in coin.iter_mut().zip(seed) {
                *c ^= b;
            }
        }
        ctx.transcript.absorb(self.label, ctx.batch, &coin);
        Ok(coin)
    }
}

/// The first `len` bits of a packed-bit vector as bytes (least significant bit first, the
/// byte order of `pack_bits`).
pub fn bits_to_bytes(words: &[Block], len: usize) -> Vec<u8> {
    let nbytes = len.div_ceil(8);
    let mut out = Vec::with_capacity(nbytes + 16);
    for w in words.iter().take(len.div_ceil(128)) {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.truncate(nbytes);
    if !len.is_multiple_of(8)
        && let Some(last) = out.last_mut()
    {
        *last &= (1u8 << (len % 8)) - 1;
    }
    out
}

/// Bit `i` of a packed-bit vector of blocks.
#[inline]
pub fn get_bit(words: &[Block], i: usize) -> bool {
    (words[i / 128] >> (i % 128)) & 1 == 1
}

/// Sets bit `i` of a packed-bit vector of blocks to `v`.
#[inline]
pub fn set_bit(words: &mut [Block], i: usize, v: bool) {
    let mask = 1u128 << (i % 128);
    if v {
        words[i / 128] |= mask;
    } else {
        words[i / 128] &= !mask;
    }
}

/// Reads a block from a byte slice at block index `i`, or `None` past its end.
#[inline]
pub fn read_block(bytes: &[u8], i: usize) -> Option<Block> {
    let raw = bytes.get(i * 16..i * 16 + 16)?;
    let mut b = [0u8; 16];
    b.copy_from_slice(raw);
    Some(u128::from_le_bytes(b))
}

/// Runs CPU-heavy work on its own thread and waits for it without blocking the async task.
/// Why: the parties of a session are often futures of one task (`mpc run`, tests); while
/// one party's work runs on its thread the others keep running, so the symmetric steps of
/// all parties use every core. A thread per call (a few per batch) costs microseconds
/// against milliseconds of work, and keeps the engine free of any runtime.
pub async fn offload<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, EngineError> {
    let (done, result) = futures_channel::oneshot::channel();
    std::thread::Builder::new()
        .name("mpc-preprocess".into())
        .spawn(move || {
            // The receiver only goes away when the run was dropped; nothing to tell then.
            let _ = done.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)));
        })
        .map_err(|e| {
            EngineError::Setup(format!(
                "could not start a preprocessing thread ({e}); the machine is out of threads \
                 or memory"
            ))
        })?;
    match result.await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => Err(EngineError::Setup(
            "a preprocessing thread ended without its result".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::future::join;

    use super::*;
    use crate::channel::memory::memory_channels;
    use crate::engine::transcript::{self, TRANSCRIPT_CHECK};

    const LABEL: &[u8] = b"test coin";

    #[test]
    fn the_hash_is_the_fixed_key_construction() {
        let mut rng = Prg::new([11; 16]);
        let mut xs = vec![0u128; 37];
        let mut tweaks = vec![0u128; 37];
        rng.fill(&mut xs);
        rng.fill(&mut tweaks);
        let mut hashed = xs.clone();
        Tccr::new().hash(&mut hashed, &tweaks, &mut Vec::new());
        let pi = Aes::new(TCCR_KEY);
        for ((x, t), h) in xs.iter().zip(&tweaks).zip(&hashed) {
            // H(x, t) = π(σ(x) ⊕ t) ⊕ σ(x).
            let mut block = [sigma(*x) ^ t];
            pi.encrypt(&mut block);
            assert_eq!(*h, block[0] ^ sigma(*x));
        }
    }

    fn context<C: Channel>(ch: &C, me: usize, n: usize, run_id: [u8; 32]) -> Ctx<'_, C> {
        let slots = Slots { me, n };
        Ctx {
            ch,
            slots,
            others: slots.others().collect(),
            names: PeerNames::new(n),
            delta: 1,
            batch: 0,
            run_id,
            rng: Prg::from_entropy(),
            transcript: Transcript::new(&run_id),
        }
    }

    /// One coin toss as the preprocessing makes them.
    async fn toss<C: Channel>(ctx: &mut Ctx<'_, C>) -> Result<[u8; 32], EngineError> {
        let coin = CoinToss::commit(ctx, Phase::OtExtension, LABEL).await?;
        coin.open(ctx, Phase::OtCheck).await
    }

    /// Every party sends its transcript digest to every other and checks what it receives,
    /// with the check of the output phase.
    async fn compare<C: Channel>(ctx: &Ctx<'_, C>) -> Result<(), EngineError> {
        let mine = ctx.transcript.digest();
        let received = ctx
            .broadcast(Phase::InputConsistency, Bytes::copy_from_slice(&mine))
            .await?;
        for (s, msg) in received.iter().enumerate() {
            transcript::check(ctx.names.name(ctx.others[s]), msg, &mine, "in this test")?;
        }
        Ok(())
    }

    /// The check and the peer a failed comparison names.
    fn failure(r: &Result<(), EngineError>) -> Option<(&'static str, &str)> {
        match r {
            Err(EngineError::Check { check, peer, .. }) => Some((check, peer)),
            _ => None,
        }
    }

    /// Party 1 of 3 commits to and opens one seed towards party 0 and another towards
    /// party 2. Each opening matches the commitment its receiver got, so no commitment check
    /// fires and the two honest parties end up with different coins; comparing transcripts
    /// catches it: party 1 sends each honest party that party's own digest, so each honest
    /// party finds the difference in the other honest party's digest.
    #[tokio::test]
    async fn coin_equivocation_is_caught_by_the_transcript_comparison() {
        let run = [5u8; 32];
        let chans = memory_channels(3, 3, Duration::from_secs(10));
        let honest = |me: usize| {
            let ch = &chans[me];
            async move {
                let mut ctx = context(ch, me, 3, run);
                let coin = toss(&mut ctx)
                    .await
                    .expect("the openings match the commitments");
                (coin, compare(&ctx).await)
            }
        };
        let cheater = async {
            let ch = &chans[1];
            let seeds = [[1u8; 32], [2u8; 32]];
            let targets = [0usize, 2];
            for (&to, seed) in targets.iter().zip(&seeds) {
                let c = coin_commitment(&run, LABEL, 1, 0, seed);
                ch.send(to, Phase::OtExtension, Bytes::copy_from_slice(&c))
                    .await?;
            }
            for &from in &targets {
                ch.recv(from, Phase::OtExtension).await?;
            }
            for (&to, seed) in targets.iter().zip(&seeds) {
                ch.send(to, Phase::OtCheck, Bytes::copy_from_slice(seed))
                    .await?;
            }
            let mut theirs = Vec::new();
            for &from in &targets {
                theirs.push(ch.recv(from, Phase::OtCheck).await?);
            }
            // The coin each honest party holds, and a matching transcript for each.
            for (&to, seed) in targets.iter().zip(&seeds) {
                let mut coin = *seed;
                for other in &theirs {
                    for (c, b) in coin.iter_mut().zip(other.iter()) {
                        *c ^= b;
                    }
                }
                let mut t = Transcript::new(&run);
                t.absorb(LABEL, 0, &coin);
                ch.send(
                    to,
                    Phase::InputConsistency,
                    Bytes::copy_from_slice(&t.digest()),
                )
                .await?;
            }
            for &from in &targets {
                ch.recv(from, Phase::InputConsistency).await?;
            }
            Ok::<_, crate::channel::ChannelError>(())
        };
        let ((p0, p2), cheated) = join(join(honest(0), honest(2)), cheater).await;
        cheated.expect("the cheater's messages go through");
        assert_ne!(p0.0, p2.0, "the equivocation must split the coin");
        assert_eq!(
            failure(&p0.1),
            Some((TRANSCRIPT_CHECK, "party 2")),
            "{:?}",
            p0.1
        );
        assert_eq!(
            failure(&p2.1),
            Some((TRANSCRIPT_CHECK, "party 0")),
            "{:?}",
            p2.1
        );
    }

    /// Honest coin tosses give everyone the same coin and transcript.
    #[tokio::test]
    async fn honest_coin_tosses_agree() {
        let run = [6u8; 32];
        let chans = memory_channels(3, 3, Duration::from_secs(10));
        let results =
            futures_util::future::join_all(chans.iter().enumerate().map(|(me, ch)| async move {
                let mut ctx = context(ch, me, 3, run);
                let a = toss(&mut ctx).await?;
                ctx.batch = 1;
                let b = toss(&mut ctx).await?;
                compare(&ctx).await?;
                Ok::<_, EngineError>((a, b, ctx.transcript.digest()))
            }))
            .await;
        let first = results[0].as_ref().expect("party 0");
        for r in &results {
            assert_eq!(r.as_ref().expect("every party"), first);
        }
        assert_ne!(first.0, first.1);
    }

    /// A party whose commitments belong to another run (a replay, or a party that did not
    /// take part in this run's handshake) fails the coin toss commitment check.
    #[tokio::test]
    async fn commitments_from_another_run_do_not_verify() {
        let chans = memory_channels(3, 3, Duration::from_secs(10));
        let results =
            futures_util::future::join_all(chans.iter().enumerate().map(|(me, ch)| async move {
                let run = if me == 1 { [8u8; 32] } else { [7u8; 32] };
                let mut ctx = context(ch, me, 3, run);
                toss(&mut ctx).await
            }))
            .await;
        for me in [0, 2] {
            match &results[me] {
                Err(EngineError::Check { check, peer, .. }) => {
                    assert_eq!(*check, COIN_CHECK);
                    assert_eq!(peer, "party 1");
                }
                other => panic!("party {me} accepted a commitment of another run: {other:?}"),
            }
        }
    }
}
