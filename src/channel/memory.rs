//! In-process transport: every endpoint of a session lives in one process (tests, `mpc run`,
//! benchmarks). Frames move through tokio queues, one per ordered pair.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Mutex;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::{ChannelError, Framed, LostReason, PeerNames, Transport, TransportFailure};

/// One endpoint's side of an in-memory session.
pub struct MemoryTransport {
    me: usize,
    names: PeerNames,
    /// `to_peer[j]` sends frames to endpoint j.
    to_peer: Vec<Option<UnboundedSender<Bytes>>>,
    /// `from_peer[j]` yields frames from endpoint j.
    from_peer: Vec<Option<Mutex<UnboundedReceiver<Bytes>>>>,
}

/// Creates connected in-memory channels for `peers` endpoints, the first `parties` of which
/// are computing parties (a dealer, if any, is the last). Receives wait at most `timeout`.
pub fn memory_channels(
    peers: usize,
    parties: usize,
    timeout: Duration,
) -> Vec<Framed<MemoryTransport>> {
    let mut senders: Vec<Vec<Option<UnboundedSender<Bytes>>>> = (0..peers)
        .map(|_| (0..peers).map(|_| None).collect())
        .collect();
    let mut receivers: Vec<Vec<Option<Mutex<UnboundedReceiver<Bytes>>>>> = (0..peers)
        .map(|_| (0..peers).map(|_| None).collect())
        .collect();
    for from in 0..peers {
        for to in 0..peers {
            if from != to {
                let (tx, rx) = unbounded_channel();
                senders[from][to] = Some(tx);
                receivers[to][from] = Some(Mutex::new(rx));
            }
        }
    }
    senders
        .into_iter()
        .zip(receivers)
        .enumerate()
        .map(|(me, (to_peer, from_peer))| {
            let transport = MemoryTransport {
                me,
                names: PeerNames::new(parties),
                to_peer,
                from_peer,
            };
            Framed::new(transport, me, peers, parties, timeout)
        })
        .collect()
}

impl MemoryTransport {
    fn no_peer(&self, peer: usize) -> ChannelError {
        ChannelError::Transport {
            peer: self.names.name(peer),
            detail: TransportFailure::NoSuchPeerOf {
                me: self.names.name(self.me),
            },
        }
    }
}

impl Transport for MemoryTransport {
    async fn send_frame(&self, to: usize, _seq: u64, frame: Bytes) -> Result<(), ChannelError> {
        let tx = self
            .to_peer
            .get(to)
            .and_then(|t| t.as_ref())
            .ok_or_else(|| self.no_peer(to))?;
        tx.send(frame).map_err(|_| ChannelError::PeerLost {
            peer: self.names.name(to),
            detail: LostReason::Stopped,
        })
    }

    async fn recv_frame(
        &self,
        from: usize,
        _seq: u64,
        deadline: Instant,
    ) -> Result<Option<Bytes>, ChannelError> {
        let rx = self
            .from_peer
            .get(from)
            .and_then(|r| r.as_ref())
            .ok_or_else(|| self.no_peer(from))?;
        let mut rx = rx.lock().await;
        match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
            Ok(Some(frame)) => Ok(Some(frame)),
            Ok(None) => Err(ChannelError::PeerLost {
                peer: self.names.name(from),
                detail: LostReason::Stopped,
            }),
            Err(_) => Ok(None),
        }
    }
}
