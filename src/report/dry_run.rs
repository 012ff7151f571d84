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
    // The endpoint of each provider the run uses, shown for its first prompt.
    let mut urls: Vec<String> = Vec::new();
    for id in config.providers() {
        if let Some(p) = plan.prompts.iter().find(|p| p.spec.provider == id) {
            let endpoint = config.endpoint_for(id);
            urls.push(
                endpoint
                    .provider()
                    .describe(&endpoint.base_url, &p.spec)
                    .0
                    .to_string(),
            );
        }
    }
    if urls.is_empty() {
        urls.push(config.endpoint.base_url.to_string());
    }
    let url = urls.join(" and POST ");
    let _ = writeln!(
        out,
        "Dry run: nothing is sent and nothing is written.\n\
         Model {}, endpoint POST {url}, {} at a time, into {dir}",
        config.model_names().join(", "),
        config.jobs,
    );
    let trash = plan.dst_dir.join(crate::store::trash::DIR);
    if !survey.removals.is_empty() {
        let _ = writeln!(
            out,
            "\n--from-scratch would first move {} file(s) from {dir}, and their records from \
             its {}, to {}/:",
            survey.removals.len(),
            manifest::FILE_NAME,
            trash.display()
        );
        for name in &survey.removals {
            let _ = writeln!(out, "  {name}");
        }
    }
    let replaced = survey.replaced(plan);
    if !replaced.is_empty() {
        let flag = match survey.existing {
            crate::config::Existing::RemakeStale => "--remake-stale",
            _ => "--overwrite",
        };
        let _ = writeln!(
            out,
            "\n{flag} would make {} image(s) already there again; each old one would go to \
             {}/ once its new image is saved:",
            replaced.len(),
            trash.display()
        );
        for name in replaced {
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
    let mut section: Option<&str> = None;
    for (i, job) in plan.jobs.iter().enumerate() {
        let spec = &job.prompt.spec;
        // A `## Title` of the prompt file is a heading here too.
        if job.prompt.section.as_deref() != section {
            section = job.prompt.section.as_deref();
            if let Some(title) = section {
                let _ = writeln!(out, "\n## {title}");
            }
        }
        let what = if let Some(batch) = survey.pending_in(i) {
            if batch == Survey::REFUSED {
                "refused by the service before, skipped; --overwrite asks again".to_owned()
            } else {
                format!("pending in batch {batch}, skipped")
            }
        } else if !survey.is_todo(i) {
            let what = match survey.found[i] {
                Found::Stale => "STALE (the request changed), kept; --remake-stale remakes it",
                _ => "already there, skipped",
            };
            match survey.kept.get(i).and_then(Option::as_deref) {
                Some(file) => format!("{what} (kept as {file})"),
                None => what.to_owned(),
            }
        } else {
            format!(
                "{} {} {}",
                spec.model.name(),
                spec.shape(),
                match &operation {
                    Some((n, op)) if *n == job.prompt.number => op,
                    _ => {
                        let endpoint = config.endpoint_for(spec.provider);
                        let op = endpoint.provider().describe(&endpoint.base_url, spec).1;
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

/// The text of `--dry-run --batch`: the files as a dry run shows them, then the batches a
/// real run would create, and their cost at batch prices.
pub fn render_batches(
    plan: &Plan,
    survey: &Survey,
    config: &Config,
    chunks: &[crate::engine::batch::Chunk],
) -> String {
    let full = render(plan, survey, config);
    // The files as a dry run lists them; the live estimate gives way to the batches'.
    let mut out = match full.find("\nEstimated cost") {
        Some(at) => full[..at].to_owned(),
        None => full,
    };
    let _ = writeln!(
        out,
        "\nBatches (OpenAI's Batch API: done within 24 h, at half the live price):"
    );
    if chunks.is_empty() {
        let _ = writeln!(out, "  none: nothing to submit");
    }
    for (n, chunk) in chunks.iter().enumerate() {
        let _ = writeln!(
            out,
            "  batch {}: {} request(s) to {} ({}), input file {}",
            n + 1,
            chunk.jobs.len(),
            chunk.endpoint(),
            chunk.model,
            crate::units::human_bytes(chunk.bytes),
        );
    }
    let (live, unpriced) = plan.estimate(|i| survey.is_todo(i));
    let unknown = match unpriced {
        0 => String::new(),
        n => format!(", plus {n} image(s) of unknown price"),
    };
    let batch = live * crate::catalog::BATCH_PRICE;
    let _ = writeln!(
        out,
        "Total at batch prices: {}{unknown} (live: {})",
        usd(batch),
        usd(live)
    );
    if let Some(max) = config.max_cost {
        let verdict = if unpriced > 0 {
            "a real run would be refused: the price of some images is unknown"
        } else if batch > max {
            "a real run would be refused"
        } else {
            "within it"
        };
        let _ = writeln!(out, "--max-cost {}: {verdict}", usd(max));
    }
    out
}

/// The text of `genimg batch status`: each batch recorded in `dir`.
pub fn render_ledger(dir: &std::path::Path, entries: &[crate::store::batches::Entry]) -> String {
    let mut out = String::new();
    if entries.is_empty() {
        let _ = writeln!(out, "No batch is recorded in {}.", dir.display());
        return out;
    }
    let _ = writeln!(out, "Batches of {}:", dir.display());
    let time = |t: Option<i64>| {
        t.and_then(|t| jiff::Timestamp::from_second(t).ok())
            .map_or_else(
                || "-".to_owned(),
                |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
            )
    };
    for e in entries {
        let counts = e.counts.unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}  {}  {} of {} done, {} failed  created {}  expires {}  about {}",
            e.batch_id.as_deref().unwrap_or("(not created yet)"),
            if e.status.is_empty() { "-" } else { &e.status },
            counts.completed,
            if counts.total > 0 {
                counts.total
            } else {
                e.requests as u64
            },
            counts.failed,
            time(e.created_at),
            time(e.expires_at),
            e.estimate_usd
                .map_or_else(|| "an unknown price".to_owned(), usd),
        );
    }
    out
}

/// The text of `genimg trash list`: each run's folder in the trash of `dir`, with its files
/// (their manifest included) and their size, by `(folder, files, bytes)`.
pub fn render_trash(dir: &std::path::Path, folders: &[(String, u64, u64)]) -> String {
    let trash = dir.join(crate::store::trash::DIR);
    let mut out = String::new();
    if folders.is_empty() {
        let _ = writeln!(out, "{} is empty.", trash.display());
        return out;
    }
    let _ = writeln!(out, "{}:", trash.display());
    let width = folders.iter().map(|f| f.0.len()).max().unwrap_or(0);
    for (name, files, bytes) in folders {
        let _ = writeln!(
            out,
            "  {name:<width$}  {files:>5} file(s)  {:>8}",
            crate::units::human_bytes(*bytes)
        );
    }
    let files: u64 = folders.iter().map(|f| f.1).sum();
    let bytes: u64 = folders.iter().map(|f| f.2).sum();
    let _ = writeln!(
        out,
        "Total: {files} file(s), {}; `genimg trash empty {}` deletes them.",
        crate::units::human_bytes(bytes),
        dir.display()
    );
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
