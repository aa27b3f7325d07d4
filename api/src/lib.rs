//! The HTTP face of somaflow (axum): the server and its middleware, the
//! routes (one file per area), bearer-token auth, the OpenAPI document,
//! ingest, error answers, and the console's files. What the routes answer comes from the query
//! side (`somaflow-sql`); this crate decides only who may ask, how a
//! question is read from a request, and how an answer or error is written.

pub mod access;
pub mod auth;
pub mod config;
pub mod console;
pub mod error;
pub mod ingest;
pub mod openapi;
pub mod params;
pub mod responses;
pub mod routes;
pub mod server;
pub mod state;

pub use config::ServerConfig;
pub use server::HttpServer;
pub use state::AppState;
