//! On-disk record format and segment files.
//!
//! A segment is `<base offset, 20 digits>.log`; a record is
//! `[len u32 LE][crc32 u32 LE][ingest_time µs i64 LE][payload]`, `len` and the
//! CRC covering the last two parts. A torn tail (crash mid-write) fails its
//! length or CRC check and is cut off at open.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use super::LogError;

pub const HEADER_BYTES: usize = 8;
const TIME_BYTES: usize = 8;
/// Refuse absurd lengths from a corrupt header instead of allocating them.
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;
/// The largest payload `append` takes, so every stored record reads back.
pub const MAX_PAYLOAD_BYTES: usize = MAX_RECORD_BYTES - TIME_BYTES;

pub fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}

/// Base offsets of the segments in `dir`, ascending.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>, LogError> {
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))? {
        let entry = entry.map_err(|e| LogError::io(dir, e))?;
        let name = entry.file_name();
        if let Some(base) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse().ok())
        {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Appends one record's bytes to `out`.
pub fn encode(out: &mut Vec<u8>, ingest_time_us: i64, payload: &[u8]) {
    let len = (TIME_BYTES + payload.len()) as u32;
    let mut crc = crc32fast::Hasher::new();
    let time = ingest_time_us.to_le_bytes();
    crc.update(&time);
    crc.update(payload);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&time);
    out.extend_from_slice(payload);
}

pub fn encoded_len(payload: &[u8]) -> usize {
    HEADER_BYTES + TIME_BYTES + payload.len()
}

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub offset: u64,
    pub ingest_time_us: i64,
    pub payload: Vec<u8>,
}

/// What reading the next record found.
pub enum Next {
    Record {
        ingest_time_us: i64,
        payload: Vec<u8>,
    },
    /// Clean end of the file.
    End,
    /// A partial or corrupt record starts here.
    Torn(String),
}

/// Reads the record at the reader's position.
pub fn read_record(r: &mut impl Read, verify: bool) -> io::Result<Next> {
    let mut header = [0u8; HEADER_BYTES];
    match read_full(r, &mut header)? {
        0 => return Ok(Next::End),
        n if n < HEADER_BYTES => return Ok(Next::Torn(format!("header cut at {n} bytes"))),
        _ => {}
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if !(TIME_BYTES..=MAX_RECORD_BYTES).contains(&len) {
        return Ok(Next::Torn(format!("impossible record length {len}")));
    }
    let mut body = vec![0u8; len];
    let n = read_full(r, &mut body)?;
    if n < len {
        return Ok(Next::Torn(format!("record cut at {n} of {len} bytes")));
    }
    if verify && crc32fast::hash(&body) != crc {
        return Ok(Next::Torn("CRC mismatch".into()));
    }
    let mut time = [0u8; TIME_BYTES];
    time.copy_from_slice(&body[..TIME_BYTES]);
    body.drain(..TIME_BYTES);
    Ok(Next::Record {
        ingest_time_us: i64::from_le_bytes(time),
        payload: body,
    })
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Scans a segment, returning its record count and the byte length of its
/// valid prefix; a torn tail is reported so the caller can cut it off.
pub fn scan(path: &Path) -> Result<(u64, u64, Option<String>), LogError> {
    let file = File::open(path).map_err(|e| LogError::io(path, e))?;
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut count = 0u64;
    let mut valid = 0u64;
    loop {
        match read_record(&mut r, true).map_err(|e| LogError::io(path, e))? {
            Next::Record { payload, .. } => {
                count += 1;
                valid += encoded_len(&payload) as u64;
            }
            Next::End => return Ok((count, valid, None)),
            Next::Torn(why) => return Ok((count, valid, Some(why))),
        }
    }
}

/// Positions `r` after the first `skip` records of a segment.
pub fn skip_records(r: &mut BufReader<File>, skip: u64, path: &Path) -> Result<(), LogError> {
    for i in 0..skip {
        let mut header = [0u8; HEADER_BYTES];
        r.read_exact(&mut header)
            .map_err(|e| LogError::io(path, e))?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as i64;
        if !(TIME_BYTES as i64..=MAX_RECORD_BYTES as i64).contains(&len) {
            return Err(LogError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("bad record length {len} at record {i}"),
            });
        }
        r.seek_relative(len).map_err(|e| LogError::io(path, e))?;
    }
    Ok(())
}
