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
use store::trash::Trash;
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
    #[error("trash {dir}: {problem}")]
    Trash { dir: String, problem: String },
    /// The Batch API refused a call no retry can fix (exit code 3).
    #[error(transparent)]
    Batch(#[from] engine::batch::BatchError),
}

impl Error {
    /// The exit status of the error: a usage or input error, or (for the Batch API) an
    /// error of the service's that stopped the command.
    pub fn status(&self) -> Status {
        match self {
            Error::Batch(_) => Status::Fatal,
            _ => Status::Usage,
        }
    }
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
        Invocation::Batch(batch) => return batch_command(batch, reporter, stop).await,
        Invocation::Models => print(&catalog::render_table()),
        Invocation::Gallery { dir, serve } => {
            let gallery_error = |e: std::io::Error| Error::Gallery {
                dir: dir.display().to_string(),
                problem: e.to_string(),
            };
            let owned = dir.clone();
            let path = tokio::task::spawn_blocking(move || report::gallery::rebuild(&owned))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)))
                .map_err(gallery_error)?;
            let _ = writeln!(std::io::stderr(), "wrote {}", path.display());
            if *serve {
                let listener = report::serve::bind().await.map_err(gallery_error)?;
                let addr = listener.local_addr().map_err(gallery_error)?;
                // On stdout, for a script to read: the address, then nothing more.
                print(&format!(
                    "http://{addr}/\n(serving {}; picks are saved to {}; Ctrl-C stops)\n",
                    path.display(),
                    dir.join(report::serve::PICKS).display()
                ));
                report::serve::serve(listener, dir.clone(), path.clone(), stop.token())
                    .await
                    .map_err(gallery_error)?;
            }
        }
        Invocation::Trash { dir, command } => trash_command(dir, *command)?,
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

/// `genimg trash list|empty DIR`.
fn trash_command(dir: &std::path::Path, command: config::TrashCommand) -> Result<(), Error> {
    // A folder that is not there has no trash: it is not made by asking.
    if !dir.is_dir() {
        return Err(Error::Config(ConfigError::Option {
            given: dir.display().to_string(),
            problem: "is not a folder".to_owned(),
        }));
    }
    let trash = dir.join(store::trash::DIR);
    let fail = |e: std::io::Error| Error::Trash {
        dir: trash.display().to_string(),
        problem: e.to_string(),
    };
    match command {
        config::TrashCommand::List => {
            let folders = store::trash::list(dir).map_err(fail)?;
            print(&report::dry_run::render_trash(dir, &folders));
        }
        config::TrashCommand::Empty => {
            // Held while the trash goes, so no run moves an image in meanwhile.
            let _lock = Destination::open(dir)?;
            let (files, bytes) = store::trash::empty(dir).map_err(fail)?;
            let text = if files == 0 {
                format!("{} is empty: nothing to delete.", trash.display())
            } else {
                format!(
                    "Deleted {} with {files} file(s), {}.",
                    trash.display(),
                    units::human_bytes(bytes)
                )
            };
            let _ = writeln!(std::io::stderr(), "{text}");
        }
    }
    Ok(())
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
    // A prompt from the command line never takes the names of another prompt's images, on
    // disk or pending in a batch.
    // Only then: a prompt file's run reads neither the manifest nor the ledger here.
    if plan.one_off
        && let Ok(history) = store::manifest::History::read(&config.dst_dir)
    {
        let ledger = store::batches::Ledger::read(&config.dst_dir).unwrap_or_default();
        let taken = engine::batch::pending_hashes(&config.dst_dir, &ledger);
        plan.make_room(&history, &taken);
        // Images with no record (the seed's, or made before the manifest) count as this
        // prompt's, as a seed re-run expects; a different prompt would make nothing: said.
        let unrecorded = plan.unrecorded(&history);
        if !unrecorded.is_empty()
            && matches!(
                config.existing,
                config::Existing::Keep | config::Existing::RemakeStale
            )
        {
            let more = match unrecorded.len() {
                1 => String::new(),
                n => format!(" and {} more", n - 1),
            };
            reporter.event(Event::Warning {
                text: &format!(
                    "{}{more} in {} has no record in {} (made before it): taken as this \
                     prompt's image and kept. If it is another prompt's, give this one a name \
                     of its own: --name NAME",
                    unrecorded[0],
                    config.dst_dir.display(),
                    store::manifest::FILE_NAME,
                ),
            });
        }
    }
    if config.dry_run {
        let survey = store::survey(&plan, config.existing)?;
        plan.adopt(&survey);
        let ledger = store::batches::Ledger::read(&config.dst_dir).unwrap_or_default();
        let mut survey = survey;
        survey.mark_pending(&plan, &engine::batch::pending(&config.dst_dir, &ledger));
        if config.batch {
            skip_refused(config, &plan, &mut survey);
        }
        if config.json {
            print_json(&report::json::document(
                config,
                &plan,
                &survey,
                None,
                Status::Success,
            ));
        } else if config.batch {
            let todo: Vec<usize> = (0..plan.jobs.len())
                .filter(|&i| survey.is_todo(i))
                .collect();
            let chunks = engine::batch::split(&plan, &todo, &engine::batch::placeholder)?;
            print(&report::dry_run::render_batches(
                &plan, &survey, config, &chunks,
            ));
        } else {
            print(&report::dry_run::render(&plan, &survey, config));
        }
        return Ok(Outcome::DryRun);
    }

    let mut clients = provider::Clients::default();
    for id in config.providers() {
        let client_config =
            config
                .endpoint_for(id)
                .client_config()
                .ok_or(ConfigError::MissingKey {
                    hint: id.key_advice(),
                })?;
        clients = clients.with(id, provider::Client::new(&client_config)?);
    }
    let destination = Destination::open(&config.dst_dir)?;
    let mut survey = store::survey(&plan, config.existing)?;
    plan.adopt(&survey);
    if config.batch {
        if config.providers().contains(&catalog::ProviderId::OpenAi)
            && !matches!(
                config.endpoint.provider,
                provider::Provider::OpenAi(provider::Service::OpenAi)
            )
        {
            return Err(Error::Config(ConfigError::Option {
                given: "--batch".to_owned(),
                problem: "genimg sends batches to OpenAI's Batch API; Azure OpenAI's batches \
                          are not supported yet"
                    .to_owned(),
            }));
        }
        return make_batch(config, plan, survey, clients, destination, reporter, stop).await;
    }
    let ledger =
        store::batches::Ledger::read(&config.dst_dir).map_err(|e| OutputError::Manifest {
            path: config
                .dst_dir
                .join(store::batches::FILE_NAME)
                .display()
                .to_string(),
            source: e,
        })?;
    survey.mark_pending(&plan, &engine::batch::pending(&config.dst_dir, &ledger));
    if survey.pending_count() > 0 {
        reporter.event(Event::Note {
            text: &format!(
                "{} image(s) are pending in a batch of {}: not bought again; collect them with \
                 `genimg batch collect {}`",
                survey.pending_count(),
                config.dst_dir.display(),
                config.dst_dir.display()
            ),
        });
    }
    // The total a dry run shows: the verdict agrees with the amount the reader sees, and
    // the run's own limit takes the rounding that total made (its slack).
    let estimate = report::dry_run::Estimate::new(&plan, &survey);
    if let Some(max) = config.max_cost
        && (estimate.unpriced > 0 || estimate.total > max)
    {
        return Err(Error::OverBudget {
            estimate: estimate.total,
            unpriced: estimate.unpriced,
            max,
        });
    }
    let dir = config.dst_dir.display().to_string();
    let trash = Arc::new(Trash::new(&config.dst_dir));
    let manifest = open_manifest(config, &plan, &survey, &destination, &trash, &reporter)?;
    let models = config.model_names().join(", ");
    reporter.event(Event::Planned {
        to_make: survey.to_make(),
        on_disk: plan.jobs.len() - survey.to_make(),
        model: &models,
        dir: &dir,
        jobs: config.jobs,
    });

    let context = Arc::new(Context {
        service: clients,
        sink: Sink::new(destination, manifest, config.max_cost)
            .with_budget_slack(estimate.exact - estimate.total)
            .with_trash(trash.clone()),
        reporter: reporter.clone(),
        jobs: config.jobs,
        retry: config.retry,
        ipm: config.ipm,
        max_wait: config.max_wait,
    });
    let summary = engine::live::execute(&plan, &survey, context.clone(), stop).await;
    Ok(finish_run(config, &plan, &survey, summary, &context.sink, &reporter).await)
}

/// The destination's manifest, open for appending; with `--from-scratch`, first the run's
/// earlier images and their records moved to the trash.
fn open_manifest(
    config: &Config,
    plan: &Plan,
    survey: &plan::Survey,
    destination: &Destination,
    trash: &Trash,
    reporter: &Arc<dyn Reporter>,
) -> Result<Manifest, Error> {
    let manifest_error = |source| OutputError::Manifest {
        path: config
            .dst_dir
            .join(manifest::FILE_NAME)
            .display()
            .to_string(),
        source,
    };
    if config.existing == Existing::Remove {
        // Read before anything goes: whose each record's image is.
        let history = store::manifest::History::read(&config.dst_dir).map_err(manifest_error)?;
        // The images first, then their records: each is always in one of the two
        // manifests (see `store::trash`).
        let files = trash
            .move_files(&survey.removals)
            .map_err(|(file, source)| OutputError::Trash {
                path: config.dst_dir.join(file).display().to_string(),
                source,
            })?;
        let records = Manifest::reset(
            destination,
            |file| plan.owns(file, &history),
            |lines| trash.add_records(lines),
        )
        .map_err(manifest_error)?;
        reporter.event(Event::Trashed {
            files,
            records,
            dir: &config.dst_dir.display().to_string(),
            folder: trash.report().map(|t| t.folder).as_deref(),
        });
    }
    Ok(Manifest::open(destination).map_err(manifest_error)?)
}

/// The end of a run, live or batch: the records of replaced images out of the manifest,
/// the gallery, the closing summary, `--json`.
async fn finish_run(
    config: &Config,
    plan: &Plan,
    survey: &plan::Survey,
    mut summary: outcome::Summary,
    sink: &Sink,
    reporter: &Arc<dyn Reporter>,
) -> Outcome {
    settle_trash(sink, &mut summary, reporter);
    if config.gallery {
        write_gallery(&config.dst_dir, reporter).await;
    }
    let names = config.model_names();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    reporter.event(Event::Finished {
        summary: &summary,
        models: &names,
    });
    let outcome = Outcome::Ran(summary);
    if config.json
        && let Outcome::Ran(summary) = &outcome
    {
        let doc = report::json::document(config, plan, survey, Some(summary), outcome.status());
        print_json(&doc);
    }
    outcome
}

/// Once the run has written its last record: the records of the images it replaced leave
/// the manifest (they are in the trash's), and the summary says what went to the trash.
fn settle_trash(sink: &Sink, summary: &mut outcome::Summary, reporter: &Arc<dyn Reporter>) {
    if let Err(e) = sink.settle() {
        // They are in both manifests: the trash's copy is whole, and the live ones are
        // older than the records that replaced them.
        reporter.event(Event::Warning {
            text: &format!(
                "could not take the replaced images' records out of {}: {e}",
                sink.manifest().path().display()
            ),
        });
    }
    summary.trashed = sink.trash().report().map(Box::new);
}

/// Writes the destination's gallery. The images are safe whatever happens here: a gallery
/// that cannot be written is a warning, not a failed run. Its thumbnails are decoded and
/// scaled on threads of their own, never on the runtime's workers.
async fn write_gallery(dir: &std::path::Path, reporter: &Arc<dyn Reporter>) {
    let owned = dir.to_owned();
    let written = tokio::task::spawn_blocking(move || report::gallery::write(&owned))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    match written {
        Ok(path) => reporter.event(Event::Gallery { path: &path }),
        Err(e) => reporter.event(Event::Warning {
            text: &format!("could not write the gallery: {e}"),
        }),
    }
}

/// With `--batch`, an image the service refused (as the manifest last recorded it, for the
/// same request) is not asked again unless `--overwrite` or `--from-scratch` says so.
fn skip_refused(config: &Config, plan: &Plan, survey: &mut plan::Survey) {
    if !matches!(config.existing, Existing::Keep | Existing::RemakeStale) {
        return;
    }
    let Ok(refused) = engine::batch::refused(&config.dst_dir) else {
        return;
    };
    if refused.is_empty() {
        return;
    }
    for (i, job) in plan.jobs.iter().enumerate() {
        if let Some(hash) = refused.get(&job.file_name)
            && job.prompt.identity().matches(hash)
            && survey.is_todo(i)
        {
            survey.mark_refused(i);
        }
    }
}

/// A run through the Batch API: collect what earlier runs submitted, submit what is
/// neither on disk nor pending, wait (unless `--no-wait`) and collect.
async fn make_batch(
    config: &Config,
    plan: Plan,
    mut survey: plan::Survey,
    clients: provider::Clients,
    destination: Destination,
    reporter: Arc<dyn Reporter>,
    stop: &Stop,
) -> Result<Outcome, Error> {
    let started = std::time::Instant::now();
    // On disk before this run: the summary's "already there".
    let on_disk = (0..plan.jobs.len()).filter(|&i| !survey.is_todo(i)).count();
    let dir = config.dst_dir.display().to_string();
    let trash = Arc::new(Trash::new(&config.dst_dir));
    let manifest = open_manifest(config, &plan, &survey, &destination, &trash, &reporter)?;
    let batcher = engine::batch::Batcher {
        apis: clients.batch_apis(),
        clients,
        sink: Arc::new(Sink::new(destination, manifest, None).with_trash(trash.clone())),
        reporter: reporter.clone(),
        poll: config.poll_interval,
    };
    let mut summary = outcome::Summary::default();
    let mut ledger = store::batches::Ledger::read(&config.dst_dir)
        .map_err(|e| engine::batch::BatchError(format!("{}: {e}", store::batches::FILE_NAME)))?;
    // What earlier runs submitted: given its batch, looked at, collected where over.
    batcher.reconcile(&mut ledger, true).await?;
    let seen = batcher.refresh(&mut ledger).await?;
    batcher
        .collect_over(&mut ledger, &seen, &mut summary)
        .await?;
    // What is left to buy: neither on disk (a collect may just have put it there) nor
    // pending, nor refused before.
    survey = store::survey(&plan, config.existing)?;
    survey.mark_pending(&plan, &engine::batch::pending(&config.dst_dir, &ledger));
    skip_refused(config, &plan, &mut survey);
    // Images this run just collected are made, whatever --overwrite says: it asks for
    // images made before, not for those the run itself is bringing in.
    let collected: std::collections::HashSet<&str> =
        summary.made.iter().map(|m| m.planned.as_str()).collect();
    let todo: Vec<usize> = (0..plan.jobs.len())
        .filter(|&i| survey.is_todo(i) && !collected.contains(plan.jobs[i].file_name.as_str()))
        .collect();
    let refused_again = survey.refused_count();
    if refused_again > 0 {
        reporter.event(Event::Note {
            text: &format!(
                "{refused_again} image(s) were refused by the service before: not asked again \
                 (reword their prompts, or pass --overwrite)"
            ),
        });
    }
    let pending = survey.pending_count();
    if let Some(max) = config.max_cost {
        let todo_set: std::collections::HashSet<usize> = todo.iter().copied().collect();
        let estimate = report::dry_run::Estimate::of(&plan, |i| todo_set.contains(&i));
        let total = estimate.total_at(catalog::BATCH_PRICE);
        if estimate.unpriced > 0 || total > max {
            return Err(Error::OverBudget {
                estimate: total,
                unpriced: estimate.unpriced,
                max,
            });
        }
    }
    reporter.event(Event::Note {
        text: &format!(
            "Batch: {} image(s) to submit, {pending} pending in earlier batches, {on_disk} \
             already in {dir}{}",
            todo.len(),
            match collected.len() {
                0 => String::new(),
                n => format!(", {n} collected now"),
            },
        ),
    });
    if !todo.is_empty() {
        // A request too big for any batch is said before anything is uploaded.
        engine::batch::split(&plan, &todo, &engine::batch::placeholder)?;
        let sources = batcher.references(&mut ledger, &plan, &todo).await?;
        let source = |r: &spec::Reference| {
            sources
                .get(&r.sha256)
                .cloned()
                .unwrap_or_else(|| engine::batch::placeholder(r))
        };
        let chunks = engine::batch::split(&plan, &todo, &source)?;
        batcher.submit(&mut ledger, &plan, &chunks, &source).await?;
    }
    if config.wait {
        batcher.wait(&mut ledger, &mut summary, stop).await?;
    }
    // What is still pending, for --json: this run's submissions too.
    survey.mark_pending(&plan, &engine::batch::pending(&config.dst_dir, &ledger));
    let left: Vec<String> = ledger
        .batches
        .iter()
        .filter_map(|e| e.batch_id.clone())
        .collect();
    if !left.is_empty() {
        reporter.event(Event::Note {
            text: &format!(
                "{} batch(es) pending ({}): collect with `genimg batch collect {dir}`, or run \
                 the same command again",
                left.len(),
                left.join(", ")
            ),
        });
    }
    // Already on disk before this run; not the pending ones, nor those refused before
    // (said above), nor those this run collected (counted as made).
    summary.skipped = on_disk;
    summary.refused_before = refused_again;
    summary.elapsed = started.elapsed();
    Ok(finish_run(config, &plan, &survey, summary, &batcher.sink, &reporter).await)
}

/// `genimg batch status|collect|cancel DIR`.
async fn batch_command(
    batch: &config::BatchConfig,
    reporter: Arc<dyn Reporter>,
    stop: &Stop,
) -> Result<Outcome, Error> {
    use config::BatchCommand;
    // A folder that is not there holds no batch: it is not made by asking.
    if !batch.dir.is_dir() {
        return Err(Error::Config(ConfigError::Option {
            given: batch.dir.display().to_string(),
            problem: "is not a folder of a --batch run".to_owned(),
        }));
    }
    let read_ledger = || {
        store::batches::Ledger::read(&batch.dir)
            .map_err(|e| engine::batch::BatchError(format!("{}: {e}", store::batches::FILE_NAME)))
    };
    // A client for each provider the ledger's batches need; a key missing for one of them
    // is said before any request.
    let mut needed: Vec<catalog::ProviderId> = read_ledger()?
        .batches
        .iter()
        .map(|e| e.provider())
        .collect();
    needed.sort();
    needed.dedup();
    let mut clients = provider::Clients::default();
    let mut missing = None;
    for id in needed {
        match batch.endpoint_for(id).client_config() {
            Some(c) => clients = clients.with(id, provider::Client::new(&c)?),
            None => {
                missing.get_or_insert(id.key_advice());
            }
        }
    }
    if batch.command == BatchCommand::Status && missing.is_some() {
        // Without a key, what the ledger last recorded.
        let ledger = store::batches::Ledger::read(&batch.dir).map_err(|e| {
            engine::batch::BatchError(format!("{}: {e}", store::batches::FILE_NAME))
        })?;
        reporter.event(Event::Warning {
            text: "no API key: showing what the ledger last recorded, without asking the service",
        });
        print(&report::dry_run::render_ledger(&batch.dir, &ledger.batches));
        return Ok(Outcome::Printed);
    }
    if let Some(hint) = missing {
        return Err(ConfigError::MissingKey { hint }.into());
    }
    let started = std::time::Instant::now();
    if batch.command == BatchCommand::Status {
        let mut ledger = store::batches::Ledger::read(&batch.dir).map_err(|e| {
            engine::batch::BatchError(format!("{}: {e}", store::batches::FILE_NAME))
        })?;
        let apis = clients.batch_apis();
        let mut refreshed = Vec::new();
        for entry in ledger.batches.iter_mut() {
            let api = apis.iter().find(|a| a.provider() == entry.provider());
            if let (Some(id), Some(api)) = (&entry.batch_id, api) {
                match api.get(id).await {
                    Ok(b) => engine::batch::update(entry, &b),
                    Err(e) => reporter.event(Event::Warning {
                        text: &format!("batch {id}: {e}"),
                    }),
                }
            }
            refreshed.push(entry.clone());
        }
        print(&report::dry_run::render_ledger(&batch.dir, &refreshed));
        return Ok(Outcome::Printed);
    }
    let destination = Destination::open(&batch.dir)?;
    let manifest = Manifest::open(&destination).map_err(|source| OutputError::Manifest {
        path: batch.dir.join(manifest::FILE_NAME).display().to_string(),
        source,
    })?;
    let batcher = engine::batch::Batcher {
        apis: clients.batch_apis(),
        clients,
        sink: Arc::new(Sink::new(destination, manifest, None)),
        reporter: reporter.clone(),
        poll: batch.poll_interval,
    };
    let mut ledger = store::batches::Ledger::read(&batch.dir)
        .map_err(|e| engine::batch::BatchError(format!("{}: {e}", store::batches::FILE_NAME)))?;
    let mut summary = outcome::Summary::default();
    batcher.reconcile(&mut ledger, false).await?;
    match batch.command {
        BatchCommand::Cancel => batcher.cancel(&mut ledger, &mut summary, stop).await?,
        BatchCommand::Collect { wait: true } => {
            batcher.wait(&mut ledger, &mut summary, stop).await?
        }
        _ => {
            let seen = batcher.refresh(&mut ledger).await?;
            batcher
                .collect_over(&mut ledger, &seen, &mut summary)
                .await?;
        }
    }
    let left: Vec<String> = ledger
        .batches
        .iter()
        .filter_map(|e| e.batch_id.clone())
        .collect();
    let dir = batch.dir.display();
    if !left.is_empty() {
        reporter.event(Event::Note {
            text: &format!(
                "{} batch(es) still running ({}): `genimg batch collect {dir} --wait` waits for them",
                left.len(),
                left.join(", ")
            ),
        });
    }
    summary.elapsed = started.elapsed();
    settle_trash(&batcher.sink, &mut summary, &reporter);
    if !summary.made.is_empty() || !summary.failed.is_empty() {
        write_gallery(&batch.dir, &reporter).await;
    }
    reporter.event(Event::Finished {
        summary: &summary,
        models: &[],
    });
    Ok(Outcome::Ran(summary))
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
