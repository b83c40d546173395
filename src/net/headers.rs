//! Header names of the relay's HTTP interface, shared by the relay's routes and its client.

/// Header carrying a client's id, which owns the seat it claims first.
pub const CLIENT_HEADER: &str = "x-mpc-client";

/// Header carrying a client's secret token: a seat claimed with one is read, acknowledged
/// and written only with it.
pub const TOKEN_HEADER: &str = "x-mpc-token";

/// Header carrying the session incarnation a client joined (answered by joins, sent back
/// with heartbeats).
pub const EPOCH_HEADER: &str = "x-mpc-session-epoch";

/// Header carrying the relay's instance id, on every answer of an mpc relay.
pub const INSTANCE_HEADER: &str = "x-mpc-relay";
