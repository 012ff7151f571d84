//! Gemini's batch mode, in the words of the batch engine: a JSONL file of `{"key", "request"}`
//! lines, `POST /v1beta/models/{model}:batchGenerateContent`, a long-running operation read
//! into the engine's [`BatchObject`], and a responses file of `{"key", "response" | "error"}`
//! lines (see `GEMINI-NOTES.md`, "Batch API").
//!
//! The operation's state is matched on its suffix (`BATCH_STATE_SUCCEEDED` and the SDKs'
//! `JOB_STATE_SUCCEEDED` alike) and named as OpenAI's batches are (`completed`, `expired`,
//! ...), so that one engine drives both providers.

use serde_json::{Map, Value};

use crate::provider::openai::batch::{
    BatchError, BatchErrors, BatchObject, LineResult, RequestCounts, SUBMISSION_KEY,
};
use crate::spec::ImageSpec;

/// The most a batch stays queued before it expires: 48 hours (the notes: a 24 h target, a
/// 48 h expiry).
const EXPIRY_SECS: i64 = 48 * 3600;

/// The endpoint a batch of `model`'s requests is created at, relative to `v1beta/`; the
/// ledger records it.
pub fn endpoint(model: &str) -> String {
    format!("models/{model}:batchGenerateContent")
}

/// One input line: the image's file name as its `key`, and the `generateContent` request a
/// live run would send, references inline.
pub fn request_line(key: &str, spec: &ImageSpec) -> String {
    let request = super::request_body(spec);
    let mut line = serde_json::json!({ "key": key, "request": request }).to_string();
    line.push('\n');
    line
}

/// The engine's word for a batch's state: `BATCH_STATE_X` and `JOB_STATE_X` by their `X`. A
/// state genimg does not know is taken as still running.
pub fn status_of(state: &str) -> &'static str {
    let word = state.rsplit('_').next().unwrap_or_default();
    match word {
        "PENDING" | "QUEUED" => "validating",
        "SUCCEEDED" => "completed",
        "FAILED" => "failed",
        "CANCELLED" => "cancelled",
        "CANCELLING" => "cancelling",
        "EXPIRED" => "expired",
        _ => "in_progress",
    }
}

/// An int64 of proto JSON: a string, or a number.
fn int64(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::String(s) => s.parse().ok(),
        other => other.as_u64(),
    }
}

/// Reads a batch's long-running operation (`{name, metadata: {state, displayName,
/// createTime, batchStats, output}, done, response | error}`) into the engine's terms.
/// Lenient: only `name` must be there.
pub fn read_operation(op: &Value) -> Option<BatchObject> {
    let id = op.get("name")?.as_str()?.to_owned();
    let meta = op.get("metadata").unwrap_or(&Value::Null);
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let mut status = meta
        .get("state")
        .and_then(Value::as_str)
        .map_or("in_progress", status_of);
    // A finished operation with an error and no state that says so has failed.
    let error = op.get("error").filter(|e| !e.is_null());
    if op.get("done").and_then(Value::as_bool) == Some(true)
        && error.is_some()
        && !crate::provider::openai::batch::is_over(status)
    {
        status = "failed";
    }
    let created_at = text(meta, "createTime")
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_second());
    let stats = meta.get("batchStats").unwrap_or(&Value::Null);
    let request_counts = int64(stats.get("requestCount")).map(|total| RequestCounts {
        total,
        completed: int64(stats.get("successfulRequestCount")).unwrap_or(0),
        failed: int64(stats.get("failedRequestCount")).unwrap_or(0),
    });
    let output_file_id = [meta.get("output"), op.get("response")]
        .into_iter()
        .flatten()
        .find_map(|o| text(o, "responsesFile"));
    let errors = error.map(|e| BatchErrors {
        data: vec![BatchError {
            code: text(e, "status").or_else(|| e.get("code").map(Value::to_string)),
            message: text(e, "message"),
            param: None,
            line: None,
        }],
    });
    let mut metadata = Map::new();
    if let Some(display) = text(meta, "displayName") {
        metadata.insert(SUBMISSION_KEY.to_owned(), display.into());
    }
    Some(BatchObject {
        id,
        status: status.to_owned(),
        endpoint: text(meta, "model"),
        input_file_id: meta.get("inputConfig").and_then(|c| text(c, "fileName")),
        output_file_id,
        error_file_id: None,
        created_at,
        expires_at: created_at.map(|t| t + EXPIRY_SECS),
        request_counts,
        errors,
        metadata: Some(Value::Object(metadata)),
    })
}

/// The HTTP status a google.rpc code stands for, as the live API would have answered.
fn http_status(code: i64) -> u16 {
    match code {
        3 | 9 | 11 => 400,
        16 => 401,
        7 => 403,
        5 => 404,
        6 | 10 => 409,
        8 => 429,
        1 => 499,
        12 => 501,
        14 => 503,
        4 => 504,
        _ => 500,
    }
}

/// Reads one line of a responses file: its `key` and what it says, decoded as a live answer
/// is. A line that is not JSON, or names no key, is an error with the reason.
pub fn decode_line(line: &[u8]) -> Result<(String, LineResult), String> {
    let wire: Value =
        serde_json::from_slice(line).map_err(|e| format!("not a result line: {e}"))?;
    let key = wire
        .get("key")
        .or_else(|| wire.get("metadata").and_then(|m| m.get("key")))
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| "a result line names no key".to_owned())?
        .to_owned();
    if let Some(response) = wire.get("response").filter(|r| !r.is_null()) {
        let body = response.to_string();
        let answer = super::decode_parts(200, |_| None, body.as_bytes());
        return Ok((key, LineResult::Answered(answer)));
    }
    let error = wire.get("error").unwrap_or(&Value::Null);
    let code = error.get("code").and_then(Value::as_i64);
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match code {
        // An error the live API would have answered: read with its verdict, as live.
        Some(code) => {
            let body = serde_json::json!({ "error": error }).to_string();
            let status = http_status(code);
            let answer = super::decode_parts(status, |_| None, body.as_bytes());
            Ok((key, LineResult::Answered(answer)))
        }
        None => Ok((
            key,
            LineResult::NotRun {
                code: String::new(),
                message: if message.is_empty() {
                    "the line holds neither a response nor an error".to_owned()
                } else {
                    message.to_owned()
                },
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn states_are_matched_on_their_suffix() {
        for (state, status) in [
            ("BATCH_STATE_PENDING", "validating"),
            ("BATCH_STATE_RUNNING", "in_progress"),
            ("BATCH_STATE_SUCCEEDED", "completed"),
            ("JOB_STATE_SUCCEEDED", "completed"),
            ("BATCH_STATE_FAILED", "failed"),
            ("BATCH_STATE_CANCELLED", "cancelled"),
            ("BATCH_STATE_EXPIRED", "expired"),
            ("BATCH_STATE_SOMETHING_NEW", "in_progress"),
        ] {
            assert_eq!(status_of(state), status, "{state}");
        }
    }

    #[test]
    fn an_operation_reads_as_a_batch() {
        let op = json!({
            "name": "batches/abc",
            "metadata": {
                "state": "BATCH_STATE_SUCCEEDED", "displayName": "s1-2-3",
                "createTime": "2026-12-01T10:00:00Z", "model": "models/gemini-3-pro-image",
                "batchStats": {"requestCount": "4", "successfulRequestCount": "3",
                               "failedRequestCount": "1"},
                "output": {"responsesFile": "files/out-1"}
            },
            "done": true,
            "response": {"responsesFile": "files/out-1"}
        });
        let b = read_operation(&op).unwrap();
        assert_eq!(b.id, "batches/abc");
        assert!(b.is_over());
        assert_eq!(b.submission(), Some("s1-2-3"));
        assert_eq!(b.output_file_id.as_deref(), Some("files/out-1"));
        let counts = b.request_counts.unwrap();
        assert_eq!((counts.total, counts.completed, counts.failed), (4, 3, 1));
        assert_eq!(b.expires_at.unwrap() - b.created_at.unwrap(), EXPIRY_SECS);
        let failed = read_operation(&json!({
            "name": "batches/x", "done": true,
            "error": {"code": 3, "message": "bad input", "status": "INVALID_ARGUMENT"}
        }))
        .unwrap();
        assert_eq!(failed.status, "failed");
        assert_eq!(
            failed.errors.unwrap().data[0].message.as_deref(),
            Some("bad input")
        );
        assert!(read_operation(&json!({"metadata": {}})).is_none());
    }

    #[test]
    fn lines_are_read_as_live_answers() {
        use base64::Engine as _;
        let data = base64::engine::general_purpose::STANDARD.encode(b"the image's bytes");
        let line = json!({"key": "image.a.01.hd.png", "response": {"candidates": [{"content":
            {"parts": [{"inlineData": {"mimeType": "image/png", "data": data}}]},
            "finishReason": "STOP"}]}});
        let (key, result) = decode_line(line.to_string().as_bytes()).unwrap();
        assert_eq!(key, "image.a.01.hd.png");
        assert!(matches!(result, LineResult::Answered(Ok(_))));
        let refused =
            json!({"key": "k", "response": {"promptFeedback": {"blockReason": "SAFETY"}}});
        let (_, result) = decode_line(refused.to_string().as_bytes()).unwrap();
        assert!(matches!(result, LineResult::Answered(Err(ref e)) if e.is_refusal()));
        let error = json!({"key": "k", "error": {"code": 8, "message": "quota", "status": "RESOURCE_EXHAUSTED"}});
        let (_, result) = decode_line(error.to_string().as_bytes()).unwrap();
        match result {
            LineResult::Answered(Err(e)) => assert_eq!(e.status(), Some(429)),
            other => panic!("{other:?}"),
        }
        assert!(decode_line(b"{\"response\": {}}").is_err());
        assert!(decode_line(b"not json").is_err());
    }
}
