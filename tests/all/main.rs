//! The integration tests, as one test binary: each file is a module named for what it
//! tests. One binary instead of one per file because every test binary links the whole
//! library and instantiates the engine for its own channel types again; as 23 separate
//! binaries they were about half of a fresh build's CPU time (590 of 1,142 unit-seconds).
//! Run one file's tests with `cargo test --release --test all FILE::` (for example
//! `cargo test --release --test all tamper_relay::`).

mod common;
mod verdict;

mod binding;
mod channel_conformance;
mod cheating;
mod dependencies;
mod e2e;
mod identity;
mod insider;
mod newcomer;
mod outputs;
mod preprocess;
mod program;
mod program_circuits;
mod protocol;
mod relay;
mod relay_access;
mod relay_client;
mod relay_limits;
mod relay_redis;
mod stderr_lines;
mod streamed;
mod tamper_relay;
mod tls;
