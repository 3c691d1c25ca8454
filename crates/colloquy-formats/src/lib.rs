//! colloquy-formats: the export parsers, free of any query engine. Each parser reads the bytes of one
//! export (already out of its object store) and hands [`message::Message`]s and bad records to a
//! [`sink::Sink`]. `colloquy-archive` turns them into Arrow batches; the fuzz targets call them directly.

pub mod container;
pub mod detect;
pub mod error;
pub mod formats;
pub mod message;
pub mod options;
pub mod sink;
pub mod time;

pub use error::{FormatError, Result};
pub use formats::Format;
pub use options::ArchiveOptions;
