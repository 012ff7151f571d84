//! Google's Gemini image models ("Nano Banana"): what each takes and what it costs, from
//! `GEMINI-NOTES.md` (as of 2026-12-01). Where the notes mark a fact unverified, the table
//! takes the documented value and the service's answer decides.
//!
//! Not wired into runs yet: the provider seam (routing, keys, options) comes next.

/// The aspect ratios every Gemini image model takes.
pub const RATIOS: &[&str] = &[
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9",
];
/// The wide ratios the 3.1-flash family and 2.1 add.
pub const WIDE_RATIOS: &[&str] = &["1:4", "4:1", "1:8", "8:1"];

/// Where a Gemini model is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeminiStatus {
    Live,
    /// Deprecated on this date, with no shutdown announced (it may be gone).
    Deprecated(&'static str),
    ShutDown(&'static str),
}

/// One Gemini image model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeminiModel {
    pub id: &'static str,
    /// Its name as Google markets it.
    pub name: &'static str,
    pub status: GeminiStatus,
    /// `imageSize` values it takes (`512`, `1K`, `2K`, `4K`); empty: it takes none.
    pub sizes: &'static [&'static str],
    pub wide_ratios: bool,
    /// Reference images per request, at most.
    pub max_references: usize,
    /// US dollars per million tokens: text and image in, text and thinking out, image out.
    pub usd_per_m_in: f64,
    pub usd_per_m_text_out: f64,
    pub usd_per_m_image_out: f64,
    /// US dollars per image, by `imageSize` (the model's only size when it takes none).
    pub per_image: &'static [(&'static str, f64)],
}

/// Nano Banana Pro, which its preview shared everything with.
const PRO: GeminiModel = GeminiModel {
    id: "gemini-3-pro-image",
    name: "Nano Banana Pro",
    status: GeminiStatus::Live,
    sizes: &["1K", "2K", "4K"],
    wide_ratios: false,
    max_references: 14,
    usd_per_m_in: 2.00,
    usd_per_m_text_out: 12.00,
    usd_per_m_image_out: 120.0,
    per_image: &[("1K", 0.134), ("2K", 0.134), ("4K", 0.24)],
};

/// Nano Banana 2, which its preview shared everything with.
const FLASH: GeminiModel = GeminiModel {
    id: "gemini-3.1-flash-image",
    name: "Nano Banana 2",
    status: GeminiStatus::Deprecated("2026-10-06"),
    sizes: &["512", "1K", "2K", "4K"],
    wide_ratios: true,
    max_references: 14,
    usd_per_m_in: 0.50,
    usd_per_m_text_out: 3.00,
    usd_per_m_image_out: 60.0,
    per_image: &[("512", 0.045), ("1K", 0.067), ("2K", 0.101), ("4K", 0.151)],
};

/// The models, newest first.
pub const MODELS: &[GeminiModel] = &[
    GeminiModel {
        id: "gemini-nano-banana-2.1",
        name: "Nano Banana 2.1",
        status: GeminiStatus::Live,
        sizes: &["1K", "2K", "4K"],
        wide_ratios: true,
        max_references: 14,
        usd_per_m_in: 1.50,
        usd_per_m_text_out: 7.50,
        usd_per_m_image_out: 30.0,
        per_image: &[("1K", 0.0336), ("2K", 0.0504), ("4K", 0.113)],
    },
    PRO,
    FLASH,
    GeminiModel {
        id: "gemini-3.1-flash-lite-image",
        name: "Nano Banana 2 Lite",
        status: GeminiStatus::Live,
        sizes: &["1K"],
        wide_ratios: true,
        max_references: 14,
        usd_per_m_in: 0.25,
        usd_per_m_text_out: 1.50,
        usd_per_m_image_out: 30.0,
        per_image: &[("1K", 0.0336)],
    },
    GeminiModel {
        id: "gemini-2.5-flash-image",
        name: "Nano Banana",
        status: GeminiStatus::Deprecated("2026-10-02"),
        sizes: &[],
        wide_ratios: false,
        max_references: 3,
        usd_per_m_in: 0.30,
        usd_per_m_text_out: 2.50,
        usd_per_m_image_out: 30.0,
        per_image: &[("1K", 0.039)],
    },
    GeminiModel {
        id: "gemini-3-pro-image-preview",
        name: "Nano Banana Pro (preview)",
        status: GeminiStatus::ShutDown("2026-06-25"),
        ..PRO
    },
    GeminiModel {
        id: "gemini-3.1-flash-image-preview",
        name: "Nano Banana 2 (preview)",
        status: GeminiStatus::ShutDown("2026-06-25"),
        ..FLASH
    },
];

impl GeminiModel {
    /// The model named `id`, if the table knows it.
    pub fn lookup(id: &str) -> Option<&'static GeminiModel> {
        MODELS.iter().find(|m| m.id == id)
    }

    /// Whether it takes `ratio` as its `aspectRatio`.
    pub fn takes_ratio(&self, ratio: &str) -> bool {
        RATIOS.contains(&ratio) || (self.wide_ratios && WIDE_RATIOS.contains(&ratio))
    }

    /// The ratios it takes.
    pub fn ratios(&self) -> Vec<&'static str> {
        let mut all = RATIOS.to_vec();
        if self.wide_ratios {
            all.extend_from_slice(WIDE_RATIOS);
        }
        all
    }

    /// Whether it takes `size` as its `imageSize`.
    pub fn takes_size(&self, size: &str) -> bool {
        self.sizes.contains(&size)
    }

    /// The `imageSize` of the seed's quality words: HD is 2K where the model takes it, else
    /// its largest below; `--low-res` is 1K. `None` for a model that takes no size.
    pub fn size_for(&self, hd: bool) -> Option<&'static str> {
        let want: &[&str] = if hd { &["2K", "1K"] } else { &["1K", "512"] };
        want.iter()
            .find(|s| self.sizes.contains(s))
            .copied()
            .or_else(|| self.sizes.first().copied())
    }

    /// The estimated price of one image of `size` (`None`: the model's only size).
    pub fn estimate(&self, size: Option<&str>) -> Option<f64> {
        let size = size.unwrap_or("1K");
        self.per_image
            .iter()
            .find(|(s, _)| *s == size)
            .or(self.per_image.first())
            .map(|(_, usd)| *usd)
    }

    /// The price of an answer from its `usageMetadata`: prompt tokens at the input rate,
    /// thinking and text out at the text rate, image tokens out at the image rate. `None`
    /// when it says too little.
    pub fn cost_from_usage(&self, usage: &serde_json::Value) -> Option<f64> {
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
                    .filter(|d| {
                        d.get("modality").and_then(serde_json::Value::as_str) == Some("IMAGE")
                    })
                    .filter_map(|d| d.get("tokenCount").and_then(serde_json::Value::as_f64))
                    .sum::<f64>()
            })
            // Without the details, the candidates are the image.
            .unwrap_or(candidates);
        let text_out = (candidates - image_out).max(0.0) + thoughts;
        Some(
            (prompt * self.usd_per_m_in
                + text_out * self.usd_per_m_text_out
                + image_out * self.usd_per_m_image_out)
                / 1e6,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_model_takes_its_own_ratios_and_sizes() {
        let lite = GeminiModel::lookup("gemini-3.1-flash-lite-image").unwrap();
        assert!(lite.takes_size("1K"));
        assert!(!lite.takes_size("4K"), "1K only");
        assert_eq!(
            lite.size_for(true),
            Some("1K"),
            "HD is the largest it takes"
        );
        let flash = GeminiModel::lookup("gemini-3.1-flash-image").unwrap();
        assert!(flash.takes_size("512"));
        assert!(flash.takes_ratio("8:1"));
        assert_eq!(flash.size_for(true), Some("2K"));
        assert_eq!(flash.size_for(false), Some("1K"));
        let pro = GeminiModel::lookup("gemini-3-pro-image").unwrap();
        assert!(!pro.takes_ratio("8:1"), "no wide ratios");
        assert!(!pro.takes_size("512"));
        assert!(pro.takes_ratio("21:9"));
        assert_eq!(pro.ratios().len(), RATIOS.len());
        let old = GeminiModel::lookup("gemini-2.5-flash-image").unwrap();
        assert_eq!(old.size_for(true), None, "it takes no size");
        assert_eq!(old.estimate(None), Some(0.039));
        assert!(GeminiModel::lookup("gemini-unknown").is_none());
        assert!(MODELS.iter().all(|m| m.id.starts_with("gemini-")));
    }

    #[test]
    fn prices_by_size_and_by_usage() {
        let flash = GeminiModel::lookup("gemini-3.1-flash-image").unwrap();
        assert_eq!(flash.estimate(Some("2K")), Some(0.101));
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
