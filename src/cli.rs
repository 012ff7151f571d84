//! The command line, and nothing else: clap definitions that `config` turns into settings.
//!
//! Long flags are kebab-case. The seed script's snake_case spellings (`--dst_dir`,
//! `--num_threads`, ...) are hidden aliases added in one place, [`command`], for every flag.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Arg, ArgAction, CommandFactory, FromArgMatches, Parser, ValueEnum};
use secrecy::SecretString;

use crate::api::RetryPolicy;

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

The seed script's spellings still work: --dst_dir, --dry_run, --num_threads, ...
Exit codes: 0 every image made, 1 some failed, 2 usage or input error, 3 stopped by an error
no request could survive (bad key, unknown model, no credit), 130 interrupted.";

/// Generate images in bulk from text prompts with OpenAI's image models.
#[derive(Debug, Parser)]
#[command(
    name = "genimg",
    version,
    about,
    long_about = "Generate images in bulk from text prompts with OpenAI's image models \
                  (or any OpenAI-compatible service).\n\n\
                  Give one prompt as an argument, or a file of named prompts with --input:\n\n  \
                  # prompt_name\n  text describing the image...\n\n  \
                  # another_prompt_name\n  more text for another image...",
    after_help = EXAMPLES,
    max_term_width = 100
)]
pub struct Cli {
    /// The prompt, for one set of images (or use --input)
    #[arg(value_name = "PROMPT", required_unless_present = "input")]
    pub prompt: Option<String>,

    /// Read named prompts from FILE ("-" reads standard input)
    #[arg(short, long, value_name = "FILE", conflicts_with = "prompt")]
    pub input: Option<PathBuf>,

    /// Directory for the images, created if missing
    #[arg(short = 'o', long = "dst-dir", value_name = "DIR", default_value = ".")]
    pub dst_dir: PathBuf,

    /// Images per prompt
    #[arg(short = 'n', long, value_name = "N", default_value = "1", value_parser = at_least_one::<u32>)]
    pub count: u32,

    /// Image model; any name is sent as given [env: GENIMG_MODEL] [default: gpt-image-2]
    #[arg(short, long, value_name = "NAME")]
    pub model: Option<String>,

    /// Standard quality instead of HD (medium on GPT image models, standard on dall-e-3)
    #[arg(long = "low-res")]
    pub low_res: bool,

    /// Send each prompt with this image to /images/edits (PNG, JPEG or WebP; repeatable)
    #[arg(long = "reference-image", value_name = "PATH", action = ArgAction::Append)]
    pub reference_image: Vec<PathBuf>,

    /// Requests in flight at most; 1 runs one at a time [default: 4]
    #[arg(short = 'j', long = "jobs", visible_alias = "num-threads", value_name = "N",
          value_parser = at_least_one::<usize>)]
    pub jobs: Option<usize>,

    /// Run requests in parallel: the default, kept so the seed's command lines work
    #[arg(long)]
    pub parallel: bool,

    /// Print what would be made; send nothing, write nothing, need no key
    #[arg(long = "dry-run")]
    pub dry_run: bool,

    /// First delete the images genimg made before for these prompts (other files stay)
    #[arg(long = "from-scratch")]
    pub from_scratch: bool,

    /// Make the images already there again, stale ones included (each is replaced only
    /// once its new image is saved)
    #[arg(long)]
    pub overwrite: bool,

    /// Retries per image after an error worth retrying; 0 turns retries off
    #[arg(long = "max-retries", value_name = "N", default_value_t = RetryPolicy::DEFAULT_MAX_RETRIES)]
    pub max_retries: u32,

    /// API key [default: the OPENAI_API_KEY environment variable]
    #[arg(long = "api-key", value_name = "KEY", value_parser = secret)]
    pub api_key: Option<SecretString>,

    /// API root URL [env: OPENAI_BASE_URL] [default: https://api.openai.com/v1]
    #[arg(long = "base-url", value_name = "URL")]
    pub base_url: Option<String>,

    /// Seconds one request may take before it fails
    #[arg(long, value_name = "SECS", default_value = "600", value_parser = at_least_one::<u64>)]
    pub timeout: u64,

    /// File naming: the seed's (image.NAME.01.hd.png) or its legacy desc_01_image_01_hd.png
    #[arg(long, value_enum, value_name = "SCHEME", default_value_t = NamingArg::Seed)]
    pub naming: NamingArg,

    /// More detail in the log (-vv for HTTP detail)
    #[arg(short, long, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Show errors only
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NamingArg {
    /// image_01_hd.png for one prompt, image.NAME.01.hd.png from a file
    Seed,
    /// desc_01_image_01_hd.png: prompt number, then image number
    Legacy,
}

fn at_least_one<T>(s: &str) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + From<u8>,
{
    match s.parse::<T>() {
        Ok(n) if n >= T::from(1) => Ok(n),
        _ => Err(format!("`{s}` is not a whole number of 1 or more")),
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
        assert_eq!(cli.dst_dir, PathBuf::from("out"));
        assert_eq!(cli.count, 3);
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
    fn prompt_and_input_exclude_each_other_and_one_is_needed() {
        assert_eq!(
            parse(&["a cat", "--input", "p.txt"]).unwrap_err().kind(),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            parse(&["--count", "2"]).unwrap_err().kind(),
            ErrorKind::MissingRequiredArgument
        );
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
    fn the_key_never_shows_in_debug() {
        let cli = parse(&["a", "--api-key", "sk-secret-123"]).unwrap();
        assert!(!format!("{cli:?}").contains("sk-secret-123"));
    }
}
