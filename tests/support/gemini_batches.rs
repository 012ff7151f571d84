//! The Gemini API's Files API and batch mode in the fake Gemini service.
//!
//! Files: the resumable upload the official SDKs make. `POST /upload/v1beta/files` with
//! `X-Goog-Upload-Protocol: resumable`, `X-Goog-Upload-Command: start`,
//! `X-Goog-Upload-Header-Content-Length` and `-Content-Type`, and a JSON body `{"file":
//! {"display_name": ...}}`, opens a session: the answer's `X-Goog-Upload-URL` names it (a URL
//! on this fake, which needs no key). `POST {upload url}` with `X-Goog-Upload-Command: upload`
//! (or `upload, finalize` for the last chunk) and `X-Goog-Upload-Offset` sends the bytes, in
//! one request or in chunks; `query` tells how much arrived. The finalizing answer is
//! `{"file": File}` with `X-Goog-Upload-Status: final`. A file is then `GET
//! /v1beta/files/{id}` (metadata; `sizeBytes` is a string, as int64s are in proto JSON), listed
//! by `GET /v1beta/files`, and deleted by `DELETE`. Only files the service made (a batch's
//! responses, a `fileData` answer's image) can be downloaded, by `GET
//! /download/v1beta/files/{id}:download?alt=media`, streamed in frames of at most 64 KB with
//! `Range: bytes=...` honoured; an uploaded one is refused, as the SDKs document.
//!
//! Batches: `POST /v1beta/models/{model}:batchGenerateContent` with `{"batch":
//! {"display_name", "input_config": {"file_name": "files/..."}}}` (a JSONL file of `{"key",
//! "request"}` lines) or with the requests inline (`"input_config": {"requests": {"requests":
//! [{"request", "metadata": {"key"}}]}}`) creates a batch and answers the operation `{"name":
//! "batches/...", "metadata": {"@type", "model", "displayName", "state":
//! "BATCH_STATE_PENDING", "batchStats", ...}}`. No time passes in a fake batch: polls (`GET
//! /v1beta/batches/{id}`) move it on, [`GeminiBatchOptions::polls_per_step`] polls in
//! `PENDING` (validated as it leaves: `FAILED` or `RUNNING`) and in `RUNNING` (its lines run, a
//! share at each poll), then `SUCCEEDED` with `done: true`, `metadata.output.responsesFile` and
//! `response.responsesFile` naming the responses file (inline batches:
//! `inlinedResponses.inlinedResponses`). Its lines are `{"key", "response":
//! GenerateContentResponse}` or `{"key", "error": google.rpc.Status}`, out of the input's order
//! by default. `GET /v1beta/batches?pageSize=&pageToken=` lists them newest first as
//! `{"operations", "nextPageToken"}`; `POST /v1beta/batches/{id}:cancel` cancels (answer `{}`);
//! `DELETE` deletes.
//!
//! Each line is judged and answered exactly as a live request to the batch's model would be
//! (`gemini_rules.rs`, the refuse marker, the same answers, padding), by a
//! [`GeminiBatchScript`] if there is one.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use hyper::Response;
use serde_json::{Map, Value, json};

use super::batches::{self, Chunks, OutputOrder};
use super::gemini::{
    self, FakeGemini, GEMINI_BATCH_SEQ_BASE, GeminiAction, GeminiRecorded, GeminiState, JSON,
    Reply, Route, error_response, raw_response,
};
use super::gemini_rules::{self, GoogleError, field, known_fields};
use super::server::{Body, insert_header, respond};

/// The largest file the Files API takes: 2 GB.
pub const MAX_FILE_BYTES: usize = 2 * 1024 * 1024 * 1024;

/// The largest create request with the requests inline: 20 MB.
pub const MAX_INLINE_BATCH_BYTES: usize = 20 * 1024 * 1024;

/// The chunk granularity an upload session announces: 8 MiB, the SDKs' chunk.
pub const UPLOAD_GRANULARITY: usize = 8 * 1024 * 1024;

/// What a [`GeminiBatchScript`] sees of a batch line, once it has passed the rules.
#[derive(Debug, Clone)]
pub struct GeminiBatchLine {
    /// The batch's name, `batches/...`.
    pub batch: String,
    /// The line's `key`.
    pub key: String,
    /// The line in the input file (or the inline request's index), from 1.
    pub line: usize,
    /// Order among all the batch lines this fake ran, from 0.
    pub nth: usize,
    /// The batch's model, without `models/`.
    pub model: String,
    /// The text parts of the request's user contents, joined by newlines.
    pub prompt: String,
    /// The line's `request`.
    pub request: Map<String, Value>,
}

/// Decides what the fake does with each batch line: the answers of a live request, written
/// into the responses file. [`GeminiAction::Error`] gives an `error` line with that status's
/// google.rpc code; [`GeminiAction::Drop`], [`GeminiAction::MalformedJson`] and
/// [`GeminiAction::Raw`], which have no meaning inside a file, give a `13` (`INTERNAL`) line;
/// [`GeminiAction::Truncate`] and [`GeminiAction::Delay`] answer normally.
pub type GeminiBatchScript = Arc<dyn Fn(&GeminiBatchLine) -> GeminiAction + Send + Sync>;

/// How the Files API and batch mode behave ([`GeminiOptions::batch`]).
///
/// [`GeminiOptions::batch`]: super::gemini::GeminiOptions::batch
#[derive(Clone)]
pub struct GeminiBatchOptions {
    /// Polls a batch spends in each of `PENDING` and `RUNNING`; at least 1, the default: each
    /// poll moves a batch on one state. During `RUNNING` the `k`-th poll has run `total * k /
    /// polls_per_step` of its lines.
    pub polls_per_step: usize,
    /// The order of the responses' lines; reversed by default (the service does not keep the
    /// input's order).
    pub order: OutputOrder,
    /// Every batch expires once this many of its lines have run (if it has more):
    /// `BATCH_STATE_EXPIRED`. `None` (the default): batches do not expire.
    pub expire_after: Option<usize>,
    /// An expired or cancelled batch that ran lines names a responses file of those lines (in
    /// `metadata.output`); on by default. Off: it names none.
    pub partial_output: bool,
    /// Decides per line; [`GeminiAction::Answer`] for all by default.
    pub script: Option<GeminiBatchScript>,
    /// The first this many downloads (ranged or not) are cut: the headers and about half the
    /// body, then the connection closes.
    pub download_cuts: usize,
    /// The first upload starts (`POST /upload/v1beta/files`, command `start`) are answered by
    /// these actions, one each: [`GeminiAction::Error`], [`GeminiAction::Raw`],
    /// [`GeminiAction::MalformedJson`] and [`GeminiAction::Drop`] answer instead of the service,
    /// which does nothing; [`GeminiAction::Truncate`] opens the session and then drops the
    /// connection, so the client never learns its URL; [`GeminiAction::Delay`] delays; the
    /// others change nothing.
    pub upload_faults: Vec<GeminiAction>,
    /// The first batch creations are answered by these actions, as for `upload_faults`;
    /// [`GeminiAction::Truncate`] creates the batch and cuts the answer, so a client never
    /// learns its name and must find it by its display name.
    pub create_faults: Vec<GeminiAction>,
    /// The first polls (`GET /v1beta/batches/{id}`, any batch) are answered by these actions,
    /// as for `upload_faults`; a faulted poll does not move its batch on (a truncated one
    /// does).
    pub poll_faults: Vec<GeminiAction>,
    /// The largest file an upload may declare or send; 2 GB by default.
    pub max_file_bytes: usize,
    /// Batches in a page of `GET /v1beta/batches` without `pageSize`; 10 by default.
    pub list_page_size: usize,
}

impl Default for GeminiBatchOptions {
    fn default() -> GeminiBatchOptions {
        GeminiBatchOptions {
            polls_per_step: 1,
            order: OutputOrder::default(),
            expire_after: None,
            partial_output: true,
            script: None,
            download_cuts: 0,
            upload_faults: Vec::new(),
            create_faults: Vec::new(),
            poll_faults: Vec::new(),
            max_file_bytes: MAX_FILE_BYTES,
            list_page_size: 10,
        }
    }
}

/// A file the Files API holds or held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeminiFile {
    /// `files/{id}`.
    pub name: String,
    /// The display name the upload gave it.
    pub display_name: Option<String>,
    /// Its `mimeType`: the upload's `X-Goog-Upload-Header-Content-Type`, or the body's.
    pub mime_type: String,
    /// Its length.
    pub size: usize,
    /// `UPLOADED`, or `GENERATED` for the fake's own (responses files, `fileData` images).
    pub source: String,
    /// Deleted by `DELETE /v1beta/files/{id}`: no longer served, its contents dropped.
    pub deleted: bool,
}

/// A batch line the fake ran (an image "bought" if it has one).
#[derive(Debug, Clone)]
pub struct GeminiAnsweredLine {
    /// The batch's name, `batches/...`.
    pub batch: String,
    /// The line's `key`.
    pub key: String,
    /// Its line in the input file, from 1.
    pub line: usize,
    /// The status name of an `error` line, like `INVALID_ARGUMENT`; `None` for a `response`.
    pub error_status: Option<String>,
    /// The `finishReason` of a response (or `blockReason:X`).
    pub outcome: Option<String>,
    /// The batch's model.
    pub model: String,
    /// The text parts of the request's user contents, joined by newlines.
    pub prompt: String,
    /// The final image its response carries, if any (and if images are recorded).
    pub image: Option<Vec<u8>>,
    /// Thought images its response carries.
    pub thought_images: Vec<Vec<u8>>,
    /// Its response's `usageMetadata`.
    pub usage: Option<Value>,
}

/// The Files API's and batch mode's state, in [`GeminiState`].
#[derive(Default)]
pub(super) struct Store {
    inner: Mutex<Inner>,
    held: AtomicBool,
}

impl Store {
    /// The MIME type of a file held (not deleted), by id.
    pub(super) fn file_mime(&self, id: &str) -> Option<String> {
        self.inner.lock().unwrap().file_mime(id)
    }

    /// Stores a file the service made; its id.
    pub(super) fn add_generated(&self, display: &str, mime: &str, bytes: Vec<u8>) -> String {
        let mut inner = self.inner.lock().unwrap();
        let id = inner.next_file_id("gimg");
        inner.add_file(
            &id,
            Some(display),
            mime,
            "GENERATED",
            vec![Bytes::from(bytes)],
        );
        id
    }
}

#[derive(Default)]
struct Inner {
    files: Vec<StoredFile>,
    sessions: Vec<Session>,
    batches: Vec<Batch>,
    answered: Vec<GeminiAnsweredLine>,
    file_ids: usize,
    starts: usize,
    creates: usize,
    polls: usize,
    downloads: usize,
    cuts: usize,
}

struct StoredFile {
    info: GeminiFile,
    created: String,
    sha256: String,
    content: Vec<Bytes>,
}

/// An upload session.
struct Session {
    id: String,
    display_name: Option<String>,
    mime: String,
    declared: usize,
    received: Vec<Bytes>,
    received_len: usize,
    /// The file's id once finalized.
    file: Option<String>,
    cancelled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BatchState {
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Expired,
}

impl BatchState {
    fn as_str(self) -> &'static str {
        match self {
            BatchState::Pending => "BATCH_STATE_PENDING",
            BatchState::Running => "BATCH_STATE_RUNNING",
            BatchState::Succeeded => "BATCH_STATE_SUCCEEDED",
            BatchState::Failed => "BATCH_STATE_FAILED",
            BatchState::Cancelled => "BATCH_STATE_CANCELLED",
            BatchState::Expired => "BATCH_STATE_EXPIRED",
        }
    }

    fn is_final(self) -> bool {
        !matches!(self, BatchState::Pending | BatchState::Running)
    }

    /// A state by its name or its suffix: `BATCH_STATE_SUCCEEDED`, `JOB_STATE_SUCCEEDED` or
    /// `SUCCEEDED`.
    fn named(name: &str) -> BatchState {
        let suffix = name.rsplit('_').next().unwrap_or(name);
        match suffix {
            "PENDING" => BatchState::Pending,
            "RUNNING" => BatchState::Running,
            "SUCCEEDED" => BatchState::Succeeded,
            "FAILED" => BatchState::Failed,
            "CANCELLED" => BatchState::Cancelled,
            "EXPIRED" => BatchState::Expired,
            other => panic!("no batch state {other:?}"),
        }
    }
}

/// A line of a batch, found by validation.
struct Pending {
    line: usize,
    key: String,
    span: Range<usize>,
}

/// A line that ran: its key and its rendered responses-file line.
struct Done {
    key: String,
    line: Vec<Bytes>,
}

struct Batch {
    /// The id, without `batches/`.
    id: String,
    display_name: Option<String>,
    model: String,
    /// `files/...`; `None` for inline requests.
    input_file: Option<String>,
    /// The requests as JSONL (inline ones written as lines).
    input: Bytes,
    priority: i64,
    state: BatchState,
    /// Polls since it entered its state.
    polls: usize,
    created: String,
    updated: String,
    ended: Option<String>,
    request_count: usize,
    lines: Vec<Pending>,
    next: usize,
    done: Vec<Done>,
    succeeded: usize,
    failed: usize,
    /// The responses file's name, `files/...`.
    output_file: Option<String>,
    /// An inline batch's `inlinedResponses`.
    inline_output: Option<Value>,
    error: Option<GoogleError>,
    deleted: bool,
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// proto JSON's int64: a string; a zero is left out, as proto JSON leaves default values out.
fn int64(map: &mut Map<String, Value>, name: &str, n: usize) {
    if n > 0 {
        map.insert(name.to_owned(), n.to_string().into());
    }
}

impl Batch {
    fn name(&self) -> String {
        format!("batches/{}", self.id)
    }

    /// The operation, as `GET /v1beta/batches/{id}` shows it.
    fn operation(&self) -> Value {
        let mut stats = Map::new();
        int64(&mut stats, "requestCount", self.request_count);
        int64(&mut stats, "successfulRequestCount", self.succeeded);
        int64(&mut stats, "failedRequestCount", self.failed);
        let pending = if self.state.is_final() {
            0
        } else {
            self.request_count
                .saturating_sub(self.succeeded + self.failed)
        };
        int64(&mut stats, "pendingRequestCount", pending);
        let mut metadata = json!({
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
            "model": format!("models/{}", self.model),
            "createTime": self.created,
            "updateTime": self.updated,
            "batchStats": Value::Object(stats),
            "state": self.state.as_str(),
            "name": self.name(),
        });
        if let Some(display) = &self.display_name {
            metadata["displayName"] = display.clone().into();
        }
        if let Some(file) = &self.input_file {
            metadata["inputConfig"] = json!({"fileName": file});
        }
        if self.priority != 0 {
            metadata["priority"] = self.priority.to_string().into();
        }
        if let Some(ended) = &self.ended {
            metadata["endTime"] = ended.clone().into();
        }
        let output = match (&self.output_file, &self.inline_output) {
            (Some(file), _) => Some(json!({"responsesFile": file})),
            (None, Some(inline)) => Some(json!({"inlinedResponses": {"inlinedResponses": inline}})),
            (None, None) => None,
        };
        if let Some(output) = &output {
            metadata["output"] = output.clone();
        }
        let mut operation = json!({"name": self.name(), "metadata": metadata});
        if self.state.is_final() {
            operation["done"] = true.into();
            match (&self.error, output) {
                (Some(error), _) => operation["error"] = error.rpc_status(),
                (None, Some(mut output)) => {
                    output["@type"] = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput".into();
                    operation["response"] = output;
                }
                (None, None) => {}
            }
        }
        operation
    }

    fn set_state(&mut self, state: BatchState) {
        self.state = state;
        self.polls = 0;
        self.updated = now();
        if state.is_final() {
            self.ended = Some(self.updated.clone());
        }
    }

    /// Checks the input's lines as the service does while `PENDING`: to `RUNNING` with the
    /// lines found, or to `FAILED` naming the first bad line.
    fn validate(&mut self) {
        let mut found = Vec::new();
        let mut keys = HashSet::new();
        let mut failure = None;
        for (line, span) in batches::lines(&self.input) {
            let text = &self.input[span.clone()];
            if batches::is_blank(text) {
                continue;
            }
            let why = match serde_json::from_slice::<Value>(text) {
                Ok(Value::Object(map)) => match (map.get("key"), map.get("request")) {
                    (Some(Value::String(key)), Some(Value::Object(_))) if !key.is_empty() => {
                        if keys.insert(key.clone()) {
                            found.push(Pending {
                                line,
                                key: key.clone(),
                                span,
                            });
                            None
                        } else {
                            Some(format!("the key \"{key}\" is used by another line"))
                        }
                    }
                    (_, Some(Value::Object(_))) => {
                        Some("the line has no \"key\" string".to_owned())
                    }
                    _ => Some("the line has no \"request\" object".to_owned()),
                },
                Ok(_) => Some("the line is not a JSON object".to_owned()),
                Err(_) => Some("the line is not valid JSON".to_owned()),
            };
            if let Some(why) = why {
                failure = Some(format!("Invalid input at line {line}: {why}."));
                break;
            }
        }
        if failure.is_none() && found.is_empty() {
            failure = Some("The batch input has no requests.".to_owned());
        }
        match failure {
            Some(message) => {
                self.error = Some(GoogleError::invalid(&message));
                self.set_state(BatchState::Failed);
            }
            None => {
                self.request_count = found.len();
                self.lines = found;
                self.set_state(BatchState::Running);
            }
        }
    }
}

/// A responses-file line for `key`: `{"key", "response": body}` with `body` spliced in whole.
fn response_line(key: &str, body: Vec<Bytes>) -> Vec<Bytes> {
    let head = format!("{{\"key\":{},\"response\":", Value::String(key.to_owned()));
    let mut parts = Vec::with_capacity(body.len() + 2);
    parts.push(Bytes::from(head));
    parts.extend(body);
    parts.push(Bytes::from_static(b"}\n"));
    parts
}

/// A responses-file line for `key` with an `error`.
fn error_line(key: &str, error: &GoogleError) -> Vec<Bytes> {
    let line = json!({"key": key, "error": error.rpc_status()});
    vec![Bytes::from(format!("{line}\n"))]
}

impl Inner {
    fn file(&self, id: &str) -> Option<&StoredFile> {
        self.files
            .iter()
            .find(|f| f.info.name == format!("files/{id}") && !f.info.deleted)
    }

    fn file_mime(&self, id: &str) -> Option<String> {
        self.file(id).map(|f| f.info.mime_type.clone())
    }

    fn next_file_id(&mut self, prefix: &str) -> String {
        self.file_ids += 1;
        format!("{prefix}-{:04}", self.file_ids)
    }

    fn add_file(
        &mut self,
        id: &str,
        display: Option<&str>,
        mime: &str,
        source: &str,
        content: Vec<Bytes>,
    ) -> GeminiFile {
        use sha2::Digest as _;
        let mut hasher = sha2::Sha256::new();
        for part in &content {
            hasher.update(part);
        }
        let hex: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let info = GeminiFile {
            name: format!("files/{id}"),
            display_name: display.map(str::to_owned),
            mime_type: mime.to_owned(),
            size: content.iter().map(Bytes::len).sum(),
            source: source.to_owned(),
            deleted: false,
        };
        self.files.push(StoredFile {
            info: info.clone(),
            created: now(),
            // The service's sha256Hash is the base64 of the hex digest.
            sha256: STANDARD.encode(hex),
            content,
        });
        info
    }

    fn batch_index(&self, id: &str) -> Option<usize> {
        let id = id.strip_prefix("batches/").unwrap_or(id);
        self.batches.iter().position(|b| b.id == id && !b.deleted)
    }

    /// Runs batch `i`'s line `k` as a live request to its model would be answered.
    fn answer_line(&mut self, state: &GeminiState, i: usize, k: usize) -> Done {
        let nth = self.answered.len();
        let batch = &self.batches[i];
        let pending = &batch.lines[k];
        let key = pending.key.clone();
        let line_no = pending.line;
        let batch_name = batch.name();
        let model_name = batch.model.clone();
        let mut line: Map<String, Value> =
            serde_json::from_slice(&batch.input[pending.span.clone()]).expect("validated");
        let Some(Value::Object(request)) = line.remove("request") else {
            unreachable!("validated")
        };
        let prompt = gemini::prompt_of(&Value::Object(request.clone()));
        let mut answered = GeminiAnsweredLine {
            batch: batch_name.clone(),
            key: key.clone(),
            line: line_no,
            error_status: None,
            outcome: None,
            model: model_name.clone(),
            prompt: prompt.clone(),
            image: None,
            thought_images: Vec::new(),
            usage: None,
        };
        let refuse = |inner: &mut Inner, mut answered: GeminiAnsweredLine, err: GoogleError| {
            answered.error_status = Some(err.status.clone());
            inner.answered.push(answered);
            Done {
                key: key.clone(),
                line: error_line(&key, &err),
            }
        };
        let Some(model) = state.model(&model_name) else {
            let err = GoogleError::model_not_found(&model_name, "batchGenerateContent");
            return refuse(self, answered, err);
        };
        if let Some(m) = field(&request, "model") {
            let m = m.as_str().unwrap_or_default();
            if m.strip_prefix("models/").unwrap_or(m) != model_name {
                let err = GoogleError::invalid(&format!(
                    "The request's model {m} differs from the batch's model models/{model_name}."
                ));
                return refuse(self, answered, err);
            }
        }
        let checked = match gemini_rules::check_request(&model, &request, |id| self.file_mime(id)) {
            Ok(checked) => checked,
            Err(err) => return refuse(self, answered, err),
        };
        let action = match &state.options.batch.script {
            Some(script) => script(&GeminiBatchLine {
                batch: batch_name,
                key: key.clone(),
                line: line_no,
                nth,
                model: model_name,
                prompt: checked.prompt.clone(),
                request,
            }),
            None => GeminiAction::Answer,
        };
        let action = gemini::with_marker(state, action, &checked.prompt);
        let seq = GEMINI_BATCH_SEQ_BASE + nth as u64 + 1;
        let made = gemini::answer(
            state,
            &model,
            &checked,
            &action,
            seq,
            &mut |name, mime, bytes| {
                let id = self.next_file_id("gimg");
                self.add_file(&id, Some(name), mime, "GENERATED", vec![Bytes::from(bytes)]);
                id
            },
        );
        answered.outcome = made.outcome;
        answered.usage = made.usage;
        answered.image = made.image;
        answered.thought_images = made.thought_images;
        match made.result {
            Ok(body) => {
                self.answered.push(answered);
                Done {
                    key: key.clone(),
                    line: response_line(&key, body),
                }
            }
            Err(err) => refuse(self, answered, err),
        }
    }

    /// Runs up to `count` more of batch `i`'s lines. With `expiry`, the batch expires once
    /// [`GeminiBatchOptions::expire_after`] of them have run; it succeeds once all have.
    fn run(&mut self, state: &GeminiState, i: usize, count: usize, expiry: bool) {
        let total = self.batches[i].lines.len();
        let limit = match (expiry, state.options.batch.expire_after) {
            (true, Some(m)) => m.min(total),
            _ => total,
        };
        let start = self.batches[i].next;
        let end = start.saturating_add(count).min(limit).max(start);
        for k in start..end {
            let done = self.answer_line(state, i, k);
            let ok = self
                .answered
                .last()
                .is_some_and(|a| a.error_status.is_none());
            let batch = &mut self.batches[i];
            batch.done.push(done);
            if ok {
                batch.succeeded += 1;
            } else {
                batch.failed += 1;
            }
            batch.next = k + 1;
            batch.updated = now();
        }
        let next = self.batches[i].next;
        if next == limit && limit < total {
            self.finish(state, i, BatchState::Expired);
        } else if next == total {
            self.finish(state, i, BatchState::Succeeded);
        }
    }

    /// Ends batch `i` in `state` (`SUCCEEDED`, `EXPIRED` or `CANCELLED`) with the lines that
    /// ran, in the configured order.
    fn finish(&mut self, gemini: &GeminiState, i: usize, end: BatchState) {
        let mut done = std::mem::take(&mut self.batches[i].done);
        match gemini.options.batch.order {
            OutputOrder::InOrder => {}
            OutputOrder::Reversed => done.reverse(),
            OutputOrder::Shuffled(seed) => fastrand::Rng::with_seed(seed).shuffle(&mut done),
        }
        let keep = !done.is_empty()
            && (end == BatchState::Succeeded || gemini.options.batch.partial_output);
        if keep {
            if self.batches[i].input_file.is_some() {
                let id = format!("batch-{}", self.batches[i].id);
                let content: Vec<Bytes> = done.into_iter().flat_map(|d| d.line).collect();
                self.add_file(
                    &id,
                    Some(&format!("{}-responses.jsonl", self.batches[i].id)),
                    "application/jsonl",
                    "GENERATED",
                    content,
                );
                self.batches[i].output_file = Some(format!("files/{id}"));
            } else {
                let inline: Vec<Value> = done
                    .into_iter()
                    .map(|d| {
                        let text = d.line.concat();
                        let mut line: Map<String, Value> =
                            serde_json::from_slice(&text).expect("a line is JSON");
                        line.remove("key");
                        line.insert("metadata".into(), json!({"key": d.key}));
                        Value::Object(line)
                    })
                    .collect();
                self.batches[i].inline_output = Some(Value::Array(inline));
            }
        }
        let batch = &mut self.batches[i];
        batch.error = match end {
            BatchState::Expired => Some(GoogleError::new(
                504,
                "DEADLINE_EXCEEDED",
                "Batch expired after 48 hours.",
            )),
            BatchState::Cancelled => Some(GoogleError::new(
                499,
                "CANCELLED",
                "The batch was cancelled.",
            )),
            _ => None,
        };
        batch.set_state(end);
    }

    /// A poll of batch `i`: it moves on as [`GeminiBatchOptions::polls_per_step`] says.
    fn poll(&mut self, state: &GeminiState, i: usize) {
        let per_step = state.options.batch.polls_per_step.max(1);
        let batch = &mut self.batches[i];
        batch.polls += 1;
        let polls = batch.polls;
        match batch.state {
            BatchState::Pending if polls >= per_step => batch.validate(),
            BatchState::Running => {
                let total = batch.lines.len();
                let target = if polls >= per_step {
                    total
                } else {
                    total * polls / per_step
                };
                let count = target.saturating_sub(batch.next);
                self.run(state, i, count, true);
            }
            _ => {}
        }
    }

    /// Moves batch `i` on one state, whatever the polls.
    fn step(&mut self, state: &GeminiState, i: usize) {
        match self.batches[i].state {
            BatchState::Pending => self.batches[i].validate(),
            BatchState::Running => self.run(state, i, usize::MAX, true),
            _ => {}
        }
    }
}

/// What a fault action does to a call.
enum Faulted {
    /// Nothing: the call goes on.
    No,
    /// The call goes on, and its answer is cut.
    Truncate,
    /// This instead of the call.
    Answer(Reply),
}

/// The `nth` fault of `faults`, applied.
async fn fault(faults: &[GeminiAction], nth: usize) -> Faulted {
    match faults.get(nth) {
        Some(GeminiAction::Delay(d)) => {
            tokio::time::sleep(*d).await;
            Faulted::No
        }
        Some(GeminiAction::Drop) => Faulted::Answer(Reply::Dropped),
        Some(GeminiAction::Truncate) => Faulted::Truncate,
        Some(GeminiAction::MalformedJson) => Faulted::Answer(Reply::Response(respond(
            200,
            JSON,
            b"{\"name\": \"batches/".to_vec(),
        ))),
        Some(GeminiAction::Error(err)) => Faulted::Answer(Reply::Response(error_response(err))),
        Some(GeminiAction::Raw {
            status,
            headers,
            body,
        }) => Faulted::Answer(Reply::Response(raw_response(*status, headers, body))),
        _ => Faulted::No,
    }
}

/// `value` as a `200`, its length announced and about half of it sent before the connection
/// closes.
fn cut_json(value: &Value) -> Reply {
    let body = value.to_string().into_bytes();
    let len = body.len();
    let half = Chunks::new(vec![Bytes::from(body)], 0, len / 2);
    Reply::Response(
        Response::builder()
            .status(200)
            .header("content-type", JSON)
            .header("content-length", len.to_string())
            .body(batches::stream_body(half, true))
            .unwrap(),
    )
}

/// The outcome of a Files or batches call: a JSON value or an error, or an answer of its own.
type Outcome = Result<Result<Value, GoogleError>, Reply>;

/// Answers a request to the Files API or batch mode; the key has been checked (an upload
/// session needs none).
pub(super) async fn handle(
    state: &GeminiState,
    route: &Route<'_>,
    record: &mut GeminiRecorded,
    body: Bytes,
) -> Outcome {
    match route {
        Route::UploadStart => upload_start(state, record).await,
        Route::UploadSession(id) => Err(upload_chunk(state, record, id, body)),
        Route::Files => Ok(list_files(state, record)),
        Route::File(id) if record.method == "DELETE" => {
            let mut inner = state.store.inner.lock().unwrap();
            let name = format!("files/{id}");
            Ok(
                match inner
                    .files
                    .iter_mut()
                    .find(|f| f.info.name == name && !f.info.deleted)
                {
                    Some(file) => {
                        file.info.deleted = true;
                        file.content = Vec::new();
                        Ok(json!({}))
                    }
                    None => Err(GoogleError::file_not_found(id)),
                },
            )
        }
        Route::File(id) => {
            let inner = state.store.inner.lock().unwrap();
            Ok(inner
                .file(id)
                .map(|f| file_object(state, f))
                .ok_or_else(|| GoogleError::file_not_found(id)))
        }
        Route::Download(id) => Err(Reply::Response(download(state, record, id))),
        Route::BatchCreate(model) => create(state, record, model).await,
        Route::Batches => Ok(list_batches(state, record)),
        Route::Batch(id) if record.method == "DELETE" => {
            let mut inner = state.store.inner.lock().unwrap();
            Ok(match inner.batch_index(id) {
                Some(i) => {
                    inner.batches[i].deleted = true;
                    Ok(json!({}))
                }
                None => Err(GoogleError::batch_not_found(&format!("batches/{id}"))),
            })
        }
        Route::Batch(id) => poll(state, id).await,
        Route::BatchCancel(id) => Ok(cancel(state, id)),
        _ => unreachable!("not a Files or batches route"),
    }
}

/// A `File` resource.
fn file_object(state: &GeminiState, file: &StoredFile) -> Value {
    let info = &file.info;
    let id = info.name.trim_start_matches("files/");
    let expires = file
        .created
        .parse::<jiff::Timestamp>()
        .ok()
        .and_then(|t| t.checked_add(jiff::SignedDuration::from_hours(48)).ok())
        .map(|t| t.to_string());
    let mut object = json!({
        "name": info.name,
        "mimeType": info.mime_type,
        "sizeBytes": info.size.to_string(),
        "createTime": file.created,
        "updateTime": file.created,
        "expirationTime": expires,
        "sha256Hash": file.sha256,
        "uri": format!("{}/v1beta/files/{id}", state.base()),
        "state": "ACTIVE",
        "source": info.source,
    });
    if let Some(display) = &info.display_name {
        object["displayName"] = display.clone().into();
    }
    if info.source == "GENERATED" {
        object["downloadUri"] = format!(
            "{}/download/v1beta/files/{id}:download?alt=media",
            state.base()
        )
        .into();
    }
    object
}

/// A page token: where the next page starts.
fn page_token(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("genimg-fake-offset:{offset}"))
}

/// The page `pageSize` and `pageToken` ask for: its start and length.
fn page(record: &GeminiRecorded, default: usize) -> Result<(usize, usize), GoogleError> {
    let size = match record.query_param("pageSize") {
        None => default.max(1),
        Some(text) => match text.parse::<usize>() {
            Ok(0) => default.max(1),
            Ok(n) => n.min(1000),
            Err(_) => {
                return Err(GoogleError::bad_value(
                    "page_size",
                    "TYPE_INT32",
                    &Value::String(text),
                ));
            }
        },
    };
    let start = match record.query_param("pageToken") {
        None => 0,
        Some(token) if token.is_empty() => 0,
        Some(token) => URL_SAFE_NO_PAD
            .decode(&token)
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|text| {
                text.strip_prefix("genimg-fake-offset:")
                    .and_then(|n| n.parse().ok())
            })
            .ok_or_else(|| GoogleError::invalid("Invalid page token."))?,
    };
    Ok((start, size))
}

/// `GET /v1beta/files`: newest first.
fn list_files(state: &GeminiState, record: &GeminiRecorded) -> Result<Value, GoogleError> {
    let (start, size) = page(record, 10)?;
    let inner = state.store.inner.lock().unwrap();
    let all: Vec<&StoredFile> = inner
        .files
        .iter()
        .rev()
        .filter(|f| !f.info.deleted)
        .collect();
    let files: Vec<Value> = all
        .iter()
        .skip(start)
        .take(size)
        .map(|f| file_object(state, f))
        .collect();
    let mut answer = json!({});
    if !files.is_empty() {
        answer["files"] = Value::Array(files);
    }
    if start + size < all.len() {
        answer["nextPageToken"] = page_token(start + size).into();
    }
    Ok(answer)
}

/// `POST /upload/v1beta/files` with `X-Goog-Upload-Command: start`: opens a session.
async fn upload_start(state: &GeminiState, record: &GeminiRecorded) -> Outcome {
    let nth = {
        let mut inner = state.store.inner.lock().unwrap();
        inner.starts += 1;
        inner.starts - 1
    };
    let truncate = match fault(&state.options.batch.upload_faults, nth).await {
        Faulted::Answer(reply) => return Err(reply),
        Faulted::Truncate => true,
        Faulted::No => false,
    };
    let header = |name: &str| record.header(name).map(str::trim);
    if !header("x-goog-upload-protocol").is_some_and(|p| p.eq_ignore_ascii_case("resumable")) {
        return Ok(Err(GoogleError::invalid(
            "This fake takes resumable uploads only: send X-Goog-Upload-Protocol: resumable.",
        )));
    }
    if !header("x-goog-upload-command").is_some_and(|c| c.eq_ignore_ascii_case("start")) {
        return Ok(Err(GoogleError::invalid(
            "A resumable upload starts with X-Goog-Upload-Command: start.",
        )));
    }
    let declared = match header("x-goog-upload-header-content-length").map(str::parse::<usize>) {
        Some(Ok(n)) => n,
        _ => {
            return Ok(Err(GoogleError::invalid(
                "X-Goog-Upload-Header-Content-Length must give the file's length in bytes.",
            )));
        }
    };
    if declared > state.options.batch.max_file_bytes {
        return Ok(Err(GoogleError::invalid(&format!(
            "The file is too large: {declared} bytes; the Files API takes at most {} bytes.",
            state.options.batch.max_file_bytes
        ))));
    }
    // The body: nothing, or `{"file": {...}}`.
    let mut display_name = None;
    let mut mime = header("x-goog-upload-header-content-type").map(str::to_owned);
    match &record.body {
        Value::Null if record.body_len == 0 => {}
        Value::Object(body) => {
            if let Err(err) = known_fields(body, &["file"], "") {
                return Ok(Err(err));
            }
            if let Some(file) = field(body, "file") {
                let Some(file) = file.as_object() else {
                    return Ok(Err(GoogleError::bad_value(
                        "file",
                        "type.googleapis.com/google.ai.generativelanguage.v1beta.File",
                        file,
                    )));
                };
                if let Err(err) = known_fields(
                    file,
                    &["name", "displayName", "mimeType", "sizeBytes"],
                    "file",
                ) {
                    return Ok(Err(err));
                }
                display_name = field(file, "displayName")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if mime.is_none() {
                    mime = field(file, "mimeType")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                }
            }
        }
        _ => return Ok(Err(GoogleError::not_json())),
    }
    let id = {
        let mut inner = state.store.inner.lock().unwrap();
        let id = format!("gsession-{}", inner.sessions.len() + 1);
        inner.sessions.push(Session {
            id: id.clone(),
            display_name,
            mime: mime.unwrap_or_else(|| "application/octet-stream".to_owned()),
            declared,
            received: Vec::new(),
            received_len: 0,
            file: None,
            cancelled: false,
        });
        id
    };
    if truncate {
        return Err(Reply::Dropped);
    }
    let url = format!(
        "{}/upload/v1beta/files?upload_id={id}&upload_protocol=resumable",
        state.base()
    );
    let mut response = respond(200, "text/plain; charset=utf-8", Vec::new());
    insert_header(&mut response, "x-goog-upload-url", &url);
    insert_header(&mut response, "x-goog-upload-control-url", &url);
    insert_header(&mut response, "x-goog-upload-status", "active");
    insert_header(
        &mut response,
        "x-goog-upload-chunk-granularity",
        &UPLOAD_GRANULARITY.to_string(),
    );
    Err(Reply::Response(response))
}

/// An answer on an upload session, with its status and how much arrived.
fn session_answer(
    status: u16,
    upload_status: &str,
    received: usize,
    body: Option<Value>,
) -> Response<Body> {
    let mut response = match body {
        Some(body) => respond(status, JSON, body.to_string().into_bytes()),
        None => respond(status, "text/plain; charset=utf-8", Vec::new()),
    };
    insert_header(&mut response, "x-goog-upload-status", upload_status);
    insert_header(
        &mut response,
        "x-goog-upload-size-received",
        &received.to_string(),
    );
    response
}

/// `POST {upload url}`: `upload`, `upload, finalize`, `finalize`, `query` or `cancel`.
fn upload_chunk(state: &GeminiState, record: &GeminiRecorded, id: &str, body: Bytes) -> Reply {
    let commands: Vec<String> = record
        .header("x-goog-upload-command")
        .unwrap_or("")
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .collect();
    let has = |c: &str| commands.iter().any(|x| x == c);
    let mut inner = state.store.inner.lock().unwrap();
    let Some(at) = inner.sessions.iter().position(|s| s.id == id) else {
        let err = GoogleError::new(404, "NOT_FOUND", "No such upload session.");
        return Reply::Response(error_response(&err));
    };
    let session = &inner.sessions[at];
    if session.cancelled {
        return Reply::Response(session_answer(499, "cancelled", session.received_len, None));
    }
    if let Some(file) = session.file.clone() {
        // Finalized already: the same file again, as a retried finalize gets it.
        let received = session.received_len;
        let id = file.trim_start_matches("files/").to_owned();
        let object = inner
            .file(&id)
            .map(|f| json!({"file": file_object(state, f)}));
        return Reply::Response(session_answer(200, "final", received, object));
    }
    if has("query") {
        return Reply::Response(session_answer(200, "active", session.received_len, None));
    }
    if has("cancel") {
        let received = session.received_len;
        inner.sessions[at].cancelled = true;
        return Reply::Response(session_answer(200, "cancelled", received, None));
    }
    if !has("upload") && !has("finalize") {
        let err = GoogleError::invalid(
            "X-Goog-Upload-Command must be upload, finalize, query or cancel.",
        );
        return Reply::Response(error_response(&err));
    }
    if has("upload") {
        let offset = record
            .header("x-goog-upload-offset")
            .and_then(|o| o.trim().parse::<usize>().ok());
        if offset != Some(session.received_len) {
            let err = GoogleError::invalid(&format!(
                "X-Goog-Upload-Offset is {offset:?}; the session has received {} bytes.",
                session.received_len
            ));
            let mut response = error_response(&err);
            insert_header(&mut response, "x-goog-upload-status", "active");
            insert_header(
                &mut response,
                "x-goog-upload-size-received",
                &session.received_len.to_string(),
            );
            return Reply::Response(response);
        }
        let session = &mut inner.sessions[at];
        session.received_len += body.len();
        session.received.push(body);
    }
    let session = &inner.sessions[at];
    if session.received_len > state.options.batch.max_file_bytes.min(session.declared) {
        let err = GoogleError::invalid(&format!(
            "The upload is longer than the {} bytes declared in X-Goog-Upload-Header-Content-Length.",
            session.declared
        ));
        return Reply::Response(error_response(&err));
    }
    if !has("finalize") {
        return Reply::Response(session_answer(200, "active", session.received_len, None));
    }
    if session.received_len != session.declared {
        let err = GoogleError::invalid(&format!(
            "The upload has {} bytes; X-Goog-Upload-Header-Content-Length declared {}.",
            session.received_len, session.declared
        ));
        return Reply::Response(error_response(&err));
    }
    let display = session.display_name.clone();
    let mime = session.mime.clone();
    let content = std::mem::take(&mut inner.sessions[at].received);
    let received = inner.sessions[at].received_len;
    let file_id = inner.next_file_id("gfile");
    inner.add_file(&file_id, display.as_deref(), &mime, "UPLOADED", content);
    inner.sessions[at].file = Some(format!("files/{file_id}"));
    let object = json!({"file": file_object(state, inner.file(&file_id).expect("just added"))});
    Reply::Response(session_answer(200, "final", received, Some(object)))
}

/// `GET /download/v1beta/files/{id}:download?alt=media`: a generated file's bytes, streamed
/// in frames, a range if one is asked for, cut as [`GeminiBatchOptions::download_cuts`] says.
fn download(state: &GeminiState, record: &GeminiRecorded, id: &str) -> Response<Body> {
    if record.query_param("alt").as_deref() != Some("media") {
        return error_response(&GoogleError::invalid(
            "A download asks for the file's bytes with alt=media.",
        ));
    }
    let (content, mime, cut) = {
        let mut inner = state.store.inner.lock().unwrap();
        let Some(file) = inner.file(id) else {
            return error_response(&GoogleError::file_not_found(id));
        };
        if file.info.source != "GENERATED" {
            return error_response(&GoogleError::invalid(&format!(
                "File files/{id} cannot be downloaded: only files the service generated can be (an uploaded file's source is UPLOADED)."
            )));
        }
        let content = file.content.clone();
        let mime = file.info.mime_type.clone();
        inner.downloads += 1;
        let cut = inner.downloads <= state.options.batch.download_cuts;
        if cut {
            inner.cuts += 1;
        }
        (content, mime, cut)
    };
    let len: usize = content.iter().map(Bytes::len).sum();
    let (status, start, end) = match record
        .header("range")
        .and_then(|r| batches::parse_range(r, len))
    {
        None => (200, 0, len),
        Some(Ok((start, last))) => (206, start, last + 1),
        Some(Err(())) => {
            let err = GoogleError::new(
                416,
                "OUT_OF_RANGE",
                &format!("The range asked for is not within the file's {len} bytes."),
            );
            let mut response = error_response(&err);
            insert_header(&mut response, "content-range", &format!("bytes */{len}"));
            return response;
        }
    };
    let sending = end - start;
    let chunks = Chunks::new(content, start, if cut { sending / 2 } else { sending });
    let mut response = Response::builder()
        .status(status)
        .header("content-type", mime)
        .header("content-length", sending.to_string())
        .header("accept-ranges", "bytes")
        .body(batches::stream_body(chunks, cut))
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

/// `POST /v1beta/models/{model}:batchGenerateContent`.
async fn create(state: &GeminiState, record: &GeminiRecorded, model: &str) -> Outcome {
    let nth = {
        let mut inner = state.store.inner.lock().unwrap();
        inner.creates += 1;
        inner.creates - 1
    };
    let truncate = match fault(&state.options.batch.create_faults, nth).await {
        Faulted::Answer(reply) => return Err(reply),
        Faulted::Truncate => true,
        Faulted::No => false,
    };
    if state.model(model).is_none() {
        return Ok(Err(GoogleError::model_not_found(
            model,
            "batchGenerateContent",
        )));
    }
    let mut inner = state.store.inner.lock().unwrap();
    let batch = match new_batch(&inner, record, model) {
        Ok(batch) => batch,
        Err(err) => return Ok(Err(err)),
    };
    let mut batch = batch;
    batch.id = format!("gbatch-{}", inner.batches.len() + 1);
    let operation = batch.operation();
    inner.batches.push(batch);
    if truncate {
        return Err(cut_json(&operation));
    }
    Ok(Ok(operation))
}

/// A batch as the create request asks for it, checked as the service checks it; its id is
/// for the caller to set.
fn new_batch(inner: &Inner, record: &GeminiRecorded, model: &str) -> Result<Batch, GoogleError> {
    const REQUEST: &str = "BatchGenerateContentRequest";
    let Value::Object(body) = &record.body else {
        return Err(GoogleError::not_json());
    };
    known_fields(body, &["batch"], "")?;
    let Some(batch) = field(body, "batch") else {
        return Err(GoogleError::request_field(
            REQUEST,
            "batch",
            "batch is required",
        ));
    };
    let Some(batch) = batch.as_object() else {
        return Err(GoogleError::bad_value(
            "batch",
            "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch",
            batch,
        ));
    };
    known_fields(
        batch,
        &["displayName", "inputConfig", "model", "priority", "name"],
        "batch",
    )?;
    if let Some(m) = field(batch, "model") {
        let m = m.as_str().unwrap_or_default();
        if m.strip_prefix("models/").unwrap_or(m) != model {
            return Err(GoogleError::request_field(
                REQUEST,
                "batch.model",
                &format!("the batch's model {m} differs from the URL's models/{model}"),
            ));
        }
    }
    let display_name = match field(batch, "displayName") {
        None => None,
        Some(Value::String(name)) => Some(name.clone()),
        Some(other) => {
            return Err(GoogleError::bad_value(
                "batch.display_name",
                "TYPE_STRING",
                other,
            ));
        }
    };
    let priority = match field(batch, "priority") {
        None => 0,
        Some(p) => match p {
            Value::Number(n) if n.is_i64() => n.as_i64().unwrap(),
            Value::String(s) if s.parse::<i64>().is_ok() => s.parse().unwrap(),
            other => {
                return Err(GoogleError::bad_value(
                    "batch.priority",
                    "TYPE_INT64",
                    other,
                ));
            }
        },
    };
    let Some(config) = field(batch, "inputConfig") else {
        return Err(GoogleError::request_field(
            REQUEST,
            "batch.input_config",
            "input_config is required",
        ));
    };
    let Some(config) = config.as_object() else {
        return Err(GoogleError::bad_value(
            "batch.input_config",
            "type.googleapis.com/google.ai.generativelanguage.v1beta.InputConfig",
            config,
        ));
    };
    known_fields(config, &["fileName", "requests"], "batch.input_config")?;
    let (input_file, input) = match (field(config, "fileName"), field(config, "requests")) {
        (Some(name), None) => {
            let Some(name) = name.as_str() else {
                return Err(GoogleError::bad_value(
                    "batch.input_config.file_name",
                    "TYPE_STRING",
                    name,
                ));
            };
            let id = name.strip_prefix("files/").unwrap_or(name);
            let file = inner
                .file(id)
                .ok_or_else(|| GoogleError::file_not_found(id))?;
            (
                Some(format!("files/{id}")),
                Bytes::from(file.content.concat()),
            )
        }
        (None, Some(requests)) => {
            if record.body_len > MAX_INLINE_BATCH_BYTES {
                return Err(GoogleError::payload_too_large(MAX_INLINE_BATCH_BYTES));
            }
            (None, inline_input(requests)?)
        }
        (None, None) => {
            return Err(GoogleError::request_field(
                REQUEST,
                "batch.input_config",
                "one of file_name and requests is required",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(GoogleError::invalid(
                "Invalid JSON payload received. Oneof field 'source' is already set. Cannot set 'requests'",
            ));
        }
    };
    let request_count = batches::lines(&input)
        .filter(|(_, span)| !batches::is_blank(&input[span.clone()]))
        .count();
    let created = now();
    Ok(Batch {
        id: String::new(),
        display_name,
        model: model.to_owned(),
        input_file,
        input,
        priority,
        state: BatchState::Pending,
        polls: 0,
        created: created.clone(),
        updated: created,
        ended: None,
        request_count,
        lines: Vec::new(),
        next: 0,
        done: Vec::new(),
        succeeded: 0,
        failed: 0,
        output_file: None,
        inline_output: None,
        error: None,
        deleted: false,
    })
}

/// Inline requests (`{"requests": [{"request", "metadata": {"key"}}]}`) written as the JSONL
/// lines a file would hold; a request without a key is keyed by its index.
fn inline_input(requests: &Value) -> Result<Bytes, GoogleError> {
    let at = "batch.input_config.requests";
    let Some(requests) = requests.as_object() else {
        return Err(GoogleError::bad_value(at, "TYPE_MESSAGE", requests));
    };
    known_fields(requests, &["requests"], at)?;
    let list = match field(requests, "requests") {
        Some(Value::Array(list)) => list,
        Some(other) => return Err(GoogleError::bad_value(at, "TYPE_MESSAGE", other)),
        None => return Ok(Bytes::new()),
    };
    let mut out = String::new();
    for (i, item) in list.iter().enumerate() {
        let path = format!("{at}.requests[{i}]");
        let Some(item) = item.as_object() else {
            return Err(GoogleError::bad_value(&path, "TYPE_MESSAGE", item));
        };
        known_fields(item, &["request", "metadata"], &path)?;
        let request = field(item, "request").cloned().unwrap_or(Value::Null);
        let key = field(item, "metadata")
            .and_then(Value::as_object)
            .and_then(|m| field(m, "key"))
            .and_then(Value::as_str)
            .map_or_else(|| i.to_string(), str::to_owned);
        out.push_str(&json!({"key": key, "request": request}).to_string());
        out.push('\n');
    }
    Ok(Bytes::from(out))
}

/// `GET /v1beta/batches/{id}`: a poll, which moves the batch on.
async fn poll(state: &GeminiState, id: &str) -> Outcome {
    let nth = {
        let mut inner = state.store.inner.lock().unwrap();
        inner.polls += 1;
        inner.polls - 1
    };
    let truncate = match fault(&state.options.batch.poll_faults, nth).await {
        Faulted::Answer(reply) => return Err(reply),
        Faulted::Truncate => true,
        Faulted::No => false,
    };
    let mut inner = state.store.inner.lock().unwrap();
    let Some(i) = inner.batch_index(id) else {
        return Ok(Err(GoogleError::batch_not_found(&format!("batches/{id}"))));
    };
    if !state.store.held.load(Ordering::SeqCst) {
        inner.poll(state, i);
    }
    let operation = inner.batches[i].operation();
    if truncate {
        return Err(cut_json(&operation));
    }
    Ok(Ok(operation))
}

/// `GET /v1beta/batches?pageSize=N&pageToken=T`: newest first; not a poll of any batch.
fn list_batches(state: &GeminiState, record: &GeminiRecorded) -> Result<Value, GoogleError> {
    let (start, size) = page(record, state.options.batch.list_page_size)?;
    let inner = state.store.inner.lock().unwrap();
    let all: Vec<&Batch> = inner.batches.iter().rev().filter(|b| !b.deleted).collect();
    let operations: Vec<Value> = all
        .iter()
        .skip(start)
        .take(size)
        .map(|b| b.operation())
        .collect();
    let mut answer = json!({});
    if !operations.is_empty() {
        answer["operations"] = Value::Array(operations);
    }
    if start + size < all.len() {
        answer["nextPageToken"] = page_token(start + size).into();
    }
    Ok(answer)
}

/// `POST /v1beta/batches/{id}:cancel`: `CANCELLED` at once, with the lines that ran.
fn cancel(state: &GeminiState, id: &str) -> Result<Value, GoogleError> {
    let mut inner = state.store.inner.lock().unwrap();
    let Some(i) = inner.batch_index(id) else {
        return Err(GoogleError::batch_not_found(&format!("batches/{id}")));
    };
    let now = inner.batches[i].state;
    if now.is_final() {
        return Err(GoogleError::new(
            400,
            "FAILED_PRECONDITION",
            &format!(
                "Batch batches/{id} has ended ({}); it cannot be cancelled.",
                now.as_str()
            ),
        ));
    }
    inner.finish(state, i, BatchState::Cancelled);
    Ok(json!({}))
}

/// The Files API and batch mode, as tests see them.
impl FakeGemini {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.store.inner.lock().unwrap()
    }

    /// Every batch (deleted ones left out) as `GET /v1beta/batches/{id}` would show it now,
    /// without counting as a poll; oldest first.
    pub fn batches(&self) -> Vec<Value> {
        self.inner()
            .batches
            .iter()
            .filter(|b| !b.deleted)
            .map(Batch::operation)
            .collect()
    }

    /// A batch (by `batches/x` or `x`) as `GET /v1beta/batches/{id}` would show it now,
    /// without counting as a poll.
    pub fn batch(&self, name: &str) -> Option<Value> {
        let inner = self.inner();
        inner
            .batch_index(name)
            .map(|i| inner.batches[i].operation())
    }

    /// A batch's state, like `BATCH_STATE_RUNNING`.
    pub fn batch_state(&self, name: &str) -> Option<String> {
        let inner = self.inner();
        inner
            .batch_index(name)
            .map(|i| inner.batches[i].state.as_str().to_owned())
    }

    /// How many batches were created (refused and faulted calls make none; a truncated one
    /// does).
    pub fn batches_created(&self) -> usize {
        self.inner().batches.len()
    }

    /// How many polls (`GET /v1beta/batches/{id}`) arrived.
    pub fn batch_polls(&self) -> usize {
        self.inner().polls
    }

    /// Every batch line that ran, in the order they ran.
    pub fn batch_lines(&self) -> Vec<GeminiAnsweredLine> {
        self.inner().answered.clone()
    }

    /// How many batch lines ran, whatever their answer.
    pub fn batch_lines_answered(&self) -> usize {
        self.inner().answered.len()
    }

    /// The files uploaded (deleted ones too), oldest first.
    pub fn uploaded_files(&self) -> Vec<GeminiFile> {
        self.inner()
            .files
            .iter()
            .filter(|f| f.info.source == "UPLOADED")
            .map(|f| f.info.clone())
            .collect()
    }

    /// How many upload sessions were opened.
    pub fn upload_sessions(&self) -> usize {
        self.inner().sessions.len()
    }

    /// Any file held or once held (by `files/x` or `x`), uploaded or made by the fake.
    pub fn file_info(&self, name: &str) -> Option<GeminiFile> {
        let name = format!("files/{}", name.trim_start_matches("files/"));
        self.inner()
            .files
            .iter()
            .find(|f| f.info.name == name)
            .map(|f| f.info.clone())
    }

    /// A file's contents (by `files/x` or `x`); `None` if there is no such file or it was
    /// deleted.
    pub fn file_content(&self, name: &str) -> Option<Vec<u8>> {
        self.inner()
            .file(name.trim_start_matches("files/"))
            .map(|f| f.content.concat())
    }

    /// A file's lines parsed as JSON, blank lines skipped; none if there is no such file.
    /// Panics on a line that is not JSON.
    pub fn file_lines(&self, name: &str) -> Vec<Value> {
        let content = self.file_content(name).unwrap_or_default();
        content
            .split(|&b| b == b'\n')
            .filter(|line| !batches::is_blank(line))
            .map(|line| {
                serde_json::from_slice(line)
                    .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(line)))
            })
            .collect()
    }

    /// The lines of a batch's responses file, in the file's order (for an inline batch, its
    /// `inlinedResponses`); none if it has none.
    pub fn response_lines(&self, batch: &str) -> Vec<Value> {
        let operation = self.batch(batch).expect("a batch");
        let output = &operation["metadata"]["output"];
        if let Some(file) = output["responsesFile"].as_str() {
            return self.file_lines(file);
        }
        output["inlinedResponses"]["inlinedResponses"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// How many downloads were cut ([`GeminiBatchOptions::download_cuts`]).
    pub fn downloads_cut(&self) -> usize {
        self.inner().cuts
    }

    /// Holds every batch in its state (polls are answered but move nothing) until released;
    /// [`FakeGemini::advance_all`] and [`FakeGemini::set_batch_state`] still work.
    pub fn hold_batches(&self, hold: bool) {
        self.state.store.held.store(hold, Ordering::SeqCst);
    }

    /// Moves every unfinished batch on one state, whatever the polls: `PENDING` is validated,
    /// `RUNNING` runs all its lines (expiring as [`GeminiBatchOptions::expire_after`] says).
    pub fn advance_all(&self) {
        let mut inner = self.inner();
        for i in 0..inner.batches.len() {
            inner.step(&self.state, i);
        }
    }

    /// Moves one batch on one state, as [`FakeGemini::advance_all`] does.
    pub fn advance_batch(&self, name: &str) {
        let mut inner = self.inner();
        let i = inner.batch_index(name).expect("a batch");
        inner.step(&self.state, i);
    }

    /// Puts a batch in `state` (a name like `BATCH_STATE_EXPIRED`, or its suffix), whatever
    /// the polls, the way the service would go there: `RUNNING` validates it; `SUCCEEDED`
    /// also runs all its lines (ignoring expiry); `EXPIRED` and `CANCELLED` end it with the
    /// lines that ran so far; `FAILED` fails it with `INTERNAL`. Panics if the batch cannot
    /// get there (it failed validation, or it has ended).
    pub fn set_batch_state(&self, name: &str, state: &str) {
        let target = BatchState::named(state);
        let mut inner = self.inner();
        let i = inner.batch_index(name).expect("a batch");
        let gemini = &*self.state;
        if matches!(target, BatchState::Running | BatchState::Succeeded)
            && inner.batches[i].state == BatchState::Pending
        {
            inner.batches[i].validate();
        }
        let now = inner.batches[i].state;
        match target {
            _ if now == target => {}
            _ if now.is_final() => {
                panic!("batch {name} cannot go from {} to {state}", now.as_str())
            }
            BatchState::Succeeded => inner.run(gemini, i, usize::MAX, false),
            BatchState::Expired | BatchState::Cancelled => inner.finish(gemini, i, target),
            BatchState::Failed => {
                inner.batches[i].error = Some(GoogleError::internal());
                inner.batches[i].set_state(BatchState::Failed);
            }
            _ => panic!("batch {name} cannot go from {} to {state}", now.as_str()),
        }
    }
}
