//! Multi-party authenticated bits (WRK17's FaBit^n): every party P_i picks random bits x_i
//! and obtains, through one COT extension with every other party P_j, the MACs
//! M_j[x_i] = K_j[x_i] ⊕ x_i·Δ_j, while P_j obtains the keys K_j[x_i].
//!
//! Two checks make this maliciously secure:
//!
//! - **OT extension consistency check** (KOS15's check, per ordered pair, on the output of
//!   the SoftSpokenOT extension of [`super::extension`]): with challenges χ_t from a coin
//!   toss made after every correction message was sent, P_i sends x̃_i = Σ χ_t·x_i[t] and
//!   t̃ = Σ χ_t·M_j[x_i[t]] to P_j, which checks Σ χ_t·K_j[x_i[t]] = t̃ ⊕ x̃_i·Δ_j.
//! - **aBit consistency check** (WRK17: a party must use the *same* bits towards everyone):
//!   the challenges are common to all pairs, so if P_i used bits x towards P_j and x' ≠ x
//!   towards P_k, the two values x̃ it must send differ except with probability 2^-128 (the
//!   random linear combination over GF(2^128) of WRK17, with one field element instead of ρ
//!   bit-combinations). Every party therefore echoes to every other the x̃ it received from
//!   each party; any difference aborts. The abort blames the echoing peer when it contradicts
//!   its own x̃ or this party's, and otherwise both the echoing peer and party k (one of them
//!   lies, and without signatures nobody can tell which). The 256 sacrificed bits at the end
//!   of the batch mask x̃, so it reveals nothing about the bits that are used. Two parties
//!   skip the echo: with a single peer there is nobody else a bit could differ towards.

use bytes::Bytes;
use rayon::prelude::*;
use subtle::ConstantTimeEq;

use super::common::{CoinToss, Ctx, get_bit, offload, read_block};
use super::extension::{self, PairOt};
use super::gf::{self, Acc};
use crate::channel::{Channel, Phase};
use crate::engine::EngineError;
use crate::engine::aes::Prg;
use crate::engine::share::{Block, times};

/// Random bits sacrificed per batch to mask the consistency-check values (≥ κ + ρ).
pub const SACRIFICE: usize = 256;

/// Rows of all OT-extension messages of one exchange together (a multiple of 128): 4 MiB
/// of corrections at k = 4, so that a whole batch (about 850,000 rows with 2 parties, fewer
/// per peer with more) is one exchange. Every exchange is a round trip in lock step plus
/// two hand-offs to a preprocessing thread; with 2^14 rows per message (52 exchanges per
/// batch) they cost about a tenth of a 1M-AND run through the relay (measured,
/// interleaved: 3.7–3.9 s with 2^14 rows, 3.3–3.5 s with 2^18, and 2^20 faster again in 3
/// of 4 pairs). The work inside a message goes [`TILE_ROWS`] at a time, so its scratch
/// memory does not grow with it.
pub const EXCHANGE_ROWS: usize = 1 << 20;

/// Rows per message with `m` peers: [`EXCHANGE_ROWS`] shared among the peers, so that the
/// corrections in flight stay within a few MiB however many parties there are, but at
/// least a tile.
fn message_rows(m: usize) -> usize {
    (EXCHANGE_ROWS / m.max(1)).max(TILE_ROWS) / 128 * 128
}

/// Rows expanded, folded and transposed at a time within a message: the leaf expansions
/// of one tree (2^k · 2 KiB) and the columns of a tile (256 KiB) stay in cache, whereas a
/// whole message's would not. A message holds its tiles one after the other.
const TILE_ROWS: usize = 1 << 14;

/// The tiles of a message of `rows` rows (a multiple of 128), in the order both sides
/// process them and the corrections stand in the message.
fn tiles(rows: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    (0..rows)
        .step_by(TILE_ROWS)
        .map(move |start| start..(start + TILE_ROWS).min(rows))
}

/// The check that a bad OT-extension message fails.
pub const OT_CHECK: &str = "OT extension consistency check";

/// The check that a party using different bits towards different parties fails.
pub const ABIT_CHECK: &str = "aBit consistency check";

/// One batch of authenticated bits held by one party.
pub struct ABits {
    /// Number of bits (a multiple of 128, including the sacrificed ones at the end).
    pub len: usize,
    /// This party's bits, packed 128 per block.
    pub bits: Vec<Block>,
    /// MACs M_j[x_me[t]] per peer slot.
    pub macs: Vec<Vec<Block>>,
    /// Keys K_me[x_j[t]] per peer slot.
    pub keys: Vec<Vec<Block>>,
}

impl ABits {
    /// No bits; its buffers grow on first use and are reused by later batches (so big
    /// batches do not pay for fresh, zeroed pages every time).
    pub fn empty(m: usize) -> Self {
        Self {
            len: 0,
            bits: Vec::new(),
            macs: vec![Vec::new(); m],
            keys: vec![Vec::new(); m],
        }
    }

    /// Bit t of this party.
    #[inline]
    pub fn bit(&self, t: usize) -> bool {
        get_bit(&self.bits, t)
    }
}

/// Produces at least `useful` authenticated bits (plus the sacrificed ones) with every peer
/// and runs both checks, reusing the buffers of `store`. The pair states are moved in and
/// handed back (heavy steps run on the blocking pool, which needs owned data).
pub async fn generate<C: Channel>(
    ctx: &mut Ctx<'_, C>,
    pairs: Vec<PairOt>,
    useful: usize,
    store: ABits,
) -> Result<(ABits, Vec<PairOt>), EngineError> {
    let len = (useful + SACRIFICE).div_ceil(128) * 128;
    let mut st = Extension {
        ab: store,
        pairs,
        cols: Vec::new(),
        #[cfg(feature = "testing")]
        flip: equivocation(ctx, len),
    };
    st.ab.len = len;
    st.ab.bits.clear();
    st.ab.bits.resize(len / 128, 0);
    ctx.rng.fill(&mut st.ab.bits);
    // The extension writes every row below, so the buffers of the previous batch are only
    // resized (truncated, or the grown part zeroed), never cleared: clearing them zeroed
    // about 27 MiB per batch of 2 parties that were overwritten at once.
    let mut st = offload(move || {
        for v in st.ab.macs.iter_mut().chain(st.ab.keys.iter_mut()) {
            v.resize(len, 0);
        }
        st
    })
    .await?;

    // The challenge seed is committed to with the first corrections (at the head of the
    // first message, saving the commitments a round of their own) and opened after all
    // corrections are received, so no MAC holder can adapt its bits to the challenges.
    let mut drawn = Some(CoinToss::draw(ctx, b"OT extension challenge"));
    let mut coin = None;

    let delta = ctx.delta;
    let mut start = 0;
    while start < len {
        let rows = message_rows(ctx.others.len()).min(len - start);
        let head = drawn
            .as_ref()
            .map_or(Vec::new(), |d| d.commitment().to_vec());
        let (back, msgs) = offload(move || {
            let msgs = st.mac_side(start, rows, &head);
            (st, msgs)
        })
        .await?;
        st = back;
        let mut received = ctx.exchange_each(Phase::OtExtension, msgs).await?;
        if let Some(d) = drawn.take() {
            let (c, rest) = d.received(ctx, Phase::OtExtension, received)?;
            coin = Some(c);
            received = rest;
        }
        for (s, u) in received.iter().enumerate() {
            ctx.expect_len(s, Phase::OtExtension, u, extension::message_len(rows))?;
        }
        st = offload(move || {
            st.key_side(start, rows, delta, &received);
            st
        })
        .await?;
        start += rows;
    }

    // Every batch has rows (at least the sacrificed ones), so the loop ran and took the
    // peers' commitments.
    let Some(coin) = coin else {
        return Err(EngineError::Setup(
            "an OT extension batch without rows has no challenge".into(),
        ));
    };
    let seed = coin.open(ctx, Phase::OtCheck).await?;
    let (st, x_tilde, mac_acc, key_acc) = offload(move || {
        let (x, macs, keys) = st.combine(&seed);
        (st, x, macs, keys)
    })
    .await?;
    #[cfg(feature = "testing")]
    let flip = st.flip;
    let Extension { ab, pairs, .. } = st;
    let msgs = mac_acc
        .iter()
        .map(|acc| {
            let mut msg = Vec::with_capacity(32);
            msg.extend_from_slice(&x_tilde.to_le_bytes());
            msg.extend_from_slice(&acc.reduce().to_le_bytes());
            Bytes::from(msg)
        })
        .collect();
    // Test only: the x̃ of the flipped bits towards the peer that got them.
    #[cfg(feature = "testing")]
    let msgs = match flip {
        Some((slot, row)) => equivocate_x_tilde(msgs, slot, x_tilde ^ challenge(&seed, row)),
        None => msgs,
    };
    let received = ctx.exchange_each(Phase::OtCheck, msgs).await?;
    let n = ctx.slots.n;
    let mut all_x = vec![0u128; n];
    all_x[ctx.slots.me] = x_tilde;
    for (s, msg) in received.iter().enumerate() {
        ctx.expect_len(s, Phase::OtCheck, msg, 32)?;
        let (their_x, their_t) = match (read_block(msg, 0), read_block(msg, 1)) {
            (Some(x), Some(t)) => (x, t),
            _ => return Err(ctx.malformed(s, Phase::OtCheck, "short check message".into())),
        };
        let expected = their_t ^ gf::mul(their_x, ctx.delta);
        if !bool::from(key_acc[s].reduce().ct_eq(&expected)) {
            return Err(ctx.check_failed(
                OT_CHECK,
                s,
                format!(
                    "its combined MACs of batch {} do not match this party's keys",
                    ctx.batch
                ),
            ));
        }
        all_x[ctx.others[s]] = their_x;
    }

    // With one peer there is no third party towards whom a bit could have been
    // authenticated differently: the echo would only send each party's x̃ back to where it
    // came from, so two parties skip that round.
    if ctx.others.len() < 2 {
        return Ok((ab, pairs));
    }

    // Echo every party's x̃ to everyone.
    let mut echo = Vec::with_capacity(16 * n);
    for x in &all_x {
        echo.extend_from_slice(&x.to_le_bytes());
    }
    let received = ctx.broadcast(Phase::ABitCheck, Bytes::from(echo)).await?;
    let mut differ = Vec::new();
    for (s, msg) in received.iter().enumerate() {
        ctx.expect_len(s, Phase::ABitCheck, msg, 16 * n)?;
        for (k, mine) in all_x.iter().enumerate() {
            if read_block(msg, k) != Some(*mine) {
                differ.push((s, k));
            }
        }
    }
    // A peer that echoes other values than its own or this party's is caught outright;
    // otherwise either the echoing peer or party k lies, and this party cannot tell which.
    let me = ctx.slots.me;
    let exact = differ.iter().find(|&&(s, k)| k == me || k == ctx.others[s]);
    if let Some(&(s, k)) = exact.or(differ.first()) {
        let j = ctx.others[s];
        let detail = format!(
            "its echo of party {k}'s combined bits differs from what this party received (party {k} used different bits towards different parties, or {} lies)",
            ctx.names.name(j)
        );
        return Err(if k == me || k == j {
            ctx.check_failed(ABIT_CHECK, s, detail)
        } else {
            let (a, b) = (k.min(j), k.max(j));
            EngineError::Check {
                check: ABIT_CHECK,
                peer: format!("one of {}, {}", ctx.names.name(a), ctx.names.name(b)),
                detail,
            }
        });
    }

    Ok((ab, pairs))
}

/// The state of one batch's OT extension, moved to the blocking pool for each heavy step.
struct Extension {
    ab: ABits,
    pairs: Vec<PairOt>,
    cols: Vec<Block>,
    /// Test only: (peer slot, row) of a bit this party flips towards that peer.
    #[cfg(feature = "testing")]
    flip: Option<(usize, usize)>,
}

/// Test only: the (peer slot, row) this party's [`crate::cheat::Cheat::ABitEquivocation`]
/// flips in this batch, if any.
#[cfg(feature = "testing")]
fn equivocation<C: Channel>(ctx: &Ctx<'_, C>, len: usize) -> Option<(usize, usize)> {
    let crate::cheat::Cheat::ABitEquivocation {
        towards,
        row,
        batch,
    } = *ctx.ch.cheat()?
    else {
        return None;
    };
    let slot = ctx.others.iter().position(|&j| j == towards)?;
    (batch == ctx.batch && row < len).then_some((slot, row))
}

/// Test only: the challenge χ_row of the consistency checks (the stream of
/// [`Extension::combine`]).
#[cfg(feature = "testing")]
fn challenge(seed: &[u8; 32], row: usize) -> Block {
    let mut chi = vec![0u128; row + 1];
    Prg::from_seed32(seed, 1).fill(&mut chi);
    chi[row]
}

/// Test only: `msgs` with the x̃ towards slot `slot` replaced by `x_tilde`.
#[cfg(feature = "testing")]
fn equivocate_x_tilde(mut msgs: Vec<Bytes>, slot: usize, x_tilde: Block) -> Vec<Bytes> {
    let mut msg = msgs[slot].to_vec();
    msg[..16].copy_from_slice(&x_tilde.to_le_bytes());
    msgs[slot] = Bytes::from(msg);
    msgs
}

impl Extension {
    /// The MAC-holder side of rows `start..start + rows` with every peer: `head` (the coin
    /// commitment on a batch's first message, else nothing), then the corrections,
    /// [`TILE_ROWS`] rows at a time.
    fn mac_side(&mut self, start: usize, rows: usize, head: &[u8]) -> Vec<Bytes> {
        let nb = rows / 128;
        let x = &self.ab.bits[start / 128..start / 128 + nb];
        let mut msgs = Vec::with_capacity(self.pairs.len());
        for (s, pair) in self.pairs.iter_mut().enumerate() {
            // Test only: the bits with one flipped, towards the peer that is to get them.
            #[cfg(feature = "testing")]
            let flipped = match self.flip {
                Some((slot, row)) if slot == s && (start..start + rows).contains(&row) => {
                    let mut v = x.to_vec();
                    v[(row - start) / 128] ^= 1 << ((row - start) % 128);
                    Some(v)
                }
                _ => None,
            };
            #[cfg(feature = "testing")]
            let x = flipped.as_deref().unwrap_or(x);
            let mut msg = Vec::with_capacity(head.len() + extension::message_len(rows));
            msg.extend_from_slice(head);
            for tile in tiles(rows) {
                pair.mac_chunk(
                    &x[tile.start / 128..tile.end / 128],
                    &mut self.cols,
                    &mut msg,
                    &mut self.ab.macs[s][start + tile.start..start + tile.end],
                );
            }
            msgs.push(Bytes::from(msg));
        }
        msgs
    }

    /// The key-holder side of the same rows, from the peers' (length-checked) corrections,
    /// tile by tile as [`Self::mac_side`] wrote them.
    fn key_side(&mut self, start: usize, rows: usize, delta: Block, received: &[Bytes]) {
        for (s, (pair, u)) in self.pairs.iter_mut().zip(received).enumerate() {
            for tile in tiles(rows) {
                pair.key_chunk(
                    delta,
                    &u[extension::message_len(tile.start)..extension::message_len(tile.end)],
                    tile.len() / 128,
                    &mut self.cols,
                    &mut self.ab.keys[s][start + tile.start..start + tile.end],
                );
            }
        }
    }

    /// x̃ and, per peer, Σ χ_t·M and Σ χ_t·K with the challenges from `seed` (χ_t is block
    /// t of the stream; parts of the rows are combined on every core and the sums merged).
    fn combine(&self, seed: &[u8; 32]) -> (Block, Vec<Acc>, Vec<Acc>) {
        const PART: usize = 4096;
        let m = self.pairs.len();
        let len = self.ab.len;
        let ab = &self.ab;
        let zero = || (0u128, vec![Acc::default(); m], vec![Acc::default(); m]);
        (0..len.div_ceil(PART))
            .into_par_iter()
            .map_init(Vec::new, |chi, part| {
                let start = part * PART;
                let rows = PART.min(len - start);
                chi.resize(rows, 0);
                let mut chi_stream = Prg::from_seed32(seed, 1);
                chi_stream.skip(start as u128);
                chi_stream.fill(chi);
                let (mut x_tilde, mut mac_acc, mut key_acc) = zero();
                for (i, c) in chi.iter().enumerate() {
                    x_tilde ^= times(get_bit(&ab.bits, start + i), *c);
                }
                for s in 0..m {
                    mac_acc[s] = gf::inner_product(chi, &ab.macs[s][start..start + rows]);
                    key_acc[s] = gf::inner_product(chi, &ab.keys[s][start..start + rows]);
                }
                (x_tilde, mac_acc, key_acc)
            })
            .reduce(zero, |(xa, mut ma, mut ka), (xb, mb, kb)| {
                for (a, b) in ma.iter_mut().zip(mb) {
                    a.merge(b);
                }
                for (a, b) in ka.iter_mut().zip(kb) {
                    a.merge(b);
                }
                (xa ^ xb, ma, ka)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::MAX_PARTIES;

    #[test]
    fn an_exchange_holds_a_few_mib_of_corrections_whatever_the_party_count() {
        // A 2-party batch (at most 2^18 leaky triples, three aBits each, plus the plain
        // ones) is one message.
        assert!(
            message_rows(1)
                >= 3 * crate::engine::preprocess::ot::MAX_BATCH_LEAKY + (1 << 16) + SACRIFICE
        );
        for m in 1..MAX_PARTIES {
            let rows = message_rows(m);
            assert_eq!(rows % 128, 0, "{m} peers");
            assert!(rows >= TILE_ROWS, "{m} peers");
            // All messages of an exchange: at most 4 MiB of corrections beyond one tile each.
            let bytes = m * extension::message_len(rows);
            assert!(
                bytes
                    <= extension::message_len(EXCHANGE_ROWS)
                        .max(m * extension::message_len(TILE_ROWS)),
                "{m} peers: {bytes} bytes"
            );
        }
    }
}
