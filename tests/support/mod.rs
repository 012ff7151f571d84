//! The shared harness of the end-to-end tests: a fake Images API (with OpenAI's Files and
//! Batches APIs), a fake Gemini API (with its Files API and batch mode) on an address of its
//! own, and the real genimg binary run against them with a cleared, deterministic
//! environment.

#![allow(dead_code)]

pub mod background;
pub mod batches;
pub mod gemini;
pub mod gemini_batches;
pub mod gemini_rules;
pub mod images;
pub mod proxy;
pub mod rules;
pub mod server;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

pub use batches::{AnsweredLine, BatchLine, BatchOptions, BatchScript, FileInfo, OutputOrder};
pub use gemini::{
    FakeGemini, GEMINI_KEY, GeminiAction, GeminiIncoming, GeminiOptions, GeminiRecorded,
    GeminiScript, gemini_chaos,
};
pub use gemini_batches::{
    GeminiAnsweredLine, GeminiBatchLine, GeminiBatchOptions, GeminiBatchScript, GeminiFile,
};
pub use gemini_rules::GoogleError;
pub use server::{Action, FakeServer, Incoming, KEY, Options, RateLimit, Recorded, chaos};

/// A temporary directory to run genimg in.
pub struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file (creating parents) and returns its path.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(&path, contents).expect("write");
        path
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        fs::read(self.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// The names in a directory, sorted, without genimg's lock file, manifest, gallery and
    /// `.genimg` folder (the gallery's thumbnails, the trash, unrecognised answers: tests
    /// that mean them look in it).
    pub fn files(&self, rel: &str) -> Vec<String> {
        self.all_files(rel)
            .into_iter()
            .filter(|n| n != ".genimg.lock" && n != MANIFEST && n != GALLERY && n != ".genimg")
            .collect()
    }

    /// Every name in a directory, sorted.
    pub fn all_files(&self, rel: &str) -> Vec<String> {
        let dir = self.join(rel);
        let mut names: Vec<String> = match fs::read_dir(&dir) {
            Ok(entries) => entries
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }

    /// The manifest records in the directory `rel`, in order; none if there is no manifest.
    pub fn manifest(&self, rel: &str) -> Vec<Value> {
        let text = fs::read_to_string(self.join(rel).join(MANIFEST)).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

/// The trash of a destination, relative to it.
pub const TRASH: &str = ".genimg/trash";

impl Workspace {
    /// The folders of the trash of the destination `rel`, oldest first.
    pub fn trash_folders(&self, rel: &str) -> Vec<String> {
        self.all_files(&format!("{rel}/{TRASH}"))
    }

    /// The one folder of the trash of the destination `rel`, relative to the workspace.
    #[track_caller]
    pub fn only_trash(&self, rel: &str) -> String {
        let folders = self.trash_folders(rel);
        assert_eq!(folders.len(), 1, "trash folders of {rel}: {folders:?}");
        format!("{rel}/{TRASH}/{}", folders[0])
    }
}

/// The manifest's name in a destination.
pub const MANIFEST: &str = "genimg.jsonl";

/// The gallery's name in a destination.
pub const GALLERY: &str = "index.html";

/// The genimg binary with a cleared environment, run in `ws`, pointed at `server` with the
/// key it accepts.
pub fn genimg(ws: &Workspace, server: Option<&FakeServer>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_genimg"));
    cmd.env_clear()
        .current_dir(ws.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    match server {
        Some(s) => {
            cmd.env("OPENAI_BASE_URL", s.base_url())
                .env("OPENAI_API_KEY", KEY);
        }
        // Anything that slips through goes nowhere: port 9 on loopback refuses.
        None => {
            cmd.env("OPENAI_BASE_URL", "http://127.0.0.1:9/v1");
        }
    }
    cmd
}

/// Runs genimg on one prompt into `out` against `server`, with `args` added.
pub fn one_image(server: &FakeServer, args: &[&str]) -> (Run, Workspace) {
    let ws = Workspace::new();
    let run = genimg(&ws, Some(server))
        .args(["a lighthouse", "--dst-dir", "out"])
        .args(args)
        .run();
    (run, ws)
}

/// What a finished run printed and returned.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all_output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

pub trait RunExt {
    /// Runs to the end.
    fn run(&mut self) -> Run;
    /// Runs to the end with `input` on standard input.
    fn run_with_stdin(&mut self, input: &[u8]) -> Run;
    /// Starts in the background, output captured, for a test to signal or race it.
    fn start(&mut self) -> Child;
}

impl RunExt for Command {
    fn run(&mut self) -> Run {
        finished(self.output().expect("run genimg"))
    }

    fn run_with_stdin(&mut self, input: &[u8]) -> Run {
        let mut child = self.stdin(Stdio::piped()).start();
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input).expect("write stdin");
        drop(stdin);
        wait(child)
    }

    fn start(&mut self) -> Child {
        self.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn genimg")
    }
}

/// The result of a background run started with [`RunExt::start`].
pub fn wait(child: Child) -> Run {
    finished(child.wait_with_output().expect("wait"))
}

fn finished(output: Output) -> Run {
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The value of a row of the closing summary on stderr (`  made      12`), if it has one.
pub fn summary_row(run: &Run, label: &str) -> Option<String> {
    run.stderr.lines().find_map(|line| {
        let rest = line.strip_prefix("  ")?.strip_prefix(label)?;
        // The label is padded to a column; what follows is the value, then any note.
        if !rest.starts_with(' ') {
            return None;
        }
        rest.split_whitespace().next().map(str::to_owned)
    })
}

/// Asserts the rows of the closing summary, e.g. `[("made", "2"), ("failed", "2")]`.
#[track_caller]
pub fn assert_summary(run: &Run, rows: &[(&str, &str)]) {
    for (label, value) in rows {
        assert_eq!(
            summary_row(run, label).as_deref(),
            Some(*value),
            "summary row {label:?} in:\n{}",
            run.stderr
        );
    }
}

/// Asserts the exit code, showing the output when it differs.
#[track_caller]
pub fn assert_code(run: &Run, code: i32) {
    assert_eq!(
        run.code, code,
        "exit code\n--- stdout\n{}\n--- stderr\n{}",
        run.stdout, run.stderr
    );
}

/// Asserts that each image written equals, byte for byte, what the server sent for it, live
/// or in a batch's output file. A temporary file a killed run left under its own name
/// (`.genimg-*.tmp`) is no image, and genimg's own folder (`.genimg/`: the trash, answers
/// kept aside) is no image either.
#[track_caller]
pub fn assert_images_match(ws: &Workspace, dir: &str, server: &FakeServer) {
    let sent: Vec<Vec<u8>> = server
        .requests()
        .into_iter()
        .filter_map(|r| r.image)
        .chain(server.batch_lines().into_iter().filter_map(|l| l.image))
        .collect();
    let images = ws
        .files(dir)
        .into_iter()
        .filter(|n| !(n.starts_with(".genimg-") && n.ends_with(".tmp")))
        .filter(|n| n != ".genimg");
    for name in images {
        let bytes = ws.read(&format!("{dir}/{name}"));
        assert!(
            sent.contains(&bytes),
            "{name} is not byte for byte an image the server sent"
        );
    }
}

/// Points `cmd` (from [`genimg`]) at the fake Gemini service too, with the key it accepts:
/// `GEMINI_BASE_URL` and `GEMINI_API_KEY`.
pub fn with_gemini<'a>(cmd: &'a mut Command, gemini: &FakeGemini) -> &'a mut Command {
    cmd.env("GEMINI_BASE_URL", gemini.base_url())
        .env("GEMINI_API_KEY", GEMINI_KEY)
}

/// Asserts that each image written equals, byte for byte, a final image the Gemini fake sent,
/// live or in a batch's responses, and that none is a thought part's image. A temporary file
/// a killed run left under its own name (`.genimg-*.tmp`) is no image.
#[track_caller]
pub fn assert_gemini_images_match(ws: &Workspace, dir: &str, gemini: &FakeGemini) {
    let sent = gemini.images_delivered();
    let thoughts = gemini.thought_images();
    let images = ws
        .files(dir)
        .into_iter()
        .filter(|n| !(n.starts_with(".genimg-") && n.ends_with(".tmp")));
    for name in images {
        let bytes = ws.read(&format!("{dir}/{name}"));
        assert!(
            !thoughts.contains(&bytes),
            "{name} is a thought part's image, not the answer"
        );
        assert!(
            sent.contains(&bytes),
            "{name} is not byte for byte an image the Gemini fake sent"
        );
    }
}

/// Runs to the end, failing the test if that takes more than `limit`: for inputs that once
/// made genimg hang. A run that overstays is killed.
#[track_caller]
pub fn run_within(cmd: &mut Command, limit: std::time::Duration) -> Run {
    use std::io::Read;
    let mut child = cmd.start();
    // Drained as it comes, so a run that prints much is not blocked on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll genimg") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr.join().expect("stderr");
            panic!("genimg still ran after {limit:?}; killed\n{stderr}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: stdout.join().expect("stdout"),
        stderr: stderr.join().expect("stderr"),
    }
}

/// Makes a FIFO (named pipe) at `path`: opening it for reading blocks until a writer comes.
#[cfg(unix)]
pub fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Makes `path` a sparse file of `len` bytes: its size is all that counts.
pub fn sparse_file(path: &Path, len: u64) {
    fs::File::create(path)
        .and_then(|f| f.set_len(len))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// A fake whose every answer takes `latency_ms`.
pub fn slow_server(latency_ms: u64) -> FakeServer {
    FakeServer::with(Options {
        latency: std::time::Duration::from_millis(latency_ms),
        ..Options::default()
    })
}

/// Waits until `ready`, failing the test after 20 s.
pub fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The sha256 of `bytes`, in lower-case hex, as the manifest writes it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The last manifest record of `file`.
#[track_caller]
pub fn record<'a>(records: &'a [Value], file: &str) -> &'a Value {
    records
        .iter()
        .rev()
        .find(|r| r["file"] == file)
        .unwrap_or_else(|| panic!("no record of {file} in {records:#?}"))
}
