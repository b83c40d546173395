//! Source A: a trusted dealer, both its own side ([`run_dealer`]) and the parties' side
//! ([`DealerSource`]).
//!
//! Bandwidth: the dealer gives each party a PRG seed; the party expands it into its own
//! share bits and its keys, so only the MACs (which depend on the *other* parties' keys and
//! global keys) and, for party 0, one correction bit per triple travel.
//!
//! Flow control: the dealer keeps at most [`WINDOW`] chunks in flight per party; each party
//! acknowledges every chunk it receives, so memory stays bounded on every transport, even an
//! in-memory one with unbounded queues.

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::future::try_join_all;
use rand::RngCore;

use super::{ITEMS_PER_AND, Source};
use crate::channel::{Channel, PeerNames, Phase};
use crate::engine::aes::Prg;
use crate::engine::share::{
    AuthBits, Block, Slots, bit_at, block_at, pack_bits, packed_len, put_blocks, random_delta,
};
use crate::engine::transcript::Transcript;
use crate::engine::{EngineError, PartyConfig, Progress, exchange};

/// Shares per dealer chunk (a multiple of [`ITEMS_PER_AND`]).
pub const CHUNK_ITEMS: usize = 1 << 15;

/// Chunks the dealer may have in flight per party before it waits for acknowledgements.
pub const WINDOW: u64 = 2;

const REQUEST_MAGIC: &[u8; 4] = b"MPCd";
const REQUEST_LEN: usize = 4 + 32 + 32 + 4 + 8 + 8;

/// What a party asks the dealer for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DealerRequest {
    /// The run id the parties agreed on in their handshake: the dealer serves only parties
    /// of one run.
    pub run_id: [u8; 32],
    /// Hash of the program (parties must agree).
    pub program_hash: [u8; 32],
    /// Number of computing parties.
    pub parties: u32,
    /// Authenticated bits for input wires.
    pub inputs: u64,
    /// AND triples (each with an output mask).
    pub ands: u64,
}

impl DealerRequest {
    fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(REQUEST_LEN);
        b.put_slice(REQUEST_MAGIC);
        b.put_slice(&self.run_id);
        b.put_slice(&self.program_hash);
        b.put_u32_le(self.parties);
        b.put_u64_le(self.inputs);
        b.put_u64_le(self.ands);
        b.freeze()
    }

    fn decode(b: &[u8]) -> Option<DealerRequest> {
        if b.len() != REQUEST_LEN || &b[..4] != REQUEST_MAGIC {
            return None;
        }
        let mut run_id = [0u8; 32];
        run_id.copy_from_slice(&b[4..36]);
        let mut program_hash = [0u8; 32];
        program_hash.copy_from_slice(&b[36..68]);
        Some(DealerRequest {
            run_id,
            program_hash,
            parties: u32::from_le_bytes(b[68..72].try_into().ok()?),
            inputs: u64::from_le_bytes(b[72..80].try_into().ok()?),
            ands: u64::from_le_bytes(b[80..88].try_into().ok()?),
        })
    }

    fn total_items(&self) -> u64 {
        self.inputs + self.ands * ITEMS_PER_AND as u64
    }
}

/// The chunk schedule: input bits first, then whole AND gates, at most CHUNK_ITEMS each, so
/// that a triple never straddles two chunks.
fn schedule(req: &DealerRequest) -> Vec<(u64, usize)> {
    let mut chunks = Vec::new();
    let mut start = 0u64;
    let mut left = req.inputs;
    while left > 0 {
        let len = left.min(CHUNK_ITEMS as u64);
        chunks.push((start, len as usize));
        start += len;
        left -= len;
    }
    let mut left = req.ands * ITEMS_PER_AND as u64;
    while left > 0 {
        let len = left.min(CHUNK_ITEMS as u64);
        chunks.push((start, len as usize));
        start += len;
        left -= len;
    }
    chunks
}

/// Summary of a dealer run.
#[derive(Debug, Clone)]
pub struct DealerSummary {
    /// Number of parties served.
    pub parties: usize,
    /// AND triples dealt.
    pub ands: u64,
    /// Input bits dealt.
    pub inputs: u64,
    /// Bytes sent to all parties.
    pub bytes_sent: u64,
}

/// Runs the dealer for `parties` parties; the dealer is peer number `parties` of `ch`.
pub async fn run_dealer<C: Channel>(
    ch: &C,
    parties: usize,
    progress: &dyn Progress,
) -> Result<DealerSummary, EngineError> {
    PartyConfig::check_party_count(parties)?;
    let names = PeerNames::new(parties);
    let all: Vec<usize> = (0..parties).collect();
    progress.phase("waiting for requests", 0);
    let requests = exchange(ch, Phase::DealerRequest, Vec::new(), &all).await?;
    let mut reqs = Vec::with_capacity(parties);
    for (i, raw) in requests.iter().enumerate() {
        let req = DealerRequest::decode(raw).ok_or_else(|| EngineError::Malformed {
            peer: names.name(i),
            phase: Phase::DealerRequest,
            detail: format!(
                "expected a {REQUEST_LEN}-byte request, got {} bytes",
                raw.len()
            ),
        })?;
        reqs.push(req);
    }
    if let Err(why) = check_requests(&reqs, parties, &names) {
        ch.abort(&format!("the dealer refuses: {why}")).await;
        return Err(EngineError::Dealer(why));
    }
    let req = reqs[0];
    let n = parties;
    let m = n - 1;

    // Global keys and seeds.
    let mut rng = rand::rng();
    let deltas: Vec<Block> = (0..n).map(|_| random_delta(&mut rng)).collect();
    let mut seeds = vec![[0u8; 16]; n];
    for s in &mut seeds {
        rng.fill_bytes(s);
    }
    let header = |i: usize| {
        let mut b = Vec::with_capacity(32);
        put_blocks(&mut b, &[deltas[i]]);
        b.extend_from_slice(&seeds[i]);
        Bytes::from(b)
    };
    try_join_all((0..n).map(|i| ch.send(i, Phase::DealerMaterial, header(i)))).await?;

    let mut prgs: Vec<Prg> = seeds.iter().map(|s| Prg::new(*s)).collect();
    let slots: Vec<Slots> = (0..n).map(|me| Slots { me, n }).collect();
    let chunks = schedule(&req);
    progress.phase("dealing", req.total_items());
    let mut bits: Vec<Vec<bool>> = vec![Vec::new(); n];
    let mut keys: Vec<Vec<Block>> = vec![Vec::new(); n];
    for (c, &(start, len)) in chunks.iter().enumerate() {
        if c as u64 >= WINDOW {
            // Wait until every party has received chunk c - WINDOW.
            let acks = exchange(ch, Phase::DealerMaterial, Vec::new(), &all).await?;
            for (i, ack) in acks.iter().enumerate() {
                if ack.len() != 8 {
                    return Err(EngineError::Malformed {
                        peer: names.name(i),
                        phase: Phase::DealerMaterial,
                        detail: "an acknowledgement must be 8 bytes".into(),
                    });
                }
            }
        }
        for i in 0..n {
            bits[i].clear();
            prgs[i].bits(len, &mut bits[i]);
            keys[i].resize(len * m, 0);
            prgs[i].fill(&mut keys[i]);
        }
        // Fix c = a ∧ b by correcting party 0's share of c.
        let mut corrections = vec![false; len];
        for t in 0..len {
            let global = start + t as u64;
            if global >= req.inputs && (global - req.inputs) % ITEMS_PER_AND as u64 == 2 {
                let xor = |k: usize| bits.iter().fold(false, |acc, b| acc ^ b[k]);
                let (a, b, cc) = (xor(t - 2), xor(t - 1), xor(t));
                if cc != (a & b) {
                    bits[0][t] = !bits[0][t];
                    corrections[t] = true;
                }
            }
        }
        let msgs: Vec<(usize, Bytes)> = (0..n)
            .map(|i| {
                let mut out = Vec::with_capacity(4 + len / 8 + 1 + len * m * 16);
                out.extend_from_slice(&(len as u32).to_le_bytes());
                if i == 0 {
                    out.extend_from_slice(&pack_bits(corrections.iter().copied()));
                }
                let mut macs = Vec::with_capacity(len * m);
                for t in 0..len {
                    let x = bits[i][t];
                    for j in slots[i].others() {
                        let k = keys[j][t * m + slots[j].slot(i)];
                        macs.push(if x { k ^ deltas[j] } else { k });
                    }
                }
                put_blocks(&mut out, &macs);
                (i, Bytes::from(out))
            })
            .collect();
        try_join_all(
            msgs.into_iter()
                .map(|(i, data)| ch.send(i, Phase::DealerMaterial, data)),
        )
        .await?;
        progress.advance(len as u64);
    }
    // Collect the acknowledgements still outstanding: they confirm that every party has
    // received everything, and leave no message unread.
    let read = (chunks.len() as u64).saturating_sub(WINDOW);
    for _ in read..chunks.len() as u64 {
        exchange(ch, Phase::DealerMaterial, Vec::new(), &all).await?;
    }
    progress.finish();
    Ok(DealerSummary {
        parties: n,
        ands: req.ands,
        inputs: req.inputs,
        bytes_sent: ch.bytes_sent(),
    })
}

fn check_requests(reqs: &[DealerRequest], parties: usize, names: &PeerNames) -> Result<(), String> {
    for (i, r) in reqs.iter().enumerate() {
        if r.parties as usize != parties {
            return Err(format!(
                "{} says the session has {} parties, but the dealer was started with --parties {parties}",
                names.name(i),
                r.parties
            ));
        }
    }
    let first = &reqs[0];
    for (i, r) in reqs.iter().enumerate().skip(1) {
        if r.run_id != first.run_id {
            return Err(format!(
                "{} and party 0 are not in the same run (run ids {}… and {}…): a party sent different handshake messages to different parties, or requests of another run were replayed",
                names.name(i),
                hex::encode(&r.run_id[..6]),
                hex::encode(&first.run_id[..6])
            ));
        }
        if r.program_hash != first.program_hash {
            return Err(format!(
                "{} and party 0 run different programs (hash {} vs {})",
                names.name(i),
                hex::encode(&r.program_hash[..6]),
                hex::encode(&first.program_hash[..6])
            ));
        }
        if r.inputs != first.inputs || r.ands != first.ands {
            return Err(format!(
                "{} asks for {} input bits and {} AND triples, party 0 for {} and {}",
                names.name(i),
                r.inputs,
                r.ands,
                first.inputs,
                first.ands
            ));
        }
    }
    Ok(())
}

/// The parties' side of Source A: expands the seed and receives MACs chunk by chunk.
pub struct DealerSource<'c, C: Channel> {
    ch: &'c C,
    dealer: usize,
    slots: Slots,
    delta: Block,
    prg: Prg,
    buffer: AuthBits,
    received: u64,
    dealer_name: String,
    /// Scratch space for the keys of one chunk, reused to avoid zero-filling every chunk.
    keys: Vec<Block>,
    /// The transcript digest: the dealer tosses no coins, so it is the run id's alone.
    transcript: [u8; 32],
}

impl<'c, C: Channel> DealerSource<'c, C> {
    /// Sends this party's request to the dealer (peer number `parties`) and receives its
    /// global key and seed.
    pub async fn start(
        ch: &'c C,
        slots: Slots,
        request: DealerRequest,
    ) -> Result<DealerSource<'c, C>, EngineError> {
        let dealer = slots.n;
        let dealer_name = PeerNames::new(slots.n).name(dealer);
        ch.send(dealer, Phase::DealerRequest, request.encode())
            .await?;
        let header = ch.recv(dealer, Phase::DealerMaterial).await?;
        if header.len() != 32 {
            return Err(EngineError::Malformed {
                peer: dealer_name,
                phase: Phase::DealerMaterial,
                detail: format!("the header must be 32 bytes, got {}", header.len()),
            });
        }
        let delta = block_at(&header, 0);
        if delta & 1 != 1 {
            return Err(EngineError::Dealer(
                "the global key it sent does not have its lowest bit set".into(),
            ));
        }
        let mut seed = [0u8; 16];
        seed.copy_from_slice(&header[16..32]);
        Ok(DealerSource {
            ch,
            dealer,
            slots,
            delta,
            prg: Prg::new(seed),
            buffer: AuthBits::new(slots.m()),
            received: 0,
            dealer_name,
            keys: Vec::new(),
            transcript: Transcript::new(&request.run_id).digest(),
        })
    }

    async fn receive_chunk(&mut self) -> Result<(), EngineError> {
        let msg = self.ch.recv(self.dealer, Phase::DealerMaterial).await?;
        let malformed = |detail: String| EngineError::Malformed {
            peer: self.dealer_name.clone(),
            phase: Phase::DealerMaterial,
            detail,
        };
        if msg.len() < 4 {
            return Err(malformed("a chunk must start with its length".into()));
        }
        let len = u32::from_le_bytes([msg[0], msg[1], msg[2], msg[3]]) as usize;
        let m = self.slots.m();
        let corr_len = if self.slots.me == 0 {
            packed_len(len)
        } else {
            0
        };
        let expected = 4 + corr_len + len * m * 16;
        if len == 0 || len > CHUNK_ITEMS || msg.len() != expected {
            return Err(malformed(format!(
                "a chunk of {len} shares must be {expected} bytes, got {}",
                msg.len()
            )));
        }
        let corrections = &msg[4..4 + corr_len];
        let macs = &msg[4 + corr_len..];
        let first = self.buffer.bits.len();
        self.prg.bits(len, &mut self.buffer.bits);
        if corr_len > 0 {
            for t in 0..len {
                if bit_at(corrections, t) {
                    self.buffer.bits[first + t] = !self.buffer.bits[first + t];
                }
            }
        }
        let keys = &mut self.keys;
        keys.resize(len * m, 0);
        self.prg.fill(keys);
        self.buffer.mk.reserve(len * 2 * m);
        for t in 0..len {
            for s in 0..m {
                self.buffer.mk.push(block_at(macs, t * m + s));
            }
            self.buffer.mk.extend_from_slice(&keys[t * m..t * m + m]);
        }
        let ack = Bytes::copy_from_slice(&self.received.to_le_bytes());
        self.received += 1;
        self.ch
            .send(self.dealer, Phase::DealerMaterial, ack)
            .await?;
        Ok(())
    }
}

impl<C: Channel> Source for DealerSource<'_, C> {
    fn delta(&self) -> Block {
        self.delta
    }

    async fn take(&mut self, count: usize) -> Result<AuthBits, EngineError> {
        while self.buffer.len() < count {
            self.receive_chunk().await?;
        }
        Ok(self.buffer.split_front(count))
    }

    fn transcript(&self) -> [u8; 32] {
        self.transcript
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(run: u8) -> DealerRequest {
        DealerRequest {
            run_id: [run; 32],
            program_hash: [9; 32],
            parties: 3,
            inputs: 10,
            ands: 20,
        }
    }

    #[test]
    fn requests_round_trip() {
        let r = request(4);
        assert_eq!(DealerRequest::decode(&r.encode()), Some(r));
    }

    #[test]
    fn the_dealer_serves_one_run_only() {
        let names = PeerNames::new(3);
        assert!(check_requests(&[request(1), request(1), request(1)], 3, &names).is_ok());
        let why = check_requests(&[request(1), request(1), request(2)], 3, &names)
            .expect_err("a request of another run");
        assert!(why.contains("party 2") && why.contains("same run"), "{why}");
    }
}
