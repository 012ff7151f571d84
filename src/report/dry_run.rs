//! The text of a dry run: what would be made, where, and what it would cost.

use std::fmt::Write as _;

use crate::config::Config;
use crate::plan::{Found, Plan, Survey};
use crate::store::manifest;
use crate::units::{excerpt, usd};

/// The text of a dry run: each file with its model, size, quality, endpoint and a prompt
/// excerpt, then the totals.
pub fn render(plan: &Plan, survey: &Survey, config: &Config) -> String {
    let mut out = String::new();
    let dir = plan.dst_dir.display();
    let provider = config.endpoint.provider();
    let base = &config.endpoint.base_url;
    let url = match plan.prompts.first() {
        Some(p) => provider.describe(base, &p.spec).0,
        None => base.clone(),
    };
    let _ = writeln!(
        out,
        "Dry run: nothing is sent and nothing is written.\n\
         Model {}, endpoint POST {url}, {} at a time, into {dir}",
        config.model_names().join(", "),
        config.jobs,
    );
    if !survey.removals.is_empty() {
        let _ = writeln!(
            out,
            "\n--from-scratch would first remove {} file(s) from {dir}, and their records from \
             its {}:",
            survey.removals.len(),
            manifest::FILE_NAME
        );
        for name in &survey.removals {
            let _ = writeln!(out, "  {name}");
        }
    }
    let _ = writeln!(out);
    let width = plan
        .jobs
        .iter()
        .map(|j| j.file_name.chars().count())
        .max()
        .unwrap_or(0);
    // The operation of each prompt, worked out once for all its images.
    let mut operation: Option<(usize, String)> = None;
    for (i, job) in plan.jobs.iter().enumerate() {
        let spec = &job.prompt.spec;
        let what = if !survey.is_todo(i) {
            let what = match survey.found[i] {
                Found::Stale => "STALE (the request changed), kept; --overwrite remakes it",
                _ => "already there, skipped",
            };
            match survey.kept.get(i).and_then(Option::as_deref) {
                Some(file) => format!("{what} (kept as {file})"),
                None => what.to_owned(),
            }
        } else {
            format!(
                "{} {} {} {}",
                spec.model.name(),
                spec.options.size,
                spec.quality_value().unwrap_or("-"),
                match &operation {
                    Some((n, op)) if *n == job.prompt.number => op,
                    _ => {
                        let op = provider.describe(base, spec).1;
                        &operation.insert((job.prompt.number, op)).1
                    }
                }
            )
        };
        let _ = writeln!(
            out,
            "  {:width$}  {what}  \"{}\"",
            job.file_name,
            excerpt(&spec.prompt, 48)
        );
    }
    let total = plan.jobs.len();
    let to_make = survey.to_make();
    let stale = survey.stale(plan).len();
    let stale = match stale {
        0 => String::new(),
        n => format!(" ({n} of them stale)"),
    };
    let _ = writeln!(
        out,
        "\nTotal: {total} image(s) of {} prompt(s): {to_make} to make, {} already there{stale}; \
         {to_make} request(s).",
        plan.prompts.len(),
        total - to_make,
    );
    out.push_str(&render_estimate(plan, survey, config.max_cost));
    out
}

/// The estimated cost per prompt and in total, of the images still to make.
fn render_estimate(plan: &Plan, survey: &Survey, max_cost: Option<f64>) -> String {
    let mut out = String::from("\nEstimated cost (from the price table; usage decides):\n");
    let width = plan.prompts.iter().map(|p| p.name.len()).max().unwrap_or(0);
    // Images to make per prompt, by prompt number, in one pass over the jobs.
    let mut to_make_of = vec![0usize; plan.prompts.len() + 1];
    for (i, job) in plan.jobs.iter().enumerate() {
        if survey.is_todo(i) {
            to_make_of[job.prompt.number] += 1;
        }
    }
    for p in &plan.prompts {
        let to_make = to_make_of[p.number];
        let line = match p.estimate {
            Some(each) => format!("{} x ${each:.3} = {}", to_make, usd(each * to_make as f64)),
            None => format!(
                "{to_make} x unknown ({} has no published price)",
                p.model.name()
            ),
        };
        let _ = writeln!(out, "  {:width$}  {line}", p.name);
    }
    let (total, unpriced) = plan.estimate(|i| survey.is_todo(i));
    let unknown = match unpriced {
        0 => String::new(),
        n => format!(", plus {n} image(s) of unknown price"),
    };
    let _ = writeln!(out, "Total: {}{unknown}", usd(total));
    if let Some(max) = max_cost {
        let verdict = if unpriced > 0 {
            "a real run would be refused: the price of some images is unknown"
        } else if total > max {
            "a real run would be refused"
        } else {
            "within it"
        };
        let _ = writeln!(out, "--max-cost {}: {verdict}", usd(max));
    }
    out
}
