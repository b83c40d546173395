//! The accept loop of an HTTP server (the relay, a direct-mode endpoint): HTTP/1.1 and
//! HTTP/2 on the same port, optional TLS, connection limits, and a graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::connections::{self, ConnectionLimits, Connections};

/// How long open connections may take to finish their current requests after shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How long a client may take to send the headers of a request (HTTP/1.1).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves HTTP/1.1 and HTTP/2 connections from `listener` (over TLS when `tls` is set),
/// answering every request with `handler`, until `shutdown` completes, with the default
/// connection limits (see [`serve_http_with`]).
pub(crate) async fn serve_http<H, F>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    handler: H,
    shutdown: impl Future<Output = ()> + Send,
    on_stop: impl FnOnce(),
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let defaults = ConnectionLimits::default();
    let limits = ConnectionLimits {
        max_connections: connections::fit_to_fd_limit(defaults.max_connections),
        ..defaults
    };
    serve_http_with(
        Connections::new(limits),
        listener,
        tls,
        handler,
        shutdown,
        on_stop,
    )
    .await
}

/// Serves HTTP/1.1 and HTTP/2 connections from `listener` (over TLS when `tls` is set),
/// answering every request with `handler`, until `shutdown` completes. Then stops
/// accepting, calls `on_stop` (e.g. to wake long-polls), and gives open connections a
/// short grace period to finish their current requests. A failed TLS handshake only ends
/// that connection (it is logged at debug level). `connections` keeps the number of open
/// connections under its cap and closes idle ones (see [`connections`]).
pub(crate) async fn serve_http_with<H, F>(
    connections: Arc<Connections>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    handler: H,
    shutdown: impl Future<Output = ()> + Send,
    on_stop: impl FnOnce(),
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let limits = connections.limits();
    let header_timeout = HEADER_READ_TIMEOUT.min(limits.idle_timeout);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let sweeper = tokio::spawn(connections.clone().sweep());

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Some(admitted) = connections.admit() else {
                        // Every connection is busy with a request: turn this one away.
                        tracing::debug!(%peer, "connection limit reached; refusing a connection");
                        if tls.is_none() {
                            tasks.spawn(turn_away(stream));
                        }
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let builder = builder.clone();
                    let handler = handler.clone();
                    let stop = stop_rx.clone();
                    let tls = tls.clone();
                    let connections = connections.clone();
                    tasks.spawn(async move {
                        let close = admitted.close.clone();
                        let id = admitted.id();
                        let handler = move |req| {
                            let busy = connections.busy(id);
                            let reply = handler(req);
                            async move {
                                let reply = reply.await;
                                drop(busy);
                                reply
                            }
                        };
                        match tls {
                            None => {
                                serve_connection(builder, handler, stream, peer, stop, close).await
                            }
                            Some(acceptor) => {
                                let handshake = tokio::time::timeout(
                                    TLS_HANDSHAKE_TIMEOUT.min(limits.idle_timeout),
                                    acceptor.accept(stream),
                                );
                                let shaken = tokio::select! {
                                    shaken = handshake => shaken,
                                    // Shed mid-handshake: just drop it.
                                    _ = close.notified() => return,
                                };
                                match shaken {
                                    Ok(Ok(stream)) => {
                                        serve_connection(builder, handler, stream, peer, stop, close)
                                            .await
                                    }
                                    Ok(Err(err)) => {
                                        tracing::debug!(%peer, "TLS handshake failed: {err}");
                                    }
                                    Err(_) => {
                                        tracing::debug!(%peer, "TLS handshake timed out");
                                    }
                                }
                            }
                        }
                        drop(admitted);
                    });
                }
                Err(err) => {
                    // Usually out of file descriptors: wait a little instead of spinning.
                    tracing::warn!("cannot accept a connection: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            // Reap finished connection tasks so the set does not grow without bound.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }

    sweeper.abort();
    drop(listener);
    on_stop();
    let _ = stop_tx.send(true);
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tasks.abort_all();
    }
}

/// Answers a connection over the cap with 503 and closes it (plain HTTP only).
async fn turn_away(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    const BODY: &str = "the server is at its connection limit and every connection is busy; \
                        retry later\n";
    let reply = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(reply.as_bytes())).await;
}

/// How long a connection asked to close may take to finish its current exchange.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Serves one accepted connection (HTTP/1.1 or HTTP/2) until it closes, the server stops
/// or the connection is asked to close (`close`: idle too long, or shed for a newcomer).
async fn serve_connection<I, H, F>(
    builder: Arc<auto::Builder<TokioExecutor>>,
    handler: H,
    stream: I,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
    close: Arc<tokio::sync::Notify>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let service = service_fn(move |req| {
        let reply = handler(req);
        async move { Ok::<_, Infallible>(reply.await) }
    });
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let grace = tokio::select! {
        res = conn.as_mut() => {
            if let Err(err) = res {
                tracing::debug!(%peer, "connection ended with an error: {err}");
            }
            return;
        }
        _ = stop.wait_for(|stopped| *stopped) => SHUTDOWN_GRACE,
        _ = close.notified() => {
            tracing::debug!(%peer, "closing an idle connection");
            CLOSE_GRACE
        }
    };
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(grace, conn).await;
}
