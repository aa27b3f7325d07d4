//! Reading the log by offset, only below the durable end.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::LogError;
use super::segment::{LogRecord, Next, read_record, segment_path, skip_records};
use super::shared::Shared;

pub struct LogReader {
    shared: Arc<Shared>,
    next_offset: u64,
    file: Option<(BufReader<File>, PathBuf)>,
}

impl LogReader {
    pub(crate) fn open(shared: Arc<Shared>, from: u64) -> Result<LogReader, LogError> {
        let end = shared.durable_end.load(Ordering::Acquire);
        if from > end {
            return Err(LogError::OffsetBeyondEnd { offset: from, end });
        }
        let mut reader = LogReader {
            shared,
            next_offset: from,
            file: None,
        };
        reader.seek(from)?;
        Ok(reader)
    }

    /// Offset of the next record this reader returns.
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    fn seek(&mut self, offset: u64) -> Result<(), LogError> {
        let segments = self.shared.segments();
        let first = segments.first().copied().unwrap_or(0);
        if offset < first {
            return Err(LogError::OffsetGone { offset, first });
        }
        let base = segments
            .iter()
            .rev()
            .find(|b| **b <= offset)
            .copied()
            .unwrap_or(first);
        let path = segment_path(&self.shared.dir, base);
        let file = File::open(&path).map_err(|e| LogError::io(&path, e))?;
        let mut r = BufReader::with_capacity(1 << 20, file);
        skip_records(&mut r, offset - base, &path)?;
        self.file = Some((r, path));
        self.next_offset = offset;
        Ok(())
    }

    /// Reads up to `max` durable records into `out`; returns how many.
    pub fn read(&mut self, max: usize, out: &mut Vec<LogRecord>) -> Result<usize, LogError> {
        let end = self.shared.durable_end.load(Ordering::Acquire);
        let mut n = 0;
        while n < max && self.next_offset < end {
            let Some((r, path)) = self.file.as_mut() else {
                self.seek(self.next_offset)?;
                continue;
            };
            match read_record(r, true).map_err(|e| LogError::io(path, e))? {
                Next::Record {
                    ingest_time_us,
                    payload,
                } => {
                    out.push(LogRecord {
                        offset: self.next_offset,
                        ingest_time_us,
                        payload,
                    });
                    self.next_offset += 1;
                    n += 1;
                }
                Next::End => {
                    // The record is durable, so it starts the next segment.
                    let next = segment_path(&self.shared.dir, self.next_offset);
                    let file = File::open(&next).map_err(|e| LogError::Corrupt {
                        path: next.clone(),
                        reason: format!(
                            "offset {} is durable but its segment cannot be opened: {e}",
                            self.next_offset
                        ),
                    })?;
                    self.file = Some((BufReader::with_capacity(1 << 20, file), next));
                }
                Next::Torn(reason) => {
                    return Err(LogError::Corrupt {
                        path: path.clone(),
                        reason: format!("at offset {}: {reason}", self.next_offset),
                    });
                }
            }
        }
        Ok(n)
    }

    /// Waits up to `timeout` for records beyond what was read.
    pub async fn wait(&self, timeout: Duration) {
        let notified = self.shared.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.shared.durable_end.load(Ordering::Acquire) > self.next_offset {
            return;
        }
        let _ = tokio::time::timeout(timeout, notified).await;
    }
}

#[cfg(test)]
mod tests {
    use super::super::DurableLog;
    use bytes::Bytes;

    fn payloads(range: std::ops::Range<u32>) -> Vec<Bytes> {
        range.map(|i| Bytes::from(format!("record-{i}"))).collect()
    }

    #[tokio::test]
    async fn appends_read_back_in_order_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let log = DurableLog::open(dir.path(), 200).unwrap();
        assert_eq!(log.append(7, payloads(0..10)).await.unwrap(), 0..10);
        assert_eq!(log.append(8, payloads(10..25)).await.unwrap(), 10..25);
        let mut r = log.reader(3).unwrap();
        let mut out = Vec::new();
        assert_eq!(r.read(100, &mut out).unwrap(), 22);
        assert_eq!(out[0].offset, 3);
        assert_eq!(out[0].payload, b"record-3");
        assert_eq!(out[21].payload, b"record-24");
        assert_eq!(out[21].ingest_time_us, 8);
        assert!(
            super::super::segment::list_segments(dir.path())
                .unwrap()
                .len()
                > 2
        );
    }

    #[tokio::test]
    async fn reopen_keeps_records_and_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = DurableLog::open(dir.path(), 1 << 20).unwrap();
            log.append(1, payloads(0..5)).await.unwrap();
        }
        // Half a record, as a crash mid-write leaves it.
        let seg = dir.path().join(format!("{:020}.log", 0));
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes.extend_from_slice(&[40, 0, 0, 0, 1, 2, 3]);
        std::fs::write(&seg, bytes).unwrap();
        let log = DurableLog::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(log.end_offset(), 5);
        assert_eq!(log.append(2, payloads(5..6)).await.unwrap(), 5..6);
        let mut out = Vec::new();
        log.reader(0).unwrap().read(100, &mut out).unwrap();
        assert_eq!(out.len(), 6);
        assert_eq!(out[5].payload, b"record-5");
    }

    #[tokio::test]
    async fn deletes_only_segments_wholly_below_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let log = DurableLog::open(dir.path(), 100).unwrap();
        for i in 0..10 {
            log.append(0, payloads(i * 3..i * 3 + 3)).await.unwrap();
        }
        let before = log.first_offset();
        let deleted = log.delete_below(12).unwrap();
        assert!(deleted > 0);
        assert!(log.first_offset() > before && log.first_offset() <= 12);
        let mut out = Vec::new();
        log.reader(12).unwrap().read(100, &mut out).unwrap();
        assert_eq!(out.first().unwrap().offset, 12);
        assert!(matches!(
            log.reader(0),
            Err(super::super::LogError::OffsetGone { .. })
        ));
    }
}
