//! The HTTP binding's binary content mode: a request whose `Content-Type`
//! is not a CloudEvents format but which carries `ce-specversion` is one
//! event, its attributes in `ce-*` headers (percent-encoded, maybe quoted)
//! and its data as the body. It becomes the structured record every other
//! request stores (`somaflow_pipeline::events::binary`).

use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use somaflow_pipeline::events::binary::structured_from_binary;

use crate::error::ApiError;

/// Whether the request carries a binary-mode event.
pub fn is_binary(headers: &HeaderMap) -> bool {
    headers.contains_key("ce-specversion")
}

/// The structured JSON record of the binary-mode event in `headers` and
/// `body`. A header that does not decode is the whole request's error.
pub fn structured_record(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut attributes = Vec::new();
    for (name, value) in headers {
        let Some(attribute) = name.as_str().strip_prefix("ce-") else {
            continue;
        };
        let bad = |reason: &str| {
            ApiError::bad_request(
                "invalid_header",
                format!(
                    "header {name}: {reason} (binary mode: the value of a CloudEvents attribute, percent-encoded UTF-8)"
                ),
            )
        };
        let decoded = decode(value.as_bytes()).map_err(|e| bad(&e))?;
        attributes.push((attribute.to_ascii_lowercase(), decoded));
    }
    let content_type = headers
        .get(CONTENT_TYPE)
        .map(|v| {
            v.to_str().map_err(|_| {
                ApiError::bad_request("invalid_header", "Content-Type is not visible ASCII")
            })
        })
        .transpose()?;
    Ok(structured_from_binary(&attributes, content_type, body))
}

/// A header value as the binding writes it: an optional quoted string
/// (RFC 7230, backslash escapes), then one round of percent-decoding into
/// UTF-8.
fn decode(raw: &[u8]) -> Result<String, String> {
    let unquoted: Vec<u8> = match raw {
        [b'"', inner @ .., b'"'] => {
            let mut out = Vec::with_capacity(inner.len());
            let mut escaped = false;
            for &b in inner {
                if escaped || b != b'\\' {
                    out.push(b);
                    escaped = false;
                } else {
                    escaped = true;
                }
            }
            out
        }
        _ => raw.to_vec(),
    };
    let mut bytes = Vec::with_capacity(unquoted.len());
    let mut i = 0;
    while i < unquoted.len() {
        if unquoted[i] == b'%' {
            let hex = unquoted
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a `%` not followed by two hex digits")?;
            bytes.push(hex);
            i += 3;
        } else {
            bytes.push(unquoted[i]);
            i += 1;
        }
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 once percent-decoded".to_string())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn values_are_unquoted_and_percent_decoded_once() {
        assert_eq!(
            decode(b"Euro%20%E2%82%AC%20%F0%9F%98%80").unwrap(),
            "Euro € 😀"
        );
        assert_eq!(decode(br#""a \"quoted\" %41""#).unwrap(), "a \"quoted\" A");
        assert_eq!(decode(b"%2541").unwrap(), "%41", "one round only");
        assert!(decode(b"%C0%A0").is_err(), "overlong UTF-8 is refused");
        assert!(decode(b"50%").is_err());
    }

    #[test]
    fn headers_become_the_structured_record() {
        let mut headers = HeaderMap::new();
        for (k, v) in [
            ("ce-specversion", "1.0"),
            ("CE-ID", "e1"),
            ("ce-source", "/eu%20west"),
            ("ce-type", "soma.billing.v1"),
            ("ce-tenantid", "acme-%C3%BC"),
            ("content-type", "application/json"),
            ("x-other", "ignored"),
        ] {
            headers.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_static(v),
            );
        }
        assert!(is_binary(&headers));
        let record = structured_record(&headers, br#"{"meter":"m"}"#).unwrap();
        assert_eq!(
            String::from_utf8(record).unwrap(),
            r#"{"specversion":"1.0","id":"e1","source":"/eu west","type":"soma.billing.v1","tenantid":"acme-ü","datacontenttype":"application/json","data":{"meter":"m"}}"#
        );
    }
}
