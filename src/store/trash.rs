//! The trash: where genimg puts the images it would otherwise delete or replace.
//!
//! Every image was paid for, so none is deleted: `--from-scratch` moves the run's earlier
//! images to `DIR/.genimg/trash/<time>/` before it starts, and an image made again
//! (`--overwrite`, `--remake-stale`, a collected batch) sends the one it replaces there once
//! its new image is about to take its name. Each run has a folder of its own, made when the
//! first file goes in, laid out as the destination is (the same relative paths), with a
//! `genimg.jsonl` holding the moved images' manifest records. `genimg trash empty DIR`
//! deletes the lot.
//!
//! A crash at any point loses nothing: an image is always under its own name or in the trash
//! (a move is one rename; a replaced image is linked or copied into the trash before the new
//! one is renamed over it), and its records are in the live manifest or the trash's, or both.
//! Files go first, then the trash's manifest, and the live manifest is changed last.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Deserialize;

use super::atomic::{self, Exists};
use super::manifest;
use crate::outcome::Trashed;

/// The trash, in the destination.
pub const DIR: &str = ".genimg/trash";

/// How many names a folder or a file in the trash may try before giving up.
const MAX_NAMES: u32 = 1000;

/// The trash of one run in a locked destination.
#[derive(Debug)]
pub struct Trash {
    /// The destination.
    dir: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// This run's folder, once made.
    folder: Option<PathBuf>,
    /// What went in, relative to the folder.
    files: Vec<String>,
    records: usize,
    /// Where each file's records are in the live manifest as it was when the run opened it
    /// (its earlier runs' lines), read when the first image is replaced.
    index: Option<HashMap<String, Vec<Range<u64>>>>,
    /// Lines of the live manifest copied to the trash's, of images a new one has replaced:
    /// they leave the live one at the end.
    copied: Vec<Range<u64>>,
}

/// An image linked into the trash before a new one takes its name: it counts as moved, with
/// its records, once the new image has the name ([`Trash::replaced`]); if the new image
/// could not be written, the link goes again ([`Trash::abandon`]).
#[derive(Debug)]
#[must_use]
pub struct Replaced {
    /// The image's name in the destination.
    file: String,
    /// Its link in the trash, and the same relative to the run's folder.
    link: PathBuf,
    in_trash: String,
    /// Its records, as they go into the trash's manifest.
    lines: Vec<Vec<u8>>,
    /// Where those records are in the live manifest: they leave it at the end.
    ranges: Vec<Range<u64>>,
}

/// A line of the manifest, as far as the trash is concerned.
#[derive(Deserialize)]
struct Line {
    file: String,
}

impl Trash {
    /// The trash of the destination `dir`, which the caller holds locked. Nothing is made
    /// until a file goes in.
    pub fn new(dir: &Path) -> Trash {
        Trash {
            dir: dir.to_owned(),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This run's folder, made on first use: `2026-12-02T031500Z`, or `...Z-02`, `...Z-03`
    /// for another run in the same second.
    fn folder(state: &mut State, dir: &Path) -> io::Result<PathBuf> {
        if let Some(folder) = &state.folder {
            return Ok(folder.clone());
        }
        let root = dir.join(DIR);
        fs::create_dir_all(&root)?;
        let stamp = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H%M%SZ")
            .to_string();
        for n in 1..=MAX_NAMES {
            let folder = match n {
                1 => root.join(&stamp),
                n => root.join(format!("{stamp}-{n:02}")),
            };
            match fs::create_dir(&folder) {
                Ok(()) => {
                    atomic::sync_dir(&root);
                    state.folder = Some(folder.clone());
                    return Ok(folder);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(format!(
            "{MAX_NAMES} trash folders of {stamp} are taken already"
        )))
    }

    /// Moves `files` (relative to the destination) into this run's folder, each by one
    /// rename, for `--from-scratch`. A file already gone is passed over. Returns how many
    /// went. All or nothing: on an error, those moved before it are put back (and the error
    /// says so, or where those that could not be are).
    pub fn move_files(&self, files: &[String]) -> Result<usize, (String, io::Error)> {
        let mut state = self.state();
        let mut moved: Vec<(PathBuf, PathBuf)> = Vec::new();
        let mut failed = None;
        for file in files {
            let from = self.dir.join(file);
            let step = (|| {
                match fs::symlink_metadata(&from) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(e),
                    Ok(_) => {}
                }
                let folder = Self::folder(&mut state, &self.dir)?;
                let to = free_name(&folder, file)?;
                move_file(&from, &to)?;
                Ok(Some(to))
            })();
            match step {
                Ok(Some(to)) => moved.push((from, to)),
                Ok(None) => {}
                Err(e) => {
                    failed = Some((file.clone(), e));
                    break;
                }
            }
        }
        if !moved.is_empty() {
            atomic::sync_dir(&self.dir);
        }
        let Some((file, error)) = failed else {
            let folder = state.folder.clone().unwrap_or_default();
            let count = moved.len();
            for (_, to) in moved {
                state.files.push(relative(&folder, &to));
            }
            return Ok(count);
        };
        // Put back what went before it, last first.
        let mut stuck = 0;
        while let Some((from, to)) = moved.pop() {
            if move_file(&to, &from).is_err() {
                stuck += 1;
                let folder = state.folder.clone().unwrap_or_default();
                state.files.push(relative(&folder, &to));
            }
        }
        atomic::sync_dir(&self.dir);
        let after = if stuck == 0 {
            Self::drop_empty_folder(&mut state);
            "nothing was moved".to_owned()
        } else {
            format!(
                "{stuck} file(s) moved before it could not be put back, and are in {}",
                state.folder.as_deref().unwrap_or(Path::new(DIR)).display()
            )
        };
        Err((
            file,
            io::Error::new(error.kind(), format!("{error}; {after}")),
        ))
    }

    /// This run's folder goes if nothing went into it after all.
    fn drop_empty_folder(state: &mut State) {
        if state.files.is_empty()
            && state.records == 0
            && let Some(folder) = state.folder.take()
            && fs::remove_dir(&folder).is_err()
        {
            // Not empty after all: it stays this run's.
            state.folder = Some(folder);
        }
    }

    /// Adds manifest lines (each without its newline) to the trash's manifest.
    pub fn add_records(&self, lines: &[Vec<u8>]) -> io::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut state = self.state();
        let folder = Self::folder(&mut state, &self.dir)?;
        append_lines(&folder, lines.iter().map(Vec::as_slice))?;
        state.records += lines.len();
        Ok(())
    }

    /// Links the image at `file` (relative to the destination) into the trash before a new
    /// image takes its name, and reads its records from the live manifest at `manifest`, of
    /// which the first `prior` bytes were there before this run. The image stays where it
    /// is (it is linked, or copied): the caller renames the new one over it, then hands what
    /// this returns to [`Trash::replaced`] (the records go to the trash's manifest, and
    /// leave the live one at the end), or, if the new image could not be written, to
    /// [`Trash::abandon`]. A name holding no regular file needs nothing, and gives `None`.
    pub fn keep_replaced(
        &self,
        file: &str,
        manifest: &Path,
        prior: u64,
    ) -> io::Result<Option<Replaced>> {
        let path = self.dir.join(file);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        }
        let mut state = self.state();
        let folder = Self::folder(&mut state, &self.dir)?;
        let to = free_name(&folder, file)?;
        if fs::hard_link(&path, &to).is_err() {
            // A file system without hard links: a copy, written whole or not at all.
            atomic::write(&to, &fs::read(&path)?, Exists::Keep)?;
        }
        if let Some(parent) = to.parent() {
            atomic::sync_dir(parent);
        }
        let in_trash = relative(&folder, &to);
        // Its records, as the live manifest had them before this run: they leave the index
        // only once read, so that a failure leaves them for a later try.
        let read = (|| {
            if state.index.is_none() {
                state.index = Some(index_lines(manifest, prior)?);
            }
            let ranges = state
                .index
                .as_ref()
                .and_then(|index| index.get(file).cloned())
                .unwrap_or_default();
            let lines = read_ranges(manifest, &ranges)?;
            Ok::<_, io::Error>((ranges, lines))
        })();
        let (ranges, mut lines) = match read {
            Ok(read) => read,
            Err(e) => {
                let _ = fs::remove_file(&to);
                return Err(e);
            }
        };
        if let Some(index) = state.index.as_mut() {
            index.remove(file);
        }
        if in_trash != file {
            // A second image of this name in this run's trash: the records say which.
            for line in &mut lines {
                rename_in_line(line, &in_trash);
            }
        }
        Ok(Some(Replaced {
            file: file.to_owned(),
            link: to,
            in_trash,
            lines,
            ranges,
        }))
    }

    /// The new image has taken the name of the one [`Trash::keep_replaced`] linked: that one
    /// is in the trash now, its records go to the trash's manifest, and leave the live one
    /// at the end. If the trash's manifest cannot take them, they stay in the live one.
    pub fn replaced(&self, replaced: Replaced) -> io::Result<()> {
        let mut state = self.state();
        state.files.push(replaced.in_trash);
        if replaced.lines.is_empty() {
            return Ok(());
        }
        let folder = Self::folder(&mut state, &self.dir)?;
        append_lines(&folder, replaced.lines.iter().map(Vec::as_slice))?;
        state.records += replaced.lines.len();
        state.copied.extend(replaced.ranges);
        Ok(())
    }

    /// The new image could not take the name of the one [`Trash::keep_replaced`] linked:
    /// that one stays where it is, and its link leaves the trash (a link that cannot go
    /// stays, counted as what it is: a copy in the trash).
    pub fn abandon(&self, replaced: Replaced) {
        let mut state = self.state();
        if fs::remove_file(&replaced.link).is_err() {
            state.files.push(replaced.in_trash);
        } else {
            Self::drop_empty_folder(&mut state);
        }
        if let Some(index) = state.index.as_mut()
            && !replaced.ranges.is_empty()
        {
            index.insert(replaced.file, replaced.ranges);
        }
    }

    /// Where the records copied to the trash are in the live manifest, for it to drop them
    /// (see [`manifest::Manifest::drop_ranges`]); each is handed over once.
    pub fn take_copied(&self) -> Vec<Range<u64>> {
        std::mem::take(&mut self.state().copied)
    }

    /// What went in, if anything: for the summary and `--json`.
    pub fn report(&self) -> Option<Trashed> {
        let state = self.state();
        let folder = state.folder.as_ref()?;
        (!state.files.is_empty() || state.records > 0).then(|| Trashed {
            files: state.files.clone(),
            records: state.records,
            folder: folder.display().to_string(),
            dst_dir: self.dir.display().to_string(),
        })
    }
}

/// Where `file` goes in `folder`: the same relative path, or `stem~2.ext`... beside it when
/// that is taken. Its parent folders are made.
fn free_name(folder: &Path, file: &str) -> io::Result<PathBuf> {
    let first = folder.join(file);
    if let Some(parent) = first.parent() {
        fs::create_dir_all(parent)?;
    }
    let (stem, ext) = match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !ext.contains('/') => {
            (stem.to_owned(), format!(".{ext}"))
        }
        _ => (file.to_owned(), String::new()),
    };
    for n in 1..=MAX_NAMES {
        let path = match n {
            1 => first.clone(),
            n => folder.join(format!("{stem}~{n}{ext}")),
        };
        if fs::symlink_metadata(&path).is_err() {
            return Ok(path);
        }
    }
    Err(io::Error::other(format!(
        "{MAX_NAMES} names of {file} are taken in the trash already"
    )))
}

/// Moves a file by one rename; across file systems (a `.genimg` that is a link elsewhere),
/// by a whole copy first and then the removal of the original.
fn move_file(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
            atomic::write(to, &fs::read(from)?, Exists::Keep)?;
            fs::remove_file(from)
        }
        Err(e) => Err(e),
    }
    .inspect(|()| {
        if let Some(parent) = to.parent() {
            atomic::sync_dir(parent);
        }
    })
}

/// `path` relative to `folder`, with `/` between its parts.
fn relative(folder: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(folder).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Appends lines to the manifest in `folder`, made if need be, and syncs it.
fn append_lines<'a>(folder: &Path, lines: impl Iterator<Item = &'a [u8]>) -> io::Result<()> {
    let mut text = Vec::new();
    for line in lines {
        text.extend_from_slice(line);
        text.push(b'\n');
    }
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(folder.join(manifest::FILE_NAME))?;
    file.write_all(&text)?;
    file.sync_all()
}

/// Where the lines of each file are among the first `prior` bytes of the manifest at `path`.
fn index_lines(path: &Path, prior: u64) -> io::Result<HashMap<String, Vec<Range<u64>>>> {
    let mut index: HashMap<String, Vec<Range<u64>>> = HashMap::new();
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(index),
        Err(e) => return Err(e),
    };
    let mut reader = BufReader::new(file.take(prior));
    let mut at = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)? as u64;
        if n == 0 {
            break;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if let Ok(Line { file }) = serde_json::from_slice::<Line>(text) {
            index
                .entry(file)
                .or_default()
                .push(at..at + text.len() as u64);
        }
        at += n;
    }
    Ok(index)
}

/// The bytes of the manifest at `path` in each of `ranges`.
fn read_ranges(path: &Path, ranges: &[Range<u64>]) -> io::Result<Vec<Vec<u8>>> {
    if ranges.is_empty() {
        return Ok(Vec::new());
    }
    let mut file = File::open(path)?;
    ranges
        .iter()
        .map(|r| {
            file.seek(SeekFrom::Start(r.start))?;
            let mut bytes = vec![0; (r.end - r.start) as usize];
            file.read_exact(&mut bytes)?;
            Ok(bytes)
        })
        .collect()
}

/// Sets a record's `file` to `file`, keeping the rest of it.
fn rename_in_line(line: &mut Vec<u8>, file: &str) {
    if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(line) {
        value["file"] = file.into();
        if let Ok(text) = serde_json::to_vec(&value) {
            *line = text;
        }
    }
}

/// What the trash of `dir` holds: each run's folder with its files and their bytes, oldest
/// first.
pub fn list(dir: &Path) -> io::Result<Vec<(String, u64, u64)>> {
    let root = dir.join(DIR);
    let entries = match fs::read_dir(&root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut folders = Vec::new();
    for entry in entries {
        let entry = entry?;
        let (files, bytes) = measure(&entry.path())?;
        folders.push((
            entry.file_name().to_string_lossy().into_owned(),
            files,
            bytes,
        ));
    }
    folders.sort();
    Ok(folders)
}

/// Deletes the trash of `dir` (the caller holds the destination locked): how many files went,
/// and their bytes. No trash is nothing to delete.
pub fn empty(dir: &Path) -> io::Result<(u64, u64)> {
    let root = dir.join(DIR);
    if !root.exists() {
        return Ok((0, 0));
    }
    let measured = measure(&root)?;
    fs::remove_dir_all(&root)?;
    Ok(measured)
}

/// The files under `path` (itself, if it is one) and their bytes; links are not followed.
fn measure(path: &Path) -> io::Result<(u64, u64)> {
    let meta = fs::symlink_metadata(path)?;
    if !meta.is_dir() {
        return Ok((1, meta.len()));
    }
    let mut seen = HashSet::new();
    let mut total = (0, 0);
    let mut todo = vec![path.to_owned()];
    while let Some(dir) = todo.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                if seen.insert(entry.path()) {
                    todo.push(entry.path());
                }
            } else {
                total.0 += 1;
                total.1 += meta.len();
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::names_in;

    #[test]
    fn a_moved_file_keeps_its_path_and_a_second_run_gets_a_folder_of_its_own() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join(".genimg/unrecognised")).unwrap();
        fs::write(tmp.path().join("a.png"), b"a").unwrap();
        fs::write(tmp.path().join(".genimg/unrecognised/b.bin"), b"b").unwrap();
        let first = Trash::new(tmp.path());
        let files = [
            "a.png".to_owned(),
            ".genimg/unrecognised/b.bin".to_owned(),
            "gone.png".to_owned(),
        ];
        assert_eq!(first.move_files(&files).unwrap(), 2);
        let report = first.report().unwrap();
        assert_eq!(report.files, ["a.png", ".genimg/unrecognised/b.bin"]);
        let folder = PathBuf::from(&report.folder);
        assert_eq!(fs::read(folder.join("a.png")).unwrap(), b"a");
        assert_eq!(
            fs::read(folder.join(".genimg/unrecognised/b.bin")).unwrap(),
            b"b"
        );
        assert!(!tmp.path().join("a.png").exists());

        fs::write(tmp.path().join("a.png"), b"a2").unwrap();
        let second = Trash::new(tmp.path());
        second.move_files(&["a.png".to_owned()]).unwrap();
        let other = PathBuf::from(second.report().unwrap().folder);
        assert_ne!(other, folder);
        assert_eq!(names_in(&tmp.path().join(DIR)).len(), 2);
        assert_eq!(list(tmp.path()).unwrap().len(), 2);
        assert_eq!(empty(tmp.path()).unwrap(), (3, 4));
        assert!(!tmp.path().join(DIR).exists());
        assert_eq!(empty(tmp.path()).unwrap(), (0, 0));
    }

    #[test]
    fn a_move_that_fails_midway_puts_back_what_it_moved() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("a.png"), b"a").unwrap();
        fs::write(tmp.path().join("b.png"), b"b").unwrap();
        fs::write(tmp.path().join("c.png"), b"c").unwrap();
        let trash = Trash::new(tmp.path());
        // The third cannot be reached: its "folder" is a file.
        let files = ["a.png", "b.png", "c.png/x.png"].map(String::from);
        let (file, error) = trash.move_files(&files).unwrap_err();
        assert_eq!(file, "c.png/x.png");
        assert!(
            error.to_string().ends_with("; nothing was moved"),
            "{error}"
        );
        for name in ["a.png", "b.png"] {
            assert_eq!(
                fs::read(tmp.path().join(name)).unwrap(),
                &name.as_bytes()[..1]
            );
        }
        assert!(trash.report().is_none());
        assert!(
            fs::read_dir(tmp.path().join(DIR)).unwrap().next().is_none(),
            "no folder left"
        );
        // Without it, they go.
        assert_eq!(trash.move_files(&files[..2]).unwrap(), 2);
        assert_eq!(trash.report().unwrap().files, ["a.png", "b.png"]);
    }

    #[test]
    fn nothing_moved_makes_no_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let trash = Trash::new(tmp.path());
        assert_eq!(trash.move_files(&["gone.png".to_owned()]).unwrap(), 0);
        assert!(
            trash
                .keep_replaced("gone.png", &tmp.path().join("m"), 0)
                .unwrap()
                .is_none()
        );
        assert!(trash.report().is_none());
        assert!(!tmp.path().join(".genimg").exists());
    }

    #[test]
    fn an_image_not_replaced_after_all_leaves_no_trace_in_the_trash() {
        let tmp = tempfile::tempdir().unwrap();
        let manifest = tmp.path().join(manifest::FILE_NAME);
        let before = "{\"file\":\"a.png\",\"n\":1}\n";
        fs::write(&manifest, before).unwrap();
        fs::write(tmp.path().join("a.png"), b"old").unwrap();
        let trash = Trash::new(tmp.path());
        let kept = trash
            .keep_replaced("a.png", &manifest, before.len() as u64)
            .unwrap()
            .unwrap();
        let link = kept.link.clone();
        assert_eq!(fs::read(&link).unwrap(), b"old");
        // The new image could not be written.
        trash.abandon(kept);
        assert!(!link.exists(), "the link goes");
        assert_eq!(fs::read(tmp.path().join("a.png")).unwrap(), b"old");
        assert!(trash.report().is_none(), "nothing moved, no record copied");
        assert!(trash.take_copied().is_empty());
        assert!(!link.parent().unwrap().join(manifest::FILE_NAME).exists());
        // Tried again, its records are found again.
        let again = trash
            .keep_replaced("a.png", &manifest, before.len() as u64)
            .unwrap()
            .unwrap();
        assert_eq!(again.lines, [before.trim_end().as_bytes()]);
        trash.replaced(again).unwrap();
        let report = trash.report().unwrap();
        assert_eq!((report.files.len(), report.records), (1, 1));
    }

    #[test]
    fn a_replaced_image_stays_in_place_and_its_earlier_records_move_at_the_end() {
        let tmp = tempfile::tempdir().unwrap();
        let manifest = tmp.path().join(manifest::FILE_NAME);
        let before =
            "{\"file\":\"a.png\",\"n\":1}\n{\"file\":\"b.png\"}\n{\"file\":\"a.png\",\"n\":2}\n";
        fs::write(&manifest, before).unwrap();
        fs::write(tmp.path().join("a.png"), b"old").unwrap();
        let trash = Trash::new(tmp.path());
        let first = trash
            .keep_replaced("a.png", &manifest, before.len() as u64)
            .unwrap()
            .unwrap();
        assert_eq!(fs::read(tmp.path().join("a.png")).unwrap(), b"old");
        assert!(
            trash.take_copied().is_empty(),
            "not before the new image is there"
        );
        trash.replaced(first).unwrap();
        // The run's own record comes after what was there.
        let mut file = OpenOptions::new().append(true).open(&manifest).unwrap();
        file.write_all(b"{\"file\":\"a.png\",\"n\":3}\n").unwrap();
        // The same name again in the same run: beside the first. (An image is always
        // renamed over its name, never written into: the trash's link keeps the old bytes.)
        atomic::write(&tmp.path().join("a.png"), b"newer", Exists::Replace).unwrap();
        let second = trash
            .keep_replaced("a.png", &manifest, before.len() as u64)
            .unwrap()
            .unwrap();
        trash.replaced(second).unwrap();
        let text = fs::read(&manifest).unwrap();
        fs::write(
            &manifest,
            manifest::without_ranges(&text, trash.take_copied()),
        )
        .unwrap();
        assert!(trash.take_copied().is_empty(), "handed over once");
        assert_eq!(
            fs::read_to_string(&manifest).unwrap(),
            "{\"file\":\"b.png\"}\n{\"file\":\"a.png\",\"n\":3}\n"
        );
        let report = trash.report().unwrap();
        assert_eq!(report.files, ["a.png", "a~2.png"]);
        assert_eq!(report.records, 2);
        let folder = PathBuf::from(report.folder);
        assert_eq!(fs::read(folder.join("a.png")).unwrap(), b"old");
        assert_eq!(fs::read(folder.join("a~2.png")).unwrap(), b"newer");
        assert_eq!(
            fs::read_to_string(folder.join(manifest::FILE_NAME)).unwrap(),
            "{\"file\":\"a.png\",\"n\":1}\n{\"file\":\"a.png\",\"n\":2}\n"
        );
    }
}
