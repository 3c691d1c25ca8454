//! `s3-memory-store DIR BUCKET PREFIX LATENCY_MS [THREADS]`: serves every file under `DIR` as
//! `s3://BUCKET/PREFIX<relative path>` from memory, over path-style S3 with the access and secret key
//! `colloquy`, holding each request `LATENCY_MS` before answering (a timer, not a thread: a store in
//! another region). Prints the port it listens on (on 127.0.0.1), then serves until killed.
//!
//! Why not s3s-fs: it walks the whole bucket again for every page of a listing and reads and hashes each
//! object for every GET, 560–650 µs of CPU per object on the 2-core benchmark machine, on the cores the
//! scan needs (benches/README.md). Here a listing page is a range of a sorted map and a GET hands out
//! bytes loaded once, so what a benchmark measures is the client.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::dto::{
    CommonPrefix, ETag, GetObjectInput, GetObjectOutput, HeadObjectInput, HeadObjectOutput,
    ListObjectsV2Input, ListObjectsV2Output, Object, StreamingBlob, Timestamp,
};
use s3s::service::S3ServiceBuilder;
use s3s::{Body, S3, S3Request, S3Response, S3Result, s3_error};

struct Stored {
    data: Bytes,
    e_tag: String,
    modified: SystemTime,
}

struct MemoryStore {
    bucket: String,
    objects: BTreeMap<String, Stored>,
    latency: Duration,
}

impl MemoryStore {
    async fn object(&self, bucket: &str, key: &str) -> S3Result<&Stored> {
        tokio::time::sleep(self.latency).await;
        if bucket != self.bucket {
            return Err(s3_error!(NoSuchBucket));
        }
        self.objects.get(key).ok_or_else(|| s3_error!(NoSuchKey))
    }
}

#[async_trait::async_trait]
impl S3 for MemoryStore {
    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        tokio::time::sleep(self.latency).await;
        let input = req.input;
        if input.bucket != self.bucket {
            return Err(s3_error!(NoSuchBucket));
        }
        let prefix = input.prefix.clone().unwrap_or_default();
        let max_keys =
            usize::try_from(input.max_keys.unwrap_or(1000).clamp(0, 1000)).unwrap_or(1000);
        // Keys (and common prefixes) after the larger of the token and start-after, in key order.
        let after = [
            input.continuation_token.as_deref(),
            input.start_after.as_deref(),
        ]
        .into_iter()
        .flatten()
        .max()
        .map(str::to_owned);
        let start = match &after {
            Some(a) if a.as_str() >= prefix.as_str() => Bound::Excluded(a.clone()),
            _ => Bound::Included(prefix.clone()),
        };
        let mut contents = Vec::new();
        let mut common: Vec<String> = Vec::new();
        let mut last = None;
        let mut truncated = false;
        for (key, stored) in self.objects.range((start, Bound::Unbounded)) {
            let Some(rest) = key.strip_prefix(prefix.as_str()) else {
                break;
            };
            if let Some(d) = input.delimiter.as_deref().filter(|d| !d.is_empty())
                && let Some(at) = rest.find(d)
            {
                let folder = format!("{prefix}{}", &rest[..at + d.len()]);
                if common.last() == Some(&folder) || after.as_deref() >= Some(folder.as_str()) {
                    continue;
                }
                if contents.len() + common.len() == max_keys {
                    truncated = true;
                    break;
                }
                last = Some(folder.clone());
                common.push(folder);
                continue;
            }
            if contents.len() + common.len() == max_keys {
                truncated = true;
                break;
            }
            last = Some(key.clone());
            contents.push(Object {
                key: Some(key.clone()),
                size: Some(i64::try_from(stored.data.len()).unwrap_or(i64::MAX)),
                e_tag: Some(ETag::Strong(stored.e_tag.clone())),
                last_modified: Some(Timestamp::from(stored.modified)),
                ..Default::default()
            });
        }
        let key_count = i32::try_from(contents.len() + common.len()).unwrap_or(i32::MAX);
        let output = ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: input.prefix,
            delimiter: input.delimiter,
            max_keys: input.max_keys,
            key_count: Some(key_count),
            is_truncated: Some(truncated),
            continuation_token: input.continuation_token,
            next_continuation_token: if truncated { last } else { None },
            start_after: input.start_after,
            contents: (!contents.is_empty()).then_some(contents),
            common_prefixes: (!common.is_empty()).then(|| {
                common
                    .into_iter()
                    .map(|p| CommonPrefix { prefix: Some(p) })
                    .collect()
            }),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let stored = self.object(&input.bucket, &input.key).await?;
        let len = stored.data.len() as u64;
        let (data, content_range) = match input.range {
            None => (stored.data.clone(), None),
            Some(range) => {
                let r = range.check(len).map_err(|_| s3_error!(InvalidRange))?;
                let slice = stored.data.slice(r.start as usize..r.end as usize);
                (
                    slice,
                    Some(format!("bytes {}-{}/{len}", r.start, r.end - 1)),
                )
            }
        };
        let output = GetObjectOutput {
            content_length: Some(data.len() as i64),
            content_range,
            e_tag: Some(ETag::Strong(stored.e_tag.clone())),
            last_modified: Some(Timestamp::from(stored.modified)),
            body: Some(StreamingBlob::from(Body::from(data))),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        let stored = self.object(&input.bucket, &input.key).await?;
        let output = HeadObjectOutput {
            content_length: Some(stored.data.len() as i64),
            e_tag: Some(ETag::Strong(stored.e_tag.clone())),
            last_modified: Some(Timestamp::from(stored.modified)),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }
}

/// Every file under `dir`, keyed `prefix` + its path relative to `dir` (with `/`).
fn load(dir: &Path, prefix: &str) -> std::io::Result<BTreeMap<String, Stored>> {
    let mut objects = BTreeMap::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                folders.push(path);
                continue;
            }
            let relative = path.strip_prefix(dir).expect("under dir");
            let key = format!("{prefix}{}", relative.to_string_lossy().replace('\\', "/"));
            let data = Bytes::from(std::fs::read(&path)?);
            let meta = entry.metadata()?;
            // Not an MD5 (the client only compares entity tags): a cheap hash of the bytes.
            let e_tag = format!("{:016x}{:08x}", fnv1a(&data), data.len());
            objects.insert(
                key,
                Stored {
                    data,
                    e_tag,
                    modified: meta.modified()?,
                },
            );
        }
    }
    Ok(objects)
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, bucket, prefix, latency_ms, rest @ ..] = args.as_slice() else {
        return Err("usage: s3-memory-store DIR BUCKET PREFIX LATENCY_MS [THREADS]".into());
    };
    let threads = match rest.first() {
        Some(t) => t.parse()?,
        None => 1,
    };
    let objects = load(Path::new(dir), prefix)?;
    let store = MemoryStore {
        bucket: bucket.clone(),
        objects,
        latency: Duration::from_secs_f64(latency_ms.parse::<f64>()? / 1000.0),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut service = S3ServiceBuilder::new(store);
        service.set_auth(SimpleAuth::from_single("colloquy", "colloquy"));
        let service = service.build();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        println!("{}", listener.local_addr()?.port());
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let socket = match listener.accept().await {
                Ok((socket, _)) => socket,
                // Out of file descriptors, most likely: wait for connections to close, keep serving.
                Err(e) => {
                    eprintln!("s3-memory-store: cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = socket.set_nodelay(true);
            let conn = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    })
}
