//! Answers of an HTTP server (text, JSON, octet streams), and the handling of client-supplied
//! text in paths and in messages.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

/// The response type of every route.
pub type Reply = Response<Full<Bytes>>;

/// A plain-text answer with `status`: `message` and a newline.
pub(crate) fn text(status: StatusCode, message: &str) -> Reply {
    let mut body = message.to_string();
    body.push('\n');
    let mut reply = Response::new(Full::new(Bytes::from(body)));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    reply
}

/// A JSON answer (200), or 500 if `value` cannot be encoded.
pub(crate) fn json(value: &impl serde::Serialize) -> Reply {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut reply = Response::new(Full::new(Bytes::from(body)));
            reply.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            reply
        }
        Err(err) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("internal error: cannot encode JSON: {err}"),
        ),
    }
}

/// An opaque message as the answer (200, `application/octet-stream`).
pub(crate) fn octets(body: Bytes) -> Reply {
    let mut reply = Response::new(Full::new(body));
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    reply
}

/// An empty answer (204).
pub(crate) fn no_content() -> Reply {
    let mut reply = Response::new(Full::new(Bytes::new()));
    *reply.status_mut() = StatusCode::NO_CONTENT;
    reply
}

/// Decodes `%XX` escapes; `None` for a malformed escape (a `%` not followed by two hex
/// digits, e.g. `%+f`) or invalid UTF-8.
pub(crate) fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let well_formed = bytes.iter().enumerate().all(|(i, b)| {
        *b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return None;
    }
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// Cuts a client-supplied string for echoing it in an error message.
pub fn shorten(raw: &str) -> String {
    const MAX: usize = 64;
    if raw.chars().count() <= MAX {
        raw.to_string()
    } else {
        let cut: String = raw.chars().take(MAX).collect();
        format!("{cut}...")
    }
}
