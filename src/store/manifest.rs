//! `genimg.jsonl`: one JSON line per image a run made or failed to make, appended as it goes.
//!
//! The manifest is what makes a resume trustworthy: it records the request each image came
//! from (every field sent, plus the versioned identity of what was asked: see
//! `spec::ImageSpec::identity`), so a later run can tell an image that is current from one
//! whose prompt or options have changed since ("stale"), and finds an image kept under
//! another name than planned. It also keeps what the
//! service said — revised prompt, usage, request id — and the image's sha256.
//!
//! Lines are appended, by the run that holds the destination's lock. A run killed in the
//! middle of a line leaves a torn last line; readers skip lines they cannot parse, and the
//! next run starts its first line on a fresh one. Lines leave only for the trash (see
//! `store::trash`), in one atomic rewrite, once the trash's manifest has them.

use std::collections::HashMap;

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::provider;
use crate::spec::{Identity, ImageSpec, Reference};
use crate::store::Destination;

/// The manifest's file name in the destination.
pub const FILE_NAME: &str = "genimg.jsonl";

/// How an image's attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Saved under `file`.
    Made,
    /// Not made: the error says why.
    Failed,
    /// The service refused the prompt.
    Refused,
}

/// A reference image as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceRecord {
    pub path: PathBuf,
    pub format: String,
    pub bytes: u64,
    pub sha256: String,
}

impl From<&Reference> for ReferenceRecord {
    fn from(r: &Reference) -> ReferenceRecord {
        ReferenceRecord {
            path: r.path.clone(),
            format: r.format.mime().to_owned(),
            bytes: r.bytes.len() as u64,
            sha256: r.sha256.clone(),
        }
    }
}

/// Why the service refused a prompt, as its `moderation_details` said.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moderation {
    /// The stage that refused it: `input` (the prompt) or `output` (the image made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// The categories it named (`violence`, ...).
    #[serde(default)]
    pub categories: Vec<String>,
}

/// One line of the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub file: String,
    /// The prompt's name in its file; `None` for a prompt given on the command line.
    pub prompt: Option<String>,
    /// The prompt's position in its file, from 1: the gallery shows prompts in this order.
    #[serde(default)]
    pub prompt_number: Option<usize>,
    pub index: u32,
    pub prompt_text: String,
    /// Who made it: `openai` (OpenAI or a compatible service) or `gemini`. Records written
    /// before genimg had a second provider have none: they are OpenAI's.
    #[serde(default = "openai")]
    pub provider: String,
    pub model: String,
    /// The endpoint, `images/generations` or `images/edits`; `generateContent` on Gemini.
    pub operation: String,
    /// Every field sent except the prompt (which is `prompt_text`).
    pub request: Map<String, Value>,
    pub references: Vec<ReferenceRecord>,
    /// The edit's mask, recorded as the references are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<ReferenceRecord>,
    pub request_hash: String,
    pub status: Status,
    pub error: Option<String>,
    /// Requests sent for this image, retries included.
    pub attempts: u32,
    pub revised_prompt: Option<String>,
    pub usage: Option<Value>,
    pub request_id: Option<String>,
    /// Of the saved file, for a made image.
    pub sha256: Option<String>,
    pub bytes: Option<u64>,
    /// What the image cost in US dollars: from `usage` for models priced by token, else the
    /// price table.
    #[serde(default)]
    pub cost_usd: Option<f64>,
    /// RFC 3339, UTC.
    pub started: String,
    pub finished: String,
    /// The name the plan gave the image, where it was kept under another one: its bytes
    /// were in another format than asked, or in none genimg recognises.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_file: Option<String>,
    /// The format asked for and the format of the bytes received (`png`, `jpeg`, `webp`,
    /// ..., or `unknown`), where the two differ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asked_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_format: Option<String>,
    /// Where a paid image was kept because the destination would not take it: an absolute
    /// path outside the destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rescued: Option<String>,
    /// A refused prompt's `moderation_details`, where the service gave them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderation: Option<Moderation>,
    /// The `## Title` section of the prompt file its prompt is in, if any: the gallery's
    /// heading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// `batch` for an image made through the Batch API; absent for a live one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The batch that made it, for an image made through the Batch API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
}

impl Record {
    /// The record of `job`'s image, with the outcome still to fill in: its prompt's name,
    /// number and section besides the request.
    pub fn of_job(job: &crate::plan::Job) -> Record {
        let mut record = Record::of(
            &job.file_name,
            job.prompt.label.as_deref(),
            job.index,
            &job.prompt.spec,
            job.prompt.identity(),
        );
        record.prompt_number = Some(job.prompt.number);
        record.section = job.prompt.section.clone();
        record
    }

    /// A record of an image of `spec`, with the outcome still to fill in.
    pub fn of(
        file: &str,
        prompt: Option<&str>,
        index: u32,
        spec: &ImageSpec,
        identity: &Identity,
    ) -> Record {
        let (operation, fields) = provider::wire_fields(spec);
        Record {
            file: file.to_owned(),
            prompt: prompt.map(str::to_owned),
            prompt_number: None,
            index,
            prompt_text: spec.prompt.clone(),
            provider: spec.provider.name().to_owned(),
            model: spec.model.name().to_owned(),
            operation: operation.to_owned(),
            request: fields,
            references: spec.references.iter().map(Into::into).collect(),
            mask: spec.mask.as_ref().map(Into::into),
            request_hash: identity.current.clone(),
            status: Status::Failed,
            error: None,
            attempts: 0,
            revised_prompt: None,
            usage: None,
            request_id: None,
            sha256: None,
            bytes: None,
            cost_usd: None,
            started: now(),
            finished: String::new(),
            planned_file: None,
            asked_format: None,
            received_format: None,
            rescued: None,
            moderation: None,
            section: None,
            mode: None,
            batch_id: None,
        }
    }
}

fn openai() -> String {
    crate::catalog::ProviderId::OpenAi.name().to_owned()
}

/// The current time as RFC 3339 in UTC, always with three decimals, so that times sort as
/// text too: `2026-11-24T10:00:00.400Z`.
pub fn now() -> String {
    format!("{:.3}", jiff::Timestamp::now())
}

/// The manifest of a locked destination, open for appending.
#[derive(Debug)]
pub struct Manifest {
    path: PathBuf,
    file: Mutex<File>,
    /// Its length when opened: earlier runs' lines.
    prior: u64,
}

impl Manifest {
    /// Opens (or creates) the manifest of `destination`. Holding the destination proves this
    /// run holds its lock, so no other run appends at the same time.
    pub fn open(destination: &Destination) -> io::Result<Manifest> {
        let path = destination.dir().join(FILE_NAME);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        // A run killed mid-line leaves a torn line: start ours on a fresh one.
        let mut len = file.metadata()?.len();
        if len > 0 {
            let mut last = [0u8];
            file.seek(SeekFrom::Start(len - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
                len += 1;
            }
        }
        Ok(Manifest {
            path,
            file: Mutex::new(file),
            prior: len,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record as one line, written in one call.
    pub fn append(&self, record: &Record) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(&line)?;
        file.flush()
    }

    /// Drops the lines at `ranges` (with their newlines) from the manifest, in one atomic
    /// rewrite, appends waiting meanwhile: then appends go on in the new file.
    pub fn drop_ranges(&self, ranges: Vec<std::ops::Range<u64>>) -> io::Result<()> {
        if ranges.is_empty() {
            return Ok(());
        }
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let text = std::fs::read(&self.path)?;
        crate::store::atomic::write(
            &self.path,
            &without_ranges(&text, ranges),
            crate::store::atomic::Exists::Replace,
        )?;
        *file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)?;
        Ok(())
    }

    /// How long the manifest was when this run opened it: the lines before are earlier
    /// runs'.
    pub fn prior(&self) -> u64 {
        self.prior
    }

    /// Rewrites the manifest of `destination` without the records `drop` picks by their file
    /// or the file they were planned as, atomically, for `--from-scratch`. Lines that cannot
    /// be read go too. `keep` is given the lines that go (each without its newline) before
    /// the manifest changes, to keep them elsewhere; if it fails, nothing changes. Returns
    /// how many lines went.
    pub fn reset(
        destination: &Destination,
        drop: impl Fn(&str) -> bool,
        keep: impl FnOnce(&[Vec<u8>]) -> io::Result<()>,
    ) -> io::Result<usize> {
        let path = destination.dir().join(FILE_NAME);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut kept = Vec::new();
        let mut dropped = Vec::new();
        for line in BufReader::new(file).split(b'\n') {
            let line = line?;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            // An image kept under another name than planned goes with its planned name's.
            let goes = match serde_json::from_slice::<Seen>(&line) {
                Ok(seen) => drop(&seen.file) || seen.planned_file.as_deref().is_some_and(&drop),
                Err(_) => true,
            };
            if goes {
                dropped.push(line);
            } else {
                kept.extend_from_slice(&line);
                kept.push(b'\n');
            }
        }
        if !dropped.is_empty() {
            keep(&dropped)?;
            destination.write_atomic(FILE_NAME, &kept)?;
        }
        Ok(dropped.len())
    }
}

/// `text` without the bytes at `ranges`, each taking the newline after it along; ranges
/// that overlap an earlier one or run past the end are passed over.
pub fn without_ranges(text: &[u8], mut ranges: Vec<std::ops::Range<u64>>) -> Vec<u8> {
    ranges.sort_by_key(|r| r.start);
    let mut kept = Vec::with_capacity(text.len());
    let mut at = 0usize;
    for range in ranges {
        let (start, end) = (range.start as usize, range.end as usize);
        if start < at || end > text.len() {
            continue;
        }
        kept.extend_from_slice(&text[at..start]);
        at = if text.get(end) == Some(&b'\n') {
            end + 1
        } else {
            end
        };
    }
    kept.extend_from_slice(&text[at..]);
    kept
}

/// What a resume needs from a line; the rest of it is ignored.
#[derive(Debug, Deserialize)]
struct Seen {
    file: String,
    #[serde(default)]
    request_hash: Option<String>,
    #[serde(default)]
    status: Option<Status>,
    #[serde(default)]
    planned_file: Option<String>,
}

/// What earlier runs recorded, as far as resuming is concerned.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct History {
    /// Per file: the request hash of the last record that saved it.
    made: HashMap<String, String>,
    /// Per planned name: the file an image was kept as instead (its bytes were in another
    /// format than asked, or in none genimg recognises), and its request hash.
    kept_as: HashMap<String, (String, String)>,
    /// Every file kept under another name than planned, with its planned name, as recorded.
    kept_files: Vec<(String, String)>,
    /// Lines that could not be read (a torn last line after a crash, an edit by hand).
    pub unreadable: usize,
}

impl History {
    /// Reads the manifest in `dir`; none there is an empty history.
    pub fn read(dir: &Path) -> io::Result<History> {
        let file = match File::open(dir.join(FILE_NAME)) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(History::default()),
            Err(e) => return Err(e),
        };
        History::from_reader(BufReader::new(file))
    }

    fn from_reader(reader: impl BufRead) -> io::Result<History> {
        let mut history = History::default();
        history.unreadable = read_lines(reader, |seen: Seen, _| {
            if let Seen {
                file,
                request_hash: Some(hash),
                status: Some(Status::Made),
                planned_file,
            } = seen
            {
                if let Some(planned) = planned_file {
                    history.kept_files.push((planned.clone(), file.clone()));
                    history
                        .kept_as
                        .insert(planned, (file.clone(), hash.clone()));
                }
                history.made.insert(file, hash);
            }
        })?;
        Ok(history)
    }

    /// The file an image planned as `planned` was kept as instead, and the request hash it
    /// was made from, if an earlier run kept it under another name and no later record made
    /// that file from another request.
    pub fn kept_as(&self, planned: &str) -> Option<(&str, &str)> {
        let (file, hash) = self.kept_as.get(planned)?;
        (self.made_from(file) == Some(hash.as_str())).then_some((file.as_str(), hash.as_str()))
    }

    /// The images kept under another name than planned that are still current: planned
    /// name, file, request hash.
    pub fn kept(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.kept_as.keys().filter_map(|planned| {
            let (file, hash) = self.kept_as(planned)?;
            Some((planned.as_str(), file, hash))
        })
    }

    /// Every file ever kept under another name than a planned name `ours` picks.
    pub fn kept_files(&self, ours: impl Fn(&str) -> bool) -> impl Iterator<Item = &str> {
        self.kept_files
            .iter()
            .filter(move |(planned, _)| ours(planned))
            .map(|(_, file)| file.as_str())
    }

    /// The request hash `file` was last made from, if the manifest knows.
    pub fn made_from(&self, file: &str) -> Option<&str> {
        self.made.get(file).map(String::as_str)
    }
}

/// Every record of the manifest in `dir`, in the order written. Lines that cannot be read as
/// a whole record (a torn last line, an edit by hand) are skipped. No manifest there is an
/// error of kind `NotFound`.
pub fn read_records(dir: &Path) -> io::Result<Vec<Record>> {
    let file = File::open(dir.join(FILE_NAME))?;
    records_from(BufReader::new(file))
}

fn records_from(reader: impl BufRead) -> io::Result<Vec<Record>> {
    let mut records = Vec::new();
    read_lines(reader, |record: Record, _| records.push(record))?;
    Ok(records)
}

/// The one reader of the manifest's lines: each line read whole as a `T` goes to `each`, with
/// its text; blank lines are passed over. Lines that cannot be read (a torn last line after a
/// crash, an edit by hand) are counted, warned about and returned as the count.
/// What a batch needs of a record, read without the rest of it.
#[derive(Debug, Deserialize)]
pub struct BatchSeen {
    pub file: String,
    #[serde(default)]
    pub planned_file: Option<String>,
    #[serde(default)]
    pub request_hash: Option<String>,
    #[serde(default)]
    pub status: Option<Status>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub batch_id: Option<String>,
}

impl BatchSeen {
    /// The image's planned name.
    pub fn planned(&self) -> &str {
        self.planned_file.as_deref().unwrap_or(&self.file)
    }

    /// Whether the image arrived but the destination would not take it: paid for, and to
    /// be kept by a later collect.
    pub fn not_saved(&self) -> bool {
        self.error
            .as_deref()
            .is_some_and(|e| e.starts_with(super::sink::NOT_SAVED))
    }
}

/// Calls `each` with every record of the manifest in `dir`, read lightly and one line at a
/// time: memory does not grow with the manifest.
pub fn scan_for_batches(dir: &Path, mut each: impl FnMut(BatchSeen)) -> io::Result<()> {
    let file = match File::open(dir.join(FILE_NAME)) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    read_lines(BufReader::new(file), |seen: BatchSeen, _| each(seen)).map(|_| ())
}

fn read_lines<T: serde::de::DeserializeOwned>(
    reader: impl BufRead,
    mut each: impl FnMut(T, &[u8]),
) -> io::Result<usize> {
    let mut unreadable = 0usize;
    for line in reader.split(b'\n') {
        let line = line?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<T>(&line) {
            Ok(value) => each(value, &line),
            Err(_) => unreadable += 1,
        }
    }
    if unreadable > 0 {
        tracing::warn!(
            lines = unreadable,
            "{FILE_NAME} has lines that cannot be read; they are ignored"
        );
    }
    Ok(unreadable)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::sync::Arc;

    use super::*;
    use crate::catalog::{Model, Tier};
    use crate::spec::{ImageOptions, Quality};

    fn spec() -> ImageSpec {
        ImageSpec::new(
            &Model::lookup("gpt-image-2"),
            "a cat",
            &ImageOptions {
                quality: Quality::Tier(Tier::Hd),
                ..ImageOptions::default()
            },
            Arc::from([]),
        )
    }

    fn record(file: &str, hash: &str, status: Status) -> Record {
        let mut r = Record::of(file, Some("a"), 1, &spec(), &provider::identity(&spec()));
        r.request_hash = hash.to_owned();
        r.status = status;
        r
    }

    #[test]
    fn records_round_trip_and_the_history_keeps_the_last_made() {
        let tmp = tempfile::tempdir().unwrap();
        let d = Destination::open(tmp.path()).unwrap();
        let m = Manifest::open(&d).unwrap();
        m.append(&record("a.png", "h1", Status::Made)).unwrap();
        m.append(&record("a.png", "h2", Status::Made)).unwrap();
        m.append(&record("a.png", "h3", Status::Failed)).unwrap();
        m.append(&record("b.png", "h9", Status::Refused)).unwrap();
        let h = History::read(tmp.path()).unwrap();
        assert_eq!(h.made_from("a.png"), Some("h2"));
        assert_eq!(h.made_from("b.png"), None);
        assert_eq!(h.unreadable, 0);

        let text = fs::read_to_string(m.path()).unwrap();
        let first: Record = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(
            first,
            record("a.png", "h1", Status::Made).with_times(&first)
        );
        assert!(!first.request.contains_key("prompt"));
        assert_eq!(first.prompt_text, "a cat");
        assert_eq!(first.request["model"], "gpt-image-2");
    }

    impl Record {
        fn with_times(mut self, other: &Record) -> Record {
            self.started = other.started.clone();
            self.finished = other.finished.clone();
            self
        }
    }

    #[test]
    fn a_refusals_moderation_details_round_trip_and_are_left_out_when_absent() {
        let mut refused = record("a.png", "h1", Status::Refused);
        refused.moderation = Some(Moderation {
            stage: Some("output".into()),
            categories: vec!["violence".into(), "self-harm".into()],
        });
        let line = serde_json::to_string(&refused).unwrap();
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            value["moderation"],
            serde_json::json!({"stage": "output", "categories": ["violence", "self-harm"]})
        );
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), refused);

        // No stage said: none written, none read.
        refused.moderation = Some(Moderation {
            stage: None,
            categories: vec!["sexual".into()],
        });
        let line = serde_json::to_string(&refused).unwrap();
        assert!(
            line.contains(r#""moderation":{"categories":["sexual"]}"#),
            "{line}"
        );
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), refused);

        // Without details the line has no such field at all.
        let made = record("b.png", "h2", Status::Made);
        let line = serde_json::to_string(&made).unwrap();
        assert!(!line.contains("\"moderation\":{"), "{line}");
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), made);
    }

    #[test]
    fn a_manifest_written_before_moderation_details_is_still_read() {
        // A refused image's line as the previous release wrote it: no `moderation`, and
        // neither the fields added since the first manifests.
        let old = r#"{"file":"image.nope.01.hd.png","prompt":"nope","index":1,"prompt_text":"FORBIDDEN","model":"gpt-image-2","operation":"images/generations","request":{"model":"gpt-image-2","quality":"high"},"references":[],"request_hash":"spec2:sha256:0","status":"refused","error":"refused by the service: HTTP 400 Bad Request: Your request was rejected by the safety system. (code moderation_blocked, refused at the input stage for violence); reword the prompt at p.txt:4","attempts":1,"revised_prompt":null,"usage":null,"request_id":"req_1","sha256":null,"bytes":null,"started":"2026-11-24T10:00:00.000Z","finished":"2026-11-24T10:00:01.000Z"}"#;
        let records = records_from(format!("{old}\n").as_bytes()).unwrap();
        assert_eq!(records.len(), 1, "the line is read");
        assert_eq!(records[0].status, Status::Refused);
        assert_eq!(records[0].moderation, None);
        assert!(
            records[0]
                .error
                .as_deref()
                .unwrap()
                .ends_with("reword the prompt at p.txt:4")
        );
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_the_next_line_starts_fresh() {
        let tmp = tempfile::tempdir().unwrap();
        let d = Destination::open(tmp.path()).unwrap();
        let line = serde_json::to_string(&record("a.png", "h1", Status::Made)).unwrap();
        fs::write(
            tmp.path().join(FILE_NAME),
            format!("{line}\n{}", &line[..line.len() / 2]),
        )
        .unwrap();
        let m = Manifest::open(&d).unwrap();
        m.append(&record("b.png", "h2", Status::Made)).unwrap();
        let h = History::read(tmp.path()).unwrap();
        assert_eq!(h.made_from("a.png"), Some("h1"));
        assert_eq!(h.made_from("b.png"), Some("h2"));
        assert_eq!(h.unreadable, 1);
    }

    #[test]
    fn times_have_a_fixed_width() {
        let t = now();
        assert_eq!(t.len(), "2026-11-24T10:00:00.400Z".len(), "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[19] == b'.', "{t}");
    }

    #[test]
    fn no_manifest_is_an_empty_history() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(History::read(tmp.path()).unwrap(), History::default());
    }

    #[test]
    fn read_records_keeps_every_whole_record_in_order_and_skips_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let err = read_records(tmp.path()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);

        let a = serde_json::to_string(&record("a.png", "h1", Status::Made)).unwrap();
        let b = serde_json::to_string(&record("b.png", "h2", Status::Refused)).unwrap();
        fs::write(
            tmp.path().join(FILE_NAME),
            format!(
                "{a}\n{{\"file\": \"only.png\"}}\n\n{b}\n{}",
                &a[..a.len() / 2]
            ),
        )
        .unwrap();
        let records = read_records(tmp.path()).unwrap();
        let files: Vec<&str> = records.iter().map(|r| r.file.as_str()).collect();
        assert_eq!(files, ["a.png", "b.png"]);
        assert_eq!(records[1].status, Status::Refused);
    }

    #[test]
    fn reset_drops_the_chosen_records_only() {
        let tmp = tempfile::tempdir().unwrap();
        let d = Destination::open(tmp.path()).unwrap();
        let m = Manifest::open(&d).unwrap();
        m.append(&record("ours.png", "h1", Status::Made)).unwrap();
        m.append(&record("theirs.png", "h2", Status::Made)).unwrap();
        drop(m);
        let mut went = Vec::new();
        let count = Manifest::reset(
            &d,
            |f| f == "ours.png",
            |lines| {
                went = lines.to_vec();
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(count, 1);
        let went: Record = serde_json::from_slice(&went[0]).unwrap();
        assert_eq!(
            went.file, "ours.png",
            "the line that goes is handed over whole"
        );
        let h = History::read(tmp.path()).unwrap();
        assert_eq!(h.made_from("ours.png"), None);
        assert_eq!(h.made_from("theirs.png"), Some("h2"));
    }

    #[test]
    fn a_reset_whose_lines_cannot_be_kept_elsewhere_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let d = Destination::open(tmp.path()).unwrap();
        let m = Manifest::open(&d).unwrap();
        m.append(&record("ours.png", "h1", Status::Made)).unwrap();
        drop(m);
        let before = fs::read(tmp.path().join(FILE_NAME)).unwrap();
        let err = Manifest::reset(&d, |_| true, |_| Err(io::Error::other("no room"))).unwrap_err();
        assert_eq!(err.to_string(), "no room");
        assert_eq!(fs::read(tmp.path().join(FILE_NAME)).unwrap(), before);
    }

    #[test]
    fn dropped_ranges_leave_in_one_rewrite_and_appends_go_on_in_the_new_file() {
        let tmp = tempfile::tempdir().unwrap();
        let d = Destination::open(tmp.path()).unwrap();
        fs::write(tmp.path().join(FILE_NAME), "one\ntwo\nthree").unwrap();
        let m = Manifest::open(&d).unwrap();
        assert_eq!(m.prior(), "one\ntwo\nthree\n".len() as u64);
        m.drop_ranges(vec![4..7, 0..3]).unwrap();
        m.append(&record("a.png", "h1", Status::Made)).unwrap();
        let text = fs::read_to_string(tmp.path().join(FILE_NAME)).unwrap();
        assert!(text.starts_with("three\n{"), "{text}");
        assert_eq!(
            History::read(tmp.path()).unwrap().made_from("a.png"),
            Some("h1")
        );
        assert_eq!(without_ranges(b"a\nb", vec![2..3, 0..1, 0..9]), b"");
    }

    #[test]
    fn an_image_kept_under_another_name_is_known_by_its_planned_name_and_reset_with_it() {
        let tmp = tempfile::tempdir().unwrap();
        let d = Destination::open(tmp.path()).unwrap();
        let m = Manifest::open(&d).unwrap();
        let mut kept = record(".genimg/unrecognised/ours.bin", "h1", Status::Made);
        kept.planned_file = Some("ours.png".into());
        m.append(&kept).unwrap();
        m.append(&record("theirs.png", "h2", Status::Made)).unwrap();
        drop(m);
        let h = History::read(tmp.path()).unwrap();
        assert_eq!(
            h.kept_as("ours.png"),
            Some((".genimg/unrecognised/ours.bin", "h1"))
        );
        assert_eq!(h.kept_as("theirs.png"), None);
        // A later image made under that name from another request ends it.
        let m = Manifest::open(&d).unwrap();
        m.append(&record(".genimg/unrecognised/ours.bin", "h3", Status::Made))
            .unwrap();
        assert_eq!(History::read(tmp.path()).unwrap().kept_as("ours.png"), None);
        m.append(&kept).unwrap();
        drop(m);
        assert_eq!(
            Manifest::reset(&d, |f| f == "ours.png", |_| Ok(())).unwrap(),
            2
        );
        let h = History::read(tmp.path()).unwrap();
        assert_eq!(h.kept_as("ours.png"), None);
        assert_eq!(h.made_from("theirs.png"), Some("h2"));
    }
}
