//! Operators of the dataflow: decode, dedup, and the platform operators
//! enrich, policy, accounting, window, budget and dispatch, each with its
//! config section beside it; `redis/` is the connection enrich and budget
//! share.

pub mod accounting;
pub mod budget;
pub mod columns;
pub mod decode;
pub mod dedup;
pub mod dispatch;
pub mod enrich;
pub mod policy;
pub mod redis;
pub mod window;

mod key_digest;

pub use decode::Decode;
pub use dedup::{Dedup, DedupConfig};
