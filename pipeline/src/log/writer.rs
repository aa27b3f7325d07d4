//! The single writer thread with group commit, and the shared log handle.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::{Notify, mpsc, oneshot};
use tracing::{error, info, warn};

use super::LogError;
use super::reader::LogReader;
use super::segment::{MAX_PAYLOAD_BYTES, encode, list_segments, scan, segment_path};
use super::shared::Shared;
use crate::metrics::metrics;

/// Most bytes one group commit writes before it fsyncs.
const GROUP_BYTES: usize = 16 * 1024 * 1024;

struct AppendRequest {
    ingest_time_us: i64,
    payloads: Vec<Bytes>,
    done: oneshot::Sender<Result<Range<u64>, LogError>>,
}

/// Handle to the log; cheap to clone, shared by the HTTP ingest (writer side)
/// and the pipeline's source (reader side).
#[derive(Clone)]
pub struct DurableLog {
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<AppendRequest>,
}

struct Writer {
    shared: Arc<Shared>,
    file: File,
    segment_bytes: u64,
    size: u64,
    next_offset: u64,
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LogError::io(dir, e))
}

impl DurableLog {
    /// Opens (or creates) the log in `dir`, cutting off a torn tail left by a
    /// crash, and starts the writer thread.
    pub fn open(dir: &Path, segment_bytes: u64) -> Result<DurableLog, LogError> {
        std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
        let mut bases = list_segments(dir)?;
        if bases.is_empty() {
            File::create(segment_path(dir, 0)).map_err(|e| LogError::io(dir, e))?;
            sync_dir(dir)?;
            bases.push(0);
        }
        let last = *bases.last().unwrap_or(&0);
        let path = segment_path(dir, last);
        let (count, valid, torn) = scan(&path)?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| LogError::io(&path, e))?;
        if let Some(why) = torn {
            warn!(segment = %path.display(), valid_bytes = valid, %why, "cutting off a torn tail left by a crash (never acknowledged)");
            file.set_len(valid).map_err(|e| LogError::io(&path, e))?;
            file.sync_all().map_err(|e| LogError::io(&path, e))?;
        }
        let end = last + count;
        info!(dir = %dir.display(), segments = bases.len(), first_offset = bases[0], end_offset = end, "log opened");
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            durable_end: AtomicU64::new(end),
            notify: Notify::new(),
            segments: Mutex::new(bases),
            failed: AtomicBool::new(false),
        });
        metrics().log_end_offset.set(end as i64);
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = Writer {
            shared: shared.clone(),
            file,
            segment_bytes,
            size: valid,
            next_offset: end,
        };
        std::thread::Builder::new()
            .name("somaflow-log-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| LogError::io(dir, e))?;
        Ok(DurableLog { shared, tx })
    }

    /// Appends records and waits until they are on disk; returns their offsets.
    pub async fn append(
        &self,
        ingest_time_us: i64,
        payloads: Vec<Bytes>,
    ) -> Result<Range<u64>, LogError> {
        if payloads.is_empty() {
            let end = self.end_offset();
            return Ok(end..end);
        }
        if let Some(big) = payloads.iter().find(|p| p.len() > MAX_PAYLOAD_BYTES) {
            return Err(LogError::RecordTooLarge {
                size: big.len(),
                limit: MAX_PAYLOAD_BYTES,
            });
        }
        let (done, wait) = oneshot::channel();
        self.tx
            .send(AppendRequest {
                ingest_time_us,
                payloads,
                done,
            })
            .map_err(|_| LogError::WriterStopped)?;
        wait.await.map_err(|_| LogError::WriterStopped)?
    }

    /// Next offset to be assigned (= number of records ever appended).
    pub fn end_offset(&self) -> u64 {
        self.shared.durable_end.load(Ordering::Acquire)
    }

    /// First offset still on disk.
    pub fn first_offset(&self) -> u64 {
        self.shared.segments().first().copied().unwrap_or(0)
    }

    pub fn is_healthy(&self) -> bool {
        !self.shared.failed.load(Ordering::Acquire)
    }

    pub fn reader(&self, from: u64) -> Result<LogReader, LogError> {
        LogReader::open(self.shared.clone(), from)
    }

    /// Deletes segments whose records all lie below `offset` (never the
    /// newest segment). Returns how many were deleted.
    pub fn delete_below(&self, offset: u64) -> Result<usize, LogError> {
        self.delete_below_written_before(offset, SystemTime::now() + Duration::from_secs(3_600))
    }

    /// As [`Self::delete_below`], but only segments last written before
    /// `cutoff` (a retention period), oldest first.
    pub fn delete_below_written_before(
        &self,
        offset: u64,
        cutoff: SystemTime,
    ) -> Result<usize, LogError> {
        let mut segments = self
            .shared
            .segments
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut deleted = 0;
        while segments.len() > 1 && segments[1] <= offset {
            let path = segment_path(&self.shared.dir, segments[0]);
            let written = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .map_err(|e| LogError::io(&path, e))?;
            if written >= cutoff {
                break;
            }
            std::fs::remove_file(&path).map_err(|e| LogError::io(&path, e))?;
            segments.remove(0);
            deleted += 1;
        }
        Ok(deleted)
    }
}

impl Writer {
    fn run(mut self, mut rx: mpsc::UnboundedReceiver<AppendRequest>) {
        let mut buf = Vec::with_capacity(GROUP_BYTES);
        while let Some(first) = rx.blocking_recv() {
            let mut group = vec![first];
            let mut bytes: usize = group[0].payloads.iter().map(|p| p.len()).sum();
            while bytes < GROUP_BYTES {
                match rx.try_recv() {
                    Ok(r) => {
                        bytes += r.payloads.iter().map(|p| p.len()).sum::<usize>();
                        group.push(r);
                    }
                    Err(_) => break,
                }
            }
            let started = Instant::now();
            match self.write_group(&group, &mut buf) {
                Ok(ranges) => {
                    metrics()
                        .log_append_duration
                        .observe(started.elapsed().as_secs_f64());
                    metrics().log_end_offset.set(self.next_offset as i64);
                    self.shared
                        .durable_end
                        .store(self.next_offset, Ordering::Release);
                    self.shared.notify.notify_waiters();
                    for (req, range) in group.into_iter().zip(ranges) {
                        let _ = req.done.send(Ok(range));
                    }
                }
                Err(e) => {
                    // What was written but not fsynced may be lost; refuse
                    // everything from here so no 202 is ever given for it.
                    error!(error = %e, "log append failed; the log stops accepting writes");
                    self.shared.failed.store(true, Ordering::Release);
                    for req in group {
                        let _ = req.done.send(Err(LogError::WriterStopped));
                    }
                    rx.close();
                    while let Ok(req) = rx.try_recv() {
                        let _ = req.done.send(Err(LogError::WriterStopped));
                    }
                    return;
                }
            }
        }
    }

    fn write_group(
        &mut self,
        group: &[AppendRequest],
        buf: &mut Vec<u8>,
    ) -> Result<Vec<Range<u64>>, LogError> {
        let mut ranges = Vec::with_capacity(group.len());
        for req in group {
            let start = self.next_offset;
            for payload in &req.payloads {
                let before = buf.len();
                encode(buf, req.ingest_time_us, payload);
                let rec = (buf.len() - before) as u64;
                let used = self.size + before as u64;
                if used > 0 && used + rec > self.segment_bytes {
                    // Roll: what is buffered before this record closes the old segment.
                    let tail = buf.split_off(before);
                    self.flush(buf)?;
                    self.roll()?;
                    buf.extend_from_slice(&tail);
                }
                self.next_offset += 1;
            }
            ranges.push(start..self.next_offset);
        }
        self.flush(buf)?;
        let path = self.current_path();
        self.file.sync_data().map_err(|e| LogError::io(&path, e))?;
        Ok(ranges)
    }

    fn current_path(&self) -> PathBuf {
        let base = self.shared.segments().last().copied().unwrap_or(0);
        segment_path(&self.shared.dir, base)
    }

    fn flush(&mut self, buf: &mut Vec<u8>) -> Result<(), LogError> {
        if buf.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(buf)
            .map_err(|e| LogError::io(&self.current_path(), e))?;
        self.size += buf.len() as u64;
        buf.clear();
        Ok(())
    }

    fn roll(&mut self) -> Result<(), LogError> {
        let old = self.current_path();
        self.file.sync_data().map_err(|e| LogError::io(&old, e))?;
        let base = self.next_offset;
        let path = segment_path(&self.shared.dir, base);
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| LogError::io(&path, e))?;
        sync_dir(&self.shared.dir)?;
        self.size = 0;
        self.shared
            .segments
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(base);
        Ok(())
    }
}
