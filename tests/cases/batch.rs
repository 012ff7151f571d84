//! `--batch`: images made through OpenAI's Batch API, at half the price, within 24 h.
//!
//! A batch run plans as a live run does, skips what is on disk or pending, submits one batch
//! per endpoint and model (split where the service's limits would refuse one), records it in
//! `genimg-batch.json` right after creation, waits, and collects: every image kept byte for
//! byte under its own name, a manifest record at batch prices, failures named with their
//! prompt and line. Nothing is ever bought twice: not after `kill -9`, not after a creation
//! whose answer was lost, not by a re-run, a live run or a second collect.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::images;
use crate::support::*;

/// Polls as often as a test can afford: the first after 50 ms, then further apart.
const POLL: [&str; 2] = ["--poll-interval", "0.05"];

/// The ledger of the destination `out`.
const LEDGER: &str = "out/genimg-batch.json";

/// Two prompts; `owl`'s header is line 4.
const FOX_OWL: &str = "# fox\na fox\n\n# owl\nan owl\n";

/// A batch run can take this long before a test calls it hung.
const LIMIT: Duration = Duration::from_secs(30);

/// `genimg --input p.txt -o out -n N --batch --poll-interval 0.05`, and `extra`.
fn batch_cmd(ws: &Workspace, server: &FakeServer, n: u32, extra: &[&str]) -> Command {
    let mut cmd = genimg(ws, Some(server));
    cmd.args([
        "--input",
        "p.txt",
        "-o",
        "out",
        "-n",
        &n.to_string(),
        "--batch",
    ])
    .args(POLL)
    .args(extra);
    cmd
}

/// Runs [`batch_cmd`] to the end.
fn batch_run(ws: &Workspace, server: &FakeServer, n: u32, extra: &[&str]) -> Run {
    run_within(&mut batch_cmd(ws, server, n, extra), LIMIT)
}

/// `genimg batch ACTION out`, and `extra`, to the end.
fn batch_command(ws: &Workspace, server: &FakeServer, action: &str, extra: &[&str]) -> Run {
    run_within(
        genimg(ws, Some(server))
            .args(["batch", action, "out"])
            .args(extra),
        LIMIT,
    )
}

/// The images in `out`, sorted: not the manifest, gallery, ledger or genimg's own folder.
fn image_files(ws: &Workspace) -> Vec<String> {
    ws.files("out")
        .into_iter()
        .filter(|n| {
            !n.starts_with('.')
                && [".png", ".jpeg", ".jpg", ".webp"]
                    .iter()
                    .any(|ext| n.ends_with(ext))
        })
        .collect()
}

/// The file names the plan gives `count` high-quality PNGs of each named prompt, sorted.
fn names(prompts: &[(&str, u32)]) -> Vec<String> {
    let mut all: Vec<String> = prompts
        .iter()
        .flat_map(|&(name, count)| (1..=count).map(move |i| format!("image.{name}.{i:02}.hd.png")))
        .collect();
    all.sort();
    all
}

/// How many `method path` calls the fake received.
fn calls(server: &FakeServer, method: &str, path: &str) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.method == method && r.path == path)
        .count()
}

/// How many times genimg asked for a batch to be created.
fn creations(server: &FakeServer) -> usize {
    calls(server, "POST", "/v1/batches")
}

/// The uploads of `purpose` the fake took (faulted ones are not).
fn uploads(server: &FakeServer, purpose: &str) -> Vec<Recorded> {
    server
        .requests()
        .into_iter()
        .filter(|r| {
            r.method == "POST"
                && r.path == "/v1/files"
                && r.status == 200
                && r.field("purpose").as_deref() == Some(purpose)
        })
        .collect()
}

/// The lines of a JSONL file.
fn jsonl(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8(bytes.to_vec())
        .expect("UTF-8")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The ledger, if there is one.
fn ledger(ws: &Workspace) -> Option<Value> {
    let text = std::fs::read(ws.join(LEDGER)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// The batch ids the ledger names.
fn ledger_batch_ids(ws: &Workspace) -> Vec<String> {
    ledger(ws)
        .and_then(|l| l["batches"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e["batch_id"].as_str().map(str::to_owned))
        .collect()
}

/// The ids of the batches the fake holds, oldest first.
fn batch_ids(server: &FakeServer) -> Vec<String> {
    server
        .batches()
        .iter()
        .map(|b| b["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// How many requests a batch's input file held, as the fake counted them.
fn total_of(server: &FakeServer, batch_id: &str) -> u64 {
    server.batch(batch_id).expect("a batch")["request_counts"]["total"]
        .as_u64()
        .expect("a total")
}

/// How many requests a batch's input file holds, read from the file itself: a batch still
/// `validating` has no counts yet.
fn requests_in(server: &FakeServer, batch_id: &str) -> usize {
    let batch = server.batch(batch_id).expect("a batch");
    let input = batch["input_file_id"].as_str().expect("an input file");
    server.file_lines(input).len()
}

/// The `custom_id`s of the requests of `batch_id` the fake ran, sorted.
fn ran_in(server: &FakeServer, batch_id: &str) -> Vec<String> {
    let mut ids: Vec<String> = server
        .batch_lines()
        .into_iter()
        .filter(|l| l.batch_id == batch_id)
        .map(|l| l.custom_id)
        .collect();
    ids.sort();
    ids
}

/// Each of `expected` is in `out`, byte for byte the image of the one batch line that made
/// it (answered 200, its name as `custom_id`), and no other batch line made an image: every
/// image was bought once.
#[track_caller]
fn assert_bought_once(ws: &Workspace, server: &FakeServer, expected: &[String]) {
    let made: Vec<AnsweredLine> = server
        .batch_lines()
        .into_iter()
        .filter(|l| l.status == 200)
        .collect();
    let mut made_ids: Vec<&str> = made.iter().map(|l| l.custom_id.as_str()).collect();
    made_ids.sort_unstable();
    let mut want: Vec<&str> = expected.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(made_ids, want, "the images the batches made, each once");
    for name in expected {
        let path = ws.join(&format!("out/{name}"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let line = made.iter().find(|l| &l.custom_id == name).expect("a line");
        assert!(
            line.image.as_deref() == Some(&bytes[..]),
            "{name} is byte for byte the image its own line carried"
        );
    }
}

/// Every file of `out` with the sha256 of its bytes; not the gallery (a run may write it
/// again) nor the lock file (it names the last run's process).
fn snapshot(ws: &Workspace) -> BTreeMap<String, String> {
    ws.all_files("out")
        .into_iter()
        .filter(|n| n != GALLERY && n != ".genimg.lock" && !ws.join(&format!("out/{n}")).is_dir())
        .map(|n| {
            let hash = sha256_hex(&ws.read(&format!("out/{n}")));
            (n, hash)
        })
        .collect()
}

/// The amount of the last line of `text` that holds "Total", in dollars.
fn total_usd(text: &str) -> f64 {
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains("Total"))
        .unwrap_or_else(|| panic!("no total in:\n{text}"));
    let at = line
        .find('$')
        .unwrap_or_else(|| panic!("no amount in {line:?}"));
    let amount: String = line[at + 1..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ',')
        .filter(|c| *c != ',')
        .collect();
    amount
        .trim_end_matches('.')
        .parse()
        .unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

/// Whether `text` holds `n` as a number of its own (not part of a longer one).
fn has_number(text: &str, n: u64) -> bool {
    text.split(|c: char| !c.is_ascii_digit())
        .any(|word| word == n.to_string())
}

/// Waits for a started run, failing the test (and killing it) after `limit`.
fn finish_within(mut child: Child, limit: Duration) -> Run {
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll genimg") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "genimg still ran after {limit:?}; killed\n{}",
                stderr.join().expect("stderr")
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: stdout.join().expect("stdout"),
        stderr: stderr.join().expect("stderr"),
    }
}

/// One `GET /v1/batches/{id}` from the test itself: a poll, which moves the batch on as
/// the fake's `polls_per_step` says.
fn poll_by_hand(server: &FakeServer, id: &str) -> Value {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = format!("{}/batches/{id}", server.base_url());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .get(url)
            .bearer_auth(KEY)
            .send()
            .await
            .expect("poll");
        assert_eq!(response.status().as_u16(), 200);
        response.json::<Value>().await.expect("a batch")
    })
}

/// A batch script that keeps every request it sees, and answers it normally.
fn recording() -> (BatchScript, Arc<Mutex<Vec<BatchLine>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    let script: BatchScript = Arc::new(move |line: &BatchLine| {
        keep.lock().unwrap().push(line.clone());
        Action::Answer
    });
    (script, seen)
}

fn with_batch(batch: BatchOptions) -> FakeServer {
    FakeServer::with(Options {
        batch,
        ..Options::default()
    })
}

// A batch from submission to collection

#[test]
fn a_batch_that_completes_keeps_every_image_byte_exact_at_batch_prices() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", FOX_OWL);
    let run = batch_run(&ws, &server, 2, &[]);
    assert_code(&run, 0);
    let expected = names(&[("fox", 2), ("owl", 2)]);
    assert_eq!(image_files(&ws), expected);
    assert!(
        server.image_requests().is_empty(),
        "no image was asked for live"
    );

    // One batch, asked for as the service wants it.
    assert_eq!(creations(&server), 1);
    let batch = server.batches().remove(0);
    let id = batch["id"].as_str().unwrap().to_owned();
    assert_eq!(batch["status"], "completed");
    assert_eq!(batch["endpoint"], "/v1/images/generations");
    let create = server
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path == "/v1/batches")
        .unwrap();
    assert_eq!(create.fields["endpoint"], "/v1/images/generations");
    assert_eq!(create.fields["completion_window"], "24h");
    let submission = create.fields["metadata"]["genimg_submission"]
        .as_str()
        .unwrap_or_else(|| panic!("the metadata names the submission: {:?}", create.fields));
    assert!(!submission.is_empty());

    // Its input: one line per image, named by the image's file name.
    let inputs = uploads(&server, "batch");
    assert_eq!(inputs.len(), 1, "one input file uploaded");
    let lines = jsonl(&inputs[0].files[0].bytes);
    let mut ids: Vec<String> = lines
        .iter()
        .map(|l| l["custom_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, expected);
    for line in &lines {
        assert_eq!(line["method"], "POST");
        assert_eq!(line["url"], "/v1/images/generations");
        assert_eq!(line["body"]["model"], "gpt-image-2");
    }
    assert_bought_once(&ws, &server, &expected);
    assert_images_match(&ws, "out", &server);

    // The manifest, at half what the same image costs live.
    let live_server = FakeServer::start();
    let live = genimg(&ws, Some(&live_server))
        .args(["--input", "p.txt", "-o", "live", "-n", "1"])
        .run();
    assert_code(&live, 0);
    let live_cost = record(&ws.manifest("live"), "image.fox.01.hd.png")["cost_usd"]
        .as_f64()
        .expect("a live cost");
    let records = ws.manifest("out");
    assert_eq!(records.len(), 4, "one record per image: {records:#?}");
    let output = server.output_lines(&id);
    let mut request_ids = HashSet::new();
    for name in &expected {
        let r = record(&records, name);
        assert_eq!(r["status"], "made", "{r}");
        assert_eq!(r["mode"], "batch", "{r}");
        assert_eq!(r["batch_id"], id.as_str(), "{r}");
        assert_eq!(
            r["sha256"],
            sha256_hex(&ws.read(&format!("out/{name}"))),
            "{r}"
        );
        assert_eq!(r["usage"]["output_tokens"], 7024, "{r}");
        let cost = r["cost_usd"].as_f64().expect("a cost");
        assert!(
            (cost - live_cost / 2.0).abs() < 1e-9,
            "{name} costs {cost} in a batch, half of {live_cost} live"
        );
        let request_id = r["request_id"].as_str().expect("a request id");
        assert!(request_id.starts_with("req_"), "{request_id}");
        assert!(request_ids.insert(request_id.to_owned()), "{request_id}");
        // Where the output file is still there, the record names its line's request.
        if let Some(line) = output.iter().find(|l| l["custom_id"] == name.as_str()) {
            assert_eq!(r["request_id"], line["response"]["request_id"]);
        }
    }
    assert!(
        !ws.join(LEDGER).exists(),
        "the ledger is removed once no batch is left"
    );
}

#[test]
fn images_in_any_output_order_are_kept_under_their_own_names() {
    for order in [OutputOrder::Reversed, OutputOrder::Shuffled(11)] {
        let server = with_batch(BatchOptions {
            order,
            ..BatchOptions::default()
        });
        let ws = Workspace::new();
        ws.write(
            "p.txt",
            "# fox\na fox\n\n# owl\nan owl\n\n# hare\na hare in a field\n",
        );
        let run = batch_run(&ws, &server, 2, &[]);
        assert_code(&run, 0);
        let expected = names(&[("fox", 2), ("hare", 2), ("owl", 2)]);
        assert_eq!(image_files(&ws), expected, "{order:?}");
        assert_bought_once(&ws, &server, &expected);
        assert_images_match(&ws, "out", &server);
        // Each image is its own prompt's.
        let records = ws.manifest("out");
        for line in server.batch_lines() {
            assert_eq!(
                record(&records, &line.custom_id)["prompt_text"],
                line.prompt.as_str(),
                "{order:?}"
            );
        }
    }
}

/// A line whose image is in another format than asked is kept under the extension of what
/// it is, as a live answer is, and recorded so that no later run buys it again.
#[test]
fn a_batch_image_in_another_format_is_kept_under_its_own_extension() {
    let server = with_batch(BatchOptions {
        script: Some(Arc::new(|line: &BatchLine| {
            if line.custom_id.contains(".owl.") {
                Action::WrongFormat
            } else {
                Action::Answer
            }
        })),
        ..BatchOptions::default()
    });
    let ws = Workspace::new();
    ws.write("p.txt", FOX_OWL);
    let run = batch_run(&ws, &server, 1, &[]);
    assert_code(&run, 0);
    assert_eq!(
        image_files(&ws),
        ["image.fox.01.hd.png", "image.owl.01.hd.jpeg"]
    );
    assert!(
        run.stderr.contains("kept as image.owl.01.hd.jpeg"),
        "the mismatch is said: {}",
        run.stderr
    );
    let owl = server
        .batch_lines()
        .into_iter()
        .find(|l| l.custom_id == "image.owl.01.hd.png")
        .expect("the owl's line");
    assert_eq!(
        ws.read("out/image.owl.01.hd.jpeg"),
        owl.image.expect("its image"),
        "byte for byte"
    );
    let records = ws.manifest("out");
    let r = record(&records, "image.owl.01.hd.jpeg");
    assert_eq!(r["planned_file"], "image.owl.01.hd.png");
    assert_eq!(r["received_format"], "jpeg");
    assert_eq!(r["mode"], "batch");

    // Nothing is bought again.
    let again = batch_run(&ws, &server, 1, &[]);
    assert_code(&again, 0);
    assert_eq!(creations(&server), 1);
}

#[test]
fn images_already_on_disk_are_not_submitted() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", FOX_OWL);
    let kept = images::png(7);
    ws.write("out/image.fox.01.hd.png", &kept);
    let run = batch_run(&ws, &server, 2, &[]);
    assert_code(&run, 0);
    let ids = batch_ids(&server);
    assert_eq!(ids.len(), 1);
    assert_eq!(total_of(&server, &ids[0]), 3);
    let submitted = names(&[("fox", 2), ("owl", 2)])
        .into_iter()
        .filter(|n| n != "image.fox.01.hd.png")
        .collect::<Vec<_>>();
    assert_eq!(ran_in(&server, &ids[0]), submitted);
    assert_eq!(ws.read("out/image.fox.01.hd.png"), kept, "left as it was");
    assert_bought_once(&ws, &server, &submitted);
    assert_eq!(image_files(&ws), names(&[("fox", 2), ("owl", 2)]));
}

#[test]
fn a_batch_never_mixes_endpoints_or_models() {
    let (script, seen) = recording();
    let server = with_batch(BatchOptions {
        script: Some(script),
        ..BatchOptions::default()
    });
    let ws = Workspace::new();
    ws.write("ref.png", images::fixture("reference.png"));
    ws.write(
        "p.txt",
        "# plain\na lighthouse\n\n# older model=gpt-image-1.5\na harbour\n\n\
         # edited ref=ref.png\na boat\n\n# plain2\na pier\n",
    );
    let run = batch_run(&ws, &server, 1, &[]);
    assert_code(&run, 0);
    assert_eq!(image_files(&ws).len(), 4, "{}", run.stderr);
    let batches = server.batches();
    assert_eq!(batches.len(), 3, "gpt-image-2, gpt-image-1.5, and edits");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 4);
    for batch in &batches {
        let id = batch["id"].as_str().unwrap();
        let lines: Vec<&BatchLine> = seen.iter().filter(|l| l.batch_id == id).collect();
        assert!(!lines.is_empty(), "{id}");
        let models: HashSet<&str> = lines.iter().map(|l| l.model.as_str()).collect();
        assert_eq!(models.len(), 1, "{id}: {models:?}");
        for line in &lines {
            assert_eq!(line.endpoint, batch["endpoint"].as_str().unwrap());
        }
    }
    let by = |prompt: &str| {
        seen.iter()
            .find(|l| l.prompt == prompt)
            .unwrap_or_else(|| panic!("no line for {prompt}"))
    };
    assert_eq!(by("a harbour").model, "gpt-image-1.5");
    assert_eq!(by("a boat").endpoint, "/v1/images/edits");
    assert_eq!(
        by("a lighthouse").batch_id,
        by("a pier").batch_id,
        "same endpoint and model: one batch"
    );
    assert_eq!(by("a lighthouse").endpoint, "/v1/images/generations");
    assert_eq!(by("a lighthouse").model, "gpt-image-2");
}

// Waiting, or not

#[test]
fn no_wait_returns_after_submitting_and_says_how_to_collect() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", FOX_OWL);
    let run = batch_run(&ws, &server, 2, &["--no-wait"]);
    assert_code(&run, 0);
    assert_eq!(creations(&server), 1);
    let id = batch_ids(&server).remove(0);
    assert!(run.stderr.contains(&id), "the batch id: {}", run.stderr);
    assert!(
        run.stderr.contains("genimg batch collect out"),
        "how to collect: {}",
        run.stderr
    );
    assert!(image_files(&ws).is_empty(), "nothing collected yet");
    assert_eq!(
        server.batch_lines_answered(),
        0,
        "returned before the batch ran"
    );
    assert_eq!(ledger_batch_ids(&ws), [id.as_str()], "the ledger names it");

    let collect = batch_command(
        &ws,
        &server,
        "collect",
        &["--wait", "--poll-interval", "0.05"],
    );
    assert_code(&collect, 0);
    let expected = names(&[("fox", 2), ("owl", 2)]);
    assert_eq!(image_files(&ws), expected);
    assert_bought_once(&ws, &server, &expected);
    assert_eq!(creations(&server), 1);
    assert!(server.image_requests().is_empty());
    let records = ws.manifest("out");
    assert_eq!(records.len(), 4);
    assert!(records.iter().all(|r| r["batch_id"] == id.as_str()));
    assert!(!ws.join(LEDGER).exists());
}

#[test]
fn rerunning_the_same_batch_command_collects_instead_of_resubmitting() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", FOX_OWL);
    assert_code(&batch_run(&ws, &server, 2, &["--no-wait"]), 0);
    assert_eq!(creations(&server), 1);

    // The same command while the batch is pending: nothing submitted again.
    assert_code(&batch_run(&ws, &server, 2, &["--no-wait"]), 0);
    assert_eq!(creations(&server), 1, "pending images are not resubmitted");

    // Without --no-wait: it waits for the batch and collects it.
    let run = batch_run(&ws, &server, 2, &[]);
    assert_code(&run, 0);
    assert_eq!(creations(&server), 1, "pending images are not resubmitted");
    assert_eq!(uploads(&server, "batch").len(), 1);
    let expected = names(&[("fox", 2), ("owl", 2)]);
    assert_eq!(image_files(&ws), expected);
    assert_bought_once(&ws, &server, &expected);

    // And once they are all made, nothing to do.
    let before = snapshot(&ws);
    let again = batch_run(&ws, &server, 2, &[]);
    assert_code(&again, 0);
    assert_eq!(creations(&server), 1, "made images are not resubmitted");
    assert_eq!(uploads(&server, "batch").len(), 1);
    assert_eq!(snapshot(&ws), before);
}

#[test]
fn a_live_run_does_not_request_images_pending_in_a_batch() {
    let server = FakeServer::start();
    server.hold_batches(true);
    let ws = Workspace::new();
    ws.write("p.txt", FOX_OWL);
    assert_code(&batch_run(&ws, &server, 2, &["--no-wait"]), 0);
    let id = batch_ids(&server).remove(0);

    // Live, one more of each: only those two are requested.
    let live = run_within(
        genimg(&ws, Some(&server)).args(["--input", "p.txt", "-o", "out", "-n", "3"]),
        LIMIT,
    );
    assert_eq!(
        server.image_requests().len(),
        2,
        "only the images not pending: {}",
        live.stderr
    );
    assert_eq!(
        image_files(&ws),
        ["image.fox.03.hd.png", "image.owl.03.hd.png"]
    );
    assert!(live.stderr.contains("pending"), "{}", live.stderr);
    assert!(
        live.stderr.contains("genimg batch collect out"),
        "{}",
        live.stderr
    );
    assert_eq!(
        ledger_batch_ids(&ws),
        [id.as_str()],
        "the batch is still recorded"
    );

    server.hold_batches(false);
    let collect = batch_command(
        &ws,
        &server,
        "collect",
        &["--wait", "--poll-interval", "0.05"],
    );
    assert_code(&collect, 0);
    assert_eq!(image_files(&ws), names(&[("fox", 3), ("owl", 3)]));
    assert_bought_once(&ws, &server, &names(&[("fox", 2), ("owl", 2)]));
    assert_images_match(&ws, "out", &server);
    assert_eq!(server.image_requests().len(), 2);
    assert_eq!(creations(&server), 1);
}

// Failures, refusals, expiry, cancelling

#[test]
fn a_failed_line_is_reported_with_its_prompt_and_line_and_resubmitted_by_a_rerun() {
    let server = with_batch(BatchOptions {
        script: Some(Arc::new(|line: &BatchLine| {
            if line.batch_id == "batch_1" && line.custom_id.contains(".owl.") {
                Action::error(500, "server_error", "The engine stalled on this request.")
            } else {
                Action::Answer
            }
        })),
        ..BatchOptions::default()
    });
    let ws = Workspace::new();
    ws.write("p.txt", FOX_OWL);
    let run = batch_run(&ws, &server, 1, &[]);
    assert_code(&run, 1);
    assert_eq!(image_files(&ws), ["image.fox.01.hd.png"]);
    let stderr = &run.stderr;
    assert!(
        stderr.contains("The engine stalled on this request."),
        "the service's message: {stderr}"
    );
    assert!(stderr.contains("p.txt:4"), "where the prompt is: {stderr}");
    assert!(stderr.contains("owl"), "the prompt's name: {stderr}");
    let records = ws.manifest("out");
    assert_eq!(record(&records, "image.owl.01.hd.png")["status"], "failed");
    assert_eq!(record(&records, "image.fox.01.hd.png")["status"], "made");

    // The re-run submits the failed image, and only it.
    let again = batch_run(&ws, &server, 1, &[]);
    assert_code(&again, 0);
    let ids = batch_ids(&server);
    assert_eq!(ids.len(), 2);
    assert_eq!(ran_in(&server, &ids[1]), ["image.owl.01.hd.png"]);
    assert_eq!(image_files(&ws), names(&[("fox", 1), ("owl", 1)]));
    assert_bought_once(&ws, &server, &names(&[("fox", 1), ("owl", 1)]));
    assert_eq!(
        record(&ws.manifest("out"), "image.owl.01.hd.png")["status"],
        "made"
    );
}

#[test]
fn a_refused_line_is_recorded_as_refused_and_only_overwrite_resubmits_it() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", "# fox\na fox\n\n# nope\nsomething FORBIDDEN\n");
    let run = batch_run(&ws, &server, 1, &[]);
    assert_code(&run, 1);
    assert_eq!(image_files(&ws), ["image.fox.01.hd.png"]);
    assert!(run.stderr.contains("refused"), "{}", run.stderr);
    assert!(run.stderr.contains("nope"), "{}", run.stderr);
    assert!(run.stderr.contains("p.txt:4"), "{}", run.stderr);
    let records = ws.manifest("out");
    let refused = record(&records, "image.nope.01.hd.png");
    assert_eq!(refused["status"], "refused", "{refused}");
    assert_eq!(record(&records, "image.fox.01.hd.png")["status"], "made");
    assert_eq!(creations(&server), 1);

    // A plain re-run asks no more for it.
    let again = batch_run(&ws, &server, 1, &[]);
    assert_ne!(again.code, 2, "{}", again.stderr);
    assert_eq!(creations(&server), 1, "a refused image is not resubmitted");
    assert_eq!(uploads(&server, "batch").len(), 1);

    // --overwrite asks again.
    let overwrite = batch_run(&ws, &server, 1, &["--overwrite"]);
    assert_eq!(creations(&server), 2, "{}", overwrite.stderr);
    let second = batch_ids(&server).remove(1);
    assert!(
        ran_in(&server, &second).contains(&"image.nope.01.hd.png".to_owned()),
        "--overwrite resubmits the refused image"
    );
    assert_code(&overwrite, 1);
}

#[test]
fn an_expired_batch_keeps_what_it_finished_and_a_rerun_submits_only_the_rest() {
    let server = with_batch(BatchOptions {
        expire_after: Some(2),
        ..BatchOptions::default()
    });
    let ws = Workspace::new();
    ws.write("p.txt", "# fox\na fox\n");
    let all = names(&[("fox", 5)]);

    let run = batch_run(&ws, &server, 5, &[]);
    assert_code(&run, 1);
    assert!(run.stderr.contains("expired"), "{}", run.stderr);
    let ids = batch_ids(&server);
    assert_eq!(ids.len(), 1);
    assert_eq!(server.batch(&ids[0]).unwrap()["status"], "expired");
    let first = ran_in(&server, &ids[0]);
    assert_eq!(first.len(), 2);
    assert_eq!(image_files(&ws), first, "what the batch finished is kept");
    assert_bought_once(&ws, &server, &first);

    // The re-run submits the three that expired (and this batch expires after two again).
    let again = batch_run(&ws, &server, 5, &[]);
    assert_code(&again, 1);
    let ids = batch_ids(&server);
    assert_eq!(ids.len(), 2);
    assert_eq!(total_of(&server, &ids[1]), 3, "only the rest");
    let second = ran_in(&server, &ids[1]);
    assert!(second.iter().all(|n| !first.contains(n)), "{second:?}");
    assert_eq!(image_files(&ws).len(), 4);

    // The last one.
    let last = batch_run(&ws, &server, 5, &[]);
    assert_code(&last, 0);
    let ids = batch_ids(&server);
    assert_eq!(ids.len(), 3);
    assert_eq!(total_of(&server, &ids[2]), 1);
    assert_eq!(image_files(&ws), all);
    assert_bought_once(&ws, &server, &all);
    assert!(!ws.join(LEDGER).exists());
}

#[test]
fn cancel_cancels_a_pending_batch_and_collects_what_it_finished() {
    let server = with_batch(BatchOptions {
        polls_per_step: 2,
        ..BatchOptions::default()
    });
    server.hold_batches(true);
    let ws = Workspace::new();
    ws.write("p.txt", "# fox\na fox\n");
    assert_code(&batch_run(&ws, &server, 4, &["--no-wait"]), 0);
    let id = batch_ids(&server).remove(0);

    // Two of the four run: validated by hand, then one poll of two per step.
    server.set_batch_status(&id, "in_progress");
    server.hold_batches(false);
    let batch = poll_by_hand(&server, &id);
    assert_eq!(batch["request_counts"]["completed"], 2, "{batch}");
    server.hold_batches(true);

    let child = genimg(&ws, Some(&server))
        .args(["batch", "cancel", "out"])
        .args(POLL)
        .start();
    wait_for("the cancel", || {
        server.batch(&id).unwrap()["status"] == "cancelling"
    });
    server.set_batch_status(&id, "cancelled");
    let run = finish_within(child, LIMIT);
    assert_eq!(
        calls(&server, "POST", &format!("/v1/batches/{id}/cancel")),
        1,
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("cancel"), "{}", run.stderr);
    let finished = ran_in(&server, &id);
    assert_eq!(finished.len(), 2);
    assert_eq!(image_files(&ws), finished, "{}", run.stderr);
    assert_bought_once(&ws, &server, &finished);
    assert!(!ws.join(LEDGER).exists(), "{}", run.stderr);

    // The re-run submits the two it never ran.
    server.hold_batches(false);
    let again = batch_run(&ws, &server, 4, &[]);
    assert_code(&again, 0);
    let ids = batch_ids(&server);
    assert_eq!(ids.len(), 2);
    assert_eq!(total_of(&server, &ids[1]), 2);
    assert_eq!(image_files(&ws), names(&[("fox", 4)]));
    assert_bought_once(&ws, &server, &names(&[("fox", 4)]));
}

#[test]
fn a_batch_that_fails_validation_fails_its_images_and_a_rerun_submits_them_again() {
    // The fake takes two requests a batch; genimg's own limit is far higher.
    let server = with_batch(BatchOptions {
        max_requests: 2,
        ..BatchOptions::default()
    });
    let ws = Workspace::new();
    ws.write("p.txt", "# fox\na fox\n");
    let run = batch_run(&ws, &server, 3, &[]);
    assert_code(&run, 1);
    let ids = batch_ids(&server);
    assert_eq!(ids.len(), 1);
    assert_eq!(server.batch(&ids[0]).unwrap()["status"], "failed");
    assert!(image_files(&ws).is_empty());
    assert_eq!(
        server.batch_lines_answered(),
        0,
        "nothing ran, nothing bought"
    );
    assert!(run.stderr.contains("failed"), "{}", run.stderr);
    let records = ws.manifest("out");
    for name in names(&[("fox", 3)]) {
        assert_eq!(record(&records, &name)["status"], "failed", "{records:#?}");
    }
    assert!(!ws.join(LEDGER).exists(), "a failed batch is forgotten");

    let again = batch_run(&ws, &server, 3, &[]);
    assert_code(&again, 1);
    let ids = batch_ids(&server);
    assert_eq!(ids.len(), 2, "its images are submitted again");
    assert_eq!(requests_in(&server, &ids[1]), 3);
}

/// A batch whose input fails validation on one line names that line's prompt, and the
/// service's message with the line, for that image; the others say the batch failed.
#[test]
fn a_batch_refused_on_one_line_names_the_prompt_of_that_line() {
    let server = with_batch(BatchOptions {
        invalid_lines: vec![2],
        order: OutputOrder::InOrder,
        ..BatchOptions::default()
    });
    let ws = Workspace::new();
    ws.write("p.txt", FOX_OWL);
    let run = batch_run(&ws, &server, 1, &[]);
    assert_code(&run, 1);
    assert!(image_files(&ws).is_empty());
    let stderr = &run.stderr;
    assert!(
        stderr.contains("p.txt:4: line 2 of the batch's input: Line 2 is not a valid request"),
        "the owl's line, with the service's message: {stderr}"
    );
    let records = ws.manifest("out");
    let fox = record(&records, "image.fox.01.hd.png");
    assert_eq!(fox["status"], "failed");
    assert!(
        fox["error"].as_str().unwrap().contains("the batch failed"),
        "{fox}"
    );
}

// The subcommands

#[test]
fn batch_status_lists_each_recorded_batch() {
    let server = FakeServer::start();
    server.hold_batches(true);
    let ws = Workspace::new();
    ws.write("p.txt", FOX_OWL);
    assert_code(&batch_run(&ws, &server, 2, &["--no-wait"]), 0);
    // One more of each: only those two go in the second batch.
    assert_code(&batch_run(&ws, &server, 3, &["--no-wait"]), 0);
    let ids = batch_ids(&server);
    assert_eq!(ids.len(), 2);
    assert_eq!(requests_in(&server, &ids[0]), 4);
    assert_eq!(
        requests_in(&server, &ids[1]),
        2,
        "pending images are skipped"
    );
    server.set_batch_status(&ids[0], "in_progress");

    let run = batch_command(&ws, &server, "status", &[]);
    assert_code(&run, 0);
    let out = &run.stdout;
    for id in &ids {
        assert!(out.contains(id.as_str()), "{id}: {out}");
    }
    assert!(
        out.contains("in_progress") || out.contains("in progress"),
        "{out}"
    );
    assert!(out.contains("validating"), "{out}");
    assert!(has_number(out, 4) && has_number(out, 2), "counts: {out}");
    assert!(out.to_lowercase().contains("expire"), "{out}");
    // At batch prices: 4 and 2 high-quality squares at half of $0.211.
    assert!(out.contains("$0.42"), "{out}");
    assert!(out.contains("$0.21"), "{out}");
    // Looking changes nothing.
    assert_eq!(creations(&server), 2);
    assert_eq!(
        calls(&server, "POST", &format!("/v1/batches/{}/cancel", ids[0])),
        0
    );
    assert!(image_files(&ws).is_empty());
    assert_eq!(ledger_batch_ids(&ws).len(), 2);
}

#[test]
fn batch_subcommands_take_the_key_and_base_url_as_flags() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", FOX_OWL);
    assert_code(&batch_run(&ws, &server, 1, &["--no-wait"]), 0);
    let id = batch_ids(&server).remove(0);
    let base_url = server.base_url();
    // No key in the environment, and a base URL that goes nowhere: the flags decide.
    let flags = ["--api-key", KEY, "--base-url", base_url.as_str()];
    let status = run_within(
        genimg(&ws, None)
            .args(["batch", "status", "out"])
            .args(flags),
        LIMIT,
    );
    assert_code(&status, 0);
    assert!(status.stdout.contains(&id), "{}", status.stdout);
    let collect = run_within(
        genimg(&ws, None)
            .args(["batch", "collect", "out", "--wait"])
            .args(POLL)
            .args(flags),
        LIMIT,
    );
    assert_code(&collect, 0);
    let expected = names(&[("fox", 1), ("owl", 1)]);
    assert_eq!(image_files(&ws), expected);
    assert_bought_once(&ws, &server, &expected);
}

#[test]
fn collecting_twice_changes_nothing() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", FOX_OWL);
    assert_code(&batch_run(&ws, &server, 2, &[]), 0);
    let before = snapshot(&ws);
    let records = ws.manifest("out").len();
    assert_eq!(records, 4);
    let downloads = |server: &FakeServer| {
        server
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with("/content"))
            .count()
    };
    let downloaded = downloads(&server);

    let run = batch_command(&ws, &server, "collect", &[]);
    assert_code(&run, 0);
    assert_eq!(snapshot(&ws), before, "no file changed");
    assert_eq!(ws.manifest("out").len(), records, "no record added");
    assert_eq!(downloads(&server), downloaded, "nothing downloaded again");
    assert_eq!(creations(&server), 1);

    let waited = batch_command(
        &ws,
        &server,
        "collect",
        &["--wait", "--poll-interval", "0.05"],
    );
    assert_code(&waited, 0);
    assert_eq!(snapshot(&ws), before, "no file changed");
    assert_eq!(ws.manifest("out").len(), records, "no record added");
}

/// A collect that stopped after keeping its images but before forgetting the batch (a
/// crash) is done again by the next collect without a change: its ledger entry and requests
/// are put back as they were, and the next collect keeps nothing twice.
#[test]
fn a_collect_interrupted_before_forgetting_is_done_again_without_a_change() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", FOX_OWL);
    assert_code(&batch_run(&ws, &server, 2, &["--no-wait"]), 0);
    // What the ledger and the requests are while the batch is pending.
    let mut saved: Vec<(String, Vec<u8>)> = vec![(
        "genimg-batch.json".to_owned(),
        ws.read("out/genimg-batch.json"),
    )];
    for name in ws.all_files("out/.genimg/batches") {
        let rel = format!(".genimg/batches/{name}");
        let bytes = ws.read(&format!("out/{rel}"));
        saved.push((rel, bytes));
    }
    assert!(saved.len() >= 2, "the ledger and the requests: {saved:?}");
    let collected = batch_command(
        &ws,
        &server,
        "collect",
        &["--wait", "--poll-interval", "0.05"],
    );
    assert_code(&collected, 0);
    let before = snapshot(&ws);
    let records = ws.manifest("out").len();
    assert_eq!(records, 4);
    // As if the collect had died just before forgetting the batch.
    for (name, bytes) in &saved {
        ws.write(&format!("out/{name}"), bytes);
    }
    let again = batch_command(&ws, &server, "collect", &[]);
    assert_code(&again, 0);
    assert_eq!(ws.manifest("out").len(), records, "no record added");
    let after: BTreeMap<String, String> = snapshot(&ws)
        .into_iter()
        .filter(|(n, _)| before.contains_key(n))
        .collect();
    assert_eq!(after, before, "no image changed");
    assert!(
        !ws.join(LEDGER).exists(),
        "the batch is forgotten now: {}",
        again.stderr
    );
    assert_eq!(creations(&server), 1);
}

/// A submission whose batch was never created (its upload kept failing) is not created by
/// `batch collect` or `batch cancel`: they never buy anything. The next `--batch` run submits
/// its images.
#[test]
fn collect_and_cancel_never_create_a_batch() {
    let server = with_batch(BatchOptions {
        upload_faults: vec![Action::error(500, "server_error", "The server had an error."); 5],
        ..BatchOptions::default()
    });
    let ws = Workspace::new();
    ws.write("p.txt", FOX_OWL);
    let run = batch_run(&ws, &server, 1, &[]);
    assert_code(&run, 3);
    assert!(run.stderr.contains("uploading"), "{}", run.stderr);
    assert!(ws.join(LEDGER).exists(), "the intent is recorded");
    for action in ["collect", "cancel"] {
        let run = batch_command(&ws, &server, action, &POLL);
        assert_code(&run, 0);
        assert_eq!(creations(&server), 0, "{action} creates nothing");
        assert_eq!(
            uploads(&server, "batch").len(),
            0,
            "{action} uploads nothing"
        );
    }
    assert!(!ws.join(LEDGER).exists(), "the intent is dropped");
    let again = batch_run(&ws, &server, 1, &[]);
    assert_code(&again, 0);
    assert_eq!(creations(&server), 1);
    assert_bought_once(&ws, &server, &names(&[("fox", 1), ("owl", 1)]));
}

/// `--overwrite` asks for the images made before this run: a re-run that collects a batch
/// does not buy the images it has just collected again.
#[test]
fn an_overwrite_rerun_collects_without_buying_again() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", FOX_OWL);
    assert_code(&batch_run(&ws, &server, 1, &["--no-wait"]), 0);
    let run = batch_run(&ws, &server, 1, &["--overwrite"]);
    assert_code(&run, 0);
    assert_eq!(creations(&server), 1, "{}", run.stderr);
    assert_bought_once(&ws, &server, &names(&[("fox", 1), ("owl", 1)]));
}

/// An image the folder will not take stops the collect (exit 3), with the batch still
/// recorded; a collect once the folder takes it keeps it, and nothing is bought again.
#[test]
fn an_image_the_folder_will_not_take_keeps_its_batch_for_the_next_collect() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", "# fox\na fox\n");
    assert_code(&batch_run(&ws, &server, 1, &["--no-wait"]), 0);
    // A folder where the image goes: the destination cannot write it.
    std::fs::create_dir_all(ws.join("out/image.fox.01.hd.png/blocked")).unwrap();
    let run = batch_command(
        &ws,
        &server,
        "collect",
        &["--wait", "--poll-interval", "0.05"],
    );
    assert_code(&run, 3);
    assert!(run.stderr.contains("could not be saved"), "{}", run.stderr);
    assert!(ws.join(LEDGER).exists(), "the batch stays recorded");

    std::fs::remove_dir_all(ws.join("out/image.fox.01.hd.png")).unwrap();
    let again = batch_command(&ws, &server, "collect", &[]);
    assert_code(&again, 0);
    assert!(!ws.join(LEDGER).exists());
    assert_eq!(creations(&server), 1);
    assert_bought_once(&ws, &server, &names(&[("fox", 1)]));
    let records = ws.manifest("out");
    assert_eq!(record(&records, "image.fox.01.hd.png")["status"], "made");
}

/// `--max-cost` weighs the estimate at batch prices, before anything is sent.
#[test]
fn max_cost_applies_to_the_batch_estimate() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", FOX_OWL);
    // Four images: about $0.84 live, $0.42 at batch prices.
    let over = batch_run(&ws, &server, 2, &["--max-cost", "0.30"]);
    assert_code(&over, 2);
    assert!(over.stderr.contains("--max-cost"), "{}", over.stderr);
    assert!(server.requests().is_empty(), "nothing was sent");
    let within = batch_run(&ws, &server, 2, &["--max-cost", "0.50"]);
    assert_code(&within, 0);
    assert_eq!(image_files(&ws).len(), 4);
}

/// Azure OpenAI's batches are not OpenAI's: `--batch` with an Azure endpoint is refused
/// before any request.
#[test]
fn batch_with_azure_is_refused_before_any_request() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", FOX_OWL);
    let run = genimg(&ws, Some(&server))
        .env_remove("OPENAI_BASE_URL")
        .args(["--input", "p.txt", "-o", "out", "--batch"])
        .args([
            "--azure-endpoint",
            &server.azure_endpoint(),
            "--api-key",
            KEY,
        ])
        .run();
    assert_code(&run, 2);
    assert!(run.stderr.contains("--batch"), "{}", run.stderr);
    assert!(server.requests().is_empty());
}

/// A live run leaves out the images pending in a batch (never bought twice), and says so:
/// they are not there yet, so it does not end in success. Once collected, they are.
#[test]
fn a_live_run_leaves_pending_images_to_their_batch_and_does_not_call_it_success() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", FOX_OWL);
    assert_code(&batch_run(&ws, &server, 1, &["--no-wait"]), 0);
    let live = genimg(&ws, Some(&server))
        .args(["--input", "p.txt", "-o", "out", "-n", "1"])
        .run();
    assert_code(&live, 1);
    assert!(server.image_requests().is_empty(), "nothing bought twice");
    assert!(
        live.stderr
            .contains("2 image(s) are pending in a batch of out"),
        "{}",
        live.stderr
    );
    assert!(
        live.stderr
            .contains("  pending        2  in a batch, not bought again"),
        "{}",
        live.stderr
    );
    assert!(!live.stderr.contains("skipped"), "{}", live.stderr);
    let collect = batch_command(&ws, &server, "collect", &[&["--wait"][..], &POLL].concat());
    assert_code(&collect, 0);
    let again = genimg(&ws, Some(&server))
        .args(["--input", "p.txt", "-o", "out", "-n", "1"])
        .run();
    assert_code(&again, 0);
    assert!(server.image_requests().is_empty());
}

/// `--json` says which images are pending in a batch, and a dry run's estimate is at the
/// prices the run would pay.
#[test]
fn json_shows_pending_images_and_batch_prices() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", FOX_OWL);
    let run = batch_run(&ws, &server, 1, &["--no-wait", "--json"]);
    assert_code(&run, 0);
    let doc: Value = serde_json::from_str(&run.stdout).expect("a JSON document");
    let statuses: Vec<&str> = doc["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["pending", "pending"], "{doc}");
    assert_eq!(doc["totals"]["pending"], 2, "{doc}");
    assert_eq!(doc["totals"]["skipped"], 0, "pending is not skipped: {doc}");
    // A dry run's total counts them as pending, not as already there.
    let text = genimg(&ws, None)
        .args(["--input", "p.txt", "-o", "out", "--dry-run"])
        .run();
    assert!(
        text.stdout.contains(
            "Total: 2 image(s) of 2 prompt(s): 0 to make, 0 already there, 2 pending in a \
             batch; 0 request(s)."
        ),
        "{}",
        text.stdout
    );

    let dry = |extra: &[&str]| {
        let run = genimg(&ws, None)
            .args(["--input", "p.txt", "-o", "fresh", "--dry-run", "--json"])
            .args(extra)
            .run();
        assert_code(&run, 0);
        let doc: Value = serde_json::from_str(&run.stdout).expect("a JSON document");
        doc["totals"]["estimate_usd"].as_f64().expect("an estimate")
    };
    let live = dry(&[]);
    let batch = dry(&["--batch"]);
    assert!(live > 0.0);
    assert!((batch - live / 2.0).abs() < 1e-9, "{batch} vs {live}");
}

/// The subcommands check what they are given: a folder that is not there is an error
/// (exit 2) and is not made; `status` without a key shows the ledger as last recorded; a poll
/// interval under 10 ms is refused.
#[test]
fn batch_subcommands_check_their_folder_key_and_interval() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = batch_command(&ws, &server, "collect", &[]);
    assert_code(&run, 2);
    assert!(run.stderr.contains("out"), "{}", run.stderr);
    assert!(!ws.join("out").exists(), "no folder is made");

    ws.write("p.txt", FOX_OWL);
    assert_code(&batch_run(&ws, &server, 1, &["--no-wait"]), 0);
    let before = server.requests().len();
    let status = genimg(&ws, None)
        .env_remove("OPENAI_API_KEY")
        .args(["batch", "status", "out"])
        .run();
    assert_code(&status, 0);
    assert!(status.stdout.contains("batch_1"), "{}", status.stdout);
    assert!(status.stderr.contains("no API key"), "{}", status.stderr);
    assert_eq!(server.requests().len(), before, "nothing was asked");

    let fast = genimg(&ws, Some(&server))
        .args(["batch", "collect", "out", "--poll-interval", "0"])
        .run();
    assert_code(&fast, 2);
    assert!(fast.stderr.contains("--poll-interval"), "{}", fast.stderr);
}

#[test]
fn the_gallery_and_json_show_a_batch_runs_images() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", FOX_OWL);
    let run = batch_run(&ws, &server, 2, &["--json"]);
    assert_code(&run, 0);
    let expected = names(&[("fox", 2), ("owl", 2)]);
    let doc: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON document ({e}):\n{}", run.stdout));
    let images = doc["images"].as_array().expect("images");
    for name in &expected {
        let image = images
            .iter()
            .find(|i| i["file"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} not listed: {doc}"));
        assert_eq!(image["status"], "made", "{image}");
    }
    assert_eq!(doc["totals"]["made"], 4, "{doc}");
    assert_eq!(doc["exit_code"], 0, "{doc}");

    let page = String::from_utf8(ws.read(&format!("out/{GALLERY}"))).expect("a gallery");
    for name in &expected {
        assert!(
            page.contains(&format!(
                "<a class=\"thumb\" href=\"{name}\"><img src=\".genimg/thumbs/"
            )),
            "{name} in the gallery"
        );
    }
}

// Dry runs

#[test]
fn a_batch_dry_run_sends_nothing_and_prices_at_half() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("ref.png", images::fixture("reference.png"));
    ws.write(
        "p.txt",
        "# fox\na fox\n\n# owl\nan owl\n\n# edited ref=ref.png\na boat\n",
    );
    let args = ["--input", "p.txt", "-o", "out", "-n", "10", "--dry-run"];
    let plain = genimg(&ws, Some(&server)).args(args).run();
    assert_code(&plain, 0);
    let batch = genimg(&ws, Some(&server)).args(args).arg("--batch").run();
    assert_code(&batch, 0);
    assert!(
        server.requests().is_empty(),
        "a dry run sends nothing: {:?}",
        server
            .requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>()
    );
    let out = &batch.stdout;
    assert!(out.contains("batch prices"), "{out}");
    // The batch of each endpoint (not the line that names the API root).
    let batch_of = |endpoint: &str| {
        out.lines()
            .rev()
            .find(|l| l.contains(endpoint) && !l.contains("://"))
            .unwrap_or_else(|| panic!("the batch for {endpoint}: {out}"))
    };
    let generations = batch_of("/v1/images/generations");
    assert!(
        has_number(generations, 20),
        "its 20 requests: {generations}"
    );
    let edits = batch_of("/v1/images/edits");
    assert!(has_number(edits, 10), "its 10 requests: {edits}");
    for line in [generations, edits] {
        assert!(
            [" bytes", " KB", " MB"]
                .iter()
                .any(|unit| line.contains(unit)),
            "its file size: {line}"
        );
    }
    let live = total_usd(&plain.stdout);
    let at_batch_prices = total_usd(out);
    assert!(
        (at_batch_prices - live / 2.0).abs() <= 0.01,
        "{at_batch_prices} is half of {live}:\n{out}"
    );
    assert!(!ws.join(LEDGER).exists());
}

// Nothing bought twice

#[cfg(unix)]
#[test]
fn a_kill_9_between_submit_and_collect_does_not_buy_a_second_batch() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let server = FakeServer::start();
    server.hold_batches(true);
    let ws = Workspace::new();
    ws.write("p.txt", FOX_OWL);
    let child = batch_cmd(&ws, &server, 2, &[]).start();
    wait_for("the batch created and recorded", || {
        server.batches_created() == 1 && !ledger_batch_ids(&ws).is_empty()
    });
    assert_eq!(ledger_batch_ids(&ws), batch_ids(&server));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).expect("kill");
    let killed = wait(child);
    assert_eq!(killed.code, -1, "killed by a signal");

    server.hold_batches(false);
    let run = batch_run(&ws, &server, 2, &[]);
    assert_code(&run, 0);
    assert_eq!(creations(&server), 1, "one batch in all");
    assert_eq!(server.batches_created(), 1);
    let expected = names(&[("fox", 2), ("owl", 2)]);
    assert_eq!(image_files(&ws), expected);
    assert_bought_once(&ws, &server, &expected);
    let records = ws.manifest("out");
    for name in &expected {
        let made = records
            .iter()
            .filter(|r| r["file"] == name.as_str() && r["status"] == "made")
            .count();
        assert_eq!(made, 1, "{name} recorded once");
    }
    assert!(!ws.join(LEDGER).exists());
}

#[test]
fn a_batch_created_without_an_answer_is_found_by_its_metadata() {
    let server = with_batch(BatchOptions {
        create_faults: vec![Action::Truncate],
        ..BatchOptions::default()
    });
    let ws = Workspace::new();
    ws.write("p.txt", FOX_OWL);
    let expected = names(&[("fox", 2), ("owl", 2)]);
    let first = batch_run(&ws, &server, 2, &[]);
    // The same command again, as a user would run it if the first one gave up.
    let second = batch_run(&ws, &server, 2, &[]);
    assert_code(&second, 0);
    assert_eq!(
        server.batches_created(),
        1,
        "the batch whose answer was lost is the only one\n--- first\n{}\n--- second\n{}",
        first.stderr,
        second.stderr
    );
    assert!(
        calls(&server, "GET", "/v1/batches") >= 1,
        "looked for among the account's batches"
    );
    assert_eq!(image_files(&ws), expected);
    assert_bought_once(&ws, &server, &expected);
    assert!(!ws.join(LEDGER).exists());
}

#[test]
fn faults_of_the_files_and_batches_apis_are_retried_without_a_second_batch() {
    let server = with_batch(BatchOptions {
        upload_faults: vec![Action::error(
            503,
            "overloaded",
            "The engine is currently overloaded, please try again later.",
        )],
        create_faults: vec![Action::error(
            500,
            "server_error",
            "The server had an error while processing your request.",
        )],
        poll_faults: vec![
            Action::error(500, "server_error", "The server had an error."),
            Action::Drop,
        ],
        ..BatchOptions::default()
    });
    let ws = Workspace::new();
    ws.write("p.txt", FOX_OWL);
    let run = batch_run(&ws, &server, 2, &[]);
    assert_code(&run, 0);
    assert_eq!(server.batches_created(), 1);
    let expected = names(&[("fox", 2), ("owl", 2)]);
    assert_eq!(image_files(&ws), expected);
    assert_bought_once(&ws, &server, &expected);
}

#[test]
fn a_cut_download_resumes_with_a_range() {
    let server = FakeServer::with(Options {
        payload_bytes: Some(200_000),
        batch: BatchOptions {
            download_cuts: 2,
            ..BatchOptions::default()
        },
        ..Options::default()
    });
    let ws = Workspace::new();
    ws.write("p.txt", FOX_OWL);
    let run = batch_run(&ws, &server, 2, &[]);
    assert_code(&run, 0);
    assert_eq!(server.downloads_cut(), 2);
    let ranged = server
        .requests()
        .iter()
        .filter(|r| {
            r.method == "GET" && r.path.ends_with("/content") && r.header("range").is_some()
        })
        .count();
    assert!(ranged >= 1, "a cut download resumes with Range");
    let expected = names(&[("fox", 2), ("owl", 2)]);
    assert_eq!(image_files(&ws), expected);
    assert_bought_once(&ws, &server, &expected);
    for name in &expected {
        assert!(ws.read(&format!("out/{name}")).len() > 200_000 - 5_000);
    }
}

// References

#[test]
fn references_are_uploaded_once_and_sent_as_file_ids() {
    let (script, seen) = recording();
    let server = with_batch(BatchOptions {
        script: Some(script),
        ..BatchOptions::default()
    });
    let ws = Workspace::new();
    let png = images::fixture("reference.png");
    let webp = images::fixture("reference.webp");
    ws.write("a.png", &png);
    ws.write("b.webp", &webp);
    ws.write(
        "p.txt",
        "# one ref=a.png\na cat\n\n# two ref=a.png ref=b.webp\na dog\n",
    );
    let run = batch_run(&ws, &server, 1, &[]);
    assert_code(&run, 0);
    assert_eq!(image_files(&ws), names(&[("one", 1), ("two", 1)]));
    let batches = server.batches();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0]["endpoint"], "/v1/images/edits");

    // Each distinct reference uploaded once, for vision.
    let vision: Vec<FileInfo> = server
        .uploaded_files()
        .into_iter()
        .filter(|f| f.purpose == "vision")
        .collect();
    assert_eq!(vision.len(), 2, "{vision:?}");
    let id_of = |bytes: &[u8]| {
        vision
            .iter()
            .find(|f| server.file_content(&f.id).as_deref() == Some(bytes))
            .map(|f| f.id.clone())
            .unwrap_or_else(|| panic!("no upload of these bytes: {vision:?}"))
    };
    let (a, b) = (id_of(&png), id_of(&webp));

    let images_of = |custom_id: &str| {
        let seen = seen.lock().unwrap();
        let line = seen
            .iter()
            .rev()
            .find(|l| l.custom_id == custom_id)
            .unwrap_or_else(|| panic!("no line {custom_id}"));
        assert_eq!(line.endpoint, "/v1/images/edits");
        line.body.get("images").cloned().unwrap_or(Value::Null)
    };
    assert_eq!(images_of("image.one.01.hd.png"), json!([{"file_id": a}]));
    assert_eq!(
        images_of("image.two.01.hd.png"),
        json!([{"file_id": a}, {"file_id": b}])
    );
    assert_bought_once(&ws, &server, &names(&[("one", 1), ("two", 1)]));

    // A re-run for one more of each uses the same uploads.
    let again = batch_run(&ws, &server, 2, &[]);
    assert_code(&again, 0);
    assert_eq!(server.batches_created(), 2);
    assert_eq!(
        uploads(&server, "vision").len(),
        2,
        "no second upload of the same bytes"
    );
    assert_eq!(images_of("image.one.02.hd.png"), json!([{"file_id": a}]));
    assert_eq!(
        images_of("image.two.02.hd.png"),
        json!([{"file_id": a}, {"file_id": b}])
    );
    let all = names(&[("one", 2), ("two", 2)]);
    assert_eq!(image_files(&ws), all);
    assert_bought_once(&ws, &server, &all);
}

// Splitting

/// The reference: a real PNG of about 14.5 MB, whose data URL takes about 19.3 M
/// characters: ten lines that carry it come to over 190 MB, the most genimg puts in a batch.
const BIG_REFERENCE: usize = 14_500_000;

/// Uploads of references refused, they travel inline, and ten lines of 19.3 MB make two
/// batches. The fake cannot fault uploads by purpose, only the first ones: genimg uploads the
/// reference before the input file that names it, so the first upload is the reference's.
/// The slow one: about 50 s in a debug build, most of it genimg writing 194 MB of lines.
#[test]
fn an_input_over_190_mb_is_split_into_batches() {
    let inline: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
    let keep = inline.clone();
    let server = with_batch(BatchOptions {
        upload_faults: vec![Action::error(
            400,
            "invalid_request_error",
            "Invalid value for 'purpose': 'vision' is not supported for this organization.",
        )],
        script: Some(Arc::new(move |line: &BatchLine| {
            let data_url = line.body["images"][0]["image_url"]
                .as_str()
                .is_some_and(|u| u.starts_with("data:image/png;base64,"));
            keep.lock()
                .unwrap()
                .push((line.custom_id.clone(), data_url));
            Action::Answer
        })),
        ..BatchOptions::default()
    });
    let ws = Workspace::new();
    let reference = images::Padding::new(BIG_REFERENCE).png(1);
    assert!(reference.len().abs_diff(BIG_REFERENCE) < 100);
    ws.write("big.png", &reference);
    ws.write("p.txt", "# big ref=big.png\na cat on a mat\n");
    let started = Instant::now();
    let run = run_within(
        &mut batch_cmd(&ws, &server, 10, &[]),
        Duration::from_secs(300),
    );
    let took = started.elapsed();
    assert_code(&run, 0);
    eprintln!("the split run took {took:?}");

    assert_eq!(server.batches_created(), 2, "{}", run.stderr);
    let inputs: Vec<FileInfo> = server
        .uploaded_files()
        .into_iter()
        .filter(|f| f.purpose == "batch")
        .collect();
    assert_eq!(inputs.len(), 2);
    for input in &inputs {
        assert!(input.bytes <= 190_000_000, "{input:?}");
    }
    assert!(inputs.iter().map(|f| f.bytes).sum::<usize>() > 190_000_000);
    let mut totals: Vec<u64> = batch_ids(&server)
        .iter()
        .map(|id| {
            assert_eq!(server.batch(id).unwrap()["endpoint"], "/v1/images/edits");
            total_of(&server, id)
        })
        .collect();
    totals.sort_unstable();
    assert_eq!(totals.iter().sum::<u64>(), 10);
    assert!(totals[0] >= 1);

    let inline = inline.lock().unwrap();
    assert_eq!(inline.len(), 10);
    assert!(
        inline.iter().all(|(_, data_url)| *data_url),
        "every line carries the reference inline"
    );
    let all = names(&[("big", 10)]);
    assert_eq!(image_files(&ws), all);
    assert_bought_once(&ws, &server, &all);
}

/// An image a collected batch replaces (`--overwrite --no-wait`, then `genimg batch collect`)
/// goes to the trash, byte for byte, with its records, which leave the live manifest.
#[test]
fn a_collect_sends_the_images_it_replaces_to_the_trash() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", FOX_OWL);
    assert_code(&batch_run(&ws, &server, 1, &[]), 0);
    let names = names(&[("fox", 1), ("owl", 1)]);
    let old: Vec<Vec<u8>> = names.iter().map(|n| ws.read(&format!("out/{n}"))).collect();
    let old_records = ws.manifest("out");
    assert_eq!(old_records.len(), 2);
    assert_code(
        &batch_run(&ws, &server, 1, &["--overwrite", "--no-wait"]),
        0,
    );
    assert!(
        !ws.join("out/.genimg/trash").exists(),
        "nothing replaced yet"
    );

    let run = batch_command(
        &ws,
        &server,
        "collect",
        &["--wait", "--poll-interval", "0.05"],
    );
    assert_code(&run, 0);
    assert_eq!(creations(&server), 2);
    let trash = ws.only_trash("out");
    for (name, bytes) in names.iter().zip(&old) {
        assert_eq!(ws.read(&format!("{trash}/{name}")), *bytes, "{name}");
        assert_ne!(ws.read(&format!("out/{name}")), *bytes, "{name} is new");
    }
    let by_file = |mut records: Vec<Value>| {
        records.sort_by_key(|r| r["file"].as_str().unwrap().to_owned());
        records
    };
    assert_eq!(by_file(ws.manifest(&trash)), by_file(old_records.clone()));
    let records = ws.manifest("out");
    assert!(
        records.iter().all(|r| !old_records.contains(r)),
        "{records:#?}"
    );
    assert!(
        run.stderr
            .contains(&format!("Moved 2 old image(s) to {trash}/")),
        "{}",
        run.stderr
    );
}
