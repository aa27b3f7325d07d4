//! The Redis connector, shared by enrich and budget (and the API's budget
//! reads): the `[redis]` section, its errors, and the link every user of
//! one process shares, which is also its health probe
//! (`somaflow_redis_up`; `/ready` lists a down Redis under `warnings`).

mod client;
mod config;
mod error;

pub use client::RedisLink;
pub use config::RedisConfig;
pub use error::RedisLinkError;
