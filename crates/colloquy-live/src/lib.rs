//! colloquy-live: messages that arrive as they happen.
//!
//! A channel (or a client) posts messages to `colloquy serve`'s live endpoint ([`http`]). Each accepted
//! message is appended to a write-ahead log and synced to disk before the request is answered
//! ([`store`]); duplicates (a webhook the channel retries) are stored once. Every second the log is
//! flushed into JSON Lines files under `<dir>/data/<channel>/<day>/`, which the archive reader reads like
//! any other log: the `messages` table includes them (colloquy-cli's `live` module).
//!
//! The message shape of the generic endpoint is in [`message`]; channel webhook formats come next.

pub mod error;
pub mod http;
pub mod message;
pub mod store;

pub use error::{LiveError, Result};
pub use http::{Endpoint, serve};
pub use message::LiveMessage;
pub use store::{LiveStore, Outcome, StoreOptions};
