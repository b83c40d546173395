//! A real `redis-server` for the tests of the Redis store: on a free loopback port, with a
//! temporary directory of its own, no persistence, stopped when dropped. Never a mock: if
//! `redis-server` is missing the test fails and says how to install it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// A running `redis-server`.
pub struct RedisServer {
    /// `redis://127.0.0.1:PORT/0`.
    pub url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

/// The `redis-server` binary: `$MPC_TEST_REDIS_SERVER`, else the one on `PATH`.
fn binary() -> String {
    std::env::var("MPC_TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_string())
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port and waits until it answers PING.
    pub fn start() -> RedisServer {
        let dir = tempfile::tempdir().expect("temporary directory for redis-server");
        let port = free_port();
        let child = Command::new(binary())
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "cannot start {}: {err}. The Redis store tests need a real redis-server \
                     (Debian: apt-get install redis-server; .ci/run installs it)",
                    binary()
                )
            });
        let server = RedisServer {
            url: format!("redis://127.0.0.1:{port}/0"),
            child,
            _dir: dir,
        };
        server.wait_ready(port);
        server
    }

    fn wait_ready(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
                let mut buf = [0u8; 16];
                if conn.write_all(b"PING\r\n").is_ok()
                    && conn
                        .read(&mut buf)
                        .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {port} did not answer PING within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The store a test suite runs over: in the relay's memory, or in a fresh Redis.
pub struct Backend {
    /// What to pass as the relay's store.
    pub store: mpc::relay::store::StoreKind,
    /// The Redis server, kept running for the test.
    pub redis: Option<RedisServer>,
}

impl Backend {
    /// The in-memory store.
    pub fn memory() -> Backend {
        Backend {
            store: mpc::relay::store::StoreKind::Memory,
            redis: None,
        }
    }

    /// A Redis store on a fresh `redis-server`.
    pub fn redis() -> Backend {
        let server = RedisServer::start();
        Backend {
            store: mpc::relay::store::StoreKind::Redis(server.url.clone()),
            redis: Some(server),
        }
    }
}

/// Runs each named `async fn NAME(backend: &Backend)` as a test over both stores:
/// `memory::NAME` and `redis::NAME`.
#[macro_export]
macro_rules! store_suite {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&$crate::common::redis_server::Backend::memory()).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&$crate::common::redis_server::Backend::redis()).await;
                }
            )*
        }
    };
}
