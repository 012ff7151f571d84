//! Concurrent execution: at most N requests in flight, one failure never stops the others,
//! and Ctrl-C stops cleanly.
//!
//! The first Ctrl-C stops new requests and lets those in flight finish and be saved; a second
//! one abandons them. Either way no partial file is left under a final name, since every
//! write is atomic (see `output`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::{self, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::api::{ApiError, Client, GeneratedImage, ImageRequest};
use crate::output::Destination;
use crate::plan::{Job, Plan, Survey};
use crate::progress::{Event, Reporter};

/// An image saved under its final name.
#[derive(Debug, Clone)]
pub struct Made {
    pub file_name: String,
    /// The prompt's name in its file; `None` for a prompt on the command line.
    pub prompt: Option<String>,
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
    /// The prompt's name in its file; `None` for a prompt on the command line.
    pub prompt: Option<String>,
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

/// Where images come from: the API client, or a stand-in in tests.
pub trait ImageService: Send + Sync + 'static {
    fn create(
        &self,
        request: &ImageRequest,
    ) -> impl Future<Output = Result<GeneratedImage, ApiError>> + Send;
}

impl ImageService for Client {
    fn create(
        &self,
        request: &ImageRequest,
    ) -> impl Future<Output = Result<GeneratedImage, ApiError>> + Send {
        Client::create(self, request)
    }
}

/// Everything the workers share.
#[derive(Debug)]
pub struct Context<S> {
    pub service: S,
    pub destination: Destination,
    /// Requests in flight at most.
    pub jobs: usize,
}

/// Makes every image of the plan that is not on disk yet.
pub async fn execute<S: ImageService>(
    plan: &Plan,
    survey: &Survey,
    context: Arc<Context<S>>,
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
        prompt: job.prompt.label.clone(),
        index: job.index,
        reason,
        refused,
    }
}

/// One image: request it, then write it atomically off the async workers.
async fn make_image<S: ImageService>(context: Arc<Context<S>>, job: Job) -> Result<Made, Failure> {
    let started = Instant::now();
    let image = context
        .service
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
            prompt: job.prompt.label.clone(),
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::api::{ErrorBody, StatusError};
    use crate::cli::try_parse_from;
    use crate::config::{Config, Env};
    use crate::format::ImageFormat;
    use crate::progress::Event;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";

    /// A stand-in for the API: answers after `delay`, refuses prompts containing "refuse",
    /// and counts what it sees.
    #[derive(Debug, Default)]
    struct Stand {
        delay: Duration,
        calls: AtomicUsize,
        in_flight: AtomicUsize,
        peak: AtomicUsize,
        /// Pressed like Ctrl-C as the first request arrives.
        stop_on_first: Option<Stop>,
    }

    impl ImageService for Stand {
        fn create(
            &self,
            request: &ImageRequest,
        ) -> impl Future<Output = Result<GeneratedImage, ApiError>> + Send {
            let prompt = request.prompt().to_owned();
            async move {
                if self.calls.fetch_add(1, Ordering::SeqCst) == 0
                    && let Some(stop) = &self.stop_on_first
                {
                    stop.stop();
                }
                let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                self.peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(self.delay).await;
                self.in_flight.fetch_sub(1, Ordering::SeqCst);
                if prompt.contains("refuse") {
                    return Err(ApiError::Status(Box::new(StatusError {
                        status: 400,
                        body: ErrorBody {
                            message: Some("rejected by the safety system".into()),
                            code: Some("moderation_blocked".into()),
                            ..ErrorBody::default()
                        },
                        request_id: Some("req_1".into()),
                    })));
                }
                Ok(GeneratedImage {
                    bytes: PNG.to_vec(),
                    format: ImageFormat::Png,
                    revised_prompt: None,
                    usage: None,
                    request_id: Some("req_ok".into()),
                })
            }
        }
    }

    /// Counts the events a run reports.
    #[derive(Debug, Default)]
    struct Tally {
        saved: AtomicUsize,
        failed: AtomicUsize,
    }

    impl Reporter for Tally {
        fn event(&self, event: Event<'_>) {
            match event {
                Event::Saved { .. } => self.saved.fetch_add(1, Ordering::SeqCst),
                Event::Failed { .. } => self.failed.fetch_add(1, Ordering::SeqCst),
                _ => 0,
            };
        }
    }

    struct Setup {
        _dir: tempfile::TempDir,
        plan: Plan,
        context: Arc<Context<Stand>>,
    }

    fn setup(prompts: &str, count: u32, jobs: usize, stand: Stand) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let count = count.to_string();
        let jobs_arg = jobs.to_string();
        let dst = dir.path().to_str().unwrap();
        let args = [
            "genimg",
            "--input",
            "-",
            "-o",
            dst,
            "-n",
            &count,
            "-j",
            &jobs_arg,
            "--api-key",
            "k",
        ];
        let cli = try_parse_from(args).unwrap();
        let config =
            Config::from_cli_with_stdin(cli, &Env::default(), &mut prompts.as_bytes()).unwrap();
        let plan = Plan::new(&config);
        let context = Arc::new(Context {
            service: stand,
            destination: Destination::open(dir.path()).unwrap(),
            jobs,
        });
        Setup {
            _dir: dir,
            plan,
            context,
        }
    }

    impl Setup {
        /// Runs the whole plan, nothing being on disk yet.
        async fn execute(&self, stop: &Stop, reporter: &dyn Reporter) -> Summary {
            let survey = Survey {
                on_disk: vec![false; self.plan.jobs.len()],
                removals: Vec::new(),
            };
            execute(&self.plan, &survey, self.context.clone(), stop, reporter).await
        }
    }

    fn files(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().ends_with(".png")
            })
            .count()
    }

    #[tokio::test]
    async fn never_more_than_the_limit_in_flight_and_every_image_saved() {
        let s = setup(
            "# a\nx\n# b\ny\n",
            5,
            3,
            Stand {
                delay: Duration::from_millis(20),
                ..Stand::default()
            },
        );
        let tally = Tally::default();
        let summary = s.execute(&Stop::new(), &tally).await;
        assert_eq!(summary.made.len(), 10);
        assert!(summary.failed.is_empty());
        assert_eq!(s.context.service.peak.load(Ordering::SeqCst), 3);
        assert_eq!(tally.saved.load(Ordering::SeqCst), 10);
        assert_eq!(files(s.context.destination.dir()), 10);
        assert!(!summary.interrupted);
    }

    #[tokio::test]
    async fn one_at_a_time_with_a_limit_of_one() {
        let s = setup(
            "# a\nx\n",
            4,
            1,
            Stand {
                delay: Duration::from_millis(5),
                ..Stand::default()
            },
        );
        s.execute(&Stop::new(), &Tally::default()).await;
        assert_eq!(s.context.service.peak.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failure_does_not_stop_the_others() {
        let s = setup(
            "# ok\nfine\n# bad\nplease refuse\n# ok2\nfine too\n",
            2,
            2,
            Stand::default(),
        );
        let tally = Tally::default();
        let summary = s.execute(&Stop::new(), &tally).await;
        assert_eq!(summary.made.len(), 4);
        assert_eq!(summary.failed.len(), 2);
        for f in &summary.failed {
            assert_eq!(f.prompt.as_deref(), Some("bad"));
            assert!(f.refused);
            assert!(
                f.reason.starts_with("refused by the service: HTTP 400"),
                "{}",
                f.reason
            );
            assert!(f.reason.contains("request req_1"), "{}", f.reason);
        }
        assert_eq!(tally.failed.load(Ordering::SeqCst), 2);
        assert_eq!(files(s.context.destination.dir()), 4);
    }

    #[tokio::test]
    async fn images_on_disk_are_skipped() {
        let s = setup("# a\nx\n", 4, 2, Stand::default());
        let survey = Survey {
            on_disk: vec![true, false, true, false],
            removals: Vec::new(),
        };
        let summary = execute(
            &s.plan,
            &survey,
            s.context.clone(),
            &Stop::new(),
            &Tally::default(),
        )
        .await;
        assert_eq!(summary.skipped, 2);
        assert_eq!(summary.made.len(), 2);
        assert_eq!(s.context.service.calls.load(Ordering::SeqCst), 2);
        let names: Vec<&str> = summary.made.iter().map(|m| m.file_name.as_str()).collect();
        assert!(names.contains(&"image.a.02.hd.png") && names.contains(&"image.a.04.hd.png"));
    }

    #[tokio::test]
    async fn a_stop_lets_requests_in_flight_finish_and_starts_no_more() {
        let stop = Stop::new();
        let stand = Stand {
            delay: Duration::from_millis(30),
            stop_on_first: Some(stop.clone()),
            ..Stand::default()
        };
        let s = setup("# a\nx\n", 10, 3, stand);
        let summary = s.execute(&stop, &Tally::default()).await;
        // The stop arrives while the first three are starting: nothing after them.
        let calls = s.context.service.calls.load(Ordering::SeqCst);
        assert!(calls <= 3, "{calls} requests after a stop");
        assert_eq!(
            summary.made.len(),
            calls,
            "every request in flight was saved"
        );
        assert!(summary.interrupted);
        assert_eq!(summary.unfinished, 10 - calls);
        assert_eq!(files(s.context.destination.dir()), calls);
    }

    #[tokio::test]
    async fn a_stop_before_the_start_sends_nothing() {
        let s = setup("# a\nx\n", 3, 2, Stand::default());
        let stop = Stop::new();
        stop.stop();
        let summary = s.execute(&stop, &Tally::default()).await;
        assert_eq!(s.context.service.calls.load(Ordering::SeqCst), 0);
        assert!(summary.interrupted);
        assert_eq!(summary.unfinished, 3);
    }

    #[tokio::test]
    async fn an_abort_abandons_requests_in_flight() {
        let s = setup(
            "# a\nx\n",
            4,
            2,
            Stand {
                delay: Duration::from_secs(30),
                ..Stand::default()
            },
        );
        let stop = Stop::new();
        let aborter = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            aborter.abort();
        });
        let started = Instant::now();
        let summary = s.execute(&stop, &Tally::default()).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(summary.interrupted);
        assert!(summary.made.is_empty());
        assert_eq!(summary.unfinished, 4);
        assert_eq!(files(s.context.destination.dir()), 0);
    }
}
