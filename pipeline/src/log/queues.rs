//! Named queues on the embedded log, read by consumer groups: what a Kafka
//! topic is to its consumers, for a node without a broker (the agent pools
//! that `dispatch` sends steps to).
//!
//! Each queue is a [`DurableLog`] under `<dir>/<queue>/`; an append returns
//! once its records are on disk. A group reads from its own position: the
//! first read of a group starts at its committed offset (kept in
//! `<dir>/<queue>/groups/<group>`, written durably by every commit), and
//! each read moves an in-memory delivery position on, so a group is not
//! handed a record twice while the process lives. After a restart a group
//! reads again from its committed offset: at least once, in order. A
//! queue's segments are deleted only below every group's committed offset,
//! and only once they were last written longer than `retention` ago.
//!
//! Records may carry a key ([`Queues::append_new`]): a record whose key is
//! already in the queue is not appended again, so a producer replaying
//! after a crash (the pipeline re-dispatching the steps since its last
//! checkpoint) adds nothing a consumer would see twice.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::{DurableLog, LogError, LogRecord};

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("no queue named {name:?}; the queues are {known}")]
    UnknownQueue { name: String, known: String },
    #[error("group {0:?} must be 1 to 128 letters, digits, `-`, `_` or `.` (it names a file)")]
    BadGroup(String),
    #[error("offset {offset} is beyond the end of queue {queue} ({end})")]
    BeyondEnd {
        queue: String,
        offset: u64,
        end: u64,
    },
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("group position {}: {source}", path.display())]
    Position {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One record handed to a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRecord {
    pub offset: u64,
    pub ingest_time_us: i64,
    pub payload: Bytes,
}

/// What one read gave a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub records: Vec<QueueRecord>,
    /// Where the group's next read starts.
    pub next_offset: u64,
    /// The group's committed offset.
    pub committed: u64,
}

struct Group {
    committed: u64,
    /// Records below this were handed out since the process started.
    next: u64,
}

struct Queue {
    name: String,
    dir: PathBuf,
    log: DurableLog,
    /// Keys of the records in the queue, when it is keyed.
    keys: tokio::sync::Mutex<HashSet<String>>,
    /// A group's state is read from disk the first time the group reads.
    groups: Mutex<HashMap<String, Group>>,
}

/// The queues of a node, by name.
pub struct Queues {
    queues: BTreeMap<String, Arc<Queue>>,
    retention: Duration,
    key_of: KeyOf,
}

/// A record's key, read from its payload (`None`: no key).
pub type KeyOf = fn(&[u8]) -> Option<String>;

fn valid_group(group: &str) -> bool {
    (1..=128).contains(&group.len())
        && group
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Queues {
    /// Opens (or creates) one queue per name under `dir`; `key_of` reads
    /// a record's key (see [`Queues::append_new`]), and the keys of the
    /// records already there are read back.
    pub fn open(
        dir: &Path,
        names: &[String],
        segment_bytes: u64,
        retention: Duration,
        key_of: KeyOf,
    ) -> Result<Queues, QueueError> {
        let mut queues = BTreeMap::new();
        for name in names {
            let qdir = dir.join(name);
            let log = DurableLog::open(&qdir, segment_bytes)?;
            let mut keys = HashSet::new();
            let mut reader = log.reader(log.first_offset())?;
            let mut records = Vec::new();
            while reader.read(4_096, &mut records)? > 0 {
                keys.extend(records.drain(..).filter_map(|r| key_of(&r.payload)));
            }
            queues.insert(
                name.clone(),
                Arc::new(Queue {
                    name: name.clone(),
                    dir: qdir,
                    log,
                    keys: tokio::sync::Mutex::new(keys),
                    groups: Mutex::new(HashMap::new()),
                }),
            );
        }
        Ok(Queues {
            queues,
            retention,
            key_of,
        })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.queues.keys().map(String::as_str)
    }

    fn queue(&self, name: &str) -> Result<&Arc<Queue>, QueueError> {
        self.queues
            .get(name)
            .ok_or_else(|| QueueError::UnknownQueue {
                name: name.to_string(),
                known: self.names().collect::<Vec<_>>().join(", "),
            })
    }

    /// Appends records to `queue`; returns once they are on disk.
    pub async fn append(
        &self,
        queue: &str,
        ingest_time_us: i64,
        payloads: Vec<Bytes>,
    ) -> Result<Range<u64>, QueueError> {
        Ok(self
            .queue(queue)?
            .log
            .append(ingest_time_us, payloads)
            .await?)
    }

    /// Appends the records whose key is not in `queue` yet (nor twice in
    /// `payloads`), once they are on disk; returns how many were new.
    pub async fn append_new(
        &self,
        queue: &str,
        ingest_time_us: i64,
        payloads: Vec<Bytes>,
    ) -> Result<usize, QueueError> {
        let q = self.queue(queue)?;
        // Held across the append: two appends of one key cannot both pass.
        let mut keys = q.keys.lock().await;
        let mut fresh = Vec::with_capacity(payloads.len());
        let mut added = Vec::new();
        for payload in payloads {
            match (self.key_of)(&payload) {
                Some(key) if keys.contains(&key) || added.contains(&key) => {}
                Some(key) => {
                    added.push(key);
                    fresh.push(payload);
                }
                None => fresh.push(payload),
            }
        }
        let n = fresh.len();
        q.log.append(ingest_time_us, fresh).await?;
        keys.extend(added);
        Ok(n)
    }

    /// Up to `max` records for `group` from its position, waiting up to
    /// `wait` for the first one when there is none yet.
    pub async fn fetch(
        &self,
        queue: &str,
        group: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Fetched, QueueError> {
        let q = self.queue(queue)?;
        if !valid_group(group) {
            return Err(QueueError::BadGroup(group.to_string()));
        }
        let from = q.position(group)?;
        // Records trimmed by retention are gone: start at the first kept one.
        let from = from.max(q.log.first_offset());
        let mut reader = q.log.reader(from)?;
        let mut read: Vec<LogRecord> = Vec::new();
        if reader.read(max, &mut read)? == 0 && !wait.is_zero() {
            reader.wait(wait).await;
            reader.read(max, &mut read)?;
        }
        let mut groups = q.groups.lock().unwrap_or_else(|p| p.into_inner());
        let state = groups.entry(group.to_string()).or_insert(Group {
            committed: from,
            next: from,
        });
        // Two reads of one group at once: the later one skips what the
        // earlier one handed out.
        read.retain(|r| r.offset >= state.next);
        if let Some(last) = read.last() {
            state.next = last.offset + 1;
        }
        Ok(Fetched {
            records: read
                .into_iter()
                .map(|r| QueueRecord {
                    offset: r.offset,
                    ingest_time_us: r.ingest_time_us,
                    payload: Bytes::from(r.payload),
                })
                .collect(),
            next_offset: state.next,
            committed: state.committed,
        })
    }

    /// Records that `group` is done with every record below `offset`,
    /// durably; then trims what no group needs. Returns the group's
    /// committed offset.
    pub fn commit(&self, queue: &str, group: &str, offset: u64) -> Result<u64, QueueError> {
        let q = self.queue(queue)?;
        if !valid_group(group) {
            return Err(QueueError::BadGroup(group.to_string()));
        }
        let end = q.log.end_offset();
        if offset > end {
            return Err(QueueError::BeyondEnd {
                queue: q.name.clone(),
                offset,
                end,
            });
        }
        q.position(group)?;
        write_position(&q.group_path(group), offset)?;
        {
            let mut groups = q.groups.lock().unwrap_or_else(|p| p.into_inner());
            let state = groups.entry(group.to_string()).or_insert(Group {
                committed: offset,
                next: offset,
            });
            state.committed = offset;
            state.next = state.next.max(offset);
        }
        self.trim(q)?;
        Ok(offset)
    }

    /// Deletes segments below every group's committed offset that were
    /// last written before the retention period.
    fn trim(&self, q: &Queue) -> Result<(), QueueError> {
        let Some(lowest) = q.committed_offsets()?.into_iter().min() else {
            return Ok(());
        };
        let cutoff = SystemTime::now()
            .checked_sub(self.retention)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        q.log.delete_below_written_before(lowest, cutoff)?;
        Ok(())
    }

    /// Each group's committed offset and delivery position in `queue`.
    pub fn groups(&self, queue: &str) -> Result<Vec<(String, u64, u64)>, QueueError> {
        let q = self.queue(queue)?;
        let mut out: Vec<(String, u64, u64)> = q
            .committed_offsets_by_group()?
            .into_iter()
            .map(|(g, c)| (g, c, c))
            .collect();
        let groups = q.groups.lock().unwrap_or_else(|p| p.into_inner());
        for (name, committed, next) in &mut out {
            if let Some(g) = groups.get(name.as_str()) {
                (*committed, *next) = (g.committed, g.next);
            }
        }
        Ok(out)
    }

    /// Records ever appended to `queue`.
    pub fn end_offset(&self, queue: &str) -> Result<u64, QueueError> {
        Ok(self.queue(queue)?.log.end_offset())
    }
}

impl Queue {
    fn groups_dir(&self) -> PathBuf {
        self.dir.join("groups")
    }

    fn group_path(&self, group: &str) -> PathBuf {
        self.groups_dir().join(group)
    }

    /// Where `group` reads next: its delivery position, or (first read in
    /// this process) its committed offset, or the queue's start.
    fn position(&self, group: &str) -> Result<u64, QueueError> {
        if let Some(g) = self
            .groups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(group)
        {
            return Ok(g.next);
        }
        let committed = read_position(&self.group_path(group))?;
        Ok(committed.unwrap_or_else(|| self.log.first_offset()))
    }

    fn committed_offsets_by_group(&self) -> Result<Vec<(String, u64)>, QueueError> {
        let dir = self.groups_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(QueueError::Position { path: dir, source }),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !valid_group(&name) {
                continue; // a temporary file of a commit in progress
            }
            if let Some(offset) = read_position(&entry.path())? {
                out.push((name, offset));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Every group's committed offset: those on disk, and those of groups
    /// that read in this process without committing yet (where they
    /// started), so a new reader's records are not trimmed under it.
    fn committed_offsets(&self) -> Result<Vec<u64>, QueueError> {
        let mut offsets: HashMap<String, u64> =
            self.committed_offsets_by_group()?.into_iter().collect();
        let groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        for (name, g) in groups.iter() {
            offsets.insert(name.clone(), g.committed);
        }
        Ok(offsets.into_values().collect())
    }
}

fn read_position(path: &Path) -> Result<Option<u64>, QueueError> {
    let fail = |source| QueueError::Position {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| fail(std::io::Error::new(std::io::ErrorKind::InvalidData, e))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(fail(e)),
    }
}

/// Writes the position through a temporary file renamed over the old one,
/// fsynced with its folder: a crash leaves the old position or the new.
fn write_position(path: &Path, offset: u64) -> Result<(), QueueError> {
    let fail = |source| QueueError::Position {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(fail)?;
    let tmp = dir.join(format!(
        "~{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("group")
    ));
    let file = std::fs::File::create(&tmp).map_err(fail)?;
    std::io::Write::write_all(&mut &file, offset.to_string().as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(fail)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys are the payload up to a `#` (a test's stand-in for an event id).
    fn key(payload: &[u8]) -> Option<String> {
        let text = std::str::from_utf8(payload).ok()?;
        Some(text.split('#').next()?.to_string())
    }

    fn open(dir: &Path) -> Queues {
        Queues::open(dir, &["general".into()], 1 << 20, Duration::ZERO, key).unwrap()
    }

    /// Another process's view of the same folder (no groups read yet).
    fn open_again(dir: &Path) -> Queues {
        Queues::open(dir, &["general".into()], 1, Duration::ZERO, key).unwrap()
    }

    async fn put(q: &Queues, n: usize) {
        let payloads = (0..n).map(|i| Bytes::from(format!("step-{i}"))).collect();
        q.append("general", 1, payloads).await.unwrap();
    }

    fn offsets(f: &Fetched) -> Vec<u64> {
        f.records.iter().map(|r| r.offset).collect()
    }

    #[tokio::test]
    async fn a_group_reads_each_record_once_then_again_after_a_restart_from_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let q = open(dir.path());
        put(&q, 5).await;
        let f = q
            .fetch("general", "agents", 3, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(offsets(&f), [0, 1, 2]);
        let f = q
            .fetch("general", "agents", 3, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(offsets(&f), [3, 4], "not handed out twice");
        assert_eq!(q.commit("general", "agents", 2).unwrap(), 2);
        // Another group reads from the start.
        let other = q
            .fetch("general", "audit", 10, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(offsets(&other), [0, 1, 2, 3, 4]);
        drop(q);
        let q = open(dir.path());
        let f = q
            .fetch("general", "agents", 10, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(offsets(&f), [2, 3, 4], "from the committed offset");
        assert_eq!(f.records[0].payload, Bytes::from("step-2"));
    }

    #[tokio::test]
    async fn a_read_waits_for_a_record_and_mistakes_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let q = Arc::new(open(dir.path()));
        let writer = q.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            put(&writer, 1).await;
        });
        let f = q
            .fetch("general", "agents", 10, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(offsets(&f), [0]);
        let e = q.fetch("coding", "g", 1, Duration::ZERO).await.unwrap_err();
        assert!(e.to_string().contains("general"), "{e}");
        let e = q
            .fetch("general", "a/b", 1, Duration::ZERO)
            .await
            .unwrap_err();
        assert!(matches!(e, QueueError::BadGroup(_)), "{e}");
        assert!(matches!(
            q.commit("general", "agents", 9),
            Err(QueueError::BeyondEnd { end: 1, .. })
        ));
    }

    #[tokio::test]
    async fn segments_go_only_once_every_group_is_past_them() {
        let dir = tempfile::tempdir().unwrap();
        // Tiny segments: one record each.
        let q = Queues::open(dir.path(), &["general".into()], 1, Duration::ZERO, key).unwrap();
        for _ in 0..4 {
            put(&q, 1).await;
        }
        q.fetch("general", "a", 10, Duration::ZERO).await.unwrap();
        q.fetch("general", "b", 10, Duration::ZERO).await.unwrap();
        q.commit("general", "a", 3).unwrap();
        let late = open_again(dir.path());
        let f = late
            .fetch("general", "c", 10, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(
            offsets(&f)[0],
            0,
            "group b has read but not committed: nothing goes"
        );
        q.commit("general", "b", 1).unwrap();
        let f = open_again(dir.path())
            .fetch("general", "d", 10, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(offsets(&f)[0], 1, "group b still needs offset 1");
        q.commit("general", "b", 3).unwrap();
        let f = open_again(dir.path())
            .fetch("general", "e", 10, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(offsets(&f)[0], 3);
        let groups = q.groups("general").unwrap();
        assert_eq!(groups.iter().map(|g| g.1).collect::<Vec<_>>(), [3, 3]);
    }

    #[tokio::test]
    async fn a_key_already_queued_is_not_queued_again_even_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let q = open(dir.path());
        let batch = |ids: &[&str]| {
            ids.iter()
                .map(|i| Bytes::from(format!("{i}#step")))
                .collect()
        };
        assert_eq!(
            q.append_new("general", 1, batch(&["a", "b", "a"]))
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            q.append_new("general", 1, batch(&["b", "c"]))
                .await
                .unwrap(),
            1
        );
        drop(q);
        let q = open(dir.path());
        assert_eq!(
            q.append_new("general", 1, batch(&["c", "d"]))
                .await
                .unwrap(),
            1
        );
        let f = q.fetch("general", "g", 10, Duration::ZERO).await.unwrap();
        let keys: Vec<String> = f.records.iter().filter_map(|r| key(&r.payload)).collect();
        assert_eq!(keys, ["a", "b", "c", "d"]);
    }
}
