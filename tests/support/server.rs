//! A local fake of the OpenAI Images API, on hyper, in a thread of its own.
//!
//! It speaks the wire format (JSON generations, multipart or JSON edits, `b64_json` or `url`
//! answers), checks each request by the service's rules (see `rules.rs`), returns real PNG,
//! JPEG or WebP bytes (as `output_format` asks) that differ per request, records everything,
//! and injects faults on demand.
//!
//! It serves OpenAI's routes (`/v1/images/...`, key in `Authorization: Bearer`) and Azure
//! OpenAI's (`/openai/v1/images/...` and
//! `/openai/deployments/{deployment}/images/...?api-version=...`, key in `api-key`), and
//! OpenAI's Files and Batches APIs (`/v1/files...`, `/v1/batches...`; see `batches.rs`), whose
//! batch lines are answered by the same logic as live image requests.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper::{Request, Response};
use serde_json::{Map, Value, json};

use super::background::Background;
use super::batches;
use super::images;
use super::rules::{self, ApiErr};

/// The key the fake accepts.
pub const KEY: &str = "sk-test-0123456789abcdef";

pub(super) type Body = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// A part of a multipart request.
#[derive(Debug, Clone)]
pub struct FilePart {
    pub name: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// One request as the fake saw it, and what it answered.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Order of arrival among all requests, from 0.
    pub seq: usize,
    pub method: String,
    pub path: String,
    /// The query string, without the `?`; empty if there is none.
    pub query: String,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    /// The request's fields: the JSON body, or the multipart text fields as strings.
    pub fields: Map<String, Value>,
    pub is_multipart: bool,
    pub files: Vec<FilePart>,
    /// The status answered, or 0 if the connection was dropped.
    pub status: u16,
    /// The image bytes this answer delivered (decoded), if any.
    pub image: Option<Vec<u8>>,
    /// The partial images a streamed answer sent before it (or before it was cut).
    pub partials: Vec<Vec<u8>>,
    pub arrived: Instant,
    pub answered: Instant,
}

impl Recorded {
    pub fn field(&self, name: &str) -> Option<String> {
        match self.fields.get(name)? {
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    pub fn prompt(&self) -> String {
        self.field("prompt").unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The value of a query parameter, e.g. `api-version`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// A `POST` to an image endpoint, OpenAI's or Azure's.
    pub fn is_image_request(&self) -> bool {
        self.method == "POST" && is_image_path(&self.path)
    }
}

fn is_image_path(path: &str) -> bool {
    path.starts_with("/v1/images/")
        || path.starts_with("/openai/v1/images/")
        || path.starts_with("/openai/deployments/")
}

/// What the fake does with an image request, chosen by a test's script.
#[derive(Debug, Clone)]
pub enum Action {
    /// A normal answer.
    Answer,
    /// A normal answer, after this long.
    Delay(Duration),
    /// An error answer with the API's error body.
    Error {
        status: u16,
        code: Option<String>,
        kind: String,
        message: String,
        headers: Vec<(String, String)>,
    },
    /// Close the connection without answering.
    Drop,
    /// Send the headers and half the body, then close.
    Truncate,
    /// 200 with a body that is not JSON.
    MalformedJson,
    /// 200 with `b64_json` that is not base64.
    BadBase64,
    /// 200 with an image in another format than the one asked for: a JPEG where a PNG was
    /// asked for, a PNG where a JPEG or a WebP was.
    WrongFormat,
    /// Any answer, as a proxy or a misbehaving server might give: status, headers, body.
    Raw {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
}

impl Action {
    pub fn error(status: u16, code: &str, message: &str) -> Action {
        Action::Error {
            status,
            code: Some(code.to_owned()),
            kind: if status == 429 {
                "requests".to_owned()
            } else {
                "invalid_request_error".to_owned()
            },
            message: message.to_owned(),
            headers: Vec::new(),
        }
    }

    /// A GPT image model's refusal as the service sends it: 400 `moderation_blocked` with
    /// `moderation_details`, the stage that refused (`input` or `output`) and the categories,
    /// which the message repeats as `safety_violations=[...]`.
    pub fn moderation_blocked(stage: &str, categories: &[&str]) -> Action {
        let body = serde_json::json!({"error": {
            "message": format!(
                "Your request was rejected by the safety system. safety_violations=[{}].",
                categories.join(", ")
            ),
            "type": "image_generation_user_error",
            "param": null,
            "code": "moderation_blocked",
            "moderation_details": {"moderation_stage": stage, "categories": categories},
        }});
        Action::Raw {
            status: 400,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: body.to_string(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Action {
        if let Action::Error { headers, .. } = &mut self {
            headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }
}

/// What a script sees of an image request.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Order among image requests, from 0.
    pub nth: usize,
    pub path: String,
    /// The model that serves it: the body's `model`, or an Azure deployment's name.
    pub model: String,
    pub prompt: String,
}

pub type Script = Arc<dyn Fn(&Incoming) -> Action + Send + Sync>;

/// The faults of a flaky service and network, each as the real one shows it.
pub fn faults() -> Vec<Action> {
    vec![
        Action::error(
            429,
            "rate_limit_exceeded",
            "Rate limit reached for images per minute.",
        )
        .with_header("retry-after-ms", "100"),
        Action::error(
            429,
            "rate_limit_exceeded",
            "Rate limit reached for images per minute.",
        ),
        Action::error(
            500,
            "server_error",
            "The server had an error while processing your request.",
        ),
        Action::error(
            503,
            "overloaded",
            "The engine is currently overloaded, please try again later.",
        )
        .with_header("retry-after", "0.2"),
        Action::Drop,
        Action::Truncate,
        Action::MalformedJson,
        Action::BadBase64,
    ]
}

/// A script that answers `rate` of the image requests with one of [`faults`], picked at
/// random from `seed`, and the rest normally.
pub fn chaos(rate: f64, seed: u64) -> Script {
    let rng = Mutex::new(fastrand::Rng::with_seed(seed));
    let faults = faults();
    Arc::new(move |_: &Incoming| {
        let mut rng = rng.lock().unwrap();
        if rng.f64() < rate {
            faults[rng.usize(..faults.len())].clone()
        } else {
            Action::Answer
        }
    })
}

/// How a fake server behaves.
#[derive(Clone)]
pub struct Options {
    /// Time every image request takes.
    pub latency: Duration,
    /// Model names (and Azure deployment names) accepted beyond the real ones, with GPT image
    /// rules that take every GPT image field and value.
    pub extra_models: Vec<String>,
    /// Decides faults per request; `Answer` by default.
    pub script: Option<Script>,
    /// Prompts containing this are refused as the moderation system would.
    pub refuse_marker: String,
    /// Answer every request with a link instead of `b64_json`, as some servers do.
    pub url_answers: bool,
    /// Links answer 403, as an expired signed URL does.
    pub links_expire: bool,
    /// The first this many fetches of links answer 503, as a stumbling file host would.
    pub link_faults: usize,
    /// Pad every PNG answer to about this many bytes with a `gnPd` chunk of pseudo-random
    /// bytes (see [`images::Padding`]), as big as a real image; `None` sends small PNGs.
    pub payload_bytes: Option<usize>,
    /// Limit image requests as the service limits images per minute; `None`: no limit and no
    /// `x-ratelimit-*` headers.
    pub rate_limit: Option<RateLimit>,
    /// Keep each answer's image in [`Recorded::image`] (and each batch line's in
    /// [`batches::AnsweredLine::image`]). On by default; a benchmark sending thousands of big
    /// images turns it off to save memory (then `image` is always `None`).
    pub record_images: bool,
    /// How the Files and Batches APIs behave: polls per status, output order, expiry,
    /// per-line scripts, faults, limits.
    pub batch: batches::BatchOptions,
}

/// A token bucket over image requests: it holds `burst` tokens, starts full and refills at
/// `per_minute / 60` tokens a second. A request that finds no token is answered `429
/// rate_limit_exceeded` with `retry-after-ms`; every success carries the service's
/// `x-ratelimit-{limit,remaining,reset}-requests` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Images per minute, more than 0.
    pub per_minute: u32,
    /// Tokens the bucket holds, more than 0.
    pub burst: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            latency: Duration::ZERO,
            extra_models: Vec::new(),
            script: None,
            refuse_marker: "FORBIDDEN".to_owned(),
            url_answers: false,
            links_expire: false,
            link_faults: 0,
            payload_bytes: None,
            rate_limit: None,
            record_images: true,
            batch: batches::BatchOptions::default(),
        }
    }
}

pub(super) struct State {
    pub(super) options: Options,
    addr: OnceLock<SocketAddr>,
    seq: AtomicUsize,
    image_seq: AtomicUsize,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
    recorded: Mutex<Vec<Recorded>>,
    /// When each image request still in flight arrived, by `seq`.
    open: Mutex<HashMap<usize, Instant>>,
    files: Mutex<HashMap<String, Vec<u8>>>,
    padding: Option<images::Padding>,
    bucket: Option<Mutex<Bucket>>,
    rate_limited: AtomicUsize,
    link_fetches: AtomicUsize,
    /// The Files and Batches APIs' files, batches and counters.
    pub(super) batches: batches::Store,
}

/// A running fake server; it stops when dropped.
pub struct FakeServer {
    pub(super) state: Arc<State>,
    service: Background,
}

impl FakeServer {
    pub fn start() -> FakeServer {
        FakeServer::with(Options::default())
    }

    pub fn with(options: Options) -> FakeServer {
        let padding = options.payload_bytes.map(images::Padding::new);
        let bucket = options
            .rate_limit
            .map(|limit| Mutex::new(Bucket::new(limit, Instant::now())));
        let state = Arc::new(State {
            options,
            addr: OnceLock::new(),
            seq: AtomicUsize::new(0),
            image_seq: AtomicUsize::new(0),
            link_fetches: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            peak_in_flight: AtomicUsize::new(0),
            recorded: Mutex::new(Vec::new()),
            open: Mutex::new(HashMap::new()),
            files: Mutex::new(HashMap::new()),
            padding,
            bucket,
            rate_limited: AtomicUsize::new(0),
            batches: batches::Store::default(),
        });
        let task_state = state.clone();
        let service = Background::start(move |stream| {
            let state = task_state.clone();
            async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let service = service_fn(move |req| handle(state.clone(), req));
                // A dropped connection is the service returning an error: hyper closes it.
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            }
        });
        // Nobody can connect before the address is known, so it is set before any request.
        let _ = state.addr.set(service.addr());
        FakeServer { state, service }
    }

    /// The API root to give genimg, like `https://api.openai.com/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.service.addr())
    }

    /// The Azure OpenAI endpoint, like `https://RESOURCE.openai.azure.com`: no path. Its routes
    /// are `/openai/v1/images/...` and `/openai/deployments/{deployment}/images/...`.
    pub fn azure_endpoint(&self) -> String {
        format!("http://{}", self.service.addr())
    }

    pub fn addr(&self) -> SocketAddr {
        self.service.addr()
    }

    /// Every request, in order of arrival.
    pub fn requests(&self) -> Vec<Recorded> {
        let mut v = self.state.recorded.lock().unwrap().clone();
        v.sort_by_key(|r| r.seq);
        v
    }

    /// The image requests (`POST` to OpenAI's or Azure's image routes), in order of arrival.
    pub fn image_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(Recorded::is_image_request)
            .collect()
    }

    /// The distinct prompts of the image requests, sorted.
    pub fn prompts(&self) -> Vec<String> {
        let mut prompts: Vec<String> = self.image_requests().iter().map(Recorded::prompt).collect();
        prompts.sort();
        prompts.dedup();
        prompts
    }

    /// The prompts of the image requests from the `range` of arrival order, sorted.
    pub fn prompts_of(&self, range: std::ops::RangeFrom<usize>) -> Vec<String> {
        let mut prompts: Vec<String> = self.image_requests()[range]
            .iter()
            .map(Recorded::prompt)
            .collect();
        prompts.sort();
        prompts
    }

    /// How many image requests have arrived, answered or not.
    pub fn image_requests_started(&self) -> usize {
        self.state.image_seq.load(Ordering::SeqCst)
    }

    /// The most image requests that were ever in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.state.peak_in_flight.load(Ordering::SeqCst)
    }

    /// How many image requests the rate limiter ([`Options::rate_limit`]) answered `429`.
    pub fn rate_limited(&self) -> usize {
        self.state.rate_limited.load(Ordering::SeqCst)
    }

    /// The number of image requests in flight after each arrival and each answer (a dropped
    /// connection is an answer), in time order: one entry per event. Requests still in
    /// flight count from their arrival. Every `POST` to an image route counts, whatever it
    /// was answered (a `401`, a `429` from the limiter, a scripted fault).
    pub fn in_flight_timeline(&self) -> Vec<(Instant, usize)> {
        // +1 at each arrival, -1 at each answer; at the same instant answers go first, so a
        // request answered as another arrives is not counted twice.
        // Both locks at once (in `push_record`'s order), so a request being recorded is seen
        // once, either answered or still open.
        let mut events: Vec<(Instant, i8)> = Vec::new();
        {
            let recorded = self.state.recorded.lock().unwrap();
            for r in recorded.iter().filter(|r| r.is_image_request()) {
                events.push((r.arrived, 1));
                events.push((r.answered, -1));
            }
            let open = self.state.open.lock().unwrap();
            events.extend(open.values().map(|&t| (t, 1)));
        }
        events.sort();
        let mut now = 0usize;
        events
            .into_iter()
            .map(|(t, delta)| {
                now = if delta > 0 { now + 1 } else { now - 1 };
                (t, now)
            })
            .collect()
    }

    /// The most image requests in flight at once at any time from `from` to `to` (both
    /// included), by [`FakeServer::in_flight_timeline`].
    pub fn peak_in_flight_between(&self, from: Instant, to: Instant) -> usize {
        let timeline = self.in_flight_timeline();
        let before = timeline
            .iter()
            .take_while(|(t, _)| *t < from)
            .last()
            .map_or(0, |&(_, n)| n);
        timeline
            .iter()
            .filter(|(t, _)| (from..=to).contains(t))
            .map(|&(_, n)| n)
            .fold(before, usize::max)
    }
}

/// The rate limiter's state, as a theoretical arrival time (GCRA): the bucket is full when
/// `tat <= now`, each request moves `tat` on by one token's `interval`, and a request that
/// would move it further than `burst` tokens ahead of now is refused. A refused request
/// counts all the same, as the service counts rejected requests against its limits: it
/// moves `tat` on too (up to a minute's worth past the burst), so hammering the limit
/// pushes the next success further away. All in whole nanoseconds, so a refill is never
/// missed by a rounding error.
pub(super) struct Bucket {
    limit: RateLimit,
    interval: Duration,
    tat: Instant,
}

/// What the limiter tells a client.
#[derive(Debug, Clone, Copy)]
pub(super) struct Quota {
    limit: u32,
    /// Whole tokens left.
    remaining: u32,
    /// Until the bucket is full again.
    reset: Duration,
    /// Until a token is there; zero after a success.
    pub(super) retry_after: Duration,
}

impl Bucket {
    pub(super) fn new(limit: RateLimit, now: Instant) -> Bucket {
        assert!(
            limit.per_minute > 0 && limit.burst > 0,
            "a rate limit needs a rate and a burst: {limit:?}"
        );
        Bucket {
            limit,
            interval: Duration::from_nanos(60_000_000_000 / u64::from(limit.per_minute)),
            tat: now,
        }
    }

    /// What the bucket holds at `now`, taking nothing.
    fn peek(&self, now: Instant) -> Quota {
        let capacity = self.interval * self.limit.burst;
        let used = self.tat.saturating_duration_since(now);
        let left = capacity.saturating_sub(used);
        Quota {
            limit: self.limit.per_minute,
            remaining: u32::try_from(left.as_nanos() / self.interval.as_nanos()).unwrap(),
            reset: used,
            retry_after: Duration::ZERO,
        }
    }

    /// Takes a token if there is one.
    pub(super) fn take(&mut self, now: Instant) -> Result<Quota, Quota> {
        let capacity = self.interval * self.limit.burst;
        let after = self.tat.max(now) + self.interval;
        let ahead = after - now;
        if ahead <= capacity {
            self.tat = after;
            let left = capacity - ahead;
            Ok(Quota {
                limit: self.limit.per_minute,
                remaining: u32::try_from(left.as_nanos() / self.interval.as_nanos()).unwrap(),
                reset: ahead,
                retry_after: Duration::ZERO,
            })
        } else {
            // Counted: the next token is one interval further away.
            self.tat = after.min(now + capacity + Duration::from_secs(60));
            let accepted_at = self.tat + self.interval - capacity;
            Err(Quota {
                limit: self.limit.per_minute,
                remaining: 0,
                reset: self.tat.saturating_duration_since(now),
                retry_after: accepted_at.saturating_duration_since(now),
            })
        }
    }
}

/// `d` rounded up to the millisecond, written as the service writes durations (Go's
/// `time.Duration`): `0s`, `100ms`, `1s`, `1.5s`, `6m0s`, `1h0m0s`.
pub fn go_duration(d: Duration) -> String {
    let ms = d.as_nanos().div_ceil(1_000_000);
    if ms == 0 {
        return "0s".to_owned();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let seconds = if rest % 1000 == 0 {
        format!("{}s", rest / 1000)
    } else {
        let frac = format!("{:03}", rest % 1000);
        format!("{}.{}s", rest / 1000, frac.trim_end_matches('0'))
    };
    if h > 0 {
        format!("{h}h{m}m{seconds}")
    } else if m > 0 {
        format!("{m}m{seconds}")
    } else {
        seconds
    }
}

pub(super) fn insert_header(response: &mut Response<Body>, name: &str, value: &str) {
    response.headers_mut().insert(
        hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
        value.parse().unwrap(),
    );
}

fn add_quota_headers(response: &mut Response<Body>, quota: &Quota) {
    insert_header(
        response,
        "x-ratelimit-limit-requests",
        &quota.limit.to_string(),
    );
    insert_header(
        response,
        "x-ratelimit-remaining-requests",
        &quota.remaining.to_string(),
    );
    insert_header(
        response,
        "x-ratelimit-reset-requests",
        &go_duration(quota.reset),
    );
}

/// The service's answer to a request over its images-per-minute limit.
fn rate_limited_response(model: &str, quota: &Quota) -> Response<Body> {
    let wait = go_duration(quota.retry_after);
    let err = ApiErr {
        status: 429,
        message: format!(
            "Rate limit reached for {model} in organization org-fake on images per min (IPM): \
             Limit {limit}, Used {limit}, Requested 1. Please try again in {wait}. Visit \
             https://platform.openai.com/account/rate-limits to learn more.",
            limit = quota.limit
        ),
        kind: "requests".to_owned(),
        param: None,
        code: Some("rate_limit_exceeded".to_owned()),
        azure: false,
    };
    let mut response = error_response(&err);
    insert_header(
        &mut response,
        "retry-after-ms",
        &quota.retry_after.as_nanos().div_ceil(1_000_000).to_string(),
    );
    add_quota_headers(&mut response, quota);
    response
}

/// The reason the fake closes a connection without answering.
#[derive(Debug)]
pub(super) struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dropped on purpose")
    }
}

impl std::error::Error for Dropped {}

async fn handle(
    state: Arc<State>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, Dropped> {
    let seq = state.seq.fetch_add(1, Ordering::SeqCst);
    let arrived = Instant::now();
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
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
    let mut record = Recorded {
        seq,
        method: method.clone(),
        path: path.clone(),
        query,
        headers,
        fields: Map::new(),
        is_multipart: false,
        files: Vec::new(),
        status: 0,
        image: None,
        partials: Vec::new(),
        arrived,
        answered: arrived,
    };

    if method == "GET"
        && let Some(id) = path.strip_prefix("/files/")
    {
        let bytes = state.files.lock().unwrap().get(id).cloned();
        let response = match bytes {
            Some(_)
                if state.link_fetches.fetch_add(1, Ordering::SeqCst)
                    < state.options.link_faults =>
            {
                respond(503, "text/plain", b"busy".to_vec())
            }
            Some(_) if state.options.links_expire => respond(
                403,
                "application/xml",
                b"<Error><Code>AuthenticationFailed</Code></Error>".to_vec(),
            ),
            Some(bytes) => {
                record.image = Some(bytes.clone());
                let mime = rules::sniff(&bytes).unwrap_or("application/octet-stream");
                respond(200, mime, bytes)
            }
            None => error_response(&ApiErr::not_found(&path)),
        };
        return Ok(finish(&state, record, response));
    }

    if batches::is_route(&path) {
        return match batches::handle(&state, req, &mut record).await {
            Ok(response) => Ok(finish(&state, record, response)),
            Err(Dropped) => {
                record.answered = Instant::now();
                push_record(&state, record);
                Err(Dropped)
            }
        };
    }

    let is_image = method == "POST" && is_image_path(&path);
    if !is_image {
        let response = error_response(&ApiErr::not_found(&path));
        return Ok(finish(&state, record, response));
    }

    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.peak_in_flight.fetch_max(now, Ordering::SeqCst);
    state.open.lock().unwrap().insert(seq, arrived);
    let mut flight = Flight {
        state: state.clone(),
        record: Some(record),
    };
    let result = answer_image_request(&state, req, flight.record.as_mut().unwrap()).await;
    let mut record = flight.record.take().unwrap();
    drop(flight);
    match result {
        Ok(response) => Ok(finish(&state, record, response)),
        Err(Dropped) => {
            record.status = 0;
            record.answered = Instant::now();
            push_record(&state, record);
            Err(Dropped)
        }
    }
}

/// An image request in flight. Dropped when it is answered, or when hyper drops the request's
/// future because the client went away: then it is recorded as a dropped connection.
struct Flight {
    state: Arc<State>,
    record: Option<Recorded>,
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

/// Records an answered request; it is no longer in flight.
fn push_record(state: &State, record: Recorded) {
    let mut recorded = state.recorded.lock().unwrap();
    state.open.lock().unwrap().remove(&record.seq);
    recorded.push(record);
}

/// Every answer carries an `x-request-id`: `req_fake_{seq}`, unless a scripted answer
/// ([`Action::Raw`], or [`Action::Error`] with headers) set its own.
fn finish(state: &State, mut record: Recorded, mut response: Response<Body>) -> Response<Body> {
    if !response.headers().contains_key("x-request-id") {
        response.headers_mut().insert(
            "x-request-id",
            format!("req_fake_{}", record.seq).parse().unwrap(),
        );
    }
    record.status = response.status().as_u16();
    record.answered = Instant::now();
    if !state.options.record_images {
        record.image = None;
    }
    push_record(state, record);
    response
}

/// OpenAI's answer to a request without its key as a bearer token; `None` if the key is there.
pub(super) fn openai_key_error(record: &Recorded) -> Option<ApiErr> {
    let auth = record.header("authorization").unwrap_or_default();
    (auth != format!("Bearer {KEY}"))
        .then(|| ApiErr::unauthorized(auth.strip_prefix("Bearer ").unwrap_or(auth)))
}

async fn answer_image_request(
    state: &State,
    req: Request<hyper::body::Incoming>,
    record: &mut Recorded,
) -> Result<Response<Body>, Dropped> {
    let content_type = record.header("content-type").unwrap_or("").to_owned();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(Dropped),
    };

    // The service checks the key before anything else: OpenAI's as a bearer token, Azure's in
    // the `api-key` header (a bearer token there would be an Entra ID token, which this fake
    // does not issue).
    let azure = record.path.starts_with("/openai/");
    if azure {
        if record.header("api-key") != Some(KEY) {
            return Ok(error_response(&ApiErr::azure_unauthorized()));
        }
    } else if let Some(err) = openai_key_error(record) {
        return Ok(error_response(&err));
    }

    let path = record.path.clone();
    let Some((route, op)) = image_route(&path) else {
        let err = if azure {
            ApiErr::azure_not_found()
        } else {
            ApiErr::not_found(&path)
        };
        return Ok(error_response(&err));
    };
    // Azure's classic routes do not exist without an `api-version`.
    if let rules::Route::AzureDeployment(_) = route {
        match record.query_param("api-version") {
            None => return Ok(error_response(&ApiErr::azure_not_found())),
            Some(v) if !api_version_ok(&v) => {
                return Ok(error_response(&ApiErr::azure_bad_api_version(&v)));
            }
            Some(_) => {}
        }
    }

    // Parse the body as the service would.
    if content_type.starts_with("multipart/form-data") {
        record.is_multipart = true;
        match parse_multipart(&content_type, body).await {
            Ok((fields, files)) => {
                record.fields = fields;
                record.files = files;
            }
            Err(e) => return Ok(error_response(&e)),
        }
    } else if content_type.starts_with("application/json") {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => record.fields = map,
            _ => return Ok(error_response(&ApiErr::invalid_json())),
        }
    } else {
        return Ok(error_response(&ApiErr::bad_content_type(&content_type)));
    }

    let checked = match rules::check(
        op,
        route,
        record.is_multipart,
        &record.fields,
        &record.files,
        &state.options.extra_models,
    ) {
        Ok(checked) => checked,
        Err(e) => return Ok(error_response(&e)),
    };
    let family = checked.family;

    // The limiter counts valid requests, as they arrive.
    let quota = match &state.bucket {
        None => None,
        Some(bucket) => match bucket.lock().unwrap().take(Instant::now()) {
            Ok(quota) => Some(quota),
            Err(quota) => {
                state.rate_limited.fetch_add(1, Ordering::SeqCst);
                return Ok(rate_limited_response(&checked.model, &quota));
            }
        },
    };

    let incoming = Incoming {
        nth: state.image_seq.fetch_add(1, Ordering::SeqCst),
        path: record.path.clone(),
        model: checked.model,
        prompt: record.prompt(),
    };
    let action = match &state.options.script {
        Some(script) => script(&incoming),
        None => Action::Answer,
    };
    if !state.options.latency.is_zero() {
        tokio::time::sleep(state.options.latency).await;
    }

    let format = output_format(&record.fields);
    let seq = incoming.nth as u64 + 1;
    let image = picture(state, &record.fields, seq);
    let streaming = flag(&record.fields, "stream");
    match action {
        Action::Answer => {}
        Action::Delay(d) => tokio::time::sleep(d).await,
        Action::Error { .. } | Action::Raw { .. } => {
            return Ok(scripted_answer(&action).expect("an error or a raw answer"));
        }
        Action::Drop => return Err(Dropped),
        // A stream cut after its partial images, before the completed event.
        Action::Truncate if streaming => {
            let (events, partials) = sse_events(op, &record.fields, &image, state, seq, false);
            record.partials = partials;
            return Ok(cut_stream(events));
        }
        Action::Truncate => {
            let body = success_body(state, family, &record.fields, &image, &incoming);
            return Ok(truncated(body.concat()));
        }
        Action::MalformedJson => {
            return Ok(respond(
                200,
                "application/json",
                b"{\"created\": 17, \"data\": [{\"b64_json\": \"iVBOR".to_vec(),
            ));
        }
        Action::BadBase64 => {
            let body = json!({"created": 1, "data": [{"b64_json": "this is %%% not base64 !!"}]});
            return Ok(respond(
                200,
                "application/json",
                body.to_string().into_bytes(),
            ));
        }
        Action::WrongFormat => {
            let wrong = if format == "png" {
                jpeg(seq)
            } else {
                images::png(seq)
            };
            let body = json!({"created": 1, "data": [{"b64_json": STANDARD.encode(&wrong)}]});
            record.image = Some(wrong);
            return Ok(respond(
                200,
                "application/json",
                body.to_string().into_bytes(),
            ));
        }
    }

    let body = match answer_valid(state, family, &record.fields, &image, &incoming) {
        Ok(body) => body,
        Err(err) => return Ok(error_response(&err)),
    };
    if state.options.record_images {
        record.image = Some(image.bytes(state));
    }
    if streaming {
        let (events, partials) = sse_events(op, &record.fields, &image, state, seq, true);
        record.partials = partials;
        return Ok(respond(200, "text/event-stream", events));
    }
    let mut response = respond_parts(200, "application/json", body);
    // The headers say what the bucket holds as the answer leaves, not as the request came:
    // it refilled meanwhile.
    if let (Some(_), Some(bucket)) = (quota, &state.bucket) {
        let now = bucket.lock().unwrap().peek(Instant::now());
        add_quota_headers(&mut response, &now);
    }
    Ok(response)
}

/// The answer of a scripted [`Action::Error`] (the API's error body, with the action's
/// headers) or [`Action::Raw`]; `None` for any other action.
pub(super) fn scripted_answer(action: &Action) -> Option<Response<Body>> {
    let (mut response, headers) = match action {
        Action::Error {
            status,
            code,
            kind,
            message,
            headers,
        } => {
            let err = ApiErr {
                status: *status,
                message: message.clone(),
                kind: kind.clone(),
                param: None,
                code: code.clone(),
                azure: false,
            };
            (error_response(&err), headers)
        }
        Action::Raw {
            status,
            headers,
            body,
        } => (
            respond(*status, "text/html", body.clone().into_bytes()),
            headers,
        ),
        _ => return None,
    };
    for (k, v) in headers {
        insert_header(&mut response, k, v);
    }
    Some(response)
}

/// The image an answer to `fields` carries, `seq`'s: in the `output_format` asked for (only
/// GPT image models take it, and the rules have checked its value), padded as
/// [`Options::payload_bytes`] asks if it is a PNG.
pub(super) fn picture(state: &State, fields: &Map<String, Value>, seq: u64) -> Picture {
    let format = output_format(fields);
    match &state.padding {
        Some(_) if format == "png" => Picture::Padded(images::png(seq)),
        _ => Picture::Plain(image_in(format, seq)),
    }
}

/// The answer to a valid image request that its script let through: the moderation system's
/// refusal if the prompt holds [`Options::refuse_marker`] (moderation looks at the prompt
/// last, as it runs on a valid request), else the documented body, as JSON in pieces.
pub(super) fn answer_valid(
    state: &State,
    family: rules::Family,
    fields: &Map<String, Value>,
    image: &Picture,
    incoming: &Incoming,
) -> Result<Vec<Bytes>, ApiErr> {
    if incoming.prompt.contains(&state.options.refuse_marker) {
        return Err(ApiErr::refused(family));
    }
    Ok(success_body(state, family, fields, image, incoming))
}

/// Stands for the `b64_json` string in a body until it is written out: the image's megabytes
/// of base64 go out as pieces of their own, never escaped into a JSON string nor copied.
const B64_PLACEHOLDER: &str = "@@genimg-fake-b64@@";

/// `body` as JSON, in pieces to send one after the other, with its `b64_json` placeholder
/// replaced by the pieces of `b64`.
fn render(body: &Value, b64: Option<Vec<Bytes>>) -> Vec<Bytes> {
    let text = body.to_string();
    let Some(b64) = b64 else {
        return vec![Bytes::from(text)];
    };
    let at = text
        .find(B64_PLACEHOLDER)
        .expect("the placeholder is in the body");
    let text = Bytes::from(text);
    let mut parts = Vec::with_capacity(b64.len() + 2);
    parts.push(text.slice(..at));
    parts.extend(b64);
    parts.push(text.slice(at + B64_PLACEHOLDER.len()..));
    parts
}

/// An answer's image.
pub(super) enum Picture {
    /// The whole image.
    Plain(Vec<u8>),
    /// A small PNG, with the server's [`images::Padding`] to splice in.
    Padded(Vec<u8>),
}

impl Picture {
    /// The whole image.
    pub(super) fn bytes(&self, state: &State) -> Vec<u8> {
        match self {
            Picture::Plain(bytes) => bytes.clone(),
            Picture::Padded(small) => state.padding.as_ref().expect("padded").splice(small),
        }
    }

    /// The image in base64, in pieces; a padded one shares its padding's encoding, so only
    /// the small PNG around it is encoded and nothing big is copied.
    fn base64(&self, state: &State) -> Vec<Bytes> {
        match self {
            Picture::Plain(bytes) => vec![Bytes::from(STANDARD.encode(bytes))],
            Picture::Padded(small) => state
                .padding
                .as_ref()
                .expect("padded")
                .base64_parts(small)
                .to_vec(),
        }
    }
}

/// The documented answer, as JSON in pieces: `b64_json` for GPT image models and for
/// `response_format: b64_json`; otherwise a link served by this fake.
fn success_body(
    state: &State,
    family: rules::Family,
    fields: &Map<String, Value>,
    image: &Picture,
    incoming: &Incoming,
) -> Vec<Bytes> {
    let wants_url = state.options.url_answers
        || (family != rules::Family::Gpt
            && fields.get("response_format").and_then(Value::as_str) != Some("b64_json"));
    let format = output_format(fields);
    let mut datum = Map::new();
    let mut b64 = None;
    if wants_url {
        let id = format!("img-{}.{format}", incoming.nth + 1);
        state
            .files
            .lock()
            .unwrap()
            .insert(id.clone(), image.bytes(state));
        datum.insert(
            "url".into(),
            format!(
                "http://{}/files/{id}",
                state.addr.get().expect("set at start")
            )
            .into(),
        );
    } else {
        b64 = Some(image.base64(state));
        datum.insert("b64_json".into(), B64_PLACEHOLDER.into());
    }
    if family == rules::Family::DallE3 {
        datum.insert(
            "revised_prompt".into(),
            format!("A vivid rendering of: {}", incoming.prompt).into(),
        );
    }
    let mut body = json!({
        "created": 1_713_833_628,
        "data": [Value::Object(datum)],
    });
    if family == rules::Family::Gpt {
        let size = fields
            .get("size")
            .and_then(Value::as_str)
            .unwrap_or("1024x1024");
        let quality = fields
            .get("quality")
            .and_then(Value::as_str)
            .unwrap_or("auto");
        let background = match fields.get("background").and_then(Value::as_str) {
            Some("transparent") => "transparent",
            _ => "opaque",
        };
        body["background"] = background.into();
        body["output_format"] = format.into();
        body["size"] = size.into();
        body["quality"] = quality.into();
        body["usage"] = json!({
            "input_tokens": 50, "output_tokens": 7024, "total_tokens": 7074,
            "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
            "output_tokens_details": {"image_tokens": 7000, "text_tokens": 24}
        });
    }
    render(&body, b64)
}

/// The image route `path` names, and the operation; `None` for any other path.
fn image_route(path: &str) -> Option<(rules::Route<'_>, rules::Op)> {
    let (route, endpoint) = if let Some(rest) = path.strip_prefix("/v1/images/") {
        (rules::Route::OpenAi, rest)
    } else if let Some(rest) = path.strip_prefix("/openai/v1/images/") {
        (rules::Route::AzureV1, rest)
    } else {
        let rest = path.strip_prefix("/openai/deployments/")?;
        let (deployment, endpoint) = rest.split_once("/images/")?;
        if deployment.is_empty() || deployment.contains('/') {
            return None;
        }
        (rules::Route::AzureDeployment(deployment), endpoint)
    };
    let op = match endpoint {
        "generations" => rules::Op::Generate,
        "edits" => rules::Op::Edit,
        _ => return None,
    };
    Some((route, op))
}

/// Azure's dated API versions: `2024-10-21`, `2025-04-01-preview`.
fn api_version_ok(version: &str) -> bool {
    let date = version.strip_suffix("-preview").unwrap_or(version);
    date.len() == 10
        && date.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        })
}

/// The format the answer is in: the request's `output_format`, PNG by default.
pub(super) fn output_format(fields: &Map<String, Value>) -> &str {
    fields
        .get("output_format")
        .and_then(Value::as_str)
        .unwrap_or("png")
}

/// Answer `seq`'s image in `format` (`png`, `jpeg` or `webp`): real bytes, different for
/// every `seq`.
pub fn image_in(format: &str, seq: u64) -> Vec<u8> {
    match format {
        "jpeg" => jpeg(seq),
        "webp" => webp(seq),
        "gif" => gif(seq),
        "svg" => svg(seq),
        _ => images::png(seq),
    }
}

/// An animated GIF of two 1x1 frames, with a comment extension naming `seq`.
pub fn gif(seq: u64) -> Vec<u8> {
    let comment = format!("genimg fake image {seq}");
    let mut out = Vec::new();
    out.extend_from_slice(b"GIF89a\x01\x00\x01\x00\x80\x00\x00");
    out.extend_from_slice(&[0, 0, 0, 0xff, 0xff, 0xff]);
    // NETSCAPE2.0: loop forever.
    out.extend_from_slice(b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00");
    out.extend_from_slice(&[0x21, 0xfe, u8::try_from(comment.len()).expect("short")]);
    out.extend_from_slice(comment.as_bytes());
    out.push(0);
    for color in [0u8, 1] {
        // Graphic control: 20 cs a frame; then one pixel of `color`.
        out.extend_from_slice(&[0x21, 0xf9, 0x04, 0x00, 0x14, 0x00, 0x00, 0x00]);
        out.extend_from_slice(&[0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0]);
        out.extend_from_slice(&[0x02, 0x02, 0x44 | color, 0x01, 0x00]);
    }
    out.push(0x3b);
    out
}

/// An SVG document naming `seq`, with an XML prolog.
pub fn svg(seq: u64) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"64\" height=\"64\" viewBox=\"0 0 64 64\"><!-- genimg fake image {seq} -->\
         <rect width=\"64\" height=\"64\" fill=\"#3a7\"/></svg>\n"
    )
    .into_bytes()
}

/// The JPEG fixture with a comment segment (`COM`) naming `seq` right after the start-of-image
/// marker: still a valid JPEG, with the same pixels.
pub fn jpeg(seq: u64) -> Vec<u8> {
    let fixture = images::fixture("reference.jpg");
    let comment = format!("genimg fake image {seq}");
    let length = u16::try_from(comment.len() + 2).expect("short comment");
    let mut out = Vec::with_capacity(fixture.len() + comment.len() + 4);
    out.extend_from_slice(&fixture[..2]);
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(comment.as_bytes());
    out.extend_from_slice(&fixture[2..]);
    out
}

/// The WebP fixture (a simple lossy file: one `VP8 ` chunk) rewritten in the extended format,
/// which allows chunks a decoder skips: `VP8X`, the fixture's `VP8 ` chunk unchanged, then a
/// `GNMG` chunk naming `seq`, with the RIFF size to match.
pub fn webp(seq: u64) -> Vec<u8> {
    let fixture = images::fixture("reference.webp");
    let vp8 = &fixture[12..];
    assert_eq!(&vp8[..4], b"VP8 ", "the fixture is a simple lossy WebP");
    // The VP8 key frame: a 3-byte tag, the start code 9d 01 2a, then 14-bit width and height.
    let frame = &vp8[8..];
    let width = u32::from(u16::from_le_bytes([frame[6], frame[7]]) & 0x3FFF);
    let height = u32::from(u16::from_le_bytes([frame[8], frame[9]]) & 0x3FFF);

    let mut chunks = Vec::new();
    chunks.extend_from_slice(b"VP8X");
    chunks.extend_from_slice(&10u32.to_le_bytes());
    chunks.extend_from_slice(&[0; 4]); // no ICC, alpha, EXIF, XMP or animation
    chunks.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
    chunks.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
    chunks.extend_from_slice(vp8);
    let note = format!("genimg fake image {seq}").into_bytes();
    chunks.extend_from_slice(b"GNMG");
    chunks.extend_from_slice(&u32::try_from(note.len()).unwrap().to_le_bytes());
    chunks.extend_from_slice(&note);
    if note.len() % 2 == 1 {
        chunks.push(0);
    }

    let mut out = Vec::with_capacity(chunks.len() + 12);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&u32::try_from(chunks.len() + 4).unwrap().to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend_from_slice(&chunks);
    out
}

pub(super) async fn parse_multipart(
    content_type: &str,
    body: Bytes,
) -> Result<(Map<String, Value>, Vec<FilePart>), ApiErr> {
    let boundary = multer::parse_boundary(content_type).map_err(|_| ApiErr::invalid_multipart())?;
    let stream = futures_util::stream::once(async move { Ok::<Bytes, Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut fields = Map::new();
    let mut files = Vec::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|_| ApiErr::invalid_multipart())?
    {
        let name = field.name().unwrap_or("").to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(|m| m.to_string());
        let bytes = field
            .bytes()
            .await
            .map_err(|_| ApiErr::invalid_multipart())?;
        if file_name.is_some() {
            files.push(FilePart {
                name,
                file_name,
                content_type,
                bytes: bytes.to_vec(),
            });
        } else {
            if fields.contains_key(&name) {
                return Err(ApiErr::duplicate(&name));
            }
            fields.insert(name, String::from_utf8_lossy(&bytes).into_owned().into());
        }
    }
    Ok((fields, files))
}

pub(super) fn respond(status: u16, content_type: &str, body: Vec<u8>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)).map_err(|e| match e {}).boxed())
        .unwrap()
}

/// A body sent in pieces, as one: the length is announced, and hyper writes the pieces out
/// without joining them.
pub(super) fn respond_parts(status: u16, content_type: &str, parts: Vec<Bytes>) -> Response<Body> {
    let length: usize = parts.iter().map(Bytes::len).sum();
    let frames = futures_util::stream::iter(
        parts
            .into_iter()
            .map(|part| Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Frame::data(part))),
    );
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-length", length.to_string())
        .body(BodyExt::boxed(StreamBody::new(frames)))
        .unwrap()
}

pub(super) fn error_response(err: &ApiErr) -> Response<Body> {
    respond(
        err.status,
        "application/json",
        err.body().to_string().into_bytes(),
    )
}

/// Whether a boolean field is true, in JSON or as a multipart text field.
fn flag(fields: &Map<String, Value>, name: &str) -> bool {
    match fields.get(name) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

/// The events of a streamed answer: `partial_images` partial images (each a PNG of its own),
/// then, if `complete`, the `*.completed` event with the image and its usage, as the service
/// sends them (`event:` and `data:` lines, a blank line after each). Also the partials' bytes.
fn sse_events(
    op: rules::Op,
    fields: &Map<String, Value>,
    image: &Picture,
    state: &State,
    seq: u64,
    complete: bool,
) -> (Vec<u8>, Vec<Vec<u8>>) {
    let prefix = match op {
        rules::Op::Generate => "image_generation",
        rules::Op::Edit => "image_edit",
    };
    let count = match fields.get("partial_images") {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    };
    let size = fields
        .get("size")
        .and_then(Value::as_str)
        .unwrap_or("1024x1024");
    let quality = fields
        .get("quality")
        .and_then(Value::as_str)
        .unwrap_or("auto");
    let format = output_format(fields);
    let mut out = Vec::new();
    let mut partials = Vec::new();
    let mut event = |name: String, data: Value| {
        out.extend_from_slice(format!("event: {name}\ndata: {data}\n\n").as_bytes());
    };
    for index in 0..count {
        let bytes = images::png(PARTIAL_SEQ_BASE + seq * 8 + index);
        event(
            format!("{prefix}.partial_image"),
            json!({
                "type": format!("{prefix}.partial_image"),
                "b64_json": STANDARD.encode(&bytes),
                "partial_image_index": index,
                "size": size, "quality": quality, "background": "opaque",
                "output_format": format, "created_at": 1_713_833_628,
            }),
        );
        partials.push(bytes);
    }
    if complete {
        event(
            format!("{prefix}.completed"),
            json!({
                "type": format!("{prefix}.completed"),
                "b64_json": STANDARD.encode(image.bytes(state)),
                "size": size, "quality": quality, "background": "opaque",
                "output_format": format, "created_at": 1_713_833_628,
                "usage": {
                    "input_tokens": 50, "output_tokens": 7024, "total_tokens": 7074,
                    "input_tokens_details": {"text_tokens": 50, "image_tokens": 0}
                },
            }),
        );
    }
    (out, partials)
}

/// The partial images' sequence numbers start here, far from any final image's.
pub const PARTIAL_SEQ_BASE: u64 = 1 << 36;

/// Sends a stream's events, then fails the stream so the connection closes: no completed
/// event ever comes.
fn cut_stream(events: Vec<u8>) -> Response<Body> {
    // A length beyond what is sent: the headers and the events go out, then the end never
    // comes.
    let promised = events.len() + 4096;
    use futures_util::StreamExt as _;
    // The events are flushed before the connection drops: a client sees them all.
    let frames = futures_util::stream::iter(vec![Ok(Frame::data(Bytes::from(events)))]).chain(
        futures_util::stream::once(async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Err(Box::new(Dropped) as Box<dyn std::error::Error + Send + Sync>)
        }),
    );
    Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .header("content-length", promised.to_string())
        .body(BodyExt::boxed(StreamBody::new(frames)))
        .unwrap()
}

/// Announces the full length, sends half, then fails the stream so the connection closes.
pub(super) fn truncated(body: Vec<u8>) -> Response<Body> {
    let half = Bytes::from(body[..body.len() / 2].to_vec());
    let frames = futures_util::stream::iter(vec![
        Ok(Frame::data(half)),
        Err(Box::new(Dropped) as Box<dyn std::error::Error + Send + Sync>),
    ]);
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("content-length", body.len().to_string())
        .body(BodyExt::boxed(StreamBody::new(frames)))
        .unwrap()
}
