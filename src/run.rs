//! Concurrent execution: at most N requests in flight, one failure never stops the others,
//! and Ctrl-C stops cleanly.
//!
//! The first Ctrl-C stops new requests and lets those in flight finish and be saved; a second
//! one abandons them. Either way no partial file is left under a final name, since every
//! write is atomic (see `output`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::{self, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::api::{ApiError, Client};
use crate::output::Destination;
use crate::plan::{Job, Plan, Survey};
use crate::progress::{Event, Reporter};

/// An image saved under its final name.
#[derive(Debug, Clone)]
pub struct Made {
    pub file_name: String,
    pub prompt: String,
    pub index: u32,
    pub bytes: usize,
    pub elapsed: Duration,
    pub revised_prompt: Option<String>,
    pub request_id: Option<String>,
}

/// An image that was not made, and why.
#[derive(Debug, Clone)]
pub struct Failure {
    pub file_name: String,
    pub prompt: String,
    pub index: u32,
    pub reason: String,
    /// The service refused the prompt itself.
    pub refused: bool,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Summary {
    pub made: Vec<Made>,
    pub failed: Vec<Failure>,
    /// Already in the destination, so not requested.
    pub skipped: usize,
    /// Not made because the run was interrupted.
    pub unfinished: usize,
    pub interrupted: bool,
    pub elapsed: Duration,
}

/// Stopping signals, shared with the Ctrl-C watcher.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    /// Start no new request.
    stop: CancellationToken,
    /// Abandon the requests in flight too.
    abort: CancellationToken,
}

impl Stop {
    pub fn new() -> Stop {
        Stop::default()
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }

    pub fn abort(&self) {
        self.stop.cancel();
        self.abort.cancel();
    }

    pub fn is_stopped(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Watches for Ctrl-C: the first stops new requests, the second aborts.
    pub fn watch_ctrl_c(&self, reporter: Arc<dyn Reporter>) {
        let stop = self.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            stop.stop();
            reporter.event(Event::Stopping);
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.abort();
                reporter.event(Event::Aborting);
            }
        });
    }
}

/// Everything the workers share.
#[derive(Debug)]
pub struct Context {
    pub client: Client,
    pub destination: Destination,
    /// Requests in flight at most.
    pub jobs: usize,
}

/// Makes every image of the plan that is not on disk yet.
pub async fn execute(
    plan: &Plan,
    survey: &Survey,
    context: Arc<Context>,
    stop: &Stop,
    reporter: &dyn Reporter,
) -> Summary {
    let started = Instant::now();
    let todo: Vec<&Job> = plan
        .jobs
        .iter()
        .zip(&survey.on_disk)
        .filter(|(_, on_disk)| !**on_disk)
        .map(|(job, _)| job)
        .collect();
    let mut summary = Summary {
        skipped: plan.jobs.len() - todo.len(),
        ..Summary::default()
    };
    let total = todo.len();
    let limit = context.jobs.max(1);

    let mut in_flight: JoinSet<Result<Made, Failure>> = JoinSet::new();
    // Which job each task runs, to report a task that ended without an answer.
    let mut running: HashMap<task::Id, &Job> = HashMap::new();
    let mut started_count = 0;

    'starting: for job in &todo {
        // The set never holds more than `limit` tasks, so never more requests are in flight.
        while in_flight.len() >= limit {
            tokio::select! {
                biased;
                () = stop.stop.cancelled() => break 'starting,
                done = in_flight.join_next_with_id() => {
                    if let Some(done) = done {
                        record(done, &mut running, &mut summary, total, reporter);
                    }
                }
            }
        }
        if stop.is_stopped() {
            break;
        }
        reporter.event(Event::Started { job });
        let handle = in_flight.spawn(make_image(context.clone(), (*job).clone()));
        running.insert(handle.id(), job);
        started_count += 1;
    }

    loop {
        tokio::select! {
            biased;
            () = stop.abort.cancelled() => {
                in_flight.abort_all();
                while let Some(done) = in_flight.join_next_with_id().await {
                    record(done, &mut running, &mut summary, total, reporter);
                }
                break;
            }
            done = in_flight.join_next_with_id() => match done {
                Some(done) => record(done, &mut running, &mut summary, total, reporter),
                None => break,
            },
        }
    }

    summary.interrupted = stop.is_stopped();
    summary.unfinished = (total - started_count) + running.len();
    summary.elapsed = started.elapsed();
    summary
}

type Finished = Result<(task::Id, Result<Made, Failure>), task::JoinError>;

fn record(
    done: Finished,
    running: &mut HashMap<task::Id, &Job>,
    summary: &mut Summary,
    total: usize,
    reporter: &dyn Reporter,
) {
    let (id, outcome) = match done {
        Ok((id, outcome)) => (id, outcome),
        // Abandoned after a second Ctrl-C: it stays in `running` and counts as not made.
        Err(e) if e.is_cancelled() => return,
        Err(e) => {
            let Some(job) = running.remove(&e.id()) else {
                return;
            };
            (
                e.id(),
                Err(failure(job, format!("internal error: {e}"), false)),
            )
        }
    };
    running.remove(&id);
    let done = summary.made.len() + summary.failed.len() + 1;
    match outcome {
        Ok(made) => {
            reporter.event(Event::Saved {
                made: &made,
                done,
                total,
            });
            summary.made.push(made);
        }
        Err(failure) => {
            reporter.event(Event::Failed {
                failure: &failure,
                done,
                total,
            });
            summary.failed.push(failure);
        }
    }
}

fn failure(job: &Job, reason: String, refused: bool) -> Failure {
    Failure {
        file_name: job.file_name.clone(),
        prompt: job.prompt.name.clone(),
        index: job.index,
        reason,
        refused,
    }
}

/// One image: request it, then write it atomically off the async workers.
async fn make_image(context: Arc<Context>, job: Job) -> Result<Made, Failure> {
    let started = Instant::now();
    let image = context
        .client
        .create(&job.prompt.request)
        .await
        .map_err(|e: ApiError| {
            let refused = e.is_refusal();
            let reason = if refused {
                format!("refused by the service: {e}")
            } else {
                e.to_string()
            };
            failure(&job, reason, refused)
        })?;

    let size = image.bytes.len();
    let writer = context.clone();
    let file_name = job.file_name.clone();
    let bytes = image.bytes;
    let written =
        task::spawn_blocking(move || writer.destination.write_atomic(&file_name, &bytes)).await;
    match written {
        Ok(Ok(_path)) => Ok(Made {
            file_name: job.file_name.clone(),
            prompt: job.prompt.name.clone(),
            index: job.index,
            bytes: size,
            elapsed: started.elapsed(),
            revised_prompt: image.revised_prompt,
            request_id: image.request_id,
        }),
        Ok(Err(e)) => Err(failure(
            &job,
            format!("the image arrived but could not be saved: {e}"),
            false,
        )),
        Err(e) => Err(failure(
            &job,
            format!("the image arrived but saving it stopped: {e}"),
            false,
        )),
    }
}
