//! The text of a dry run: what would be made, where, and what it would cost.
//!
//! One line per prompt, whatever the count: its name, how many of its images are to make and
//! how many are already there, their estimated cost, and the start of its text (without the
//! style), cut to fit [`WIDTH`] columns. `-v` lists every image under its prompt. Amounts are
//! shown by [`usd`], and the total is the prompts' amounts as shown, added up; at batch
//! prices, half that (see [`Estimate`]).

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::config::{Config, Verbosity};
use crate::plan::{Found, Held, Plan, Survey};
use crate::units::{columns, excerpt, fit, pad, round_usd, usd, wrap_to};

/// The widest a line of the listing gets, in terminal columns.
pub const WIDTH: usize = 100;

/// The columns of a prompt's text a line keeps before its name is cut to make room.
const MIN_PREVIEW: usize = 20;

/// The widest the file name column of `-v` gets.
const MAX_FILE_COLUMN: usize = 40;

/// The narrowest a cut prompt name gets.
const MIN_NAME: usize = 8;

/// The narrowest the column of model, size and quality gets: `gpt-image-2 1024x1024 high`.
const MIN_ASK: usize = 26;

/// The heading of the prompts after a bare `##`, which ends a section.
pub const NO_SECTION: &str = "(no section)";

/// The files `--from-scratch` would remove that are named without `-v`.
const REMOVALS_NAMED: usize = 10;

/// The estimated cost of the images a run would make at live prices, prompt by prompt, as a
/// dry run shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Per prompt of the plan, in its order: the images to make, and their cost rounded as it
    /// is shown ([`round_usd`]); `None` where the model has no published price.
    pub prompts: Vec<(usize, Option<f64>)>,
    /// The prompts' rounded amounts added up, then rounded the same way: the total a reader
    /// gets adding up the amounts shown (to the cent from a dollar up). It may differ from
    /// the unrounded estimate by a fraction of a cent per prompt.
    pub total: f64,
    /// Images to make whose price is unknown.
    pub unpriced: usize,
    /// The prompts' rounded amounts added up, before the total's own rounding.
    added: f64,
    /// The images' estimates added up, unrounded.
    pub exact: f64,
    /// Per job of the plan: whether it is one this estimate counts.
    todo: Vec<bool>,
}

impl Estimate {
    /// The estimate of the images `survey` finds to make.
    pub fn new(plan: &Plan, survey: &Survey) -> Estimate {
        Estimate::of(plan, |i| survey.is_todo(i))
    }

    /// The estimate of the jobs of `plan` for which `todo` holds.
    pub fn of(plan: &Plan, todo: impl Fn(usize) -> bool) -> Estimate {
        let position = positions(plan);
        let todo: Vec<bool> = (0..plan.jobs.len()).map(todo).collect();
        let mut to_make = vec![0usize; plan.prompts.len()];
        for (job, _) in plan.jobs.iter().zip(&todo).filter(|(_, todo)| **todo) {
            to_make[position[&job.prompt.number]] += 1;
        }
        let prompts: Vec<(usize, Option<f64>)> = plan
            .prompts
            .iter()
            .zip(&to_make)
            .map(|(p, n)| (*n, p.estimate.map(|each| round_usd(each * *n as f64))))
            .collect();
        let added: f64 = prompts.iter().filter_map(|(_, amount)| *amount).sum();
        let exact: f64 = plan
            .prompts
            .iter()
            .zip(&to_make)
            .filter_map(|(p, n)| p.estimate.map(|each| each * *n as f64))
            .sum();
        Estimate {
            exact,
            todo,
            total: round_usd(added),
            added,
            unpriced: prompts
                .iter()
                .filter(|(_, amount)| amount.is_none())
                .map(|(n, _)| n)
                .sum(),
            prompts,
        }
    }

    /// Each job's share of its prompt's amount at `price` times live prices, rounded so that
    /// the shares add up to it ([`crate::units::split_usd`]): `None` for a job this estimate
    /// does not count, or of unknown price. `plan` is the one it was made of.
    pub fn per_image(&self, plan: &Plan, price: f64) -> Vec<Option<f64>> {
        let position = positions(plan);
        let mut shares: Vec<std::vec::IntoIter<f64>> = self
            .prompts
            .iter()
            .map(|(n, amount)| {
                amount
                    .map(|a| crate::units::split_usd(a * price, *n))
                    .unwrap_or_default()
                    .into_iter()
            })
            .collect();
        plan.jobs
            .iter()
            .zip(&self.todo)
            .map(|(job, todo)| {
                todo.then(|| shares[position[&job.prompt.number]].next())
                    .flatten()
            })
            .collect()
    }

    /// The total at `price` times live prices ([`crate::catalog::BATCH_PRICE`] through the
    /// Batch API): the amounts shown added up, times `price`, rounded once. So a batch total
    /// is half the live one, as the prices are, to within the rounding.
    pub fn total_at(&self, price: f64) -> f64 {
        round_usd(self.added * price)
    }
}

/// Where each prompt of `plan` is among its prompts, by its number.
fn positions(plan: &Plan) -> HashMap<usize, usize> {
    plan.prompts
        .iter()
        .enumerate()
        .map(|(at, p)| (p.number, at))
        .collect()
}

/// The text of a dry run at live prices.
pub fn render(plan: &Plan, survey: &Survey, config: &Config) -> String {
    let estimate = Estimate::new(plan, survey);
    let mut out = render_plan(plan, survey, config, &estimate);
    let unknown = match estimate.unpriced {
        0 => String::new(),
        n => format!(", plus {n} image(s) of unknown price"),
    };
    let _ = writeln!(
        out,
        "\nEstimated cost (from the price table; usage decides), the amounts above added up:\n\
         Total: {}{unknown}",
        usd(estimate.total)
    );
    if let Some(max) = config.max_cost {
        // The verdict a real run would give: it weighs the total shown.
        let _ = writeln!(
            out,
            "--max-cost {}: {}",
            usd(max),
            verdict(estimate.total, estimate.unpriced, max)
        );
    }
    wrap_to(&out, WIDTH)
}

/// What `--max-cost` would make of a run estimated at `estimate`.
fn verdict(estimate: f64, unpriced: usize, max: f64) -> &'static str {
    if unpriced > 0 {
        "a real run would be refused: the price of some images is unknown"
    } else if estimate > max {
        "a real run would be refused"
    } else {
        "within it"
    }
}

/// The prompts' lines and their totals, each prompt's amount from `estimate`.
fn render_plan(plan: &Plan, survey: &Survey, config: &Config, estimate: &Estimate) -> String {
    let mut out = String::new();
    let verbose = config.verbosity >= Verbosity::Verbose;
    let dir = plan.dst_dir.display();
    // The endpoint of each provider the run uses, shown for its first prompt.
    let mut urls: Vec<String> = Vec::new();
    for id in config.providers() {
        if let Some(p) = plan.prompts.iter().find(|p| p.spec.provider == id) {
            let endpoint = config.endpoint_for(id);
            urls.push(crate::units::shown_url(
                &endpoint.provider().describe(&endpoint.base_url, &p.spec).0,
            ));
        }
    }
    if urls.is_empty() {
        urls.push(crate::units::shown_url(&config.endpoint.base_url));
    }
    let url = urls.join(" and POST ");
    let _ = writeln!(
        out,
        "Dry run: nothing is sent and nothing is written.\n\
         Model {}, {} at a time, into {dir}\n\
         Endpoint POST {url}",
        config.model_names().join(", "),
        config.jobs,
    );
    // What each prompt asks for, and the operation, worked out once per prompt.
    let asks: Vec<(String, String)> = plan
        .prompts
        .iter()
        .map(|p| {
            let spec = &p.spec;
            let what = format!("{} {}", spec.model.name(), spec.shape());
            let endpoint = config.endpoint_for(spec.provider);
            (
                what,
                endpoint.provider().describe(&endpoint.base_url, spec).1,
            )
        })
        .collect();
    // Said once when every prompt asks the same; else a column, with the operation only
    // where the prompts differ in it.
    let same_op = asks.windows(2).all(|w| w[0].1 == w[1].1);
    let same_ask = same_op && asks.windows(2).all(|w| w[0].0 == w[1].0);
    if same_ask && let Some((what, op)) = asks.first() {
        let _ = writeln!(out, "Every image: {what} {op}");
    }
    write_styles(&mut out, plan);
    write_removals(&mut out, plan, survey, verbose);

    let mut rows: Vec<Row> = plan
        .prompts
        .iter()
        .zip(&asks)
        .zip(&estimate.prompts)
        .map(|((p, (what, op)), (_, amount))| Row {
            name: p.name.clone(),
            counts: Counts::default(),
            ask: match (same_ask, same_op) {
                (true, _) => String::new(),
                (false, true) => what.clone(),
                (false, false) => format!("{what} {op}"),
            },
            amount: *amount,
        })
        .collect();
    let position = positions(plan);
    for (i, job) in plan.jobs.iter().enumerate() {
        let counts = &mut rows[position[&job.prompt.number]].counts;
        match survey.held(i) {
            Some(Held::Refused) => counts.refused += 1,
            Some(Held::Pending(_)) => counts.pending += 1,
            None if survey.is_todo(i) => counts.to_make += 1,
            None if survey.found[i] == Found::Stale => counts.stale += 1,
            None => counts.there += 1,
        }
    }
    let layout = Layout::of(&rows);

    // The images of each prompt (its jobs follow each other), for -v: the file name column is
    // as wide as the widest, up to MAX_FILE_COLUMN (a longer name overflows its own line
    // only, not every line).
    let file_width = plan
        .jobs
        .iter()
        .map(|j| columns(&j.file_name))
        .max()
        .unwrap_or(0)
        .min(MAX_FILE_COLUMN);
    let mut jobs = plan.jobs.iter().enumerate().peekable();
    let mut section: Option<&str> = None;
    for ((p, row), (what, op)) in plan.prompts.iter().zip(&rows).zip(&asks) {
        // A `## Title` of the prompt file is a heading here too.
        if p.section.as_deref() != section {
            section = p.section.as_deref();
            // A bare `##` ends a section: the prompts after it are in none.
            let title = section.unwrap_or(NO_SECTION);
            let _ = writeln!(out, "\n## {title}");
        } else if p.number == plan.prompts[0].number {
            let _ = writeln!(out);
        }
        let _ = writeln!(out, "{}", layout.line(row, &p.written));
        while let Some((i, job)) = jobs.next_if(|(_, j)| j.prompt.number == p.number) {
            if verbose {
                let what = image_line(survey, i, &format!("{what} {op}"));
                let lead = format!("    {}  {what}", pad(&job.file_name, file_width));
                // The prompt's text in what room is left, if any worth showing.
                let room = WIDTH.saturating_sub(columns(&lead) + 4);
                if room >= MIN_PREVIEW {
                    let _ = writeln!(out, "{lead}  \"{}\"", excerpt(&p.written, room));
                } else {
                    let _ = writeln!(out, "{lead}");
                }
            }
        }
    }

    let all = rows
        .iter()
        .fold(Counts::default(), |a, r| a.plus(&r.counts));
    if all.stale > 0 {
        let _ = writeln!(
            out,
            "\nStale images (made from another prompt, model or options) are kept; --remake-stale \
             remakes them."
        );
    }
    if all.refused > 0 {
        let _ = writeln!(
            out,
            "\nImages refused by the service before are skipped; --overwrite asks again."
        );
    }
    let total = plan.jobs.len();
    let to_make = survey.to_make();
    let stale = match all.stale {
        0 => String::new(),
        n => format!(" ({n} of them stale)"),
    };
    // Every image in one part: those pending in a batch and those refused before are not
    // "there".
    let mut parts = vec![
        format!("{to_make} to make"),
        format!("{} already there{stale}", all.there + all.stale),
    ];
    if all.pending > 0 {
        parts.push(format!("{} pending in a batch", all.pending));
    }
    if all.refused > 0 {
        parts.push(format!("{} refused before", all.refused));
    }
    let _ = writeln!(
        out,
        "\nTotal: {total} image(s) of {} prompt(s): {}; {to_make} request(s).",
        plan.prompts.len(),
        parts.join(", "),
    );
    out
}

/// What a `-v` line says of the image at `i`: what it asks for (`ask`) if it is to make.
fn image_line(survey: &Survey, i: usize, ask: &str) -> String {
    match survey.held(i) {
        Some(Held::Refused) => {
            return "refused by the service before, skipped; --overwrite asks again".to_owned();
        }
        Some(Held::Pending(batch)) => return format!("pending in batch {batch}, skipped"),
        None => {}
    }
    if survey.is_todo(i) {
        return ask.to_owned();
    }
    let what = match survey.found[i] {
        Found::Stale => "STALE (the request changed), kept; --remake-stale remakes it",
        _ => "already there, skipped",
    };
    match survey.kept.get(i).and_then(Option::as_deref) {
        Some(file) => format!("{what} (kept as {file})"),
        None => what.to_owned(),
    }
}

/// The style of each prompt that has one, once per distinct style.
fn write_styles(out: &mut String, plan: &Plan) {
    let mut styles: Vec<(&str, usize)> = Vec::new();
    for p in &plan.prompts {
        if let Some(style) = p.style.as_deref() {
            match styles.iter_mut().find(|(s, _)| *s == style) {
                Some((_, n)) => *n += 1,
                None => styles.push((style, 1)),
            }
        }
    }
    for (style, n) in styles {
        let lead = if n == plan.prompts.len() {
            "Style, before every prompt: ".to_owned()
        } else {
            format!("Style, before {n} prompt(s): ")
        };
        let room = WIDTH.saturating_sub(columns(&lead) + 2);
        let _ = writeln!(out, "{lead}\"{}\"", excerpt(style, room));
    }
}

/// The files `--from-scratch` would move to the trash, and those `--overwrite` or
/// `--remake-stale` would replace: the first few by name, all of them with `-v`.
fn write_removals(out: &mut String, plan: &Plan, survey: &Survey, verbose: bool) {
    let trash = plan.dst_dir.join(crate::store::trash::DIR);
    let named = |out: &mut String, names: &[String]| {
        let shown = if verbose { names.len() } else { REMOVALS_NAMED };
        for name in names.iter().take(shown) {
            let _ = writeln!(out, "  {name}");
        }
        if names.len() > shown {
            let _ = writeln!(
                out,
                "  and {} more (-v names them all)",
                names.len() - shown
            );
        }
    };
    if !survey.removals.is_empty() {
        let _ = writeln!(
            out,
            "\n--from-scratch would first move {} file(s), with their records, to {}/:",
            survey.removals.len(),
            trash.display()
        );
        named(out, &survey.removals);
    }
    let replaced = survey.replaced(plan);
    if !replaced.is_empty() {
        let flag = match survey.existing {
            crate::config::Existing::RemakeStale => "--remake-stale",
            _ => "--overwrite",
        };
        let _ = writeln!(
            out,
            "\n{flag} would remake {} image(s); each old one goes to {}/ once replaced:",
            replaced.len(),
            trash.display()
        );
        let replaced: Vec<String> = replaced.into_iter().map(str::to_owned).collect();
        named(out, &replaced);
    }
}

/// How the images of one prompt stand.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    to_make: usize,
    there: usize,
    stale: usize,
    pending: usize,
    refused: usize,
}

impl Counts {
    fn plus(self, other: &Counts) -> Counts {
        Counts {
            to_make: self.to_make + other.to_make,
            there: self.there + other.there,
            stale: self.stale + other.stale,
            pending: self.pending + other.pending,
            refused: self.refused + other.refused,
        }
    }

    /// `2 to make, 1 already there`: the states it has images in.
    fn text(&self) -> String {
        let parts: Vec<String> = [
            (self.to_make, "to make"),
            (self.there, "already there"),
            (self.stale, "stale, kept"),
            (self.pending, "pending in a batch"),
            (self.refused, "refused before"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if parts.is_empty() {
            "nothing".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// One prompt's line, before it is laid out.
struct Row {
    name: String,
    counts: Counts,
    /// Model, size and quality (and the operation), where the prompts differ in them.
    ask: String,
    /// The cost of the images to make, rounded; `None` for an unknown price.
    amount: Option<f64>,
}

impl Row {
    /// The amount column: empty when nothing is to make.
    fn cost(&self) -> String {
        match (self.counts.to_make, self.amount) {
            (0, _) => String::new(),
            (_, Some(amount)) => usd(amount),
            (_, None) => "price unknown".to_owned(),
        }
    }
}

/// The widths of the columns, chosen so that every line fits [`WIDTH`].
struct Layout {
    name: usize,
    counts: usize,
    ask: usize,
    cost: usize,
    preview: usize,
}

impl Layout {
    fn of(rows: &[Row]) -> Layout {
        let widest = |f: &dyn Fn(&Row) -> usize| rows.iter().map(f).max().unwrap_or(0);
        let mut layout = Layout {
            name: widest(&|r| columns(&r.name)),
            counts: widest(&|r| columns(&r.counts.text())),
            ask: widest(&|r| columns(&r.ask)),
            cost: widest(&|r| columns(&r.cost())),
            preview: 0,
        };
        let gap = |width: usize| if width > 0 { width + 2 } else { 0 };
        // The indent, the columns, and the gap and quotes before and after the text.
        let fixed = |l: &Layout| 2 + l.name + 2 + l.counts + gap(l.ask) + gap(l.cost) + 4;
        // Too wide: the model column gives way first, then the names.
        let mut short = (fixed(&layout) + MIN_PREVIEW).saturating_sub(WIDTH);
        let cut = short.min(layout.ask.saturating_sub(MIN_ASK));
        layout.ask -= cut;
        short -= cut;
        layout.name -= short.min(layout.name.saturating_sub(MIN_NAME));
        layout.preview = WIDTH.saturating_sub(fixed(&layout));
        layout
    }

    fn line(&self, row: &Row, text: &str) -> String {
        let mut line = format!(
            "  {}  {}",
            pad(&excerpt(&row.name, self.name), self.name),
            pad(&row.counts.text(), self.counts),
        );
        if self.ask > 0 {
            let _ = write!(line, "  {}", pad(&excerpt(&row.ask, self.ask), self.ask));
        }
        if self.cost > 0 {
            let _ = write!(line, "  {:>cost$}", row.cost(), cost = self.cost);
        }
        if self.preview > 0 {
            let _ = write!(line, "  \"{}\"", excerpt(text, self.preview));
        }
        // Whatever the columns hold (a model name can be of any length), no line is wider.
        fit(line.trim_end(), WIDTH)
    }
}

/// Whose batch APIs `chunks` go to: `OpenAI's Batch API`, `Gemini's batch mode`, or both.
fn batch_apis(chunks: &[crate::engine::batch::Chunk]) -> String {
    use crate::catalog::ProviderId;
    let apis: Vec<&str> = ProviderId::ALL
        .into_iter()
        .filter(|id| chunks.iter().any(|c| c.provider == *id))
        .map(ProviderId::batch_api)
        .collect();
    if apis.is_empty() {
        return ProviderId::OpenAi.batch_api().to_owned();
    }
    apis.join(" and ")
}

/// The text of `--dry-run --batch`: the prompts as a dry run shows them, at live prices, then
/// the batches a real run would create, and their cost: half the live total.
pub fn render_batches(
    plan: &Plan,
    survey: &Survey,
    config: &Config,
    chunks: &[crate::engine::batch::Chunk],
) -> String {
    let estimate = Estimate::new(plan, survey);
    let mut out = render_plan(plan, survey, config, &estimate);
    let _ = writeln!(
        out,
        "\nBatches ({}: done within 24 h, at half the live price):",
        batch_apis(chunks)
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
    let unknown = match estimate.unpriced {
        0 => String::new(),
        n => format!(", plus {n} image(s) of unknown price"),
    };
    let _ = writeln!(
        out,
        "Total at batch prices: {}{unknown} (live, the amounts above added up: {})",
        usd(estimate.total_at(crate::catalog::BATCH_PRICE)),
        usd(estimate.total)
    );
    if let Some(max) = config.max_cost {
        let _ = writeln!(
            out,
            "--max-cost {}: {}",
            usd(max),
            verdict(
                estimate.total_at(crate::catalog::BATCH_PRICE),
                estimate.unpriced,
                max
            )
        );
    }
    wrap_to(&out, WIDTH)
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
