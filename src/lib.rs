//! `mpc`: secure multi-party computation of Garble programs over HTTP.
//!
//! Data flows one way: [`cli`] → [`program`] + [`channel`] → [`engine`]. The engine
//! never knows about HTTP; it only talks to a [`channel::Channel`]. The HTTP and TLS
//! plumbing both ends share is [`net`]: the channel's transports and the [`relay`] server
//! build on it and never on each other.

#![deny(missing_docs)]

pub mod channel;
#[cfg(feature = "testing")]
pub mod cheat;
pub mod cli;
pub mod engine;
pub mod local;
pub mod net;
pub mod program;
pub mod progress;
pub mod relay;
