//! The event model (docs/architecture.md, "The events"): kinds,
//! CloudEvents parsing and validation, Arrow schemas and columnar builders
//! (decoded rows, dead letters, raw batches).

pub mod binary;
mod body;
mod columns;
pub mod decimal;
mod envelope;
mod error;
pub mod fields;
mod json_schema;
mod kinds;
mod raw;
pub mod schema;

pub use body::{BodyFormat, split_body};
pub use columns::{DeadLetter, DeadLetterBuilder, KindBatchBuilder, SourcePosition};
pub use envelope::{ParsedEvent, TimeBounds, parse_event, peek_ids};
pub use error::EventError;
pub use json_schema::event_json_schema;
pub use kinds::EventKind;
pub use raw::{RawBatchBuilder, raw_rows};
