//! Google's Gemini API (`generateContent`), read the way genimg reads OpenAI's: a pure
//! translator from an answer to the image it delivered or an error with Gemini's verdict.
//!
//! What the Gemini API does differently (see `GEMINI-NOTES.md`):
//! - the image is an `inlineData` part of the first candidate (or a `fileData` part naming a
//!   file); parts marked `"thought": true` are reasoning, never the image, and the last image
//!   part is the image;
//! - a refusal comes as a 200: `promptFeedback.blockReason`, or a candidate with no image and
//!   a safety `finishReason`; never asked again. A 200 with no image for another reason
//!   (`NO_IMAGE`, `OTHER`) is an unusable answer, worth one more try;
//! - errors are google.rpc statuses; a 429 is a pace (`...PerMinute...` quota, wait its
//!   `RetryInfo.retryDelay`) or a stop (`...PerDay...` quota, reset at midnight Pacific).
//!   There are no rate-limit headers.
//!
//! Decoding is lenient: an image that was paid for is never lost to a field genimg does not
//! know.

pub mod batch;

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::error::{ApiError, ErrorBody, StatusError};
use super::openai::decode_base64;
use super::retry::{Fatal, Verdict};
use super::{Answer, Delivery, ratelimit::parse_reset};

/// The most a `generateContent` request may carry inline, references included: 100 MB.
pub const MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;

/// The default API root.
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";

/// The URL of `generateContent` for `model` at `base` (the API root, with or without a
/// trailing `/`). The key goes in a header, never in the URL.
pub fn request_url(base: &url::Url, model: &str) -> url::Url {
    let mut url = base.clone();
    url.set_path(&format!(
        "{}/v1beta/models/{model}:generateContent",
        base.path().trim_end_matches('/')
    ));
    url.set_query(None);
    url
}

/// Where to fetch the content of a file the API named in a `fileData` part, if it is one of
/// the API's own at `base`: `.../v1beta/files/ID` (or its `download/` form) becomes
/// `{base}/download/v1beta/files/ID:download?alt=media`. `None` for a link elsewhere, which
/// is fetched without the key.
pub fn download_url(base: &url::Url, uri: &str) -> Option<url::Url> {
    let link = base.join(uri).ok()?;
    if link.origin() != base.origin() {
        return None;
    }
    let path = link.path();
    let id = path
        .rsplit_once("/files/")
        .map(|(_, id)| id.trim_end_matches(":download"))
        .filter(|id| !id.is_empty() && !id.contains('/'))?;
    let mut url = base.clone();
    url.set_path(&format!(
        "{}/download/v1beta/files/{id}:download",
        base.path().trim_end_matches('/')
    ));
    url.set_query(Some("alt=media"));
    Some(url)
}

/// The headers every Gemini request carries: the key, as `x-goog-api-key`, marked
/// sensitive so no HTTP library logs it.
pub fn api_headers(
    key: &secrecy::SecretString,
) -> Result<reqwest::header::HeaderMap, super::ClientError> {
    use secrecy::ExposeSecret as _;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::HeaderName::from_static("x-goog-api-key"),
        super::http::secret_header(key.expose_secret())?,
    );
    Ok(headers)
}

/// The `generationConfig` fields genimg sets itself, in both spellings the API reads, with
/// what to do instead: a `--param` may not set them.
pub const OWN_CONFIG_FIELDS: &[(&str, &str)] = &[
    (
        "responseModalities",
        "genimg asks for an image-only answer itself",
    ),
    (
        "response_modalities",
        "genimg asks for an image-only answer itself",
    ),
    ("imageConfig", "use --aspect-ratio and --image-size"),
    ("image_config", "use --aspect-ratio and --image-size"),
];

/// The body of one `generateContent` request for an image of `spec`: the prompt, then each
/// reference as `inlineData` with its real MIME type; an image-only answer, at its aspect
/// ratio and image size where given (`imageConfig` takes nothing else on the Gemini API),
/// with its params in `generationConfig`.
pub fn request_body(spec: &crate::spec::ImageSpec) -> Value {
    body_of(
        &spec.prompt,
        &spec.references,
        spec.options.aspect_ratio,
        spec.image_size(),
        &spec.options.params,
    )
}

fn body_of(
    prompt: &str,
    references: &[crate::spec::Reference],
    aspect_ratio: Option<&str>,
    image_size: Option<&str>,
    params: &std::collections::BTreeMap<String, Value>,
) -> Value {
    use base64::Engine as _;
    let mut parts = vec![serde_json::json!({ "text": prompt })];
    for r in references {
        parts.push(serde_json::json!({
            "inlineData": {
                "mimeType": r.format.mime(),
                "data": base64::engine::general_purpose::STANDARD.encode(&r.bytes),
            }
        }));
    }
    let mut image_config = serde_json::Map::new();
    if let Some(ratio) = aspect_ratio {
        image_config.insert("aspectRatio".into(), ratio.into());
    }
    if let Some(size) = image_size {
        image_config.insert("imageSize".into(), size.into());
    }
    let mut config = serde_json::Map::new();
    config.insert("responseModalities".into(), serde_json::json!(["IMAGE"]));
    if !image_config.is_empty() {
        config.insert("imageConfig".into(), Value::Object(image_config));
    }
    for (name, value) in params {
        config.entry(name.clone()).or_insert_with(|| value.clone());
    }
    serde_json::json!({
        "contents": [{ "role": "user", "parts": parts }],
        "generationConfig": config,
    })
}

/// The wire request for one image of `spec`: a JSON `generateContent` call.
pub fn encode(base: &url::Url, spec: &crate::spec::ImageSpec) -> super::WireRequest {
    let body = request_body(spec);
    let Value::Object(fields) = body else {
        unreachable!("request_body builds an object")
    };
    super::WireRequest {
        url: request_url(base, spec.model.name()),
        body: super::WireBody::Json(fields),
    }
}

/// What the manifest records of a request besides its prompt: the model and the
/// `generationConfig` sent.
pub fn wire_fields(spec: &crate::spec::ImageSpec) -> serde_json::Map<String, Value> {
    let mut body = body_of(
        "",
        &[],
        spec.options.aspect_ratio,
        spec.image_size(),
        &spec.options.params,
    );
    let mut fields = serde_json::Map::new();
    fields.insert("model".into(), spec.model.name().into());
    if let Some(config) = body.get_mut("generationConfig") {
        fields.insert("generationConfig".into(), config.take());
    }
    fields
}

/// The size of a request's body before it is built: the prompt, and each reference in
/// base64, with room for the JSON around them. For the check against
/// [`MAX_REQUEST_BYTES`] before any request.
pub fn request_size(prompt: &str, references: &[crate::spec::Reference]) -> usize {
    let images: usize = references
        .iter()
        .map(|r| r.bytes.len().div_ceil(3) * 4 + 64)
        .sum();
    prompt.len() * 2 + images + 256
}

/// The `finishReason`s that say the service refused to make the image.
const REFUSALS: &[&str] = &[
    "SAFETY",
    "IMAGE_SAFETY",
    "PROHIBITED_CONTENT",
    "IMAGE_PROHIBITED_CONTENT",
    "BLOCKLIST",
    "SPII",
];

#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(default, borrow)]
    candidates: Option<Vec<Candidate<'a>>>,
    #[serde(default, rename = "promptFeedback")]
    prompt_feedback: Option<Value>,
    #[serde(default, rename = "usageMetadata")]
    usage: Option<Value>,
    #[serde(default, rename = "responseId")]
    response_id: Option<String>,
}

#[derive(Deserialize)]
struct Candidate<'a> {
    #[serde(default, borrow)]
    content: Option<Content<'a>>,
    #[serde(default, rename = "finishReason")]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(default, borrow)]
    parts: Option<Vec<Part<'a>>>,
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(default)]
    thought: Option<bool>,
    #[serde(default, borrow, rename = "inlineData", alias = "inline_data")]
    inline_data: Option<Blob<'a>>,
    #[serde(default, rename = "fileData", alias = "file_data")]
    file_data: Option<FileData>,
}

#[derive(Deserialize)]
struct Blob<'a> {
    /// Megabytes of base64, read in place when it has no escapes.
    #[serde(default, borrow)]
    data: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

#[derive(Deserialize)]
struct FileData {
    #[serde(default, rename = "fileUri", alias = "file_uri")]
    file_uri: Option<String>,
}

/// Reads an answer to `generateContent` from its parts: its status, its headers (by
/// lower-case name) and its body.
pub fn decode_parts<'h>(
    status: u16,
    header: impl Fn(&str) -> Option<&'h str>,
    body: &[u8],
) -> Result<Answer, ApiError> {
    if !(200..300).contains(&status) {
        return Err(status_error(status, header, body));
    }
    let request_id = header("x-request-id").map(str::to_owned);
    let wire: Wire<'_> = serde_json::from_slice(body).map_err(|e| ApiError::BadAnswer {
        reason: format!("the answer is not valid JSON: {e}"),
        request_id: request_id.clone(),
        usage: None,
    })?;
    let request_id = request_id.or(wire.response_id);
    let usage = wire.usage.filter(|u| !u.is_null());
    if let Some(reason) = wire
        .prompt_feedback
        .as_ref()
        .and_then(|f| f.get("blockReason"))
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty() && *r != "BLOCKED_REASON_UNSPECIFIED")
    {
        return Err(ApiError::Refused {
            reason: format!("the prompt was blocked ({reason})"),
            request_id,
        });
    }
    let candidate = wire.candidates.unwrap_or_default().into_iter().next();
    let finish = candidate
        .as_ref()
        .and_then(|c| c.finish_reason.clone())
        .unwrap_or_default();
    let parts = candidate
        .and_then(|c| c.content)
        .and_then(|c| c.parts)
        .unwrap_or_default();
    // The last image part that is not a thought is the image.
    let image = parts
        .into_iter()
        .rev()
        .filter(|p| p.thought != Some(true))
        .filter_map(|p| match (p.inline_data, p.file_data) {
            (Some(Blob { data: Some(data) }), _) => Some(Err(data.0)),
            (
                _,
                Some(FileData {
                    file_uri: Some(uri),
                }),
            ) => Some(Ok(uri)),
            _ => None,
        })
        .next();
    match image {
        Some(Err(data)) => {
            let bytes = decode_base64(&data).map_err(|e| ApiError::BadAnswer {
                reason: e.to_string(),
                request_id: request_id.clone(),
                usage: usage.clone(),
            })?;
            Ok(Answer {
                image: Delivery::Bytes(bytes),
                revised_prompt: None,
                usage,
                request_id,
                rate_limit: None,
            })
        }
        Some(Ok(uri)) => Ok(Answer {
            image: Delivery::Url(uri),
            revised_prompt: None,
            usage,
            request_id,
            rate_limit: None,
        }),
        None if is_refusal(&finish) => Err(ApiError::Refused {
            reason: format!("the image was refused ({finish})"),
            request_id,
        }),
        None if finish.is_empty() => Err(ApiError::BadAnswer {
            reason: "the answer holds no image".to_owned(),
            request_id,
            usage,
        }),
        None => Err(ApiError::NoImage {
            reason: format!("the answer holds no image (finishReason {finish})"),
            request_id,
            usage,
        }),
    }
}

/// Whether a `finishReason` without an image is a refusal: a safety reason, or a recitation.
pub fn is_refusal(finish: &str) -> bool {
    REFUSALS.contains(&finish) || finish.ends_with("RECITATION")
}

/// A google.rpc error answer, with Gemini's verdict on it.
fn status_error<'h>(
    status: u16,
    header: impl Fn(&str) -> Option<&'h str>,
    body: &[u8],
) -> ApiError {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error = value.get("error").unwrap_or(&value);
    let details: &[Value] = error
        .get("details")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let of_type = |suffix: &str| {
        details.iter().find(|d| {
            d.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with(suffix))
        })
    };
    let quota_ids: Vec<&str> = of_type("QuotaFailure")
        .and_then(|q| q.get("violations"))
        .and_then(Value::as_array)
        .map(|v| {
            v.iter()
                .filter_map(|v| v.get("quotaId").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let retry_delay = of_type("RetryInfo")
        .and_then(|r| r.get("retryDelay"))
        .and_then(Value::as_str)
        .and_then(parse_reset)
        .filter(|d| !d.is_zero());
    let reason = of_type("ErrorInfo")
        .and_then(|e| e.get("reason"))
        .and_then(Value::as_str);
    let rpc_status = error.get("status").and_then(Value::as_str);
    let mut body = ErrorBody::parse(body);
    body.kind = rpc_status.map(str::to_owned).or(body.kind);
    body.code = reason
        .map(str::to_owned)
        .or_else(|| quota_ids.first().map(|q| (*q).to_owned()))
        .or_else(|| rpc_status.map(str::to_owned));
    let per_day = quota_ids.iter().any(|q| q.contains("PerDay"));
    let verdict = match status {
        429 if per_day => Verdict::Fatal(Fatal::DailyQuota),
        429 | 408 | 500 | 502 | 503 | 504 => Verdict::Retry,
        400 if reason == Some("API_KEY_INVALID") => Verdict::Fatal(Fatal::GeminiUnauthorized),
        401 => Verdict::Fatal(Fatal::GeminiUnauthorized),
        403 => Verdict::Fatal(Fatal::GeminiForbidden),
        404 => Verdict::Fatal(Fatal::ModelNotFound),
        _ => Verdict::Fail,
    };
    ApiError::Status(Box::new(StatusError {
        status,
        body,
        request_id: header("x-request-id").map(str::to_owned),
        retry_after: retry_delay.or_else(|| {
            super::retry_after(
                header("retry-after-ms"),
                header("retry-after"),
                std::time::SystemTime::now(),
            )
        }),
        should_retry: None,
        rate_limit: None,
        verdict,
    }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const PNG_B64: &str = "iVBORw0KGgo=";

    fn ok(body: &str) -> Result<Answer, ApiError> {
        decode_parts(200, |_| None, body.as_bytes())
    }

    #[test]
    fn the_last_image_part_that_is_not_a_thought_is_the_image() {
        let answer = ok(&format!(
            r#"{{"candidates":[{{"content":{{"role":"model","parts":[
                {{"text":"Here is your mug"}},
                {{"inlineData":{{"mimeType":"image/png","data":"/9j/4AAQ"}},"thought":true}},
                {{"inlineData":{{"mimeType":"image/png","data":"{PNG_B64}"}},"thoughtSignature":"x"}}]}},
                "finishReason":"STOP"}}],
              "usageMetadata":{{"candidatesTokenCount":1120}},"responseId":"resp-1"}}"#
        ))
        .unwrap();
        assert_eq!(
            answer.image,
            Delivery::Bytes(b"\x89PNG\r\n\x1a\n".to_vec()),
            "not the thought's image"
        );
        assert_eq!(answer.usage.unwrap()["candidatesTokenCount"], 1120);
        assert_eq!(answer.request_id.as_deref(), Some("resp-1"));
        // A thought after the image is still no image.
        let thought_last = ok(&format!(
            r#"{{"candidates":[{{"content":{{"parts":[
                {{"inlineData":{{"mimeType":"image/png","data":"{PNG_B64}"}}}},
                {{"inlineData":{{"mimeType":"image/jpeg","data":"/9j/4AAQ"}},"thought":true}}]}}}}]}}"#
        ))
        .unwrap();
        assert_eq!(
            thought_last.image,
            Delivery::Bytes(b"\x89PNG\r\n\x1a\n".to_vec())
        );
        // A file part is a link to fetch.
        let linked = ok(r#"{"candidates":[{"content":{"parts":[{"fileData":{"mimeType":"image/png","fileUri":"https://x/download/v1beta/files/a"}}]}}]}"#).unwrap();
        assert_eq!(
            linked.image,
            Delivery::Url("https://x/download/v1beta/files/a".into())
        );
    }

    #[test]
    fn a_request_is_the_prompt_and_its_references_inline_with_the_key_in_a_header() {
        let base = url::Url::parse("https://generativelanguage.googleapis.com/").unwrap();
        assert_eq!(
            request_url(&base, "gemini-3-pro-image").as_str(),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-3-pro-image:generateContent"
        );
        let reference = crate::spec::Reference {
            path: "/x/mug.jpg".into(),
            format: crate::format::ImageFormat::Jpeg,
            bytes: bytes::Bytes::from_static(b"\xff\xd8\xff"),
            sha256: String::new(),
        };
        let none = std::collections::BTreeMap::new();
        let body = body_of(
            "a mug",
            std::slice::from_ref(&reference),
            Some("16:9"),
            Some("2K"),
            &none,
        );
        assert_eq!(
            body,
            serde_json::json!({
                "contents": [{"role": "user", "parts": [
                    {"text": "a mug"},
                    {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/"}}
                ]}],
                "generationConfig": {
                    "responseModalities": ["IMAGE"],
                    "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"}
                }
            })
        );
        let plain = body_of("a mug", &[], None, None, &none);
        assert!(plain["generationConfig"].get("imageConfig").is_none());
        // Params join genimg's own fields in generationConfig, never replacing them.
        let params = [
            ("temperature".to_owned(), serde_json::json!(0.5)),
            ("imageConfig".to_owned(), serde_json::json!({})),
        ]
        .into_iter()
        .collect();
        let tuned = body_of("a mug", &[], Some("1:1"), None, &params);
        assert_eq!(
            tuned["generationConfig"],
            serde_json::json!({
                "responseModalities": ["IMAGE"],
                "imageConfig": {"aspectRatio": "1:1"},
                "temperature": 0.5
            })
        );
        assert!(request_size("a mug", &[reference]) >= body.to_string().len());
        let key = secrecy::SecretString::from("AIza-secret".to_owned());
        let headers = api_headers(&key).unwrap();
        assert!(headers["x-goog-api-key"].is_sensitive());
        assert!(!format!("{headers:?}").contains("AIza-secret"));
    }

    #[test]
    fn refusals_arrive_as_200s() {
        let blocked =
            ok(r#"{"candidates":[],"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"}}"#)
                .unwrap_err();
        assert_eq!(blocked.verdict(), Verdict::Refused);
        assert!(
            blocked.to_string().contains("PROHIBITED_CONTENT"),
            "{blocked}"
        );
        for finish in [
            "SAFETY",
            "IMAGE_SAFETY",
            "PROHIBITED_CONTENT",
            "IMAGE_PROHIBITED_CONTENT",
            "BLOCKLIST",
            "SPII",
            "RECITATION",
            "IMAGE_RECITATION",
        ] {
            let e = ok(&format!(
                r#"{{"candidates":[{{"content":{{"parts":[{{"text":"no"}}]}},"finishReason":"{finish}"}}]}}"#
            ))
            .unwrap_err();
            assert_eq!(e.verdict(), Verdict::Refused, "{finish}");
            assert!(e.to_string().contains(finish), "{e}");
        }
        // No image for another reason: asked again.
        for finish in ["NO_IMAGE", "OTHER"] {
            let e = ok(&format!(
                r#"{{"candidates":[{{"content":{{"parts":[]}},"finishReason":"{finish}"}}]}}"#
            ))
            .unwrap_err();
            assert_eq!(e.verdict(), Verdict::Retry, "{finish}");
            assert!(matches!(e, ApiError::NoImage { .. }), "{finish}");
            assert_eq!(e.retries_at_most(), Some(1), "{finish}");
        }
        assert_eq!(ok("not json").unwrap_err().verdict(), Verdict::Retry);
    }

    fn rpc(status: u16, body: &str) -> ApiError {
        decode_parts(status, |_| None, body.as_bytes()).unwrap_err()
    }

    #[test]
    fn a_429_per_minute_is_a_pace_and_per_day_a_stop() {
        let per_minute = rpc(
            429,
            r#"{"error":{"code":429,"message":"You exceeded your current quota.","status":"RESOURCE_EXHAUSTED","details":[
                {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel","quotaValue":"10"}]},
                {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"26s"}]}}"#,
        );
        assert_eq!(per_minute.verdict(), Verdict::Retry);
        assert!(per_minute.is_rate_limited());
        assert_eq!(per_minute.retry_after(), Some(Duration::from_secs(26)));
        let per_day = rpc(
            429,
            r#"{"error":{"code":429,"message":"Quota exceeded.","status":"RESOURCE_EXHAUSTED","details":[
                {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}}"#,
        );
        assert_eq!(per_day.verdict(), Verdict::Fatal(Fatal::DailyQuota));
        assert!(Fatal::DailyQuota.advice().contains("midnight Pacific"));
        // No details at all: capacity on Google's side, backed off.
        assert_eq!(
            rpc(
                429,
                r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED"}}"#
            )
            .verdict(),
            Verdict::Retry
        );
    }

    #[test]
    fn other_statuses_as_google_rpc_says_them() {
        let cases = [
            (
                403,
                "PERMISSION_DENIED",
                Verdict::Fatal(Fatal::GeminiForbidden),
            ),
            (404, "NOT_FOUND", Verdict::Fatal(Fatal::ModelNotFound)),
            (500, "INTERNAL", Verdict::Retry),
            (503, "UNAVAILABLE", Verdict::Retry),
            (504, "DEADLINE_EXCEEDED", Verdict::Retry),
            (400, "INVALID_ARGUMENT", Verdict::Fail),
        ];
        for (status, name, verdict) in cases {
            let e = rpc(
                status,
                &format!(
                    r#"{{"error":{{"code":{status},"message":"m {name}","status":"{name}"}}}}"#
                ),
            );
            assert_eq!(e.verdict(), verdict, "{status} {name}");
            assert!(e.to_string().contains(&format!("m {name}")), "{e}");
        }
        let bad_key = rpc(
            400,
            r#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#,
        );
        assert_eq!(bad_key.verdict(), Verdict::Fatal(Fatal::GeminiUnauthorized));
        assert!(
            Fatal::GeminiUnauthorized
                .advice()
                .contains("GEMINI_API_KEY")
        );
        assert!(bad_key.to_string().contains("API_KEY_INVALID"), "{bad_key}");
    }
}
