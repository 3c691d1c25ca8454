//! colloquy-archive: channel exports read from any object store as one DataFusion message table. The
//! formats are those registered in `colloquy_formats::formats::REGISTRY`: WhatsApp chats, Slack
//! workspace exports, Telegram, Discord, Messenger, Instagram and Teams exports, and JSON Lines and CSV
//! logs. With the default `'format' 'auto'`, each object's format is detected from its name and content.
//!
//! ```sql
//! CREATE EXTERNAL TABLE support STORED AS ARCHIVE LOCATION 's3://acme/exports/' OPTIONS ('format' 'auto');
//! SELECT * FROM read_archive('file:///data/whatsapp/*.zip') LIMIT 5;
//! SELECT * FROM archive_errors();
//! ```

pub mod cache;
pub mod errlog;
pub mod error;
pub mod exec;
pub mod listing;
pub mod local;
pub mod progress;
pub mod provider;
pub mod requests;
pub mod scan;
pub mod schema;

// The parsers live in their own crate (no query engine, so fuzzing builds fast); re-exported here.
pub use colloquy_formats::{container, detect, formats, message, options, sink, time};

use std::sync::Arc;

use datafusion::execution::context::SessionContext;
use datafusion::execution::session_state::SessionState;

pub use cache::ParsedCache;
pub use error::{ArchiveError, Result};
pub use exec::{ArchiveScanExec, RemoteScanEnv, ScanSpec, TableSpec};
pub use formats::Format;
pub use options::ArchiveOptions;
pub use provider::{ArchiveErrorsFunc, ArchiveTable, ArchiveTableFactory, ReadArchiveFunc};
pub use requests::raise_open_files_limit;
pub use schema::message_schema;

/// The `STORED AS` name of archive tables.
pub const FILE_TYPE: &str = "ARCHIVE";

/// Adds the `ARCHIVE` table factory to a session state under construction (table factories can only be
/// added to a state, not to a running context).
pub fn add_table_factory(state: &mut SessionState, log: &errlog::ErrorLog) {
    state.table_factories_mut().insert(
        FILE_TYPE.to_string(),
        Arc::new(ArchiveTableFactory::new(log.clone())),
    );
}

/// Registers `read_archive` and `archive_errors` on a context.
pub fn register_functions(ctx: &SessionContext, log: &errlog::ErrorLog) {
    ctx.register_udtf("read_archive", Arc::new(ReadArchiveFunc::new(log.clone())));
    ctx.register_udtf(
        "archive_errors",
        Arc::new(ArchiveErrorsFunc::new(log.clone())),
    );
}
