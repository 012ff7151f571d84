//! The calls of OpenAI's Files and Batches APIs, over the run's transport: upload a file,
//! create, read, list and cancel a batch, and stream a file's content to disk.
//!
//! Each call is retried as an image request is (a 429, a 5xx, a dropped connection), a few
//! times, after the wait the server asks for; other errors come back with OpenAI's verdict.

use std::path::Path;
use std::time::Duration;

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use super::http::{CallBody, Transport};
use super::openai::batch::{BatchList, BatchObject, COMPLETION_WINDOW, FileObject, SUBMISSION_KEY};
use super::openai::decode_parts;
use super::{ApiError, Verdict};

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

/// OpenAI's Files and Batches APIs at `base`.
#[derive(Debug, Clone)]
pub struct BatchApi {
    transport: Transport,
    base: Url,
}

impl BatchApi {
    pub fn new(transport: Transport, base: Url) -> BatchApi {
        BatchApi { transport, base }
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
                Ok(reply) => decode_parts(reply.status, |name| reply.header(name), &reply.body)
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
        self.call(Method::GET, &format!("batches/{id}"), || Ok(CallBody::None))
            .await
    }

    pub async fn cancel(&self, id: &str) -> Result<BatchObject, ApiError> {
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

    /// Streams a file's content to `path`, resuming a broken download (see
    /// [`Transport::download_to`]).
    pub async fn download(&self, file_id: &str, path: &Path) -> Result<u64, ApiError> {
        self.transport
            .download_to(&self.url(&format!("files/{file_id}/content")), path)
            .await
    }
}
