//! The event model (DESIGN §3): kinds, CloudEvents parsing and validation,
//! Arrow schemas and columnar builders.

mod body;
mod columns;
pub mod decimal;
mod envelope;
mod error;
pub mod fields;
mod kinds;
pub mod schema;

pub use body::{BodyFormat, split_body};
pub use columns::{DeadLetter, DeadLetterBuilder, KindBatchBuilder, SourcePosition};
pub use envelope::{ParsedEvent, TimeBounds, parse_event, peek_ids};
pub use error::EventError;
pub use kinds::EventKind;
