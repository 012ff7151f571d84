//! Throughput benchmark: the real genimg binary against the local fake of the Images API, with
//! answers as big as real images (about 1.5 MB of PNG, 2 MB of base64 JSON).
//!
//! ```sh
//! cargo bench --bench throughput              # every scenario
//! cargo bench --bench throughput -- a e       # only (a) and (e)
//! cargo bench --bench throughput -- --runs 3  # each scenario 3 times, the median run kept
//! ```
//!
//! genimg is the binary Cargo builds for this target (`CARGO_BIN_EXE_genimg`, with the bench
//! profile: release with thin LTO). Each scenario runs it as a child process in a temporary
//! workspace against a fresh fake server (in this process), and measures the wall time from
//! spawn to exit, the child's CPU time (user + system, from `getrusage(RUSAGE_CHILDREN)`
//! deltas) and its peak RSS (`VmHWM` in `/proc/<pid>/status`, polled every 5 ms until it exits;
//! Linux only). The fake's own CPU time (this process's, from `RUSAGE_SELF`) is shown too: on a
//! small machine it competes with genimg for the cores.
//!
//! Scenarios and targets:
//! - (a) 96 images, `-n 96 -j 16`, 300 ms latency: wall time at most 1.15 × ceil(96/16) × 0.3 s.
//! - (b) 60 images, `-j 16 --ipm 600`, against a limit of 600 images a minute with a burst of
//!   5, 300 ms latency: wall time at most 1.15 × ((60 - 5) / 10 s + 0.3 s), and fewer than 10%
//!   of the requests answered 429.
//! - (b') the same without `--ipm`, genimg learning the limit, with refused requests counted
//!   against it by the fake: no failed image in 10 runs, at most 10% of the requests answered
//!   429 and a wall time at most 1.15 × the ideal, both the median of the 10 runs.
//! - (f) 20 images at `-j 16` against 120 a minute with a burst of 1, no `--ipm`: no failed
//!   image, at most 15% of the requests answered 429 (median of 3 runs, or `--runs`).
//! - (c) CPU time per image in (a): under 5 ms.
//! - (d) peak RSS of (a), for information, and of 1,000 images at `-j 64` with no latency:
//!   under 150 MB.
//! - (g) a `--batch` of 500 images of 1.5 MB (an output file of about 1 GB) submitted, waited
//!   for and collected: peak RSS under 200 MB, whatever the size of the batch.
//! - (e) a dry run of a 10,000-prompt file: under 300 ms.
//! - (a') (a) with `--stream` (each answer as server-sent events): wall time at most 1.15 × the
//!   ideal of (a), and CPU time per image under 5 ms, as (c).
//! - (h) `genimg gallery` of a folder of 500 photo-like 1024x1024 PNGs (about 1.5 MB each)
//!   with no thumbnails yet: peak RSS under 200 MB; its wall time and CPU for information,
//!   and the wall time of the same command again, every thumbnail made: under 1 s.

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::{FakeServer, Options, RateLimit, Workspace, genimg};

/// About as big as a high-quality 1024x1024 PNG from the service.
const PAYLOAD: usize = 1_500_000;
const LATENCY: Duration = Duration::from_millis(300);

fn main() {
    let args = Args::parse();
    println!("# genimg throughput\n");
    print_machine(&args);

    let mut table = Table::default();
    let mut notes = Vec::new();
    let want = |id: &str| args.wants(id);

    if want("a") || want("c") || want("d") {
        let a = repeat(args.runs, scenario_a);
        notes.push(a.note.clone());
        let ideal = (96f64 / 16.0).ceil() * LATENCY.as_secs_f64();
        if want("a") {
            match &a.result {
                Ok(m) => table.ratio(
                    "(a) 96 images, -j 16, 300 ms latency: wall time",
                    m.wall.as_secs_f64(),
                    ideal,
                    1.15,
                    "s",
                ),
                Err(e) => table.failed("(a) 96 images, -j 16: wall time", e),
            }
        }
        if want("c") {
            match &a.result {
                Ok(m) => match m.cpu {
                    Some(cpu) => {
                        let per_image = cpu.as_secs_f64() * 1000.0 / 96.0;
                        table.under(
                            "(c) CPU time per image, from (a)",
                            per_image,
                            5.0,
                            "ms",
                            &format!("{} CPU for 96 images", secs(cpu)),
                        );
                    }
                    None => table.not_run("(c) CPU time per image", "n/a on this system"),
                },
                Err(e) => table.failed("(c) CPU time per image", e),
            }
        }
        if want("d") {
            match &a.result {
                Ok(m) => table.info("(d) peak RSS of (a), -j 16", &mb(m.rss_kb), "(information)"),
                Err(e) => table.failed("(d) peak RSS of (a)", e),
            }
        }
    }

    if want("b") {
        match ipm_support() {
            Err(why) => table.not_run("(b) 60 images, -j 16 --ipm 600, limit 600/min", &why),
            Ok(()) => {
                let b = repeat(args.runs, scenario_b);
                notes.push(b.note.clone());
                b_rows(&mut table, "(b) 60 images, -j 16 --ipm 600", &b);
            }
        }
    }
    if want("b'") {
        let runs = rate_runs(600, 5, 60, args.runs.max(10));
        notes.push(format!("(b') {}", runs.note));
        runs.rows(
            &mut table,
            "(b') 60 images, -j 16, no --ipm, 600/min burst 5",
            10.0,
            true,
        );
    }
    if want("f") {
        let runs = rate_runs(120, 1, 20, args.runs.max(3));
        notes.push(format!("(f) {}", runs.note));
        runs.rows(
            &mut table,
            "(f) 20 images, -j 16, no --ipm, 120/min burst 1",
            15.0,
            false,
        );
    }

    if want("d") {
        let d = repeat(args.runs, scenario_d);
        notes.push(d.note.clone());
        match &d.result {
            Ok(m) => {
                table.under(
                    "(d) peak RSS, 1,000 images, -j 64, no latency",
                    m.rss_kb.map_or(f64::NAN, |kb| kb as f64 / 1024.0),
                    150.0,
                    "MB",
                    &format!("wall {}, CPU {}", secs(m.wall), opt_secs(m.cpu)),
                );
            }
            Err(e) => table.failed("(d) 1,000 images, -j 64", e),
        }
    }

    if want("e") {
        let e = repeat(args.runs, scenario_e);
        notes.push(e.note.clone());
        match &e.result {
            Ok(m) => table.under(
                "(e) dry run of 10,000 prompts: wall time",
                m.wall.as_secs_f64() * 1000.0,
                300.0,
                "ms",
                &format!("peak RSS {}, CPU {}", mb(m.rss_kb), opt_secs(m.cpu)),
            ),
            Err(e) => table.failed("(e) dry run of 10,000 prompts", e),
        }
    }

    if want("a'") {
        let a = repeat(args.runs, scenario_a_stream);
        notes.push(a.note.clone());
        let ideal = (96f64 / 16.0).ceil() * LATENCY.as_secs_f64();
        match &a.result {
            Ok(m) => {
                table.ratio(
                    "(a') (a) with --stream: wall time",
                    m.wall.as_secs_f64(),
                    ideal,
                    1.15,
                    "s",
                );
                match m.cpu {
                    Some(cpu) => table.under(
                        "(a') CPU time per image, with --stream",
                        cpu.as_secs_f64() * 1000.0 / 96.0,
                        5.0,
                        "ms",
                        &format!("{} CPU for 96 images", secs(cpu)),
                    ),
                    None => table.not_run("(a') CPU time per image", "n/a on this system"),
                }
            }
            Err(e) => table.failed("(a') (a) with --stream", e),
        }
    }

    if want("h") {
        let (first, again, note) = scenario_h();
        notes.push(note);
        match (&first, &again) {
            (Ok(m), Ok(again)) => {
                table.under(
                    "(h) gallery of 500 1024x1024 PNGs, thumbnails made: peak RSS",
                    m.rss_kb.map_or(f64::NAN, |kb| kb as f64 / 1024.0),
                    200.0,
                    "MB",
                    &format!("wall {}, CPU {}", secs(m.wall), opt_secs(m.cpu)),
                );
                table.under(
                    "(h) the same again, every thumbnail there: wall time",
                    again.wall.as_secs_f64(),
                    1.0,
                    "s",
                    &format!("CPU {}", opt_secs(again.cpu)),
                );
            }
            (Err(e), _) | (_, Err(e)) => table.failed("(h) gallery of 500 images", e),
        }
    }

    if want("g") {
        let g = repeat(args.runs, scenario_g);
        notes.push(g.note.clone());
        match &g.result {
            Ok(m) => table.under(
                "(g) --batch of 500 images (about 1 GB of output): peak RSS",
                m.rss_kb.map_or(f64::NAN, |kb| kb as f64 / 1024.0),
                200.0,
                "MB",
                &format!("wall {}, CPU {}", secs(m.wall), opt_secs(m.cpu)),
            ),
            Err(e) => table.failed("(g) --batch of 500 images", e),
        }
    }

    println!("{}", table.render());
    println!("## Notes\n");
    for note in notes.iter().filter(|n| !n.is_empty()) {
        println!("- {note}");
    }
    println!();
}

fn b_rows(table: &mut Table, name: &str, b: &Scenario) {
    let burst = 5.0;
    let ideal = (60.0 - burst) / (600.0 / 60.0) + LATENCY.as_secs_f64();
    let m = match &b.result {
        Ok(m) => m,
        Err(e) => {
            table.failed(name, e);
            return;
        }
    };
    let requests = b.requests.max(1);
    let share = 100.0 * b.limited as f64 / requests as f64;
    let detail = format!("{} of {} requests answered 429", b.limited, b.requests);
    table.ratio(
        &format!("{name}: wall time"),
        m.wall.as_secs_f64(),
        ideal,
        1.15,
        "s",
    );
    table.under(&format!("{name}: 429s"), share, 10.0, "%", &detail);
}

/// Runs of a rate-limit scenario without `--ipm`: genimg must find the limit itself.
struct RateRuns {
    /// The ideal wall time: the burst at once, then the rest at the limit, then one latency.
    ideal: f64,
    /// Wall time and 429s in % of the requests, of each run that ran.
    walls: Vec<f64>,
    shares: Vec<f64>,
    /// Images not made, over all runs.
    failed_images: usize,
    runs: usize,
    errors: Vec<String>,
    note: String,
}

/// `images` images at `-j 16`, 300 ms latency, against a fake limited to `per_minute` with a
/// burst of `burst`, which counts refused requests against the limit; `runs` times.
fn rate_runs(per_minute: u32, burst: u32, images: usize, runs: usize) -> RateRuns {
    let ideal =
        (images as f64 - f64::from(burst)) / (f64::from(per_minute) / 60.0) + LATENCY.as_secs_f64();
    let count = images.to_string();
    let args = ["a prompt", "-n", &count, "-j", "16"];
    let mut r = RateRuns {
        ideal,
        walls: Vec::new(),
        shares: Vec::new(),
        failed_images: 0,
        runs,
        errors: Vec::new(),
        note: String::new(),
    };
    let mut lines = Vec::new();
    for _ in 0..runs {
        let server = server(Options {
            latency: LATENCY,
            rate_limit: Some(RateLimit { per_minute, burst }),
            ..Options::default()
        });
        let ws = Workspace::new();
        let mut cmd = genimg(&ws, Some(&server));
        cmd.args(args).args(["--dst-dir", "out"]);
        match measure(&mut cmd) {
            Ok(m) => {
                let made = ws.files("out").len();
                r.failed_images += images.saturating_sub(made);
                let requests = server.image_requests().len().max(1);
                let share = 100.0 * server.rate_limited() as f64 / requests as f64;
                r.walls.push(m.wall.as_secs_f64());
                r.shares.push(share);
                lines.push(format!(
                    "{:.2} s, {}/{requests} 429s, {made} made",
                    m.wall.as_secs_f64(),
                    server.rate_limited()
                ));
                if m.code != 0 {
                    r.errors
                        .push(format!("exit code {}: {}", m.code, m.stderr_tail()));
                }
            }
            Err(e) => r.errors.push(e),
        }
    }
    r.note = format!(
        "`genimg {}` against {per_minute}/min, burst {burst}, refused requests counted; {runs} \
         runs: {}",
        args.join(" "),
        lines.join("; ")
    );
    r
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

impl RateRuns {
    fn rows(&self, table: &mut Table, name: &str, max_share: f64, judge_wall: bool) {
        if self.walls.is_empty() {
            table.failed(name, self.errors.first().map_or("no run", String::as_str));
            return;
        }
        let wall = median(&self.walls);
        if judge_wall {
            table.ratio(
                &format!("{name}: wall time, median"),
                wall,
                self.ideal,
                1.15,
                "s",
            );
        } else {
            table.info(
                &format!("{name}: wall time, median"),
                &format!("{wall:.2} s"),
                &format!(
                    "ideal {:.2} s, {:.2}× (information)",
                    self.ideal,
                    wall / self.ideal
                ),
            );
        }
        let share = median(&self.shares);
        let max = self.shares.iter().copied().fold(0.0, f64::max);
        table.under_or_at(
            &format!("{name}: 429s, median"),
            share,
            max_share,
            "%",
            &format!("worst run {max:.1}%"),
        );
        table.under_or_at(
            &format!("{name}: failed images in {} runs", self.runs),
            self.failed_images as f64,
            0.0,
            "images",
            &self.errors.first().cloned().unwrap_or_default(),
        );
    }
}

// The scenarios

/// One scenario's measured run, with what the fake saw.
#[derive(Clone)]
struct Scenario {
    result: Result<Measure, String>,
    /// Image requests the fake received, 429s included.
    requests: usize,
    /// Requests the fake's rate limiter refused.
    limited: usize,
    note: String,
}

/// Runs a scenario `runs` times and keeps the run of median wall time (failures count as
/// the slowest).
fn repeat(runs: usize, mut scenario: impl FnMut() -> Scenario) -> Scenario {
    let mut all: Vec<Scenario> = (0..runs.max(1)).map(|_| scenario()).collect();
    all.sort_by(|x, y| {
        let wall = |s: &Scenario| {
            s.result
                .as_ref()
                .map_or(f64::INFINITY, |m| m.wall.as_secs_f64())
        };
        wall(x).total_cmp(&wall(y))
    });
    let walls: Vec<String> = all
        .iter()
        .map(|s| s.result.as_ref().map_or("failed".into(), |m| secs(m.wall)))
        .collect();
    let mut kept = all.swap_remove(all.len() / 2);
    if runs > 1 {
        kept.note = format!("{} (runs: {})", kept.note, walls.join(", "));
    }
    kept
}

fn server(options: Options) -> FakeServer {
    FakeServer::with(Options {
        payload_bytes: Some(PAYLOAD),
        // 1,000 images of 1.5 MB would be 1.5 GB in this process.
        record_images: false,
        ..options
    })
}

/// Runs genimg against `server` in a fresh workspace with `args`, and checks that it made
/// `images` images.
fn run_images(
    server: &FakeServer,
    args: &[&str],
    images: usize,
) -> (Result<Measure, String>, String) {
    let ws = Workspace::new();
    let mut cmd = genimg(&ws, Some(server));
    cmd.args(args).args(["--dst-dir", "out"]);
    let line = format!("genimg {}", args.join(" "));
    let fake_before = self_cpu();
    let measured = measure(&mut cmd);
    let fake_cpu = fake_before
        .zip(self_cpu())
        .map(|(a, b)| b.saturating_sub(a));
    let result = measured.and_then(|m| {
        if m.code != 0 {
            return Err(format!("exit code {}: {}", m.code, m.stderr_tail()));
        }
        let made = ws.files("out");
        if made.len() != images {
            return Err(format!("{} images made, not {images}", made.len()));
        }
        // The images are the fake's padded PNGs, whole.
        let size = std::fs::metadata(ws.join("out").join(&made[0]))
            .map(|m| m.len() as usize)
            .unwrap_or(0);
        if size.abs_diff(PAYLOAD) > PAYLOAD / 20 {
            return Err(format!("{} is {size} bytes, not about {PAYLOAD}", made[0]));
        }
        Ok(m)
    });
    let mut note = format!("`{line}`");
    if let Ok(m) = &result {
        let requests = server.image_requests();
        let first = requests.first().map(|r| r.arrived);
        note += &format!(
            ": wall {}, genimg CPU {}, peak RSS {}, fake CPU {}; {} requests, peak {} in flight",
            secs(m.wall),
            opt_secs(m.cpu),
            mb(m.rss_kb),
            opt_secs(fake_cpu),
            requests.len(),
            server.peak_in_flight(),
        );
        if let Some(first) = first {
            note += &format!(
                ", first request {} after spawn",
                secs(first.saturating_duration_since(m.spawned))
            );
        }
        if let Some(mean) = mean_in_flight(&server.in_flight_timeline()) {
            note += &format!(", {mean:.1} in flight on average");
        }
        if let Some(last) = requests.iter().map(|r| r.answered).max() {
            note += &format!(
                ", exit {} after the last answer",
                secs(m.exited.saturating_duration_since(last))
            );
        }
    }
    (result, note)
}

/// The time-weighted mean of image requests in flight, from the first arrival to the last
/// answer (as the fake sees them: from the request's headers to its answer handed to hyper).
fn mean_in_flight(timeline: &[(Instant, usize)]) -> Option<f64> {
    let (first, last) = (timeline.first()?.0, timeline.last()?.0);
    let span = (last - first).as_secs_f64();
    if span <= 0.0 {
        return None;
    }
    let area: f64 = timeline
        .windows(2)
        .map(|w| (w[1].0 - w[0].0).as_secs_f64() * w[0].1 as f64)
        .sum();
    Some(area / span)
}

fn scenario_a() -> Scenario {
    let server = server(Options {
        latency: LATENCY,
        ..Options::default()
    });
    let (result, note) = run_images(&server, &["a prompt", "-n", "96", "-j", "16"], 96);
    Scenario {
        result,
        requests: server.image_requests().len(),
        limited: server.rate_limited(),
        note: format!("(a) {note}"),
    }
}

fn scenario_a_stream() -> Scenario {
    let server = server(Options {
        latency: LATENCY,
        ..Options::default()
    });
    let (result, note) = run_images(
        &server,
        &["a prompt", "-n", "96", "-j", "16", "--stream"],
        96,
    );
    let streamed = server
        .requests()
        .iter()
        .filter(|r| r.fields.get("stream") == Some(&serde_json::Value::Bool(true)))
        .count();
    let result = result.and_then(|m| {
        if streamed == 96 {
            Ok(m)
        } else {
            Err(format!("{streamed} of 96 requests asked for a stream"))
        }
    });
    Scenario {
        result,
        requests: server.image_requests().len(),
        limited: server.rate_limited(),
        note: format!("(a') {note}"),
    }
}

/// A photo-like 1024x1024 PNG of about 1.5 MB: gradients under fine noise, which compresses
/// about as badly as a generated image does.
fn photo_png() -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut pixels = Vec::with_capacity(1024 * 1024 * 3);
    for y in 0..1024u32 {
        for x in 0..1024u32 {
            for base in [x / 4, y / 4, (x + y) / 8] {
                pixels.push((base as u8).wrapping_add(rng.u8(0..24)));
            }
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, 1024, 1024);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("png header");
    writer.write_image_data(&pixels).expect("png data");
    writer.finish().expect("png end");
    out
}

/// `genimg gallery` of 500 photo-like images with no thumbnail yet, then again with all of
/// them made; and a note.
fn scenario_h() -> (Result<Measure, String>, Result<Measure, String>, String) {
    let ws = Workspace::new();
    let png = photo_png();
    let out = ws.join("out");
    std::fs::create_dir_all(&out).expect("out");
    for n in 1..=500 {
        std::fs::write(out.join(format!("image.p{n:03}.01.hd.png")), &png).expect("an image");
    }
    let gallery = |ws: &Workspace| {
        let mut cmd = genimg(ws, None);
        cmd.args(["gallery", "out"]);
        measure(&mut cmd).and_then(|m| {
            if m.code != 0 {
                return Err(format!("exit code {}: {}", m.code, m.stderr_tail()));
            }
            Ok(m)
        })
    };
    let thumbs = |ws: &Workspace| {
        std::fs::read_dir(ws.join("out/.genimg/thumbs"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let first = gallery(&ws).and_then(|m| match thumbs(&ws) {
        500 => Ok(m),
        n => Err(format!("{n} thumbnails made, not 500")),
    });
    let again = gallery(&ws);
    let note = match (&first, &again) {
        (Ok(m), Ok(a)) => format!(
            "(h) `genimg gallery out` on 500 PNGs of {} KB (1024x1024, no manifest): wall {}, CPU {}, peak RSS {}; again, every thumbnail there: wall {}, CPU {}, peak RSS {}",
            png.len() / 1024,
            secs(m.wall),
            opt_secs(m.cpu),
            mb(m.rss_kb),
            secs(a.wall),
            opt_secs(a.cpu),
            mb(a.rss_kb),
        ),
        (Err(e), _) | (_, Err(e)) => format!("(h) failed: {e}"),
    };
    (first, again, note)
}

fn scenario_b() -> Scenario {
    let server = server(Options {
        latency: LATENCY,
        rate_limit: Some(RateLimit {
            per_minute: 600,
            burst: 5,
        }),
        ..Options::default()
    });
    let args = ["a prompt", "-n", "60", "-j", "16", "--ipm", "600"];
    let (result, note) = run_images(&server, &args, 60);
    Scenario {
        result,
        requests: server.image_requests().len(),
        limited: server.rate_limited(),
        note: format!("(b) {note}, {} answered 429", server.rate_limited()),
    }
}

fn scenario_d() -> Scenario {
    let server = server(Options::default());
    let (result, note) = run_images(&server, &["a prompt", "-n", "1000", "-j", "64"], 1000);
    Scenario {
        result,
        requests: server.image_requests().len(),
        limited: 0,
        note: format!("(d) {note}"),
    }
}

fn scenario_e() -> Scenario {
    let ws = Workspace::new();
    let mut text = String::with_capacity(10_000 * 200);
    for i in 1..=10_000 {
        text += &format!(
            "# p{i:05}\nA watercolour of a lighthouse on a cliff at dusk, number {i},\n\
             with gulls over a grey sea and warm light in the windows;\n\
             soft paper texture, muted palette.\n\n"
        );
    }
    ws.write("prompts.txt", &text);
    let args = ["--input", "prompts.txt", "--dst-dir", "out", "--dry-run"];
    let mut cmd = genimg(&ws, None);
    cmd.args(args);
    let result = measure(&mut cmd).and_then(|m| {
        if m.code != 0 {
            return Err(format!("exit code {}: {}", m.code, m.stderr_tail()));
        }
        if m.stdout_bytes == 0 {
            return Err("the dry run printed nothing".into());
        }
        Ok(m)
    });
    let note = match &result {
        Ok(m) => format!(
            "(e) `genimg {}` on a {} KB file of 10,000 prompts: wall {}, CPU {}, peak RSS {}, {} KB printed",
            args.join(" "),
            text.len() / 1024,
            secs(m.wall),
            opt_secs(m.cpu),
            mb(m.rss_kb),
            m.stdout_bytes / 1024
        ),
        Err(_) => String::new(),
    };
    Scenario {
        result,
        requests: 0,
        limited: 0,
        note,
    }
}

/// A batch of 500 images of 1.5 MB, submitted, waited for and collected: its output file
/// holds about 1 GB of base64, which genimg streams to disk and reads line by line.
fn scenario_g() -> Scenario {
    let server = server(Options::default());
    let args = [
        "a prompt",
        "-n",
        "500",
        "--batch",
        "--poll-interval",
        "0.05",
    ];
    let (result, _) = run_images(&server, &args, 500);
    let output: usize = server
        .batches()
        .iter()
        .filter_map(|b| b["output_file_id"].as_str().map(str::to_owned))
        .filter_map(|id| server.file_info(&id))
        .map(|f| f.bytes)
        .sum();
    let note = match &result {
        Ok(m) => format!(
            "(g) `genimg {}`: wall {}, genimg CPU {}, peak RSS {}; {} batch(es), output file {} MB, {} lines answered",
            args.join(" "),
            secs(m.wall),
            opt_secs(m.cpu),
            mb(m.rss_kb),
            server.batches_created(),
            output / (1024 * 1024),
            server.batch_lines_answered(),
        ),
        Err(e) => format!("(g) failed: {e}"),
    };
    Scenario {
        result,
        requests: 0,
        limited: 0,
        note,
    }
}

/// Whether genimg takes `--ipm`: its help names it, and a run with it is not a usage error.
fn ipm_support() -> Result<(), String> {
    let ws = Workspace::new();
    let help = genimg(&ws, None)
        .arg("--help")
        .output()
        .map_err(|e| format!("not run (genimg --help: {e})"))?;
    let text = String::from_utf8_lossy(&help.stdout);
    if !text.contains("--ipm") {
        return Err("not run (genimg has no --ipm yet)".into());
    }
    let dry = genimg(&ws, None)
        .args(["a prompt", "--ipm", "600", "--dry-run"])
        .output()
        .map_err(|e| format!("not run ({e})"))?;
    if dry.status.code() == Some(2) {
        let stderr = String::from_utf8_lossy(&dry.stderr);
        return Err(format!(
            "not run (genimg has no --ipm yet: {})",
            stderr.lines().next().unwrap_or("")
        ));
    }
    Ok(())
}

// Measuring a child

#[derive(Clone)]
struct Measure {
    code: i32,
    spawned: Instant,
    exited: Instant,
    wall: Duration,
    /// User + system time of the child; `None` where `getrusage` is not available.
    cpu: Option<Duration>,
    /// Peak resident set, in KiB; `None` off Linux.
    rss_kb: Option<u64>,
    stdout_bytes: usize,
    stderr: String,
}

impl Measure {
    fn stderr_tail(&self) -> String {
        let lines: Vec<&str> = self.stderr.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }
}

/// `cmd` run under the profiler named by `THROUGHPUT_WRAP`, if set (for example
/// `THROUGHPUT_WRAP="heaptrack -o /tmp/genimg"` or `"perf record -g -o /tmp/genimg.perf"`):
/// the numbers are then the profiler's and genimg's together.
fn wrapped(cmd: &mut Command) -> Command {
    let Some(wrap) = std::env::var("THROUGHPUT_WRAP")
        .ok()
        .filter(|w| !w.trim().is_empty())
    else {
        let mut same = Command::new(cmd.get_program());
        same.args(cmd.get_args());
        copy_setup(cmd, &mut same);
        return same;
    };
    let mut words = wrap.split_whitespace();
    let mut outer = Command::new(words.next().expect("a program"));
    outer
        .args(words)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    copy_setup(cmd, &mut outer);
    // The profiler needs a PATH even though genimg runs without one.
    if let Some(path) = std::env::var_os("PATH") {
        outer.env("PATH", path);
    }
    outer
}

/// Gives `to` the environment (cleared, then set) and directory of `from`.
fn copy_setup(from: &Command, to: &mut Command) {
    to.env_clear().stdin(Stdio::null());
    for (k, v) in from.get_envs() {
        if let Some(v) = v {
            to.env(k, v);
        }
    }
    if let Some(dir) = from.get_current_dir() {
        to.current_dir(dir);
    }
}

/// Runs `cmd` to its end, draining its output, and measures it.
fn measure(cmd: &mut Command) -> Result<Measure, String> {
    let mut cmd = wrapped(cmd);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let cpu_before = children_cpu();
    let spawned = Instant::now();
    let mut child: Child = cmd.spawn().map_err(|e| format!("spawn genimg: {e}"))?;
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let pid = child.id();
    let mut rss_kb = None;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("wait: {e}"))? {
            break status;
        }
        if let Some(kb) = peak_rss_kb(pid) {
            rss_kb = Some(kb);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let exited = Instant::now();
    let cpu = children_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    let stdout = stdout.join().expect("stdout thread");
    let stderr = stderr.join().expect("stderr thread");
    Ok(Measure {
        code: status.code().unwrap_or(-1),
        spawned,
        exited,
        wall: exited - spawned,
        cpu,
        rss_kb,
        stdout_bytes: stdout.len(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = pipe.read_to_end(&mut all);
        all
    })
}

/// `VmHWM` of a live process, in KiB.
#[cfg(target_os = "linux")]
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(not(target_os = "linux"))]
fn peak_rss_kb(_pid: u32) -> Option<u64> {
    None
}

#[cfg(unix)]
fn cpu_of(who: nix::sys::resource::UsageWho) -> Option<Duration> {
    let usage = nix::sys::resource::getrusage(who).ok()?;
    let time = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    Some(time(usage.user_time()) + time(usage.system_time()))
}

/// CPU time of the children waited for so far.
#[cfg(unix)]
fn children_cpu() -> Option<Duration> {
    cpu_of(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
}

/// CPU time of this process: the fake server, and the benchmark's polling.
#[cfg(unix)]
fn self_cpu() -> Option<Duration> {
    cpu_of(nix::sys::resource::UsageWho::RUSAGE_SELF)
}

#[cfg(not(unix))]
fn children_cpu() -> Option<Duration> {
    None
}

#[cfg(not(unix))]
fn self_cpu() -> Option<Duration> {
    None
}

// The report

struct Args {
    filters: Vec<String>,
    runs: usize,
    raw: Vec<String>,
}

impl Args {
    /// Scenario names (`a`, `a'`, `b`, `b'`, `c`, `d`, `e`, `f`, `g`, `h`; `b` also selects
    /// `b'`), and
    /// `--runs N`.
    /// Cargo adds `--bench`, which is ignored like any other flag.
    fn parse() -> Args {
        let raw: Vec<String> = std::env::args().skip(1).collect();
        let mut filters = Vec::new();
        let mut runs = 1;
        let mut it = raw.iter();
        while let Some(arg) = it.next() {
            if arg == "--runs" {
                runs = it.next().and_then(|n| n.parse().ok()).unwrap_or(1);
            } else if let Some(n) = arg.strip_prefix("--runs=") {
                runs = n.parse().unwrap_or(1);
            } else if !arg.starts_with('-') {
                filters.push(arg.to_lowercase());
            }
        }
        Args { filters, runs, raw }
    }

    fn wants(&self, id: &str) -> bool {
        self.filters.is_empty()
            || self.filters.iter().any(|f| {
                f == id || (id == "b'" && (f == "b" || f == "b2")) || (id == "a'" && f == "a2")
            })
    }
}

fn print_machine(args: &Args) {
    let uname = Command::new("uname")
        .arg("-a")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| "n/a".into());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("n/a".to_owned(), |(_, m)| m.trim().to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut command = "cargo bench --bench throughput".to_owned();
    let extra: Vec<&String> = args.raw.iter().filter(|a| *a != "--bench").collect();
    if !extra.is_empty() {
        command += " --";
        for a in extra {
            command += " ";
            command += a;
        }
    }
    println!("- machine: `{uname}`");
    println!("- CPU: {model}, {cores} cores available");
    println!("- command: `{command}`");
    println!(
        "- genimg: `{}` (bench profile)",
        env!("CARGO_BIN_EXE_genimg")
    );
    println!(
        "- payload: {PAYLOAD} bytes of PNG an image; latency {} ms where stated\n",
        LATENCY.as_millis()
    );
}

#[derive(Default)]
struct Table {
    rows: Vec<[String; 5]>,
}

impl Table {
    /// A wall time against its ideal: passes at `max` × ideal or less.
    fn ratio(&mut self, name: &str, measured: f64, ideal: f64, max: f64, unit: &str) {
        let ratio = measured / ideal;
        self.rows.push([
            name.to_owned(),
            format!("{measured:.2} {unit}"),
            format!("ideal {ideal:.2} {unit} (≤ {max:.2}×)"),
            format!("{ratio:.2}×"),
            verdict(ratio <= max),
        ]);
    }

    /// A value against a ceiling it may reach: passes at it or under.
    fn under_or_at(&mut self, name: &str, measured: f64, target: f64, unit: &str, detail: &str) {
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!("; {}", detail.replace('|', "\\|"))
        };
        self.rows.push([
            name.to_owned(),
            format!("{measured:.1} {unit}"),
            format!("≤ {target} {unit}{detail}"),
            String::new(),
            verdict(measured <= target),
        ]);
    }

    /// A value against a ceiling: passes under it.
    fn under(&mut self, name: &str, measured: f64, target: f64, unit: &str, detail: &str) {
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!("; {detail}")
        };
        self.rows.push([
            name.to_owned(),
            format!("{measured:.1} {unit}"),
            format!("< {target} {unit}{detail}"),
            format!("{:.2}×", measured / target),
            verdict(measured < target),
        ]);
    }

    fn info(&mut self, name: &str, measured: &str, detail: &str) {
        self.rows.push([
            name.to_owned(),
            measured.to_owned(),
            detail.to_owned(),
            String::new(),
            "info".into(),
        ]);
    }

    fn failed(&mut self, name: &str, error: &str) {
        self.rows.push([
            name.to_owned(),
            "run failed".into(),
            error.replace('|', "\\|"),
            String::new(),
            "FAIL".into(),
        ]);
    }

    fn not_run(&mut self, name: &str, why: &str) {
        self.rows.push([
            name.to_owned(),
            why.to_owned(),
            String::new(),
            String::new(),
            "not run".into(),
        ]);
    }

    fn render(&self) -> String {
        let mut out = String::from(
            "| scenario | measured | ideal or target | ratio | result |\n|---|---|---|---|---|\n",
        );
        for row in &self.rows {
            out += &format!("| {} |\n", row.join(" | "));
        }
        out
    }
}

fn verdict(pass: bool) -> String {
    if pass { "pass" } else { "FAIL" }.into()
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn opt_secs(d: Option<Duration>) -> String {
    d.map_or("n/a".into(), secs)
}

fn mb(kb: Option<u64>) -> String {
    kb.map_or("n/a".into(), |kb| format!("{:.1} MB", kb as f64 / 1024.0))
}
