//! The options of a prompt's requests, from wherever they were given, checked against its
//! model before any request.
//!
//! Options come in layers: built-in defaults, then the config file, then the command line,
//! then the options on a prompt's header line (`# wide size=1536x1024 quality=low`). Each
//! value remembers where it came from, so an error names the flag, the config file's key or
//! the prompt file's line.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::catalog::{DEFAULT_MODEL, Model, Size, Tier};
use crate::config::ConfigError;
use crate::config::input::{self, ReadLimitError};
use crate::format::ImageFormat;
use crate::prompts::HeaderOption;
use crate::spec::{ImageOptions, Quality, Reference};
use crate::units::human_bytes;
use crate::values::{
    parse_aspect_ratio, parse_background, parse_complexity, parse_compression, parse_count,
    parse_fidelity, parse_format, parse_image_size, parse_moderation, parse_quality,
};

/// Where a value was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag, e.g. `--size`.
    Flag(&'static str),
    /// A key of the config file.
    File { path: String, key: String },
    /// An option on a prompt's header line: `prompts.txt:3`.
    Header { at: String, key: String },
}

impl Source {
    /// The value as the user wrote it, where they wrote it: `--size 100x100`,
    /// `config.toml: size = "100x100"`, `prompts.txt:3: size=100x100`.
    pub fn show(&self, value: &str) -> String {
        match self {
            Source::Flag(flag) => format!("{flag} {value}"),
            Source::File { path, key } => format!("{path}: {key} = \"{value}\""),
            Source::Header { at, key } => format!("{at}: {key}={value}"),
        }
    }

    /// Where the value was given, without it: `--reference-image`, `prompts.txt:3: ref=`.
    pub fn place(&self) -> String {
        match self {
            Source::Flag(flag) => (*flag).to_owned(),
            Source::File { path, key } => format!("{path}: {key}"),
            Source::Header { at, key } => format!("{at}: {key}="),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Given<T> {
    pub value: T,
    pub from: Source,
}

impl<T: fmt::Display> Given<T> {
    fn error(&self, problem: impl Into<String>) -> ConfigError {
        ConfigError::Option {
            given: self.from.show(&self.value.to_string()),
            problem: problem.into(),
        }
    }
}

/// What a prompt asks for before it is checked: each option as the nearest layer gave it.
#[derive(Debug, Clone, Default)]
pub struct Choices {
    pub model: Option<Given<String>>,
    pub count: Option<Given<u32>>,
    pub low_res: bool,
    pub size: Option<Given<Size>>,
    pub quality: Option<Given<&'static str>>,
    pub format: Option<Given<ImageFormat>>,
    pub compression: Option<Given<u8>>,
    pub background: Option<Given<&'static str>>,
    pub moderation: Option<Given<&'static str>>,
    pub input_fidelity: Option<Given<&'static str>>,
    pub complexity: Option<Given<&'static str>>,
    pub aspect_ratio: Option<Given<&'static str>>,
    /// `--stream`, or `--partial-images` (which implies it).
    pub stream: Option<Given<bool>>,
    pub partial_images: Option<Given<u8>>,
    pub image_size: Option<Given<&'static str>>,
    /// The preamble put before every prompt's text, already read if it was `@FILE`.
    pub style: Option<Given<String>>,
    /// Reference images; an empty list means none.
    pub references: Option<Given<Vec<PathBuf>>>,
    /// Fields added to the request body (`--param KEY=VALUE`), by key: a layer replaces the
    /// keys it gives and keeps the others.
    pub params: BTreeMap<String, Given<Param>>,
    /// The mask of the edits (`--mask`), read and checked with the references.
    pub mask: Option<Given<PathBuf>>,
}

/// A `--param`'s value, with the text it was read from (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub value: serde_json::Value,
    pub text: String,
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Given<Param> {
    /// The param as the user wrote it, where they wrote it: `--param frame_count=8`,
    /// `prompts.txt:3: param.frame_count=8`, `config.toml: param.frame_count = "8"`.
    pub fn shown(&self, key: &str) -> String {
        match &self.from {
            Source::Flag(_) => self.from.show(&format!("{key}={}", self.value.text)),
            _ => self.from.show(&self.value.text),
        }
    }
}

impl Param {
    /// A value as written on the command line or a header: JSON where it parses, else text.
    pub fn read(text: &str) -> Param {
        Param {
            value: crate::values::param_value(text),
            text: text.to_owned(),
        }
    }

    /// A value of the config file, already typed: shown as JSON, a string without quotes.
    pub fn typed(value: serde_json::Value) -> Param {
        let text = match &value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        Param { value, text }
    }
}

/// The header key of a param: `param.KEY`.
pub const PARAM_PREFIX: &str = "param.";

/// The keys a header line may carry, and the flag each stands for.
pub const HEADER_KEYS: &[(&str, &str)] = &[
    ("model", "--model"),
    ("count", "--count"),
    ("size", "--size"),
    ("quality", "--quality"),
    ("format", "--format"),
    ("compression", "--compression"),
    ("background", "--background"),
    ("moderation", "--moderation"),
    ("input_fidelity", "--input-fidelity"),
    ("complexity", "--complexity"),
    ("aspect_ratio", "--aspect-ratio"),
    ("image_size", "--image-size"),
    ("style", "--style"),
    ("ref", "--reference-image"),
    ("param.KEY", "--param KEY=VALUE"),
    ("mask", "--mask"),
];

impl Choices {
    /// Lays a prompt's header options over these choices. Paths (`ref=`, `style=@FILE`) are
    /// relative to `base`, the prompt file's directory. The first `ref=` replaces the
    /// references given elsewhere; more `ref=`s add to it.
    pub fn with_header(
        &self,
        options: &[HeaderOption],
        at: &str,
        base: &Path,
    ) -> Result<Choices, ConfigError> {
        let mut c = self.clone();
        let mut own_refs = false;
        for o in options {
            if let Some(name) = o.key.strip_prefix(PARAM_PREFIX) {
                crate::values::check_param_key(name).map_err(|problem| ConfigError::Option {
                    given: format!("{at}: {}={}", o.key, o.value),
                    problem,
                })?;
                c.params.insert(
                    name.to_owned(),
                    Given {
                        value: Param::read(&o.value),
                        from: Source::Header {
                            at: at.to_owned(),
                            key: o.key.clone(),
                        },
                    },
                );
                continue;
            }
            let key = o.key.replace('-', "_");
            let from = Source::Header {
                at: at.to_owned(),
                key: o.key.clone(),
            };
            let bad = |problem: String| ConfigError::Option {
                given: from.show(&o.value),
                problem,
            };
            let v = o.value.as_str();
            match key.as_str() {
                "model" => c.model = Some(given_at(v.to_owned(), &from)),
                "count" => {
                    c.count = Some(Given {
                        value: parse_count(v).map_err(bad)?,
                        from: from.clone(),
                    });
                }
                "size" => {
                    c.size = Some(Given {
                        value: v.parse().map_err(bad)?,
                        from: from.clone(),
                    });
                }
                "quality" => c.quality = Some(given_at(parse_quality(v).map_err(bad)?, &from)),
                "format" => {
                    c.format = Some(Given {
                        value: parse_format(v).map_err(bad)?,
                        from: from.clone(),
                    });
                }
                "compression" => {
                    c.compression = Some(Given {
                        value: parse_compression(v).map_err(bad)?,
                        from: from.clone(),
                    });
                }
                "background" => {
                    c.background = Some(given_at(parse_background(v).map_err(bad)?, &from))
                }
                "moderation" => {
                    c.moderation = Some(given_at(parse_moderation(v).map_err(bad)?, &from))
                }
                "input_fidelity" | "fidelity" => {
                    c.input_fidelity = Some(given_at(parse_fidelity(v).map_err(bad)?, &from));
                }
                "complexity" => {
                    c.complexity = Some(given_at(parse_complexity(v).map_err(bad)?, &from))
                }
                "aspect_ratio" => {
                    c.aspect_ratio = Some(given_at(parse_aspect_ratio(v).map_err(bad)?, &from))
                }
                "image_size" => {
                    c.image_size = Some(given_at(parse_image_size(v).map_err(bad)?, &from))
                }
                "style" => {
                    c.style = Some(Given {
                        value: read_style(v, base).map_err(bad)?,
                        from: from.clone(),
                    });
                }
                "ref" | "reference_image" => {
                    let path = base.join(v);
                    match (&mut c.references, own_refs) {
                        (Some(refs), true) => refs.value.push(path),
                        _ => {
                            c.references = Some(Given {
                                value: vec![path],
                                from: from.clone(),
                            });
                        }
                    }
                    own_refs = true;
                }
                "mask" => c.mask = Some(given_at(base.join(v), &from)),
                _ => {
                    let keys: Vec<&str> = HEADER_KEYS.iter().map(|(k, _)| *k).collect();
                    return Err(ConfigError::Option {
                        given: format!("{at}: {}", o.key),
                        problem: format!("unknown option; a header takes {}", keys.join(", ")),
                    });
                }
            }
        }
        Ok(c)
    }

    /// Checks every choice against the model and reads the reference images (each file
    /// once per run, through `cache`).
    pub fn resolve(&self, cache: &mut ReferenceCache) -> Result<Settings, ConfigError> {
        let model = match &self.model {
            Some(m) if m.value.trim().is_empty() => {
                return Err(ConfigError::EmptyModel {
                    place: m.from.place(),
                });
            }
            Some(m) => Model::lookup(m.value.trim()),
            None => Model::lookup(DEFAULT_MODEL),
        };
        let info = model.info();
        let name = model.name().to_owned();

        let references = match &self.references {
            Some(refs) if !refs.value.is_empty() => cache.load(refs, &model)?,
            _ => Arc::from([]),
        };
        let mask = match &self.mask {
            Some(mask) => Some(cache.load_mask(mask, &model, &references)?),
            None => None,
        };

        let mut options = ImageOptions {
            quality: Quality::Tier(if self.low_res {
                Tier::Standard
            } else {
                Tier::Hd
            }),
            ..ImageOptions::default()
        };
        if let Some(size) = &self.size {
            model.check_size(&size.value).map_err(|p| size.error(p))?;
            options.size = size.value;
        }
        // The seed's words mean its levels on any model that has them: `hd` is `high` on
        // a GPT image model, as the file names (`image_01_hd.png`) already say.
        let tier = match self.quality.as_ref().map(|q| q.value) {
            Some("hd") => Some(Tier::Hd),
            Some("standard") => Some(Tier::Standard),
            _ => None,
        };
        if let Some(tier) = tier.filter(|_| model.takes_tiers())
            && !info
                .qualities
                .contains(&self.quality.as_ref().map_or("", |q| q.value))
        {
            options.quality = Quality::Tier(tier);
        } else if let Some(q) = &self.quality {
            if !info.qualities.contains(&q.value) {
                return Err(q.error(match info.qualities {
                    [] => format!("{name} takes no quality"),
                    list => format!("{name} takes the qualities {}", list.join(", ")),
                }));
            }
            options.quality = Quality::Named(q.value);
        }

        let output_only = |what: &str| format!("{name} does not take {what}; GPT image models do");
        if let Some(f) = &self.format {
            if !info.output_options {
                return Err(ConfigError::Option {
                    given: f.from.show(f.value.extension()),
                    problem: output_only("an output format"),
                });
            }
            if matches!(f.value, ImageFormat::Gif | ImageFormat::Svg)
                && !info.more_formats.contains(&f.value)
            {
                return Err(ConfigError::Option {
                    given: f.from.show(f.value.extension()),
                    problem: format!(
                        "{name} does not make {} images; the gpt-image-2.6 models do",
                        f.value
                    ),
                });
            }
            if f.value == ImageFormat::Svg && !references.is_empty() {
                return Err(ConfigError::Option {
                    given: f.from.show(f.value.extension()),
                    problem: "SVG is made by generations only, one image per request: it takes \
                              no reference image"
                        .to_owned(),
                });
            }
            options.format = Some(f.value);
        }
        let format = options.format.unwrap_or(ImageFormat::Png);
        if let Some(c) = &self.compression {
            if !info.output_options {
                return Err(c.error(output_only("a compression level")));
            }
            if !matches!(format, ImageFormat::Jpeg | ImageFormat::Webp) {
                return Err(c.error(
                    "compression applies to JPEG and WebP output: add --format jpeg or webp",
                ));
            }
            options.compression = Some(c.value);
        }
        if let Some(b) = &self.background {
            if !info.output_options {
                return Err(b.error(output_only("a background")));
            }
            if b.value == "transparent" {
                if !info.transparency {
                    return Err(b.error(format!("{name} cannot make transparent images")));
                }
                if matches!(
                    format,
                    ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::Svg
                ) {
                    return Err(b.error(format!(
                        "a transparent background needs PNG or WebP, not {format}"
                    )));
                }
            }
            options.background = Some(b.value);
        }
        if let Some(m) = &self.moderation {
            if !info.output_options {
                return Err(m.error(output_only("a moderation level")));
            }
            options.moderation = Some(m.value);
        }
        if let Some(f) = &self.input_fidelity {
            if !info.input_fidelity {
                return Err(f.error(format!(
                    "{name} does not take an input fidelity; gpt-image-1.5 and \
                     chatgpt-image-latest do"
                )));
            }
            if references.is_empty() {
                return Err(
                    f.error("input fidelity applies to edits: give reference images as well")
                );
            }
            options.input_fidelity = Some(f.value);
        }
        if let Some(c) = &self.complexity {
            if !info.complexity {
                return Err(c.error(format!(
                    "{name} does not take a complexity; the gpt-image-2.6 models do"
                )));
            }
            options.complexity = Some(c.value);
        }

        let streamed = self.stream.as_ref().filter(|s| s.value).map(|s| &s.from);
        if let Some(from) = self.partial_images.as_ref().map(|p| &p.from).or(streamed) {
            if info.family != crate::catalog::Family::GptImage {
                return Err(ConfigError::Option {
                    given: from.place(),
                    problem: format!("{name} does not stream its answers; the GPT image models do"),
                });
            }
            options.stream = true;
            options.partial_images = self.partial_images.as_ref().map(|p| p.value);
        }
        if let Some(r) = &self.aspect_ratio {
            match info.aspect_ratios {
                [] => {
                    return Err(r.error(format!(
                        "{name} does not take an aspect ratio; Gemini models do (for \
                         {name}, give --size)"
                    )));
                }
                list if !list.contains(&r.value) => {
                    return Err(r.error(format!("{name} takes the ratios {}", list.join(", "))));
                }
                _ => options.aspect_ratio = Some(r.value),
            }
        }
        if let Some(size) = &self.image_size {
            match info.image_sizes {
                [] if info.aspect_ratios.is_empty() => {
                    return Err(size.error(format!(
                        "{name} does not take an image size; Gemini models do (for {name}, \
                         give --size)"
                    )));
                }
                [] => return Err(size.error(format!("{name} takes no image size: it makes 1K"))),
                list if !list.contains(&size.value) => {
                    return Err(
                        size.error(format!("{name} takes the image sizes {}", list.join(", ")))
                    );
                }
                _ => options.image_size = Some(size.value),
            }
        }
        if let Some(limit) = info.max_request_bytes {
            let carried: u64 = references
                .iter()
                .map(|r| (r.bytes.len() as u64).div_ceil(3) * 4)
                .sum();
            if carried >= limit
                && let Some(refs) = &self.references
            {
                return Err(ConfigError::Option {
                    given: refs.from.place(),
                    problem: format!(
                        "the reference images come to {} in base64; {name} takes a request \
                         under {} in all",
                        human_bytes(carried),
                        human_bytes(limit)
                    ),
                });
            }
        }

        // A field genimg sets itself is set by its own option, checked above: a param could
        // only contradict it.
        let mut params_given = BTreeMap::new();
        for (key, p) in &self.params {
            let shown = p.shown(key);
            if let Some(instead) = crate::provider::own_field(model.provider(), key) {
                return Err(ConfigError::Option {
                    given: shown,
                    problem: format!("genimg sets `{key}` itself: {instead}"),
                });
            }
            options.params.insert(key.clone(), p.value.value.clone());
            params_given.insert(key.clone(), shown);
        }

        Ok(Settings {
            model,
            options,
            references,
            mask,
            count: self.count.as_ref().map_or(1, |c| c.value),
            style: self.style.as_ref().map(|s| s.value.clone()),
            params_given,
        })
    }
}

fn given_at<T>(value: T, from: &Source) -> Given<T> {
    Given {
        value,
        from: from.clone(),
    }
}

/// A prompt's settings, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub model: Model,
    pub options: ImageOptions,
    pub references: Arc<[Reference]>,
    /// The edits' mask, checked against the first reference.
    pub mask: Option<Reference>,
    pub count: u32,
    pub style: Option<String>,
    /// Each param sent, by key, as the user gave it: `--param frame_count=8`,
    /// `prompts.txt:3: param.frame_count=8`. For the message of a request it made fail.
    pub params_given: BTreeMap<String, String>,
}

impl Settings {
    /// The text sent: the style's preamble, then the prompt.
    pub fn text_of(&self, prompt: &str) -> String {
        match &self.style {
            Some(style) => format!("{}\n\n{prompt}", style.trim_end()),
            None => prompt.to_owned(),
        }
    }
}

/// `--style TEXT` is the preamble itself; `--style @FILE` reads it from FILE (relative to
/// `base`).
pub fn read_style(value: &str, base: &Path) -> Result<String, String> {
    match value.strip_prefix('@') {
        Some(file) => {
            let path = base.join(file);
            let bytes = input::read_bounded(&path, input::STYLE_FILE_CAP)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| format!("{} is not valid UTF-8 text", path.display()))?;
            let text = text.trim().to_owned();
            if text.is_empty() {
                return Err(format!("{} is empty", path.display()));
            }
            Ok(text)
        }
        None if value.trim().is_empty() => Err("the style is empty".to_owned()),
        None => Ok(value.to_owned()),
    }
}

/// Reference images and masks read so far, by path: each file is read once per run however
/// many prompts use it, then checked against each prompt's model.
#[derive(Debug, Default)]
pub struct ReferenceCache {
    read: HashMap<PathBuf, (ImageFormat, Bytes, String)>,
}

impl ReferenceCache {
    fn load(
        &mut self,
        refs: &Given<Vec<PathBuf>>,
        model: &Model,
    ) -> Result<Arc<[Reference]>, ConfigError> {
        let place = refs.from.place();
        if !model.can_edit() {
            return Err(ConfigError::ModelCannotEdit {
                place,
                model: model.name().to_owned(),
            });
        }
        let max = model.info().max_references;
        if refs.value.len() > max {
            return Err(ConfigError::TooManyReferences {
                place,
                model: model.name().to_owned(),
                given: refs.value.len(),
                max,
            });
        }
        refs.value
            .iter()
            .map(|path| self.load_one(path, &refs.from, model))
            .collect()
    }

    fn load_one(
        &mut self,
        path: &Path,
        from: &Source,
        model: &Model,
    ) -> Result<Reference, ConfigError> {
        let fail = |problem: String| ConfigError::Option {
            given: from.show(&path.display().to_string()),
            problem,
        };
        let limit = model.info().max_reference_bytes;
        let reference = self.read(path, limit, &fail, &|size| too_big(size, model))?;
        if reference.bytes.len() as u64 >= limit {
            return Err(fail(too_big(
                &human_bytes(reference.bytes.len() as u64),
                model,
            )));
        }
        let formats = model.info().reference_formats;
        if !formats.contains(&reference.format) {
            let names: Vec<String> = formats.iter().map(ToString::to_string).collect();
            return Err(fail(format!(
                "is a {} image; {} takes {}",
                reference.format,
                model.name(),
                names.join(" or ")
            )));
        }
        Ok(reference)
    }

    /// Reads the mask at `mask` and checks it as the service would, before any request: a
    /// model whose edits take one, references to edit, a PNG with an alpha channel (gray +
    /// alpha or RGBA: a `tRNS` chunk on a palette or RGB image is not taken for one, as the
    /// service names an alpha channel), under 4 MB, the size of the first reference.
    fn load_mask(
        &mut self,
        mask: &Given<PathBuf>,
        model: &Model,
        references: &[Reference],
    ) -> Result<Reference, ConfigError> {
        let path = &mask.value;
        let fail = |problem: String| ConfigError::Option {
            given: mask.from.show(&path.display().to_string()),
            problem,
        };
        let name = model.name();
        if !model.takes_mask() {
            return Err(fail(format!(
                "{name} takes no mask; masks are for the edits of OpenAI's image models"
            )));
        }
        let Some(first) = references.first() else {
            return Err(fail(
                "a mask applies to edits: give reference images as well (--reference-image, or \
                 ref= on a prompt's header)"
                    .to_owned(),
            ));
        };
        let mask_too_big = |size: &str| {
            format!(
                "is {size}; a mask must be under {}",
                human_bytes(MAX_MASK_BYTES)
            )
        };
        let read = self.read(path, MAX_MASK_BYTES, &fail, &mask_too_big)?;
        if read.bytes.len() as u64 >= MAX_MASK_BYTES {
            return Err(fail(mask_too_big(&human_bytes(read.bytes.len() as u64))));
        }
        if read.format != ImageFormat::Png {
            return Err(fail(format!(
                "is a {} image; a mask must be a PNG with an alpha channel",
                read.format
            )));
        }
        match png_color_type(&read.bytes) {
            Some(4 | 6) => {}
            other => {
                let kind = match other {
                    Some(0) => "a grayscale PNG",
                    Some(2) => "an RGB PNG",
                    // Transparency from a `tRNS` chunk is not an alpha channel.
                    Some(3) => "a palette PNG",
                    _ => "a PNG of an unknown color type",
                };
                return Err(fail(format!(
                    "is {kind} without an alpha channel; a mask must be a PNG with one (gray + \
                     alpha or RGBA), transparent where the image is to be edited"
                )));
            }
        }
        let (w, h) = dimensions(&read.bytes);
        let (fw, fh) = dimensions(&first.bytes);
        if (w, h) != (fw, fh) {
            return Err(fail(format!(
                "is {w}x{h}; the first reference image, {}, is {fw}x{fh}: a mask must be the \
                 same size",
                first.path.display()
            )));
        }
        Ok(read)
    }

    /// Reads an image once per run, with at most `limit - 1` bytes read, and checks that its
    /// bytes are a PNG, JPEG or WebP whose header gives its size. `too_big` says what is
    /// wrong with a file of the size given.
    fn read(
        &mut self,
        path: &Path,
        limit: u64,
        fail: &dyn Fn(String) -> ConfigError,
        too_big: &dyn Fn(&str) -> String,
    ) -> Result<Reference, ConfigError> {
        if !self.read.contains_key(path) {
            // An image must be under its limit, so no more than that is read; a file whose
            // size is over it is not read at all.
            let bytes =
                input::read_bounded(path, limit.saturating_sub(1)).map_err(|e| match e {
                    ReadLimitError::Io(e) if e.kind() == io::ErrorKind::NotFound => {
                        fail("no such file".to_owned())
                    }
                    ReadLimitError::Io(e) => fail(format!("cannot be read: {e}")),
                    ReadLimitError::NotRegular { kind } => {
                        fail(format!("is {kind}, not a regular file"))
                    }
                    ReadLimitError::TooBig { len: Some(len), .. } => {
                        fail(too_big(&human_bytes(len)))
                    }
                    ReadLimitError::TooBig { len: None, .. } => {
                        fail(too_big(&format!("at least {}", human_bytes(limit))))
                    }
                })?;
            let format = ImageFormat::sniff(&bytes).ok_or_else(|| {
                fail(
                    "is not a PNG, JPEG or WebP image (judged by its bytes, not its name)"
                        .to_owned(),
                )
            })?;
            // The magic bytes pass a file cut short: its header must give the image's size.
            if ImageFormat::RASTER.contains(&format) && !format.is_whole(&bytes) {
                return Err(fail(format!(
                    "is a truncated or damaged {format} image: its header gives no width and \
                     height"
                )));
            }
            let sha256 = crate::units::sha256_hex(&bytes);
            self.read
                .insert(path.to_owned(), (format, Bytes::from(bytes), sha256));
        }
        let (format, bytes, sha256) = self.read[path].clone();
        Ok(Reference {
            path: path.to_owned(),
            format,
            bytes,
            sha256,
        })
    }
}

/// The largest mask the service takes is under 4 MB.
pub const MAX_MASK_BYTES: u64 = 4 * 1024 * 1024;

/// A PNG's color type, from its IHDR: 0 gray, 2 RGB, 3 palette, 4 gray + alpha, 6 RGBA.
fn png_color_type(bytes: &[u8]) -> Option<u8> {
    // The signature (8 bytes), the chunk's length (4) and type (4), width and height (4
    // each), the bit depth (1), then the color type.
    (bytes.get(12..16)? == b"IHDR").then(|| bytes.get(25).copied())?
}

/// The width and height of an image already read, whose header gave them.
fn dimensions(bytes: &[u8]) -> (usize, usize) {
    imagesize::blob_size(bytes).map_or((0, 0), |s| (s.width, s.height))
}

/// `size` as shown: `50 MB`, `at least 50 MB`.
fn too_big(size: &str, model: &Model) -> String {
    format!(
        "is {size}; {} takes reference images under {}",
        model.name(),
        human_bytes(model.info().max_reference_bytes)
    )
}
