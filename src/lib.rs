//! genimg: generate images in bulk from named text prompts with OpenAI's image models.
//!
//! The binary is a thin shell around [`run`]: parse the command line into an [`Invocation`],
//! run it, map the [`Outcome`] to an exit code. Everything is testable without argv.

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
use std::sync::Arc;

use thiserror::Error;

use config::Existing;
pub use config::{Config, ConfigError, Env, Invocation};
use engine::live::{Context, Stop};
pub use outcome::{Outcome, Status};
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

/// Does what genimg was asked: a subcommand prints what it was asked for; a dry run prints
/// the plan and its estimated cost on stdout; a real run makes the missing images and
/// reports on `reporter`.
pub async fn run(
    invocation: &Invocation,
    reporter: Arc<dyn Reporter>,
    stop: &Stop,
) -> Result<Outcome, Error> {
    match invocation {
        Invocation::Run(config) => return make_images(config, reporter, stop).await,
        Invocation::Models => print(&catalog::render_table()),
        Invocation::Gallery { dir } => {
            let path = report::gallery::rebuild(dir).map_err(|e| Error::Gallery {
                dir: dir.display().to_string(),
                problem: e.to_string(),
            })?;
            let _ = writeln!(std::io::stderr(), "wrote {}", path.display());
        }
        Invocation::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut cli::command(), "genimg", &mut out);
            print(&String::from_utf8_lossy(&out));
        }
        Invocation::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cli::command())
                .render(&mut out)
                .expect("writing to memory does not fail");
            print(&String::from_utf8_lossy(&out));
        }
    }
    Ok(Outcome::Printed)
}

/// A run, dry or real.
async fn make_images(
    config: &Config,
    reporter: Arc<dyn Reporter>,
    stop: &Stop,
) -> Result<Outcome, Error> {
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
        ipm: config.ipm,
        max_wait: config.max_wait,
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
    let names = config.model_names();
    reporter.event(Event::Finished {
        summary: &summary,
        models: &names,
    });
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
pub fn print_json(doc: &impl serde::Serialize) {
    let mut text = serde_json::to_string_pretty(doc).unwrap_or_default();
    text.push('\n');
    print(&text);
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth reporting.
fn print(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}
