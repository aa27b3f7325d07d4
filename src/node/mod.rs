//! Node assembly: what a running somaflow is made of. The registry of node
//! types ([`registry`], [`platform`]), the embedded node (HTTP → durable
//! log → pipeline → lake, [`embedded`]), the cluster worker (Kafka in,
//! rebalances, [`cluster`]), the HTTP face put together from config
//! ([`http`]), and the ClickHouse startup step ([`clickhouse`]).

pub mod clickhouse;
pub mod cluster;
pub mod embedded;
pub mod http;
pub mod io;
pub mod platform;
pub mod registry;

pub use embedded::{EmbeddedNode, shutdown_signal};
pub use registry::{NodeTypes, registry};
