//! A TCP proxy that holds every chunk a client sends for a fixed delay before passing it on: an HTTP
//! request arrives as one chunk, so each request to the store behind it pays the delay once, as a request
//! to an object store in another region pays the round trip. `benches/s3_small_objects.py` puts it in
//! front of the S3-compatible server.
//!
//! ```sh
//! cargo run --release -p colloquy-archive --example delay_proxy -- 127.0.0.1:9000 20
//! ```
//!
//! It prints the port it listens on (loopback, chosen by the system) on its first line. The benchmark
//! needs many hundreds of requests in flight at once: a Python asyncio proxy topped out below what the
//! scan asks for, and then the proxy, not the scan, was measured.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(target), Some(delay_ms)) = (args.next(), args.next()) else {
        eprintln!("usage: delay_proxy TARGET_HOST:PORT DELAY_MS");
        std::process::exit(2);
    };
    let delay = match delay_ms.parse::<f64>() {
        Ok(ms) if ms >= 0.0 => Duration::from_secs_f64(ms / 1000.0),
        _ => {
            eprintln!("delay_proxy: DELAY_MS must be a number of milliseconds, got {delay_ms:?}");
            std::process::exit(2);
        }
    };
    // One thread: the proxy only moves bytes, and the machine's cores belong to the scan it measures.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(serve(target, delay))
}

async fn serve(target: String, delay: Duration) -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?.port());
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(e) => {
                // Out of file descriptors, most likely: the connections in flight end and free some.
                eprintln!("delay_proxy: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let target = target.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(&target).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::join!(
                pipe(client_read, server_write, delay),
                pipe(server_read, client_write, Duration::ZERO)
            );
        });
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
