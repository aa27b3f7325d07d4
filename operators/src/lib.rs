//! Operators of the dataflow (DESIGN §5): decode, dedup, and the platform
//! operators enrich, policy, accounting, window, budget and dispatch.

pub mod accounting;
pub mod budget;
pub mod columns;
pub mod decode;
pub mod dedup;
pub mod dispatch;
pub mod enrich;
pub mod policy;
pub mod redis_link;
pub mod window;

mod key_digest;

pub use decode::Decode;
pub use dedup::Dedup;
