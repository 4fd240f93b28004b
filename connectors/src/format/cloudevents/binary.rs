//! The CloudEvents Kafka protocol binding's binary mode: attributes as
//! `ce_<name>` headers (`content-type` for `datacontenttype`), `data` as the
//! record's value. A source turns a binary-mode record into the structured
//! event it stands for, so one vectorised decoder reads both modes.

use super::ATTRIBUTES;

/// The header that carries each of [`ATTRIBUTES`], in the same order.
const HEADERS: [&str; ATTRIBUTES.len()] = [
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_time",
    "ce_subject",
    "ce_specversion",
    "content-type",
    "ce_dataschema",
];

/// The Kafka header that carries attribute `name`.
pub fn header_name(name: &str) -> Option<&'static str> {
    ATTRIBUTES
        .iter()
        .position(|a| *a == name)
        .map(|i| HEADERS[i])
}

/// Whether `headers` are those of a binary-mode event (the binding's test:
/// a `ce_specversion` header).
pub fn is_binary<'a>(mut headers: impl Iterator<Item = (&'a str, Option<&'a [u8]>)>) -> bool {
    headers.any(|(k, _)| k == "ce_specversion")
}

/// Appends the attributes in `headers` to `out` as JSON object members, each
/// followed by a comma (`"id":"a1",`), for [`envelope`]. A value that is not
/// UTF-8 is copied as it is, so that the event is rejected as not UTF-8.
pub fn write_attributes<'a>(
    headers: impl Iterator<Item = (&'a str, Option<&'a [u8]>)>,
    out: &mut Vec<u8>,
) {
    for (key, value) in headers {
        let Some(i) = HEADERS.iter().position(|h| *h == key) else {
            continue;
        };
        let Some(value) = value else { continue };
        out.push(b'"');
        out.extend_from_slice(ATTRIBUTES[i].as_bytes());
        out.extend_from_slice(b"\":");
        match std::str::from_utf8(value) {
            // Writing to a Vec cannot fail.
            Ok(s) => {
                let _ = serde_json::to_writer(&mut *out, s);
            }
            Err(_) => {
                out.push(b'"');
                out.extend_from_slice(value);
                out.push(b'"');
            }
        }
        out.push(b',');
    }
}

/// Appends the structured event made of `attributes` (written by
/// [`write_attributes`]) and `data` (a JSON value), then a newline.
pub fn envelope(attributes: &[u8], data: &[u8], out: &mut Vec<u8>) {
    out.push(b'{');
    out.extend_from_slice(attributes);
    out.extend_from_slice(b"\"data\":");
    let data = data.trim_ascii();
    // An empty value has no data; `null` keeps the event well-formed.
    out.extend_from_slice(if data.is_empty() { b"null" } else { data });
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_value_make_the_structured_event() {
        let headers: Vec<(&str, Option<&[u8]>)> = vec![
            ("ce_specversion", Some(b"1.0")),
            ("ce_id", Some(b"a\"1")),
            ("content-type", Some(b"application/json")),
            ("traceparent", Some(b"00-ab")),
            ("ce_subject", None),
        ];
        assert!(is_binary(headers.iter().copied()));
        let mut attrs = vec![];
        write_attributes(headers.iter().copied(), &mut attrs);
        let mut out = vec![];
        envelope(&attrs, b" {\"t\": 1}\n", &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"specversion": "1.0", "id": "a\"1",
                "datacontenttype": "application/json", "data": {"t": 1}})
        );
        assert!(!is_binary([("ce_id", Some(&b"x"[..]))].into_iter()));
        assert_eq!(header_name("datacontenttype"), Some("content-type"));
    }
}
