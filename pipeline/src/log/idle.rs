//! Idle ticks: while nothing is appended to the log for `idle`, a tick
//! record ([`IDLE_TICK`]) is appended every `idle`, dated by the clock.
//! Decode reads a tick as "no event older than this is still on its way"
//! and moves the watermark to it, so the newest windows of a quiet stream
//! close (docs/decisions, "Idle streams close their windows"). A tick is a
//! record like any other: a replay after a crash reads the same ticks at
//! the same offsets and closes the same windows, never different ones.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::DurableLog;

/// The payload of a tick record. It can never be an event: events are JSON
/// text, which does not start with a NUL byte (HTTP ingest refuses it).
pub const IDLE_TICK: &[u8] = b"\0somaflow:idle-tick";

/// Whether a record is a tick.
pub fn is_idle_tick(payload: &[u8]) -> bool {
    payload == IDLE_TICK
}

impl DurableLog {
    /// Appends a tick whenever nothing was appended for `idle`, until the
    /// task is aborted (the node aborts it on shutdown).
    pub fn spawn_idle_ticks(&self, idle: Duration) -> JoinHandle<()> {
        let log = self.clone();
        tokio::spawn(async move {
            let check = (idle / 4).max(Duration::from_millis(50));
            let (mut seen_end, mut since) = (log.end_offset(), Instant::now());
            loop {
                tokio::time::sleep(check).await;
                let end = log.end_offset();
                if end != seen_end {
                    (seen_end, since) = (end, Instant::now());
                    continue;
                }
                if since.elapsed() < idle || !log.is_healthy() {
                    continue;
                }
                let now = chrono::Utc::now().timestamp_micros();
                match log.append(now, vec![Bytes::from_static(IDLE_TICK)]).await {
                    Ok(at) => {
                        debug!(offset = at.start, "idle tick");
                        (seen_end, since) = (at.end, Instant::now());
                    }
                    Err(e) => warn!(error = %e, "cannot append an idle tick"),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_quiet_log_gets_ticks_and_a_busy_one_none() {
        let dir = tempfile::tempdir().unwrap();
        let log = DurableLog::open(dir.path(), 1 << 20).unwrap();
        let ticks = log.spawn_idle_ticks(Duration::from_millis(200));
        // Busy: an append every 50 ms for 0.5 s leaves no room for a tick.
        for _ in 0..10 {
            log.append(1, vec![Bytes::from_static(b"{}")])
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut reader = log.reader(0).unwrap();
        let mut records = Vec::new();
        reader.read(100, &mut records).unwrap();
        assert!(records.iter().all(|r| !is_idle_tick(&r.payload)));
        // Quiet: ticks follow, each dated by the clock.
        tokio::time::sleep(Duration::from_millis(700)).await;
        ticks.abort();
        let before = chrono::Utc::now().timestamp_micros();
        records.clear();
        reader.read(100, &mut records).unwrap();
        let tick_times: Vec<i64> = records
            .iter()
            .filter(|r| is_idle_tick(&r.payload))
            .map(|r| r.ingest_time_us)
            .collect();
        assert!(tick_times.len() >= 2, "{tick_times:?}");
        assert!(tick_times.windows(2).all(|w| w[0] < w[1]));
        assert!(tick_times.iter().all(|t| *t > 1 && *t <= before));
    }
}
