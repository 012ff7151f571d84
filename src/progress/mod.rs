//! What the user sees while a run goes on, driven by run events. Everything goes to stderr;
//! stdout is kept for output a script may read.

use std::io::{self, Write};
use std::sync::Mutex;
use std::time::Duration;

use crate::config::Verbosity;
use crate::outcome::{Failure, FatalStop, Made, StopSignal, Summary};
use crate::plan::Job;
use crate::provider::{ApiError, Fatal};
use crate::store::manifest;
use crate::units::usd;

mod terminal;
pub use terminal::TerminalReporter;

/// Something that happened during a run.
#[derive(Debug)]
pub enum Event<'a> {
    /// The run is about to start.
    Planned {
        to_make: usize,
        on_disk: usize,
        model: &'a str,
        dir: &'a str,
        jobs: usize,
    },
    /// `--from-scratch` moved earlier images, and their records from the manifest, to the
    /// run's folder in the trash (`None` when there was nothing to move).
    Trashed {
        files: usize,
        records: usize,
        dir: &'a str,
        folder: Option<&'a str>,
    },
    Started {
        job: &'a Job,
    },
    /// A request for the job goes out now: it had its slot, and no pause held it back.
    Sending {
        job: &'a Job,
        /// From 1; above 1 for a retry.
        attempt: u32,
    },
    /// The answer to the job's request arrived, before its slot goes to the next request:
    /// the request is no longer on the wire. An image is checked and saved now (`Saved` or
    /// `Failed` follows); an error is retried (`Retrying`) or fails the image (`Failed`).
    Answered {
        job: &'a Job,
        /// Whether the answer holds an image (else an error).
        image: bool,
    },
    /// A streamed answer brought a partial image of the job: `index` of `total` (from 1).
    Partial {
        job: &'a Job,
        index: u32,
        total: u32,
    },
    /// An attempt failed with an error worth retrying; the next comes after `wait`.
    Retrying {
        job: &'a Job,
        /// The attempts that failed and count against `max_attempts`, from 1 (0 when only
        /// rate-limit 429s failed so far).
        attempt: u32,
        max_attempts: u32,
        wait: Duration,
        error: &'a ApiError,
        /// A 429: no new request of the run starts during the wait.
        pauses_run: bool,
        /// Whether this failure counts against the image's attempts: a 429 for rate does
        /// not, while the run makes progress.
        counted: bool,
    },
    /// The service showed how many requests a minute it allows: new requests are paced just
    /// under it (or under `--ipm`, if lower).
    RateLearned {
        limit: u32,
        /// The pace now held, a minute.
        pace: f64,
    },
    /// The service asks for a wait beyond the usual retry waits, within `--max-wait`: the
    /// run sits it out.
    LongWait {
        wait: Duration,
        max: Duration,
    },
    /// An error no request can survive: no new request starts.
    Fatal {
        stop: &'a FatalStop,
    },
    /// The next image could take the spend past `--max-cost`: no new request starts.
    OverBudget {
        max: f64,
    },
    /// The number of requests allowed in flight changed: down on a 429, up after successes.
    Concurrency {
        from: usize,
        to: usize,
    },
    /// The service's rate-limit window is used up: no request starts for `wait`.
    RateLimitWait {
        wait: Duration,
    },
    /// `index.html` was written.
    Gallery {
        path: &'a std::path::Path,
    },
    /// Something worth a line of its own: a batch submitted or collected, say.
    Note {
        text: &'a str,
    },
    /// How a batch of the Batch API is doing, as a poll found it.
    BatchProgress {
        id: &'a str,
        status: &'a str,
        done: u64,
        failed: u64,
        total: u64,
        /// Since the service created it.
        since: Option<Duration>,
        /// Until its 24 h window ends.
        left: Option<Duration>,
    },
    /// Something the user should know before the run: a model about to retire, say.
    Warning {
        text: &'a str,
    },
    Saved {
        made: &'a Made,
        done: usize,
        total: usize,
    },
    Failed {
        failure: &'a Failure,
        done: usize,
        total: usize,
    },
    /// The first Ctrl-C, SIGTERM or SIGHUP.
    Stopping {
        signal: StopSignal,
    },
    /// A second one.
    Aborting,
    Finished {
        summary: &'a Summary,
        /// The models the run asked for, as given: the advice for an unknown one names the
        /// known models nearest to it.
        models: &'a [&'a str],
    },
}

/// Receives run events; implementations decide what to show.
pub trait Reporter: Send + Sync + std::fmt::Debug {
    fn event(&self, event: Event<'_>);
}

/// Plain lines on stderr, one per event worth telling.
pub struct PlainReporter {
    verbosity: Verbosity,
    out: Mutex<Box<dyn Write + Send>>,
    said: Said,
}

/// The error that stopped the run, once its stop line is said: the images it failed are
/// not said again one by one (the closing summary counts them as not made).
#[derive(Debug, Default)]
struct Said(Mutex<Option<Fatal>>);

impl Said {
    /// Whether `event` would only repeat what the stop line said; notes the stop.
    fn repeats(&self, event: &Event<'_>) -> bool {
        let mut said = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::Fatal { stop } => {
                said.get_or_insert(stop.fatal);
                false
            }
            Event::Failed { failure, .. } => failure.stopped_by(*said),
            _ => false,
        }
    }
}

impl PlainReporter {
    pub fn stderr(verbosity: Verbosity) -> PlainReporter {
        PlainReporter::new(verbosity, Box::new(io::stderr()))
    }

    pub fn new(verbosity: Verbosity, out: Box<dyn Write + Send>) -> PlainReporter {
        PlainReporter {
            verbosity,
            out: Mutex::new(out),
            said: Said::default(),
        }
    }

    fn say(&self, min: Verbosity, text: &str) {
        if self.verbosity >= min {
            let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
            // A closed stderr must not stop the run.
            let _ = writeln!(out, "{text}");
        }
    }
}

impl std::fmt::Debug for PlainReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainReporter")
            .field("verbosity", &self.verbosity)
            .finish_non_exhaustive()
    }
}

impl Reporter for PlainReporter {
    fn event(&self, event: Event<'_>) {
        if self.said.repeats(&event) {
            return;
        }
        if let Some((min, text)) = describe(&event, self.verbosity) {
            self.say(min, &text);
        }
    }
}

/// What an event says as a line of text, and the verbosity from which it is shown; `None`
/// for an event that says nothing. Both reporters use it.
pub fn describe(event: &Event<'_>, verbosity: Verbosity) -> Option<(Verbosity, String)> {
    use Verbosity::*;
    Some(match *event {
        Event::Planned {
            to_make,
            on_disk,
            model,
            dir,
            jobs,
        } => {
            let there = match on_disk {
                0 => String::new(),
                n => format!(" ({n} already there)"),
            };
            let text = if to_make == 0 {
                format!("Nothing to do: every image is already in {dir}.")
            } else {
                format!("Making {to_make} image(s) with {model} in {dir}{there}, {jobs} at a time.")
            };
            (Normal, text)
        }
        Event::Trashed {
            files,
            records,
            dir,
            folder,
        } => (
            Normal,
            match folder {
                Some(folder) => format!(
                    "--from-scratch: moved {files} earlier image(s) from {dir}, and {records} \
                     record(s) from its {}, to {folder}/.",
                    manifest::FILE_NAME
                ),
                None => format!("--from-scratch: no earlier image of these prompts in {dir}."),
            },
        ),
        Event::Started { job } => (Verbose, format!("started {}", job.file_name)),
        Event::Sending { .. } | Event::Answered { .. } | Event::Partial { .. } => return None,
        Event::Retrying {
            job,
            max_attempts,
            wait,
            error,
            pauses_run,
            counted: false,
            ..
        } => {
            let pause = if pauses_run {
                "; no new request starts until then"
            } else {
                ""
            };
            (
                Normal,
                format!(
                    "rate limited: retrying {} in {} (not counted against its {max_attempts} \
                     attempts: {error}){pause}",
                    job.file_name,
                    duration(wait),
                ),
            )
        }
        Event::Retrying {
            job,
            attempt,
            max_attempts,
            wait,
            error,
            pauses_run,
            counted: true,
        } => {
            let pause = if pauses_run {
                "; no new request starts until then"
            } else {
                ""
            };
            (
                Normal,
                format!(
                    "retrying {} in {} (attempt {attempt} of {max_attempts} failed: {error}){pause}",
                    job.file_name,
                    duration(wait),
                ),
            )
        }
        Event::OverBudget { max } => (
            Quiet,
            format!(
                "Stopping at --max-cost {}: the next image could pass it. Requests in flight \
                 will finish and be saved.",
                usd(max)
            ),
        ),
        Event::Warning { text } => (Quiet, format!("warning: {text}")),
        Event::Note { text } => (Normal, text.to_owned()),
        Event::BatchProgress {
            id,
            status,
            done,
            failed,
            total,
            since,
            left,
        } => (
            Normal,
            batch_line(id, status, done, failed, total, since, left),
        ),
        Event::Gallery { path } => (Normal, format!("Gallery: {}", path.display())),
        Event::RateLearned { limit, pace } => (
            Normal,
            format!(
                "the service allows {limit} request(s) a minute: new requests go at {} a \
                 minute",
                if pace >= 10.0 {
                    format!("{pace:.0}")
                } else {
                    format!("{pace:.1}")
                }
            ),
        ),
        Event::LongWait { wait, max } => (
            Quiet,
            format!(
                "the service asks to wait {}; waiting (--max-wait is {}), Ctrl-C to stop",
                duration(wait),
                duration(max)
            ),
        ),
        // A short wait for one more request to come back is the pace at work.
        Event::RateLimitWait { wait } => (
            if wait < Duration::from_secs(1) {
                Verbose
            } else {
                Normal
            },
            format!(
                "the service's rate limit is used up: no new request for {}",
                duration(wait)
            ),
        ),
        Event::Concurrency { from, to } if to < from => (
            Normal,
            format!("rate limited: {to} request(s) in flight at most, down from {from}"),
        ),
        Event::Concurrency { from, to } => (
            Verbose,
            format!("{to} request(s) in flight at most, up from {from}"),
        ),
        // An image the destination would not take has a line of its own, which says where
        // it was kept.
        Event::Fatal {
            stop:
                FatalStop {
                    fatal: Fatal::CannotSave,
                    ..
                },
        } => (
            Quiet,
            "Stopping: the destination would not take an image. No new request starts; \
             requests in flight will finish."
                .to_owned(),
        ),
        Event::Fatal { stop } => (
            Quiet,
            format!(
                "Stopping: {}. No new request starts; requests in flight will finish and be \
                 saved.",
                stop.error
            ),
        ),
        Event::Saved { made, done, total } => (
            Normal,
            format!(
                "[{done}/{total}] saved {} ({})",
                made.file_name,
                duration(made.elapsed)
            ),
        ),
        // With --quiet the closing summary lists each failure: it is said there, once.
        Event::Failed {
            failure,
            done,
            total,
        } => (
            Normal,
            format!(
                "[{done}/{total}] FAILED {}: {}",
                failure.file_name, failure.reason
            ),
        ),
        Event::Stopping {
            signal: StopSignal::Interrupt,
        } => (
            Quiet,
            "Stopping: no new requests. Requests in flight will finish and be saved; press \
             Ctrl-C again to abandon them."
                .to_owned(),
        ),
        Event::Stopping { signal } => (
            Quiet,
            format!(
                "Stopping on {}: no new requests. Requests in flight will finish and be saved; \
                 send it again (or press Ctrl-C) to abandon them.",
                signal.name()
            ),
        ),
        Event::Aborting => (Quiet, "Abandoning the requests in flight.".to_owned()),
        Event::Finished { summary, models } => {
            // With --quiet and nothing wrong, nothing at all.
            let text = closing_text(summary, verbosity, models);
            if text.is_empty() {
                return None;
            }
            (Quiet, text)
        }
    })
}

/// How many file names a summary lists before it abbreviates.
const LISTED: usize = 10;

/// The closing summary: images made, failed with their reasons, stale ones kept, why the
/// run stopped early if it did, and the time taken.
pub fn summary_text(s: &Summary, verbosity: Verbosity) -> String {
    closing_text(s, verbosity, &[])
}

/// [`summary_text`] for a run that asked for `models`: a model the service does not know is
/// answered with the known names nearest to it.
pub fn closing_text(s: &Summary, verbosity: Verbosity, models: &[&str]) -> String {
    let mut lines = Vec::new();
    let normal = verbosity > Verbosity::Quiet;
    let stopped_early = s.interrupted || s.fatal.is_some() || s.budget_stop.is_some();
    if normal {
        let verb = if s.fatal.is_some() || s.budget_stop.is_some() {
            "Stopped after".to_owned()
        } else if s.interrupted {
            match s.interrupted_by {
                Some(signal @ (StopSignal::Terminate | StopSignal::Hangup)) => {
                    format!("Interrupted by {} after", signal.name())
                }
                _ => "Interrupted after".to_owned(),
            }
        } else {
            "Done in".to_owned()
        };
        lines.push(format!("{verb} {}.", duration(s.elapsed)));
        let totals = s.totals();
        let mut rows: Vec<(&str, String, String)> = vec![
            ("made", totals.made.to_string(), String::new()),
            ("skipped", s.skipped.to_string(), "already there".to_owned()),
            (
                "stale",
                s.stale.len().to_string(),
                "kept; --remake-stale makes them again".to_owned(),
            ),
            ("failed", totals.failed.to_string(), String::new()),
            (
                "pending",
                s.pending.to_string(),
                "in a batch, not bought again: `genimg batch collect` fetches them".to_owned(),
            ),
            (
                "not asked",
                s.refused_before.to_string(),
                "refused by the service before: reword them, or --overwrite".to_owned(),
            ),
            (
                "not made",
                totals.not_made.to_string(),
                "run again to make them".to_owned(),
            ),
            ("retried", totals.retries.to_string(), "requests".to_owned()),
        ];
        // Rows of nothing say nothing, except the two every run has.
        rows.retain(|(label, value, _)| value != "0" || matches!(*label, "made" | "failed"));
        if totals.made > 0 || totals.cost_usd > 0.0 {
            let note = match totals.cost_unknown {
                0 => String::new(),
                n => format!("plus {n} image(s) of unknown price"),
            };
            rows.push(("cost", usd(totals.cost_usd), note));
        }
        for (label, value, note) in rows {
            let line = format!("  {label:<9}{value:>7}  {note}");
            lines.push(line.trim_end().to_owned());
        }
    }
    // Those that met the error that stopped the run are counted as not made: the stop
    // said that error when it came, and the advice below says what to do about it.
    let listed: Vec<&Failure> = s.listed_failures().collect();
    if !listed.is_empty() {
        lines.push(format!("Failed ({}):", listed.len()));
        for f in listed {
            let label = f
                .prompt
                .as_ref()
                .map(|p| format!(" [{p}]"))
                .unwrap_or_default();
            lines.push(format!("  {}{label}: {}", f.file_name, f.reason));
        }
    }
    if normal && !s.stale.is_empty() {
        lines.push(format!(
            "Stale ({}): kept, but made from a different prompt or options than now; \
             --remake-stale makes them again:",
            s.stale.len()
        ));
        for name in s.stale.iter().take(LISTED) {
            lines.push(format!("  {name}"));
        }
        if s.stale.len() > LISTED {
            lines.push(format!("  ... and {} more", s.stale.len() - LISTED));
        }
    }
    if normal && let Some(trashed) = &s.trashed {
        lines.push(trash_line(trashed));
    }
    if let Some(max) = s.budget_stop {
        let totals = s.totals();
        let made: f64 = s.made.iter().filter_map(|m| m.cost).sum::<f64>() + 0.0;
        let spent = if (totals.cost_usd - made).abs() < 1e-9 {
            format!("the images made cost {}", usd(made))
        } else {
            format!(
                "this run was billed {} (images made, and answers that held no usable image)",
                usd(totals.cost_usd)
            )
        };
        lines.push(format!(
            "genimg stopped at --max-cost {}: {spent}, and the next could pass the limit.",
            usd(max),
        ));
    }
    if let Some(stop) = &s.fatal {
        lines.push(format!("genimg stopped: {}.", stop.fatal.advice()));
        if stop.fatal == Fatal::ModelNotFound {
            let mut near: Vec<&str> = Vec::new();
            // A name the table knows is no typo: the key may not use it, say.
            for model in models
                .iter()
                .filter(|m| !crate::catalog::Model::lookup(m).is_known())
            {
                for name in crate::catalog::nearest_models(model) {
                    if !near.contains(&name) {
                        near.push(name);
                    }
                }
            }
            if !near.is_empty() {
                lines.push(format!("Did you mean {}?", crate::catalog::or_list(&near)));
            }
            // A model the table knows as retired: its successor is the cure.
            let today = jiff::tz::Offset::UTC
                .to_datetime(jiff::Timestamp::now())
                .date();
            for model in models {
                let model = crate::catalog::Model::lookup(model);
                let info = model.info();
                if model.is_known() && !info.successors.is_empty() {
                    lines.push(format!(
                        "{}: {}; use {} instead.",
                        info.name,
                        crate::catalog::lifecycle_text(info.lifecycle, today),
                        info.successors.join(" or ")
                    ));
                }
            }
            let mut providers: Vec<crate::catalog::ProviderId> = models
                .iter()
                .map(|m| crate::catalog::Model::lookup(m).provider())
                .collect();
            providers.sort();
            providers.dedup();
            if providers.is_empty() {
                providers.push(crate::catalog::ProviderId::OpenAi);
            }
            let mixed = providers.len() > 1;
            for provider in providers {
                let whose = if mixed {
                    format!("{} ", provider.company())
                } else {
                    String::new()
                };
                lines.push(format!(
                    "Live {whose}models: {}.",
                    crate::catalog::live_models(provider).join(", ")
                ));
            }
        }
    }
    // With --quiet too after a fatal error: the images it stopped are said nowhere else.
    let not_made = s.totals().not_made;
    if (normal || s.fatal.is_some()) && stopped_early && not_made > 0 {
        lines.push(format!(
            "Run the same command again to make the {not_made} image(s) not made; those made \
             are kept."
        ));
    }
    lines.join("\n")
}

/// What went to the trash, and how to empty it: `Moved 28 old image(s) to
/// images/.genimg/trash/2026-12-02T031500Z/ (`genimg trash empty images` deletes them).`
pub fn trash_line(t: &crate::outcome::Trashed) -> String {
    let what = match t.files.len() {
        0 => format!("{} old record(s) of {}", t.records, manifest::FILE_NAME),
        n => format!("{n} old image(s)"),
    };
    format!(
        "Moved {what} to {}/ (`genimg trash empty {}` deletes them).",
        t.folder, t.dst_dir
    )
}

/// `batch_1: in_progress, 3 of 10 done, 1 failed, created 2m 00s ago, 23h 58m left`.
pub fn batch_line(
    id: &str,
    status: &str,
    done: u64,
    failed: u64,
    total: u64,
    since: Option<Duration>,
    left: Option<Duration>,
) -> String {
    let mut text = format!("batch {id}: {status}, {done} of {total} done");
    if failed > 0 {
        text.push_str(&format!(", {failed} failed"));
    }
    if let Some(since) = since {
        text.push_str(&format!(", created {} ago", duration(since)));
    }
    if let Some(left) = left {
        text.push_str(&format!(", {} left in its window", duration(left)));
    }
    text
}

/// `12.3 s`, `4m 05s`, `1h 02m`.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        format!("{:.1} s", d.as_secs_f64())
    } else if secs < 3600 {
        format!("{}m {:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h {:02}m", secs / 3600, (secs % 3600) / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::FailureKind;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn made(name: &str) -> Made {
        Made::example(name, Some("cat"), Some(0.25))
    }

    fn failed(name: &str) -> Failure {
        Failure {
            file_name: name.into(),
            prompt: Some("dog".into()),
            index: 1,
            reason: "refused by the service: HTTP 400".into(),
            kind: FailureKind::Refused,
            attempts: 1,
            cost: None,
            moderation: None,
        }
    }

    #[test]
    fn durations() {
        assert_eq!(duration(Duration::from_millis(12_340)), "12.3 s");
        assert_eq!(duration(Duration::from_secs(245)), "4m 05s");
        assert_eq!(duration(Duration::from_secs(3720)), "1h 02m");
    }

    #[test]
    fn the_summary_lists_failures_with_reasons() {
        let s = Summary {
            made: vec![made("a.png")],
            failed: vec![failed("b.png")],
            skipped: 2,
            elapsed: Duration::from_secs(61),
            ..Summary::default()
        };
        let text = summary_text(&s, Verbosity::Normal);
        assert_eq!(
            text,
            "Done in 1m 01s.\n\
             \x20 made           1\n\
             \x20 skipped        2  already there\n\
             \x20 failed         1\n\
             \x20 cost       $0.25\n\
             Failed (1):\n\
             \x20 b.png [dog]: refused by the service: HTTP 400"
        );
        assert!(!summary_text(&s, Verbosity::Quiet).contains("Done"));
    }

    #[test]
    fn the_summary_lists_stale_images_with_the_hint() {
        let s = Summary {
            skipped: 12,
            stale: (1..=12).map(|i| format!("image.a.{i:02}.hd.png")).collect(),
            ..Summary::default()
        };
        let text = summary_text(&s, Verbosity::Normal);
        assert!(
            text.contains("Stale (12): kept, but made from a different prompt or options than now; --remake-stale makes them again:\n  image.a.01.hd.png\n"),
            "{text}"
        );
        assert!(
            text.ends_with("  image.a.10.hd.png\n  ... and 2 more"),
            "{text}"
        );
    }

    #[test]
    fn an_unknown_model_is_answered_with_the_nearest_known_ones() {
        let s = Summary {
            unfinished: 1,
            fatal: Some(FatalStop {
                fatal: Fatal::ModelNotFound,
                error: "HTTP 404 Not Found: The model `gpt-image2` does not exist".into(),
            }),
            ..Summary::default()
        };
        let text = closing_text(&s, Verbosity::Quiet, &["gpt-image2", "gpt-image-9"]);
        assert!(
            text.contains(
                "(genimg models lists them).\nDid you mean gpt-image-2 or gpt-image-1?\n"
            ),
            "{text}"
        );
        // A name the table knows is not questioned, nor is one far from any.
        for models in [&["gpt-image-2"][..], &["my-own-model"], &[]] {
            let text = closing_text(&s, Verbosity::Quiet, models);
            assert!(!text.contains("Did you mean"), "{models:?}: {text}");
            assert!(text.contains("Live models: "), "{text}");
            assert!(!text.contains("instead."), "{models:?}: {text}");
        }
        // A model shut down names its successor.
        let text = closing_text(&s, Verbosity::Quiet, &["gpt-image-1-mini"]);
        assert!(
            text.contains(
                "gpt-image-1-mini: shut down on 2026-12-01; use gpt-image-2.6-sunburst or \
                 gpt-image-2.6-flare instead."
            ),
            "{text}"
        );
    }

    fn no_credit() -> FatalStop {
        FatalStop {
            fatal: Fatal::NoCredit(crate::provider::Billing::Unspecified),
            error: "HTTP 429 Too Many Requests: You exceeded your current quota".into(),
        }
    }

    /// An image whose request met `stop`.
    fn stopped(name: &str, stop: &FatalStop) -> Failure {
        Failure {
            reason: stop.error.clone(),
            kind: FailureKind::Fatal(stop.fatal),
            ..failed(name)
        }
    }

    #[test]
    fn a_fatal_stop_says_what_to_do_and_how_to_resume() {
        // The image that met the error is not listed: the stop line said the error, and the
        // image counts as not made.
        let s = Summary {
            made: vec![made("a.png")],
            failed: vec![stopped("b.png", &no_credit())],
            unfinished: 3,
            retries: 2,
            fatal: Some(no_credit()),
            elapsed: Duration::from_secs(3),
            ..Summary::default()
        };
        let text = summary_text(&s, Verbosity::Normal);
        assert_eq!(
            text,
            format!(
                "Stopped after 3.0 s.\n\
                 \x20 made           1\n\
                 \x20 failed         0\n\
                 \x20 not made       4  run again to make them\n\
                 \x20 retried        2  requests\n\
                 \x20 cost       $0.25\n\
                 genimg stopped: {}.\n\
                 Run the same command again to make the 4 image(s) not made; those made are kept.",
                Fatal::NoCredit(crate::provider::Billing::Unspecified).advice()
            )
        );
        // With --quiet: the advice, and the images it leaves to make.
        let quiet = summary_text(&s, Verbosity::Quiet);
        assert_eq!(
            quiet,
            format!(
                "genimg stopped: {}.\n\
                 Run the same command again to make the 4 image(s) not made; those made are kept.",
                Fatal::NoCredit(crate::provider::Billing::Unspecified).advice()
            )
        );
    }

    #[test]
    fn other_failures_beside_a_stop_are_listed() {
        let stop = no_credit();
        let mut cannot_save = stopped("c.png", &stop);
        cannot_save.kind = FailureKind::Fatal(Fatal::CannotSave);
        cannot_save.reason = "could not be saved; it was kept as /tmp/c.png".into();
        let s = Summary {
            failed: vec![failed("a.png"), stopped("b.png", &stop), cannot_save],
            unfinished: 2,
            fatal: Some(stop),
            ..Summary::default()
        };
        let totals = s.totals();
        assert_eq!((totals.failed, totals.not_made, totals.refused), (2, 3, 1));
        let text = summary_text(&s, Verbosity::Normal);
        assert!(
            text.contains(
                "Failed (2):\n\
                 \x20 a.png [dog]: refused by the service: HTTP 400\n\
                 \x20 c.png [dog]: could not be saved; it was kept as /tmp/c.png\n"
            ),
            "{text}"
        );
        assert!(!text.contains("b.png"), "{text}");
        assert!(!text.contains("You exceeded"), "{text}");
        assert!(text.contains("make the 3 image(s) not made"), "{text}");
    }

    #[test]
    fn the_images_a_stop_failed_are_said_by_its_stop_line_only() {
        let buf = Buffer::default();
        let r = PlainReporter::new(Verbosity::Normal, Box::new(buf.clone()));
        let stop = no_credit();
        let first = stopped("b.png", &stop);
        // Said before the stop: an error like any other.
        let unauthorized = FatalStop {
            fatal: Fatal::Unauthorized,
            error: "HTTP 401".into(),
        };
        r.event(Event::Failed {
            failure: &stopped("a.png", &unauthorized),
            done: 1,
            total: 4,
        });
        r.event(Event::Fatal { stop: &stop });
        r.event(Event::Failed {
            failure: &first,
            done: 2,
            total: 4,
        });
        // Another fatal error, met in flight, is not the one said.
        r.event(Event::Failed {
            failure: &stopped("c.png", &unauthorized),
            done: 3,
            total: 4,
        });
        let mut lost = stopped("d.png", &stop);
        lost.kind = FailureKind::Fatal(Fatal::CannotSave);
        lost.reason = "kept as /tmp/d.png".into();
        r.event(Event::Failed {
            failure: &lost,
            done: 4,
            total: 4,
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "[1/4] FAILED a.png: HTTP 401\n\
             Stopping: HTTP 429 Too Many Requests: You exceeded your current quota. No new \
             request starts; requests in flight will finish and be saved.\n\
             [3/4] FAILED c.png: HTTP 401\n\
             [4/4] FAILED d.png: kept as /tmp/d.png\n"
        );
    }

    #[test]
    fn a_prompt_from_the_command_line_has_no_label() {
        let s = Summary {
            failed: vec![Failure {
                prompt: None,
                ..failed("image_01_hd.png")
            }],
            ..Summary::default()
        };
        let text = summary_text(&s, Verbosity::Quiet);
        assert_eq!(
            text,
            "Failed (1):\n  image_01_hd.png: refused by the service: HTTP 400"
        );
    }

    #[test]
    fn quiet_says_each_failure_once_in_the_summary() {
        let buf = Buffer::default();
        let r = PlainReporter::new(Verbosity::Quiet, Box::new(buf.clone()));
        let m = made("a.png");
        r.event(Event::Saved {
            made: &m,
            done: 1,
            total: 2,
        });
        let f = failed("b.png");
        r.event(Event::Failed {
            failure: &f,
            done: 2,
            total: 2,
        });
        let summary = Summary {
            made: vec![m.clone()],
            failed: vec![f],
            ..Summary::default()
        };
        r.event(Event::Finished {
            summary: &summary,
            models: &[],
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text.matches("refused by the service: HTTP 400").count(),
            1,
            "said once: {text}"
        );
        assert!(text.contains("Failed (1):"), "{text}");
        assert!(!text.contains("a.png"), "nothing of what went well: {text}");
    }
}
