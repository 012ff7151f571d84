//! The one HTTP transport every provider's requests go through: one reqwest client (rustls,
//! on tokio) for the whole run, timeouts, the key kept out of everything a server says back,
//! image links fetched without the key, and the memory slots that bound answers in flight.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use backon::Retryable as _;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

use super::error::ApiError;
use super::retry::{RetryPolicy, Verdict};

pub const USER_AGENT: &str = concat!("genimg/", env!("CARGO_PKG_VERSION"));

/// Further tries at an image link that fails on its way, before the request is made again.
const DOWNLOAD_RETRIES: u32 = 3;

/// A client that cannot be built: a key or header that HTTP cannot carry, or TLS set-up.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the API key contains characters that cannot be sent in an HTTP header")]
    BadKey,
    #[error("{name} contains characters that cannot be sent in an HTTP header")]
    BadHeader { name: &'static str },
    #[error("could not set up HTTP: {0}")]
    Http(#[from] reqwest::Error),
}

/// What a request carries, as a provider encoded it.
#[derive(Debug)]
pub struct WireRequest {
    pub url: Url,
    pub body: WireBody,
}

/// A request body.
#[derive(Debug)]
pub enum WireBody {
    Json(serde_json::Map<String, Value>),
    Multipart(reqwest::multipart::Form),
}

/// The body of a call to the API that is not an image request.
#[derive(Debug)]
pub enum CallBody {
    None,
    Json(Value),
    Multipart(reqwest::multipart::Form),
    /// A body as is, with headers of its own (Gemini's resumable upload).
    Raw {
        headers: HeaderMap,
        body: reqwest::Body,
    },
    /// JSON, with headers of its own.
    JsonWith {
        headers: HeaderMap,
        json: Value,
    },
}

/// The answer to such a call, an error body's key scrubbed out.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// A header's value as text, if it has one that is.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A partial image's index from the service is taken below this; a larger one (there are at
/// most 3) gives way to genimg's own count.
const MAX_PARTIAL_INDEX: u64 = 100;

/// Where partial images go as a stream brings them: their index (from 1) and bytes.
pub type PartialSink = dyn Fn(u32, &[u8]) + Send + Sync;

/// Server-sent events, read as their bytes arrive: `event: NAME` and `data: ...` lines, a
/// blank line after each event, lines ended by LF, CRLF or CR alike (the format allows all
/// three, and a server or proxy may mix them). Each byte is looked at once, however the stream
/// is cut into chunks and however long an event is: a completed event carries megabytes of
/// base64.
#[derive(Debug, Default)]
struct EventReader {
    /// What arrived and is not read yet, from `start`.
    pending: Vec<u8>,
    start: usize,
    /// How far `pending` is known to hold no line end.
    scanned: usize,
    /// The last line ended with CR: a LF right after it ends the same line.
    after_cr: bool,
    /// The event being read: its name, its data lines joined, whether it has any.
    name: Option<String>,
    data: Vec<u8>,
    has_data: bool,
}

/// An event's name, if it has one, and its data.
type SseEvent = (Option<String>, Vec<u8>);

impl EventReader {
    /// Adds bytes that arrived.
    fn feed(&mut self, chunk: &[u8]) {
        // What was read goes: at most the rest of the last chunk is moved.
        self.pending.drain(..self.start);
        self.scanned -= self.start;
        self.start = 0;
        self.pending.extend_from_slice(chunk);
    }

    /// The next whole event, if one has arrived. At the end of the stream (`ended`) an event
    /// needs no blank line after it.
    fn next(&mut self, ended: bool) -> Option<SseEvent> {
        loop {
            if self.after_cr {
                match self.pending.get(self.start) {
                    Some(b'\n') => {
                        self.start += 1;
                        self.after_cr = false;
                    }
                    Some(_) => self.after_cr = false,
                    None if ended => self.after_cr = false,
                    None => return None,
                }
            }
            let from = self.scanned.max(self.start);
            match memchr::memchr2(b'\n', b'\r', &self.pending[from..]) {
                Some(at) => {
                    let end = from + at;
                    self.after_cr = self.pending[end] == b'\r';
                    let (start, blank) = (self.start, end == self.start);
                    self.start = end + 1;
                    self.scanned = self.start;
                    if blank {
                        if let Some(event) = self.dispatch() {
                            return Some(event);
                        }
                    } else {
                        self.field(start, end);
                    }
                }
                None => {
                    self.scanned = self.pending.len();
                    if !ended {
                        return None;
                    }
                    if self.start < self.pending.len() {
                        self.field(self.start, self.pending.len());
                        self.start = self.pending.len();
                        self.scanned = self.start;
                    }
                    return self.dispatch();
                }
            }
        }
    }

    /// Reads the line `pending[start..end]`: a field of the event, or a comment.
    fn field(&mut self, start: usize, end: usize) {
        let line = &self.pending[start..end];
        if line.starts_with(b":") {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"event" => {
                let name = String::from_utf8_lossy(value).trim().to_owned();
                self.name = (!name.is_empty()).then_some(name);
            }
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            _ => {}
        }
    }

    /// The event read so far, at its blank line: none if it had no data.
    fn dispatch(&mut self) -> Option<SseEvent> {
        let name = self.name.take();
        let data = std::mem::take(&mut self.data);
        std::mem::take(&mut self.has_data).then_some((name, data))
    }
}

/// An event of a streamed images answer, its fields as written (`RawValue`s are slices of
/// the event's text, checked as JSON but not decoded). Fields it does not know are skipped.
#[derive(serde::Deserialize)]
struct StreamEvent<'a> {
    // Raw too, so that a field of an unexpected JSON type never loses the event.
    #[serde(rename = "type", borrow, default)]
    kind: Option<&'a RawValue>,
    #[serde(borrow, default)]
    b64_json: Option<&'a RawValue>,
    #[serde(borrow, default)]
    url: Option<&'a RawValue>,
    #[serde(borrow, default)]
    revised_prompt: Option<&'a RawValue>,
    #[serde(borrow, default)]
    partial_image_index: Option<&'a RawValue>,
    #[serde(borrow, default)]
    usage: Option<&'a RawValue>,
    #[serde(borrow, default)]
    size: Option<&'a RawValue>,
    #[serde(borrow, default)]
    quality: Option<&'a RawValue>,
    #[serde(borrow, default)]
    output_format: Option<&'a RawValue>,
    #[serde(borrow, default)]
    background: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

impl StreamEvent<'_> {
    /// A completed event as the images answer it stands for:
    /// `{"data": [{"b64_json", "url", "revised_prompt"}], "usage", ...}`, each field's JSON
    /// copied as it came.
    fn answer(&self) -> String {
        let datum = [
            ("b64_json", self.b64_json),
            ("url", self.url),
            ("revised_prompt", self.revised_prompt),
        ];
        let top = [
            ("usage", self.usage),
            ("size", self.size),
            ("quality", self.quality),
            ("output_format", self.output_format),
            ("background", self.background),
        ];
        // One buffer of the right size: the base64 is copied once.
        let size: usize = datum
            .iter()
            .chain(&top)
            .filter_map(|(key, value)| value.map(|v| key.len() + v.get().len() + 4))
            .sum();
        let mut out = String::with_capacity(size + 16);
        let put = |pairs: &[(&str, Option<&RawValue>)], out: &mut String| {
            for (key, value) in pairs {
                if let Some(value) = value {
                    if !out.ends_with(['{', '[']) {
                        out.push(',');
                    }
                    out.push('"');
                    out.push_str(key);
                    out.push_str("\":");
                    out.push_str(value.get());
                }
            }
        };
        out.push_str("{\"data\":[{");
        put(&datum, &mut out);
        out.push_str("}]");
        put(&top, &mut out);
        out.push('}');
        out
    }
}

/// The error answer an `error` event of a stream stands for: its status and an error body.
/// The error is the event's `error` object (`{"error": {"code", "message", "type"}}`), or
/// the event itself where it carries those fields at its top. A server error, or an error
/// that says nothing of what it is, is a 500 (asked again, as a cut stream is); a rate
/// limit a 429; any other (a refusal, an empty account, a bad request) a 400.
fn error_event(data: &Value) -> (u16, Bytes) {
    let mut error = match data.get("error") {
        Some(error @ Value::Object(_)) => error.clone(),
        // `data: "what went wrong"`: the text is the message.
        _ if data.is_string() => serde_json::json!({ "message": data }),
        _ => {
            let mut error = data.clone();
            if let Some(fields) = error.as_object_mut() {
                fields.remove("type");
                // `{"type": "error", "error": "what went wrong"}`: the text is the message.
                if let Some(Value::String(message)) = fields.remove("error") {
                    fields
                        .entry("message")
                        .or_insert_with(|| Value::String(message));
                }
            }
            error
        }
    };
    let text = |key: &str| error.get(key).and_then(Value::as_str);
    let status = match (text("type"), text("code")) {
        (Some("server_error"), _) | (None, None) => 500,
        (Some("requests" | "tokens"), _) | (_, Some("rate_limit_exceeded")) => 429,
        _ => 400,
    };
    if let Some(fields) = error.as_object_mut()
        && !fields.get("message").is_some_and(Value::is_string)
    {
        fields.insert(
            "message".into(),
            "the stream ended with an error event".into(),
        );
    }
    (
        status,
        Bytes::from(serde_json::json!({ "error": error }).to_string()),
    )
}

/// A local file that could not be written, as an error of the request it belonged to.
fn io_error(path: &std::path::Path, e: &std::io::Error) -> ApiError {
    ApiError::Transport {
        detail: format!("could not write {}: {e}", path.display()),
    }
}

/// An answer as it came off the wire, before any provider read it. Header values and an
/// error body have the key scrubbed out already.
pub struct RawAnswer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// See [`Transport::send`].
    pub slot: OwnedSemaphorePermit,
}

impl fmt::Debug for RawAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawAnswer")
            .field("status", &self.status)
            .field("len", &self.body.len())
            .finish()
    }
}

impl RawAnswer {
    /// A header's value as text, if it has one that is.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Scrubs the key out of anything a server says back: an echoed key must never reach the
/// output, the logs, the manifest or the gallery.
#[derive(Clone)]
pub struct Redactor {
    secret: SecretString,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Redactor")
    }
}

pub const REDACTED: &str = "[redacted]";

impl Redactor {
    pub fn new(secret: SecretString) -> Redactor {
        Redactor { secret }
    }

    /// `text` with every occurrence of the key replaced.
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let secret = self.secret.expose_secret();
        if secret.is_empty() || !text.contains(secret) {
            Cow::Borrowed(text)
        } else {
            Cow::Owned(text.replace(secret, REDACTED))
        }
    }

    pub fn string(&self, text: &mut String) {
        if let Cow::Owned(clean) = self.text(text) {
            *text = clean;
        }
    }

    /// Every string in a JSON value, keys included.
    pub fn value(&self, value: &mut Value) {
        match value {
            Value::String(s) => self.string(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.value(v)),
            Value::Object(map) => {
                let secret = self.secret.expose_secret();
                if !secret.is_empty() && map.keys().any(|k| k.contains(secret)) {
                    let old = std::mem::take(map);
                    for (k, v) in old {
                        map.insert(self.text(&k).into_owned(), v);
                    }
                }
                map.values_mut().for_each(|v| self.value(v));
            }
            _ => {}
        }
    }

    /// A header map whose values hold no key.
    fn headers(&self, headers: &HeaderMap) -> HeaderMap {
        let mut clean = HeaderMap::with_capacity(headers.len());
        for (name, value) in headers {
            let value = match value.to_str() {
                Ok(text) => match self.text(text) {
                    Cow::Borrowed(_) => value.clone(),
                    Cow::Owned(t) => HeaderValue::from_str(&t)
                        .unwrap_or_else(|_| HeaderValue::from_static(REDACTED)),
                },
                // Not text: it cannot be shown, so it cannot show the key either.
                Err(_) => value.clone(),
            };
            clean.append(name.clone(), value);
        }
        clean
    }
}

/// How the transport is set up: timeouts, and the headers sent to the API.
#[derive(Debug)]
pub struct TransportConfig {
    /// Sent to the API only, never to the hosts of download links.
    pub api_headers: HeaderMap,
    /// The time one request may take, answer included.
    pub timeout: Duration,
    pub redactor: Redactor,
}

/// The HTTP transport of the run.
#[derive(Debug, Clone)]
pub struct Transport {
    /// For the API: the key goes along, redirects do not.
    http: reqwest::Client,
    /// For image links: no key, redirects followed.
    downloads: reqwest::Client,
    /// Answers being read, decoded or written at once; see [`Transport::send`].
    image_slots: Arc<Semaphore>,
    api_headers: HeaderMap,
    timeout: Duration,
    redactor: Redactor,
}

impl Transport {
    pub fn new(config: TransportConfig) -> Result<Transport, ClientError> {
        // reqwest is built without a default TLS provider; ring builds fast and is enough.
        // Installing fails only when one is already installed, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let builder = || {
            reqwest::Client::builder()
                .user_agent(USER_AGENT)
                .connect_timeout(config.timeout.min(Duration::from_secs(10)))
        };
        // The API never redirects; following one would carry the key (an `api-key` header
        // survives reqwest's cross-host redirects) to wherever it points.
        let http = builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        // Image links may redirect to storage; they are fetched without the key.
        let downloads = builder()
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()?;
        // Decoding and writing are quick beside a request's minutes: a few at a time keep
        // up with any -j, and keep a few images in memory rather than -j of them.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Transport {
            http,
            downloads,
            image_slots: Arc::new(Semaphore::new((2 * cores).max(4))),
            api_headers: config.api_headers,
            timeout: config.timeout,
            redactor: config.redactor,
        })
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    #[cfg(test)]
    pub(crate) fn api_headers(&self) -> &HeaderMap {
        &self.api_headers
    }

    /// Sends one request to the API and reads its whole answer.
    ///
    /// The answer holds one of the transport's image slots from the moment its body is read
    /// until the image it carries is written and dropped: only so many answers are read,
    /// decoded and written at once, so memory follows that number, not `-j`.
    pub async fn send(&self, request: WireRequest) -> Result<RawAnswer, ApiError> {
        self.send_with(request, None).await
    }

    /// As [`Transport::send`]; an answer that streams server-sent events is read event by
    /// event, each partial image handed to `partial` as it arrives (with its index), and
    /// the answer is the `*.completed` event's. A stream that ends before it is an error
    /// worth asking again, as a dropped connection is.
    pub async fn send_with(
        &self,
        request: WireRequest,
        partial: Option<&PartialSink>,
    ) -> Result<RawAnswer, ApiError> {
        let sent = std::time::Instant::now();
        tracing::debug!(
            url = %crate::units::shown_url(&request.url),
            "sending an image request"
        );
        let builder = self
            .http
            .post(request.url)
            .headers(self.api_headers.clone())
            .timeout(self.timeout);
        let builder = match request.body {
            WireBody::Json(fields) => builder.json(&fields),
            WireBody::Multipart(form) => builder.multipart(form),
        };
        let response = builder.send().await.map_err(|e| self.error(e))?;
        let status = response.status().as_u16();
        let headers = self.redactor.headers(response.headers());
        let slot = self
            .image_slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let streamed = (200..300).contains(&status)
            && headers
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| {
                    // Media types are case-insensitive: `Text/Event-Stream` is a stream too.
                    t.trim_start()
                        .get(.."text/event-stream".len())
                        .is_some_and(|m| m.eq_ignore_ascii_case("text/event-stream"))
                });
        let (status, body) = if streamed {
            self.read_events(response, partial).await?
        } else {
            (status, response.bytes().await.map_err(|e| self.error(e))?)
        };
        tracing::debug!(
            status,
            request_id = headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-"),
            bytes = body.len(),
            elapsed_ms = sent.elapsed().as_millis() as u64,
            "answer received"
        );
        // An error answer may quote the key it was sent (a 401 does): the whole body is
        // scrubbed before any provider reads it, so no field and no shortened message keeps
        // a piece of it. A success body is megabytes of image: its text fields are scrubbed
        // once decoded instead.
        let body = if (200..300).contains(&status) {
            body
        } else {
            match self.redactor.text(&String::from_utf8_lossy(&body)) {
                Cow::Owned(clean) => Bytes::from(clean),
                Cow::Borrowed(_) => body,
            }
        };
        Ok(RawAnswer {
            status,
            headers,
            body,
            slot,
        })
    }

    /// Reads a stream of server-sent events (`event: NAME`, `data: JSON`, a blank line
    /// between events) to its `*.completed` event, whose JSON becomes the body of an images
    /// answer (`{"data": [{"b64_json", ...}], "usage"}`). Decoded leniently: an event
    /// genimg does not know is skipped. An error event is the error answer the service would
    /// have given before the stream began, with the status its type says (see
    /// [`error_event`]), so that it is judged by the same rules: a refusal is not asked
    /// again, an empty account stops the run, a server error is asked again.
    async fn read_events(
        &self,
        mut response: reqwest::Response,
        partial: Option<&PartialSink>,
    ) -> Result<(u16, Bytes), ApiError> {
        let mut events = EventReader::default();
        let mut partials = 0u32;
        loop {
            // A stream cut on its way is a dropped answer, asked again.
            let chunk = response.chunk().await.map_err(|e| ApiError::Transport {
                detail: format!(
                    "the stream was cut after {partials} partial image(s), before its \
                         image: {}",
                    self.error(e)
                ),
            })?;
            let ended = chunk.is_none();
            if let Some(chunk) = chunk {
                events.feed(&chunk);
            }
            while let Some((name, data)) = events.next(ended) {
                // Its fields as they are written: a completed event's megabytes of base64
                // are neither copied into a tree nor written out again, only spliced.
                let normalized: Vec<u8>;
                let event = if data.trim_ascii_start().starts_with(b"{") {
                    match serde_json::from_slice::<StreamEvent<'_>>(&data) {
                        Ok(event) => Some(event),
                        // A key written twice (the last one counts, as for any JSON
                        // reader), or another oddity the borrowed reading refuses: read as
                        // a tree, then again as written from it.
                        Err(_) => {
                            normalized =
                                serde_json::from_slice::<serde_json::Map<String, Value>>(&data)
                                    .ok()
                                    .and_then(|map| serde_json::to_vec(&map).ok())
                                    .unwrap_or_default();
                            serde_json::from_slice::<StreamEvent<'_>>(&normalized).ok()
                        }
                    }
                } else {
                    None
                };
                let Some(event) = event else {
                    // Not an object: an error event may still say something (a string).
                    if name.as_deref() == Some("error")
                        && let Ok(value) = serde_json::from_slice::<Value>(&data)
                    {
                        return Ok(error_event(&value));
                    }
                    continue;
                };
                let kind = event
                    .kind
                    .and_then(|k| serde_json::from_str::<Cow<'_, str>>(k.get()).ok());
                let kind = kind.as_deref().or(name.as_deref()).unwrap_or_default();
                if kind.ends_with(".partial_image") {
                    partials += 1;
                    if let (Some(sink), Some(b64)) = (partial, event.b64_json)
                        && let Ok(b64) = serde_json::from_str::<Cow<'_, str>>(b64.get())
                        && let Ok(bytes) = super::openai::decode_base64(&b64)
                    {
                        // The service's index counts from 0, and there are at most 3; an
                        // index far beyond that, or none, gives way to the count so far.
                        let index = event
                            .partial_image_index
                            .and_then(|i| serde_json::from_str::<u64>(i.get()).ok())
                            .filter(|&i| i < MAX_PARTIAL_INDEX)
                            .map_or(partials, |i| i as u32 + 1);
                        sink(index, &bytes);
                    }
                } else if kind.ends_with(".completed") {
                    return Ok((200, Bytes::from(event.answer())));
                } else if kind == "error" || event.error.is_some_and(|e| e.get() != "null") {
                    let Ok(data) = serde_json::from_slice::<Value>(&data) else {
                        continue;
                    };
                    return Ok(error_event(&data));
                }
            }
            if ended {
                return Err(ApiError::Transport {
                    detail: format!(
                        "the stream ended after {partials} partial image(s), before its image"
                    ),
                });
            }
        }
    }

    /// Fetches an image link. No API key goes along: the link is signed by itself and may
    /// point at another host.
    pub async fn download(
        &self,
        base: &Url,
        link: &str,
        request_id: &Option<String>,
    ) -> Result<Vec<u8>, ApiError> {
        let url = base.join(link).map_err(|e| ApiError::Link {
            detail: format!("the image link is not a URL: {e}"),
            request_id: request_id.clone(),
            usage: None,
        })?;
        self.fetch_image(url, false, request_id).await
    }

    /// Fetches an image the API holds, at `url` on the API's own origin, with the key (a
    /// Gemini `fileData` file). As [`Transport::download`] otherwise.
    pub async fn download_with_key(
        &self,
        url: Url,
        request_id: &Option<String>,
    ) -> Result<Vec<u8>, ApiError> {
        self.fetch_image(url, true, request_id).await
    }

    async fn fetch_image(
        &self,
        url: Url,
        with_key: bool,
        request_id: &Option<String>,
    ) -> Result<Vec<u8>, ApiError> {
        // The image is paid for once the answer names its link: a link that stumbles is
        // fetched again, a few times, before the whole request is.
        let fetch = || async {
            let request = if with_key {
                self.http.get(url.clone()).headers(self.api_headers.clone())
            } else {
                self.downloads.get(url.clone())
            };
            let response = request
                .timeout(self.timeout)
                .send()
                .await
                .map_err(|e| self.error(e))?;
            let status = response.status();
            let body = response.bytes().await.map_err(|e| self.error(e))?;
            if !status.is_success() {
                return Err(ApiError::Download {
                    status: status.as_u16(),
                    request_id: request_id.clone(),
                    usage: None,
                });
            }
            Ok(body.to_vec())
        };
        fetch
            .retry(
                RetryPolicy {
                    min_delay: Duration::from_millis(200),
                    max_delay: Duration::from_secs(2),
                    ..RetryPolicy::new(DOWNLOAD_RETRIES)
                }
                .backoff(),
            )
            .when(|e| e.verdict() == Verdict::Retry)
            .notify(|e, wait| {
                tracing::info!(error = %e, wait_ms = wait.as_millis() as u64, "fetching the image link again");
            })
            .await
    }

    /// Sends one call to the API that is not an image request (a file, a batch, a list)
    /// and reads its whole answer, with the key scrubbed out of an error body. The answer
    /// is small: it takes no image slot.
    pub async fn call(
        &self,
        method: reqwest::Method,
        url: Url,
        body: CallBody,
    ) -> Result<Reply, ApiError> {
        tracing::debug!(%method, url = %crate::units::shown_url(&url), "calling the API");
        let builder = self
            .http
            .request(method, url)
            .headers(self.api_headers.clone())
            .timeout(self.timeout);
        let builder = match body {
            CallBody::None => builder,
            CallBody::Json(value) => builder.json(&value),
            CallBody::Multipart(form) => builder.multipart(form),
            CallBody::Raw { headers, body } => builder.headers(headers).body(body),
            CallBody::JsonWith { headers, json } => builder.headers(headers).json(&json),
        };
        let response = builder.send().await.map_err(|e| self.error(e))?;
        let status = response.status().as_u16();
        let headers = self.redactor.headers(response.headers());
        let body = response.bytes().await.map_err(|e| self.error(e))?;
        let body = match self.redactor.text(&String::from_utf8_lossy(&body)) {
            Cow::Owned(clean) if !(200..300).contains(&status) => Bytes::from(clean),
            _ => body,
        };
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// Streams the API resource at `url` (a file's content) into the file at `path`, chunk
    /// by chunk, so memory does not grow with its size. What `path` already holds is kept:
    /// the rest is asked for with `Range`, and a download that breaks resumes from where it
    /// stopped, a few times, before it fails. A server that ignores `Range` sends the whole
    /// file, which then replaces the part. Returns the file's length.
    ///
    /// `--timeout` bounds the wait for the answer and for each chunk, not the whole
    /// transfer: gigabytes take what they take while bytes keep coming. Tries that move the
    /// file on do not count against the retries.
    pub async fn download_to(&self, url: &Url, path: &std::path::Path) -> Result<u64, ApiError> {
        use tokio::io::AsyncWriteExt as _;
        let idle = |_| ApiError::Timeout {
            secs: self.timeout.as_secs(),
        };
        let mut failures = 0;
        let mut before = u64::MAX;
        loop {
            let have = tokio::fs::metadata(path).await.map_or(0, |m| m.len());
            if before != u64::MAX && have > before {
                failures = 0;
            }
            before = have;
            let attempt = async {
                let mut request = self.http.get(url.clone()).headers(self.api_headers.clone());
                if have > 0 {
                    request = request.header(reqwest::header::RANGE, format!("bytes={have}-"));
                }
                let mut response = tokio::time::timeout(self.timeout, request.send())
                    .await
                    .map_err(idle)?
                    .map_err(|e| self.error(e))?;
                let status = response.status().as_u16();
                if status == 416 && have > 0 {
                    // Nothing beyond what is there: the file is whole.
                    return Ok(have);
                }
                if !(200..300).contains(&status) {
                    let headers = self.redactor.headers(response.headers());
                    let body = response.bytes().await.unwrap_or_default();
                    let body = self
                        .redactor
                        .text(&String::from_utf8_lossy(&body))
                        .into_owned();
                    return Err(super::openai::decode_parts(
                        status,
                        |name| headers.get(name).and_then(|v| v.to_str().ok()),
                        body.as_bytes(),
                    )
                    .err()
                    .unwrap_or(ApiError::Transport {
                        detail: format!("HTTP {status} without an error"),
                    }));
                }
                let resumed = status == 206 && have > 0;
                // A part that does not start where the file ends would corrupt it: start over.
                let start = response
                    .headers()
                    .get(reqwest::header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                if resumed && start != Some(have) {
                    let _ = tokio::fs::remove_file(path).await;
                    return Err(ApiError::Transport {
                        detail: format!(
                            "the download resumed at {start:?}, not at byte {have}; starting over"
                        ),
                    });
                }
                let mut file = tokio::fs::OpenOptions::new()
                    .create(true)
                    .write(true)
                    .append(resumed)
                    .truncate(!resumed)
                    .open(path)
                    .await
                    .map_err(|e| io_error(path, &e))?;
                let mut len = if resumed { have } else { 0 };
                while let Some(chunk) = tokio::time::timeout(self.timeout, response.chunk())
                    .await
                    .map_err(idle)?
                    .map_err(|e| self.error(e))?
                {
                    file.write_all(&chunk)
                        .await
                        .map_err(|e| io_error(path, &e))?;
                    len += chunk.len() as u64;
                }
                file.flush().await.map_err(|e| io_error(path, &e))?;
                file.sync_all().await.map_err(|e| io_error(path, &e))?;
                Ok(len)
            };
            match attempt.await {
                Ok(len) => return Ok(len),
                Err(e) if e.verdict() == Verdict::Retry && failures < DOWNLOAD_RETRIES => {
                    failures += 1;
                    let wait = e
                        .retry_after()
                        .unwrap_or(Duration::from_millis(200 << failures))
                        .min(Duration::from_secs(30));
                    tracing::info!(error = %e, wait_ms = wait.as_millis() as u64, "resuming the download");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn error(&self, err: reqwest::Error) -> ApiError {
        ApiError::from_reqwest(err, self.timeout.as_secs())
    }
}

/// A header that must carry a secret: marked sensitive, so HTTP libraries never log it.
pub fn secret_header(value: &str) -> Result<HeaderValue, ClientError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| ClientError::BadKey)?;
    v.set_sensitive(true);
    Ok(v)
}

/// A plain header from configuration, named by the variable it came from when it is bad.
pub fn plain_header(
    headers: &mut HeaderMap,
    name: &'static str,
    value: &Option<String>,
    env: &'static str,
) -> Result<(), ClientError> {
    if let Some(v) = value {
        let v = HeaderValue::from_str(v).map_err(|_| ClientError::BadHeader { name: env })?;
        headers.insert(HeaderName::from_static(name), v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor(key: &str) -> Redactor {
        Redactor::new(SecretString::from(key.to_owned()))
    }

    #[test]
    fn echoed_keys_are_redacted() {
        let r = redactor("sk-abc");
        assert_eq!(
            r.text("Incorrect API key provided: sk-abc. See"),
            "Incorrect API key provided: [redacted]. See"
        );
        assert_eq!(redactor("").text("nothing here"), "nothing here");
        let mut v = serde_json::json!({"a": ["x sk-abc y", 3, {"sk-abc": "sk-abc"}]});
        r.value(&mut v);
        assert!(!v.to_string().contains("sk-abc"), "{v}");
        let mut headers = HeaderMap::new();
        headers.insert("x-request-id", HeaderValue::from_static("req_sk-abc"));
        headers.insert("x-other", HeaderValue::from_static("fine"));
        let clean = r.headers(&headers);
        assert_eq!(clean["x-request-id"], "req_[redacted]");
        assert_eq!(clean["x-other"], "fine");
        assert!(!format!("{r:?}").contains("sk-abc"));
    }

    /// The events a stream arriving in `chunks` gives, as [`Transport::read_events`] reads
    /// them: each event's name and data.
    fn events_of(chunks: &[&[u8]]) -> Vec<(Option<String>, String)> {
        let mut reader = EventReader::default();
        let mut out = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            reader.feed(chunk);
            let ended = i + 1 == chunks.len();
            while let Some((name, data)) = reader.next(ended) {
                out.push((name, String::from_utf8(data).unwrap()));
            }
        }
        out
    }

    fn named(list: &[(&str, &str)]) -> Vec<(Option<String>, String)> {
        list.iter()
            .map(|(n, d)| (Some((*n).to_owned()), (*d).to_owned()))
            .collect()
    }

    #[test]
    fn a_completed_event_is_the_answer_it_stands_for_with_its_fields_as_written() {
        let text = r#"{"type":"image_generation.completed","b64_json":"QUJD","revised_prompt":"a \"fox\" \u00e9","usage":{"output_tokens":5},"size":"1024x1024","extra":[1,{"b64_json":2}],"url":null}"#;
        let event: StreamEvent<'_> = serde_json::from_str(text).unwrap();
        let answer: Value = serde_json::from_str(&event.answer()).unwrap();
        assert_eq!(
            answer,
            serde_json::json!({
                "data": [{"b64_json": "QUJD", "revised_prompt": "a \"fox\" é"}],
                "usage": {"output_tokens": 5},
                "size": "1024x1024",
            })
        );
        // A key written twice: the last one counts.
        let twice = r#"{"type":"image_generation.completed","b64_json":"QUJD","usage":{"a":1},"usage":{"b":2}}"#;
        assert!(
            serde_json::from_str::<StreamEvent<'_>>(twice).is_err(),
            "the borrowed reading refuses it"
        );
        // Fields of an unexpected type do not lose the event.
        let odd: StreamEvent<'_> =
            serde_json::from_str(r#"{"type":5,"partial_image_index":"x","b64_json":"QUJD"}"#)
                .unwrap();
        assert_eq!(odd.kind.map(RawValue::get), Some("5"));
        assert!(odd.b64_json.is_some());
    }

    #[test]
    fn events_end_at_the_first_blank_line_whatever_the_line_endings() {
        let expected = named(&[
            ("a", r#"{"n":1}"#),
            ("b", r#"{"n":2}"#),
            ("c", r#"{"n":3}"#),
        ]);
        for stream in [
            &b"event: a\ndata: {\"n\":1}\n\nevent: b\ndata: {\"n\":2}\n\nevent: c\ndata: {\"n\":3}\n\n"[..],
            b"event: a\r\ndata: {\"n\":1}\r\n\r\nevent: b\r\ndata: {\"n\":2}\r\n\r\nevent: c\r\ndata: {\"n\":3}\r\n\r\n",
            // Mixed: an event that ends with CRLF before one that ends with LF.
            b"event: a\r\ndata: {\"n\":1}\r\n\r\nevent: b\ndata: {\"n\":2}\n\nevent: c\r\ndata: {\"n\":3}\r\n\r\n",
            b"event: a\ndata: {\"n\":1}\r\n\nevent: b\r\ndata: {\"n\":2}\n\r\nevent: c\ndata: {\"n\":3}\n\n",
            // CR alone ends a line too, as the SSE format allows.
            b"event: a\rdata: {\"n\":1}\r\revent: b\rdata: {\"n\":2}\r\revent: c\rdata: {\"n\":3}\r\r",
            // Comments, other fields and blank lines between events change nothing.
            b": keep-alive\n\n\nid: 7\nevent:a\nretry: 10\ndata:{\"n\":1}\n\n: ping\n\nevent: b\ndata: {\"n\":2}\n\nevent: c\ndata: {\"n\":3}",
        ] {
            assert_eq!(events_of(&[stream]), expected, "{:?}", String::from_utf8_lossy(stream));
            // However the stream is cut into chunks.
            for at in 0..=stream.len() {
                assert_eq!(
                    events_of(&[&stream[..at], &stream[at..]]),
                    expected,
                    "cut at {at}: {:?}",
                    String::from_utf8_lossy(stream)
                );
            }
            let bytes: Vec<&[u8]> = stream.chunks(1).collect();
            assert_eq!(events_of(&bytes), expected);
        }
        // Data lines join with a line break; a field with no value is empty.
        assert_eq!(
            events_of(&[b"data: {\"a\":\ndata: 1}\nevent\n\n"]),
            [(None, "{\"a\":\n1}".to_owned())]
        );
    }

    #[test]
    fn a_huge_event_in_small_chunks_is_read_in_linear_time() {
        // 24 MB of base64, as a 4K image's completed event may carry, in 8 KiB chunks: each
        // chunk must not have the whole event read again.
        let big = "A".repeat(24 << 20);
        let stream = format!(
            "event: image_generation.partial_image\ndata: {{\"b64_json\":\"AAAA\"}}\n\n\
             event: image_generation.completed\ndata: {{\"b64_json\":\"{big}\"}}\n\n"
        );
        let chunks: Vec<&[u8]> = stream.as_bytes().chunks(8 << 10).collect();
        let started = std::time::Instant::now();
        let events = events_of(&chunks);
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].1.len(), big.len() + r#"{"b64_json":""}"#.len());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn an_error_event_is_an_error_answer_with_the_status_its_type_says() {
        let judged = |data: Value| {
            let (status, body) = error_event(&data);
            (status, serde_json::from_slice::<Value>(&body).unwrap())
        };
        let (status, body) = judged(serde_json::json!({"type": "error", "error": {
            "code": "moderation_blocked", "type": "image_generation_user_error",
            "message": "rejected"}}));
        assert_eq!(status, 400);
        assert_eq!(body["error"]["code"], "moderation_blocked");
        assert_eq!(body["error"]["message"], "rejected");
        // The Responses API's form: the error's fields at the event's top.
        let (status, body) = judged(serde_json::json!({"type": "error",
            "code": "insufficient_quota", "message": "no credit", "sequence_number": 3}));
        assert_eq!(status, 400);
        assert_eq!(body["error"]["code"], "insufficient_quota");
        assert_eq!(body["error"]["message"], "no credit");
        assert_eq!(
            judged(serde_json::json!({"error": {"type": "server_error"}})).0,
            500
        );
        assert_eq!(
            judged(serde_json::json!({"error": {"type": "requests", "message": "slow"}})).0,
            429
        );
        let (status, body) = judged(serde_json::json!({"type": "error", "error": "went wrong"}));
        assert_eq!(status, 500, "an error that says nothing of what it is");
        assert_eq!(body["error"]["message"], "went wrong");
        let (_, body) = judged(serde_json::json!({"type": "error"}));
        assert!(body["error"]["message"].is_string());
    }

    #[test]
    fn user_agent_names_the_version() {
        assert_eq!(USER_AGENT, format!("genimg/{}", env!("CARGO_PKG_VERSION")));
    }
}
