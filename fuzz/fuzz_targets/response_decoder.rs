//! Arbitrary bytes as an Images API answer: decoding a success body or an error body must never
//! panic. The same bytes are then used as an image, wrapped in the answers a server may send,
//! and must come back exactly.

#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use genimg::provider::{Delivery, ErrorBody, ImagesResponse, decode_response};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    raw_success_body(data);
    raw_error_body(data);
    image_round_trips(data);
    if let Some(split) = data.iter().position(|&b| b == 0xFF) {
        wrapped_with_extras(&data[..split], &data[split + 1..]);
    }
});

/// The bytes as a success body: any result but a panic, and an accepted one is consistent.
fn raw_success_body(data: &[u8]) {
    let Ok(r) = decode_response(data) else { return };
    assert!(r.count >= 1, "an image from an empty data array: {r:?}");
    if let Delivery::Url(url) = &r.image {
        assert!(
            !is_base64_data_url(url),
            "a base64 data: URL left for download: {url:?}"
        );
    }
}

/// The bytes as an error body: any body gives an `ErrorBody`, and one that is not JSON is kept
/// only as a short, flattened message.
fn raw_error_body(data: &[u8]) {
    let body = ErrorBody::parse(data);
    if serde_json::from_slice::<Value>(data).is_ok() {
        return;
    }
    assert_eq!((&body.kind, &body.code, &body.param), (&None, &None, &None));
    if let Some(m) = &body.message {
        assert!(!m.is_empty(), "an empty message kept");
        assert!(m.chars().count() <= 201, "message not shortened: {m:?}");
        assert!(
            !m.chars().any(|c| c.is_whitespace() && c != ' ') && !m.contains("  "),
            "message not flattened: {m:?}"
        );
        assert_eq!(m.trim(), m, "message not trimmed");
    }
}

/// The bytes as an image, in each shape of answer genimg accepts, come back unchanged.
fn image_round_trips(image: &[u8]) {
    let b64 = STANDARD.encode(image);
    let expect = |body: &str, count: usize| {
        let r = decode(body);
        assert_eq!(r.image, Delivery::Bytes(image.to_vec()), "body {body:?}");
        assert_eq!(r.count, count);
        assert_eq!((r.revised_prompt, r.usage), (None, None));
    };

    // The documented answer.
    expect(
        &json!({"created": 1, "data": [{"b64_json": b64}]}).to_string(),
        1,
    );
    // Line breaks, as some servers wrap base64 (JSON-escaped, so the string is owned).
    let wrapped = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\r\n");
    expect(&json!({"data": [{"b64_json": wrapped}]}).to_string(), 1);
    // Escaped slashes, which serde_json never writes but other servers do.
    let escaped = format!(
        r#"{{"data":[{{"b64_json":"{}"}}]}}"#,
        b64.replace('/', "\\/")
    );
    expect(&escaped, 1);
    // A `data:` URL instead of `b64_json`.
    let url = format!("data:image/png;base64,{b64}");
    expect(&json!({"data": [{"url": url}]}).to_string(), 1);
    // The first usable entry wins; `b64_json` over `url`.
    expect(
        &json!({"data": [
            {"revised_prompt": null},
            {"b64_json": b64, "url": "https://files.example/x.png"},
            {"url": "https://files.example/y.png"},
        ]})
        .to_string(),
        3,
    );
}

/// `head` as any JSON value in the fields genimg only reports, `image` as the image.
fn wrapped_with_extras(head: &[u8], image: &[u8]) {
    let Ok(extra) = serde_json::from_slice::<Value>(head) else {
        return;
    };
    // Wrapping adds three levels; past serde_json's limit of 128 the answer is rightly refused.
    if depth(&extra) > 100 {
        return;
    }
    let body = json!({
        "created": extra,
        "data": [{"b64_json": STANDARD.encode(image), "revised_prompt": extra, "new": extra}],
        "usage": extra,
        "size": extra,
    })
    .to_string();
    let r = decode(&body);
    assert_eq!(r.image, Delivery::Bytes(image.to_vec()));
    assert_eq!(r.count, 1);
    // Compare with what serde_json reads back from the same text: without its float_roundtrip
    // feature a float may come back one ulp off what was written.
    let seen: Value = serde_json::from_str(&body).unwrap();
    let revised = match &seen["data"][0]["revised_prompt"] {
        Value::String(s) => Some(s.clone()),
        _ => None,
    };
    assert_eq!(r.revised_prompt, revised);
    let usage = &seen["usage"];
    assert_eq!(r.usage.as_ref(), (!usage.is_null()).then_some(usage));
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn decode(body: &str) -> ImagesResponse {
    match decode_response(body.as_bytes()) {
        Ok(r) => r,
        Err(e) => panic!("a well-formed answer was refused: {e}\n{body}"),
    }
}

fn is_base64_data_url(url: &str) -> bool {
    url.strip_prefix("data:")
        .and_then(|rest| rest.split_once(','))
        .is_some_and(|(meta, _)| meta.ends_with(";base64"))
}
