//! The service's rules, written from `shared/API-NOTES.md` and the OpenAPI spec, and kept
//! apart from genimg's own model table so that each checks the other.

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
}

impl ApiErr {
    fn new(status: u16, code: &str, param: Option<&str>, message: String) -> ApiErr {
        ApiErr {
            status,
            message,
            kind: "invalid_request_error".to_owned(),
            param: param.map(str::to_owned),
            code: Some(code.to_owned()),
        }
    }

    pub fn body(&self) -> Value {
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

    fn unknown(name: &str) -> ApiErr {
        ApiErr::new(
            400,
            "unknown_parameter",
            Some(name),
            format!("Unknown parameter: '{name}'."),
        )
    }

    fn missing(name: &str) -> ApiErr {
        ApiErr::new(
            400,
            "missing_required_parameter",
            Some(name),
            format!("Missing required parameter: '{name}'."),
        )
    }

    fn invalid(name: &str, message: String) -> ApiErr {
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

const GPT_GENERATE: &[&str] = &[
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
const GPT_EDIT_EXTRA: &[&str] = &["input_fidelity", "mask"];
const DALLE3: &[&str] = &[
    "prompt",
    "model",
    "n",
    "size",
    "quality",
    "response_format",
    "style",
    "user",
];
const DALLE2: &[&str] = &[
    "prompt",
    "model",
    "n",
    "size",
    "response_format",
    "user",
    "quality",
];

fn family_of(model: &str, extra: &[String]) -> Option<(Family, bool, bool)> {
    // (family, flexible sizes, xhigh/max qualities)
    match model {
        "gpt-image-2" | "gpt-image-2-2026-04-21" => Some((Family::Gpt, true, false)),
        "gpt-image-2.5-flare"
        | "gpt-image-2.5-sunburst"
        | "gpt-image-2.5-flare-2026-09-08"
        | "gpt-image-2.5-sunburst-2026-09-08"
        | "gpt-image-2.6-flare"
        | "gpt-image-2.6-sunburst" => Some((Family::Gpt, true, true)),
        "gpt-image-1.5" | "gpt-image-1-mini" | "chatgpt-image-latest" | "gpt-image-1" => {
            Some((Family::Gpt, false, false))
        }
        "dall-e-3" => Some((Family::DallE3, false, false)),
        "dall-e-2" => Some((Family::DallE2, false, false)),
        m if extra.iter().any(|e| e == m) => Some((Family::Gpt, true, true)),
        _ => None,
    }
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn sniff(bytes: &[u8]) -> Option<&'static str> {
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

/// Checks a request as the service does; returns the model's family.
pub fn check(
    op: Op,
    multipart: bool,
    fields: &Map<String, Value>,
    files: &[FilePart],
    extra_models: &[String],
) -> Result<Family, ApiErr> {
    if op == Op::Edit && !multipart && !fields.contains_key("images") {
        return Err(ApiErr::missing("image"));
    }
    if op == Op::Generate && multipart {
        return Err(ApiErr::bad_content_type("multipart/form-data"));
    }
    let model = fields
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("dall-e-2");
    let Some((family, flexible, xq)) = family_of(model, extra_models) else {
        return Err(ApiErr::new(
            404,
            "model_not_found",
            Some("model"),
            format!("The model `{model}` does not exist or you do not have access to it."),
        ));
    };

    let allowed: Vec<&str> = match family {
        Family::Gpt => {
            let mut v = GPT_GENERATE.to_vec();
            if op == Op::Edit {
                v.extend_from_slice(GPT_EDIT_EXTRA);
            }
            v
        }
        Family::DallE3 => DALLE3.to_vec(),
        Family::DallE2 => {
            let mut v = DALLE2.to_vec();
            if op == Op::Edit {
                v.push("mask");
            }
            v
        }
    };
    for name in fields.keys() {
        if !allowed.contains(&name.as_str()) {
            return Err(ApiErr::unknown(name));
        }
    }

    // prompt
    let prompt = match fields.get("prompt") {
        Some(Value::String(p)) if !p.is_empty() => p,
        Some(Value::String(_)) | None => return Err(ApiErr::missing("prompt")),
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

    // n
    if let Some(n) = fields.get("n") {
        let n = as_int(n).ok_or_else(|| ApiErr::invalid("n", "Invalid type for 'n'.".into()))?;
        let max_n = if family == Family::DallE3 { 1 } else { 10 };
        if !(1..=max_n).contains(&n) {
            return Err(ApiErr::invalid(
                "n",
                format!("Invalid 'n': must be between 1 and {max_n}."),
            ));
        }
    }

    // size
    if let Some(size) = fields.get("size") {
        let size = size.as_str().unwrap_or("");
        let ok = match (family, flexible) {
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

    // quality
    if let Some(q) = fields.get("quality") {
        let q = q.as_str().unwrap_or("");
        let ok = match family {
            Family::Gpt => {
                ["low", "medium", "high", "auto"].contains(&q)
                    || (xq && ["xhigh", "max"].contains(&q))
            }
            Family::DallE3 => ["hd", "standard"].contains(&q),
            Family::DallE2 => q == "standard",
        };
        if !ok {
            return Err(ApiErr::invalid("quality", format!("Invalid value: '{q}'.")));
        }
    }

    if let Some(rf) = fields.get("response_format")
        && !["url", "b64_json"].contains(&rf.as_str().unwrap_or(""))
    {
        return Err(ApiErr::invalid("response_format", "Invalid value.".into()));
    }
    if let Some(style) = fields.get("style")
        && !["vivid", "natural"].contains(&style.as_str().unwrap_or(""))
    {
        return Err(ApiErr::invalid("style", "Invalid value.".into()));
    }

    if op == Op::Edit {
        check_images(family, model, files)?;
    }
    Ok(family)
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

fn check_images(family: Family, model: &str, files: &[FilePart]) -> Result<(), ApiErr> {
    if family == Family::DallE3 {
        return Err(ApiErr::invalid(
            "model",
            format!("Invalid value: '{model}'. Image edits are not supported for this model."),
        ));
    }
    let plain = files.iter().filter(|f| f.name == "image").count();
    let array = files.iter().filter(|f| f.name == "image[]").count();
    if plain > 1 {
        return Err(ApiErr::duplicate("image"));
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
        if f.name != "image" && f.name != "image[]" && f.name != "mask" {
            return Err(ApiErr::unknown(&f.name));
        }
        let sniffed = sniff(&f.bytes);
        let declared = f.content_type.as_deref();
        let allowed: &[&str] = if family == Family::DallE2 {
            &["image/png"]
        } else {
            &["image/png", "image/jpeg", "image/webp"]
        };
        if sniffed.is_none() || declared != sniffed || !allowed.contains(&declared.unwrap_or("")) {
            return Err(ApiErr::new(
                400,
                "invalid_image_format",
                Some(&f.name),
                format!(
                    "Invalid image file or mode for image 1, please check your image file. (declared {declared:?}, bytes look like {sniffed:?})"
                ),
            ));
        }
        let limit = if family == Family::DallE2 {
            4 << 20
        } else {
            50 << 20
        };
        if f.bytes.len() >= limit {
            return Err(ApiErr::invalid(&f.name, "Image file too large.".into()));
        }
    }
    Ok(())
}
