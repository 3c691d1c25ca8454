//! The live endpoint: HTTP/1.1, one route per source.
//!
//! - `POST /v1/messages` (the generic source): a bearer token, a body of messages ([`crate::message`]);
//!   answers `200 {"accepted": n, "duplicates": m}` once the messages are on disk.
//! - `GET|POST /v1/whatsapp`, `POST /v1/twilio`, `POST /v1/slack`: the channels' webhooks, each signed
//!   ([`crate::channels`]); a route is on when its source is configured.
//! - `GET /health`.
//!
//! Everything from the network is hostile until checked: the token is compared in constant time, a body
//! over the limit is refused before it is read (by its length) or as it streams in, and a bad message
//! refuses the whole request with what was wrong and where. A client gets 10 s for its headers (then the
//! connection is closed) and 30 s for its body (408). Errors are `{"error": "..."}` with 400, 401, 404,
//! 405, 408, 413 or 503 (the store could not make the messages durable: nothing was acknowledged).

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::channels::{self, SlackEvent};
use crate::message::parse_body;
use crate::store::{LiveStore, Outcome};

/// How long a client has to send a request's headers, and then its body.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What the endpoint needs: the store, each source's secrets and the body limit.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub store: LiveStore,
    /// Bearer token of `POST /v1/messages`; `None` turns the route off (404).
    pub token: Option<String>,
    pub whatsapp: Option<WhatsAppSource>,
    pub twilio: Option<TwilioSource>,
    pub slack: Option<SlackSource>,
    pub max_body_bytes: usize,
}

#[derive(Clone, Debug)]
pub struct WhatsAppSource {
    /// The Meta app's secret: keys `X-Hub-Signature-256`.
    pub app_secret: String,
    /// What the subscription handshake must send as `hub.verify_token`.
    pub verify_token: String,
}

#[derive(Clone, Debug)]
pub struct TwilioSource {
    pub auth_token: String,
    /// The URL Twilio posts to, exactly as configured there (it is part of what Twilio signs).
    pub url: String,
}

#[derive(Clone, Debug)]
pub struct SlackSource {
    pub signing_secret: String,
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
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            // A client that opens a connection and sends its headers slowly (or never) is cut off.
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn respond(req: Request<Incoming>, endpoint: &Endpoint) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let on = match path.as_str() {
        "/v1/messages" => endpoint.token.is_some(),
        "/v1/whatsapp" => endpoint.whatsapp.is_some(),
        "/v1/twilio" => endpoint.twilio.is_some(),
        "/v1/slack" => endpoint.slack.is_some(),
        _ => false,
    };
    let reply = match (req.method(), path.as_str()) {
        (&Method::GET, "/health") => {
            return json(StatusCode::OK, serde_json::json!({"status": "ok"}));
        }
        _ if !on => Err(error(StatusCode::NOT_FOUND, format!("no route {path}"))),
        (&Method::GET, "/v1/whatsapp") => Ok(whatsapp_handshake(&req, endpoint)),
        (&Method::POST, "/v1/messages") => post_messages(req, endpoint).await,
        (&Method::POST, "/v1/whatsapp") => post_whatsapp(req, endpoint).await,
        (&Method::POST, "/v1/twilio") => post_twilio(req, endpoint).await,
        (&Method::POST, "/v1/slack") => post_slack(req, endpoint).await,
        _ => Err(error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("use POST for {path}"),
        )),
    };
    reply.unwrap_or_else(|e| e)
}

type Reply = Result<Response<Full<Bytes>>, Response<Full<Bytes>>>;

/// The request's headers and whole body, or the refusal of an oversized or unreadable one.
async fn read_body(
    req: Request<Incoming>,
    limit: usize,
) -> Result<(hyper::http::request::Parts, Bytes), Response<Full<Bytes>>> {
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, limit).collect()).await;
    let Ok(read) = read else {
        return Err(error(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {} s",
                BODY_TIMEOUT.as_secs()
            ),
        ));
    };
    match read {
        Ok(b) => Ok((parts, b.to_bytes())),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large(limit)),
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            format!("the body could not be read: {e}"),
        )),
    }
}

fn header<'a>(parts: &'a hyper::http::request::Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

/// A refusal for `e`; signature failures are logged (the channel, or someone posing as it, is told
/// only that the request was refused).
fn refuse(source: &str, e: &crate::LiveError) -> Response<Full<Bytes>> {
    if matches!(e, crate::LiveError::Unauthorized(_)) {
        tracing::warn!("live: refused a {source} request: {e}");
    }
    error(
        StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
        e.to_string(),
    )
}

async fn store(
    endpoint: &Endpoint,
    messages: Vec<crate::LiveMessage>,
) -> Result<Outcome, Response<Full<Bytes>>> {
    endpoint.store.append(messages).await.map_err(|e| {
        tracing::error!("live: {e}");
        refuse("store", &e)
    })
}

fn outcome(o: Outcome) -> Response<Full<Bytes>> {
    json(
        StatusCode::OK,
        serde_json::json!({"accepted": o.accepted, "duplicates": o.duplicates}),
    )
}

/// Meta's subscription handshake: `hub.challenge` back when `hub.verify_token` is right.
fn whatsapp_handshake(req: &Request<Incoming>, endpoint: &Endpoint) -> Response<Full<Bytes>> {
    let Some(source) = &endpoint.whatsapp else {
        return error(StatusCode::NOT_FOUND, "no route /v1/whatsapp".into());
    };
    let query: Vec<(String, String)> =
        form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let token = get("hub.verify_token").unwrap_or_default();
    if get("hub.mode") == Some("subscribe")
        && constant_time_eq(token.as_bytes(), source.verify_token.as_bytes())
    {
        return text(
            "text/plain",
            Bytes::from(get("hub.challenge").unwrap_or_default().to_owned()),
        );
    }
    tracing::warn!("live: refused a WhatsApp subscription handshake with the wrong verify token");
    error(
        StatusCode::FORBIDDEN,
        "hub.mode must be subscribe and hub.verify_token the configured one".into(),
    )
}

async fn post_whatsapp(req: Request<Incoming>, endpoint: &Endpoint) -> Reply {
    let Some(source) = &endpoint.whatsapp else {
        return Err(error(StatusCode::NOT_FOUND, "no route /v1/whatsapp".into()));
    };
    let (parts, body) = read_body(req, endpoint.max_body_bytes).await?;
    channels::verify_meta(
        &source.app_secret,
        header(&parts, "x-hub-signature-256"),
        &body,
    )
    .map_err(|e| refuse("WhatsApp", &e))?;
    let messages = channels::whatsapp_messages(&body).map_err(|e| refuse("WhatsApp", &e))?;
    Ok(outcome(store(endpoint, messages).await?))
}

async fn post_twilio(req: Request<Incoming>, endpoint: &Endpoint) -> Reply {
    let Some(source) = &endpoint.twilio else {
        return Err(error(StatusCode::NOT_FOUND, "no route /v1/twilio".into()));
    };
    let (parts, body) = read_body(req, endpoint.max_body_bytes).await?;
    let params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    channels::verify_twilio(
        &source.auth_token,
        &source.url,
        header(&parts, "x-twilio-signature"),
        &params,
    )
    .map_err(|e| refuse("Twilio", &e))?;
    let message =
        channels::twilio_message(&params, chrono::Utc::now()).map_err(|e| refuse("Twilio", &e))?;
    store(endpoint, vec![message]).await?;
    // An empty TwiML response: no automatic reply to the sender.
    Ok(text(
        "text/xml",
        Bytes::from_static(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>"),
    ))
}

async fn post_slack(req: Request<Incoming>, endpoint: &Endpoint) -> Reply {
    let Some(source) = &endpoint.slack else {
        return Err(error(StatusCode::NOT_FOUND, "no route /v1/slack".into()));
    };
    let (parts, body) = read_body(req, endpoint.max_body_bytes).await?;
    channels::verify_slack(
        &source.signing_secret,
        header(&parts, "x-slack-signature"),
        header(&parts, "x-slack-request-timestamp"),
        &body,
        chrono::Utc::now(),
    )
    .map_err(|e| refuse("Slack", &e))?;
    match channels::slack_event(&body).map_err(|e| refuse("Slack", &e))? {
        SlackEvent::Challenge(c) => Ok(json(StatusCode::OK, serde_json::json!({"challenge": c}))),
        SlackEvent::Message(m) => Ok(outcome(store(endpoint, vec![m]).await?)),
        SlackEvent::Ignored => Ok(outcome(Outcome::default())),
    }
}

async fn post_messages(req: Request<Incoming>, endpoint: &Endpoint) -> Reply {
    let token = endpoint.token.as_deref().unwrap_or_default();
    let given = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
        tracing::warn!("live: refused a request to /v1/messages without the right token");
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "a valid 'Authorization: Bearer <token>' header is required".into(),
        ));
    }
    let (_, body) = read_body(req, endpoint.max_body_bytes).await?;
    let messages = parse_body(&body).map_err(|e| refuse("generic", &e))?;
    Ok(outcome(store(endpoint, messages).await?))
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
    let mut resp = text("application/json", Bytes::from(body.to_string()));
    *resp.status_mut() = status;
    resp
}

/// A 200 response of `content_type`.
fn text(content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
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
