//! Sources: the embedded durable log (and its pipeline source) and the
//! generator of realistic platform traffic.

pub mod generator;
pub mod local_log;
pub mod log;
