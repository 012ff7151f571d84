//! Live progress on a terminal (indicatif): an overall bar with done/total, failures, the
//! running cost, the requests on the wire and the ETA, and under it one line per image being
//! made (from its first request until it is saved or failed) with its prompt, the time it has
//! taken, and any retry, wait or save. Everything else an event says is printed above
//! the bars, as the plain reporter would print it.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Event, Reporter, Said, describe, duration};
use crate::config::Verbosity;
use crate::plan::Job;
use crate::units::usd;

/// How often spinners and elapsed times move.
const TICK: Duration = Duration::from_millis(120);

/// The overall bar, before any image is done, and after: only then has the ETA a base. The
/// bar takes the room the rest leaves, so that the line fits the terminal's width (a long
/// wait has a line of its own, cut to the width).
const OVERALL: &str = "{spinner} [{wide_bar:.cyan/blue}] {pos}/{len} {msg} · {elapsed}";
const OVERALL_ETA: &str =
    "{spinner} [{wide_bar:.cyan/blue}] {pos}/{len} {msg} · {elapsed} · ETA {eta}";
/// The overall bar of a batch: the service's account of it, cut to the terminal's width.
const BATCH: &str = "{spinner} [{bar:20.cyan/blue}] {pos}/{len} {wide_msg}";
/// A request's line, and the line of a long wait: cut to the terminal's width.
const LINE: &str = "  {spinner} {elapsed:>5} {wide_msg}";

/// The one place bar styles are made.
fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("the templates are valid")
        .progress_chars("=> ")
        .tick_chars("|/-\\ ")
}

/// Progress bars on stderr, for a terminal.
pub struct TerminalReporter {
    verbosity: Verbosity,
    multi: MultiProgress,
    overall: ProgressBar,
    /// The line of each image from its first request until it is saved or failed, by file
    /// name.
    lines: Mutex<HashMap<String, ProgressBar>>,
    /// The requests of those lines on the wire: sent and not yet answered. Not those that
    /// wait to be sent again, nor those whose answer is being checked and saved.
    on_wire: Mutex<std::collections::HashSet<String>>,
    /// Whether the overall bar shows an ETA: once an image is made.
    eta_shown: std::sync::atomic::AtomicBool,
    /// Failures and the cost so far, for the overall bar.
    tally: Mutex<(usize, f64)>,
    /// The line of a long wait the service asked for, under the overall bar, and when the
    /// wait ends.
    waiting: Mutex<Option<(ProgressBar, std::time::Instant)>>,
    said: Said,
}

impl std::fmt::Debug for TerminalReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalReporter")
            .field("verbosity", &self.verbosity)
            .finish_non_exhaustive()
    }
}

impl TerminalReporter {
    pub fn stderr(verbosity: Verbosity) -> TerminalReporter {
        TerminalReporter::with_target(verbosity, ProgressDrawTarget::stderr())
    }

    pub fn with_target(verbosity: Verbosity, target: ProgressDrawTarget) -> TerminalReporter {
        let multi = MultiProgress::with_draw_target(target);
        // No ETA until an image is done: before that it says nothing.
        let overall = multi.add(ProgressBar::new(0).with_style(style(OVERALL)));
        TerminalReporter {
            verbosity,
            multi,
            overall,
            lines: Mutex::new(HashMap::new()),
            on_wire: Mutex::new(std::collections::HashSet::new()),
            eta_shown: std::sync::atomic::AtomicBool::new(false),
            tally: Mutex::new((0, 0.0)),
            waiting: Mutex::new(None),
            said: Said::default(),
        }
    }

    /// The bars, so that log lines can be printed above them rather than through them.
    pub fn bars(&self) -> &MultiProgress {
        &self.multi
    }

    fn println(&self, text: &str) {
        // A closed stderr must not stop the run.
        let _ = self.multi.println(text);
    }

    /// What `describe` says, printed above the bars if the verbosity shows it.
    fn tell(&self, event: &Event<'_>) {
        if let Some((min, text)) = describe(event, self.verbosity)
            && self.verbosity >= min
        {
            self.println(&text);
        }
    }

    fn label(job: &Job) -> String {
        match &job.prompt.label {
            Some(name) => format!("{name} #{}", job.index),
            None => format!("image #{}", job.index),
        }
    }

    fn end_line(&self, file_name: &str) {
        let line = self
            .lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(file_name);
        if let Some(line) = line {
            line.finish_and_clear();
            self.multi.remove(&line);
        }
        self.off_the_wire(file_name);
    }

    /// The request of `file_name` is not on the wire (any more).
    /// A request's line: the prompt and the image's number (the file name too with -v), then
    /// `more`.
    fn line_text(&self, job: &Job, more: &str) -> String {
        let mut text = Self::label(job);
        if self.verbosity >= Verbosity::Verbose {
            text.push_str(&format!(" ({})", job.file_name));
        }
        text.push_str(more);
        text
    }

    /// Says `more` on the job's line, if it has one.
    fn set_line(&self, job: &Job, more: &str) {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(line) = lines.get(&job.file_name) {
            line.set_message(self.line_text(job, more));
        }
    }

    fn off_the_wire(&self, file_name: &str) {
        self.on_wire
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(file_name);
    }

    fn count(&self, failed: bool, cost: Option<f64>) {
        {
            let mut tally = self.tally.lock().unwrap_or_else(|e| e.into_inner());
            if failed {
                tally.0 += 1;
            }
            tally.1 += cost.unwrap_or(0.0);
        }
        // An ETA from an image made: a fast failure says nothing of how long images take.
        if !failed
            && !self
                .eta_shown
                .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            self.overall.set_style(style(OVERALL_ETA));
        }
        self.overall.inc(1);
        self.refresh();
    }

    /// The overall bar's message: the cost so far, failures, and the requests in flight.
    fn refresh(&self) {
        let (failed, cost) = *self.tally.lock().unwrap_or_else(|e| e.into_inner());
        // On the wire: not those waiting for a retry, nor those answered and being saved.
        let in_flight = self.on_wire.lock().unwrap_or_else(|e| e.into_inner()).len();
        let failures = match failed {
            0 => String::new(),
            n => format!(" · {n} failed"),
        };
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if waiting
            .as_ref()
            .is_some_and(|(_, end)| *end <= std::time::Instant::now())
            && let Some((line, _)) = waiting.take()
        {
            line.finish_and_clear();
            self.multi.remove(&line);
        }
        drop(waiting);
        self.overall
            .set_message(format!("· {}{failures} · {in_flight} in flight", usd(cost)));
    }
}

impl Reporter for TerminalReporter {
    fn event(&self, event: Event<'_>) {
        let repeats = self.said.repeats(&event);
        match &event {
            Event::Planned { to_make, .. } => {
                self.overall.set_length(*to_make as u64);
                self.refresh();
                self.overall.enable_steady_tick(TICK);
                self.tell(&event);
            }
            Event::Sending { job, attempt } => {
                self.on_wire
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(job.file_name.clone());
                let message = match attempt {
                    1 => self.line_text(job, ""),
                    n => self.line_text(job, &format!(", attempt {n}")),
                };
                let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
                match lines.get(&job.file_name) {
                    Some(line) => line.set_message(message),
                    None => {
                        // A line per request in flight: from when it is sent, not queued.
                        let line = self
                            .multi
                            .insert_before(&self.overall, spinner_line(message));
                        line.enable_steady_tick(TICK);
                        lines.insert(job.file_name.clone(), line);
                    }
                }
                drop(lines);
                self.refresh();
            }
            Event::Answered { job, image } => {
                self.off_the_wire(&job.file_name);
                // The line stays until the image is saved; an error's line says next whether
                // it is retried or failed.
                if *image {
                    self.set_line(job, " · saving");
                }
                self.refresh();
            }
            Event::Partial { job, index, total } => {
                self.set_line(job, &format!(" · partial {index} of {total}"));
            }
            Event::LongWait { wait, .. } => {
                let text = format!(
                    "the service asks to wait {}, Ctrl-C to stop",
                    duration(*wait)
                );
                let end = std::time::Instant::now() + *wait;
                let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
                match waiting.as_mut() {
                    Some((line, until)) => {
                        line.set_message(text);
                        line.reset_elapsed();
                        *until = end;
                    }
                    None => {
                        let line = self.multi.insert_after(&self.overall, spinner_line(text));
                        line.enable_steady_tick(TICK);
                        *waiting = Some((line, end));
                    }
                }
                drop(waiting);
                self.refresh();
                self.tell(&event);
            }
            Event::Retrying {
                job,
                attempt,
                wait,
                error,
                counted,
                ..
            } => {
                self.off_the_wire(&job.file_name);
                self.refresh();
                if let Some(line) = self
                    .lines
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&job.file_name)
                {
                    let mut reason = error.to_string();
                    if reason.chars().count() > 60 {
                        reason = format!("{}…", reason.chars().take(60).collect::<String>());
                    }
                    line.set_message(if *counted {
                        format!(
                            "{}: attempt {attempt} failed, retrying in {} ({reason})",
                            Self::label(job),
                            duration(*wait)
                        )
                    } else {
                        format!(
                            "{}: rate limited, retrying in {}",
                            Self::label(job),
                            duration(*wait)
                        )
                    });
                }
                if self.verbosity >= Verbosity::Verbose {
                    self.tell(&event);
                }
            }
            Event::Saved { made, .. } => {
                self.end_line(&made.file_name);
                self.count(false, made.cost);
                // Each saved image is a line of its own only with -v; the bar counts them.
                if self.verbosity >= Verbosity::Verbose {
                    self.tell(&event);
                }
            }
            Event::Failed { failure, .. } => {
                self.end_line(&failure.file_name);
                // An image the stop line already spoke for is not made, not failed.
                self.count(!repeats, None);
                if !repeats {
                    self.tell(&event);
                }
            }
            Event::Finished { .. } => {
                for (_, line) in self.lines.lock().unwrap_or_else(|e| e.into_inner()).drain() {
                    line.finish_and_clear();
                }
                if let Some((line, _)) = self
                    .waiting
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()
                {
                    line.finish_and_clear();
                }
                self.overall.finish_and_clear();
                if let Some((_, text)) = describe(&event, self.verbosity) {
                    // A terminal closed under the run (SIGHUP) must not turn the summary
                    // into a panic.
                    self.multi.suspend(|| {
                        let _ = writeln!(std::io::stderr(), "{text}");
                    });
                }
            }
            Event::BatchProgress {
                id,
                status,
                done,
                failed,
                total,
                since,
                left,
            } => {
                // The bar shows the batch as the service counts it.
                self.overall.set_style(style(BATCH));
                self.overall.set_length(*total);
                self.overall.set_position(done + failed);
                self.overall.set_message(super::batch_line(
                    id, status, *done, *failed, *total, *since, *left,
                ));
                if self.verbosity >= Verbosity::Verbose {
                    self.tell(&event);
                }
            }
            _ => self.tell(&event),
        }
    }
}

/// A line under the overall bar: a spinner, its time, and `message`, cut to the width. Its
/// steady tick is for the caller to start once it is in the multi-bar (before, it would draw
/// on its own).
fn spinner_line(message: impl Into<std::borrow::Cow<'static, str>>) -> ProgressBar {
    ProgressBar::new_spinner()
        .with_style(style(LINE))
        .with_message(message)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use indicatif::InMemoryTerm;

    use super::*;
    use crate::cli::try_parse_from;
    use crate::config::{Config, Env};
    use crate::outcome::Made;
    use crate::plan::Plan;

    fn plan() -> Plan {
        let cli = try_parse_from(["genimg", "--input", "-", "-n", "2", "--api-key", "k"]).unwrap();
        let config =
            Config::from_cli_with_stdin(cli, &Env::default(), &mut "# fox\na fox\n".as_bytes())
                .unwrap();
        Plan::new(&config)
    }

    fn made(job: &Job) -> Made {
        Made::example(&job.file_name, job.prompt.label.as_deref(), Some(0.21))
    }

    /// The screen once `ready` holds of it (bars redraw at their own pace), or after a second.
    /// A reporter on a 120-column in-memory terminal, told of a plan of two images.
    fn planned() -> (InMemoryTerm, Arc<TerminalReporter>, Plan) {
        let term = InMemoryTerm::new(12, 120);
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(term.clone()), 100);
        let r = Arc::new(TerminalReporter::with_target(Verbosity::Normal, target));
        r.event(Event::Planned {
            to_make: 2,
            on_disk: 0,
            model: "gpt-image-2",
            dir: "out",
            jobs: 4,
        });
        (term, r, plan())
    }

    fn settled(r: &TerminalReporter, term: &InMemoryTerm, ready: impl Fn(&str) -> bool) -> String {
        for _ in 0..50 {
            r.overall.tick();
            let screen = term.contents();
            if ready(&screen) {
                return screen;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        term.contents()
    }

    #[test]
    fn a_streamed_request_shows_its_partial_images_as_they_arrive() {
        let (term, r, plan) = planned();
        let job = &plan.jobs[0];
        r.event(Event::Started { job });
        r.event(Event::Sending { job, attempt: 1 });
        r.event(Event::Partial {
            job,
            index: 2,
            total: 3,
        });
        let screen = settled(&r, &term, |s| s.contains("partial 2 of 3"));
        assert!(screen.contains("fox #1 · partial 2 of 3"), "{screen}");
    }

    #[test]
    fn a_line_per_request_in_flight_under_the_overall_bar() {
        let (term, r, plan) = planned();
        for job in &plan.jobs {
            r.event(Event::Started { job });
            r.event(Event::Sending { job, attempt: 1 });
        }
        let error = crate::provider::ApiError::Timeout { secs: 600 };
        r.event(Event::Retrying {
            job: &plan.jobs[1],
            attempt: 1,
            max_attempts: 5,
            wait: Duration::from_secs(2),
            error: &error,
            pauses_run: false,
            counted: true,
        });
        let screen = settled(&r, &term, |s| {
            s.contains("retrying") && s.contains("fox #1") && s.contains("0/2")
        });
        assert!(
            screen.contains("Making 2 image(s) with gpt-image-2"),
            "{screen}"
        );
        assert!(screen.contains("fox #1"), "{screen}");
        assert!(
            !screen.contains("image.fox.01.hd.png"),
            "the file name only with -v: {screen}"
        );
        assert!(
            !screen.contains("ETA"),
            "no ETA before an image is done: {screen}"
        );
        assert!(
            screen.contains("· 1 in flight"),
            "the one waiting to retry is not on the wire: {screen}"
        );
        assert!(
            screen.contains("fox #2: attempt 1 failed, retrying in 2.0 s"),
            "{screen}"
        );
        assert!(screen.contains("0/2"), "{screen}");

        r.event(Event::Saved {
            made: &made(&plan.jobs[0]),
            done: 1,
            total: 2,
        });
        let screen = settled(&r, &term, |s| s.contains("1/2") && !s.contains("fox #1"));
        assert!(screen.contains("0 in flight"), "{screen}");
        assert!(!screen.contains("fox #1"), "the line went: {screen}");
        assert!(screen.contains("1/2 · $0.21"), "{screen}");
        assert!(
            screen.contains("ETA"),
            "an ETA once an image is done: {screen}"
        );
    }

    #[test]
    fn a_request_answered_and_not_yet_saved_is_not_in_flight() {
        let (term, r, plan) = planned();
        for job in &plan.jobs {
            r.event(Event::Started { job });
            r.event(Event::Sending { job, attempt: 1 });
        }
        let screen = settled(&r, &term, |s| s.contains("2 in flight"));
        assert!(screen.contains("· 2 in flight"), "{screen}");

        // The answer arrived: its image is being checked, written and recorded.
        r.event(Event::Answered {
            job: &plan.jobs[0],
            image: true,
        });
        let screen = settled(&r, &term, |s| {
            s.contains("saving") && s.contains("1 in flight")
        });
        assert!(
            screen.contains("fox #1 · saving"),
            "its line stays: {screen}"
        );
        assert!(
            screen.contains("· 1 in flight"),
            "an answered request is not on the wire: {screen}"
        );

        // An error answer: no longer on the wire either, until it is sent again.
        r.event(Event::Answered {
            job: &plan.jobs[1],
            image: false,
        });
        // Waits for the whole screen asserted: the lines redraw one by one.
        let screen = settled(&r, &term, |s| {
            s.contains("0 in flight") && s.contains("fox #2")
        });
        assert!(screen.contains("· 0 in flight"), "{screen}");
        assert!(screen.contains("fox #2"), "{screen}");
        r.event(Event::Sending {
            job: &plan.jobs[1],
            attempt: 2,
        });
        let screen = settled(&r, &term, |s| {
            s.contains("1 in flight") && s.contains("fox #2, attempt 2")
        });
        assert!(screen.contains("fox #2, attempt 2"), "{screen}");
        assert!(screen.contains("· 1 in flight"), "sent again: {screen}");

        r.event(Event::Saved {
            made: &made(&plan.jobs[0]),
            done: 1,
            total: 2,
        });
        let screen = settled(&r, &term, |s| s.contains("1/2") && !s.contains("fox #1"));
        assert!(
            !screen.contains("fox #1"),
            "the line went once saved: {screen}"
        );
        assert!(screen.contains("· 1 in flight"), "{screen}");
    }

    /// An in-memory terminal that keeps each piece of text drawn on it, without escape
    /// sequences, to measure it: a line wider than the terminal would wrap on a real one.
    #[derive(Debug, Clone)]
    struct Measured {
        term: InMemoryTerm,
        drawn: Arc<Mutex<Vec<String>>>,
    }

    impl Measured {
        fn new(rows: u16, cols: u16) -> Measured {
            Measured {
                term: InMemoryTerm::new(rows, cols),
                drawn: Arc::default(),
            }
        }

        fn measure(&self, s: &str) {
            let mut text = String::new();
            let mut chars = s.chars();
            while let Some(c) = chars.next() {
                if c == '\x1b' {
                    for c in chars.by_ref() {
                        if c.is_ascii_alphabetic() {
                            break;
                        }
                    }
                } else if c != '\r' {
                    text.push(c);
                }
            }
            let mut drawn = self.drawn.lock().unwrap();
            drawn.extend(text.split('\n').map(str::to_owned));
        }

        /// The widest line drawn, in columns, but for those of `printed`.
        fn widest(&self, printed: &[String]) -> (usize, String) {
            let drawn = self.drawn.lock().unwrap();
            drawn
                .iter()
                .filter(|line| !printed.iter().any(|p| p == line.trim_end()))
                .map(|line| {
                    (
                        unicode_width::UnicodeWidthStr::width(line.as_str()),
                        line.clone(),
                    )
                })
                .max()
                .unwrap_or_default()
        }
    }

    impl indicatif::TermLike for Measured {
        fn width(&self) -> u16 {
            self.term.width()
        }
        fn height(&self) -> u16 {
            self.term.height()
        }
        fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
            self.term.move_cursor_up(n)
        }
        fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
            self.term.move_cursor_down(n)
        }
        fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
            self.term.move_cursor_right(n)
        }
        fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
            self.term.move_cursor_left(n)
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.measure(s);
            self.term.write_line(s)
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.measure(s);
            self.term.write_str(s)
        }
        fn clear_line(&self) -> std::io::Result<()> {
            self.term.clear_line()
        }
        fn flush(&self) -> std::io::Result<()> {
            self.term.flush()
        }
    }

    #[test]
    fn every_line_fits_an_80_column_terminal_with_failures_and_a_long_wait() {
        use crate::outcome::{Failure, FailureKind};

        let term = Measured::new(40, 80);
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(term.clone()), 100);
        let r = TerminalReporter::with_target(Verbosity::Normal, target);
        let plan = plan();
        let (a, b) = (&plan.jobs[0], &plan.jobs[1]);
        r.event(Event::Planned {
            to_make: 144,
            on_disk: 0,
            model: "gpt-image-2",
            dir: "out",
            jobs: 4,
        });
        for done in 1..=100 {
            let job = &plan.jobs[done % 2];
            if done % 2 == 0 {
                r.event(Event::Saved {
                    made: &Made::example(&job.file_name, Some("fox"), Some(0.0031)),
                    done,
                    total: 144,
                });
            } else {
                r.event(Event::Failed {
                    failure: &Failure {
                        file_name: job.file_name.clone(),
                        prompt: job.prompt.label.clone(),
                        index: job.index,
                        reason: "HTTP 500".into(),
                        kind: FailureKind::Error,
                        attempts: 5,
                        cost: None,
                        moderation: None,
                    },
                    done,
                    total: 144,
                });
            }
        }
        for job in [a, b] {
            r.event(Event::Started { job });
            r.event(Event::Sending { job, attempt: 1 });
        }
        let error = crate::provider::ApiError::Timeout { secs: 600 };
        r.event(Event::Retrying {
            job: b,
            attempt: 3,
            max_attempts: 5,
            wait: Duration::from_secs(600),
            error: &error,
            pauses_run: true,
            counted: true,
        });
        let long_wait = || Event::LongWait {
            wait: Duration::from_secs(600),
            max: Duration::from_secs(900),
        };
        r.event(long_wait());
        let screen = settled(&r, &term.term, |s| {
            s.contains("100/144") && s.contains("ETA") && s.contains("00s, Ctrl-C to stop")
        });
        // A line printed above the bars (here the long wait's) is printed once, and wraps as
        // any output does; the bars are drawn again and again, and must not wrap.
        let printed = [describe(&long_wait(), Verbosity::Normal).unwrap().1];
        let (width, line) = term.widest(&printed);
        assert!(
            width <= 80,
            "a line of {width} columns on an 80-column terminal: {line:?}\n{screen}"
        );
        for part in [
            "100/144 · $0.155 · 50 failed · 1 in flight · ",
            "· ETA ",
            "fox #2: attempt 3 failed, retrying in 10m 00s",
            "the service asks to wait 10m 00s, Ctrl-C to stop",
        ] {
            assert!(screen.contains(part), "{part:?} in\n{screen}");
        }
    }

    #[test]
    fn a_batch_shows_on_the_bar_as_the_service_counts_it() {
        let term = InMemoryTerm::new(6, 160);
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(term.clone()), 100);
        let r = TerminalReporter::with_target(Verbosity::Normal, target);
        r.event(Event::BatchProgress {
            id: "batch_1",
            status: "in_progress",
            done: 3,
            failed: 1,
            total: 10,
            since: Some(Duration::from_secs(120)),
            left: Some(Duration::from_secs(23 * 3600)),
        });
        let screen = settled(&r, &term, |s| s.contains("4/10"));
        assert!(
            screen.contains("4/10"),
            "done and failed, of the total: {screen}"
        );
        assert!(
            screen
                .contains("batch batch_1: in_progress, 3 of 10 done, 1 failed, created 2m 00s ago"),
            "{screen}"
        );
        assert!(screen.contains("left in its window"), "{screen}");
    }

    #[test]
    fn an_image_a_stop_failed_is_said_by_the_stop_line_only() {
        use crate::outcome::{Failure, FailureKind, FatalStop};
        use crate::provider::Fatal;

        let term = InMemoryTerm::new(12, 160);
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(term.clone()), 100);
        let r = TerminalReporter::with_target(Verbosity::Normal, target);
        let plan = plan();
        r.event(Event::Planned {
            to_make: 2,
            on_disk: 0,
            model: "gpt-image-2",
            dir: "out",
            jobs: 4,
        });
        let job = &plan.jobs[0];
        r.event(Event::Started { job });
        r.event(Event::Sending { job, attempt: 1 });
        let stop = FatalStop {
            fatal: Fatal::Unauthorized,
            error: "HTTP 401 Unauthorized: Incorrect API key provided".into(),
        };
        r.event(Event::Fatal { stop: &stop });
        r.event(Event::Failed {
            failure: &Failure {
                file_name: job.file_name.clone(),
                prompt: job.prompt.label.clone(),
                index: job.index,
                reason: stop.error.clone(),
                kind: FailureKind::Fatal(stop.fatal),
                attempts: 1,
                cost: None,
                moderation: None,
            },
            done: 1,
            total: 2,
        });
        let screen = settled(&r, &term, |s| s.contains("1/2") && !s.contains("fox #1"));
        assert_eq!(screen.matches("Incorrect API key").count(), 1, "{screen}");
        assert!(!screen.contains("FAILED"), "{screen}");
        assert!(
            !screen.contains("failed"),
            "not counted as failed: {screen}"
        );
    }
}
