//! Server counters, served in the Prometheus text format on `/metrics` (with `/health`) by a small HTTP
//! listener beside the gRPC port.

use std::convert::Infallible;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use datafusion::execution::memory_pool::MemoryPool;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

#[derive(Default)]
pub struct Metrics {
    pub queries: AtomicU64,
    pub errors: AtomicU64,
    pub active_streams: AtomicI64,
    pub rows_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub memory: Option<Arc<dyn MemoryPool>>,
    /// The parsed-archive cache the sessions share, if any.
    pub archive_cache: Option<Arc<colloquy::archive::ParsedCache>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

impl Metrics {
    pub fn with_memory(memory: Arc<dyn MemoryPool>) -> Self {
        Self {
            memory: Some(memory),
            ..Self::default()
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "colloquy_queries_total",
            "counter",
            "Queries and commands planned.",
            self.queries.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "colloquy_query_errors_total",
            "counter",
            "Calls that ended in an error.",
            self.errors.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "colloquy_active_streams",
            "gauge",
            "Result streams being sent.",
            self.active_streams.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "colloquy_rows_sent_total",
            "counter",
            "Result rows sent.",
            self.rows_sent.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "colloquy_bytes_sent_total",
            "counter",
            "Arrow IPC bytes sent.",
            self.bytes_sent.load(Ordering::Relaxed).to_string(),
        );
        let reserved = self.memory.as_ref().map_or(0, |m| m.reserved());
        metric(
            "colloquy_memory_reserved_bytes",
            "gauge",
            "Memory reserved by running queries (DataFusion's pool).",
            reserved.to_string(),
        );
        if let Some(cache) = &self.archive_cache {
            let s = cache.stats();
            metric(
                "colloquy_archive_cache_bytes",
                "gauge",
                "Parsed archive messages kept in memory between queries.",
                s.bytes.to_string(),
            );
            metric(
                "colloquy_archive_cache_hits_total",
                "counter",
                "Archive objects answered from the parsed cache.",
                s.hits.to_string(),
            );
            metric(
                "colloquy_archive_cache_misses_total",
                "counter",
                "Archive objects read and parsed (not in the cache, or changed).",
                s.misses.to_string(),
            );
        }
        out
    }
}

/// Serves `/metrics` and `/health` on `listener` until the task is dropped.
pub async fn serve_http(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let metrics = metrics.clone();
                async move { Ok::<_, Infallible>(respond(&req, &metrics)) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(req: &Request<Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let (status, body) = match req.uri().path() {
        "/metrics" => (StatusCode::OK, metrics.render()),
        "/health" => (StatusCode::OK, "ok\n".to_owned()),
        _ => (
            StatusCode::NOT_FOUND,
            "not found: try /metrics or /health\n".to_owned(),
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    resp
}
