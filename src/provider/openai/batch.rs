//! OpenAI's Batch API on the wire: the lines of a batch's input file, the batch object, and
//! the lines of its output and error files. Pure: no I/O.
//!
//! A batch runs image requests within 24 h at half the price. Its input is a JSONL file of
//! `{"custom_id", "method": "POST", "url": "/v1/images/generations", "body": {...}}` lines,
//! one endpoint per batch; edits use the JSON form of `/v1/images/edits`, with
//! `images: [{"file_id": ...} | {"image_url": "data:..."}]`, and a mask the same way as
//! `mask: {"file_id": ...} | {"image_url": "data:..."}`. Each result line carries the
//! same `custom_id` and either the `response` the live endpoint would have given, or an
//! `error` for a request that never ran (`batch_expired`, `batch_cancelled`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{ImageRequest, Operation, decode_parts};
use crate::provider::{Answer, ApiError};
use crate::spec::{ImageSpec, Reference};

/// The service's limits on one batch's input file.
pub const MAX_REQUESTS: usize = 50_000;
pub const MAX_INPUT_BYTES: u64 = 200 * 1024 * 1024;

/// Where genimg splits a run into several batches: a margin below the service's limits, so
/// that a count that differs by a line, or "200 MB" read as 200,000,000 bytes, never makes
/// the service refuse a file.
pub const SPLIT_REQUESTS: usize = 49_000;
pub const SPLIT_BYTES: u64 = 190_000_000;

/// The longest `image_url` the JSON form of edits takes.
pub const MAX_DATA_URL_CHARS: usize = 20_971_520;

/// The only completion window the Batch API offers.
pub const COMPLETION_WINDOW: &str = "24h";

/// The `endpoint` of a batch of requests for `operation`.
pub fn endpoint(operation: Operation) -> &'static str {
    match operation {
        Operation::Generate => "/v1/images/generations",
        Operation::Edit => "/v1/images/edits",
    }
}

/// How a reference image travels in the JSON form of an edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// Uploaded once through the Files API.
    FileId(String),
    /// Inline, as a `data:` URL.
    DataUrl(String),
}

impl ImageSource {
    /// A reference as a `data:` URL, if it fits the JSON form's limit.
    pub fn data_url(reference: &Reference) -> Option<ImageSource> {
        let prefix = format!("data:{};base64,", reference.format.mime());
        let len = prefix.len() + reference.bytes.len().div_ceil(3) * 4;
        if len > MAX_DATA_URL_CHARS {
            return None;
        }
        let mut url = prefix;
        STANDARD.encode_string(&reference.bytes, &mut url);
        Some(ImageSource::DataUrl(url))
    }
}

/// One line of a batch's input file for an image of `spec`, newline included: the live
/// request's fields as its `body`, and for an edit the `images` of the JSON form, in the
/// order of the spec's references, then its `mask` if it has one.
///
/// The images are written as they are, not through a JSON serialiser: a data URL is
/// megabytes of base64, and neither base64 nor a file id holds a character JSON escapes (an
/// id that did would be escaped).
pub fn request_line(
    custom_id: &str,
    operation: Operation,
    spec: &ImageSpec,
    images: &[ImageSource],
    mask: Option<&ImageSource>,
) -> String {
    #[derive(Serialize)]
    struct Line<'a> {
        custom_id: &'a str,
        method: &'static str,
        url: &'static str,
        body: &'a Map<String, Value>,
    }
    let body = ImageRequest::encode(spec).fields;
    let mut line = serde_json::to_string(&Line {
        custom_id,
        method: "POST",
        url: endpoint(operation),
        body: &body,
    })
    .expect("a map of JSON values serialises");
    if !spec.references.is_empty() {
        // The line ends with the body's `}` and its own: the images go before them.
        let images_len: usize = images.iter().chain(mask).map(ImageSource::json_len).sum();
        line.truncate(line.len() - 2);
        line.reserve(images_len + images.len() + 24);
        line.push_str(",\"images\":[");
        for (n, image) in images.iter().enumerate() {
            if n > 0 {
                line.push(',');
            }
            image.write_json(&mut line);
        }
        line.push(']');
        if let Some(mask) = mask {
            line.push_str(",\"mask\":");
            mask.write_json(&mut line);
        }
        line.push_str("}}");
    }
    line.push('\n');
    line
}

impl ImageSource {
    /// The length of its JSON object.
    pub fn json_len(&self) -> usize {
        let mut text = String::new();
        match self {
            ImageSource::FileId(id) if plain(id) => "{\"file_id\":\"\"}".len() + id.len(),
            ImageSource::DataUrl(url) if plain(url) => "{\"image_url\":\"\"}".len() + url.len(),
            _ => {
                self.write_json(&mut text);
                text.len()
            }
        }
    }

    fn write_json(&self, out: &mut String) {
        let (key, value) = match self {
            ImageSource::FileId(id) => ("file_id", id),
            ImageSource::DataUrl(url) => ("image_url", url),
        };
        out.push_str("{\"");
        out.push_str(key);
        out.push_str("\":");
        if plain(value) {
            out.push('"');
            out.push_str(value);
            out.push('"');
        } else {
            out.push_str(&Value::from(value.as_str()).to_string());
        }
        out.push('}');
    }
}

/// Whether `text` needs no escaping in a JSON string.
fn plain(text: &str) -> bool {
    text.bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b < 0x80)
}

/// A batch, as `POST /v1/batches` and `GET /v1/batches/{id}` describe it. Read leniently:
/// only `id` must be there; a status genimg does not know is taken as still running.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct BatchObject {
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub input_file_id: Option<String>,
    #[serde(default)]
    pub output_file_id: Option<String>,
    #[serde(default)]
    pub error_file_id: Option<String>,
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub request_counts: Option<RequestCounts>,
    #[serde(default)]
    pub errors: Option<BatchErrors>,
    #[serde(default)]
    pub metadata: Option<Value>,
}

/// How far a batch got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounts {
    #[serde(default)]
    pub total: u64,
    #[serde(default)]
    pub completed: u64,
    #[serde(default)]
    pub failed: u64,
}

/// Why a batch failed as a whole: its input did not validate.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct BatchErrors {
    #[serde(default)]
    pub data: Vec<BatchError>,
}

/// One reason a batch's input was refused, with the line it is about.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct BatchError {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
    #[serde(default)]
    pub line: Option<u64>,
}

impl BatchObject {
    /// Whether the batch is over: its results will not change any more.
    pub fn is_over(&self) -> bool {
        is_over(&self.status)
    }

    /// The submission this batch was created for, as its metadata names it: how genimg finds
    /// a batch again whose creation a crash interrupted.
    pub fn submission(&self) -> Option<&str> {
        self.metadata
            .as_ref()?
            .get(SUBMISSION_KEY)
            .and_then(Value::as_str)
    }
}

/// The metadata key that names the submission a batch was created for.
pub const SUBMISSION_KEY: &str = "genimg_submission";

/// Whether a batch in `status` is over: `completed`, `expired`, `cancelled` or `failed`.
pub fn is_over(status: &str) -> bool {
    matches!(status, "completed" | "expired" | "cancelled" | "failed")
}

/// A page of `GET /v1/batches`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BatchList {
    #[serde(default)]
    pub data: Vec<BatchObject>,
    #[serde(default)]
    pub has_more: bool,
    #[serde(default)]
    pub last_id: Option<String>,
}

/// A file, as `POST /v1/files` and `GET /v1/files/{id}` describe it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct FileObject {
    pub id: String,
    #[serde(default)]
    pub bytes: Option<u64>,
    #[serde(default)]
    pub purpose: Option<String>,
}

/// What one line of a batch's output or error file says about one request.
#[derive(Debug)]
pub enum LineResult {
    /// The request ran: what its answer delivered, or its error, as a live answer is read.
    Answered(Result<Answer, ApiError>),
    /// The request never ran: the batch expired or was cancelled first, or the service gave
    /// this error instead of an answer.
    NotRun { code: String, message: String },
}

#[derive(Deserialize)]
struct WireLine<'a> {
    #[serde(default)]
    custom_id: Option<String>,
    #[serde(default, borrow)]
    response: Option<WireResponse<'a>>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct WireResponse<'a> {
    #[serde(default)]
    status_code: Option<u16>,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default, borrow)]
    body: Option<&'a RawValue>,
}

/// Reads one result line: the `custom_id` it is about and what it says. A line that is not
/// JSON, or names no `custom_id`, is an error with the reason.
pub fn decode_line(line: &[u8]) -> Result<(String, LineResult), String> {
    let wire: WireLine<'_> =
        serde_json::from_slice(line).map_err(|e| format!("not a result line: {e}"))?;
    let custom_id = wire
        .custom_id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| "a result line names no custom_id".to_owned())?;
    if let Some(response) = wire.response {
        let status = response.status_code.unwrap_or(200);
        let request_id = response.request_id;
        let header = |name: &str| {
            (name == "x-request-id")
                .then_some(request_id.as_deref())
                .flatten()
        };
        let body = response.body.map_or("null", RawValue::get);
        // A body sent as a JSON string holding the JSON is read too.
        let answer = match serde_json::from_str::<String>(body) {
            Ok(inner) => decode_parts(status, header, inner.as_bytes()),
            Err(_) => decode_parts(status, header, body.as_bytes()),
        };
        return Ok((custom_id, LineResult::Answered(answer)));
    }
    let error = wire.error.unwrap_or(Value::Null);
    let text = |key: &str| {
        error
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_default()
    };
    let code = text("code");
    let message = match text("message") {
        m if m.is_empty() && code.is_empty() => {
            "the line holds neither a response nor an error".to_owned()
        }
        m => m,
    };
    Ok((custom_id, LineResult::NotRun { code, message }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::catalog::Model;
    use crate::format::ImageFormat;
    use crate::provider::{Delivery, Verdict};
    use crate::spec::ImageOptions;

    fn spec(references: Vec<Reference>) -> ImageSpec {
        ImageSpec::new(
            &Model::lookup("gpt-image-2"),
            "a cat",
            &ImageOptions::default(),
            Arc::from(references),
        )
    }

    fn reference(bytes: &'static [u8]) -> Reference {
        Reference {
            path: "/x/ref.png".into(),
            format: ImageFormat::Png,
            bytes: Bytes::from_static(bytes),
            sha256: String::new(),
        }
    }

    #[test]
    fn a_generation_line_is_the_live_request_under_its_custom_id() {
        let spec = spec(Vec::new());
        let line = request_line("image.a.01.hd.png", Operation::Generate, &spec, &[], None);
        assert!(line.ends_with('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["custom_id"], "image.a.01.hd.png");
        assert_eq!(v["method"], "POST");
        assert_eq!(v["url"], "/v1/images/generations");
        assert_eq!(v["body"]["model"], "gpt-image-2");
        assert_eq!(v["body"]["prompt"], "a cat");
        assert_eq!(v["body"]["n"], 1);
        assert!(v["body"].get("images").is_none());
    }

    #[test]
    fn an_edit_line_carries_its_images_in_the_json_form() {
        let spec = spec(vec![reference(b"\x89PNG"), reference(b"\x89PNG2")]);
        let data = ImageSource::data_url(&spec.references[1]).unwrap();
        assert_eq!(
            data,
            ImageSource::DataUrl("data:image/png;base64,iVBORzI=".into())
        );
        let images = [
            ImageSource::FileId("file-1".into()),
            data,
            ImageSource::FileId("odd\"id".into()),
        ];
        let line = request_line("x.png", Operation::Edit, &spec, &images, None);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["body"]["model"], "gpt-image-2");
        assert_eq!(
            v["body"]["images"][2]["file_id"], "odd\"id",
            "escaped where it must be"
        );
        for image in &images {
            let mut text = String::new();
            image.write_json(&mut text);
            assert_eq!(image.json_len(), text.len());
        }
        assert_eq!(v["url"], "/v1/images/edits");
        assert_eq!(
            v["body"]["images"],
            serde_json::json!([
                {"file_id": "file-1"},
                {"image_url": "data:image/png;base64,iVBORzI="},
                {"file_id": "odd\"id"}
            ])
        );
        assert!(v["body"].get("mask").is_none());
    }

    #[test]
    fn an_edit_lines_mask_goes_beside_its_images() {
        let spec = spec(vec![reference(b"\x89PNG")]).with_mask(Some(reference(b"\x89PNGm")));
        let images = [ImageSource::FileId("file-1".into())];
        for mask in [
            ImageSource::FileId("file-2".into()),
            ImageSource::data_url(spec.mask.as_ref().unwrap()).unwrap(),
        ] {
            let line = request_line("x.png", Operation::Edit, &spec, &images, Some(&mask));
            let v: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(
                v["body"]["images"],
                serde_json::json!([{"file_id": "file-1"}])
            );
            let expected = match &mask {
                ImageSource::FileId(id) => serde_json::json!({"file_id": id}),
                ImageSource::DataUrl(url) => serde_json::json!({"image_url": url}),
            };
            assert_eq!(v["body"]["mask"], expected);
            assert_eq!(v["body"]["model"], "gpt-image-2");
        }
    }

    #[test]
    fn a_batch_object_is_read_leniently() {
        let b: BatchObject = serde_json::from_str(
            r#"{"id": "batch_1", "object": "batch", "status": "in_progress", "new_field": [1],
                "request_counts": {"total": 3, "completed": 1, "failed": 0},
                "metadata": {"genimg_submission": "s-1"}, "created_at": 1700000000}"#,
        )
        .unwrap();
        assert!(!b.is_over());
        assert_eq!(b.request_counts.unwrap().completed, 1);
        assert_eq!(b.submission(), Some("s-1"));
        let failed: BatchObject = serde_json::from_str(
            r#"{"id": "batch_2", "status": "failed", "errors": {"object": "list", "data": [
                {"code": "invalid_request", "message": "bad url", "param": "url", "line": 2}]}}"#,
        )
        .unwrap();
        assert!(failed.is_over());
        assert_eq!(failed.errors.unwrap().data[0].line, Some(2));
        for status in ["completed", "expired", "cancelled", "failed"] {
            assert!(is_over(status), "{status}");
        }
        for status in [
            "validating",
            "in_progress",
            "finalizing",
            "cancelling",
            "new",
        ] {
            assert!(!is_over(status), "{status}");
        }
    }

    #[test]
    fn result_lines_give_the_answer_a_live_request_would() {
        let ok = br#"{"id": "batch_req_1", "custom_id": "a.png", "response": {"status_code": 200, "request_id": "req_9", "body": {"created": 1, "data": [{"b64_json": "iVBORw=="}], "usage": {"total_tokens": 5}}}, "error": null}"#;
        let (id, result) = decode_line(ok).unwrap();
        assert_eq!(id, "a.png");
        let LineResult::Answered(Ok(answer)) = result else {
            panic!("an answer")
        };
        assert_eq!(answer.image, Delivery::Bytes(b"\x89PNG".to_vec()));
        assert_eq!(answer.request_id.as_deref(), Some("req_9"));
        assert_eq!(answer.usage.unwrap()["total_tokens"], 5);

        let refused = br#"{"custom_id": "b.png", "response": {"status_code": 400, "request_id": "req_2", "body": {"error": {"message": "Your request was rejected by the safety system.", "type": "image_generation_user_error", "code": "moderation_blocked"}}}}"#;
        let (_, result) = decode_line(refused).unwrap();
        let LineResult::Answered(Err(e)) = result else {
            panic!("an error")
        };
        assert_eq!(e.verdict(), Verdict::Refused);
        assert_eq!(e.request_id(), Some("req_2"));

        let expired = br#"{"id": "r3", "custom_id": "c.png", "response": null, "error": {"code": "batch_expired", "message": "This request could not be executed before the completion window expired."}}"#;
        let (id, result) = decode_line(expired).unwrap();
        assert_eq!(id, "c.png");
        let LineResult::NotRun { code, message } = result else {
            panic!("not run")
        };
        assert_eq!(code, "batch_expired");
        assert!(message.contains("completion window"));

        // A body sent as a string of JSON.
        let stringly = br#"{"custom_id": "d.png", "response": {"status_code": 200, "body": "{\"data\": [{\"b64_json\": \"iVBORw==\"}]}"}}"#;
        let (_, result) = decode_line(stringly).unwrap();
        assert!(matches!(result, LineResult::Answered(Ok(_))));

        assert!(decode_line(b"not json").is_err());
        assert!(decode_line(br#"{"response": null}"#).is_err());
    }
}
