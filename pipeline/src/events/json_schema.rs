//! The events as JSON Schema, built from the same field lists the decoder
//! checks (the envelope's and each kind's `data`), so `/openapi.json`
//! documents exactly the attributes, types, enums and required fields an
//! event is validated by. What a schema cannot say is listed in the
//! description: the time bounds, decimals' 9 places, and the rules
//! between fields ([`EventKind::check`]).

use serde_json::{Map, Value, json};

use super::envelope::ENVELOPE;
use super::fields::{FieldSpec, FieldType};
use super::kinds::EventKind;

/// One CloudEvent in structured mode: one schema per event type.
pub fn event_json_schema() -> Value {
    let kinds: Vec<Value> = EventKind::ALL.iter().map(|k| kind_schema(*k)).collect();
    json!({
        "description": "A CloudEvents 1.0 event (structured mode). Also checked, with the refusal \
            listed in the answer: `time` within the ingest bounds (pipeline.max_event_age_days \
            back, pipeline.max_future_secs ahead), decimals with at most 9 places, and for \
            conversations cached_input_tokens + cache_creation_input_tokens ≤ input_tokens, \
            cache_creation_1h_input_tokens ≤ cache_creation_input_tokens and reasoning_tokens ≤ \
            output_tokens.",
        "oneOf": kinds,
    })
}

fn kind_schema(kind: EventKind) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for spec in ENVELOPE {
        let schema = match spec.name {
            "specversion" => json!({"type": "string", "enum": ["1.0"]}),
            "type" => json!({"type": "string", "enum": [kind.type_name()]}),
            "time" => json!({"type": "string", "format": "date-time"}),
            "data" => fields_schema(kind.fields()),
            _ => field_schema(spec.ty),
        };
        properties.insert(spec.name.to_string(), schema);
        if spec.ty.required() {
            required.push(spec.name);
        }
    }
    json!({
        "title": kind.type_name(),
        "type": "object",
        "required": required,
        "properties": properties,
    })
}

fn fields_schema(specs: &[FieldSpec]) -> Value {
    let properties: Map<String, Value> = specs
        .iter()
        .map(|s| (s.name.to_string(), field_schema(s.ty)))
        .collect();
    let required: Vec<&str> = specs
        .iter()
        .filter(|s| s.ty.required())
        .map(|s| s.name)
        .collect();
    json!({"type": "object", "required": required, "properties": properties})
}

fn field_schema(ty: FieldType) -> Value {
    match ty {
        FieldType::Str => json!({"type": "string", "minLength": 1}),
        FieldType::OptStr => json!({"type": ["string", "null"]}),
        FieldType::Enum(names) => json!({"type": "string", "enum": names}),
        FieldType::OptEnum(names) => {
            let mut values: Vec<Value> = names.iter().map(|n| json!(n)).collect();
            values.push(Value::Null);
            json!({"type": ["string", "null"], "enum": values})
        }
        FieldType::Count => json!({"type": "integer", "minimum": 0, "maximum": i64::MAX}),
        FieldType::OptCount => {
            json!({"type": ["integer", "null"], "minimum": 0, "maximum": i64::MAX})
        }
        FieldType::Int => json!({"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX}),
        FieldType::OptFloat => json!({"type": ["number", "null"]}),
        FieldType::Decimal => json!({"type": ["string", "number"], "description": "a decimal"}),
        FieldType::OptDecimal => {
            json!({"type": ["string", "number", "null"], "description": "a decimal"})
        }
        FieldType::Raw => json!({}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_lists_its_type_and_required_data() {
        let schema = event_json_schema();
        let kinds = schema["oneOf"].as_array().unwrap();
        assert_eq!(kinds.len(), EventKind::ALL.len());
        let conversation = kinds
            .iter()
            .find(|k| k["title"] == "soma.conversation.v1")
            .unwrap();
        let data = &conversation["properties"]["data"];
        let required: Vec<&str> = data["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(required.contains(&"input_tokens") && !required.contains(&"capsule_id"));
        assert_eq!(data["properties"]["input_tokens"]["minimum"], 0);
        let envelope: Vec<&str> = conversation["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            envelope,
            [
                "specversion",
                "id",
                "source",
                "type",
                "time",
                "tenantid",
                "data"
            ]
        );
    }
}
