//! What each image model takes, what it costs and how long it lives: one table per
//! provider (`openai`), and the rules that check options against a model.
//!
//! A model that is not in a table is still sent as named, under the rules of the GPT image
//! models, since new models appear every few months.

pub mod gemini;
mod openai;

use std::fmt;
use std::str::FromStr;

use crate::format::ImageFormat;

use openai::UNKNOWN_GPT_IMAGE;
pub use openai::{
    DEFAULT_MODEL, MODELS, USD_PER_M_IMAGE_IN, USD_PER_M_IMAGE_OUT, USD_PER_M_TEXT_IN,
    USD_PER_M_TEXT_OUT, output_tokens,
};

const MB: u64 = 1024 * 1024;

/// The API families differ in which fields they take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `gpt-image-*` and `chatgpt-image-latest`: always answer with `b64_json`, reject
    /// `response_format` and `style`.
    GptImage,
    /// `dall-e-3`: n=1 only, quality `hd`/`standard`, answers with a URL unless asked otherwise.
    DallE3,
    /// `dall-e-2`: no quality, small square sizes, edits of one square PNG.
    DallE2,
    /// Google's Gemini image models: `generateContent`, sized by aspect ratio and image size.
    Gemini,
}

/// The sizes a model accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sizes {
    /// Only these values (`auto` among them where allowed).
    Fixed(&'static [&'static str]),
    /// gpt-image-2 and later: any `WxH` with both sides multiples of 16, aspect between 1:3 and
    /// 3:1, a long edge of at most 3840, and between 655,360 and 3840x2160 pixels; or `auto`.
    Flexible,
    /// No `WxH` size: the model is sized by its aspect ratio and image size (Gemini).
    None,
}

/// Where a model stands in OpenAI's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Live,
    /// Shuts down on this date (YYYY-MM-DD).
    ShutsDown(&'static str),
    /// Removed from OpenAI on this date; other servers may still serve it.
    Removed(&'static str),
    /// Deprecated on this date, with no shutdown announced: it may be gone any day.
    Deprecated(&'static str),
}

/// The capabilities of one model, as the service enforces them.
#[derive(Debug)]
pub struct ModelInfo {
    pub name: &'static str,
    /// Who serves it: the provider whose wire format its requests take.
    pub provider: ProviderId,
    /// Dated snapshots that share the rules.
    pub snapshots: &'static [&'static str],
    pub family: Family,
    pub sizes: Sizes,
    pub qualities: &'static [&'static str],
    /// How many reference images `/images/edits` takes; 0 means the model cannot edit.
    pub max_references: usize,
    pub reference_formats: &'static [ImageFormat],
    pub max_reference_bytes: u64,
    pub max_prompt_chars: usize,
    /// `output_format`, `output_compression`, `background` and `moderation` (GPT image models).
    pub output_options: bool,
    /// `background: transparent`.
    pub transparency: bool,
    /// `input_fidelity` on edits.
    pub input_fidelity: bool,
    /// `complexity` (the 2.6 family).
    pub complexity: bool,
    pub price: Price,
    pub lifecycle: Lifecycle,
    /// The models its provider names to use instead, for one that is retired or retiring.
    pub successors: &'static [&'static str],
    /// The `aspectRatio` values it takes (Gemini); empty: it takes none.
    pub aspect_ratios: &'static [&'static str],
    /// The `imageSize` values it takes (Gemini: `512`, `1K`, `2K`, `4K`); empty: none.
    pub image_sizes: &'static [&'static str],
    /// The name it is sold under ("Nano Banana Pro"); empty if none.
    pub known_as: &'static str,
    /// The most one request may carry in all, references in base64 included, where the
    /// service limits the whole request rather than each image.
    pub max_request_bytes: Option<u64>,
    /// Answers in a format of its own choosing (Gemini: PNG or JPEG), with no way to ask
    /// for one: the file takes the format of the bytes, and that is no surprise to warn of.
    pub own_format: bool,
    /// Output formats it makes beyond PNG, JPEG and WebP: animated GIF and SVG (2.6).
    pub more_formats: &'static [ImageFormat],
}

/// Which service family makes a model's images. OpenAI-compatible services and Azure OpenAI
/// are dialects of [`ProviderId::OpenAi`]; a second provider gets its own variant here, and
/// its models a table of their own beside OpenAI's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProviderId {
    OpenAi,
    Gemini,
}

impl ProviderId {
    /// Every provider, in the order reports list them.
    pub const ALL: [ProviderId; 2] = [ProviderId::OpenAi, ProviderId::Gemini];

    /// Its name in the manifest and the reports; `google:` picks it in a model name.
    pub fn name(self) -> &'static str {
        match self {
            ProviderId::OpenAi => "openai",
            ProviderId::Gemini => "gemini",
        }
    }

    /// The provider a manifest names.
    pub fn from_name(name: &str) -> Option<ProviderId> {
        ProviderId::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Who runs it, as people say it.
    pub fn company(self) -> &'static str {
        match self {
            ProviderId::OpenAi => "OpenAI",
            ProviderId::Gemini => "Google",
        }
    }

    /// Where its API key comes from, as advice to a user who gave none.
    pub fn key_advice(self) -> &'static str {
        match self {
            ProviderId::OpenAi => "set OPENAI_API_KEY or pass --api-key",
            ProviderId::Gemini => "set GEMINI_API_KEY (or GOOGLE_API_KEY) or pass --gemini-api-key",
        }
    }

    /// Its API for batches of requests at half the price, as its documentation names it.
    pub fn batch_api(self) -> &'static str {
        match self {
            ProviderId::OpenAi => "OpenAI's Batch API",
            ProviderId::Gemini => "Gemini's batch mode",
        }
    }
}

/// What an image costs, in US dollars, as OpenAI publishes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Price {
    /// A price per image by quality: for square images, and for the others.
    PerImage {
        square: &'static [(&'static str, f64)],
        other: &'static [(&'static str, f64)],
    },
    /// Priced by token; the output tokens of an image follow from its size and a factor per
    /// quality (see [`output_tokens`]), times a multiple for the qualities `times` lists.
    Tokens {
        factors: &'static [(&'static str, u32)],
        times: &'static [(&'static str, f64)],
    },
    /// Gemini: by token, with a published price per image by `imageSize` for estimates.
    Gemini {
        /// US dollars per image by `imageSize` (the model's only size first).
        per_image: &'static [(&'static str, f64)],
        /// US dollars per million tokens: text and image in, text and thinking out, image out.
        usd_per_m_in: f64,
        usd_per_m_text_out: f64,
        usd_per_m_image_out: f64,
    },
    /// Not published.
    Unknown,
}

/// The model a run uses: the name exactly as the user gave it, and the rules that apply.
#[derive(Debug, Clone)]
pub struct Model {
    name: String,
    info: &'static ModelInfo,
    known: bool,
}

impl Model {
    /// Looks a name up in its provider's table. A name that starts with `gemini-` is
    /// Google's, any other OpenAI's; `google:` or `openai:` before a name picks the provider
    /// (and is not sent). Unknown names get the provider's newest rules, permissive where
    /// models differ, so that a model works the day it ships.
    pub fn lookup(name: &str) -> Model {
        let (provider, bare) = split_provider(name);
        let (table, unknown): (&'static [ModelInfo], &'static ModelInfo) = match provider {
            ProviderId::OpenAi => (MODELS, &UNKNOWN_GPT_IMAGE),
            ProviderId::Gemini => (gemini::MODELS, &gemini::UNKNOWN_GEMINI),
        };
        let found = table
            .iter()
            .find(|m| m.name == bare || m.snapshots.contains(&bare));
        Model {
            name: bare.to_owned(),
            info: found.unwrap_or(unknown),
            known: found.is_some(),
        }
    }

    /// The model `name` of `provider`, as [`Model::lookup`] finds it.
    pub fn of(provider: ProviderId, name: &str) -> Model {
        match provider {
            ProviderId::OpenAi => Model::lookup(&format!("openai:{name}")),
            ProviderId::Gemini => Model::lookup(&format!("google:{name}")),
        }
    }

    /// The name sent to the service.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name as [`Model::lookup`] reads it back: with `google:` or `openai:` before it
    /// where the name alone would pick the other provider.
    pub fn spelled(&self) -> String {
        if split_provider(&self.name).0 == self.info.provider {
            self.name.clone()
        } else {
            match self.info.provider {
                ProviderId::OpenAi => format!("openai:{}", self.name),
                ProviderId::Gemini => format!("google:{}", self.name),
            }
        }
    }

    pub fn info(&self) -> &'static ModelInfo {
        self.info
    }

    /// The provider whose wire format the model's requests take.
    pub fn provider(&self) -> ProviderId {
        self.info.provider
    }

    pub fn family(&self) -> Family {
        self.info.family
    }

    pub fn is_known(&self) -> bool {
        self.known
    }

    pub fn can_edit(&self) -> bool {
        self.info.max_references > 0
    }

    /// Whether its edits take a mask: OpenAI's `/images/edits` does; Gemini has no such part.
    pub fn takes_mask(&self) -> bool {
        self.can_edit() && self.provider() == ProviderId::OpenAi
    }

    /// The `quality` value sent for the seed's two levels; `None` where the model takes none.
    pub fn quality_for(&self, tier: Tier) -> Option<&'static str> {
        match (self.info.family, tier) {
            (Family::GptImage, Tier::Hd) => Some("high"),
            (Family::GptImage, Tier::Standard) => Some("medium"),
            (Family::DallE3, Tier::Hd) => Some("hd"),
            (Family::DallE3, Tier::Standard) => Some("standard"),
            (Family::DallE2 | Family::Gemini, _) => None,
        }
    }

    /// Whether the seed's two levels mean something to the model: a quality value, or (on
    /// Gemini) an image size.
    pub fn takes_tiers(&self) -> bool {
        self.quality_for(Tier::Hd).is_some() || self.info.family == Family::Gemini
    }

    /// The `imageSize` of the seed's levels: HD is 2K where the model takes it, else the
    /// largest it takes below; standard (`--low-res`) is 1K. `None` for a model that takes
    /// no image size.
    pub fn image_size_for(&self, tier: Tier) -> Option<&'static str> {
        let sizes = self.info.image_sizes;
        let want: &[&str] = match tier {
            Tier::Hd => &["2K", "1K"],
            Tier::Standard => &["1K", "512"],
        };
        want.iter()
            .find(|s| sizes.contains(s))
            .copied()
            .or_else(|| sizes.first().copied())
    }

    /// `response_format` is a DALL-E field; GPT image models reject it and always send base64.
    pub fn response_format(&self) -> Option<&'static str> {
        match self.info.family {
            Family::GptImage | Family::Gemini => None,
            Family::DallE3 | Family::DallE2 => Some("b64_json"),
        }
    }

    /// Checks a size against the model; the message says what the model takes.
    pub fn check_size(&self, size: &Size) -> Result<(), String> {
        match self.info.sizes {
            Sizes::Fixed(list) => {
                if list.iter().any(|s| *s == size.to_string()) {
                    Ok(())
                } else {
                    Err(format!(
                        "{} takes the sizes {}, not {size}",
                        self.name,
                        list.join(", ")
                    ))
                }
            }
            Sizes::Flexible => match size {
                Size::Auto => Ok(()),
                Size::Pixels { width, height } => check_flexible_size(*width, *height),
            },
            Sizes::None => Err(format!(
                "{} takes no size in pixels; give --aspect-ratio and --image-size instead",
                self.name
            )),
        }
    }

    /// The price of one image of `image_size` (`None`: the model's default), for a model
    /// priced per image by size.
    pub fn estimate_by_image_size(&self, image_size: Option<&str>) -> Option<f64> {
        let Price::Gemini { per_image, .. } = self.info.price else {
            return None;
        };
        let size = image_size.unwrap_or("1K");
        per_image
            .iter()
            .find(|(s, _)| *s == size)
            .or(per_image.first())
            .map(|(_, usd)| *usd)
    }

    /// The estimated price of one image in US dollars, or `None` where no price is published.
    /// `auto` size is estimated as 1024x1024 and `auto` quality as `high`; the text of the
    /// prompt counts as one token per four characters; reference images are not counted.
    pub fn estimate(&self, size: Size, quality: Option<&str>, prompt_chars: usize) -> Option<f64> {
        let (width, height) = match size {
            Size::Pixels { width, height } => (width, height),
            Size::Auto => (1024, 1024),
        };
        let quality = match quality {
            None | Some("auto") => "high",
            Some(q) => q,
        };
        let find = |table: &[(&str, f64)]| table.iter().find(|(q, _)| *q == quality).map(|e| e.1);
        match self.info.price {
            Price::PerImage { square, other } => find(if width == height { square } else { other }),
            Price::Tokens { factors, times } => {
                let f = factors.iter().find(|(q, _)| *q == quality)?.1;
                let times = times
                    .iter()
                    .find(|(q, _)| *q == quality)
                    .map_or(1.0, |e| e.1);
                let out = (output_tokens(width, height, f) as f64 * times).ceil();
                let text = prompt_chars.div_ceil(4) as f64;
                Some((out * USD_PER_M_IMAGE_OUT + text * USD_PER_M_TEXT_IN) / 1e6)
            }
            Price::Gemini { .. } => self.estimate_by_image_size(None),
            Price::Unknown => None,
        }
    }

    /// The estimate of one image made through the Batch API: see [`BATCH_PRICE`].
    pub fn batch_estimate(
        &self,
        size: Size,
        quality: Option<&str>,
        prompt_chars: usize,
    ) -> Option<f64> {
        self.estimate(size, quality, prompt_chars)
            .map(|usd| usd * BATCH_PRICE)
    }

    /// The price of an image from the `usage` its answer reported, for models priced by
    /// token; `None` for other models or when `usage` says too little.
    pub fn cost_from_usage(&self, usage: &serde_json::Value) -> Option<f64> {
        if let Price::Gemini {
            usd_per_m_in,
            usd_per_m_text_out,
            usd_per_m_image_out,
            ..
        } = self.info.price
        {
            return gemini::cost_from_usage(
                usage,
                usd_per_m_in,
                usd_per_m_text_out,
                usd_per_m_image_out,
            );
        }
        if !matches!(self.info.price, Price::Tokens { .. }) {
            return None;
        }
        let n = |v: Option<&serde_json::Value>| v.and_then(serde_json::Value::as_f64);
        let input = n(usage.get("input_tokens")).unwrap_or(0.0);
        let details = usage.get("input_tokens_details");
        let image_in = n(details.and_then(|d| d.get("image_tokens"))).unwrap_or(0.0);
        let text_in = n(details.and_then(|d| d.get("text_tokens"))).unwrap_or(input - image_in);
        // `output_tokens_details` (image and text tokens) where the answer gives it; else
        // every output token is an image token.
        let out = usage.get("output_tokens_details");
        let image_out = n(out.and_then(|d| d.get("image_tokens")));
        let text_out = n(out.and_then(|d| d.get("text_tokens")));
        let (image_out, text_out) = match (image_out, text_out, n(usage.get("output_tokens"))) {
            (None, None, output) => (output?, 0.0),
            // What the split leaves out of the total is the other kind.
            (Some(image), text, output) => {
                let text = text.unwrap_or_else(|| output.map_or(0.0, |o| (o - image).max(0.0)));
                (image, text)
            }
            (None, Some(text), output) => ((output? - text).max(0.0), text),
        };
        Some(
            (text_in * USD_PER_M_TEXT_IN
                + image_in * USD_PER_M_IMAGE_IN
                + image_out * USD_PER_M_IMAGE_OUT
                + text_out * USD_PER_M_TEXT_OUT)
                / 1e6,
        )
    }

    /// A warning for a name the table does not know but that is close to one it does (a
    /// typo, a letter case, a dash or a dot away). The name is still sent as given.
    pub fn unknown_model_warning(&self) -> Option<String> {
        if self.known {
            return None;
        }
        let near = nearest_models(&self.name);
        (!near.is_empty()).then(|| {
            format!(
                "unknown model {}; did you mean {}? (genimg models lists them)",
                self.name,
                or_list(&near)
            )
        })
    }

    /// A warning for a model that is gone from OpenAI or shuts down within 30 days of
    /// `today`, naming its successor.
    pub fn retirement_warning(&self, today: jiff::civil::Date) -> Option<String> {
        let next = match self.info.successors {
            [] => String::new(),
            [first, rest @ ..] => format!(
                "; use {} instead (--model {first})",
                std::iter::once(*first)
                    .chain(rest.iter().copied())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        };
        let name = &self.name;
        let company = self.info.provider.company();
        match self.info.lifecycle {
            Lifecycle::Live => None,
            Lifecycle::Deprecated(date) => Some(format!(
                "{name} has been deprecated by {company} since {date} and may stop any day{next}"
            )),
            Lifecycle::Removed(date) => Some(format!(
                "{name} was removed from {company} on {date}; only other servers may still run \
                 it{next}"
            )),
            Lifecycle::ShutsDown(date) => {
                let day: jiff::civil::Date = date.parse().ok()?;
                let days = today.until(day).ok()?.get_days();
                match days {
                    ..=0 => Some(format!("{name} was shut down on {date}{next}")),
                    1..=30 => Some(format!(
                        "{name} shuts down on {date}, in {days} day(s){next}"
                    )),
                    _ => None,
                }
            }
        }
    }

    /// Checks a prompt's length (in characters, as the service counts them). The message
    /// completes a sentence about the prompt: "... has 4500 characters; ...".
    pub fn check_prompt(&self, prompt: &str) -> Result<(), String> {
        let chars = prompt.chars().count();
        let max = self.info.max_prompt_chars;
        if chars > max {
            Err(format!(
                "has {chars} characters; {} takes at most {max}",
                self.name
            ))
        } else if prompt.trim().is_empty() {
            Err("is empty".to_owned())
        } else {
            Ok(())
        }
    }
}

/// The table `genimg models` prints: each model with what it takes and costs.
/// What the Batch API bills, as a share of the live price: half (API-NOTES, "Batch API:
/// 50% off").
pub const BATCH_PRICE: f64 = 0.5;

pub fn render_table() -> String {
    render_table_on(
        jiff::tz::Offset::UTC
            .to_datetime(jiff::Timestamp::now())
            .date(),
    )
}

/// The lifecycle of a model as of `today`: a shutdown date that has passed says so.
pub fn lifecycle_text(lifecycle: Lifecycle, today: jiff::civil::Date) -> String {
    match lifecycle {
        Lifecycle::Live => "live".to_owned(),
        Lifecycle::ShutsDown(d) => match d.parse::<jiff::civil::Date>() {
            Ok(day) if day <= today => format!("shut down on {d}"),
            _ => format!("shuts down on {d}"),
        },
        Lifecycle::Removed(d) => format!("removed from OpenAI on {d}"),
        Lifecycle::Deprecated(d) => format!("deprecated since {d}, no shutdown date announced"),
    }
}

/// The provider a model name picks, and the name sent: `google:NAME` and `openai:NAME` say
/// it outright; else a name that starts with `gemini-` is Google's and any other OpenAI's.
pub fn split_provider(name: &str) -> (ProviderId, &str) {
    if let Some(bare) = name.strip_prefix("google:") {
        (ProviderId::Gemini, bare)
    } else if let Some(bare) = name.strip_prefix("openai:") {
        (ProviderId::OpenAi, bare)
    } else if name.starts_with("gemini-") {
        (ProviderId::Gemini, name)
    } else {
        (ProviderId::OpenAi, name)
    }
}

/// Every model genimg knows, OpenAI's first.
pub fn all_models() -> impl Iterator<Item = &'static ModelInfo> {
    MODELS.iter().chain(gemini::MODELS.iter())
}

/// [`render_table`] as of `today`.
pub fn render_table_on(today: jiff::civil::Date) -> String {
    use std::fmt::Write as _;
    let mut out = String::from(
        "Models genimg knows. Any other name is sent as given: a name that starts with gemini-\n\
         to Google with Gemini rules, any other to OpenAI with GPT image rules; google:NAME or\n\
         openai:NAME picks the provider. Prices are live prices; through the Batch API\n\
         (--batch) every image costs half.\n\n\
         == OpenAI (key: OPENAI_API_KEY) ==\n",
    );
    for m in MODELS {
        let status = lifecycle_text(m.lifecycle, today);
        let next = match m.successors {
            [] => String::new(),
            list => format!("; use {}", list.join(" or ")),
        };
        let _ = writeln!(out, "\n{}  ({status}{next})", m.name);
        if !m.snapshots.is_empty() {
            let _ = writeln!(out, "  snapshots   {}", m.snapshots.join(", "));
        }
        let sizes = match m.sizes {
            Sizes::Fixed(list) => list.join(", "),
            Sizes::None => "none".to_owned(),
            Sizes::Flexible => {
                "any WIDTHxHEIGHT with sides in multiples of 16, aspect 1:3 to 3:1, \
                                long edge up to 3840, 655,360 to 8,294,400 pixels; or auto"
                    .to_owned()
            }
        };
        let _ = writeln!(out, "  sizes       {sizes}");
        let qualities = match m.qualities {
            [] => "none".to_owned(),
            list => list.join(", "),
        };
        let _ = writeln!(out, "  qualities   {qualities}");
        let references = match m.max_references {
            0 => "none (cannot edit)".to_owned(),
            n => {
                let formats: Vec<String> = m
                    .reference_formats
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                format!(
                    "up to {n} ({}, under {})",
                    formats.join(" or "),
                    crate::units::human_bytes(m.max_reference_bytes)
                )
            }
        };
        let _ = writeln!(out, "  references  {references}");
        let mut options = Vec::new();
        if m.output_options {
            options.extend(["--format", "--compression", "--background", "--moderation"]);
        }
        if m.input_fidelity {
            options.push("--input-fidelity");
        }
        if m.complexity {
            options.push("--complexity");
        }
        let formats: Vec<String> = m
            .more_formats
            .iter()
            .map(|f| format!("--format {}", f.extension()))
            .collect();
        options.extend(formats.iter().map(String::as_str));
        let options = if options.is_empty() {
            "none".to_owned()
        } else {
            options.join(", ")
        };
        let _ = writeln!(out, "  options     {options}");
        let _ = writeln!(out, "  price       {}", price_text(m));
    }
    out.push_str("\n== Google Gemini (key: GEMINI_API_KEY or GOOGLE_API_KEY) ==\n");
    for m in gemini::MODELS {
        let status = lifecycle_text(m.lifecycle, today);
        let _ = writeln!(out, "\n{}  ({}; {status})", m.name, m.known_as);
        let _ = writeln!(out, "  ratios      {}", m.aspect_ratios.join(", "));
        let sizes = match m.image_sizes {
            [] => "1K only (takes no --image-size)".to_owned(),
            list => list.join(", "),
        };
        let _ = writeln!(out, "  image sizes {sizes}");
        let _ = writeln!(
            out,
            "  references  up to {} (PNG, JPEG or WebP; a request under {})",
            m.max_references,
            crate::units::human_bytes(MAX_GEMINI_REQUEST_BYTES)
        );
        let _ = writeln!(out, "  options     --aspect-ratio, --image-size");
        let _ = writeln!(out, "  price       {}", price_text(m));
    }
    out
}

/// The most a Gemini request may carry inline, references included: 100 MB.
pub const MAX_GEMINI_REQUEST_BYTES: u64 = 100 * MB;

fn price_text(m: &ModelInfo) -> String {
    let list = |table: &[(&str, f64)]| {
        table
            .iter()
            .map(|(q, price)| format!("{q} {}", crate::units::usd(*price)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match m.price {
        Price::PerImage { square, other } => format!(
            "per image: square {}; other sizes {}",
            list(square),
            list(other)
        ),
        Price::Tokens { factors, .. } => {
            let model = Model::lookup(m.name);
            let each: Vec<String> = factors
                .iter()
                .filter_map(|(q, _)| {
                    let price = model.estimate(Size::DEFAULT, Some(q), 0)?;
                    Some(format!("{q} {}", crate::units::usd(price)))
                })
                .collect();
            format!(
                "by token (${USD_PER_M_TEXT_IN}/M text in, ${USD_PER_M_IMAGE_IN}/M image in, \
                 ${USD_PER_M_IMAGE_OUT}/M image out); 1024x1024 about {}",
                each.join(", ")
            )
        }
        Price::Gemini {
            per_image,
            usd_per_m_in,
            usd_per_m_text_out,
            usd_per_m_image_out,
        } => format!(
            "per image {}; by token ${usd_per_m_in}/M in, ${usd_per_m_text_out}/M text and \
             thinking out, ${usd_per_m_image_out}/M image out",
            list(per_image)
        ),
        Price::Unknown => "not published".to_owned(),
    }
}

/// The farthest a name may be from a known one, in edits (strsim's Levenshtein distance),
/// for genimg to ask whether that one was meant.
const NEAR_EDITS: usize = 2;

/// The known model names a mistyped `name` most likely means, in table order (newest first),
/// at most three: those that differ from it only in letter case, dashes, dots or underscores,
/// else the nearest within [`NEAR_EDITS`] edits. None when nothing is that close.
pub fn nearest_models(name: &str) -> Vec<&'static str> {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '-' | '.' | '_' | ' '))
            .flat_map(char::to_lowercase)
            .collect()
    };
    let (squashed, lower) = (squash(name), name.to_lowercase());
    let mut near: Vec<(usize, &'static str)> = all_models()
        .filter(|m| !m.name.is_empty() && m.name != name)
        .filter_map(|m| {
            let edits = if squash(m.name) == squashed {
                0
            } else {
                strsim::levenshtein(&lower, m.name)
            };
            (edits <= NEAR_EDITS).then_some((edits, m.name))
        })
        .collect();
    // A stable sort keeps table order among names as near.
    near.sort_by_key(|&(edits, _)| edits);
    let nearest = near.first().map(|&(edits, _)| edits);
    near.into_iter()
        .filter(|&(edits, _)| Some(edits) == nearest)
        .take(3)
        .map(|(_, name)| name)
        .collect()
}

/// `a`, `a or b`, `a, b or c`.
pub fn or_list(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// The models `provider` serves today, newest first: what to suggest instead of one that is
/// not.
pub fn live_models(provider: ProviderId) -> Vec<&'static str> {
    all_models()
        .filter(|m| m.provider == provider && m.lifecycle == Lifecycle::Live)
        .map(|m| m.name)
        .collect()
}

fn check_flexible_size(width: u32, height: u32) -> Result<(), String> {
    let (w, h) = (u64::from(width), u64::from(height));
    let (short, long) = (w.min(h), w.max(h));
    let pixels = w * h;
    if w % 16 != 0 || h % 16 != 0 {
        return Err(format!(
            "{width}x{height}: both sides must be multiples of 16"
        ));
    }
    if long > 3840 {
        return Err(format!(
            "{width}x{height}: the long edge must be at most 3840"
        ));
    }
    if long > 3 * short {
        return Err(format!(
            "{width}x{height}: the aspect ratio must be between 1:3 and 3:1"
        ));
    }
    if pixels > 3840 * 2160 {
        return Err(format!(
            "{width}x{height}: at most 3840x2160 (8,294,400) pixels"
        ));
    }
    if pixels < 655_360 {
        return Err(format!(
            "{width}x{height}: at least 655,360 pixels (e.g. 1024x640)"
        ));
    }
    Ok(())
}

/// The seed's two quality levels: HD by default, standard with `--low-res`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Hd,
    Standard,
}

impl Tier {
    /// The quality token in file names, as the seed wrote it.
    pub fn file_token(self) -> &'static str {
        match self {
            Tier::Hd => "hd",
            Tier::Standard => "standard",
        }
    }
}

/// Every quality token a genimg file name may carry, whatever the model.
pub const QUALITY_TOKENS: &[&str] = &[
    "hd", "standard", "low", "medium", "high", "xhigh", "max", "auto",
];

/// An image size: `WIDTHxHEIGHT` or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    Auto,
    Pixels { width: u32, height: u32 },
}

impl Size {
    pub const DEFAULT: Size = Size::Pixels {
        width: 1024,
        height: 1024,
    };
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Size::Auto => f.write_str("auto"),
            Size::Pixels { width, height } => write!(f, "{width}x{height}"),
        }
    }
}

impl FromStr for Size {
    type Err = String;

    fn from_str(s: &str) -> Result<Size, String> {
        if s == "auto" {
            return Ok(Size::Auto);
        }
        let bad = || format!("`{s}` is not a size: use WIDTHxHEIGHT (e.g. 1536x1024) or auto");
        let (w, h) = s.split_once('x').ok_or_else(bad)?;
        let width: u32 = w.parse().map_err(|_| bad())?;
        let height: u32 = h.parse().map_err(|_| bad())?;
        if width == 0 || height == 0 {
            return Err(bad());
        }
        Ok(Size::Pixels { width, height })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_model_is_gpt_image_2_and_known() {
        let m = Model::lookup(DEFAULT_MODEL);
        assert!(m.is_known());
        assert_eq!(m.family(), Family::GptImage);
        assert_eq!(m.info().sizes, Sizes::Flexible);
    }

    #[test]
    fn snapshots_share_the_rules_but_keep_their_name() {
        let m = Model::lookup("gpt-image-2-2026-04-21");
        assert!(m.is_known());
        assert_eq!(m.name(), "gpt-image-2-2026-04-21");
        assert_eq!(m.info().name, "gpt-image-2");
    }

    #[test]
    fn unknown_models_are_sent_as_given_with_gpt_rules() {
        let m = Model::lookup("my-local-diffusion");
        assert!(!m.is_known());
        assert_eq!(m.name(), "my-local-diffusion");
        assert_eq!(m.family(), Family::GptImage);
        assert_eq!(m.response_format(), None);
        assert_eq!(m.quality_for(Tier::Hd), Some("high"));
        assert!(m.can_edit());
    }

    #[test]
    fn quality_follows_the_seed_per_family() {
        let gpt = Model::lookup("gpt-image-2");
        assert_eq!(gpt.quality_for(Tier::Hd), Some("high"));
        assert_eq!(gpt.quality_for(Tier::Standard), Some("medium"));
        let d3 = Model::lookup("dall-e-3");
        assert_eq!(d3.quality_for(Tier::Hd), Some("hd"));
        assert_eq!(d3.quality_for(Tier::Standard), Some("standard"));
        assert_eq!(Model::lookup("dall-e-2").quality_for(Tier::Hd), None);
    }

    #[test]
    fn only_dalle_gets_response_format() {
        assert_eq!(Model::lookup("gpt-image-1.5").response_format(), None);
        assert_eq!(
            Model::lookup("dall-e-3").response_format(),
            Some("b64_json")
        );
        assert_eq!(
            Model::lookup("dall-e-2").response_format(),
            Some("b64_json")
        );
    }

    #[test]
    fn dalle3_cannot_edit() {
        assert!(!Model::lookup("dall-e-3").can_edit());
        assert!(Model::lookup("dall-e-2").can_edit());
        assert!(Model::lookup("gpt-image-2").can_edit());
    }

    #[test]
    fn every_model_takes_the_default_size() {
        for info in MODELS {
            assert_eq!(
                Model::lookup(info.name).check_size(&Size::DEFAULT),
                Ok(()),
                "{}",
                info.name
            );
        }
    }

    #[test]
    fn flexible_size_rules() {
        let m = Model::lookup("gpt-image-2");
        let ok = |s: &str| m.check_size(&s.parse().unwrap()).is_ok();
        assert!(ok("1536x1024"));
        assert!(ok("3840x2160"));
        assert!(ok("2160x3840"));
        assert!(ok("1024x640"));
        assert!(ok("auto"));
        assert!(!ok("1000x1000"), "not multiples of 16");
        assert!(!ok("3856x1024"), "long edge over 3840");
        assert!(!ok("3840x1264"), "aspect over 3:1");
        assert!(!ok("3840x3840"), "too many pixels");
        assert!(!ok("512x512"), "too few pixels");
    }

    #[test]
    fn fixed_size_rules() {
        let m = Model::lookup("dall-e-3");
        assert!(m.check_size(&"1792x1024".parse().unwrap()).is_ok());
        let err = m.check_size(&"1536x1024".parse().unwrap()).unwrap_err();
        assert!(err.contains("1792x1024"), "{err}");
        assert!(m.check_size(&Size::Auto).is_err());
    }

    #[test]
    fn size_parsing() {
        assert_eq!("auto".parse::<Size>(), Ok(Size::Auto));
        assert_eq!(
            "1536x1024".parse::<Size>(),
            Ok(Size::Pixels {
                width: 1536,
                height: 1024
            })
        );
        for bad in [
            "",
            "x",
            "1024",
            "1024x",
            "0x1024",
            "axb",
            "1024X1024",
            "-1x5",
        ] {
            assert!(bad.parse::<Size>().is_err(), "{bad}");
        }
        assert_eq!(Size::DEFAULT.to_string(), "1024x1024");
    }

    #[test]
    fn prompt_length_limits_per_model() {
        let long = "a".repeat(4_001);
        assert!(Model::lookup("gpt-image-2").check_prompt(&long).is_ok());
        let err = Model::lookup("dall-e-3").check_prompt(&long).unwrap_err();
        assert!(err.contains("4001") && err.contains("4000"), "{err}");
        assert!(Model::lookup("gpt-image-2").check_prompt("  \n").is_err());
    }

    #[test]
    fn retiring_models_name_a_successor() {
        for info in MODELS {
            if info.lifecycle != Lifecycle::Live {
                assert!(!info.successors.is_empty(), "{}", info.name);
            }
        }
    }

    #[test]
    fn output_tokens_follow_the_notes_formula() {
        assert_eq!(output_tokens(1024, 1024, 96), 7024);
        // Ten high 1024x1024 gpt-image-2 images: $2.11.
        let each = Model::lookup("gpt-image-2")
            .estimate(Size::DEFAULT, Some("high"), 0)
            .unwrap();
        assert_eq!(format!("{:.2}", each * 10.0), "2.11");
        // Non-square images take fewer tokens at the same quality.
        assert!(output_tokens(1536, 1024, 96) < 7024);
    }

    #[test]
    fn estimates_per_model() {
        let est = |m: &str, size: &str, q: Option<&str>| {
            Model::lookup(m).estimate(size.parse().unwrap(), q, 0)
        };
        assert_eq!(est("gpt-image-1.5", "1024x1024", Some("high")), Some(0.133));
        assert_eq!(est("gpt-image-1.5", "1536x1024", Some("low")), Some(0.013));
        assert_eq!(
            est("gpt-image-1-mini", "1024x1536", Some("medium")),
            Some(0.015)
        );
        assert_eq!(est("dall-e-3", "1792x1024", Some("hd")), Some(0.12));
        assert_eq!(est("dall-e-3", "1024x1024", Some("standard")), Some(0.04));
        assert_eq!(est("gpt-image-1.5", "auto", Some("auto")), Some(0.133));
        assert_eq!(est("dall-e-2", "1024x1024", None), None);
        assert_eq!(est("my-own-model", "1024x1024", Some("high")), None);
        let low25 = est("gpt-image-2.5-flare", "1024x1024", Some("low")).unwrap();
        let low26 = est("gpt-image-2.6-flare", "1024x1024", Some("low")).unwrap();
        assert!(low26 > 3.0 * low25, "2.6 low takes 3-4x the tokens");
        let max = est("gpt-image-2.5-flare", "1024x1024", Some("max")).unwrap();
        assert_eq!(max, est("gpt-image-2", "1024x1024", Some("high")).unwrap());
        // The prompt's text adds a little.
        let long = Model::lookup("gpt-image-2")
            .estimate(Size::DEFAULT, Some("high"), 4000)
            .unwrap();
        assert!((long - max - 1000.0 * 5.0 / 1e6).abs() < 1e-9);
    }

    /// Every size a model takes: its list, or for flexible sizes `auto` and every `WxH` in
    /// steps of 16 that passes its rules.
    fn sizes_taken(m: &Model) -> Vec<Size> {
        match m.info().sizes {
            Sizes::None => Vec::new(),
            Sizes::Fixed(list) => list.iter().map(|s| s.parse().unwrap()).collect(),
            Sizes::Flexible => {
                let mut sizes = vec![Size::Auto];
                for width in (16..=3840).step_by(16) {
                    for height in (16..=3840).step_by(16) {
                        let size = Size::Pixels { width, height };
                        if m.check_size(&size).is_ok() {
                            sizes.push(size);
                        }
                    }
                }
                sizes
            }
        }
    }

    #[test]
    fn estimates_rise_with_quality_for_every_model_and_size() {
        const LADDERS: [&[&str]; 2] = [
            &["low", "medium", "high", "xhigh", "max"],
            &["standard", "hd"],
        ];
        for info in MODELS {
            let m = Model::lookup(info.name);
            if info.price == Price::Unknown {
                continue;
            }
            let sizes = sizes_taken(&m);
            assert!(!sizes.is_empty(), "{}", info.name);
            for size in sizes {
                for ladder in LADDERS {
                    let steps: Vec<(&str, f64)> = ladder
                        .iter()
                        .filter(|q| info.qualities.contains(q))
                        .map(|q| {
                            let usd = m.estimate(size, Some(q), 0);
                            (
                                *q,
                                usd.unwrap_or_else(|| panic!("{} {q}: no price", info.name)),
                            )
                        })
                        .collect();
                    for pair in steps.windows(2) {
                        let ((lower, a), (higher, b)) = (pair[0], pair[1]);
                        assert!(
                            a <= b,
                            "{} {size}: {lower} ${a} is dearer than {higher} ${b}",
                            info.name
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn gpt26_low_and_medium_take_3_to_4_times_the_tokens_of_25() {
        let (m25, m26) = (
            Model::lookup("gpt-image-2.5-flare"),
            Model::lookup("gpt-image-2.6-flare"),
        );
        // With no prompt text, an estimate is the output tokens at one price.
        for size in sizes_taken(&m26) {
            for q in ["low", "medium", "high", "xhigh", "max"] {
                let ratio = m26.estimate(size, Some(q), 0).unwrap()
                    / m25.estimate(size, Some(q), 0).unwrap();
                if q == "low" || q == "medium" {
                    assert!((3.0..=4.0).contains(&ratio), "{size} {q}: {ratio}x");
                } else {
                    assert!((ratio - 1.0).abs() < 1e-12, "{size} {q}: {ratio}x");
                }
            }
        }
    }

    #[test]
    fn actual_cost_from_usage() {
        let usage = serde_json::json!({
            "input_tokens": 50, "output_tokens": 7024, "total_tokens": 7074,
            "input_tokens_details": {"text_tokens": 40, "image_tokens": 10}
        });
        let cost = Model::lookup("gpt-image-2")
            .cost_from_usage(&usage)
            .unwrap();
        let expected = (40.0 * 5.0 + 10.0 * 8.0 + 7024.0 * 30.0) / 1e6;
        assert!((cost - expected).abs() < 1e-12, "{cost}");
        let bare = serde_json::json!({"input_tokens": 50, "output_tokens": 100});
        let cost = Model::lookup("gpt-image-2").cost_from_usage(&bare).unwrap();
        assert!((cost - (50.0 * 5.0 + 100.0 * 30.0) / 1e6).abs() < 1e-12);
        assert_eq!(Model::lookup("gpt-image-1.5").cost_from_usage(&usage), None);
        assert_eq!(
            Model::lookup("gpt-image-2").cost_from_usage(&serde_json::json!({})),
            None
        );
        // The image and text output tokens where the answer splits them, each at its price;
        // a split with no total, or a total with only the text tokens, is read too.
        let flare = Model::lookup("gpt-image-2.6-flare");
        let split = |usage: serde_json::Value| flare.cost_from_usage(&usage).unwrap();
        let expected =
            (50.0 * 5.0 + 7000.0 * USD_PER_M_IMAGE_OUT + 24.0 * USD_PER_M_TEXT_OUT) / 1e6;
        for usage in [
            serde_json::json!({"input_tokens": 50, "output_tokens": 7024,
                "output_tokens_details": {"image_tokens": 7000, "text_tokens": 24}}),
            serde_json::json!({"input_tokens": 50,
                "output_tokens_details": {"image_tokens": 7000, "text_tokens": 24}}),
            serde_json::json!({"input_tokens": 50, "output_tokens": 7024,
                "output_tokens_details": {"text_tokens": 24}}),
            serde_json::json!({"input_tokens": 50, "output_tokens": 7024,
                "output_tokens_details": {"image_tokens": 7000}}),
        ] {
            assert!((split(usage.clone()) - expected).abs() < 1e-12, "{usage}");
        }
    }

    #[test]
    fn names_near_a_known_model() {
        // A dash, a dot, the letter case: the one name meant.
        assert_eq!(nearest_models("gpt-image2"), ["gpt-image-2"]);
        assert_eq!(nearest_models("GPT-Image-2"), ["gpt-image-2"]);
        assert_eq!(
            nearest_models("gpt-image-2-6-flare"),
            ["gpt-image-2.6-flare"]
        );
        assert_eq!(nearest_models("dalle3"), ["dall-e-3"]);
        // Typos within two edits, the nearest only.
        assert_eq!(nearest_models("gpt-imgae-2"), ["gpt-image-2"]);
        assert_eq!(
            nearest_models("gpt-image-2.6-flair"),
            ["gpt-image-2.6-flare"]
        );
        assert_eq!(
            nearest_models("gpt-image-9"),
            ["gpt-image-2", "gpt-image-1"]
        );
        // Nothing close: no guess.
        assert!(nearest_models("stable-diffusion-xl").is_empty());
        assert!(nearest_models("my-own-model").is_empty());
        assert!(nearest_models("").is_empty());
    }

    #[test]
    fn unknown_model_warnings() {
        let w = |m: &str| Model::lookup(m).unknown_model_warning();
        assert_eq!(
            w("gpt-image2").as_deref(),
            Some("unknown model gpt-image2; did you mean gpt-image-2? (genimg models lists them)")
        );
        assert_eq!(
            w("gpt-image-9").as_deref(),
            Some(
                "unknown model gpt-image-9; did you mean gpt-image-2 or gpt-image-1? \
                 (genimg models lists them)"
            )
        );
        assert_eq!(w("gpt-image-2"), None, "known");
        assert_eq!(w("gpt-image-2-2026-04-21"), None, "a known snapshot");
        assert_eq!(w("my-own-model"), None, "far from any");
        assert_eq!(or_list(&["a", "b", "c"]), "a, b or c");
    }

    #[test]
    fn retirement_warnings() {
        let day = |s: &str| s.parse::<jiff::civil::Date>().unwrap();
        let w = |m: &str, today: &str| Model::lookup(m).retirement_warning(day(today));
        assert_eq!(w("gpt-image-2", "2026-11-24"), None);
        assert_eq!(
            w("gpt-image-1.5", "2026-10-01"),
            None,
            "more than 30 days ahead"
        );
        assert_eq!(
            w("gpt-image-1.5", "2026-11-24").unwrap(),
            "gpt-image-1.5 shuts down on 2026-12-01, in 7 day(s); use gpt-image-2.6-sunburst \
             or gpt-image-2.6-flare instead (--model gpt-image-2.6-sunburst)"
        );
        assert!(
            w("gpt-image-1-mini", "2026-12-02")
                .unwrap()
                .contains("was shut down on")
        );
        let removed = w("dall-e-3", "2026-11-24").unwrap();
        assert!(
            removed.starts_with("dall-e-3 was removed from OpenAI on 2026-05-12"),
            "{removed}"
        );
        assert!(removed.contains("use gpt-image-2"), "{removed}");
        assert_eq!(w("my-own-model", "2026-11-24"), None);
        assert_eq!(live_models(ProviderId::OpenAi)[0], "gpt-image-2.6-flare");
        assert!(!live_models(ProviderId::OpenAi).contains(&"gpt-image-1.5"));
        assert_eq!(live_models(ProviderId::Gemini)[0], "gemini-nano-banana-2.1");
    }

    #[test]
    fn the_table_lists_every_model_with_its_facts() {
        let day = |s: &str| s.parse::<jiff::civil::Date>().unwrap();
        let table = render_table_on(day("2026-12-02"));
        for m in MODELS {
            assert!(table.contains(&format!("\n{}  (", m.name)), "{}", m.name);
        }
        // The lifecycle is dated: it changes by itself on its date.
        assert!(table.contains(
            "gpt-image-1.5  (shut down on 2026-12-01; use gpt-image-2.6-sunburst or \
             gpt-image-2.6-flare)"
        ));
        assert!(table.contains("chatgpt-image-latest  (shut down on 2026-12-01;"));
        assert!(
            table.contains("gpt-image-1  (removed from OpenAI on 2026-10-23; use gpt-image-2)")
        );
        let before = render_table_on(day("2026-11-24"));
        assert!(
            before.contains("gpt-image-1-mini  (shuts down on 2026-12-01;"),
            "{before}"
        );
        assert!(table.contains("high $0.211"), "{table}");
        assert!(table.contains("--complexity"));
        assert!(table.contains("none (cannot edit)"));
    }

    #[test]
    fn quality_tokens_cover_every_model_quality() {
        for info in MODELS {
            for q in info.qualities {
                assert!(QUALITY_TOKENS.contains(q), "{q}");
            }
        }
    }
}
