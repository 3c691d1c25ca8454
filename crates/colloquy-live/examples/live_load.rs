//! Load generator and webhook receiver for `benches/live_latency.py`: message in → rule action out.
//!
//! ```sh
//! cargo run --release -p colloquy-live --example live_load -- \
//!     --to http://127.0.0.1:8081 --token T --receiver-port 9000 --rate 1000 --seconds 10
//! ```
//!
//! Sends `rate × seconds` messages (`message_id` `b-<i>`, `--batch` per request (default 1), each
//! conversation new) paced to `rate` a second over kept-alive connections, each request in its own task so a slow answer holds no
//! other back; notes when each was acknowledged. The receiver on `--receiver-port` notes when each
//! rule action (a POST whose JSON `key` is the message id) arrives. Prints one JSON line: messages sent,
//! the rate achieved, actions received, and latency (action arrival − acknowledgement) p50, p99 and max
//! in milliseconds. The Python harness this replaces spent more time sending and receiving than the
//! server did at 1,000 messages a second.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};

struct Args {
    to: String,
    token: String,
    receiver_port: u16,
    rate: f64,
    seconds: f64,
    batch: usize,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        to: String::new(),
        token: String::new(),
        receiver_port: 0,
        rate: 1000.0,
        seconds: 10.0,
        batch: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--to" => a.to = value,
            "--token" => a.token = value,
            "--receiver-port" => a.receiver_port = value.parse().map_err(|e| bad(&e))?,
            "--rate" => a.rate = value.parse().map_err(|e| bad(&e))?,
            "--seconds" => a.seconds = value.parse().map_err(|e| bad(&e))?,
            "--batch" => a.batch = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if a.to.is_empty()
        || a.token.is_empty()
        || a.receiver_port == 0
        || a.rate <= 0.0
        || a.batch == 0
    {
        return Err(
            "usage: live_load --to URL --token T --receiver-port P [--rate N] [--seconds S] [--batch B]".into(),
        );
    }
    Ok(a)
}

/// When each message was acknowledged and its action arrived, by message number.
#[derive(Default)]
struct Times {
    acked: Vec<Option<Instant>>,
    arrived: Vec<Option<Instant>>,
    arrivals: usize,
}

fn number(key: &str) -> Option<usize> {
    key.strip_prefix("b-")?.parse().ok()
}

async fn receive(times: Arc<Mutex<Times>>, port: u16) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let times = Arc::clone(&times);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let times = Arc::clone(&times);
                async move {
                    let body = req.into_body().collect().await?.to_bytes();
                    let now = Instant::now();
                    let key = serde_json::from_slice::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["key"].as_str().and_then(number));
                    if let (Some(i), Ok(mut t)) = (key, times.lock())
                        && i < t.arrived.len()
                        && t.arrived[i].is_none()
                    {
                        t.arrived[i] = Some(now);
                        t.arrivals += 1;
                    }
                    Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::new())))
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((q * sorted.len() as f64) as usize).min(sorted.len() - 1)]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args()?;
    let n = (a.rate * a.seconds) as usize;
    let times = Arc::new(Mutex::new(Times {
        acked: vec![None; n],
        arrived: vec![None; n],
        arrivals: 0,
    }));
    tokio::spawn(receive(Arc::clone(&times), a.receiver_port));
    let client = reqwest::Client::new();
    let url = format!("{}/v1/messages", a.to.trim_end_matches('/'));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for first in (0..n).step_by(a.batch) {
        let due = start + Duration::from_secs_f64(first as f64 / a.rate);
        tokio::time::sleep_until(due.into()).await;
        let numbers = first..(first + a.batch).min(n);
        let body: Vec<String> = numbers
            .clone()
            .map(|i| {
                serde_json::json!({
                    "message_id": format!("b-{i}"), "channel": "webchat",
                    "conversation_id": format!("bc-{i}"), "ts": "2026-03-30T10:00:00Z",
                    "sender_role": "customer", "text": format!("bench {i}"),
                })
                .to_string()
            })
            .collect();
        let body = body.join("\n");
        let (client, url, token, times) = (
            client.clone(),
            url.clone(),
            a.token.clone(),
            Arc::clone(&times),
        );
        tasks.push(tokio::spawn(async move {
            let resp = client.post(&url).bearer_auth(token).body(body).send().await;
            let ok = matches!(&resp, Ok(r) if r.status().is_success());
            let count = numbers.len();
            if ok && let Ok(mut t) = times.lock() {
                let now = Instant::now();
                for i in numbers {
                    t.acked[i] = Some(now);
                }
            }
            if ok { 0 } else { count }
        }));
    }
    let mut failed = 0;
    for t in tasks {
        failed += t.await.unwrap_or(a.batch);
    }
    let sent_secs = start.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(60);
    while times.lock().map(|t| t.arrivals).unwrap_or(n) < n - failed && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let t = times.lock().map_err(|_| "lock")?;
    let mut lat: Vec<f64> = t
        .acked
        .iter()
        .zip(&t.arrived)
        .filter_map(|(a, b)| {
            Some(
                b.as_ref()?
                    .saturating_duration_since(*a.as_ref()?)
                    .as_secs_f64()
                    * 1e3,
            )
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({
            "sent": n, "failed": failed, "achieved_rate": n as f64 / sent_secs, "actions": lat.len(),
            "p50_ms": percentile(&lat, 0.5), "p99_ms": percentile(&lat, 0.99),
            "max_ms": lat.last().copied().unwrap_or(f64::NAN),
        })
    );
    Ok(())
}
