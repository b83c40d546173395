//! The Redis store (placeholder until the next commit).
