//! Providers: pure translators between an [`ImageSpec`] and a service's wire format, over one
//! shared HTTP transport.
//!
//! A provider's `encode` gives the wire request for a spec, and its `decode` reads an answer
//! into the image it delivered or a provider-neutral [`ApiError`] carrying the provider's
//! verdict: retry, refused, fatal or failed. Decoding is lenient, because an image that was
//! paid for must never be lost to a schema change on the server's side. [`Client`] joins a
//! provider to the transport.
//!
//! OpenAI and Azure OpenAI are two dialects of one provider ([`openai::Service`]). A second
//! provider is a sibling module of `openai` and a variant of [`Provider`]; the engine, the
//! store and the reports see only specs, answers and errors.

pub mod batches;
mod error;
pub mod gemini;
mod http;
pub mod openai;
mod ratelimit;
mod retry;

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;
use tokio::sync::OwnedSemaphorePermit;
use url::Url;

pub use error::{ApiError, Billed, ErrorBody, StatusError};
pub use http::{
    CallBody, ClientError, PartialSink, REDACTED, RawAnswer, Redactor, Reply, Transport,
    TransportConfig, USER_AGENT, WireBody, WireRequest,
};
pub use openai::{
    DecodeError, Delivery, ImageRequest, ImagesResponse, Operation, Service, decode_response,
};
pub use ratelimit::{RateLimitInfo, parse_reset};
pub use retry::{Billing, Fatal, MAX_RETRY_AFTER, RetryPolicy, Verdict, retry_after};

use crate::spec::{ImageSpec, ProviderId};

/// The service a run talks to, in its dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    OpenAi(Service),
    /// Google's Gemini API.
    Gemini,
}

impl Provider {
    /// The URL a request for `spec` goes to, and its operation as people read it
    /// (`/images/edits`): for the dry run.
    pub fn describe(&self, base: &Url, spec: &ImageSpec) -> (Url, String) {
        match self {
            Provider::OpenAi(service) => {
                let request = ImageRequest::encode(spec);
                (
                    openai::request_url(base, service, &request),
                    request.operation().to_string(),
                )
            }
            Provider::Gemini => (
                gemini::request_url(base, spec.model.name()),
                "generateContent".to_owned(),
            ),
        }
    }

    /// The wire request for one image of `spec`.
    pub fn encode(&self, base: &Url, spec: &ImageSpec) -> WireRequest {
        match self {
            Provider::OpenAi(service) => openai::encode(base, service, spec),
            Provider::Gemini => gemini::encode(base, spec),
        }
    }

    /// What an answer delivered, or why it delivered nothing usable.
    pub fn decode(&self, raw: &RawAnswer) -> Result<Answer, ApiError> {
        match self {
            Provider::OpenAi(_) => openai::decode(raw),
            Provider::Gemini => {
                gemini::decode_parts(raw.status, |name| raw.header(name), &raw.body)
            }
        }
    }
}

/// The identities a spec's images may carry in a manifest: today's, and the one the first
/// release wrote for the same ask (it hashed OpenAI's wire request).
pub fn identity(spec: &ImageSpec) -> crate::spec::Identity {
    crate::spec::Identity {
        current: spec.identity(),
        // Release 0.1 sent no mask: no image it made was masked, and its hash, which does
        // not cover a mask, must not name a masked ask.
        legacy: match spec.provider {
            ProviderId::OpenAi if spec.mask.is_none() => Some(openai::legacy_identity(spec)),
            ProviderId::OpenAi | ProviderId::Gemini => None,
        },
    }
}

/// What the manifest records of the request for `spec`: its operation, and every field sent
/// but the prompt (which the record keeps as its own field).
pub fn wire_fields(spec: &ImageSpec) -> (&'static str, serde_json::Map<String, Value>) {
    match spec.provider {
        ProviderId::OpenAi => {
            let mut request = ImageRequest::encode(spec);
            request.fields.remove("prompt");
            (request.operation().path(), request.fields)
        }
        ProviderId::Gemini => ("generateContent", gemini::wire_fields(spec)),
    }
}

/// Why a `--param` may not name `key` on `provider`'s requests, if it may not: genimg sets
/// that field itself. Says what to use instead.
pub fn own_field(provider: ProviderId, key: &str) -> Option<&'static str> {
    let table = match provider {
        ProviderId::OpenAi => openai::OWN_FIELDS,
        ProviderId::Gemini => gemini::OWN_CONFIG_FIELDS,
    };
    table.iter().find(|(k, _)| *k == key).map(|(_, why)| *why)
}

/// What an answer said, decoded by its provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub image: Delivery,
    pub revised_prompt: Option<String>,
    pub usage: Option<Value>,
    pub request_id: Option<String>,
    /// What the `x-ratelimit-*` headers said, if the server sent them.
    pub rate_limit: Option<RateLimitInfo>,
}

/// The bytes an answer delivered, with what the service said about them. Nothing is judged
/// yet: whether they are the image asked for is the store's to find out (see `store::sink`).
///
/// It holds one of the transport's image slots until it is dropped: only so many answers
/// are read, decoded and written at once, so memory follows that number, not `-j`.
pub struct Delivered {
    /// The bytes exactly as received: OpenAI signs them (C2PA), so they are never re-encoded.
    pub bytes: Vec<u8>,
    pub revised_prompt: Option<String>,
    pub usage: Option<Value>,
    pub request_id: Option<String>,
    pub rate_limit: Option<RateLimitInfo>,
    /// The transport's image slot, given back when the image is dropped.
    pub slot: Option<OwnedSemaphorePermit>,
}

impl fmt::Debug for Delivered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivered")
            .field("len", &self.bytes.len())
            .field("revised_prompt", &self.revised_prompt)
            .field("usage", &self.usage)
            .field("request_id", &self.request_id)
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

/// How to reach the service. The key is a secret: `Debug` shows it redacted.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The API root, e.g. `https://api.openai.com/v1/`; for Azure, the resource's URL.
    pub base_url: Url,
    pub provider: Provider,
    pub api_key: SecretString,
    pub organization: Option<String>,
    pub project: Option<String>,
    /// The time one request may take, answer included.
    pub timeout: Duration,
}

/// A client for each provider a run uses: a spec goes to its own provider's.
#[derive(Debug, Clone, Default)]
pub struct Clients(Vec<(ProviderId, Client)>);

impl Clients {
    /// Adds the client of `id` (in place of one it had).
    pub fn with(mut self, id: ProviderId, client: Client) -> Clients {
        self.0.retain(|(had, _)| *had != id);
        self.0.push((id, client));
        self.0.sort_by_key(|(id, _)| *id);
        self
    }

    /// The client of `id`, if the run has one.
    pub fn get(&self, id: ProviderId) -> Option<&Client> {
        self.0.iter().find(|(had, _)| *had == id).map(|(_, c)| c)
    }

    /// The batch API of each provider it has a client for.
    pub fn batch_apis(&self) -> Vec<batches::BatchApi> {
        self.0.iter().map(|(_, c)| c.batches()).collect()
    }

    /// Sends one request for `spec` to its provider (see [`Client::create_with`]).
    pub async fn create_with(
        &self,
        spec: &ImageSpec,
        partial: Option<&PartialSink>,
    ) -> Result<Delivered, ApiError> {
        match self.get(spec.provider) {
            Some(client) => client.create_with(spec, partial).await,
            // The config checks every key a run's prompts need before any request.
            None => Err(ApiError::Transport {
                detail: format!("no client for {}", spec.provider.company()),
            }),
        }
    }
}

/// A provider over the transport: sends a spec, gives back what was delivered.
#[derive(Debug, Clone)]
pub struct Client {
    transport: Transport,
    provider: Provider,
    base_url: Url,
}

impl Client {
    /// Its provider's Files and batch APIs, over this client's transport.
    pub fn batches(&self) -> batches::BatchApi {
        let provider = match self.provider {
            Provider::OpenAi(_) => ProviderId::OpenAi,
            Provider::Gemini => ProviderId::Gemini,
        };
        batches::BatchApi::new(self.transport.clone(), self.base_url.clone(), provider)
    }

    /// Fetches an image an answer named by its link: a file of the API's own (Gemini's
    /// `fileData`) with the key, a link anywhere else without it (see
    /// [`Transport::download`]).
    pub async fn fetch_link(
        &self,
        link: &str,
        request_id: &Option<String>,
    ) -> Result<Vec<u8>, ApiError> {
        let own = match self.provider {
            Provider::Gemini => gemini::download_url(&self.base_url, link),
            Provider::OpenAi(_) => None,
        };
        match own {
            Some(url) => self.transport.download_with_key(url, request_id).await,
            None => {
                self.transport
                    .download(&self.base_url, link, request_id)
                    .await
            }
        }
    }

    /// Scrubs the key out of what an answer said back, as [`Client::create`] does.
    pub fn redact(&self, answer: &mut Answer) {
        let redactor = self.transport.redactor();
        if let Some(text) = &mut answer.revised_prompt {
            redactor.string(text);
        }
        if let Some(usage) = &mut answer.usage {
            redactor.value(usage);
        }
    }

    /// Scrubs the key out of text a server said back.
    pub fn redact_text(&self, text: &mut String) {
        self.transport.redactor().string(text);
    }

    /// Scrubs the key out of an error's text.
    pub fn redact_error(&self, error: &mut ApiError) {
        error.redact(self.transport.redactor());
    }

    pub fn new(config: &ClientConfig) -> Result<Client, ClientError> {
        let api_headers = match &config.provider {
            Provider::OpenAi(service) => openai::api_headers(
                service,
                &config.api_key,
                &config.organization,
                &config.project,
            )?,
            Provider::Gemini => gemini::api_headers(&config.api_key)?,
        };
        let transport = Transport::new(TransportConfig {
            api_headers,
            timeout: config.timeout,
            redactor: Redactor::new(config.api_key.clone()),
        })?;
        Ok(Client {
            transport,
            provider: config.provider.clone(),
            base_url: config.base_url.clone(),
        })
    }

    /// Sends one request for `spec` and returns what it delivered, downloaded if the answer
    /// named a link. Whatever the server said back has the key scrubbed out.
    pub async fn create(&self, spec: &ImageSpec) -> Result<Delivered, ApiError> {
        self.create_with(spec, None).await
    }

    /// As [`Client::create`]; a streamed answer hands each partial image to `partial` as it
    /// arrives.
    pub async fn create_with(
        &self,
        spec: &ImageSpec,
        partial: Option<&PartialSink>,
    ) -> Result<Delivered, ApiError> {
        let wire = self.provider.encode(&self.base_url, spec);
        let raw = self.transport.send_with(wire, partial).await?;
        // Decoding megabytes of base64 is CPU work: keep it off the async workers.
        let provider = self.provider.clone();
        let (answer, raw) = tokio::task::spawn_blocking(move || (provider.decode(&raw), raw))
            .await
            .map_err(|e| ApiError::Transport {
                detail: format!("decoding stopped: {e}"),
            })?;
        let mut answer = answer.map_err(|mut e| {
            self.redact_error(&mut e);
            e
        })?;
        self.redact(&mut answer);
        let bytes = match answer.image {
            Delivery::Bytes(bytes) => bytes,
            Delivery::Url(link) => self
                .fetch_link(&link, &answer.request_id)
                .await
                .map_err(|e| e.of_link(answer.usage.clone(), &answer.request_id))?,
        };
        // No bytes is no delivery: there is nothing to keep, so it is asked again, and what
        // it billed counts.
        if bytes.is_empty() {
            return Err(ApiError::BadAnswer {
                reason: "the image is empty".to_owned(),
                request_id: answer.request_id,
                usage: answer.usage,
            });
        }
        Ok(Delivered {
            bytes,
            revised_prompt: answer.revised_prompt,
            usage: answer.usage,
            request_id: answer.request_id,
            rate_limit: answer.rate_limit,
            slot: Some(raw.slot),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(key: &str) -> ClientConfig {
        ClientConfig {
            base_url: Url::parse("https://api.openai.com/v1").unwrap(),
            provider: Provider::OpenAi(Service::OpenAi),
            api_key: SecretString::from(key.to_owned()),
            organization: Some("org-1".into()),
            project: None,
            timeout: Duration::from_secs(600),
        }
    }

    #[test]
    fn builds_an_https_client_and_keeps_the_key_out_of_debug() {
        let client = Client::new(&config("sk-very-secret")).unwrap();
        let shown = format!("{client:?} {:?}", config("sk-very-secret"));
        assert!(!shown.contains("sk-very-secret"), "{shown}");
        assert_eq!(
            client.transport.api_headers()["openai-organization"],
            "org-1"
        );
    }

    #[test]
    fn a_key_http_cannot_carry_is_refused_without_showing_it() {
        let err = Client::new(&config("sk-bad\nkey")).unwrap_err();
        assert!(!err.to_string().contains("sk-bad"));
    }
}
