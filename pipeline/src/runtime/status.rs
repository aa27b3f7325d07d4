//! Live status of a running pipeline, shared with the API (`/ready`) and
//! the demo's progress line.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct PipelineStatus {
    running: AtomicBool,
    last_epoch: AtomicU64,
    checkpoints: AtomicU64,
    /// When the newest checkpoint completed, in ms since the Unix epoch.
    last_checkpoint_at_ms: AtomicU64,
    failure: Mutex<Option<String>>,
}

impl PipelineStatus {
    pub fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::SeqCst);
    }

    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    pub fn checkpoint_done(&self, epoch: u64) {
        self.last_epoch.store(epoch, Ordering::SeqCst);
        self.checkpoints.fetch_add(1, Ordering::SeqCst);
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.last_checkpoint_at_ms.store(now_ms, Ordering::SeqCst);
    }

    /// When this process completed its newest checkpoint (ms since the
    /// Unix epoch), `None` before its first.
    pub fn last_checkpoint_at_ms(&self) -> Option<u64> {
        Some(self.last_checkpoint_at_ms.load(Ordering::SeqCst)).filter(|&ms| ms > 0)
    }

    /// Epoch of the newest complete checkpoint (0 before the first).
    pub fn last_checkpoint(&self) -> u64 {
        self.last_epoch.load(Ordering::SeqCst)
    }

    /// Checkpoints completed by this process.
    pub fn checkpoints(&self) -> u64 {
        self.checkpoints.load(Ordering::SeqCst)
    }

    pub fn fail(&self, reason: String) {
        self.set_running(false);
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
    }

    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
