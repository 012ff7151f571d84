//! `--json`: one JSON document on stdout at the end, for scripts. Human output stays on
//! stderr.
//!
//! ```json
//! {"genimg": "0.1.0", "dry_run": false, "status": "some_failed", "exit_code": 1,
//!  "dst_dir": "images", "models": ["gpt-image-2"],
//!  "totals": {"planned": 4, "made": 2, "failed": 1, "skipped": 1, ...},
//!  "images": [{"file": "image.fox.01.hd.png", "path": "images/image.fox.01.hd.png",
//!              "prompt": "fox", "index": 1, "status": "made", ...}, ...]}
//! ```

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::Status;
use crate::config::Config;
use crate::outcome::{FailureKind, Summary};
use crate::plan::{Found, Plan, Survey};

/// The name of an exit status in the document.
pub fn status_name(status: Status) -> &'static str {
    match status {
        Status::Success => "success",
        Status::SomeFailed => "some_failed",
        Status::Usage => "usage_error",
        Status::Fatal => "stopped_by_service",
        Status::Budget => "stopped_at_max_cost",
        Status::Interrupted => "interrupted",
    }
}

/// The document for a run, or for a dry run when `summary` is `None`.
pub fn document(
    config: &Config,
    plan: &Plan,
    survey: &Survey,
    summary: Option<&Summary>,
    status: Status,
) -> Value {
    let made: HashMap<&str, _> = summary
        .map(|s| s.made.iter().map(|m| (m.file_name.as_str(), m)).collect())
        .unwrap_or_default();
    let failed: HashMap<&str, _> = summary
        .map(|s| s.failed.iter().map(|f| (f.file_name.as_str(), f)).collect())
        .unwrap_or_default();
    let images: Vec<Value> = plan
        .jobs
        .iter()
        .enumerate()
        .map(|(i, job)| {
            let mut entry = Map::new();
            entry.insert("file".into(), job.file_name.clone().into());
            entry.insert(
                "path".into(),
                plan.dst_dir
                    .join(&job.file_name)
                    .display()
                    .to_string()
                    .into(),
            );
            entry.insert("prompt".into(), json!(job.prompt.label));
            entry.insert("index".into(), job.index.into());
            entry.insert("model".into(), job.prompt.model.name().into());
            let name = file_status(&job.file_name, i, survey, summary.is_some(), &made, &failed);
            entry.insert("status".into(), name.into());
            if let Some(m) = made.get(job.file_name.as_str()) {
                entry.insert("sha256".into(), m.sha256.clone().into());
                entry.insert("bytes".into(), m.bytes.into());
                entry.insert("attempts".into(), m.attempts.into());
                entry.insert("cost_usd".into(), json!(m.cost));
                entry.insert("request_id".into(), json!(m.request_id));
                entry.insert("revised_prompt".into(), json!(m.revised_prompt));
            } else if let Some(f) = failed.get(job.file_name.as_str()) {
                entry.insert("error".into(), f.reason.clone().into());
                entry.insert("attempts".into(), f.attempts.into());
            } else if summary.is_none() && survey.is_todo(i) {
                entry.insert("estimate_usd".into(), json!(job.prompt.estimate));
            }
            Value::Object(entry)
        })
        .collect();

    let (estimate, unpriced) = plan.estimate(|i| survey.is_todo(i));
    let mut totals = json!({
        "planned": plan.jobs.len(),
        "to_make": survey.to_make(),
        "skipped": plan.jobs.len() - survey.to_make(),
        "stale": survey.stale(plan).len(),
        "estimate_usd": estimate,
        "unpriced": unpriced,
    });
    if let Some(s) = summary {
        let (cost, unknown) = s.cost();
        let refused = s
            .failed
            .iter()
            .filter(|f| f.kind == FailureKind::Refused)
            .count();
        let extra = json!({
            "made": s.made.len(),
            "failed": s.failed.len(),
            "refused": refused,
            "not_made": s.unfinished,
            "retries": s.retries,
            "cost_usd": cost,
            "cost_unknown": unknown,
            "elapsed_s": s.elapsed.as_secs_f64(),
        });
        if let (Value::Object(t), Value::Object(e)) = (&mut totals, extra) {
            t.extend(e);
        }
    }
    let mut doc = json!({
        "genimg": env!("CARGO_PKG_VERSION"),
        "dry_run": summary.is_none(),
        "status": status_name(status),
        "exit_code": status as u8,
        "dst_dir": plan.dst_dir.display().to_string(),
        "models": config.model_names(),
        "totals": totals,
        "images": images,
    });
    if let Some(stop) = summary.and_then(|s| s.fatal.as_ref()) {
        doc["stopped"] = json!({"error": stop.error, "advice": stop.fatal.advice()});
    }
    doc
}

fn file_status(
    file: &str,
    i: usize,
    survey: &Survey,
    ran: bool,
    made: &HashMap<&str, &crate::outcome::Made>,
    failed: &HashMap<&str, &crate::outcome::Failure>,
) -> &'static str {
    if made.contains_key(file) {
        return "made";
    }
    if let Some(f) = failed.get(file) {
        return match f.kind {
            FailureKind::Refused => "refused",
            _ => "failed",
        };
    }
    match (survey.is_todo(i), survey.found[i]) {
        (false, Found::Stale) => "stale",
        (false, _) => "skipped",
        (true, _) if ran => "not_made",
        (true, _) => "to_make",
    }
}

/// The document for an error that stopped genimg before any request.
pub fn error_document(error: &str) -> Value {
    json!({
        "genimg": env!("CARGO_PKG_VERSION"),
        "status": status_name(Status::Usage),
        "exit_code": Status::Usage as u8,
        "error": error,
    })
}
