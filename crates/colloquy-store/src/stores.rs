//! Object stores built from URLs: the environment's credentials plus a table's options for the operator,
//! an allow-listed subset of options and never the environment for a server's clients; and the registry
//! that builds a store the first time a URL is used.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::http::HttpBuilder;
use object_store::memory::InMemory;
use object_store::{ClientConfigKey, RetryConfig};
use url::Url;

use crate::error::{Result, StoreError};
use crate::policy::{AccessPolicy, Denied};

/// Object-store options, as `aws.*`, `gcp.*`/`google.*`, `azure.*` and `http.*` keys.
pub type StoreOptions = BTreeMap<String, String>;

pub fn store_key(url: &Url) -> Url {
    let s = format!(
        "{}://{}",
        url.scheme(),
        &url[url::Position::BeforeHost..url::Position::AfterPort]
    );
    Url::parse(&s).unwrap_or_else(|_| url.clone())
}

/// Reads are retried with backoff on transient failures; a dead server still fails the query in seconds.
fn retry() -> RetryConfig {
    RetryConfig {
        backoff: Default::default(),
        max_retries: 3,
        retry_timeout: Duration::from_secs(30),
    }
}

/// Builds the store for `url`, from environment variables plus `options` (`aws.*`, `gcp.*`, ...).
pub fn build_store(url: &Url, options: &StoreOptions) -> Result<Arc<dyn ObjectStore>> {
    build_store_with(url, options, None)
}

/// Builds a store from a server client's OPTIONS: only the keys in [`CLIENT_STORE_KEYS`], endpoints the
/// operator allows, and never the server's own credentials (no environment, no instance metadata: without
/// keys of its own the store sends unsigned requests).
pub fn build_client_store(
    url: &Url,
    options: &StoreOptions,
    policy: &AccessPolicy,
) -> Result<Arc<dyn ObjectStore>> {
    build_store_with(url, options, Some(policy))
}

/// Object-store options a server client may set, by their canonical `object_store` names. Everything
/// else (proxies, credential files, metadata and STS endpoints, emulators) could make the server read
/// its own files or call internal addresses.
pub const CLIENT_STORE_KEYS: &[&str] = &[
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_region",
    "aws_default_region",
    "aws_endpoint",
    "aws_virtual_hosted_style_request",
    "aws_skip_signature",
    "aws_unsigned_payload",
    "aws_checksum_algorithm",
    "aws_request_payer",
    "allow_http",
    "google_service_account_key",
    "google_skip_signature",
    "azure_storage_account_name",
    "azure_storage_account_key",
    "azure_storage_sas_key",
    "azure_storage_token",
    "azure_storage_endpoint",
    "azure_skip_signature",
    "timeout",
    "connect_timeout",
];

/// Keys that carry a client's own credentials: with none of them, a client store is unsigned.
const CLIENT_CREDENTIAL_KEYS: &[&str] = &[
    "aws_access_key_id",
    "aws_session_token",
    "google_service_account_key",
    "azure_storage_account_key",
    "azure_storage_sas_key",
    "azure_storage_token",
];

/// Refuses a client option outside [`CLIENT_STORE_KEYS`] and an endpoint the operator does not allow.
fn check_client_key(
    policy: Option<&AccessPolicy>,
    written: &str,
    canonical: &str,
    value: &str,
    has_credentials: &mut bool,
) -> Result<()> {
    let Some(policy) = policy else {
        return Ok(());
    };
    if !CLIENT_STORE_KEYS.contains(&canonical) {
        return Err(StoreError::Denied(Denied {
            rule: "network",
            message: format!(
                "object-store option '{written}' is not available to clients of colloquy serve (they may set credentials, region and an allowed endpoint); an operator can register the archive in the config instead"
            ),
        }));
    }
    if canonical.ends_with("endpoint") {
        policy
            .check_endpoint(written, value)
            .map_err(StoreError::Denied)?;
    }
    if CLIENT_CREDENTIAL_KEYS.contains(&canonical) {
        *has_credentials = true;
    }
    Ok(())
}

fn build_store_with(
    url: &Url,
    options: &StoreOptions,
    policy: Option<&AccessPolicy>,
) -> Result<Arc<dyn ObjectStore>> {
    // A client's store never starts from the server's environment (its credentials and endpoints).
    let from_env = policy.is_none();
    let mut has_credentials = false;
    let bad = |k: &str, e: object_store::Error| {
        StoreError::config(format!("object-store option '{k}': {e}"))
    };
    let opts = |prefixes: &[&str]| -> Vec<(String, String)> {
        options
            .iter()
            .filter_map(|(k, v)| {
                prefixes
                    .iter()
                    .find_map(|p| k.strip_prefix(p))
                    .map(|s| (s.to_string(), v.clone()))
            })
            .collect()
    };
    let bucket = url.host_str().unwrap_or_default().to_string();
    let store: Arc<dyn ObjectStore> = match url.scheme() {
        "s3" | "s3a" => {
            let b = if from_env {
                AmazonS3Builder::from_env()
            } else {
                AmazonS3Builder::new()
            };
            let mut b = b.with_bucket_name(&bucket).with_retry(retry());
            let mut endpoint = if from_env {
                std::env::var("AWS_ENDPOINT_URL")
                    .or_else(|_| std::env::var("AWS_ENDPOINT"))
                    .ok()
            } else {
                None
            };
            let mut region_set = from_env
                && (std::env::var("AWS_REGION").is_ok()
                    || std::env::var("AWS_DEFAULT_REGION").is_ok());
            let mut allow_http_set = false;
            for (k, v) in opts(&["aws."]) {
                let key =
                    AmazonS3ConfigKey::from_str(&k).map_err(|e| bad(&format!("aws.{k}"), e))?;
                check_client_key(
                    policy,
                    &format!("aws.{k}"),
                    key.as_ref(),
                    &v,
                    &mut has_credentials,
                )?;
                match key {
                    AmazonS3ConfigKey::Endpoint => endpoint = Some(v.clone()),
                    AmazonS3ConfigKey::Region | AmazonS3ConfigKey::DefaultRegion => {
                        region_set = true
                    }
                    AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp) => allow_http_set = true,
                    _ => {}
                }
                b = b.with_config(key, v);
            }
            if let Some(e) = &endpoint {
                b = b.with_endpoint(e);
                // A plain-HTTP endpoint (MinIO, moto, LocalStack) cannot work without this; say it once here.
                if e.starts_with("http://") && !allow_http_set {
                    b = b.with_allow_http(true);
                }
            }
            if !region_set {
                b = b.with_region("us-east-1");
            }
            if !from_env && !has_credentials {
                b = b.with_skip_signature(true);
            }
            Arc::new(
                b.build().map_err(|e| {
                    StoreError::config(format!("cannot configure S3 for '{url}': {e}"))
                })?,
            )
        }
        "gs" | "gcs" => {
            let b = if from_env {
                GoogleCloudStorageBuilder::from_env()
            } else {
                GoogleCloudStorageBuilder::new()
            };
            let mut b = b.with_bucket_name(&bucket).with_retry(retry());
            for (k, v) in opts(&["gcp.", "google."]) {
                let key = GoogleConfigKey::from_str(&k).map_err(|e| bad(&format!("gcp.{k}"), e))?;
                check_client_key(
                    policy,
                    &format!("gcp.{k}"),
                    key.as_ref(),
                    &v,
                    &mut has_credentials,
                )?;
                b = b.with_config(key, v);
            }
            if !from_env && !has_credentials {
                b = b.with_config(GoogleConfigKey::SkipSignature, "true");
            }
            Arc::new(b.build().map_err(|e| {
                StoreError::config(format!("cannot configure GCS for '{url}': {e}"))
            })?)
        }
        "az" | "azure" | "abfs" | "abfss" => {
            let b = if from_env {
                MicrosoftAzureBuilder::from_env()
            } else {
                MicrosoftAzureBuilder::new()
            };
            let mut b = b.with_url(url.as_str()).with_retry(retry());
            for (k, v) in opts(&["azure."]) {
                let key =
                    AzureConfigKey::from_str(&k).map_err(|e| bad(&format!("azure.{k}"), e))?;
                check_client_key(
                    policy,
                    &format!("azure.{k}"),
                    key.as_ref(),
                    &v,
                    &mut has_credentials,
                )?;
                b = b.with_config(key, v);
            }
            if !from_env && !has_credentials {
                b = b.with_config(AzureConfigKey::SkipSignature, "true");
            }
            Arc::new(b.build().map_err(|e| {
                StoreError::config(format!("cannot configure Azure for '{url}': {e}"))
            })?)
        }
        "http" | "https" => {
            let mut b = HttpBuilder::new()
                .with_url(store_key(url).as_str())
                .with_retry(retry());
            if url.scheme() == "http" {
                // The user wrote http:// on purpose; object_store refuses it unless told.
                b = b.with_config(ClientConfigKey::AllowHttp, "true");
            }
            if let Some(policy) = policy {
                policy.check_host(url).map_err(StoreError::Denied)?;
            }
            for (k, v) in opts(&["http."]) {
                let key =
                    ClientConfigKey::from_str(&k).map_err(|e| bad(&format!("http.{k}"), e))?;
                check_client_key(
                    policy,
                    &format!("http.{k}"),
                    key.as_ref(),
                    &v,
                    &mut has_credentials,
                )?;
                b = b.with_config(key, v);
            }
            Arc::new(b.build().map_err(|e| {
                StoreError::config(format!("cannot configure HTTP for '{url}': {e}"))
            })?)
        }
        "memory" => Arc::new(InMemory::new()),
        "file" => Arc::new(object_store::local::LocalFileSystem::new()),
        other => {
            return Err(StoreError::config(format!(
                "unsupported URL scheme '{other}'"
            )));
        }
    };
    Ok(store)
}

/// DataFusion's registry, plus stores made on demand for URLs nobody registered (from the environment).
#[derive(Debug, Default)]
pub struct AutoStoreRegistry {
    inner: DefaultObjectStoreRegistry,
}

impl AutoStoreRegistry {
    pub fn new() -> Self {
        Self::default()
    }
}

impl ObjectStoreRegistry for AutoStoreRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.inner.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> DFResult<Arc<dyn ObjectStore>> {
        self.inner.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> DFResult<Arc<dyn ObjectStore>> {
        if let Ok(s) = self.inner.get_store(url) {
            return Ok(s);
        }
        let key = store_key(url);
        let store = build_store(&key, &StoreOptions::new()).map_err(DataFusionError::from)?;
        // Two racing first uses may both build; the registry keeps one and both callers use that one.
        self.inner.register_store(&key, Arc::clone(&store));
        self.inner.get_store(url).or(Ok(store))
    }
}
