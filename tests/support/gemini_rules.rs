//! The Gemini API's rules, written from `shared/GEMINI-NOTES.md` and kept apart from genimg's
//! own model table so that each checks the other: the google.rpc error shape, the image
//! models and what each takes, and the checks a `generateContent` request passes (the same
//! checks judge each line of a batch).
//!
//! Field names are read as the service's JSON parser reads them: `imageConfig` and
//! `image_config` are the same field. Paths in messages are written as the service writes
//! them, in snake_case with indexes: `contents[0].parts[1].inline_data.data`.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

/// An error answer in the google.rpc shape: `{"error": {"code", "message", "status",
/// "details"}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct GoogleError {
    /// The HTTP status, which the body repeats as `code`.
    pub code: u16,
    /// The canonical status name, like `INVALID_ARGUMENT`.
    pub status: String,
    /// What the service says.
    pub message: String,
    /// Typed details (`google.rpc.QuotaFailure`, `RetryInfo`, `ErrorInfo`, `BadRequest`, ...),
    /// each with its `@type`; left out of the body when empty.
    pub details: Vec<Value>,
}

/// The quota id of the per-minute request limit, a pacing signal.
pub const PER_MINUTE_QUOTA: &str = "GenerateRequestsPerMinutePerProjectPerModel";

/// The quota id of the per-day request limit, which resets at midnight Pacific.
pub const PER_DAY_QUOTA: &str = "GenerateRequestsPerDayPerProjectPerModel";

/// The inline request limit: 100 MB in all, the way the service counts it (MiB).
pub const MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;

/// The MIME types an input image may have.
pub const IMAGE_MIMES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/heic",
    "image/heif",
];

/// Prompt tokens an input image counts for, whatever its size (the notes: about 1,065 to
/// 1,101 on Gemini 3.x).
pub const REFERENCE_TOKENS: u64 = 1090;

impl GoogleError {
    /// An error with no details.
    pub fn new(code: u16, status: &str, message: &str) -> GoogleError {
        GoogleError {
            code,
            status: status.to_owned(),
            message: message.to_owned(),
            details: Vec::new(),
        }
    }

    /// The error with one more typed detail.
    pub fn with_detail(mut self, detail: Value) -> GoogleError {
        self.details.push(detail);
        self
    }

    /// The answer's body.
    pub fn body(&self) -> Value {
        let mut error = json!({
            "code": self.code,
            "message": self.message,
            "status": self.status,
        });
        if !self.details.is_empty() {
            error["details"] = Value::Array(self.details.clone());
        }
        json!({ "error": error })
    }

    /// The numeric google.rpc code of [`GoogleError::status`] (3 for `INVALID_ARGUMENT`, 8 for
    /// `RESOURCE_EXHAUSTED`, ...), as a batch's lines and operations carry it.
    pub fn rpc_code(&self) -> u16 {
        rpc_code(&self.status)
    }

    /// The error as a `google.rpc.Status`: `{"code": <rpc code>, "message", "details"}`, as it
    /// stands in a batch's responses file and in an operation's `error`.
    pub fn rpc_status(&self) -> Value {
        let mut status = json!({"code": self.rpc_code(), "message": self.message});
        if !self.details.is_empty() {
            status["details"] = Value::Array(self.details.clone());
        }
        status
    }

    /// `400 INVALID_ARGUMENT` with `message`.
    pub fn invalid(message: &str) -> GoogleError {
        GoogleError::new(400, "INVALID_ARGUMENT", message)
    }

    /// A field the request cannot carry, with the `BadRequest` detail the service adds:
    /// `Unknown name "x" at 'generation_config.image_config': Cannot find field.` (no `at` for
    /// the top level).
    pub fn unknown_field(name: &str, at: &str) -> GoogleError {
        let place = if at.is_empty() {
            String::new()
        } else {
            format!(" at '{at}'")
        };
        let message = format!(
            "Invalid JSON payload received. Unknown name \"{name}\"{place}: Cannot find field."
        );
        GoogleError::invalid(&message).with_detail(bad_request(at, &message))
    }

    /// A value of the wrong type or outside an enum: `Invalid value at 'path' (TYPE), value`.
    pub fn bad_value(path: &str, kind: &str, value: &Value) -> GoogleError {
        let shown = value.to_string();
        let shown: String = shown.chars().take(80).collect();
        let message = format!("Invalid value at '{path}' ({kind}), {shown}");
        GoogleError::invalid(&message).with_detail(bad_request(path, &message))
    }

    /// A request the service reads but refuses: `* GenerateContentRequest.{path}: {why}`.
    pub fn request_field(request: &str, path: &str, why: &str) -> GoogleError {
        GoogleError::invalid(&format!("* {request}.{path}: {why}\n"))
    }

    /// A body that is not JSON.
    pub fn not_json() -> GoogleError {
        GoogleError::invalid("Invalid JSON payload received. Unexpected token.")
    }

    /// A request over the inline limit.
    pub fn payload_too_large(limit: usize) -> GoogleError {
        GoogleError::invalid(&format!(
            "Request payload size exceeds the limit: {limit} bytes."
        ))
    }

    /// The answer to a wrong key: `400 INVALID_ARGUMENT`, `ErrorInfo` reason `API_KEY_INVALID`.
    pub fn api_key_invalid() -> GoogleError {
        let message = "API key not valid. Please pass a valid API key.";
        GoogleError::invalid(message)
            .with_detail(json!({
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }))
            .with_detail(json!({
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": message,
            }))
    }

    /// The answer to a request with no key at all: `403 PERMISSION_DENIED`.
    pub fn key_missing() -> GoogleError {
        GoogleError::new(
            403,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
        )
    }

    /// The answer to a bearer token that is no OAuth 2 access token (an API key sent as
    /// `Authorization: Bearer`, the OpenAI way) without an `x-goog-api-key`:
    /// `401 UNAUTHENTICATED`.
    pub fn bearer_not_accepted() -> GoogleError {
        GoogleError::new(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        )
        .with_detail(json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "ACCESS_TOKEN_TYPE_UNSUPPORTED",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        }))
    }

    /// This fake's own rule, not the service's: a key in the URL (`?key=`) is refused, so that
    /// a test proves genimg never puts it there (URLs end up in logs).
    pub fn key_in_url() -> GoogleError {
        GoogleError::invalid(
            "genimg's fake Gemini service refuses an API key in the URL (?key=): send it in the x-goog-api-key header.",
        )
    }

    /// A key that may not call the API: `403 PERMISSION_DENIED`, `ErrorInfo` reason
    /// `API_KEY_SERVICE_BLOCKED`, as a restricted or blocked key gets.
    pub fn permission_denied() -> GoogleError {
        GoogleError::new(
            403,
            "PERMISSION_DENIED",
            "Requests to this API generativelanguage.googleapis.com method google.ai.generativelanguage.v1beta.GenerativeService.GenerateContent are blocked.",
        )
        .with_detail(json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_SERVICE_BLOCKED",
            "domain": "googleapis.com",
            "metadata": {
                "service": "generativelanguage.googleapis.com",
                "methodName": "google.ai.generativelanguage.v1beta.GenerativeService.GenerateContent",
                "consumer": "projects/000000000000",
            },
        }))
    }

    /// An unknown or shut-down model, as `method` (`generateContent`, `batchGenerateContent`)
    /// answers it: `404 NOT_FOUND`.
    pub fn model_not_found(model: &str, method: &str) -> GoogleError {
        GoogleError::new(
            404,
            "NOT_FOUND",
            &format!(
                "models/{model} is not found for API version v1beta, or is not supported for {method}. Call ListModels to see the list of available models and their supported methods."
            ),
        )
    }

    /// A file that does not exist (or was deleted), as `generateContent` and the Files API
    /// answer it: `403 PERMISSION_DENIED`.
    pub fn file_not_found(id: &str) -> GoogleError {
        GoogleError::new(
            403,
            "PERMISSION_DENIED",
            &format!("You do not have permission to access the File {id} or it may not exist."),
        )
    }

    /// A batch that does not exist: `404 NOT_FOUND`.
    pub fn batch_not_found(name: &str) -> GoogleError {
        GoogleError::new(
            404,
            "NOT_FOUND",
            &format!("Requested entity was not found. ({name})"),
        )
    }

    /// `429 RESOURCE_EXHAUSTED` over the quota `quota_id` (limit `limit`), with the
    /// `QuotaFailure`, `Help` and (given a delay) `RetryInfo` details a real one carries.
    /// `retry_delay` is written as given, like `"26s"` or `"0.2s"`.
    pub fn quota(
        model: &str,
        quota_id: &str,
        limit: u64,
        retry_delay: Option<&str>,
    ) -> GoogleError {
        let metric = "generativelanguage.googleapis.com/generate_content_paid_tier_requests";
        let retry = retry_delay
            .map(|d| format!("\nPlease retry in {d}."))
            .unwrap_or_default();
        let message = format!(
            "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, head to: https://ai.dev/rate-limit. \n* Quota exceeded for metric: {metric}, limit: {limit}, model: {model}{retry}"
        );
        let mut error = GoogleError::new(429, "RESOURCE_EXHAUSTED", &message)
            .with_detail(json!({
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{
                    "quotaMetric": metric,
                    "quotaId": quota_id,
                    "quotaDimensions": {"location": "global", "model": model},
                    "quotaValue": limit.to_string(),
                }],
            }))
            .with_detail(json!({
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [{
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }],
            }));
        if let Some(delay) = retry_delay {
            error = error.with_detail(json!({
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": delay,
            }));
        }
        error
    }

    /// The per-minute 429 ([`PER_MINUTE_QUOTA`]), which asks to wait `retry_delay`.
    pub fn per_minute(model: &str, retry_delay: &str) -> GoogleError {
        GoogleError::quota(model, PER_MINUTE_QUOTA, 10, Some(retry_delay))
    }

    /// The per-day 429 ([`PER_DAY_QUOTA`], limit `limit`). It carries a `RetryInfo` too, as the
    /// real one does: a client must read the quota id, not the delay.
    pub fn per_day(model: &str, limit: u64) -> GoogleError {
        GoogleError::quota(model, PER_DAY_QUOTA, limit, Some("26s"))
    }

    /// `500 INTERNAL`.
    pub fn internal() -> GoogleError {
        GoogleError::new(
            500,
            "INTERNAL",
            "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
        )
    }

    /// `503 UNAVAILABLE`: overloaded.
    pub fn unavailable() -> GoogleError {
        GoogleError::new(
            503,
            "UNAVAILABLE",
            "The model is overloaded. Please try again later.",
        )
    }

    /// `504 DEADLINE_EXCEEDED`.
    pub fn deadline_exceeded() -> GoogleError {
        GoogleError::new(
            504,
            "DEADLINE_EXCEEDED",
            "Deadline expired before operation could complete.",
        )
    }
}

/// The numeric google.rpc code of a status name; 2 (`UNKNOWN`) for a name it does not know.
pub fn rpc_code(status: &str) -> u16 {
    match status {
        "OK" => 0,
        "CANCELLED" => 1,
        "INVALID_ARGUMENT" => 3,
        "DEADLINE_EXCEEDED" => 4,
        "NOT_FOUND" => 5,
        "ALREADY_EXISTS" => 6,
        "PERMISSION_DENIED" => 7,
        "RESOURCE_EXHAUSTED" => 8,
        "FAILED_PRECONDITION" => 9,
        "ABORTED" => 10,
        "OUT_OF_RANGE" => 11,
        "UNIMPLEMENTED" => 12,
        "INTERNAL" => 13,
        "UNAVAILABLE" => 14,
        "DATA_LOSS" => 15,
        "UNAUTHENTICATED" => 16,
        _ => 2,
    }
}

/// A `google.rpc.BadRequest` detail naming `field`.
fn bad_request(field: &str, description: &str) -> Value {
    let mut violation = json!({"description": description});
    if !field.is_empty() {
        violation["field"] = field.into();
    }
    json!({
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "fieldViolations": [violation],
    })
}

/// The ratios every Gemini image model takes.
pub const BASE_RATIOS: &[&str] = &[
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9",
];

/// The base ratios and the wide ones of the 3.1-flash family and 2.1.
pub const WIDE_RATIOS: &[&str] = &[
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9", "1:4", "4:1", "1:8",
    "8:1",
];

/// What one image model takes and answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeminiModel {
    /// The model id, without `models/`.
    pub name: String,
    /// The `imageConfig.aspectRatio` values it takes.
    pub aspect_ratios: &'static [&'static str],
    /// The `imageConfig.imageSize` values it takes (`"512"` is a string); empty: it takes no
    /// `imageSize` at all.
    pub image_sizes: &'static [&'static str],
    /// Input images (inline or by file) one request may carry.
    pub max_references: usize,
    /// Output image tokens by size; the size of a request without `imageSize` is `1K`.
    pub image_tokens: &'static [(&'static str, u64)],
    /// It always thinks, and bills thinking tokens (Pro).
    pub always_thinks: bool,
    /// Its image parts carry a `thoughtSignature` (the Gemini 3 generation).
    pub signs_thoughts: bool,
}

impl GeminiModel {
    /// The output tokens of an image of `size` (`None`: the default, `1K`).
    pub fn tokens_for(&self, size: Option<&str>) -> u64 {
        let size = size.unwrap_or("1K");
        self.image_tokens
            .iter()
            .find(|(s, _)| *s == size)
            .or_else(|| self.image_tokens.first())
            .map_or(1120, |&(_, t)| t)
    }
}

/// The image models the service answers on 2026-12-01, by the notes' table.
pub const GEMINI_MODELS: &[&str] = &[
    "gemini-nano-banana-2.1",
    "gemini-3-pro-image",
    "gemini-3.1-flash-image",
    "gemini-3.1-flash-lite-image",
    "gemini-2.5-flash-image",
];

/// Models that were shut down: answered `404 NOT_FOUND`, as any name the service does not know.
pub const SHUT_DOWN_MODELS: &[&str] = &[
    "gemini-3-pro-image-preview",
    "gemini-3.1-flash-image-preview",
    "gemini-2.5-flash-image-preview",
    "imagen-4.0-generate-001",
    "imagen-4.0-ultra-generate-001",
    "imagen-4.0-fast-generate-001",
    "imagen-3.0-generate-002",
];

/// The rules of a model by name: the real ones, then `extra` (which take every ratio and
/// size, `512` included, and 14 input images). `None` for a model the service does not serve:
/// an unknown one, a shut-down one, or one of `gone` (a test's way to shut a live model down).
pub fn gemini_model(name: &str, extra: &[String], gone: &[String]) -> Option<GeminiModel> {
    if gone.iter().any(|g| g == name) {
        return None;
    }
    let model = |aspect_ratios, image_sizes, max_references, image_tokens, always_thinks, signs| {
        GeminiModel {
            name: name.to_owned(),
            aspect_ratios,
            image_sizes,
            max_references,
            image_tokens,
            always_thinks,
            signs_thoughts: signs,
        }
    };
    let rules = match name {
        "gemini-nano-banana-2.1" => model(
            WIDE_RATIOS,
            &["1K", "2K", "4K"],
            14,
            &[("1K", 1120), ("2K", 1680), ("4K", 3767)],
            false,
            true,
        ),
        "gemini-3-pro-image" => model(
            BASE_RATIOS,
            &["1K", "2K", "4K"],
            14,
            &[("1K", 1120), ("2K", 1120), ("4K", 2000)],
            true,
            true,
        ),
        "gemini-3.1-flash-image" => model(
            WIDE_RATIOS,
            &["512", "1K", "2K", "4K"],
            14,
            &[("512", 747), ("1K", 1120), ("2K", 1680), ("4K", 2520)],
            false,
            true,
        ),
        "gemini-3.1-flash-lite-image" => {
            model(WIDE_RATIOS, &["1K"], 14, &[("1K", 1120)], false, true)
        }
        "gemini-2.5-flash-image" => model(BASE_RATIOS, &[], 3, &[("1K", 1290)], false, false),
        m if extra.iter().any(|e| e == m) => model(
            WIDE_RATIOS,
            &["512", "1K", "2K", "4K"],
            14,
            &[("512", 747), ("1K", 1120), ("2K", 1680), ("4K", 2520)],
            false,
            true,
        ),
        _ => return None,
    };
    Some(rules)
}

/// What a valid `generateContent` request asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckedRequest {
    /// The text parts of the user's contents, joined by newlines.
    pub prompt: String,
    /// The input images' MIME types, in order (inline or by file).
    pub references: Vec<String>,
    pub aspect_ratio: Option<String>,
    pub image_size: Option<String>,
    /// `TEXT` is among the response modalities (or they were left out: text and image).
    pub wants_text: bool,
    /// `thinkingConfig.thinkingLevel`, upper-cased.
    pub thinking_level: Option<String>,
}

/// camelCase to snake_case: `imageConfig` to `image_config`.
pub fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A field by its camelCase name or its snake_case one; an explicit `null` is no field.
pub fn field<'a>(object: &'a Map<String, Value>, camel: &str) -> Option<&'a Value> {
    object
        .get(camel)
        .or_else(|| object.get(&snake(camel)))
        .filter(|v| !v.is_null())
}

/// Every key of `object` is one of `allowed` (camelCase names, or their snake_case forms).
pub fn known_fields(
    object: &Map<String, Value>,
    allowed: &[&str],
    at: &str,
) -> Result<(), GoogleError> {
    for key in object.keys() {
        if !allowed.iter().any(|a| *a == key || snake(a) == *key) {
            return Err(GoogleError::unknown_field(key, at));
        }
    }
    Ok(())
}

/// `path.name`, or `name` at the top.
fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// A message-typed field: an object, or the service's type error.
fn object<'a>(
    value: &'a Value,
    path: &str,
    kind: &str,
) -> Result<&'a Map<String, Value>, GoogleError> {
    value.as_object().ok_or_else(|| {
        GoogleError::bad_value(
            path,
            &format!("type.googleapis.com/google.ai.generativelanguage.v1beta.{kind}"),
            value,
        )
    })
}

fn string<'a>(value: &'a Value, path: &str) -> Result<&'a str, GoogleError> {
    value
        .as_str()
        .ok_or_else(|| GoogleError::bad_value(path, "TYPE_STRING", value))
}

fn integer(value: &Value, path: &str, kind: &str) -> Result<i64, GoogleError> {
    // Proto JSON takes a 64-bit integer as a number or a string of digits.
    let n = match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    n.ok_or_else(|| GoogleError::bad_value(path, kind, value))
}

fn boolean(value: &Value, path: &str) -> Result<bool, GoogleError> {
    value
        .as_bool()
        .ok_or_else(|| GoogleError::bad_value(path, "TYPE_BOOL", value))
}

fn number(value: &Value, path: &str) -> Result<f64, GoogleError> {
    value
        .as_f64()
        .ok_or_else(|| GoogleError::bad_value(path, "TYPE_FLOAT", value))
}

/// Bytes as proto JSON reads them: standard or URL-safe base64, with or without padding.
pub fn decode_bytes(text: &str) -> Option<Vec<u8>> {
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

/// What an image's first bytes say it is: PNG, JPEG, WebP, or HEIC/HEIF (an ISO-BMFF `ftyp`
/// box with a HEIF brand).
pub fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        match &bytes[8..12] {
            b"heic" | b"heix" | b"heim" | b"heis" => Some("image/heic"),
            b"mif1" | b"msf1" | b"heif" => Some("image/heif"),
            _ => None,
        }
    } else {
        None
    }
}

/// The id a `fileData.fileUri` names: the last segment of `.../v1beta/files/{id}`, or of
/// `files/{id}`; `None` for any other URI (a GCS or web URL, which this fake does not fetch).
pub fn file_id_of(uri: &str) -> Option<&str> {
    let rest = match uri.rfind("/v1beta/files/") {
        Some(at) => &uri[at + "/v1beta/files/".len()..],
        None => uri.strip_prefix("files/")?,
    };
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}

/// The top-level fields of a `GenerateContentRequest`.
const REQUEST_FIELDS: &[&str] = &[
    "contents",
    "model",
    "tools",
    "toolConfig",
    "safetySettings",
    "systemInstruction",
    "generationConfig",
    "cachedContent",
    "serviceTier",
];

const CONTENT_FIELDS: &[&str] = &["role", "parts"];

const PART_FIELDS: &[&str] = &[
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
    "thought",
    "thoughtSignature",
    "videoMetadata",
    "mediaResolution",
    "partMetadata",
];

/// The fields of a part's `data` oneof.
const PART_DATA: &[&str] = &[
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
];

const GENERATION_FIELDS: &[&str] = &[
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "imageConfig",
    "mediaResolution",
];

/// On the Gemini API, `imageConfig` takes these two and nothing else.
const IMAGE_CONFIG_FIELDS: &[&str] = &["aspectRatio", "imageSize"];

const THINKING_FIELDS: &[&str] = &["thinkingLevel", "thinkingBudget", "includeThoughts"];

/// Checks a `generateContent` request for `model` as the service does. `file` gives the MIME
/// type of a file the Files API holds (by id), or `None` if there is no such file.
pub fn check_request(
    model: &GeminiModel,
    body: &Map<String, Value>,
    file: impl Fn(&str) -> Option<String>,
) -> Result<CheckedRequest, GoogleError> {
    const REQUEST: &str = "GenerateContentRequest";
    known_fields(body, REQUEST_FIELDS, "")?;
    let mut checked = CheckedRequest {
        wants_text: true,
        ..CheckedRequest::default()
    };

    if let Some(m) = field(body, "model") {
        string(m, "model")?;
    }
    if let Some(tier) = field(body, "serviceTier") {
        let tier = string(tier, "service_tier")?;
        let known = ["flex", "standard", "priority"];
        let bare = tier.strip_prefix("SERVICE_TIER_").unwrap_or(tier);
        if !known.iter().any(|k| k.eq_ignore_ascii_case(bare)) {
            return Err(GoogleError::bad_value(
                "service_tier",
                "type.googleapis.com/google.ai.generativelanguage.v1beta.ServiceTier",
                &Value::String(tier.to_owned()),
            ));
        }
    }

    // contents
    let contents = match field(body, "contents") {
        None => {
            return Err(GoogleError::request_field(
                REQUEST,
                "contents",
                "contents is not specified",
            ));
        }
        Some(Value::Array(contents)) => contents,
        Some(other) => {
            return Err(GoogleError::bad_value("contents", "TYPE_MESSAGE", other));
        }
    };
    if contents.is_empty() {
        return Err(GoogleError::request_field(
            REQUEST,
            "contents",
            "contents is not specified",
        ));
    }
    let mut texts = Vec::new();
    for (i, content) in contents.iter().enumerate() {
        let at = format!("contents[{i}]");
        let content = object(content, &at, "Content")?;
        known_fields(content, CONTENT_FIELDS, &at)?;
        let role = match field(content, "role") {
            None => "user",
            Some(role) => string(role, &format!("{at}.role"))?,
        };
        if !["user", "model", ""].contains(&role) {
            return Err(GoogleError::invalid(
                "Please use a valid role: user, model.",
            ));
        }
        let parts = match field(content, "parts") {
            Some(Value::Array(parts)) if !parts.is_empty() => parts,
            Some(Value::Array(_)) | None => {
                return Err(GoogleError::request_field(
                    REQUEST,
                    &format!("{at}.parts"),
                    "contents.parts must not be empty.",
                ));
            }
            Some(other) => {
                return Err(GoogleError::bad_value(
                    &format!("{at}.parts"),
                    "TYPE_MESSAGE",
                    other,
                ));
            }
        };
        for (k, part) in parts.iter().enumerate() {
            let at = format!("{at}.parts[{k}]");
            let part = object(part, &at, "Part")?;
            known_fields(part, PART_FIELDS, &at)?;
            let set: Vec<&str> = PART_DATA
                .iter()
                .copied()
                .filter(|name| field(part, name).is_some())
                .collect();
            match set.as_slice() {
                [] => {
                    return Err(GoogleError::request_field(
                        REQUEST,
                        &format!("{at}.data"),
                        "required oneof field 'data' must have one initialized field",
                    ));
                }
                [_] => {}
                [_, second, ..] => {
                    return Err(GoogleError::invalid(&format!(
                        "Invalid JSON payload received. Oneof field 'data' is already set. Cannot set '{second}'"
                    )));
                }
            }
            if let Some(thought) = field(part, "thought") {
                boolean(thought, &format!("{at}.thought"))?;
            }
            if let Some(text) = field(part, "text") {
                let text = string(text, &format!("{at}.text"))?;
                if role != "model" {
                    texts.push(text.to_owned());
                }
            }
            if let Some(inline) = field(part, "inlineData") {
                let mime = check_inline(inline, &format!("{at}.inline_data"))?;
                checked.references.push(mime);
            }
            if let Some(data) = field(part, "fileData") {
                let mime = check_file_data(data, &format!("{at}.file_data"), &file)?;
                checked.references.push(mime);
            }
        }
    }
    checked.prompt = texts.join("\n");
    if checked.references.len() > model.max_references {
        return Err(GoogleError::request_field(
            REQUEST,
            "contents",
            &format!(
                "models/{} takes at most {} input images; this request has {}.",
                model.name,
                model.max_references,
                checked.references.len()
            ),
        ));
    }

    for name in ["safetySettings", "tools"] {
        if let Some(value) = field(body, name)
            && !value.is_array()
        {
            return Err(GoogleError::bad_value(&snake(name), "TYPE_MESSAGE", value));
        }
    }
    for name in ["systemInstruction", "toolConfig"] {
        if let Some(value) = field(body, name)
            && !value.is_object()
        {
            return Err(GoogleError::bad_value(&snake(name), "TYPE_MESSAGE", value));
        }
    }

    if let Some(config) = field(body, "generationConfig") {
        check_generation_config(model, config, &mut checked)?;
    }
    Ok(checked)
}

/// An `inlineData` blob: a known image MIME type, valid base64, bytes that are what the type
/// says. Its MIME type.
fn check_inline(value: &Value, at: &str) -> Result<String, GoogleError> {
    let blob = object(value, at, "Blob")?;
    known_fields(blob, &["mimeType", "data"], at)?;
    let mime = match field(blob, "mimeType") {
        Some(mime) => string(mime, &format!("{at}.mime_type"))?,
        None => {
            return Err(GoogleError::request_field(
                "GenerateContentRequest",
                &format!("{at}.mime_type"),
                "required field is not set",
            ));
        }
    };
    let data = match field(blob, "data") {
        Some(data) => string(data, &format!("{at}.data"))?,
        None => "",
    };
    let Some(bytes) = decode_bytes(data) else {
        let shown: String = data.chars().take(40).collect();
        let message = format!(
            "Invalid value at '{at}.data' (TYPE_BYTES), Base64 decoding failed for \"{shown}\""
        );
        return Err(GoogleError::invalid(&message)
            .with_detail(bad_request(&format!("{at}.data"), &message)));
    };
    if !IMAGE_MIMES.contains(&mime) {
        return Err(GoogleError::invalid(&format!(
            "Unsupported MIME type: {mime}"
        )));
    }
    if sniff_image(&bytes) != Some(mime) {
        return Err(GoogleError::invalid(
            "Unable to process input image. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
        ));
    }
    Ok(mime.to_owned())
}

/// A `fileData` reference: an image MIME type and a URI naming a file the Files API holds.
fn check_file_data(
    value: &Value,
    at: &str,
    file: &impl Fn(&str) -> Option<String>,
) -> Result<String, GoogleError> {
    let data = object(value, at, "FileData")?;
    known_fields(data, &["mimeType", "fileUri"], at)?;
    let uri = match field(data, "fileUri") {
        Some(uri) => string(uri, &format!("{at}.file_uri"))?,
        None => {
            return Err(GoogleError::request_field(
                "GenerateContentRequest",
                &format!("{at}.file_uri"),
                "required field is not set",
            ));
        }
    };
    let declared = match field(data, "mimeType") {
        Some(mime) => Some(string(mime, &format!("{at}.mime_type"))?),
        None => None,
    };
    let Some(id) = file_id_of(uri) else {
        return Err(GoogleError::invalid(&format!(
            "Cannot fetch content from the provided URL: {uri}"
        )));
    };
    let Some(held) = file(id) else {
        return Err(GoogleError::file_not_found(id));
    };
    let mime = declared.map_or(held, str::to_owned);
    if !IMAGE_MIMES.contains(&mime.as_str()) {
        return Err(GoogleError::invalid(&format!(
            "Unsupported MIME type: {mime}"
        )));
    }
    Ok(mime)
}

/// `generationConfig`: the known fields, the modalities, a single candidate, the thinking
/// level, and `imageConfig` by the model's rules.
fn check_generation_config(
    model: &GeminiModel,
    value: &Value,
    checked: &mut CheckedRequest,
) -> Result<(), GoogleError> {
    const AT: &str = "generation_config";
    let config = object(value, AT, "GenerationConfig")?;
    known_fields(config, GENERATION_FIELDS, AT)?;

    if let Some(modalities) = field(config, "responseModalities") {
        let path = format!("{AT}.response_modalities");
        let Value::Array(list) = modalities else {
            return Err(GoogleError::bad_value(&path, "TYPE_ENUM", modalities));
        };
        let mut names = Vec::new();
        for (i, m) in list.iter().enumerate() {
            let name = m.as_str().map(str::to_ascii_uppercase);
            match name.as_deref() {
                Some("TEXT" | "IMAGE" | "AUDIO" | "MODALITY_UNSPECIFIED") => {
                    names.push(name.unwrap());
                }
                _ => {
                    return Err(GoogleError::bad_value(
                        &format!("{path}[{i}]"),
                        "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig.Modality",
                        m,
                    ));
                }
            }
        }
        if !names.is_empty() {
            if !names.iter().any(|n| n == "IMAGE") {
                let asked = names
                    .iter()
                    .map(|n| n.to_ascii_lowercase())
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(GoogleError::invalid(&format!(
                    "Model does not support the requested response modalities: {asked}"
                )));
            }
            checked.wants_text = names.iter().any(|n| n == "TEXT");
        }
    }

    if let Some(count) = field(config, "candidateCount") {
        let n = integer(count, &format!("{AT}.candidate_count"), "TYPE_INT32")?;
        if n != 1 {
            return Err(GoogleError::invalid(&format!(
                "Multiple candidates is not enabled for models/{}",
                model.name
            )));
        }
    }
    for name in ["seed", "maxOutputTokens", "topK"] {
        if let Some(v) = field(config, name) {
            integer(v, &format!("{AT}.{}", snake(name)), "TYPE_INT32")?;
        }
    }
    for name in ["temperature", "topP", "presencePenalty", "frequencyPenalty"] {
        if let Some(v) = field(config, name) {
            number(v, &format!("{AT}.{}", snake(name)))?;
        }
    }

    if let Some(thinking) = field(config, "thinkingConfig") {
        let at = format!("{AT}.thinking_config");
        let thinking = object(thinking, &at, "ThinkingConfig")?;
        known_fields(thinking, THINKING_FIELDS, &at)?;
        if let Some(level) = field(thinking, "thinkingLevel") {
            let path = format!("{at}.thinking_level");
            let name = string(level, &path)?.to_ascii_uppercase();
            if !["MINIMAL", "LOW", "MEDIUM", "HIGH"].contains(&name.as_str()) {
                return Err(GoogleError::bad_value(
                    &path,
                    "type.googleapis.com/google.ai.generativelanguage.v1beta.ThinkingConfig.ThinkingLevel",
                    level,
                ));
            }
            checked.thinking_level = Some(name);
        }
        if let Some(budget) = field(thinking, "thinkingBudget") {
            integer(budget, &format!("{at}.thinking_budget"), "TYPE_INT32")?;
        }
        if let Some(include) = field(thinking, "includeThoughts") {
            boolean(include, &format!("{at}.include_thoughts"))?;
        }
    }

    if let Some(image) = field(config, "imageConfig") {
        let at = format!("{AT}.image_config");
        let image = object(image, &at, "ImageConfig")?;
        known_fields(image, IMAGE_CONFIG_FIELDS, &at)?;
        if let Some(ratio) = field(image, "aspectRatio") {
            let path = format!("{at}.aspect_ratio");
            let ratio = string(ratio, &path)?;
            if !model.aspect_ratios.contains(&ratio) {
                return Err(GoogleError::request_field(
                    "GenerateContentRequest",
                    &path,
                    &format!(
                        "aspect ratio '{ratio}' is not supported by models/{}; supported: {}.",
                        model.name,
                        model.aspect_ratios.join(", ")
                    ),
                ));
            }
            checked.aspect_ratio = Some(ratio.to_owned());
        }
        if let Some(size) = field(image, "imageSize") {
            let path = format!("{at}.image_size");
            let size = string(size, &path)?;
            let why = if model.image_sizes.is_empty() {
                Some(format!(
                    "models/{} does not take an image size.",
                    model.name
                ))
            } else if !model.image_sizes.contains(&size) {
                Some(format!(
                    "image size '{size}' is not supported by models/{}; supported: {}.",
                    model.name,
                    model.image_sizes.join(", ")
                ))
            } else {
                None
            };
            if let Some(why) = why {
                return Err(GoogleError::request_field(
                    "GenerateContentRequest",
                    &path,
                    &why,
                ));
            }
            checked.image_size = Some(size.to_owned());
        }
    }
    Ok(())
}
