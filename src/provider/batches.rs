//! The calls of a provider's Files and batch APIs, over the run's transport: upload a file,
//! create, read, list and cancel a batch, and stream a file's content to disk. OpenAI's
//! Files and Batches APIs, or Gemini's Files API (resumable uploads) and batch mode, whose
//! operations are read into the same [`BatchObject`] (see `gemini::batch`).
//!
//! Each call is retried as an image request is (a 429, a 5xx, a dropped connection), a few
//! times, after the wait the server asks for; other errors come back with the provider's
//! verdict.

use std::path::Path;
use std::time::Duration;

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use super::http::{CallBody, Transport};
use super::openai::batch::{BatchList, BatchObject, COMPLETION_WINDOW, FileObject, SUBMISSION_KEY};
use super::{ApiError, Verdict};
use crate::catalog::ProviderId;

/// The multipart body of an upload: the `purpose`, then the file as `file`.
fn file_form(
    body: reqwest::Body,
    len: u64,
    name: &str,
    purpose: &str,
    mime: &str,
) -> Result<CallBody, ApiError> {
    let part = reqwest::multipart::Part::stream_with_length(body, len)
        .file_name(name.to_owned())
        .mime_str(mime)
        .map_err(|e| ApiError::Transport {
            detail: format!("{mime}: {e}"),
        })?;
    Ok(CallBody::Multipart(
        reqwest::multipart::Form::new()
            .text("purpose", purpose.to_owned())
            .part("file", part),
    ))
}

/// Tries of one call, the first included, before its error stands.
const CALL_TRIES: u32 = 5;

/// A provider's Files and batch APIs at `base`.
#[derive(Debug, Clone)]
pub struct BatchApi {
    transport: Transport,
    base: Url,
    provider: ProviderId,
}

/// A page of Gemini's `GET /v1beta/batches`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct OperationList {
    #[serde(default)]
    operations: Vec<Value>,
    #[serde(default)]
    next_page_token: Option<String>,
}

impl BatchApi {
    pub fn new(transport: Transport, base: Url, provider: ProviderId) -> BatchApi {
        BatchApi {
            transport,
            base,
            provider,
        }
    }

    /// Whose API it is.
    pub fn provider(&self) -> ProviderId {
        self.provider
    }

    /// A Gemini operation, read as a batch.
    fn operation(op: Value, what: &str) -> Result<BatchObject, ApiError> {
        super::gemini::batch::read_operation(&op).ok_or_else(|| ApiError::BadAnswer {
            reason: format!("{what}: the answer names no batch"),
            request_id: None,
            usage: None,
        })
    }

    /// `{base}/{path}`, whether or not the base ends with `/`; `path` may end with a query.
    fn url(&self, path: &str) -> Url {
        let (path, query) = path
            .split_once('?')
            .map_or((path, None), |(p, q)| (p, Some(q)));
        let mut url = self.base.clone();
        url.set_path(&format!(
            "{}/{path}",
            self.base.path().trim_end_matches('/')
        ));
        url.set_query(query);
        url
    }

    /// Sends a call, again while its error is worth retrying, and reads its JSON answer.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: impl Fn() -> Result<CallBody, ApiError>,
    ) -> Result<T, ApiError> {
        self.call_tries(method, path, body, CALL_TRIES).await
    }

    /// As [`BatchApi::call`], sent at most `max_tries` times.
    async fn call_tries<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: impl Fn() -> Result<CallBody, ApiError>,
        max_tries: u32,
    ) -> Result<T, ApiError> {
        let url = self.url(path);
        let mut tries = 0;
        loop {
            tries += 1;
            let result = match self
                .transport
                .call(method.clone(), url.clone(), body()?)
                .await
            {
                Ok(reply) if (200..300).contains(&reply.status) => {
                    return serde_json::from_slice(&reply.body).map_err(|e| ApiError::BadAnswer {
                        reason: format!(
                            "{method} {path}: the answer is not what was expected: {e}"
                        ),
                        request_id: reply.header("x-request-id").map(str::to_owned),
                        usage: None,
                    });
                }
                Ok(reply) => match self.provider {
                    ProviderId::OpenAi => super::openai::decode_parts(
                        reply.status,
                        |name| reply.header(name),
                        &reply.body,
                    ),
                    ProviderId::Gemini => super::gemini::decode_parts(
                        reply.status,
                        |name| reply.header(name),
                        &reply.body,
                    ),
                }
                .err()
                .unwrap_or(ApiError::Transport {
                    detail: format!("HTTP {} without an error", reply.status),
                }),
                Err(e) => e,
            };
            if tries >= max_tries || result.verdict() != Verdict::Retry {
                return Err(result);
            }
            let wait = result
                .retry_after()
                .unwrap_or(Duration::from_millis(250 << tries))
                .min(Duration::from_secs(60));
            tracing::info!(%method, path, error = %result, wait_ms = wait.as_millis() as u64, "calling again");
            tokio::time::sleep(wait).await;
        }
    }

    /// Uploads the file at `path` under `name` for `purpose` (`batch`, `vision`), streamed
    /// from disk.
    pub async fn upload(
        &self,
        path: &Path,
        name: &str,
        purpose: &str,
        mime: &str,
    ) -> Result<FileObject, ApiError> {
        let len = std::fs::metadata(path)
            .map_err(|e| ApiError::Transport {
                detail: format!("could not read {}: {e}", path.display()),
            })?
            .len();
        let read_error = |e: std::io::Error| ApiError::Transport {
            detail: format!("could not read {}: {e}", path.display()),
        };
        if self.provider == ProviderId::Gemini {
            return self.upload_resumable(path, len, name, mime).await;
        }
        // Opened anew for each try: a retry sends the whole file again.
        let form = || {
            let file = std::fs::File::open(path).map_err(read_error)?;
            file_form(
                reqwest::Body::from(tokio::fs::File::from_std(file)),
                len,
                name,
                purpose,
                mime,
            )
        };
        self.call(Method::POST, "files", form).await
    }

    /// Gemini's resumable upload, in one go: a session is opened (`X-Goog-Upload-Command:
    /// start`, the length and type in headers), then the file is sent to the URL the answer
    /// names, and finalized. A session whose upload fails is opened anew on the next try.
    async fn upload_resumable(
        &self,
        path: &Path,
        len: u64,
        name: &str,
        mime: &str,
    ) -> Result<FileObject, ApiError> {
        use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
        let header = |pairs: &[(&'static str, String)]| {
            let mut headers = HeaderMap::new();
            for (k, v) in pairs {
                if let Ok(value) = HeaderValue::from_str(v) {
                    headers.insert(HeaderName::from_static(k), value);
                }
            }
            headers
        };
        let mut tries = 0;
        // A session on another host is no blip: asked again, it would be there again.
        let foreign = std::sync::atomic::AtomicBool::new(false);
        loop {
            tries += 1;
            let start = CallBody::JsonWith {
                headers: header(&[
                    ("x-goog-upload-protocol", "resumable".to_owned()),
                    ("x-goog-upload-command", "start".to_owned()),
                    ("x-goog-upload-header-content-length", len.to_string()),
                    ("x-goog-upload-header-content-type", mime.to_owned()),
                ]),
                json: serde_json::json!({ "file": { "display_name": name } }),
            };
            let result = async {
                let reply = self
                    .transport
                    .call(Method::POST, self.url("upload/v1beta/files"), start)
                    .await?;
                let session = match reply.header("x-goog-upload-url") {
                    Some(url) if (200..300).contains(&reply.status) => {
                        let url = Url::parse(url).map_err(|e| ApiError::BadAnswer {
                            reason: format!("the upload session's URL: {e}"),
                            request_id: None,
                            usage: None,
                        })?;
                        // The key goes with the upload: only to the API's own host.
                        if url.origin() != self.base.origin() {
                            foreign.store(true, std::sync::atomic::Ordering::SeqCst);
                            return Err(ApiError::BadAnswer {
                                reason: format!(
                                    "the upload session is on another host ({}), which the key \
                                     is never sent to",
                                    url.host_str().unwrap_or("?")
                                ),
                                request_id: None,
                                usage: None,
                            });
                        }
                        url
                    }
                    _ => {
                        return Err(super::gemini::decode_parts(
                            reply.status,
                            |n| reply.header(n),
                            &reply.body,
                        )
                        .err()
                        .unwrap_or(ApiError::BadAnswer {
                            reason: "the upload session has no URL".to_owned(),
                            request_id: None,
                            usage: None,
                        }));
                    }
                };
                let file = std::fs::File::open(path).map_err(|e| ApiError::Transport {
                    detail: format!("could not read {}: {e}", path.display()),
                })?;
                let send = CallBody::Raw {
                    headers: header(&[
                        ("x-goog-upload-command", "upload, finalize".to_owned()),
                        ("x-goog-upload-offset", "0".to_owned()),
                        ("content-length", len.to_string()),
                    ]),
                    body: reqwest::Body::from(tokio::fs::File::from_std(file)),
                };
                let reply = self.transport.call(Method::POST, session, send).await?;
                if !(200..300).contains(&reply.status) {
                    return Err(super::gemini::decode_parts(
                        reply.status,
                        |n| reply.header(n),
                        &reply.body,
                    )
                    .err()
                    .unwrap_or(ApiError::Transport {
                        detail: format!("HTTP {} without an error", reply.status),
                    }));
                }
                let answer: Value =
                    serde_json::from_slice(&reply.body).map_err(|e| ApiError::BadAnswer {
                        reason: format!("the uploaded file: {e}"),
                        request_id: None,
                        usage: None,
                    })?;
                let file = answer.get("file").unwrap_or(&answer);
                let id = file.get("name").and_then(Value::as_str).ok_or_else(|| {
                    ApiError::BadAnswer {
                        reason: "the uploaded file has no name".to_owned(),
                        request_id: None,
                        usage: None,
                    }
                })?;
                Ok(FileObject {
                    id: id.to_owned(),
                    bytes: Some(len),
                    purpose: None,
                })
            }
            .await;
            match result {
                Ok(file) => return Ok(file),
                Err(e)
                    if tries < CALL_TRIES
                        && e.verdict() == Verdict::Retry
                        && !foreign.load(std::sync::atomic::Ordering::SeqCst) =>
                {
                    let wait = e
                        .retry_after()
                        .unwrap_or(Duration::from_millis(250 << tries))
                        .min(Duration::from_secs(60));
                    tracing::info!(error = %e, wait_ms = wait.as_millis() as u64, "uploading again");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Uploads `bytes` under `name` for `purpose`.
    pub async fn upload_bytes(
        &self,
        bytes: bytes::Bytes,
        name: &str,
        purpose: &str,
        mime: &str,
    ) -> Result<FileObject, ApiError> {
        let len = bytes.len() as u64;
        let form = || file_form(reqwest::Body::from(bytes.clone()), len, name, purpose, mime);
        self.call(Method::POST, "files", form).await
    }

    /// A file, or `None` if the service no longer has it.
    pub async fn file(&self, id: &str) -> Result<Option<FileObject>, ApiError> {
        match self
            .call(Method::GET, &format!("files/{id}"), || Ok(CallBody::None))
            .await
        {
            Ok(file) => Ok(Some(file)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a batch of the requests in the file `input_file_id`, all to `endpoint`,
    /// named by `submission` in its metadata so that it can be found again. Sent once: an
    /// answer lost on its way may hide a batch that exists, so the caller looks for it (see
    /// [`BatchApi::find`]) before it asks again.
    pub async fn create(
        &self,
        input_file_id: &str,
        endpoint: &str,
        submission: &str,
    ) -> Result<BatchObject, ApiError> {
        if self.provider == ProviderId::Gemini {
            let body = serde_json::json!({
                "batch": {
                    "display_name": submission,
                    "input_config": { "file_name": input_file_id },
                }
            });
            let op: Value = self
                .call_tries(
                    Method::POST,
                    &format!("v1beta/{endpoint}"),
                    || Ok(CallBody::Json(body.clone())),
                    1,
                )
                .await?;
            return BatchApi::operation(op, "creating the batch");
        }
        let body = serde_json::json!({
            "input_file_id": input_file_id,
            "endpoint": endpoint,
            "completion_window": COMPLETION_WINDOW,
            "metadata": { SUBMISSION_KEY: submission },
        });
        self.call_tries(
            Method::POST,
            "batches",
            || Ok(CallBody::Json(body.clone())),
            1,
        )
        .await
    }

    pub async fn get(&self, id: &str) -> Result<BatchObject, ApiError> {
        if self.provider == ProviderId::Gemini {
            let op: Value = self
                .call(Method::GET, &format!("v1beta/{id}"), || Ok(CallBody::None))
                .await?;
            return BatchApi::operation(op, id);
        }
        self.call(Method::GET, &format!("batches/{id}"), || Ok(CallBody::None))
            .await
    }

    pub async fn cancel(&self, id: &str) -> Result<BatchObject, ApiError> {
        if self.provider == ProviderId::Gemini {
            let _: Value = self
                .call(Method::POST, &format!("v1beta/{id}:cancel"), || {
                    Ok(CallBody::Json(Value::Object(Default::default())))
                })
                .await?;
            return self.get(id).await;
        }
        self.call(Method::POST, &format!("batches/{id}/cancel"), || {
            Ok(CallBody::Json(Value::Object(Default::default())))
        })
        .await
    }

    /// The batch created for `submission`, looked for among the newest `pages` pages of the
    /// account's batches.
    pub async fn find(
        &self,
        submission: &str,
        pages: usize,
    ) -> Result<Option<BatchObject>, ApiError> {
        if self.provider == ProviderId::Gemini {
            return self.find_operation(submission, pages).await;
        }
        let mut after: Option<String> = None;
        for _ in 0..pages {
            let path = match &after {
                Some(id) => format!("batches?limit=100&after={id}"),
                None => "batches?limit=100".to_owned(),
            };
            let page: BatchList = self.call(Method::GET, &path, || Ok(CallBody::None)).await?;
            if let Some(found) = page
                .data
                .iter()
                .find(|b| b.submission() == Some(submission))
            {
                return Ok(Some(found.clone()));
            }
            match (
                page.has_more,
                page.last_id
                    .or_else(|| page.data.last().map(|b| b.id.clone())),
            ) {
                (true, Some(last)) => after = Some(last),
                _ => break,
            }
        }
        Ok(None)
    }

    /// Gemini's batch for `submission`, by its display name, among the newest `pages` pages.
    async fn find_operation(
        &self,
        submission: &str,
        pages: usize,
    ) -> Result<Option<BatchObject>, ApiError> {
        let mut token: Option<String> = None;
        for _ in 0..pages {
            let path = match &token {
                Some(t) => format!("v1beta/batches?pageSize=100&pageToken={t}"),
                None => "v1beta/batches?pageSize=100".to_owned(),
            };
            let page: OperationList = self.call(Method::GET, &path, || Ok(CallBody::None)).await?;
            if let Some(found) = page
                .operations
                .iter()
                .filter_map(super::gemini::batch::read_operation)
                .find(|b| b.submission() == Some(submission))
            {
                return Ok(Some(found));
            }
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        Ok(None)
    }

    /// Streams a file's content to `path`, resuming a broken download (see
    /// [`Transport::download_to`]).
    pub async fn download(&self, file_id: &str, path: &Path) -> Result<u64, ApiError> {
        let path_of = match self.provider {
            ProviderId::OpenAi => format!("files/{file_id}/content"),
            ProviderId::Gemini => format!("download/v1beta/{file_id}:download?alt=media"),
        };
        self.transport.download_to(&self.url(&path_of), path).await
    }
}
