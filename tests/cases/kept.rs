//! Issue 10, section 2: a paid image is never thrown away nor bought twice. Refusals are
//! never asked again while unusable answers are, what an answer billed counts, a rescue never
//! overwrites, the key shows nowhere, and a destination written by release 0.1 re-buys
//! nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::support::images;
use crate::support::*;

/// What the fake's `usage` bills for one gpt-image-2 image: 50 text tokens in at $5 a
/// million, 7024 image tokens out at $30 a million (about $0.211).
const BILLED: f64 = (50.0 * 5.0 + 7024.0 * 30.0) / 1e6;

/// The `usage` the fake's normal answers carry.
fn usage() -> Value {
    json!({
        "input_tokens": 50, "output_tokens": 7024, "total_tokens": 7074,
        "input_tokens_details": {"text_tokens": 50, "image_tokens": 0}
    })
}

/// A 200 answer in the API's shape whose `data[0].b64_json` is `b64`, with `usage` if given.
fn answer(b64: &str, usage: Option<Value>) -> Action {
    let mut body = json!({"created": 1, "data": [{"b64_json": b64}]});
    if let Some(usage) = usage {
        body["usage"] = usage;
    }
    Action::Raw {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string(),
    }
}

fn scripted(script: impl Fn(&Incoming) -> Action + Send + Sync + 'static) -> FakeServer {
    FakeServer::with(Options {
        script: Some(Arc::new(script)),
        ..Options::default()
    })
}

#[track_caller]
fn assert_cost(record: &Value, expected: f64) {
    let cost = record["cost_usd"]
        .as_f64()
        .unwrap_or_else(|| panic!("no cost_usd in {record}"));
    assert!(
        (cost - expected).abs() < 1e-9,
        "cost_usd {cost}, not {expected}: {record}"
    );
}

/// Bytes that are no image, different for each answer.
fn junk(nth: usize) -> Vec<u8> {
    format!("hello, not an image ({nth})").into_bytes()
}

#[test]
fn bytes_that_are_no_image_are_kept_aside_and_never_bought_twice() {
    let server = scripted(|i| answer(&STANDARD.encode(junk(i.nth)), None));
    let ws = Workspace::new();
    // Retries stay at their default: a delivery that is kept is never asked again.
    let args = ["a cat", "-o", "out", "-n", "2"];
    let run = genimg(&ws, Some(&server)).args(args).run();
    assert_code(&run, 0);
    assert_eq!(server.image_requests().len(), 2, "one request per image");
    assert_summary(&run, &[("made", "2"), ("failed", "0")]);
    assert!(ws.files("out").is_empty(), "nothing under an image name");
    assert_eq!(
        ws.files("out/.genimg/unrecognised"),
        ["image_01_hd.bin", "image_02_hd.bin"]
    );

    let records = ws.manifest("out");
    assert_eq!(records.len(), 2);
    let mut kept = Vec::new();
    for n in ["01", "02"] {
        let file = format!(".genimg/unrecognised/image_{n}_hd.bin");
        kept.push(ws.read(&format!("out/{file}")));
        let r = record(&records, &file);
        assert_eq!(r["status"], "made");
        assert_eq!(r["planned_file"], format!("image_{n}_hd.png"));
        assert_eq!(r["asked_format"], "png");
        assert_eq!(r["received_format"], "unknown");
        assert_eq!(r["attempts"], 1);
        let warning = format!(
            "image_{n}_hd.png: asked for PNG, received bytes genimg does not recognise as an \
             image; kept as {file}"
        );
        assert!(run.stderr.contains(&warning), "{}", run.stderr);
    }
    kept.sort();
    assert_eq!(kept, [junk(0), junk(1)], "byte for byte what was sent");

    let again = genimg(&ws, Some(&server)).args(args).run();
    assert_code(&again, 0);
    assert_eq!(server.image_requests().len(), 2, "nothing bought twice");
    assert_summary(&again, &[("made", "0"), ("skipped", "2")]);
}

#[test]
fn an_image_in_another_format_than_asked_is_kept_as_what_it_is_and_costs_what_it_cost() {
    // WebP asked, PNG answered (as many compatible servers do), without `usage`: each costs
    // its estimate, $0.211, and three fit in $0.70.
    let server = scripted(|_| Action::WrongFormat);
    let ws = Workspace::new();
    let args = [
        "a cat",
        "-o",
        "out",
        "-n",
        "3",
        "--format",
        "webp",
        "--max-cost",
        "0.70",
    ];
    let run = genimg(&ws, Some(&server)).args(args).run();
    assert_code(&run, 0);
    assert_eq!(server.image_requests().len(), 3, "one request per image");
    assert_eq!(
        ws.files("out"),
        ["image_01_hd.png", "image_02_hd.png", "image_03_hd.png"]
    );
    assert_images_match(&ws, "out", &server);
    assert_summary(&run, &[("made", "3"), ("cost", "$0.632")]);
    let records = ws.manifest("out");
    for n in ["01", "02", "03"] {
        let r = record(&records, &format!("image_{n}_hd.png"));
        assert_eq!(r["status"], "made");
        assert_eq!(r["planned_file"], format!("image_{n}_hd.webp"));
        assert_eq!(r["asked_format"], "webp");
        assert_eq!(r["received_format"], "png");
        assert!(r["cost_usd"].as_f64().unwrap() > 0.2, "{r}");
        let warning =
            format!("image_{n}_hd.webp: asked for WebP, received PNG; kept as image_{n}_hd.png");
        assert!(run.stderr.contains(&warning), "{}", run.stderr);
    }

    let again = genimg(&ws, Some(&server)).args(args).run();
    assert_code(&again, 0);
    assert_eq!(server.image_requests().len(), 3, "nothing bought twice");
    assert_summary(&again, &[("made", "0"), ("skipped", "3")]);
}

#[test]
fn max_cost_counts_images_kept_in_another_format() {
    // Release 0.1 bought each such image five times and counted none: `--max-cost 0.70` let
    // $1.88 through. Low quality is estimated under a cent, so only the spend can stop this
    // run: each answer bills $0.211, in PNG where WebP was asked.
    let server = scripted(|i| {
        let png = images::png(i.nth as u64 + 1);
        answer(&STANDARD.encode(png), Some(usage()))
    });
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "-o", "out", "-n", "10", "-j", "1"])
        .args(["--format", "webp", "--quality", "low", "--max-cost", "0.70"])
        .run();
    assert_code(&run, 4);
    // A request goes while the spend is within the limit: after three ($0.633), not after
    // four ($0.844).
    let requests = server.image_requests().len();
    assert_eq!(requests, 4, "{}", run.stderr);
    let files = ws.files("out");
    assert_eq!(files.len(), 4, "every image bought was kept: {files:?}");
    assert!(files.iter().all(|f| f.ends_with(".png")), "{files:?}");
    let records = ws.manifest("out");
    assert_eq!(records.len(), 4);
    for r in &records {
        assert_eq!(r["status"], "made");
        assert_eq!(r["received_format"], "png");
        assert_cost(r, BILLED);
    }
    assert_summary(&run, &[("made", "4"), ("cost", "$0.844")]);
    assert!(
        run.stderr.contains("Stopping at --max-cost $0.70"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_refusal_is_never_asked_again_even_when_the_server_says_to_retry() {
    let server = scripted(|_| {
        Action::error(
            400,
            "moderation_blocked",
            "Your request was rejected by the safety system.",
        )
        .with_header("x-should-retry", "true")
    });
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "-o", "out", "-n", "2"])
        .run();
    assert_code(&run, 1);
    assert_eq!(server.image_requests().len(), 2, "one request per image");
    assert_summary(&run, &[("made", "0"), ("failed", "2")]);
    assert!(
        run.stderr
            .contains("image_01_hd.png: refused by the service: HTTP 400"),
        "{}",
        run.stderr
    );
    let records = ws.manifest("out");
    assert_eq!(records.len(), 2);
    for r in &records {
        assert_eq!(r["status"], "refused", "{r}");
        assert_eq!(r["attempts"], 1, "{r}");
    }
    assert_eq!(ws.files("out"), Vec::<String>::new());
}

#[test]
fn an_answer_without_usable_bytes_is_asked_again() {
    let faults = [
        ("a truncated body", Action::Truncate),
        ("a body that is not JSON", Action::MalformedJson),
        ("bad base64", Action::BadBase64),
        ("no image in the answer", answer_without_image()),
        ("an empty image", answer("", None)),
    ];
    for (what, fault) in faults {
        let server = scripted(move |i| {
            if i.nth == 0 {
                fault.clone()
            } else {
                Action::Answer
            }
        });
        let (run, ws) = one_image(&server, &[]);
        assert_code(&run, 0);
        assert_eq!(server.image_requests().len(), 2, "{what}\n{}", run.stderr);
        assert_eq!(ws.files("out"), ["image_01_hd.png"], "{what}");
        assert_eq!(
            server.image_requests()[1].image.as_deref(),
            Some(&ws.read("out/image_01_hd.png")[..]),
            "{what}: the second answer's image"
        );
        let records = ws.manifest("out");
        assert_eq!(records.len(), 1, "{what}");
        assert_eq!(records[0]["status"], "made", "{what}");
        assert_eq!(records[0]["attempts"], 2, "{what}");
    }
}

fn answer_without_image() -> Action {
    Action::Raw {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: json!({"created": 1, "data": []}).to_string(),
    }
}

#[test]
fn what_an_unusable_answer_billed_counts_in_the_images_cost() {
    // The first answer bills as a normal one does but its image is no base64.
    let server = scripted(|i| {
        if i.nth == 0 {
            answer("!!not base64!!", Some(usage()))
        } else {
            Action::Answer
        }
    });
    let (run, ws) = one_image(&server, &[]);
    assert_code(&run, 0);
    assert_eq!(server.image_requests().len(), 2);
    let records = ws.manifest("out");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["attempts"], 2);
    assert_cost(&records[0], 2.0 * BILLED);
    assert_summary(&run, &[("made", "1"), ("cost", "$0.422")]);
}

#[test]
fn max_cost_stops_buying_answers_that_bill_but_give_no_image() {
    // Every answer bills $0.211 and holds no usable image. Retries are on (four by
    // default), and low quality is estimated under a cent: only what was billed can stop
    // the run. No request may go once the billed spend is past $0.50.
    let server = scripted(|_| answer("!!not base64!!", Some(usage())));
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "-o", "out", "-n", "10", "-j", "1"])
        .args(["--quality", "low", "--max-cost", "0.50"])
        .run();
    assert_code(&run, 4);
    // $0, $0.21 and $0.42 spent before the first three; $0.63 before a fourth.
    assert_eq!(server.image_requests().len(), 3, "{}", run.stderr);
    assert_eq!(ws.files("out"), Vec::<String>::new());
    // Two images were under way (one in flight, the next ready): both were billed, and the
    // manifest keeps what each cost though neither was made.
    let records = ws.manifest("out");
    assert_eq!(records.len(), 2, "{records:#?}");
    let mut attempts = 0;
    let mut spent = 0.0;
    for r in &records {
        assert_eq!(r["status"], "failed", "{r}");
        let error = r["error"].as_str().unwrap();
        assert!(
            error.starts_with("unusable answer: the image is not valid base64"),
            "{r}"
        );
        let n = r["attempts"].as_u64().unwrap();
        assert_cost(r, n as f64 * BILLED);
        attempts += n;
        spent += r["cost_usd"].as_f64().unwrap();
    }
    assert_eq!(attempts, 3);
    assert!((spent - 3.0 * BILLED).abs() < 1e-9, "{spent}");
    assert!(
        records.iter().any(|r| r["error"]
            .as_str()
            .unwrap()
            .ends_with("attempt(s): another could pass --max-cost)")),
        "{records:#?}"
    );
    assert!(
        run.stderr.contains("Stopping at --max-cost $0.50"),
        "{}",
        run.stderr
    );
    // The summary counts what was billed, though no image was made.
    assert_summary(&run, &[("made", "0"), ("cost", "$0.633")]);
    assert!(
        run.stderr.contains("this run was billed $0.633 "),
        "{}",
        run.stderr
    );
}

/// A destination in `ws` where the image cannot be saved: a directory is in the way of its
/// name, as a full disk or a lost mount would fail it.
fn blocked(ws: &Workspace, dst: &str) {
    std::fs::create_dir_all(ws.join(&format!("{dst}/image_01_hd.png"))).unwrap();
}

/// Runs one image into `dst` with `TMPDIR` at `tmp` and no user cache; it cannot be saved. Returns the run and where its image was rescued, as the manifest says.
fn run_blocked(ws: &Workspace, server: &FakeServer, dst: &str, tmp: &Path) -> (Run, PathBuf) {
    let run = genimg(ws, Some(server))
        .env("TMPDIR", tmp)
        .args(["a cat", "-o", dst, "-n", "1"])
        .run();
    assert_code(&run, 3);
    let records = ws.manifest(dst);
    let lost = record(&records, "image_01_hd.png");
    assert_eq!(lost["status"], "failed");
    let rescued = PathBuf::from(
        lost["rescued"]
            .as_str()
            .unwrap_or_else(|| panic!("no rescue on record: {lost}\n{}", run.stderr)),
    );
    assert!(
        run.stderr
            .contains(&format!("it was kept as {}", rescued.display())),
        "{}",
        run.stderr
    );
    (run, rescued)
}

/// Asserts that the gallery of `out` links to the rescued image at `path` (beyond quoting
/// it in the failure's reason).
#[track_caller]
fn assert_gallery_links(ws: &Workspace, path: &Path) {
    let page = String::from_utf8(ws.read("out/index.html")).unwrap();
    let link = format!("<a href=\"file://{0}\">{0}</a>", path.display());
    assert!(page.contains(&link), "no {link} in the gallery:\n{page}");
}

/// Whether `bytes` are, byte for byte, an image the server sent in one of its image answers
/// from the `from`th on (from 0).
fn sent_from(server: &FakeServer, from: usize, bytes: &[u8]) -> bool {
    server.image_requests()[from..]
        .iter()
        .any(|r| r.image.as_deref() == Some(bytes))
}

#[test]
fn a_rescue_never_overwrites_an_earlier_one_and_is_on_record() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    blocked(&ws, "out");
    let tmp = ws.join("tmp");

    let (_, first) = run_blocked(&ws, &server, "out", &tmp);
    assert_eq!(server.image_requests().len(), 1);
    let first_bytes = std::fs::read(&first).unwrap();
    assert!(sent_from(&server, 0, &first_bytes), "what the server sent");
    assert_gallery_links(&ws, &first);

    // "Run the same command again", as the message advises: the image is bought and
    // rescued again, beside the first rescue, not over it.
    let (_, second) = run_blocked(&ws, &server, "out", &tmp);
    assert_eq!(server.image_requests().len(), 2);
    assert_ne!(second, first);
    assert_eq!(
        second.parent(),
        first.parent(),
        "one folder per destination"
    );
    assert!(
        sent_from(&server, 1, &std::fs::read(&second).unwrap()),
        "what the server sent the second time"
    );
    assert_eq!(
        std::fs::read(&first).unwrap(),
        first_bytes,
        "the first rescue is untouched"
    );
    assert_gallery_links(&ws, &second);
}

#[test]
fn destinations_with_the_same_folder_name_rescue_into_different_folders() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let tmp = ws.join("tmp");
    blocked(&ws, "a/out");
    blocked(&ws, "b/out");
    let (_, from_a) = run_blocked(&ws, &server, "a/out", &tmp);
    let (_, from_b) = run_blocked(&ws, &server, "b/out", &tmp);
    let root = tmp.join("genimg-rescue");
    for kept in [&from_a, &from_b] {
        let folder = kept.parent().unwrap();
        assert_eq!(folder.parent().unwrap(), root, "{}", kept.display());
        let name = folder.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("out-"),
            "named after the destination: {name}"
        );
        assert_eq!(kept.file_name().unwrap(), "image_01_hd.png");
    }
    assert_ne!(from_a.parent(), from_b.parent());
    let (from_a, from_b) = (
        std::fs::read(&from_a).unwrap(),
        std::fs::read(&from_b).unwrap(),
    );
    assert!(sent_from(&server, 0, &from_a) && sent_from(&server, 1, &from_b));
    assert_ne!(from_a, from_b);
}

/// Every file under `dir`, as paths relative to it, sorted.
fn walk(dir: &Path) -> Vec<String> {
    fn visit(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                visit(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap();
                out.push(rel.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    visit(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn with_no_room_anywhere_the_failure_says_so_and_leaves_nothing_behind() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    blocked(&ws, "out");
    // Every rescue root lies under a regular file: no folder can be made there.
    let not_a_dir = ws.write("not-a-dir", "a file");
    let run = genimg(&ws, Some(&server))
        .env("TMPDIR", &not_a_dir)
        .env("XDG_CACHE_HOME", &not_a_dir)
        .env("HOME", &not_a_dir)
        // The config file is looked for under HOME too; here, in a folder with none.
        .env("XDG_CONFIG_HOME", ws.join("config"))
        .args(["a cat", "-o", "out", "-n", "1"])
        .run();
    assert_code(&run, 3);
    assert_eq!(server.image_requests().len(), 1);
    assert!(
        run.stderr.contains(
            "image_01_hd.png: the image arrived but could not be saved: Is a directory (os \
             error 21); it could be kept nowhere else either: no room anywhere ("
        ),
        "{}",
        run.stderr
    );
    for root in ["genimg-rescue", "genimg/rescue"] {
        assert!(
            run.stderr
                .contains(&format!("{}/{root}/out-", not_a_dir.display())),
            "each root tried is named: {}",
            run.stderr
        );
    }
    let records = ws.manifest("out");
    let lost = record(&records, "image_01_hd.png");
    assert_eq!(lost["status"], "failed");
    assert!(lost.get("rescued").is_none(), "{lost}");
    assert!(
        lost["error"].as_str().unwrap().contains("no room anywhere"),
        "{lost}"
    );

    // No file anywhere under an image name, no temporary file, and the directory in the
    // way still empty.
    let everything = walk(ws.path());
    let images: Vec<&String> = everything.iter().filter(|f| f.contains("image_")).collect();
    assert!(images.is_empty(), "{everything:?}");
    assert!(
        everything.iter().all(|f| !f.ends_with(".tmp")),
        "{everything:?}"
    );
    assert_eq!(std::fs::read(&not_a_dir).unwrap(), b"a file");
    assert_eq!(ws.files("out/image_01_hd.png"), Vec::<String>::new());
}

/// A password in a base URL (a proxy's) is a secret too: a dry run shows the endpoint
/// without it.
#[test]
fn credentials_in_a_base_url_show_nowhere() {
    let ws = Workspace::new();
    for verbosity in [&[][..], &["-v"][..]] {
        let run = genimg(&ws, None)
            .args(["a cat", "-o", "out", "--dry-run"])
            .args(["--base-url", "https://user:pa55-secret@proxy.example/v1"])
            .args(verbosity)
            .run();
        assert_code(&run, 0);
        assert!(
            run.stdout
                .contains("Endpoint POST https://proxy.example/v1/images/generations"),
            "{}",
            run.stdout
        );
        assert!(
            !run.all_output().contains("pa55-secret"),
            "{}",
            run.all_output()
        );
    }
    // Nor in the error that refuses such a URL.
    let refused = genimg(&ws, None)
        .args(["a cat", "-o", "out", "--dry-run"])
        .args([
            "--base-url",
            "https://user:pa55-secret@proxy.example/v1?k=1",
        ])
        .run();
    assert_code(&refused, 2);
    assert!(
        refused.stderr.contains("https://***@proxy.example/v1?k=1"),
        "{}",
        refused.stderr
    );
    assert!(!refused.all_output().contains("pa55-secret"));
}

#[test]
fn the_key_shows_nowhere_though_the_server_echoes_it_everywhere() {
    // A server that echoes the key back: in `x-request-id` and another header, in the
    // revised prompt, and in `usage` (a field, and a field's name) of a successful answer;
    // in `x-request-id` of an error the run retries, and of one it does not.
    let success = |nth: usize| {
        let body = json!({
            "created": 1,
            "data": [{
                "b64_json": STANDARD.encode(images::png(nth as u64 + 1)),
                "revised_prompt": format!("a cat, drawn for {KEY}"),
            }],
            "usage": {
                "input_tokens": 50, "output_tokens": 7024, "total_tokens": 7074,
                "note": format!("billed to {KEY}"),
                KEY: {"nested": [KEY]},
            },
        });
        Action::Raw {
            status: 200,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-request-id".into(), format!("req_{KEY}")),
                ("x-echo".into(), KEY.into()),
                ("openai-organization".into(), format!("org {KEY}")),
            ],
            body: body.to_string(),
        }
    };
    let error = |status: u16, code: &str| Action::Raw {
        status,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-request-id".into(), format!("req_{KEY}")),
            ("retry-after-ms".into(), "10".into()),
        ],
        body: json!({"error": {"message": "no", "type": "invalid_request_error", "code": code}})
            .to_string(),
    };
    let runs: [(&[&str], Option<&str>); 3] = [
        (&["--json"], None),
        (&["-vv"], None),
        // Every layer's log, the HTTP stack's included.
        (&[], Some("trace")),
    ];
    for (flags, log) in runs {
        let good_asked = Arc::new(AtomicUsize::new(0));
        let server = scripted(move |i| {
            if i.prompt.contains("dog") {
                error(400, "invalid_value")
            } else if good_asked.fetch_add(1, Ordering::SeqCst) == 0 {
                error(500, "server_error")
            } else {
                success(i.nth)
            }
        });
        let ws = Workspace::new();
        ws.write("p.txt", "# cat\na cat\n# dog\na dog\n");
        let mut cmd = genimg(&ws, Some(&server));
        cmd.args(["--input", "p.txt", "-o", "out", "-j", "1"])
            .args(flags);
        if let Some(log) = log {
            cmd.env("GENIMG_LOG", log);
        }
        let run = cmd.run();
        assert_code(&run, 1);
        assert_eq!(ws.files("out"), ["image.cat.01.hd.png"], "{}", run.stderr);
        let manifest = String::from_utf8(ws.read("out/genimg.jsonl")).unwrap();
        let gallery = String::from_utf8(ws.read("out/index.html")).unwrap();
        // What was echoed shows, with the key taken out.
        assert!(
            manifest.contains("a cat, drawn for [redacted]"),
            "{manifest}"
        );
        assert!(manifest.contains("req_[redacted]"), "{manifest}");
        assert!(gallery.contains("a cat, drawn for [redacted]"), "{gallery}");
        if flags == ["--json"] {
            assert!(run.stdout.contains("req_[redacted]"), "{}", run.stdout);
        } else {
            assert!(run.stderr.contains("req_[redacted]"), "{}", run.stderr);
        }
        for (what, text) in [
            ("stdout", &run.stdout),
            ("stderr", &run.stderr),
            ("manifest", &manifest),
            ("gallery", &gallery),
        ] {
            assert!(
                !text.contains(&KEY[..12]),
                "{what} with {flags:?} {log:?} holds a piece of the key:\n{text}"
            );
        }
    }
}

/// A manifest line exactly as release 0.1 wrote it for `genimg "a cat" -o out`, with
/// `request_hash` `hash`.
fn release_0_1_line(hash: &str) -> String {
    format!(
        concat!(
            r#"{{"file":"image_01_hd.png","prompt":null,"prompt_number":1,"index":1,"#,
            r#""prompt_text":"a cat","model":"gpt-image-2","operation":"images/generations","#,
            r#""request":{{"model":"gpt-image-2","n":1,"quality":"high","size":"1024x1024"}},"#,
            r#""references":[],"request_hash":"{}","status":"made","error":null,"#,
            r#""attempts":1,"revised_prompt":null,"usage":{{"input_tokens":50,"#,
            r#""output_tokens":7024,"total_tokens":7074,"input_tokens_details":"#,
            r#"{{"text_tokens":50,"image_tokens":0}}}},"request_id":"req_abc123","#,
            r#""sha256":"{}","bytes":{},"cost_usd":0.21097,"#,
            r#""started":"2026-11-20T10:00:00.000Z","finished":"2026-11-20T10:00:41.250Z"}}"#,
            "\n"
        ),
        hash,
        sha256_hex(&images::png(1)),
        images::png(1).len()
    )
}

/// A destination as release 0.1 left it after `genimg "a cat" -o out`, its record hashed
/// `hash`.
fn release_0_1_destination(hash: &str) -> Workspace {
    let ws = Workspace::new();
    ws.write("out/image_01_hd.png", images::png(1));
    ws.write("out/genimg.jsonl", release_0_1_line(hash));
    ws
}

#[test]
fn a_destination_written_by_release_0_1_is_current_after_the_upgrade() {
    let server = FakeServer::start();
    let ws = release_0_1_destination(
        "sha256:05b1f2e966994e190d952e46bc62d54204f0714ae0de3114792c9f31686b7f7c",
    );
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "-o", "out"])
        .run();
    assert_code(&run, 0);
    assert_eq!(server.image_requests().len(), 0, "nothing bought again");
    assert_summary(&run, &[("made", "0"), ("skipped", "1")]);
    assert_eq!(summary_row(&run, "stale"), None, "{}", run.stderr);
    assert!(!run.stderr.contains("Stale"), "{}", run.stderr);
    assert_eq!(ws.read("out/image_01_hd.png"), images::png(1));

    // The same line with another hash, as 0.1 wrote for another prompt: the match above is
    // the hash's, not any line's. That image is another prompt's: kept as it is, and this
    // prompt's image takes the next free number.
    let other = release_0_1_destination(
        "sha256:7cee16a3874c4d6b2dffe582e069600ad6ed8cab29f66776b597c73366c3c138",
    );
    let run = genimg(&other, Some(&server))
        .args(["a cat", "-o", "out"])
        .run();
    assert_code(&run, 0);
    assert_eq!(server.image_requests().len(), 1, "this prompt's own image");
    assert_summary(&run, &[("made", "1")]);
    assert_eq!(
        other.read("out/image_01_hd.png"),
        images::png(1),
        "untouched"
    );
    assert!(other.join("out/image_02_hd.png").exists());
}

#[test]
fn an_image_whose_link_fails_for_good_still_counts_what_its_answer_billed() {
    // The answer billed the image and named a link; the link had expired.
    let server = FakeServer::with(Options {
        url_answers: true,
        links_expire: true,
        ..Options::default()
    });
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a lighthouse", "-o", "out"])
        .run();
    assert_code(&run, 1);
    assert_eq!(
        server.image_requests().len(),
        1,
        "a dead link is not bought again"
    );
    let records = ws.manifest("out");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["status"], "failed");
    assert_cost(&records[0], BILLED);
    assert_summary(&run, &[("made", "0"), ("failed", "1"), ("cost", "$0.211")]);
}

#[test]
fn an_unusable_answer_of_a_model_priced_per_image_counts_at_its_price() {
    // gpt-image-1.5 is priced per image ($0.009 at low quality), not by token: its billed
    // but unusable answers count at the table's price, and --max-cost stops them.
    let server = scripted(|_| answer("!!not base64!!", Some(usage())));
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "-o", "out", "-n", "5", "-j", "1"])
        .args([
            "-m",
            "gpt-image-1.5",
            "--quality",
            "low",
            "--max-cost",
            "0.05",
        ])
        .run();
    assert_code(&run, 4);
    // Each attempt bills $0.009: no more than five fit in $0.05 (without the count, all 25
    // attempts of the 5 images went, and none was counted).
    let requests = server.image_requests().len();
    assert!(
        (3..=5).contains(&requests),
        "{requests} requests\n{}",
        run.stderr
    );
    let records = ws.manifest("out");
    let billed: f64 = records
        .iter()
        .map(|r| r["cost_usd"].as_f64().unwrap())
        .sum();
    assert!(
        (billed - requests as f64 * 0.009).abs() < 1e-9,
        "{billed} for {requests} requests: {records:#?}"
    );
    let shown = format!("${:.3}", requests as f64 * 0.009);
    assert_summary(&run, &[("made", "0"), ("cost", shown.as_str())]);
}

#[test]
fn an_answer_whose_link_is_no_url_still_counts_what_it_billed() {
    let server = scripted(|i| {
        if i.nth == 0 {
            let body = json!({"created": 1, "data": [{"url": "http://"}], "usage": usage()});
            Action::Raw {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: body.to_string(),
            }
        } else {
            Action::Answer
        }
    });
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "-o", "out"])
        .run();
    assert_code(&run, 0);
    assert_eq!(server.image_requests().len(), 2);
    let records = ws.manifest("out");
    assert_eq!(records[0]["attempts"], 2);
    assert_cost(&records[0], 2.0 * BILLED);
    assert_summary(&run, &[("made", "1"), ("cost", "$0.422")]);
}

#[test]
fn an_image_kept_in_another_format_is_found_again_when_its_number_widens() {
    let server = FakeServer::with(Options {
        script: Some(Arc::new(|_: &Incoming| Action::WrongFormat)),
        ..Options::default()
    });
    let ws = Workspace::new();
    let flags = ["a cat", "-o", "out", "--format", "webp", "--quality", "low"];
    let first = genimg(&ws, Some(&server)).args(flags).run();
    assert_code(&first, 0);
    assert!(ws.join("out/image_01_low.png").is_file());

    // A later run names it as it is, in --json and in the dry run.
    let again = genimg(&ws, Some(&server)).args(flags).arg("--json").run();
    assert_code(&again, 0);
    let doc: Value = serde_json::from_str(&again.stdout).unwrap();
    let image = &doc["images"][0];
    assert_eq!(image["status"], "skipped");
    assert_eq!(image["file"], "image_01_low.png");
    assert!(ws.join(image["path"].as_str().unwrap()).is_file());
    // -v: the dry run lists each image.
    let dry = genimg(&ws, None)
        .args(flags)
        .args(["--dry-run", "-v"])
        .run();
    assert!(
        dry.stdout
            .contains("already there, skipped (kept as image_01_low.png)"),
        "{}",
        dry.stdout
    );

    // Raising the count past 99 widens the numbers: the first image is still known.
    let more = genimg(&ws, Some(&server))
        .args(flags)
        .args(["-n", "100", "-j", "8"])
        .run();
    assert_code(&more, 0);
    assert_eq!(
        server.image_requests().len(),
        100,
        "the first is not bought again"
    );
    assert!(!ws.join("out/image_001_low.png").exists());
}

#[test]
fn from_scratch_moves_the_images_kept_under_other_names_too() {
    let server = scripted(|i| {
        if i.prompt.contains("junk") {
            answer(&STANDARD.encode(b"no image at all"), None)
        } else {
            Action::Answer
        }
    });
    let ws = Workspace::new();
    let run = |extra: &[&str]| {
        genimg(&ws, Some(&server))
            .args(["junk", "-o", "out"])
            .args(extra)
            .run()
    };
    assert_code(&run(&[]), 0);
    assert_code(&run(&["--overwrite"]), 0);
    let kept = ws.join("out/.genimg/unrecognised");
    assert_eq!(
        ws.all_files("out/.genimg/unrecognised"),
        ["image_01_hd.bin", "image_01_hd~2.bin"]
    );
    let old_records = ws.manifest("out");
    let scratch = run(&["--from-scratch"]);
    assert_code(&scratch, 0);
    assert!(
        scratch.stderr.contains("moved 2 earlier image(s)"),
        "{}",
        scratch.stderr
    );
    // The new answer is junk again, so one file is there: the new one.
    assert_eq!(
        ws.all_files("out/.genimg/unrecognised"),
        ["image_01_hd.bin"]
    );
    assert!(kept.is_dir());
    let records = ws.manifest("out");
    assert_eq!(records.len(), 1, "{records:#?}");
    // The two kept before are in the trash, at the same place in it, with their records.
    let trash = ws.only_trash("out");
    assert_eq!(
        ws.all_files(&format!("{trash}/.genimg/unrecognised")),
        ["image_01_hd.bin", "image_01_hd~2.bin"]
    );
    for name in ["image_01_hd.bin", "image_01_hd~2.bin"] {
        let bytes = ws.read(&format!("{trash}/.genimg/unrecognised/{name}"));
        assert_eq!(bytes, b"no image at all");
    }
    assert_eq!(ws.manifest(&trash), old_records);
}
