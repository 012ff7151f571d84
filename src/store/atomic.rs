//! The one way genimg writes a file: to a temporary file beside it, fsynced, then renamed,
//! so a final name only ever holds a whole file. A write that fails leaves nothing behind:
//! the temporary file is removed, and no final name was touched.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Temporary files are named `.genimg-*.tmp`; the destination removes any a killed run left.
pub const TEMP_PREFIX: &str = ".genimg-";
pub const TEMP_SUFFIX: &str = ".tmp";

/// What to do when the final name is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exists {
    Replace,
    /// Fail with `AlreadyExists` and leave the file there untouched.
    Keep,
}

/// A temporary file in `dir`, with ordinary permissions: let the umask decide, not
/// tempfile's private 0600.
pub fn temp_file(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(TEMP_PREFIX).suffix(TEMP_SUFFIX);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir)
}

/// Writes `bytes` to `path` atomically: temporary file in the same directory, fsync,
/// rename, and an fsync of the directory so the rename itself survives a power cut.
pub fn write(path: &Path, bytes: &[u8], exists: Exists) -> io::Result<PathBuf> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = temp_file(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    match exists {
        Exists::Replace => tmp.persist(path).map_err(|e| e.error)?,
        Exists::Keep => tmp.persist_noclobber(path).map_err(|e| e.error)?,
    };
    sync_dir(dir);
    Ok(path.to_owned())
}

#[cfg(unix)]
pub fn sync_dir(dir: &Path) {
    if let Err(e) = fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!("fsync of {} failed: {e}", dir.display());
    }
}

#[cfg(not(unix))]
pub fn sync_dir(_dir: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::names_in;

    #[test]
    fn replaces_or_keeps_as_asked_and_leaves_no_temporary_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.png");
        write(&path, b"one", Exists::Replace).unwrap();
        write(&path, b"two", Exists::Replace).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let err = write(&path, b"three", Exists::Keep).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(names_in(tmp.path()), ["a.png"]);
    }

    #[test]
    fn a_failed_write_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        // A directory in the way of the final name: the rename fails.
        let path = tmp.path().join("in-the-way");
        fs::create_dir(&path).unwrap();
        assert!(write(&path, b"bytes", Exists::Replace).is_err());
        assert_eq!(names_in(tmp.path()), ["in-the-way"]);
        assert!(write(&tmp.path().join("missing/x.png"), b"b", Exists::Replace).is_err());
    }
}
