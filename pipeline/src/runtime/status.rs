//! Live status of a running pipeline, shared with the API (`/ready`) and
//! the demo's progress line.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct PipelineStatus {
    running: AtomicBool,
    last_epoch: AtomicU64,
    checkpoints: AtomicU64,
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
