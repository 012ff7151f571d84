//! Defaults for any flag, from a TOML file: `$GENIMG_CONFIG`, else
//! `$XDG_CONFIG_HOME/genimg/config.toml`, else `~/.config/genimg/config.toml`.
//!
//! Keys are the long flag names, in kebab-case or snake_case: `model = "gpt-image-2.5-flare"`,
//! `count = 3`, `reference-image = ["brand.png"]`. Flags override the file; the file overrides
//! the built-in defaults. Paths of reference images, the mask and `style = "@FILE"` are
//! relative to the file; `dst-dir` and `input` are relative to where genimg runs, as on the
//! command line.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

use crate::config::input::{self, ReadLimitError};
use crate::config::{ConfigError, Env};

/// The settings a config file may hold, every one optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConfigFile {
    pub input: Option<PathBuf>,
    #[serde(alias = "dst_dir")]
    pub dst_dir: Option<PathBuf>,
    pub count: Option<u32>,
    pub model: Option<String>,
    #[serde(alias = "low_res")]
    pub low_res: Option<bool>,
    pub size: Option<String>,
    pub quality: Option<String>,
    pub format: Option<String>,
    pub compression: Option<u32>,
    pub background: Option<String>,
    pub moderation: Option<String>,
    #[serde(alias = "input_fidelity")]
    pub input_fidelity: Option<String>,
    pub complexity: Option<String>,
    pub stream: Option<bool>,
    #[serde(alias = "partial_images")]
    pub partial_images: Option<u8>,
    #[serde(alias = "aspect_ratio")]
    pub aspect_ratio: Option<String>,
    #[serde(alias = "image_size")]
    pub image_size: Option<String>,
    pub style: Option<String>,
    #[serde(alias = "reference_image")]
    pub reference_image: Option<Vec<PathBuf>>,
    /// `[param]`: fields added to each request's body, each TOML value as JSON.
    pub param: Option<BTreeMap<String, serde_json::Value>>,
    pub mask: Option<PathBuf>,
    #[serde(alias = "num-threads", alias = "num_threads")]
    pub jobs: Option<usize>,
    pub parallel: Option<bool>,
    pub ipm: Option<u32>,
    #[serde(alias = "max_wait")]
    pub max_wait: Option<String>,
    #[serde(alias = "dry_run")]
    pub dry_run: Option<bool>,
    #[serde(alias = "from_scratch")]
    pub from_scratch: Option<bool>,
    pub overwrite: Option<bool>,
    #[serde(alias = "max_retries")]
    pub max_retries: Option<u32>,
    #[serde(alias = "max_cost")]
    pub max_cost: Option<f64>,
    #[serde(alias = "api_key")]
    pub api_key: Option<SecretString>,
    #[serde(alias = "base_url")]
    pub base_url: Option<String>,
    #[serde(alias = "gemini_api_key")]
    pub gemini_api_key: Option<SecretString>,
    #[serde(alias = "gemini_base_url")]
    pub gemini_base_url: Option<String>,
    #[serde(alias = "azure_endpoint")]
    pub azure_endpoint: Option<String>,
    #[serde(alias = "api_version")]
    pub api_version: Option<String>,
    pub timeout: Option<u64>,
    pub naming: Option<String>,
    pub verbose: Option<u8>,
    pub quiet: Option<bool>,
}

/// A config file that was found and read.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Where it was, as shown in errors; `None` when there is no file.
    pub path: Option<String>,
    /// The directory its relative paths start from.
    pub dir: PathBuf,
    pub file: ConfigFile,
}

impl Loaded {
    /// Finds and reads the config file. `$GENIMG_CONFIG` must exist if set; the default
    /// location may be absent.
    pub fn from_env(env: &Env) -> Result<Loaded, ConfigError> {
        let (path, required) = match env.get("GENIMG_CONFIG") {
            Some(p) => (PathBuf::from(p), true),
            None => {
                let base = match (env.get("XDG_CONFIG_HOME"), env.get("HOME")) {
                    (Some(xdg), _) => PathBuf::from(xdg),
                    (None, Some(home)) => Path::new(home).join(".config"),
                    (None, None) => return Ok(Loaded::default()),
                };
                (base.join("genimg").join("config.toml"), false)
            }
        };
        let shown = path.display().to_string();
        let bytes = match input::read_bounded(&path, input::CONFIG_FILE_CAP) {
            Ok(bytes) => bytes,
            Err(ReadLimitError::Io(e)) if e.kind() == io::ErrorKind::NotFound && !required => {
                return Ok(Loaded::default());
            }
            Err(ReadLimitError::Io(e)) => {
                return Err(ConfigError::ConfigFile {
                    path: shown,
                    problem: format!("cannot be read: {e}"),
                });
            }
            Err(e) => {
                return Err(ConfigError::ConfigFile {
                    path: shown,
                    problem: e.to_string(),
                });
            }
        };
        let text = String::from_utf8(bytes).map_err(|_| ConfigError::ConfigFile {
            path: shown.clone(),
            problem: "cannot be read: it is not valid UTF-8 text".to_owned(),
        })?;
        let file = parse(&text).map_err(|problem| ConfigError::ConfigFile {
            path: shown.clone(),
            problem,
        })?;
        let dir = path.parent().map(Path::to_owned).unwrap_or_default();
        Ok(Loaded {
            path: Some(shown),
            dir,
            file,
        })
    }
}

/// Keys a config file may not hold: each would act on every run, where a user means it once
/// (moving images to the trash or remaking them, sending nothing), or keep a secret in a file the user may
/// share. With why, and what to use instead.
const REFUSED_KEYS: &[(&str, &str, &str)] = &[
    (
        "from-scratch",
        "from_scratch",
        "it would move images to the trash on every run; pass --from-scratch when you mean it",
    ),
    (
        "overwrite",
        "overwrite",
        "it would remake every image on every run; pass --overwrite when you mean it",
    ),
    (
        "dry-run",
        "dry_run",
        "no run would ever send anything; pass --dry-run when you mean it",
    ),
    (
        "api-key",
        "api_key",
        "a key does not belong in a settings file; set OPENAI_API_KEY or pass --api-key",
    ),
];

/// Parses the TOML text; the message names the line and the key at fault.
pub fn parse(text: &str) -> Result<ConfigFile, String> {
    let file = parse_keys(text)?;
    let set = [
        file.from_scratch.is_some(),
        file.overwrite.is_some(),
        file.dry_run.is_some(),
        file.api_key.is_some(),
    ];
    for ((kebab, snake, why), set) in REFUSED_KEYS.iter().zip(set) {
        if set {
            let line = text
                .lines()
                .position(|l| {
                    let key = l.split('=').next().unwrap_or("").trim();
                    key == *kebab || key == *snake
                })
                .map_or_else(String::new, |n| format!("line {}: ", n + 1));
            return Err(format!(
                "{line}`{kebab}` cannot be set in a config file: {why}"
            ));
        }
    }
    Ok(file)
}

fn parse_keys(text: &str) -> Result<ConfigFile, String> {
    toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|span| 1 + text[..span.start.min(text.len())].matches('\n').count());
        let message = e.message().trim().to_owned();
        match line {
            Some(line) => format!("line {line}: {message}"),
            None => message,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn keys_in_kebab_or_snake_case() {
        let f = parse(
            "model = \"gpt-image-2.5-flare\"\ncount = 3\nlow_res = true\n\
             reference-image = [\"a.png\", \"b.png\"]\nmax-cost = 2.5\n\
             num_threads = 8\n",
        )
        .unwrap();
        assert_eq!(f.model.as_deref(), Some("gpt-image-2.5-flare"));
        assert_eq!(f.count, Some(3));
        assert_eq!(f.low_res, Some(true));
        assert_eq!(f.reference_image.unwrap().len(), 2);
        assert_eq!(f.max_cost, Some(2.5));
        assert_eq!(f.jobs, Some(8));
    }

    #[test]
    fn the_param_table_keeps_each_toml_value_as_json() {
        let f = parse(
            "count = 2\n[param]\nframe_count = 8\nloop = true\nuser = \"me\"\n\
             sizes = [1, 2]\nnested = { a = 0.5 }\n",
        )
        .unwrap();
        let params = f.param.unwrap();
        assert_eq!(params["frame_count"], serde_json::json!(8));
        assert_eq!(params["loop"], serde_json::json!(true));
        assert_eq!(params["user"], serde_json::json!("me"));
        assert_eq!(params["sizes"], serde_json::json!([1, 2]));
        assert_eq!(params["nested"], serde_json::json!({"a": 0.5}));
        assert_eq!(f.count, Some(2));
    }

    #[test]
    fn keys_that_would_act_on_every_run_or_hold_a_secret_are_refused() {
        for (text, key) in [
            ("count = 2\nfrom-scratch = true\n", "line 2: `from-scratch`"),
            ("from_scratch = false\n", "line 1: `from-scratch`"),
            ("overwrite = true\n", "line 1: `overwrite`"),
            ("count = 1\n\ndry-run = true\n", "line 3: `dry-run`"),
            ("api_key = \"sk-file\"\n", "line 1: `api-key`"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.starts_with(key), "{text:?}: {err}");
            assert!(err.contains("cannot be set in a config file"), "{err}");
            assert!(!err.contains("sk-file"), "no secret in the message: {err}");
        }
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let err = parse("count = 3\nsizes = \"1x1\"\n").unwrap_err();
        assert!(err.starts_with("line 2: "), "{err}");
        assert!(err.contains("sizes"), "{err}");
        let err = parse("count = \"three\"\n").unwrap_err();
        assert!(err.starts_with("line 1: "), "{err}");
        let err = parse("count = \n").unwrap_err();
        assert!(err.starts_with("line 1"), "{err}");
    }

    #[test]
    fn the_file_is_found_by_variable_then_xdg_then_home() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("my.toml");
        fs::write(&file, "count = 2\n").unwrap();
        let env = Env::from_pairs([("GENIMG_CONFIG", file.to_str().unwrap())]);
        let loaded = Loaded::from_env(&env).unwrap();
        assert_eq!(loaded.file.count, Some(2));
        assert_eq!(loaded.dir, dir.path());

        fs::create_dir_all(dir.path().join("xdg/genimg")).unwrap();
        fs::write(dir.path().join("xdg/genimg/config.toml"), "count = 3\n").unwrap();
        let xdg = dir.path().join("xdg");
        let env = Env::from_pairs([("XDG_CONFIG_HOME", xdg.to_str().unwrap())]);
        assert_eq!(Loaded::from_env(&env).unwrap().file.count, Some(3));

        let home = Env::from_pairs([("HOME", dir.path().to_str().unwrap())]);
        let none = Loaded::from_env(&home).unwrap();
        assert!(
            none.path.is_none(),
            "no ~/.config/genimg/config.toml is no config"
        );

        let missing = Env::from_pairs([("GENIMG_CONFIG", "/nonexistent/genimg.toml")]);
        let err = Loaded::from_env(&missing).unwrap_err().to_string();
        assert!(
            err.starts_with("config file /nonexistent/genimg.toml: cannot be read"),
            "{err}"
        );
    }
}
