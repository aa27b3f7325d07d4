//! What the writer and every reader of one log share: where it is, how far
//! it is durable, and who to wake when that moves.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64};

use tokio::sync::Notify;

pub(crate) struct Shared {
    pub dir: PathBuf,
    /// Offsets below this are fsynced and may be read.
    pub durable_end: AtomicU64,
    pub notify: Notify,
    /// Base offsets of the segments on disk, ascending.
    pub segments: Mutex<Vec<u64>>,
    pub failed: AtomicBool,
}

impl Shared {
    pub fn segments(&self) -> Vec<u64> {
        self.segments
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
