//! Lenient decoding of an Images API answer.
//!
//! Only `data[0].b64_json` or `data[0].url` must be there. Unknown fields, new enum values and
//! odd types in fields genimg only reports (`usage`, `revised_prompt`) are accepted, so a
//! change on the server never throws away an image that was paid for.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;

/// Why an answer could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("the answer is not valid JSON: {0}")]
    Json(String),
    #[error("the answer holds no image (no data[0].b64_json or data[0].url)")]
    NoImage,
    #[error("the image is not valid base64: {0}")]
    Base64(String),
}

/// How the image arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The bytes, decoded from `b64_json` (or a `data:` URL).
    Bytes(Vec<u8>),
    /// A URL to download, as DALL-E answers by default.
    Url(String),
}

/// What genimg keeps from an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ImagesResponse {
    pub image: Delivery,
    pub revised_prompt: Option<String>,
    pub usage: Option<Value>,
    /// How many images the answer held; genimg asks for one.
    pub count: usize,
}

#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(default, borrow)]
    data: Option<Vec<WireImage<'a>>>,
    #[serde(default)]
    usage: Option<Value>,
}

#[derive(Deserialize)]
struct WireImage<'a> {
    #[serde(default, borrow)]
    b64_json: Option<Text<'a>>,
    #[serde(default, borrow)]
    url: Option<Text<'a>>,
    #[serde(default)]
    revised_prompt: Option<Value>,
}

/// A string field read in place from the body when it has no escapes: megabytes of base64
/// are then never copied. (serde borrows a `Cow` only when it is a field's whole type, not
/// inside an `Option`, hence the wrapper.)
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// Decodes the body of a successful answer.
pub fn decode_response(body: &[u8]) -> Result<ImagesResponse, DecodeError> {
    let wire: Wire<'_> =
        serde_json::from_slice(body).map_err(|e| DecodeError::Json(e.to_string()))?;
    let usage = wire.usage.filter(|u| !u.is_null());
    let mut data = wire.data.unwrap_or_default();
    let count = data.len();
    let usable = data
        .iter()
        .position(|d| d.b64_json.is_some() || d.url.is_some())
        .ok_or(DecodeError::NoImage)?;
    let first = data.swap_remove(usable);
    let revised_prompt = match first.revised_prompt {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let image = match (first.b64_json, first.url) {
        (Some(b64), _) => Delivery::Bytes(decode_base64(&b64.0)?),
        (None, Some(url)) => match data_url_payload(&url.0) {
            Some(b64) => Delivery::Bytes(decode_base64(b64)?),
            None => Delivery::Url(url.0.into_owned()),
        },
        (None, None) => return Err(DecodeError::NoImage),
    };
    Ok(ImagesResponse {
        image,
        revised_prompt,
        usage,
        count,
    })
}

/// The `usage` of an answer that could not be used otherwise: what it billed all the same.
/// `None` for a body that is not JSON or says nothing of usage.
pub fn usage_of(body: &[u8]) -> Option<Value> {
    #[derive(Deserialize)]
    struct Billed {
        #[serde(default)]
        usage: Option<Value>,
    }
    serde_json::from_slice::<Billed>(body)
        .ok()?
        .usage
        .filter(|u| !u.is_null())
}

/// Decodes standard base64, tolerating the line breaks some servers insert.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, DecodeError> {
    match STANDARD.decode(text) {
        Ok(bytes) => Ok(bytes),
        Err(first) => {
            if !text.bytes().any(|b| b.is_ascii_whitespace()) {
                return Err(DecodeError::Base64(first.to_string()));
            }
            let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
            STANDARD
                .decode(compact)
                .map_err(|e| DecodeError::Base64(e.to_string()))
        }
    }
}

/// The base64 payload of a `data:image/...;base64,` URL, which some compatible servers send.
fn data_url_payload(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("data:")?;
    let (meta, payload) = rest.split_once(',')?;
    meta.ends_with(";base64").then_some(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_read_in_place_not_copied() {
        let body = br#"{"data": [{"b64_json": "aGVsbG8=", "url": "https://x/y.png"}]}"#;
        let wire: Wire<'_> = serde_json::from_slice(body).unwrap();
        let image = &wire.data.as_ref().unwrap()[0];
        assert!(matches!(
            image.b64_json.as_ref().unwrap().0,
            Cow::Borrowed(_)
        ));
        assert!(matches!(image.url.as_ref().unwrap().0, Cow::Borrowed(_)));
        // An escaped string cannot be borrowed, and still decodes.
        let escaped = br#"{"data": [{"b64_json": "aGVsbG8\u003d"}]}"#;
        let wire: Wire<'_> = serde_json::from_slice(escaped).unwrap();
        let image = &wire.data.as_ref().unwrap()[0];
        assert!(matches!(image.b64_json.as_ref().unwrap().0, Cow::Owned(_)));
        assert_eq!(
            decode_response(escaped).unwrap().image,
            Delivery::Bytes(b"hello".to_vec())
        );
    }

    fn b64(bytes: &[u8]) -> String {
        STANDARD.encode(bytes)
    }

    #[test]
    fn decodes_the_documented_answer() {
        let body = format!(
            r#"{{"created": 1713833628, "data": [{{"b64_json": "{}", "revised_prompt": "a cat, but fluffier"}}],
               "background": "opaque", "output_format": "png", "size": "1024x1024", "quality": "high",
               "usage": {{"input_tokens": 50, "output_tokens": 4160, "total_tokens": 4210,
                          "input_tokens_details": {{"text_tokens": 50, "image_tokens": 0}}}}}}"#,
            b64(b"\x89PNG image")
        );
        let r = decode_response(body.as_bytes()).unwrap();
        assert_eq!(r.image, Delivery::Bytes(b"\x89PNG image".to_vec()));
        assert_eq!(r.revised_prompt.as_deref(), Some("a cat, but fluffier"));
        assert_eq!(r.usage.unwrap()["output_tokens"], 4160);
        assert_eq!(r.count, 1);
    }

    #[test]
    fn unknown_fields_values_and_odd_types_are_accepted() {
        let body = format!(
            r#"{{"data": [{{"b64_json": "{}", "revised_prompt": 7, "new_field": {{"x": 1}}}}],
               "size": "1254x1254", "quality": "ultra", "usage": "not an object", "extra": [1, 2]}}"#,
            b64(b"img")
        );
        let r = decode_response(body.as_bytes()).unwrap();
        assert_eq!(r.image, Delivery::Bytes(b"img".to_vec()));
        assert_eq!(r.revised_prompt, None);
        assert_eq!(r.usage, Some(Value::String("not an object".into())));
    }

    #[test]
    fn created_is_not_required_and_escaped_slashes_are_fine() {
        let encoded = b64(&[0xff, 0xfe, 0xfd, 0xfc]).replace('/', "\\/");
        let body = format!(r#"{{"data":[{{"b64_json":"{encoded}"}}]}}"#);
        let r = decode_response(body.as_bytes()).unwrap();
        assert_eq!(r.image, Delivery::Bytes(vec![0xff, 0xfe, 0xfd, 0xfc]));
    }

    #[test]
    fn url_answers_are_kept_for_download() {
        let r = decode_response(
            br#"{"created":1,"data":[{"url":"https://files.example/x.png?sig=1"}]}"#,
        )
        .unwrap();
        assert_eq!(
            r.image,
            Delivery::Url("https://files.example/x.png?sig=1".into())
        );
    }

    #[test]
    fn data_urls_are_decoded_inline() {
        let body = format!(
            r#"{{"data":[{{"url":"data:image/png;base64,{}"}}]}}"#,
            b64(b"png!")
        );
        let r = decode_response(body.as_bytes()).unwrap();
        assert_eq!(r.image, Delivery::Bytes(b"png!".to_vec()));
    }

    #[test]
    fn the_usage_of_an_unusable_answer_is_kept() {
        let body = br#"{"data":[{"b64_json":"not base64!!"}],"usage":{"output_tokens":7024}}"#;
        assert!(matches!(decode_response(body), Err(DecodeError::Base64(_))));
        assert_eq!(usage_of(body).unwrap()["output_tokens"], 7024);
        assert_eq!(usage_of(br#"{"data":[],"usage":null}"#), None);
        assert_eq!(usage_of(b"{\"data\": [{\"b64_json\": \"abc"), None);
    }

    #[test]
    fn base64_with_line_breaks_is_accepted() {
        let wrapped = "aGVs\nbG8s\r\nIHdv\ncmxk";
        assert_eq!(decode_base64(wrapped).unwrap(), b"hello, world");
    }

    #[test]
    fn answers_that_cannot_be_used() {
        assert!(matches!(
            decode_response(b"{\"data\": [{\"b64_json\": \"abc"),
            Err(DecodeError::Json(_))
        ));
        assert!(matches!(
            decode_response(b"<html>502</html>"),
            Err(DecodeError::Json(_))
        ));
        assert_eq!(
            decode_response(br#"{"created":1}"#),
            Err(DecodeError::NoImage)
        );
        assert_eq!(
            decode_response(br#"{"data":[]}"#),
            Err(DecodeError::NoImage)
        );
        assert_eq!(
            decode_response(br#"{"data":[{"revised_prompt":"x"}]}"#),
            Err(DecodeError::NoImage)
        );
        assert!(matches!(
            decode_response(br#"{"data":[{"b64_json":"not base64!!"}]}"#),
            Err(DecodeError::Base64(_))
        ));
    }
}
