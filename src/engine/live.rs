//! Concurrent execution: at most N requests in flight, retries that honour the server, one
//! failure never stops the others, a fatal error or a signal (Ctrl-C, SIGTERM, SIGHUP) stops
//! cleanly.
//!
//! A retryable error is tried again after the wait the server asked for, else after an
//! exponential backoff (see `provider::retry`). A 429 also pauses the whole run for that wait, so
//! no new request piles onto a service that just asked for less. An error no request of the
//! run can survive (a bad key, an unknown model, an empty account) stops new requests; those
//! in flight finish and are saved. The first Ctrl-C, SIGTERM or SIGHUP does the same; a second
//! one (any of the three) abandons the requests in flight. Either way no partial file is left
//! under a final name, since every write is atomic (see `store::atomic`), and each image's
//! outcome is appended to the manifest.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::task::{self, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::engine::pace::{Pause, RELEASE_SPACING, Rate, Window};
use crate::outcome::{Failure, FailureKind, FatalStop, Made, StopSignal, Summary};
use crate::plan::{Job, Plan, Survey};
use crate::progress::{Event, Reporter};
use crate::provider::{
    ApiError, Billed, Client, Delivered, Fatal, MAX_RETRY_AFTER, PartialSink, RetryPolicy, Verdict,
};
use crate::spec::{ImageSpec, ProviderId};
use crate::store::manifest::{self, Record};
use crate::store::sink::{Kept, Received, Sink};

/// Stopping signals, shared with the signal watcher.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    /// Start no new request.
    stop: CancellationToken,
    /// Abandon the requests in flight too.
    abort: CancellationToken,
    /// The signal that stopped the run, if one did: the first one wins.
    signal: Arc<OnceLock<StopSignal>>,
}

impl Stop {
    pub fn new() -> Stop {
        Stop::default()
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Stops on `signal`, which is remembered unless another stopped the run before.
    pub fn stop_on(&self, signal: StopSignal) {
        let _ = self.signal.set(signal);
        self.stop();
    }

    pub fn abort(&self) {
        self.stop.cancel();
        self.abort.cancel();
    }

    pub fn is_stopped(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Waits until the run is stopped.
    pub async fn stopped(&self) {
        self.stop.cancelled().await;
    }

    /// A token cancelled when the run is stopped, for work that outlives a borrow of this.
    pub fn token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// The signal that stopped the run, if a signal did.
    pub fn signal(&self) -> Option<StopSignal> {
        self.signal.get().copied()
    }

    /// Watches for Ctrl-C, SIGTERM and SIGHUP: the first stops new requests, a second Ctrl-C
    /// or SIGTERM aborts (a second SIGHUP does not). Outside unix, only Ctrl-C.
    pub fn watch_signals(&self, reporter: Arc<dyn Reporter>) {
        // Installed now, before any request: a signal from here on stops the run cleanly.
        let mut signals = match Signals::install() {
            Ok(signals) => signals,
            Err(e) => {
                tracing::warn!("cannot watch for signals: {e}");
                return;
            }
        };
        let stop = self.clone();
        tokio::spawn(async move {
            let Some(signal) = signals.next().await else {
                return;
            };
            stop.stop_on(signal);
            reporter.event(Event::Stopping { signal });
            // A hangup never abandons the requests in flight: a closed SSH session may send
            // it twice, and nobody is left who could have asked for an abort.
            while let Some(next) = signals.next().await {
                if next != StopSignal::Hangup {
                    stop.abort();
                    reporter.event(Event::Aborting);
                    break;
                }
            }
        });
    }
}

/// The signals that stop a run.
#[cfg(unix)]
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// The next one to arrive; `None` once none can.
    async fn next(&mut self) -> Option<StopSignal> {
        tokio::select! {
            s = self.interrupt.recv() => s.map(|()| StopSignal::Interrupt),
            s = self.terminate.recv() => s.map(|()| StopSignal::Terminate),
            s = self.hangup.recv() => s.map(|()| StopSignal::Hangup),
        }
    }
}

/// Ctrl-C only, outside unix.
#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> std::io::Result<Signals> {
        Ok(Signals)
    }

    async fn next(&mut self) -> Option<StopSignal> {
        tokio::signal::ctrl_c()
            .await
            .ok()
            .map(|()| StopSignal::Interrupt)
    }
}

/// Where images come from: the API client, or a stand-in in tests.
pub trait ImageService: Send + Sync + 'static {
    fn create(&self, spec: &ImageSpec) -> impl Future<Output = Result<Delivered, ApiError>> + Send;

    /// As `create`, handing the partial images of a streamed answer to `partial`.
    fn create_with(
        &self,
        spec: &ImageSpec,
        partial: Option<&PartialSink>,
    ) -> impl Future<Output = Result<Delivered, ApiError>> + Send {
        let _ = partial;
        self.create(spec)
    }
}

impl ImageService for Client {
    fn create(&self, spec: &ImageSpec) -> impl Future<Output = Result<Delivered, ApiError>> + Send {
        Client::create(self, spec)
    }

    fn create_with(
        &self,
        spec: &ImageSpec,
        partial: Option<&PartialSink>,
    ) -> impl Future<Output = Result<Delivered, ApiError>> + Send {
        Client::create_with(self, spec, partial)
    }
}

impl ImageService for crate::provider::Clients {
    fn create(&self, spec: &ImageSpec) -> impl Future<Output = Result<Delivered, ApiError>> + Send {
        crate::provider::Clients::create_with(self, spec, None)
    }

    fn create_with(
        &self,
        spec: &ImageSpec,
        partial: Option<&PartialSink>,
    ) -> impl Future<Output = Result<Delivered, ApiError>> + Send {
        crate::provider::Clients::create_with(self, spec, partial)
    }
}

/// Everything the workers share.
#[derive(Debug)]
pub struct Context<S> {
    pub service: S,
    /// Where every image goes, with the manifest and the `--max-cost` budget.
    pub sink: Sink,
    pub reporter: Arc<dyn Reporter>,
    /// Requests in flight at most.
    pub jobs: usize,
    pub retry: RetryPolicy,
    /// `--ipm`: requests per minute at most.
    pub ipm: Option<std::num::NonZeroU32>,
    /// `--max-wait`: the longest wait beyond [`MAX_RETRY_AFTER`] the run sits out when the
    /// service asks for one; a longer one stops the run.
    pub max_wait: Duration,
}

/// What the tasks of one run share beyond the context.
#[derive(Debug)]
struct Shared {
    /// Start no new request: Ctrl-C, or a fatal error.
    halt: CancellationToken,
    pause: Pause,
    window: Window,
    /// Whether the service has answered anything yet (an image or an error answer).
    answered: AtomicBool,
    /// Requests sent so far, and those of them that failed to connect, before the service
    /// first answered.
    sent: AtomicU32,
    unreachable: AtomicU32,
    /// The pace of new requests: `--ipm`, and the limit the service showed.
    rate: Rate,
    /// When the run last made progress: an image arrived (or a long wait the service asked
    /// for ended). Rate-limit 429s do not use up an image's attempts while it is recent.
    progress: Mutex<tokio::time::Instant>,
    /// The end of the longest wait beyond [`MAX_RETRY_AFTER`] said so far, to say each once.
    long_wait: Mutex<Option<tokio::time::Instant>>,
    /// When the run began sitting out waits beyond [`MAX_RETRY_AFTER`] with no image since:
    /// `--max-wait` bounds the time from then to the end of the last such wait.
    sitting_since: Mutex<Option<tokio::time::Instant>>,
}

/// How long a run may go without an image before rate-limit 429s count against an image's
/// attempts again: while images keep arriving, a 429 for rate is a pacing signal, not a
/// failure.
pub const RATE_LIMIT_PATIENCE: Duration = Duration::from_secs(10 * 60);

/// The run stops as it cannot reach the service (exit 3) when every request it sent failed to
/// connect, at least this many, before the service ever answered. A request still on its way
/// may have reached it (an image takes a minute to make), so it holds the stop off; once the
/// service has answered, a connection that fails is a blip: that image retries as usual.
const UNREACHABLE_AFTER: u32 = 3;

impl Shared {
    fn new(halt: CancellationToken, limit: usize, ipm: Option<std::num::NonZeroU32>) -> Shared {
        Shared {
            halt,
            pause: Pause::default(),
            window: Window::new(limit),
            answered: AtomicBool::new(false),
            sent: AtomicU32::new(0),
            unreachable: AtomicU32::new(0),
            rate: Rate::new(ipm),
            progress: Mutex::new(tokio::time::Instant::now()),
            long_wait: Mutex::new(None),
            sitting_since: Mutex::new(None),
        }
    }

    /// A request goes out.
    fn sending(&self) {
        self.sent.fetch_add(1, Ordering::SeqCst);
    }

    /// An image arrived: the waits sat out so far no longer count against `--max-wait`.
    fn image_arrived(&self) {
        self.progressed(tokio::time::Instant::now());
        *self.sitting_since.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Whether the run may sit out a wait of `wait` the service asked for: from the first
    /// such wait since the last image to the end of this one is at most `max`. If not, that
    /// time.
    fn may_sit_out(&self, wait: Duration, max: Duration) -> Result<(), Duration> {
        let now = tokio::time::Instant::now();
        let mut since = self.sitting_since.lock().unwrap_or_else(|e| e.into_inner());
        let all = (now + wait).saturating_duration_since(*since.get_or_insert(now));
        if all <= max { Ok(()) } else { Err(all) }
    }

    /// Whether an image arrived within [`RATE_LIMIT_PATIENCE`].
    fn progressing(&self) -> bool {
        let last = *self.progress.lock().unwrap_or_else(|e| e.into_inner());
        tokio::time::Instant::now().saturating_duration_since(last) < RATE_LIMIT_PATIENCE
    }

    /// Progress as of `at`.
    fn progressed(&self, at: tokio::time::Instant) {
        let mut last = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        *last = (*last).max(at);
    }

    /// The service asked for a wait beyond [`MAX_RETRY_AFTER`], within `--max-wait`: the
    /// whole run sits it out, and the patience with rate limits counts from its end. Whether
    /// it is news, to be said.
    fn sit_out(&self, wait: Duration) -> bool {
        let end = tokio::time::Instant::now() + wait;
        self.pause.extend(wait);
        self.progressed(end);
        let mut said = self.long_wait.lock().unwrap_or_else(|e| e.into_inner());
        // Another request meeting the same wait (give or take a second) says nothing new.
        let news = said.is_none_or(|s| end > s + Duration::from_secs(1));
        if news {
            *said = Some(end);
        }
        news
    }

    /// Passes an answer on, or turns a failure to connect into a stop of the whole run when
    /// every request sent so far, at least [`UNREACHABLE_AFTER`], failed to connect.
    fn unless_unreachable(
        &self,
        answer: Result<Delivered, ApiError>,
    ) -> Result<Delivered, ApiError> {
        match answer {
            Err(ApiError::Connect { host, detail }) => {
                let failed = self.unreachable.fetch_add(1, Ordering::SeqCst) + 1;
                if failed >= UNREACHABLE_AFTER
                    && failed >= self.sent.load(Ordering::SeqCst)
                    && !self.answered.load(Ordering::SeqCst)
                {
                    Err(ApiError::Unreachable {
                        host,
                        detail,
                        attempts: failed,
                    })
                } else {
                    Err(ApiError::Connect { host, detail })
                }
            }
            Ok(_) | Err(ApiError::Status(_)) => {
                self.answered.store(true, Ordering::SeqCst);
                self.unreachable.store(0, Ordering::SeqCst);
                answer
            }
            other => other,
        }
    }
}

/// How one job ended.
#[derive(Debug)]
enum Ended {
    Made(Made),
    Failed(Failure),
    /// The run stopped before this job's request (or its next retry) was sent. What its
    /// earlier answers billed without a usable image, if any.
    NotSent {
        billed: f64,
    },
    /// Its request (or its next retry) was not sent, to stay within `--max-cost`.
    OverBudget {
        billed: f64,
    },
}

/// Makes every image of the plan that is not on disk yet.
pub async fn execute<S: ImageService>(
    plan: &Plan,
    survey: &Survey,
    context: Arc<Context<S>>,
    stop: &Stop,
) -> Summary {
    let started = Instant::now();
    let todo: Vec<&Job> = plan
        .jobs
        .iter()
        .enumerate()
        .filter(|(i, _)| survey.is_todo(*i))
        .map(|(_, job)| job)
        .collect();
    // Held back (pending in a batch, refused in one before): left out, and not there.
    let (pending, refused_before) = (survey.pending_count(), survey.refused_count());
    let mut summary = Summary {
        skipped: plan.jobs.len() - todo.len() - pending - refused_before,
        pending,
        refused_before,
        stale: survey
            .stale(plan)
            .iter()
            .map(|j| j.file_name.clone())
            .collect(),
        ..Summary::default()
    };
    let total = todo.len();
    let limit = context.jobs.max(1);
    let reporter = context.reporter.clone();
    // Ctrl-C halts the run; so does a fatal error, without counting as an interruption.
    let halt = stop.stop.child_token();
    // Each provider is paced on its own: a 429 from one does not slow the other. `-j` and
    // `--ipm` hold for each.
    let mut lanes: HashMap<ProviderId, Arc<Shared>> = HashMap::new();
    for job in &todo {
        lanes
            .entry(job.prompt.spec.provider)
            .or_insert_with(|| Arc::new(Shared::new(halt.clone(), limit, context.ipm)));
    }
    let mut tally = Tally {
        running: HashMap::new(),
        summary: &mut summary,
        total,
        reporter: reporter.as_ref(),
        halt: &halt,
        max_cost: context.sink.budget().map(|b| b.max()),
    };

    let mut in_flight: JoinSet<Ended> = JoinSet::new();
    // Each provider's jobs wait in a queue of their own, in plan order, and each keeps at
    // most twice the window of tasks: one provider's jobs sitting out a pause never take the
    // places the other's could use.
    let mut queues: Vec<(ProviderId, VecDeque<(usize, &Job)>)> = Vec::new();
    for (at, job) in todo.iter().enumerate() {
        let provider = job.prompt.spec.provider;
        match queues.iter_mut().find(|(p, _)| *p == provider) {
            Some((_, queue)) => queue.push_back((at, job)),
            None => queues.push((provider, VecDeque::from([(at, *job)]))),
        }
    }
    let mut tasks: HashMap<ProviderId, usize> = HashMap::new();
    let mut lane_of: HashMap<task::Id, ProviderId> = HashMap::new();
    'starting: loop {
        // Requests in flight are held to each lane's window (at most `limit`); twice as many
        // tasks keep the next requests ready while finished images are still being saved.
        let next = queues
            .iter_mut()
            .filter(|(p, _)| tasks.get(p).copied().unwrap_or(0) < 2 * limit)
            .filter_map(|(p, queue)| Some((*p, queue.front()?.0, queue)))
            .min_by_key(|(_, at, _)| *at)
            .and_then(|(p, _, queue)| Some((p, queue.pop_front()?.1)));
        let Some((provider, job)) = next else {
            if queues.iter().all(|(_, queue)| queue.is_empty()) {
                break;
            }
            tokio::select! {
                biased;
                () = halt.cancelled() => break 'starting,
                done = in_flight.join_next_with_id() => {
                    if let Some(done) = done {
                        let id = match &done {
                            Ok((id, _)) => *id,
                            Err(e) => e.id(),
                        };
                        if let Some(p) = lane_of.remove(&id) {
                            *tasks.entry(p).or_insert(1) -= 1;
                        }
                        tally.record(done);
                    }
                }
            }
            continue;
        };
        if halt.is_cancelled() {
            break;
        }
        reporter.event(Event::Started { job });
        let shared = lanes[&provider].clone();
        let handle = in_flight.spawn(make_image(context.clone(), shared, job.clone()));
        tally.running.insert(handle.id(), job);
        lane_of.insert(handle.id(), provider);
        *tasks.entry(provider).or_insert(0) += 1;
    }

    loop {
        tokio::select! {
            biased;
            () = stop.abort.cancelled() => {
                in_flight.abort_all();
                while let Some(done) = in_flight.join_next_with_id().await {
                    tally.record(done);
                }
                break;
            }
            done = in_flight.join_next_with_id() => match done {
                Some(done) => tally.record(done),
                None => break,
            },
        }
    }

    summary.interrupted = stop.is_stopped();
    summary.interrupted_by = stop.signal();
    summary.unfinished = total - summary.made.len() - summary.failed.len();
    summary.retries = summary
        .made
        .iter()
        .map(|m| m.attempts)
        .chain(summary.failed.iter().map(|f| f.attempts))
        .map(|a| a.saturating_sub(1))
        .sum();
    summary.elapsed = started.elapsed();
    summary
}

/// Collects the jobs as they end.
struct Tally<'a> {
    /// Which job each task runs, to report a task that ended without an answer.
    running: HashMap<task::Id, &'a Job>,
    summary: &'a mut Summary,
    total: usize,
    reporter: &'a dyn Reporter,
    halt: &'a CancellationToken,
    max_cost: Option<f64>,
}

type Finished = Result<(task::Id, Ended), task::JoinError>;

impl Tally<'_> {
    fn record(&mut self, done: Finished) {
        let (id, ended) = match done {
            Ok(done) => done,
            // Abandoned after a second Ctrl-C: it counts as not made.
            Err(e) if e.is_cancelled() => return,
            Err(e) => {
                let Some(job) = self.running.get(&e.id()) else {
                    return;
                };
                let reason = format!("internal error: {e}");
                (
                    e.id(),
                    Ended::Failed(failure(job, reason, FailureKind::Error, 0)),
                )
            }
        };
        self.running.remove(&id);
        let s = &mut *self.summary;
        let done = s.made.len() + s.failed.len() + 1;
        let total = self.total;
        match ended {
            Ended::Made(made) => {
                self.reporter.event(Event::Saved {
                    made: &made,
                    done,
                    total,
                });
                s.made.push(made);
            }
            Ended::Failed(failure) => {
                // The same stop again, met by a request already in flight: said once, and
                // that image counts as not made, as the stop's other images do (see
                // `Failure::stopped_by`); kept for --json. (An image the destination would
                // not take is listed each time: each says where it was kept.)
                if let (FailureKind::Fatal(fatal), Some(stop)) = (failure.kind, &s.fatal)
                    && stop.fatal == fatal
                    && fatal != Fatal::CannotSave
                {
                    s.failed.push(failure);
                    return;
                }
                if let FailureKind::Fatal(fatal) = failure.kind
                    && s.fatal.is_none()
                {
                    self.halt.cancel();
                    let stop = FatalStop {
                        fatal,
                        error: failure.reason.clone(),
                    };
                    self.reporter.event(Event::Fatal { stop: &stop });
                    s.fatal = Some(stop);
                }
                self.reporter.event(Event::Failed {
                    failure: &failure,
                    done,
                    total,
                });
                s.failed.push(failure);
            }
            Ended::NotSent { billed } => s.billed_not_made += billed,
            Ended::OverBudget { billed } => {
                s.billed_not_made += billed;
                if s.budget_stop.is_none() {
                    s.budget_stop = Some(self.max_cost.unwrap_or_default());
                    self.halt.cancel();
                    self.reporter.event(Event::OverBudget {
                        max: self.max_cost.unwrap_or_default(),
                    });
                }
            }
        }
    }
}

fn failure(job: &Job, reason: String, kind: FailureKind, attempts: u32) -> Failure {
    Failure {
        file_name: job.file_name.clone(),
        prompt: job.prompt.label.clone(),
        index: job.index,
        reason,
        kind,
        attempts,
        cost: None,
        moderation: None,
    }
}

/// Why an attempt gave no image.
#[derive(Debug)]
enum Attempt {
    Api(ApiError),
    /// The run halted before the attempt was sent.
    Halted,
    /// Sending it could take the spend past `--max-cost`.
    OverBudget,
    /// The service asks for a wait that would keep the run waiting longer than `--max-wait`:
    /// `all` from the first wait since the last image to the end of this one.
    TooLong {
        error: ApiError,
        wait: Duration,
        all: Duration,
    },
}

/// One image: request it (retrying what is worth it), hand what arrives to the sink off the
/// async workers, and record the outcome in the manifest.
async fn make_image<S: ImageService>(
    context: Arc<Context<S>>,
    shared: Arc<Shared>,
    job: Job,
) -> Ended {
    let started = Instant::now();
    let spec = &job.prompt.spec;
    let mut record = Record::of_job(&job);
    // A streamed answer's partial images go under `.genimg/partials/` as they arrive.
    let partials: Option<Arc<PartialSink>> =
        spec.options.stream.then(|| partial_writer(&context, &job));
    let attempts = AtomicU32::new(0);
    // When the first request went out: the record's start, rather than when the job was
    // queued behind others.
    let first_sent: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    // What answers that could not be used billed all the same.
    let billed = std::sync::Mutex::new(0.0f64);
    // The last error, for the record of an image whose next attempt was not sent.
    let last_error: std::sync::Mutex<Option<ApiError>> = std::sync::Mutex::new(None);
    let estimate = job.prompt.estimate.unwrap_or(0.0);
    let budget = context.sink.budget();
    let max_attempts = context.retry.max_retries + 1;
    // Whether the last attempt met a 429: its retry leaves the run's pause in line.
    let after_429 = AtomicBool::new(false);
    let attempt = || async {
        // Room in the concurrency window, the end of any pause of the whole run, and a slot
        // of the pace come before any request; a run that halts meanwhile sends none.
        let slot = tokio::select! {
            biased;
            () = shared.halt.cancelled() => return Err(Attempt::Halted),
            slot = async {
                let slot = shared.window.acquire().await;
                // A pause that began while it waited for its turn holds it back too.
                let mut in_line = after_429.swap(false, Ordering::SeqCst);
                loop {
                    // Requests that waited on a pause leave it spaced, by the rate if
                    // there is one, else one by one.
                    let spacing = if shared.rate.paces() {
                        Duration::ZERO
                    } else {
                        RELEASE_SPACING
                    };
                    shared.pause.wait(spacing, std::mem::take(&mut in_line)).await;
                    shared.rate.take().await;
                    if !shared.pause.is_on() {
                        break;
                    }
                }
                slot
            } => slot,
        };
        let first = attempts.fetch_add(1, Ordering::SeqCst) == 0;
        // The first request reserves the image's estimate. A retry, its estimate still
        // reserved, goes only while what was spent stays within the limit too: answers that
        // billed without a usable image count there.
        if let Some(budget) = budget
            && !budget.reserve(if first { estimate } else { 0.0 })
        {
            attempts.fetch_sub(1, Ordering::SeqCst);
            return Err(Attempt::OverBudget);
        }
        let sent = tokio::time::Instant::now();
        first_sent.get_or_init(manifest::now);
        context.reporter.event(Event::Sending {
            job: &job,
            attempt: attempts.load(Ordering::SeqCst),
        });
        shared.sending();
        let answer =
            shared.unless_unreachable(context.service.create_with(spec, partials.as_deref()).await);
        // Off the wire before its slot is free, so that the display never counts more
        // requests in flight than the slots allow.
        context.reporter.event(Event::Answered {
            job: &job,
            image: answer.is_ok(),
        });
        // Before the slot goes to a waiting request, so that it sees a halt or a pause.
        pace_after(&context, &shared, &job, sent, &answer);
        // What the answer billed counts before the slot goes too, so that the next request
        // is weighed against it.
        match &answer {
            Ok(image) => {
                if let Some(budget) = budget {
                    budget.settle(estimate, image_cost(&job, image).unwrap_or(estimate));
                }
            }
            Err(e) => {
                if let Some(cost) = billed_cost(&job, e) {
                    *billed.lock().unwrap_or_else(|e| e.into_inner()) += cost;
                    if let Some(budget) = budget {
                        budget.spend(cost);
                    }
                }
                *last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.clone());
            }
        }
        drop(slot);
        answer.map_err(Attempt::Api)
    };
    // The retries an image may use, with the waits between them. A 429 for rate does not use
    // one while the run makes progress (see [`RATE_LIMIT_PATIENCE`]).
    let mut backoff = backon::BackoffBuilder::build(context.retry.backoff());
    let mut used = 0;
    let mut few_retries: HashMap<std::mem::Discriminant<ApiError>, u32> = HashMap::new();
    let result = loop {
        let error = match attempt().await {
            Ok(image) => break Ok(image),
            Err(Attempt::Api(error)) => error,
            Err(stopped) => break Err(stopped),
        };
        if verdict_logged(&error) != Verdict::Retry {
            break Err(Attempt::Api(error));
        }
        // Some errors are worth fewer retries than the run allows.
        if let Some(most) = error.retries_at_most() {
            let seen = few_retries
                .entry(std::mem::discriminant(&error))
                .or_insert(0);
            if *seen >= most {
                break Err(Attempt::Api(error));
            }
            *seen += 1;
        }
        let asked = error.retry_after();
        let rate_limited = error.is_rate_limited();
        let (wait, long, counted) = match asked {
            // A wait the service asks for is sat out without using an attempt, as long as
            // the run has waited so within `--max-wait` since its last image.
            Some(wait) if wait > MAX_RETRY_AFTER => {
                if let Err(all) = shared.may_sit_out(wait, context.max_wait) {
                    break Err(Attempt::TooLong { error, wait, all });
                }
                (wait, true, false)
            }
            _ if rate_limited && shared.progressing() => {
                (asked.unwrap_or(context.retry.min_delay), false, false)
            }
            _ => match backoff.next() {
                Some(backoff) => {
                    used += 1;
                    (asked.unwrap_or(backoff), false, true)
                }
                None => break Err(Attempt::Api(error)),
            },
        };
        let pauses_run = error.status() == Some(429) || long;
        if long {
            if shared.sit_out(wait) {
                tracing::warn!(
                    wait_s = wait.as_secs(),
                    max_wait_s = context.max_wait.as_secs(),
                    error = %error,
                    "the service asks for a long wait; waiting"
                );
                context.reporter.event(Event::LongWait {
                    wait,
                    max: context.max_wait,
                });
            }
        } else if pauses_run {
            shared.pause.extend(wait);
        }
        after_429.store(pauses_run, Ordering::SeqCst);
        tracing::info!(
            file = %job.file_name,
            attempt = attempts.load(Ordering::SeqCst),
            used,
            max_attempts,
            counted,
            wait_ms = wait.as_millis() as u64,
            error = %error,
            "retrying"
        );
        context.reporter.event(Event::Retrying {
            job: &job,
            attempt: used,
            max_attempts,
            wait,
            error: &error,
            pauses_run,
            counted,
        });
        // Waiting for a retry ends early if the run halts: that retry is then never sent.
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shared.halt.cancelled() => {}
        }
    };
    let attempts = attempts.load(Ordering::SeqCst);
    record.attempts = attempts;
    if let Some(sent) = first_sent.into_inner() {
        record.started = sent;
    }
    let billed = billed.into_inner().unwrap_or_else(|e| e.into_inner());
    // The estimate reserved when the first request went out, to give back now.
    let reserved = if attempts > 0 && budget.is_some() {
        estimate
    } else {
        0.0
    };

    let image = match result {
        Ok(image) => image,
        Err(stopped @ (Attempt::Halted | Attempt::OverBudget)) => {
            if let Some(budget) = budget {
                budget.settle(reserved, 0.0);
            }
            let over_budget = matches!(stopped, Attempt::OverBudget);
            // Answers that billed without a usable image were paid for: the manifest keeps
            // what they cost, though the image was not made (a run again asks for it).
            if billed > 0.0 {
                let last = last_error.into_inner().unwrap_or_else(|e| e.into_inner());
                let why = if over_budget {
                    "another could pass --max-cost"
                } else {
                    "the run stopped"
                };
                let mut reason = last
                    .as_ref()
                    .map_or_else(|| "no usable image".to_owned(), ToString::to_string);
                reason.push_str(&format!(
                    " (not asked again after {attempts} attempt(s): {why})"
                ));
                record.status = manifest::Status::Failed;
                record.error = Some(reason);
                record.request_id = last
                    .as_ref()
                    .and_then(|e| e.request_id())
                    .map(str::to_owned);
                record.cost_usd = Some(billed);
                record.finished = manifest::now();
                let writer = context.clone();
                let _ = task::spawn_blocking(move || writer.sink.record_failure(&record)).await;
            }
            return if over_budget {
                Ended::OverBudget { billed }
            } else {
                Ended::NotSent { billed }
            };
        }
        Err(Attempt::Api(e)) => {
            if let Some(budget) = budget {
                budget.settle(reserved, 0.0);
            }
            return gave_up(&context, &job, record, &e, billed, None).await;
        }
        Err(Attempt::TooLong { error, wait, all }) => {
            if let Some(budget) = budget {
                budget.settle(reserved, 0.0);
            }
            let duration = crate::progress::duration;
            let why = if all > wait + Duration::from_secs(1) {
                format!(
                    "the service asks to wait {} more, {} of waiting without an image in all, \
                     longer than --max-wait {}",
                    duration(wait),
                    duration(all),
                    duration(context.max_wait)
                )
            } else {
                format!(
                    "the service asks to wait {}, longer than --max-wait {}",
                    duration(wait),
                    duration(context.max_wait)
                )
            };
            return gave_up(&context, &job, record, &error, billed, Some(why)).await;
        }
    };
    let ended = hand_over(&context, &shared, &job, record, image, billed, started).await;
    // The final image replaces its partials.
    if spec.options.stream && matches!(ended, Ended::Made(_)) {
        remove_partials(context.sink.destination().dir(), &job.file_name);
    }
    ended
}

/// Where a job's partial images go: `.genimg/partials/` in the destination.
pub const PARTIALS_DIR: &str = ".genimg/partials";

/// The name of a job's `index`-th partial image: `image_01_hd.partial-2.png`. Never a final
/// name: it lives in [`PARTIALS_DIR`].
fn partial_name(file_name: &str, index: u32) -> String {
    match file_name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.partial-{index}.{ext}"),
        None => format!("{file_name}.partial-{index}"),
    }
}

/// Writes each partial image of `job` (whole, through a temporary file) and says so.
fn partial_writer<S: ImageService>(context: &Arc<Context<S>>, job: &Job) -> Arc<PartialSink> {
    let dir = context.sink.destination().dir().join(PARTIALS_DIR);
    let reporter = context.reporter.clone();
    let job = job.clone();
    let total = job.prompt.spec.options.partial_images.map_or(0, u32::from);
    Arc::new(move |index: u32, bytes: &[u8]| {
        let name = partial_name(&job.file_name, index);
        let written = std::fs::create_dir_all(&dir).and_then(|()| {
            let temp = dir.join(format!(".{name}.tmp"));
            std::fs::write(&temp, bytes)?;
            std::fs::rename(&temp, dir.join(&name))
        });
        if let Err(e) = written {
            tracing::warn!(file = %name, error = %e, "a partial image could not be written");
        }
        reporter.event(Event::Partial {
            job: &job,
            index,
            total: total.max(index),
        });
    })
}

/// Removes the partial images of the image named `file_name`.
fn remove_partials(dir: &std::path::Path, file_name: &str) {
    let dir = dir.join(PARTIALS_DIR);
    let Some((stem, _)) = file_name.rsplit_once('.') else {
        return;
    };
    let prefix = format!("{stem}.partial-");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// An image whose requests gave nothing to keep: its record says why, and what its answers
/// billed all the same. `too_long`: the run stops, as the service asks for a longer wait
/// than `--max-wait`, and this says so.
async fn gave_up<S: ImageService>(
    context: &Arc<Context<S>>,
    job: &Job,
    mut record: Record,
    e: &ApiError,
    billed: f64,
    too_long: Option<String>,
) -> Ended {
    let attempts = record.attempts;
    let verdict = match too_long {
        Some(_) => Verdict::Fatal(Fatal::WaitTooLong),
        None => e.verdict(),
    };
    let (kind, status) = match verdict {
        Verdict::Refused => (FailureKind::Refused, manifest::Status::Refused),
        Verdict::Fatal(f) => (FailureKind::Fatal(f), manifest::Status::Failed),
        Verdict::Retry | Verdict::Fail => (FailureKind::Error, manifest::Status::Failed),
    };
    let mut reason = match kind {
        FailureKind::Refused => {
            let reword = match &job.prompt.at {
                Some(at) => format!("reword the prompt at {at}"),
                None => "reword the prompt".to_owned(),
            };
            format!("refused by the service: {e}; {reword}")
        }
        _ => match &too_long {
            Some(why) => format!("{why} ({e})"),
            None => e.to_string(),
        },
    };
    if let Some(note) = e.param_note(&job.prompt.params_given) {
        reason.push_str(&note);
    }
    if attempts > 1 {
        reason.push_str(&format!(" (gave up after {attempts} attempts)"));
    }
    let billed = (billed > 0.0).then_some(billed);
    record.status = status;
    record.error = Some(reason.clone());
    record.request_id = e.request_id().map(str::to_owned);
    let moderation = e.moderation().map(|m| manifest::Moderation {
        stage: m.stage.clone(),
        categories: m.categories.clone(),
    });
    record.moderation = moderation.clone();
    record.cost_usd = billed;
    record.finished = manifest::now();
    let writer = context.clone();
    let _ = task::spawn_blocking(move || writer.sink.record_failure(&record)).await;
    Ended::Failed(Failure {
        cost: billed,
        moderation,
        ..failure(job, reason, kind, attempts)
    })
}

/// Hands what an answer delivered to the sink, off the async workers, and says how the image
/// ended: made (under its planned name or the one its bytes call for), or not saved.
async fn hand_over<S: ImageService>(
    context: &Arc<Context<S>>,
    shared: &Shared,
    job: &Job,
    mut record: Record,
    image: Delivered,
    billed: f64,
    started: Instant,
) -> Ended {
    let attempts = record.attempts;
    let total = match image_cost(job, &image) {
        Some(c) => Some(c + billed),
        None => (billed > 0.0).then_some(billed),
    };
    record.cost_usd = total;
    record.revised_prompt = image.revised_prompt.clone();
    record.usage = image.usage.clone();
    record.request_id = image.request_id.clone();
    let keeper = context.clone();
    let planned = job.file_name.clone();
    let asked = crate::store::sink::Asked::of(&job.prompt.spec);
    let halt = shared.halt.clone();
    let kept = task::spawn_blocking(move || {
        let kept = keeper
            .sink
            .keep(&planned, asked, &image.bytes, record, || halt.cancel());
        (kept, image)
    })
    .await;
    match kept {
        Ok((Ok(kept), image)) => {
            if let Some(text) = mismatch(&job.file_name, asked, &kept) {
                context.reporter.event(Event::Warning { text: &text });
            }
            Ended::Made(Made {
                file_name: kept.file,
                planned: job.file_name.clone(),
                prompt: job.prompt.label.clone(),
                index: job.index,
                bytes: kept.bytes,
                sha256: kept.sha256,
                elapsed: started.elapsed(),
                attempts,
                revised_prompt: image.revised_prompt,
                usage: image.usage,
                request_id: image.request_id,
                cost: total,
                received: match kept.received {
                    Received::Asked(_) => None,
                    other => Some(other.name()),
                },
            })
        }
        // The image was paid for: it was kept elsewhere if anywhere would take it. Stop
        // buying images that would be lost the same way.
        Ok((Err(not_kept), _)) => {
            shared.halt.cancel();
            Ended::Failed(Failure {
                cost: total,
                ..failure(
                    job,
                    not_kept.reason(),
                    FailureKind::Fatal(Fatal::CannotSave),
                    attempts,
                )
            })
        }
        Err(e) => Ended::Failed(Failure {
            cost: total,
            ..failure(
                job,
                format!("the image arrived but saving it stopped: {e}"),
                FailureKind::Fatal(Fatal::CannotSave),
                attempts,
            )
        }),
    }
}

/// The warning for an image kept under another name than planned, if it was.
pub(crate) fn mismatch(
    planned: &str,
    asked: crate::store::sink::Asked,
    kept: &Kept,
) -> Option<String> {
    let what = match kept.received {
        Received::Asked(_) => return None,
        // A model that picks its own format was asked none.
        Received::Other(_) if !asked.chosen => return None,
        Received::Other(format) => format.to_string(),
        Received::Unrecognised => "bytes genimg does not recognise as an image".to_owned(),
    };
    Some(format!(
        "{planned}: asked for {}, received {what}; kept as {}",
        asked.format, kept.file
    ))
}

/// What an attempt that gave no image was billed: from its `usage` for models priced by
/// token, else the price table; `None` if it was not billed.
fn billed_cost(job: &Job, e: &ApiError) -> Option<f64> {
    match e.billed() {
        Billed::No => None,
        Billed::Usage(usage) => job
            .prompt
            .model
            .cost_from_usage(usage)
            .or(job.prompt.estimate),
        Billed::Unknown => job.prompt.estimate,
    }
}

/// What an image cost: from `usage` for models priced by token, else the price table.
fn image_cost(job: &Job, image: &Delivered) -> Option<f64> {
    image
        .usage
        .as_ref()
        .and_then(|u| job.prompt.model.cost_from_usage(u))
        .or(job.prompt.estimate)
}

/// Adapts the pace to an answer: a limit the service shows sets the pace of new requests;
/// the window grows after successes and shrinks on a 429 that shows no limit (a 429 pauses
/// the run either way); a used-up rate-limit window pauses the run until it resets; and an
/// error no request can survive halts it at once.
fn pace_after<S>(
    context: &Context<S>,
    shared: &Shared,
    job: &Job,
    sent: tokio::time::Instant,
    answer: &Result<Delivered, ApiError>,
) {
    let limits = match answer {
        Ok(image) => image.rate_limit,
        Err(ApiError::Status(s)) => s.rate_limit,
        Err(_) => None,
    };
    if matches!(answer, Ok(_) | Err(ApiError::Status(_))) {
        shared.rate.settle();
    }
    if let Some(learned) = limits
        .and_then(|l| l.per_minute)
        .and_then(|limit| shared.rate.learn(limit))
    {
        tracing::info!(
            limit = learned.limit,
            pace = learned.pace,
            "the service's rate limit"
        );
        context.reporter.event(Event::RateLearned {
            limit: learned.limit,
            pace: learned.pace,
        });
    }
    let change = match answer {
        Ok(_) => {
            shared.image_arrived();
            shared.window.succeeded()
        }
        Err(error @ ApiError::Status(s)) => {
            let verdict = error.verdict();
            if let Verdict::Fatal(_) = verdict {
                shared.halt.cancel();
            }
            if s.status == 429 && verdict == Verdict::Retry {
                // At least until the retry's own wait is known and extends it further.
                shared.pause.extend(
                    error
                        .retry_after()
                        .unwrap_or(context.retry.min_delay)
                        .min(MAX_RETRY_AFTER),
                );
                // With the limit known the pace keeps under it; else fewer in flight do.
                if shared.rate.is_learned() {
                    None
                } else {
                    shared.window.rate_limited(sent)
                }
            } else {
                None
            }
        }
        Err(_) => None,
    };
    if let Some(wait) = limits.and_then(|l| l.exhausted_for()) {
        let wait = wait.min(MAX_RETRY_AFTER);
        tracing::info!(
            wait_ms = wait.as_millis() as u64,
            "rate-limit window used up"
        );
        shared.pause.extend(wait);
        context.reporter.event(Event::RateLimitWait { wait });
    }
    if let Some(change) = change {
        tracing::info!(
            from = change.from,
            to = change.to,
            file = %job.file_name,
            "concurrency changed"
        );
        context.reporter.event(Event::Concurrency {
            from: change.from,
            to: change.to,
        });
    }
}

/// The verdict on an error, noted in the debug log.
fn verdict_logged(e: &ApiError) -> Verdict {
    let verdict = e.verdict();
    tracing::debug!(error = %e, ?verdict, "classified");
    verdict
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;
    use crate::cli::try_parse_from;
    use crate::config::Existing;
    use crate::config::{Config, Env};
    use crate::plan::Found;
    use crate::provider::openai::judged;
    use crate::provider::{ErrorBody, StatusError};
    use crate::store::Destination;
    use crate::store::manifest::History;
    use crate::store::manifest::Manifest;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";

    /// Decides the answer to the `n`th call (from 0) for a prompt: `None` is an image.
    type Script = Box<dyn Fn(&str, usize) -> Option<ApiError> + Send + Sync>;

    /// A stand-in for the API: answers after `delay` as `script` says, refuses prompts
    /// containing "refuse", and records what it sees.
    #[derive(Default)]
    struct Stand {
        delay: Duration,
        script: Option<Script>,
        calls: AtomicUsize,
        in_flight: AtomicUsize,
        peak: AtomicUsize,
        /// When each call arrived, by prompt.
        arrivals: Mutex<Vec<(String, tokio::time::Instant)>>,
        /// The calls in flight as each call arrived, itself included.
        in_flight_seen: Mutex<Vec<usize>>,
        /// Pressed like Ctrl-C as the first request arrives.
        stop_on_first: Option<Stop>,
    }

    impl std::fmt::Debug for Stand {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Stand").finish_non_exhaustive()
        }
    }

    impl Stand {
        fn scripted(
            script: impl Fn(&str, usize) -> Option<ApiError> + Send + Sync + 'static,
        ) -> Stand {
            Stand {
                script: Some(Box::new(script)),
                ..Stand::default()
            }
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }

        fn arrivals_of(&self, prompt: &str) -> Vec<tokio::time::Instant> {
            let arrivals = self.arrivals.lock().unwrap();
            arrivals
                .iter()
                .filter(|(p, _)| p == prompt)
                .map(|(_, t)| *t)
                .collect()
        }
    }

    impl ImageService for Stand {
        fn create(
            &self,
            spec: &ImageSpec,
        ) -> impl Future<Output = Result<Delivered, ApiError>> + Send {
            let prompt = spec.prompt.clone();
            async move {
                if self.calls.fetch_add(1, Ordering::SeqCst) == 0
                    && let Some(stop) = &self.stop_on_first
                {
                    stop.stop();
                }
                let nth = {
                    let mut arrivals = self.arrivals.lock().unwrap();
                    arrivals.push((prompt.clone(), tokio::time::Instant::now()));
                    arrivals.iter().filter(|(p, _)| *p == prompt).count() - 1
                };
                let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                self.peak.fetch_max(now, Ordering::SeqCst);
                self.in_flight_seen.lock().unwrap().push(now);
                tokio::time::sleep(self.delay).await;
                self.in_flight.fetch_sub(1, Ordering::SeqCst);
                if prompt.contains("refuse") {
                    return Err(status(400, Some("moderation_blocked")));
                }
                if let Some(err) = self.script.as_ref().and_then(|s| s(&prompt, nth)) {
                    return Err(err);
                }
                Ok(Delivered {
                    bytes: PNG.to_vec(),
                    revised_prompt: None,
                    usage: Some(serde_json::json!({"total_tokens": 7})),
                    request_id: Some("req_ok".into()),
                    rate_limit: None,
                    slot: None,
                })
            }
        }
    }

    fn status(code: u16, error_code: Option<&str>) -> ApiError {
        judged(StatusError {
            status: code,
            body: ErrorBody {
                message: Some(format!("fake {code}")),
                code: error_code.map(str::to_owned),
                ..ErrorBody::default()
            },
            request_id: Some("req_1".into()),
            retry_after: None,
            should_retry: None,
            rate_limit: None,
            verdict: Verdict::Fail,
        })
    }

    fn with_retry_after(err: ApiError, wait: Duration) -> ApiError {
        match err {
            ApiError::Status(mut s) => {
                s.retry_after = Some(wait);
                ApiError::Status(s)
            }
            other => other,
        }
    }

    /// Counts the events a run reports.
    #[derive(Debug, Default)]
    struct Tally {
        saved: AtomicUsize,
        failed: AtomicUsize,
        retrying: Mutex<Vec<(String, u32, Duration)>>,
        fatal: AtomicUsize,
        concurrency: Mutex<Vec<(usize, usize)>>,
        long_waits: Mutex<Vec<Duration>>,
        learned: Mutex<Vec<u32>>,
        /// The requests on the wire as the events tell: sent and not yet answered.
        on_wire: Mutex<std::collections::HashSet<String>>,
        /// The most of them at once.
        peak_on_wire: AtomicUsize,
        answered: AtomicUsize,
        /// Images saved or failed while their request was still on the wire, as the events
        /// tell.
        ended_on_wire: AtomicUsize,
    }

    impl Tally {
        fn ended(&self, file_name: &str) {
            if self.on_wire.lock().unwrap().remove(file_name) {
                self.ended_on_wire.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    impl Reporter for Tally {
        fn event(&self, event: Event<'_>) {
            match event {
                Event::Sending { job, .. } => {
                    let mut on_wire = self.on_wire.lock().unwrap();
                    on_wire.insert(job.file_name.clone());
                    self.peak_on_wire.fetch_max(on_wire.len(), Ordering::SeqCst);
                }
                Event::Answered { job, .. } => {
                    self.answered.fetch_add(1, Ordering::SeqCst);
                    self.on_wire.lock().unwrap().remove(&job.file_name);
                }
                Event::Saved { made, .. } => {
                    self.ended(&made.file_name);
                    self.saved.fetch_add(1, Ordering::SeqCst);
                }
                Event::Failed { failure, .. } => {
                    self.ended(&failure.file_name);
                    self.failed.fetch_add(1, Ordering::SeqCst);
                }
                Event::Retrying {
                    job, attempt, wait, ..
                } => self
                    .retrying
                    .lock()
                    .unwrap()
                    .push((job.file_name.clone(), attempt, wait)),
                Event::Fatal { .. } => {
                    self.fatal.fetch_add(1, Ordering::SeqCst);
                }
                Event::Concurrency { from, to } => {
                    self.concurrency.lock().unwrap().push((from, to));
                }
                Event::LongWait { wait, .. } => self.long_waits.lock().unwrap().push(wait),
                Event::RateLearned { limit, .. } => self.learned.lock().unwrap().push(limit),
                _ => {}
            }
        }
    }

    struct Setup {
        _dir: tempfile::TempDir,
        plan: Plan,
        context: Arc<Context<Stand>>,
        tally: Arc<Tally>,
    }

    fn setup(prompts: &str, count: u32, jobs: usize, stand: Stand) -> Setup {
        setup_with(prompts, count, jobs, stand, RetryPolicy::default())
    }

    fn setup_with(
        prompts: &str,
        count: u32,
        jobs: usize,
        stand: Stand,
        retry: RetryPolicy,
    ) -> Setup {
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
        let destination = Destination::open(dir.path()).unwrap();
        let manifest = Manifest::open(&destination).unwrap();
        let tally = Arc::new(Tally::default());
        let context = Arc::new(Context {
            service: stand,
            sink: Sink::new(destination, manifest, None),
            reporter: tally.clone(),
            jobs,
            retry,
            ipm: None,
            max_wait: crate::config::DEFAULT_MAX_WAIT,
        });
        Setup {
            _dir: dir,
            plan,
            context,
            tally,
        }
    }

    impl Setup {
        /// Runs the whole plan, nothing being on disk yet.
        async fn execute(&self, stop: &Stop) -> Summary {
            let survey = Survey {
                found: vec![Found::Missing; self.plan.jobs.len()],
                existing: Existing::Keep,
                removals: Vec::new(),
                aliases: Vec::new(),
                kept: Vec::new(),
                held: Vec::new(),
            };
            execute(&self.plan, &survey, self.context.clone(), stop).await
        }

        fn stand(&self) -> &Stand {
            &self.context.service
        }

        fn images(&self) -> usize {
            std::fs::read_dir(self.context.sink.destination().dir())
                .unwrap()
                .filter(|e| {
                    let name = e.as_ref().unwrap().file_name();
                    name.to_string_lossy().ends_with(".png")
                })
                .count()
        }

        fn manifest(&self) -> Vec<Record> {
            let text = std::fs::read_to_string(self.context.sink.manifest().path()).unwrap();
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
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
        let summary = s.execute(&Stop::new()).await;
        assert_eq!(summary.made.len(), 10);
        assert!(summary.failed.is_empty());
        assert_eq!(s.stand().peak.load(Ordering::SeqCst), 3);
        assert_eq!(s.tally.saved.load(Ordering::SeqCst), 10);
        assert_eq!(s.images(), 10);
        assert!(!summary.interrupted);
    }

    /// The display counts in flight the requests sent and not answered: each answer is told
    /// before its slot goes to another request, so the count never passes `-j`, and an image
    /// being saved, or failed, is no longer counted.
    #[tokio::test]
    async fn each_answer_is_told_before_its_slot_goes_to_another_request() {
        let s = setup(
            "# a\nx\n# b\nplease refuse\n# c\ny\n",
            4,
            3,
            Stand {
                delay: Duration::from_millis(20),
                ..Stand::default()
            },
        );
        let summary = s.execute(&Stop::new()).await;
        assert_eq!((summary.made.len(), summary.failed.len()), (8, 4));
        assert_eq!(s.stand().peak.load(Ordering::SeqCst), 3);
        assert_eq!(
            s.tally.peak_on_wire.load(Ordering::SeqCst),
            3,
            "on the wire as the events tell"
        );
        assert_eq!(s.tally.answered.load(Ordering::SeqCst), s.stand().calls());
        assert_eq!(
            s.tally.ended_on_wire.load(Ordering::SeqCst),
            0,
            "each image is answered before it is saved or failed"
        );
        assert!(s.tally.on_wire.lock().unwrap().is_empty());
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
        s.execute(&Stop::new()).await;
        assert_eq!(s.stand().peak.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_refusal_fails_its_images_once_each_and_the_others_go_on() {
        let s = setup(
            "# ok\nfine\n# bad\nplease refuse\n# ok2\nfine too\n",
            2,
            2,
            Stand::default(),
        );
        let summary = s.execute(&Stop::new()).await;
        assert_eq!(summary.made.len(), 4);
        assert_eq!(summary.failed.len(), 2);
        assert_eq!(s.stand().calls(), 6, "a refused prompt is not retried");
        for f in &summary.failed {
            assert_eq!(f.prompt.as_deref(), Some("bad"));
            assert_eq!(f.kind, FailureKind::Refused);
            assert_eq!(f.attempts, 1);
            assert!(
                f.reason.starts_with("refused by the service: HTTP 400"),
                "{}",
                f.reason
            );
            assert!(f.reason.contains("request req_1"), "{}", f.reason);
        }
        assert_eq!(s.tally.failed.load(Ordering::SeqCst), 2);
        assert_eq!(s.images(), 4);
        assert!(summary.fatal.is_none());
    }

    #[test]
    fn connections_refused_stop_the_run_only_before_the_service_ever_answered() {
        let shared = Shared::new(CancellationToken::new(), 1, None);
        let refused = || {
            Err(ApiError::Connect {
                host: "h:9".into(),
                detail: "refused".into(),
            })
        };
        let verdict = |a: Result<Delivered, ApiError>| a.unwrap_err().verdict();
        for _ in 0..3 {
            shared.sending();
        }
        assert_eq!(
            verdict(shared.unless_unreachable(refused())),
            Verdict::Retry
        );
        assert_eq!(
            verdict(shared.unless_unreachable(refused())),
            Verdict::Retry
        );
        assert_eq!(
            verdict(shared.unless_unreachable(refused())),
            Verdict::Fatal(Fatal::Unreachable)
        );
        // A request still on its way may have reached the service: no stop until it fails
        // to connect too.
        let shared = Shared::new(CancellationToken::new(), 1, None);
        for _ in 0..4 {
            shared.sending();
        }
        for _ in 0..3 {
            assert_eq!(
                verdict(shared.unless_unreachable(refused())),
                Verdict::Retry
            );
        }
        assert_eq!(
            verdict(shared.unless_unreachable(refused())),
            Verdict::Fatal(Fatal::Unreachable)
        );
        // Once the service has answered, a refused connection is a blip, retried.
        let shared = Shared {
            answered: std::sync::atomic::AtomicBool::new(true),
            unreachable: AtomicU32::new(0),
            ..shared
        };
        for _ in 0..5 {
            shared.sending();
            assert_eq!(
                verdict(shared.unless_unreachable(refused())),
                Verdict::Retry
            );
        }
    }

    #[tokio::test]
    async fn a_refusal_inside_a_successful_answer_is_a_refusal_not_retried() {
        // As Gemini says it: HTTP 200, no image, a block reason.
        let s = setup(
            "# a
x
",
            1,
            1,
            Stand::scripted(|_, _| {
                Some(ApiError::Refused {
                    reason: "blocked: SAFETY".into(),
                    request_id: Some("req_9".into()),
                })
            }),
        );
        let summary = s.execute(&Stop::new()).await;
        assert_eq!(s.stand().calls(), 1, "never asked again");
        assert_eq!(summary.failed.len(), 1);
        assert_eq!(summary.failed[0].kind, FailureKind::Refused);
        assert_eq!(s.manifest()[0].status, manifest::Status::Refused);
    }

    #[tokio::test]
    async fn images_on_disk_are_skipped_and_stale_ones_listed() {
        let s = setup("# a\nx\n", 4, 2, Stand::default());
        let survey = Survey {
            found: vec![Found::Current, Found::Missing, Found::Stale, Found::Missing],
            existing: Existing::Keep,
            removals: Vec::new(),
            aliases: Vec::new(),
            kept: Vec::new(),
            held: Vec::new(),
        };
        let summary = execute(&s.plan, &survey, s.context.clone(), &Stop::new()).await;
        assert_eq!(summary.skipped, 2);
        assert_eq!(summary.stale, ["image.a.03.hd.png"]);
        assert_eq!(summary.made.len(), 2);
        assert_eq!(s.stand().calls(), 2);
        let names: Vec<&str> = summary.made.iter().map(|m| m.file_name.as_str()).collect();
        assert!(names.contains(&"image.a.02.hd.png") && names.contains(&"image.a.04.hd.png"));
    }

    #[tokio::test]
    async fn overwrite_makes_every_image_again() {
        let s = setup("# a\nx\n", 3, 2, Stand::default());
        let survey = Survey {
            found: vec![Found::Current, Found::Missing, Found::Stale],
            existing: Existing::Overwrite,
            removals: Vec::new(),
            aliases: Vec::new(),
            kept: Vec::new(),
            held: Vec::new(),
        };
        let summary = execute(&s.plan, &survey, s.context.clone(), &Stop::new()).await;
        assert_eq!(summary.made.len(), 3);
        assert_eq!(summary.skipped, 0);
        assert!(summary.stale.is_empty());
    }

    #[tokio::test]
    async fn every_outcome_goes_to_the_manifest() {
        let s = setup("# a\nx\n# b\nplease refuse\n", 2, 2, Stand::default());
        let summary = s.execute(&Stop::new()).await;
        let records = s.manifest();
        assert_eq!(records.len(), 4);
        for made in &summary.made {
            let r = records.iter().find(|r| r.file == made.file_name).unwrap();
            assert_eq!(r.status, manifest::Status::Made);
            assert_eq!(
                r.sha256.as_deref(),
                Some(crate::units::sha256_hex(PNG).as_str())
            );
            assert_eq!(r.bytes, Some(PNG.len() as u64));
            assert_eq!(r.prompt.as_deref(), Some("a"));
            assert_eq!(r.prompt_text, "x");
            assert_eq!(r.model, "gpt-image-2");
            assert_eq!(r.request["quality"], "high");
            assert_eq!(r.request_hash, s.plan.jobs[0].prompt.identity().current);
            assert_eq!(r.attempts, 1);
            assert_eq!(r.request_id.as_deref(), Some("req_ok"));
            assert_eq!(r.usage, Some(serde_json::json!({"total_tokens": 7})));
            assert!(r.started <= r.finished, "{} {}", r.started, r.finished);
        }
        let refused: Vec<&Record> = records
            .iter()
            .filter(|r| r.prompt.as_deref() == Some("b"))
            .collect();
        assert_eq!(refused.len(), 2);
        for r in refused {
            assert_eq!(r.status, manifest::Status::Refused);
            assert!(r.error.as_deref().unwrap().contains("moderation_blocked"));
            assert_eq!(r.sha256, None);
        }
        let history = History::read(s.context.sink.destination().dir()).unwrap();
        assert_eq!(
            history.made_from("image.a.01.hd.png"),
            Some(s.plan.jobs[0].prompt.identity().current.as_str())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retryable_errors_are_retried_with_a_growing_backoff() {
        let s = setup(
            "# a\nx\n",
            1,
            1,
            Stand::scripted(|_, nth| match nth {
                0 => Some(status(500, None)),
                1 => Some(ApiError::Timeout { secs: 1 }),
                2 => Some(ApiError::BadAnswer {
                    reason: "the answer is not valid JSON".into(),
                    request_id: None,
                    usage: None,
                }),
                _ => None,
            }),
        );
        let summary = s.execute(&Stop::new()).await;
        assert_eq!(summary.made.len(), 1);
        assert_eq!(summary.made[0].attempts, 4);
        assert_eq!(summary.retries, 3);
        let t = s.stand().arrivals_of("x");
        let gaps: Vec<Duration> = t.windows(2).map(|w| w[1] - w[0]).collect();
        // 0.5 s, 1 s, 2 s, each plus up to as much again of jitter.
        for (gap, base) in gaps.iter().zip([500, 1000, 2000]) {
            let base = Duration::from_millis(base);
            assert!(*gap >= base && *gap <= base * 2, "{gap:?} for {base:?}");
        }
        let retrying = s.tally.retrying.lock().unwrap().clone();
        let attempts: Vec<u32> = retrying.iter().map(|r| r.1).collect();
        assert_eq!(attempts, [1, 2, 3], "each wait is shown");
        assert_eq!(s.manifest()[0].attempts, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn the_servers_wait_is_honoured() {
        let s = setup(
            "# a\nx\n",
            1,
            1,
            Stand::scripted(|_, nth| {
                (nth == 0).then(|| with_retry_after(status(503, None), Duration::from_secs(7)))
            }),
        );
        s.execute(&Stop::new()).await;
        let t = s.stand().arrivals_of("x");
        assert_eq!(t.len(), 2);
        assert_eq!(t[1] - t[0], Duration::from_secs(7));
        assert_eq!(
            s.tally.retrying.lock().unwrap()[0].2,
            Duration::from_secs(7)
        );
    }

    #[tokio::test]
    async fn a_429_pauses_every_new_request() {
        // Two slots, every call takes 100 ms. `a` and `b` start together; `a` is rate limited
        // with a wait of 400 ms just as `b` finishes, so `c` would start at once, but must
        // wait out the pause like `a`'s own retry.
        let wait = Duration::from_millis(400);
        let s = setup(
            "# a\nx\n# b\ny\n# c\nz\n",
            1,
            2,
            Stand {
                delay: Duration::from_millis(100),
                ..Stand::scripted(move |prompt, nth| {
                    (prompt == "x" && nth == 0)
                        .then(|| with_retry_after(status(429, Some("rate_limit_exceeded")), wait))
                })
            },
        );
        let summary = s.execute(&Stop::new()).await;
        assert_eq!(summary.made.len(), 3);
        let a = s.stand().arrivals_of("x");
        let c = s.stand().arrivals_of("z");
        let rate_limited = a[0] + Duration::from_millis(100);
        assert!(a[1] >= rate_limited + wait, "{:?}", a[1] - a[0]);
        assert!(
            c[0] >= rate_limited + wait,
            "c started {:?} after a",
            c[0] - a[0]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn x_should_retry_false_is_obeyed() {
        let s = setup(
            "# a\nx\n",
            1,
            1,
            Stand::scripted(|_, _| {
                Some(match status(503, None) {
                    ApiError::Status(mut st) => {
                        st.should_retry = Some(false);
                        judged(*st)
                    }
                    other => other,
                })
            }),
        );
        let summary = s.execute(&Stop::new()).await;
        assert_eq!(s.stand().calls(), 1);
        assert_eq!(summary.failed.len(), 1);
        assert_eq!(summary.failed[0].kind, FailureKind::Error);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_at_the_limit_and_the_failure_says_so() {
        let s = setup_with(
            "# a\nx\n",
            1,
            1,
            Stand::scripted(|_, _| Some(status(500, None))),
            RetryPolicy::new(2),
        );
        let summary = s.execute(&Stop::new()).await;
        assert_eq!(s.stand().calls(), 3);
        let f = &summary.failed[0];
        assert_eq!(f.attempts, 3);
        assert!(
            f.reason.ends_with("(gave up after 3 attempts)"),
            "{}",
            f.reason
        );
        assert_eq!(s.manifest()[0].attempts, 3);
        assert_eq!(s.manifest()[0].status, manifest::Status::Failed);
    }

    fn rate_limited(wait: Duration) -> ApiError {
        with_retry_after(status(429, Some("rate_limit_exceeded")), wait)
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limit_429s_use_no_attempts_while_images_arrive() {
        // `x` is rate limited eight times over with two retries allowed, while `y`'s images
        // keep arriving: `x` is made all the same.
        let s = setup_with(
            "# a\nx\n# b\ny\n",
            4,
            2,
            Stand::scripted(|prompt, nth| {
                (prompt == "x" && nth < 8).then(|| rate_limited(Duration::from_secs(1)))
            }),
            RetryPolicy::new(2),
        );
        let summary = s.execute(&Stop::new()).await;
        assert_eq!(summary.made.len(), 8, "{:?}", summary.failed);
        assert!(summary.failed.is_empty());
        // Counted: the requests sent, 429s included.
        let attempts: u32 = summary.made.iter().map(|m| m.attempts).sum();
        assert_eq!(attempts, 16);
        // And shown as not counted.
        assert!(
            s.tally
                .retrying
                .lock()
                .unwrap()
                .iter()
                .all(|(_, used, _)| *used == 0)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limit_429s_count_again_once_nothing_arrives_for_the_patience() {
        let s = setup_with(
            "# a\nx\n",
            1,
            1,
            Stand::scripted(|_, _| Some(rate_limited(Duration::from_secs(30)))),
            RetryPolicy::new(2),
        );
        let start = tokio::time::Instant::now();
        let summary = s.execute(&Stop::new()).await;
        let took = start.elapsed();
        assert_eq!(summary.failed.len(), 1);
        assert!(
            took >= RATE_LIMIT_PATIENCE && took < RATE_LIMIT_PATIENCE + Duration::from_secs(120),
            "gave up after {took:?}"
        );
        // Twenty free 429s in the ten minutes, then the two retries it has.
        assert_eq!(
            s.stand().calls() as u64,
            RATE_LIMIT_PATIENCE.as_secs() / 30 + 3
        );
        assert!(
            summary.failed[0].reason.contains("gave up after"),
            "{}",
            summary.failed[0].reason
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_wait_within_max_wait_is_sat_out_and_said_once() {
        // Both images, in flight together, meet the same 10-minute wait: the run sits it
        // out, says so once, and sends nothing meanwhile.
        let wait = Duration::from_secs(600);
        let s = setup(
            "# a\nx\n",
            2,
            2,
            Stand {
                delay: Duration::from_millis(100),
                ..Stand::scripted(move |_, nth| (nth < 2).then(|| rate_limited(wait)))
            },
        );
        let start = tokio::time::Instant::now();
        let summary = s.execute(&Stop::new()).await;
        assert_eq!(summary.made.len(), 2, "{:?}", summary.failed);
        let arrivals = s.stand().arrivals_of("x");
        assert_eq!(arrivals.len(), 4);
        assert!(arrivals[2] >= start + wait, "{:?}", arrivals[2] - start);
        assert_eq!(*s.tally.long_waits.lock().unwrap(), [wait]);
        assert!(summary.fatal.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_wait_uses_no_attempt_even_with_retries_off() {
        let wait = Duration::from_secs(180);
        let s = setup_with(
            "# a\nx\n",
            1,
            1,
            Stand::scripted(move |_, nth| (nth < 3).then(|| rate_limited(wait))),
            RetryPolicy::new(0),
        );
        let start = tokio::time::Instant::now();
        let summary = s.execute(&Stop::new()).await;
        assert_eq!(summary.made.len(), 1, "{:?}", summary.failed);
        assert!(start.elapsed() >= wait * 3, "{:?}", start.elapsed());
        assert!(summary.fatal.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn long_waits_without_an_image_count_together_against_max_wait() {
        // Two 10-minute waits in a row: 20 minutes without an image, over the 15 minutes of
        // --max-wait. An image between them would have started the count again.
        let wait = Duration::from_secs(600);
        let s = setup(
            "# a\nx\n",
            1,
            1,
            Stand::scripted(move |_, nth| (nth < 2).then(|| rate_limited(wait))),
        );
        let summary = s.execute(&Stop::new()).await;
        assert_eq!(s.stand().calls(), 2, "the second wait is not sat out");
        let stop = summary.fatal.as_ref().expect("a fatal stop");
        assert_eq!(stop.fatal, Fatal::WaitTooLong);
        assert!(
            stop.error.starts_with(
                "the service asks to wait 10m 00s more, 20m 00s of waiting without an image in \
                 all, longer than --max-wait 15m 00s"
            ),
            "{}",
            stop.error
        );

        let between = setup(
            "# a\nx\n",
            3,
            1,
            Stand::scripted(move |_, nth| (nth % 2 == 0).then(|| rate_limited(wait))),
        );
        let summary = between.execute(&Stop::new()).await;
        assert_eq!(summary.made.len(), 3, "{:?}", summary.failed);
        assert!(summary.fatal.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_longer_than_max_wait_stops_the_run() {
        let s = setup(
            "# a\nx\n# b\ny\n# c\nz\n",
            1,
            1,
            Stand::scripted(|prompt, _| {
                (prompt == "x").then(|| rate_limited(Duration::from_secs(3600)))
            }),
        );
        let start = tokio::time::Instant::now();
        let summary = s.execute(&Stop::new()).await;
        assert!(start.elapsed() < Duration::from_secs(1), "no waiting");
        assert_eq!(s.stand().calls(), 1, "nothing more is sent");
        let stop = summary.fatal.as_ref().expect("a fatal stop");
        assert_eq!(stop.fatal, Fatal::WaitTooLong);
        assert!(
            stop.error
                .starts_with("the service asks to wait 1h 00m, longer than --max-wait 15m 00s"),
            "{}",
            stop.error
        );
        assert_eq!(summary.unfinished, 2);
        assert!(s.tally.long_waits.lock().unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn no_retries_with_a_limit_of_zero() {
        let s = setup_with(
            "# a\nx\n",
            1,
            1,
            Stand::scripted(|_, _| Some(status(500, None))),
            RetryPolicy::new(0),
        );
        let summary = s.execute(&Stop::new()).await;
        assert_eq!(s.stand().calls(), 1);
        assert_eq!(summary.failed[0].attempts, 1);
        assert!(!summary.failed[0].reason.contains("gave up"));
    }

    #[tokio::test]
    async fn a_fatal_error_stops_new_requests_and_saves_those_in_flight() {
        // The first request fails at once with a 401; two others are in flight meanwhile.
        let s = setup(
            "# a\nx\n",
            10,
            3,
            Stand {
                delay: Duration::from_millis(30),
                ..Stand::scripted(|_, nth| (nth == 0).then(|| status(401, Some("invalid_api_key"))))
            },
        );
        let summary = s.execute(&Stop::new()).await;
        assert_eq!(s.stand().calls(), 3, "nothing after the three in flight");
        assert_eq!(summary.made.len(), 2, "those in flight were saved");
        assert_eq!(s.images(), 2);
        assert_eq!(summary.failed.len(), 1);
        let fatal = summary.fatal.as_ref().unwrap();
        assert_eq!(fatal.fatal, Fatal::Unauthorized);
        assert!(fatal.error.contains("HTTP 401"), "{}", fatal.error);
        assert_eq!(summary.unfinished, 7);
        assert!(!summary.interrupted);
        assert_eq!(s.tally.fatal.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_fatal_error_cancels_retries_that_are_waiting() {
        // `a` waits to retry a 500 when `b` meets an empty account: `a`'s retry is not sent.
        let s = setup_with(
            "# a\nx\n# b\ny\n",
            1,
            2,
            Stand::scripted(|prompt, nth| match (prompt, nth) {
                ("x", _) => Some(status(500, None)),
                ("y", _) => Some(status(429, Some("insufficient_quota"))),
                _ => None,
            }),
            RetryPolicy {
                min_delay: Duration::from_secs(600),
                ..RetryPolicy::default()
            },
        );
        let summary = s.execute(&Stop::new()).await;
        assert_eq!(s.stand().arrivals_of("x").len(), 1);
        assert_eq!(
            s.stand().arrivals_of("y").len(),
            1,
            "a quota error is not retried"
        );
        assert_eq!(
            summary.fatal.unwrap().fatal,
            Fatal::NoCredit(crate::provider::Billing::Unspecified)
        );
        assert_eq!(summary.failed.len(), 1);
        assert_eq!(summary.unfinished, 1);
    }

    #[tokio::test]
    async fn concurrency_halves_on_429s_and_climbs_back() {
        // Eight slots; the first eight requests are all rate limited with a short wait.
        let s = setup(
            "# a\nx\n",
            40,
            8,
            Stand {
                delay: Duration::from_millis(20),
                ..Stand::scripted(|_, nth| {
                    (nth < 8).then(|| {
                        with_retry_after(
                            status(429, Some("rate_limit_exceeded")),
                            Duration::from_millis(10),
                        )
                    })
                })
            },
        );
        let summary = s.execute(&Stop::new()).await;
        assert_eq!(summary.made.len(), 40);
        let seen = s.stand().in_flight_seen.lock().unwrap().clone();
        // Calls 0-7 were the first window; the retries and new requests after the 429s see
        // at most half of it.
        let after: Vec<usize> = seen[8..16].to_vec();
        assert!(after.iter().all(|n| *n <= 4), "{after:?}");
        // Successes let it grow back above half.
        assert!(seen[16..].iter().any(|n| *n > 4), "{seen:?}");
        let changes = s.tally.concurrency.lock().unwrap().clone();
        assert_eq!(
            changes[0],
            (8, 4),
            "one halving for one burst of 429s: {changes:?}"
        );
        assert!(changes.iter().any(|(from, to)| to > from), "{changes:?}");
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
        let summary = s.execute(&stop).await;
        // The stop arrives while the first three are starting: nothing after them.
        let calls = s.stand().calls();
        assert!(calls <= 3, "{calls} requests after a stop");
        assert_eq!(
            summary.made.len(),
            calls,
            "every request in flight was saved"
        );
        assert!(summary.interrupted);
        assert_eq!(summary.unfinished, 10 - calls);
        assert_eq!(s.images(), calls);
    }

    #[tokio::test]
    async fn a_stop_during_a_retry_wait_sends_no_retry() {
        let stop = Stop::new();
        let s = setup(
            "# a\nx\n",
            1,
            1,
            Stand {
                stop_on_first: Some(stop.clone()),
                ..Stand::scripted(|_, nth| (nth == 0).then(|| status(500, None)))
            },
        );
        let summary = s.execute(&stop).await;
        assert_eq!(s.stand().calls(), 1);
        assert!(
            summary.failed.is_empty(),
            "not a failure: it was never finished"
        );
        assert_eq!(summary.unfinished, 1);
        assert!(s.manifest().is_empty());
    }

    #[tokio::test]
    async fn a_stop_before_the_start_sends_nothing() {
        let s = setup("# a\nx\n", 3, 2, Stand::default());
        let stop = Stop::new();
        stop.stop();
        let summary = s.execute(&stop).await;
        assert_eq!(s.stand().calls(), 0);
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
        let summary = s.execute(&stop).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(summary.interrupted);
        assert!(summary.made.is_empty());
        assert_eq!(summary.unfinished, 4);
        assert_eq!(s.images(), 0);
    }
}
