//! colloquy-store: where data lives and who may reach it. Locations as users write them (URLs, local
//! paths, globs), object stores built from them (S3, GCS, Azure, HTTP, local, memory), and the access
//! policy of `colloquy serve` that guards every store a client's statement touches. The archive tables
//! and the ONNX functions both read through it.

pub mod error;
pub mod location;
pub mod policy;
pub mod stores;

pub use error::{Result, StoreError};
pub use location::Location;
pub use policy::{AccessPolicy, Denied, GuardedRegistry, GuardedStore};
pub use stores::{
    AutoStoreRegistry, CLIENT_STORE_KEYS, StoreOptions, build_client_store, build_store, store_key,
};
