//! One file per `somaflow` command (`run` is the node itself, see
//! `crate::node`; the `bench*` commands are in `crate::bench`).

pub mod demo;
pub mod migrate;
pub mod prices;
pub mod produce;
pub mod run;
pub mod sql;
pub mod tenants;
pub mod token;
pub mod topics;
