//! What goes on the wire: only the fields the model takes.

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::spec::{ImageSpec, Reference};

/// The two endpoints genimg calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `POST /images/generations`, JSON.
    Generate,
    /// `POST /images/edits`, multipart, with reference images.
    Edit,
}

impl Operation {
    /// The path under the base URL.
    pub fn path(self) -> &'static str {
        match self {
            Operation::Generate => "images/generations",
            Operation::Edit => "images/edits",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.path())
    }
}

/// The fields genimg sets itself, with what to do instead: a `--param` may not set them.
pub const OWN_FIELDS: &[(&str, &str)] = &[
    ("model", "use --model"),
    ("prompt", "it is the prompt's text (and --style)"),
    ("n", "genimg asks for one image per request: use --count"),
    ("size", "use --size"),
    ("quality", "use --quality"),
    (
        "response_format",
        "genimg asks DALL-E models for b64_json itself",
    ),
    ("output_format", "use --format"),
    ("output_compression", "use --compression"),
    ("background", "use --background"),
    ("moderation", "use --moderation"),
    ("input_fidelity", "use --input-fidelity"),
    ("complexity", "use --complexity"),
    ("image", "use --reference-image"),
    ("image[]", "use --reference-image"),
    ("images", "use --reference-image"),
    ("mask", "use --mask"),
    ("stream", "use --stream"),
    ("partial_images", "use --partial-images"),
];

/// One request for one image, as OpenAI's Images API takes it.
#[derive(Debug, Clone)]
pub struct ImageRequest {
    /// Every field sent besides the images, in a stable order.
    pub fields: Map<String, Value>,
    pub references: Arc<[Reference]>,
    /// The edit's mask, sent as the `mask` part (a PNG).
    pub mask: Option<Reference>,
}

impl ImageRequest {
    /// Encodes one image of `spec`, with exactly the fields its model takes.
    pub fn encode(spec: &ImageSpec) -> ImageRequest {
        let model = &spec.model;
        let options = &spec.options;
        let mut fields = Map::new();
        fields.insert("model".into(), model.name().into());
        fields.insert("prompt".into(), spec.prompt.as_str().into());
        // One image per request: failures, retries and resumes stay per image.
        fields.insert("n".into(), 1.into());
        fields.insert("size".into(), options.size.to_string().into());
        if let Some(quality) = spec.quality_value() {
            fields.insert("quality".into(), quality.into());
        }
        if let Some(format) = model.response_format() {
            fields.insert("response_format".into(), format.into());
        }
        if let Some(format) = options.format {
            fields.insert("output_format".into(), format.extension().into());
        }
        if let Some(compression) = options.compression {
            fields.insert("output_compression".into(), compression.into());
        }
        let text_fields = [
            ("background", options.background),
            ("moderation", options.moderation),
            ("complexity", options.complexity),
            ("input_fidelity", spec.input_fidelity()),
        ];
        for (name, value) in text_fields {
            if let Some(value) = value {
                fields.insert(name.into(), value.into());
            }
        }
        if options.stream {
            fields.insert("stream".into(), true.into());
            if let Some(n) = options.partial_images {
                fields.insert("partial_images".into(), n.into());
            }
        }
        // The config refuses a param that names one of genimg's own fields; were one to get
        // here all the same, genimg's value stands.
        for (name, value) in &options.params {
            fields.entry(name.clone()).or_insert_with(|| value.clone());
        }
        ImageRequest {
            fields,
            references: spec.references.clone(),
            mask: spec.mask.clone(),
        }
    }

    pub fn operation(&self) -> Operation {
        if self.references.is_empty() {
            Operation::Generate
        } else {
            Operation::Edit
        }
    }

    pub fn model(&self) -> &str {
        self.fields
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    #[cfg(test)]
    pub fn field_str(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }

    /// The multipart form for `/images/edits`: `fields` (this request's, or fewer), then one
    /// `image` part, or repeated `image[]` parts for several references (repeated `image` is
    /// refused), then the `mask` part if there is a mask.
    pub fn multipart(&self, fields: &Map<String, Value>) -> reqwest::multipart::Form {
        let mut form = reqwest::multipart::Form::new();
        for (name, value) in fields {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            form = form.text(name.clone(), text);
        }
        let part_name = if self.references.len() == 1 {
            "image"
        } else {
            "image[]"
        };
        for (i, r) in self.references.iter().enumerate() {
            let body = reqwest::Body::from(r.bytes.clone());
            let part = reqwest::multipart::Part::stream_with_length(body, r.bytes.len() as u64)
                .file_name(r.part_file_name(i))
                .mime_str(r.format.mime())
                .expect("image MIME types are valid");
            form = form.part(part_name, part);
        }
        if let Some(mask) = &self.mask {
            let body = reqwest::Body::from(mask.bytes.clone());
            let part = reqwest::multipart::Part::stream_with_length(body, mask.bytes.len() as u64)
                .file_name(mask.mask_file_name())
                .mime_str(mask.format.mime())
                .expect("image MIME types are valid");
            form = form.part("mask", part);
        }
        form
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::catalog::{Model, Tier};
    use crate::format::ImageFormat;
    use crate::spec::{ImageOptions, Quality};

    fn opts(tier: Tier) -> ImageOptions {
        ImageOptions {
            quality: Quality::Tier(tier),
            ..ImageOptions::default()
        }
    }

    fn keys(r: &ImageRequest) -> Vec<&str> {
        r.fields.keys().map(String::as_str).collect()
    }

    #[test]
    fn gpt_image_requests_carry_no_dalle_fields() {
        let r = ImageRequest::encode(&ImageSpec::new(
            &Model::lookup("gpt-image-2"),
            "a cat",
            &opts(Tier::Hd),
            Arc::from([]),
        ));
        assert_eq!(keys(&r), ["model", "n", "prompt", "quality", "size"]);
        assert_eq!(r.field_str("quality"), Some("high"));
        assert_eq!(r.field_str("size"), Some("1024x1024"));
        assert_eq!(r.fields["n"], 1);
        assert_eq!(r.operation(), Operation::Generate);
    }

    #[test]
    fn dalle3_asks_for_base64() {
        let r = ImageRequest::encode(&ImageSpec::new(
            &Model::lookup("dall-e-3"),
            "a cat",
            &opts(Tier::Standard),
            Arc::from([]),
        ));
        assert_eq!(r.field_str("response_format"), Some("b64_json"));
        assert_eq!(r.field_str("quality"), Some("standard"));
        assert!(!r.fields.contains_key("style"));
    }

    #[test]
    fn dalle2_sends_no_quality() {
        let r = ImageRequest::encode(&ImageSpec::new(
            &Model::lookup("dall-e-2"),
            "a cat",
            &opts(Tier::Hd),
            Arc::from([]),
        ));
        assert!(!r.fields.contains_key("quality"));
    }

    #[test]
    fn every_option_goes_into_its_field() {
        let options = ImageOptions {
            size: "1536x1024".parse().unwrap(),
            quality: Quality::Named("xhigh"),
            format: Some(ImageFormat::Webp),
            compression: Some(70),
            background: Some("transparent"),
            moderation: Some("low"),
            input_fidelity: Some("high"),
            complexity: Some("medium"),
            aspect_ratio: None,
            image_size: None,
            stream: false,
            partial_images: None,
            params: Default::default(),
        };
        let r = ImageRequest::encode(&ImageSpec::new(
            &Model::lookup("gpt-image-2.6-flare"),
            "a cat",
            &options,
            Arc::from([]),
        ));
        assert_eq!(r.field_str("quality"), Some("xhigh"));
        assert_eq!(r.field_str("size"), Some("1536x1024"));
        assert_eq!(r.field_str("output_format"), Some("webp"));
        assert_eq!(r.fields["output_compression"], 70);
        assert_eq!(r.field_str("background"), Some("transparent"));
        assert_eq!(r.field_str("moderation"), Some("low"));
        assert_eq!(r.field_str("complexity"), Some("medium"));
        assert_eq!(r.field_str("input_fidelity"), None, "a field of edits only");
        assert_eq!(Quality::Named("xhigh").file_token(), "xhigh");
        assert_eq!(Quality::Tier(Tier::Standard).file_token(), "standard");
    }

    #[test]
    fn params_join_the_fields_typed_and_go_as_text_parts_in_an_edit() {
        let mut options = opts(Tier::Hd);
        options.params = [
            ("frame_count", serde_json::json!(8)),
            ("loop", serde_json::json!(true)),
            ("user", serde_json::json!("me")),
            ("extra", serde_json::json!({"a": [1, 2]})),
            // Never set here (the config refuses it), and never over genimg's own value.
            ("size", serde_json::json!("9x9")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let r = ImageRequest::encode(&ImageSpec::new(
            &Model::lookup("gpt-image-2.6-flare"),
            "a cat",
            &options,
            Arc::from([]),
        ));
        assert_eq!(r.fields["frame_count"], 8);
        assert_eq!(r.fields["loop"], true);
        assert_eq!(r.field_str("user"), Some("me"));
        assert_eq!(r.fields["extra"], serde_json::json!({"a": [1, 2]}));
        assert_eq!(r.field_str("size"), Some("1024x1024"));
    }

    #[test]
    fn references_make_an_edit() {
        let reference = Reference {
            path: "/some/dir/ref.webp".into(),
            format: ImageFormat::Webp,
            bytes: Bytes::from_static(b"RIFF"),
            sha256: String::new(),
        };
        assert_eq!(reference.part_file_name(0), "ref.webp");
        let r = ImageRequest::encode(&ImageSpec::new(
            &Model::lookup("gpt-image-2"),
            "a cat",
            &opts(Tier::Hd),
            Arc::from([reference]),
        ));
        assert_eq!(r.operation(), Operation::Edit);
        assert_eq!(r.operation().to_string(), "/images/edits");
    }
}
