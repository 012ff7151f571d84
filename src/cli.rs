//! The command line, and nothing else: clap definitions that `config` turns into settings.
//!
//! Long flags are kebab-case. The seed script's snake_case spellings (`--dst_dir`,
//! `--num_threads`, ...) are hidden aliases added in one place, [`command`], for every flag.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::{Arg, ArgAction, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use secrecy::SecretString;

use crate::catalog::{QUALITY_TOKENS, Size};
use crate::format::ImageFormat;
use crate::values::{
    self, ASPECT_RATIOS, BACKGROUNDS, COMPLEXITIES, FIDELITIES, IMAGE_SIZES, MODERATIONS,
    at_least_one, at_least_zero, parse_usd,
};

const EXAMPLES: &str = "\
Examples:
  # Three images of one prompt in ./images (image_01_hd.png ... image_03_hd.png)
  genimg \"A futuristic cityscape at sunset\" --dst-dir ./images --count 3

  # Two images of every named prompt in a file (image.NAME.01.hd.png ...)
  genimg --input prompts.txt --dst-dir ./images --count 2

  # See what would be made, without a key and without spending anything
  genimg --input prompts.txt --dst-dir ./images --dry-run

  # Standard quality, 8 requests at a time, starting over
  genimg --input prompts.txt --low-res -j 8 --from-scratch

  # Use a reference image (sent to /images/edits)
  genimg \"The same cat, as a watercolor\" --reference-image cat.png

  # Edit only where a mask is transparent (a PNG with alpha, the reference's size)
  genimg \"The same cat, in a red hat\" --reference-image cat.png --mask hat-area.png

  # Wide, low quality WebP images on a 2.5 model, at most $5
  genimg --input prompts.txt -m gpt-image-2.5-flare --size 1536x1024 --quality low \\
         --format webp --max-cost 5

  # A wide 4K image on Google's Nano Banana Pro (key in GEMINI_API_KEY)
  genimg \"A lighthouse at dusk\" -m gemini-3-pro-image --aspect-ratio 16:9 --image-size 4K

  # An animated GIF on a 2.6 model, with a field genimg has no flag for
  genimg \"A flag in the wind\" -m gpt-image-2.6-flare --format gif --param frame_count=8

  # See the image form: two partial images as it streams in
  genimg \"A busy harbour\" --partial-images 2

  # At half the price through the Batch API: submit, then collect later
  genimg --input prompts.txt --dst-dir ./images --batch --no-wait
  genimg batch collect ./images --wait

  # The models, their options and prices
  genimg models

The seed script's spellings still work: --dst_dir, --dry_run, --num_threads, ...
Defaults for any flag can live in ~/.config/genimg/config.toml (or $GENIMG_CONFIG).
Exit codes: 0 every image made, 1 some failed, 2 usage or input error, 3 stopped by an error
no request could survive (bad key, unknown model, no credit, a service that cannot be reached,
a wait longer than --max-wait, a Batch API call refused for good), 4 stopped at --max-cost,
130 interrupted (Ctrl-C), 143 stopped by SIGTERM, 129 stopped by SIGHUP.";

/// Generate images in bulk from text prompts with OpenAI's and Google's Gemini image models.
#[derive(Debug, Parser)]
#[command(
    name = "genimg",
    version,
    about,
    long_about = "Generate images in bulk from text prompts with OpenAI's image models \
                  (or any OpenAI-compatible service) and Google's Gemini image models \
                  (Nano Banana); one prompt file may use both.\n\n\
                  Give one prompt as an argument, or a file of named prompts with --input:\n\n  \
                  # prompt_name\n  text describing the image...\n\n  \
                  # another_prompt_name size=1536x1024 quality=low\n  more text for another image...",
    after_help = EXAMPLES,
    max_term_width = 100,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The prompt, for one set of images (or use --input)
    #[arg(value_name = "PROMPT")]
    pub prompt: Option<String>,

    /// A name for the prompt given as an argument: its images become image.NAME.01.hd.png
    #[arg(
        long,
        value_name = "NAME",
        requires = "prompt",
        conflicts_with = "input"
    )]
    pub name: Option<String>,

    /// Read named prompts from FILE ("-" reads standard input)
    #[arg(short, long, value_name = "FILE", conflicts_with = "prompt")]
    pub input: Option<PathBuf>,

    /// Directory for the images, created if missing [default: .]
    #[arg(short = 'o', long = "dst-dir", value_name = "DIR")]
    pub dst_dir: Option<PathBuf>,

    /// Images per prompt [default: 1]
    #[arg(short = 'n', long, value_name = "N", value_parser = values::parse_count,
          allow_negative_numbers = true)]
    pub count: Option<u32>,

    /// Image model; any name is sent as given: a name that starts with gemini- goes to Google,
    /// any other to OpenAI, and google:NAME or openai:NAME picks the provider [env:
    /// GENIMG_MODEL] [default: gpt-image-2]
    #[arg(short, long, value_name = "NAME")]
    pub model: Option<String>,

    /// Standard quality instead of HD (medium on GPT image models, standard on dall-e-3, 1K on
    /// Gemini models)
    #[arg(long = "low-res")]
    pub low_res: bool,

    /// Image size: WIDTHxHEIGHT or auto (see `genimg models`) [default: 1024x1024]
    #[arg(long, value_name = "SIZE", value_parser = clap::value_parser!(Size))]
    pub size: Option<Size>,

    /// Quality: xhigh and max on 2.5 and 2.6 models, hd and standard on dall-e-3 (and for
    /// high and medium on GPT image models), the others on GPT image models; wins over
    /// --low-res and names the files
    #[arg(long, value_name = "Q", value_parser = one_of(QUALITY_TOKENS, values::parse_quality))]
    pub quality: Option<&'static str>,

    /// Output format; the file extension follows (jpg is taken for jpeg)
    #[arg(long, value_name = "FMT", value_parser = image_formats())]
    pub format: Option<ImageFormat>,

    /// JPEG or WebP compression, 0-100
    #[arg(long, value_name = "N", value_parser = values::parse_compression,
          allow_negative_numbers = true)]
    pub compression: Option<u8>,

    /// Background (transparent needs PNG or WebP)
    #[arg(long, value_name = "BG", value_parser = one_of(BACKGROUNDS, values::parse_background))]
    pub background: Option<&'static str>,

    /// Moderation strictness
    #[arg(long, value_name = "LEVEL",
          value_parser = one_of(MODERATIONS, values::parse_moderation))]
    pub moderation: Option<&'static str>,

    /// How closely edits keep the reference images
    #[arg(long = "input-fidelity", value_name = "LEVEL",
          value_parser = one_of(FIDELITIES, values::parse_fidelity))]
    pub input_fidelity: Option<&'static str>,

    /// Scene complexity on gpt-image-2.6 models
    #[arg(long, value_name = "LEVEL",
          value_parser = one_of(COMPLEXITIES, values::parse_complexity))]
    pub complexity: Option<&'static str>,

    /// Stream each answer (server-sent events): the first look at an image sooner, and a
    /// long request kept alive through proxies that drop idle connections
    #[arg(long)]
    pub stream: bool,

    /// With --stream: partial images to send as the image forms, 0-3 (under
    /// .genimg/partials/ until the image is done); implies --stream
    #[arg(long = "partial-images", value_name = "N", value_parser = values::parse_partial_images)]
    pub partial_images: Option<u8>,

    /// Aspect ratio on Gemini models (each takes its own: see `genimg models`)
    #[arg(long = "aspect-ratio", value_name = "W:H",
          value_parser = one_of(ASPECT_RATIOS, values::parse_aspect_ratio))]
    pub aspect_ratio: Option<&'static str>,

    /// Image size on Gemini models [default: 2K where the model takes it, 1K with --low-res]
    #[arg(long = "image-size", value_name = "SIZE",
          value_parser = one_of(IMAGE_SIZES, values::parse_image_size))]
    pub image_size: Option<&'static str>,

    /// A preamble put before every prompt: TEXT, or @FILE to read it from FILE
    #[arg(long, value_name = "TEXT|@FILE")]
    pub style: Option<String>,

    /// Send each prompt with this image: to /images/edits on OpenAI (PNG, JPEG or WebP; up to
    /// 16), inline on Gemini (up to 14)
    #[arg(long = "reference-image", value_name = "PATH", action = ArgAction::Append)]
    pub reference_image: Vec<PathBuf>,

    /// Add a field to each request's body, for an option genimg has no flag for (the value is
    /// read as JSON when it parses, else sent as text; on Gemini it goes into
    /// generationConfig); repeat for more fields
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = values::parse_param,
          action = ArgAction::Append)]
    pub param: Vec<(String, String)>,
    /// With --reference-image: a mask for the edits, a PNG with an alpha channel the size of
    /// the first reference, under 4 MB; its transparent pixels mark where to edit
    #[arg(long, value_name = "PATH")]
    pub mask: Option<PathBuf>,

    /// Requests in flight at most; 1 runs one at a time [default: 4]
    #[arg(short = 'j', long = "jobs", visible_alias = "num-threads", value_name = "N",
          value_parser = at_least_one::<usize>, allow_negative_numbers = true)]
    pub jobs: Option<usize>,

    /// Images per minute at most, spaced evenly. genimg learns the account's limit from the
    /// service and paces at 95% of it; a --ipm above the learned limit gives way to it
    #[arg(long, value_name = "N", value_parser = at_least_one::<u32>,
          allow_negative_numbers = true)]
    pub ipm: Option<u32>,

    /// When the service asks to wait more than 120 s: sit out such waits while they add up to
    /// at most this long without an image arriving (shown), else stop the run (exit 3)
    /// [default: 15m]
    #[arg(long = "max-wait", value_name = "DURATION", value_parser = crate::values::parse_wait)]
    pub max_wait: Option<std::time::Duration>,

    /// Run requests in parallel: the default, kept so the seed's command lines work
    #[arg(long)]
    pub parallel: bool,

    /// Make the images through the Batch API: half the price, done within 24 h. Submits
    /// the images neither on disk nor pending, waits, collects; run it again to collect
    #[arg(long)]
    pub batch: bool,

    /// With --batch: return once the batches are submitted, printing how to collect them
    #[arg(long = "no-wait", requires = "batch")]
    pub no_wait: bool,

    /// With --batch: seconds before the first poll of a batch; polls then grow apart
    /// [default: 30]
    #[arg(long = "poll-interval", value_name = "SECS", value_parser = values::parse_seconds)]
    pub poll_interval: Option<std::time::Duration>,

    /// Write no index.html contact sheet after the run
    #[arg(long = "no-gallery")]
    pub no_gallery: bool,

    /// Print one JSON document on stdout at the end: the plan, each image's status and path,
    /// the totals (human output stays on stderr)
    #[arg(long)]
    pub json: bool,

    /// Print what would be made and what it would cost, a line per prompt (-v: per image); send
    /// nothing, write nothing, need no key
    #[arg(long = "dry-run")]
    pub dry_run: bool,

    /// First move the images genimg made before for these prompts to DIR/.genimg/trash/
    /// (other files stay; `genimg trash empty DIR` deletes them)
    #[arg(long = "from-scratch")]
    pub from_scratch: bool,

    /// Make the images already there again, stale ones included (each old one goes to
    /// DIR/.genimg/trash/ once its new image is saved)
    #[arg(long, conflicts_with = "remake_stale")]
    pub overwrite: bool,

    /// Make again only the stale images: those whose prompt or options changed since
    #[arg(long = "remake-stale", conflicts_with = "from_scratch")]
    pub remake_stale: bool,

    /// Only the prompts whose names match PATTERN (`*` and `?` wildcards); a comma separates
    /// several, and the flag may repeat
    #[arg(long, value_name = "PATTERN", value_delimiter = ',')]
    pub only: Vec<String>,

    /// Retries per image after an error worth retrying; 0 turns them off [default: 4]. A 429
    /// for rate and a wait within --max-wait use none while images keep arriving
    #[arg(long = "max-retries", value_name = "N", value_parser = at_least_zero,
          allow_negative_numbers = true)]
    pub max_retries: Option<u32>,

    /// Refuse a run estimated to cost more than USD, and stop starting requests once the
    /// images made have cost that much
    #[arg(long = "max-cost", value_name = "USD", value_parser = parse_usd,
          allow_negative_numbers = true)]
    pub max_cost: Option<f64>,

    /// API key [default: the OPENAI_API_KEY environment variable]
    #[arg(long = "api-key", value_name = "KEY", value_parser = secret)]
    pub api_key: Option<SecretString>,

    /// API root URL [env: OPENAI_BASE_URL] [default: https://api.openai.com/v1]
    #[arg(
        long = "base-url",
        value_name = "URL",
        conflicts_with = "azure_endpoint"
    )]
    pub base_url: Option<String>,

    /// Google Gemini API key [default: the GEMINI_API_KEY, else GOOGLE_API_KEY, environment
    /// variable]
    #[arg(long = "gemini-api-key", value_name = "KEY", value_parser = secret)]
    pub gemini_api_key: Option<SecretString>,

    /// Gemini API root URL [env: GEMINI_BASE_URL]
    /// [default: https://generativelanguage.googleapis.com]
    #[arg(long = "gemini-base-url", value_name = "URL")]
    pub gemini_base_url: Option<String>,

    /// Azure OpenAI resource, e.g. https://NAME.openai.azure.com [env: AZURE_OPENAI_ENDPOINT]
    #[arg(long = "azure-endpoint", value_name = "URL")]
    pub azure_endpoint: Option<String>,

    /// Azure API version: use the deployment path, the model naming the deployment
    /// [env: OPENAI_API_VERSION] [default: the v1 path]
    #[arg(long = "api-version", value_name = "VERSION")]
    pub api_version: Option<String>,

    /// Seconds one request may take before it fails [default: 600]
    #[arg(long, value_name = "SECS", value_parser = at_least_one::<u64>,
          allow_negative_numbers = true)]
    pub timeout: Option<u64>,

    /// File naming: the seed's (image.NAME.01.hd.png) or its legacy desc_01_image_01_hd.png
    /// [default: seed]
    #[arg(long, value_enum, value_name = "SCHEME")]
    pub naming: Option<NamingArg>,

    /// More detail in the log (-vv for HTTP detail)
    #[arg(short, long, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Show errors only
    #[arg(short, long)]
    pub quiet: bool,
}

/// What genimg does besides making images. A prompt that is one of these words goes after
/// `--`: `genimg -- models`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// List every model genimg knows: sizes, qualities, options, prices, retirement
    Models,
    /// Rebuild DIR/index.html, the contact sheet of DIR's images, from its genimg.jsonl
    Gallery {
        /// The destination directory of an earlier run
        #[arg(value_name = "DIR", default_value = ".")]
        dir: PathBuf,
        /// Serve the gallery on 127.0.0.1 (a port the system picks, printed) until Ctrl-C;
        /// picks made in the page are saved to DIR/picks.txt
        #[arg(long)]
        serve: bool,
    },
    /// The batches submitted with --batch to DIR: status, collect, cancel
    Batch {
        #[command(subcommand)]
        action: BatchAction,
    },
    /// The old images --from-scratch and --overwrite moved to DIR/.genimg/trash/: list, empty
    Trash {
        #[command(subcommand)]
        action: TrashAction,
    },
    /// Print a completion script for SHELL (bash, zsh, fish, powershell, elvish)
    Completions {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `genimg man > /usr/local/share/man/man1/genimg.1`
    Man,
}

/// What `genimg trash` does.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum TrashAction {
    /// List the trash of DIR: one folder per run, with its files and their size
    List {
        /// The destination directory of earlier runs
        #[arg(value_name = "DIR", default_value = ".")]
        dir: PathBuf,
    },
    /// Delete DIR/.genimg/trash/ and everything in it, saying how much that frees
    Empty {
        /// The destination directory of earlier runs
        #[arg(value_name = "DIR", default_value = ".")]
        dir: PathBuf,
    },
}

/// What `genimg batch` does.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum BatchAction {
    /// List each batch recorded in DIR: id, status, counts, created, expires, estimated cost
    Status(BatchArgs),
    /// Collect every finished batch of DIR; with --wait, wait for the others and collect them
    Collect {
        #[command(flatten)]
        args: BatchArgs,
        /// Wait for the batches still running, then collect them too
        #[arg(long)]
        wait: bool,
    },
    /// Cancel the pending batches of DIR, and collect what they finished
    Cancel(BatchArgs),
}

impl BatchAction {
    pub fn args(&self) -> &BatchArgs {
        match self {
            BatchAction::Status(args) | BatchAction::Cancel(args) => args,
            BatchAction::Collect { args, .. } => args,
        }
    }
}

/// Where the batches are recorded, and how to reach the service.
#[derive(Debug, Clone, clap::Args)]
pub struct BatchArgs {
    /// The destination directory of a --batch run
    #[arg(value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,

    /// API key [default: the OPENAI_API_KEY environment variable]
    #[arg(long = "api-key", value_name = "KEY", value_parser = secret)]
    pub api_key: Option<SecretString>,

    /// API root URL [env: OPENAI_BASE_URL] [default: https://api.openai.com/v1]
    #[arg(long = "base-url", value_name = "URL")]
    pub base_url: Option<String>,

    /// Google Gemini API key [default: the GEMINI_API_KEY, else GOOGLE_API_KEY, environment
    /// variable]
    #[arg(long = "gemini-api-key", value_name = "KEY", value_parser = secret)]
    pub gemini_api_key: Option<SecretString>,

    /// Gemini API root URL [env: GEMINI_BASE_URL]
    /// [default: https://generativelanguage.googleapis.com]
    #[arg(long = "gemini-base-url", value_name = "URL")]
    pub gemini_base_url: Option<String>,

    /// Seconds before the first poll of a batch; polls then grow apart [default: 30]
    #[arg(long = "poll-interval", value_name = "SECS", value_parser = values::parse_seconds)]
    pub poll_interval: Option<std::time::Duration>,
}

impl PartialEq for BatchArgs {
    fn eq(&self, other: &BatchArgs) -> bool {
        use secrecy::ExposeSecret as _;
        self.dir == other.dir
            && self.base_url == other.base_url
            && self.gemini_base_url == other.gemini_base_url
            && self
                .gemini_api_key
                .as_ref()
                .map(|k| k.expose_secret().to_owned())
                == other
                    .gemini_api_key
                    .as_ref()
                    .map(|k| k.expose_secret().to_owned())
            && self.poll_interval == other.poll_interval
            && self.api_key.as_ref().map(|k| k.expose_secret().to_owned())
                == other.api_key.as_ref().map(|k| k.expose_secret().to_owned())
    }
}

impl Eq for BatchArgs {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NamingArg {
    /// image_01_hd.png for one prompt, image.NAME.01.hd.png from a file
    Seed,
    /// desc_01_image_01_hd.png: prompt number, then image number
    Legacy,
}

/// A flag that takes one of a closed set of values: read by its parser in `values`, as the same
/// option in the config file or a prompt header is (so the value and its error are the same
/// everywhere), with the set offered to `--help`, the man page and shell completions.
#[derive(Debug, Clone)]
struct OneOf<T> {
    values: Vec<PossibleValue>,
    parse: fn(&str) -> Result<T, String>,
}

/// One of the values of a `values` table, read by its parser.
fn one_of<T>(values: &[&'static str], parse: fn(&str) -> Result<T, String>) -> OneOf<T> {
    OneOf {
        values: values.iter().map(|v| PossibleValue::new(*v)).collect(),
        parse,
    }
}

/// `png`, `jpeg` or `webp`; the other extensions of a format (`jpg`) are taken, not offered.
fn image_formats() -> OneOf<ImageFormat> {
    OneOf {
        values: ImageFormat::ALL
            .iter()
            .map(|f| {
                let other = f.extensions().iter().filter(|e| **e != f.extension());
                PossibleValue::new(f.extension()).aliases(other.copied())
            })
            .collect(),
        parse: values::parse_format,
    }
}

impl<T: Clone + Send + Sync + 'static> TypedValueParser for OneOf<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        self.parse.parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(self.values.iter().cloned()))
    }
}

fn secret(s: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(s.to_owned()))
}

/// The command, with a hidden snake_case alias for every kebab-case long flag and alias.
pub fn command() -> clap::Command {
    Cli::command().mut_args(with_snake_case_aliases)
}

fn with_snake_case_aliases(arg: Arg) -> Arg {
    let snake: Vec<String> = arg
        .get_long()
        .into_iter()
        .chain(arg.get_all_aliases().unwrap_or_default())
        .filter(|name| name.contains('-'))
        .map(|name| name.replace('-', "_"))
        .collect();
    arg.aliases(snake)
}

/// Parses `std::env::args`, exiting with clap's message (exit code 2) on a usage error.
pub fn parse() -> Cli {
    match try_parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    }
}

pub fn try_parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = command().try_get_matches_from(args)?;
    Cli::from_arg_matches(&matches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use secrecy::ExposeSecret;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        try_parse_from(std::iter::once("genimg").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_is_well_formed() {
        command().debug_assert();
    }

    #[test]
    fn every_seed_spelling_is_accepted() {
        let cli = parse(&[
            "--input",
            "p.txt",
            "--dst_dir",
            "out",
            "--count",
            "3",
            "--low_res",
            "--dry_run",
            "--from_scratch",
            "--api_key",
            "sk-x",
            "--reference_image",
            "r.png",
            "--parallel",
            "--num_threads",
            "8",
        ])
        .unwrap();
        assert_eq!(cli.input.as_deref(), Some("p.txt".as_ref()));
        assert_eq!(cli.dst_dir, Some(PathBuf::from("out")));
        assert_eq!(cli.count, Some(3));
        assert!(cli.low_res && cli.dry_run && cli.from_scratch && cli.parallel);
        assert_eq!(cli.api_key.unwrap().expose_secret(), "sk-x");
        assert_eq!(cli.reference_image, [PathBuf::from("r.png")]);
        assert_eq!(cli.jobs, Some(8));
    }

    #[test]
    fn kebab_case_and_short_spellings() {
        let cli = parse(&[
            "a cat",
            "--dst-dir",
            "o",
            "-n",
            "2",
            "-j",
            "3",
            "--base-url",
            "http://x",
        ])
        .unwrap();
        assert_eq!(cli.prompt.as_deref(), Some("a cat"));
        assert_eq!(cli.jobs, Some(3));
        assert_eq!(parse(&["a", "--jobs", "5"]).unwrap().jobs, Some(5));
        assert_eq!(parse(&["a", "--num-threads", "6"]).unwrap().jobs, Some(6));
        assert_eq!(
            parse(&["a", "--base_url", "u"])
                .unwrap()
                .base_url
                .as_deref(),
            Some("u")
        );
    }

    #[test]
    fn snake_case_aliases_stay_hidden() {
        let help = command().render_long_help().to_string();
        assert!(help.contains("--dst-dir <DIR>"));
        let option_lines = help
            .lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with("--") || (l.starts_with('-') && l.get(2..4) == Some(", ")));
        for line in option_lines {
            let flags = line.trim_start().split("  ").next().unwrap();
            assert!(!flags.contains('_'), "{line}");
        }
        assert!(!help.contains("num_threads]"), "{help}");
        assert!(help.contains("Examples:"));
    }

    #[test]
    fn prompt_and_input_exclude_each_other() {
        assert_eq!(
            parse(&["a cat", "--input", "p.txt"]).unwrap_err().kind(),
            ErrorKind::ArgumentConflict
        );
    }

    #[test]
    fn models_is_a_subcommand_and_takes_no_run_flags() {
        let cli = parse(&["models"]).unwrap();
        assert_eq!(cli.command, Some(Command::Models));
        assert!(parse(&["models", "--count", "2"]).is_err());
        // A prompt that is the word itself goes after `--`.
        let cli = parse(&["--", "models"]).unwrap();
        assert_eq!(cli.command, None);
        assert_eq!(cli.prompt.as_deref(), Some("models"));
    }

    #[test]
    fn option_values_are_checked_with_the_flag_named() {
        for args in [
            ["a", "--size", "big"],
            ["a", "--quality", "ultra"],
            ["a", "--format", "bmp"],
            ["a", "--compression", "101"],
            ["a", "--background", "clear"],
            ["a", "--moderation", "none"],
            ["a", "--input-fidelity", "max"],
            ["a", "--complexity", "extreme"],
            ["a", "--max-cost", "lots"],
        ] {
            let err = parse(&args).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ValueValidation, "{args:?}");
            assert!(err.to_string().contains(args[1]), "{err}");
        }
        let cli = parse(&[
            "a",
            "--quality",
            "xhigh",
            "--format",
            "jpg",
            "--max_cost",
            "$2.5",
        ])
        .unwrap();
        assert_eq!(cli.quality, Some("xhigh"));
        assert_eq!(cli.format, Some(ImageFormat::Jpeg));
        assert_eq!(cli.max_cost, Some(2.5));
    }

    #[test]
    fn zero_counts_are_refused_with_the_flag_named() {
        for args in [
            ["a", "--count", "0"],
            ["a", "--num_threads", "0"],
            ["a", "--timeout", "0"],
        ] {
            let err = parse(&args).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ValueValidation);
            assert_eq!(err.exit_code(), 2);
            assert!(err.to_string().contains("1 or more"), "{err}");
        }
    }

    #[test]
    fn negative_numbers_reach_the_value_parser_and_name_the_flag() {
        for (args, problem) in [
            (
                ["a", "--count", "-1"],
                "`-1` is not a whole number of 1 or more",
            ),
            (["a", "-n", "-1"], "`-1` is not a whole number of 1 or more"),
            (["a", "-j", "-1"], "`-1` is not a whole number of 1 or more"),
            (
                ["a", "--num_threads", "-2"],
                "`-2` is not a whole number of 1 or more",
            ),
            (
                ["a", "--ipm", "-1"],
                "`-1` is not a whole number of 1 or more",
            ),
            (
                ["a", "--timeout", "-1"],
                "`-1` is not a whole number of 1 or more",
            ),
            (
                ["a", "--max-retries", "-1"],
                "`-1` is not a whole number of 0 or more",
            ),
            (
                ["a", "--compression", "-1"],
                "`-1` is not a whole number from 0 to 100",
            ),
            (
                ["a", "--max-cost", "-1"],
                "`-1` is not an amount of US dollars of 0 or more",
            ),
            (
                ["a", "--max_cost", "-0.5"],
                "`-0.5` is not an amount of US dollars of 0 or more",
            ),
        ] {
            let err = parse(&args).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ValueValidation, "{args:?}: {err}");
            assert_eq!(err.exit_code(), 2);
            let text = err.to_string();
            let flag = match args[1] {
                "-n" => "--count",
                "-j" | "--num_threads" => "--jobs",
                "--max_cost" => "--max-cost",
                other => other,
            };
            assert!(text.contains(&format!("for '{flag} <")), "{text}");
            assert!(text.contains(problem), "{text}");
        }
        assert_eq!(
            parse(&["a", "--max-retries", "0"]).unwrap().max_retries,
            Some(0)
        );
        // A prompt that starts with `-` still goes after `--`, and is not taken as a value.
        let cli = parse(&["--count", "2", "--", "-1 degree, a frosty morning"]).unwrap();
        assert_eq!(cli.count, Some(2));
        assert_eq!(cli.prompt.as_deref(), Some("-1 degree, a frosty morning"));
        // Only numbers reach a flag's value: another flag after it is still a flag.
        let err = parse(&["a", "--count", "--dry-run"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidValue, "{err}");
    }

    #[test]
    fn closed_choices_offer_their_values_and_keep_their_types() {
        let cmd = command();
        let offered = |long: &str| -> Vec<String> {
            let arg = cmd.get_arguments().find(|a| a.get_long() == Some(long));
            let arg = arg.unwrap_or_else(|| panic!("no --{long}"));
            arg.get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| v.get_name().to_owned())
                .collect()
        };
        for (long, table) in [
            ("quality", QUALITY_TOKENS),
            ("background", BACKGROUNDS),
            ("moderation", MODERATIONS),
            ("input-fidelity", FIDELITIES),
            ("complexity", COMPLEXITIES),
        ] {
            assert_eq!(offered(long), table, "--{long}");
        }
        assert_eq!(offered("format"), ["png", "jpeg", "webp", "gif", "svg"]);
        assert_eq!(offered("naming"), ["seed", "legacy"]);

        // Every value offered parses, through the flag and its seed spelling, to the value
        // the rest of genimg sees: the table's own `&'static str`, or an `ImageFormat`.
        for q in QUALITY_TOKENS {
            assert_eq!(parse(&["a", "--quality", q]).unwrap().quality, Some(*q));
        }
        let cli = parse(&[
            "a",
            "--input_fidelity",
            "low",
            "--background",
            "opaque",
            "--moderation",
            "low",
            "--complexity",
            "medium",
            "--format",
            "webp",
        ])
        .unwrap();
        assert_eq!(cli.input_fidelity, Some("low"));
        assert_eq!(cli.background, Some("opaque"));
        assert_eq!(cli.moderation, Some("low"));
        assert_eq!(cli.complexity, Some("medium"));
        assert_eq!(cli.format, Some(ImageFormat::Webp));
        assert_eq!(
            parse(&["a", "--format", "jpg"]).unwrap().format,
            Some(ImageFormat::Jpeg)
        );
        let err = parse(&["a", "--input_fidelity", "max"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueValidation);
        assert!(
            err.to_string().contains("--input-fidelity <LEVEL>"),
            "{err}"
        );
    }

    #[test]
    fn the_key_never_shows_in_debug() {
        let cli = parse(&["a", "--api-key", "sk-secret-123"]).unwrap();
        assert!(!format!("{cli:?}").contains("sk-secret-123"));
    }
}
