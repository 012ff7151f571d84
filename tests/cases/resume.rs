//! Resuming: the manifest, stale images, `--overwrite`, `--from-scratch`, and a run killed
//! with `kill -9`.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

#[test]
fn the_manifest_lists_every_image_with_its_request_and_sha256() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", "# fox\na red fox\n# owl\nan owl at night\n");
    let run = genimg(&ws, Some(&server))
        .args(["--input", "p.txt", "-o", "out", "-n", "2", "--low-res"])
        .run();
    assert_code(&run, 0);
    let records = ws.manifest("out");
    assert_eq!(records.len(), 4);
    let mut hashes = Vec::new();
    for file in ws.files("out") {
        let r = record(&records, &file);
        let bytes = ws.read(&format!("out/{file}"));
        assert_eq!(r["sha256"], sha256_hex(&bytes), "{file}");
        assert_eq!(r["bytes"], bytes.len() as u64);
        assert_eq!(r["status"], "made");
        assert_eq!(r["attempts"], 1);
        assert_eq!(r["model"], "gpt-image-2");
        assert_eq!(r["operation"], "images/generations");
        assert_eq!(r["request"]["quality"], "medium");
        assert_eq!(r["request"]["size"], "1024x1024");
        assert_eq!(r["request"]["n"], 1);
        assert!(
            r["request"].get("prompt").is_none(),
            "the prompt is prompt_text"
        );
        assert!(r["request_id"].as_str().unwrap().starts_with("req_fake_"));
        assert_eq!(r["usage"]["output_tokens"], 7024);
        assert!(r["error"].is_null());
        for time in ["started", "finished"] {
            let t = r[time].as_str().unwrap();
            assert!(t.starts_with("20") && t.ends_with('Z'), "{time}: {t}");
        }
        hashes.push((
            r["prompt"].as_str().unwrap().to_owned(),
            r["request_hash"].clone(),
        ));
    }
    let fox = record(&records, "image.fox.02.standard.png");
    assert_eq!(fox["prompt"], "fox");
    assert_eq!(fox["index"], 2);
    assert_eq!(fox["prompt_text"], "a red fox");
    // One hash per prompt: the same request for each of its images.
    hashes.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(hashes[0].1, hashes[1].1);
    assert_ne!(hashes[1].1, hashes[2].1);
}

#[test]
fn a_changed_prompt_leaves_its_images_stale_and_says_how_to_remake_them() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", "# fox\na red fox\n# owl\nan owl\n");
    let args = ["--input", "p.txt", "-o", "out", "-n", "2"];
    assert_code(&genimg(&ws, Some(&server)).args(args).run(), 0);
    let owl_before = ws.read("out/image.owl.01.hd.png");

    ws.write("p.txt", "# fox\na red fox\n# owl\nan owl in the snow\n");
    // -v: the dry run lists each image.
    let dry = genimg(&ws, Some(&server))
        .args(args)
        .args(["--dry-run", "-v"])
        .run();
    assert_code(&dry, 0);
    assert!(
        dry.stdout
            .contains("image.owl.01.hd.png  STALE (the request changed)"),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.contains("(2 of them stale)"), "{}", dry.stdout);
    // Without -v, one line per prompt says it, and the hint is given once.
    let plain = genimg(&ws, Some(&server)).args(args).arg("--dry-run").run();
    let owl = plain
        .stdout
        .lines()
        .find(|l| l.starts_with("  owl "))
        .unwrap_or_else(|| panic!("{}", plain.stdout));
    assert!(owl.contains("2 stale, kept"), "{owl}");
    assert_eq!(plain.stdout.matches("--remake-stale").count(), 1);

    let again = genimg(&ws, Some(&server)).args(args).run();
    assert_code(&again, 0);
    assert_eq!(
        server.image_requests().len(),
        4,
        "stale images are not remade by default"
    );
    assert!(
        again.stderr.contains("Stale (2): kept, but made from a different prompt or options than now; --remake-stale makes them again:\n  image.owl.01.hd.png\n  image.owl.02.hd.png"),
        "{}",
        again.stderr
    );
    assert_eq!(ws.read("out/image.owl.01.hd.png"), owl_before);

    // --remake-stale remakes the stale ones, and only them.
    let fox_before = ws.read("out/image.fox.01.hd.png");
    let remade = genimg(&ws, Some(&server))
        .args(args)
        .arg("--remake-stale")
        .run();
    assert_code(&remade, 0);
    assert_eq!(
        server.prompts_of(4..),
        ["an owl in the snow", "an owl in the snow"]
    );
    assert_summary(&remade, &[("made", "2"), ("skipped", "2")]);
    assert_ne!(ws.read("out/image.owl.01.hd.png"), owl_before);
    assert_eq!(ws.read("out/image.fox.01.hd.png"), fox_before);
    let owl_before = ws.read("out/image.owl.01.hd.png");

    // A model change makes every image stale too.
    let other_model = genimg(&ws, Some(&server))
        .args(args)
        .args(["--model", "gpt-image-1.5", "--dry-run"])
        .run();
    assert!(
        other_model.stdout.contains("(4 of them stale)"),
        "{}",
        other_model.stdout
    );

    let overwrite = genimg(&ws, Some(&server))
        .args(args)
        .arg("--overwrite")
        .run();
    assert_code(&overwrite, 0);
    assert_eq!(
        server.image_requests().len(),
        10,
        "--overwrite remakes stale and current images"
    );
    assert_summary(&overwrite, &[("made", "4")]);
    assert_ne!(ws.read("out/image.owl.01.hd.png"), owl_before);
    assert_images_match(&ws, "out", &server);

    let settled = genimg(&ws, Some(&server)).args(args).run();
    assert_code(&settled, 0);
    assert_eq!(server.image_requests().len(), 10);
    assert!(!settled.stderr.contains("Stale"), "{}", settled.stderr);
}

#[test]
fn images_made_before_the_manifest_are_kept_as_current() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("out/image_01_hd.png", images::png(99));
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "-o", "out", "-n", "2"])
        .run();
    assert_code(&run, 0);
    assert_eq!(server.image_requests().len(), 1);
    assert!(!run.stderr.contains("Stale"), "{}", run.stderr);
}

#[test]
fn from_scratch_resets_the_manifest_for_these_prompts_only() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", "# fox\na red fox\n");
    ws.write("q.txt", "# owl\nan owl\n");
    for file in ["p.txt", "q.txt"] {
        let run = genimg(&ws, Some(&server))
            .args(["--input", file, "-o", "out", "-n", "2"])
            .run();
        assert_code(&run, 0);
    }
    assert_eq!(ws.manifest("out").len(), 4);
    let old_records: Vec<Value> = ws
        .manifest("out")
        .into_iter()
        .filter(|r| r["prompt"] == "fox")
        .collect();

    let run = genimg(&ws, Some(&server))
        .args(["--input", "p.txt", "-o", "out", "-n", "2", "--from_scratch"])
        .run();
    assert_code(&run, 0);
    let trash = ws.only_trash("out");
    assert!(
        run.stderr.contains(&format!(
            "--from-scratch: moved 2 earlier image(s) from out, and 2 record(s) from its \
             genimg.jsonl, to {trash}/."
        )),
        "{}",
        run.stderr
    );
    assert_eq!(server.image_requests().len(), 6);
    // The records that left the manifest are the trash's, as they were.
    assert_eq!(ws.manifest(&trash), old_records);
    for r in &old_records {
        let bytes = ws.read(&format!("{trash}/{}", r["file"].as_str().unwrap()));
        assert_eq!(
            r["sha256"],
            sha256_hex(&bytes),
            "the old image, byte for byte"
        );
    }
    let records = ws.manifest("out");
    let fox: Vec<&Value> = records.iter().filter(|r| r["prompt"] == "fox").collect();
    let owl: Vec<&Value> = records.iter().filter(|r| r["prompt"] == "owl").collect();
    assert_eq!(fox.len(), 2, "only the new records of the remade images");
    assert_eq!(owl.len(), 2, "another prompt file's records stay");
    for r in fox {
        let bytes = ws.read(&format!("out/{}", r["file"].as_str().unwrap()));
        assert_eq!(r["sha256"], sha256_hex(&bytes));
    }
}

#[test]
fn a_torn_manifest_line_does_not_stop_a_resume() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let args = ["a cat", "-o", "out", "-n", "2"];
    assert_code(&genimg(&ws, Some(&server)).args(args).run(), 0);
    // As a run killed while appending would leave it.
    let mut text = String::from_utf8(ws.read("out/genimg.jsonl")).unwrap();
    text.push_str("{\"file\": \"image_03_hd.png\", \"prompt\": nu");
    ws.write("out/genimg.jsonl", text);
    std::fs::remove_file(ws.join("out/image_02_hd.png")).unwrap();

    let run = genimg(&ws, Some(&server))
        .args(["a cat", "-o", "out", "-n", "3"])
        .run();
    assert_code(&run, 0);
    assert_eq!(
        server.image_requests().len(),
        4,
        "image 2 again, and image 3"
    );
    let text = String::from_utf8(ws.read("out/genimg.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        serde_json::from_str::<Value>(lines[2]).is_err(),
        "the torn line stays as it was"
    );
    for line in &lines[3..] {
        let r: Value = serde_json::from_str(line).expect("new records start on a fresh line");
        assert_eq!(r["status"], "made");
    }
}

#[cfg(unix)]
#[test]
fn after_kill_9_a_rerun_requests_only_the_missing_images() {
    let server = FakeServer::with(Options {
        latency: Duration::from_millis(150),
        ..Options::default()
    });
    let ws = Workspace::new();
    let args = ["a cat", "-o", "out", "-n", "12", "-j", "3"];
    let mut child = genimg(&ws, Some(&server)).args(args).start();
    let deadline = Instant::now() + Duration::from_secs(20);
    let images = |ws: &Workspace| -> Vec<String> {
        ws.files("out")
            .into_iter()
            .filter(|f| !f.ends_with(".tmp"))
            .collect()
    };
    while images(&ws).len() < 4 {
        assert!(Instant::now() < deadline, "the run made too few images");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    child.wait().unwrap();

    // Whatever the moment: only whole images under final names (a temporary file may be
    // left under its own name).
    let kept = images(&ws);
    assert!(kept.len() >= 4 && kept.len() < 12, "{kept:?}");
    assert!(
        kept.iter()
            .all(|f| f.starts_with("image_") && f.ends_with("_hd.png")),
        "{kept:?}"
    );
    assert_images_match(&ws, "out", &server);

    let fresh = FakeServer::start();
    let run = genimg(&ws, Some(&fresh)).args(args).run();
    assert_code(&run, 0);
    assert_eq!(
        fresh.image_requests().len(),
        12 - kept.len(),
        "only the missing images are requested"
    );
    assert_eq!(ws.files("out").len(), 12);
    let all: Vec<String> = ws.all_files("out");
    assert!(
        all.iter().all(|f| !f.ends_with(".tmp")),
        "no temporary file is left: {all:?}"
    );
    let again = FakeServer::start();
    assert_code(&genimg(&ws, Some(&again)).args(args).run(), 0);
    assert_eq!(again.image_requests().len(), 0, "the set is complete");
}

#[test]
fn the_key_appears_in_no_output_log_or_manifest_at_any_verbosity() {
    let server = FakeServer::with(Options {
        // A retry and a refusal, so every kind of line gets written.
        script: Some(std::sync::Arc::new(|i: &Incoming| {
            if i.nth == 0 {
                Action::error(500, "server_error", "oops").with_header("retry-after-ms", "10")
            } else {
                Action::Answer
            }
        })),
        ..Options::default()
    });
    let runs: [(&[&str], Option<&str>); 5] = [
        (&["-q"], None),
        (&[], None),
        (&["-v"], None),
        (&["-vv"], None),
        (&[], Some("trace")),
    ];
    for (flags, log) in runs {
        let ws = Workspace::new();
        ws.write("p.txt", "# ok\na cat\n# nope\nFORBIDDEN thing\n");
        let mut cmd = genimg(&ws, Some(&server));
        cmd.args(["--input", "p.txt", "-o", "out"]).args(flags);
        if let Some(log) = log {
            cmd.env("GENIMG_LOG", log);
        }
        let run = cmd.run();
        assert_code(&run, 1);
        let manifest = String::from_utf8(ws.read("out/genimg.jsonl")).unwrap();
        for (what, text) in [("output", run.all_output()), ("manifest", manifest)] {
            assert!(!text.contains(KEY), "{what} at {flags:?} {log:?}:\n{text}");
            assert!(!text.contains(&KEY[8..]), "{what} at {flags:?} {log:?}");
        }
    }
}

#[test]
fn raising_the_count_past_99_keeps_the_images_already_made() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a fox", "-o", "out", "-n", "2"])
        .run();
    assert_code(&run, 0);
    let first = ws.read("out/image_01_hd.png");

    // Numbers get a third digit from a count of 100: the two made stay as they are.
    let run = genimg(&ws, Some(&server))
        .args(["a fox", "-o", "out", "-n", "100", "-j", "16"])
        .run();
    assert_code(&run, 0);
    assert_eq!(server.image_requests().len(), 100, "98 more, not 100 more");
    let files = ws.files("out");
    assert_eq!(files.len(), 100, "{files:?}");
    assert!(files.contains(&"image_01_hd.png".to_owned()));
    assert!(files.contains(&"image_003_hd.png".to_owned()));
    assert!(!files.contains(&"image_001_hd.png".to_owned()));
    assert_eq!(ws.read("out/image_01_hd.png"), first);
    assert_summary(&run, &[("made", "98"), ("skipped", "2")]);
}

/// In a folder made before the manifest (the seed script's), images with no record count as
/// the prompt's own, as the seed's re-runs always did: kept, and said, with the way to make
/// a different prompt's images beside them.
#[test]
fn images_with_no_record_are_taken_as_the_prompts_own_and_said() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("seed/image_01_hd.png", images::png(1));
    ws.write("seed/image_02_hd.png", images::png(2));
    let run = genimg(&ws, Some(&server))
        .args(["a red fox in snow", "-o", "seed", "-n", "2"])
        .run();
    assert_code(&run, 0);
    assert!(server.image_requests().is_empty());
    assert!(
        run.stderr.contains(
            "image_01_hd.png and 1 more in seed has no record in genimg.jsonl (made before it): \
             taken as this prompt's image and kept. If it is another prompt's, give this one a \
             name of its own: --name NAME"
        ),
        "{}",
        run.stderr
    );
    // The dry run says it too.
    let dry = genimg(&ws, None)
        .args(["a red fox in snow", "-o", "seed", "-n", "2", "--dry-run"])
        .run();
    assert!(
        dry.stderr.contains("has no record in genimg.jsonl"),
        "{}",
        dry.stderr
    );
    // --from-scratch moves them instead: nothing says they are kept.
    let scratch = genimg(&ws, None)
        .args(["a red fox in snow", "-o", "seed", "-n", "2", "--dry-run"])
        .arg("--from-scratch")
        .run();
    assert!(!scratch.stderr.contains("no record"), "{}", scratch.stderr);
    assert!(
        scratch
            .stdout
            .contains("--from-scratch would first move 2 file(s)"),
        "{}",
        scratch.stdout
    );
    // Named, the prompt makes its own beside them.
    let named = genimg(&ws, Some(&server))
        .args([
            "a red fox in snow",
            "-o",
            "seed",
            "-n",
            "2",
            "--name",
            "fox",
        ])
        .run();
    assert_code(&named, 0);
    assert!(!named.stderr.contains("no record"), "{}", named.stderr);
    assert_eq!(server.image_requests().len(), 2);
    assert_eq!(ws.read("seed/image_01_hd.png"), images::png(1));
    assert!(ws.join("seed/image.fox.02.hd.png").is_file());
}

/// A second one-off prompt into the same folder never takes the first one's names: its
/// images get the next free numbers, a re-run of either resumes its own, `--overwrite`
/// remakes only its own, and `--name` names a one-off prompt as a file's prompt is named.
#[test]
fn one_off_prompts_never_collide() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let make = |args: &[&str]| genimg(&ws, Some(&server)).args(args).run();
    let astronaut = ["a watercolor astronaut", "-o", "refs", "-n", "2"];
    let fox = ["a red fox in snow", "-o", "refs", "-n", "2"];
    assert_code(&make(&astronaut), 0);
    let before = (
        ws.read("refs/image_01_hd.png"),
        ws.read("refs/image_02_hd.png"),
    );
    let run = make(&fox);
    assert_code(&run, 0);
    assert!(!run.stderr.contains("stale"), "{}", run.stderr);
    assert_eq!(
        ws.files("refs"),
        [
            "image_01_hd.png",
            "image_02_hd.png",
            "image_03_hd.png",
            "image_04_hd.png"
        ]
    );
    assert_eq!(
        (
            ws.read("refs/image_01_hd.png"),
            ws.read("refs/image_02_hd.png")
        ),
        before,
        "the astronaut is untouched"
    );
    assert_eq!(server.image_requests().len(), 4);

    // Each re-run resumes its own images.
    assert_code(&make(&fox), 0);
    assert_code(&make(&astronaut), 0);
    assert_eq!(server.image_requests().len(), 4, "nothing bought again");

    // --overwrite remakes the fox's own, and only them.
    let mut overwrite = fox.to_vec();
    overwrite.push("--overwrite");
    assert_code(&make(&overwrite), 0);
    let remade: Vec<String> = server.prompts_of(4..);
    assert_eq!(remade, ["a red fox in snow", "a red fox in snow"]);
    assert_eq!(
        (
            ws.read("refs/image_01_hd.png"),
            ws.read("refs/image_02_hd.png")
        ),
        before
    );

    // A name of its own.
    let named = make(&["a fox at dusk", "-o", "refs", "--name", "dusk"]);
    assert_code(&named, 0);
    assert!(
        ws.files("refs")
            .contains(&"image.dusk.01.hd.png".to_owned())
    );
    let bad = make(&["a fox", "-o", "refs", "--name", "a fox"]);
    assert_code(&bad, 2);
    assert!(bad.stderr.contains("--name a fox"), "{}", bad.stderr);
}

/// `--only` runs part of a prompt file: the prompts whose names match, each keeping its
/// number and names; `--from-scratch` with it removes only theirs; a pattern that matches
/// nothing is an error.
#[test]
fn only_runs_the_prompts_whose_names_match() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write(
        "p.txt",
        "# title_hero\na hero\n\n# title_logo\na logo\n\n# diagram_flow\na flow chart\n",
    );
    let run = genimg(&ws, Some(&server))
        .args(["--input", "p.txt", "-o", "out", "--only", "title_*"])
        .run();
    assert_code(&run, 0);
    assert_eq!(
        ws.files("out"),
        ["image.title_hero.01.hd.png", "image.title_logo.01.hd.png"]
    );
    let both = genimg(&ws, Some(&server))
        .args([
            "--input",
            "p.txt",
            "-o",
            "out",
            "--only",
            "diagram_*,title_hero",
        ])
        .args(["--naming", "legacy"])
        .run();
    assert_code(&both, 0);
    assert!(
        ws.files("out")
            .contains(&"desc_03_image_01_hd.png".to_owned()),
        "the prompt keeps its number in the file: {:?}",
        ws.files("out")
    );
    assert!(
        !ws.files("out")
            .contains(&"desc_02_image_01_hd.png".to_owned())
    );

    let scratch = genimg(&ws, Some(&server))
        .args(["--input", "p.txt", "-o", "out", "--only", "title_logo"])
        .arg("--from-scratch")
        .run();
    assert_code(&scratch, 0);
    assert!(
        ws.files("out")
            .contains(&"image.title_hero.01.hd.png".to_owned())
    );

    let before = server.image_requests().len();
    let typo = genimg(&ws, Some(&server))
        .args(["--input", "p.txt", "-o", "out", "--only", "titel_*"])
        .run();
    assert_code(&typo, 2);
    assert!(typo.stderr.contains("--only titel_*"), "{}", typo.stderr);
    let one_off = genimg(&ws, Some(&server))
        .args(["a fox", "-o", "out", "--only", "title_*"])
        .run();
    assert_code(&one_off, 2);
    assert!(
        one_off.stderr.contains("picks prompts of a prompt file"),
        "{}",
        one_off.stderr
    );
    assert_eq!(server.image_requests().len(), before);
}

/// The one-off rule holds against every way a name can be held: `--from-scratch` removes
/// only the prompt's own images; its own numbers are reused when others are gone; an image
/// kept under another extension, an image pending in a batch and a prompt file's image
/// under the same `--name` all hold their numbers.
#[test]
fn one_off_prompts_never_touch_another_prompts_images() {
    let server = FakeServer::with(Options {
        script: Some(std::sync::Arc::new(|i: &Incoming| {
            if i.prompt.contains("webp astronaut") {
                Action::WrongFormat
            } else {
                Action::Answer
            }
        })),
        ..Options::default()
    });
    let ws = Workspace::new();
    let make = |args: &[&str]| genimg(&ws, Some(&server)).args(args).run();
    assert_code(&make(&["an astronaut", "-o", "a", "-n", "2"]), 0);
    assert_code(&make(&["a red fox", "-o", "a", "-n", "2"]), 0);
    let astronaut = ws.read("a/image_01_hd.png");
    let old_fox = [ws.read("a/image_03_hd.png"), ws.read("a/image_04_hd.png")];
    // --from-scratch: the fox's own, and only them, go to the trash.
    let scratch = make(&["a red fox", "-o", "a", "-n", "2", "--from-scratch"]);
    assert_code(&scratch, 0);
    assert_eq!(
        ws.read("a/image_01_hd.png"),
        astronaut,
        "{}",
        scratch.stderr
    );
    assert_eq!(
        ws.files("a"),
        [
            "image_01_hd.png",
            "image_02_hd.png",
            "image_03_hd.png",
            "image_04_hd.png"
        ]
    );
    let trash = ws.only_trash("a");
    assert_eq!(
        ws.files(&trash),
        ["image_03_hd.png", "image_04_hd.png"],
        "the fox's own, and not the astronaut's"
    );
    assert_eq!(
        [
            ws.read(&format!("{trash}/image_03_hd.png")),
            ws.read(&format!("{trash}/image_04_hd.png"))
        ],
        old_fox
    );
    // Its own numbers are reused once the others are gone: nothing bought.
    std::fs::remove_file(ws.join("a/image_01_hd.png")).unwrap();
    std::fs::remove_file(ws.join("a/image_02_hd.png")).unwrap();
    let before = server.image_requests().len();
    assert_code(&make(&["a red fox", "-o", "a", "-n", "2"]), 0);
    assert_eq!(
        server.image_requests().len(),
        before,
        "the fox's own are there"
    );

    // An image kept under the extension of what arrived holds its number.
    assert_code(
        &make(&["a webp astronaut", "-o", "b", "--format", "webp"]),
        0,
    );
    assert_eq!(ws.files("b"), ["image_01_hd.png"]);
    assert_code(&make(&["a webp fox", "-o", "b", "--format", "webp"]), 0);
    assert_eq!(ws.files("b"), ["image_01_hd.png", "image_02_hd.webp"]);

    // An image pending in a batch holds its number.
    assert_code(
        &make(&["a pending astronaut", "-o", "c", "--batch", "--no-wait"]),
        0,
    );
    let fox = make(&["a red fox", "-o", "c"]);
    assert_code(&fox, 0);
    assert!(
        ws.files("c").contains(&"image_02_hd.png".to_owned()),
        "{}",
        fox.stderr
    );

    // A name given with --name holds against a prompt file's prompt of that name.
    ws.write("p.txt", "# hero\na hero\n");
    assert_code(&make(&["--input", "p.txt", "-o", "d"]), 0);
    let hero = ws.read("d/image.hero.01.hd.png");
    assert_code(&make(&["a cat", "-o", "d", "--name", "hero"]), 0);
    assert_eq!(ws.read("d/image.hero.01.hd.png"), hero);
    assert!(ws.files("d").contains(&"image.hero.02.hd.png".to_owned()));
}

/// `--only` with legacy names and `--from-scratch` removes only the picked prompt's images.
#[test]
fn only_with_from_scratch_removes_only_the_picked_prompts_images() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", "# a\nx\n\n# b\ny\n\n# c\nz\n");
    let args = ["--input", "p.txt", "-o", "out", "--naming", "legacy"];
    assert_code(&genimg(&ws, Some(&server)).args(args).run(), 0);
    let first = ws.read("out/desc_01_image_01_hd.png");
    let third = ws.read("out/desc_03_image_01_hd.png");
    let run = genimg(&ws, Some(&server))
        .args(args)
        .args(["--only", "c", "--from-scratch"])
        .run();
    assert_code(&run, 0);
    assert_eq!(
        ws.read("out/desc_01_image_01_hd.png"),
        first,
        "a's untouched"
    );
    assert_ne!(ws.read("out/desc_03_image_01_hd.png"), third, "c's remade");
    assert_eq!(server.prompts_of(3..), ["z"]);
}
