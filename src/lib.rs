//! genimg: generate images in bulk from named text prompts with OpenAI's image models.
//!
//! The binary is a thin shell around [`run`]: parse the command line into a [`Config`], run
//! it, map the [`Outcome`] to an exit code. Everything is testable without argv.

pub mod catalog;
pub mod cli;
pub mod config;
pub mod engine;
pub mod format;
pub mod logging;
pub mod outcome;
pub mod plan;
pub mod progress;
pub mod prompts;
pub mod provider;
pub mod report;
pub mod spec;
pub mod store;
pub mod units;
pub mod values;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use thiserror::Error;

use config::Existing;
pub use config::{Config, ConfigError, Env};
use engine::live::{Context, Stop};
use outcome::Summary;
use plan::Plan;
use progress::{Event, Reporter};
use store::manifest::{self, Manifest};
use store::sink::Sink;
use store::{Destination, OutputError};

/// An error that stops genimg before any request: a usage or input error (exit code 2).
#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Client(#[from] provider::ClientError),
    #[error(
        "--max-cost {}: {}; nothing was sent (see the estimate with --dry-run)",
        units::usd(*max),
        if *unpriced > 0 {
            format!("the price of {unpriced} image(s) is unknown, so the cost cannot be bounded")
        } else {
            format!("this run is estimated at {}", units::usd(*estimate))
        }
    )]
    OverBudget {
        estimate: f64,
        unpriced: usize,
        max: f64,
    },
    #[error("gallery {dir}: {problem}")]
    Gallery { dir: String, problem: String },
}

/// The exit codes, as the README documents them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Every image was made (or was already there).
    Success = 0,
    /// Some images failed.
    SomeFailed = 1,
    /// A usage or input error; nothing was requested.
    Usage = 2,
    /// Stopped by an error no request could survive: a bad key, an unknown model, no credit.
    Fatal = 3,
    /// Stopped starting requests once the images made reached `--max-cost`.
    Budget = 4,
    /// Stopped by Ctrl-C.
    Interrupted = 130,
}

impl From<Status> for ExitCode {
    fn from(status: Status) -> ExitCode {
        ExitCode::from(status as u8)
    }
}

/// What a run ended with.
#[derive(Debug)]
pub enum Outcome {
    /// A subcommand printed what it was asked for.
    Printed,
    DryRun,
    Ran(Summary),
}

impl Outcome {
    pub fn status(&self) -> Status {
        match self {
            Outcome::Printed | Outcome::DryRun => Status::Success,
            Outcome::Ran(s) if s.fatal.is_some() => Status::Fatal,
            Outcome::Ran(s) if s.budget_stop.is_some() => Status::Budget,
            Outcome::Ran(s) if s.interrupted => Status::Interrupted,
            Outcome::Ran(s) if !s.failed.is_empty() => Status::SomeFailed,
            Outcome::Ran(_) => Status::Success,
        }
    }
}

/// Runs a resolved configuration: `genimg models` prints the model table; a dry run prints
/// the plan and its estimated cost on stdout; a real run makes the missing images and
/// reports on `reporter`.
pub async fn run(
    config: &Config,
    reporter: Arc<dyn Reporter>,
    stop: &Stop,
) -> Result<Outcome, Error> {
    if let Some(command) = &config.command {
        run_command(command)?;
        return Ok(Outcome::Printed);
    }
    for warning in &config.warnings {
        reporter.event(Event::Warning { text: warning });
    }
    let mut plan = Plan::new(config);
    if config.dry_run {
        let survey = store::survey(&plan, config.existing)?;
        plan.adopt(&survey);
        if config.json {
            print_json(&report::json::document(
                config,
                &plan,
                &survey,
                None,
                Status::Success,
            ));
        } else {
            print(&report::dry_run::render(&plan, &survey, config));
        }
        return Ok(Outcome::DryRun);
    }

    let client_config = config
        .endpoint
        .client_config()
        .ok_or(ConfigError::MissingKey {
            hint: "pass --api-key",
        })?;
    let client = provider::Client::new(&client_config)?;
    let destination = Destination::open(&config.dst_dir)?;
    let survey = store::survey(&plan, config.existing)?;
    plan.adopt(&survey);
    if let Some(max) = config.max_cost {
        let (estimate, unpriced) = plan.estimate(|i| survey.is_todo(i));
        if unpriced > 0 || estimate > max {
            return Err(Error::OverBudget {
                estimate,
                unpriced,
                max,
            });
        }
    }
    let dir = config.dst_dir.display().to_string();
    let manifest_error = |source| OutputError::Manifest {
        path: config
            .dst_dir
            .join(manifest::FILE_NAME)
            .display()
            .to_string(),
        source,
    };
    if config.existing == Existing::Remove {
        let count = destination.remove(&survey.removals)?;
        let records = Manifest::reset(&destination, |file| plan.namer.is_ours(file))
            .map_err(manifest_error)?;
        reporter.event(Event::Removed {
            count,
            records,
            dir: &dir,
        });
    }
    let manifest = Manifest::open(&destination).map_err(manifest_error)?;
    let models = config.model_names().join(", ");
    reporter.event(Event::Planned {
        to_make: survey.to_make(),
        on_disk: plan.jobs.len() - survey.to_make(),
        model: &models,
        dir: &dir,
        jobs: config.jobs,
    });

    let context = Arc::new(Context {
        service: client,
        sink: Sink::new(destination, manifest, config.max_cost),
        reporter: reporter.clone(),
        jobs: config.jobs,
        retry: config.retry,
        ipm: config.ipm.map(engine::pace::ImageRate::per_minute),
    });
    let summary = engine::live::execute(&plan, &survey, context, stop).await;
    if config.gallery {
        // The images are safe whatever happens here: a gallery that cannot be written is a
        // warning, not a failed run.
        match report::gallery::write(&config.dst_dir) {
            Ok(path) => reporter.event(Event::Gallery { path: &path }),
            Err(e) => reporter.event(Event::Warning {
                text: &format!("could not write the gallery: {e}"),
            }),
        }
    }
    reporter.event(Event::Finished { summary: &summary });
    let outcome = Outcome::Ran(summary);
    if config.json
        && let Outcome::Ran(summary) = &outcome
    {
        let doc = report::json::document(config, &plan, &survey, Some(summary), outcome.status());
        print_json(&doc);
    }
    Ok(outcome)
}

/// One JSON document on stdout, for `--json`.
pub fn print_json(doc: &serde_json::Value) {
    let mut text = serde_json::to_string_pretty(doc).unwrap_or_default();
    text.push('\n');
    print(&text);
}

/// Runs a subcommand: everything but making images.
fn run_command(command: &cli::Command) -> Result<(), Error> {
    match command {
        cli::Command::Models => print(&catalog::render_table()),
        cli::Command::Gallery { dir } => {
            let path = report::gallery::rebuild(dir).map_err(|e| Error::Gallery {
                dir: dir.display().to_string(),
                problem: e.to_string(),
            })?;
            eprintln!("wrote {}", path.display());
        }
        cli::Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut cli::command(), "genimg", &mut out);
            print(&String::from_utf8_lossy(&out));
        }
        cli::Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cli::command())
                .render(&mut out)
                .expect("writing to memory does not fail");
            print(&String::from_utf8_lossy(&out));
        }
    }
    Ok(())
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth reporting.
fn print(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use outcome::{Failure, FailureKind, FatalStop, Made};

    fn summary(made: usize, failed: usize, interrupted: bool) -> Summary {
        let m = Made::example("a.png", None, None);
        let f = Failure {
            file_name: "b.png".into(),
            prompt: None,
            index: 1,
            reason: "x".into(),
            kind: FailureKind::Error,
            attempts: 1,
        };
        Summary {
            made: vec![m; made],
            failed: vec![f; failed],
            interrupted,
            ..Summary::default()
        }
    }

    #[test]
    fn exit_codes() {
        assert_eq!(Outcome::DryRun.status(), Status::Success);
        assert_eq!(Outcome::Ran(summary(3, 0, false)).status(), Status::Success);
        assert_eq!(Outcome::Ran(summary(0, 0, false)).status(), Status::Success);
        assert_eq!(
            Outcome::Ran(summary(2, 1, false)).status(),
            Status::SomeFailed
        );
        assert_eq!(
            Outcome::Ran(summary(2, 1, true)).status(),
            Status::Interrupted
        );
        let mut fatal = summary(2, 1, true);
        fatal.fatal = Some(FatalStop {
            fatal: provider::Fatal::Unauthorized,
            error: "HTTP 401".into(),
        });
        assert_eq!(Outcome::Ran(fatal).status(), Status::Fatal);
        assert_eq!(Status::Usage as u8, 2);
        assert_eq!(Status::Fatal as u8, 3);
        assert_eq!(Status::Interrupted as u8, 130);
    }
}
