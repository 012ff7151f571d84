//! Prompts × count → jobs with file names, and the text of a dry run.
//!
//! The names are the seed script's, exactly: `image_01_hd.png` for a prompt given on the
//! command line, `image.NAME.01.hd.png` for prompts from a file, and with `--naming legacy`
//! `desc_01_image_01_hd.png` (prompt number, then image number). Numbers have two digits, more
//! when the count needs them.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use crate::catalog::{Model, QUALITY_TOKENS};
use crate::config::{Config, Existing, Naming, PromptSource};
use crate::format::ImageFormat;
use crate::provider;
use crate::spec::{Identity, ImageSpec};

/// One prompt of the run, with the request every image of it sends.
#[derive(Debug)]
pub struct PlannedPrompt {
    pub name: String,
    /// The name as the user gave it in a prompt file; `None` for a prompt on the command line.
    pub label: Option<String>,
    /// 1-based position in the file.
    pub number: usize,
    /// Where it is written, `prompts.txt:7`; `None` for a prompt on the command line.
    pub at: Option<String>,
    /// The `## Title` section of the prompt file it is in, if any.
    pub section: Option<String>,
    /// Images to make of it.
    pub count: u32,
    /// Of one image, in US dollars; `None` where the model has no published price.
    pub estimate: Option<f64>,
    pub model: Model,
    /// The quality token and extension of its file names.
    pub quality: &'static str,
    pub extension: &'static str,
    /// What every image of the prompt asks for.
    pub spec: ImageSpec,
    /// The prompt as written, without the style the spec's text begins with.
    pub written: String,
    /// The style's preamble, if the prompt has one.
    pub style: Option<String>,
    /// Each param of the spec, by key, as the user gave it (`--param frame_count=8`): a
    /// failure the service blames on one names it.
    pub params_given: std::collections::BTreeMap<String, String>,
    /// The spec's identity in the manifest: the same for every image of the prompt. Worked
    /// out when first needed (a file to judge, an image to record): a dry run of a fresh
    /// folder never hashes.
    identity: OnceLock<Identity>,
}

impl PlannedPrompt {
    /// The identities its images carry in the manifest (see [`Identity`]).
    pub fn identity(&self) -> &Identity {
        self.identity.get_or_init(|| provider::identity(&self.spec))
    }
}

/// One image to make.
#[derive(Debug, Clone)]
pub struct Job {
    pub prompt: Arc<PlannedPrompt>,
    /// 1-based image number within the prompt.
    pub index: u32,
    pub file_name: String,
}

/// Everything a run would make, in order.
#[derive(Debug)]
pub struct Plan {
    pub dst_dir: PathBuf,
    pub prompts: Vec<Arc<PlannedPrompt>>,
    pub jobs: Vec<Job>,
    pub namer: Namer,
    /// The one prompt comes from the command line (named with `--name` or not).
    pub one_off: bool,
}

impl Plan {
    pub fn new(config: &Config) -> Plan {
        let namer = Namer {
            naming: config.naming,
            from_file: matches!(config.source, PromptSource::File(_)) || config.named,
            image_digits: digits(config.max_count() as usize),
            prompt_digits: digits(config.prompts.len()),
            // Only the prompts this run is for: --from-scratch moves nothing of the others.
            names: config
                .prompts
                .iter()
                .filter(|p| selected(&config.only, &p.name))
                .map(|p| p.name.clone())
                .collect(),
            numbers: config
                .prompts
                .iter()
                .enumerate()
                .filter(|(_, p)| selected(&config.only, &p.name))
                .map(|(i, _)| i + 1)
                .collect(),
        };
        let prompts: Vec<Arc<PlannedPrompt>> = config
            .prompts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let s = &p.settings;
                let spec = ImageSpec::new(&s.model, &p.text, &s.options, s.references.clone())
                    .with_mask(s.mask.clone());
                Arc::new(PlannedPrompt {
                    name: p.name.clone(),
                    label: namer.from_file.then(|| p.name.clone()),
                    number: i + 1,
                    at: match &config.source {
                        PromptSource::File(file) if p.line > 0 => {
                            Some(format!("{file}:{}", p.line))
                        }
                        _ => None,
                    },
                    section: p.section.clone(),
                    count: s.count,
                    estimate: spec.estimate(),
                    identity: OnceLock::new(),
                    model: s.model.clone(),
                    quality: s.options.quality.file_token(),
                    extension: spec.asked_format().extension(),
                    spec,
                    written: p.written.clone(),
                    style: s.style.clone(),
                    params_given: s.params_given.clone(),
                })
            })
            .collect();
        // `--only`: the prompts it picks, each keeping its number in the file.
        let prompts: Vec<Arc<PlannedPrompt>> = prompts
            .into_iter()
            .filter(|p| selected(&config.only, &p.name))
            .collect();
        let jobs = prompts
            .iter()
            .flat_map(|p| {
                (1..=p.count).map(|index| Job {
                    prompt: p.clone(),
                    index,
                    file_name: namer.file_name(p, index),
                })
            })
            .collect();
        Plan {
            one_off: matches!(config.source, PromptSource::Argument),
            dst_dir: config.dst_dir.clone(),
            prompts,
            jobs,
            namer,
        }
    }

    /// Gives a prompt from the command line numbers no other prompt's image holds: its images
    /// take the numbers its own earlier images have (a re-run resumes them), then the next
    /// free ones. A file with no record in the manifest (made by the seed script, or before
    /// the manifest) counts as its own, as the seed's re-runs always did. Nothing changes for
    /// a prompt file, or where the first numbers are free.
    ///
    /// `taken` are names in use beyond the folder's files (images pending in a batch), with
    /// the request hash they were asked with.
    pub fn make_room(
        &mut self,
        history: &crate::store::manifest::History,
        taken: &[(String, String)],
    ) {
        if !self.one_off || self.prompts.len() != 1 {
            return;
        }
        let prompt = self.prompts[0].clone();
        let mut own: Vec<usize> = Vec::new();
        let mut others: HashSet<usize> = HashSet::new();
        let ours = |hash: Option<&str>| hash.is_none_or(|h| prompt.identity().matches(h));
        // What holds a number: a file of this prompt's quality (in any image format: an
        // image kept under the extension of what arrived holds it too), or a pending image.
        let mut holders: Vec<(String, Option<String>)> = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&self.dst_dir) {
            for entry in entries.flatten() {
                if let Some(name) = entry.file_name().to_str() {
                    let hash = history.made_from(name).map(str::to_owned);
                    holders.push((name.to_owned(), hash));
                }
            }
        }
        holders.extend(taken.iter().map(|(n, h)| (n.clone(), Some(h.clone()))));
        for (name, hash) in &holders {
            let Some(key) = self.namer.key(name) else {
                continue;
            };
            if key.quality != prompt.quality {
                continue;
            }
            if ours(hash.as_deref()) {
                own.push(key.index);
            } else {
                others.insert(key.index);
            }
        }
        own.sort_unstable();
        own.dedup();
        own.retain(|n| !others.contains(n));
        let mut numbers: Vec<usize> = own.into_iter().take(self.jobs.len()).collect();
        let mut next = 1;
        while numbers.len() < self.jobs.len() {
            if !others.contains(&next) && !numbers.contains(&next) {
                numbers.push(next);
            }
            next += 1;
        }
        numbers.sort_unstable();
        if numbers.iter().enumerate().all(|(i, n)| *n == i + 1) {
            return;
        }
        let width = digits(numbers.last().copied().unwrap_or(1)).max(self.namer.image_digits);
        for (job, n) in self.jobs.iter_mut().zip(numbers) {
            job.index = n as u32;
            job.file_name = self.namer.name_with_width(&prompt, job.index, width);
        }
    }

    /// The images this run would make that are on the disk with no record in the manifest
    /// (`history`): made by the seed script, or before the manifest.
    pub fn unrecorded(&self, history: &crate::store::manifest::History) -> Vec<&str> {
        self.jobs
            .iter()
            .map(|j| j.file_name.as_str())
            .filter(|f| history.made_from(f).is_none() && self.dst_dir.join(f).is_file())
            .collect()
    }

    /// Whether `file` is an image of this run's prompts, by its name and, for a prompt from
    /// the command line, by the manifest: another one-off prompt's image has the same kind of
    /// name, but is not ours (`--from-scratch` must leave it alone).
    pub fn owns(&self, file: &str, history: &crate::store::manifest::History) -> bool {
        self.namer.is_ours(file) && self.made_by_us(file, history)
    }

    /// Whether the manifest says `file` was made by this run's prompts: always for a prompt
    /// file's (its name says whose it is), for a prompt from the command line when its last
    /// record was this very request, or it has none (the seed made it).
    pub fn made_by_us(&self, file: &str, history: &crate::store::manifest::History) -> bool {
        !self.one_off
            || history.made_from(file).is_none_or(|h| {
                self.prompts
                    .first()
                    .is_some_and(|p| p.identity().matches(h))
            })
    }

    /// Keeps the names files already have: an image made as `image_07_hd.png` stays that,
    /// rather than being made again as `image_007_hd.png` once the count passes 99.
    pub fn adopt(&mut self, survey: &Survey) {
        for (job, alias) in self.jobs.iter_mut().zip(&survey.aliases) {
            if let Some(name) = alias {
                job.file_name = name.clone();
            }
        }
    }
}

/// Whether `--only`'s patterns pick the prompt `name`; no pattern picks every prompt.
pub fn selected(patterns: &[String], name: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| wildcard(p, name))
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters and `?` for
/// one. (A glob crate would bring character classes and path rules that prompt names, one
/// word of letters, digits, `_` and `-`, have no use for.)
pub fn wildcard(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // The classic two-pointer match, backtracking to the last `*`.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// Width of a number field: two digits, more once the largest number needs them.
fn digits(largest: usize) -> usize {
    largest.max(1).to_string().len().max(2)
}

/// Makes file names, and recognises the names it makes (for `--from-scratch`).
#[derive(Debug, Clone)]
pub struct Namer {
    naming: Naming,
    from_file: bool,
    image_digits: usize,
    prompt_digits: usize,
    /// The names of this run's prompts, and their numbers in the file.
    names: HashSet<String>,
    numbers: HashSet<usize>,
}

impl Namer {
    pub fn file_name(&self, prompt: &PlannedPrompt, index: u32) -> String {
        self.name(
            prompt.number,
            &prompt.name,
            index,
            prompt.quality,
            prompt.extension,
        )
    }

    /// The file name of image `index` of `prompt`, its number `width` digits wide at least.
    fn name_with_width(&self, prompt: &PlannedPrompt, index: u32, width: usize) -> String {
        Namer {
            image_digits: width,
            ..self.clone()
        }
        .file_name(prompt, index)
    }

    fn name(
        &self,
        prompt_number: usize,
        prompt_name: &str,
        index: u32,
        q: &str,
        ext: &str,
    ) -> String {
        let w = self.image_digits;
        match (self.naming, self.from_file) {
            (Naming::Legacy, _) => format!(
                "desc_{prompt_number:0pw$}_image_{index:0w$}_{q}.{ext}",
                pw = self.prompt_digits
            ),
            (Naming::Seed, false) => format!("image_{index:0w$}_{q}.{ext}"),
            (Naming::Seed, true) => format!("image.{prompt_name}.{index:0w$}.{q}.{ext}"),
        }
    }

    /// Whether genimg's naming would produce `file_name` for this run's prompts, with any
    /// image number, quality or image extension. Nothing else matches, so `--from-scratch`
    /// leaves the user's other files alone.
    pub fn is_ours(&self, file_name: &str) -> bool {
        self.key(file_name).is_some()
    }

    /// What a file name says, whatever the width of its numbers: which prompt, which image,
    /// which quality and format. `None` for a name genimg does not give this run's prompts.
    pub fn key(&self, file_name: &str) -> Option<FileKey> {
        let (prompt, index, tail) = match (self.naming, self.from_file) {
            (Naming::Legacy, _) => {
                let rest = file_name.strip_prefix("desc_")?;
                let (number, rest) = rest.split_once("_image_")?;
                let (index, tail) = rest.split_once('_')?;
                let number = number_field(number)?;
                self.numbers.contains(&number).then_some(())?;
                (number.to_string(), number_field(index)?, tail)
            }
            (Naming::Seed, false) => {
                let (index, tail) = file_name.strip_prefix("image_")?.split_once('_')?;
                (String::new(), number_field(index)?, tail)
            }
            (Naming::Seed, true) => {
                // Names hold no dots, so the fields split cleanly.
                let mut parts = file_name.strip_prefix("image.")?.splitn(3, '.');
                let (name, index, tail) = (parts.next()?, parts.next()?, parts.next()?);
                self.names.contains(name).then_some(())?;
                (name.to_owned(), number_field(index)?, tail)
            }
        };
        let (quality, ext) = tail.split_once('.')?;
        let format = *ImageFormat::ALL
            .iter()
            .find(|f| f.extensions().contains(&ext))?;
        QUALITY_TOKENS.contains(&quality).then_some(())?;
        Some(FileKey {
            prompt,
            index,
            quality: quality.to_owned(),
            format,
        })
    }

    /// The key of a job's file, as [`Namer::key`] reads it.
    pub fn key_of(&self, job: &Job) -> FileKey {
        let prompt = match (self.naming, self.from_file) {
            (Naming::Legacy, _) => job.prompt.number.to_string(),
            (Naming::Seed, false) => String::new(),
            (Naming::Seed, true) => job.prompt.name.clone(),
        };
        FileKey {
            prompt,
            index: job.index as usize,
            quality: job.prompt.quality.to_owned(),
            format: job.prompt.spec.asked_format(),
        }
    }
}

/// A file's identity apart from how wide its numbers are written: raising a count past 99
/// widens the numbers of new files, and the old ones must still count as made.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileKey {
    pub prompt: String,
    pub index: usize,
    pub quality: String,
    pub format: ImageFormat,
}

/// A number field of at least two digits, as genimg writes them.
fn number_field(s: &str) -> Option<usize> {
    if s.len() >= 2 && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok().filter(|n| *n >= 1)
    } else {
        None
    }
}

/// What the destination holds of one planned image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Not there.
    Missing,
    /// There, made from this very request (or before genimg kept a manifest).
    Current,
    /// There, but made from another request: the prompt or options changed since.
    Stale,
}

/// What the destination already holds, as far as the plan is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survey {
    /// Per job, what is on disk under its name.
    pub found: Vec<Found>,
    pub existing: Existing,
    /// Files `--from-scratch` moves to the trash first.
    pub removals: Vec<String>,
    /// Per job: the name its file already has, where it differs from the planned one (its
    /// numbers were written narrower, before a count passed 99). See [`Plan::adopt`].
    pub aliases: Vec<Option<String>>,
    /// Per job: the file an earlier run kept its image as, under another name than planned
    /// (its bytes were in another format than asked), where that is how it is on disk.
    pub kept: Vec<Option<String>>,
    /// Per job: why it is held back though it is not on disk, if it is (see [`Held`]).
    /// Empty when no job is.
    pub held: Vec<Option<Held>>,
}

/// Why a job is held back from a run though its image is not on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// Pending in this batch of the Batch API: no run buys it again.
    Pending(String),
    /// Refused by the service in a batch before, for the same request: a `--batch` run
    /// does not ask for it again (unless `--overwrite` or `--from-scratch`).
    Refused,
}

impl Survey {
    /// Whether the job at `i` is to be made by this run.
    pub fn is_todo(&self, i: usize) -> bool {
        self.held(i).is_none()
            && match self.existing {
                Existing::Keep => self.found[i] == Found::Missing,
                Existing::RemakeStale => self.found[i] != Found::Current,
                Existing::Overwrite | Existing::Remove => true,
            }
    }

    /// Why the job at `i` is held back, if it is.
    pub fn held(&self, i: usize) -> Option<&Held> {
        self.held.get(i).and_then(Option::as_ref)
    }

    /// The batch the job at `i` is pending in, if any.
    pub fn pending_in(&self, i: usize) -> Option<&str> {
        match self.held(i) {
            Some(Held::Pending(batch)) => Some(batch),
            _ => None,
        }
    }

    /// Marks the jobs whose file names are pending in a batch, by `(file name, batch)`,
    /// in place of what was marked before (a job refused before stays so).
    pub fn mark_pending(&mut self, plan: &Plan, pending: &[(String, String)]) {
        if self.held.is_empty() {
            if pending.is_empty() {
                return;
            }
            self.held = vec![None; plan.jobs.len()];
        }
        let by_name: std::collections::HashMap<&str, &str> = pending
            .iter()
            .map(|(name, batch)| (name.as_str(), batch.as_str()))
            .collect();
        for (slot, job) in self.held.iter_mut().zip(&plan.jobs) {
            if *slot != Some(Held::Refused) {
                *slot = by_name
                    .get(job.file_name.as_str())
                    .map(|b| Held::Pending((*b).to_owned()));
            }
        }
    }

    /// Marks the job at `i` as refused in a batch before.
    pub fn mark_refused(&mut self, i: usize) {
        if self.held.is_empty() {
            self.held = vec![None; self.found.len()];
        }
        self.held[i] = Some(Held::Refused);
    }

    /// How many jobs are pending in a batch.
    pub fn pending_count(&self) -> usize {
        self.held
            .iter()
            .filter(|h| matches!(h, Some(Held::Pending(_))))
            .count()
    }

    /// How many jobs were refused in a batch before, and are not asked again.
    pub fn refused_count(&self) -> usize {
        self.held
            .iter()
            .filter(|h| matches!(h, Some(Held::Refused)))
            .count()
    }

    pub fn to_make(&self) -> usize {
        (0..self.found.len()).filter(|i| self.is_todo(*i)).count()
    }

    /// The files this run's new images would take the names of (`--overwrite`,
    /// `--remake-stale`): each old one goes to the trash as its new image is saved.
    pub fn replaced<'p>(&self, plan: &'p Plan) -> Vec<&'p str> {
        plan.jobs
            .iter()
            .enumerate()
            .filter(|&(i, _)| {
                self.is_todo(i)
                    && self.found[i] != Found::Missing
                    && self.kept.get(i).is_none_or(Option::is_none)
            })
            .map(|(_, job)| job.file_name.as_str())
            .collect()
    }

    /// The images kept although their request changed.
    pub fn stale<'p>(&self, plan: &'p Plan) -> Vec<&'p Job> {
        plan.jobs
            .iter()
            .zip(&self.found)
            .filter(|(_, f)| **f == Found::Stale && self.existing == Existing::Keep)
            .map(|(job, _)| job)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_patterns_are_wildcards_on_prompt_names() {
        for (pattern, name, matches) in [
            ("title_*", "title_hero", true),
            ("title_*", "title_", true),
            ("title_*", "diagram_flow", false),
            ("*flow", "diagram_flow", true),
            ("d?agram*", "diagram_flow", true),
            ("hero", "hero", true),
            ("hero", "heroes", false),
            ("*", "anything", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            ("", "", true),
            ("", "x", false),
        ] {
            assert_eq!(wildcard(pattern, name), matches, "{pattern} {name}");
        }
        assert!(selected(&[], "any"));
        assert!(selected(&["x".into(), "h*".into()], "hero"));
        assert!(!selected(&["x".into()], "hero"));
    }

    fn namer(naming: Naming, from_file: bool, count: usize) -> Namer {
        Namer {
            naming,
            from_file,
            image_digits: digits(count),
            prompt_digits: digits(3),
            names: ["cat", "dog-2", "sun_set"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            numbers: [1, 2, 3].into_iter().collect(),
        }
    }

    #[test]
    fn the_seeds_names() {
        let single = namer(Naming::Seed, false, 3);
        assert_eq!(single.name(1, "image", 1, "hd", "png"), "image_01_hd.png");
        assert_eq!(single.name(1, "image", 3, "hd", "png"), "image_03_hd.png");
        let file = namer(Naming::Seed, true, 2);
        assert_eq!(file.name(2, "cat", 1, "hd", "png"), "image.cat.01.hd.png");
        let low = namer(Naming::Seed, true, 2);
        assert_eq!(
            low.name(1, "cat", 2, "standard", "png"),
            "image.cat.02.standard.png"
        );
        let legacy = namer(Naming::Legacy, true, 2);
        assert_eq!(
            legacy.name(3, "cat", 2, "hd", "png"),
            "desc_03_image_02_hd.png"
        );
    }

    #[test]
    fn numbers_widen_once_the_count_needs_it() {
        assert_eq!(digits(1), 2);
        assert_eq!(digits(99), 2);
        assert_eq!(digits(100), 3);
        assert_eq!(digits(1000), 4);
        let n = namer(Naming::Seed, false, 100);
        assert_eq!(n.name(1, "image", 7, "hd", "png"), "image_007_hd.png");
        assert_eq!(n.name(1, "image", 100, "hd", "png"), "image_100_hd.png");
    }

    #[test]
    fn recognises_its_own_names_with_any_number_quality_or_extension() {
        let file = namer(Naming::Seed, true, 2);
        for ours in [
            "image.cat.01.hd.png",
            "image.cat.123.standard.png",
            "image.dog-2.05.low.jpeg",
            "image.sun_set.10.xhigh.webp",
            "image.cat.01.medium.jpg",
        ] {
            assert!(file.is_ours(ours), "{ours}");
        }
        for theirs in [
            "image.cow.01.hd.png",     // not one of this run's prompts
            "image.cat.1.hd.png",      // genimg never writes one digit
            "image.cat.01.final.png",  // not a quality
            "image.cat.01.hd.png.bak", // not an image extension
            "image.cat.01.hd.txt",
            "image.cat.00.hd.png",
            "notes.txt",
            "image_01_hd.png", // the single-prompt scheme
            "Image.cat.01.hd.png",
        ] {
            assert!(!file.is_ours(theirs), "{theirs}");
        }

        let single = namer(Naming::Seed, false, 2);
        assert!(single.is_ours("image_01_hd.png"));
        assert!(single.is_ours("image_150_standard.webp"));
        assert!(!single.is_ours("image_01_hd_copy.png"));
        assert!(!single.is_ours("image_ab_hd.png"));
        assert!(!single.is_ours("image.cat.01.hd.png"));

        let legacy = namer(Naming::Legacy, true, 2);
        assert!(legacy.is_ours("desc_01_image_01_hd.png"));
        assert!(legacy.is_ours("desc_03_image_120_standard.png"));
        assert!(
            !legacy.is_ours("desc_04_image_01_hd.png"),
            "prompt 4 is not in this run"
        );
        assert!(
            legacy.is_ours("desc_01_image_01_hd.gif"),
            "a 2.6 model's GIF"
        );
        assert!(!legacy.is_ours("desc_01_image_01_hd.bmp"));
    }
}
