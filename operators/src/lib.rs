//! Operators of the dataflow (DESIGN §5). This crate has `decode` and
//! `dedup`; the platform operators come next.

pub mod decode;
pub mod dedup;

pub use decode::Decode;
pub use dedup::Dedup;
