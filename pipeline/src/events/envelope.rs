//! CloudEvents 1.0 structured-JSON parsing and validation of one event.

use std::borrow::Cow;

use super::error::EventError;
use super::fields::{
    FieldSpec, FieldType::*, FieldValue, ObjectError, check_required, field, read_object,
    read_object_str,
};
use super::kinds::EventKind;

/// Bounds on event time relative to ingest time (DESIGN §3).
#[derive(Debug, Clone, Copy)]
pub struct TimeBounds {
    pub max_age_us: i64,
    pub max_future_us: i64,
}

impl Default for TimeBounds {
    fn default() -> Self {
        Self {
            max_age_us: 35 * 24 * 3600 * 1_000_000,
            max_future_us: 3600 * 1_000_000,
        }
    }
}

/// A valid event: envelope attributes plus `data` fields in the kind's column order.
#[derive(Debug, Clone)]
pub struct ParsedEvent<'a> {
    pub kind: EventKind,
    pub id: Cow<'a, str>,
    pub source: Cow<'a, str>,
    pub tenant_id: Cow<'a, str>,
    /// Microseconds since the Unix epoch, UTC.
    pub event_time_us: i64,
    pub traceparent: Option<Cow<'a, str>>,
    pub data: Vec<FieldValue<'a>>,
}

const ENVELOPE: &[FieldSpec] = &[
    field("specversion", Str),
    field("id", Str),
    field("source", Str),
    field("type", Str),
    field("time", Str),
    field("tenantid", Str),
    field("data", Raw),
    field("traceparent", OptStr),
];

fn take<'a>(values: &mut [FieldValue<'a>], i: usize) -> Cow<'a, str> {
    match std::mem::replace(&mut values[i], FieldValue::Missing) {
        FieldValue::Str(s) => s,
        _ => Cow::Borrowed(""),
    }
}

fn object_error(e: ObjectError, prefix: &str) -> EventError {
    match e {
        ObjectError::Syntax(m) => EventError::body(format!("malformed JSON: {m}")),
        ObjectError::NotObject(m) if prefix.is_empty() => {
            EventError::body(format!("an event must be a JSON object: {m}"))
        }
        ObjectError::NotObject(_) => {
            EventError::new(prefix.trim_end_matches('.'), "must be a JSON object")
        }
        ObjectError::Field(f) => EventError::new(format!("{prefix}{}", f.field), f.reason),
    }
}

/// Parses and validates one CloudEvent; `ingest_time_us` anchors the time bounds
/// so that a replay decides exactly as the first reading did.
pub fn parse_event<'a>(
    raw: &'a [u8],
    ingest_time_us: i64,
    bounds: &TimeBounds,
) -> Result<ParsedEvent<'a>, EventError> {
    let text = match std::str::from_utf8(raw) {
        Ok(text) => text,
        Err(e) => {
            return Err(EventError::body(format!(
                "invalid UTF-8 at byte {}",
                e.valid_up_to()
            )));
        }
    };
    let mut env = read_object_str(text, ENVELOPE).map_err(|e| object_error(e, ""))?;
    check_required(ENVELOPE, &env).map_err(|f| EventError::new(f.field, f.reason))?;

    let spec = take(&mut env, 0);
    if spec != "1.0" {
        return Err(EventError::new(
            "specversion",
            format!("must be \"1.0\", got {spec:?}"),
        ));
    }
    let type_name = take(&mut env, 3);
    let kind = EventKind::from_type_name(&type_name).ok_or_else(|| {
        EventError::new(
            "type",
            format!(
                "unknown event type {type_name:?}; known: {}",
                EventKind::ALL.map(|k| k.type_name()).join(", ")
            ),
        )
    })?;
    let time = take(&mut env, 4);
    let event_time_us = chrono::DateTime::parse_from_rfc3339(&time)
        .map_err(|e| {
            EventError::new(
                "time",
                format!("{time:?} is not an RFC 3339 timestamp ({e})"),
            )
        })?
        .timestamp_micros();
    if event_time_us < ingest_time_us - bounds.max_age_us {
        return Err(EventError::new(
            "time",
            format!(
                "{time} is older than the accepted {} days",
                bounds.max_age_us / 86_400_000_000
            ),
        ));
    }
    if event_time_us > ingest_time_us + bounds.max_future_us {
        return Err(EventError::new(
            "time",
            format!(
                "{time} is more than {} s in the future",
                bounds.max_future_us / 1_000_000
            ),
        ));
    }
    let data_raw = match env[6] {
        FieldValue::Raw(r) => r,
        _ => return Err(EventError::new("data", "is required")),
    };
    let specs = kind.fields();
    let data = read_object_str(data_raw.get(), specs).map_err(|e| object_error(e, "data."))?;
    check_required(specs, &data)
        .map_err(|f| EventError::new(format!("data.{}", f.field), f.reason))?;
    kind.check(&data)
        .map_err(|(f, reason)| EventError::new(format!("data.{f}"), reason))?;

    let traceparent = match std::mem::replace(&mut env[7], FieldValue::Missing) {
        FieldValue::Str(s) => Some(s),
        _ => None,
    };
    Ok(ParsedEvent {
        kind,
        id: take(&mut env, 1),
        source: take(&mut env, 2),
        tenant_id: take(&mut env, 5),
        event_time_us,
        traceparent,
        data,
    })
}

/// Best effort: the tenant and event id of a record that failed validation,
/// so a dead letter can still be found by tenant.
pub fn peek_ids(raw: &[u8]) -> (Option<String>, Option<String>) {
    const IDS: &[FieldSpec] = &[field("tenantid", OptStr), field("id", OptStr)];
    match read_object(raw, IDS) {
        Ok(mut v) => {
            let id = match std::mem::replace(&mut v[1], FieldValue::Missing) {
                FieldValue::Str(s) => Some(s.into_owned()),
                _ => None,
            };
            let tenant = match std::mem::replace(&mut v[0], FieldValue::Missing) {
                FieldValue::Str(s) => Some(s.into_owned()),
                _ => None,
            };
            (tenant, id)
        }
        Err(_) => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_790_000_000_000_000;

    fn event(data: &str, extra: &str) -> String {
        let time = chrono::DateTime::from_timestamp_micros(NOW)
            .unwrap()
            .to_rfc3339();
        format!(
            r#"{{"specversion":"1.0","id":"e1","source":"/agents","type":"soma.conversation.v1","time":"{time}","tenantid":"t1"{extra},"data":{data}}}"#
        )
    }

    const GOOD: &str = r#"{"user_id":"u","session_id":"s","provider":"openai","model":"gpt-4o","input_tokens":100,"output_tokens":50,"cached_input_tokens":20,"reasoning_tokens":10,"latency_ms":900,"status":"ok","capsule_id":null}"#;

    fn err(raw: &str) -> EventError {
        parse_event(raw.as_bytes(), NOW, &TimeBounds::default()).unwrap_err()
    }

    #[test]
    fn parses_a_valid_conversation() {
        let raw = event(GOOD, "");
        let ev = parse_event(raw.as_bytes(), NOW, &TimeBounds::default()).unwrap();
        assert_eq!(ev.kind, EventKind::Conversation);
        assert_eq!(ev.tenant_id, "t1");
        assert_eq!(ev.event_time_us, NOW);
        assert_eq!(ev.data[5], FieldValue::Int(100));
        assert_eq!(ev.data[2], FieldValue::Missing);
    }

    #[test]
    fn names_the_field_and_reason() {
        let e = err(&event(
            &GOOD.replace("\"input_tokens\":100", "\"input_tokens\":\"many\""),
            "",
        ));
        assert_eq!(e.field, "data.input_tokens");
        assert!(e.reason.contains("non-negative integer"), "{e}");

        let e = err(&event(&GOOD.replace("\"model\":\"gpt-4o\",", ""), ""));
        assert_eq!(
            (e.field.as_str(), e.reason.as_str()),
            ("data.model", "is required")
        );

        let e = err(&event(
            &GOOD.replace("\"cached_input_tokens\":20", "\"cached_input_tokens\":200"),
            "",
        ));
        assert_eq!(e.field, "data.cached_input_tokens");

        let e = err(&event(
            &GOOD.replace("\"output_tokens\":50", "\"output_tokens\":-5"),
            "",
        ));
        assert!(e.reason.contains("negative"), "{e}");

        let e = err(&event(GOOD, "").replace("soma.conversation.v1", "soma.nope.v1"));
        assert_eq!(e.field, "type");

        let e = err(&event(GOOD, "").replace("\"tenantid\":\"t1\",", ""));
        assert_eq!(e.field, "tenantid");

        let e = err(&event(GOOD, "").replace("\"id\":\"e1\"", "\"id\":7"));
        assert_eq!(e.field, "id");
    }

    #[test]
    fn refuses_times_out_of_range_and_bad_json() {
        let old = chrono::DateTime::from_timestamp_micros(NOW - 40 * 86_400_000_000)
            .unwrap()
            .to_rfc3339();
        let raw = event(GOOD, "").replace(
            &chrono::DateTime::from_timestamp_micros(NOW)
                .unwrap()
                .to_rfc3339(),
            &old,
        );
        assert_eq!(err(&raw).field, "time");
        assert!(
            err("{\"specversion\":")
                .reason
                .starts_with("malformed JSON")
        );
        let cut = event(GOOD, "");
        assert!(
            err(&cut[..cut.len() - 30])
                .reason
                .starts_with("malformed JSON"),
            "a cut inside data is broken JSON"
        );
        assert!(err("[1,2]").reason.contains("JSON object"));
        let bad_utf8 = b"{\"id\":\"\xff\"}";
        let e = parse_event(bad_utf8, NOW, &TimeBounds::default()).unwrap_err();
        assert!(e.reason.contains("UTF-8"));
    }

    #[test]
    fn peeks_ids_of_a_bad_event() {
        let raw = event(&GOOD.replace("\"model\":\"gpt-4o\",", ""), "");
        assert_eq!(
            peek_ids(raw.as_bytes()),
            (Some("t1".into()), Some("e1".into()))
        );
        assert_eq!(peek_ids(b"nope"), (None, None));
    }
}
