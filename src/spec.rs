//! `ImageSpec`: one image to make, typed and provider-neutral.
//!
//! The plan builds one per prompt; a provider translates it into its wire request, the store
//! records it, and its versioned hash is the image's identity in the manifest: an image on
//! disk whose record carries the same identity was made from the same ask.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};

pub use crate::catalog::ProviderId;
use crate::catalog::{Model, Size, Tier};
use crate::format::ImageFormat;
use crate::units::sha256_hex;

/// One image to make: what to ask which model, with every option typed.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    pub provider: ProviderId,
    pub model: Model,
    /// The text sent, style preamble included.
    pub prompt: String,
    pub options: ImageOptions,
    /// Read and checked before the run; empty for a plain generation.
    pub references: Arc<[Reference]>,
    /// The mask of an edit (a PNG with alpha, the size of the first reference): where its
    /// transparent pixels are, the image is edited.
    pub mask: Option<Reference>,
}

/// The version of [`ImageSpec::identity`]: bump it when what the hash covers changes, and
/// keep accepting the identities of earlier versions (see [`Identity`]).
pub const IDENTITY_VERSION: u32 = 2;

impl ImageSpec {
    /// A spec for `model`, whose catalog entry says which provider serves it.
    pub fn new(
        model: &Model,
        prompt: &str,
        options: &ImageOptions,
        references: Arc<[Reference]>,
    ) -> ImageSpec {
        ImageSpec {
            provider: model.provider(),
            model: model.clone(),
            prompt: prompt.to_owned(),
            options: options.clone(),
            references,
            mask: None,
        }
    }

    /// The spec with `mask` as its edit's mask.
    pub fn with_mask(mut self, mask: Option<Reference>) -> ImageSpec {
        self.mask = mask;
        self
    }

    /// Every image the request carries: the references in order, then the mask.
    pub fn input_images(&self) -> impl Iterator<Item = &Reference> {
        self.references.iter().chain(self.mask.as_ref())
    }

    /// Whether the image is made from reference images (an edit) rather than from text alone.
    pub fn is_edit(&self) -> bool {
        !self.references.is_empty()
    }

    /// The format asked for: PNG unless an output format was chosen.
    pub fn asked_format(&self) -> ImageFormat {
        self.options.format.unwrap_or(ImageFormat::Png)
    }

    /// The model's own quality value for what was asked, if it takes one.
    pub fn quality_value(&self) -> Option<&'static str> {
        self.options.quality.field(&self.model)
    }

    /// The input fidelity sent: a field of edits only.
    pub fn input_fidelity(&self) -> Option<&'static str> {
        self.options.input_fidelity.filter(|_| self.is_edit())
    }

    /// The `imageSize` sent: the one given, else the seed's level's (HD is 2K where the
    /// model takes it); `None` where the model takes none.
    pub fn image_size(&self) -> Option<&'static str> {
        if self.model.info().image_sizes.is_empty() {
            return None;
        }
        self.options.image_size.or(match self.options.quality {
            Quality::Tier(tier) => self.model.image_size_for(tier),
            Quality::Named(_) => None,
        })
    }

    /// Its size and quality as people read them: `1024x1024 high`; on Gemini, the aspect
    /// ratio and image size, `16:9 2K` (`-` where the model's default applies).
    pub fn shape(&self) -> String {
        if self.model.info().aspect_ratios.is_empty() {
            format!(
                "{} {}",
                self.options.size,
                self.quality_value().unwrap_or("-")
            )
        } else {
            format!(
                "{} {}",
                self.options.aspect_ratio.unwrap_or("-"),
                self.image_size().unwrap_or("-")
            )
        }
    }

    /// The estimated price of one image, or `None` where no price is published.
    pub fn estimate(&self) -> Option<f64> {
        match self.model.info().price {
            crate::catalog::Price::Gemini { .. } => {
                self.model.estimate_by_image_size(self.image_size())
            }
            _ => self.model.estimate(
                self.options.size,
                self.quality_value(),
                self.prompt.chars().count(),
            ),
        }
    }

    /// A hash of everything that decides what image comes back: provider, model, prompt, the
    /// options as the model reads them, and the content of each reference and of the mask
    /// (not where the files live). Versioned: `spec2:sha256:<hex>`.
    pub fn identity(&self) -> String {
        let o = &self.options;
        let references: Vec<_> = self
            .references
            .iter()
            .map(|r| json!([r.format.mime(), r.sha256]))
            .collect();
        // An array, not an object: its order is fixed by this code, whatever serde_json's
        // map order is.
        let mut canonical = json!([
            "genimg-spec",
            IDENTITY_VERSION,
            self.provider.name(),
            self.model.name(),
            self.prompt,
            o.size.to_string(),
            self.quality_value(),
            o.format.map(ImageFormat::extension),
            o.compression,
            o.background,
            o.moderation,
            self.input_fidelity(),
            o.complexity,
            references,
        ]);
        // Options only some providers take, and options added since, are added where given,
        // so that the identity of every image made before they existed stays as it was.
        if let Some(all) = canonical.as_array_mut() {
            if self.provider == ProviderId::Gemini {
                all.push(json!(["gemini", o.aspect_ratio, self.image_size()]));
            }
            if !o.params.is_empty() {
                // A map of sorted keys, objects within it too: serde_json keeps no order.
                all.push(json!(["params", o.params]));
            }
            if let Some(mask) = &self.mask {
                all.push(json!(["mask", mask.sha256]));
            }
        }
        format!(
            "spec{IDENTITY_VERSION}:sha256:{}",
            sha256_hex(canonical.to_string().as_bytes())
        )
    }
}

/// The identities an image of a spec may carry in the manifest: today's, and the one an
/// earlier release wrote for the same ask, so that an upgrade never makes images stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub current: String,
    /// Release 0.1 hashed the OpenAI wire request (see `provider::legacy_identity`).
    pub legacy: Option<String>,
}

impl Identity {
    /// Whether a manifest's `request_hash` names this ask.
    pub fn matches(&self, recorded: &str) -> bool {
        recorded == self.current || self.legacy.as_deref() == Some(recorded)
    }
}

/// A reference image, read and checked once before the run, shared by every request.
#[derive(Clone)]
pub struct Reference {
    pub path: PathBuf,
    pub format: ImageFormat,
    pub bytes: Bytes,
    /// Of the bytes, in hex: the manifest records it and it goes into the request hash.
    pub sha256: String,
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reference")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl Reference {
    /// The file name sent in the multipart part: the base name, never the directories.
    pub fn part_file_name(&self, index: usize) -> String {
        self.path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .unwrap_or_else(|| format!("reference-{}.{}", index + 1, self.format.extension()))
    }

    /// The file name sent in a mask's multipart part.
    pub fn mask_file_name(&self) -> String {
        self.path
            .file_name()
            .and_then(|n| n.to_str())
            .map_or_else(|| "mask.png".to_owned(), str::to_owned)
    }
}

/// The options of an image, already checked against its model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageOptions {
    pub size: Size,
    pub quality: Quality,
    /// `output_format`; `None` leaves the model's default, PNG.
    pub format: Option<ImageFormat>,
    pub compression: Option<u8>,
    pub background: Option<&'static str>,
    pub moderation: Option<&'static str>,
    pub input_fidelity: Option<&'static str>,
    pub complexity: Option<&'static str>,
    /// `aspectRatio` (Gemini).
    pub aspect_ratio: Option<&'static str>,
    /// `imageSize` as given (Gemini); `None` follows the quality (see
    /// [`ImageSpec::image_size`]).
    pub image_size: Option<&'static str>,
    /// `stream`: the answer as server-sent events. Not part of the identity: the image is
    /// the same.
    pub stream: bool,
    /// `partial_images` (0-3) of a stream.
    pub partial_images: Option<u8>,
    /// Fields genimg has no option for, added as given (`--param KEY=VALUE`): to the request
    /// body on OpenAI, to `generationConfig` on Gemini. By key, so their order is fixed.
    pub params: BTreeMap<String, Value>,
}

impl Default for ImageOptions {
    fn default() -> ImageOptions {
        ImageOptions {
            size: Size::DEFAULT,
            quality: Quality::Tier(Tier::Hd),
            format: None,
            compression: None,
            background: None,
            moderation: None,
            input_fidelity: None,
            complexity: None,
            aspect_ratio: None,
            image_size: None,
            stream: false,
            partial_images: None,
            params: BTreeMap::new(),
        }
    }
}

/// The quality asked for: one of the seed's two levels, or a value named with `--quality`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quality {
    Tier(Tier),
    Named(&'static str),
}

impl Quality {
    /// The token in file names: `hd`/`standard` for the seed's levels, else the value given.
    pub fn file_token(self) -> &'static str {
        match self {
            Quality::Tier(tier) => tier.file_token(),
            Quality::Named(q) => q,
        }
    }

    /// The `quality` field sent to `model`, if any.
    pub fn field(self, model: &Model) -> Option<&'static str> {
        match self {
            Quality::Tier(tier) => model.quality_for(tier),
            Quality::Named(q) => Some(q),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::identity;

    fn spec(prompt: &str, tier: Tier, references: Vec<Reference>) -> ImageSpec {
        ImageSpec::new(
            &Model::lookup("gpt-image-2"),
            prompt,
            &ImageOptions {
                quality: Quality::Tier(tier),
                ..ImageOptions::default()
            },
            Arc::from(references),
        )
    }

    fn reference(path: &str, bytes: &'static [u8]) -> Reference {
        Reference {
            path: path.into(),
            format: ImageFormat::Png,
            bytes: Bytes::from_static(bytes),
            sha256: sha256_hex(bytes),
        }
    }

    #[test]
    fn the_identity_follows_what_is_asked_not_where_files_are() {
        // Today's identity and the first release's follow the same rules.
        type Hash = fn(&ImageSpec) -> String;
        let hashes: [(Hash, usize); 2] = [
            (|s| identity(s).current, "spec2:sha256:".len() + 64),
            (|s| identity(s).legacy.unwrap(), "sha256:".len() + 64),
        ];
        for (request_hash, len) in hashes {
            let a = request_hash(&spec("a cat", Tier::Hd, vec![]));
            assert!(a.contains("sha256:") && a.len() == len, "{a}");
            assert_eq!(a, request_hash(&spec("a cat", Tier::Hd, vec![])));
            assert_ne!(a, request_hash(&spec("a dog", Tier::Hd, vec![])));
            assert_ne!(a, request_hash(&spec("a cat", Tier::Standard, vec![])));
            let r1 = request_hash(&spec("a cat", Tier::Hd, vec![reference("x.png", b"1")]));
            let moved = request_hash(&spec(
                "a cat",
                Tier::Hd,
                vec![reference("elsewhere/y.png", b"1")],
            ));
            let changed = request_hash(&spec("a cat", Tier::Hd, vec![reference("x.png", b"2")]));
            assert_ne!(a, r1);
            assert_eq!(r1, moved);
            assert_ne!(r1, changed);
        }
    }

    #[test]
    fn identities_recorded_before_params_existed_stay_the_same() {
        // Hashes written by the release before `--param`: a spec without params must keep
        // them, or every image made before would turn stale.
        let gemini = ImageOptions {
            aspect_ratio: Some("16:9"),
            ..ImageOptions::default()
        };
        let cases = [
            (
                "gpt-image-2",
                ImageOptions::default(),
                vec![],
                "spec2:sha256:95d21452ac7d472d07fb39e7b356636ab59943b48e15ea0bcb4d38f54a70f1bf",
            ),
            (
                "gpt-image-2.6-flare",
                ImageOptions {
                    quality: Quality::Named("xhigh"),
                    format: Some(ImageFormat::Webp),
                    compression: Some(70),
                    background: Some("opaque"),
                    moderation: Some("low"),
                    complexity: Some("medium"),
                    ..ImageOptions::default()
                },
                vec![],
                "spec2:sha256:6a59960c03f2c21973eb692cc336b999e2ca76211b30f2d29fbb072ee8d4964f",
            ),
            (
                "gpt-image-2",
                ImageOptions::default(),
                vec![reference("r.png", b"1")],
                "spec2:sha256:63ce069c46266128292729e1eb7fc57e869ef846c141f52cdb5a4cf02253273d",
            ),
            (
                "gemini-3-pro-image",
                gemini,
                vec![],
                "spec2:sha256:73bf63e7e781eab7e6794cdae2503128956683bcd048e4d9e30d34248b18a22c",
            ),
        ];
        for (model, options, references, frozen) in cases {
            let spec = ImageSpec::new(
                &Model::lookup(model),
                "a cat",
                &options,
                Arc::from(references),
            );
            assert_eq!(spec.identity(), frozen, "{model}");
        }
    }

    #[test]
    fn an_identity_without_a_mask_is_what_it_was_before_masks() {
        // Frozen from the release before masks: an image made then stays current.
        let gemini = ImageSpec::new(
            &Model::lookup("gemini-3-pro-image"),
            "a cat",
            &ImageOptions::default(),
            Arc::from([]),
        );
        let cases = [
            (
                spec("a cat", Tier::Hd, vec![]),
                "spec2:sha256:95d21452ac7d472d07fb39e7b356636ab59943b48e15ea0bcb4d38f54a70f1bf",
            ),
            (
                spec("a cat", Tier::Hd, vec![reference("x.png", b"1")]),
                "spec2:sha256:63ce069c46266128292729e1eb7fc57e869ef846c141f52cdb5a4cf02253273d",
            ),
            (
                gemini,
                "spec2:sha256:7d1866d4ffaaf7266c9ad5207ce715b20df9e3615e40ec470a6d10122ec2fa3d",
            ),
        ];
        for (spec, frozen) in cases {
            assert_eq!(spec.identity(), frozen, "{spec:?}");
        }
    }

    #[test]
    fn params_are_part_of_the_identity_in_any_order() {
        let base = spec("a cat", Tier::Hd, vec![]);
        let with = |pairs: &[(&str, Value)]| {
            let mut s = base.clone();
            s.options.params = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect();
            s.identity()
        };
        let eight = with(&[("frame_count", json!(8))]);
        assert_ne!(eight, base.identity());
        assert_ne!(eight, with(&[("frame_count", json!(9))]));
        assert_ne!(eight, with(&[("frame_count", json!("8"))]), "types count");
        assert_eq!(with(&[]), base.identity());
        assert_eq!(
            with(&[("a", json!({"x": 1, "y": 2})), ("b", json!(1))]),
            with(&[("b", json!(1)), ("a", json!({"y": 2, "x": 1}))])
        );
    }

    #[test]
    fn a_mask_is_part_of_the_identity_by_its_content() {
        let edit = spec("a cat", Tier::Hd, vec![reference("x.png", b"1")]);
        let masked = edit.clone().with_mask(Some(reference("m.png", b"m")));
        let moved = edit
            .clone()
            .with_mask(Some(reference("elsewhere/n.png", b"m")));
        let other = edit.clone().with_mask(Some(reference("m.png", b"n")));
        assert_ne!(masked.identity(), edit.identity());
        assert_eq!(masked.identity(), moved.identity());
        assert_ne!(masked.identity(), other.identity());
        // Release 0.1 sent no masks: its hash, blind to them, names no masked ask.
        assert!(identity(&edit).legacy.is_some());
        assert_eq!(identity(&masked).legacy, None);
        assert!(!identity(&masked).matches(&identity(&edit).legacy.unwrap()));
        assert!(!identity(&masked).matches(&edit.identity()));
    }

    #[test]
    fn an_identity_matches_what_either_version_recorded() {
        let id = identity(&spec("a cat", Tier::Hd, vec![]));
        assert!(id.current.starts_with("spec2:sha256:"));
        assert!(id.matches(&id.current));
        assert!(id.matches(id.legacy.as_deref().unwrap()));
        assert!(!id.matches("sha256:0"));
        let other = identity(&spec("a dog", Tier::Hd, vec![]));
        assert!(!id.matches(&other.current));
        assert!(!id.matches(other.legacy.as_deref().unwrap()));
    }

    #[test]
    fn the_asked_format_is_png_unless_chosen() {
        let mut s = spec("a cat", Tier::Hd, vec![]);
        assert_eq!(s.asked_format(), ImageFormat::Png);
        s.options.format = Some(ImageFormat::Webp);
        assert_eq!(s.asked_format(), ImageFormat::Webp);
    }
}
