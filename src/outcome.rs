//! What a run produced: the images made, those that failed and why, and the totals. Every
//! output — the progress lines, the closing summary, `--json` and the gallery — renders these.

use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::provider::Fatal;

/// An image saved under its final name.
#[derive(Debug, Clone)]
pub struct Made {
    /// Where it was kept, relative to the destination: its planned name, or another where
    /// the bytes were in another format than asked (see `received`).
    pub file_name: String,
    /// The name the plan gave it.
    pub planned: String,
    /// The prompt's name in its file; `None` for a prompt on the command line.
    pub prompt: Option<String>,
    pub index: u32,
    pub bytes: usize,
    pub sha256: String,
    pub elapsed: Duration,
    /// Requests it took, retries included.
    pub attempts: u32,
    pub revised_prompt: Option<String>,
    pub usage: Option<Value>,
    pub request_id: Option<String>,
    /// In US dollars: from `usage` for models priced by token, else the price table; `None`
    /// where neither says. Answers of earlier attempts that billed without giving a usable
    /// image count too.
    pub cost: Option<f64>,
    /// The format of the bytes received (`png`, ..., or `unknown`), where it was not the
    /// one asked for: the image was kept under the name of what it is.
    pub received: Option<&'static str>,
}

#[cfg(test)]
impl Made {
    /// An image as the tests of other modules need one.
    pub(crate) fn example(file_name: &str, prompt: Option<&str>, cost: Option<f64>) -> Made {
        Made {
            file_name: file_name.to_owned(),
            planned: file_name.to_owned(),
            prompt: prompt.map(str::to_owned),
            index: 1,
            bytes: 1,
            sha256: String::new(),
            elapsed: Duration::from_millis(1500),
            attempts: 1,
            revised_prompt: None,
            usage: None,
            request_id: None,
            cost,
            received: None,
        }
    }
}

/// Why an image was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// An error for this image only, or retries exhausted.
    Error,
    /// The service refused the prompt.
    Refused,
    /// An error that stopped the run.
    Fatal(Fatal),
}

/// An image that was not made, and why.
#[derive(Debug, Clone)]
pub struct Failure {
    pub file_name: String,
    /// The prompt's name in its file; `None` for a prompt on the command line.
    pub prompt: Option<String>,
    pub index: u32,
    pub reason: String,
    pub kind: FailureKind,
    pub attempts: u32,
    /// What answers that gave no usable image billed, in US dollars, if any did.
    pub cost: Option<f64>,
    /// A refusal's `moderation_details`, where the service gave them.
    pub moderation: Option<crate::store::manifest::Moderation>,
}

impl Failure {
    /// Whether this image failed on the error that stopped the run, `stop`: the stop says
    /// that error once, and the image counts as not made, as those never sent do. An image
    /// the destination would not take is the exception: each says where it was kept.
    pub fn stopped_by(&self, stop: Option<Fatal>) -> bool {
        match (self.kind, stop) {
            (FailureKind::Fatal(fatal), Some(stop)) => fatal == stop && fatal != Fatal::CannotSave,
            _ => false,
        }
    }
}

/// The error that stopped a run before its end.
#[derive(Debug, Clone)]
pub struct FatalStop {
    pub fatal: Fatal,
    /// What the service said.
    pub error: String,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Summary {
    pub made: Vec<Made>,
    /// Every image whose requests ended in an error, those that met the error that stopped
    /// the run included: outputs count and list these as not made (see
    /// [`Failure::stopped_by`]), `--json` keeps what each said.
    pub failed: Vec<Failure>,
    /// Already in the destination, so not requested.
    pub skipped: usize,
    /// Not requested because they are pending in a batch (a live run does not buy them
    /// again): not there yet, so the run does not end in success.
    pub pending: usize,
    /// Not requested because the service refused them in a batch before (a `--batch` run
    /// does not ask again): not there, so the run does not end in success.
    pub refused_before: usize,
    /// Kept although their request changed since they were made (see `--overwrite`).
    pub stale: Vec<String>,
    /// Never finished because the run stopped early (Ctrl-C or a fatal error). The images
    /// not made are these and those that met the fatal error (see [`Totals::not_made`]).
    pub unfinished: usize,
    /// Retries sent, over all images.
    pub retries: u32,
    /// What answers billed without a usable image, for images the run stopped before
    /// making (their manifest records carry it too).
    pub billed_not_made: f64,
    /// Stopped by a signal: Ctrl-C, SIGTERM or SIGHUP.
    pub interrupted: bool,
    /// The signal that stopped the run, where one did; `None` with `interrupted` is a stop
    /// asked for otherwise, which counts as Ctrl-C.
    pub interrupted_by: Option<StopSignal>,
    pub fatal: Option<FatalStop>,
    /// `--max-cost`, when the run stopped starting requests to stay within it.
    pub budget_stop: Option<f64>,
    pub elapsed: Duration,
    /// The old images the run moved to the trash rather than delete or replace them.
    pub trashed: Option<Box<Trashed>>,
}

/// What a run put in the trash (`DIR/.genimg/trash/<time>/`): the images `--from-scratch`
/// moved there, and those a new image replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trashed {
    /// Relative to the folder: as they were in the destination, but for a name taken twice.
    pub files: Vec<String>,
    /// Manifest records moved with them, into the folder's own `genimg.jsonl`.
    pub records: usize,
    /// The run's folder in the trash.
    pub folder: String,
    /// The destination, for the command that empties the trash.
    #[serde(skip)]
    pub dst_dir: String,
}

/// A signal that stops a run the way Ctrl-C does: the first lets the requests in flight
/// finish and be saved, a second abandons them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGINT: Ctrl-C.
    Interrupt,
    /// SIGTERM: `kill`, `timeout`, `docker stop`, a CI cancel.
    Terminate,
    /// SIGHUP: the terminal or SSH session closed.
    Hangup,
}

impl StopSignal {
    /// Its conventional name.
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
            StopSignal::Hangup => "SIGHUP",
        }
    }

    /// The exit status of a run it stopped: 128 plus the signal's number.
    pub fn status(self) -> Status {
        match self {
            StopSignal::Interrupt => Status::Interrupted,
            StopSignal::Terminate => Status::Terminated,
            StopSignal::Hangup => Status::HungUp,
        }
    }
}

/// The figures of a run, counted once: the closing summary, `--json` and the budget's stop
/// message all show these.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Totals {
    pub made: usize,
    /// Every image not made for an error of its own, refusals included.
    pub failed: usize,
    pub refused: usize,
    /// Not made because the run stopped early: never sent, or met the error that stopped
    /// it. A second run of the same command makes these.
    pub not_made: usize,
    /// Retries sent, over all images.
    pub retries: u32,
    /// What the run was billed, in US dollars: the images made, and the answers that billed
    /// without giving a usable image.
    pub cost_usd: f64,
    /// Images made whose price is unknown, so not in `cost_usd`.
    pub cost_unknown: usize,
    pub elapsed_s: f64,
}

impl Summary {
    /// The failures to list one by one: all but those of the error that stopped the run,
    /// which the stop says once.
    pub fn listed_failures(&self) -> impl Iterator<Item = &Failure> {
        let stop = self.fatal.as_ref().map(|s| s.fatal);
        self.failed.iter().filter(move |f| !f.stopped_by(stop))
    }

    /// The run's figures.
    pub fn totals(&self) -> Totals {
        let listed = self.listed_failures().count();
        let billed = self
            .made
            .iter()
            .filter_map(|m| m.cost)
            .chain(self.failed.iter().filter_map(|f| f.cost));
        Totals {
            made: self.made.len(),
            failed: listed,
            refused: self
                .failed
                .iter()
                .filter(|f| f.kind == FailureKind::Refused)
                .count(),
            not_made: self.unfinished + (self.failed.len() - listed),
            retries: self.retries,
            // `+ 0.0`: an empty sum of floats is -0.0, which prints as "$-0.00".
            cost_usd: billed.sum::<f64>() + self.billed_not_made + 0.0,
            cost_unknown: self.made.iter().filter(|m| m.cost.is_none()).count(),
            elapsed_s: self.elapsed.as_secs_f64(),
        }
    }
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
    /// Stopped by SIGHUP: the terminal or session closed.
    HungUp = 129,
    /// Stopped by Ctrl-C (SIGINT).
    Interrupted = 130,
    /// Stopped by SIGTERM.
    Terminated = 143,
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
            Outcome::Ran(s) if s.interrupted => s
                .interrupted_by
                .map_or(Status::Interrupted, StopSignal::status),
            // Every image asked for exists only when none failed and none was left out.
            Outcome::Ran(s) if !s.failed.is_empty() || s.pending + s.refused_before > 0 => {
                Status::SomeFailed
            }
            Outcome::Ran(_) => Status::Success,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider;

    fn summary(made: usize, failed: usize, interrupted: bool) -> Summary {
        let m = Made::example("a.png", None, None);
        let f = Failure {
            file_name: "b.png".into(),
            prompt: None,
            index: 1,
            reason: "x".into(),
            kind: FailureKind::Error,
            attempts: 1,
            cost: None,
            moderation: None,
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

    #[test]
    fn each_stopping_signal_has_its_conventional_exit_code() {
        let stopped_by = |signal| {
            let mut s = summary(2, 0, true);
            s.interrupted_by = signal;
            Outcome::Ran(s).status()
        };
        assert_eq!(stopped_by(None), Status::Interrupted);
        assert_eq!(stopped_by(Some(StopSignal::Interrupt)), Status::Interrupted);
        assert_eq!(stopped_by(Some(StopSignal::Terminate)), Status::Terminated);
        assert_eq!(stopped_by(Some(StopSignal::Hangup)), Status::HungUp);
        assert_eq!(Status::Interrupted as u8, 130);
        assert_eq!(Status::Terminated as u8, 143);
        assert_eq!(Status::HungUp as u8, 129);
        // A fatal error or the budget still tells why the run stopped first.
        let mut fatal = summary(0, 1, true);
        fatal.interrupted_by = Some(StopSignal::Terminate);
        fatal.budget_stop = Some(5.0);
        assert_eq!(Outcome::Ran(fatal).status(), Status::Budget);
    }
}
