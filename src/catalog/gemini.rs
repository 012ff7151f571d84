//! Google's Gemini image models ("Nano Banana"): what each takes and what it costs, from
//! `GEMINI-NOTES.md` (as of 2026-12-01). Where the notes mark a fact unverified, the table
//! takes the documented value and the service's answer decides.
//!
//! The rows are [`ModelInfo`]s like OpenAI's: the same checks read their capabilities.

use super::{Family, Lifecycle, MAX_GEMINI_REQUEST_BYTES, ModelInfo, Price, ProviderId, Sizes};
use crate::format::ImageFormat;

/// The aspect ratios every Gemini image model takes.
pub const RATIOS: &[&str] = &[
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9",
];
/// Every ratio: the common ones, then the wide ones the 3.1-flash family and 2.1 add.
const ALL_RATIOS: &[&str] = &[
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9", "1:4", "4:1", "1:8",
    "8:1",
];

/// Inline images a request takes, by their MIME types (HEIC is not read by genimg).
const FORMATS: &[ImageFormat] = &ImageFormat::RASTER;

/// What every Gemini image model shares; each row sets what differs.
const BASE: ModelInfo = ModelInfo {
    name: "",
    provider: ProviderId::Gemini,
    snapshots: &[],
    family: Family::Gemini,
    sizes: Sizes::None,
    qualities: &[],
    max_references: 14,
    reference_formats: FORMATS,
    // Base64 makes 4 bytes of 3: a larger image alone is over the request's 100 MB.
    max_reference_bytes: MAX_GEMINI_REQUEST_BYTES / 4 * 3,
    max_prompt_chars: 120_000,
    output_options: false,
    transparency: false,
    input_fidelity: false,
    complexity: false,
    price: Price::Unknown,
    lifecycle: Lifecycle::Live,
    successors: &[],
    aspect_ratios: RATIOS,
    image_sizes: &["1K", "2K", "4K"],
    known_as: "",
    max_request_bytes: Some(MAX_GEMINI_REQUEST_BYTES),
    own_format: true,
    more_formats: &[],
};

/// Nano Banana Pro, which its preview shared everything with.
const PRO: ModelInfo = ModelInfo {
    name: "gemini-3-pro-image",
    known_as: "Nano Banana Pro",
    price: Price::Gemini {
        per_image: &[("1K", 0.134), ("2K", 0.134), ("4K", 0.24)],
        usd_per_m_in: 2.00,
        usd_per_m_text_out: 12.00,
        usd_per_m_image_out: 120.0,
    },
    ..BASE
};

/// Nano Banana 2, which its preview shared everything with.
const FLASH: ModelInfo = ModelInfo {
    name: "gemini-3.1-flash-image",
    known_as: "Nano Banana 2",
    lifecycle: Lifecycle::Deprecated("2026-10-06"),
    successors: &["gemini-nano-banana-2.1"],
    aspect_ratios: ALL_RATIOS,
    image_sizes: &["512", "1K", "2K", "4K"],
    price: Price::Gemini {
        per_image: &[("512", 0.045), ("1K", 0.067), ("2K", 0.101), ("4K", 0.151)],
        usd_per_m_in: 0.50,
        usd_per_m_text_out: 3.00,
        usd_per_m_image_out: 60.0,
    },
    ..BASE
};

/// The models, newest first.
pub static MODELS: &[ModelInfo] = &[
    ModelInfo {
        name: "gemini-nano-banana-2.1",
        known_as: "Nano Banana 2.1",
        aspect_ratios: ALL_RATIOS,
        price: Price::Gemini {
            per_image: &[("1K", 0.0336), ("2K", 0.0504), ("4K", 0.113)],
            usd_per_m_in: 1.50,
            usd_per_m_text_out: 7.50,
            usd_per_m_image_out: 30.0,
        },
        ..BASE
    },
    PRO,
    FLASH,
    ModelInfo {
        name: "gemini-3.1-flash-lite-image",
        known_as: "Nano Banana 2 Lite",
        aspect_ratios: ALL_RATIOS,
        image_sizes: &["1K"],
        price: Price::Gemini {
            per_image: &[("1K", 0.0336)],
            usd_per_m_in: 0.25,
            usd_per_m_text_out: 1.50,
            usd_per_m_image_out: 30.0,
        },
        ..BASE
    },
    ModelInfo {
        name: "gemini-2.5-flash-image",
        known_as: "Nano Banana",
        lifecycle: Lifecycle::Deprecated("2026-10-02"),
        successors: &["gemini-nano-banana-2.1"],
        max_references: 3,
        image_sizes: &[],
        price: Price::Gemini {
            per_image: &[("1K", 0.039)],
            usd_per_m_in: 0.30,
            usd_per_m_text_out: 2.50,
            usd_per_m_image_out: 30.0,
        },
        ..BASE
    },
    ModelInfo {
        name: "gemini-3-pro-image-preview",
        known_as: "Nano Banana Pro (preview)",
        lifecycle: Lifecycle::ShutsDown("2026-06-25"),
        successors: &["gemini-3-pro-image"],
        ..PRO
    },
    ModelInfo {
        name: "gemini-3.1-flash-image-preview",
        known_as: "Nano Banana 2 (preview)",
        lifecycle: Lifecycle::ShutsDown("2026-06-25"),
        successors: &["gemini-nano-banana-2.1"],
        ..FLASH
    },
];

/// The rules assumed for a Gemini model genimg does not know: every ratio and size, so that
/// a new model is not refused by an old table; the service's answer decides.
pub static UNKNOWN_GEMINI: ModelInfo = ModelInfo {
    aspect_ratios: ALL_RATIOS,
    image_sizes: &["512", "1K", "2K", "4K"],
    ..BASE
};

/// The price of an answer from its `usageMetadata`: prompt tokens at the input rate,
/// thinking and text out at the text rate, image tokens out at the image rate. `None` when it
/// says too little.
pub fn cost_from_usage(
    usage: &serde_json::Value,
    usd_per_m_in: f64,
    usd_per_m_text_out: f64,
    usd_per_m_image_out: f64,
) -> Option<f64> {
    let n = |key: &str| usage.get(key).and_then(serde_json::Value::as_f64);
    let candidates = n("candidatesTokenCount")?;
    let prompt = n("promptTokenCount").unwrap_or(0.0);
    let thoughts = n("thoughtsTokenCount").unwrap_or(0.0);
    let image_out = usage
        .get("candidatesTokensDetails")
        .and_then(serde_json::Value::as_array)
        .map(|details| {
            details
                .iter()
                .filter(|d| d.get("modality").and_then(serde_json::Value::as_str) == Some("IMAGE"))
                .filter_map(|d| d.get("tokenCount").and_then(serde_json::Value::as_f64))
                .sum::<f64>()
        })
        // Without the details, the candidates are the image.
        .unwrap_or(candidates);
    let text_out = (candidates - image_out).max(0.0) + thoughts;
    Some(
        (prompt * usd_per_m_in + text_out * usd_per_m_text_out + image_out * usd_per_m_image_out)
            / 1e6,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Model, Tier};

    fn takes_ratio(m: &Model, ratio: &str) -> bool {
        m.info().aspect_ratios.contains(&ratio)
    }

    #[test]
    fn each_model_takes_its_own_ratios_and_sizes() {
        let lite = Model::lookup("gemini-3.1-flash-lite-image");
        assert!(lite.is_known());
        assert_eq!(lite.info().image_sizes, ["1K"]);
        assert_eq!(
            lite.image_size_for(Tier::Hd),
            Some("1K"),
            "HD is the largest it takes"
        );
        let flash = Model::lookup("gemini-3.1-flash-image");
        assert!(flash.info().image_sizes.contains(&"512"));
        assert!(takes_ratio(&flash, "8:1"));
        assert_eq!(flash.image_size_for(Tier::Hd), Some("2K"));
        assert_eq!(flash.image_size_for(Tier::Standard), Some("1K"));
        let pro = Model::lookup("gemini-3-pro-image");
        assert!(!takes_ratio(&pro, "8:1"), "no wide ratios");
        assert!(takes_ratio(&pro, "21:9"));
        assert_eq!(pro.info().aspect_ratios.len(), RATIOS.len());
        let old = Model::lookup("gemini-2.5-flash-image");
        assert_eq!(old.image_size_for(Tier::Hd), None, "it takes no size");
        assert_eq!(old.estimate_by_image_size(None), Some(0.039));
        assert!(MODELS.iter().all(|m| m.name.starts_with("gemini-")));
        assert!(MODELS.iter().all(|m| m.provider == ProviderId::Gemini));
    }

    #[test]
    fn names_pick_their_provider() {
        let new = Model::lookup("gemini-9-image");
        assert_eq!(new.provider(), ProviderId::Gemini);
        assert!(!new.is_known());
        assert!(
            takes_ratio(&new, "8:1"),
            "an unknown model is refused nothing"
        );
        let google = Model::lookup("google:imagen-9");
        assert_eq!(
            (google.provider(), google.name()),
            (ProviderId::Gemini, "imagen-9")
        );
        let openai = Model::lookup("openai:gemini-3-pro-image");
        assert_eq!(
            (openai.provider(), openai.name()),
            (ProviderId::OpenAi, "gemini-3-pro-image"),
            "a compatible service may serve any name"
        );
        let known = Model::lookup("google:gemini-3-pro-image");
        assert!(known.is_known());
        assert_eq!(Model::lookup("gpt-image-2").provider(), ProviderId::OpenAi);
        assert_eq!(
            Model::lookup("ft:gpt-image-2:acme").name(),
            "ft:gpt-image-2:acme",
            "only the two provider prefixes are taken off"
        );
    }

    #[test]
    fn prices_by_size_and_by_usage() {
        let flash = Model::lookup("gemini-3.1-flash-image");
        assert_eq!(flash.estimate_by_image_size(Some("2K")), Some(0.101));
        // 1120 image tokens at $60/M is the 1K price.
        let usage = serde_json::json!({
            "promptTokenCount": 42, "candidatesTokenCount": 1120, "thoughtsTokenCount": 210,
            "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1120}]
        });
        let cost = flash.cost_from_usage(&usage).unwrap();
        let expected = (42.0 * 0.50 + 210.0 * 3.00 + 1120.0 * 60.0) / 1e6;
        assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");
        assert!((1120.0 * 60.0 / 1e6 - 0.0672_f64).abs() < 1e-9);
        assert_eq!(flash.cost_from_usage(&serde_json::json!({})), None);
    }
}
