//! Reading the user's input files with a bound: prompt files, config files, `@FILE` styles,
//! reference images and masks.
//!
//! Each is read whole into memory, so each has a size cap, enforced while reading (at most
//! cap + 1 bytes are ever read, so a file that lies about its size or grows is still
//! bounded). Only regular files are read, symlinks to them included: a directory, FIFO,
//! device or socket is refused before it is opened, as a FIFO would block the open until a
//! writer came and `/dev/zero` would never end.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

use thiserror::Error;

use crate::units::human_bytes;

const MIB: u64 = 1024 * 1024;

/// The largest prompt file (`--input`) read. The 10,000-prompt file of the benchmarks is
/// 1.6 MB; 16 MiB holds 10,000 prompts of 1,600 bytes each, or 500 of the longest prompt a
/// model takes (32,000 characters), and is still little to hold in memory.
pub const PROMPT_FILE_CAP: u64 = 16 * MIB;

/// The largest config file read. A config file is a dozen `key = value` lines, so 1 MiB is
/// far beyond any real one: only a wrong file (a log, an image, a device) reaches it.
pub const CONFIG_FILE_CAP: u64 = MIB;

/// The largest `--style @FILE` read. A style goes before every prompt, and no model takes a
/// prompt over 32,000 characters (at most 128,000 bytes of UTF-8): 1 MiB holds every style
/// that could be sent, and the prompt-length check gives the precise error for a long one.
pub const STYLE_FILE_CAP: u64 = MIB;

/// Why a file was not read.
#[derive(Debug, Error)]
pub enum ReadLimitError {
    /// The file could not be found, opened or read.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A directory, FIFO, device or socket: `kind` says which ("a FIFO").
    #[error("it is {kind}, not a regular file")]
    NotRegular { kind: &'static str },
    /// Over the cap of `cap` bytes; `len` is the size the file system gave, when it gave it.
    #[error("it is more than the size cap of {}", human_bytes(*cap))]
    TooBig { len: Option<u64>, cap: u64 },
}

/// Reads the regular file at `path` (following symlinks), if it holds at most `cap` bytes.
pub fn read_bounded(path: &Path, cap: u64) -> Result<Vec<u8>, ReadLimitError> {
    // Checked before opening: opening a FIFO blocks until a writer comes.
    let meta = fs::metadata(path)?;
    regular(&meta)?;
    let file = File::open(path)?;
    // The file opened may not be the one checked, if the path changed in between.
    let meta = file.metadata()?;
    regular(&meta)?;
    // A file that says it is too big is refused unread; one that says less is still read
    // with the cap, as its size may be wrong (`/proc`) or grow.
    if meta.len() > cap {
        return Err(ReadLimitError::TooBig {
            len: Some(meta.len()),
            cap,
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
    read_into(file, cap, &mut bytes)?;
    Ok(bytes)
}

/// Reads `reader` to its end (standard input, say), if it gives at most `cap` bytes.
pub fn read_capped(reader: impl Read, cap: u64) -> Result<Vec<u8>, ReadLimitError> {
    let mut bytes = Vec::new();
    read_into(reader, cap, &mut bytes)?;
    Ok(bytes)
}

fn read_into(reader: impl Read, cap: u64, bytes: &mut Vec<u8>) -> Result<(), ReadLimitError> {
    reader.take(cap.saturating_add(1)).read_to_end(bytes)?;
    if bytes.len() as u64 > cap {
        return Err(ReadLimitError::TooBig { len: None, cap });
    }
    Ok(())
}

fn regular(meta: &fs::Metadata) -> Result<(), ReadLimitError> {
    let t = meta.file_type();
    if t.is_file() {
        return Ok(());
    }
    let kind = if t.is_dir() {
        "a directory"
    } else {
        special_kind(t)
    };
    Err(ReadLimitError::NotRegular { kind })
}

#[cfg(unix)]
fn special_kind(t: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: fs::FileType) -> &'static str {
    "a special file"
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_of(len: u64) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        f.as_file().set_len(len).unwrap();
        f
    }

    #[test]
    fn a_file_up_to_the_cap_is_read_whole() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"hello").unwrap();
        assert_eq!(read_bounded(f.path(), 5).unwrap(), b"hello");
        assert_eq!(read_bounded(f.path(), 100).unwrap(), b"hello");
        assert_eq!(read_bounded(file_of(0).path(), 0).unwrap(), b"");
    }

    #[test]
    fn a_file_one_byte_over_the_cap_is_refused() {
        let f = file_of(1001);
        match read_bounded(f.path(), 1000) {
            Err(ReadLimitError::TooBig { len, cap }) => {
                assert_eq!((len, cap), (Some(1001), 1000));
            }
            other => panic!("{other:?}"),
        }
        let err = read_bounded(file_of(PROMPT_FILE_CAP + 1).path(), PROMPT_FILE_CAP);
        assert_eq!(
            err.unwrap_err().to_string(),
            "it is more than the size cap of 16 MB"
        );
    }

    /// Counts the bytes read through it.
    struct Counted<R> {
        inner: R,
        read: u64,
    }

    impl<R: Read> Read for Counted<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read += n as u64;
            Ok(n)
        }
    }

    #[test]
    fn a_reader_is_read_no_further_than_one_byte_past_the_cap() {
        let mut endless = Counted {
            inner: io::repeat(b'x').take(1 << 20),
            read: 0,
        };
        match read_capped(&mut endless, 1000) {
            Err(ReadLimitError::TooBig {
                len: None,
                cap: 1000,
            }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(endless.read, 1001);
        assert_eq!(read_capped(&b"12345"[..], 5).unwrap(), b"12345");
        assert!(read_capped(&b"123456"[..], 5).is_err());
    }

    #[test]
    fn a_missing_file_keeps_its_io_error() {
        match read_bounded(Path::new("/nonexistent/genimg-input"), 10) {
            Err(ReadLimitError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::NotFound),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_directory_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_bounded(dir.path(), 10).unwrap_err();
        assert_eq!(err.to_string(), "it is a directory, not a regular file");
    }

    #[cfg(unix)]
    #[test]
    fn devices_and_fifos_are_refused_unopened() {
        let err = read_bounded(Path::new("/dev/zero"), 10).unwrap_err();
        assert_eq!(
            err.to_string(),
            "it is a character device, not a regular file"
        );

        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // Opening it would block until a writer came: the check comes first. The read runs
        // on a thread, so a broken check fails this test instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(read_bounded(&fifo, 10).map_err(|e| e.to_string())));
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("reading a FIFO hung");
        assert_eq!(
            got.unwrap_err(),
            "it is a FIFO (named pipe), not a regular file"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.txt");
        fs::write(&target, "text").unwrap();
        let link = dir.path().join("link.txt");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(read_bounded(&link, 10).unwrap(), b"text");

        let to_device = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &to_device).unwrap();
        assert!(matches!(
            read_bounded(&to_device, 10),
            Err(ReadLimitError::NotRegular { .. })
        ));
    }
}
