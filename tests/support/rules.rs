//! The service's rules, written from `shared/API-NOTES.md` and the OpenAPI spec, and kept
//! apart from genimg's own model table so that each checks the other.

use std::ops::RangeInclusive;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::server::FilePart;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Generate,
    Edit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Gpt,
    DallE3,
    DallE2,
}

/// An API error answer.
#[derive(Debug, Clone)]
pub struct ApiErr {
    pub status: u16,
    pub message: String,
    pub kind: String,
    pub param: Option<String>,
    pub code: Option<String>,
    /// Azure's own errors (key, deployment, api-version) carry only `code` and `message`.
    pub azure: bool,
}

impl ApiErr {
    pub fn new(status: u16, code: &str, param: Option<&str>, message: String) -> ApiErr {
        ApiErr {
            status,
            message,
            kind: "invalid_request_error".to_owned(),
            param: param.map(str::to_owned),
            code: Some(code.to_owned()),
            azure: false,
        }
    }

    /// An error in Azure OpenAI's own shape, `{"error": {"code": ..., "message": ...}}`.
    pub fn azure(status: u16, code: &str, message: &str) -> ApiErr {
        ApiErr {
            status,
            message: message.to_owned(),
            kind: String::new(),
            param: None,
            code: Some(code.to_owned()),
            azure: true,
        }
    }

    /// Azure's answer to a missing or wrong `api-key`.
    pub fn azure_unauthorized() -> ApiErr {
        ApiErr::azure(
            401,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
        )
    }

    /// Azure's answer to a deployment route without `api-version`: the route does not exist.
    pub fn azure_not_found() -> ApiErr {
        ApiErr::azure(404, "404", "Resource not found")
    }

    pub fn azure_bad_api_version(version: &str) -> ApiErr {
        ApiErr::azure(
            400,
            "BadRequest",
            &format!("API version not supported: '{version}'."),
        )
    }

    fn deployment_not_found() -> ApiErr {
        ApiErr::azure(
            404,
            "DeploymentNotFound",
            "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.",
        )
    }

    pub fn body(&self) -> Value {
        if self.azure {
            return json!({"error": {"code": self.code, "message": self.message}});
        }
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }

    pub fn unauthorized(shown_key: &str) -> ApiErr {
        // The real service masks the key; this fake echoes it whole, so that a test proves
        // genimg never shows a server's message with the key in it.
        ApiErr::new(
            401,
            "invalid_api_key",
            None,
            format!(
                "Incorrect API key provided: {shown_key}. You can find your API key at https://platform.openai.com/account/api-keys."
            ),
        )
    }

    pub fn not_found(path: &str) -> ApiErr {
        ApiErr::new(404, "not_found", None, format!("Invalid URL (POST {path})"))
    }

    pub fn invalid_json() -> ApiErr {
        ApiErr::new(
            400,
            "invalid_json",
            None,
            "We could not parse the JSON body of your request.".into(),
        )
    }

    pub fn bad_content_type(ct: &str) -> ApiErr {
        ApiErr::new(
            400,
            "invalid_request",
            None,
            format!("Unsupported content type: '{ct}'."),
        )
    }

    pub fn invalid_multipart() -> ApiErr {
        ApiErr::new(
            400,
            "invalid_multipart",
            None,
            "Could not parse multipart form.".into(),
        )
    }

    pub fn duplicate(name: &str) -> ApiErr {
        ApiErr::new(
            400,
            "duplicate_parameter",
            Some(name),
            format!(
                "Duplicate parameter: '{name}'. You provided multiple values for this parameter."
            ),
        )
    }

    pub fn unknown(name: &str) -> ApiErr {
        ApiErr::new(
            400,
            "unknown_parameter",
            Some(name),
            format!("Unknown parameter: '{name}'."),
        )
    }

    pub fn missing(name: &str) -> ApiErr {
        ApiErr::new(
            400,
            "missing_required_parameter",
            Some(name),
            format!("Missing required parameter: '{name}'."),
        )
    }

    pub fn invalid(name: &str, message: String) -> ApiErr {
        ApiErr::new(400, "invalid_value", Some(name), message)
    }

    pub fn refused(family: Family) -> ApiErr {
        match family {
            Family::Gpt => ApiErr {
                status: 400,
                message: "Your request was rejected by the safety system. If you believe this is an error, contact us at help.openai.com and include the request ID.".into(),
                kind: "image_generation_user_error".into(),
                param: None,
                code: Some("moderation_blocked".into()),
                azure: false,
            },
            _ => ApiErr::new(
                400,
                "content_policy_violation",
                None,
                "Your request was rejected as a result of our safety system.".into(),
            ),
        }
    }
}

/// What one model takes beyond its family's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelRules {
    pub family: Family,
    /// Any `WxH` within gpt-image-2's limits, not only the fixed sizes.
    pub flexible_sizes: bool,
    /// `quality` `xhigh` and `max` (the 2.5 family and later).
    pub top_qualities: bool,
    /// `input_fidelity`, on edits only.
    pub input_fidelity: bool,
    /// `complexity` (the 2.6 family).
    pub complexity: bool,
    /// The animated GIF's `frame_count` (2-16) and `frame_duration_ms` (the 2.6 family; their
    /// names come from third parties only, see API-NOTES "Unverified"). Any other field is
    /// an `unknown_parameter`, as the service answers.
    pub frames: bool,
}

/// The rules of a model by name: the real ones, then `extra`, which take every GPT image
/// field and value. `None` for a model the service does not know.
pub fn model_rules(model: &str, extra: &[String]) -> Option<ModelRules> {
    let gpt = |flexible_sizes, top_qualities, input_fidelity, complexity| ModelRules {
        family: Family::Gpt,
        flexible_sizes,
        top_qualities,
        input_fidelity,
        complexity,
        // The 2.6 family brought complexity and animated GIFs together.
        frames: complexity,
    };
    let dalle = |family| ModelRules {
        family,
        flexible_sizes: false,
        top_qualities: false,
        input_fidelity: false,
        complexity: false,
        frames: false,
    };
    let rules = match model {
        "gpt-image-1" | "gpt-image-1.5" | "chatgpt-image-latest" => gpt(false, false, true, false),
        "gpt-image-1-mini" => gpt(false, false, false, false),
        "gpt-image-2" | "gpt-image-2-2026-04-21" => gpt(true, false, false, false),
        "gpt-image-2.5-flare"
        | "gpt-image-2.5-sunburst"
        | "gpt-image-2.5-flare-2026-09-08"
        | "gpt-image-2.5-sunburst-2026-09-08" => gpt(true, true, false, false),
        "gpt-image-2.6-flare" | "gpt-image-2.6-sunburst" => gpt(true, true, false, true),
        "dall-e-3" => dalle(Family::DallE3),
        "dall-e-2" => dalle(Family::DallE2),
        m if extra.iter().any(|e| e == m) => gpt(true, true, true, true),
        _ => return None,
    };
    Some(rules)
}

/// Where a request arrived, which decides where its model comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// OpenAI's `/v1/images/...`: the body's `model`, or the service's default.
    OpenAi,
    /// Azure's `/openai/v1/images/...`: the body's `model` names a deployment and is required.
    AzureV1,
    /// Azure's `/openai/deployments/{deployment}/images/...`: the deployment is the model; a
    /// `model` in the body is ignored.
    AzureDeployment(&'a str),
}

/// What a valid request asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub family: Family,
    /// The model that serves it (for Azure deployments, the deployment's name).
    pub model: String,
}

const GPT_FIELDS: &[&str] = &[
    "prompt",
    "model",
    "n",
    "size",
    "quality",
    "output_format",
    "output_compression",
    "background",
    "moderation",
    "stream",
    "partial_images",
    "user",
];
const DALLE3_FIELDS: &[&str] = &[
    "prompt",
    "model",
    "n",
    "size",
    "quality",
    "response_format",
    "style",
    "user",
];
const DALLE2_FIELDS: &[&str] = &[
    "prompt",
    "model",
    "n",
    "size",
    "response_format",
    "user",
    "quality",
];
/// Multipart parts that must be files, never text.
const FILE_PARTS: &[&str] = &["image", "image[]", "mask"];
const FORMATS: &[&str] = &["image/png", "image/jpeg", "image/webp"];

/// The fields a request to `rules`'s model may carry on `op`; multipart edits carry their
/// images and mask as file parts instead.
fn allowed_fields(op: Op, multipart: bool, rules: ModelRules) -> Vec<&'static str> {
    let mut allowed = match rules.family {
        Family::Gpt => GPT_FIELDS.to_vec(),
        Family::DallE3 => DALLE3_FIELDS.to_vec(),
        Family::DallE2 => DALLE2_FIELDS.to_vec(),
    };
    if rules.complexity {
        allowed.push("complexity");
    }
    if rules.frames {
        allowed.extend(["frame_count", "frame_duration_ms"]);
    }
    if op == Op::Edit {
        if rules.input_fidelity {
            allowed.push("input_fidelity");
        }
        if !multipart {
            allowed.extend(["images", "mask"]);
        }
    }
    allowed
}

/// A field as the service reads it: an explicit `null` is the same as leaving it out.
fn get<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    fields.get(name).filter(|v| !v.is_null())
}

fn quoted(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("'{v}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A string field that must be one of `allowed`.
fn one_of<'a>(
    fields: &'a Map<String, Value>,
    name: &str,
    allowed: &[&str],
) -> Result<Option<&'a str>, ApiErr> {
    match get(fields, name) {
        None => Ok(None),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(Some(s)),
        Some(v) => Err(ApiErr::invalid(
            name,
            format!(
                "Invalid value for '{name}': {v}. Supported values are: {}.",
                quoted(allowed)
            ),
        )),
    }
}

/// An integer field within `range`: a JSON number, or in multipart a string of digits.
fn integer(
    fields: &Map<String, Value>,
    name: &str,
    multipart: bool,
    range: RangeInclusive<i64>,
) -> Result<Option<i64>, ApiErr> {
    let Some(v) = get(fields, name) else {
        return Ok(None);
    };
    let n = match v {
        Value::Number(n) if !multipart => n.as_i64(),
        Value::String(s) if multipart => s.parse().ok(),
        _ => None,
    };
    let n = n.ok_or_else(|| {
        ApiErr::invalid(
            name,
            format!("Invalid type for '{name}': expected an integer, but got {v}."),
        )
    })?;
    if !range.contains(&n) {
        return Err(ApiErr::invalid(
            name,
            format!(
                "Invalid '{name}': {n} is out of range; it must be between {} and {}.",
                range.start(),
                range.end()
            ),
        ));
    }
    Ok(Some(n))
}

/// A boolean field: a JSON boolean, or in multipart `true` / `false`.
fn boolean(fields: &Map<String, Value>, name: &str, multipart: bool) -> Result<(), ApiErr> {
    let ok = match get(fields, name) {
        None => true,
        Some(Value::Bool(_)) => !multipart,
        Some(Value::String(s)) => multipart && (s == "true" || s == "false"),
        Some(_) => false,
    };
    if ok {
        return Ok(());
    }
    Err(ApiErr::invalid(
        name,
        format!("Invalid type for '{name}': expected a boolean."),
    ))
}

pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// The model a request is for, by its route, and that model's rules.
fn resolve_model(
    op: Op,
    route: Route<'_>,
    fields: &Map<String, Value>,
    extra_models: &[String],
) -> Result<(String, ModelRules), ApiErr> {
    let model = match route {
        Route::AzureDeployment(deployment) => deployment.to_owned(),
        Route::OpenAi | Route::AzureV1 => match get(fields, "model") {
            Some(Value::String(m)) => m.clone(),
            Some(v) => {
                return Err(ApiErr::invalid(
                    "model",
                    format!("Invalid type for 'model': expected a string, but got {v}."),
                ));
            }
            // An Azure resource has no default deployment.
            None if route == Route::AzureV1 => return Err(ApiErr::missing("model")),
            // The spec's defaults: generations `dall-e-2`, edits `gpt-image-1.5`.
            None if op == Op::Generate => "dall-e-2".to_owned(),
            None => "gpt-image-1.5".to_owned(),
        },
    };
    match model_rules(&model, extra_models) {
        Some(rules) => Ok((model, rules)),
        None if route == Route::OpenAi => Err(ApiErr::new(
            404,
            "model_not_found",
            Some("model"),
            format!("The model `{model}` does not exist or you do not have access to it."),
        )),
        None => Err(ApiErr::deployment_not_found()),
    }
}

/// Checks a request as the service does; returns the model that serves it.
pub fn check(
    op: Op,
    route: Route<'_>,
    multipart: bool,
    fields: &Map<String, Value>,
    files: &[FilePart],
    extra_models: &[String],
) -> Result<Checked, ApiErr> {
    if op == Op::Generate && multipart {
        return Err(ApiErr::bad_content_type("multipart/form-data"));
    }
    let (model, rules) = resolve_model(op, route, fields, extra_models)?;
    let family = rules.family;

    if multipart && let Some(name) = FILE_PARTS.iter().find(|n| fields.contains_key(**n)) {
        return Err(ApiErr::invalid(
            name,
            format!("Invalid type for '{name}': expected a file, but got a string instead."),
        ));
    }
    let allowed = allowed_fields(op, multipart, rules);
    if let Some(name) = fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiErr::unknown(name));
    }

    // prompt
    let prompt = match fields.get("prompt") {
        Some(Value::String(p)) if !p.is_empty() => p,
        Some(Value::String(_) | Value::Null) | None => return Err(ApiErr::missing("prompt")),
        Some(_) => {
            return Err(ApiErr::invalid(
                "prompt",
                "Invalid type for 'prompt': expected a string.".into(),
            ));
        }
    };
    let max = match family {
        Family::Gpt => 32_000,
        Family::DallE3 => 4_000,
        Family::DallE2 => 1_000,
    };
    if prompt.chars().count() > max {
        return Err(ApiErr::new(
            400,
            "string_above_max_length",
            Some("prompt"),
            format!(
                "Invalid 'prompt': string too long. Expected a string with maximum length {max}."
            ),
        ));
    }

    let max_n = if family == Family::DallE3 { 1 } else { 10 };
    integer(fields, "n", multipart, 1..=max_n)?;

    // size
    if let Some(size) = get(fields, "size") {
        let size = size.as_str().unwrap_or("");
        let ok = match (family, rules.flexible_sizes) {
            (Family::Gpt, true) => size == "auto" || flexible_size_ok(size),
            (Family::Gpt, false) => ["1024x1024", "1536x1024", "1024x1536", "auto"].contains(&size),
            (Family::DallE3, _) => ["1024x1024", "1792x1024", "1024x1792"].contains(&size),
            (Family::DallE2, _) => ["256x256", "512x512", "1024x1024"].contains(&size),
        };
        if !ok {
            return Err(ApiErr::invalid(
                "size",
                format!("Invalid value: '{size}'. Supported values are not met by this size."),
            ));
        }
    }

    let qualities: &[&str] = match family {
        Family::Gpt if rules.top_qualities => &["low", "medium", "high", "xhigh", "max", "auto"],
        Family::Gpt => &["low", "medium", "high", "auto"],
        Family::DallE3 => &["hd", "standard"],
        Family::DallE2 => &["standard"],
    };
    one_of(fields, "quality", qualities)?;
    one_of(fields, "response_format", &["url", "b64_json"])?;
    one_of(fields, "style", &["vivid", "natural"])?;

    // The GPT image fields: the allowed list has already refused them to other models.
    // The 2.6 models also make animated GIFs and SVGs; an SVG only from a generation.
    let formats: &[&str] = if rules.complexity {
        &["png", "jpeg", "webp", "gif", "svg"]
    } else {
        &["png", "jpeg", "webp"]
    };
    let format = one_of(fields, "output_format", formats)?;
    if format == Some("svg") && op == Op::Edit {
        return Err(ApiErr::invalid(
            "output_format",
            "output_format 'svg' is only supported for image generations, not edits.".into(),
        ));
    }
    one_of(fields, "moderation", &["low", "auto"])?;
    let background = one_of(fields, "background", &["transparent", "opaque", "auto"])?;
    if background == Some("transparent") && matches!(format, Some("jpeg" | "gif" | "svg")) {
        return Err(ApiErr::invalid(
            "background",
            format!(
                "Transparent background is not supported for output_format '{}'; use 'png' or 'webp'.",
                format.unwrap_or_default()
            ),
        ));
    }
    if integer(fields, "output_compression", multipart, 0..=100)?.is_some()
        && !matches!(format, Some("jpeg" | "webp"))
    {
        return Err(ApiErr::invalid(
            "output_compression",
            format!(
                "output_compression is only supported with output_format 'jpeg' or 'webp', not '{}'.",
                format.unwrap_or("png")
            ),
        ));
    }
    one_of(fields, "input_fidelity", &["high", "low"])?;
    one_of(fields, "complexity", &["low", "medium", "high"])?;
    integer(fields, "frame_count", multipart, 2..=16)?;
    integer(fields, "frame_duration_ms", multipart, 1..=60_000)?;
    boolean(fields, "stream", multipart)?;
    integer(fields, "partial_images", multipart, 0..=3)?;
    if let Some(user) = get(fields, "user")
        && !user.is_string()
    {
        return Err(ApiErr::invalid(
            "user",
            format!("Invalid type for 'user': expected a string, but got {user}."),
        ));
    }

    if op == Op::Edit {
        if multipart {
            check_files(family, &model, files)?;
        } else {
            check_json_images(family, &model, fields)?;
        }
    }
    Ok(Checked { family, model })
}

fn flexible_size_ok(size: &str) -> bool {
    let Some((w, h)) = size.split_once('x') else {
        return false;
    };
    let (Ok(w), Ok(h)) = (w.parse::<u64>(), h.parse::<u64>()) else {
        return false;
    };
    let (short, long) = (w.min(h), w.max(h));
    w % 16 == 0
        && h % 16 == 0
        && long <= 3840
        && long <= 3 * short
        && w * h <= 3840 * 2160
        && w * h >= 655_360
}

fn no_edits(family: Family, model: &str) -> Result<(), ApiErr> {
    if family == Family::DallE3 {
        return Err(ApiErr::invalid(
            "model",
            format!("Invalid value: '{model}'. Image edits are not supported for this model."),
        ));
    }
    Ok(())
}

fn bad_image(param: &str, declared: Option<&str>, sniffed: Option<&str>) -> ApiErr {
    ApiErr::new(
        400,
        "invalid_image_format",
        Some(param),
        format!(
            "Invalid image file or mode for image 1, please check your image file. (declared {declared:?}, bytes look like {sniffed:?})"
        ),
    )
}

/// The multipart form: `image` once, or `image[]` repeated, each with its true MIME type.
fn check_files(family: Family, model: &str, files: &[FilePart]) -> Result<(), ApiErr> {
    no_edits(family, model)?;
    let plain = files.iter().filter(|f| f.name == "image").count();
    let array = files.iter().filter(|f| f.name == "image[]").count();
    if plain > 1 {
        return Err(ApiErr::duplicate("image"));
    }
    if files.iter().filter(|f| f.name == "mask").count() > 1 {
        return Err(ApiErr::duplicate("mask"));
    }
    if plain + array == 0 {
        return Err(ApiErr::missing("image"));
    }
    if plain == 1 && array > 0 {
        return Err(ApiErr::invalid(
            "image",
            "Provide either 'image' or 'image[]', not both.".into(),
        ));
    }
    let max = if family == Family::DallE2 { 1 } else { 16 };
    if plain + array > max {
        return Err(ApiErr::invalid(
            "image",
            format!("Invalid 'image': at most {max} images."),
        ));
    }
    for f in files {
        if !FILE_PARTS.contains(&f.name.as_str()) {
            return Err(ApiErr::unknown(&f.name));
        }
        let sniffed = sniff(&f.bytes);
        let declared = f.content_type.as_deref();
        let allowed: &[&str] = if family == Family::DallE2 || f.name == "mask" {
            &["image/png"]
        } else {
            FORMATS
        };
        if sniffed.is_none() || declared != sniffed || !allowed.contains(&declared.unwrap_or("")) {
            return Err(bad_image(&f.name, declared, sniffed));
        }
        let limit = if family == Family::DallE2 || f.name == "mask" {
            4 << 20
        } else {
            50 << 20
        };
        if f.bytes.len() >= limit {
            return Err(ApiErr::invalid(&f.name, "Image file too large.".into()));
        }
    }
    let first = files
        .iter()
        .find(|f| f.name != "mask")
        .map(|f| dimensions(&f.bytes));
    if family == Family::DallE2
        && let Some(Some((w, h))) = first
        && w != h
    {
        return Err(ApiErr::invalid(
            "image",
            format!("Invalid input image: dall-e-2 edits need a square image, got {w}x{h}."),
        ));
    }
    if let Some(mask) = files.iter().find(|f| f.name == "mask") {
        let first = files.iter().find(|f| f.name != "mask");
        check_mask(&mask.bytes, first.map(|f| f.bytes.as_slice()))?;
    }
    Ok(())
}

/// The largest mask the service takes is under this many bytes.
pub const MAX_MASK_BYTES: usize = 4 << 20;

/// A mask's bytes, as the service checks them in either form of an edit: a PNG with an alpha
/// channel, under 4 MB, of the size of the first image (where its bytes are known: `first`).
pub fn check_mask(mask: &[u8], first: Option<&[u8]>) -> Result<(), ApiErr> {
    let sniffed = sniff(mask);
    if sniffed != Some("image/png") {
        return Err(bad_image("mask", Some("image/png"), sniffed));
    }
    if mask.len() >= MAX_MASK_BYTES {
        return Err(ApiErr::invalid("mask", "Image file too large.".into()));
    }
    if !png_has_alpha(mask) {
        return Err(ApiErr::invalid(
            "mask",
            "Invalid mask: it must be a PNG with an alpha channel.".into(),
        ));
    }
    let size = dimensions(mask);
    if let Some(first) = first.map(dimensions)
        && first != size
    {
        return Err(ApiErr::invalid(
            "mask",
            format!("Invalid mask: its size {size:?} differs from the image's {first:?}."),
        ));
    }
    Ok(())
}

/// Width and height from an image's header.
fn dimensions(bytes: &[u8]) -> Option<(usize, usize)> {
    imagesize::blob_size(bytes)
        .ok()
        .map(|s| (s.width, s.height))
}

/// A PNG whose pixels carry alpha: grey+alpha or RGBA, or a `tRNS` chunk.
fn png_has_alpha(bytes: &[u8]) -> bool {
    matches!(bytes.get(25), Some(4 | 6)) || bytes.windows(4).any(|w| w == b"tRNS")
}

/// The JSON form of an edit: `images` (1 to 16 references) and an optional `mask`, each an
/// `{"image_url": ...}` or a `{"file_id": ...}`. Only GPT image models take it.
fn check_json_images(
    family: Family,
    model: &str,
    fields: &Map<String, Value>,
) -> Result<(), ApiErr> {
    no_edits(family, model)?;
    if family != Family::Gpt {
        return Err(ApiErr::invalid(
            "model",
            format!(
                "Invalid value: '{model}'. JSON image edits support GPT image models only; use multipart/form-data."
            ),
        ));
    }
    let images = match get(fields, "images") {
        None => return Err(ApiErr::missing("images")),
        Some(Value::Array(images)) => images,
        Some(v) => {
            return Err(ApiErr::invalid(
                "images",
                format!("Invalid type for 'images': expected an array, but got {v}."),
            ));
        }
    };
    if !(1..=16).contains(&images.len()) {
        return Err(ApiErr::invalid(
            "images",
            format!(
                "Invalid 'images': expected between 1 and 16 items, got {}.",
                images.len()
            ),
        ));
    }
    let mut first = None;
    for (i, image) in images.iter().enumerate() {
        let bytes = check_image_ref(&format!("images[{i}]"), image, FORMATS)?;
        if i == 0 {
            first = bytes;
        }
    }
    if let Some(mask) = get(fields, "mask")
        && let Some(bytes) = check_image_ref("mask", mask, &["image/png"])?
    {
        // A data URL's bytes are checked here; a file's, where the files are known
        // ([`check_file_refs`]).
        check_mask(&bytes, first.as_deref())?;
    }
    Ok(())
}

/// The longest `image_url` the JSON form takes, in characters: a data URL of about 15 MB of
/// image.
pub const MAX_IMAGE_URL: usize = 20_971_520;

/// The `file_id` references of a JSON edit (in `images` and `mask`, already checked by
/// [`check`]) name files the Files API holds, and those files are images (the mask a PNG
/// that passes [`check_mask`] against the first image). `file` gives a file's bytes, or
/// `None` if there is no such file (or it was deleted). Any purpose will do.
pub fn check_file_refs(
    fields: &Map<String, Value>,
    file: impl Fn(&str) -> Option<Vec<u8>>,
) -> Result<(), ApiErr> {
    let sniff_file = |id: &str| file(id).map(|bytes| sniff(&bytes));
    let mut refs: Vec<(String, &Value, &[&str])> = Vec::new();
    if let Some(Value::Array(images)) = get(fields, "images") {
        for (i, image) in images.iter().enumerate() {
            refs.push((format!("images[{i}]"), image, FORMATS));
        }
    }
    if let Some(mask) = get(fields, "mask") {
        refs.push(("mask".to_owned(), mask, &["image/png"]));
    }
    for (param, value, formats) in refs {
        let Some(Value::String(id)) = value.get("file_id") else {
            continue;
        };
        match sniff_file(id) {
            None => {
                return Err(ApiErr::new(
                    400,
                    "invalid_value",
                    Some(&format!("{param}.file_id")),
                    format!("Invalid '{param}.file_id': No such File object: {id}."),
                ));
            }
            Some(sniffed) if !sniffed.is_some_and(|m| formats.contains(&m)) => {
                return Err(bad_image(&param, None, sniffed));
            }
            Some(_) => {}
        }
    }
    // A mask uploaded as a file is checked as a mask, against the first image wherever it is.
    if let Some(Value::String(id)) = get(fields, "mask").and_then(|m| m.get("file_id")) {
        let mask = file(id).expect("checked above");
        let first = match get(fields, "images").and_then(|images| images.get(0)) {
            Some(Value::Object(image)) => match (image.get("file_id"), image.get("image_url")) {
                (Some(Value::String(id)), _) => file(id),
                (_, Some(Value::String(url))) => data_url_bytes(url),
                _ => None,
            },
            _ => None,
        };
        check_mask(&mask, first.as_deref())?;
    }
    Ok(())
}

/// The bytes of a base64 `data:` URL.
fn data_url_bytes(url: &str) -> Option<Vec<u8>> {
    let (_, b64) = url.strip_prefix("data:")?.split_once(";base64,")?;
    STANDARD.decode(b64).ok()
}

/// One `ImageRefParam`: exactly one of `image_url` (a URL, or a base64 data URL whose bytes
/// are what it says) and `file_id`. Gives a data URL's bytes.
fn check_image_ref(
    param: &str,
    value: &Value,
    formats: &[&str],
) -> Result<Option<Vec<u8>>, ApiErr> {
    let invalid = |why: &str| ApiErr::invalid(param, format!("Invalid '{param}': {why}."));
    let Value::Object(map) = value else {
        return Err(invalid("expected an object"));
    };
    if let Some(key) = map.keys().find(|k| *k != "image_url" && *k != "file_id") {
        return Err(ApiErr::unknown(&format!("{param}.{key}")));
    }
    match (map.get("image_url"), map.get("file_id")) {
        (Some(Value::String(url)), None) => {
            if url.len() > MAX_IMAGE_URL {
                return Err(ApiErr::new(
                    400,
                    "string_above_max_length",
                    Some(&format!("{param}.image_url")),
                    format!(
                        "Invalid '{param}.image_url': string too long. Expected a string with maximum length {MAX_IMAGE_URL}, but got a string with length {} instead.",
                        url.len()
                    ),
                ));
            }
            if let Some(data) = url.strip_prefix("data:") {
                let Some((declared, b64)) = data.split_once(";base64,") else {
                    return Err(invalid("a data URL must be base64-encoded"));
                };
                let bytes = STANDARD
                    .decode(b64)
                    .map_err(|_| invalid("the data URL is not valid base64"))?;
                let sniffed = sniff(&bytes);
                if sniffed != Some(declared) || !formats.contains(&declared) {
                    return Err(bad_image(param, Some(declared), sniffed));
                }
                Ok(Some(bytes))
            } else if url.starts_with("https://") || url.starts_with("http://") {
                Ok(None)
            } else {
                Err(invalid("'image_url' must be a URL or a data URL"))
            }
        }
        (None, Some(Value::String(id))) if id.starts_with("file-") => Ok(None),
        (None, Some(_)) => Err(invalid("'file_id' must be a file ID like 'file-abc123'")),
        (Some(_), Some(_)) => Err(invalid("provide exactly one of 'image_url' and 'file_id'")),
        _ => Err(invalid("expected an 'image_url' or a 'file_id'")),
    }
}
