//! The live endpoint: HTTP/1.1, one route per source.
//!
//! - `POST /v1/messages` (the generic source): a bearer token, a body of messages ([`crate::message`]);
//!   answers `200 {"accepted": n, "duplicates": m}` once the messages are on disk.
//! - `GET /health`.
//!
//! Everything from the network is hostile until checked: the token is compared in constant time, a body
//! over the limit is refused before it is read (by its length) or as it streams in, and a bad message
//! refuses the whole request with what was wrong and where. Errors are `{"error": "..."}` with 400, 401,
//! 404, 405, 413 or 503 (the store could not make the messages durable: nothing was acknowledged).

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::message::parse_body;
use crate::store::LiveStore;

/// What the endpoint needs: the store, the generic source's token and the body limit.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub store: LiveStore,
    /// Bearer token of `POST /v1/messages`; `None` turns the route off (404).
    pub token: Option<String>,
    pub max_body_bytes: usize,
}

/// Serves `endpoint` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, endpoint: Arc<Endpoint>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let endpoint = Arc::clone(&endpoint);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let endpoint = Arc::clone(&endpoint);
                async move { Ok::<_, Infallible>(respond(req, &endpoint).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn respond(req: Request<Incoming>, endpoint: &Endpoint) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/health") => json(StatusCode::OK, serde_json::json!({"status": "ok"})),
        (&Method::POST, "/v1/messages") if endpoint.token.is_some() => {
            post_messages(req, endpoint).await
        }
        (_, "/v1/messages") if endpoint.token.is_some() => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "use POST for /v1/messages".into(),
        ),
        (_, path) => error(StatusCode::NOT_FOUND, format!("no route {path}")),
    }
}

async fn post_messages(req: Request<Incoming>, endpoint: &Endpoint) -> Response<Full<Bytes>> {
    let token = endpoint.token.as_deref().unwrap_or_default();
    let given = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
        tracing::warn!("live: refused a request to /v1/messages without the right token");
        return error(
            StatusCode::UNAUTHORIZED,
            "a valid 'Authorization: Bearer <token>' header is required".into(),
        );
    }
    let limit = endpoint.max_body_bytes;
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(limit);
    }
    let body = match Limited::new(req.into_body(), limit).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return too_large(limit),
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body could not be read: {e}"),
            );
        }
    };
    let messages = match parse_body(&body) {
        Ok(m) => m,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match endpoint.store.append(messages).await {
        Ok(o) => json(
            StatusCode::OK,
            serde_json::json!({"accepted": o.accepted, "duplicates": o.duplicates}),
        ),
        Err(e) => {
            tracing::error!("live: {e}");
            error(
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                e.to_string(),
            )
        }
    }
}

fn too_large(limit: usize) -> Response<Full<Bytes>> {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is larger than {limit} bytes (max_body_bytes in [live])"),
    )
}

fn error(status: StatusCode, message: String) -> Response<Full<Bytes>> {
    json(status, serde_json::json!({"error": message}))
}

fn json(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Compares secrets in time that depends on their lengths only.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
