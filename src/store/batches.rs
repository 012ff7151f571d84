//! `genimg-batch.json`: the batches a destination has submitted and not yet collected, and
//! beside it, under `.genimg/batches/`, what each batch asked for.
//!
//! The ledger is what keeps a batch from being bought twice: a submission is recorded (with
//! its own id, named in the batch's metadata) before its input file is uploaded, the input
//! file's id once it is, and the batch's id right after the service created it, each time by
//! an atomic rewrite. A run that finds a submission without a batch id looks for the batch
//! by that metadata before creating one. A batch is forgotten only once everything it
//! returned is on disk and in the manifest.
//!
//! For each submission, `.genimg/batches/SUBMISSION.jsonl` holds one line per request, in
//! the order of the input file: the image's `custom_id` (its file name), where its prompt is
//! written, the format asked for, and the manifest record to complete when it arrives. A
//! collect needs nothing else: not the prompt file, not the command line.

use std::fs;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Destination;
use super::manifest::Record;
use crate::provider::openai::batch::RequestCounts;

/// The ledger's file name in the destination.
pub const FILE_NAME: &str = "genimg-batch.json";

/// Where a destination keeps what its batches asked for, and their downloads.
pub const DIR: &str = ".genimg/batches";

const VERSION: u32 = 1;

/// The batches of a destination that are not collected yet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    #[serde(default)]
    pub version: u32,
    /// Reference images uploaded through the Files API, by the sha256 of their bytes: reused
    /// across batches and runs while the service still has them.
    #[serde(default)]
    pub uploads: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub batches: Vec<Entry>,
}

/// One submission: a batch, or the intent of one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// genimg's own id of the submission, named in the batch's metadata.
    pub submission: String,
    /// The batch, once the service created it.
    #[serde(default)]
    pub batch_id: Option<String>,
    /// The uploaded input file, once uploaded.
    #[serde(default)]
    pub input_file_id: Option<String>,
    /// Who runs the batch: `openai` or `gemini`; entries written before genimg had a second
    /// provider have none, and are OpenAI's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// `/v1/images/generations` or `/v1/images/edits`; Gemini's
    /// `models/{model}:batchGenerateContent`.
    pub endpoint: String,
    pub requests: usize,
    pub input_bytes: u64,
    /// At batch prices, in US dollars; `None` where a model has no published price.
    #[serde(default)]
    pub estimate_usd: Option<f64>,
    /// When genimg submitted it, RFC 3339.
    pub submitted: String,
    /// The batch's status when genimg last looked.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub counts: Option<RequestCounts>,
}

impl Entry {
    /// The provider that runs its batch.
    pub fn provider(&self) -> crate::catalog::ProviderId {
        self.provider
            .as_deref()
            .and_then(crate::catalog::ProviderId::from_name)
            .unwrap_or(crate::catalog::ProviderId::OpenAi)
    }
}

impl Ledger {
    /// The destination's ledger; an empty one where there is none.
    pub fn read(dir: &Path) -> io::Result<Ledger> {
        let path = dir.join(FILE_NAME);
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Ledger::default()),
            Err(e) => return Err(e),
        };
        let ledger: Ledger = serde_json::from_slice(&text).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a ledger genimg can read: {e}", path.display()),
            )
        })?;
        if ledger.version > VERSION {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} was written by a newer genimg (version {})",
                    path.display(),
                    ledger.version
                ),
            ));
        }
        Ok(ledger)
    }

    /// Writes the ledger atomically; an empty one removes the file.
    pub fn write(&mut self, destination: &Destination) -> io::Result<()> {
        self.version = VERSION;
        if self.batches.is_empty() && self.uploads.is_empty() {
            return match fs::remove_file(destination.dir().join(FILE_NAME)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        let mut text = serde_json::to_vec_pretty(self).expect("a ledger serialises");
        text.push(b'\n');
        destination.write_atomic(FILE_NAME, &text).map(|_| ())
    }

    pub fn entry_mut(&mut self, submission: &str) -> Option<&mut Entry> {
        self.batches.iter_mut().find(|e| e.submission == submission)
    }

    /// Forgets a submission, and its files under [`DIR`].
    pub fn forget(&mut self, destination: &Destination, submission: &str) -> io::Result<()> {
        self.batches.retain(|e| e.submission != submission);
        self.write(destination)?;
        let dir = destination.dir().join(DIR);
        for path in [
            requests_path(destination.dir(), submission),
            dir.join(format!("{submission}.input.jsonl")),
            dir.join(format!("{submission}.output.jsonl")),
            dir.join(format!("{submission}.errors.jsonl")),
        ] {
            let _ = fs::remove_file(path);
        }
        // Folders left empty go too (one that holds anything else stays).
        let _ = fs::remove_dir(&dir);
        if let Some(parent) = dir.parent() {
            let _ = fs::remove_dir(parent);
        }
        Ok(())
    }
}

/// What one request of a batch asked for: enough to keep its image when it arrives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The image's planned file name, which is also the line's `custom_id`.
    pub custom_id: String,
    /// Where its prompt is written (`prompts.txt:7`), if in a file.
    #[serde(default)]
    pub at: Option<String>,
    /// The extension asked for: `png`, `jpeg`, `webp`.
    pub asked: String,
    /// The image's price at batch prices, where the model has one: its cost when the
    /// answer's `usage` does not say.
    #[serde(default)]
    pub estimate: Option<f64>,
    /// Its params as the user gave them, by key (see `PlannedPrompt::params_given`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub params: std::collections::BTreeMap<String, String>,
    /// The manifest record to complete, status and outcome still open.
    pub record: Record,
}

/// The path of a submission's requests.
pub fn requests_path(dir: &Path, submission: &str) -> PathBuf {
    dir.join(DIR).join(format!("{submission}.jsonl"))
}

/// Writes a submission's requests, one JSON line each, atomically.
pub fn write_requests(
    destination: &Destination,
    submission: &str,
    requests: &[Request],
) -> io::Result<PathBuf> {
    let mut writer = RequestsWriter::create(destination, submission)?;
    for r in requests {
        writer.push(r)?;
    }
    writer.finish()
}

/// Writes a submission's requests a line at a time, to a temporary file that takes its name
/// once whole: a batch of 49,000 requests is never held in memory.
#[derive(Debug)]
pub struct RequestsWriter {
    file: io::BufWriter<tempfile::NamedTempFile>,
    path: PathBuf,
}

impl RequestsWriter {
    pub fn create(destination: &Destination, submission: &str) -> io::Result<RequestsWriter> {
        let path = requests_path(destination.dir(), submission);
        let dir = path.parent().expect("under DIR");
        fs::create_dir_all(dir)?;
        Ok(RequestsWriter {
            file: io::BufWriter::new(super::atomic::temp_file(dir)?),
            path,
        })
    }

    pub fn push(&mut self, request: &Request) -> io::Result<()> {
        use io::Write as _;
        serde_json::to_writer(&mut self.file, request).map_err(io::Error::other)?;
        self.file.write_all(b"\n")
    }

    /// Fsyncs the file and gives it its name.
    pub fn finish(self) -> io::Result<PathBuf> {
        let file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.as_file().sync_all()?;
        file.persist(&self.path).map_err(|e| e.error)?;
        if let Some(dir) = self.path.parent() {
            super::atomic::sync_dir(dir);
        }
        Ok(self.path)
    }
}

/// A submission's requests, read by `custom_id` without holding them all: an index of
/// where each line starts, and a line read when asked for.
#[derive(Debug)]
pub struct Requests {
    file: BufReader<fs::File>,
    /// `custom_id` → (offset, 1-based line of the input file).
    index: std::collections::HashMap<String, (u64, usize)>,
    /// The `custom_id` of each line, in order.
    order: Vec<String>,
}

impl Requests {
    pub fn open(dir: &Path, submission: &str) -> io::Result<Requests> {
        let path = requests_path(dir, submission);
        let mut file = BufReader::new(fs::File::open(&path)?);
        let mut index = std::collections::HashMap::new();
        let mut order = Vec::new();
        let mut offset = 0u64;
        let mut line = Vec::new();
        #[derive(Deserialize)]
        struct Id {
            custom_id: String,
        }
        loop {
            line.clear();
            let n = file.read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            let id: Id = serde_json::from_slice(&line).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}:{}: {e}", path.display(), order.len() + 1),
                )
            })?;
            order.push(id.custom_id.clone());
            index.insert(id.custom_id, (offset, order.len()));
            offset += n as u64;
        }
        Ok(Requests { file, index, order })
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The `custom_id`s, in the order of the input file.
    pub fn ids(&self) -> &[String] {
        &self.order
    }

    /// The 1-based line of the input file that asked for `custom_id`.
    pub fn line_of(&self, custom_id: &str) -> Option<usize> {
        self.index.get(custom_id).map(|(_, line)| *line)
    }

    /// The request of `custom_id`, if the submission asked for it.
    pub fn get(&mut self, custom_id: &str) -> io::Result<Option<Request>> {
        let Some(&(offset, _)) = self.index.get(custom_id) else {
            return Ok(None);
        };
        self.file.seek(SeekFrom::Start(offset))?;
        let mut line = Vec::new();
        self.file.read_until(b'\n', &mut line)?;
        serde_json::from_slice(&line)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Model;
    use crate::provider;
    use crate::spec::{ImageOptions, ImageSpec};

    fn request(name: &str) -> Request {
        let spec = ImageSpec::new(
            &Model::lookup("gpt-image-2"),
            "a cat",
            &ImageOptions::default(),
            std::sync::Arc::from([]),
        );
        Request {
            custom_id: name.to_owned(),
            at: Some("p.txt:1".into()),
            asked: "png".into(),
            estimate: Some(0.1),
            params: Default::default(),
            record: Record::of(name, Some("a"), 1, &spec, &provider::identity(&spec)),
        }
    }

    #[test]
    fn the_ledger_round_trips_and_an_empty_one_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let destination = Destination::open(dir.path()).unwrap();
        assert_eq!(Ledger::read(dir.path()).unwrap(), Ledger::default());
        let mut ledger = Ledger::default();
        ledger.batches.push(Entry {
            submission: "s1".into(),
            endpoint: "/v1/images/generations".into(),
            requests: 2,
            ..Entry::default()
        });
        ledger.write(&destination).unwrap();
        let read = Ledger::read(dir.path()).unwrap();
        assert_eq!(read.batches, ledger.batches);
        assert_eq!(read.version, VERSION);
        write_requests(&destination, "s1", &[request("a.png")]).unwrap();
        ledger.forget(&destination, "s1").unwrap();
        assert!(!dir.path().join(FILE_NAME).exists());
        assert!(!requests_path(dir.path(), "s1").exists());
        assert!(
            !dir.path().join(".genimg").exists(),
            "no empty folder is left"
        );

        fs::write(dir.path().join(FILE_NAME), b"{not json").unwrap();
        let err = Ledger::read(dir.path()).unwrap_err();
        assert!(err.to_string().contains(FILE_NAME), "{err}");
    }

    #[test]
    fn requests_are_found_by_custom_id_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let destination = Destination::open(dir.path()).unwrap();
        let all = [request("a.png"), request("b.png"), request("c.png")];
        write_requests(&destination, "s1", &all).unwrap();
        let mut requests = Requests::open(dir.path(), "s1").unwrap();
        assert_eq!(requests.len(), 3);
        assert_eq!(requests.ids(), ["a.png", "b.png", "c.png"]);
        assert_eq!(requests.get("c.png").unwrap().unwrap(), all[2]);
        assert_eq!(requests.get("a.png").unwrap().unwrap(), all[0]);
        assert_eq!(requests.line_of("b.png"), Some(2));
        assert_eq!(requests.get("z.png").unwrap(), None);
    }
}
