//! An insider in the middle: party 1, colluding with whatever carries the messages (the
//! relay, or the network in direct mode), replaces the key-exchange messages between party 0
//! and party 2 with its own, to sit between them (it could then forge the input-consistency
//! digests, run the honest parties in split worlds, or read a dealer's secrets).
//!
//! With a roster the honest parties refuse: neither can be made to accept party 1's key for
//! the other's seat, so no channel, and no result, comes out of it. Without a roster the same
//! insider succeeds, which is exactly what README's security model says of that mode; the
//! second test shows it, so the first would fail if the roster's check were dropped.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aes_gcm::aead::AeadInOut;
use aes_gcm::aead::consts::U12;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use bytes::Bytes;
use futures_util::future::join_all;
use mpc::channel::identity::{Identity, Roster};
use mpc::channel::memory::{MemoryTransport, memory_channels};
use mpc::channel::sealed::handshake::{Authentication, PairHandshake, PairSecrets, SessionFacts};
use mpc::channel::sealed::{Auth, SealParams, Sealed};
use mpc::channel::{ChannelError, Framed, Transport};
use tokio::sync::oneshot;

const SESSION: &str = "insider";
const PARTIES: usize = 3;

/// What the insider captured and what it hands out, between party 0 and party 2.
struct Wires {
    /// Party 0's first handshake message to party 2 (never delivered).
    from_0: Option<oneshot::Sender<Bytes>>,
    /// Party 2's answer to what it took for party 0's message (never delivered).
    from_2: Option<oneshot::Sender<Bytes>>,
    /// What party 0 receives as party 2's answer.
    to_0: Option<oneshot::Receiver<Bytes>>,
    /// What party 2 receives as party 0's first message.
    to_2: Option<oneshot::Receiver<Bytes>>,
}

/// A transport whose frame 0 between parties 0 and 2 goes through the insider.
struct Interposed {
    inner: MemoryTransport,
    me: usize,
    wires: Arc<Mutex<Wires>>,
}

fn other_end(me: usize, peer: usize) -> bool {
    matches!((me, peer), (0, 2) | (2, 0))
}

impl Transport for Interposed {
    async fn send_frame(&self, to: usize, seq: u64, frame: Bytes) -> Result<(), ChannelError> {
        if seq == 0 && other_end(self.me, to) {
            let slot = {
                let mut wires = self.wires.lock().expect("wires");
                if self.me == 0 {
                    wires.from_0.take()
                } else {
                    wires.from_2.take()
                }
            };
            if let Some(tx) = slot {
                let _ = tx.send(frame);
            }
            return Ok(());
        }
        self.inner.send_frame(to, seq, frame).await
    }

    async fn recv_frame(
        &self,
        from: usize,
        seq: u64,
        deadline: Instant,
    ) -> Result<Option<Bytes>, ChannelError> {
        if seq == 0 && other_end(self.me, from) {
            let slot = {
                let mut wires = self.wires.lock().expect("wires");
                if self.me == 0 {
                    wires.to_0.take()
                } else {
                    wires.to_2.take()
                }
            };
            let Some(rx) = slot else {
                return Ok(None);
            };
            return match tokio::time::timeout_at(deadline.into(), rx).await {
                Ok(Ok(frame)) => Ok(Some(frame)),
                _ => Ok(None),
            };
        }
        self.inner.recv_frame(from, seq, deadline).await
    }
}

/// The insider's keys with each victim, when it got them.
struct Stolen {
    with_0: Option<PairSecrets>,
    with_2: Option<PairSecrets>,
}

/// Runs the three key exchanges with the insider in the middle. `auth(i)` is party i's
/// authentication; the insider uses party 1's, claiming seat 0 towards party 2 and seat 2
/// towards party 0.
async fn interpose(auths: Vec<Auth>) -> (Vec<Result<Sealed<Interposed>, ChannelError>>, Stolen) {
    let (tx_from_0, rx_from_0) = oneshot::channel();
    let (tx_from_2, rx_from_2) = oneshot::channel();
    let (tx_to_0, rx_to_0) = oneshot::channel();
    let (tx_to_2, rx_to_2) = oneshot::channel();
    let wires = Arc::new(Mutex::new(Wires {
        from_0: Some(tx_from_0),
        from_2: Some(tx_from_2),
        to_0: Some(rx_to_0),
        to_2: Some(rx_to_2),
    }));
    let timeout = Duration::from_secs(5);
    let transports: Vec<Interposed> = memory_channels(PARTIES, PARTIES, timeout)
        .into_iter()
        .map(Framed::into_transport)
        .enumerate()
        .map(|(me, inner)| Interposed {
            inner,
            me,
            wires: wires.clone(),
        })
        .collect();

    // The insider, with party 1's key (or nothing, without a roster).
    let insider_auth = match &auths[1] {
        Auth::Roster { roster, identity } => Some(((**roster).clone(), (**identity).clone())),
        _ => None,
    };
    let insider = async move {
        let authentication = match &insider_auth {
            Some((roster, identity)) => Authentication::Roster { roster, identity },
            None => Authentication::Anonymous,
        };
        let as_0 = SessionFacts {
            session: SESSION,
            me: 0,
            endpoints: PARTIES,
            parties: PARTIES,
        };
        let as_2 = SessionFacts { me: 2, ..as_0 };
        // Towards party 2, "party 0" speaks first.
        let mut towards_2 = PairHandshake::new(&as_0, &authentication, 2).expect("start");
        let _ = tx_to_2.send(towards_2.write().expect("write"));
        let msg_from_0 = rx_from_0.await.expect("party 0 sends its first message");
        let answer_from_2 = rx_from_2.await.expect("party 2 answers");
        // Towards party 0, "party 2" answers party 0's real message.
        let mut towards_0 = PairHandshake::new(&as_2, &authentication, 0).expect("start");
        let with_0 = match towards_0.read(&msg_from_0) {
            Ok(()) => {
                let _ = tx_to_0.send(towards_0.write().expect("write"));
                towards_0.finish().ok()
            }
            Err(_) => {
                // It cannot answer as party 2: pass party 2's frame on instead.
                let _ = tx_to_0.send(answer_from_2.clone());
                None
            }
        };
        let with_2 = towards_2
            .read(&answer_from_2)
            .and_then(|()| towards_2.finish())
            .ok();
        Stolen { with_0, with_2 }
    };
    let honest = join_all(transports.into_iter().zip(auths).enumerate().map(
        |(me, (t, auth))| async move {
            let params = SealParams {
                session: SESSION,
                me,
                peers: PARTIES,
                parties: PARTIES,
                timeout,
            };
            Sealed::establish(t, &params, &auth).await
        },
    ));
    tokio::join!(honest, insider)
}

fn rostered() -> Vec<Auth> {
    let ids: Vec<Identity> = (0..PARTIES).map(|_| Identity::generate()).collect();
    let text: String = ids
        .iter()
        .enumerate()
        .map(|(i, id)| format!("{i} {}\n", id.public()))
        .collect();
    let roster = Roster::parse(&text, "the test roster").expect("roster");
    ids.into_iter()
        .map(|identity| Auth::Roster {
            roster: Box::new(roster.clone()),
            identity: Box::new(identity),
        })
        .collect()
}

#[tokio::test]
async fn with_a_roster_the_insider_in_the_middle_is_refused() {
    let (sealed, stolen) = interpose(rostered()).await;
    let err_2 = sealed[2]
        .as_ref()
        .err()
        .expect("party 2 must refuse")
        .to_string();
    assert!(
        err_2.contains("party 0 did not prove the identity the roster gives it"),
        "party 2: {err_2}"
    );
    let err_0 = sealed[0]
        .as_ref()
        .err()
        .expect("party 0 must refuse")
        .to_string();
    assert!(
        err_0.contains("party 2 refused the key exchange")
            && err_0.contains("did not prove the identity"),
        "party 0: {err_0}"
    );
    assert!(
        stolen.with_0.is_none() && stolen.with_2.is_none(),
        "the insider agreed on keys with an honest party"
    );
}

#[tokio::test]
async fn without_a_roster_the_same_insider_sits_in_the_middle() {
    let auths = (0..PARTIES).map(|_| Auth::Anonymous).collect();
    let (sealed, stolen) = interpose(auths).await;
    // Both honest parties believe they have a channel with each other...
    let (p0, p2) = match (&sealed[0], &sealed[2]) {
        (Ok(p0), Ok(p2)) => (p0, p2),
        (a, b) => panic!(
            "the unauthenticated exchange was expected to complete: party 0 {:?}, party 2 {:?}",
            a.as_ref().err(),
            b.as_ref().err()
        ),
    };
    let (with_0, with_2) = (
        stolen.with_0.expect("keys with party 0"),
        stolen.with_2.expect("keys with party 2"),
    );
    // ...but what party 2 seals for party 0 opens with the insider's keys.
    p2.send_frame(0, 0, Bytes::from_static(b"party 2's secret share"))
        .await
        .expect("send");
    let deadline = Instant::now() + Duration::from_secs(5);
    let sealed_frame = p0
        .inner()
        .inner
        .recv_frame(2, 1, deadline)
        .await
        .expect("recv")
        .expect("a frame");
    let mut buf = sealed_frame.to_vec();
    let body = buf.len() - 16;
    let tag = Tag::try_from(&buf[body..]).expect("tag");
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&1u64.to_le_bytes());
    let cipher = Aes256Gcm::new_from_slice(&*with_2.recv).expect("key");
    cipher
        .decrypt_inout_detached(
            &Nonce::<U12>::from(nonce),
            &[],
            (&mut buf[..body]).into(),
            &tag,
        )
        .expect("the insider opens party 2's frame");
    assert_eq!(&buf[..body], b"party 2's secret share");
    drop(with_0);
}

/// Establishes a session of 3 parties and a dealer over plain memory transports, everyone
/// with the same roster; endpoint `impostor` holds another key than the roster's for its
/// seat (modified software that skips the start-up check).
async fn with_impostor(impostor: usize) -> Vec<Result<Sealed<MemoryTransport>, ChannelError>> {
    let endpoints = PARTIES + 1;
    let ids: Vec<Identity> = (0..endpoints).map(|_| Identity::generate()).collect();
    let mut text: String = ids[..PARTIES]
        .iter()
        .enumerate()
        .map(|(i, id)| format!("{i} {}\n", id.public()))
        .collect();
    text.push_str(&format!("dealer {}\n", ids[PARTIES].public()));
    let roster = Roster::parse(&text, "the test roster").expect("roster");
    let timeout = Duration::from_secs(5);
    let transports = memory_channels(endpoints, PARTIES, timeout)
        .into_iter()
        .map(Framed::into_transport);
    join_all(transports.zip(ids).enumerate().map(|(me, (t, id))| {
        let identity = if me == impostor {
            Identity::generate()
        } else {
            id
        };
        let auth = Auth::Roster {
            roster: Box::new(roster.clone()),
            identity: Box::new(identity),
        };
        async move {
            let params = SealParams {
                session: SESSION,
                me,
                peers: endpoints,
                parties: PARTIES,
                timeout,
            };
            Sealed::establish(t, &params, &auth).await
        }
    }))
    .await
}

#[tokio::test]
async fn an_impostor_with_the_honest_roster_is_named_by_every_honest_peer() {
    for (impostor, name) in [(0, "party 0"), (PARTIES, "the dealer")] {
        let results = with_impostor(impostor).await;
        for (me, result) in results.iter().enumerate() {
            if me == impostor {
                continue;
            }
            let err = result
                .as_ref()
                .err()
                .unwrap_or_else(|| panic!("endpoint {me} accepted the impostor {name}"))
                .to_string();
            // Each honest endpoint either verified the impostor's message itself, or was
            // told by the impostor's refusal... never accepted it.
            assert!(
                err.contains(&format!(
                    "{name} did not prove the identity the roster gives it"
                )) || err.contains(&format!("{name} refused the key exchange")),
                "endpoint {me}: {err}"
            );
        }
        // The impostor's direct peers that verify its messages name the roster's key.
        let named = results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .filter(|e| {
                e.to_string()
                    .contains("does not verify against the roster's key")
            })
            .count();
        assert!(named >= 1, "nobody checked the impostor {name}'s key");
    }
}
