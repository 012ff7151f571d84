//! Keeping one image: the one place an image that was paid for goes.
//!
//! The sink looks at what the bytes are, picks the name they are kept under, writes them
//! atomically, appends the image's manifest record and settles what it cost against
//! `--max-cost`. Bytes in another format than asked are kept under the extension of what
//! they are; bytes that are no image genimg recognises are kept under
//! `.genimg/unrecognised/`. If the destination will not take them, they are rescued to a
//! folder of their own outside it. Either way the record says where they are, so nothing
//! paid for is lost and nothing is bought twice. An image a new one replaces goes to the
//! trash (see [`super::trash`]) just before the new one takes its name.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::atomic::{self, Exists};
use super::destination::Destination;
use super::manifest::{self, Manifest, Record, Status};
use super::trash::Trash;
use crate::format::ImageFormat;
use crate::units::sha256_hex;

/// How many names a kept or rescued image may try before giving up: a bound, so that a
/// folder that answers "exists" to everything cannot hold a run forever.
const MAX_NAMES: u32 = 1000;

fn too_many(stem: &str) -> io::Error {
    io::Error::other(format!("{MAX_NAMES} names of {stem} are taken already"))
}

/// How the reason of an image the destination would not take begins.
pub const NOT_SAVED: &str = "the image arrived but could not be saved";

/// Where bytes genimg does not recognise as an image are kept, in the destination.
pub const UNRECOGNISED_DIR: &str = ".genimg/unrecognised";

/// What delivered bytes turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// An image in the format asked for.
    Asked(ImageFormat),
    /// A whole image, in another format than asked.
    Other(ImageFormat),
    /// Bytes that are no image genimg recognises.
    Unrecognised,
}

impl Received {
    /// Reads the bytes' header: their magic number and dimensions, not a file name.
    pub fn of(bytes: &[u8], asked: ImageFormat) -> Received {
        match ImageFormat::sniff(bytes) {
            Some(format) if format.is_whole(bytes) => {
                if format == asked {
                    Received::Asked(format)
                } else {
                    Received::Other(format)
                }
            }
            _ => Received::Unrecognised,
        }
    }

    /// The name used in the manifest: `png`, `jpeg`, `webp` or `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            Received::Asked(f) | Received::Other(f) => f.extension(),
            Received::Unrecognised => "unknown",
        }
    }
}

/// The format an image was planned in, and whether it was asked of the service: a model
/// that answers in a format of its own choosing (see `ModelInfo::own_format`) was asked none,
/// so another format is no surprise, though the file still takes the bytes' extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asked {
    pub format: ImageFormat,
    pub chosen: bool,
}

impl Asked {
    /// The format of `spec`'s images.
    pub fn of(spec: &crate::spec::ImageSpec) -> Asked {
        Asked {
            format: spec.asked_format(),
            chosen: !spec.model.info().own_format,
        }
    }
}

/// An image kept in the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    /// Relative to the destination: the planned name, the planned name with the extension of
    /// what arrived, or a path under [`UNRECOGNISED_DIR`].
    pub file: String,
    pub sha256: String,
    pub bytes: usize,
    pub received: Received,
}

/// An image the destination would not take.
#[derive(Debug)]
pub struct NotKept {
    /// Why the destination would not take it.
    pub error: io::Error,
    /// Where it was kept instead, or why it could be kept nowhere.
    pub rescue: Result<PathBuf, String>,
}

impl NotKept {
    /// The failure as the summary shows it.
    pub fn reason(&self) -> String {
        let kept = match &self.rescue {
            Ok(path) => format!("; it was kept as {}", path.display()),
            Err(why) => format!("; it could be kept nowhere else either: {why}"),
        };
        format!("{NOT_SAVED}: {}{kept}", self.error)
    }
}

/// `--max-cost` during a run: an image's request is only sent if what was spent, plus the
/// estimates of the images on their way, plus its own estimate, stays within the limit.
#[derive(Debug)]
pub struct Budget {
    max: f64,
    /// What the estimate shown (prompt by prompt, rounded) is under the estimates added up
    /// exactly: a run the dry run called within the limit is not stopped by that rounding.
    slack: f64,
    /// Spent, and reserved for images on their way.
    state: Mutex<(f64, f64)>,
}

impl Budget {
    pub fn new(max: f64) -> Budget {
        Budget {
            max,
            slack: 0.0,
            state: Mutex::new((0.0, 0.0)),
        }
    }

    pub fn max(&self) -> f64 {
        self.max
    }

    /// Reserves `estimate` for an image about to be requested, if it fits.
    pub fn reserve(&self, estimate: f64) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // A thousandth of a cent of slack for sums of floating-point prices.
        if s.0 + s.1 + estimate > self.max + self.slack + 1e-5 {
            return false;
        }
        s.1 += estimate;
        true
    }

    /// Counts what an answer billed, at once.
    pub fn spend(&self, cost: f64) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.0 += cost;
    }

    /// The image's request is over: its reservation goes, and what it cost is spent.
    pub fn settle(&self, reserved: f64, cost: f64) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.1 = (s.1 - reserved).max(0.0);
        s.0 += cost;
    }
}

/// Where images of one run end up.
#[derive(Debug)]
pub struct Sink {
    destination: Destination,
    manifest: Manifest,
    budget: Option<Budget>,
    /// Folders tried in turn for an image the destination will not take.
    rescue_roots: Vec<PathBuf>,
    /// Where an image goes when a new one takes its name.
    trash: Arc<Trash>,
}

impl Sink {
    pub fn new(destination: Destination, manifest: Manifest, max_cost: Option<f64>) -> Sink {
        let trash = Arc::new(Trash::new(destination.dir()));
        Sink {
            destination,
            manifest,
            budget: max_cost.map(Budget::new),
            rescue_roots: rescue_roots(),
            trash,
        }
    }

    /// `--max-cost` takes `slack` more than the limit: how much the run's estimate, rounded
    /// as shown and weighed before the run, is under its exact sum (see [`Budget`]).
    pub fn with_budget_slack(mut self, slack: f64) -> Sink {
        if let Some(budget) = &mut self.budget {
            budget.slack = slack.max(0.0);
        }
        self
    }

    /// Replaced images go to `trash`: the run's, which `--from-scratch` may have used
    /// already.
    pub fn with_trash(mut self, trash: Arc<Trash>) -> Sink {
        self.trash = trash;
        self
    }

    pub fn trash(&self) -> &Arc<Trash> {
        &self.trash
    }

    /// Rescues go to these folders, in turn, rather than the system's.
    pub fn with_rescue_roots(mut self, roots: Vec<PathBuf>) -> Sink {
        self.rescue_roots = roots;
        self
    }

    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn budget(&self) -> Option<&Budget> {
        self.budget.as_ref()
    }

    /// Keeps the bytes an answer delivered for the image planned as `planned`, asked for in
    /// `asked`: writes them, completes `record` and appends it. If the destination will not
    /// take the image, `refused` is called at once, before the image is rescued, so that the
    /// caller stops buying images that would meet the same fate. Blocking: call it off the
    /// async workers. (What the image cost is settled against the [`Budget`] as soon as its
    /// answer arrives, before any other request is weighed.)
    pub fn keep(
        &self,
        planned: &str,
        asked: Asked,
        bytes: &[u8],
        mut record: Record,
        refused: impl FnOnce(),
    ) -> Result<Kept, NotKept> {
        let received = Received::of(bytes, asked.format);
        let sha256 = sha256_hex(bytes);
        record.sha256 = Some(sha256.clone());
        record.bytes = Some(bytes.len() as u64);
        if received != Received::Asked(asked.format) {
            record.planned_file = Some(planned.to_owned());
            record.asked_format = asked.chosen.then(|| asked.format.extension().to_owned());
            record.received_format = Some(received.name().to_owned());
        }
        let stem = planned.rsplit_once('.').map_or(planned, |(stem, _)| stem);
        // The name the bytes are kept under: what they are decides its extension.
        let (written, name) = match received {
            Received::Asked(_) => (
                self.replace(planned, bytes).map(|_| planned.to_owned()),
                planned.to_owned(),
            ),
            Received::Other(format) => (
                self.write_free(stem, format.extension(), bytes),
                format!("{stem}.{}", format.extension()),
            ),
            Received::Unrecognised => (
                self.write_free(&format!("{UNRECOGNISED_DIR}/{stem}"), "bin", bytes),
                format!("{stem}.bin"),
            ),
        };
        record.finished = manifest::now();
        match written {
            Ok(file) => {
                record.file = file.clone();
                record.status = Status::Made;
                self.append(&record);
                Ok(Kept {
                    file,
                    sha256,
                    bytes: bytes.len(),
                    received,
                })
            }
            Err(error) => {
                refused();
                let file_name = Path::new(&name)
                    .file_name()
                    .map_or(name.clone(), |n| n.to_string_lossy().into_owned());
                let rescue = self.rescue(&file_name, bytes);
                let not_kept = NotKept { error, rescue };
                record.status = Status::Failed;
                record.error = Some(not_kept.reason());
                if let Ok(path) = &not_kept.rescue {
                    record.rescued = Some(path.display().to_string());
                }
                self.append(&record);
                Err(not_kept)
            }
        }
    }

    /// Writes `bytes` under `planned`, an image already there going to the trash first: it
    /// is linked there, so that it is in place or in the trash whenever the process dies,
    /// and the new image is then renamed over its name. If it cannot go to the trash, the
    /// new image is not written there (the caller rescues it) and the old one stays.
    fn replace(&self, planned: &str, bytes: &[u8]) -> io::Result<PathBuf> {
        self.replace_by(planned, || self.destination.write_atomic(planned, bytes))
    }

    /// [`Sink::replace`], with `write` writing the new image.
    fn replace_by(
        &self,
        planned: &str,
        write: impl FnOnce() -> io::Result<PathBuf>,
    ) -> io::Result<PathBuf> {
        let replaced = self
            .trash
            .keep_replaced(planned, self.manifest.path(), self.manifest.prior())
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("the image already there could not go to the trash: {e}"),
                )
            })?;
        let path = match write() {
            Ok(path) => path,
            Err(e) => {
                // The old image keeps its place: it was never moved.
                if let Some(replaced) = replaced {
                    self.trash.abandon(replaced);
                }
                return Err(e);
            }
        };
        if let Some(replaced) = replaced
            && let Err(e) = self.trash.replaced(replaced)
        {
            tracing::warn!(
                "the records of the image {planned} replaced stay in the manifest: the \
                 trash's could not take them: {e}"
            );
        }
        Ok(path)
    }

    /// Once the run has kept its last image: the records of the images it replaced leave
    /// the manifest (the trash's has them).
    pub fn settle(&self) -> io::Result<()> {
        self.manifest.drop_ranges(self.trash.take_copied())
    }

    /// Appends the record of an image that was not made.
    pub fn record_failure(&self, record: &Record) {
        self.append(record);
    }

    /// Writes under `stem.ext`, or `stem~2.ext`, `stem~3.ext`... when that is taken: the
    /// name is the received format's, and a file already there is someone's image.
    fn write_free(&self, stem: &str, ext: &str, bytes: &[u8]) -> io::Result<String> {
        for n in 1..=MAX_NAMES {
            let name = match n {
                1 => format!("{stem}.{ext}"),
                n => format!("{stem}~{n}.{ext}"),
            };
            match self.destination.write_new(Path::new(&name), bytes) {
                Ok(_) => return Ok(name),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(too_many(stem))
    }

    /// Keeps an image the destination would not take in the first rescue folder that takes
    /// it whole: `<root>/<destination name>-<hash of its canonical path>/`, under a name no
    /// earlier rescue has, written atomically. Returns the path, or why no folder took it.
    fn rescue(&self, file_name: &str, bytes: &[u8]) -> Result<PathBuf, String> {
        let dir = self.destination.dir();
        let place = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
        let name = place
            .file_name()
            .map_or_else(|| "images".to_owned(), |n| n.to_string_lossy().into_owned());
        let key = &sha256_hex(place.as_os_str().as_encoded_bytes())[..12];
        let folder = format!("{name}-{key}");
        let (stem, ext) = file_name.rsplit_once('.').unwrap_or((file_name, "bin"));
        let mut problems = Vec::new();
        for root in &self.rescue_roots {
            let dir = root.join(&folder);
            let attempt = std::fs::create_dir_all(&dir).and_then(|()| {
                for n in 1..=MAX_NAMES {
                    let path = match n {
                        1 => dir.join(file_name),
                        n => dir.join(format!("{stem}.{n}.{ext}")),
                    };
                    match atomic::write(&path, bytes, Exists::Keep) {
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                        other => return other,
                    }
                }
                Err(too_many(stem))
            });
            match attempt {
                Ok(path) => {
                    tracing::warn!("{file_name} could not be saved; kept as {}", path.display());
                    return Ok(path);
                }
                Err(e) => problems.push(format!("{}: {e}", dir.display())),
            }
        }
        if problems.is_empty() {
            problems.push("no folder to keep it in".to_owned());
        }
        Err(format!("no room anywhere ({})", problems.join("; ")))
    }

    fn append(&self, record: &Record) {
        if let Err(e) = self.manifest.append(record) {
            tracing::warn!(
                "could not add {} to {}: {e}",
                record.file,
                self.manifest.path().display()
            );
        }
    }
}

/// The folders a rescue tries: the system's temporary directory, then the user's cache.
fn rescue_roots() -> Vec<PathBuf> {
    let mut roots = vec![std::env::temp_dir().join("genimg-rescue")];
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    if let Some(cache) = cache {
        roots.push(cache.join("genimg").join("rescue"));
    }
    roots
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::catalog::Model;
    use crate::provider;
    use crate::spec::{ImageOptions, ImageSpec};
    use crate::store::names_in;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";
    const JPEG: &[u8] = b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0\xff\xc0\0\x11\x08\0\x01\0\x01\x03\x01\x22\0\x02\x11\x01\x03\x11\x01";

    struct Setup {
        dir: tempfile::TempDir,
        sink: Sink,
    }

    fn setup(roots: Vec<PathBuf>) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let destination = Destination::open(&out).unwrap();
        let manifest = Manifest::open(&destination).unwrap();
        let sink = Sink::new(destination, manifest, None).with_rescue_roots(roots);
        Setup { dir, sink }
    }

    fn record(file: &str) -> Record {
        let spec = ImageSpec::new(
            &Model::lookup("gpt-image-2"),
            "a cat",
            &ImageOptions::default(),
            std::sync::Arc::from([]),
        );
        Record::of(file, None, 1, &spec, &provider::identity(&spec))
    }

    #[test]
    fn bytes_are_judged_by_what_they_are() {
        use ImageFormat::*;
        assert_eq!(Received::of(PNG, Png), Received::Asked(Png));
        assert_eq!(Received::of(PNG, Webp), Received::Other(Png));
        assert_eq!(Received::of(JPEG, Png), Received::Other(Jpeg));
        assert_eq!(Received::of(b"hello", Png), Received::Unrecognised);
        // The magic number alone is not an image: its header must give a size.
        assert_eq!(Received::of(&PNG[..12], Png), Received::Unrecognised);
    }

    #[test]
    fn an_image_in_another_format_is_kept_under_its_own_extension_never_over_another() {
        let s = setup(Vec::new());
        let kept = s
            .sink
            .keep(
                "a.webp",
                Asked {
                    format: ImageFormat::Webp,
                    chosen: true,
                },
                PNG,
                record("a.webp"),
                || {},
            )
            .unwrap();
        assert_eq!(kept.file, "a.png");
        assert_eq!(kept.received, Received::Other(ImageFormat::Png));
        // A second one finds the name taken, and keeps the first.
        let again = s
            .sink
            .keep(
                "a.webp",
                Asked {
                    format: ImageFormat::Webp,
                    chosen: true,
                },
                JPEG,
                record("a.webp"),
                || {},
            )
            .unwrap();
        assert_eq!(again.file, "a.jpeg");
        let third = s
            .sink
            .keep(
                "a.webp",
                Asked {
                    format: ImageFormat::Webp,
                    chosen: true,
                },
                PNG,
                record("a.webp"),
                || {},
            )
            .unwrap();
        assert_eq!(third.file, "a~2.png");
        let out = s.dir.path().join("out");
        assert_eq!(fs::read(out.join("a.png")).unwrap(), PNG);
        let records = manifest::read_records(&out).unwrap();
        assert_eq!(records[0].file, "a.png");
        assert_eq!(records[0].planned_file.as_deref(), Some("a.webp"));
        assert_eq!(records[0].asked_format.as_deref(), Some("webp"));
        assert_eq!(records[0].received_format.as_deref(), Some("png"));
        assert_eq!(records[0].status, Status::Made);
    }

    #[test]
    fn unrecognised_bytes_are_kept_aside() {
        let s = setup(Vec::new());
        let kept = s
            .sink
            .keep(
                "image.a.01.hd.png",
                Asked {
                    format: ImageFormat::Png,
                    chosen: true,
                },
                b"hello",
                record("x"),
                || {},
            )
            .unwrap();
        assert_eq!(kept.file, ".genimg/unrecognised/image.a.01.hd.bin");
        let out = s.dir.path().join("out");
        assert_eq!(fs::read(out.join(&kept.file)).unwrap(), b"hello");
        let r = &manifest::read_records(&out).unwrap()[0];
        assert_eq!(r.received_format.as_deref(), Some("unknown"));
        assert_eq!(r.file, kept.file);
    }

    #[test]
    fn a_rescue_is_unique_to_its_destination_and_never_replaces_an_earlier_one() {
        let roots = tempfile::tempdir().unwrap();
        let s = setup(vec![roots.path().to_owned()]);
        let out = s.dir.path().join("out");
        // A directory in the way of the image's name: the destination will not take it.
        fs::create_dir(out.join("a.png")).unwrap();
        let mut refused = 0;
        let first = s
            .sink
            .keep(
                "a.png",
                Asked {
                    format: ImageFormat::Png,
                    chosen: true,
                },
                PNG,
                record("a.png"),
                || refused += 1,
            )
            .unwrap_err();
        let first = first.rescue.unwrap();
        let second = s
            .sink
            .keep(
                "a.png",
                Asked {
                    format: ImageFormat::Png,
                    chosen: true,
                },
                &[PNG, b"2"].concat(),
                record("a.png"),
                || refused += 1,
            )
            .unwrap_err()
            .rescue
            .unwrap();
        assert_eq!(refused, 2);
        assert_ne!(first, second);
        assert_eq!(fs::read(&first).unwrap(), PNG, "the first rescue is kept");
        assert_eq!(first.parent(), second.parent());
        let folder = first
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        assert!(
            folder.starts_with("out-") && folder.len() == "out-".len() + 12,
            "{folder}"
        );
        let r = &manifest::read_records(&out).unwrap()[0];
        assert_eq!(r.status, Status::Failed);
        assert_eq!(r.rescued.as_deref(), Some(first.to_str().unwrap()));

        // Another destination with the same folder name rescues elsewhere.
        let other = setup(vec![roots.path().to_owned()]);
        let other_out = other.dir.path().join("out");
        fs::create_dir(other_out.join("a.png")).unwrap();
        let elsewhere = other
            .sink
            .keep(
                "a.png",
                Asked {
                    format: ImageFormat::Png,
                    chosen: true,
                },
                PNG,
                record("a.png"),
                || {},
            )
            .unwrap_err()
            .rescue
            .unwrap();
        assert_ne!(elsewhere.parent(), first.parent());
    }

    #[test]
    fn a_rescue_is_named_after_what_the_bytes_are() {
        let roots = tempfile::tempdir().unwrap();
        let s = setup(vec![roots.path().to_owned()]);
        // Nothing can be written in the destination at all: a file took its place.
        let out = s.dir.path().join("out");
        fs::remove_dir_all(&out).unwrap();
        fs::write(&out, b"in the way").unwrap();
        let rescued = |bytes: &[u8], planned: &str, asked| {
            s.sink
                .keep(planned, asked, bytes, record(planned), || {})
                .unwrap_err()
                .rescue
                .unwrap()
        };
        let other = rescued(
            PNG,
            "a.webp",
            Asked {
                format: ImageFormat::Webp,
                chosen: true,
            },
        );
        assert_eq!(other.file_name().unwrap(), "a.png");
        let unknown = rescued(
            b"BM: no image genimg knows",
            "b.png",
            Asked {
                format: ImageFormat::Png,
                chosen: true,
            },
        );
        assert_eq!(unknown.file_name().unwrap(), "b.bin");
    }

    #[test]
    fn an_image_that_could_not_be_replaced_is_not_counted_in_the_trash() {
        let s = setup(Vec::new());
        let out = s.dir.path().join("out");
        fs::write(out.join("a.png"), b"old").unwrap();
        let failed = s
            .sink
            .replace_by("a.png", || Err(io::Error::other("no room")))
            .unwrap_err();
        assert_eq!(failed.to_string(), "no room");
        assert_eq!(fs::read(out.join("a.png")).unwrap(), b"old");
        assert!(s.sink.trash().report().is_none(), "nothing was moved");
        let root = out.join(crate::store::trash::DIR);
        assert!(
            names_in(&root).is_empty(),
            "no link, no empty folder left behind"
        );
        // Written, it is.
        s.sink
            .replace_by("a.png", || {
                fs::write(out.join("a.png.new"), b"new")?;
                fs::rename(out.join("a.png.new"), out.join("a.png"))?;
                Ok(out.join("a.png"))
            })
            .unwrap();
        let report = s.sink.trash().report().unwrap();
        assert_eq!(report.files, ["a.png"]);
        assert_eq!(
            fs::read(Path::new(&report.folder).join("a.png")).unwrap(),
            b"old"
        );
    }

    #[test]
    fn with_no_room_anywhere_the_failure_says_so_and_leaves_nothing() {
        let places = tempfile::tempdir().unwrap();
        // Files, not folders: nothing can be made under them.
        let roots: Vec<PathBuf> = ["tmp", "cache"]
            .iter()
            .map(|n| {
                let p = places.path().join(n);
                fs::write(&p, b"").unwrap();
                p
            })
            .collect();
        let s = setup(roots);
        let out = s.dir.path().join("out");
        fs::create_dir(out.join("a.png")).unwrap();
        let not_kept = s
            .sink
            .keep(
                "a.png",
                Asked {
                    format: ImageFormat::Png,
                    chosen: true,
                },
                PNG,
                record("a.png"),
                || {},
            )
            .unwrap_err();
        let why = not_kept.rescue.as_ref().unwrap_err();
        assert!(why.starts_with("no room anywhere"), "{why}");
        assert!(not_kept.reason().contains("no room anywhere"));
        assert_eq!(names_in(places.path()), ["cache", "tmp"]);
        assert_eq!(
            names_in(&out),
            [".genimg.lock", "a.png", manifest::FILE_NAME],
            "nothing under an image name, no temporary file"
        );
        assert!(names_in(&out.join("a.png")).is_empty());
    }
}
