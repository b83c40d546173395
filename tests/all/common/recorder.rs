//! A transport that records every frame handed to it (with its receiver) before passing it
//! on: tests inspect what an endpoint sent, e.g. which phases reached whom, or that no plain
//! frame shows in what the relay stored.

use std::sync::Mutex;
use std::time::Instant;

use bytes::Bytes;
use mpc::channel::{ChannelError, Transport};

/// Records the frames sent through `inner`.
pub struct Recorder<T> {
    inner: T,
    sent: Mutex<Vec<(usize, Bytes)>>,
}

impl<T> Recorder<T> {
    /// Wraps `inner`, recording nothing yet.
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            sent: Mutex::new(Vec::new()),
        }
    }

    /// Every frame sent so far, with its receiver, in sending order.
    pub fn sent(&self) -> Vec<(usize, Bytes)> {
        self.sent.lock().expect("recorder lock").clone()
    }
}

impl<T: Transport> Transport for Recorder<T> {
    async fn send_frame(&self, to: usize, seq: u64, frame: Bytes) -> Result<(), ChannelError> {
        self.sent
            .lock()
            .expect("recorder lock")
            .push((to, frame.clone()));
        self.inner.send_frame(to, seq, frame).await
    }

    async fn recv_frame(
        &self,
        from: usize,
        seq: u64,
        deadline: Instant,
    ) -> Result<Option<Bytes>, ChannelError> {
        self.inner.recv_frame(from, seq, deadline).await
    }
}
