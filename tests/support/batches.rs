//! OpenAI's Files and Batches APIs in the fake (OpenAI's routes only, key as a bearer token).
//!
//! Files: `POST /v1/files` (multipart: a `purpose` field and a `file` part), `GET
//! /v1/files/{id}`, `GET /v1/files/{id}/content` (streamed in frames of at most 64 KB, with
//! `Range: bytes=...` honoured) and `DELETE /v1/files/{id}`. Contents are kept in memory, as
//! lists of pieces that share what they can: an output file of a thousand padded images holds
//! the padding's base64 once.
//!
//! Batches: `POST /v1/batches`, `GET /v1/batches/{id}`, `POST /v1/batches/{id}/cancel` and
//! `GET /v1/batches?limit=N&after=ID`. No time passes in a fake batch: polls move it on. Each
//! `GET /v1/batches/{id}` counts as a poll of that batch, and a batch stays
//! [`BatchOptions::polls_per_step`] polls in each of `validating`, `in_progress`, `finalizing`
//! and `cancelling`. It is validated as it leaves `validating` (to `failed`, or `in_progress`);
//! its requests run during `in_progress`, a share at each poll, so `request_counts` grow; it is
//! `completed` with its output and error files as it leaves `finalizing`. A test can also
//! [hold](FakeServer::hold_batches) every batch where it is, [advance](FakeServer::advance_all)
//! them by hand, or [force a status](FakeServer::set_batch_status).
//!
//! Each request of a batch is judged and answered exactly as a live request to the batch's
//! endpoint would be (`rules.rs`, [`answer_valid`](super::server::answer_valid): the model
//! rules, unknown fields, the refuse marker, the same image generator and body, padding), plus
//! what only a batch checks: `file_id` references must name files this fake holds, and
//! `stream` is refused. A [`BatchScript`] decides per request what to do, as a [`Script`]
//! does for live requests.
//!
//! [`Script`]: super::server::Script

use std::collections::HashSet;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, StreamBody};
use hyper::Response;
use hyper::body::Frame;
use serde_json::{Map, Value, json};

use super::rules::{self, ApiErr};
use super::server::{
    self, Action, Body, Dropped, FakeServer, Incoming, Recorded, State, error_response,
    insert_header, respond, scripted_answer,
};

/// The most requests a batch takes (and a batch input file may hold): 50,000.
pub const MAX_REQUESTS: usize = 50_000;

/// The largest batch input file: 200 MB.
pub const MAX_FILE_BYTES: usize = 209_715_200;

/// The largest frame a file's contents are sent in.
pub const FRAME: usize = 64 * 1024;

/// Batch requests' images are `images::png(BATCH_SEQ_BASE + n)` (and so on for the other
/// formats), `n` counting every batch request the server ran from 1: never the same bytes as a
/// live answer's.
pub const BATCH_SEQ_BASE: u64 = 1 << 32;

/// The purposes an upload may have; the fake itself makes files of purpose `batch_output`.
pub const PURPOSES: &[&str] = &["batch", "vision", "user_data", "assistants"];

/// The endpoints a batch may be for.
pub const ENDPOINTS: &[&str] = &["/v1/images/generations", "/v1/images/edits"];

/// The order of the lines in a batch's output and error files (each ordered on its own).
/// The service does not keep the input's order, so neither does the fake by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputOrder {
    /// The input file's order.
    InOrder,
    /// The input file's order, reversed.
    #[default]
    Reversed,
    /// Shuffled with a fixed seed.
    Shuffled(u64),
}

/// What a [`BatchScript`] sees of a batch request, once it has passed the rules.
#[derive(Debug, Clone)]
pub struct BatchLine {
    pub batch_id: String,
    pub custom_id: String,
    /// The request's line in the input file, from 1.
    pub line: usize,
    /// Order among all the batch requests this server ran, from 0.
    pub nth: usize,
    /// The batch's endpoint, like `/v1/images/generations`.
    pub endpoint: String,
    /// The model that serves it.
    pub model: String,
    pub prompt: String,
    /// The request's `body`.
    pub body: Map<String, Value>,
}

/// Decides what the fake does with each batch request, as [`Options::script`] does for live
/// ones: [`Action::Answer`] (and [`Action::Delay`]) answers normally; [`Action::Error`] and
/// [`Action::Raw`] (so [`Action::moderation_blocked`] too) give that status and body in the
/// line; [`Action::BadBase64`] and [`Action::WrongFormat`] give the same bad `200` answers as
/// live; [`Action::Drop`], [`Action::Truncate`] and [`Action::MalformedJson`], which have no
/// meaning inside a file, give a `500 server_error` line.
///
/// [`Options::script`]: super::server::Options::script
pub type BatchScript = Arc<dyn Fn(&BatchLine) -> Action + Send + Sync>;

/// How the Files and Batches APIs behave ([`Options::batch`](super::server::Options::batch)).
#[derive(Clone)]
pub struct BatchOptions {
    /// Polls (`GET /v1/batches/{id}`) a batch spends in each of `validating`, `in_progress`,
    /// `finalizing` and `cancelling`; at least 1, which is the default: each poll moves a batch
    /// on one status. During `in_progress` the `k`-th poll has run `total * k / polls_per_step`
    /// of its requests.
    pub polls_per_step: usize,
    /// The order of the output and error files' lines; reversed by default.
    pub order: OutputOrder,
    /// Every batch expires once this many of its requests have run (if it has more): status
    /// `expired`, the requests that ran in the output and error files, the others in the error
    /// file as `batch_expired`. `None` (the default): batches do not expire.
    pub expire_after: Option<usize>,
    /// Decides per request; [`Action::Answer`] for all by default.
    pub script: Option<BatchScript>,
    /// The first this many downloads of file contents (`GET /v1/files/{id}/content`, ranged
    /// or not) are cut: the headers and about half the body, then the connection closes.
    pub download_cuts: usize,
    /// The first uploads (`POST /v1/files`) are answered by these actions, one each:
    /// [`Action::Error`], [`Action::Raw`], [`Action::Drop`] and [`Action::MalformedJson`]
    /// answer instead of the service, which does nothing; [`Action::Truncate`] does the work
    /// and cuts the answer; [`Action::Delay`] delays it; the others change nothing.
    pub upload_faults: Vec<Action>,
    /// The first `POST /v1/batches` are answered by these actions, as for `upload_faults`: so
    /// a `Truncate` creates a batch whose client never learns its id.
    pub create_faults: Vec<Action>,
    /// The first polls (`GET /v1/batches/{id}`, any batch) are answered by these actions, as
    /// for `upload_faults`; a faulted poll does not move its batch on (a truncated one does).
    pub poll_faults: Vec<Action>,
    /// The most requests a batch takes; more fail its validation. 50,000 by default.
    pub max_requests: usize,
    /// The most requests (non-blank lines) an upload of purpose `batch` may hold; more are
    /// refused with a `400`. 50,000 by default; a test of the validation limit sets it higher
    /// than `max_requests`.
    pub max_upload_requests: usize,
    /// The largest upload of purpose `batch`, in bytes; 200 MB by default.
    pub max_file_bytes: usize,
    /// All the requests of a batch must use the same model (the service's rule: "each input
    /// file can only include requests to a single model"); on by default. A request whose
    /// `body` has no `model` uses the endpoint's default.
    pub one_model: bool,
    /// These lines of every batch's input (1-based) fail its validation with
    /// `invalid_request`, naming the line: a batch the service refuses as a whole.
    pub invalid_lines: Vec<usize>,
}

impl Default for BatchOptions {
    fn default() -> BatchOptions {
        BatchOptions {
            polls_per_step: 1,
            order: OutputOrder::default(),
            expire_after: None,
            script: None,
            download_cuts: 0,
            upload_faults: Vec::new(),
            create_faults: Vec::new(),
            poll_faults: Vec::new(),
            max_requests: MAX_REQUESTS,
            max_upload_requests: MAX_REQUESTS,
            max_file_bytes: MAX_FILE_BYTES,
            one_model: true,
            invalid_lines: Vec::new(),
        }
    }
}

/// A file the Files API holds or held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// `file-<n>`.
    pub id: String,
    /// `batch`, `vision`, `user_data`, `assistants`, or `batch_output` for the fake's own.
    pub purpose: String,
    pub filename: String,
    /// Its length.
    pub bytes: usize,
    pub created_at: u64,
    /// Deleted by `DELETE /v1/files/{id}`: no longer served, its contents dropped.
    pub deleted: bool,
}

/// A batch request the fake ran (each is an image "bought" if it succeeded).
#[derive(Debug, Clone)]
pub struct AnsweredLine {
    pub batch_id: String,
    pub custom_id: String,
    /// Its line in the input file, from 1.
    pub line: usize,
    /// The `status_code` of its answer: 200, or the error's.
    pub status: u16,
    /// The model that served it, or the body's `model` as given if the rules refused it.
    pub model: String,
    pub prompt: String,
    /// The image its answer carries, if any and if [`Options::record_images`].
    ///
    /// [`Options::record_images`]: super::server::Options::record_images
    pub image: Option<Vec<u8>>,
}

/// The Files and Batches APIs' state, in [`State`].
#[derive(Default)]
pub(super) struct Store {
    inner: Mutex<Inner>,
    held: AtomicBool,
}

#[derive(Default)]
struct Inner {
    /// In order of creation: `file-<n>` is `files[n - 1]`.
    files: Vec<StoredFile>,
    /// In order of creation: `batch_<n>` is `batches[n - 1]`.
    batches: Vec<Batch>,
    answered: Vec<AnsweredLine>,
    /// Output lines written, for their `batch_req_<n>` ids.
    lines_written: usize,
    uploads: usize,
    creates: usize,
    polls: usize,
    downloads: usize,
    cuts: usize,
}

struct StoredFile {
    info: FileInfo,
    /// The contents in pieces; empty once deleted.
    content: Vec<Bytes>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Validating,
    Failed,
    InProgress,
    Finalizing,
    Completed,
    Expired,
    Cancelling,
    Cancelled,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Validating => "validating",
            Status::Failed => "failed",
            Status::InProgress => "in_progress",
            Status::Finalizing => "finalizing",
            Status::Completed => "completed",
            Status::Expired => "expired",
            Status::Cancelling => "cancelling",
            Status::Cancelled => "cancelled",
        }
    }

    fn is_final(self) -> bool {
        matches!(
            self,
            Status::Failed | Status::Completed | Status::Expired | Status::Cancelled
        )
    }
}

/// When a batch entered each status, as Unix seconds.
#[derive(Default)]
struct Times {
    created: u64,
    in_progress: Option<u64>,
    finalizing: Option<u64>,
    completed: Option<u64>,
    failed: Option<u64>,
    expired: Option<u64>,
    cancelling: Option<u64>,
    cancelled: Option<u64>,
}

/// A valid request of a batch, found by validation.
struct Pending {
    line: usize,
    custom_id: String,
    /// Its line in the input file.
    span: Range<usize>,
}

/// A request that ran: its output line, rendered.
struct Done {
    ok: bool,
    line: Vec<Bytes>,
}

struct Batch {
    id: String,
    endpoint: String,
    input_file_id: String,
    /// The input file's contents, kept even if the file is deleted.
    input: Bytes,
    metadata: Value,
    status: Status,
    /// Polls since it entered its status.
    polls: usize,
    times: Times,
    /// Validation errors.
    errors: Vec<Value>,
    requests: Vec<Pending>,
    /// How many of `requests` have run.
    next: usize,
    done: Vec<Done>,
    completed: usize,
    failed: usize,
    output_file_id: Option<String>,
    error_file_id: Option<String>,
}

impl Batch {
    /// The batch object, as the service shows it.
    fn object(&self) -> Value {
        let errors = if self.errors.is_empty() {
            Value::Null
        } else {
            json!({"object": "list", "data": self.errors})
        };
        let t = &self.times;
        json!({
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": errors,
            "input_file_id": self.input_file_id,
            "completion_window": "24h",
            "status": self.status.as_str(),
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": t.created,
            "in_progress_at": t.in_progress,
            "expires_at": t.created + 86_400,
            "finalizing_at": t.finalizing,
            "completed_at": t.completed,
            "failed_at": t.failed,
            "expired_at": t.expired,
            "cancelling_at": t.cancelling,
            "cancelled_at": t.cancelled,
            "request_counts": {
                "total": self.requests.len(),
                "completed": self.completed,
                "failed": self.failed,
            },
            "metadata": self.metadata,
        })
    }

    fn set_status(&mut self, status: Status) {
        let now = Some(unix_now());
        let t = &mut self.times;
        match status {
            Status::Validating => {}
            Status::Failed => t.failed = now,
            Status::InProgress => t.in_progress = now,
            Status::Finalizing => t.finalizing = now,
            Status::Completed => t.completed = now,
            Status::Expired => t.expired = now,
            Status::Cancelling => t.cancelling = now,
            Status::Cancelled => t.cancelled = now,
        }
        self.status = status;
        self.polls = 0;
    }

    /// The model a request's body asks for, or the endpoint's default.
    fn model_of(&self, body: &Map<String, Value>) -> String {
        match body.get("model") {
            Some(Value::String(m)) => m.clone(),
            Some(Value::Null) | None if self.endpoint.ends_with("/edits") => {
                "gpt-image-1.5".to_owned()
            }
            Some(Value::Null) | None => "dall-e-2".to_owned(),
            Some(other) => other.to_string(),
        }
    }

    /// Checks the input file's lines, as the service does while `validating`: to `in_progress`
    /// with the requests found, or to `failed` with an error per bad line.
    fn validate(&mut self, options: &BatchOptions) {
        let mut errors = Vec::new();
        let mut requests = Vec::new();
        let mut seen = HashSet::new();
        let mut first_model: Option<(String, usize)> = None;
        let mut count = 0;
        for (line, span) in lines(&self.input) {
            let text = &self.input[span.clone()];
            if is_blank(text) {
                continue;
            }
            count += 1;
            let mut error = |code: &str, param: Option<&str>, message: String| {
                errors
                    .push(json!({"code": code, "message": message, "param": param, "line": line}));
            };
            if options.invalid_lines.contains(&line) {
                error(
                    "invalid_request",
                    Some("body"),
                    format!("Line {line} is not a valid request (a test said so)."),
                );
                continue;
            }
            let request = match serde_json::from_slice::<Value>(text) {
                Ok(Value::Object(request)) => request,
                Ok(_) => {
                    error(
                        "invalid_json_line",
                        None,
                        "This line is not a JSON object.".into(),
                    );
                    continue;
                }
                Err(_) => {
                    error(
                        "invalid_json_line",
                        None,
                        "This line is not parseable as valid JSON.".into(),
                    );
                    continue;
                }
            };
            let custom_id = match request.get("custom_id") {
                Some(Value::String(id)) if !id.is_empty() => id.clone(),
                Some(Value::String(_) | Value::Null) | None => {
                    error(
                        "invalid_request",
                        Some("custom_id"),
                        "Missing required parameter: 'custom_id'.".into(),
                    );
                    continue;
                }
                Some(other) => {
                    error(
                        "invalid_request",
                        Some("custom_id"),
                        format!(
                            "Invalid type for 'custom_id': expected a string, but got {other}."
                        ),
                    );
                    continue;
                }
            };
            if request.get("method").and_then(Value::as_str) != Some("POST") {
                error(
                    "invalid_request",
                    Some("method"),
                    "The method for this request must be 'POST'.".into(),
                );
                continue;
            }
            if request.get("url").and_then(Value::as_str) != Some(self.endpoint.as_str()) {
                error(
                    "invalid_request",
                    Some("url"),
                    "The URL provided for this request does not match the batch endpoint.".into(),
                );
                continue;
            }
            let Some(Value::Object(body)) = request.get("body") else {
                error(
                    "invalid_request",
                    Some("body"),
                    "The body of this request must be a JSON object.".into(),
                );
                continue;
            };
            if !seen.insert(custom_id.clone()) {
                error(
                    "duplicate_custom_id",
                    Some("custom_id"),
                    "The custom_id for this request is a duplicate of another request. The custom_id parameter must be unique for each request in a batch.".into(),
                );
                continue;
            }
            let model = self.model_of(body);
            match &first_model {
                None => first_model = Some((model, line)),
                Some((first, at)) if options.one_model && *first != model => {
                    error(
                        "mismatched_model",
                        Some("body.model"),
                        format!(
                            "This request's model '{model}' differs from the model of line {at}, '{first}'. All the requests of a batch must use the same model."
                        ),
                    );
                    continue;
                }
                Some(_) => {}
            }
            requests.push(Pending {
                line,
                custom_id,
                span,
            });
        }
        let mut fail = |code: &str, message: String| {
            errors.push(json!({"code": code, "message": message, "param": null, "line": null}));
        };
        if count == 0 {
            fail("empty_file", "The batch input file is empty.".into());
        } else if count > options.max_requests {
            fail(
                "too_many_requests",
                format!(
                    "The batch input file holds {count} requests; a batch takes at most {}.",
                    options.max_requests
                ),
            );
        }
        if errors.is_empty() {
            self.requests = requests;
            self.set_status(Status::InProgress);
        } else {
            self.errors = errors;
            self.set_status(Status::Failed);
        }
    }
}

/// The lines of `bytes` (split at `\n`, a `\r` before it dropped), numbered from 1.
pub(super) fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, Range<usize>)> + '_ {
    let mut start = 0;
    let mut number = 0;
    std::iter::from_fn(move || {
        if start >= bytes.len() {
            return None;
        }
        let end = bytes[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| start + i);
        let next = end + 1;
        let end = if end > start && bytes[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        let range = start..end;
        start = next;
        number += 1;
        Some((number, range))
    })
}

pub(super) fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// What one batch request was answered.
struct LineAnswer {
    status: u16,
    /// The answer's body, as JSON in pieces.
    body: Vec<Bytes>,
    image: Option<Vec<u8>>,
    model: String,
    prompt: String,
}

impl LineAnswer {
    fn json(status: u16, body: &Value, model: &str, prompt: &str) -> LineAnswer {
        LineAnswer {
            status,
            body: vec![Bytes::from(body.to_string())],
            image: None,
            model: model.to_owned(),
            prompt: prompt.to_owned(),
        }
    }
}

/// Stands for a request's answer in its output line until the line is written out.
const BODY_PLACEHOLDER: &str = "@@genimg-fake-line-body@@";

/// An output line with a `response`: `body` spliced in whole, pieces and all.
fn response_line(id: &str, custom_id: &str, status: u16, body: Vec<Bytes>) -> Vec<Bytes> {
    let shell = json!({
        "id": id,
        "custom_id": custom_id,
        "response": {
            "status_code": status,
            "request_id": format!("req_{}", id.trim_start_matches("batch_req_")),
            "body": BODY_PLACEHOLDER,
        },
        "error": null,
    })
    .to_string();
    // The last one: only the response's own fields can come after it, never a custom_id.
    let quoted = format!("\"{BODY_PLACEHOLDER}\"");
    let at = shell
        .rfind(&quoted)
        .expect("the placeholder is in the line");
    let shell = Bytes::from(shell);
    let mut parts = Vec::with_capacity(body.len() + 3);
    parts.push(shell.slice(..at));
    parts.extend(body);
    parts.push(shell.slice(at + quoted.len()..));
    parts.push(Bytes::from_static(b"\n"));
    parts
}

/// An output line for a request that never ran: `response` null, the `error` given.
fn unrun_line(id: &str, custom_id: &str, code: &str, message: &str) -> Vec<Bytes> {
    let line = json!({
        "id": id,
        "custom_id": custom_id,
        "response": null,
        "error": {"code": code, "message": message},
    });
    vec![Bytes::from(format!("{line}\n"))]
}

/// The error body of an action that answers with an error, as a line's `status_code` and
/// `body`; `None` for the actions that answer normally.
fn scripted_line(action: &Action) -> Option<(u16, Value)> {
    match action {
        Action::Answer | Action::Delay(_) | Action::BadBase64 | Action::WrongFormat => None,
        Action::Error {
            status,
            code,
            kind,
            message,
            ..
        } => {
            let err = ApiErr {
                status: *status,
                message: message.clone(),
                kind: kind.clone(),
                param: None,
                code: code.clone(),
                azure: false,
            };
            Some((*status, err.body()))
        }
        Action::Raw { status, body, .. } => {
            let body = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.clone()));
            Some((*status, body))
        }
        Action::Drop | Action::Truncate | Action::MalformedJson => {
            let err = ApiErr {
                status: 500,
                message: "The server had an error while processing your request.".into(),
                kind: "server_error".into(),
                param: None,
                code: Some("server_error".into()),
                azure: false,
            };
            Some((500, err.body()))
        }
    }
}

impl Inner {
    fn file(&self, id: &str) -> Option<&StoredFile> {
        self.files
            .iter()
            .find(|f| f.info.id == id && !f.info.deleted)
    }

    fn add_file(&mut self, purpose: &str, filename: &str, content: Vec<Bytes>) -> FileInfo {
        let info = FileInfo {
            id: format!("file-{}", self.files.len() + 1),
            purpose: purpose.to_owned(),
            filename: filename.to_owned(),
            bytes: content.iter().map(Bytes::len).sum(),
            created_at: unix_now(),
            deleted: false,
        };
        self.files.push(StoredFile {
            info: info.clone(),
            content,
        });
        info
    }

    fn batch_index(&self, id: &str) -> Option<usize> {
        self.batches.iter().position(|b| b.id == id)
    }

    /// Answers batch `i`'s request `k` as a live request to its endpoint would be answered.
    fn answer(&self, state: &State, i: usize, k: usize, nth: usize) -> LineAnswer {
        let batch = &self.batches[i];
        let pending = &batch.requests[k];
        let mut request: Map<String, Value> =
            serde_json::from_slice(&batch.input[pending.span.clone()]).expect("validated");
        let Some(Value::Object(body)) = request.remove("body") else {
            unreachable!("validated")
        };
        let model = batch.model_of(&body);
        let prompt = body
            .get("prompt")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let op = if batch.endpoint.ends_with("/edits") {
            rules::Op::Edit
        } else {
            rules::Op::Generate
        };
        let refused = |err: ApiErr| LineAnswer::json(err.status, &err.body(), &model, &prompt);
        let checked = match rules::check(
            op,
            rules::Route::OpenAi,
            false,
            &body,
            &[],
            &state.options.extra_models,
        ) {
            Ok(checked) => checked,
            Err(err) => return refused(err),
        };
        if body.get("stream") == Some(&Value::Bool(true)) {
            return refused(ApiErr::invalid(
                "stream",
                "Invalid 'stream': streaming is not supported in the Batch API.".into(),
            ));
        }
        if op == rules::Op::Edit
            && let Err(err) =
                rules::check_file_refs(&body, |id| self.file(id).map(|f| f.content.concat()))
        {
            return refused(err);
        }

        let incoming = Incoming {
            nth: BATCH_SEQ_BASE as usize + nth,
            path: batch.endpoint.clone(),
            model: checked.model.clone(),
            prompt: prompt.clone(),
        };
        let action = match &state.options.batch.script {
            Some(script) => script(&BatchLine {
                batch_id: batch.id.clone(),
                custom_id: pending.custom_id.clone(),
                line: pending.line,
                nth,
                endpoint: batch.endpoint.clone(),
                model: checked.model.clone(),
                prompt: prompt.clone(),
                body: body.clone(),
            }),
            None => Action::Answer,
        };
        if let Some((status, err)) = scripted_line(&action) {
            return LineAnswer::json(status, &err, &checked.model, &prompt);
        }
        let seq = incoming.nth as u64 + 1;
        match action {
            Action::BadBase64 => {
                let body =
                    json!({"created": 1, "data": [{"b64_json": "this is %%% not base64 !!"}]});
                return LineAnswer::json(200, &body, &checked.model, &prompt);
            }
            Action::WrongFormat => {
                let wrong = if server::output_format(&body) == "png" {
                    server::jpeg(seq)
                } else {
                    super::images::png(seq)
                };
                let body = json!({"created": 1, "data": [{"b64_json": base64_of(&wrong)}]});
                let mut answer = LineAnswer::json(200, &body, &checked.model, &prompt);
                answer.image = Some(wrong);
                return answer;
            }
            _ => {}
        }

        let image = server::picture(state, &body, seq);
        match server::answer_valid(state, checked.family, &body, &image, &incoming) {
            Ok(parts) => LineAnswer {
                status: 200,
                body: parts,
                image: state.options.record_images.then(|| image.bytes(state)),
                model: checked.model,
                prompt,
            },
            Err(err) => LineAnswer::json(err.status, &err.body(), &checked.model, &prompt),
        }
    }

    /// Runs up to `count` more of batch `i`'s requests. With `expiry`, the batch expires once
    /// [`BatchOptions::expire_after`] of them have run; it moves on to `finalizing` once all have.
    fn run(&mut self, state: &State, i: usize, count: usize, expiry: bool) {
        let total = self.batches[i].requests.len();
        let limit = match (expiry, state.options.batch.expire_after) {
            (true, Some(m)) => m.min(total),
            _ => total,
        };
        let start = self.batches[i].next;
        let end = start.saturating_add(count).min(limit).max(start);
        for k in start..end {
            let nth = self.answered.len();
            let answer = self.answer(state, i, k, nth);
            self.lines_written += 1;
            let id = format!("batch_req_{}", self.lines_written);
            let batch = &mut self.batches[i];
            let pending = &batch.requests[k];
            let ok = (200..300).contains(&answer.status);
            self.answered.push(AnsweredLine {
                batch_id: batch.id.clone(),
                custom_id: pending.custom_id.clone(),
                line: pending.line,
                status: answer.status,
                model: answer.model,
                prompt: answer.prompt,
                image: answer.image,
            });
            let line = response_line(&id, &pending.custom_id, answer.status, answer.body);
            batch.done.push(Done { ok, line });
            if ok {
                batch.completed += 1;
            } else {
                batch.failed += 1;
            }
            batch.next = k + 1;
        }
        let next = self.batches[i].next;
        if next == limit && limit < total {
            self.finish(state, i, Status::Expired);
        } else if next == total {
            self.batches[i].set_status(Status::Finalizing);
        }
    }

    /// Ends batch `i` as `status` (`completed`, `expired` or `cancelled`): its output and
    /// error files written, the requests that never ran in the error file.
    fn finish(&mut self, state: &State, i: usize, status: Status) {
        let unrun = match status {
            Status::Expired => Some((
                "batch_expired",
                "This request could not be executed before the completion window expired.",
            )),
            Status::Cancelled => Some((
                "batch_cancelled",
                "This request was not executed because the batch was cancelled.",
            )),
            _ => None,
        };
        let batch = &mut self.batches[i];
        let mut output = Vec::new();
        let mut errors = Vec::new();
        for done in std::mem::take(&mut batch.done) {
            if done.ok {
                output.push(done.line);
            } else {
                errors.push(done.line);
            }
        }
        if let Some((code, message)) = unrun {
            for pending in &batch.requests[batch.next..] {
                self.lines_written += 1;
                let id = format!("batch_req_{}", self.lines_written);
                errors.push(unrun_line(&id, &pending.custom_id, code, message));
            }
        }
        let order = state.options.batch.order;
        for lines in [&mut output, &mut errors] {
            match order {
                OutputOrder::InOrder => {}
                OutputOrder::Reversed => lines.reverse(),
                OutputOrder::Shuffled(seed) => fastrand::Rng::with_seed(seed).shuffle(lines),
            }
        }
        let id = batch.id.clone();
        let output_file = (!output.is_empty()).then(|| {
            self.add_file(
                "batch_output",
                &format!("{id}_output.jsonl"),
                output.concat(),
            )
            .id
        });
        let error_file = (!errors.is_empty()).then(|| {
            self.add_file(
                "batch_output",
                &format!("{id}_error.jsonl"),
                errors.concat(),
            )
            .id
        });
        let batch = &mut self.batches[i];
        batch.output_file_id = output_file;
        batch.error_file_id = error_file;
        batch.set_status(status);
    }

    /// A poll of batch `i`: it moves on as [`BatchOptions::polls_per_step`] says.
    fn poll(&mut self, state: &State, i: usize) {
        let per_step = state.options.batch.polls_per_step.max(1);
        let batch = &mut self.batches[i];
        batch.polls += 1;
        let polls = batch.polls;
        match batch.status {
            Status::Validating if polls >= per_step => batch.validate(&state.options.batch),
            Status::InProgress => {
                let total = batch.requests.len();
                let target = if polls >= per_step {
                    total
                } else {
                    total * polls / per_step
                };
                let count = target.saturating_sub(batch.next);
                // Polls count in `in_progress` too; `run` resets them when it moves on.
                self.run(state, i, count, true);
            }
            Status::Finalizing if polls >= per_step => self.finish(state, i, Status::Completed),
            Status::Cancelling if polls >= per_step => self.finish(state, i, Status::Cancelled),
            _ => {}
        }
    }

    /// Moves batch `i` on one status, whatever the polls.
    fn step(&mut self, state: &State, i: usize) {
        match self.batches[i].status {
            Status::Validating => self.batches[i].validate(&state.options.batch),
            Status::InProgress => self.run(state, i, usize::MAX, true),
            Status::Finalizing => self.finish(state, i, Status::Completed),
            Status::Cancelling => self.finish(state, i, Status::Cancelled),
            _ => {}
        }
    }

    /// `POST /v1/batches/{id}/cancel` on batch `i`.
    fn cancel(&mut self, i: usize) -> Result<(), ApiErr> {
        let batch = &mut self.batches[i];
        match batch.status {
            Status::Validating | Status::InProgress | Status::Finalizing => {
                batch.set_status(Status::Cancelling);
                Ok(())
            }
            Status::Cancelling => Ok(()),
            status => Err(ApiErr::new(
                400,
                "invalid_request",
                None,
                format!("Cannot cancel a batch with status {}.", status.as_str()),
            )),
        }
    }
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn file_object(info: &FileInfo) -> Value {
    json!({
        "id": info.id,
        "object": "file",
        "bytes": info.bytes,
        "created_at": info.created_at,
        "filename": info.filename,
        "purpose": info.purpose,
        "status": "processed",
    })
}

/// Whether the Files and Batches APIs serve `path`.
pub(super) fn is_route(path: &str) -> bool {
    ["/v1/files", "/v1/batches"]
        .iter()
        .any(|root| path == *root || path.starts_with(&format!("{root}/")))
}

/// What a fault action does to a Files or Batches call.
enum Faulted {
    /// Nothing: the call goes on.
    No,
    /// The call goes on, and its answer is cut.
    Truncate,
    /// This instead of the call.
    Answer(Result<Response<Body>, Dropped>),
}

/// The `nth` fault of `faults`, applied.
async fn fault(faults: &[Action], nth: usize) -> Faulted {
    match faults.get(nth) {
        None | Some(Action::Answer | Action::BadBase64 | Action::WrongFormat) => Faulted::No,
        Some(Action::Delay(d)) => {
            tokio::time::sleep(*d).await;
            Faulted::No
        }
        Some(Action::Drop) => Faulted::Answer(Err(Dropped)),
        Some(Action::Truncate) => Faulted::Truncate,
        Some(Action::MalformedJson) => Faulted::Answer(Ok(respond(
            200,
            "application/json",
            b"{\"id\": \"batch_".to_vec(),
        ))),
        Some(action) => Faulted::Answer(Ok(
            scripted_answer(action).expect("an error or a raw answer")
        )),
    }
}

/// `value` as a `200`; with `truncate`, its length is announced and about half of it sent
/// before the connection closes.
fn json_answer(value: &Value, truncate: bool) -> Response<Body> {
    let body = value.to_string().into_bytes();
    if !truncate {
        return respond(200, "application/json", body);
    }
    let len = body.len();
    let half = Chunks::new(vec![Bytes::from(body)], 0, len / 2);
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("content-length", len.to_string())
        .body(stream_body(half, true))
        .unwrap()
}

/// A body of `chunks`' frames; with `cut`, it then fails, which closes the connection. The
/// failure waits a moment first: hyper drops what it has not written out yet when a body
/// fails, and the client is to get the headers and the frames before the cut.
pub(super) fn stream_body(chunks: Chunks, cut: bool) -> Body {
    type Error = Box<dyn std::error::Error + Send + Sync>;
    let frames = futures_util::stream::iter(chunks.map(|b| Ok::<_, Error>(Frame::data(b))));
    if !cut {
        return BodyExt::boxed(StreamBody::new(frames));
    }
    let fail = futures_util::stream::once(async {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        Err::<Frame<Bytes>, Error>(Box::new(Dropped))
    });
    BodyExt::boxed(StreamBody::new(futures_util::StreamExt::chain(
        frames, fail,
    )))
}

fn not_found(method: &str, path: &str) -> ApiErr {
    ApiErr::new(
        404,
        "not_found",
        None,
        format!("Invalid URL ({method} {path})"),
    )
}

fn no_such_file(id: &str) -> ApiErr {
    ApiErr::new(
        404,
        "not_found",
        Some("id"),
        format!("No such File object: {id}"),
    )
}

fn no_such_batch(id: &str) -> ApiErr {
    ApiErr::new(
        404,
        "not_found",
        Some("batch_id"),
        format!("No batch found with id '{id}'."),
    )
}

/// Answers a request to the Files or Batches API.
pub(super) async fn handle(
    state: &State,
    req: hyper::Request<hyper::body::Incoming>,
    record: &mut Recorded,
) -> Result<Response<Body>, Dropped> {
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(Dropped),
    };
    if let Some(err) = server::openai_key_error(record) {
        return Ok(error_response(&err));
    }
    let method = record.method.clone();
    let path = record.path.clone();
    let rest = path.trim_start_matches("/v1/");
    let segments: Vec<&str> = rest.split('/').collect();
    let answer = match (method.as_str(), segments.as_slice()) {
        ("POST", ["files"]) => return upload(state, record, body).await,
        ("GET", ["files", id]) => {
            let inner = state.batches.inner.lock().unwrap();
            inner
                .file(id)
                .map(|f| file_object(&f.info))
                .ok_or_else(|| no_such_file(id))
        }
        ("DELETE", ["files", id]) => {
            let mut inner = state.batches.inner.lock().unwrap();
            match inner
                .files
                .iter_mut()
                .find(|f| f.info.id == *id && !f.info.deleted)
            {
                Some(file) => {
                    file.info.deleted = true;
                    file.content = Vec::new();
                    Ok(json!({"id": id, "object": "file", "deleted": true}))
                }
                None => Err(no_such_file(id)),
            }
        }
        ("GET", ["files", id, "content"]) => return Ok(download(state, record, id)),
        ("POST", ["batches"]) => return create(state, record, &body).await,
        ("GET", ["batches"]) => list(state, record),
        ("GET", ["batches", id]) => return poll(state, id).await,
        ("POST", ["batches", id, "cancel"]) => {
            let mut inner = state.batches.inner.lock().unwrap();
            match inner.batch_index(id) {
                Some(i) => inner.cancel(i).map(|()| inner.batches[i].object()),
                None => Err(no_such_batch(id)),
            }
        }
        _ => Err(not_found(&method, &path)),
    };
    Ok(match answer {
        Ok(value) => json_answer(&value, false),
        Err(err) => error_response(&err),
    })
}

/// `POST /v1/files`.
async fn upload(
    state: &State,
    record: &mut Recorded,
    body: Bytes,
) -> Result<Response<Body>, Dropped> {
    let nth = {
        let mut inner = state.batches.inner.lock().unwrap();
        inner.uploads += 1;
        inner.uploads - 1
    };
    let truncate = match fault(&state.options.batch.upload_faults, nth).await {
        Faulted::Answer(answer) => return answer,
        Faulted::Truncate => true,
        Faulted::No => false,
    };
    let content_type = record.header("content-type").unwrap_or("").to_owned();
    if !content_type.starts_with("multipart/form-data") {
        return Ok(error_response(&ApiErr::bad_content_type(&content_type)));
    }
    let (fields, files) = match server::parse_multipart(&content_type, body).await {
        Ok(parsed) => parsed,
        Err(err) => return Ok(error_response(&err)),
    };
    record.is_multipart = true;
    record.fields = fields;
    record.files = files;
    let checked = check_upload(record, &state.options.batch);
    let (purpose, file) = match checked {
        Ok(ok) => ok,
        Err(err) => return Ok(error_response(&err)),
    };
    let name = file.file_name.clone().unwrap_or_default();
    let content = vec![Bytes::from(file.bytes.clone())];
    let info = state
        .batches
        .inner
        .lock()
        .unwrap()
        .add_file(&purpose, &name, content);
    Ok(json_answer(&file_object(&info), truncate))
}

/// The purpose and the file of an upload, checked as the service checks them.
fn check_upload<'a>(
    record: &'a Recorded,
    options: &BatchOptions,
) -> Result<(String, &'a server::FilePart), ApiErr> {
    const FIELDS: &[&str] = &["purpose", "expires_after[anchor]", "expires_after[seconds]"];
    if let Some(name) = record.fields.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiErr::unknown(name));
    }
    if let Some(part) = record.files.iter().find(|f| f.name != "file") {
        return Err(ApiErr::unknown(&part.name));
    }
    if record.files.len() > 1 {
        return Err(ApiErr::duplicate("file"));
    }
    let purpose = match record.field("purpose") {
        None => return Err(ApiErr::missing("purpose")),
        Some(p) if PURPOSES.contains(&p.as_str()) => p,
        Some(p) => {
            return Err(ApiErr::invalid(
                "purpose",
                format!(
                    "Invalid value for 'purpose': '{p}'. Supported values are: {}.",
                    PURPOSES
                        .iter()
                        .map(|p| format!("'{p}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    };
    let Some(file) = record.files.first() else {
        return Err(ApiErr::missing("file"));
    };
    if purpose == "batch" {
        check_batch_input(&file.bytes, options)?;
    }
    Ok((purpose, file))
}

/// A batch input file: JSONL, within the size and request limits.
fn check_batch_input(bytes: &[u8], options: &BatchOptions) -> Result<(), ApiErr> {
    if bytes.len() > options.max_file_bytes {
        return Err(ApiErr::new(
            400,
            "file_too_large",
            Some("file"),
            format!(
                "File is too large: {} bytes. A batch input file may be at most {} bytes.",
                bytes.len(),
                options.max_file_bytes
            ),
        ));
    }
    let mut count = 0;
    for (line, span) in lines(bytes) {
        let text = &bytes[span];
        if is_blank(text) {
            continue;
        }
        count += 1;
        if serde_json::from_slice::<serde::de::IgnoredAny>(text).is_err() {
            return Err(ApiErr::new(
                400,
                "invalid_file_format",
                Some("file"),
                format!(
                    "Invalid file format for Batch API. Line {line} is not valid JSON: a batch input file must be JSONL, one JSON request per line."
                ),
            ));
        }
    }
    if count > options.max_upload_requests {
        return Err(ApiErr::new(
            400,
            "file_too_large",
            Some("file"),
            format!(
                "The batch input file holds {count} requests; a batch takes at most {}.",
                options.max_upload_requests
            ),
        ));
    }
    Ok(())
}

/// `GET /v1/files/{id}/content`: streamed in frames, a range if one is asked for, cut as
/// [`BatchOptions::download_cuts`] says.
fn download(state: &State, record: &Recorded, id: &str) -> Response<Body> {
    let (content, cut) = {
        let mut inner = state.batches.inner.lock().unwrap();
        let Some(file) = inner.file(id) else {
            return error_response(&no_such_file(id));
        };
        if ["vision", "assistants"].contains(&file.info.purpose.as_str()) {
            return error_response(&ApiErr::new(
                400,
                "invalid_request",
                None,
                format!(
                    "Not allowed to download files of purpose: {}",
                    file.info.purpose
                ),
            ));
        }
        let content = file.content.clone();
        inner.downloads += 1;
        let cut = inner.downloads <= state.options.batch.download_cuts;
        if cut {
            inner.cuts += 1;
        }
        (content, cut)
    };
    let len: usize = content.iter().map(Bytes::len).sum();
    let (status, start, end) = match record.header("range").and_then(|r| parse_range(r, len)) {
        None => (200, 0, len),
        Some(Ok((start, last))) => (206, start, last + 1),
        Some(Err(())) => {
            let mut response = respond(
                416,
                "application/json",
                ApiErr::new(
                    416,
                    "range_not_satisfiable",
                    None,
                    format!("The range asked for is not within the file's {len} bytes."),
                )
                .body()
                .to_string()
                .into_bytes(),
            );
            insert_header(&mut response, "content-range", &format!("bytes */{len}"));
            return response;
        }
    };
    let sending = end - start;
    let chunks = Chunks::new(content, start, if cut { sending / 2 } else { sending });
    let mut response = Response::builder()
        .status(status)
        .header("content-type", "application/octet-stream")
        .header("content-length", sending.to_string())
        .header("accept-ranges", "bytes")
        .body(stream_body(chunks, cut))
        .unwrap();
    if status == 206 {
        insert_header(
            &mut response,
            "content-range",
            &format!("bytes {start}-{}/{len}", end - 1),
        );
    }
    response
}

/// A `Range` header over `len` bytes: `None` to ignore it (not one range of bytes), an error
/// if it cannot be satisfied, else the first and last byte.
pub(super) fn parse_range(header: &str, len: usize) -> Option<Result<(usize, usize), ()>> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        let suffix: usize = last.parse().ok()?;
        if suffix == 0 || len == 0 {
            return Some(Err(()));
        }
        return Some(Ok((len - suffix.min(len), len - 1)));
    }
    let first: usize = first.parse().ok()?;
    let last = if last.is_empty() {
        None
    } else {
        let last: usize = last.parse().ok()?;
        if last < first {
            return None;
        }
        Some(last)
    };
    if first >= len {
        return Some(Err(()));
    }
    Some(Ok((first, last.map_or(len - 1, |l| l.min(len - 1)))))
}

/// The frames a download sends of `len` bytes from `start` of a file held as `parts`: each
/// at most [`FRAME`] bytes, every one but the last exactly that.
pub fn frames(parts: Vec<Bytes>, start: usize, len: usize) -> Vec<Bytes> {
    Chunks::new(parts, start, len).collect()
}

/// `len` bytes from `start` of a file's pieces, as frames of at most [`FRAME`] bytes: a big
/// piece is sliced (no copy), small ones are gathered.
pub(super) struct Chunks {
    parts: Vec<Bytes>,
    idx: usize,
    off: usize,
    left: usize,
}

impl Chunks {
    pub(super) fn new(parts: Vec<Bytes>, start: usize, len: usize) -> Chunks {
        let mut chunks = Chunks {
            parts,
            idx: 0,
            off: 0,
            left: len,
        };
        let mut skip = start;
        while skip > 0 {
            let here = chunks.parts[chunks.idx].len();
            if skip < here {
                chunks.off = skip;
                break;
            }
            skip -= here;
            chunks.idx += 1;
        }
        chunks
    }
}

impl Iterator for Chunks {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        let budget = self.left.min(FRAME);
        if budget == 0 {
            return None;
        }
        let mut single = None;
        let mut gathered = BytesMut::new();
        let mut taken = 0;
        while taken < budget {
            let part = &self.parts[self.idx];
            let available = part.len() - self.off;
            if available == 0 {
                self.idx += 1;
                self.off = 0;
                continue;
            }
            let n = available.min(budget - taken);
            let piece = part.slice(self.off..self.off + n);
            self.off += n;
            if taken == 0 && n == budget {
                single = Some(piece);
            } else {
                gathered.extend_from_slice(&piece);
            }
            taken += n;
        }
        self.left -= taken;
        Some(single.unwrap_or_else(|| gathered.freeze()))
    }
}

/// `POST /v1/batches`.
async fn create(
    state: &State,
    record: &mut Recorded,
    body: &[u8],
) -> Result<Response<Body>, Dropped> {
    let nth = {
        let mut inner = state.batches.inner.lock().unwrap();
        inner.creates += 1;
        inner.creates - 1
    };
    let truncate = match fault(&state.options.batch.create_faults, nth).await {
        Faulted::Answer(answer) => return answer,
        Faulted::Truncate => true,
        Faulted::No => false,
    };
    let content_type = record.header("content-type").unwrap_or("");
    if !content_type.starts_with("application/json") {
        return Ok(error_response(&ApiErr::bad_content_type(content_type)));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => record.fields = map,
        _ => return Ok(error_response(&ApiErr::invalid_json())),
    }
    let mut inner = state.batches.inner.lock().unwrap();
    Ok(match new_batch(&inner, &record.fields) {
        Ok(mut batch) => {
            batch.id = format!("batch_{}", inner.batches.len() + 1);
            let object = batch.object();
            inner.batches.push(batch);
            json_answer(&object, truncate)
        }
        Err(err) => error_response(&err),
    })
}

/// A batch as `fields` asks for it, checked as the service checks them; its id is for the
/// caller to set.
fn new_batch(inner: &Inner, fields: &Map<String, Value>) -> Result<Batch, ApiErr> {
    const FIELDS: &[&str] = &[
        "input_file_id",
        "endpoint",
        "completion_window",
        "metadata",
        "output_expires_after",
    ];
    if let Some(name) = fields.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiErr::unknown(name));
    }
    let string = |name: &str| match fields.get(name) {
        None | Some(Value::Null) => Err(ApiErr::missing(name)),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(ApiErr::invalid(
            name,
            format!("Invalid type for '{name}': expected a string, but got {other}."),
        )),
    };
    let input_file_id = string("input_file_id")?;
    let endpoint = string("endpoint")?;
    let window = string("completion_window")?;
    if !ENDPOINTS.contains(&endpoint.as_str()) {
        return Err(ApiErr::invalid(
            "endpoint",
            format!(
                "Invalid value for 'endpoint': '{endpoint}'. This fake takes batches for '/v1/images/generations' and '/v1/images/edits' only."
            ),
        ));
    }
    if window != "24h" {
        return Err(ApiErr::invalid(
            "completion_window",
            format!(
                "Invalid value for 'completion_window': '{window}'. Supported values are: '24h'."
            ),
        ));
    }
    let metadata = fields.get("metadata").cloned().unwrap_or(Value::Null);
    check_metadata(&metadata)?;
    let file = inner.file(&input_file_id).ok_or_else(|| {
        ApiErr::invalid(
            "input_file_id",
            format!("Invalid 'input_file_id': No such File object: {input_file_id}."),
        )
    })?;
    if file.info.purpose != "batch" {
        return Err(ApiErr::invalid(
            "input_file_id",
            format!(
                "Invalid 'input_file_id': file {input_file_id} has purpose '{}'; a batch's input file must have purpose 'batch'.",
                file.info.purpose
            ),
        ));
    }
    Ok(Batch {
        id: String::new(),
        endpoint,
        input_file_id,
        input: file.content.concat().into(),
        metadata,
        status: Status::Validating,
        polls: 0,
        times: Times {
            created: unix_now(),
            ..Times::default()
        },
        errors: Vec::new(),
        requests: Vec::new(),
        next: 0,
        done: Vec::new(),
        completed: 0,
        failed: 0,
        output_file_id: None,
        error_file_id: None,
    })
}

/// `metadata`: null, or at most 16 string values under keys of at most 64 characters, each
/// value at most 512.
fn check_metadata(metadata: &Value) -> Result<(), ApiErr> {
    let map = match metadata {
        Value::Null => return Ok(()),
        Value::Object(map) => map,
        other => {
            return Err(ApiErr::invalid(
                "metadata",
                format!("Invalid type for 'metadata': expected an object, but got {other}."),
            ));
        }
    };
    if map.len() > 16 {
        return Err(ApiErr::invalid(
            "metadata",
            format!(
                "Invalid 'metadata': too many properties. Expected an object with at most 16 properties, but got an object with {} properties instead.",
                map.len()
            ),
        ));
    }
    for (key, value) in map {
        let ok =
            key.chars().count() <= 64 && value.as_str().is_some_and(|v| v.chars().count() <= 512);
        if !ok {
            return Err(ApiErr::invalid(
                &format!("metadata.{key}"),
                format!(
                    "Invalid 'metadata.{key}': keys are strings of at most 64 characters, values strings of at most 512."
                ),
            ));
        }
    }
    Ok(())
}

/// `GET /v1/batches/{id}`: a poll, which moves the batch on.
async fn poll(state: &State, id: &str) -> Result<Response<Body>, Dropped> {
    let nth = {
        let mut inner = state.batches.inner.lock().unwrap();
        inner.polls += 1;
        inner.polls - 1
    };
    let truncate = match fault(&state.options.batch.poll_faults, nth).await {
        Faulted::Answer(answer) => return answer,
        Faulted::Truncate => true,
        Faulted::No => false,
    };
    let mut inner = state.batches.inner.lock().unwrap();
    let Some(i) = inner.batch_index(id) else {
        return Ok(error_response(&no_such_batch(id)));
    };
    if !state.batches.held.load(Ordering::SeqCst) {
        inner.poll(state, i);
    }
    Ok(json_answer(&inner.batches[i].object(), truncate))
}

/// `GET /v1/batches?limit=N&after=ID`: newest first; not a poll of any batch.
fn list(state: &State, record: &Recorded) -> Result<Value, ApiErr> {
    let limit = match record.query_param("limit") {
        None => 20,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                return Err(ApiErr::invalid(
                    "limit",
                    format!("Invalid 'limit': '{text}'. Expected an integer between 1 and 100."),
                ));
            }
        },
    };
    let inner = state.batches.inner.lock().unwrap();
    let newest_first: Vec<&Batch> = inner.batches.iter().rev().collect();
    let start = match record.query_param("after") {
        None => 0,
        Some(after) => match newest_first.iter().position(|b| b.id == after) {
            Some(at) => at + 1,
            None => {
                return Err(ApiErr::invalid(
                    "after",
                    format!("Invalid 'after': no batch with id '{after}'."),
                ));
            }
        },
    };
    let page: Vec<Value> = newest_first
        .iter()
        .skip(start)
        .take(limit)
        .map(|b| b.object())
        .collect();
    let has_more = start + page.len() < newest_first.len();
    Ok(json!({
        "object": "list",
        "first_id": page.first().map(|b| b["id"].clone()),
        "last_id": page.last().map(|b| b["id"].clone()),
        "has_more": has_more,
        "data": page,
    }))
}

/// A status name, as [`FakeServer::set_batch_status`] takes it.
fn status_named(name: &str) -> Status {
    match name {
        "validating" => Status::Validating,
        "failed" => Status::Failed,
        "in_progress" => Status::InProgress,
        "finalizing" => Status::Finalizing,
        "completed" => Status::Completed,
        "expired" => Status::Expired,
        "cancelling" => Status::Cancelling,
        "cancelled" => Status::Cancelled,
        other => panic!("no batch status {other:?}"),
    }
}

/// The Files and Batches APIs, as tests see them.
impl FakeServer {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.batches.inner.lock().unwrap()
    }

    /// Every batch as `GET /v1/batches/{id}` would show it now (without counting as a poll),
    /// oldest first.
    pub fn batches(&self) -> Vec<Value> {
        self.inner().batches.iter().map(Batch::object).collect()
    }

    /// A batch as `GET /v1/batches/{id}` would show it now, without counting as a poll.
    pub fn batch(&self, id: &str) -> Option<Value> {
        let inner = self.inner();
        inner.batch_index(id).map(|i| inner.batches[i].object())
    }

    /// How many batches `POST /v1/batches` created (refused and faulted calls make none).
    pub fn batches_created(&self) -> usize {
        self.inner().batches.len()
    }

    /// Every batch request that ran, in the order they ran.
    pub fn batch_lines(&self) -> Vec<AnsweredLine> {
        self.inner().answered.clone()
    }

    /// How many batch requests ran, whatever their answer: the images a batch user paid
    /// for are those answered 200 (see [`FakeServer::batch_lines`]).
    pub fn batch_lines_answered(&self) -> usize {
        self.inner().answered.len()
    }

    /// The files uploaded through `POST /v1/files` (deleted ones too), oldest first.
    pub fn uploaded_files(&self) -> Vec<FileInfo> {
        self.inner()
            .files
            .iter()
            .filter(|f| f.info.purpose != "batch_output")
            .map(|f| f.info.clone())
            .collect()
    }

    /// Any file the Files API holds or held, uploaded or made by a batch.
    pub fn file_info(&self, id: &str) -> Option<FileInfo> {
        self.inner()
            .files
            .iter()
            .find(|f| f.info.id == id)
            .map(|f| f.info.clone())
    }

    /// A file's contents; `None` if there is no such file or it was deleted.
    pub fn file_content(&self, id: &str) -> Option<Vec<u8>> {
        self.inner().file(id).map(|f| f.content.concat())
    }

    /// A file's lines parsed as JSON, blank lines skipped; none if there is no such file.
    /// Panics on a line that is not JSON.
    pub fn file_lines(&self, id: &str) -> Vec<Value> {
        let content = self.file_content(id).unwrap_or_default();
        content
            .split(|&b| b == b'\n')
            .filter(|line| !is_blank(line))
            .map(|line| {
                serde_json::from_slice(line).unwrap_or_else(|e| {
                    panic!("{e}: {}", String::from_utf8_lossy(line));
                })
            })
            .collect()
    }

    /// The lines of a batch's output file, in the file's order; none if it has none.
    pub fn output_lines(&self, batch_id: &str) -> Vec<Value> {
        let id = self.batch(batch_id).expect("a batch")["output_file_id"].clone();
        id.as_str()
            .map(|id| self.file_lines(id))
            .unwrap_or_default()
    }

    /// The lines of a batch's error file, in the file's order; none if it has none.
    pub fn error_lines(&self, batch_id: &str) -> Vec<Value> {
        let id = self.batch(batch_id).expect("a batch")["error_file_id"].clone();
        id.as_str()
            .map(|id| self.file_lines(id))
            .unwrap_or_default()
    }

    /// How many downloads of file contents were cut ([`BatchOptions::download_cuts`]).
    pub fn downloads_cut(&self) -> usize {
        self.inner().cuts
    }

    /// Holds every batch in its status (polls are answered but move nothing) until released;
    /// [`FakeServer::advance_all`] and [`FakeServer::set_batch_status`] still work.
    pub fn hold_batches(&self, hold: bool) {
        self.state.batches.held.store(hold, Ordering::SeqCst);
    }

    /// Moves every unfinished batch on one status, whatever the polls: `validating` is
    /// validated, `in_progress` runs all its requests (expiring as
    /// [`BatchOptions::expire_after`] says), `finalizing` completes, `cancelling` is cancelled.
    pub fn advance_all(&self) {
        let mut inner = self.inner();
        for i in 0..inner.batches.len() {
            inner.step(&self.state, i);
        }
    }

    /// Moves one batch on one status, as [`FakeServer::advance_all`] does.
    pub fn advance_batch(&self, id: &str) {
        let mut inner = self.inner();
        let i = inner.batch_index(id).expect("a batch");
        inner.step(&self.state, i);
    }

    /// Puts a batch in `status`, whatever the polls, by the way the service would go there:
    /// `in_progress` validates it; `finalizing` and `completed` also run all its requests
    /// (ignoring [`BatchOptions::expire_after`]); `expired` ends it with the requests that
    /// ran so far; `cancelling` cancels it, and `cancelled` ends the cancelling; `failed`
    /// fails it with no errors. Panics if the batch cannot get there (it failed validation,
    /// or it has already ended otherwise).
    pub fn set_batch_status(&self, id: &str, status: &str) {
        let target = status_named(status);
        let mut inner = self.inner();
        let i = inner.batch_index(id).expect("a batch");
        let state = &*self.state;
        if !matches!(
            target,
            Status::Validating | Status::Failed | Status::Cancelling | Status::Cancelled
        ) && inner.batches[i].status == Status::Validating
        {
            inner.batches[i].validate(&state.options.batch);
        }
        let now = inner.batches[i].status;
        match target {
            _ if now == target => {}
            Status::Failed if !now.is_final() => inner.batches[i].set_status(Status::Failed),
            Status::Finalizing | Status::Completed if now == Status::InProgress => {
                inner.run(state, i, usize::MAX, false);
                if target == Status::Completed {
                    inner.finish(state, i, Status::Completed);
                }
            }
            Status::Completed if now == Status::Finalizing => {
                inner.finish(state, i, Status::Completed);
            }
            Status::Expired if !now.is_final() => inner.finish(state, i, Status::Expired),
            Status::Cancelling | Status::Cancelled if !now.is_final() => {
                inner.cancel(i).expect("cancellable");
                if target == Status::Cancelled {
                    inner.finish(state, i, Status::Cancelled);
                }
            }
            _ => panic!("batch {id} cannot go from {} to {status}", now.as_str()),
        }
    }
}
