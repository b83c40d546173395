//! Reading request bodies within a size limit and a stall timeout, and discarding refused
//! ones so that HTTP/1.1 clients still read the answer.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;

/// Most bytes of a refused body read and discarded (so that the client sees the answer
/// instead of a reset connection); beyond that the connection is simply closed.
pub(crate) const DRAIN_CAP: u64 = 64 << 20;

/// Longest time spent discarding a refused body.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// How long a body may go without any data before it is dropped (direct mode).
const BODY_STALL: Duration = Duration::from_secs(30);

/// How reading a message body failed.
pub(crate) enum BodyError {
    /// Larger than the limit.
    TooLarge,
    /// The connection failed or the body is malformed.
    Failed(String),
}

/// No data arrived for this long: the client stopped mid-body.
pub(crate) struct Stalled(pub(crate) Duration);

/// Reads a body of at most `limit` bytes; a larger body is discarded and refused, a body
/// that stalls for 30 s is dropped.
pub(crate) async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, BodyError> {
    match read_body_within(body, limit, None, BODY_STALL).await {
        Ok(read) => read,
        Err(Stalled(after)) => Err(BodyError::Failed(format!(
            "no data for {} s",
            after.as_secs()
        ))),
    }
}
/// Reads a body of at most `limit` bytes (`declared`: its announced length, if any) into
/// one allocation of its own size. The frames hyper hands out are slices of its read
/// buffer: keeping one alive keeps the whole buffer alive (kilobytes for a ten-byte
/// message), so they are always copied out. Fails with [`Stalled`] when no data
/// arrives for `stall`.
pub(crate) async fn read_body_within(
    body: Incoming,
    limit: usize,
    declared: Option<usize>,
    stall: Duration,
) -> Result<Result<Bytes, BodyError>, Stalled> {
    let mut limited = Limited::new(body, limit);
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    loop {
        let frame = match tokio::time::timeout(stall, limited.frame()).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(_) => return Err(Stalled(stall)),
        };
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                }
            }
            Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => {
                drop(buf);
                discard(limited).await;
                return Ok(Err(BodyError::TooLarge));
            }
            Err(err) => return Ok(Err(BodyError::Failed(err.to_string()))),
        }
    }
    if buf.capacity() > buf.len() + buf.len() / 8 {
        // Grown by doubling (no length announced): keep only what is used.
        return Ok(Ok(Bytes::copy_from_slice(&buf)));
    }
    Ok(Ok(buf.freeze()))
}

/// Reads and throws away the rest of a refused body (bounded in bytes and time), so that
/// an HTTP/1.1 client still reads the answer instead of a reset connection.
pub(crate) async fn discard<B>(mut body: B)
where
    B: hyper::body::Body + Unpin,
    B::Data: bytes::Buf,
{
    let mut seen: u64 = 0;
    let drain = async {
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    if let Some(data) = frame.data_ref() {
                        seen += bytes::Buf::remaining(data) as u64;
                    }
                    if seen > DRAIN_CAP {
                        return;
                    }
                }
                // Limited keeps failing (without buffering) once over its limit.
                Err(_) => {
                    seen += 1 << 14;
                    if seen > DRAIN_CAP {
                        return;
                    }
                }
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
}
