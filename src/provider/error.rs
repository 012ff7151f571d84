//! Errors of one request, keeping what the service said for the report.

use crate::units::shorten;
use std::collections::BTreeMap;
use std::error::Error as _;
use std::fmt;
use std::time::Duration;

use serde_json::Value;
use thiserror::Error;

use super::openai::DecodeError;
use super::retry::Verdict;

/// The `error` object of an API error answer: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorBody {
    pub message: Option<String>,
    pub kind: Option<String>,
    pub code: Option<String>,
    pub param: Option<String>,
    /// A refusal's `moderation_details`: which stage refused (`input` or `output`), and the
    /// categories it named.
    pub moderation: Option<Moderation>,
}

/// Why GPT image refused a prompt, as its `moderation_details` say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Moderation {
    pub stage: Option<String>,
    pub categories: Vec<String>,
}

impl Moderation {
    fn parse(v: Option<&Value>) -> Option<Moderation> {
        let v = v?;
        let stage = v
            .get("moderation_stage")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let categories: Vec<String> = v
            .get("categories")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        (stage.is_some() || !categories.is_empty()).then_some(Moderation { stage, categories })
    }
}

impl fmt::Display for Moderation {
    /// `refused at the input stage for sexual, violence`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused")?;
        if let Some(stage) = &self.stage {
            write!(f, " at the {stage} stage")?;
        }
        if !self.categories.is_empty() {
            write!(f, " for {}", self.categories.join(", "))?;
        }
        Ok(())
    }
}

impl ErrorBody {
    /// Reads an error body leniently: any shape is accepted, and a body that is not the API's
    /// JSON (a proxy's HTML page, say) is kept as the message, shortened.
    pub fn parse(body: &[u8]) -> ErrorBody {
        let text = |v: Option<&Value>| match v {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => {
                let e = v.get("error").unwrap_or(&v);
                match e {
                    Value::String(_) => ErrorBody {
                        message: text(Some(e)),
                        ..ErrorBody::default()
                    },
                    _ => ErrorBody {
                        message: text(e.get("message")),
                        kind: text(e.get("type")),
                        code: text(e.get("code")),
                        param: text(e.get("param")),
                        moderation: Moderation::parse(e.get("moderation_details")),
                    },
                }
            }
            Err(_) => {
                let raw = String::from_utf8_lossy(body);
                let raw = raw.trim();
                ErrorBody {
                    message: (!raw.is_empty()).then(|| shorten(raw, 200)),
                    ..ErrorBody::default()
                }
            }
        }
    }
}

/// Whether an attempt that gave no image was billed all the same.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Billed<'a> {
    No,
    /// Billed, as the answer's `usage` says.
    Usage(&'a Value),
    /// Billed, for an amount the answer did not say: the price table's estimate stands in.
    Unknown,
}

/// An error answer from the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusError {
    pub status: u16,
    pub body: ErrorBody,
    pub request_id: Option<String>,
    /// The wait the server asked for (`retry-after-ms` or `retry-after`).
    pub retry_after: Option<Duration>,
    /// The server's `x-should-retry`, which overrides the status.
    pub should_retry: Option<bool>,
    /// What the `x-ratelimit-*` headers said.
    pub rate_limit: Option<crate::provider::RateLimitInfo>,
    /// What to do about it, as the provider that decoded it judged.
    pub verdict: Verdict,
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = reqwest::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        write!(f, "HTTP {} {reason}", self.status)?;
        if let Some(m) = &self.body.message {
            write!(f, ": {m}")?;
        }
        let mut notes = Vec::new();
        if let Some(c) = &self.body.code {
            notes.push(format!("code {c}"));
        }
        if let Some(p) = &self.body.param {
            notes.push(format!("param {p}"));
        }
        if let Some(m) = &self.body.moderation {
            notes.push(m.to_string());
        }
        if let Some(id) = &self.request_id {
            notes.push(format!("request {id}"));
        }
        if !notes.is_empty() {
            write!(f, " ({})", notes.join(", "))?;
        }
        Ok(())
    }
}

/// Why one request did not give an image.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApiError {
    /// The service answered with an error status.
    #[error("{0}")]
    Status(Box<StatusError>),
    /// No connection could be made.
    #[error("could not connect to {host}: {detail}")]
    Connect { host: String, detail: String },
    /// No complete answer within the timeout.
    #[error("no complete answer within {secs} s (see --timeout)")]
    Timeout { secs: u64 },
    /// The connection broke or the body ended early.
    #[error("the connection failed: {detail}")]
    Transport { detail: String },
    /// The image link of an answer could not be fetched. Its status is the file host's, not
    /// the API's: a 403 here is an expired link, not a key that may not do this.
    #[error("downloading the image from its link failed: HTTP {status}{}", request_note(.request_id))]
    Download {
        status: u16,
        request_id: Option<String>,
        /// What the answer that named the link billed.
        usage: Option<Value>,
    },
    /// The run's first requests all failed to connect: the service cannot be reached, and
    /// the run stops rather than retry every image (see `engine::live`).
    #[error("could not connect to {host} ({attempts} attempts in a row, none answered): {detail}")]
    Unreachable {
        host: String,
        detail: String,
        attempts: u32,
    },
    /// The image link an answer named could not be fetched (not a URL, a broken connection,
    /// no answer in time): the image was made, and billed, but never arrived.
    #[error("fetching the image from its link failed: {detail}{}", request_note(.request_id))]
    Link {
        detail: String,
        request_id: Option<String>,
        /// What the answer that named the link billed, if it said.
        usage: Option<Value>,
    },
    /// A successful answer that refuses the prompt, as some providers say it (Gemini's
    /// `promptFeedback.blockReason`, a `finishReason` of `IMAGE_SAFETY`): never asked again.
    #[error("{reason}{}", request_note(.request_id))]
    Refused {
        reason: String,
        request_id: Option<String>,
    },
    /// A successful answer that carried no usable bytes: nothing can be kept, so it is
    /// asked again. Its `usage`, if it had one, was billed all the same.
    #[error("unusable answer: {reason}{}", request_note(.request_id))]
    BadAnswer {
        reason: String,
        request_id: Option<String>,
        usage: Option<Value>,
    },
    /// A successful answer that holds no image and says why, not as a refusal (Gemini's
    /// `finishReason` `NO_IMAGE` or `OTHER`): asked again once, as a second try often draws.
    #[error("no image: {reason}{}", request_note(.request_id))]
    NoImage {
        reason: String,
        request_id: Option<String>,
        usage: Option<Value>,
    },
}

fn request_note(id: &Option<String>) -> String {
    id.as_ref()
        .map(|id| format!(" (request {id})"))
        .unwrap_or_default()
}

impl ApiError {
    pub(crate) fn from_reqwest(err: reqwest::Error, timeout_secs: u64) -> ApiError {
        // A connection that never opened in time is a failure to connect (a wrong address, a
        // firewall that drops packets), not a request that took too long: it counts towards
        // a service that cannot be reached.
        if err.is_timeout() && !err.is_connect() {
            return ApiError::Timeout { secs: timeout_secs };
        }
        let host = err
            .url()
            .and_then(|u| {
                u.host_str().map(|h| match u.port() {
                    Some(p) => format!("{h}:{p}"),
                    None => h.to_owned(),
                })
            })
            .unwrap_or_else(|| "the server".to_owned());
        // The URL may carry a signed query (download links); the chain of causes says enough.
        let err = err.without_url();
        let mut causes = vec![err.to_string()];
        let mut source = err.source();
        while let Some(cause) = source {
            causes.push(cause.to_string());
            source = cause.source();
        }
        if err.is_connect() {
            // The root cause ("Connection refused") is what a user can act on.
            let detail = causes.pop().unwrap_or_default();
            ApiError::Connect { host, detail }
        } else {
            let mut detail = String::new();
            for cause in causes {
                if !detail.contains(&cause) {
                    if !detail.is_empty() {
                        detail.push_str(": ");
                    }
                    detail.push_str(&cause);
                }
            }
            ApiError::Transport { detail }
        }
    }

    pub(crate) fn bad_answer(
        err: &DecodeError,
        request_id: Option<String>,
        usage: Option<Value>,
    ) -> ApiError {
        ApiError::BadAnswer {
            reason: err.to_string(),
            request_id,
            usage,
        }
    }

    /// Whether the attempt that ended in this error was billed: an answer that reported its
    /// `usage` but held no usable image, or one that named an image link which then failed
    /// (the image was made), with its `usage` if it said.
    pub fn billed(&self) -> Billed<'_> {
        match self {
            ApiError::BadAnswer {
                usage: Some(usage), ..
            }
            | ApiError::NoImage {
                usage: Some(usage), ..
            } => Billed::Usage(usage),
            ApiError::Download { usage, .. } | ApiError::Link { usage, .. } => {
                usage.as_ref().map_or(Billed::Unknown, Billed::Usage)
            }
            _ => Billed::No,
        }
    }

    /// This error of fetching the image link an answer named, with what that answer said it
    /// billed: the image was paid for though it never arrived.
    pub(crate) fn of_link(self, usage: Option<Value>, request_id: &Option<String>) -> ApiError {
        match self {
            ApiError::Download {
                status, request_id, ..
            } => ApiError::Download {
                status,
                request_id,
                usage,
            },
            ApiError::Link {
                detail, request_id, ..
            } => ApiError::Link {
                detail,
                request_id,
                usage,
            },
            e @ (ApiError::Connect { .. }
            | ApiError::Timeout { .. }
            | ApiError::Transport { .. }) => ApiError::Link {
                detail: e.to_string(),
                request_id: request_id.clone(),
                usage,
            },
            other => other,
        }
    }

    /// Scrubs the key out of everything the error shows.
    pub(crate) fn redact(&mut self, redactor: &super::Redactor) {
        match self {
            ApiError::Status(s) => {
                let b = &mut s.body;
                for text in [&mut b.message, &mut b.kind, &mut b.code, &mut b.param]
                    .into_iter()
                    .flatten()
                {
                    redactor.string(text);
                }
                if let Some(id) = &mut s.request_id {
                    redactor.string(id);
                }
            }
            ApiError::Refused { reason, request_id } => {
                redactor.string(reason);
                if let Some(id) = request_id {
                    redactor.string(id);
                }
            }
            ApiError::BadAnswer {
                reason: text,
                request_id,
                usage,
            }
            | ApiError::NoImage {
                reason: text,
                request_id,
                usage,
            }
            | ApiError::Link {
                detail: text,
                request_id,
                usage,
            } => {
                redactor.string(text);
                if let Some(id) = request_id {
                    redactor.string(id);
                }
                if let Some(usage) = usage {
                    redactor.value(usage);
                }
            }
            ApiError::Download {
                request_id, usage, ..
            } => {
                if let Some(id) = request_id {
                    redactor.string(id);
                }
                if let Some(usage) = usage {
                    redactor.value(usage);
                }
            }
            ApiError::Connect { detail, .. }
            | ApiError::Transport { detail }
            | ApiError::Unreachable { detail, .. } => redactor.string(detail),
            ApiError::Timeout { .. } => {}
        }
    }

    /// The service refused the prompt; asking again gives the same answer.
    pub fn is_refusal(&self) -> bool {
        self.verdict() == Verdict::Refused
    }

    /// A refusal's `moderation_details` (stage, categories), where the service gave them.
    pub fn moderation(&self) -> Option<&Moderation> {
        match self {
            ApiError::Status(s) => s.body.moderation.as_ref(),
            _ => None,
        }
    }

    /// The `x-request-id` of the answer, for a support ticket.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            ApiError::Status(s) => s.request_id.as_deref(),
            ApiError::BadAnswer { request_id, .. }
            | ApiError::NoImage { request_id, .. }
            | ApiError::Download { request_id, .. }
            | ApiError::Link { request_id, .. }
            | ApiError::Refused { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// The wait the server asked for before another attempt: `retry-after`, else the reset
    /// of a used-up rate-limit window.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Status(s) => s.retry_after.or_else(|| {
                s.rate_limit
                    .and_then(|r| r.exhausted_for())
                    .map(|d| d.min(super::retry::MAX_RETRY_AFTER))
            }),
            _ => None,
        }
    }

    /// What to do after this error: the provider's verdict on an error answer; for the rest,
    /// which no provider decoded, the transport's rules.
    pub fn verdict(&self) -> Verdict {
        match self {
            ApiError::Status(s) => s.verdict,
            ApiError::Refused { .. } => Verdict::Refused,
            ApiError::Unreachable { .. } => Verdict::Fatal(super::retry::Fatal::Unreachable),
            // A link that fails for good (expired, say) will not work on a second try either.
            ApiError::Download { status, .. } => {
                if matches!(status, 408 | 429 | 500..) {
                    Verdict::Retry
                } else {
                    Verdict::Fail
                }
            }
            // Connection errors, timeouts, truncated or unusable answers: nothing was
            // delivered.
            ApiError::Connect { .. }
            | ApiError::Timeout { .. }
            | ApiError::Transport { .. }
            | ApiError::Link { .. }
            | ApiError::BadAnswer { .. }
            | ApiError::NoImage { .. } => Verdict::Retry,
        }
    }

    /// The most retries an image gets after this error, where fewer than the run's.
    pub fn retries_at_most(&self) -> Option<u32> {
        match self {
            ApiError::NoImage { .. } => Some(1),
            _ => None,
        }
    }

    /// A 429 for rate (`rate_limit_exceeded`, `slow_down`): a signal to go slower, not a
    /// failure. (An empty account's 429 is fatal, and not this.)
    pub fn is_rate_limited(&self) -> bool {
        self.status() == Some(429) && self.verdict() == Verdict::Retry
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status(s) => Some(s.status),
            _ => None,
        }
    }

    /// What the user can do about a 400 when the request carried params (`given`: each key,
    /// with the param as the user wrote it): ` (sent because of --param frame_count=8)` for
    /// the params the error names (its `param`, or its message, by key or in snake_case as
    /// Gemini's paths spell it); else, as any of them may be the field the service would not
    /// take, ` (params sent: ...)` listing them all. `None` for any other error.
    pub fn param_note(&self, given: &BTreeMap<String, String>) -> Option<String> {
        let ApiError::Status(s) = self else {
            return None;
        };
        if given.is_empty() || s.status != 400 || s.verdict != Verdict::Fail {
            return None;
        }
        let message = s.body.message.as_deref().unwrap_or("");
        let named: Vec<&str> = given
            .iter()
            .filter(|(key, _)| {
                s.body.param.as_deref() == Some(key.as_str())
                    || names_word(message, key)
                    || names_word(message, &snake_case(key))
            })
            .map(|(_, shown)| shown.as_str())
            .collect();
        Some(if named.is_empty() {
            let all: Vec<&str> = given.values().map(String::as_str).collect();
            format!(" (params sent: {})", all.join(", "))
        } else {
            format!(" (sent because of {})", named.join(", "))
        })
    }
}

/// Whether `text` holds `word` with no letter, digit or `_` on either side: `'frames'` names
/// `frames`, `frames_ms` does not.
fn names_word(text: &str, word: &str) -> bool {
    let part = |c: char| c.is_alphanumeric() || c == '_';
    !word.is_empty()
        && text.match_indices(word).any(|(at, _)| {
            !text[..at].chars().next_back().is_some_and(part)
                && !text[at + word.len()..].chars().next().is_some_and(part)
        })
}

/// `thinkingConfig` as Gemini's error paths spell it: `thinking_config`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener whose queue of connections is full: the next connection is never
    /// answered, as with an address whose firewall drops packets.
    fn unanswering_listener() -> Option<(std::net::TcpListener, Vec<std::net::TcpStream>)> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
        let addr = listener.local_addr().ok()?;
        let mut held = Vec::new();
        for _ in 0..4096 {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
                Ok(stream) => held.push(stream),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return Some((listener, held));
                }
                Err(_) => return None,
            }
        }
        None
    }

    #[tokio::test]
    async fn a_connection_that_never_opens_is_a_failure_to_connect_not_a_timeout() {
        // Where the system answers a full queue otherwise, there is nothing to test.
        let Some((listener, _held)) = unanswering_listener() else {
            return;
        };
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let err = client.get(url).send().await.unwrap_err();
        let e = ApiError::from_reqwest(err, 600);
        assert!(matches!(e, ApiError::Connect { .. }), "{e:?}");
    }

    #[test]
    fn parses_the_documented_error_body() {
        let b = ErrorBody::parse(
            br#"{"error": {"message": "Your request was rejected by the safety system.", "type": "image_generation_user_error", "param": null, "code": "moderation_blocked"}}"#,
        );
        assert_eq!(
            b.message.as_deref(),
            Some("Your request was rejected by the safety system.")
        );
        assert_eq!(b.kind.as_deref(), Some("image_generation_user_error"));
        assert_eq!(b.code.as_deref(), Some("moderation_blocked"));
        assert_eq!(b.param, None);
    }

    #[test]
    fn a_refusal_shows_its_moderation_details() {
        let body = br#"{"error": {"message": "Your request was rejected by the safety system. safety_violations=[sexual].", "type": "image_generation_user_error", "param": null, "code": "moderation_blocked", "moderation_details": {"moderation_stage": "input", "categories": ["sexual", "violence"]}}}"#;
        let b = ErrorBody::parse(body);
        assert_eq!(
            b.moderation,
            Some(Moderation {
                stage: Some("input".into()),
                categories: vec!["sexual".into(), "violence".into()],
            })
        );
        let e = crate::provider::openai::judged(StatusError {
            status: 400,
            body: b,
            request_id: None,
            retry_after: None,
            should_retry: None,
            rate_limit: None,
            verdict: Verdict::Fail,
        });
        assert!(
            e.to_string().ends_with(
                "(code moderation_blocked, refused at the input stage for sexual, violence)"
            ),
            "{e}"
        );
        // Absent or empty details add nothing.
        let plain = br#"{"error": {"code": "moderation_blocked", "moderation_details": {}}}"#;
        assert_eq!(ErrorBody::parse(plain).moderation, None);
    }

    #[test]
    fn odd_error_bodies_still_give_a_message() {
        let b = ErrorBody::parse(b"<html>\n  <body>502 Bad Gateway</body>\n</html>");
        assert_eq!(
            b.message.as_deref(),
            Some("<html> <body>502 Bad Gateway</body> </html>")
        );
        let b = ErrorBody::parse(br#"{"error": "quota exceeded"}"#);
        assert_eq!(b.message.as_deref(), Some("quota exceeded"));
        assert_eq!(ErrorBody::parse(br#"{"error": ""}"#), ErrorBody::default());
        let b = ErrorBody::parse(br#"{"error": {"message": "x", "code": 42}}"#);
        assert_eq!(b.code.as_deref(), Some("42"));
        assert_eq!(ErrorBody::parse(b""), ErrorBody::default());
        let long = "x".repeat(500);
        let b = ErrorBody::parse(long.as_bytes());
        assert_eq!(b.message.unwrap().chars().count(), 201);
    }

    #[test]
    fn status_errors_show_message_code_and_request_id() {
        let e = crate::provider::openai::judged(StatusError {
            status: 400,
            body: ErrorBody {
                message: Some("Unknown parameter: 'style'.".into()),
                kind: Some("invalid_request_error".into()),
                code: Some("unknown_parameter".into()),
                param: Some("style".into()),
                moderation: None,
            },
            request_id: Some("req_123".into()),
            retry_after: None,
            should_retry: None,
            rate_limit: None,
            verdict: Verdict::Fail,
        });
        assert_eq!(
            e.to_string(),
            "HTTP 400 Bad Request: Unknown parameter: 'style'. (code unknown_parameter, param style, request req_123)"
        );
        assert_eq!(e.request_id(), Some("req_123"));
        assert!(!e.is_refusal());
    }

    #[test]
    fn a_400_names_the_params_it_is_about() {
        let error = |status: u16, param: Option<&str>, message: &str| {
            ApiError::Status(Box::new(StatusError {
                status,
                body: ErrorBody {
                    message: Some(message.to_owned()),
                    param: param.map(str::to_owned),
                    ..ErrorBody::default()
                },
                request_id: None,
                retry_after: None,
                should_retry: None,
                rate_limit: None,
                verdict: Verdict::Fail,
            }))
        };
        let given: BTreeMap<String, String> = [
            ("frame_count", "--param frame_count=8"),
            ("thinkingConfig", "p.txt:1: param.thinkingConfig={}"),
            ("frame", "--param frame=1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let note = |e: &ApiError| e.param_note(&given);
        assert_eq!(
            note(&error(
                400,
                Some("frame_count"),
                "Unknown parameter: 'frame_count'."
            ))
            .unwrap(),
            " (sent because of --param frame_count=8)"
        );
        assert_eq!(
            note(&error(
                400,
                None,
                "Invalid value at 'generation_config.thinking_config.thinking_budget'"
            ))
            .unwrap(),
            " (sent because of p.txt:1: param.thinkingConfig={})"
        );
        assert_eq!(
            note(&error(400, Some("size"), "Invalid value: '9x9'.")).unwrap(),
            " (params sent: --param frame=1, --param frame_count=8, \
             p.txt:1: param.thinkingConfig={})"
        );
        assert_eq!(note(&error(500, None, "frame_count")), None);
        assert_eq!(
            error(400, None, "x").param_note(&BTreeMap::new()),
            None,
            "no params, no note"
        );
        let mut refused = error(400, None, "frame_count");
        if let ApiError::Status(s) = &mut refused {
            s.verdict = Verdict::Refused;
        }
        assert_eq!(note(&refused), None);
    }

    #[test]
    fn refusals_are_recognised() {
        for code in ["content_policy_violation", "moderation_blocked"] {
            let e = crate::provider::openai::judged(StatusError {
                status: 400,
                body: ErrorBody {
                    code: Some(code.into()),
                    ..ErrorBody::default()
                },
                request_id: None,
                retry_after: None,
                should_retry: None,
                rate_limit: None,
                verdict: Verdict::Fail,
            });
            assert!(e.is_refusal(), "{code}");
        }
    }
}
