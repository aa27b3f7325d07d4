//! Splitting an HTTP body into CloudEvent records: one structured event,
//! a batch array, or NDJSON (one event per line).

use serde_json::value::RawValue;

use super::error::EventError;

/// How a request body holds its events, chosen by `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Single,
    Batch,
    NdJson,
}

impl BodyFormat {
    /// Maps a `Content-Type` header to a format; `application/json` is a
    /// single event or a batch, depending on the body's first character.
    pub fn from_content_type(content_type: &str, body: &[u8]) -> Option<BodyFormat> {
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "application/cloudevents+json" => Some(BodyFormat::Single),
            "application/cloudevents-batch+json" => Some(BodyFormat::Batch),
            "application/x-ndjson" | "application/jsonl" | "application/json-seq" => {
                Some(BodyFormat::NdJson)
            }
            "application/json" => {
                let first = body.iter().find(|b| !b.is_ascii_whitespace());
                Some(if first == Some(&b'[') {
                    BodyFormat::Batch
                } else {
                    BodyFormat::Single
                })
            }
            _ => None,
        }
    }
}

/// The records of a body, each still raw bytes. A batch that is not a JSON
/// array fails whole (its records cannot be told apart); a bad line in NDJSON
/// or a bad element in a batch is left for per-record validation.
pub fn split_body(format: BodyFormat, body: &[u8]) -> Result<Vec<&[u8]>, EventError> {
    match format {
        BodyFormat::Single => {
            let trimmed = body.trim_ascii();
            if trimmed.is_empty() {
                return Err(EventError::body("the body is empty; send one CloudEvent"));
            }
            Ok(vec![trimmed])
        }
        BodyFormat::Batch => {
            let items: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| {
                EventError::body(format!("a batch must be a JSON array of CloudEvents: {e}"))
            })?;
            Ok(items.into_iter().map(|r| r.get().as_bytes()).collect())
        }
        BodyFormat::NdJson => Ok(body
            .split(|b| *b == b'\n')
            .map(|line| line.trim_ascii())
            .filter(|line| !line.is_empty())
            .collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_format_by_content_type() {
        assert_eq!(
            BodyFormat::from_content_type("application/cloudevents+json; charset=utf-8", b"{"),
            Some(BodyFormat::Single)
        );
        assert_eq!(
            BodyFormat::from_content_type("application/json", b"  ["),
            Some(BodyFormat::Batch)
        );
        assert_eq!(
            BodyFormat::from_content_type("application/x-ndjson", b""),
            Some(BodyFormat::NdJson)
        );
        assert_eq!(BodyFormat::from_content_type("text/plain", b""), None);
    }

    #[test]
    fn splits_batches_and_lines() {
        let recs = split_body(BodyFormat::Batch, br#"[{"a":1}, {"b":[2]}]"#).unwrap();
        assert_eq!(recs, vec![&br#"{"a":1}"#[..], &br#"{"b":[2]}"#[..]]);
        let recs = split_body(BodyFormat::NdJson, b"{\"a\":1}\n\n  {bad\r\n").unwrap();
        assert_eq!(recs, vec![&b"{\"a\":1}"[..], &b"{bad"[..]]);
        assert!(split_body(BodyFormat::Batch, b"[{\"a\":").is_err());
        assert!(split_body(BodyFormat::Single, b"  ").is_err());
    }
}
