//! A local fake of Google's Gemini API (the Gemini Developer API, `v1beta`), on hyper, in a
//! thread of its own: a second provider beside the OpenAI fake, with an address of its own.
//!
//! It serves:
//! - `POST /v1beta/models/{model}:generateContent`, checked by the service's rules (see
//!   `gemini_rules.rs`) and answered with real PNG bytes that differ per request, as base64
//!   `inlineData`; scripted answers give every shape a client must read (text and thought
//!   parts, JPEG bytes labelled PNG, `fileData`, refusals by `promptFeedback.blockReason` or
//!   `finishReason`, 200s with no image, and errors in the google.rpc shape);
//! - `GET /v1beta/models` and `GET /v1beta/models/{model}`;
//! - the Files API with the resumable upload the official SDKs use, and batch mode
//!   (`:batchGenerateContent`, `/v1beta/batches...`): see `gemini_batches.rs`.
//!
//! The key goes in the `x-goog-api-key` header. A `?key=` in the URL, which the real service
//! takes, is refused here with a `400`, so that a test proves genimg never puts its key in a
//! URL. A missing key is answered `403 PERMISSION_DENIED`, a wrong one `400
//! INVALID_ARGUMENT` with `ErrorInfo` reason `API_KEY_INVALID`, and a key sent the OpenAI way
//! (`Authorization: Bearer`) `401 UNAUTHENTICATED`, as the service answers them. A
//! path the service does not have is answered with Google's HTML 404 page.
//!
//! Gemini sends no rate-limit headers; the optional limiter ([`GeminiOptions::rate_limit`])
//! answers the per-minute `429` with a `RetryInfo`, and [`GeminiOptions::daily_limit`] the
//! per-day one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper::{Request, Response};
use serde_json::{Map, Value, json};

use super::background::Background;
use super::batches;
use super::gemini_batches::{self, GeminiBatchOptions};
use super::gemini_rules::{self, CheckedRequest, GeminiModel, GoogleError};
use super::images;
use super::server::{
    Body, Bucket, Dropped, RateLimit, insert_header, jpeg, respond, respond_parts,
};

/// The key the fake accepts, in `x-goog-api-key`.
pub const GEMINI_KEY: &str = "AIzaSyFAKE-gemini-0123456789abcdefghijk";

/// Live answers' images are `images::png(GEMINI_SEQ_BASE + n)`, `n` counting generate requests
/// from 1: never the same bytes as the OpenAI fake's, nor as a batch line's.
pub const GEMINI_SEQ_BASE: u64 = 2 << 32;

/// Batch lines' images are `images::png(GEMINI_BATCH_SEQ_BASE + n)`, `n` counting every batch
/// line the fake ran from 1.
pub const GEMINI_BATCH_SEQ_BASE: u64 = 3 << 32;

/// A thought part's image is the final image's sequence number plus this: a different image.
pub const THOUGHT_SEQ_OFFSET: u64 = 1 << 40;

/// The content type of the service's JSON answers.
pub(super) const JSON: &str = "application/json; charset=UTF-8";

/// What the fake does with a `generateContent` request, chosen by a test's script (and, for
/// batch lines, by a [`GeminiBatchScript`](super::gemini_batches::GeminiBatchScript)).
#[derive(Debug, Clone)]
pub enum GeminiAction {
    /// A normal answer: one image part (a text part before it if the request asked for `TEXT`
    /// among its response modalities).
    Answer,
    /// A normal answer, after this long.
    Delay(Duration),
    /// A normal answer with a text part before the image, whatever the modalities.
    WithText,
    /// A thought (`"thought": true`) text part and a thought image part, a different image,
    /// before the final image, as a thinking model shows its drafts. A client must skip them.
    Thought,
    /// A JPEG, labelled `image/jpeg`.
    Jpeg,
    /// JPEG bytes labelled `image/png`, as the service has sent: a client must sniff the bytes.
    JpegAsPng,
    /// The image as a `fileData` part (`{"mimeType", "fileUri"}`) naming a generated file this
    /// fake holds and serves at `/download/v1beta/files/{id}:download?alt=media`.
    FileData,
    /// `200` with one text part and no image, `finishReason` `STOP`: a model that talked
    /// instead of drawing.
    TextOnly(String),
    /// A prompt refused before generation: `promptFeedback.blockReason` set to this (`SAFETY`,
    /// `OTHER`, `BLOCKLIST`, `PROHIBITED_CONTENT`, `IMAGE_SAFETY`), and no `candidates` (the
    /// service leaves an empty list out).
    Blocked(String),
    /// A candidate with no content and this `finishReason`: a refusal (`SAFETY`,
    /// `IMAGE_SAFETY`, `PROHIBITED_CONTENT`, `IMAGE_PROHIBITED_CONTENT`, `BLOCKLIST`, `SPII`,
    /// `RECITATION`, `IMAGE_RECITATION`) or a plain miss (`NO_IMAGE`, `OTHER`).
    Finish(String),
    /// An error answer in the google.rpc shape.
    Error(GoogleError),
    /// Close the connection without answering.
    Drop,
    /// Send the headers and half the body of a normal answer, then close.
    Truncate,
    /// `200` with a body that is not JSON.
    MalformedJson,
    /// `200` with `inlineData.data` that is not base64.
    BadBase64,
    /// Any answer, as a proxy or a misbehaving server might give: status, headers, body.
    Raw {
        /// The HTTP status.
        status: u16,
        /// Headers, set over the default `content-type: text/html`.
        headers: Vec<(String, String)>,
        /// The body, as is.
        body: String,
    },
}

impl GeminiAction {
    /// An error answer with no details: `status` like `INTERNAL`.
    pub fn error(code: u16, status: &str, message: &str) -> GeminiAction {
        GeminiAction::Error(GoogleError::new(code, status, message))
    }

    /// The per-minute `429 RESOURCE_EXHAUSTED` for `model`, with `QuotaFailure.quotaId`
    /// [`PER_MINUTE_QUOTA`](gemini_rules::PER_MINUTE_QUOTA) and `RetryInfo.retryDelay`
    /// `retry_delay` (written as given, like `"0.2s"`).
    pub fn per_minute(model: &str, retry_delay: &str) -> GeminiAction {
        GeminiAction::Error(GoogleError::per_minute(model, retry_delay))
    }

    /// The per-minute 429 with the default delay, `"0.2s"`.
    pub fn rate_limited(model: &str) -> GeminiAction {
        GeminiAction::per_minute(model, "0.2s")
    }

    /// The per-day `429 RESOURCE_EXHAUSTED` for `model`, quota id
    /// [`PER_DAY_QUOTA`](gemini_rules::PER_DAY_QUOTA).
    pub fn per_day(model: &str) -> GeminiAction {
        GeminiAction::Error(GoogleError::per_day(model, 250))
    }

    /// `429 RESOURCE_EXHAUSTED` with no details at all, as capacity trouble on Google's side
    /// comes.
    pub fn exhausted_without_details() -> GeminiAction {
        GeminiAction::error(
            429,
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
        )
    }

    /// `403 PERMISSION_DENIED` for a key that may not call the API.
    pub fn permission_denied() -> GeminiAction {
        GeminiAction::Error(GoogleError::permission_denied())
    }

    /// `404 NOT_FOUND`, as for a model shut down.
    pub fn not_found(model: &str) -> GeminiAction {
        GeminiAction::Error(GoogleError::model_not_found(model, "generateContent"))
    }

    /// `500 INTERNAL`.
    pub fn internal() -> GeminiAction {
        GeminiAction::Error(GoogleError::internal())
    }

    /// `503 UNAVAILABLE`.
    pub fn unavailable() -> GeminiAction {
        GeminiAction::Error(GoogleError::unavailable())
    }

    /// `504 DEADLINE_EXCEEDED`.
    pub fn deadline_exceeded() -> GeminiAction {
        GeminiAction::Error(GoogleError::deadline_exceeded())
    }

    /// A refusal after generation, as the refuse marker gives: `finishReason` `IMAGE_SAFETY`.
    pub fn refused() -> GeminiAction {
        GeminiAction::Finish("IMAGE_SAFETY".to_owned())
    }
}

/// The refusal finish reasons: a candidate with no image and one of these was refused.
pub const REFUSAL_REASONS: &[&str] = &[
    "SAFETY",
    "IMAGE_SAFETY",
    "PROHIBITED_CONTENT",
    "IMAGE_PROHIBITED_CONTENT",
    "BLOCKLIST",
    "SPII",
    "RECITATION",
    "IMAGE_RECITATION",
];

/// What a script sees of a `generateContent` request, once it has passed the rules.
#[derive(Debug, Clone)]
pub struct GeminiIncoming {
    /// Order among generate requests that passed the rules and limits, from 0.
    pub nth: usize,
    /// The request's path, like `/v1beta/models/gemini-3-pro-image:generateContent`.
    pub path: String,
    /// The model, from the path, without `models/`.
    pub model: String,
    /// The text parts of the user's contents, joined by newlines.
    pub prompt: String,
    /// The request's JSON body.
    pub body: Map<String, Value>,
    /// How many input images it carries.
    pub references: usize,
    /// `imageConfig.aspectRatio`, if given.
    pub aspect_ratio: Option<String>,
    /// `imageConfig.imageSize`, if given.
    pub image_size: Option<String>,
}

/// Decides per request what the fake does.
pub type GeminiScript = Arc<dyn Fn(&GeminiIncoming) -> GeminiAction + Send + Sync>;

/// The faults of a flaky Gemini service and network, each as the real one shows it; the 429
/// names `model`.
pub fn gemini_faults(model: &str) -> Vec<GeminiAction> {
    vec![
        GeminiAction::rate_limited(model),
        GeminiAction::exhausted_without_details(),
        GeminiAction::internal(),
        GeminiAction::unavailable(),
        GeminiAction::deadline_exceeded(),
        GeminiAction::Drop,
        GeminiAction::Truncate,
        GeminiAction::MalformedJson,
        GeminiAction::BadBase64,
    ]
}

/// A script that answers `rate` of the requests with one of [`gemini_faults`], picked at
/// random from `seed`, and the rest normally.
pub fn gemini_chaos(rate: f64, seed: u64) -> GeminiScript {
    let rng = Mutex::new(fastrand::Rng::with_seed(seed));
    Arc::new(move |incoming: &GeminiIncoming| {
        let mut rng = rng.lock().unwrap();
        if rng.f64() < rate {
            let faults = gemini_faults(&incoming.model);
            faults[rng.usize(..faults.len())].clone()
        } else {
            GeminiAction::Answer
        }
    })
}

/// How the fake Gemini service behaves.
#[derive(Clone)]
pub struct GeminiOptions {
    /// Time every generate request takes.
    pub latency: Duration,
    /// Model names served beyond the real ones, taking every ratio and size (see
    /// [`gemini_rules::gemini_model`]).
    pub extra_models: Vec<String>,
    /// Real models to treat as shut down: answered `404 NOT_FOUND` (the notes say
    /// `gemini-3.1-flash-image` may be gone).
    pub gone_models: Vec<String>,
    /// Decides per request; [`GeminiAction::Answer`] by default.
    pub script: Option<GeminiScript>,
    /// Prompts containing this are refused after generation (`finishReason` `IMAGE_SAFETY`),
    /// unless the script chose another answer than [`GeminiAction::Answer`] or
    /// [`GeminiAction::Delay`].
    pub refuse_marker: String,
    /// Pad every PNG answer to about this many bytes (see [`images::Padding`]); `None` sends
    /// small PNGs.
    pub payload_bytes: Option<usize>,
    /// Limit generate requests per minute; a request that finds no token is answered the
    /// per-minute `429` with the wait in `RetryInfo.retryDelay`. No headers either way.
    pub rate_limit: Option<RateLimit>,
    /// Generate requests allowed before every further one is answered the per-day `429`;
    /// `None`: no daily limit.
    pub daily_limit: Option<usize>,
    /// The largest request body, in bytes: [`gemini_rules::MAX_REQUEST_BYTES`] (100 MB) by
    /// default; a test sets it small to see the limit without sending 100 MB.
    pub max_request_bytes: usize,
    /// Keep each answer's images in [`GeminiRecorded`] and [`GeminiAnsweredLine`]; on by
    /// default.
    ///
    /// [`GeminiAnsweredLine`]: super::gemini_batches::GeminiAnsweredLine
    pub record_images: bool,
    /// How the Files API and batch mode behave.
    pub batch: GeminiBatchOptions,
}

impl Default for GeminiOptions {
    fn default() -> GeminiOptions {
        GeminiOptions {
            latency: Duration::ZERO,
            extra_models: Vec::new(),
            gone_models: Vec::new(),
            script: None,
            refuse_marker: "FORBIDDEN".to_owned(),
            payload_bytes: None,
            rate_limit: None,
            daily_limit: None,
            max_request_bytes: gemini_rules::MAX_REQUEST_BYTES,
            record_images: true,
            batch: GeminiBatchOptions::default(),
        }
    }
}

/// One request as the fake saw it, and what it answered.
#[derive(Debug, Clone)]
pub struct GeminiRecorded {
    /// Order of arrival among all requests, from 0.
    pub seq: usize,
    /// `GET`, `POST` or `DELETE`.
    pub method: String,
    /// The path, with `%3A` read as `:`.
    pub path: String,
    /// The query string, without the `?`; empty if there is none.
    pub query: String,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    /// The body parsed as JSON; `Null` if it is empty or not JSON (an upload's bytes).
    pub body: Value,
    /// The body's length in bytes.
    pub body_len: usize,
    /// The status answered, or 0 if the connection was dropped.
    pub status: u16,
    /// The status name of an error answer, like `RESOURCE_EXHAUSTED`.
    pub error_status: Option<String>,
    /// The final image this answer delivered (decoded), if any.
    pub image: Option<Vec<u8>>,
    /// The `mimeType` the final image was labelled with.
    pub image_mime: Option<String>,
    /// The images of thought parts, which are not the answer.
    pub thought_images: Vec<Vec<u8>>,
    /// The answer's `usageMetadata`.
    pub usage: Option<Value>,
    /// The answer's `finishReason`, or `blockReason:X` for a prompt blocked with reason `X`.
    pub outcome: Option<String>,
    /// When the request arrived.
    pub arrived: Instant,
    /// When it was answered (or dropped).
    pub answered: Instant,
}

impl GeminiRecorded {
    /// A header's value, by its lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// A `POST .../models/{model}:generateContent`.
    pub fn is_generate(&self) -> bool {
        self.method == "POST"
            && matches!(
                route(&self.method, &self.path, &self.query),
                Route::Generate(_)
            )
    }

    /// The model a generate or batch-create path names.
    pub fn model(&self) -> Option<String> {
        match route(&self.method, &self.path, &self.query) {
            Route::Generate(m) | Route::BatchCreate(m) => Some(m.to_owned()),
            _ => None,
        }
    }

    /// The text parts of the body's user contents, joined by newlines.
    pub fn prompt(&self) -> String {
        prompt_of(&self.body)
    }

    /// The body's `generationConfig.imageConfig`.
    pub fn image_config(&self) -> Option<&Value> {
        let config = self.body.as_object()?;
        let generation = gemini_rules::field(config, "generationConfig")?.as_object()?;
        gemini_rules::field(generation, "imageConfig")
    }

    /// The input images it carried inline: each `mimeType` and decoded bytes.
    pub fn inline_images(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for part in parts_of(&self.body) {
            let Some(blob) = gemini_rules::field(part, "inlineData").and_then(Value::as_object)
            else {
                continue;
            };
            let mime = gemini_rules::field(blob, "mimeType")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let data = gemini_rules::field(blob, "data")
                .and_then(Value::as_str)
                .and_then(gemini_rules::decode_bytes)
                .unwrap_or_default();
            out.push((mime.to_owned(), data));
        }
        out
    }
}

/// Every part of every content of a `generateContent` body.
fn parts_of(body: &Value) -> Vec<&Map<String, Value>> {
    let Some(contents) = body
        .as_object()
        .and_then(|b| gemini_rules::field(b, "contents"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    contents
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|c| gemini_rules::field(c, "parts").and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_object)
        .collect()
}

/// The text parts of a body's user contents, joined by newlines.
pub fn prompt_of(body: &Value) -> String {
    let Some(contents) = body
        .as_object()
        .and_then(|b| gemini_rules::field(b, "contents"))
        .and_then(Value::as_array)
    else {
        return String::new();
    };
    let mut texts = Vec::new();
    for content in contents.iter().filter_map(Value::as_object) {
        if gemini_rules::field(content, "role").and_then(Value::as_str) == Some("model") {
            continue;
        }
        let parts = gemini_rules::field(content, "parts").and_then(Value::as_array);
        for part in parts.into_iter().flatten().filter_map(Value::as_object) {
            if let Some(text) = gemini_rules::field(part, "text").and_then(Value::as_str) {
                texts.push(text.to_owned());
            }
        }
    }
    texts.join("\n")
}

/// The fake's state, shared by every connection.
pub(super) struct GeminiState {
    pub(super) options: GeminiOptions,
    addr: OnceLock<SocketAddr>,
    seq: AtomicUsize,
    generate_seq: AtomicUsize,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
    recorded: Mutex<Vec<GeminiRecorded>>,
    padding: Option<images::Padding>,
    bucket: Option<Mutex<Bucket>>,
    rate_limited: AtomicUsize,
    daily_used: AtomicUsize,
    /// The Files API's files and upload sessions, and the batches.
    pub(super) store: gemini_batches::Store,
}

impl GeminiState {
    /// The fake's root URL, like `https://generativelanguage.googleapis.com`.
    pub(super) fn base(&self) -> String {
        format!("http://{}", self.addr.get().expect("set at start"))
    }

    /// The rules of `model`, by the options.
    pub(super) fn model(&self, model: &str) -> Option<GeminiModel> {
        gemini_rules::gemini_model(model, &self.options.extra_models, &self.options.gone_models)
    }
}

/// A running fake Gemini service; it stops when dropped.
pub struct FakeGemini {
    pub(super) state: Arc<GeminiState>,
    service: Background,
}

impl std::fmt::Debug for FakeGemini {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGemini")
            .field("addr", &self.service.addr())
            .finish()
    }
}

impl FakeGemini {
    /// A fake with the default options.
    pub fn start() -> FakeGemini {
        FakeGemini::with(GeminiOptions::default())
    }

    /// A fake with `options`.
    pub fn with(options: GeminiOptions) -> FakeGemini {
        let padding = options.payload_bytes.map(images::Padding::new);
        let bucket = options
            .rate_limit
            .map(|limit| Mutex::new(Bucket::new(limit, Instant::now())));
        let state = Arc::new(GeminiState {
            options,
            addr: OnceLock::new(),
            seq: AtomicUsize::new(0),
            generate_seq: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            peak_in_flight: AtomicUsize::new(0),
            recorded: Mutex::new(Vec::new()),
            padding,
            bucket,
            rate_limited: AtomicUsize::new(0),
            daily_used: AtomicUsize::new(0),
            store: gemini_batches::Store::default(),
        });
        let task_state = state.clone();
        let service = Background::start(move |stream| {
            let state = task_state.clone();
            async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let service = service_fn(move |req| handle(state.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            }
        });
        let _ = state.addr.set(service.addr());
        FakeGemini { state, service }
    }

    /// The root URL to give genimg, like `https://generativelanguage.googleapis.com`: genimg
    /// calls `{base}/v1beta/models/{model}:generateContent`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.service.addr())
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.service.addr()
    }

    /// Every request, in order of arrival.
    pub fn requests(&self) -> Vec<GeminiRecorded> {
        let mut v = self.state.recorded.lock().unwrap().clone();
        v.sort_by_key(|r| r.seq);
        v
    }

    /// The `generateContent` requests, in order of arrival, whatever they were answered.
    pub fn generate_requests(&self) -> Vec<GeminiRecorded> {
        self.requests()
            .into_iter()
            .filter(GeminiRecorded::is_generate)
            .collect()
    }

    /// The distinct prompts of the generate requests, sorted.
    pub fn prompts(&self) -> Vec<String> {
        let mut prompts: Vec<String> = self
            .generate_requests()
            .iter()
            .map(GeminiRecorded::prompt)
            .collect();
        prompts.sort();
        prompts.dedup();
        prompts
    }

    /// How many generate requests passed the rules and limits (and went to the script).
    pub fn generate_requests_started(&self) -> usize {
        self.state.generate_seq.load(Ordering::SeqCst)
    }

    /// How many generate requests the limiters answered `429` ([`GeminiOptions::rate_limit`]
    /// and [`GeminiOptions::daily_limit`]).
    pub fn rate_limited(&self) -> usize {
        self.state.rate_limited.load(Ordering::SeqCst)
    }

    /// The most generate requests that were ever in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.state.peak_in_flight.load(Ordering::SeqCst)
    }

    /// Every final image the fake delivered, live or in a batch's responses: what a client may
    /// write, byte for byte.
    pub fn images_delivered(&self) -> Vec<Vec<u8>> {
        self.requests()
            .into_iter()
            .filter_map(|r| r.image)
            .chain(self.batch_lines().into_iter().filter_map(|l| l.image))
            .collect()
    }

    /// Every thought image the fake sent, live or in batches: what a client must never write.
    pub fn thought_images(&self) -> Vec<Vec<u8>> {
        self.requests()
            .into_iter()
            .flat_map(|r| r.thought_images)
            .chain(
                self.batch_lines()
                    .into_iter()
                    .flat_map(|l| l.thought_images),
            )
            .collect()
    }
}

/// The routes the fake serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Route<'a> {
    /// `POST /v1beta/models/{model}:generateContent`.
    Generate(&'a str),
    /// `POST /v1beta/models/{model}:batchGenerateContent`.
    BatchCreate(&'a str),
    /// `GET /v1beta/models`.
    Models,
    /// `GET /v1beta/models/{model}`.
    Model(&'a str),
    /// `POST /upload/v1beta/files`: a resumable upload's start.
    UploadStart,
    /// `POST /upload/v1beta/files?upload_id={id}`: a session's chunk, finalize or query.
    UploadSession(String),
    /// `GET /v1beta/files`.
    Files,
    /// `GET` or `DELETE /v1beta/files/{id}`.
    File(&'a str),
    /// `GET /download/v1beta/files/{id}:download`.
    Download(&'a str),
    /// `GET /v1beta/batches`.
    Batches,
    /// `GET` or `DELETE /v1beta/batches/{id}`.
    Batch(&'a str),
    /// `POST /v1beta/batches/{id}:cancel`.
    BatchCancel(&'a str),
    /// Anything else: Google's HTML 404.
    Unknown,
}

/// The route a request takes, by method and path.
pub(super) fn route<'a>(method: &str, path: &'a str, query: &str) -> Route<'a> {
    let name_ok = |s: &str| !s.is_empty() && !s.contains('/') && !s.contains(':');
    if let Some(rest) = path.strip_prefix("/v1beta/") {
        let (resource, verb) = match rest.rsplit_once(':') {
            Some((resource, verb)) => (resource, Some(verb)),
            None => (rest, None),
        };
        let segments: Vec<&str> = resource.split('/').collect();
        return match (method, segments.as_slice(), verb) {
            ("POST", ["models", m], Some("generateContent")) if name_ok(m) => Route::Generate(m),
            ("POST", ["models", m], Some("batchGenerateContent")) if name_ok(m) => {
                Route::BatchCreate(m)
            }
            ("GET", ["models"], None) => Route::Models,
            ("GET", ["models", m], None) if name_ok(m) => Route::Model(m),
            ("GET", ["files"], None) => Route::Files,
            ("GET" | "DELETE", ["files", id], None) if name_ok(id) => Route::File(id),
            ("GET", ["batches"], None) => Route::Batches,
            ("GET" | "DELETE", ["batches", id], None) if name_ok(id) => Route::Batch(id),
            ("POST", ["batches", id], Some("cancel")) if name_ok(id) => Route::BatchCancel(id),
            _ => Route::Unknown,
        };
    }
    if method == "POST" && path == "/upload/v1beta/files" {
        let session = url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "upload_id")
            .map(|(_, v)| v.into_owned());
        return match session {
            Some(id) => Route::UploadSession(id),
            None => Route::UploadStart,
        };
    }
    if method == "GET"
        && let Some(rest) = path.strip_prefix("/download/v1beta/files/")
        && let Some(id) = rest.strip_suffix(":download")
        && name_ok(id)
    {
        return Route::Download(id);
    }
    Route::Unknown
}

/// Google's HTML page for a path it does not serve.
fn html_not_found(path: &str) -> Response<Body> {
    let page = format!(
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not Found)!!1</title>\n  <p><b>404.</b> <ins>That\u{2019}s an error.</ins>\n  <p>The requested URL <code>{path}</code> was not found on this server.  <ins>That\u{2019}s all we know.</ins>\n"
    );
    respond(404, "text/html; charset=UTF-8", page.into_bytes())
}

/// An error answer.
pub(super) fn error_response(err: &GoogleError) -> Response<Body> {
    respond(err.code, JSON, err.body().to_string().into_bytes())
}

/// A JSON `200`.
pub(super) fn json_response(value: &Value) -> Response<Body> {
    respond(200, JSON, value.to_string().into_bytes())
}

/// The answer of a [`GeminiAction::Raw`].
pub(super) fn raw_response(
    status: u16,
    headers: &[(String, String)],
    body: &str,
) -> Response<Body> {
    let mut response = respond(status, "text/html", body.as_bytes().to_vec());
    for (k, v) in headers {
        insert_header(&mut response, k, v);
    }
    response
}

/// The key check every route but an upload session's makes: no key in the URL, the right one
/// in `x-goog-api-key`.
fn key_error(record: &GeminiRecorded) -> Option<GoogleError> {
    if record.query_param("key").is_some() {
        return Some(GoogleError::key_in_url());
    }
    match record.header("x-goog-api-key") {
        None if record.header("authorization").is_some() => {
            Some(GoogleError::bearer_not_accepted())
        }
        None => Some(GoogleError::key_missing()),
        Some(key) if key != GEMINI_KEY => Some(GoogleError::api_key_invalid()),
        Some(_) => None,
    }
}

async fn handle(
    state: Arc<GeminiState>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, Dropped> {
    let seq = state.seq.fetch_add(1, Ordering::SeqCst);
    let arrived = Instant::now();
    let method = req.method().to_string();
    let path = req.uri().path().replace("%3A", ":").replace("%3a", ":");
    let query = req.uri().query().unwrap_or("").to_owned();
    let headers: HashMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut record = GeminiRecorded {
        seq,
        method,
        path,
        query,
        headers,
        body: Value::Null,
        body_len: 0,
        status: 0,
        error_status: None,
        image: None,
        image_mime: None,
        thought_images: Vec::new(),
        usage: None,
        outcome: None,
        arrived,
        answered: arrived,
    };
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            push_record(&state, record);
            return Err(Dropped);
        }
    };
    record.body_len = body.len();
    let is_upload_bytes = matches!(
        route(&record.method, &record.path, &record.query),
        Route::UploadSession(_)
    );
    if !is_upload_bytes && !body.is_empty() {
        record.body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    }

    let path = record.path.clone();
    let query = record.query.clone();
    let method = record.method.clone();
    let route = route(&method, &path, &query);
    if route == Route::Unknown {
        return Ok(finish(&state, record, html_not_found(&path)));
    }
    let session = matches!(route, Route::UploadSession(_));
    let key = if session {
        record
            .query_param("key")
            .is_some()
            .then(GoogleError::key_in_url)
    } else {
        key_error(&record)
    };
    if let Some(err) = key {
        record.error_status = Some(err.status.clone());
        return Ok(finish(&state, record, error_response(&err)));
    }

    let result = match route {
        Route::Generate(model) => {
            return generate(state.clone(), record, model.to_owned(), body).await;
        }
        Route::Models => Ok(Ok(models_list(&state))),
        Route::Model(m) => Ok(match state.model(m) {
            Some(model) => Ok(model_object(&model)),
            None => Err(GoogleError::model_not_found(m, "getModel")),
        }),
        _ => gemini_batches::handle(&state, &route, &mut record, body).await,
    };
    match result {
        Ok(Ok(value)) => Ok(finish(&state, record, json_response(&value))),
        Ok(Err(err)) => {
            record.error_status = Some(err.status.clone());
            Ok(finish(&state, record, error_response(&err)))
        }
        Err(Reply::Response(response)) => Ok(finish(&state, record, response)),
        Err(Reply::Dropped) => {
            record.answered = Instant::now();
            push_record(&state, record);
            Err(Dropped)
        }
    }
}

/// An answer other than a JSON value or an error: a response of its own, or a dropped
/// connection.
pub(super) enum Reply {
    Response(Response<Body>),
    Dropped,
}

/// Records an answered request.
fn push_record(state: &GeminiState, record: GeminiRecorded) {
    state.recorded.lock().unwrap().push(record);
}

fn finish(
    state: &GeminiState,
    mut record: GeminiRecorded,
    response: Response<Body>,
) -> Response<Body> {
    record.status = response.status().as_u16();
    record.answered = Instant::now();
    if !state.options.record_images {
        record.image = None;
        record.thought_images.clear();
    }
    push_record(state, record);
    response
}

/// A generate request in flight; dropped when answered, or when the client went away (then it
/// is recorded as a dropped connection).
struct Flight {
    state: Arc<GeminiState>,
    record: Option<GeminiRecorded>,
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.state.in_flight.fetch_sub(1, Ordering::SeqCst);
        if let Some(mut record) = self.record.take() {
            record.status = 0;
            record.answered = Instant::now();
            push_record(&self.state, record);
        }
    }
}

/// `POST /v1beta/models/{model}:generateContent`.
async fn generate(
    state: Arc<GeminiState>,
    record: GeminiRecorded,
    model: String,
    body: Bytes,
) -> Result<Response<Body>, Dropped> {
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.peak_in_flight.fetch_max(now, Ordering::SeqCst);
    let mut flight = Flight {
        state: state.clone(),
        record: Some(record),
    };
    let result = answer_generate(&state, flight.record.as_mut().unwrap(), &model, &body).await;
    let record = flight.record.take().unwrap();
    drop(flight);
    match result {
        Ok(response) => Ok(finish(&state, record, response)),
        Err(Dropped) => {
            let mut record = record;
            record.status = 0;
            record.answered = Instant::now();
            push_record(&state, record);
            Err(Dropped)
        }
    }
}

/// Takes a token from the limiters, if any: `Err` with the 429 to answer if there is none.
fn take_quota(state: &GeminiState, model: &str) -> Result<(), GoogleError> {
    if let Some(limit) = state.options.daily_limit {
        let used = state.daily_used.fetch_add(1, Ordering::SeqCst);
        if used >= limit {
            state.rate_limited.fetch_add(1, Ordering::SeqCst);
            return Err(GoogleError::per_day(model, limit as u64));
        }
    }
    if let Some(bucket) = &state.bucket {
        let taken = bucket.lock().unwrap().take(Instant::now());
        if let Err(quota) = taken {
            state.rate_limited.fetch_add(1, Ordering::SeqCst);
            let limit = state.options.rate_limit.map_or(0, |l| l.per_minute);
            return Err(GoogleError::quota(
                model,
                gemini_rules::PER_MINUTE_QUOTA,
                u64::from(limit),
                Some(&proto_duration(quota.retry_after)),
            ));
        }
    }
    Ok(())
}

/// `d` rounded up to the millisecond, as proto JSON writes a `Duration`: `2s`, `0.150s`.
pub fn proto_duration(d: Duration) -> String {
    let ms = d.as_nanos().div_ceil(1_000_000);
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}.{:03}s", ms / 1000, ms % 1000)
    }
}

async fn answer_generate(
    state: &GeminiState,
    record: &mut GeminiRecorded,
    model_name: &str,
    body: &Bytes,
) -> Result<Response<Body>, Dropped> {
    let fail = |record: &mut GeminiRecorded, err: GoogleError| {
        record.error_status = Some(err.status.clone());
        Ok(error_response(&err))
    };
    if body.len() > state.options.max_request_bytes {
        return fail(
            record,
            GoogleError::payload_too_large(state.options.max_request_bytes),
        );
    }
    let Value::Object(fields) = record.body.clone() else {
        return fail(record, GoogleError::not_json());
    };
    let Some(model) = state.model(model_name) else {
        return fail(
            record,
            GoogleError::model_not_found(model_name, "generateContent"),
        );
    };
    let checked = match gemini_rules::check_request(&model, &fields, |id| state.store.file_mime(id))
    {
        Ok(checked) => checked,
        Err(err) => return fail(record, err),
    };
    if let Err(err) = take_quota(state, model_name) {
        return fail(record, err);
    }

    let incoming = GeminiIncoming {
        nth: state.generate_seq.fetch_add(1, Ordering::SeqCst),
        path: record.path.clone(),
        model: model_name.to_owned(),
        prompt: checked.prompt.clone(),
        body: fields,
        references: checked.references.len(),
        aspect_ratio: checked.aspect_ratio.clone(),
        image_size: checked.image_size.clone(),
    };
    let action = match &state.options.script {
        Some(script) => script(&incoming),
        None => GeminiAction::Answer,
    };
    if !state.options.latency.is_zero() {
        tokio::time::sleep(state.options.latency).await;
    }
    let action = with_marker(state, action, &checked.prompt);
    let seq = GEMINI_SEQ_BASE + incoming.nth as u64 + 1;
    match &action {
        GeminiAction::Delay(d) => tokio::time::sleep(*d).await,
        GeminiAction::Drop => return Err(Dropped),
        GeminiAction::MalformedJson => {
            return Ok(respond(
                200,
                JSON,
                b"{\"candidates\": [{\"content\": {\"parts\": [{\"inlineData\": {\"mimeType\": \"image/png\", \"data\": \"iVBOR".to_vec(),
            ));
        }
        GeminiAction::Raw {
            status,
            headers,
            body,
        } => return Ok(raw_response(*status, headers, body)),
        _ => {}
    }
    let truncate = matches!(action, GeminiAction::Truncate);
    let made = answer(
        state,
        &model,
        &checked,
        &action,
        seq,
        &mut |name, mime, bytes| state.store.add_generated(name, mime, bytes),
    );
    record.image = made.image;
    record.image_mime = made.image_mime;
    record.thought_images = made.thought_images;
    record.usage = made.usage;
    record.outcome = made.outcome;
    match made.result {
        Ok(parts) if truncate => Ok(cut(parts)),
        Ok(parts) => Ok(respond_parts(200, JSON, parts)),
        Err(err) => fail(record, err),
    }
}

/// A `200` of `parts` whose length is announced, but of which only about half is sent before
/// the connection closes (after a moment, so that the client has the headers and that half).
fn cut(parts: Vec<Bytes>) -> Response<Body> {
    let len: usize = parts.iter().map(Bytes::len).sum();
    let half = batches::Chunks::new(parts, 0, len / 2);
    Response::builder()
        .status(200)
        .header("content-type", JSON)
        .header("content-length", len.to_string())
        .body(batches::stream_body(half, true))
        .unwrap()
}

/// The refuse marker turns a normal answer into a refusal.
pub(super) fn with_marker(state: &GeminiState, action: GeminiAction, prompt: &str) -> GeminiAction {
    let marker = &state.options.refuse_marker;
    match action {
        GeminiAction::Answer | GeminiAction::Delay(_)
            if !marker.is_empty() && prompt.contains(marker.as_str()) =>
        {
            GeminiAction::refused()
        }
        other => other,
    }
}

/// What one generate request was answered.
pub(super) struct Made {
    /// The `200` body as JSON in pieces, or the error.
    pub(super) result: Result<Vec<Bytes>, GoogleError>,
    pub(super) image: Option<Vec<u8>>,
    pub(super) image_mime: Option<String>,
    pub(super) thought_images: Vec<Vec<u8>>,
    pub(super) usage: Option<Value>,
    pub(super) outcome: Option<String>,
}

impl Made {
    fn error(err: GoogleError) -> Made {
        Made {
            result: Err(err),
            image: None,
            image_mime: None,
            thought_images: Vec::new(),
            usage: None,
            outcome: None,
        }
    }
}

/// An image to send: its bytes (when recorded) and its base64 in pieces.
struct Picture {
    bytes: Option<Vec<u8>>,
    base64: Vec<Bytes>,
}

/// `images::png(seq)`, padded as [`GeminiOptions::payload_bytes`] asks; the padding's base64
/// is shared, never copied.
fn png_picture(state: &GeminiState, seq: u64) -> Picture {
    let small = images::png(seq);
    let record = state.options.record_images;
    match &state.padding {
        Some(padding) => Picture {
            bytes: record.then(|| padding.splice(&small)),
            base64: padding.base64_parts(&small).to_vec(),
        },
        None => Picture {
            base64: vec![Bytes::from(STANDARD.encode(&small))],
            bytes: record.then_some(small),
        },
    }
}

fn plain_picture(state: &GeminiState, bytes: Vec<u8>) -> Picture {
    Picture {
        base64: vec![Bytes::from(STANDARD.encode(&bytes))],
        bytes: state.options.record_images.then_some(bytes),
    }
}

/// Stands for the `i`-th image's base64 in a body until it is written out.
fn placeholder(i: usize) -> String {
    format!("@@genimg-gemini-b64-{i}@@")
}

/// `body` as JSON in pieces, each placeholder replaced by its image's base64 pieces.
fn render(body: &Value, pictures: Vec<Vec<Bytes>>) -> Vec<Bytes> {
    let text = Bytes::from(body.to_string());
    let mut parts = Vec::new();
    let mut from = 0;
    for (i, b64) in pictures.into_iter().enumerate() {
        let mark = placeholder(i);
        let at = from
            + std::str::from_utf8(&text[from..])
                .expect("JSON is UTF-8")
                .find(&mark)
                .expect("the placeholder is in the body");
        parts.push(text.slice(from..at));
        parts.extend(b64);
        from = at + mark.len();
    }
    parts.push(text.slice(from..));
    parts
}

/// The `usageMetadata` of an answer: prompt tokens for the text (a token per four
/// characters) and [`gemini_rules::REFERENCE_TOKENS`] per input image; the model's image
/// tokens for its size if an image was made; 12 per text part out; thinking tokens for a
/// model that always thinks (210) or a thinking level above `LOW` or thought parts (120).
fn usage(
    model: &GeminiModel,
    checked: &CheckedRequest,
    image: bool,
    text_parts: u64,
    thoughts: bool,
) -> Value {
    let text_in = (checked.prompt.chars().count() as u64).div_ceil(4).max(1);
    let images_in = checked.references.len() as u64 * gemini_rules::REFERENCE_TOKENS;
    let prompt = text_in + images_in;
    let mut prompt_details = vec![json!({"modality": "TEXT", "tokenCount": text_in})];
    if images_in > 0 {
        prompt_details.push(json!({"modality": "IMAGE", "tokenCount": images_in}));
    }
    let mut usage = json!({
        "promptTokenCount": prompt,
        "promptTokensDetails": prompt_details,
    });
    let image_out = if image {
        model.tokens_for(checked.image_size.as_deref())
    } else {
        0
    };
    let text_out = 12 * text_parts;
    let candidates = image_out + text_out;
    let thinking = if model.always_thinks {
        210
    } else if thoughts || matches!(checked.thinking_level.as_deref(), Some("MEDIUM" | "HIGH")) {
        120
    } else {
        0
    };
    if candidates > 0 {
        usage["candidatesTokenCount"] = candidates.into();
        let mut details = Vec::new();
        if image_out > 0 {
            details.push(json!({"modality": "IMAGE", "tokenCount": image_out}));
        }
        if text_out > 0 {
            details.push(json!({"modality": "TEXT", "tokenCount": text_out}));
        }
        usage["candidatesTokensDetails"] = Value::Array(details);
    }
    if thinking > 0 {
        usage["thoughtsTokenCount"] = thinking.into();
    }
    usage["totalTokenCount"] = (prompt + candidates + thinking).into();
    usage
}

/// A `responseId`-like id for answer `seq`.
fn response_id(seq: u64) -> String {
    let mut raw = seq.to_be_bytes().to_vec();
    raw.extend_from_slice(b"gemini-fake");
    URL_SAFE_NO_PAD.encode(raw)
}

/// The answer to a valid request that `action` (already through [`with_marker`]) shapes;
/// `seq` numbers its image. [`GeminiAction::Drop`], [`GeminiAction::MalformedJson`] and
/// [`GeminiAction::Raw`], which have no meaning inside a batch's file, give `500 INTERNAL`;
/// [`GeminiAction::Truncate`] gives a normal answer for the caller to cut. `add_file` stores a
/// generated file (display name, MIME type, bytes) and gives its id, for
/// [`GeminiAction::FileData`].
pub(super) fn answer(
    state: &GeminiState,
    model: &GeminiModel,
    checked: &CheckedRequest,
    action: &GeminiAction,
    seq: u64,
    add_file: &mut dyn FnMut(&str, &str, Vec<u8>) -> String,
) -> Made {
    let text_part = |text: String| json!({"text": text});
    let mut parts: Vec<Value> = Vec::new();
    let mut pictures: Vec<Vec<Bytes>> = Vec::new();
    let mut thought_images = Vec::new();
    let mut text_parts = 0;
    let mut thoughts = false;
    let final_picture: Picture;
    let mut mime = "image/png";
    let mut final_part: Option<Value> = None;

    let base = json!({
        "modelVersion": model.name,
        "responseId": response_id(seq),
    });
    let refusal_usage = || usage(model, checked, false, 0, false);

    match action {
        GeminiAction::Error(err) => return Made::error(err.clone()),
        GeminiAction::Drop | GeminiAction::MalformedJson | GeminiAction::Raw { .. } => {
            return Made::error(GoogleError::internal());
        }
        GeminiAction::Blocked(reason) => {
            let mut body = base;
            body["promptFeedback"] = json!({"blockReason": reason});
            let usage = refusal_usage();
            body["usageMetadata"] = usage.clone();
            return Made {
                result: Ok(vec![Bytes::from(body.to_string())]),
                image: None,
                image_mime: None,
                thought_images,
                usage: Some(usage),
                outcome: Some(format!("blockReason:{reason}")),
            };
        }
        GeminiAction::Finish(reason) => {
            let mut candidate = json!({"finishReason": reason, "index": 0});
            if reason.starts_with("IMAGE_") {
                candidate["finishMessage"] = "Unable to show the generated image. The generated image was filtered out because it violated Google's Generative AI Prohibited Use policy. You will not be charged for blocked images. Try rephrasing the prompt.".into();
            }
            let mut body = json!({"candidates": [candidate]});
            let usage = refusal_usage();
            body["usageMetadata"] = usage.clone();
            body["modelVersion"] = base["modelVersion"].clone();
            body["responseId"] = base["responseId"].clone();
            return Made {
                result: Ok(vec![Bytes::from(body.to_string())]),
                image: None,
                image_mime: None,
                thought_images,
                usage: Some(usage),
                outcome: Some(reason.clone()),
            };
        }
        GeminiAction::TextOnly(text) => {
            let usage = usage(model, checked, false, 1, false);
            let body = json!({
                "candidates": [{
                    "content": {"role": "model", "parts": [text_part(text.clone())]},
                    "finishReason": "STOP",
                    "index": 0,
                }],
                "usageMetadata": usage,
                "modelVersion": model.name,
                "responseId": response_id(seq),
            });
            return Made {
                result: Ok(vec![Bytes::from(body.to_string())]),
                image: None,
                image_mime: None,
                thought_images,
                usage: Some(usage),
                outcome: Some("STOP".to_owned()),
            };
        }
        GeminiAction::Thought => {
            thoughts = true;
            parts.push(json!({
                "text": "**Composing the scene**\n\nI am placing the subject first, then the light.",
                "thought": true,
            }));
            let draft = png_picture(state, seq + THOUGHT_SEQ_OFFSET);
            parts.push(json!({
                "inlineData": {"mimeType": "image/png", "data": placeholder(pictures.len())},
                "thought": true,
            }));
            pictures.push(draft.base64);
            if let Some(bytes) = draft.bytes {
                thought_images.push(bytes);
            }
            final_picture = png_picture(state, seq);
        }
        GeminiAction::WithText => {
            parts.push(text_part(format!("Here is your image: {}", checked.prompt)));
            text_parts += 1;
            final_picture = png_picture(state, seq);
        }
        GeminiAction::Jpeg => {
            mime = "image/jpeg";
            final_picture = plain_picture(state, jpeg(seq));
        }
        GeminiAction::JpegAsPng => {
            final_picture = plain_picture(state, jpeg(seq));
        }
        GeminiAction::FileData => {
            let bytes = images::png(seq);
            let id = add_file(&format!("image-{seq}.png"), "image/png", bytes.clone());
            final_part = Some(json!({
                "fileData": {
                    "mimeType": "image/png",
                    "fileUri": format!("{}/v1beta/files/{id}", state.base()),
                },
            }));
            final_picture = Picture {
                bytes: state.options.record_images.then_some(bytes),
                base64: Vec::new(),
            };
        }
        GeminiAction::BadBase64 => {
            final_part = Some(json!({
                "inlineData": {"mimeType": "image/png", "data": "this is %%% not base64 !!"},
            }));
            final_picture = Picture {
                bytes: None,
                base64: Vec::new(),
            };
        }
        GeminiAction::Answer | GeminiAction::Delay(_) | GeminiAction::Truncate => {
            final_picture = png_picture(state, seq);
        }
    }
    if checked.wants_text && text_parts == 0 {
        parts.push(text_part(format!("Here is your image: {}", checked.prompt)));
        text_parts += 1;
    }
    let mut image_part = final_part.unwrap_or_else(
        || json!({"inlineData": {"mimeType": mime, "data": placeholder(pictures.len())}}),
    );
    if !final_picture.base64.is_empty() {
        pictures.push(final_picture.base64);
    }
    if model.signs_thoughts {
        image_part["thoughtSignature"] = STANDARD
            .encode(format!("fake-thought-signature-{seq}"))
            .into();
    }
    parts.push(image_part);
    let usage = usage(model, checked, true, text_parts, thoughts);
    let body = json!({
        "candidates": [{
            "content": {"role": "model", "parts": parts},
            "finishReason": "STOP",
            "index": 0,
        }],
        "usageMetadata": usage,
        "modelVersion": model.name,
        "responseId": response_id(seq),
    });
    let delivered = final_picture
        .bytes
        .filter(|_| !matches!(action, GeminiAction::BadBase64));
    Made {
        result: Ok(render(&body, pictures)),
        image_mime: delivered.as_ref().map(|_| match action {
            GeminiAction::Jpeg => "image/jpeg".to_owned(),
            _ => "image/png".to_owned(),
        }),
        image: delivered,
        thought_images,
        usage: Some(usage),
        outcome: Some("STOP".to_owned()),
    }
}

/// `GET /v1beta/models`: the models served.
fn models_list(state: &GeminiState) -> Value {
    let names = gemini_rules::GEMINI_MODELS
        .iter()
        .map(|m| (*m).to_owned())
        .chain(state.options.extra_models.iter().cloned());
    let models: Vec<Value> = names
        .filter_map(|name| state.model(&name))
        .map(|m| model_object(&m))
        .collect();
    json!({ "models": models })
}

/// A `Model` resource.
fn model_object(model: &GeminiModel) -> Value {
    json!({
        "name": format!("models/{}", model.name),
        "version": "001",
        "displayName": model.name,
        "description": "An image generation model (genimg's fake).",
        "inputTokenLimit": 65536,
        "outputTokenLimit": 32768,
        "supportedGenerationMethods": ["generateContent", "countTokens", "batchGenerateContent"],
        "temperature": 1,
        "topP": 0.95,
        "maxTemperature": 2,
        "thinking": model.always_thinks,
    })
}
