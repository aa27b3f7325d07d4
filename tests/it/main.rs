//! End-to-end tests of the `somaflow` binary: real processes, real HTTP,
//! real files. One test binary for the whole crate keeps linking cheap.

mod alerts;
mod backpressure;
mod bad_input;
mod chdb;
mod clickhouse;
mod cloudevents;
mod cluster;
mod compaction;
mod console;
mod contract;
mod crash;
mod demo;
mod dispatch;
mod embedded;
mod endpoints;
mod enrich;
mod forecasts;
mod kafka;
mod ledger;
mod loadtest;
mod observability;
mod platform;
mod policy;
mod prices;
mod roundtrip;
mod shutdown;
mod support;
mod tenancy;
mod traces;
mod usage;
