//! One table of what each image model takes, and the rules that turn options into a request.
//!
//! Facts come from `shared/API-NOTES.md`. A model that is not in the table is still sent as
//! named, under the rules of the GPT image models, since new models appear every few months.

use std::fmt;
use std::str::FromStr;

use crate::format::ImageFormat;

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
}

/// The sizes a model accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sizes {
    /// Only these values (`auto` among them where allowed).
    Fixed(&'static [&'static str]),
    /// gpt-image-2 and later: any `WxH` with both sides multiples of 16, aspect between 1:3 and
    /// 3:1, a long edge of at most 3840, and between 655,360 and 3840x2160 pixels; or `auto`.
    Flexible,
}

/// Where a model stands in OpenAI's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Live,
    /// Shuts down on this date (YYYY-MM-DD).
    ShutsDown(&'static str),
    /// Removed from OpenAI on this date; other servers may still serve it.
    Removed(&'static str),
}

/// The capabilities of one model, as the service enforces them.
#[derive(Debug)]
pub struct ModelInfo {
    pub name: &'static str,
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
    pub lifecycle: Lifecycle,
    pub successor: Option<&'static str>,
}

const FIXED_GPT1_SIZES: &[&str] = &["1024x1024", "1536x1024", "1024x1536", "auto"];
const GPT_QUALITIES: &[&str] = &["low", "medium", "high", "auto"];
const GPT25_QUALITIES: &[&str] = &["low", "medium", "high", "xhigh", "max", "auto"];
const ALL_FORMATS: &[ImageFormat] = &ImageFormat::ALL;

const fn gpt(
    name: &'static str,
    snapshots: &'static [&'static str],
    sizes: Sizes,
    qualities: &'static [&'static str],
    lifecycle: Lifecycle,
) -> ModelInfo {
    ModelInfo {
        name,
        snapshots,
        family: Family::GptImage,
        sizes,
        qualities,
        max_references: 16,
        reference_formats: ALL_FORMATS,
        max_reference_bytes: 50 * MB,
        max_prompt_chars: 32_000,
        lifecycle,
        successor: match lifecycle {
            Lifecycle::Live => None,
            _ => Some("gpt-image-2"),
        },
    }
}

/// Every model genimg knows, newest first.
pub static MODELS: &[ModelInfo] = &[
    gpt(
        "gpt-image-2.6-flare",
        &[],
        Sizes::Flexible,
        GPT25_QUALITIES,
        Lifecycle::Live,
    ),
    gpt(
        "gpt-image-2.6-sunburst",
        &[],
        Sizes::Flexible,
        GPT25_QUALITIES,
        Lifecycle::Live,
    ),
    gpt(
        "gpt-image-2.5-flare",
        &["gpt-image-2.5-flare-2026-09-08"],
        Sizes::Flexible,
        GPT25_QUALITIES,
        Lifecycle::Live,
    ),
    gpt(
        "gpt-image-2.5-sunburst",
        &["gpt-image-2.5-sunburst-2026-09-08"],
        Sizes::Flexible,
        GPT25_QUALITIES,
        Lifecycle::Live,
    ),
    gpt(
        "gpt-image-2",
        &["gpt-image-2-2026-04-21"],
        Sizes::Flexible,
        GPT_QUALITIES,
        Lifecycle::Live,
    ),
    gpt(
        "gpt-image-1.5",
        &[],
        Sizes::Fixed(FIXED_GPT1_SIZES),
        GPT_QUALITIES,
        Lifecycle::ShutsDown("2026-12-01"),
    ),
    gpt(
        "gpt-image-1-mini",
        &[],
        Sizes::Fixed(FIXED_GPT1_SIZES),
        GPT_QUALITIES,
        Lifecycle::ShutsDown("2026-12-01"),
    ),
    gpt(
        "chatgpt-image-latest",
        &[],
        Sizes::Fixed(FIXED_GPT1_SIZES),
        GPT_QUALITIES,
        Lifecycle::ShutsDown("2026-12-01"),
    ),
    gpt(
        "gpt-image-1",
        &[],
        Sizes::Fixed(FIXED_GPT1_SIZES),
        GPT_QUALITIES,
        Lifecycle::Removed("2026-10-23"),
    ),
    ModelInfo {
        name: "dall-e-3",
        snapshots: &[],
        family: Family::DallE3,
        sizes: Sizes::Fixed(&["1024x1024", "1792x1024", "1024x1792"]),
        qualities: &["hd", "standard"],
        max_references: 0,
        reference_formats: &[],
        max_reference_bytes: 0,
        max_prompt_chars: 4_000,
        lifecycle: Lifecycle::Removed("2026-05-12"),
        successor: Some("gpt-image-2"),
    },
    ModelInfo {
        name: "dall-e-2",
        snapshots: &[],
        family: Family::DallE2,
        sizes: Sizes::Fixed(&["256x256", "512x512", "1024x1024"]),
        qualities: &[],
        max_references: 1,
        reference_formats: &[ImageFormat::Png],
        max_reference_bytes: 4 * MB,
        max_prompt_chars: 1_000,
        lifecycle: Lifecycle::Removed("2026-05-12"),
        successor: Some("gpt-image-2"),
    },
];

/// The rules assumed for a model name genimg does not know: those of the newest GPT image
/// models, permissive where they differ, so that a new model is not refused by an old table.
static UNKNOWN_GPT_IMAGE: ModelInfo = ModelInfo {
    name: "",
    snapshots: &[],
    family: Family::GptImage,
    sizes: Sizes::Flexible,
    qualities: GPT25_QUALITIES,
    max_references: 16,
    reference_formats: ALL_FORMATS,
    max_reference_bytes: 50 * MB,
    max_prompt_chars: 32_000,
    lifecycle: Lifecycle::Live,
    successor: None,
};

pub const DEFAULT_MODEL: &str = "gpt-image-2";

/// The model a run uses: the name exactly as the user gave it, and the rules that apply.
#[derive(Debug, Clone)]
pub struct Model {
    name: String,
    info: &'static ModelInfo,
    known: bool,
}

impl Model {
    /// Looks a name up in the table; unknown names get GPT image rules.
    pub fn lookup(name: &str) -> Model {
        let found = MODELS
            .iter()
            .find(|m| m.name == name || m.snapshots.contains(&name));
        Model {
            name: name.to_owned(),
            info: found.unwrap_or(&UNKNOWN_GPT_IMAGE),
            known: found.is_some(),
        }
    }

    /// The name sent to the service.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn info(&self) -> &'static ModelInfo {
        self.info
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

    /// The `quality` value sent for the seed's two levels; `None` where the model takes none.
    pub fn quality_for(&self, tier: Tier) -> Option<&'static str> {
        match (self.info.family, tier) {
            (Family::GptImage, Tier::Hd) => Some("high"),
            (Family::GptImage, Tier::Standard) => Some("medium"),
            (Family::DallE3, Tier::Hd) => Some("hd"),
            (Family::DallE3, Tier::Standard) => Some("standard"),
            (Family::DallE2, _) => None,
        }
    }

    /// `response_format` is a DALL-E field; GPT image models reject it and always send base64.
    pub fn response_format(&self) -> Option<&'static str> {
        match self.info.family {
            Family::GptImage => None,
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
                assert!(info.successor.is_some(), "{}", info.name);
            }
        }
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
