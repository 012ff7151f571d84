//! The destination directory: atomic writes, what is already there, and the run lock.
//!
//! An image is written to a temporary file in the destination, fsynced, then renamed to its
//! final name, so a final name only ever holds a whole image. Temporary files are named
//! `.genimg-*.tmp`; any left by a killed run are removed by the next one, which holds the lock
//! and so knows no other run is writing them.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::config::Existing;
use crate::plan::{FileKey, Found, Plan, Survey};
use crate::store::manifest::{self, History};

use super::atomic::{self, Exists, TEMP_PREFIX, TEMP_SUFFIX};

const LOCK_FILE: &str = ".genimg.lock";

/// A destination that cannot be used: exit code 2, before any request.
#[derive(Debug, Error)]
pub enum OutputError {
    #[error("--dst-dir {path}: cannot create the directory: {source}")]
    Create { path: String, source: io::Error },
    #[error("--dst-dir {path}: is not a directory")]
    NotADirectory { path: String },
    /// `link` is the part of the path that is the link, when it is not the whole path.
    #[error(
        "--dst-dir {path}: {}is a broken symbolic link (it points at {target}, which does not \
         exist)",
        link.as_ref().map(|l| format!("{l} ")).unwrap_or_default()
    )]
    BrokenLink {
        path: String,
        link: Option<String>,
        target: String,
    },
    #[error("--dst-dir {path}: cannot write there: {source}")]
    NotWritable { path: String, source: io::Error },
    #[error("--dst-dir {path}: cannot read the directory: {source}")]
    List { path: String, source: io::Error },
    #[error(
        "--dst-dir {path}: another genimg run{} is writing there; wait for it to finish or \
         choose another --dst-dir",
        holder.map(|pid| format!(" (process {pid})")).unwrap_or_default()
    )]
    Locked { path: String, holder: Option<u32> },
    #[error("--from-scratch: cannot move {path} to the trash: {source}")]
    Trash { path: String, source: io::Error },
    #[error("{path}: cannot read or write the manifest: {source}")]
    Manifest { path: String, source: io::Error },
}

/// An open destination, locked against other genimg runs for as long as it lives.
#[derive(Debug)]
pub struct Destination {
    dir: PathBuf,
    _lock: Lock,
}

impl Destination {
    /// Creates the directory with its parents, takes the lock, checks that files can be
    /// written there, and clears temporary files a killed run left behind.
    pub fn open(dir: &Path) -> Result<Destination, OutputError> {
        let shown = dir.display().to_string();
        if dir.exists() && !dir.is_dir() {
            return Err(OutputError::NotADirectory { path: shown });
        }
        fs::create_dir_all(dir).map_err(|source| match broken_link(dir) {
            Some((link, target)) => OutputError::BrokenLink {
                path: shown.clone(),
                link: (link != dir).then(|| link.display().to_string()),
                target: target.display().to_string(),
            },
            None => OutputError::Create {
                path: shown.clone(),
                source,
            },
        })?;
        let not_writable = |source| OutputError::NotWritable {
            path: shown.clone(),
            source,
        };
        let lock = Lock::take(dir)?;

        let destination = Destination {
            dir: dir.to_owned(),
            _lock: lock,
        };
        destination.remove_stale_temporaries();
        // Proves an image can be written, before any request is paid for.
        destination.temp_file().map_err(not_writable)?;
        Ok(destination)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn temp_file(&self) -> io::Result<tempfile::NamedTempFile> {
        atomic::temp_file(&self.dir)
    }

    /// Removes the temporary files a killed run left, in the destination and in the folder
    /// it keeps unrecognised answers in.
    fn remove_stale_temporaries(&self) {
        for dir in [
            self.dir.clone(),
            self.dir.join(super::sink::UNRECOGNISED_DIR),
        ] {
            remove_temporaries_in(&dir);
        }
    }

    /// Writes `bytes` under `file_name` atomically (see [`atomic::write`]), replacing what
    /// was there.
    pub fn write_atomic(&self, file_name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
        atomic::write(&self.dir.join(file_name), bytes, Exists::Replace)
    }

    /// Writes `bytes` under a path relative to the destination (in a folder genimg keeps,
    /// such as `.genimg/unrecognised/`), creating the folder, never replacing a file.
    pub fn write_new(&self, relative: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
        let path = self.dir.join(relative);
        if let Some(parent) = path.parent() {
            // A file in the way of the folder says "exists" too: that is no taken name.
            fs::create_dir_all(parent).map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => io::Error::new(io::ErrorKind::NotADirectory, e),
                _ => e,
            })?;
        }
        atomic::write(&path, bytes, Exists::Keep)
    }
}

/// Removes the `.genimg-*.tmp` files in `dir`: only the run holding the lock writes them, so
/// any there when it starts were left by a run that was killed.
fn remove_temporaries_in(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX) {
            match fs::remove_file(entry.path()) {
                Ok(()) => tracing::info!("removed {name}, left by an interrupted run"),
                Err(e) => tracing::warn!("could not remove {name}: {e}"),
            }
        }
    }
}

/// The first part of `dir` (the whole of it, or a parent) that is a symbolic link to
/// nothing, and where that link points: what makes "cannot create the directory" say
/// "File exists".
fn broken_link(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    dir.ancestors()
        .filter(|p| !p.as_os_str().is_empty())
        .find_map(|p| {
            let is_link = fs::symlink_metadata(p).ok()?.file_type().is_symlink();
            let dangles = fs::metadata(p).is_err_and(|e| e.kind() == io::ErrorKind::NotFound);
            if is_link && dangles {
                Some((p.to_owned(), fs::read_link(p).ok()?))
            } else {
                None
            }
        })
}

/// A destination's lock, held for as long as it lives: while one genimg process holds it, no
/// other writes there.
#[derive(Debug)]
pub struct Lock {
    /// Holds an OS lock, released by the OS however the process ends, so a run killed with
    /// `kill -9` never blocks the next one.
    _file: File,
}

impl Lock {
    /// Takes the lock of the existing directory `dir` without waiting, creating nothing but
    /// its lock file: `Locked` while another process holds it.
    pub fn take(dir: &Path) -> Result<Lock, OutputError> {
        let shown = dir.display().to_string();
        let not_writable = |source| OutputError::NotWritable {
            path: shown.clone(),
            source,
        };
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))
            .map_err(not_writable)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = lock.read_to_string(&mut text);
                return Err(OutputError::Locked {
                    path: shown,
                    holder: text.trim().parse().ok(),
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(not_writable(e)),
        }
        // The holder's process id, for the message another run shows.
        lock.set_len(0)
            .and_then(|()| lock.rewind())
            .and_then(|()| writeln!(lock, "{}", std::process::id()))
            .map_err(not_writable)?;
        Ok(Lock { _file: lock })
    }
}

/// Looks at what the destination holds, without changing anything (a dry run uses it too):
/// which planned files are there already and whether they are stale (the manifest says they
/// came from another request), and which files `--from-scratch` would remove.
pub fn survey(plan: &Plan, existing: Existing) -> Result<Survey, OutputError> {
    let present = list_files(&plan.dst_dir)?;
    let history = History::read(&plan.dst_dir).map_err(|source| OutputError::Manifest {
        path: plan.dst_dir.join(manifest::FILE_NAME).display().to_string(),
        source,
    })?;
    let removals = if existing == Existing::Remove {
        let mut names: Vec<String> = present
            .iter()
            .filter_map(|n| n.to_str())
            .filter(|n| plan.owns(n, &history))
            .map(str::to_owned)
            // Images of these prompts kept under another name than planned go too.
            .chain(
                history
                    .kept_files(|planned| plan.namer.is_ours(planned))
                    .filter(|file| plan.made_by_us(file, &history))
                    .filter(|file| dir_has(&plan.dst_dir, file))
                    .map(str::to_owned),
            )
            .collect();
        names.sort();
        names.dedup();
        names
    } else {
        Vec::new()
    };
    // Images kept under another name than planned, by what their planned name says,
    // whatever the width of its numbers.
    let kept_by_key: HashMap<FileKey, (&str, &str)> = history
        .kept()
        .filter(|(_, file, _)| dir_has(&plan.dst_dir, file))
        .filter_map(|(planned, file, hash)| Some((plan.namer.key(planned)?, (file, hash))))
        .collect();
    // Files of this run's prompts by what they are, whatever the width of their numbers.
    let by_key: HashMap<FileKey, String> = if existing == Existing::Remove {
        HashMap::new()
    } else {
        present
            .iter()
            .filter_map(|n| n.to_str())
            .filter_map(|n| Some((plan.namer.key(n)?, n.to_owned())))
            .collect()
    };
    let mut found = Vec::with_capacity(plan.jobs.len());
    let mut aliases = Vec::with_capacity(plan.jobs.len());
    let mut kept = Vec::with_capacity(plan.jobs.len());
    for job in &plan.jobs {
        let name = if existing == Existing::Remove {
            None
        } else if present.contains(&OsString::from(&job.file_name)) {
            Some(job.file_name.clone())
        } else {
            by_key.get(&plan.namer.key_of(job)).cloned()
        };
        let judge = |hash: Option<&str>| match hash {
            Some(hash) if !job.prompt.identity().matches(hash) => Found::Stale,
            _ => Found::Current,
        };
        // Kept under another name by an earlier run, as its bytes were in another format
        // than asked: it was paid for, so it is not bought again.
        let kept_as = match (&name, existing) {
            (None, Existing::Keep | Existing::Overwrite | Existing::RemakeStale) => {
                kept_by_key.get(&plan.namer.key_of(job)).copied()
            }
            _ => None,
        };
        found.push(match (&name, kept_as) {
            (Some(name), _) => judge(history.made_from(name)),
            (None, Some((_, hash))) => judge(Some(hash)),
            (None, None) => Found::Missing,
        });
        kept.push(kept_as.map(|(file, _)| file.to_owned()));
        aliases.push(name.filter(|n| *n != job.file_name));
    }
    Ok(Survey {
        found,
        existing,
        removals,
        aliases,
        kept,
        held: Vec::new(),
    })
}

/// Whether `relative` names a regular file inside `dir` (never outside it).
fn dir_has(dir: &Path, relative: &str) -> bool {
    let path = Path::new(relative);
    path.is_relative()
        && path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
        && dir.join(path).is_file()
}

/// The names of the regular files in `dir`; none if it does not exist yet.
fn list_files(dir: &Path) -> Result<HashSet<OsString>, OutputError> {
    let fail = |source| OutputError::List {
        path: dir.display().to_string(),
        source,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
            return Err(OutputError::NotADirectory {
                path: dir.display().to_string(),
            });
        }
        Err(e) => return Err(fail(e)),
    };
    let mut names = HashSet::new();
    for entry in entries {
        let entry = entry.map_err(fail)?;
        if entry.file_type().map_err(fail)?.is_file() {
            names.insert(entry.file_name());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::names_in;

    #[test]
    fn creates_the_directory_with_parents() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/c");
        Destination::open(&dir).unwrap();
        assert!(dir.is_dir());
    }

    #[test]
    fn writes_atomically_and_leaves_no_temporary_file() {
        let tmp = tempfile::tempdir().unwrap();
        let d = Destination::open(tmp.path()).unwrap();
        let path = d.write_atomic("image_01_hd.png", b"bytes").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"bytes");
        d.write_atomic("image_01_hd.png", b"new bytes").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new bytes");
        assert_eq!(names_in(tmp.path()), [LOCK_FILE, "image_01_hd.png"]);
    }

    #[test]
    fn a_reader_never_sees_a_partial_image() {
        let tmp = tempfile::tempdir().unwrap();
        let d = Destination::open(tmp.path()).unwrap();
        let old = vec![b'o'; 4 << 20];
        let new = vec![b'n'; 4 << 20];
        d.write_atomic("image_01_hd.png", &old).unwrap();
        let path = tmp.path().join("image_01_hd.png");
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for i in 0..20 {
                    let bytes = if i % 2 == 0 { &new } else { &old };
                    d.write_atomic("image_01_hd.png", bytes).unwrap();
                }
                done.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) || reads == 0 {
                let seen = fs::read(&path).unwrap();
                assert!(
                    seen == old || seen == new,
                    "a partial image of {} bytes",
                    seen.len()
                );
                reads += 1;
            }
        });
    }

    #[cfg(unix)]
    #[test]
    fn images_get_ordinary_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let d = Destination::open(tmp.path()).unwrap();
        let path = d.write_atomic("x.png", b"x").unwrap();
        let mode = fs::metadata(path).unwrap().permissions().mode();
        assert_ne!(
            mode & 0o044,
            0,
            "readable beyond the owner under a usual umask: {mode:o}"
        );
    }

    #[test]
    fn a_second_run_is_locked_out_and_told_who_holds_the_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let _first = Destination::open(tmp.path()).unwrap();
        let err = Destination::open(tmp.path()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("process {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains("another genimg run"), "{msg}");
    }

    #[test]
    fn the_lock_is_released_when_the_run_ends() {
        let tmp = tempfile::tempdir().unwrap();
        drop(Destination::open(tmp.path()).unwrap());
        Destination::open(tmp.path()).unwrap();
    }

    #[test]
    fn temporaries_left_in_the_unrecognised_folder_are_removed_too() {
        let tmp = tempfile::tempdir().unwrap();
        let kept = tmp.path().join(crate::store::sink::UNRECOGNISED_DIR);
        fs::create_dir_all(&kept).unwrap();
        fs::write(kept.join(".genimg-abc.tmp"), b"half").unwrap();
        fs::write(kept.join("image.a.01.hd.bin"), b"kept").unwrap();
        Destination::open(tmp.path()).unwrap();
        assert_eq!(names_in(&kept), ["image.a.01.hd.bin"]);
    }

    #[test]
    fn temporaries_left_by_a_killed_run_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(".genimg-abc123.tmp"), b"half an image").unwrap();
        fs::write(tmp.path().join("keep.tmp"), b"user file").unwrap();
        Destination::open(tmp.path()).unwrap();
        assert_eq!(names_in(tmp.path()), [LOCK_FILE, "keep.tmp"]);
    }

    #[test]
    fn a_file_in_the_way_is_not_a_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        fs::write(&file, b"").unwrap();
        assert!(matches!(
            Destination::open(&file),
            Err(OutputError::NotADirectory { .. })
        ));
        assert!(matches!(
            Destination::open(&file.join("sub")),
            Err(OutputError::Create { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn a_broken_symbolic_link_is_named_with_where_it_points() {
        let tmp = tempfile::tempdir().unwrap();
        let link = tmp.path().join("images");
        let target = tmp.path().join("gone/images");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = Destination::open(&link).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "--dst-dir {}: is a broken symbolic link (it points at {}, which does not exist)",
                link.display(),
                target.display()
            )
        );
        // A broken link further up the path is named too.
        let err = Destination::open(&link.join("2026")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "--dst-dir {}/2026: {} is a broken symbolic link (it points at {}, which does \
                 not exist)",
                link.display(),
                link.display(),
                target.display()
            )
        );
        assert!(!target.exists(), "nothing is created where the link points");
    }
}
