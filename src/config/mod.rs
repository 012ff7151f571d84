//! Resolved, validated settings: the rest of genimg sees only [`Config`], never clap.
//!
//! Everything a user can get wrong is checked here, before any request: the prompt file, the
//! reference images, the model's limits, the key and the endpoint. Each error names the flag,
//! variable, file or line at fault.

pub mod file;
pub mod input;
pub mod options;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use thiserror::Error;
use url::Url;

use crate::catalog::{DEFAULT_MODEL, Model, ProviderId};
use crate::cli::{Cli, Command, NamingArg};
use crate::prompts::{self, ParseError, Prompt};
use crate::provider::{ClientConfig, Provider, RetryPolicy, Service};
use file::Loaded;
use options::{Choices, Given, ReferenceCache, Settings, Source};

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_JOBS: usize = 4;
/// `--max-wait`'s default: a wait the service asks for up to this long is sat out.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(15 * 60);

/// The file naming scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    Seed,
    Legacy,
}

/// What to do with images already in the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Existing {
    /// Keep them; make only the missing ones (the default: a re-run resumes).
    #[default]
    Keep,
    /// Make them again (`--overwrite`); each goes to the trash only once its new image is
    /// about to take its name.
    Overwrite,
    /// Move this run's earlier images and their manifest records to the trash first
    /// (`--from-scratch`).
    Remove,
    /// Make again only the images whose request changed since (`--remake-stale`).
    RemakeStale,
}

/// What genimg was asked to do: a run (a dry run too, and a `--batch` run), or one of the
/// subcommands: `batch` reaches the service with a key, the others need none.
#[derive(Debug)]
pub enum Invocation {
    Run(Box<Config>),
    /// `genimg models`: the model table.
    Models,
    /// `genimg gallery DIR`: rebuild DIR's gallery from its manifest.
    Gallery {
        dir: PathBuf,
        /// `--serve`: serve it on 127.0.0.1 until Ctrl-C, saving picks to `DIR/picks.txt`.
        serve: bool,
    },
    /// `genimg completions SHELL`.
    Completions {
        shell: clap_complete::Shell,
    },
    /// `genimg man`.
    Man,
    /// `genimg batch status|collect|cancel DIR`.
    Batch(Box<BatchConfig>),
    /// `genimg trash list|empty DIR`.
    Trash {
        dir: PathBuf,
        command: TrashCommand,
    },
}

/// What `genimg trash` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrashCommand {
    List,
    Empty,
}

/// What `genimg batch` was asked, and how to reach the service.
#[derive(Debug)]
pub struct BatchConfig {
    pub command: BatchCommand,
    pub dir: PathBuf,
    pub endpoint: Endpoint,
    /// Gemini's, for its batches.
    pub gemini: Endpoint,
    /// The first interval between polls.
    pub poll_interval: Duration,
    pub verbosity: Verbosity,
}

/// The three things `genimg batch` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchCommand {
    Status,
    /// Collect what is over; with `wait`, wait for the rest too.
    Collect {
        wait: bool,
    },
    Cancel,
}

/// The first interval between two polls of a batch, unless `--poll-interval` says.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(30);

impl Invocation {
    /// What the command line asks, resolved against the environment and the config file.
    pub fn from_cli(cli: Cli, env: &Env) -> Result<Invocation, ConfigError> {
        Invocation::from_cli_with_stdin(cli, env, &mut io::stdin())
    }

    /// As [`Invocation::from_cli`], with `--input -` read from `stdin`.
    pub fn from_cli_with_stdin(
        cli: Cli,
        env: &Env,
        stdin: &mut dyn Read,
    ) -> Result<Invocation, ConfigError> {
        Ok(match cli.command {
            Some(Command::Models) => Invocation::Models,
            Some(Command::Gallery { dir, serve }) => Invocation::Gallery { dir, serve },
            Some(Command::Completions { shell }) => Invocation::Completions { shell },
            Some(Command::Man) => Invocation::Man,
            Some(Command::Trash { action }) => match action {
                crate::cli::TrashAction::List { dir } => Invocation::Trash {
                    dir,
                    command: TrashCommand::List,
                },
                crate::cli::TrashAction::Empty { dir } => Invocation::Trash {
                    dir,
                    command: TrashCommand::Empty,
                },
            },
            Some(Command::Batch { action }) => {
                Invocation::Batch(Box::new(BatchConfig::from_action(action, env)?))
            }
            None => Invocation::Run(Box::new(Config::from_cli_with_stdin(cli, env, stdin)?)),
        })
    }
}

impl BatchConfig {
    /// Where requests for `provider`'s batches go.
    pub fn endpoint_for(&self, provider: ProviderId) -> &Endpoint {
        match provider {
            ProviderId::OpenAi => &self.endpoint,
            ProviderId::Gemini => &self.gemini,
        }
    }

    fn from_action(action: crate::cli::BatchAction, env: &Env) -> Result<BatchConfig, ConfigError> {
        let loaded = Loaded::from_env(env)?;
        let command = match &action {
            crate::cli::BatchAction::Status(_) => BatchCommand::Status,
            crate::cli::BatchAction::Collect { wait, .. } => BatchCommand::Collect { wait: *wait },
            crate::cli::BatchAction::Cancel(_) => BatchCommand::Cancel,
        };
        let args = action.args().clone();
        // The endpoint is resolved as a run's is, from these flags, the file and the
        // environment.
        let mut cli = crate::cli::try_parse_from(["genimg"]).expect("no arguments parse");
        cli.api_key = args.api_key;
        cli.base_url = args.base_url;
        // A key may be missing here: `status` shows the ledger without one; the others
        // say so before any request.
        cli.gemini_api_key = args.gemini_api_key;
        cli.gemini_base_url = args.gemini_base_url;
        let endpoint = resolve_endpoint(&cli, &loaded, true, env)?;
        let gemini = resolve_gemini(&cli, &loaded, true, env, endpoint.timeout)?;
        Ok(BatchConfig {
            command,
            dir: args.dir,
            endpoint,
            gemini,
            poll_interval: args.poll_interval.unwrap_or(DEFAULT_POLL_INTERVAL),
            verbosity: Verbosity::from_flags(
                loaded.file.quiet.unwrap_or(false),
                loaded.file.verbose.unwrap_or(0),
            ),
        })
    }
}

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
        "OPENAI_API_VERSION",
        "AZURE_OPENAI_ENDPOINT",
        "AZURE_OPENAI_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "GEMINI_BASE_URL",
        "GENIMG_MODEL",
        "GENIMG_CONFIG",
        "XDG_CONFIG_HOME",
        "HOME",
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
    pub prompts: Vec<PromptConfig>,
    pub dst_dir: PathBuf,
    pub naming: Naming,
    pub jobs: usize,
    pub dry_run: bool,
    pub existing: Existing,
    pub retry: RetryPolicy,
    /// `--max-cost`, in US dollars.
    pub max_cost: Option<f64>,
    /// `--ipm`: images (requests) per minute at most.
    pub ipm: Option<std::num::NonZeroU32>,
    /// `--max-wait`: the longest wait beyond 120 s the run sits out when the service asks
    /// for one; a longer one stops it.
    pub max_wait: Duration,
    /// OpenAI's (or an OpenAI-compatible service's, or Azure's).
    pub endpoint: Endpoint,
    /// Google's Gemini API.
    pub gemini: Endpoint,
    pub verbosity: Verbosity,
    /// Said before the run starts: models retired or about to be.
    pub warnings: Vec<String>,
    /// Write `index.html` after the run.
    pub gallery: bool,
    /// Print the run as one JSON document on stdout.
    pub json: bool,
    /// `--batch`: through the Batch API.
    pub batch: bool,
    /// With `--batch`: wait for the batches and collect them (not `--no-wait`).
    pub wait: bool,
    /// With `--batch`: the first interval between polls.
    pub poll_interval: Duration,
    /// `--name`: the prompt given as an argument has a name of its own.
    pub named: bool,
    /// `--only`: the patterns that pick the prompts of the run; empty: all.
    pub only: Vec<String>,
}

/// One prompt with its settings, checked against its model.
#[derive(Debug, Clone)]
pub struct PromptConfig {
    pub name: String,
    /// The header's line in the prompt file; 0 for a prompt on the command line.
    pub line: usize,
    /// The text sent: the style's preamble, if any, then the prompt.
    pub text: String,
    /// The prompt as written, without the style: what listings show of it.
    pub written: String,
    pub settings: Settings,
    /// The `## Title` section of the prompt file it is in, if any.
    pub section: Option<String>,
}

impl Config {
    /// Where requests for `provider`'s models go.
    pub fn endpoint_for(&self, provider: ProviderId) -> &Endpoint {
        match provider {
            ProviderId::OpenAi => &self.endpoint,
            ProviderId::Gemini => &self.gemini,
        }
    }

    /// The providers the run's prompts use, in a fixed order.
    pub fn providers(&self) -> Vec<ProviderId> {
        let mut used: Vec<ProviderId> = self
            .prompts
            .iter()
            .map(|p| p.settings.model.provider())
            .collect();
        used.sort();
        used.dedup();
        used
    }

    /// The distinct models of the run, in order of first use, spelled so that
    /// [`Model::lookup`] finds each again.
    pub fn model_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for p in &self.prompts {
            let name = p.settings.model.spelled();
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// The largest count of any prompt: it sets the width of image numbers.
    pub fn max_count(&self) -> u32 {
        self.prompts
            .iter()
            .map(|p| p.settings.count)
            .max()
            .unwrap_or(1)
    }
}

/// How to reach a provider. `api_key` is `None` only in a dry run, or for a provider the run
/// does not use.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The API root (`https://api.openai.com/v1`), or for Azure the resource's URL.
    pub base_url: Url,
    pub provider: Provider,
    pub api_key: Option<SecretString>,
    pub organization: Option<String>,
    pub project: Option<String>,
    pub timeout: Duration,
}

impl Endpoint {
    /// The provider that answers, in its dialect.
    pub fn provider(&self) -> Provider {
        self.provider.clone()
    }

    /// The client settings, if there is a key.
    pub fn client_config(&self) -> Option<ClientConfig> {
        Some(ClientConfig {
            base_url: self.base_url.clone(),
            provider: self.provider(),
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
    ReadPrompts {
        path: String,
        source: input::ReadLimitError,
    },
    /// `at` names the file and line, when the prompt came from a file.
    #[error("{}{problem}", at.as_ref().map(|a| format!("{a}: ")).unwrap_or_default())]
    Prompt { at: Option<String>, problem: String },
    #[error("no API key: {hint} (a --dry-run needs none)")]
    MissingKey { hint: &'static str },
    #[error("{source_name} `{value}` is not an http(s) URL: {problem}")]
    BadBaseUrl {
        source_name: String,
        value: String,
        problem: String,
    },
    #[error("{place} is empty: name an image model, e.g. {DEFAULT_MODEL}")]
    EmptyModel { place: String },
    /// An option's value, shown where it was given, and why it cannot be used.
    #[error("{given}: {problem}")]
    Option { given: String, problem: String },
    #[error(
        "{place}: {model} cannot edit images, so it takes no reference image; use a GPT image \
         model such as {DEFAULT_MODEL}"
    )]
    ModelCannotEdit { place: String, model: String },
    #[error("{place} is given {given} times; {model} takes at most {max}")]
    TooManyReferences {
        place: String,
        model: String,
        given: usize,
        max: usize,
    },
    #[error("config file {path}: {problem}")]
    ConfigFile { path: String, problem: String },
}

/// A value from the command line, else the config file (read with the flag's parser, and
/// only when no flag overrides it), else none; with where it came from.
fn pick<T>(
    flag: Option<T>,
    flag_name: &'static str,
    file: Option<String>,
    parse: impl Fn(&str) -> Result<T, String>,
    loaded: &Loaded,
    key: &'static str,
) -> Result<Option<Given<T>>, ConfigError> {
    if let Some(value) = flag {
        return Ok(Some(Given {
            value,
            from: Source::Flag(flag_name),
        }));
    }
    Ok(from_file(file, parse, loaded, key)?.map(|value| Given {
        value,
        from: file_source(loaded, key),
    }))
}

/// Parses a config file's text value with a flag's parser, naming the file and key.
fn from_file<T>(
    value: Option<String>,
    parse: impl Fn(&str) -> Result<T, String>,
    loaded: &Loaded,
    key: &'static str,
) -> Result<Option<T>, ConfigError> {
    value
        .map(|v| {
            parse(&v).map_err(|problem| ConfigError::Option {
                given: Source::File {
                    path: loaded.path.clone().unwrap_or_default(),
                    key: key.to_owned(),
                }
                .show(&v),
                problem,
            })
        })
        .transpose()
}

impl Config {
    /// Resolves the command line against the environment and the config file, reading and
    /// checking every input.
    pub fn from_cli(cli: Cli, env: &Env) -> Result<Config, ConfigError> {
        Config::from_cli_with_stdin(cli, env, &mut io::stdin())
    }

    /// As [`Config::from_cli`], with `--input -` read from `stdin`.
    pub fn from_cli_with_stdin(
        cli: Cli,
        env: &Env,
        stdin: &mut dyn Read,
    ) -> Result<Config, ConfigError> {
        let loaded = Loaded::from_env(env)?;
        let verbosity = Verbosity::from_flags(
            cli.quiet || loaded.file.quiet.unwrap_or(false),
            if cli.verbose > 0 {
                cli.verbose
            } else {
                loaded.file.verbose.unwrap_or(0)
            },
        );
        let choices = run_choices(&cli, &loaded, env)?;
        let f = &loaded.file;
        let dry_run = cli.dry_run || f.dry_run.unwrap_or(false);

        let input = cli.input.clone().or_else(|| {
            // A file's `input` is a default: a prompt on the command line replaces it.
            cli.prompt.is_none().then(|| f.input.clone()).flatten()
        });
        let (source, mut prompts) = read_prompts(cli.prompt.clone(), input.as_deref(), stdin)?;
        // A one-off prompt with a name is named as a prompt of a file is.
        if let Some(name) = &cli.name {
            crate::prompts::check_name(name).map_err(|kind| ConfigError::Option {
                given: format!("--name {name}"),
                problem: kind.to_string(),
            })?;
            if let Some(p) = prompts.first_mut() {
                p.name = name.clone();
            }
        }
        let base = match (&source, &input) {
            (PromptSource::File(_), Some(path)) if path != Path::new("-") => {
                path.parent().map(Path::to_owned).unwrap_or_default()
            }
            _ => PathBuf::new(),
        };
        let mut cache = ReferenceCache::default();
        let mut resolved = Vec::with_capacity(prompts.len());
        for p in prompts {
            let at = match &source {
                PromptSource::File(origin) => format!("{origin}:{}", p.line),
                PromptSource::Argument => String::new(),
            };
            let choices = choices.with_header(&p.options, &at, &base)?;
            let settings = choices
                .resolve(&mut cache)
                .map_err(|e| for_prompt(e, &at, &p))?;
            let text = settings.text_of(&p.text);
            check_prompt(&settings.model, &source, &p, &text)?;
            resolved.push(PromptConfig {
                name: p.name,
                line: p.line,
                text,
                written: p.text,
                settings,
                section: p.section,
            });
        }

        // Each --only pattern must pick a prompt: a typo would silently make nothing.
        if !cli.only.is_empty() && matches!(source, PromptSource::Argument) {
            return Err(ConfigError::Option {
                given: format!("--only {}", cli.only.join(",")),
                problem: "picks prompts of a prompt file (--input); a prompt given as an \
                          argument is the only one"
                    .to_owned(),
            });
        }
        for pattern in &cli.only {
            if !resolved
                .iter()
                .any(|p| crate::plan::wildcard(pattern, &p.name))
            {
                let names: Vec<&str> = resolved.iter().map(|p| p.name.as_str()).take(8).collect();
                return Err(ConfigError::Option {
                    given: format!("--only {pattern}"),
                    problem: format!(
                        "matches no prompt name (the prompts: {}{})",
                        names.join(", "),
                        if resolved.len() > names.len() {
                            ", ..."
                        } else {
                            ""
                        }
                    ),
                });
            }
        }
        let today = jiff::tz::Offset::UTC
            .to_datetime(jiff::Timestamp::now())
            .date();
        let mut warnings = Vec::new();
        for p in &resolved {
            let model = &p.settings.model;
            for w in [
                model.unknown_model_warning(),
                model.retirement_warning(today),
            ]
            .into_iter()
            .flatten()
            {
                if !warnings.contains(&w) {
                    warnings.push(w);
                }
            }
        }

        if cli.batch
            && let Some(p) = resolved.iter().find(|p| p.settings.options.stream)
        {
            return Err(ConfigError::Option {
                given: "--batch".to_owned(),
                problem: format!(
                    "the prompt `{}` streams (--stream, --partial-images): streaming is for \
                     live requests; drop one or the other",
                    p.name
                ),
            });
        }
        // A key is needed for each provider the run's prompts use, and checked before any
        // request to either.
        let uses = |id: ProviderId| resolved.iter().any(|p| p.settings.model.provider() == id);
        let endpoint = resolve_endpoint(&cli, &loaded, dry_run || !uses(ProviderId::OpenAi), env)?;
        let gemini = resolve_gemini(
            &cli,
            &loaded,
            dry_run || !uses(ProviderId::Gemini),
            env,
            endpoint.timeout,
        )?;
        if cli.gemini_api_key.is_none()
            && f.gemini_api_key.is_some()
            && let Some(path) = &loaded.path
            && readable_by_others(Path::new(path))
        {
            warnings.push(format!(
                "{path} holds gemini-api-key and other users can read it: chmod 600 {path}"
            ));
        }
        let naming = match cli.naming {
            Some(n) => n,
            None => from_file(
                f.naming.clone(),
                |v| match v {
                    "seed" => Ok(NamingArg::Seed),
                    "legacy" => Ok(NamingArg::Legacy),
                    _ => Err(format!("`{v}` is not one of seed, legacy")),
                },
                &loaded,
                "naming",
            )?
            .unwrap_or(NamingArg::Seed),
        };
        let from_scratch = cli.from_scratch || f.from_scratch.unwrap_or(false);
        let overwrite = cli.overwrite || f.overwrite.unwrap_or(false);
        Ok(Config {
            source,
            prompts: resolved,
            dst_dir: cli
                .dst_dir
                .or_else(|| f.dst_dir.clone())
                .unwrap_or_else(|| PathBuf::from(".")),
            naming: match naming {
                NamingArg::Seed => Naming::Seed,
                NamingArg::Legacy => Naming::Legacy,
            },
            jobs: match cli.jobs {
                Some(jobs) => jobs,
                None => from_file(
                    f.jobs.map(|n| n.to_string()),
                    crate::values::at_least_one,
                    &loaded,
                    "jobs",
                )?
                .unwrap_or(DEFAULT_JOBS),
            },
            dry_run,
            existing: if from_scratch {
                Existing::Remove
            } else if overwrite {
                Existing::Overwrite
            } else if cli.remake_stale {
                Existing::RemakeStale
            } else {
                Existing::Keep
            },
            retry: RetryPolicy::new(
                cli.max_retries
                    .or(f.max_retries)
                    .unwrap_or(RetryPolicy::DEFAULT_MAX_RETRIES),
            ),
            max_cost: match cli.max_cost {
                Some(max) => Some(max),
                None => from_file(
                    f.max_cost.map(|n| n.to_string()),
                    crate::values::parse_usd,
                    &loaded,
                    "max-cost",
                )?,
            },
            ipm: match cli.ipm {
                Some(ipm) => std::num::NonZeroU32::new(ipm),
                None => from_file(
                    f.ipm.map(|n| n.to_string()),
                    crate::values::at_least_one,
                    &loaded,
                    "ipm",
                )?
                .and_then(std::num::NonZeroU32::new),
            },
            max_wait: match cli.max_wait {
                Some(wait) => wait,
                None => from_file(
                    f.max_wait.clone(),
                    crate::values::parse_wait,
                    &loaded,
                    "max-wait",
                )?
                .unwrap_or(DEFAULT_MAX_WAIT),
            },
            endpoint,
            gemini,
            verbosity,
            warnings,
            gallery: !cli.no_gallery,
            batch: cli.batch,
            wait: !cli.no_wait,
            poll_interval: cli.poll_interval.unwrap_or(DEFAULT_POLL_INTERVAL),
            named: cli.name.is_some(),
            only: cli.only.clone(),
            json: cli.json,
        })
    }
}

pub const DEFAULT_TIMEOUT_SECS: u64 = 600;

/// The options every prompt starts from: flags over the config file over the defaults.
fn run_choices(cli: &Cli, loaded: &Loaded, env: &Env) -> Result<Choices, ConfigError> {
    let f = &loaded.file;
    let model = match pick(
        cli.model.clone(),
        "--model",
        f.model.clone(),
        |v| Ok(v.to_owned()),
        loaded,
        "model",
    )? {
        Some(m) => Some(m),
        None => env.get("GENIMG_MODEL").map(|m| Given {
            value: m.to_owned(),
            from: Source::Flag("GENIMG_MODEL"),
        }),
    };
    // The environment variable may be empty on purpose; an empty flag is a mistake.
    let model = match model {
        Some(m) if m.value.trim().is_empty() => {
            return Err(ConfigError::EmptyModel {
                place: m.from.place(),
            });
        }
        other => other,
    };
    let count = pick(
        cli.count,
        "--count",
        f.count.map(|n| n.to_string()),
        crate::values::parse_count,
        loaded,
        "count",
    )?;
    let style = match &cli.style {
        Some(s) => Some(Given {
            value: options::read_style(s, Path::new("")).map_err(|problem| {
                ConfigError::Option {
                    given: Source::Flag("--style").show(s),
                    problem,
                }
            })?,
            from: Source::Flag("--style"),
        }),
        None => match &f.style {
            Some(s) => Some(Given {
                value: options::read_style(s, &loaded.dir).map_err(|problem| {
                    ConfigError::Option {
                        given: file_source(loaded, "style").show(s),
                        problem,
                    }
                })?,
                from: file_source(loaded, "style"),
            }),
            None => None,
        },
    };
    let references = if !cli.reference_image.is_empty() {
        Some(Given {
            value: cli.reference_image.clone(),
            from: Source::Flag("--reference-image"),
        })
    } else {
        f.reference_image.as_ref().map(|paths| Given {
            value: paths.iter().map(|p| loaded.dir.join(p)).collect(),
            from: file_source(loaded, "reference-image"),
        })
    };
    let mask = match &cli.mask {
        Some(path) => Some(Given {
            value: path.clone(),
            from: Source::Flag("--mask"),
        }),
        None => f.mask.as_ref().map(|path| Given {
            value: loaded.dir.join(path),
            from: file_source(loaded, "mask"),
        }),
    };
    Ok(Choices {
        model,
        count,
        low_res: cli.low_res || f.low_res.unwrap_or(false),
        size: pick(
            cli.size,
            "--size",
            f.size.clone(),
            |v| v.parse(),
            loaded,
            "size",
        )?,
        quality: pick(
            cli.quality,
            "--quality",
            // `--low-res` on the command line wins over a quality the file names.
            f.quality.clone().filter(|_| !cli.low_res),
            crate::values::parse_quality,
            loaded,
            "quality",
        )?,
        format: pick(
            cli.format,
            "--format",
            f.format.clone(),
            crate::values::parse_format,
            loaded,
            "format",
        )?,
        compression: pick(
            cli.compression,
            "--compression",
            f.compression.map(|c| c.to_string()),
            crate::values::parse_compression,
            loaded,
            "compression",
        )?,
        background: pick(
            cli.background,
            "--background",
            f.background.clone(),
            crate::values::parse_background,
            loaded,
            "background",
        )?,
        moderation: pick(
            cli.moderation,
            "--moderation",
            f.moderation.clone(),
            crate::values::parse_moderation,
            loaded,
            "moderation",
        )?,
        input_fidelity: pick(
            cli.input_fidelity,
            "--input-fidelity",
            f.input_fidelity.clone(),
            crate::values::parse_fidelity,
            loaded,
            "input-fidelity",
        )?,
        complexity: pick(
            cli.complexity,
            "--complexity",
            f.complexity.clone(),
            crate::values::parse_complexity,
            loaded,
            "complexity",
        )?,
        stream: (cli.stream || f.stream.unwrap_or(false)).then(|| Given {
            value: true,
            from: if cli.stream {
                Source::Flag("--stream")
            } else {
                file_source(loaded, "stream")
            },
        }),
        partial_images: pick(
            cli.partial_images,
            "--partial-images",
            f.partial_images.map(|n| n.to_string()),
            crate::values::parse_partial_images,
            loaded,
            "partial-images",
        )?,
        aspect_ratio: pick(
            cli.aspect_ratio,
            "--aspect-ratio",
            f.aspect_ratio.clone(),
            crate::values::parse_aspect_ratio,
            loaded,
            "aspect-ratio",
        )?,
        image_size: pick(
            cli.image_size,
            "--image-size",
            f.image_size.clone(),
            crate::values::parse_image_size,
            loaded,
            "image-size",
        )?,
        style,
        references,
        params: run_params(cli, loaded)?,
        mask,
    })
}

/// The params every prompt starts from: the config file's `[param]` table, each key a flag
/// gives replaced by the flag's value.
fn run_params(
    cli: &Cli,
    loaded: &Loaded,
) -> Result<BTreeMap<String, Given<options::Param>>, ConfigError> {
    let mut params = BTreeMap::new();
    for (key, value) in loaded.file.param.iter().flatten() {
        let from = file_source(loaded, &format!("param.{key}"));
        crate::values::check_param_key(key).map_err(|problem| ConfigError::Option {
            given: from.place(),
            problem,
        })?;
        params.insert(
            key.clone(),
            Given {
                value: options::Param::typed(value.clone()),
                from,
            },
        );
    }
    for (key, text) in &cli.param {
        params.insert(
            key.clone(),
            Given {
                value: options::Param::read(text),
                from: Source::Flag("--param"),
            },
        );
    }
    Ok(params)
}

fn file_source(loaded: &Loaded, key: &str) -> Source {
    Source::File {
        path: loaded.path.clone().unwrap_or_default(),
        key: key.to_owned(),
    }
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
                options: Vec::new(),
                section: None,
            };
            Ok((PromptSource::Argument, vec![prompt]))
        }
        (None, Some(path)) => {
            let (origin, bytes) = if path == Path::new("-") {
                let bytes =
                    input::read_capped(stdin, input::PROMPT_FILE_CAP).map_err(|source| {
                        ConfigError::ReadPrompts {
                            path: "<stdin>".to_owned(),
                            source,
                        }
                    })?;
                ("<stdin>".to_owned(), bytes)
            } else {
                let origin = path.display().to_string();
                let bytes =
                    input::read_bounded(path, input::PROMPT_FILE_CAP).map_err(|source| {
                        ConfigError::ReadPrompts {
                            path: origin.clone(),
                            source,
                        }
                    })?;
                (origin, bytes)
            };
            let prompts = prompts::parse_bytes(&bytes, &origin)?;
            Ok((PromptSource::File(origin), prompts))
        }
        (Some(_), Some(_)) => Err(ConfigError::Prompt {
            at: None,
            problem: "give either a prompt or --input FILE, not both".to_owned(),
        }),
        (None, None) => Err(ConfigError::Prompt {
            at: None,
            problem: "nothing to make: give a prompt, or --input FILE for a file of named \
                      prompts (see --help)"
                .to_owned(),
        }),
    }
}

/// Names the prompt when its header options took part in an error a flag or the config file
/// is blamed for: `--format webp` is fine, but not with the `model=dall-e-3` of line 7.
fn for_prompt(error: ConfigError, at: &str, prompt: &Prompt) -> ConfigError {
    let text = error.to_string();
    if prompt.options.is_empty() || at.is_empty() || text.starts_with(at) {
        return error;
    }
    ConfigError::Prompt {
        at: Some(at.to_owned()),
        problem: format!("for the prompt `{}`: {text}", prompt.name),
    }
}

/// Checks the text a prompt sends (style included) against its model.
fn check_prompt(
    model: &Model,
    source: &PromptSource,
    p: &Prompt,
    text: &str,
) -> Result<(), ConfigError> {
    model.check_prompt(text).map_err(|problem| match source {
        PromptSource::Argument => ConfigError::Prompt {
            at: None,
            problem: format!("the prompt {problem}"),
        },
        PromptSource::File(origin) => ConfigError::Prompt {
            at: Some(format!("{origin}:{}", p.line)),
            problem: format!("the prompt `{}` {problem}", p.name),
        },
    })
}

/// Where requests go and with what key: an OpenAI-compatible API root, or Azure OpenAI.
fn resolve_endpoint(
    cli: &Cli,
    loaded: &Loaded,
    dry_run: bool,
    env: &Env,
) -> Result<Endpoint, ConfigError> {
    let f = &loaded.file;
    let file_name = |key: &str| format!("{}: {key}", loaded.path.clone().unwrap_or_default());
    let timeout = match cli.timeout {
        Some(secs) => secs,
        None => from_file(
            f.timeout.map(|n| n.to_string()),
            crate::values::at_least_one,
            loaded,
            "timeout",
        )?
        .unwrap_or(DEFAULT_TIMEOUT_SECS),
    };
    // Flags first, then the file, then the environment; a base URL and an Azure endpoint
    // from the same layer cannot both be meant.
    let azure = match (&cli.base_url, &cli.azure_endpoint) {
        (Some(_), _) => None,
        (None, Some(a)) => Some((a.clone(), "--azure-endpoint".to_owned())),
        (None, None) => match (&f.base_url, &f.azure_endpoint) {
            (Some(_), _) => None,
            (None, Some(a)) => Some((a.clone(), file_name("azure-endpoint"))),
            (None, None) => env
                .get("AZURE_OPENAI_ENDPOINT")
                .filter(|_| env.get("OPENAI_BASE_URL").is_none())
                .map(|a| (a.to_owned(), "AZURE_OPENAI_ENDPOINT".to_owned())),
        },
    };
    let (value, source_name, service) = match azure {
        Some((value, source_name)) => {
            let api_version = cli
                .api_version
                .clone()
                .or_else(|| f.api_version.clone())
                .or_else(|| env.get("OPENAI_API_VERSION").map(str::to_owned));
            (value, source_name, Service::Azure { api_version })
        }
        None => match (&cli.base_url, &f.base_url, env.get("OPENAI_BASE_URL")) {
            (Some(v), _, _) => (v.clone(), "--base-url".to_owned(), Service::OpenAi),
            (None, Some(v), _) => (v.clone(), file_name("base-url"), Service::OpenAi),
            (None, None, Some(v)) => (v.to_owned(), "OPENAI_BASE_URL".to_owned(), Service::OpenAi),
            (None, None, None) => (
                DEFAULT_BASE_URL.to_owned(),
                "the default base URL".to_owned(),
                Service::OpenAi,
            ),
        },
    };
    let base_url = parse_base_url(&value).map_err(|problem| ConfigError::BadBaseUrl {
        source_name,
        value: crate::units::shown_url_text(&value),
        problem,
    })?;
    let is_azure = matches!(service, Service::Azure { .. });
    let key_var = if is_azure {
        "AZURE_OPENAI_API_KEY"
    } else {
        "OPENAI_API_KEY"
    };
    let api_key = cli
        .api_key
        .clone()
        .or_else(|| f.api_key.clone())
        .or_else(|| env.get(key_var).map(|k| SecretString::from(k.to_owned())));
    if api_key.is_none() && !dry_run {
        return Err(ConfigError::MissingKey {
            hint: if is_azure {
                "set the AZURE_OPENAI_API_KEY environment variable or pass --api-key"
            } else {
                "set the OPENAI_API_KEY environment variable or pass --api-key"
            },
        });
    }
    Ok(Endpoint {
        base_url,
        provider: Provider::OpenAi(service),
        api_key,
        organization: (!is_azure)
            .then(|| env.get("OPENAI_ORG_ID").map(str::to_owned))
            .flatten(),
        project: (!is_azure)
            .then(|| env.get("OPENAI_PROJECT_ID").map(str::to_owned))
            .flatten(),
        timeout: Duration::from_secs(timeout),
    })
}

/// Where Gemini requests go and with what key: `--gemini-*` flags, then the config file,
/// then the environment (`GEMINI_API_KEY`, else `GOOGLE_API_KEY`, as Google's SDKs read).
fn resolve_gemini(
    cli: &Cli,
    loaded: &Loaded,
    key_optional: bool,
    env: &Env,
    // `--timeout` (or the file's), as read and checked for OpenAI's endpoint.
    timeout: Duration,
) -> Result<Endpoint, ConfigError> {
    let f = &loaded.file;
    let file_name = |key: &str| format!("{}: {key}", loaded.path.clone().unwrap_or_default());
    let (value, source_name) = match (
        &cli.gemini_base_url,
        &f.gemini_base_url,
        env.get("GEMINI_BASE_URL"),
    ) {
        (Some(v), _, _) => (v.clone(), "--gemini-base-url".to_owned()),
        (None, Some(v), _) => (v.clone(), file_name("gemini-base-url")),
        (None, None, Some(v)) => (v.to_owned(), "GEMINI_BASE_URL".to_owned()),
        (None, None, None) => (
            crate::provider::gemini::DEFAULT_BASE_URL.to_owned(),
            "the default Gemini base URL".to_owned(),
        ),
    };
    let base_url = parse_base_url(&value).map_err(|problem| ConfigError::BadBaseUrl {
        source_name,
        value: crate::units::shown_url_text(&value),
        problem,
    })?;
    let api_key = cli
        .gemini_api_key
        .clone()
        .or_else(|| f.gemini_api_key.clone())
        .or_else(|| {
            ["GEMINI_API_KEY", "GOOGLE_API_KEY"]
                .iter()
                .find_map(|var| env.get(var))
                .map(|k| SecretString::from(k.to_owned()))
        });
    if api_key.is_none() && !key_optional {
        return Err(ConfigError::MissingKey {
            hint: "the run uses Gemini models: set the GEMINI_API_KEY (or GOOGLE_API_KEY) \
                   environment variable or pass --gemini-api-key",
        });
    }
    Ok(Endpoint {
        base_url,
        provider: Provider::Gemini,
        api_key,
        organization: None,
        project: None,
        timeout,
    })
}

/// Whether users other than the owner may read the file at `path` (Unix permissions; never
/// elsewhere).
fn readable_by_others(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o044 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
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
    use crate::catalog::{Size, Tier};
    use crate::cli::try_parse_from;
    use crate::format::ImageFormat;
    use crate::spec::Quality;
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
        assert_eq!(c.prompts[0].settings.model.name(), "gpt-image-2");
        assert_eq!(c.prompts[0].settings.options.size, Size::DEFAULT);
        assert_eq!(
            c.prompts[0].settings.options.quality,
            Quality::Tier(Tier::Hd)
        );
        assert_eq!(c.jobs, 4);
        assert_eq!(c.prompts[0].settings.count, 1);
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
        assert_eq!(c.prompts[0].settings.model.name(), "gpt-image-1.5");
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
        assert_eq!(c.prompts[0].settings.model.name(), "dall-e-3");
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
        assert_eq!(
            c.prompts[0].settings.options.quality,
            Quality::Tier(Tier::Standard)
        );
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
        assert_eq!(c.prompts[0].settings.references.len(), 1);
        assert_eq!(c.prompts[0].settings.references[0].format, ImageFormat::Png);
        assert_eq!(&c.prompts[0].settings.references[0].bytes[..], PNG);
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
    fn params_layer_by_key_file_then_flags_then_header() {
        let file = temp_file(b"[param]\nframe_count = 4\nuser = \"file\"\nseed = 1\n");
        let env = [KEY, ("GENIMG_CONFIG", file.path().to_str().unwrap())];
        let c = resolve_stdin(
            &[
                "--input",
                "-",
                "--param",
                "frame_count=8",
                "--param",
                "frame_duration_ms=150",
            ],
            &env,
            "# a param.frame_count=12\nx\n# b\ny\n",
        )
        .unwrap();
        let params =
            |i: usize| serde_json::to_value(&c.prompts[i].settings.options.params).unwrap();
        assert_eq!(
            params(0),
            serde_json::json!({"frame_count": 12, "frame_duration_ms": 150, "user": "file", "seed": 1})
        );
        assert_eq!(params(1)["frame_count"], 8);
        let given = &c.prompts[0].settings.params_given;
        assert_eq!(given["frame_count"], "<stdin>:1: param.frame_count=12");
        assert_eq!(given["frame_duration_ms"], "--param frame_duration_ms=150");
        let path = file.path().display();
        assert_eq!(given["user"], format!("{path}: param.user = \"file\""));
        assert_eq!(given["seed"], format!("{path}: param.seed = \"1\""));
    }

    #[test]
    fn a_param_genimg_sets_itself_is_refused_naming_the_flag() {
        for (args, stdin, said) in [
            (
                vec!["a", "--param", "size=1536x1024"],
                "",
                "--param size=1536x1024: genimg sets `size` itself: use --size",
            ),
            (
                vec!["--input", "-"],
                "# a param.output_format=gif\nx\n",
                "<stdin>:1: param.output_format=gif: genimg sets `output_format` itself: use --format",
            ),
            (
                vec![
                    "a",
                    "--model",
                    "gemini-3-pro-image",
                    "--param",
                    "imageConfig={}",
                ],
                "",
                "--param imageConfig={}: genimg sets `imageConfig` itself: use --aspect-ratio and \
                 --image-size",
            ),
        ] {
            let err = resolve_stdin(&args, &[KEY, ("GEMINI_API_KEY", "g")], stdin).unwrap_err();
            assert_eq!(err.to_string(), said);
        }
        // Gemini sets no `size`: it is Gemini's to refuse.
        let c = resolve(
            &["a", "--model", "gemini-3-pro-image", "--param", "size=1"],
            &[KEY, ("GEMINI_API_KEY", "g")],
        )
        .unwrap();
        assert_eq!(c.prompts[0].settings.options.params["size"], 1);
    }

    #[test]
    fn a_config_file_timeout_is_read_with_the_flags_parser() {
        let file = temp_file(b"timeout = 7\n");
        let env = [KEY, ("GENIMG_CONFIG", file.path().to_str().unwrap())];
        let c = resolve(&["a"], &env).unwrap();
        assert_eq!(c.endpoint.timeout, Duration::from_secs(7));
        let c = resolve(&["a", "--timeout", "9"], &env).unwrap();
        assert_eq!(c.endpoint.timeout, Duration::from_secs(9));

        let file = temp_file(b"timeout = 0\n");
        let path = file.path().to_str().unwrap();
        let err = resolve(&["a"], &[KEY, ("GENIMG_CONFIG", path)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{path}: timeout = \"0\": `0` is not a whole number of 1 or more")
        );
        // A flag overrides the file without reading its value, as for every option.
        let c = resolve(&["a", "--timeout", "3"], &[KEY, ("GENIMG_CONFIG", path)]).unwrap();
        assert_eq!(c.endpoint.timeout, Duration::from_secs(3));
    }
}
