//! CloudEvents 1.0 structured-JSON parsing and validation of one event.

use std::borrow::Cow;

use super::error::EventError;
use super::fields::{
    FieldSpec, FieldType::*, FieldValue, InPlace, ObjectError, check_required, field, read_object,
    read_object_in_place, read_object_str,
};
use super::kinds::EventKind;

/// Bounds on event time relative to ingest time (docs/architecture.md, "The events").
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

/// The envelope's attributes, in the order they are read.
pub(super) const ENVELOPE: &[FieldSpec] = &[
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

/// `data`'s fields are picked by `type`.
const DATA_IN_PLACE: InPlace = InPlace {
    member: 6,
    selector: 3,
    specs_for: data_specs,
};

fn data_specs(type_name: &str) -> Option<&'static [FieldSpec]> {
    EventKind::from_type_name(type_name).map(|k| k.fields())
}

/// Parses and validates one CloudEvent; `ingest_time_us` anchors the time bounds
/// so that a replay decides exactly as the first reading did.
pub fn parse_event<'a>(
    raw: &'a [u8],
    ingest_time_us: i64,
    bounds: &TimeBounds,
) -> Result<ParsedEvent<'a>, EventError> {
    parse_with(raw, ingest_time_us, bounds, true)
}

/// [`parse_event`] reading `data` in place (`fast`) or after the envelope.
fn parse_with<'a>(
    raw: &'a [u8],
    ingest_time_us: i64,
    bounds: &TimeBounds,
    fast: bool,
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
    // Fast path: `data` read with the envelope. Any failure is read again
    // the plain way, which alone words the errors (and ranks them: the
    // envelope's before the data's).
    let fast_read = if fast {
        read_object_in_place(text, ENVELOPE, DATA_IN_PLACE).ok()
    } else {
        None
    };
    let (mut env, mut in_place) = match fast_read {
        Some(read) => read,
        None => (
            read_object_str(text, ENVELOPE).map_err(|e| object_error(e, ""))?,
            None,
        ),
    };
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
    let specs = kind.fields();
    let data = match (&env[6], in_place.take()) {
        (FieldValue::InPlace, Some(read)) if read.selector == type_name => read.fields,
        (FieldValue::Raw(raw), _) => {
            read_object_str(raw.get(), specs).map_err(|e| object_error(e, "data."))?
        }
        // `type` repeated after `data`: read as the plain path reads it.
        (FieldValue::InPlace, _) => return parse_with(raw, ingest_time_us, bounds, false),
        _ => return Err(EventError::new("data", "is required")),
    };
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

    /// Reading `data` in place gives what reading it after the envelope
    /// gives: the same event, or the same error.
    #[test]
    fn the_fast_path_parses_as_the_plain_one() {
        let bounds = TimeBounds::default();
        let good = event(GOOD, "");
        let cases = [
            good.clone(),
            event(GOOD, r#","traceparent":"00-ab-cd-01""#),
            // `data` before `type`: read raw, then as fields.
            good.replacen(r#""type":"soma.conversation.v1","#, "", 1)
                .replacen("{", r#"{"type":"soma.conversation.v1","#, 1)
                .replacen(r#","data":"#, r#","data2":1,"data":"#, 1),
            format!(
                r#"{{"data":{GOOD},"specversion":"1.0","id":"e1","source":"/a","type":"soma.conversation.v1","time":"{}","tenantid":"t1"}}"#,
                chrono::DateTime::from_timestamp_micros(NOW)
                    .unwrap()
                    .to_rfc3339()
            ),
            // `type` repeated after `data`.
            good.replace(
                r#""tenantid":"t1""#,
                r#""tenantid":"t1","type":"soma.nope.v1""#,
            ),
            good.replace(r#"}}"#, r#"},"type":"soma.billing.v1"}"#),
            event(
                &GOOD.replace("\"input_tokens\":100", "\"input_tokens\":\"many\""),
                "",
            ),
            event(&GOOD.replace("\"model\":\"gpt-4o\",", ""), ""),
            event("5", ""),
            event(r#"{"user_id":"u\u00e9"}"#, ""),
            good.replace("\"specversion\":\"1.0\"", "\"specversion\":\"0.3\""),
            good[..good.len() - 3].to_string(),
        ];
        for case in cases {
            let fast = parse_with(case.as_bytes(), NOW, &bounds, true);
            let plain = parse_with(case.as_bytes(), NOW, &bounds, false);
            assert_eq!(format!("{fast:?}"), format!("{plain:?}"), "{case}");
        }
        let (env, read) = read_object_in_place(&good, ENVELOPE, DATA_IN_PLACE).unwrap();
        assert_eq!(env[6], FieldValue::InPlace, "data was read in place");
        assert_eq!(read.unwrap().fields[5], FieldValue::Int(100));
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
