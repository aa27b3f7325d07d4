//! Operators of the dataflow (DESIGN §5). This crate has `decode`, `dedup`
//! and the price table of accounting; the other platform operators come next.

pub mod accounting;
pub mod decode;
pub mod dedup;

pub use decode::Decode;
pub use dedup::Dedup;
