//! CloudEvents binary content mode: the attributes travel as headers (HTTP
//! `ce-*`, Kafka `ce_*`), `datacontenttype` as the content type, and the
//! data as the body. Such an event becomes the structured JSON record that
//! every other path stores, so it is validated, stored and dead-lettered
//! exactly as the same event sent in structured mode is.

use base64::Engine;
use serde_json::Value;
use serde_json::value::RawValue;

/// The attributes every CloudEvent has, in the order SDKs write them.
const CORE: [&str; 4] = ["specversion", "id", "source", "type"];

/// Whether a content type is JSON (`*/json` or `*/*+json`, parameters
/// aside): the data is then a JSON value, embedded as it is.
pub fn is_json_content_type(content_type: &str) -> bool {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.split_once('/') {
        Some((_, sub)) => sub == "json" || sub.ends_with("+json"),
        None => false,
    }
}

/// The structured JSON of a binary-mode event. `attributes` are
/// `(name, value)` with names lower-cased and values decoded; `content_type`
/// is the message's (its `datacontenttype`); `data` the body. JSON data (or
/// data without a content type) that parses is embedded as `data`; any
/// other data is kept, base64-encoded, as `data_base64`, and an empty body
/// is no data. Attributes come first (the core four, then the rest by
/// name), data last.
pub fn structured_from_binary(
    attributes: &[(String, String)],
    content_type: Option<&str>,
    data: &[u8],
) -> Vec<u8> {
    let mut members: Vec<(&str, &str)> = Vec::with_capacity(attributes.len() + 1);
    for name in CORE {
        if let Some((n, v)) = attributes.iter().find(|(n, _)| n == name) {
            members.push((n, v));
        }
    }
    let mut rest: Vec<&(String, String)> = attributes
        .iter()
        .filter(|(n, _)| {
            !CORE.contains(&n.as_str())
                && !matches!(n.as_str(), "data" | "data_base64" | "datacontenttype")
        })
        .collect();
    rest.sort();
    members.extend(rest.into_iter().map(|(n, v)| (n.as_str(), v.as_str())));
    if let Some(ct) = content_type {
        members.push(("datacontenttype", ct));
    }
    // Written by hand, not through a map: members keep this order, and JSON
    // data is embedded byte for byte.
    let mut out = Vec::with_capacity(data.len() + 64 * members.len() + 16);
    out.push(b'{');
    for (i, (name, value)) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_member(&mut out, name, &Value::String(value.to_string()));
    }
    if !data.is_empty() {
        if !members.is_empty() {
            out.push(b',');
        }
        let json = content_type.is_none_or(is_json_content_type);
        match serde_json::from_slice::<&RawValue>(data) {
            Ok(raw) if json => {
                out.extend_from_slice(b"\"data\":");
                out.extend_from_slice(raw.get().as_bytes());
            }
            _ => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(data);
                write_member(&mut out, "data_base64", &Value::String(encoded));
            }
        }
    }
    out.push(b'}');
    out
}

fn write_member(out: &mut Vec<u8>, name: &str, value: &Value) {
    out.extend_from_slice(Value::String(name.to_string()).to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(value.to_string().as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventKind, TimeBounds, parse_event};

    fn attrs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const DATA: &str = r#"{"user_id":"u","session_id":"s","provider":"openai","model":"gpt-4o","input_tokens":10,"output_tokens":5,"cached_input_tokens":0,"reasoning_tokens":0,"latency_ms":3,"status":"ok"}"#;

    #[test]
    fn a_binary_event_reads_as_its_structured_twin() {
        let time = chrono::Utc::now().to_rfc3339();
        let binary = structured_from_binary(
            &attrs(&[
                ("tenantid", "acme"),
                ("type", "soma.conversation.v1"),
                ("time", &time),
                ("source", "/agents"),
                ("id", "e1"),
                ("specversion", "1.0"),
            ]),
            Some("application/json; charset=utf-8"),
            DATA.as_bytes(),
        );
        let text = String::from_utf8(binary.clone()).unwrap();
        assert!(
            text.starts_with(r#"{"specversion":"1.0","id":"e1","source":"/agents","type""#),
            "{text}"
        );
        assert!(text.ends_with(&format!(r#""data":{DATA}}}"#)), "{text}");
        let now = chrono::Utc::now().timestamp_micros();
        let event = parse_event(&binary, now, &TimeBounds::default()).unwrap();
        assert_eq!(event.kind, EventKind::Conversation);
        assert_eq!(event.tenant_id, "acme");
    }

    #[test]
    fn data_that_is_not_json_is_kept_and_refused_by_validation() {
        let binary = structured_from_binary(
            &attrs(&[("specversion", "1.0"), ("id", "e1")]),
            Some("text/plain"),
            b"hello",
        );
        let value: Value = serde_json::from_slice(&binary).unwrap();
        assert_eq!(value["data_base64"], "aGVsbG8=");
        assert_eq!(value["datacontenttype"], "text/plain");
        assert!(parse_event(&binary, 0, &TimeBounds::default()).is_err());
        assert!(is_json_content_type("application/cloudevents+json"));
        assert!(is_json_content_type("Application/JSON"));
        assert!(!is_json_content_type("text/plain"));
    }
}
