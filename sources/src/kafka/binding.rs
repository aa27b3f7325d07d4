//! The Kafka protocol binding of CloudEvents: a record whose `content-type`
//! header is not a CloudEvents format but which carries `ce_specversion` is
//! one event in binary mode (attributes in `ce_*` headers, plain UTF-8; the
//! data as the value). It becomes the structured record a structured-mode
//! producer would have sent (`somaflow_pipeline::events::binary`); every
//! other record is read as it is.

use std::borrow::Cow;

use rdkafka::message::{Headers, Message};
use somaflow_pipeline::events::binary::structured_from_binary;

/// The record as the pipeline reads it: the value, or the structured JSON
/// of a binary-mode event. A header that is not UTF-8 leaves the value as
/// it is (validation then refuses it, and it is dead-lettered whole).
pub fn record_payload<'m, M: Message>(message: &'m M) -> Cow<'m, [u8]> {
    let value = message.payload().unwrap_or_default();
    let Some(headers) = message.headers() else {
        return Cow::Borrowed(value);
    };
    let mut attributes = Vec::new();
    let mut content_type = None;
    let mut binary = false;
    for header in headers.iter() {
        let Some(Ok(text)) = header.value.map(std::str::from_utf8) else {
            if header.key.starts_with("ce_") || header.key.eq_ignore_ascii_case("content-type") {
                return Cow::Borrowed(value);
            }
            continue;
        };
        if header.key.eq_ignore_ascii_case("content-type") {
            if text
                .to_ascii_lowercase()
                .starts_with("application/cloudevents")
            {
                return Cow::Borrowed(value); // structured mode
            }
            content_type = Some(text);
        } else if let Some(name) = header.key.strip_prefix("ce_") {
            binary |= name == "specversion";
            attributes.push((name.to_ascii_lowercase(), text.to_string()));
        }
    }
    if !binary {
        return Cow::Borrowed(value);
    }
    Cow::Owned(structured_from_binary(&attributes, content_type, value))
}

#[cfg(test)]
mod tests {
    use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};

    use super::*;

    fn message(headers: &[(&str, &str)], value: &str) -> OwnedMessage {
        let headers = headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
            h.insert(Header {
                key: k,
                value: Some(*v),
            })
        });
        OwnedMessage::new(
            Some(value.as_bytes().to_vec()),
            None,
            "soma.billing_events".into(),
            Timestamp::NotAvailable,
            0,
            0,
            Some(headers),
        )
    }

    #[test]
    fn binary_records_become_structured_and_others_stay_as_they_are() {
        let m = message(
            &[
                ("ce_specversion", "1.0"),
                ("ce_id", "e1"),
                ("ce_tenantid", "acme-ü"),
                ("content-type", "application/json"),
            ],
            r#"{"meter":"m"}"#,
        );
        assert_eq!(
            std::str::from_utf8(&record_payload(&m)).unwrap(),
            r#"{"specversion":"1.0","id":"e1","tenantid":"acme-ü","datacontenttype":"application/json","data":{"meter":"m"}}"#
        );
        let structured = message(
            &[
                (
                    "content-type",
                    "application/cloudevents+json; charset=UTF-8",
                ),
                ("ce_id", "x"),
            ],
            "{}",
        );
        assert_eq!(&*record_payload(&structured), b"{}");
        assert_eq!(&*record_payload(&message(&[], "{}")), b"{}");
    }
}
