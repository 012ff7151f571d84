//! Resolved, validated settings: the rest of genimg sees only [`Config`], never clap.
//!
//! Everything a user can get wrong is checked here, before any request: the prompt file, the
//! reference images, the model's limits, the key and the endpoint. Each error names the flag,
//! variable, file or line at fault.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use secrecy::SecretString;
use thiserror::Error;
use url::Url;

use crate::api::{ClientConfig, Reference, RequestOptions, RetryPolicy};
use crate::cli::{Cli, NamingArg};
use crate::format::ImageFormat;
use crate::models::{DEFAULT_MODEL, Model, Size, Tier};
use crate::plan::{Existing, Naming};
use crate::prompts::{self, ParseError, Prompt};

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_JOBS: usize = 4;

/// The environment variables genimg reads, captured once so tests can supply their own.
#[derive(Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be secrets; names are enough to debug.
        let mut names: Vec<&String> = self.vars.keys().collect();
        names.sort();
        f.debug_struct("Env").field("names", &names).finish()
    }
}

impl Env {
    pub const VARIABLES: &[&str] = &[
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "GENIMG_MODEL",
    ];

    pub fn from_process() -> Env {
        Env::from_pairs(
            Env::VARIABLES
                .iter()
                .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v))),
        )
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// A variable's value; set-but-empty counts as unset, as shells make that easy by mistake.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }
}

/// Where the prompts came from; file names differ between the two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptSource {
    /// One prompt on the command line.
    Argument,
    /// A prompt file (`<stdin>` for `--input -`), as named in errors.
    File(String),
}

/// How much genimg says on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
    Debug,
}

impl Verbosity {
    /// From `--quiet` and the number of `-v`s (clap makes them exclusive).
    pub fn from_flags(quiet: bool, verbose: u8) -> Verbosity {
        match (quiet, verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, 1) => Verbosity::Verbose,
            (false, _) => Verbosity::Debug,
        }
    }
}

/// Everything a run needs, checked.
#[derive(Debug)]
pub struct Config {
    pub source: PromptSource,
    pub prompts: Vec<Prompt>,
    pub dst_dir: PathBuf,
    pub count: u32,
    pub model: Model,
    pub options: RequestOptions,
    pub references: Arc<[Reference]>,
    pub naming: Naming,
    pub jobs: usize,
    pub dry_run: bool,
    pub existing: Existing,
    pub retry: RetryPolicy,
    pub endpoint: Endpoint,
    pub verbosity: Verbosity,
}

/// How to reach the service. `api_key` is `None` only in a dry run.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub base_url: Url,
    pub api_key: Option<SecretString>,
    pub organization: Option<String>,
    pub project: Option<String>,
    pub timeout: Duration,
}

impl Endpoint {
    /// The client settings, if there is a key.
    pub fn client_config(&self) -> Option<ClientConfig> {
        Some(ClientConfig {
            base_url: self.base_url.clone(),
            api_key: self.api_key.clone()?,
            organization: self.organization.clone(),
            project: self.project.clone(),
            timeout: self.timeout,
        })
    }
}

/// A usage or input error: exit code 2, and no request was made.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{0}")]
    Prompts(#[from] ParseError),
    #[error("cannot read the prompt file {path}: {source}")]
    ReadPrompts { path: String, source: io::Error },
    /// `at` names the file and line, when the prompt came from a file.
    #[error("{}{problem}", at.as_ref().map(|a| format!("{a}: ")).unwrap_or_default())]
    Prompt { at: Option<String>, problem: String },
    #[error(
        "no API key: set the OPENAI_API_KEY environment variable or pass --api-key \
         (a --dry-run needs none)"
    )]
    MissingKey,
    #[error("{source_name} `{value}` is not an http(s) URL: {problem}")]
    BadBaseUrl {
        source_name: &'static str,
        value: String,
        problem: String,
    },
    #[error("{source_name} is empty: name an image model, e.g. {DEFAULT_MODEL}")]
    EmptyModel { source_name: &'static str },
    #[error("--reference-image {path}: {problem}")]
    Reference { path: String, problem: String },
    #[error(
        "--reference-image: {model} cannot edit images, so it takes no reference image; \
         use a GPT image model such as {DEFAULT_MODEL}"
    )]
    ModelCannotEdit { model: String },
    #[error("--reference-image is given {given} times; {model} takes at most {max}")]
    TooManyReferences {
        model: String,
        given: usize,
        max: usize,
    },
    #[error("--model {model}: {problem}")]
    Model { model: String, problem: String },
}

impl Config {
    /// Resolves the command line against the environment, reading and checking every input.
    pub fn from_cli(cli: Cli, env: &Env) -> Result<Config, ConfigError> {
        Config::from_cli_with_stdin(cli, env, &mut io::stdin())
    }

    /// As [`Config::from_cli`], with `--input -` read from `stdin`.
    pub fn from_cli_with_stdin(
        cli: Cli,
        env: &Env,
        stdin: &mut dyn Read,
    ) -> Result<Config, ConfigError> {
        let model = resolve_model(cli.model.as_deref(), env)?;
        let (source, prompts) = read_prompts(cli.prompt, cli.input.as_deref(), stdin)?;
        check_prompts(&model, &source, &prompts)?;

        let options = RequestOptions {
            size: Size::DEFAULT,
            tier: if cli.low_res {
                Tier::Standard
            } else {
                Tier::Hd
            },
        };
        model
            .check_size(&options.size)
            .map_err(|problem| ConfigError::Model {
                model: model.name().to_owned(),
                problem,
            })?;

        let references = load_references(&cli.reference_image, &model)?;
        let endpoint = resolve_endpoint(cli.api_key, cli.base_url, cli.timeout, cli.dry_run, env)?;

        Ok(Config {
            source,
            prompts,
            dst_dir: cli.dst_dir,
            count: cli.count,
            model,
            options,
            references,
            naming: match cli.naming {
                NamingArg::Seed => Naming::Seed,
                NamingArg::Legacy => Naming::Legacy,
            },
            jobs: cli.jobs.unwrap_or(DEFAULT_JOBS),
            dry_run: cli.dry_run,
            existing: if cli.from_scratch {
                Existing::Remove
            } else if cli.overwrite {
                Existing::Overwrite
            } else {
                Existing::Keep
            },
            retry: RetryPolicy::new(cli.max_retries),
            endpoint,
            verbosity: Verbosity::from_flags(cli.quiet, cli.verbose),
        })
    }
}

fn resolve_model(flag: Option<&str>, env: &Env) -> Result<Model, ConfigError> {
    let (name, source_name) = match flag {
        Some(name) => (name, "--model"),
        None => (
            env.get("GENIMG_MODEL").unwrap_or(DEFAULT_MODEL),
            "GENIMG_MODEL",
        ),
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(ConfigError::EmptyModel { source_name });
    }
    Ok(Model::lookup(name))
}

fn read_prompts(
    prompt: Option<String>,
    input: Option<&Path>,
    stdin: &mut dyn Read,
) -> Result<(PromptSource, Vec<Prompt>), ConfigError> {
    match (prompt, input) {
        (Some(text), None) => {
            let prompt = Prompt {
                name: "image".to_owned(),
                text,
                line: 0,
            };
            Ok((PromptSource::Argument, vec![prompt]))
        }
        (None, Some(path)) => {
            let (origin, bytes) = if path == Path::new("-") {
                let mut bytes = Vec::new();
                stdin
                    .read_to_end(&mut bytes)
                    .map_err(|source| ConfigError::ReadPrompts {
                        path: "<stdin>".to_owned(),
                        source,
                    })?;
                ("<stdin>".to_owned(), bytes)
            } else {
                let origin = path.display().to_string();
                let bytes = fs::read(path).map_err(|source| ConfigError::ReadPrompts {
                    path: origin.clone(),
                    source,
                })?;
                (origin, bytes)
            };
            let prompts = prompts::parse_bytes(&bytes, &origin)?;
            Ok((PromptSource::File(origin), prompts))
        }
        // clap refuses both and neither; a library caller gets the same answer.
        _ => Err(ConfigError::Prompt {
            at: None,
            problem: "give either a prompt or --input FILE, not both or neither".to_owned(),
        }),
    }
}

fn check_prompts(
    model: &Model,
    source: &PromptSource,
    prompts: &[Prompt],
) -> Result<(), ConfigError> {
    for p in prompts {
        model
            .check_prompt(&p.text)
            .map_err(|problem| match source {
                PromptSource::Argument => ConfigError::Prompt {
                    at: None,
                    problem: format!("the prompt {problem}"),
                },
                PromptSource::File(origin) => ConfigError::Prompt {
                    at: Some(format!("{origin}:{}", p.line)),
                    problem: format!("the prompt `{}` {problem}", p.name),
                },
            })?;
    }
    Ok(())
}

/// Reads each reference image once, checking it as the service would, before any request.
fn load_references(paths: &[PathBuf], model: &Model) -> Result<Arc<[Reference]>, ConfigError> {
    if paths.is_empty() {
        return Ok(Arc::from([]));
    }
    if !model.can_edit() {
        return Err(ConfigError::ModelCannotEdit {
            model: model.name().to_owned(),
        });
    }
    let max = model.info().max_references;
    if paths.len() > max {
        return Err(ConfigError::TooManyReferences {
            model: model.name().to_owned(),
            given: paths.len(),
            max,
        });
    }
    paths
        .iter()
        .map(|path| load_reference(path, model))
        .collect()
}

fn load_reference(path: &Path, model: &Model) -> Result<Reference, ConfigError> {
    let fail = |problem: String| ConfigError::Reference {
        path: path.display().to_string(),
        problem,
    };
    let meta = fs::metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => fail("no such file".to_owned()),
        _ => fail(format!("cannot be read: {e}")),
    })?;
    if meta.is_dir() {
        return Err(fail("is a directory, not an image file".to_owned()));
    }
    let limit = model.info().max_reference_bytes;
    if meta.len() >= limit {
        return Err(fail(format!(
            "is {}; {} takes reference images under {}",
            human_bytes(meta.len()),
            model.name(),
            human_bytes(limit)
        )));
    }
    let bytes = fs::read(path).map_err(|e| fail(format!("cannot be read: {e}")))?;
    let format = ImageFormat::sniff(&bytes).ok_or_else(|| {
        fail("is not a PNG, JPEG or WebP image (judged by its bytes, not its name)".to_owned())
    })?;
    let formats = model.info().reference_formats;
    if !formats.contains(&format) {
        let names: Vec<String> = formats.iter().map(ToString::to_string).collect();
        return Err(fail(format!(
            "is a {format} image; {} takes {}",
            model.name(),
            names.join(" or ")
        )));
    }
    Ok(Reference {
        path: path.to_owned(),
        format,
        sha256: crate::manifest::sha256_hex(&bytes),
        bytes: Bytes::from(bytes),
    })
}

/// Sizes as people read them: binary megabytes, written `MB` as OpenAI does.
pub fn human_bytes(n: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if n >= 1024 * 1024 {
        let mb = n as f64 / MIB;
        if mb.fract() == 0.0 {
            format!("{mb:.0} MB")
        } else {
            format!("{mb:.1} MB")
        }
    } else if n >= 1024 {
        format!("{:.0} KB", n as f64 / 1024.0)
    } else {
        format!("{n} bytes")
    }
}

fn resolve_endpoint(
    api_key: Option<SecretString>,
    base_url: Option<String>,
    timeout: u64,
    dry_run: bool,
    env: &Env,
) -> Result<Endpoint, ConfigError> {
    let api_key = api_key.or_else(|| {
        env.get("OPENAI_API_KEY")
            .map(|k| SecretString::from(k.to_owned()))
    });
    if api_key.is_none() && !dry_run {
        return Err(ConfigError::MissingKey);
    }
    let (value, source_name) = match base_url {
        Some(v) => (v, "--base-url"),
        None => match env.get("OPENAI_BASE_URL") {
            Some(v) => (v.to_owned(), "OPENAI_BASE_URL"),
            None => (DEFAULT_BASE_URL.to_owned(), "the default base URL"),
        },
    };
    let base_url = parse_base_url(&value).map_err(|problem| ConfigError::BadBaseUrl {
        source_name,
        value: value.clone(),
        problem,
    })?;
    Ok(Endpoint {
        base_url,
        api_key,
        organization: env.get("OPENAI_ORG_ID").map(str::to_owned),
        project: env.get("OPENAI_PROJECT_ID").map(str::to_owned),
        timeout: Duration::from_secs(timeout),
    })
}

fn parse_base_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value.trim()).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("the scheme is {}", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("there is no host".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("a base URL takes no query or fragment".to_owned());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::try_parse_from;
    use secrecy::ExposeSecret;
    use std::io::Cursor;

    const PNG: &[u8] =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

    fn resolve(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        resolve_stdin(args, env, "")
    }

    fn resolve_stdin(
        args: &[&str],
        env: &[(&str, &str)],
        stdin: &str,
    ) -> Result<Config, ConfigError> {
        let cli = try_parse_from(std::iter::once("genimg").chain(args.iter().copied())).unwrap();
        Config::from_cli_with_stdin(
            cli,
            &Env::from_pairs(env.iter().copied()),
            &mut Cursor::new(stdin.as_bytes().to_vec()),
        )
    }

    const KEY: (&str, &str) = ("OPENAI_API_KEY", "sk-env");

    #[test]
    fn defaults() {
        let c = resolve(&["a cat"], &[KEY]).unwrap();
        assert_eq!(c.model.name(), "gpt-image-2");
        assert_eq!(c.options.size, Size::DEFAULT);
        assert_eq!(c.options.tier, Tier::Hd);
        assert_eq!(c.jobs, 4);
        assert_eq!(c.count, 1);
        assert_eq!(c.dst_dir, PathBuf::from("."));
        assert_eq!(c.endpoint.base_url.as_str(), "https://api.openai.com/v1");
        assert_eq!(c.endpoint.timeout, Duration::from_secs(600));
        assert_eq!(c.source, PromptSource::Argument);
        assert_eq!(c.prompts[0].text, "a cat");
        assert_eq!(c.naming, Naming::Seed);
        assert_eq!(c.endpoint.api_key.unwrap().expose_secret(), "sk-env");
    }

    #[test]
    fn flags_win_over_the_environment() {
        let env = [
            KEY,
            ("OPENAI_BASE_URL", "http://env.example/v1"),
            ("GENIMG_MODEL", "gpt-image-1.5"),
        ];
        let c = resolve(&["a"], &env).unwrap();
        assert_eq!(c.model.name(), "gpt-image-1.5");
        assert_eq!(c.endpoint.base_url.as_str(), "http://env.example/v1");
        let c = resolve(
            &[
                "a",
                "--model",
                "dall-e-3",
                "--base-url",
                "http://flag.example/",
                "--api-key",
                "sk-flag",
            ],
            &env,
        )
        .unwrap();
        assert_eq!(c.model.name(), "dall-e-3");
        assert_eq!(c.endpoint.base_url.as_str(), "http://flag.example/");
        assert_eq!(c.endpoint.api_key.unwrap().expose_secret(), "sk-flag");
    }

    #[test]
    fn org_and_project_come_from_the_environment() {
        let c = resolve(
            &["a"],
            &[
                KEY,
                ("OPENAI_ORG_ID", "org-1"),
                ("OPENAI_PROJECT_ID", "proj-2"),
            ],
        )
        .unwrap();
        assert_eq!(c.endpoint.organization.as_deref(), Some("org-1"));
        assert_eq!(c.endpoint.project.as_deref(), Some("proj-2"));
    }

    #[test]
    fn a_missing_key_is_an_error_naming_the_variable_except_in_a_dry_run() {
        let err = resolve(&["a"], &[]).unwrap_err();
        assert!(err.to_string().contains("OPENAI_API_KEY"), "{err}");
        assert!(resolve(&["a"], &[("OPENAI_API_KEY", "  ")]).is_err());
        let c = resolve(&["a", "--dry-run"], &[]).unwrap();
        assert!(c.endpoint.api_key.is_none());
    }

    #[test]
    fn low_res_and_jobs() {
        let c = resolve(&["a", "--low_res", "-j", "9"], &[KEY]).unwrap();
        assert_eq!(c.options.tier, Tier::Standard);
        assert_eq!(c.jobs, 9);
        let c = resolve(&["a", "--parallel"], &[KEY]).unwrap();
        assert_eq!(c.jobs, DEFAULT_JOBS);
    }

    #[test]
    fn verbosity_flags() {
        let v = |args: &[&str]| resolve(args, &[KEY]).unwrap().verbosity;
        assert_eq!(v(&["a"]), Verbosity::Normal);
        assert_eq!(v(&["a", "-q"]), Verbosity::Quiet);
        assert_eq!(v(&["a", "-v"]), Verbosity::Verbose);
        assert_eq!(v(&["a", "-vv"]), Verbosity::Debug);
        assert_eq!(v(&["a", "-vvv"]), Verbosity::Debug);
    }

    #[test]
    fn bad_base_urls_name_their_source() {
        let err = resolve(&["a", "--base-url", "ftp://x"], &[KEY]).unwrap_err();
        assert!(err.to_string().starts_with("--base-url `ftp://x`"), "{err}");
        let err = resolve(&["a"], &[KEY, ("OPENAI_BASE_URL", "not a url")]).unwrap_err();
        assert!(err.to_string().starts_with("OPENAI_BASE_URL"), "{err}");
    }

    #[test]
    fn an_empty_model_is_refused() {
        let err = resolve(&["a", "--model", " "], &[KEY]).unwrap_err();
        assert!(err.to_string().starts_with("--model is empty"), "{err}");
    }

    #[test]
    fn prompts_from_stdin() {
        let c = resolve_stdin(&["--input", "-"], &[KEY], "# a\nx\n# b\ny\n").unwrap();
        assert_eq!(c.source, PromptSource::File("<stdin>".into()));
        assert_eq!(c.prompts.len(), 2);
        let err = resolve_stdin(&["--input", "-"], &[KEY], "oops\n# a\nx").unwrap_err();
        assert_eq!(
            err.to_string(),
            "<stdin>:1: text before the first header; every prompt starts with a line `# name`"
        );
    }

    #[test]
    fn a_missing_prompt_file_is_named() {
        let err = resolve(&["--input", "/nonexistent/prompts.txt"], &[KEY]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read the prompt file /nonexistent/prompts.txt"),
            "{err}"
        );
    }

    #[test]
    fn prompts_too_long_for_the_model_name_the_line() {
        let text = format!("# short\nok\n\n# long\n{}\n", "x".repeat(4001));
        let err =
            resolve_stdin(&["--input", "-", "--model", "dall-e-3"], &[KEY], &text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "<stdin>:4: the prompt `long` has 4001 characters; dall-e-3 takes at most 4000"
        );
        let err = resolve(&["--model", "dall-e-3", &"y".repeat(4001)], &[KEY]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the prompt has 4001 characters"),
            "{err}"
        );
        let err = resolve(&[" "], &[KEY]).unwrap_err();
        assert_eq!(err.to_string(), "the prompt is empty");
    }

    fn temp_file(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, bytes).unwrap();
        f
    }

    #[test]
    fn reference_images_are_read_and_sniffed() {
        let f = temp_file(PNG);
        let path = f.path().to_str().unwrap();
        let c = resolve(&["a", "--reference_image", path], &[KEY]).unwrap();
        assert_eq!(c.references.len(), 1);
        assert_eq!(c.references[0].format, ImageFormat::Png);
        assert_eq!(&c.references[0].bytes[..], PNG);
    }

    #[test]
    fn bad_reference_images_are_named() {
        let text = temp_file(b"just some text, not an image at all");
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("/nonexistent/ref.png".to_owned(), "no such file"),
            (
                text.path().display().to_string(),
                "is not a PNG, JPEG or WebP image",
            ),
            (dir.path().display().to_string(), "is a directory"),
        ];
        for (path, problem) in cases {
            let err = resolve(&["a", "--reference-image", &path], &[KEY]).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!("--reference-image {path}: ")),
                "{msg}"
            );
            assert!(msg.contains(problem), "{msg}");
        }
    }

    #[test]
    fn oversized_reference_images_are_refused_before_reading() {
        let f = temp_file(PNG);
        f.as_file().set_len(50 * 1024 * 1024).unwrap();
        let path = f.path().to_str().unwrap();
        let err = resolve(&["a", "--reference-image", path], &[KEY]).unwrap_err();
        assert!(
            err.to_string()
                .contains("is 50 MB; gpt-image-2 takes reference images under 50 MB"),
            "{err}"
        );
    }

    #[test]
    fn a_model_that_cannot_edit_refuses_references() {
        let f = temp_file(PNG);
        let path = f.path().to_str().unwrap();
        let err = resolve(
            &["a", "--model", "dall-e-3", "--reference-image", path],
            &[KEY],
        )
        .unwrap_err();
        assert!(err.to_string().contains("dall-e-3 cannot edit"), "{err}");
        let err = resolve(
            &[
                "a",
                "--model",
                "dall-e-2",
                "--reference-image",
                path,
                "--reference-image",
                path,
            ],
            &[KEY],
        )
        .unwrap_err();
        assert!(err.to_string().contains("at most 1"), "{err}");
    }

    #[test]
    fn the_environment_debug_shows_no_values() {
        let env = Env::from_pairs([("OPENAI_API_KEY", "sk-hidden")]);
        assert!(!format!("{env:?}").contains("sk-hidden"));
        let c = resolve(&["a", "--api-key", "sk-hidden"], &[]).unwrap();
        assert!(!format!("{c:?}").contains("sk-hidden"));
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(50 * 1024 * 1024), "50 MB");
        assert_eq!(human_bytes(52_428_801), "50.0 MB");
        assert_eq!(human_bytes(2048), "2 KB");
        assert_eq!(human_bytes(12), "12 bytes");
    }
}
