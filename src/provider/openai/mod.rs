//! OpenAI's Images API, and Azure OpenAI's dialect of it: a pure translator between an
//! [`ImageSpec`] and the wire.
//!
//! [`encode`] gives the request for a spec; [`decode`] reads an answer into the image it
//! delivered or an error with OpenAI's verdict on it. Neither does any I/O: the shared
//! transport (`provider::http`) sends and receives.

pub mod batch;
mod request;
mod response;
mod verdict;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

pub use request::{ImageRequest, OWN_FIELDS, Operation};
pub use response::{
    DecodeError, Delivery, ImagesResponse, decode_base64, decode_response, usage_of,
};
pub use verdict::{classify, classify_status, judged};

use super::Answer;
use super::error::{ApiError, ErrorBody, StatusError};
use super::http::{ClientError, RawAnswer, WireBody, WireRequest, secret_header};
use super::retry::{Verdict, retry_after};
use crate::provider::RateLimitInfo;
use crate::spec::ImageSpec;

/// Which kind of service answers: they differ in paths and in how the key is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Service {
    /// OpenAI or any OpenAI-compatible server: `{base}/images/...`, `Authorization: Bearer`.
    OpenAi,
    /// Azure OpenAI, with the `api-key` header: the v1 path `{resource}/openai/v1/images/...`,
    /// or with an API version the deployment path
    /// `{resource}/openai/deployments/{model}/images/...?api-version=...`, where the model
    /// names the deployment.
    Azure { api_version: Option<String> },
}

impl Service {
    /// The header that carries the key.
    pub fn auth_header(
        &self,
        key: &SecretString,
    ) -> Result<(HeaderName, reqwest::header::HeaderValue), ClientError> {
        Ok(match self {
            Service::OpenAi => (
                AUTHORIZATION,
                secret_header(&format!("Bearer {}", key.expose_secret()))?,
            ),
            Service::Azure { .. } => (
                HeaderName::from_static("api-key"),
                secret_header(key.expose_secret())?,
            ),
        })
    }

    /// On an Azure deployment path the deployment is the model, and the body names none.
    fn model_in_path(&self) -> bool {
        matches!(
            self,
            Service::Azure {
                api_version: Some(_)
            }
        )
    }
}

/// The request for one image of `spec`, to `service` at `base`.
pub fn encode(base: &Url, service: &Service, spec: &ImageSpec) -> WireRequest {
    let mut request = ImageRequest::encode(spec);
    let url = request_url(base, service, &request);
    if service.model_in_path() {
        request.fields.remove("model");
    }
    let body = match request.operation() {
        Operation::Generate => WireBody::Json(request.fields),
        Operation::Edit => WireBody::Multipart(request.multipart(&request.fields)),
    };
    WireRequest { url, body }
}

/// Reads an answer: the image it delivered, or an error with OpenAI's verdict on it. An
/// answer that carries no usable bytes is an error worth asking again; what it billed is
/// kept with it.
pub fn decode(raw: &RawAnswer) -> Result<Answer, ApiError> {
    decode_parts(raw.status, |name| raw.header(name), &raw.body)
}

/// As [`decode`], from an answer's parts: its status, its headers (by lower-case name) and
/// its body. A line of a batch's results is decoded so, with its `request_id` as the only
/// header.
pub fn decode_parts<'h>(
    status: u16,
    header: impl Fn(&str) -> Option<&'h str>,
    body: &[u8],
) -> Result<Answer, ApiError> {
    let request_id = header("x-request-id").map(str::to_owned);
    let rate_limit = RateLimitInfo::from_headers(&header);
    if !(200..300).contains(&status) {
        let should_retry = match header("x-should-retry").map(str::trim) {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        };
        let body = ErrorBody::parse(body);
        // A 429's message names the limit even when no header does.
        let rate_limit = match body.message.as_deref().and_then(limit_in_message) {
            Some(limit) => {
                let mut info = rate_limit.unwrap_or(RateLimitInfo {
                    remaining: None,
                    reset: std::time::Duration::ZERO,
                    counts_requests: false,
                    per_minute: None,
                });
                // The tighter of the two: the message names the limit that refused it.
                info.per_minute = Some(info.per_minute.map_or(limit, |l| l.min(limit)));
                Some(info)
            }
            None => rate_limit,
        };
        // Without a header, a 429's message may say how long: "Please try again in 1.2s."
        let retry_after = retry_after(
            header("retry-after-ms"),
            header("retry-after"),
            std::time::SystemTime::now(),
        )
        .or_else(|| {
            (status == 429)
                .then(|| body.message.as_deref().and_then(wait_in_message))
                .flatten()
        });
        return Err(judged(StatusError {
            status,
            body,
            request_id,
            retry_after,
            should_retry,
            rate_limit,
            verdict: Verdict::Fail,
        }));
    }
    match decode_response(body) {
        Ok(decoded) => {
            if decoded.count > 1 {
                tracing::warn!(
                    images = decoded.count,
                    request_id = request_id.as_deref().unwrap_or("-"),
                    "the answer held more images than the one asked for; keeping the first"
                );
            }
            Ok(Answer {
                image: decoded.image,
                revised_prompt: decoded.revised_prompt,
                usage: decoded.usage,
                request_id,
                rate_limit,
            })
        }
        Err(e) => Err(ApiError::bad_answer(&e, request_id, usage_of(body))),
    }
}

/// The per-minute limit a rate-limit message names: "Rate limit reached for MODEL in
/// organization ORG on images per min (IPM): Limit 600, Used 600, Requested 1. Please try
/// again in 1.2s." Only a limit on requests or images per minute counts: tokens are not
/// requests, and a daily limit says nothing about the pace.
pub fn limit_in_message(message: &str) -> Option<u32> {
    let lower = message.to_ascii_lowercase();
    let per_minute = ["images per min", "requests per min", "(ipm)", "(rpm)"]
        .iter()
        .any(|unit| lower.contains(unit));
    if !per_minute {
        return None;
    }
    let after = &message[message.find("Limit ")? + "Limit ".len()..];
    let digits: String = after
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse::<u32>().ok().filter(|limit| *limit > 0)
}

/// The wait a message asks for: "Please try again in 1.2s." (also `in 6m0s`, `in 20ms`, `in
/// 1h2m3s`, or `in 20 seconds`).
pub fn wait_in_message(message: &str) -> Option<std::time::Duration> {
    let at = message.to_ascii_lowercase().find("try again in ")? + "try again in ".len();
    let mut words = message[at..].split_whitespace();
    let first = words.next()?.trim_end_matches(['.', ',', ';', ')']);
    if let Some(wait) = super::parse_reset(first)
        .filter(|_| !first.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
    {
        return Some(wait);
    }
    let number: f64 = first.parse().ok()?;
    let unit = words.next()?.trim_end_matches(['.', ',', ';', ')']);
    let seconds = match unit.trim_end_matches('s') {
        "millisecond" | "ms" => 0.001,
        "second" | "sec" => 1.0,
        "minute" | "min" => 60.0,
        "hour" | "hr" => 3600.0,
        _ => return None,
    };
    let total = number * seconds;
    (total.is_finite() && total >= 0.0).then(|| std::time::Duration::from_secs_f64(total))
}

/// The `request_hash` release 0.1 wrote for this spec: a hash of the OpenAI request, every
/// field and the content of each reference. Manifests written then still name their images
/// by it.
pub fn legacy_identity(spec: &ImageSpec) -> String {
    let mut request = ImageRequest::encode(spec);
    // How the answer travels is no part of what it is.
    request.fields.remove("stream");
    request.fields.remove("partial_images");
    // Sorted keys, whatever order the map keeps, so the hash is canonical.
    let mut fields: Vec<_> = request.fields.iter().collect();
    fields.sort_by(|a, b| a.0.cmp(b.0));
    let fields: serde_json::Map<String, serde_json::Value> = fields
        .into_iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let references: Vec<serde_json::Value> = request
        .references
        .iter()
        .map(|r| serde_json::json!([r.format.mime(), r.sha256]))
        .collect();
    let canonical = serde_json::json!([request.operation().path(), fields, references]);
    format!(
        "sha256:{}",
        crate::units::sha256_hex(canonical.to_string().as_bytes())
    )
}

/// The headers every API request carries besides the key: organization and project.
pub fn api_headers(
    service: &Service,
    key: &SecretString,
    organization: &Option<String>,
    project: &Option<String>,
) -> Result<HeaderMap, ClientError> {
    let mut headers = HeaderMap::new();
    let (name, value) = service.auth_header(key)?;
    headers.insert(name, value);
    super::http::plain_header(
        &mut headers,
        "openai-organization",
        organization,
        "OPENAI_ORG_ID",
    )?;
    super::http::plain_header(&mut headers, "openai-project", project, "OPENAI_PROJECT_ID")?;
    Ok(headers)
}

/// Joins an operation path onto the API root, whether or not the root ends with `/`.
pub fn endpoint_url(base: &Url, operation: Operation) -> Url {
    let mut url = base.clone();
    let path = format!("{}/{}", base.path().trim_end_matches('/'), operation.path());
    url.set_path(&path);
    url
}

/// The URL of a request to `service` at `base`.
pub fn request_url(base: &Url, service: &Service, request: &ImageRequest) -> Url {
    let op = request.operation();
    let base = &match service {
        // An endpoint copied with its `/openai/v1` (or `/openai`) path: the resource is what
        // comes before it.
        Service::Azure { .. } => {
            let mut root = base.clone();
            let path = base.path().trim_end_matches('/');
            let path = path
                .strip_suffix("/openai/v1")
                .or_else(|| path.strip_suffix("/openai"))
                .unwrap_or(path);
            root.set_path(path);
            root
        }
        Service::OpenAi => base.clone(),
    };
    match service {
        Service::OpenAi => endpoint_url(base, op),
        Service::Azure { api_version: None } => {
            let mut url = base.clone();
            url.set_path(&format!("{}/openai/v1", base.path().trim_end_matches('/')));
            endpoint_url(&url, op)
        }
        Service::Azure {
            api_version: Some(version),
        } => {
            let mut url = base.clone();
            // The deployment name is one path segment, percent-encoded as such.
            url.path_segments_mut()
                .expect("http(s) URLs have paths")
                .pop_if_empty()
                .extend(["openai", "deployments", request.model()]);
            let mut url = endpoint_url(&url, op);
            url.query_pairs_mut().append_pair("api-version", version);
            url
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_limit_message_names_the_limit_per_minute() {
        let ipm = "Rate limit reached for gpt-image-2 in organization org-x on images per min \
                   (IPM): Limit 600, Used 600, Requested 1. Please try again in 1.2s.";
        assert_eq!(limit_in_message(ipm), Some(600));
        assert_eq!(
            limit_in_message("... on requests per min (RPM): Limit 1,000, Used 1000"),
            Some(1000)
        );
        for other in [
            "... on tokens per min (TPM): Limit 40000, Used 40000, Requested 1.",
            "... on requests per day (RPD): Limit 200, Used 200, Requested 1.",
            "Rate limit reached for images per min.",
            "... images per min (IPM): Limit 0, Used 0",
            "You exceeded your current quota.",
        ] {
            assert_eq!(limit_in_message(other), None, "{other}");
        }
    }

    #[test]
    fn a_429_teaches_its_limit_from_the_message_without_headers() {
        let raw = RawAnswer {
            status: 429,
            headers: HeaderMap::new(),
            slot: std::sync::Arc::new(tokio::sync::Semaphore::new(1))
                .try_acquire_owned()
                .unwrap(),
            body: bytes::Bytes::from_static(br#"{"error": {"message": "Rate limit reached for m in organization o on images per min (IPM): Limit 120, Used 120, Requested 1. Please try again in 500ms.", "type": "requests", "code": "rate_limit_exceeded"}}"#),
        };
        let Err(ApiError::Status(s)) = decode(&raw) else {
            panic!("an error")
        };
        assert_eq!(s.rate_limit.and_then(|r| r.per_minute), Some(120));
        assert_eq!(s.verdict, Verdict::Retry);
        assert_eq!(
            s.retry_after,
            Some(std::time::Duration::from_millis(500)),
            "the wait the message asks for, as no header said one"
        );
    }

    #[test]
    fn the_tighter_of_the_headers_and_the_message_is_the_limit() {
        let body = br#"{"error": {"message": "Rate limit reached on images per min (IPM): Limit 5, Used 5, Requested 1.", "code": "rate_limit_exceeded"}}"#;
        let headers = |name: &str| match name {
            "x-ratelimit-limit-requests" => Some("50"),
            "retry-after-ms" => Some("250"),
            _ => None,
        };
        let Err(ApiError::Status(s)) = decode_parts(429, headers, body) else {
            panic!("an error")
        };
        assert_eq!(s.rate_limit.and_then(|r| r.per_minute), Some(5));
        assert_eq!(
            s.retry_after,
            Some(std::time::Duration::from_millis(250)),
            "a header's wait wins over the message's"
        );
    }

    #[test]
    fn a_message_may_say_how_long_to_wait() {
        use std::time::Duration;
        let cases = [
            (
                "Please try again in 1.2s.",
                Some(Duration::from_millis(1200)),
            ),
            ("Please try again in 6m0s.", Some(Duration::from_secs(360))),
            ("please try again in 20ms", Some(Duration::from_millis(20))),
            ("Try again in 1h2m3s.", Some(Duration::from_secs(3723))),
            (
                "Please try again in 20 seconds.",
                Some(Duration::from_secs(20)),
            ),
            (
                "Please try again in 2 minutes",
                Some(Duration::from_secs(120)),
            ),
            ("Please try again in a while.", None),
            ("Please try again later.", None),
            ("Limit 600, Used 600", None),
        ];
        for (message, wait) in cases {
            assert_eq!(wait_in_message(message), wait, "{message}");
        }
    }

    #[test]
    fn endpoints_join_with_or_without_a_trailing_slash() {
        for base in ["https://api.openai.com/v1", "https://api.openai.com/v1/"] {
            let base = Url::parse(base).unwrap();
            assert_eq!(
                endpoint_url(&base, Operation::Generate).as_str(),
                "https://api.openai.com/v1/images/generations"
            );
            assert_eq!(
                endpoint_url(&base, Operation::Edit).as_str(),
                "https://api.openai.com/v1/images/edits"
            );
        }
    }

    #[test]
    fn azure_paths() {
        use crate::catalog::Model;
        use crate::spec::ImageOptions;
        let request = ImageRequest::encode(&ImageSpec::new(
            &Model::lookup("my-dalle"),
            "a cat",
            &ImageOptions::default(),
            std::sync::Arc::from([]),
        ));
        let base = Url::parse("https://res.openai.azure.com").unwrap();
        let v1 = request_url(&base, &Service::Azure { api_version: None }, &request);
        assert_eq!(
            v1.as_str(),
            "https://res.openai.azure.com/openai/v1/images/generations"
        );
        for copied in [
            "https://res.openai.azure.com/openai/v1/",
            "https://res.openai.azure.com/openai",
        ] {
            let base = Url::parse(copied).unwrap();
            let url = request_url(&base, &Service::Azure { api_version: None }, &request);
            assert_eq!(url.as_str(), v1.as_str(), "{copied}");
        }
        let dep = request_url(
            &base,
            &Service::Azure {
                api_version: Some("2025-04-01-preview".into()),
            },
            &request,
        );
        assert_eq!(
            dep.as_str(),
            "https://res.openai.azure.com/openai/deployments/my-dalle/images/generations?api-version=2025-04-01-preview"
        );
        let headers = api_headers(
            &Service::Azure { api_version: None },
            &SecretString::from("azure-key"),
            &None,
            &None,
        )
        .unwrap();
        assert!(headers.contains_key("api-key"));
        assert!(!headers.contains_key(AUTHORIZATION));
    }
}

#[cfg(test)]
mod frozen_identities {
    //! The hashes today's release wrote into manifests: a later release must give the same
    //! ones for the same requests, or an upgrade would make every image stale.

    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::catalog::{Model, Size, Tier};
    use crate::format::ImageFormat;
    use crate::spec::{ImageOptions, Quality, Reference};
    use crate::units::sha256_hex;

    #[test]
    fn hashes_of_manifests_written_by_release_0_1_stay_the_same() {
        let reference = Reference {
            path: "refs/cat.png".into(),
            format: ImageFormat::Png,
            bytes: Bytes::from_static(b"ref bytes"),
            sha256: sha256_hex(b"ref bytes"),
        };
        let every_option = ImageOptions {
            size: "1536x1024".parse::<Size>().unwrap(),
            quality: Quality::Named("xhigh"),
            format: Some(ImageFormat::Webp),
            compression: Some(70),
            background: Some("transparent"),
            moderation: Some("low"),
            input_fidelity: Some("high"),
            complexity: Some("medium"),
            aspect_ratio: None,
            image_size: None,
            stream: false,
            partial_images: None,
            params: Default::default(),
        };
        let edit = ImageOptions {
            input_fidelity: Some("high"),
            format: Some(ImageFormat::Jpeg),
            ..ImageOptions::default()
        };
        let standard = ImageOptions {
            quality: Quality::Tier(Tier::Standard),
            ..ImageOptions::default()
        };
        let cases: Vec<(&str, &str, ImageOptions, Vec<Reference>, &str)> = vec![
            (
                "gpt-image-2",
                "a cat",
                ImageOptions::default(),
                vec![],
                "sha256:05b1f2e966994e190d952e46bc62d54204f0714ae0de3114792c9f31686b7f7c",
            ),
            (
                "dall-e-3",
                "a cat",
                standard,
                vec![],
                "sha256:fc1def6930592ecfe0f5fbc18b1df6c8a339df73fc91f5c9061d3571915c1992",
            ),
            (
                "dall-e-2",
                "a cat",
                ImageOptions::default(),
                vec![],
                "sha256:7cee16a3874c4d6b2dffe582e069600ad6ed8cab29f66776b597c73366c3c138",
            ),
            (
                "gpt-image-2.6-flare",
                "a cat",
                every_option,
                vec![],
                "sha256:9f8d8e5a3628a29f17ccb4047143547dd0c495084f432f50b2d36e610fe16366",
            ),
            (
                "gpt-image-2",
                "a cat",
                edit,
                vec![reference],
                "sha256:cb959cdeb4a6c449d3e52aef76e2baca50f497219f3927751c71944e2b29443a",
            ),
            (
                "my-deployment",
                "un chat, s'il vous plaît",
                ImageOptions::default(),
                vec![],
                "sha256:58d24c220c3addf5ba5a2e8104fbae73ada18a06ac4e376bfa3de23a32a6f8c9",
            ),
        ];
        for (model, prompt, options, references, frozen) in cases {
            let spec = ImageSpec::new(
                &Model::lookup(model),
                prompt,
                &options,
                Arc::from(references),
            );
            assert_eq!(legacy_identity(&spec), frozen, "{model}");
        }
    }
}
