//! A relay running inside the test's own tokio runtime, on a free loopback port, and a
//! plain HTTP client for it (no proxy, no retries: the tests see every answer).

use std::net::SocketAddr;

use mpc::relay::{self, RelayConfig};
use reqwest::{Client, StatusCode};
use tokio::sync::oneshot;

/// A relay running in the test's runtime; stops when dropped.
pub struct InProcRelay {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    _stop: oneshot::Sender<()>,
}

/// The default configuration on a free loopback port.
pub fn config() -> RelayConfig {
    RelayConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..RelayConfig::default()
    }
}

/// Binds and runs a relay with `config` in the current runtime.
pub async fn start(config: RelayConfig) -> InProcRelay {
    let relay = relay::bind(config).await.expect("bind the relay");
    let url = format!("http://{}", relay.local_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(relay.run(async {
        let _ = stopped.await;
    }));
    InProcRelay { url, _stop: stop }
}

/// An HTTP client without proxies.
pub fn http() -> Client {
    mpc::net::tls::install_crypto_provider();
    Client::builder().no_proxy().build().expect("HTTP client")
}

/// Status and body text of a response.
pub async fn answer(resp: reqwest::Response) -> (StatusCode, String) {
    let status = resp.status();
    let body = resp.text().await.expect("response body");
    (status, body)
}

/// Sends `req` and asserts that the relay refuses it with `status` and says why (`what`
/// names the attempt in the failure); returns the relay's explanation.
pub async fn assert_refused(
    status: StatusCode,
    what: &str,
    req: reqwest::RequestBuilder,
) -> String {
    let (got, body) = answer(req.send().await.expect(what)).await;
    assert_eq!(got, status, "{what}: {body}");
    assert!(!body.trim().is_empty(), "{what}: empty body");
    body
}
