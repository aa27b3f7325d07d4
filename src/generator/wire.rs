//! An event as its producer would write it: the CloudEvents attributes in
//! the order the CloudEvents SDKs write them, `data` last. (A
//! `serde_json::Value` object serializes its keys sorted, which would put
//! `data` first — no real producer does, and decode reads `data` in the same
//! pass as the envelope only when `type` comes before it.)

use serde_json::Value;

/// Attributes written first, in this order; any others follow, then `data`.
const ORDER: [&str; 7] = [
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "tenantid",
    "datacontenttype",
];

/// The JSON text of `event`.
pub fn to_wire(event: &Value) -> Vec<u8> {
    let Some(members) = event.as_object() else {
        return serde_json::to_vec(event).unwrap_or_default();
    };
    let first = ORDER.iter().filter_map(|k| members.get_key_value(*k));
    let rest = members
        .iter()
        .filter(|(k, _)| k.as_str() != "data" && !ORDER.contains(&k.as_str()));
    let data = members.get_key_value("data");
    let mut out = Vec::with_capacity(512);
    out.push(b'{');
    for (i, (key, value)) in first.chain(rest).chain(data).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Writing a string or a `Value` into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, key);
        out.push(b':');
        let _ = serde_json::to_writer(&mut out, value);
    }
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn attributes_first_data_last_and_the_same_value() {
        let event = json!({
            "data": {"b": 1, "a": "x\"y"},
            "type": "soma.billing.v1",
            "specversion": "1.0",
            "zeta": [1, 2],
            "id": "e1",
        });
        let text = String::from_utf8(to_wire(&event)).unwrap();
        assert!(
            text.starts_with(
                r#"{"specversion":"1.0","id":"e1","type":"soma.billing.v1","zeta":[1,2],"data":"#
            ),
            "{text}"
        );
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, event);
        assert_eq!(to_wire(&json!([1])), b"[1]");
    }
}
