//! One reqwest client (rustls, on tokio) for the whole run.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use url::Url;

use super::error::{ApiError, ErrorBody, StatusError};
use super::openai::{Delivery, decode_response};
use super::openai::{ImageRequest, Operation};
use super::retry::{RetryPolicy, Verdict, classify, retry_after};
use crate::engine::pace::RateLimitInfo;
use crate::format::ImageFormat;
use backon::Retryable as _;

pub const USER_AGENT: &str = concat!("genimg/", env!("CARGO_PKG_VERSION"));

/// Further tries at an image link that fails on its way, before the request is made again.
const DOWNLOAD_RETRIES: u32 = 3;

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

/// How to reach the service. The key is a secret: `Debug` shows it redacted.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The API root, e.g. `https://api.openai.com/v1/`; for Azure, the resource's URL.
    pub base_url: Url,
    pub service: Service,
    pub api_key: SecretString,
    pub organization: Option<String>,
    pub project: Option<String>,
    /// The time one request may take, answer included.
    pub timeout: Duration,
}

/// An image as the service delivered it, with what it said about it.
///
/// It holds one of the client's image slots until it is dropped: only so many answers are
/// read, decoded and written at once, so memory follows that number, not `-j`.
pub struct GeneratedImage {
    /// The bytes exactly as received: OpenAI signs them (C2PA), so they are never re-encoded.
    pub bytes: Vec<u8>,
    pub format: ImageFormat,
    pub revised_prompt: Option<String>,
    pub usage: Option<Value>,
    pub request_id: Option<String>,
    /// What the `x-ratelimit-*` headers said, if the server sent them.
    pub rate_limit: Option<RateLimitInfo>,
    /// The client's image slot, given back when the image is dropped.
    pub slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl fmt::Debug for GeneratedImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedImage")
            .field("len", &self.bytes.len())
            .field("format", &self.format)
            .field("revised_prompt", &self.revised_prompt)
            .field("usage", &self.usage)
            .field("request_id", &self.request_id)
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

/// The Images API client.
#[derive(Debug, Clone)]
pub struct Client {
    /// For the API: the key goes along, redirects do not.
    http: reqwest::Client,
    /// For image links: no key, redirects followed.
    downloads: reqwest::Client,
    /// Answers being read, decoded or written at once; see [`GeneratedImage`].
    image_slots: Arc<Semaphore>,
    base_url: Url,
    service: Service,
    /// Sent to the API only, never to the hosts of download links.
    api_headers: HeaderMap,
    timeout: Duration,
    /// Kept to scrub it from anything a server says back.
    api_key: SecretString,
}

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

impl Client {
    pub fn new(config: &ClientConfig) -> Result<Client, ClientError> {
        // reqwest is built without a default TLS provider; ring builds fast and is enough.
        // Installing fails only when one is already installed, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();

        let mut api_headers = HeaderMap::new();
        let (name, value) = match config.service {
            Service::OpenAi => (
                AUTHORIZATION,
                format!("Bearer {}", config.api_key.expose_secret()),
            ),
            Service::Azure { .. } => (
                HeaderName::from_static("api-key"),
                config.api_key.expose_secret().to_owned(),
            ),
        };
        let mut auth = HeaderValue::from_str(&value).map_err(|_| ClientError::BadKey)?;
        auth.set_sensitive(true);
        api_headers.insert(name, auth);
        for (name, value, env) in [
            ("openai-organization", &config.organization, "OPENAI_ORG_ID"),
            ("openai-project", &config.project, "OPENAI_PROJECT_ID"),
        ] {
            if let Some(v) = value {
                let v =
                    HeaderValue::from_str(v).map_err(|_| ClientError::BadHeader { name: env })?;
                api_headers.insert(HeaderName::from_static(name), v);
            }
        }

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
        Ok(Client {
            http,
            downloads,
            image_slots: Arc::new(Semaphore::new((2 * cores).max(4))),
            base_url: config.base_url.clone(),
            service: config.service.clone(),
            api_headers,
            timeout: config.timeout,
            api_key: config.api_key.clone(),
        })
    }

    /// The URL a request goes to.
    pub fn url(&self, request: &ImageRequest) -> Url {
        request_url(&self.base_url, &self.service, request)
    }

    /// Sends one request and returns the image, downloaded if the server answered with a URL.
    pub async fn create(&self, request: &ImageRequest) -> Result<GeneratedImage, ApiError> {
        let url = self.url(request);
        // On an Azure deployment path the deployment is the model; the body names none.
        let deployment = matches!(
            self.service,
            Service::Azure {
                api_version: Some(_)
            }
        );
        let fields = if deployment {
            let mut fields = request.fields.clone();
            fields.remove("model");
            std::borrow::Cow::Owned(fields)
        } else {
            std::borrow::Cow::Borrowed(&request.fields)
        };
        let sent = std::time::Instant::now();
        tracing::debug!(%url, model = request.model(), "sending an image request");
        let builder = self
            .http
            .post(url)
            .headers(self.api_headers.clone())
            .timeout(self.timeout);
        let builder = match request.operation() {
            Operation::Generate => builder.json(fields.as_ref()),
            Operation::Edit => builder.multipart(request.multipart(&fields)),
        };
        let response = builder.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        // The body, its decoded image and the write happen under one slot.
        let slot = self
            .image_slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let request_id = header("x-request-id");
        let retry_after = retry_after(
            header("retry-after-ms").as_deref(),
            header("retry-after").as_deref(),
            std::time::SystemTime::now(),
        );
        let rate_limit = RateLimitInfo::from_headers(|name| {
            response.headers().get(name).and_then(|v| v.to_str().ok())
        });
        let should_retry = match header("x-should-retry").as_deref().map(str::trim) {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        };
        let body = response.bytes().await.map_err(|e| self.transport(e))?;
        tracing::debug!(
            status = status.as_u16(),
            request_id = request_id.as_deref().unwrap_or("-"),
            bytes = body.len(),
            elapsed_ms = sent.elapsed().as_millis() as u64,
            "answer received"
        );
        if !status.is_success() {
            // A server may echo the key it was sent (a 401 does): never show it. The whole
            // body is scrubbed before it is read, so no field and no shortened message keeps
            // a piece of it.
            let text = String::from_utf8_lossy(&body);
            let body = ErrorBody::parse(redact(&text, self.api_key.expose_secret()).as_bytes());
            return Err(ApiError::Status(Box::new(StatusError {
                status: status.as_u16(),
                body,
                request_id,
                retry_after,
                should_retry,
                rate_limit,
            })));
        }

        // Decoding megabytes of base64 is CPU work: keep it off the async workers.
        let decoded = tokio::task::spawn_blocking(move || decode_response(&body))
            .await
            .map_err(|e| ApiError::Transport {
                detail: format!("decoding stopped: {e}"),
            })?
            .map_err(|e| ApiError::bad_answer(&e, request_id.clone()))?;
        if decoded.count > 1 {
            tracing::warn!(
                images = decoded.count,
                request_id = request_id.as_deref().unwrap_or("-"),
                "the answer held more images than the one asked for; keeping the first"
            );
        }
        let bytes = match decoded.image {
            Delivery::Bytes(bytes) => bytes,
            Delivery::Url(link) => self.download(&link, &request_id).await?,
        };

        let expected = request.expected_format();
        match ImageFormat::sniff(&bytes) {
            Some(format) if format == expected => Ok(GeneratedImage {
                bytes,
                format,
                revised_prompt: decoded.revised_prompt,
                usage: decoded.usage,
                request_id,
                rate_limit,
                slot: Some(slot),
            }),
            found => Err(ApiError::BadAnswer {
                reason: match found {
                    Some(other) => format!("asked for {expected}, received {other}"),
                    None => format!("asked for {expected}, received bytes that are no image"),
                },
                request_id,
            }),
        }
    }

    /// Fetches an image link. No API key goes along: the link is signed by itself and may
    /// point at another host.
    async fn download(&self, link: &str, request_id: &Option<String>) -> Result<Vec<u8>, ApiError> {
        let url = self.base_url.join(link).map_err(|e| ApiError::BadAnswer {
            reason: format!("the image link is not a URL: {e}"),
            request_id: request_id.clone(),
        })?;
        // The image is paid for once the answer names its link: a link that stumbles is
        // fetched again, a few times, before the whole request is.
        let fetch = || async {
            let response = self
                .downloads
                .get(url.clone())
                .timeout(self.timeout)
                .send()
                .await
                .map_err(|e| self.transport(e))?;
            let status = response.status();
            let body = response.bytes().await.map_err(|e| self.transport(e))?;
            if !status.is_success() {
                return Err(ApiError::Download {
                    status: status.as_u16(),
                    request_id: request_id.clone(),
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
            .when(|e| classify(e) == Verdict::Retry)
            .notify(|e, wait| {
                tracing::info!(error = %e, wait_ms = wait.as_millis() as u64, "fetching the image link again");
            })
            .await
    }

    fn transport(&self, err: reqwest::Error) -> ApiError {
        ApiError::from_reqwest(err, self.timeout.as_secs())
    }
}

/// Replaces every occurrence of `secret` in `text`.
fn redact(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        text.to_owned()
    } else {
        text.replace(secret, "[redacted]")
    }
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

    fn config(key: &str) -> ClientConfig {
        ClientConfig {
            base_url: Url::parse("https://api.openai.com/v1").unwrap(),
            service: Service::OpenAi,
            api_key: SecretString::from(key.to_owned()),
            organization: Some("org-1".into()),
            project: None,
            timeout: Duration::from_secs(600),
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
        use crate::models::Model;
        use crate::provider::RequestOptions;
        let request = ImageRequest::new(
            &Model::lookup("my-dalle"),
            "a cat",
            &RequestOptions::default(),
            std::sync::Arc::from([]),
        );
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
        let client = Client::new(&ClientConfig {
            base_url: base,
            service: Service::Azure { api_version: None },
            ..config("azure-key")
        })
        .unwrap();
        assert!(client.api_headers.contains_key("api-key"));
        assert!(!client.api_headers.contains_key(AUTHORIZATION));
    }

    #[test]
    fn builds_an_https_client_and_keeps_the_key_out_of_debug() {
        let client = Client::new(&config("sk-very-secret")).unwrap();
        let shown = format!("{client:?} {:?}", config("sk-very-secret"));
        assert!(!shown.contains("sk-very-secret"), "{shown}");
        assert_eq!(client.api_headers["openai-organization"], "org-1");
    }

    #[test]
    fn a_key_http_cannot_carry_is_refused_without_showing_it() {
        let err = Client::new(&config("sk-bad\nkey")).unwrap_err();
        assert!(!err.to_string().contains("sk-bad"));
    }

    #[test]
    fn echoed_keys_are_redacted() {
        assert_eq!(
            redact("Incorrect API key provided: sk-abc. See", "sk-abc"),
            "Incorrect API key provided: [redacted]. See"
        );
        assert_eq!(redact("nothing here", ""), "nothing here");
    }

    #[test]
    fn user_agent_names_the_version() {
        assert_eq!(USER_AGENT, format!("genimg/{}", env!("CARGO_PKG_VERSION")));
    }
}
