//! The HTTP API (axum) and the commands of the `somaflow` binary.

pub mod app;
pub mod auth;
pub mod error;
pub mod forecast;
pub mod ingest;
pub mod ledger;
pub mod money;
pub mod openapi;
pub mod routes;
pub mod server;
pub mod state;
pub mod store;
pub mod usage;
