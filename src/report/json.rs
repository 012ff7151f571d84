//! `--json`: one JSON document on stdout at the end, for scripts. Human output stays on
//! stderr.
//!
//! ```json
//! {"genimg": "0.1.0", "dry_run": false, "status": "some_failed", "exit_code": 1,
//!  "dst_dir": "images", "models": ["gpt-image-2"],
//!  "totals": {"planned": 4, "made": 2, "failed": 1, "skipped": 1, ...},
//!  "images": [{"file": "image.fox.01.hd.png", "path": "images/image.fox.01.hd.png",
//!              "prompt": "fox", "index": 1, "status": "made", ...}, ...],
//!  "trash": {"moved": 2, "records": 2, "folder": "images/.genimg/trash/2026-...Z",
//!            "files": ["image.fox.01.hd.png", ...]}}
//! ```
//!
//! `trash` is there only when old images went to the trash (or, in a dry run, would go:
//! `{"would_move": 2, "files": [...]}`).
//! Amounts of dollars are rounded as the text shows them ([`round_usd`]): `1.06`, `0.165`. The
//! estimate's total is the dry run's ([`Estimate`]): its prompts' rounded amounts added up (and
//! halved through the Batch API).

use std::collections::HashMap;

use serde::Serialize;

use crate::config::Config;
use crate::outcome::{Failure, FailureKind, Made, Status, Summary, Totals};
use crate::plan::{Found, Held, Plan, Survey};
use crate::report::dry_run::Estimate;
use crate::store::manifest::Moderation;
use crate::units::round_usd;

/// The name of an exit status in the document.
pub fn status_name(status: Status) -> &'static str {
    match status {
        Status::Success => "success",
        Status::SomeFailed => "some_failed",
        Status::Usage => "usage_error",
        Status::Fatal => "stopped_by_service",
        Status::Budget => "stopped_at_max_cost",
        Status::Interrupted => "interrupted",
        Status::Terminated => "terminated",
        Status::HungUp => "hung_up",
    }
}

/// The document of a run, or of a dry run.
#[derive(Debug, Serialize)]
pub struct Document<'a> {
    genimg: &'static str,
    dry_run: bool,
    status: &'static str,
    exit_code: u8,
    dst_dir: String,
    models: Vec<String>,
    totals: DocumentTotals,
    images: Vec<Image<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped: Option<Stopped<'a>>,
    /// What went to the trash, or would in a dry run; absent when nothing does.
    #[serde(skip_serializing_if = "Option::is_none")]
    trash: Option<TrashDoc<'a>>,
}

/// The old images a run moved to the trash (`moved`, with `folder`), or that a dry run
/// would move (`would_move`): paths relative to the folder, or to the destination.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum TrashDoc<'a> {
    Moved {
        moved: usize,
        records: usize,
        folder: &'a str,
        files: &'a [String],
    },
    WouldMove {
        would_move: usize,
        files: Vec<&'a str>,
    },
}

/// What the plan and the destination say, and, after a real run, the run's own figures.
#[derive(Debug, Serialize)]
struct DocumentTotals {
    planned: usize,
    to_make: usize,
    /// Already there (stale ones included): not asked for.
    skipped: usize,
    stale: usize,
    /// Pending in a batch: not asked for, and not there yet.
    #[serde(skip_serializing_if = "is_zero")]
    pending: usize,
    /// Refused by the service in a batch before: not asked for again, not there.
    #[serde(skip_serializing_if = "is_zero")]
    refused_before: usize,
    estimate_usd: f64,
    unpriced: usize,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    ran: Option<Totals>,
}

#[derive(Debug, Serialize)]
struct Stopped<'a> {
    error: &'a str,
    advice: &'static str,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One planned image.
#[derive(Debug, Serialize)]
struct Image<'a> {
    file: &'a str,
    path: String,
    prompt: Option<&'a str>,
    index: u32,
    model: &'a str,
    status: &'static str,
    #[serde(flatten)]
    detail: Detail<'a>,
}

/// What is known of an image besides its status.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Detail<'a> {
    Made {
        sha256: &'a str,
        bytes: usize,
        attempts: u32,
        cost_usd: Option<f64>,
        request_id: Option<&'a str>,
        revised_prompt: Option<&'a str>,
        /// The format the bytes were in, where it was not the one asked for.
        #[serde(skip_serializing_if = "Option::is_none")]
        received_format: Option<&'static str>,
    },
    Failed {
        error: &'a str,
        attempts: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        cost_usd: Option<f64>,
        /// A refusal's `moderation_details`: `{"stage": "output", "categories": [...]}`.
        #[serde(skip_serializing_if = "Option::is_none")]
        moderation: Option<&'a Moderation>,
    },
    ToMake {
        estimate_usd: Option<f64>,
    },
    Nothing {},
}

/// The document for a run, or for a dry run when `summary` is `None`.
pub fn document<'a>(
    config: &Config,
    plan: &'a Plan,
    survey: &'a Survey,
    summary: Option<&'a Summary>,
    status: Status,
) -> Document<'a> {
    let made: HashMap<&str, &Made> = summary
        .map(|s| s.made.iter().map(|m| (m.planned.as_str(), m)).collect())
        .unwrap_or_default();
    let failed: HashMap<&str, &Failure> = summary
        .map(|s| s.failed.iter().map(|f| (f.file_name.as_str(), f)).collect())
        .unwrap_or_default();
    // Estimates at the prices the run pays: half through the Batch API.
    let price = if config.batch {
        crate::catalog::BATCH_PRICE
    } else {
        1.0
    };
    let estimate = Estimate::new(plan, survey);
    // Each image's share of its prompt's amount: they add up to it.
    let shares = estimate.per_image(plan, price);
    let images = plan
        .jobs
        .iter()
        .enumerate()
        .map(|(i, job)| {
            let planned = job.file_name.as_str();
            // Where the image is: this run's name for it, else the name an earlier run kept
            // it under, else the planned one.
            let kept = survey.kept.get(i).and_then(Option::as_deref);
            let file = made
                .get(planned)
                .map(|m| m.file_name.as_str())
                .or(kept)
                .unwrap_or(planned);
            let detail = if let Some(m) = made.get(planned) {
                Detail::Made {
                    sha256: &m.sha256,
                    bytes: m.bytes,
                    attempts: m.attempts,
                    cost_usd: m.cost.map(round_usd),
                    request_id: m.request_id.as_deref(),
                    revised_prompt: m.revised_prompt.as_deref(),
                    received_format: m.received,
                }
            } else if let Some(f) = failed.get(planned) {
                Detail::Failed {
                    error: &f.reason,
                    attempts: f.attempts,
                    cost_usd: f.cost.map(round_usd),
                    moderation: f.moderation.as_ref(),
                }
            } else if summary.is_none() && survey.is_todo(i) {
                Detail::ToMake {
                    estimate_usd: shares[i],
                }
            } else {
                Detail::Nothing {}
            };
            Image {
                file,
                path: plan.dst_dir.join(file).display().to_string(),
                prompt: job.prompt.label.as_deref(),
                index: job.index,
                model: job.prompt.model.name(),
                status: file_status(planned, i, survey, summary, &made, &failed),
                detail,
            }
        })
        .collect();

    Document {
        genimg: env!("CARGO_PKG_VERSION"),
        dry_run: summary.is_none(),
        status: status_name(status),
        exit_code: status as u8,
        dst_dir: plan.dst_dir.display().to_string(),
        models: config.model_names(),
        totals: DocumentTotals {
            planned: plan.jobs.len(),
            to_make: survey.to_make(),
            skipped: plan.jobs.len()
                - survey.to_make()
                - survey.pending_count()
                - survey.refused_count(),
            pending: survey.pending_count(),
            refused_before: survey.refused_count(),
            stale: survey.stale(plan).len(),
            estimate_usd: estimate.total_at(price),
            unpriced: estimate.unpriced,
            ran: summary.map(|s| {
                let totals = s.totals();
                Totals {
                    cost_usd: round_usd(totals.cost_usd),
                    ..totals
                }
            }),
        },
        images,
        stopped: summary.and_then(|s| s.fatal.as_ref()).map(|stop| Stopped {
            error: &stop.error,
            advice: stop.fatal.advice(),
        }),
        trash: trash_doc(plan, survey, summary),
    }
}

fn trash_doc<'a>(
    plan: &'a Plan,
    survey: &'a Survey,
    summary: Option<&'a Summary>,
) -> Option<TrashDoc<'a>> {
    match summary {
        Some(s) => s.trashed.as_ref().map(|t| TrashDoc::Moved {
            moved: t.files.len(),
            records: t.records,
            folder: &t.folder,
            files: &t.files,
        }),
        None => {
            let files: Vec<&str> = survey
                .removals
                .iter()
                .map(String::as_str)
                .chain(survey.replaced(plan))
                .collect();
            (!files.is_empty()).then_some(TrashDoc::WouldMove {
                would_move: files.len(),
                files,
            })
        }
    }
}

/// An image's status. One that met the error that stopped the run is `not_made`, as the
/// totals count it, and keeps what that error said.
fn file_status(
    file: &str,
    i: usize,
    survey: &Survey,
    summary: Option<&Summary>,
    made: &HashMap<&str, &Made>,
    failed: &HashMap<&str, &Failure>,
) -> &'static str {
    if made.contains_key(file) {
        return "made";
    }
    // Pending in a batch of the Batch API (or refused by the service in one before).
    match survey.held(i) {
        Some(Held::Refused) => return "refused",
        Some(Held::Pending(_)) => return "pending",
        None => {}
    }
    let stop = summary.and_then(|s| s.fatal.as_ref()).map(|s| s.fatal);
    if let Some(f) = failed.get(file) {
        return match f.kind {
            _ if f.stopped_by(stop) => "not_made",
            FailureKind::Refused => "refused",
            _ => "failed",
        };
    }
    match (survey.is_todo(i), survey.found[i]) {
        (false, Found::Stale) => "stale",
        (false, _) => "skipped",
        (true, _) if summary.is_some() => "not_made",
        (true, _) => "to_make",
    }
}

/// The document for an error that stopped genimg before any request.
#[derive(Debug, Serialize)]
pub struct ErrorDocument<'a> {
    genimg: &'static str,
    status: &'static str,
    exit_code: u8,
    error: &'a str,
}

pub fn error_document(error: &str) -> ErrorDocument<'_> {
    ErrorDocument {
        genimg: env!("CARGO_PKG_VERSION"),
        status: status_name(Status::Usage),
        exit_code: Status::Usage as u8,
        error,
    }
}
