//! `index.html` in the destination: a self-contained contact sheet of the run, built from the
//! manifest.
//!
//! One file, its CSS and a few lines of script inline, nothing fetched: it opens from the disk
//! (`file://`) as well as from any static server, and it links the images by relative URLs,
//! so the destination can be moved or archived whole. Its tiles show small thumbnails
//! ([`super::thumbs`], in `.genimg/thumbs/`), loaded lazily, so a sheet of 500 images opens
//! at once and weighs a few megabytes; the originals are linked.
//!
//! The page shows what each file is *now*: the last record of a file decides, except that a
//! failed attempt does not hide the image an earlier attempt left on the disk.
//!
//! This module reads the manifest into a [`Sheet`] (files, their state, grouped and counted);
//! the askama template `templates/gallery.html` renders it, with `gallery.css` and
//! `gallery.js` beside it included when genimg is compiled. Every value the template shows is
//! HTML-escaped unless the template says otherwise, and it never does.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::io;
use std::path::{Component, Path, PathBuf};

use askama::Template;

use crate::report::thumbs::{Source, Thumbs};
use crate::store::atomic::{self, Exists};
use crate::store::destination::{Lock, OutputError};
use crate::store::manifest::{self, Record, Status};
use crate::store::sink::UNRECOGNISED_DIR;
use crate::units::usd;

/// The gallery's file name in the destination.
pub const FILE_NAME: &str = "index.html";

/// Builds the page from the manifest's records, in manifest order (the last record of a file
/// says what the file is), taking the files some record made to be on the disk, and no other.
pub fn render(title: &str, records: &[Record]) -> String {
    let made: HashSet<&str> = records
        .iter()
        .filter(|r| r.status == Status::Made)
        .map(|r| r.file.as_str())
        .collect();
    render_with(title, records, |file| made.contains(file))
}

/// Builds the page as [`render`] does, with `on_disk(file)` saying whether a file the records
/// name is still there: a made image that is not is shown as missing, not as a broken image.
pub fn render_with(title: &str, records: &[Record], on_disk: impl Fn(&str) -> bool) -> String {
    render_page(title, "", records, &on_disk, &Thumbs::none())
}

/// Builds the page as [`render_with`] does, its tiles showing the thumbnails of `thumbs`
/// where there are some (the originals elsewhere).
fn render_page(
    title: &str,
    folder: &str,
    records: &[Record],
    on_disk: &dyn Fn(&str) -> bool,
    thumbs: &Thumbs,
) -> String {
    let sheet = Sheet::new(records, on_disk, thumbs);
    let page = Page {
        title,
        folder,
        version: env!("CARGO_PKG_VERSION"),
        counts: sheet.counts(),
        sheet: &sheet,
    };
    // Only a `Display` of ours could fail, and none does: they all write to a `String`.
    page.render().expect("the gallery renders to a string")
}

/// The name used when an `index.html` that genimg did not write is already there.
pub const OWN_FILE_NAME: &str = "genimg-index.html";

/// Where the page goes: `index.html`, unless the user has an `index.html` of their own there,
/// which is never replaced.
fn page_path(dir: &Path) -> PathBuf {
    let index = dir.join(FILE_NAME);
    match std::fs::read(&index) {
        Ok(bytes) => {
            let ours = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)])
                .contains("<meta name=\"generator\" content=\"genimg");
            if ours { index } else { dir.join(OWN_FILE_NAME) }
        }
        Err(_) => index,
    }
}

/// Reads `dir`'s manifest and writes `dir/index.html` atomically; returns its path. The
/// caller holds the destination's lock: a run, or [`rebuild`].
pub fn write(dir: &Path) -> io::Result<PathBuf> {
    let mut records = match manifest::read_records(dir) {
        Ok(records) => records,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    // Images genimg's naming made with no record (the seed script's, or older runs'): shown
    // by what their names say.
    records.extend(unrecorded(dir, &records));
    if records.is_empty() {
        return Err(no_manifest(dir));
    }
    let on_disk = |file: &str| is_own_path(file) && dir.join(file).is_file();
    let thumbs = Thumbs::make(dir, &thumb_sources(&records, &on_disk));
    let folder = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    let html = render_page(
        &title_of(dir),
        &folder.to_string_lossy(),
        &records,
        &on_disk,
        &thumbs,
    );
    atomic::write(&page_path(dir), html.as_bytes(), Exists::Replace)
}

/// What the page may show a thumbnail of: the images on the disk (plain names: an
/// unrecognised answer is no image), and the reference images and masks the records name.
fn thumb_sources(records: &[Record], on_disk: &dyn Fn(&str) -> bool) -> Vec<Source> {
    let mut sources = Vec::new();
    for record in records {
        if is_plain_name(&record.file) && on_disk(&record.file) {
            sources.push(Source::Image(record.file.clone()));
        }
        for reference in record.references.iter().chain(&record.mask) {
            sources.push(Source::Reference {
                path: reference.path.clone(),
                sha256: reference.sha256.clone(),
            });
        }
    }
    sources
}

/// Writes `dir`'s page as [`write`] does, for `genimg gallery DIR`: under the destination's
/// lock, so never while a run is writing there (a run writes its own page when it ends).
pub fn rebuild(dir: &Path) -> io::Result<PathBuf> {
    // Nothing to show, and no lock file to leave in a folder genimg never wrote to.
    if let Err(e) = std::fs::metadata(dir.join(manifest::FILE_NAME))
        && e.kind() == io::ErrorKind::NotFound
        && unrecorded(dir, &[]).is_empty()
    {
        return Err(no_manifest(dir));
    }
    let _lock = Lock::take(dir).map_err(|e| match e {
        OutputError::Locked { holder, .. } => io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "another genimg run{} is writing there; try again when it has finished",
                holder
                    .map(|pid| format!(" (process {pid})"))
                    .unwrap_or_default()
            ),
        ),
        OutputError::NotWritable { source, .. } => io::Error::new(
            source.kind(),
            format!("cannot take the destination's lock: {source}"),
        ),
        other => io::Error::other(other.to_string()),
    })?;
    write(dir)
}

fn no_manifest(dir: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "no {} in {}: nothing to show",
            manifest::FILE_NAME,
            dir.display()
        ),
    )
}

/// What a file name genimg's naming gives says: the prompt's name (none for a prompt from
/// the command line), and the image's number. `None` for any other name.
fn name_says(file: &str) -> Option<(Option<String>, u32)> {
    let number = |s: &str| {
        (s.len() >= 2 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    let (stem, ext) = file.rsplit_once('.')?;
    crate::format::ImageFormat::ALL
        .iter()
        .any(|f| f.extensions().contains(&ext))
        .then_some(())?;
    if let Some(rest) = stem.strip_prefix("desc_") {
        let (prompt, rest) = rest.split_once("_image_")?;
        let (index, _quality) = rest.split_once('_')?;
        number(prompt)?;
        return Some((Some(format!("desc_{prompt}")), number(index)?));
    }
    if let Some(rest) = stem.strip_prefix("image_") {
        let (index, _quality) = rest.split_once('_')?;
        return Some((None, number(index)?));
    }
    let mut parts = stem.strip_prefix("image.")?.split('.');
    let (name, index, _quality) = (parts.next()?, parts.next()?, parts.next()?);
    parts.next().is_none().then_some(())?;
    Some((Some(name.to_owned()), number(index)?))
}

/// The images in `dir` that genimg's naming gives and no record in `records` names, each as a
/// record of a made image with nothing else known.
fn unrecorded(dir: &Path, records: &[Record]) -> Vec<Record> {
    let known: std::collections::HashSet<&str> = records
        .iter()
        .flat_map(|r| [Some(r.file.as_str()), r.planned_file.as_deref()])
        .flatten()
        .collect();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !known.contains(n.as_str()))
        .collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|file| {
            let (prompt, index) = name_says(&file)?;
            // Its bytes must be an image, whatever the name says.
            let mut head = [0u8; 1024];
            let n = std::io::Read::read(&mut std::fs::File::open(dir.join(&file)).ok()?, &mut head)
                .ok()?;
            crate::format::ImageFormat::sniff(&head[..n])?;
            let mut record: Record = serde_json::from_value(serde_json::json!({
                "file": file, "prompt": prompt, "index": index, "prompt_text": "",
                "model": "", "operation": "", "request": {}, "references": [],
                "request_hash": "", "status": "made", "error": null, "attempts": 0,
                "revised_prompt": null, "usage": null, "request_id": null, "sha256": null,
                "bytes": null, "started": "", "finished": ""
            }))
            .ok()?;
            record.bytes = std::fs::metadata(dir.join(&record.file))
                .ok()
                .map(|m| m.len());
            Some(record)
        })
        .collect()
}

/// The directory's own name (`images`, not `.`), for the page's title.
fn title_of(dir: &Path) -> String {
    dir.canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string())
}

/// A name right in the destination: only such a file is looked for, and linked.
fn is_plain_name(file: &str) -> bool {
    let mut components = Path::new(file).components();
    matches!(
        (components.next(), components.next()),
        (Some(Component::Normal(_)), None)
    )
}

/// A name right in the folder where the sink keeps an answer whose bytes are in no format
/// genimg recognises ([`UNRECOGNISED_DIR`]): `.genimg/unrecognised/image.cat.01.hd.bin`.
fn is_unrecognised_path(file: &str) -> bool {
    let path = Path::new(file);
    path.parent() == Some(Path::new(UNRECOGNISED_DIR))
        && matches!(path.file_name(), Some(name) if is_plain_name(&name.to_string_lossy()))
        && path.components().all(|c| matches!(c, Component::Normal(_)))
}

/// A file the page may look for on the disk, and link: a plain name, or an unrecognised
/// answer's path. Never a path that could lead out of the destination (`..`, absolute) or
/// anywhere else in it.
fn is_own_path(file: &str) -> bool {
    is_plain_name(file) || is_unrecognised_path(file)
}

/// A file's relative URL: [`url_of`] its name, and each name of an unrecognised answer's
/// path, so that only the slashes between them stay slashes.
fn href_of(file: &str) -> String {
    if is_unrecognised_path(file) {
        let names: Vec<String> = Path::new(file)
            .components()
            .map(|c| url_of(&c.as_os_str().to_string_lossy()))
            .collect();
        names.join("/")
    } else {
        url_of(file)
    }
}

/// A thumbnail's relative URL: each name of its path percent-encoded.
fn href_of_thumb(path: &str) -> String {
    path.split('/').map(url_of).collect::<Vec<_>>().join("/")
}

/// The page, as `templates/gallery.html` lays it out.
#[derive(Template)]
#[template(path = "gallery.html")]
struct Page<'a> {
    title: &'a str,
    /// The folder's absolute path: the browser keeps the picks made on the page under it.
    folder: &'a str,
    version: &'a str,
    sheet: &'a Sheet<'a>,
    /// Of the whole sheet.
    counts: Counts,
}

impl Page<'_> {
    /// `, $1.25 spent in all runs`, when images remade or failed cost more than those shown.
    fn spent(&self) -> Option<String> {
        ((self.sheet.spent - self.counts.cost).abs() >= 0.0005).then(|| usd(self.sheet.spent))
    }

    /// When the last record was written, in minutes.
    fn last_image(&self) -> Option<String> {
        self.sheet.last_finished.map(when)
    }
}

/// How the page escapes every value it shows: the five characters that mean something in
/// HTML, as named entities (`&lt;`, `&quot;`, `&#39;`). askama's own escaper writes them as
/// numbers; `askama.toml` makes this one the default for `.html` templates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HtmlEscaper;

impl askama::filters::Escaper for HtmlEscaper {
    fn write_escaped_str<W: fmt::Write>(&self, mut dest: W, text: &str) -> fmt::Result {
        dest.write_str(&escape(text))
    }
}

/// `text` with the five characters that mean something in HTML escaped, for element content
/// and quoted attribute values alike.
fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A file name as a relative URL: every byte but the unreserved ones percent-encoded, so a
/// name can never read as a scheme (`javascript:`), a host (`//`), a query or a fragment.
fn url_of(file: &str) -> String {
    let mut out = String::with_capacity(file.len());
    for b in file.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// What a file is now.
#[derive(Debug, Clone, Copy, PartialEq)]
enum State<'a> {
    /// Made, and on the disk.
    Made,
    /// Made, but no longer on the disk.
    Missing,
    /// On the disk, but the last attempt at it failed: `failure` says why. The card's record
    /// is the one that made the image, or the failure itself when no record made it (an
    /// image from before the manifest).
    Kept { failure: &'a Record },
    /// Failed or refused, and nothing on the disk.
    NotMade,
}

/// One file of the sheet.
#[derive(Debug, Clone, Copy)]
struct Card<'a> {
    record: &'a Record,
    state: State<'a>,
    /// Its thumbnail, a path relative to the destination, where there is one.
    thumb: Option<&'a str>,
}

impl<'a> Card<'a> {
    /// Whether the file is on the disk, to link.
    fn links_file(&self) -> bool {
        matches!(self.state, State::Made | State::Kept { .. })
    }

    /// Whether the file is an image to show: on the disk, in a format genimg recognises.
    fn shows_image(&self) -> bool {
        self.links_file() && !self.unrecognised()
    }

    /// Whether the answer's bytes were in no format genimg recognises.
    fn unrecognised(&self) -> bool {
        self.record.received_format.as_deref() == Some(UNKNOWN_FORMAT)
    }

    fn class(&self) -> &'static str {
        match self.state {
            State::Made if self.unrecognised() => "unrecognised",
            State::Made => "made",
            State::Missing => "missing",
            State::Kept { .. } => "kept",
            State::NotMade if self.record.status == Status::Refused => "refused",
            State::NotMade => "failed",
        }
    }

    /// What the card cost: a made image's price, or a rescued one's.
    fn cost(&self) -> Option<f64> {
        match self.record.status {
            Status::Made => self.record.cost_usd,
            Status::Failed if self.record.rescued.is_some() => self.record.cost_usd,
            Status::Failed | Status::Refused => None,
        }
    }

    /// Whether the file is an SVG: untrusted markup from a model, so it is shown only as an
    /// `<img>` (where no script of it runs) and never linked as a page to open.
    fn is_svg(&self) -> bool {
        super::thumbs::is_svg(&self.record.file)
    }

    /// The tile's image: the thumbnail, or the file itself where there is none.
    fn thumb_url(&self) -> String {
        self.thumb.map_or_else(|| self.url(), href_of_thumb)
    }

    /// The file as a relative URL.
    fn url(&self) -> String {
        href_of(&self.record.file)
    }

    /// What the card says about the answer's format, where it was not the one asked for.
    fn format_note(&self) -> Option<FormatNote<'a>> {
        let received = self.record.received_format.as_deref()?;
        let asked = self.record.asked_format.as_deref();
        let recognised = received != UNKNOWN_FORMAT;
        // A model that answers in a format of its own choosing was asked none.
        if recognised && asked.is_none_or(|a| a == received) {
            return None;
        }
        Some(FormatNote {
            asked,
            received: recognised.then_some(received),
            planned: self.planned_file(),
        })
    }

    /// The name the plan gave the file, where it was kept under another.
    fn planned_file(&self) -> Option<&'a str> {
        let planned = self.record.planned_file.as_deref()?;
        (planned != self.record.file).then_some(planned)
    }

    /// Where the image the last attempt paid for was kept, outside the destination that
    /// would not take it.
    fn rescue(&self) -> Option<Rescue<'a>> {
        let last = match self.state {
            State::Kept { failure } => failure,
            _ => self.record,
        };
        let path = last.rescued.as_deref()?;
        Some(Rescue {
            path,
            url: url::Url::from_file_path(path).ok().map(String::from),
            svg: super::thumbs::is_svg(path),
        })
    }

    /// Where no image is shown: what the card says instead, and why.
    fn status(&self) -> &'static str {
        match self.state {
            State::Missing => "missing",
            _ if self.record.status == Status::Refused => "refused",
            _ => "failed",
        }
    }

    fn is_missing(&self) -> bool {
        self.state == State::Missing
    }

    /// Why the record's attempt failed.
    fn reason(&self) -> String {
        reason(self.record)
    }

    /// What the service said of a refusal of the card's failed attempt: the stage that
    /// refused and the categories, where it said.
    fn refusal(&self) -> Option<Refusal<'a>> {
        let last = match self.state {
            State::Kept { failure } => failure,
            _ => self.record,
        };
        let moderation = last.moderation.as_ref()?;
        Some(Refusal {
            stage: moderation.stage.as_deref().filter(|s| !s.is_empty()),
            categories: (!moderation.categories.is_empty())
                .then(|| moderation.categories.join(", ")),
        })
    }

    /// The last attempt, where it failed after the image shown was made.
    fn later_failure(&self) -> Option<Failure<'a>> {
        match self.state {
            State::Kept { failure } => Some(Failure(failure)),
            _ => None,
        }
    }

    /// `#1 · OpenAI gpt-image-2 · 1024x1024 · high · $0.211`, or
    /// `#1 · Google gemini-3-pro-image · 16:9 · 2K · $0.134`.
    fn meta(&self) -> String {
        let record = self.record;
        let mut parts = vec![format!("#{}", record.index)];
        let maker = crate::catalog::ProviderId::from_name(&record.provider)
            .map_or(record.provider.as_str(), |p| p.company());
        parts.push(format!("{maker} {}", record.model).trim().to_owned());
        let image = record
            .request
            .get("generationConfig")
            .and_then(|c| c.get("imageConfig"));
        let shown = ["size", "quality"]
            .iter()
            .map(|key| record.request.get(*key))
            .chain(
                ["aspectRatio", "imageSize"]
                    .iter()
                    .map(|key| image.and_then(|i| i.get(*key))),
            );
        for value in shown {
            match value {
                Some(serde_json::Value::String(s)) => parts.push(s.clone()),
                Some(serde_json::Value::Null) | None => {}
                Some(other) => parts.push(other.to_string()),
            }
        }
        if let Some(cost) = self.cost() {
            parts.push(usd(cost));
        }
        parts.join(" · ")
    }

    /// The mask the image was edited with, as its path was given.
    fn mask(&self) -> Option<String> {
        let mask = self.record.mask.as_ref()?;
        Some(mask.path.display().to_string())
    }

    /// The revised prompt, when the service gave one.
    fn revised_prompt(&self) -> Option<&'a str> {
        self.record
            .revised_prompt
            .as_deref()
            .filter(|r| !r.is_empty())
    }
}

/// `received_format` of an answer whose bytes are in no format genimg recognises.
const UNKNOWN_FORMAT: &str = "unknown";

/// An answer in another format than asked for.
#[derive(Debug, Clone, Copy)]
struct FormatNote<'a> {
    asked: Option<&'a str>,
    /// `None`: in no format genimg recognises.
    received: Option<&'a str>,
    /// The name the plan gave the file, where it was kept under another.
    planned: Option<&'a str>,
}

/// A refusal's `moderation_details`, as fields: the stage that refused (`input`, `output`)
/// and the categories named, joined.
#[derive(Debug, Clone)]
struct Refusal<'a> {
    stage: Option<&'a str>,
    categories: Option<String>,
}

/// An image kept outside the destination: its absolute path, and that as a `file://` URL.
#[derive(Debug, Clone)]
struct Rescue<'a> {
    path: &'a str,
    url: Option<String>,
    /// An SVG: linked as a download, never as a page (see [`Card::is_svg`]).
    svg: bool,
}

/// A failed or refused attempt, as a note shows it.
#[derive(Debug, Clone, Copy)]
struct Failure<'a>(&'a Record);

impl Failure<'_> {
    fn refused(&self) -> bool {
        self.0.status == Status::Refused
    }

    fn when(&self) -> String {
        when(&self.0.finished)
    }

    fn reason(&self) -> String {
        reason(self.0)
    }
}

/// The cards of one prompt name.
#[derive(Debug)]
struct Group<'a> {
    /// `None`: a prompt given on the command line (each text a group of its own).
    name: Option<&'a str>,
    /// Among the command-line prompts, which this is, from 1; 0 for a named prompt.
    one_off: usize,
    /// Its heading: the prompt's name, or for a command-line prompt, what says which.
    heading: String,
    /// Its number in its prompt file, as its last run numbered it (older manifests: none).
    number: Option<usize>,
    cards: Vec<Card<'a>>,
    /// The `## Title` section of the prompt file it is in, as its last record says.
    section: Option<&'a str>,
    /// The section's title where this group is the first of it: the page's heading.
    opens_section: Option<&'a str>,
    /// The reference images and masks its images were made from, each once.
    inputs: Vec<Input<'a>>,
}

/// A reference image or a mask, as a prompt's heading shows it: its name, and a thumbnail
/// made while the file was there. The file itself is never linked: it may be anywhere.
#[derive(Debug, Clone)]
struct Input<'a> {
    kind: &'static str,
    path: &'a Path,
    sha256: &'a str,
    thumb: Option<&'a str>,
}

impl Input<'_> {
    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn thumb_url(&self) -> Option<String> {
        self.thumb.map(href_of_thumb)
    }
}

impl Group<'_> {
    fn anchor(&self) -> String {
        match (self.name, self.one_off) {
            (Some(name), _) => format!("p-{name}"),
            (None, 0 | 1) => "command-line".to_owned(),
            (None, n) => format!("command-line-{n}"),
        }
    }

    /// The anchor as a link's fragment.
    fn anchor_url(&self) -> String {
        url_of(&self.anchor())
    }

    fn heading(&self) -> &str {
        &self.heading
    }

    /// The prompt text, when every card shares it (it is then shown once, above them).
    fn common_prompt(&self) -> Option<&str> {
        let first = &self.cards.first()?.record.prompt_text;
        self.cards
            .iter()
            .all(|c| &c.record.prompt_text == first)
            .then_some(first.as_str())
    }

    fn counts(&self) -> Counts {
        Counts::of(&self.cards)
    }
}

/// How many cards are in each state, and what the images cost.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Counts {
    images: usize,
    missing: usize,
    failed: usize,
    refused: usize,
    /// Images kept on the disk after a later attempt failed.
    kept: usize,
    /// Answers kept on the disk in a format genimg does not recognise (not in `images`).
    unrecognised: usize,
    /// Images kept outside the destination, which would not take them.
    rescued: usize,
    cost: f64,
    /// Made images whose cost the manifest does not know.
    unpriced: usize,
}

impl Counts {
    fn of(cards: &[Card<'_>]) -> Counts {
        let mut counts = Counts::default();
        for card in cards {
            match card.state {
                State::Made | State::Kept { .. } if card.unrecognised() => {
                    counts.unrecognised += 1;
                }
                State::Made | State::Kept { .. } => counts.images += 1,
                State::Missing => counts.missing += 1,
                State::NotMade if card.record.status == Status::Refused => counts.refused += 1,
                State::NotMade => counts.failed += 1,
            }
            if let State::Kept { .. } = card.state {
                counts.kept += 1;
            }
            if card.rescue().is_some() {
                counts.rescued += 1;
            }
            match card.cost() {
                Some(cost) => counts.cost += cost,
                None if card.record.status == Status::Made => counts.unpriced += 1,
                None => {}
            }
        }
        counts
    }

    /// `3 images, 1 refused`: the images, then only the troubles there are.
    fn brief(&self) -> String {
        let mut text = plural(self.images, "image");
        for (n, what) in [
            (self.failed, "failed"),
            (self.refused, "refused"),
            (self.missing, "missing"),
            (self.unrecognised, "unrecognised"),
        ] {
            if n > 0 {
                let _ = write!(text, ", {n} {what}");
            }
        }
        text
    }

    fn troubled(&self) -> bool {
        self.failed + self.refused + self.missing + self.unrecognised > 0
    }

    /// What the images cost, in dollars.
    fn cost_usd(&self) -> String {
        usd(self.cost)
    }

    /// `1 image` whose cost is unknown, if any.
    fn unpriced_images(&self) -> Option<String> {
        (self.unpriced > 0).then(|| plural(self.unpriced, "image"))
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The manifest read as a contact sheet.
#[derive(Debug)]
struct Sheet<'a> {
    groups: Vec<Group<'a>>,
    /// Everything the records cost, remade and failed images included.
    spent: f64,
    /// When the last record was written (RFC 3339, which sorts as text).
    last_finished: Option<&'a str>,
}

impl<'a> Sheet<'a> {
    fn new(records: &'a [Record], on_disk: &dyn Fn(&str) -> bool, thumbs: &'a Thumbs) -> Sheet<'a> {
        // Per file, in the order files first appear: its last record, and its last made one.
        let mut files: Vec<&str> = Vec::new();
        let mut seen: HashMap<&str, (&Record, Option<&Record>)> = HashMap::new();
        for record in records {
            let entry = seen.entry(&record.file).or_insert_with(|| {
                files.push(&record.file);
                (record, None)
            });
            entry.0 = record;
            if record.status == Status::Made {
                entry.1 = Some(record);
            }
        }
        let cards = files.iter().map(|file| {
            let (last, made) = seen[file];
            let there = on_disk(file);
            let thumb = thumbs.of_image(file);
            match (last.status, there) {
                (Status::Made, true) => Card {
                    record: last,
                    state: State::Made,
                    thumb,
                },
                (Status::Made, false) => Card {
                    record: last,
                    state: State::Missing,
                    thumb,
                },
                (Status::Failed | Status::Refused, true) => Card {
                    record: made.unwrap_or(last),
                    state: State::Kept { failure: last },
                    thumb,
                },
                (Status::Failed | Status::Refused, false) => Card {
                    record: last,
                    state: State::NotMade,
                    thumb,
                },
            }
        });

        // Prompts in the order of their prompt file, as its last run numbered them; those
        // without a number (older manifests) after, in the order the manifest names them.
        // A named prompt is one group; command-line prompts have no name, and each text is
        // a group of its own.
        let key = |record: &'a Record| match record.prompt.as_deref() {
            Some(name) => (Some(name), None),
            None => (None, Some(record.prompt_text.as_str())),
        };
        let mut groups: Vec<Group<'a>> = Vec::new();
        let mut index_of: HashMap<(Option<&str>, Option<&str>), usize> = HashMap::new();
        for record in records {
            let key = key(record);
            let at = *index_of.entry(key).or_insert_with(|| {
                groups.push(Group {
                    name: key.0,
                    one_off: 0,
                    heading: key.0.unwrap_or_default().to_owned(),
                    number: None,
                    cards: Vec::new(),
                    section: None,
                    opens_section: None,
                    inputs: Vec::new(),
                });
                groups.len() - 1
            });
            // The last record says where the prompt is now.
            let group = &mut groups[at];
            group.number = record.prompt_number.or(group.number);
            group.section = record.section.as_deref();
        }
        for card in cards {
            let group = &mut groups[index_of[&key(card.record)]];
            let record = card.record;
            let inputs = record
                .references
                .iter()
                .map(|r| ("reference", r))
                .chain(record.mask.iter().map(|m| ("mask", m)));
            for (kind, input) in inputs {
                // The same bytes are one input, wherever they were read from.
                let known = group
                    .inputs
                    .iter()
                    .any(|i| i.kind == kind && i.sha256 == input.sha256);
                if !known {
                    group.inputs.push(Input {
                        kind,
                        path: &input.path,
                        sha256: &input.sha256,
                        thumb: thumbs.of_reference(&input.sha256),
                    });
                }
            }
            group.cards.push(card);
        }
        groups.retain(|g| !g.cards.is_empty());
        // A stable sort keeps the manifest's order among equals. Prompts from the command
        // line (each the first prompt of its own run) come after the file's.
        groups.sort_by_key(|g| (g.name.is_none(), g.number.unwrap_or(usize::MAX)));
        // One command-line prompt is "the" prompt from the command line; of several, each
        // is named by the start of its text, and numbered in the page's order.
        let several = groups.iter().filter(|g| g.name.is_none()).count() > 1;
        for (n, group) in groups.iter_mut().filter(|g| g.name.is_none()).enumerate() {
            group.one_off = n + 1;
            group.heading = match group.cards.first() {
                Some(card) if several => format!(
                    "from the command line: \u{201c}{}\u{201d}",
                    crate::units::excerpt(&card.record.prompt_text, 40)
                ),
                _ => "prompt from the command line".to_owned(),
            };
        }
        let mut section = None;
        for group in &mut groups {
            if group.section != section {
                section = group.section;
                // After a bare `##`, the prompts are in no section: a heading says so.
                group.opens_section = Some(section.unwrap_or(super::dry_run::NO_SECTION));
            }
            group.cards.sort_by(|a, b| {
                (a.record.index, &a.record.file).cmp(&(b.record.index, &b.record.file))
            });
        }

        Sheet {
            groups,
            // `+ 0.0`: an empty sum of floats is -0.0, which prints as "$-0.00".
            spent: records.iter().filter_map(|r| r.cost_usd).sum::<f64>() + 0.0,
            last_finished: records
                .iter()
                .map(|r| r.finished.as_str())
                .filter(|t| !t.is_empty())
                .max(),
        }
    }

    fn counts(&self) -> Counts {
        let cards: Vec<Card<'_>> = self
            .groups
            .iter()
            .flat_map(|g| g.cards.iter().copied())
            .collect();
        Counts::of(&cards)
    }
}

/// `2026-11-24T10:00:00.400Z` as `2026-11-24 10:00 UTC`; anything else as it is.
fn when(time: &str) -> String {
    match (time.get(..10), time.get(11..16)) {
        (Some(day), Some(minute)) if time.ends_with('Z') => format!("{day} {minute} UTC"),
        _ => time.to_owned(),
    }
}

/// Why a record's attempt failed, with its attempts when there were several.
fn reason(record: &Record) -> String {
    let mut text = record
        .error
        .clone()
        .unwrap_or_else(|| "no reason recorded".to_owned());
    if !text.ends_with('.') {
        text.push('.');
    }
    if record.attempts > 1 {
        let _ = write!(text, " ({} attempts)", record.attempts);
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;

    #[test]
    fn the_names_genimg_gives_say_their_prompt_and_number() {
        assert_eq!(name_says("image_01_hd.png"), Some((None, 1)));
        assert_eq!(
            name_says("image.fox.12.standard.webp"),
            Some((Some("fox".into()), 12))
        );
        assert_eq!(
            name_says("desc_03_image_001_hd.jpg"),
            Some((Some("desc_03".into()), 1))
        );
        for other in [
            "picture.png",
            "image_1_hd.png",
            "image.fox.01.hd.txt",
            "image.a.b.01.hd.png",
            "index.html",
        ] {
            assert_eq!(name_says(other), None, "{other}");
        }
    }

    fn record(file: &str, prompt: Option<&str>, index: u32, status: Status) -> Record {
        let mut request = Map::new();
        request.insert("model".into(), json!("gpt-image-2"));
        request.insert("size".into(), json!("1024x1024"));
        request.insert("quality".into(), json!("high"));
        Record {
            file: file.to_owned(),
            prompt: prompt.map(str::to_owned),
            prompt_number: None,
            index,
            prompt_text: format!("the text of {}", prompt.unwrap_or("the command line")),
            provider: "openai".to_owned(),
            model: "gpt-image-2".to_owned(),
            operation: "images/generations".to_owned(),
            request,
            references: Vec::new(),
            mask: None,
            request_hash: "sha256:0".to_owned(),
            status,
            error: match status {
                Status::Made => None,
                Status::Failed => Some("HTTP 500 Internal Server Error: boom".to_owned()),
                Status::Refused => Some(
                    "refused by the service: Your request was rejected by the safety system"
                        .to_owned(),
                ),
            },
            attempts: 1,
            revised_prompt: None,
            usage: None,
            request_id: None,
            sha256: None,
            bytes: None,
            cost_usd: (status == Status::Made).then_some(0.211),
            started: "2026-11-24T10:00:00.000Z".to_owned(),
            finished: "2026-11-24T10:00:05.000Z".to_owned(),
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

    fn made(file: &str, prompt: &str, index: u32) -> Record {
        record(file, Some(prompt), index, Status::Made)
    }

    /// The page's `<main>`, where the cards are (the header repeats names in its table of
    /// contents).
    fn main_of(html: &str) -> &str {
        let start = html.find("<main>").expect("<main>");
        let end = html.find("</main>").expect("</main>");
        &html[start..end]
    }

    fn position(html: &str, needle: &str) -> usize {
        html.find(needle)
            .unwrap_or_else(|| panic!("{needle} not in\n{html}"))
    }

    #[test]
    fn a_users_own_index_html_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let records = [made("image_01_hd.png", "a", 1)];
        let line = serde_json::to_string(&records[0]).unwrap();
        std::fs::write(dir.path().join(manifest::FILE_NAME), format!("{line}\n")).unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "<h1>my site</h1>").unwrap();
        let path = write(dir.path()).unwrap();
        assert_eq!(path, dir.path().join(OWN_FILE_NAME));
        assert_eq!(
            std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap(),
            "<h1>my site</h1>"
        );
        // Its own page it replaces.
        std::fs::remove_file(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(write(dir.path()).unwrap(), dir.path().join(FILE_NAME));
        assert_eq!(write(dir.path()).unwrap(), dir.path().join(FILE_NAME));
    }

    #[test]
    fn five_hundred_images_make_a_page_that_stays_light() {
        let records: Vec<Record> = (0..50)
            .flat_map(|p| {
                (1..=10).map(move |i| {
                    made(
                        &format!("image.p{p:02}.{i:02}.hd.png"),
                        &format!("p{p:02}"),
                        i,
                    )
                })
            })
            .collect();
        let html = render("out", &records);
        assert_eq!(html.matches("<img ").count(), 500);
        assert_eq!(
            html.matches("loading=\"lazy\"").count(),
            500,
            "thumbnails load lazily"
        );
        assert_eq!(
            html.matches("<section ").count(),
            50,
            "one section per prompt"
        );
        assert!(html.len() < 600_000, "{} bytes", html.len());
    }

    #[test]
    fn prompts_follow_their_file_order_not_the_order_images_arrived() {
        let mut second = made("image.b.01.hd.png", "b", 1);
        second.prompt_number = Some(2);
        let mut first = made("image.a.01.hd.png", "a", 1);
        first.prompt_number = Some(1);
        // A prompt from the command line, made first: the first prompt of its own run.
        let mut one_off = record("image_01_hd.png", None, 1, Status::Made);
        one_off.prompt_number = Some(1);
        let html = render("out", &[one_off, second, first]);
        let a = html.find("id=\"p-a\"").unwrap();
        let b = html.find("id=\"p-b\"").unwrap();
        let command_line = html.find("id=\"command-line\"").unwrap();
        assert!(a < b, "prompt a comes first");
        assert!(
            b < command_line,
            "the file's prompts, then the command line's"
        );
    }

    #[test]
    fn escape_replaces_the_five_characters() {
        assert_eq!(
            escape(r#"<a href="x">Tom & Jerry's</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;"
        );
        assert_eq!(escape("&amp;"), "&amp;amp;");
        assert!(matches!(
            escape("plain text, é"),
            Cow::Borrowed("plain text, é")
        ));
        assert_eq!(escape(""), "");
    }

    #[test]
    fn urls_are_percent_encoded_and_stay_relative() {
        assert_eq!(url_of("image.city.01.hd.png"), "image.city.01.hd.png");
        assert_eq!(url_of("a b#c?d%e.png"), "a%20b%23c%3Fd%25e.png");
        assert_eq!(url_of("javascript:alert(1)"), "javascript%3Aalert%281%29");
        assert_eq!(url_of("//host/x.png"), "%2F%2Fhost%2Fx.png");
        assert_eq!(url_of("é\"<.png"), "%C3%A9%22%3C.png");
    }

    #[test]
    fn only_plain_names_are_looked_for_on_the_disk() {
        assert!(is_plain_name("image_01_hd.png"));
        assert!(!is_plain_name("../secret.png"));
        assert!(!is_plain_name("/etc/passwd"));
        assert!(!is_plain_name("a/b.png"));
        assert!(!is_plain_name(""));
    }

    #[test]
    fn images_are_grouped_by_prompt_in_first_seen_order_then_by_index() {
        let records = [
            made("image.zebra.02.hd.png", "zebra", 2),
            made("image.apple.01.hd.png", "apple", 1),
            made("image.zebra.01.hd.png", "zebra", 1),
            made("image.apple.02.hd.png", "apple", 2),
            record("image_01_hd.png", None, 1, Status::Made),
        ];
        let html = render("out", &records);
        let main = main_of(&html);
        let order: Vec<usize> = [
            "id=\"p-zebra\"",
            "src=\"image.zebra.01.hd.png\"",
            "src=\"image.zebra.02.hd.png\"",
            "id=\"p-apple\"",
            "src=\"image.apple.01.hd.png\"",
            "src=\"image.apple.02.hd.png\"",
            "id=\"command-line\"",
            "src=\"image_01_hd.png\"",
        ]
        .iter()
        .map(|n| position(main, n))
        .collect();
        assert!(order.is_sorted(), "{order:?}\n{main}");
        assert_eq!(main.matches("<figure").count(), 5);
        assert_eq!(main.matches("loading=\"lazy\"").count(), 5);
        // The table of contents: every prompt with its count, linking to its section.
        assert!(html.contains("<a href=\"#p-zebra\" data-section=\"p-zebra\">zebra <span class=\"n\">2 images</span></a>"));
        assert!(html.contains(
            "<a href=\"#command-line\" data-section=\"command-line\">prompt from the command line"
        ));
        // Shared prompt text is shown once per prompt, above its images.
        assert_eq!(main.matches("the text of zebra").count(), 1);
    }

    #[test]
    fn the_mask_an_image_was_edited_with_is_shown_escaped() {
        let mut masked = made("a.png", "x", 1);
        masked.mask = Some(manifest::ReferenceRecord {
            path: "masks/<hat>.png".into(),
            format: "image/png".to_owned(),
            bytes: 10,
            sha256: "00".to_owned(),
        });
        let plain = made("b.png", "x", 2);
        let html = render("t", &[masked, plain]);
        let main = main_of(&html);
        assert_eq!(
            main.matches("<p class=\"mask\">").count(),
            1,
            "only the masked image: {main}"
        );
        assert!(
            main.contains("<p class=\"mask\">Edited with the mask masks/&lt;hat&gt;.png</p>"),
            "{main}"
        );
    }

    #[test]
    fn text_is_escaped_everywhere() {
        let mut r = made("a&b.png", "x", 1);
        r.prompt_text = "a <script>alert('hi')</script> & \"quotes\"".to_owned();
        r.revised_prompt = Some("<b>bold</b>".to_owned());
        let html = render("<title> & co", &[r]);
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<b>bold"), "{html}");
        assert!(html.contains(
            "a &lt;script&gt;alert(&#39;hi&#39;)&lt;/script&gt; &amp; &quot;quotes&quot;"
        ));
        assert!(html.contains("&lt;b&gt;bold&lt;/b&gt;"));
        assert!(html.contains("<title>&lt;title&gt; &amp; co · genimg</title>"));
        assert!(html.contains("href=\"a%26b.png\""), "{html}");
        assert!(html.contains("alt=\"a&amp;b.png\""), "{html}");
    }

    #[test]
    fn failed_and_refused_images_are_marked_with_their_reasons() {
        let mut failed = record("image.a.02.hd.png", Some("a"), 2, Status::Failed);
        failed.attempts = 5;
        let records = [
            made("image.a.01.hd.png", "a", 1),
            failed,
            record("image.b.01.hd.png", Some("b"), 1, Status::Refused),
        ];
        let html = render("out", &records);
        let main = main_of(&html);
        assert!(main.contains("<figure class=\"failed\">"));
        assert!(main.contains("<figure class=\"refused\">"));
        assert!(main.contains(
            "<span class=\"status\">failed</span><p class=\"reason\">HTTP 500 Internal Server Error: boom. (5 attempts)</p>"
        ), "{main}");
        assert!(main.contains("<span class=\"status\">refused</span><p class=\"reason\">refused by the service: Your request was rejected by the safety system.</p>"), "{main}");
        // No image for what was not made.
        assert_eq!(main.matches("<img").count(), 1);
        assert!(
            html.contains(
                "<b>1</b> made · <b class=\"bad\">1</b> failed · <b class=\"bad\">1</b> refused"
            ),
            "{html}"
        );
        assert!(
            html.contains(
                "<a href=\"#p-a\" data-section=\"p-a\" class=\"bad\">a <span class=\"n\">1 image, 1 failed</span></a>"
            ),
            "{html}"
        );
    }

    #[test]
    fn a_refusals_stage_and_categories_are_shown_as_fields_escaped() {
        let mut refused = record("image.b.01.hd.png", Some("b"), 1, Status::Refused);
        refused.error = Some(
            "refused by the service: HTTP 400 Bad Request: rejected (code moderation_blocked, \
             refused at the output stage for violence, <b>odd</b>); reword the prompt at p.txt:4"
                .to_owned(),
        );
        refused.moderation = Some(manifest::Moderation {
            stage: Some("output".to_owned()),
            categories: vec!["violence".to_owned(), "<b>odd</b>".to_owned()],
        });
        let html = render("out", &[made("image.a.01.hd.png", "a", 1), refused.clone()]);
        let main = main_of(&html);
        assert!(
            main.contains(
                "<dl class=\"refusal\"><dt>stage</dt><dd>output</dd><dt>categories</dt><dd>violence, &lt;b&gt;odd&lt;/b&gt;</dd></dl>"
            ),
            "{main}"
        );
        assert!(!main.contains("<b>odd"), "{main}");
        assert!(
            main.contains("; reword the prompt at p.txt:4.</p>"),
            "the hint is in the reason: {main}"
        );
        assert_eq!(main.matches("class=\"refusal\"").count(), 1, "{main}");

        // Only what the service said: no stage, no stage field.
        refused.moderation = Some(manifest::Moderation {
            stage: None,
            categories: vec!["sexual".to_owned()],
        });
        let main = render("out", std::slice::from_ref(&refused));
        assert!(
            main.contains("<dl class=\"refusal\"><dt>categories</dt><dd>sexual</dd></dl>"),
            "{main}"
        );

        // A refusal after an image was made: the card shows the image, and the refusal.
        let mut later = refused.clone();
        later.file = "image.a.01.hd.png".to_owned();
        later.prompt = Some("a".to_owned());
        let html = render("out", &[made("image.a.01.hd.png", "a", 1), later]);
        let main = main_of(&html);
        assert!(main.contains("<figure class=\"kept\">"), "{main}");
        assert!(
            main.contains("<dl class=\"refusal\"><dt>categories</dt><dd>sexual</dd></dl>"),
            "{main}"
        );

        // A refusal without details has none.
        let plain = record("image.c.01.hd.png", Some("c"), 1, Status::Refused);
        assert!(!render("out", &[plain]).contains("class=\"refusal\""));
    }

    #[test]
    fn the_revised_prompt_model_size_quality_and_cost_are_shown() {
        let mut r = made("image.a.01.hd.png", "a", 1);
        r.revised_prompt = Some("A lighthouse at dusk, oil on canvas".to_owned());
        r.cost_usd = Some(0.5);
        let mut cheap = made("image.a.02.hd.png", "a", 2);
        cheap.cost_usd = Some(0.011);
        let html = render("out", &[r, cheap]);
        assert!(html.contains(
            "<details class=\"revised\"><summary>revised prompt</summary><p>A lighthouse at dusk, oil on canvas</p></details>"
        ), "{html}");
        assert!(
            html.contains(
                "<div class=\"meta\">#1 · OpenAI gpt-image-2 · 1024x1024 · high · $0.50</div>"
            ),
            "{html}"
        );
        assert!(
            html.contains(
                "<div class=\"meta\">#2 · OpenAI gpt-image-2 · 1024x1024 · high · $0.011</div>"
            ),
            "{html}"
        );
        assert!(html.contains("cost <b>$0.511</b>"), "{html}");
        assert!(html.contains("2 images · $0.511</span></h2>"), "{html}");
    }

    #[test]
    fn a_file_missing_from_the_disk_is_noted_not_shown_broken() {
        let records = [made("here.png", "a", 1), made("gone.png", "a", 2)];
        let html = render_with("out", &records, |f| f == "here.png");
        let main = main_of(&html);
        assert!(main.contains("<img src=\"here.png\""));
        assert!(!main.contains("src=\"gone.png\""), "{main}");
        assert!(!main.contains("href=\"gone.png\""), "{main}");
        assert!(main.contains("<figure class=\"missing\">"));
        assert!(main.contains("The file is no longer on the disk."));
        assert!(html.contains("<b class=\"warn\">1</b> missing from the disk"));
    }

    #[test]
    fn the_last_record_decides_but_a_failure_keeps_the_earlier_image_on_disk() {
        let mut first = made("a.png", "a", 1);
        first.revised_prompt = Some("the first".to_owned());
        let mut second = made("a.png", "a", 1);
        second.revised_prompt = Some("the second".to_owned());
        let mut failure = record("a.png", Some("a"), 1, Status::Failed);
        failure.finished = "2026-11-25T08:30:00.000Z".to_owned();
        let remade = [first.clone(), second.clone()];
        let html = render("out", &remade);
        assert!(html.contains("the second") && !html.contains("the first"));
        assert_eq!(main_of(&html).matches("<figure").count(), 1);

        let records = [first, second, failure];
        let html = render("out", &records);
        let main = main_of(&html);
        assert!(main.contains("<figure class=\"kept\">"), "{main}");
        assert!(main.contains("<img src=\"a.png\""));
        assert!(
            main.contains("the second"),
            "the image shown is the last one made"
        );
        assert!(main.contains(
            "The last attempt failed 2026-11-25 08:30 UTC: HTTP 500 Internal Server Error: boom. The image shown was made before it."
        ), "{main}");
        assert!(html.contains("<b>1</b> made · <b>0</b> failed"), "{html}");

        // Once the file is gone, the failure is what it is.
        let html = render_with("out", &records, |_| false);
        assert!(main_of(&html).contains("<figure class=\"failed\">"));
        assert!(
            html.contains("<b>0</b> made · <b class=\"bad\">1</b> failed"),
            "{html}"
        );
    }

    #[test]
    fn the_header_totals_what_was_spent_and_when() {
        let mut old = made("a.png", "a", 1);
        old.cost_usd = Some(1.0);
        let mut new = made("a.png", "a", 1);
        new.cost_usd = Some(0.25);
        new.finished = "2026-11-26T09:15:42.123Z".to_owned();
        let mut unknown = made("b.png", "a", 2);
        unknown.cost_usd = None;
        let html = render("out", &[old, new, unknown]);
        assert!(
            html.contains("cost <b>$0.25</b> (unknown for 1 image), $1.25 spent in all runs"),
            "{html}"
        );
        assert!(html.contains("last image 2026-11-26 09:15 UTC"), "{html}");
    }

    #[test]
    fn differing_prompt_texts_are_shown_on_each_image() {
        // A prompt reworded since its first image was made.
        let a = record("image.fox.01.hd.png", Some("fox"), 1, Status::Made);
        let mut b = record("image.fox.02.hd.png", Some("fox"), 2, Status::Made);
        b.prompt_text = "another fox".to_owned();
        let html = render("out", &[a, b]);
        let main = main_of(&html);
        assert_eq!(main.matches("<section").count(), 1, "{main}");
        assert!(!main.contains("<p class=\"prompt\">"), "{main}");
        assert!(main.contains("<details><summary>prompt</summary><p>another fox</p></details>"));
        assert!(main.contains("<summary>prompt</summary><p>the text of fox</p>"));
    }

    /// Prompts given on the command line have no name: each text is a section of its own,
    /// which the filter can tell from the others.
    #[test]
    fn each_command_line_prompt_is_a_section_of_its_own() {
        let a = record("image_01_hd.png", None, 1, Status::Made);
        let mut b = record("image_02_hd.png", None, 1, Status::Made);
        b.prompt_text = "a red fox in snow".to_owned();
        let mut c = record("image_03_hd.png", None, 2, Status::Made);
        c.prompt_text = "a red fox in snow".to_owned();
        let html = render("out", &[a, b, c]);
        let main = main_of(&html);
        let sections: Vec<&str> = main.split("<section id=\"").skip(1).collect();
        assert_eq!(sections.len(), 2, "{main}");
        assert!(sections[0].starts_with("command-line\""), "{}", sections[0]);
        assert!(sections[0].contains("<p class=\"prompt\">the text of the command line</p>"));
        assert!(
            sections[1].starts_with("command-line-2\""),
            "{}",
            sections[1]
        );
        assert!(sections[1].contains("<p class=\"prompt\">a red fox in snow</p>"));
        assert_eq!(sections[1].matches("<figure").count(), 2);
        assert!(html.contains(
            "<a href=\"#command-line-2\" data-section=\"command-line-2\">from the command line: \u{201c}a red fox in snow\u{201d}"
        ), "{html}");
    }

    #[test]
    fn an_empty_manifest_makes_a_page_that_says_so() {
        let html = render("out", &[]);
        assert!(html.contains("No images recorded yet."));
        assert!(html.contains("<b>0</b> made"));
    }

    #[test]
    fn the_page_fetches_nothing() {
        let html = render("out", &[made("a.png", "a", 1)]);
        assert!(
            !html.contains("http:") && !html.contains("https:"),
            "{html}"
        );
        assert!(!html.contains("<link") && !html.contains(" src=\"//"));
        assert!(html.contains("document.body.dataset.loaded"));
    }

    #[test]
    fn write_needs_a_manifest_and_writes_the_page_atomically() {
        let tmp = tempfile::tempdir().unwrap();
        let err = write(tmp.path()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(
            err.to_string(),
            format!(
                "no genimg.jsonl in {}: nothing to show",
                tmp.path().display()
            )
        );

        let records = [made("here.png", "a", 1), made("gone.png", "a", 2)];
        let mut text = String::new();
        for r in &records {
            text.push_str(&serde_json::to_string(r).unwrap());
            text.push('\n');
        }
        std::fs::write(tmp.path().join(manifest::FILE_NAME), text).unwrap();
        std::fs::write(tmp.path().join("here.png"), b"png").unwrap();
        let path = write(tmp.path()).unwrap();
        assert_eq!(path, tmp.path().join(FILE_NAME));
        let html = std::fs::read_to_string(&path).unwrap();
        assert!(html.contains("<img src=\"here.png\""));
        assert!(html.contains("<figure class=\"missing\">"));
        let mut names: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["genimg.jsonl", "here.png", "index.html"],
            "no temporary left"
        );
    }

    #[test]
    fn an_answer_in_another_format_is_shown_with_a_note() {
        let mut png = made("image.a.01.hd.png", "a", 1);
        png.planned_file = Some("image.a.01.hd.webp".to_owned());
        png.asked_format = Some("webp".to_owned());
        png.received_format = Some("png".to_owned());
        let plain = made("image.a.02.hd.webp", "a", 2);
        let html = render("out", &[png, plain]);
        let main = main_of(&html);
        assert!(main.contains("<img src=\"image.a.01.hd.png\""), "{main}");
        assert!(
            main.contains("<div class=\"meta\">#1 · OpenAI gpt-image-2 · 1024x1024 · high · $0.211</div>\n<p class=\"note\">Format: asked for webp, received png; planned as image.a.01.hd.webp.</p>"),
            "{main}"
        );
        assert_eq!(main.matches("Format:").count(), 1, "only where they differ");
        assert!(html.contains("<b>2</b> made · <b>0</b> failed"), "{html}");
    }

    #[test]
    fn an_unrecognised_answer_is_linked_not_shown_as_an_image() {
        let file = ".genimg/unrecognised/image.cat.01.hd.bin";
        let mut odd = made(file, "cat", 1);
        odd.planned_file = Some("image.cat.01.hd.png".to_owned());
        odd.asked_format = Some("png".to_owned());
        odd.received_format = Some("unknown".to_owned());
        let records = [odd, made("image.cat.02.hd.png", "cat", 2)];
        let html = render("out", &records);
        let main = main_of(&html);
        assert_eq!(main.matches("<img").count(), 1, "{main}");
        assert!(!main.contains("src=\".genimg"), "{main}");
        assert!(main.contains("<figure class=\"unrecognised\">"), "{main}");
        assert!(main.contains(
            "<span class=\"status\">unrecognised</span><p class=\"reason\">Not an image genimg can show: the answer's bytes were kept as they came. <a href=\".genimg/unrecognised/image.cat.01.hd.bin\">Open the file</a></p>"
        ), "{main}");
        assert!(main.contains(
            "<a class=\"file\" href=\".genimg/unrecognised/image.cat.01.hd.bin\" title=\".genimg/unrecognised/image.cat.01.hd.bin\">"
        ), "{main}");
        assert!(main.contains(
            "<p class=\"note\">Format: asked for png, received bytes genimg does not recognise; planned as image.cat.01.hd.png.</p>"
        ), "{main}");
        // Paid for, so counted in the cost, but not an image.
        assert!(html.contains(
            "<b>1</b> made · <b>0</b> failed · <b class=\"warn\">1</b> in a format genimg does not recognise · cost <b>$0.422</b>"
        ), "{html}");
        assert!(html.contains(
            "<a href=\"#p-cat\" data-section=\"p-cat\" class=\"bad\">cat <span class=\"n\">1 image, 1 unrecognised</span></a>"
        ), "{html}");

        // Gone from the disk, it is missing like any file.
        let html = render_with("out", &records, |f| f != file);
        let main = main_of(&html);
        assert!(main.contains("<figure class=\"missing\">"), "{main}");
        assert!(!main.contains("href=\".genimg"), "{main}");
    }

    #[test]
    fn a_rescued_svg_is_linked_as_a_download_never_as_a_page() {
        let mut lost = record("image.a.01.hd.svg", Some("a"), 1, Status::Failed);
        lost.error = Some("could not save image.a.01.hd.svg: No space left on device".to_owned());
        lost.rescued = Some("/tmp/genimg rescue/out/image.a.01.hd.SVG".to_owned());
        let html = render("out", &[lost]);
        let main = main_of(&html);
        let links: Vec<&str> = main
            .split("<a ")
            .skip(1)
            .filter(|a| a.contains("rescue"))
            .collect();
        assert_eq!(links.len(), 1, "{main}");
        assert!(
            links[0]
                .starts_with("href=\"file:///tmp/genimg%20rescue/out/image.a.01.hd.SVG\" download"),
            "an SVG from a model runs its scripts when opened as a page: {main}"
        );
        // Any other image is linked as before.
        let mut png = record("image.a.01.hd.png", Some("a"), 1, Status::Failed);
        png.rescued = Some("/tmp/r/image.a.01.hd.png".to_owned());
        let html = render("out", &[png]);
        assert!(main_of(&html).contains("<a href=\"file:///tmp/r/image.a.01.hd.png\">"));
    }

    #[test]
    fn a_rescued_image_is_shown_on_its_failed_card_with_where_it_is() {
        let mut lost = record("image.a.02.hd.png", Some("a"), 2, Status::Failed);
        lost.error = Some("could not save image.a.02.hd.png: No space left on device".to_owned());
        lost.cost_usd = Some(0.211);
        lost.rescued = Some("/tmp/genimg rescue/<out>/image.a.02.hd.png".to_owned());
        let records = [made("image.a.01.hd.png", "a", 1), lost];
        let html = render("out", &records);
        let main = main_of(&html);
        assert!(main.contains(
            "<figure class=\"failed\">\n<div class=\"thumb none\"><span class=\"status\">failed</span><p class=\"reason\">could not save image.a.02.hd.png: No space left on device.</p></div>"
        ), "{main}");
        assert!(
            main.contains(
                "<div class=\"meta\">#2 · OpenAI gpt-image-2 · 1024x1024 · high · $0.211</div>"
            ),
            "what it cost is shown: {main}"
        );
        assert!(main.contains(
            "<p class=\"note\">The image was paid for, and kept outside the destination, which would not take it: <a href=\"file:///tmp/genimg%20rescue/%3Cout%3E/image.a.02.hd.png\">/tmp/genimg rescue/&lt;out&gt;/image.a.02.hd.png</a></p>"
        ), "{main}");
        assert_eq!(main.matches("<img").count(), 1, "{main}");
        assert!(html.contains(
            "<b>1</b> made · <b class=\"bad\">1</b> failed · <b class=\"warn\">1</b> kept outside the destination · cost <b>$0.422</b>"
        ), "{html}");

        // A rescue after an earlier image of the file: the card shows that image, and the
        // rescue with the failure.
        let mut again = records[1].clone();
        again.file = "image.a.01.hd.png".to_owned();
        again.index = 1;
        let html = render("out", &[records[0].clone(), again]);
        let main = main_of(&html);
        assert!(main.contains("<figure class=\"kept\">"), "{main}");
        assert!(main.contains("<img src=\"image.a.01.hd.png\""), "{main}");
        assert!(main.contains("kept outside the destination, which would not take it: <a href=\"file:///tmp/genimg%20rescue/"), "{main}");
    }

    #[test]
    fn unrecognised_answers_are_looked_for_but_nothing_outside_the_destination() {
        for path in [
            "image_01_hd.png",
            ".genimg/unrecognised/image.cat.01.hd.bin",
        ] {
            assert!(is_own_path(path), "{path}");
        }
        for path in [
            "../secret.png",
            "/etc/passwd",
            "a/b.png",
            "",
            ".genimg/unrecognised",
            ".genimg/unrecognised/../../secret.png",
            ".genimg/unrecognised/../x.bin",
            "/.genimg/unrecognised/x.bin",
            "../.genimg/unrecognised/x.bin",
            ".genimg/other/x.bin",
            ".genimg/unrecognised/sub/x.bin",
        ] {
            assert!(!is_own_path(path), "{path}");
        }
        // Only the slashes of an unrecognised answer's path stay slashes.
        assert_eq!(
            href_of(".genimg/unrecognised/a b#1.bin"),
            ".genimg/unrecognised/a%20b%231.bin"
        );
        assert_eq!(href_of("a/b.png"), "a%2Fb.png");
        assert_eq!(href_of("//host/x.png"), "%2F%2Fhost%2Fx.png");
    }

    #[test]
    fn write_finds_unrecognised_answers_in_their_folder_and_nothing_outside() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("out");
        std::fs::create_dir_all(dir.join(".genimg/unrecognised")).unwrap();
        std::fs::write(dir.join(".genimg/unrecognised/x.bin"), b"?").unwrap();
        std::fs::write(root.path().join("outside.png"), b"png").unwrap();
        let mut odd = made(".genimg/unrecognised/x.bin", "a", 1);
        odd.received_format = Some("unknown".to_owned());
        let records = [odd, made("../outside.png", "a", 2)];
        let mut text = String::new();
        for r in &records {
            text.push_str(&serde_json::to_string(r).unwrap());
            text.push('\n');
        }
        std::fs::write(dir.join(manifest::FILE_NAME), text).unwrap();
        let html = std::fs::read_to_string(write(&dir).unwrap()).unwrap();
        let main = main_of(&html);
        assert!(main.contains("<figure class=\"unrecognised\">"), "{main}");
        assert!(main.contains("<a href=\".genimg/unrecognised/x.bin\">Open the file</a>"));
        assert!(main.contains("<figure class=\"missing\">"), "{main}");
        assert!(!main.contains("outside.png\" "), "{main}");
        assert!(!main.contains("src="), "{main}");
    }

    #[test]
    fn rebuild_never_writes_while_a_run_holds_the_lock_and_a_run_writes_under_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let err = rebuild(dir).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(
            !dir.join(".genimg.lock").exists(),
            "no lock file where there is nothing to show"
        );

        let line = serde_json::to_string(&made("a.png", "a", 1)).unwrap();
        std::fs::write(dir.join(manifest::FILE_NAME), format!("{line}\n")).unwrap();
        let run = Lock::take(dir).unwrap();
        let err = rebuild(dir).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(
            err.to_string(),
            format!(
                "another genimg run (process {}) is writing there; try again when it has finished",
                std::process::id()
            )
        );
        assert!(!dir.join(FILE_NAME).exists(), "nothing written");
        // The run holding the lock writes its own page.
        assert_eq!(write(dir).unwrap(), dir.join(FILE_NAME));

        drop(run);
        assert_eq!(rebuild(dir).unwrap(), dir.join(FILE_NAME));
        // And holds the lock only while it writes.
        drop(Lock::take(dir).unwrap());
    }
}
