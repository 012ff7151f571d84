//! Making images through OpenAI's Batch API: submit, wait, collect.
//!
//! A submission is recorded in the destination's ledger (`store::batches`) before anything
//! is uploaded, its input file's id once uploaded, and its batch's id the moment the service
//! created it: a crash at any point leads to the same batch, never a second one. Waiting
//! polls with a growing interval and shows the batch's counts. Collecting streams the
//! output and error files to disk and reads them line by line, so memory does not grow with
//! the batch; each line is decoded by the live decoder and its image kept by the live sink.
//! A batch is forgotten once every request it held is in the manifest, so collecting twice
//! changes nothing.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::catalog::{BATCH_PRICE, Model, ProviderId};
use crate::format::ImageFormat;
use crate::outcome::{Failure, FailureKind, Made, Summary};
use crate::plan::{Job, Plan};
use crate::progress::{Event, Reporter};
use crate::provider::batches::BatchApi;
use crate::provider::gemini::batch as gemini_wire;
use crate::provider::openai::Operation;
use crate::provider::openai::batch::{
    self as wire, BatchObject, ImageSource, LineResult, SPLIT_BYTES, SPLIT_REQUESTS,
};
use crate::provider::{ApiError, Client, Clients, Delivery, Verdict};
use crate::spec::Reference;
use crate::store::batches::{self as ledger, Entry, Ledger, Request, Requests};
use crate::store::manifest::{self, Record, Status};
use crate::store::sink::{Received, Sink};

use super::live::Stop;

// The split keeps a margin under the service's limits (checked when genimg is built).
const _: () = assert!(SPLIT_REQUESTS < wire::MAX_REQUESTS);
const _: () = assert!(SPLIT_BYTES < 200_000_000 && SPLIT_BYTES < wire::MAX_INPUT_BYTES);

/// The longest interval between two polls of a batch.
const MAX_POLL: Duration = Duration::from_secs(300);

/// The waits between polls of pending batches: `poll` first, then each 1.5 times the one
/// before, up to [`MAX_POLL`] (or `poll` itself, if it is longer): a batch that ends soon is
/// seen soon, one that takes hours is not asked about every few seconds.
fn poll_waits(poll: Duration) -> impl Iterator<Item = Duration> {
    let cap = MAX_POLL.max(poll);
    std::iter::successors(Some(poll.min(cap)), move |wait| {
        Some(wait.mul_f64(1.5).min(cap))
    })
}

/// Tries at creating one batch, each after a look for it.
const CREATE_TRIES: u32 = 5;

/// The purpose reference images are uploaded for, to be named by `file_id` in edits.
const REFERENCE_PURPOSE: &str = "vision";

/// An error of the Batch API that ends the command: the service refused a call that no
/// retry can fix (a bad key, a file it would not take), or the destination would not
/// take the ledger.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BatchError(pub String);

impl From<std::io::Error> for BatchError {
    fn from(e: std::io::Error) -> BatchError {
        BatchError(e.to_string())
    }
}

fn service_error(what: &str, e: &ApiError) -> BatchError {
    let advice = match e.verdict() {
        Verdict::Fatal(fatal) => format!("; {}", fatal.advice()),
        _ => String::new(),
    };
    BatchError(format!("{what}: {e}{advice}"))
}

/// What one batch of a run will hold: requests to one endpoint, for one model of one
/// provider.
#[derive(Debug)]
pub struct Chunk {
    pub provider: ProviderId,
    pub operation: Operation,
    pub model: String,
    /// Indices into the plan's jobs.
    pub jobs: Vec<usize>,
    /// The input file's size, in bytes.
    pub bytes: u64,
    /// At batch prices; `None` if some image has no price.
    pub estimate: Option<f64>,
}

impl Chunk {
    /// Where its batch is created: OpenAI's endpoint (`/v1/images/edits`), or Gemini's
    /// `models/{model}:batchGenerateContent`.
    pub fn endpoint(&self) -> String {
        match self.provider {
            ProviderId::OpenAi => wire::endpoint(self.operation).to_owned(),
            ProviderId::Gemini => gemini_wire::endpoint(&self.model),
        }
    }
}

/// Where a reference image goes in a batch line: an upload, or inline.
#[derive(Debug, Clone)]
pub enum RefPlan {
    /// Uploaded (or to be uploaded) through the Files API; the id is known once it is.
    Upload(Option<String>),
    /// As a `data:` URL.
    Inline,
}

/// The request lines of `jobs`, split into batches: one endpoint and one model each, at
/// most [`SPLIT_REQUESTS`] lines and [`SPLIT_BYTES`] bytes. `source` says how each reference
/// travels (by the sha256 of its bytes).
pub fn split(
    plan: &Plan,
    jobs: &[usize],
    source: &dyn Fn(&Reference) -> ImageSource,
) -> Result<Vec<Chunk>, BatchError> {
    split_at(plan, jobs, source, SPLIT_REQUESTS, SPLIT_BYTES)
}

/// As [`split`], at `max_requests` and `max_bytes`.
fn split_at(
    plan: &Plan,
    jobs: &[usize],
    source: &dyn Fn(&Reference) -> ImageSource,
    max_requests: usize,
    max_bytes: u64,
) -> Result<Vec<Chunk>, BatchError> {
    let mut groups: Vec<Chunk> = Vec::new();
    for &i in jobs {
        let job = &plan.jobs[i];
        let spec = &job.prompt.spec;
        // OpenAI sends edits to an endpoint of their own; Gemini's references go inline in
        // the same `generateContent` request, so one model's lines share one batch.
        let operation = if spec.references.is_empty() || spec.provider == ProviderId::Gemini {
            Operation::Generate
        } else {
            Operation::Edit
        };
        let len = line_of(job, operation, source).len() as u64;
        if len > max_bytes {
            return Err(BatchError(format!(
                "{}: one request of the batch would be {len} bytes, more than a batch may \
                 hold ({max_bytes}); make it live, without --batch",
                job.file_name
            )));
        }
        let model = spec.model.name().to_owned();
        let provider = spec.provider;
        let estimate = job.prompt.estimate.map(|usd| usd * BATCH_PRICE);
        let open = groups.iter_mut().rev().find(|c| {
            c.provider == provider
                && c.operation == operation
                && c.model == model
                && c.jobs.len() < max_requests
                && c.bytes + len <= max_bytes
        });
        match open {
            Some(chunk) => {
                chunk.jobs.push(i);
                chunk.bytes += len;
                chunk.estimate = chunk.estimate.zip(estimate).map(|(a, b)| a + b);
            }
            None => groups.push(Chunk {
                provider,
                operation,
                model,
                jobs: vec![i],
                bytes: len,
                estimate,
            }),
        }
    }
    Ok(groups)
}

/// The input line of one job, in its provider's form, with `source` saying how each
/// reference and the mask travel: Gemini's carries its references inline, whatever `source`
/// says.
fn line_of(job: &Job, operation: Operation, source: &dyn Fn(&Reference) -> ImageSource) -> String {
    let spec = &job.prompt.spec;
    match spec.provider {
        ProviderId::OpenAi => {
            let images: Vec<ImageSource> = spec.references.iter().map(source).collect();
            let mask = spec.mask.as_ref().map(source);
            wire::request_line(&job.file_name, operation, spec, &images, mask.as_ref())
        }
        ProviderId::Gemini => gemini_wire::request_line(&job.file_name, &job.prompt.spec),
    }
}

/// A stand-in for an uploaded file's id, for the sizes of a dry run.
pub fn placeholder(_: &Reference) -> ImageSource {
    ImageSource::FileId("file-XXXXXXXXXXXXXXXXXXXXXXXX".to_owned())
}

/// The images of the pending batches of a destination, by file name, with their batch.
pub fn pending(dir: &std::path::Path, ledger: &Ledger) -> Vec<(String, String)> {
    let mut names = Vec::new();
    for entry in &ledger.batches {
        if let Ok(requests) = Requests::open(dir, &entry.submission) {
            let batch = entry
                .batch_id
                .clone()
                .unwrap_or_else(|| entry.submission.clone());
            names.extend(requests.ids().iter().map(|id| (id.clone(), batch.clone())));
        }
    }
    names
}

/// The images of the pending batches of a destination, by file name, with the request hash
/// they were asked with.
pub fn pending_hashes(dir: &std::path::Path, ledger: &Ledger) -> Vec<(String, String)> {
    let mut names = Vec::new();
    for entry in &ledger.batches {
        let Ok(mut requests) = Requests::open(dir, &entry.submission) else {
            continue;
        };
        for id in requests.ids().to_vec() {
            if let Ok(Some(request)) = requests.get(&id) {
                names.push((id, request.record.request_hash));
            }
        }
    }
    names
}

/// The images the manifest says the service refused, as last recorded, by file name with
/// the request hash: a `--batch` run does not ask for them again unless `--overwrite`.
pub fn refused(
    dir: &std::path::Path,
) -> std::io::Result<std::collections::HashMap<String, String>> {
    let mut last = std::collections::HashMap::new();
    manifest::scan_for_batches(dir, |r| {
        let name = r.planned().to_owned();
        match (r.status, r.request_hash) {
            (Some(Status::Refused), Some(hash)) => {
                last.insert(name, hash);
            }
            _ => {
                last.remove(&name);
            }
        }
    })?;
    Ok(last)
}

/// The Batch API for one destination.
#[derive(Debug)]
pub struct Batcher {
    /// The batch API of each provider the run may use, with its client.
    pub apis: Vec<BatchApi>,
    pub clients: Clients,
    pub sink: Arc<Sink>,
    pub reporter: Arc<dyn Reporter>,
    /// The first interval between polls.
    pub poll: Duration,
}

impl Batcher {
    /// The batch API of the provider that runs `entry`'s batch.
    fn api(&self, entry: &Entry) -> Result<&BatchApi, BatchError> {
        self.api_of(entry.provider())
    }

    fn api_of(&self, provider: ProviderId) -> Result<&BatchApi, BatchError> {
        self.apis
            .iter()
            .find(|a| a.provider() == provider)
            .ok_or_else(|| {
                BatchError(format!(
                    "a batch of {} is recorded, and there is no {} key: {}",
                    provider.company(),
                    provider.company(),
                    match provider {
                        ProviderId::OpenAi => "set OPENAI_API_KEY or pass --api-key",
                        ProviderId::Gemini => "set GEMINI_API_KEY or pass --gemini-api-key",
                    }
                ))
            })
    }

    fn dir(&self) -> PathBuf {
        self.sink.destination().dir().to_owned()
    }

    fn save(&self, ledger: &mut Ledger) -> Result<(), BatchError> {
        ledger
            .write(self.sink.destination())
            .map_err(|e| BatchError(format!("could not write {}: {e}", ledger::FILE_NAME)))
    }

    fn note(&self, text: &str) {
        self.reporter.event(Event::Note { text });
    }

    /// Gives every submission of the ledger its batch: one whose creation a crash
    /// interrupted is found by its metadata, or created now from its uploaded input; one
    /// whose input never reached the service is uploaded again, or dropped when its input
    /// is gone (its images are then simply not pending).
    /// With `create` false (a collect, a cancel), a submission whose batch cannot be found
    /// is dropped instead: those commands never buy anything.
    pub async fn reconcile(&self, ledger: &mut Ledger, create: bool) -> Result<(), BatchError> {
        let open: Vec<String> = ledger
            .batches
            .iter()
            .filter(|e| e.batch_id.is_none())
            .map(|e| e.submission.clone())
            .collect();
        for submission in open {
            let entry = ledger.entry_mut(&submission).expect("listed").clone();
            if entry.input_file_id.is_some()
                && let Some(batch) = self
                    .api(&entry)?
                    .find(&submission, 10)
                    .await
                    .map_err(|e| service_error("listing the batches", &e))?
            {
                self.adopt(ledger, &submission, &batch)?;
                continue;
            }
            let input = input_path(&self.dir(), &submission);
            if !create || (entry.input_file_id.is_none() && !input.exists()) {
                ledger
                    .forget(self.sink.destination(), &submission)
                    .map_err(|e| {
                        BatchError(format!("could not write {}: {e}", ledger::FILE_NAME))
                    })?;
                continue;
            }
            self.launch(ledger, &submission).await?;
        }
        Ok(())
    }

    /// Uploads a recorded submission's input (unless it was) and creates its batch. A
    /// refusal no retry can change (a 4xx) drops the submission: no batch exists, and its
    /// images are simply to make again.
    async fn launch(&self, ledger: &mut Ledger, submission: &str) -> Result<(), BatchError> {
        let definite = |e: &ApiError| {
            matches!(e.status(), Some(400..=499)) && !matches!(e.status(), Some(408 | 409 | 429))
        };
        let entry = ledger.entry_mut(submission).expect("recorded").clone();
        let input = input_path(&self.dir(), submission);
        let api = self.api(&entry)?;
        let file_id = match entry.input_file_id {
            Some(id) => id,
            None => {
                let uploaded = api
                    .upload(
                        &input,
                        &format!("{submission}.jsonl"),
                        "batch",
                        "application/jsonl",
                    )
                    .await;
                let file = match uploaded {
                    Ok(file) => file,
                    Err(e) => {
                        if definite(&e) {
                            let _ = ledger.forget(self.sink.destination(), submission);
                        }
                        return Err(service_error("uploading the batch's requests", &e));
                    }
                };
                if let Some(entry) = ledger.entry_mut(submission) {
                    entry.input_file_id = Some(file.id.clone());
                }
                self.save(ledger)?;
                file.id
            }
        };
        let batch = match self
            .create(api, submission, &file_id, &entry.endpoint)
            .await
        {
            Ok(batch) => batch,
            Err(e) => {
                if definite(&e) {
                    let _ = ledger.forget(self.sink.destination(), submission);
                }
                return Err(service_error("creating the batch", &e));
            }
        };
        self.adopt(ledger, submission, &batch)?;
        let _ = std::fs::remove_file(&input);
        Ok(())
    }

    /// Creates the batch of `submission`, once: before any second try (an error that may
    /// have come after the batch was made, or an answer lost on its way) it looks for the
    /// batch by its metadata.
    async fn create(
        &self,
        api: &BatchApi,
        submission: &str,
        file_id: &str,
        endpoint: &str,
    ) -> Result<BatchObject, ApiError> {
        let mut tries = 0;
        let mut ambiguous = false;
        loop {
            tries += 1;
            match api.create(file_id, endpoint, submission).await {
                Ok(batch) => return Ok(batch),
                Err(e) if e.verdict() == Verdict::Retry && tries < CREATE_TRIES => {
                    tracing::info!(error = %e, "creating the batch failed; looking for it before asking again");
                    ambiguous = true;
                    // The service's list may lag behind a batch it just made.
                    let wait = e
                        .retry_after()
                        .unwrap_or(Duration::from_millis(250 << tries))
                        .min(Duration::from_secs(60));
                    tokio::time::sleep(wait).await;
                    if let Some(batch) = api.find(submission, 2).await? {
                        return Ok(batch);
                    }
                }
                Err(e) => {
                    // An earlier try may have made it after all.
                    if ambiguous && let Ok(Some(batch)) = api.find(submission, 2).await {
                        return Ok(batch);
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Records what the service says of a submission's batch, at once.
    fn adopt(
        &self,
        ledger: &mut Ledger,
        submission: &str,
        batch: &BatchObject,
    ) -> Result<(), BatchError> {
        if let Some(entry) = ledger.entry_mut(submission) {
            entry.batch_id = Some(batch.id.clone());
            update(entry, batch);
            self.save(ledger)?;
        }
        Ok(())
    }

    /// Asks the service how each batch of the ledger is doing; returns the batches, by
    /// submission.
    pub async fn refresh(
        &self,
        ledger: &mut Ledger,
    ) -> Result<Vec<(String, BatchObject)>, BatchError> {
        let mut seen = Vec::new();
        for entry in ledger.batches.iter_mut() {
            let Some(id) = entry.batch_id.clone() else {
                continue;
            };
            let batch = match self.api(entry)?.get(&id).await {
                Ok(batch) => batch,
                // A service that cannot be asked for now is asked at the next poll: the
                // batch goes on meanwhile.
                Err(e) if e.verdict() == Verdict::Retry => {
                    self.reporter.event(Event::Warning {
                        text: &format!("reading batch {id}: {e}; asking again at the next poll"),
                    });
                    continue;
                }
                // One batch the service will not show (a 404 after a change of key or
                // project) does not hold up the others: it stays recorded, and said.
                Err(e) if !matches!(e.verdict(), Verdict::Fatal(_)) => {
                    self.reporter.event(Event::Warning {
                        text: &format!(
                            "batch {id} cannot be read: {e}; it stays pending (is this the key \
                             that created it?)"
                        ),
                    });
                    continue;
                }
                Err(e) => return Err(service_error(&format!("reading batch {id}"), &e)),
            };
            update(entry, &batch);
            seen.push((entry.submission.clone(), batch));
        }
        self.save(ledger)?;
        Ok(seen)
    }

    /// Collects every batch of `seen` that is over, into `summary`, and forgets it.
    pub async fn collect_over(
        &self,
        ledger: &mut Ledger,
        seen: &[(String, BatchObject)],
        summary: &mut Summary,
    ) -> Result<(), BatchError> {
        for (submission, batch) in seen {
            if summary.fatal.is_some() {
                break;
            }
            if batch.is_over() {
                self.collect(ledger, submission, batch, summary).await?;
            }
        }
        Ok(())
    }

    /// Submits the jobs of `chunks`: for each, its requests and input written beside the
    /// ledger and recorded in it, then uploaded, then the batch created and recorded.
    pub async fn submit(
        &self,
        ledger: &mut Ledger,
        plan: &Plan,
        chunks: &[Chunk],
        sources: &dyn Fn(&Reference) -> ImageSource,
    ) -> Result<Vec<String>, BatchError> {
        let mut submitted = Vec::new();
        let stamp = jiff::Timestamp::now().as_millisecond();
        for (n, chunk) in chunks.iter().enumerate() {
            let submission = format!("s{stamp}-{}-{}", std::process::id(), n + 1);
            let mut requests =
                ledger::RequestsWriter::create(self.sink.destination(), &submission)?;
            // The input goes to disk a line at a time: it may be 190 MB.
            let destination = self.sink.destination();
            let folder = destination.dir().join(ledger::DIR);
            std::fs::create_dir_all(&folder)?;
            let mut input = std::io::BufWriter::new(crate::store::atomic::temp_file(&folder)?);
            for &i in &chunk.jobs {
                let job = &plan.jobs[i];
                let spec = &job.prompt.spec;
                input.write_all(line_of(job, chunk.operation, sources).as_bytes())?;
                let mut record = Record::of_job(job);
                record.mode = Some("batch".to_owned());
                requests.push(&Request {
                    custom_id: job.file_name.clone(),
                    at: job.prompt.at.clone(),
                    asked: spec.asked_format().extension().to_owned(),
                    estimate: job.prompt.estimate.map(|usd| usd * BATCH_PRICE),
                    params: job.prompt.params_given.clone(),
                    record,
                })?;
            }
            requests.finish()?;
            let input = input.into_inner().map_err(|e| e.into_error())?;
            input.as_file().sync_all()?;
            input
                .persist(input_path(destination.dir(), &submission))
                .map_err(|e| e.error)?;
            crate::store::atomic::sync_dir(&folder);
            ledger.batches.push(Entry {
                submission: submission.clone(),
                provider: Some(chunk.provider.name().to_owned()),
                endpoint: chunk.endpoint(),
                requests: chunk.jobs.len(),
                input_bytes: chunk.bytes,
                estimate_usd: chunk.estimate,
                submitted: manifest::now(),
                status: "submitting".to_owned(),
                ..Entry::default()
            });
            self.save(ledger)?;
            self.launch(ledger, &submission).await?;
            let entry = ledger.entry_mut(&submission).expect("recorded");
            let id = entry.batch_id.clone().unwrap_or_default();
            self.note(&format!(
                "submitted batch {id}: {} request(s) to {}, {}",
                chunk.jobs.len(),
                entry.endpoint,
                match chunk.estimate {
                    Some(usd) => format!("about {} at batch prices", crate::units::usd(usd)),
                    None => "price unknown".to_owned(),
                }
            ));
            submitted.push(id);
        }
        Ok(submitted)
    }

    /// The reference images and masks of `jobs`, each as it travels in the lines: uploaded
    /// once through the Files API (an upload the ledger knows is reused while the service
    /// still has it), or, where the service takes no upload, inline as a `data:` URL.
    pub async fn references(
        &self,
        ledger: &mut Ledger,
        plan: &Plan,
        jobs: &[usize],
    ) -> Result<std::collections::HashMap<String, ImageSource>, BatchError> {
        let mut sources = std::collections::HashMap::new();
        let mut inline = false;
        // Gemini's lines carry their references inline: only OpenAI's are uploaded.
        let jobs: Vec<usize> = jobs
            .iter()
            .copied()
            .filter(|&i| plan.jobs[i].prompt.spec.provider == ProviderId::OpenAi)
            .filter(|&i| !plan.jobs[i].prompt.spec.references.is_empty())
            .collect();
        if jobs.is_empty() {
            return Ok(sources);
        }
        let api = self.api_of(ProviderId::OpenAi)?;
        for &i in &jobs {
            for reference in plan.jobs[i].prompt.spec.input_images() {
                if sources.contains_key(&reference.sha256) {
                    continue;
                }
                let source = if inline {
                    None
                } else {
                    match self.upload_reference(api, ledger, reference).await {
                        Ok(id) => Some(ImageSource::FileId(id)),
                        // A service without the Files API, or that will not take images
                        // there: the references go inline.
                        Err(e) if matches!(e.status(), Some(400 | 404 | 405 | 415 | 501)) => {
                            tracing::info!(error = %e, "uploads are refused; references go inline");
                            inline = true;
                            None
                        }
                        Err(e) => {
                            return Err(service_error(
                                &format!("uploading {}", reference.path.display()),
                                &e,
                            ));
                        }
                    }
                };
                let source = match source {
                    Some(source) => source,
                    None => ImageSource::data_url(reference).ok_or_else(|| {
                        BatchError(format!(
                            "{}: {} bytes is too big to send inline (a data URL holds at most \
                             {} characters), and the service takes no upload",
                            reference.path.display(),
                            reference.bytes.len(),
                            wire::MAX_DATA_URL_CHARS
                        ))
                    })?,
                };
                sources.insert(reference.sha256.clone(), source);
            }
        }
        if inline {
            // Uploads already made stay valid, but one form for all keeps it simple.
            for (sha, source) in sources.iter_mut() {
                if let ImageSource::FileId(_) = source {
                    let reference = plan
                        .jobs
                        .iter()
                        .flat_map(|j| j.prompt.spec.input_images())
                        .find(|r| &r.sha256 == sha)
                        .expect("a reference of the plan");
                    if let Some(data) = ImageSource::data_url(reference) {
                        *source = data;
                    }
                }
            }
        }
        Ok(sources)
    }

    async fn upload_reference(
        &self,
        api: &BatchApi,
        ledger: &mut Ledger,
        reference: &Reference,
    ) -> Result<String, ApiError> {
        if let Some(id) = ledger.uploads.get(&reference.sha256).cloned() {
            if api.file(&id).await?.is_some() {
                return Ok(id);
            }
            ledger.uploads.remove(&reference.sha256);
        }
        let name = reference.path.file_name().map_or_else(
            || "reference".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        let file = api
            .upload_bytes(
                reference.bytes.clone(),
                &name,
                REFERENCE_PURPOSE,
                reference.format.mime(),
            )
            .await?;
        ledger
            .uploads
            .insert(reference.sha256.clone(), file.id.clone());
        // An upload the ledger forgets would be made again next time: record it now.
        let _ = ledger.write(self.sink.destination());
        Ok(file.id)
    }

    /// Polls the pending batches until every one is over, collecting each as it ends, with
    /// an interval that starts at `poll` and grows. A stop (Ctrl-C) ends the wait, not the
    /// batches: they go on at the service, and a later collect gets them.
    pub async fn wait(
        &self,
        ledger: &mut Ledger,
        summary: &mut Summary,
        stop: &Stop,
    ) -> Result<(), BatchError> {
        let mut waits = poll_waits(self.poll);
        while ledger.batches.iter().any(|e| e.batch_id.is_some()) {
            let seen = self.refresh(ledger).await?;
            for (_, batch) in &seen {
                self.progress(batch);
            }
            self.collect_over(ledger, &seen, summary).await?;
            if summary.fatal.is_some() || !ledger.batches.iter().any(|e| e.batch_id.is_some()) {
                break;
            }
            if stop.is_stopped() {
                summary.interrupted = true;
                summary.interrupted_by = stop.signal();
                break;
            }
            let wait = waits.next().unwrap_or(MAX_POLL);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.stopped() => {}
            }
        }
        Ok(())
    }

    fn progress(&self, batch: &BatchObject) {
        let counts = batch.request_counts.unwrap_or_default();
        let now = jiff::Timestamp::now().as_second();
        let since = batch
            .created_at
            .map(|t| Duration::from_secs((now - t).max(0) as u64));
        let left = batch
            .expires_at
            .map(|t| Duration::from_secs((t - now).max(0) as u64));
        self.reporter.event(Event::BatchProgress {
            id: &batch.id,
            status: &batch.status,
            done: counts.completed,
            failed: counts.failed,
            total: counts.total,
            since,
            left,
        });
    }

    /// Asks the service to cancel every pending batch, then waits for each to be over and
    /// collects what it finished.
    pub async fn cancel(
        &self,
        ledger: &mut Ledger,
        summary: &mut Summary,
        stop: &Stop,
    ) -> Result<(), BatchError> {
        let ids: Vec<(ProviderId, String)> = ledger
            .batches
            .iter()
            .filter(|e| !wire::is_over(&e.status))
            .filter_map(|e| Some((e.provider(), e.batch_id.clone()?)))
            .collect();
        for (provider, id) in &ids {
            match self.api_of(*provider)?.cancel(id).await {
                Ok(batch) => self.note(&format!("cancelling batch {id} ({})", batch.status)),
                // Over already: nothing to cancel, it is collected below.
                Err(e) if e.status() == Some(400) || e.status() == Some(409) => {
                    tracing::info!(error = %e, "batch {id} could not be cancelled")
                }
                Err(e) => return Err(service_error(&format!("cancelling batch {id}"), &e)),
            }
        }
        self.wait(ledger, summary, stop).await
    }

    /// Collects a batch that is over: every image it returned kept, every request it did
    /// not run recorded as failed, then the batch forgotten. A result file that cannot be
    /// downloaded leaves the batch recorded (said, and tried again by the next collect); an
    /// image the destination will not take stops the run (`summary.fatal`) with the batch
    /// still recorded, so that a collect once there is room keeps the rest.
    async fn collect(
        &self,
        ledger: &mut Ledger,
        submission: &str,
        batch: &BatchObject,
        summary: &mut Summary,
    ) -> Result<(), BatchError> {
        let dir = self.dir();
        std::fs::create_dir_all(dir.join(ledger::DIR))?;
        let provider = ledger
            .batches
            .iter()
            .find(|e| e.submission == submission)
            .map_or(ProviderId::OpenAi, Entry::provider);
        let api = self.api_of(provider)?;
        let mut downloads = Vec::new();
        for (file_id, kind) in [
            (&batch.output_file_id, "output"),
            (&batch.error_file_id, "errors"),
        ] {
            let Some(file_id) = file_id else { continue };
            let path = dir
                .join(ledger::DIR)
                .join(format!("{submission}.{kind}.jsonl"));
            if let Err(e) = api.download(file_id, &path).await {
                self.reporter.event(Event::Warning {
                    text: &format!(
                        "downloading the {kind} of batch {}: {e}; the batch stays recorded, \
                         and the next collect goes on from what arrived",
                        batch.id
                    ),
                });
                return Ok(());
            }
            downloads.push(path);
        }
        let keeper = Keeper {
            sink: self.sink.clone(),
            client: self
                .clients
                .get(provider)
                .cloned()
                .ok_or_else(|| BatchError(format!("no {} client", provider.company())))?,
            provider,
            reporter: self.reporter.clone(),
            dir: dir.clone(),
            submission: submission.to_owned(),
            batch: batch.clone(),
        };
        let handle = tokio::runtime::Handle::current();
        let kept = tokio::task::spawn_blocking(move || keeper.keep_all(&downloads, &handle))
            .await
            .map_err(|e| BatchError(format!("collecting stopped: {e}")))??;
        let (made_n, failed_n) = (kept.made.len(), kept.failed.len());
        summary.made.extend(kept.made);
        summary.failed.extend(kept.failed);
        if let Some(error) = kept.cannot_save {
            summary.fatal = Some(crate::outcome::FatalStop {
                fatal: crate::provider::Fatal::CannotSave,
                error: format!(
                    "{error}; batch {} stays recorded: `genimg batch collect` keeps the rest \
                     once the folder takes images again",
                    batch.id
                ),
            });
            return Ok(());
        }
        if let Some(kept_as) = kept.unreadable {
            self.reporter.event(Event::Warning {
                text: &format!(
                    "batch {}: some result lines could not be read; its output is kept as {}",
                    batch.id,
                    kept_as.display()
                ),
            });
        }
        self.note(&format!(
            "collected batch {} ({}): {made_n} made, {failed_n} not made",
            batch.id, batch.status
        ));
        ledger
            .forget(self.sink.destination(), submission)
            .map_err(|e| BatchError(format!("could not write {}: {e}", ledger::FILE_NAME)))?;
        Ok(())
    }
}

/// The ledger's picture of a batch, from what the service says.
pub fn update(entry: &mut Entry, batch: &BatchObject) {
    entry.status = batch.status.clone();
    entry.created_at = batch.created_at.or(entry.created_at);
    entry.expires_at = batch.expires_at.or(entry.expires_at);
    if batch.request_counts.is_some() {
        entry.counts = batch.request_counts;
    }
}

/// Why a request of a batch never ran, as shown and recorded: what the service said (which
/// may quote the key: it is scrubbed out), with its code, after `place`.
fn not_run_reason(client: &Client, place: &str, mut code: String, mut message: String) -> String {
    client.redact_text(&mut message);
    client.redact_text(&mut code);
    match code.as_str() {
        "" => format!("{place}{message}"),
        code => format!("{place}{message} ({code})"),
    }
}

/// Where a submission's input file waits until its batch is created.
fn input_path(dir: &std::path::Path, submission: &str) -> PathBuf {
    dir.join(ledger::DIR)
        .join(format!("{submission}.input.jsonl"))
}

/// Keeps what one batch returned, off the async workers.
struct Keeper {
    sink: Arc<Sink>,
    client: Client,
    provider: ProviderId,
    reporter: Arc<dyn Reporter>,
    dir: PathBuf,
    submission: String,
    batch: BatchObject,
}

/// What one collect of a batch kept.
struct KeptAll {
    made: Vec<Made>,
    failed: Vec<Failure>,
    /// Why the destination would not take an image: the collect stopped there.
    cannot_save: Option<String>,
    /// Where a result file with lines that could not be read was kept.
    unreadable: Option<PathBuf>,
}

impl Keeper {
    fn keep_all(
        &self,
        files: &[PathBuf],
        handle: &tokio::runtime::Handle,
    ) -> Result<KeptAll, BatchError> {
        let mut requests = Requests::open(&self.dir, &self.submission)
            .map_err(|e| BatchError(format!("the requests of batch {}: {e}", self.batch.id)))?;
        // What an earlier, interrupted collect of this batch already recorded; an image
        // the destination would not take is kept by this one.
        let mut done: HashSet<String> = HashSet::new();
        manifest::scan_for_batches(&self.dir, |r| {
            if r.batch_id.as_deref() == Some(self.batch.id.as_str()) && !r.not_saved() {
                done.insert(r.planned().to_owned());
            }
        })?;
        let mut made = Vec::new();
        let mut failed = Vec::new();
        let mut unreadable = None;
        let started = Instant::now();
        let total = requests.len();
        let mut line = Vec::new();
        for path in files {
            let mut reader = BufReader::new(std::fs::File::open(path)?);
            loop {
                line.clear();
                if reader.read_until(b'\n', &mut line)? == 0 {
                    break;
                }
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let decoded = match self.provider {
                    ProviderId::OpenAi => wire::decode_line(&line),
                    ProviderId::Gemini => gemini_wire::decode_line(&line),
                };
                let (custom_id, result) = match decoded {
                    Ok(decoded) => decoded,
                    // A line that names no image may still hold one that was paid for: the
                    // file is kept where no collect removes it.
                    Err(why) => {
                        tracing::warn!("{}: {why}", path.display());
                        unreadable.get_or_insert_with(|| path.clone());
                        continue;
                    }
                };
                if done.contains(&custom_id) {
                    continue;
                }
                let Some(request) = requests.get(&custom_id)? else {
                    tracing::warn!(
                        "batch {}: a result for {custom_id}, which it was not asked for",
                        self.batch.id
                    );
                    continue;
                };
                done.insert(custom_id);
                let outcome = self.keep(request, result, handle, started);
                self.tell(&outcome, made.len() + failed.len() + 1, total);
                match outcome {
                    Ok(m) => made.push(m),
                    Err(f) => {
                        let stop = matches!(f.kind, FailureKind::Fatal(_));
                        let reason = f.reason.clone();
                        failed.push(f);
                        if stop {
                            return Ok(KeptAll {
                                made,
                                failed,
                                cannot_save: Some(reason),
                                unreadable: None,
                            });
                        }
                    }
                }
            }
        }
        let unreadable = match unreadable {
            Some(path) => {
                let kept = self.dir.join(ledger::DIR).join(format!(
                    "{}.unread.{}",
                    self.batch.id,
                    path.file_name()
                        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
                ));
                std::fs::rename(&path, &kept)?;
                Some(kept)
            }
            None => None,
        };
        // Requests the batch returned nothing for: a batch that failed validation, or one
        // that ended otherwise without a line for them.
        let reasons: std::collections::HashMap<u64, String> = self
            .batch
            .errors
            .iter()
            .flat_map(|e| e.data.iter())
            .filter_map(|e| Some((e.line?, e.message.clone().unwrap_or_default())))
            .collect();
        let general = self
            .batch
            .errors
            .as_ref()
            .and_then(|e| e.data.first())
            .and_then(|e| {
                let message = e.message.clone()?;
                Some(match e.line {
                    Some(line) => format!("line {line} of its input: {message}"),
                    None => message,
                })
            });
        for custom_id in requests.ids().to_vec() {
            if done.contains(&custom_id) {
                continue;
            }
            let Some(request) = requests.get(&custom_id)? else {
                continue;
            };
            let line = requests.line_of(&custom_id).unwrap_or(0) as u64;
            let message = match (reasons.get(&line), &general) {
                (Some(reason), _) => format!("line {line} of the batch's input: {reason}"),
                (None, Some(reason)) => format!("the batch {}: {reason}", self.batch.status),
                (None, None) => format!(
                    "the batch ended ({}) without a result for it",
                    self.batch.status
                ),
            };
            let code = if self.batch.status == "failed" {
                "batch_failed"
            } else {
                "no_result"
            };
            let outcome = self.keep(
                request,
                LineResult::NotRun {
                    code: code.to_owned(),
                    message,
                },
                handle,
                started,
            );
            self.tell(&outcome, made.len() + failed.len() + 1, total);
            if let Err(f) = outcome {
                failed.push(f);
            }
        }
        Ok(KeptAll {
            made,
            failed,
            cannot_save: None,
            unreadable,
        })
    }

    fn tell(&self, outcome: &Result<Made, Failure>, done: usize, total: usize) {
        match outcome {
            Ok(made) => self.reporter.event(Event::Saved { made, done, total }),
            Err(failure) => self.reporter.event(Event::Failed {
                failure,
                done,
                total,
            }),
        }
    }

    /// Keeps one result: the image through the sink, or a failure in the manifest.
    // Both are the outcome of one image, read at once; neither is an error to propagate.
    #[allow(clippy::result_large_err)]
    fn keep(
        &self,
        request: Request,
        result: LineResult,
        handle: &tokio::runtime::Handle,
        started: Instant,
    ) -> Result<Made, Failure> {
        let Request {
            custom_id,
            at,
            asked,
            estimate,
            params,
            mut record,
        } = request;
        record.mode = Some("batch".to_owned());
        record.batch_id = Some(self.batch.id.clone());
        record.attempts = 1;
        let model = Model::of(self.provider, &record.model);
        let failure =
            |record: &mut Record, reason: String, kind: FailureKind, cost: Option<f64>| {
                record.status = match kind {
                    FailureKind::Refused => Status::Refused,
                    _ => Status::Failed,
                };
                record.error = Some(reason.clone());
                record.cost_usd = cost;
                record.finished = manifest::now();
                self.sink.record_failure(record);
                Failure {
                    file_name: custom_id.clone(),
                    prompt: record.prompt.clone(),
                    index: record.index,
                    reason,
                    kind,
                    attempts: 1,
                    cost,
                    moderation: record.moderation.clone(),
                }
            };
        let place = at.as_deref().map(|a| format!("{a}: ")).unwrap_or_default();
        let mut answer = match result {
            LineResult::NotRun { code, message } => {
                let reason = not_run_reason(&self.client, &place, code, message);
                return Err(failure(&mut record, reason, FailureKind::Error, None));
            }
            LineResult::Answered(Err(mut e)) => {
                self.client.redact_error(&mut e);
                record.request_id = e.request_id().map(str::to_owned);
                record.moderation = e.moderation().map(|m| manifest::Moderation {
                    stage: m.stage.clone(),
                    categories: m.categories.clone(),
                });
                let billed = match e.billed() {
                    crate::provider::Billed::No => None,
                    crate::provider::Billed::Usage(u) => model
                        .cost_from_usage(u)
                        .map(|c| c * BATCH_PRICE)
                        .or(estimate),
                    crate::provider::Billed::Unknown => estimate,
                };
                let (kind, reason) = if e.verdict() == Verdict::Refused {
                    (
                        FailureKind::Refused,
                        format!("{place}refused by the service: {e}; reword the prompt"),
                    )
                } else {
                    let note = e.param_note(&params).unwrap_or_default();
                    (FailureKind::Error, format!("{place}{e}{note}"))
                };
                return Err(failure(&mut record, reason, kind, billed));
            }
            LineResult::Answered(Ok(answer)) => answer,
        };
        self.client.redact(&mut answer);
        record.request_id = answer.request_id.clone();
        record.usage = answer.usage.clone();
        record.revised_prompt = answer.revised_prompt.clone();
        let cost = answer
            .usage
            .as_ref()
            .and_then(|u| model.cost_from_usage(u))
            .map(|c| c * BATCH_PRICE)
            .or(estimate);
        record.cost_usd = cost;
        let bytes = match answer.image {
            Delivery::Bytes(bytes) => Ok(bytes),
            Delivery::Url(link) => {
                handle.block_on(self.client.fetch_link(&link, &answer.request_id))
            }
        };
        let bytes = match bytes {
            Ok(bytes) if !bytes.is_empty() => bytes,
            Ok(_) => {
                return Err(failure(
                    &mut record,
                    format!("{place}the image is empty"),
                    FailureKind::Error,
                    cost,
                ));
            }
            Err(e) => {
                return Err(failure(
                    &mut record,
                    format!("{place}{e}"),
                    FailureKind::Error,
                    cost,
                ));
            }
        };
        let asked = crate::store::sink::Asked {
            format: ImageFormat::ALL
                .into_iter()
                .find(|f| f.extension() == asked)
                .unwrap_or(ImageFormat::Png),
            chosen: !model.info().own_format,
        };
        let prompt = record.prompt.clone();
        let index = record.index;
        match self
            .sink
            .keep(&custom_id, asked, &bytes, record.clone(), || {})
        {
            Ok(kept) => {
                if let Some(text) = super::live::mismatch(&custom_id, asked, &kept) {
                    self.reporter.event(Event::Warning { text: &text });
                }
                let made = Made {
                    file_name: kept.file,
                    planned: custom_id,
                    prompt,
                    index,
                    bytes: kept.bytes,
                    sha256: kept.sha256,
                    elapsed: started.elapsed(),
                    attempts: 1,
                    revised_prompt: answer.revised_prompt,
                    usage: answer.usage,
                    request_id: answer.request_id,
                    cost,
                    received: match kept.received {
                        Received::Asked(_) => None,
                        other => Some(other.name()),
                    },
                };
                Ok(made)
            }
            Err(not_kept) => {
                let failure = Failure {
                    file_name: custom_id,
                    prompt,
                    index,
                    reason: not_kept.reason(),
                    kind: FailureKind::Fatal(crate::provider::Fatal::CannotSave),
                    attempts: 1,
                    cost,
                    moderation: None,
                };
                Err(failure)
            }
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn polls_come_one_and_a_half_times_further_apart_up_to_five_minutes() {
        let secs = |poll: f64, n: usize| -> Vec<f64> {
            super::poll_waits(Duration::from_secs_f64(poll))
                .take(n)
                .map(|d| (d.as_secs_f64() * 100.0).round() / 100.0)
                .collect()
        };
        assert_eq!(
            secs(10.0, 12),
            [
                10.0, 15.0, 22.5, 33.75, 50.63, 75.94, 113.91, 170.86, 256.29, 300.0, 300.0, 300.0
            ]
        );
        assert_eq!(secs(0.05, 3), [0.05, 0.08, 0.11]);
        // A poll longer than the cap stays as asked.
        assert_eq!(secs(600.0, 3), [600.0, 600.0, 600.0]);
    }

    #[test]
    fn a_request_that_never_ran_is_said_without_the_key_the_service_quoted() {
        let client = Client::new(&crate::provider::ClientConfig {
            base_url: url::Url::parse("https://api.openai.com/v1").unwrap(),
            provider: crate::provider::Provider::OpenAi(crate::provider::Service::OpenAi),
            api_key: secrecy::SecretString::from("sk-quoted-secret".to_owned()),
            organization: None,
            project: None,
            timeout: Duration::from_secs(60),
        })
        .unwrap();
        let reason = super::not_run_reason(
            &client,
            "p.txt:3: ",
            "bad_key_sk-quoted-secret".to_owned(),
            "the key sk-quoted-secret may not run this batch".to_owned(),
        );
        assert!(!reason.contains("sk-quoted-secret"), "{reason}");
        assert!(reason.starts_with("p.txt:3: the key "), "{reason}");
    }

    use super::*;
    use crate::config::{Config, Env};

    fn plan(prompts: &str, count: u32) -> Plan {
        let count = count.to_string();
        let args = [
            "genimg",
            "--input",
            "-",
            "-o",
            "out",
            "-n",
            &count,
            "--dry-run",
        ];
        let cli = crate::cli::try_parse_from(args).unwrap();
        let config =
            Config::from_cli_with_stdin(cli, &Env::default(), &mut prompts.as_bytes()).unwrap();
        Plan::new(&config)
    }

    #[test]
    fn batches_hold_one_endpoint_and_one_model_each() {
        let plan = plan("# a\nx\n\n# b model=gpt-image-2.5-flare\ny\n\n# c\nz\n", 2);
        let all: Vec<usize> = (0..plan.jobs.len()).collect();
        let chunks = split(&plan, &all, &placeholder).unwrap();
        let shape: Vec<(&str, Vec<usize>)> = chunks
            .iter()
            .map(|c| (c.model.as_str(), c.jobs.clone()))
            .collect();
        assert_eq!(
            shape,
            [
                ("gpt-image-2", vec![0, 1, 4, 5]),
                ("gpt-image-2.5-flare", vec![2, 3])
            ]
        );
        assert!(chunks.iter().all(|c| c.operation == Operation::Generate));
        let bytes: u64 = all
            .iter()
            .map(|&i| line_of(&plan.jobs[i], Operation::Generate, &placeholder).len() as u64)
            .sum();
        assert_eq!(chunks.iter().map(|c| c.bytes).sum::<u64>(), bytes);
        // The batch estimate is half the live one.
        let live = plan.jobs[0].prompt.estimate.unwrap();
        assert!((chunks[0].estimate.unwrap() - 4.0 * live * BATCH_PRICE).abs() < 1e-9);
    }

    #[test]
    fn a_batch_is_split_by_lines_and_by_bytes() {
        let plan = plan("# a\nx\n", 10);
        let all: Vec<usize> = (0..10).collect();
        let by_lines = split_at(&plan, &all, &placeholder, 4, u64::MAX).unwrap();
        assert_eq!(
            by_lines.iter().map(|c| c.jobs.len()).collect::<Vec<_>>(),
            [4, 4, 2]
        );
        let line = line_of(&plan.jobs[0], Operation::Generate, &placeholder).len() as u64;
        let by_bytes = split_at(&plan, &all, &placeholder, 100, line * 3 + 5).unwrap();
        assert_eq!(
            by_bytes.iter().map(|c| c.jobs.len()).collect::<Vec<_>>(),
            [3, 3, 3, 1]
        );
        assert!(by_bytes.iter().all(|c| c.bytes <= line * 3 + 5));
        let err = split_at(&plan, &all, &placeholder, 100, line - 1).unwrap_err();
        assert!(err.to_string().contains("image.a.01.hd.png"), "{err}");
    }
}
