//! The gallery's thumbnails: small JPEGs in `.genimg/thumbs/`, so that a page of hundreds
//! of images loads a few megabytes, not the originals.
//!
//! A thumbnail is named by what it shows, so it is made once and found again: an image of the
//! destination by its name, size and modification time (an image replaced or edited gets a
//! new one); a reference image or a mask by the sha256 its record gives (the file may be
//! anywhere, or gone: the thumbnail made while it was there stays good). Thumbnails nothing
//! names any more are removed. An image that cannot be read or decoded has none, and the
//! page shows the original instead. SVGs never have one: the page shows them as they are.
//!
//! The work is plain, blocking code on threads of its own (decoding is CPU-bound): callers
//! in async code run [`Thumbs::make`] off the runtime's workers.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use image::{DynamicImage, ImageReader, RgbImage};

use crate::store::atomic;

/// The most memory decoding one image may take: a 4096 x 4096 image at 16 bits a channel
/// and a little more. The image crate's own default (512 MiB) on every core is too much.
const MAX_DECODE_BYTES: u64 = 160 * 1024 * 1024;

/// The widest or tallest image decoded for a thumbnail.
const MAX_EDGE: u32 = 16384;

/// The most threads that decode at once: with [`MAX_DECODE_BYTES`], what the thumbnails
/// may take at most, whatever the number of cores.
const MAX_THREADS: usize = 4;

/// The thumbnails' folder in the destination.
pub const DIR: &str = ".genimg/thumbs";

/// A thumbnail's longest side, in pixels: a tile of the page's default size, on a
/// high-density screen, in some 10 KB.
pub const LONG_EDGE: u32 = 320;

/// JPEG quality: small files, no visible blocks at tile size.
const QUALITY: u8 = 75;

/// The images larger than this are not decoded for a thumbnail (the page shows them as they
/// are): the decoder would need more memory than a gallery should take.
const MAX_SOURCE_BYTES: u64 = 64 * 1024 * 1024;

/// What a thumbnail shows. Two references are the same source when their bytes are.
#[derive(Debug, Clone)]
pub enum Source {
    /// An image in the destination, by its name there.
    Image(String),
    /// A reference image or a mask, where its record says it was, and the sha256 of its bytes.
    Reference { path: PathBuf, sha256: String },
}

/// The thumbnails a page may use: each source's thumbnail, as a path relative to the
/// destination.
#[derive(Debug, Default)]
pub struct Thumbs {
    of: HashMap<Source, String>,
    /// How many thumbnails [`Thumbs::make`] wrote (not those already there).
    pub written: usize,
}

impl PartialEq for Source {
    fn eq(&self, other: &Source) -> bool {
        match (self, other) {
            (Source::Image(a), Source::Image(b)) => a == b,
            (Source::Reference { sha256: a, .. }, Source::Reference { sha256: b, .. }) => a == b,
            _ => false,
        }
    }
}

impl Eq for Source {}

impl std::hash::Hash for Source {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            Source::Image(name) => (0u8, name).hash(state),
            Source::Reference { sha256, .. } => (1u8, sha256).hash(state),
        }
    }
}

impl Thumbs {
    /// No thumbnails: a page showing the originals.
    pub fn none() -> Thumbs {
        Thumbs::default()
    }

    /// The thumbnail of an image of the destination, by its name.
    pub fn of_image(&self, file: &str) -> Option<&str> {
        self.of
            .get(&Source::Image(file.to_owned()))
            .map(String::as_str)
    }

    /// The thumbnail of a reference image or mask, by the sha256 its record gives.
    pub fn of_reference(&self, sha256: &str) -> Option<&str> {
        self.of
            .get(&Source::Reference {
                path: PathBuf::new(),
                sha256: sha256.to_owned(),
            })
            .map(String::as_str)
    }

    /// Makes the thumbnails of `sources` in `dir` that are not there yet, on as many threads
    /// as there are cores (up to [`MAX_THREADS`]), and removes those no source names any
    /// more. Nothing here fails the page: a source with no thumbnail is shown as it is.
    pub fn make(dir: &Path, sources: &[Source]) -> Thumbs {
        let folder = dir.join(DIR);
        let mut wanted: Vec<(&Source, String)> = Vec::new();
        let mut seen = HashSet::new();
        for source in sources {
            if seen.insert(source)
                && let Some(name) = thumb_name(dir, source)
            {
                wanted.push((source, name));
            }
        }
        let mut thumbs = Thumbs::default();
        if wanted.is_empty() && !folder.is_dir() {
            return thumbs;
        }
        if let Err(e) = std::fs::create_dir_all(&folder) {
            tracing::warn!("no thumbnails: cannot make {}: {e}", folder.display());
            return thumbs;
        }
        let todo: Vec<&(&Source, String)> = wanted
            .iter()
            .filter(|(_, name)| !folder.join(name).is_file())
            .collect();
        let next = AtomicUsize::new(0);
        let made = Mutex::new(Vec::new());
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(MAX_THREADS)
            .min(todo.len().max(1));
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((source, name)) = todo.get(i) else {
                            break;
                        };
                        match make_one(dir, source, &folder.join(name)) {
                            Ok(()) => made.lock().expect("not poisoned").push(i),
                            Err(e) => {
                                tracing::debug!("no thumbnail of {source:?}: {e}");
                            }
                        }
                    }
                });
            }
        });
        thumbs.written = made.into_inner().expect("not poisoned").len();
        let names: HashSet<&str> = wanted.iter().map(|(_, n)| n.as_str()).collect();
        remove_unnamed(&folder, &names);
        for (source, name) in wanted {
            if folder.join(&name).is_file() {
                thumbs.of.insert(source.clone(), format!("{DIR}/{name}"));
            }
        }
        if thumbs.of.is_empty() {
            // No folders left behind for nothing (each goes only if empty).
            let _ = std::fs::remove_dir(&folder);
            let _ = folder.parent().map(std::fs::remove_dir);
        }
        thumbs
    }
}

/// A source's thumbnail's file name: 20 hex digits of a sha256 and `.jpg`. `None` for a
/// source that cannot have one: an SVG, or an image not on the disk.
fn thumb_name(dir: &Path, source: &Source) -> Option<String> {
    let key = match source {
        Source::Image(file) => {
            if is_svg(file) {
                return None;
            }
            let meta = std::fs::metadata(dir.join(file)).ok()?;
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            crate::units::sha256_hex(
                format!("image\0{file}\0{}\0{modified}\0{LONG_EDGE}", meta.len()).as_bytes(),
            )
        }
        Source::Reference { path, sha256 } => {
            if is_svg(&path.to_string_lossy()) || sha256.is_empty() {
                return None;
            }
            crate::units::sha256_hex(format!("reference\0{sha256}\0{LONG_EDGE}").as_bytes())
        }
    };
    Some(format!("{}.jpg", &key[..20]))
}

/// Whether a file's name says SVG (shown as it is: never a thumbnail).
pub fn is_svg(name: &str) -> bool {
    crate::format::ImageFormat::of_name(name) == Some(crate::format::ImageFormat::Svg)
}

/// Whether `name` is a thumbnail's name as [`thumb_name`] gives them.
fn is_thumb_name(name: &str) -> bool {
    name.strip_suffix(".jpg")
        .is_some_and(|stem| stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Removes the thumbnails in `folder` not in `names` (of images since replaced or gone).
fn remove_unnamed(folder: &Path, names: &HashSet<&str>) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if is_thumb_name(&name) && !names.contains(name.as_ref()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Reads, scales and writes one thumbnail.
fn make_one(dir: &Path, source: &Source, to: &Path) -> io::Result<()> {
    let bytes = match source {
        Source::Image(file) => read_limited(&dir.join(file))?,
        Source::Reference { path, sha256 } => {
            let bytes = read_limited(path)?;
            // A file there now that is not the one the record names is not shown.
            if crate::units::sha256_hex(&bytes) != *sha256 {
                return Err(io::Error::other("the file has changed since it was sent"));
            }
            bytes
        }
    };
    let jpeg = thumbnail(&bytes)?;
    let folder = to.parent().expect("a thumbnail is in a folder");
    // A cache, not the user's data: no sync, but never a half-written file under its name.
    let mut tmp = atomic::temp_file(folder)?;
    tmp.write_all(&jpeg)?;
    tmp.persist(to).map_err(|e| e.error)?;
    Ok(())
}

/// The bytes of the regular file at `path`, if it holds at most [`MAX_SOURCE_BYTES`]. A path
/// comes from the manifest, which may name anything: a device or a FIFO is refused without
/// reading (or waiting on) it, and no more than the limit is ever read.
fn read_limited(path: &Path) -> io::Result<Vec<u8>> {
    crate::config::input::read_bounded(path, MAX_SOURCE_BYTES)
        .map_err(|e| io::Error::other(e.to_string()))
}

/// An image's bytes (PNG, JPEG, WebP, or a GIF's first frame) as a JPEG thumbnail at most
/// [`LONG_EDGE`] pixels on its longest side; transparency is shown on a checkerboard, as
/// image editors show it, so that a mask's transparent part stays visible.
pub fn thumbnail(bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut reader = ImageReader::new(io::Cursor::new(bytes)).with_guessed_format()?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits.max_image_width = Some(MAX_EDGE);
    limits.max_image_height = Some(MAX_EDGE);
    reader.limits(limits);
    let image = reader.decode().map_err(io::Error::other)?;
    let image = if image.width().max(image.height()) > LONG_EDGE {
        image.thumbnail(LONG_EDGE, LONG_EDGE)
    } else {
        image
    };
    let rgb = flatten(&image);
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, QUALITY)
        .encode_image(&rgb)
        .map_err(io::Error::other)?;
    Ok(out)
}

/// The image in RGB, any transparency over a light checkerboard of 8-pixel squares.
fn flatten(image: &DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let back: u16 = if (x / 8 + y / 8) % 2 == 0 { 255 } else { 214 };
        let mix = |c: u8| ((u16::from(c) * u16::from(a) + back * (255 - u16::from(a))) / 255) as u8;
        image::Rgb([mix(r), mix(g), mix(b)])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32, alpha: u8) -> Vec<u8> {
        let image = image::RgbaImage::from_fn(width, height, |x, y| {
            image::Rgba([(x % 256) as u8, (y % 256) as u8, 90, alpha])
        });
        let mut out = Vec::new();
        DynamicImage::ImageRgba8(image)
            .write_to(&mut io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    fn size_of(jpeg: &[u8]) -> (u32, u32) {
        let image = image::load_from_memory(jpeg).unwrap();
        (image.width(), image.height())
    }

    /// A small JPEG whose header says it is `width` x `height`: what a decoder must refuse
    /// before it allocates for it.
    fn jpeg_claiming(width: u16, height: u16) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut out)
            .encode_image(&RgbImage::new(16, 16))
            .unwrap();
        // SOF0: marker, length, precision, then height and width.
        let sof = out.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        out[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
        out[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
        out
    }

    /// A manifest may name any path as a reference: a device or a FIFO is refused at once,
    /// never read forever or waited on.
    #[cfg(unix)]
    #[test]
    fn only_regular_files_are_read_and_never_more_than_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        for path in [Path::new("/dev/zero"), fifo.as_path()] {
            let error = read_limited(path).unwrap_err();
            assert!(
                error.to_string().ends_with("not a regular file"),
                "{}: {error}",
                path.display()
            );
        }
        let big = dir.path().join("big");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_SOURCE_BYTES + 1)
            .unwrap();
        assert!(read_limited(&big).is_err());
        std::fs::write(dir.path().join("small"), b"abc").unwrap();
        assert_eq!(read_limited(&dir.path().join("small")).unwrap(), b"abc");
    }

    #[test]
    fn an_image_too_big_to_decode_is_refused_before_it_is_decoded() {
        // 10000 x 10000 RGB: 300 MB decoded, under the image crate's own 512 MiB limit.
        let error = thumbnail(&jpeg_claiming(10_000, 10_000)).unwrap_err();
        assert!(error.to_string().contains("limit"), "{error}");
        // Wider than any image a model makes.
        let error = thumbnail(&jpeg_claiming(20_000, 100)).unwrap_err();
        assert!(error.to_string().contains("limit"), "{error}");
    }

    #[test]
    fn a_thumbnail_is_a_small_jpeg_no_larger_than_the_image() {
        assert_eq!(
            size_of(&thumbnail(&png(1536, 1024, 255)).unwrap()),
            (320, 213)
        );
        assert_eq!(
            size_of(&thumbnail(&png(100, 300, 255)).unwrap()),
            (100, 300)
        );
        // A transparent mask shows its checkerboard, not black.
        let clear = image::load_from_memory(&thumbnail(&png(32, 32, 0)).unwrap())
            .unwrap()
            .to_rgb8();
        assert!(
            clear.get_pixel(2, 2).0.iter().all(|&c| c > 200),
            "{:?}",
            clear.get_pixel(2, 2)
        );
        assert!(thumbnail(b"not an image").is_err());
    }

    #[test]
    fn thumbnails_are_made_once_and_anew_for_a_changed_image() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(dir.join("a.png"), png(800, 800, 255)).unwrap();
        std::fs::write(dir.join("b.svg"), "<svg/>").unwrap();
        std::fs::write(dir.join("broken.png"), "not a png").unwrap();
        let reference = dir.join("ref.png");
        std::fs::write(&reference, png(64, 64, 255)).unwrap();
        let sha = crate::units::sha256_hex(&std::fs::read(&reference).unwrap());
        let sources = [
            Source::Image("a.png".into()),
            Source::Image("b.svg".into()),
            Source::Image("broken.png".into()),
            Source::Image("gone.png".into()),
            Source::Reference {
                path: reference.clone(),
                sha256: sha.clone(),
            },
            Source::Reference {
                path: reference.clone(),
                sha256: "0".repeat(64),
            },
        ];
        let thumbs = Thumbs::make(dir, &sources);
        assert_eq!(thumbs.written, 2);
        let a = thumbs.of_image("a.png").unwrap().to_owned();
        assert!(
            a.starts_with(".genimg/thumbs/") && a.ends_with(".jpg"),
            "{a}"
        );
        assert!(thumbs.of_image("b.svg").is_none());
        assert!(thumbs.of_image("broken.png").is_none());
        assert!(thumbs.of_image("gone.png").is_none());
        assert!(thumbs.of_reference(&sha).is_some());
        assert!(
            thumbs.of_reference(&"0".repeat(64)).is_none(),
            "not that file"
        );
        let written = std::fs::metadata(dir.join(&a)).unwrap().modified().unwrap();

        // Again: nothing written; the reference's thumbnail outlives its file.
        std::fs::remove_file(&reference).unwrap();
        let again = Thumbs::make(dir, &sources);
        assert_eq!(again.written, 0);
        assert_eq!(again.of_image("a.png"), Some(a.as_str()));
        assert!(again.of_reference(&sha).is_some());
        assert_eq!(
            std::fs::metadata(dir.join(&a)).unwrap().modified().unwrap(),
            written
        );

        // A changed image gets a new thumbnail, and the old one goes.
        std::fs::write(dir.join("a.png"), png(400, 200, 255)).unwrap();
        let changed = Thumbs::make(dir, &sources[..1]);
        let new = changed.of_image("a.png").unwrap();
        assert_ne!(new, a);
        assert!(!dir.join(&a).exists());
        let names: Vec<_> = std::fs::read_dir(dir.join(DIR)).unwrap().collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
