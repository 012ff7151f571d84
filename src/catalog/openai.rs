//! OpenAI's image models: their sizes, qualities, options, prices and lifecycle, from
//! OpenAI's documentation and API reference (as of 2026-12). Azure deployments and
//! OpenAI-compatible services take the same rules.

use super::{Family, Lifecycle, MB, ModelInfo, Price, ProviderId, Sizes};
use crate::format::ImageFormat;

/// Per million tokens: text in, image in, image out (gpt-image-2 and later).
pub const USD_PER_M_TEXT_IN: f64 = 5.0;
pub const USD_PER_M_IMAGE_IN: f64 = 8.0;
pub const USD_PER_M_IMAGE_OUT: f64 = 30.0;
/// Text output tokens (`usage.output_tokens_details.text_tokens`): OpenAI publishes no price
/// for them on the image models (API-NOTES gives none), so they are counted at the image
/// output price, an upper bound, until it does.
pub const USD_PER_M_TEXT_OUT: f64 = USD_PER_M_IMAGE_OUT;

/// The output tokens of a `width`x`height` image at quality factor `f`, by the formula
/// third-party sources give (unverified; 1024x1024 at factor 96 is 7024 tokens). Estimates
/// only: each answer's `usage` gives the real cost.
pub fn output_tokens(width: u32, height: u32, f: u32) -> u64 {
    let (w, h, f) = (u64::from(width), u64::from(height), u64::from(f));
    let (short, long) = (w.min(h), w.max(h));
    let saf = (2 * f * short + long) / (2 * long);
    (f * saf * (2_000_000 + w * h)).div_ceil(4_000_000)
}

const GPT15_PRICE: Price = Price::PerImage {
    square: &[("low", 0.009), ("medium", 0.034), ("high", 0.133)],
    other: &[("low", 0.013), ("medium", 0.05), ("high", 0.20)],
};
const GPT1_MINI_PRICE: Price = Price::PerImage {
    square: &[("low", 0.005), ("medium", 0.011), ("high", 0.036)],
    other: &[("low", 0.006), ("medium", 0.015), ("high", 0.052)],
};
const GPT2_PRICE: Price = Price::Tokens {
    factors: &[("low", 16), ("medium", 48), ("high", 96)],
    times: &[],
};
const GPT25_FACTORS: &[(&str, u32)] = &[
    ("low", 16),
    ("medium", 24),
    ("high", 48),
    ("xhigh", 64),
    ("max", 96),
];
const GPT25_PRICE: Price = Price::Tokens {
    factors: GPT25_FACTORS,
    times: &[],
};
/// 2.6 low and medium take 3-4x the tokens of 2.5, high and above the same. Estimates take
/// the middle of that range: the tokens, not the factor, are multiplied (the tokens grow with
/// the square of the factor), and 3.5x keeps medium below high at every size.
const GPT26_PRICE: Price = Price::Tokens {
    factors: GPT25_FACTORS,
    times: &[("low", 3.5), ("medium", 3.5)],
};
const DALLE3_PRICE: Price = Price::PerImage {
    square: &[("standard", 0.04), ("hd", 0.08)],
    other: &[("standard", 0.08), ("hd", 0.12)],
};

const FIXED_GPT1_SIZES: &[&str] = &["1024x1024", "1536x1024", "1024x1536", "auto"];
const GPT_QUALITIES: &[&str] = &["low", "medium", "high", "auto"];
const GPT25_QUALITIES: &[&str] = &["low", "medium", "high", "xhigh", "max", "auto"];
const ALL_FORMATS: &[ImageFormat] = &ImageFormat::RASTER;
/// The formats the 2.6 models make beyond the raster three.
const GIF_SVG: &[ImageFormat] = &[ImageFormat::Gif, ImageFormat::Svg];

/// What sets GPT image models apart from each other.
struct Gpt {
    sizes: Sizes,
    qualities: &'static [&'static str],
    input_fidelity: bool,
    complexity: bool,
    more_formats: &'static [ImageFormat],
    price: Price,
}

const GPT1: Gpt = Gpt {
    sizes: Sizes::Fixed(FIXED_GPT1_SIZES),
    qualities: GPT_QUALITIES,
    input_fidelity: true,
    complexity: false,
    more_formats: &[],
    price: Price::Unknown,
};
const GPT2: Gpt = Gpt {
    sizes: Sizes::Flexible,
    qualities: GPT_QUALITIES,
    input_fidelity: false,
    complexity: false,
    more_formats: &[],
    price: GPT2_PRICE,
};
const GPT25: Gpt = Gpt {
    qualities: GPT25_QUALITIES,
    price: GPT25_PRICE,
    ..GPT2
};
const GPT26: Gpt = Gpt {
    complexity: true,
    more_formats: GIF_SVG,
    price: GPT26_PRICE,
    ..GPT25
};

const fn gpt(
    name: &'static str,
    snapshots: &'static [&'static str],
    kind: Gpt,
    lifecycle: Lifecycle,
) -> ModelInfo {
    ModelInfo {
        name,
        provider: ProviderId::OpenAi,
        snapshots,
        family: Family::GptImage,
        sizes: kind.sizes,
        qualities: kind.qualities,
        max_references: 16,
        reference_formats: ALL_FORMATS,
        max_reference_bytes: 50 * MB,
        max_prompt_chars: 32_000,
        output_options: true,
        transparency: true,
        input_fidelity: kind.input_fidelity,
        complexity: kind.complexity,
        price: kind.price,
        lifecycle,
        successors: match lifecycle {
            Lifecycle::Live => &[],
            // OpenAI's named replacement for the models shut down on 2026-12-01.
            Lifecycle::ShutsDown(_) => &["gpt-image-2.6-sunburst", "gpt-image-2.6-flare"],
            Lifecycle::Removed(_) | Lifecycle::Deprecated(_) => &["gpt-image-2"],
        },
        aspect_ratios: &[],
        image_sizes: &[],
        known_as: "",
        max_request_bytes: None,
        own_format: false,
        more_formats: kind.more_formats,
    }
}

/// Every model genimg knows, newest first.
pub static MODELS: &[ModelInfo] = &[
    gpt("gpt-image-2.6-flare", &[], GPT26, Lifecycle::Live),
    gpt("gpt-image-2.6-sunburst", &[], GPT26, Lifecycle::Live),
    gpt(
        "gpt-image-2.5-flare",
        &["gpt-image-2.5-flare-2026-09-08"],
        GPT25,
        Lifecycle::Live,
    ),
    gpt(
        "gpt-image-2.5-sunburst",
        &["gpt-image-2.5-sunburst-2026-09-08"],
        GPT25,
        Lifecycle::Live,
    ),
    gpt(
        "gpt-image-2",
        &["gpt-image-2-2026-04-21"],
        GPT2,
        Lifecycle::Live,
    ),
    gpt(
        "gpt-image-1.5",
        &["gpt-image-1.5-2025-12-16"],
        Gpt {
            price: GPT15_PRICE,
            ..GPT1
        },
        Lifecycle::ShutsDown("2026-12-01"),
    ),
    gpt(
        "gpt-image-1-mini",
        &[],
        Gpt {
            input_fidelity: false,
            price: GPT1_MINI_PRICE,
            ..GPT1
        },
        Lifecycle::ShutsDown("2026-12-01"),
    ),
    gpt(
        "chatgpt-image-latest",
        &[],
        GPT1,
        Lifecycle::ShutsDown("2026-12-01"),
    ),
    gpt("gpt-image-1", &[], GPT1, Lifecycle::Removed("2026-10-23")),
    ModelInfo {
        name: "dall-e-3",
        provider: ProviderId::OpenAi,
        snapshots: &[],
        family: Family::DallE3,
        sizes: Sizes::Fixed(&["1024x1024", "1792x1024", "1024x1792"]),
        qualities: &["hd", "standard"],
        max_references: 0,
        reference_formats: &[],
        max_reference_bytes: 0,
        max_prompt_chars: 4_000,
        output_options: false,
        transparency: false,
        input_fidelity: false,
        complexity: false,
        price: DALLE3_PRICE,
        lifecycle: Lifecycle::Removed("2026-05-12"),
        successors: &["gpt-image-2"],
        aspect_ratios: &[],
        image_sizes: &[],
        known_as: "",
        max_request_bytes: None,
        own_format: false,
        more_formats: &[],
    },
    ModelInfo {
        name: "dall-e-2",
        provider: ProviderId::OpenAi,
        snapshots: &[],
        family: Family::DallE2,
        sizes: Sizes::Fixed(&["256x256", "512x512", "1024x1024"]),
        qualities: &[],
        max_references: 1,
        reference_formats: &[ImageFormat::Png],
        max_reference_bytes: 4 * MB,
        max_prompt_chars: 1_000,
        output_options: false,
        transparency: false,
        input_fidelity: false,
        complexity: false,
        price: Price::Unknown,
        lifecycle: Lifecycle::Removed("2026-05-12"),
        successors: &["gpt-image-2"],
        aspect_ratios: &[],
        image_sizes: &[],
        known_as: "",
        max_request_bytes: None,
        own_format: false,
        more_formats: &[],
    },
];

/// The rules assumed for a model name genimg does not know: those of the newest GPT image
/// models, permissive where they differ, so that a new model is not refused by an old table.
pub(super) static UNKNOWN_GPT_IMAGE: ModelInfo = ModelInfo {
    name: "",
    provider: ProviderId::OpenAi,
    snapshots: &[],
    family: Family::GptImage,
    sizes: Sizes::Flexible,
    qualities: GPT25_QUALITIES,
    max_references: 16,
    reference_formats: ALL_FORMATS,
    max_reference_bytes: 50 * MB,
    max_prompt_chars: 32_000,
    output_options: true,
    transparency: true,
    input_fidelity: true,
    complexity: true,
    price: Price::Unknown,
    lifecycle: Lifecycle::Live,
    successors: &[],
    aspect_ratios: &[],
    image_sizes: &[],
    known_as: "",
    max_request_bytes: None,
    own_format: false,
    more_formats: GIF_SVG,
};

pub const DEFAULT_MODEL: &str = "gpt-image-2";
