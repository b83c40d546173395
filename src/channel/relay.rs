//! Client of `mpc serve`: join a session, wait for the others, send and long-poll receive.
