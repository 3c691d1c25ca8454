//! colloquy-live: messages that arrive as they happen.
//!
//! A channel (or a client) posts messages to `colloquy serve`'s live endpoint ([`http`]). Each accepted
//! message is appended to a write-ahead log and synced to disk before the request is answered
//! ([`store`]); duplicates (a webhook the channel retries) are stored once. Every second the log is
//! flushed into JSON Lines files under `<dir>/data/<channel>/<day>/`, which the archive reader reads like
//! any other log: the `messages` table includes them (colloquy-cli's `live` module).
//!
//! The message shape of the generic endpoint is in [`message`]; the channels' webhook formats and their
//! signatures in [`channels`].

pub mod channels;
pub mod error;
pub mod http;
pub mod message;
pub mod rules;
pub mod store;

pub use error::{LiveError, Result};
pub use http::{Endpoint, SlackSource, TwilioSource, WhatsAppSource, serve};
pub use message::LiveMessage;
pub use rules::{Delivery, RuleEvent, RuleLog};
pub use store::{Flushed, LiveStore, Outcome, StoreOptions};
