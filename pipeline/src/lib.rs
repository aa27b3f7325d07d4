//! somaflow's core: the event model, configuration, the dataflow runtime and
//! checkpoints. Every other crate builds on these types.

pub mod checkpoint;
pub mod config;
pub mod events;
pub mod exposition;
pub mod metrics;
pub mod publications;
pub mod runtime;
pub mod storage;

pub use config::Config;
