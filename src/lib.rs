//! The `somaflow` binary's library: it assembles the crates into a running
//! node and holds every command. `src/main.rs` only parses the command line.
//!
//! * [`config`]: the whole configuration file, section by section.
//! * [`node`]: node types, the embedded node, the cluster worker.
//! * [`commands`]: one module per command (`demo`, `produce`, `sql`, …).
//! * [`bench`]: the `bench*` commands.
//! * [`generator`]: seeded, realistic platform traffic for the demo,
//!   `produce`, benchmarks and tests.
//! * [`telemetry`]: logs and OpenTelemetry trace export.

pub mod bench;
pub mod commands;
pub mod config;
pub mod generator;
pub mod node;
pub mod telemetry;

pub use config::Config;
