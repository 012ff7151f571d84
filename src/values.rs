//! The values flags take, read the same way wherever they are given: on the command line,
//! in the config file, or on a prompt's header line. Each parser says what it takes.

use crate::catalog::QUALITY_TOKENS;
use crate::format::ImageFormat;

pub const BACKGROUNDS: &[&str] = &["transparent", "opaque", "auto"];
pub const MODERATIONS: &[&str] = &["low", "auto"];
pub const FIDELITIES: &[&str] = &["high", "low"];
pub const COMPLEXITIES: &[&str] = &["low", "medium", "high"];
/// Gemini's `aspectRatio`s, every model's together (`genimg models` shows each one's).
pub const ASPECT_RATIOS: &[&str] = &[
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9", "1:4", "4:1", "1:8",
    "8:1",
];
/// Gemini's `imageSize`s.
pub const IMAGE_SIZES: &[&str] = &["512", "1K", "2K", "4K"];

/// Reads one of `allowed`, giving back the table's own `&'static str`.
pub fn choice(value: &str, allowed: &'static [&'static str]) -> Result<&'static str, String> {
    allowed
        .iter()
        .find(|a| **a == value)
        .copied()
        .ok_or_else(|| format!("`{value}` is not one of {}", allowed.join(", ")))
}

/// A wait: `15m`, `90s`, `1h30m`, `500ms`, or plain seconds (`600`).
pub fn parse_wait(value: &str) -> Result<std::time::Duration, String> {
    let wait = crate::provider::parse_reset(value)
        .ok_or_else(|| format!("`{value}` is not a duration such as 15m, 90s, 1h30m or 0"))?;
    // Durations are read up to a day; a longer one would be cut to it without a word.
    if wait >= std::time::Duration::from_secs(86_400) && value.trim() != "24h" {
        return Err(format!(
            "`{value}` is more than 24h, the longest wait genimg sits out"
        ));
    }
    Ok(wait)
}

/// A number of seconds, fractions allowed (`0.5`), more than 0 and at most a day.
pub fn parse_seconds(value: &str) -> Result<std::time::Duration, String> {
    match value.trim().parse::<f64>() {
        Ok(secs) if (0.01..=86_400.0).contains(&secs) => {
            Ok(std::time::Duration::from_secs_f64(secs))
        }
        _ => Err(format!(
            "`{value}` is not a number of seconds from 0.01 to 86400, such as 30 or 0.5"
        )),
    }
}

pub fn parse_quality(value: &str) -> Result<&'static str, String> {
    choice(value, QUALITY_TOKENS)
}

pub fn parse_background(value: &str) -> Result<&'static str, String> {
    choice(value, BACKGROUNDS)
}

pub fn parse_moderation(value: &str) -> Result<&'static str, String> {
    choice(value, MODERATIONS)
}

pub fn parse_fidelity(value: &str) -> Result<&'static str, String> {
    choice(value, FIDELITIES)
}

pub fn parse_complexity(value: &str) -> Result<&'static str, String> {
    choice(value, COMPLEXITIES)
}

/// A number of partial images: 0 to 3.
pub fn parse_partial_images(value: &str) -> Result<u8, String> {
    match value.trim().parse::<u8>() {
        Ok(n) if n <= 3 => Ok(n),
        _ => Err(format!(
            "`{value}` is not a number of partial images from 0 to 3"
        )),
    }
}

pub fn parse_aspect_ratio(value: &str) -> Result<&'static str, String> {
    choice(value.trim(), ASPECT_RATIOS)
}

/// `512`, `1K`, `2K` or `4K` (a lower-case `k` is taken).
pub fn parse_image_size(value: &str) -> Result<&'static str, String> {
    choice(&value.trim().to_uppercase(), IMAGE_SIZES)
}

pub fn parse_format(value: &str) -> Result<ImageFormat, String> {
    match value {
        "png" => Ok(ImageFormat::Png),
        "jpeg" | "jpg" => Ok(ImageFormat::Jpeg),
        "webp" => Ok(ImageFormat::Webp),
        "gif" => Ok(ImageFormat::Gif),
        "svg" => Ok(ImageFormat::Svg),
        _ => Err(format!("`{value}` is not one of png, jpeg, webp, gif, svg")),
    }
}

pub fn parse_compression(value: &str) -> Result<u8, String> {
    match value.parse::<u8>() {
        Ok(n) if n <= 100 => Ok(n),
        _ => Err(format!("`{value}` is not a whole number from 0 to 100")),
    }
}

/// The most images of one prompt a run makes: a slip of the finger in `-n` should not buy a
/// hundred million images.
pub const MAX_COUNT: u32 = 10_000;

pub fn parse_count(value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(n) if (1..=MAX_COUNT).contains(&n) => Ok(n),
        Ok(n) if n > MAX_COUNT => Err(format!(
            "`{value}` is more than {MAX_COUNT} images of one prompt"
        )),
        _ => Err(format!("`{value}` is not a whole number of 1 or more")),
    }
}

pub fn at_least_one<T>(s: &str) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + From<u8>,
{
    match s.parse::<T>() {
        Ok(n) if n >= T::from(1) => Ok(n),
        _ => Err(format!("`{s}` is not a whole number of 1 or more")),
    }
}

/// A count that may be 0, such as `--max-retries`.
pub fn at_least_zero(s: &str) -> Result<u32, String> {
    s.parse::<u32>()
        .map_err(|_| format!("`{s}` is not a whole number of 0 or more"))
}

/// `--param KEY=VALUE`: a field added to the request body. The key is checked here; the value
/// is read by [`param_value`].
pub fn parse_param(s: &str) -> Result<(String, String), String> {
    let Some((key, value)) = s.split_once('=') else {
        return Err(format!("`{s}` is not KEY=VALUE, such as frame_count=8"));
    };
    check_param_key(key)?;
    Ok((key.to_owned(), value.to_owned()))
}

/// A field's name: one word, as a JSON key should be.
pub fn check_param_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("the field has no name: write KEY=VALUE, such as frame_count=8".to_owned());
    }
    if key
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '"')
    {
        return Err(format!("`{key}` is not a field name"));
    }
    Ok(())
}

/// A field's value as sent: JSON where the text is JSON (`8`, `true`, `[1, 2]`, `{"a": 1}`,
/// `"quoted"`), else the text itself as a string.
pub fn param_value(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))
}

/// A sum of US dollars: `2`, `2.50`, `$2.50`.
pub fn parse_usd(s: &str) -> Result<f64, String> {
    match s.trim().trim_start_matches('$').parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(n),
        _ => Err(format!(
            "`{s}` is not an amount of US dollars of 0 or more, such as 2.50"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_param_is_json_where_it_parses_else_text() {
        for (text, value) in [
            ("8", json!(8)),
            ("0.5", json!(0.5)),
            ("true", json!(true)),
            ("[1, 2]", json!([1, 2])),
            ("{\"a\":1}", json!({"a": 1})),
            ("\"8\"", json!("8")),
            ("gif", json!("gif")),
            ("", json!("")),
            ("a b", json!("a b")),
        ] {
            assert_eq!(param_value(text), value, "{text:?}");
        }
        assert_eq!(
            parse_param("frame_count=8").unwrap(),
            ("frame_count".to_owned(), "8".to_owned())
        );
        assert_eq!(parse_param("a=b=c").unwrap().1, "b=c");
        assert!(parse_param("frames").unwrap_err().contains("KEY=VALUE"));
        assert!(parse_param("=8").unwrap_err().contains("no name"));
        assert!(parse_param("a b=8").is_err());
    }
}
