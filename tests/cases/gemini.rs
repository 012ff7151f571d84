//! Google's Gemini as a second provider, end to end against the fake Gemini service: routing,
//! keys, options, answers, refusals, errors, cost, resume, and prompt files that mix
//! providers.

use std::sync::Arc;

use serde_json::Value;

use crate::support::*;

const PRO: &str = "gemini-3-pro-image";

/// genimg pointed at both fakes (OpenAI's and Gemini's), in a new workspace.
fn both(server: &FakeServer, gemini: &FakeGemini) -> (Workspace, std::process::Command) {
    let ws = Workspace::new();
    let mut cmd = genimg(&ws, Some(server));
    with_gemini(&mut cmd, gemini);
    (ws, cmd)
}

/// genimg pointed at the Gemini fake only (OpenAI's goes nowhere).
fn gemini_only(gemini: &FakeGemini) -> (Workspace, std::process::Command) {
    let ws = Workspace::new();
    let mut cmd = genimg(&ws, None);
    with_gemini(&mut cmd, gemini);
    (ws, cmd)
}

/// How many generate requests the Gemini fake saw whose prompt holds `needle`.
fn sent(gemini: &FakeGemini, needle: &str) -> usize {
    gemini
        .generate_requests()
        .iter()
        .filter(|r| r.prompt().contains(needle))
        .count()
}

fn script(f: impl Fn(&GeminiIncoming) -> GeminiAction + Send + Sync + 'static) -> GeminiOptions {
    GeminiOptions {
        script: Some(Arc::new(f)),
        ..GeminiOptions::default()
    }
}

#[test]
fn a_live_run_writes_each_image_byte_for_byte_with_the_key_in_a_header() {
    let gemini = FakeGemini::start();
    let (ws, mut cmd) = gemini_only(&gemini);
    ws.write(
        "prompts.txt",
        "# lighthouse\na lighthouse at dusk\n\n# fox\na red fox in snow\n",
    );
    let run = cmd
        .args([
            "--input",
            "prompts.txt",
            "-o",
            "out",
            "-n",
            "2",
            "--model",
            PRO,
        ])
        .run();
    assert_code(&run, 0);
    let mut files = ws.files("out");
    files.retain(|f| f.ends_with(".png"));
    assert_eq!(
        files,
        [
            "image.fox.01.hd.png",
            "image.fox.02.hd.png",
            "image.lighthouse.01.hd.png",
            "image.lighthouse.02.hd.png"
        ]
    );
    assert_gemini_images_match(&ws, "out", &gemini);
    let requests = gemini.generate_requests();
    assert_eq!(requests.len(), 4, "one request per image: Gemini has no n");
    for r in &requests {
        assert_eq!(r.header("x-goog-api-key"), Some(GEMINI_KEY));
        assert_eq!(r.query_param("key"), None, "never in the URL");
        assert_eq!(r.model().as_deref(), Some(PRO));
        // HD is 2K.
        assert_eq!(
            r.image_config().and_then(|c| c.get("imageSize")),
            Some(&Value::from("2K"))
        );
    }
    let records = ws.manifest("out");
    assert_eq!(records.len(), 4);
    for r in &records {
        assert_eq!(r["provider"], "gemini");
        assert_eq!(r["model"], PRO);
        assert!(r["cost_usd"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["usage"].get("candidatesTokenCount").is_some(), "{r}");
    }
    // The gallery names the provider of each image.
    let gallery = String::from_utf8(ws.read("out/index.html")).unwrap();
    assert!(gallery.contains("Google gemini-3-pro-image"), "{gallery}");
}

#[test]
fn a_jpeg_labelled_png_is_kept_as_jpeg_and_a_thought_part_is_skipped() {
    let gemini = FakeGemini::with(script(|i| {
        if i.prompt.contains("jpeg") {
            GeminiAction::JpegAsPng
        } else {
            GeminiAction::Thought
        }
    }));
    let (ws, mut cmd) = gemini_only(&gemini);
    ws.write(
        "prompts.txt",
        "# photo\na jpeg photo of a pier\n\n# drawing\na drawing of a gull\n",
    );
    let run = cmd
        .args(["--input", "prompts.txt", "-o", "out", "--model", PRO])
        .run();
    assert_code(&run, 0);
    // Gemini picks its own format: a JPEG is no surprise to warn of.
    assert!(
        !run.all_output().contains("asked for"),
        "{}",
        run.all_output()
    );
    let files = ws.files("out");
    assert!(
        files.contains(&"image.photo.01.hd.jpeg".to_owned()),
        "{files:?}"
    );
    assert!(
        files.contains(&"image.drawing.01.hd.png".to_owned()),
        "{files:?}"
    );
    // Byte for byte what the fake sent, and never the thought part's image.
    assert_gemini_images_match(&ws, "out", &gemini);
    assert!(!gemini.thought_images().is_empty());
    assert_eq!(
        &ws.read("out/image.photo.01.hd.jpeg")[..3],
        b"\xff\xd8\xff",
        "JPEG bytes"
    );
    // A re-run finds both and sends nothing.
    let before = gemini.generate_requests().len();
    let mut again = genimg(&ws, None);
    with_gemini(&mut again, &gemini);
    let run = again
        .args(["--input", "prompts.txt", "-o", "out", "--model", PRO])
        .run();
    assert_code(&run, 0);
    assert_eq!(gemini.generate_requests().len(), before);
}

#[test]
fn both_kinds_of_refusal_are_sent_once_and_shown_with_their_reason() {
    let gemini = FakeGemini::with(script(|i| {
        if i.prompt.contains("blocked") {
            GeminiAction::Blocked("PROHIBITED_CONTENT".to_owned())
        } else if i.prompt.contains("unsafe") {
            GeminiAction::Finish("IMAGE_SAFETY".to_owned())
        } else {
            GeminiAction::Answer
        }
    }));
    let (ws, mut cmd) = gemini_only(&gemini);
    ws.write(
        "prompts.txt",
        "# a\na blocked prompt\n\n# b\nan unsafe image\n\n# c\na fine cat\n",
    );
    let run = cmd
        .args(["--input", "prompts.txt", "-o", "out", "--model", PRO])
        .run();
    assert_code(&run, 1);
    assert_eq!(
        sent(&gemini, "blocked"),
        1,
        "a refusal is never asked again"
    );
    assert_eq!(sent(&gemini, "unsafe"), 1, "a refusal is never asked again");
    let out = run.all_output();
    assert!(out.contains("PROHIBITED_CONTENT"), "{out}");
    assert!(out.contains("IMAGE_SAFETY"), "{out}");
    let records = ws.manifest("out");
    assert_eq!(record(&records, "image.a.01.hd.png")["status"], "refused");
    assert_eq!(record(&records, "image.b.01.hd.png")["status"], "refused");
    assert_eq!(record(&records, "image.c.01.hd.png")["status"], "made");
}

#[test]
fn an_answer_with_no_image_for_another_reason_is_asked_again_once() {
    let missed = std::sync::atomic::AtomicBool::new(false);
    let gemini = FakeGemini::with(script(move |i| {
        if i.prompt.contains("twice") && !missed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            GeminiAction::Finish("NO_IMAGE".to_owned())
        } else if i.prompt.contains("never") {
            GeminiAction::Finish("OTHER".to_owned())
        } else {
            GeminiAction::Answer
        }
    }));
    let (ws, mut cmd) = gemini_only(&gemini);
    ws.write("prompts.txt", "# a\ndraw it twice\n\n# b\nnever draws\n");
    let run = cmd
        .args([
            "--input",
            "prompts.txt",
            "-o",
            "out",
            "--model",
            PRO,
            "-j",
            "1",
        ])
        .run();
    assert_code(&run, 1);
    assert_eq!(sent(&gemini, "twice"), 2);
    assert_eq!(
        sent(&gemini, "never"),
        2,
        "retried at most once, then reported"
    );
    assert!(ws.join("out/image.a.01.hd.png").exists());
    let out = run.all_output();
    assert!(out.contains("finishReason OTHER"), "{out}");
}

#[test]
fn a_per_minute_429_is_waited_out_and_a_per_day_429_stops_the_run() {
    let gemini = FakeGemini::with(script(|i| {
        if i.nth == 0 {
            GeminiAction::per_minute(PRO, "0.3s")
        } else {
            GeminiAction::Answer
        }
    }));
    let (ws, mut cmd) = gemini_only(&gemini);
    let run = cmd
        .args(["a lighthouse", "-o", "out", "--model", PRO])
        .run();
    assert_code(&run, 0);
    assert_eq!(gemini.generate_requests().len(), 2);
    assert!(ws.join("out/image_01_hd.png").exists());
    let retry = &gemini.generate_requests()[1];
    let first = &gemini.generate_requests()[0];
    assert!(
        retry.arrived.duration_since(first.answered) >= std::time::Duration::from_millis(300),
        "the retry waited RetryInfo.retryDelay"
    );

    let gemini = FakeGemini::with(GeminiOptions {
        daily_limit: Some(1),
        ..GeminiOptions::default()
    });
    let (ws, mut cmd) = gemini_only(&gemini);
    let run = cmd
        .args([
            "a lighthouse",
            "-o",
            "out",
            "--model",
            PRO,
            "-n",
            "4",
            "-j",
            "1",
        ])
        .run();
    assert_code(&run, 3);
    let out = run.all_output();
    assert!(out.contains("midnight Pacific"), "{out}");
    assert_eq!(
        gemini.generate_requests().len(),
        2,
        "one image, then the daily quota's 429, then nothing more"
    );
    assert_eq!(
        ws.files("out")
            .iter()
            .filter(|f| f.ends_with(".png"))
            .count(),
        1
    );
}

#[test]
fn server_errors_are_retried_and_403_and_404_stop_with_advice() {
    let gemini = FakeGemini::with(script(|i| match i.nth {
        0 => GeminiAction::internal(),
        1 => GeminiAction::unavailable(),
        2 => GeminiAction::deadline_exceeded(),
        _ => GeminiAction::Answer,
    }));
    let (ws, mut cmd) = gemini_only(&gemini);
    let run = cmd
        .args(["a lighthouse", "-o", "out", "--model", PRO])
        .run();
    assert_code(&run, 0);
    assert_eq!(gemini.generate_requests().len(), 4);
    assert_gemini_images_match(&ws, "out", &gemini);

    let gemini = FakeGemini::with(script(|_| GeminiAction::permission_denied()));
    let (_ws, mut cmd) = gemini_only(&gemini);
    let run = cmd
        .args([
            "a lighthouse",
            "-o",
            "out",
            "--model",
            PRO,
            "-n",
            "3",
            "-j",
            "1",
        ])
        .run();
    assert_code(&run, 3);
    assert_eq!(
        gemini.generate_requests().len(),
        1,
        "fatal: not asked again"
    );

    let gemini = FakeGemini::with(GeminiOptions {
        gone_models: vec!["gemini-3.1-flash-image".to_owned()],
        ..GeminiOptions::default()
    });
    let (_ws, mut cmd) = gemini_only(&gemini);
    let run = cmd
        .args([
            "a lighthouse",
            "-o",
            "out",
            "--model",
            "gemini-3.1-flash-image",
        ])
        .run();
    assert_code(&run, 3);
    let out = run.all_output();
    assert_eq!(gemini.generate_requests().len(), 1);
    assert!(out.contains("genimg models"), "{out}");
    assert!(
        out.contains("gemini-nano-banana-2.1"),
        "names the successor: {out}"
    );
}

#[test]
fn a_prompt_file_may_mix_providers_and_each_fake_sees_only_its_own_prompts() {
    let server = FakeServer::start();
    let gemini = FakeGemini::start();
    let (ws, mut cmd) = both(&server, &gemini);
    ws.write(
        "prompts.txt",
        "# banana model=gemini-nano-banana-2.1 aspect_ratio=16:9\na banana boat\n\n\
         # gpt\nan openai owl\n\n\
         # google model=google:gemini-3-pro-image image_size=4K\na google goose\n",
    );
    let run = cmd.args(["--input", "prompts.txt", "-o", "out"]).run();
    assert_code(&run, 0);
    assert_eq!(server.prompts(), ["an openai owl"]);
    let mut prompts = gemini.prompts();
    prompts.sort();
    assert_eq!(prompts, ["a banana boat", "a google goose"]);
    let banana = gemini
        .generate_requests()
        .into_iter()
        .find(|r| r.prompt().contains("banana"))
        .unwrap();
    assert_eq!(banana.model().as_deref(), Some("gemini-nano-banana-2.1"));
    let config = banana.image_config().unwrap().clone();
    assert_eq!(config["aspectRatio"], "16:9");
    assert_eq!(config["imageSize"], "2K");
    let goose = gemini
        .generate_requests()
        .into_iter()
        .find(|r| r.prompt().contains("goose"))
        .unwrap();
    assert_eq!(goose.model().as_deref(), Some(PRO), "google: is not sent");
    assert_eq!(goose.image_config().unwrap()["imageSize"], "4K");
    let records = ws.manifest("out");
    assert_eq!(
        record(&records, "image.gpt.01.hd.png")["provider"],
        "openai"
    );
    assert_eq!(
        record(&records, "image.banana.01.hd.png")["provider"],
        "gemini"
    );
    assert_eq!(
        record(&records, "image.google.01.hd.png")["provider"],
        "gemini"
    );
    // Resume: nothing is asked again of either.
    let mut again = genimg(&ws, Some(&server));
    with_gemini(&mut again, &gemini);
    let run = again.args(["--input", "prompts.txt", "-o", "out"]).run();
    assert_code(&run, 0);
    assert_eq!(server.image_requests().len(), 1);
    assert_eq!(gemini.generate_requests().len(), 2);
    // A changed ratio makes that prompt's image stale, and only that one.
    ws.write(
        "prompts.txt",
        "# banana model=gemini-nano-banana-2.1 aspect_ratio=4:3\na banana boat\n\n\
         # gpt\nan openai owl\n\n\
         # google model=google:gemini-3-pro-image image_size=4K\na google goose\n",
    );
    let mut again = genimg(&ws, Some(&server));
    with_gemini(&mut again, &gemini);
    let run = again
        .args(["--input", "prompts.txt", "-o", "out", "--remake-stale"])
        .run();
    assert_code(&run, 0);
    assert_eq!(server.image_requests().len(), 1);
    assert_eq!(gemini.generate_requests().len(), 3);
    assert_eq!(
        gemini.generate_requests()[2].image_config().unwrap()["aspectRatio"],
        "4:3"
    );
}

#[test]
fn a_missing_key_for_either_provider_stops_before_any_request() {
    let server = FakeServer::start();
    let gemini = FakeGemini::start();
    let mixed = "# a model=gemini-3-pro-image\na goose\n\n# b\nan owl\n";
    // No Gemini key.
    let ws = Workspace::new();
    ws.write("prompts.txt", mixed);
    let run = genimg(&ws, Some(&server))
        .env("GEMINI_BASE_URL", gemini.base_url())
        .args(["--input", "prompts.txt", "-o", "out"])
        .run();
    assert_code(&run, 2);
    assert!(run.stderr.contains("GEMINI_API_KEY"), "{}", run.stderr);
    // No OpenAI key.
    let run = genimg(&ws, None)
        .env("OPENAI_BASE_URL", server.base_url())
        .env("GEMINI_BASE_URL", gemini.base_url())
        .env("GEMINI_API_KEY", GEMINI_KEY)
        .args(["--input", "prompts.txt", "-o", "out"])
        .run();
    assert_code(&run, 2);
    assert!(run.stderr.contains("OPENAI_API_KEY"), "{}", run.stderr);
    assert!(server.requests().is_empty());
    assert!(gemini.requests().is_empty());
    // A run of Gemini prompts needs no OpenAI key, and GOOGLE_API_KEY will do.
    let run = genimg(&ws, None)
        .env("GEMINI_BASE_URL", gemini.base_url())
        .env("GOOGLE_API_KEY", GEMINI_KEY)
        .args(["a goose", "-o", "out", "--model", PRO])
        .run();
    assert_code(&run, 0);
    assert_eq!(
        gemini.generate_requests()[0].header("x-goog-api-key"),
        Some(GEMINI_KEY)
    );
    // --gemini-api-key wins, and is never shown.
    let run = genimg(&ws, None)
        .env("GEMINI_BASE_URL", gemini.base_url())
        .env("GEMINI_API_KEY", "AIza-wrong")
        .args([
            "a goose",
            "-o",
            "out2",
            "--model",
            PRO,
            "--gemini-api-key",
            GEMINI_KEY,
        ])
        .run();
    assert_code(&run, 0);
    assert!(!run.all_output().contains(GEMINI_KEY));
}

#[test]
fn options_a_model_does_not_take_are_refused_naming_where_they_came_from() {
    let gemini = FakeGemini::start();
    let server = FakeServer::start();
    let cases: &[(&[&str], &str)] = &[
        (&["--model", PRO, "--size", "1536x1024"], "--size 1536x1024"),
        (&["--model", PRO, "--format", "webp"], "--format webp"),
        (&["--model", PRO, "--quality", "low"], "--quality low"),
        (
            &["--model", PRO, "--background", "opaque"],
            "--background opaque",
        ),
        (
            &["--model", PRO, "--aspect-ratio", "8:1"],
            "--aspect-ratio 8:1",
        ),
        (&["--model", PRO, "--image-size", "512"], "--image-size 512"),
        (
            &[
                "--model",
                "gemini-3.1-flash-lite-image",
                "--image-size",
                "4K",
            ],
            "--image-size 4K",
        ),
        (
            &["--model", "gemini-2.5-flash-image", "--image-size", "1K"],
            "--image-size 1K",
        ),
        (&["--aspect-ratio", "16:9"], "--aspect-ratio 16:9"),
        (&["--image-size", "2K"], "--image-size 2K"),
        (&["--model", PRO, "--aspect-ratio", "7:5"], "--aspect-ratio"),
    ];
    for (args, named) in cases {
        let (ws, mut cmd) = both(&server, &gemini);
        let run = cmd.args(["a goose", "-o", "out"]).args(*args).run();
        assert_code(&run, 2);
        assert!(run.stderr.contains(named), "{args:?}: {}", run.stderr);
        assert!(!ws.join("out").exists(), "{args:?}");
    }
    // On a prompt's header line, the line is named.
    let (ws, mut cmd) = both(&server, &gemini);
    ws.write(
        "prompts.txt",
        "# a\nan owl\n\n# b model=gemini-3-pro-image aspect_ratio=1:8\na goose\n",
    );
    let run = cmd.args(["--input", "prompts.txt", "-o", "out"]).run();
    assert_code(&run, 2);
    assert!(run.stderr.contains("prompts.txt:4"), "{}", run.stderr);
    assert!(
        run.stderr.contains("1:1, 2:3"),
        "lists what it takes: {}",
        run.stderr
    );
    // Too many references for the model.
    let (ws, mut cmd) = both(&server, &gemini);
    for i in 0..4 {
        ws.write(&format!("r{i}.png"), images::fixture("reference.png"));
    }
    let run = cmd
        .args(["a goose", "-o", "out", "--model", "gemini-2.5-flash-image"])
        .args(["--reference-image", "r0.png", "--reference-image", "r1.png"])
        .args(["--reference-image", "r2.png", "--reference-image", "r3.png"])
        .run();
    assert_code(&run, 2);
    assert!(run.stderr.contains("at most 3"), "{}", run.stderr);
    assert!(server.requests().is_empty());
    assert!(gemini.requests().is_empty());
}

#[test]
fn references_go_inline_with_their_real_mime_type_within_the_request_limit() {
    let gemini = FakeGemini::start();
    let (ws, mut cmd) = gemini_only(&gemini);
    ws.write("looks-like.png", images::fixture("reference.jpg"));
    ws.write("b.webp", images::fixture("reference.webp"));
    let run = cmd
        .args(["the same cat, sitting", "-o", "out", "--model", PRO])
        .args([
            "--reference-image",
            "looks-like.png",
            "--reference-image",
            "b.webp",
        ])
        .run();
    assert_code(&run, 0);
    let images = gemini.generate_requests()[0].inline_images();
    assert_eq!(
        images,
        [
            ("image/jpeg".to_owned(), images::fixture("reference.jpg")),
            ("image/webp".to_owned(), images::fixture("reference.webp")),
        ]
    );
    assert_gemini_images_match(&ws, "out", &gemini);
    let records = ws.manifest("out");
    assert_eq!(records[0]["references"].as_array().unwrap().len(), 2);

    // Two references that fit one by one but not together in a 100 MB request.
    let (ws, mut cmd) = gemini_only(&gemini);
    for name in ["big1.png", "big2.png"] {
        let path = ws.write(name, images::fixture("reference.png"));
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(40 * 1024 * 1024).unwrap();
    }
    let before = gemini.requests().len();
    let run = cmd
        .args(["a cat", "-o", "out", "--model", PRO])
        .args([
            "--reference-image",
            "big1.png",
            "--reference-image",
            "big2.png",
        ])
        .run();
    assert_code(&run, 2);
    assert!(run.stderr.contains("--reference-image"), "{}", run.stderr);
    assert!(run.stderr.contains("100 MB"), "{}", run.stderr);
    assert_eq!(gemini.requests().len(), before);
}

/// Runs `geese` Gemini images (whose first request meets a 3 s per-minute 429) before `owls`
/// OpenAI images, one request at a time per provider, and checks that every OpenAI request
/// went out while Gemini waited.
fn openai_goes_on_while_gemini_waits(geese: u32, owls: usize) {
    let server = FakeServer::start();
    let gemini = FakeGemini::with(script(|i| {
        if i.nth == 0 {
            GeminiAction::per_minute(PRO, "3s")
        } else {
            GeminiAction::Answer
        }
    }));
    let (ws, mut cmd) = both(&server, &gemini);
    ws.write(
        "prompts.txt",
        format!(
            "# goose model=gemini-3-pro-image count={geese}\na goose\n\n# owl count={owls}\nan owl\n"
        ),
    );
    let run = cmd
        .args(["--input", "prompts.txt", "-o", "out", "-j", "1"])
        .run();
    assert_code(&run, 0);
    let retry = &gemini.generate_requests()[1];
    let sent = server.image_requests();
    assert_eq!(sent.len(), owls);
    for owl in &sent {
        assert!(
            owl.arrived < retry.arrived,
            "OpenAI's requests went on while Gemini's waited out its 429"
        );
    }
}

#[test]
fn a_429_from_one_provider_does_not_slow_the_other() {
    openai_goes_on_while_gemini_waits(1, 4);
}

#[test]
fn a_provider_waiting_out_a_429_holds_no_place_the_other_could_use() {
    // Gemini's prompts come first, and more of them than the run keeps tasks for: while
    // they wait out the 429, OpenAI's still go on.
    openai_goes_on_while_gemini_waits(4, 3);
}

#[test]
fn dry_run_costs_come_from_each_models_price_by_image_size() {
    let ws = Workspace::new();
    ws.write(
        "prompts.txt",
        "# pro model=gemini-3-pro-image count=2\na goose\n\n\
         # pro4k model=gemini-3-pro-image image_size=4K\na goose in 4K\n\n\
         # lite model=gemini-3.1-flash-lite-image\na lite goose\n\n\
         # flash model=gemini-3.1-flash-image\na flash goose\n\n\
         # owl\nan owl\n",
    );
    // No key is needed for a dry run, for either provider.
    let run = genimg(&ws, None)
        .args(["--input", "prompts.txt", "-o", "out", "--dry-run", "--json"])
        .run();
    assert_code(&run, 0);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let estimate = |file: &str| {
        doc["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["file"] == file)
            .unwrap_or_else(|| panic!("{file}: {doc}"))["estimate_usd"]
            .as_f64()
            .unwrap()
    };
    let near = |a: f64, b: f64| (a - b).abs() < 1e-9;
    assert!(near(estimate("image.pro.01.hd.png"), 0.134), "2K on Pro");
    let files: Vec<&str> = doc["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["file"].as_str().unwrap())
        .collect();
    let of = |name: &str| *files.iter().find(|f| f.contains(name)).unwrap();
    assert!(near(estimate(of(".pro4k.")), 0.24), "4K on Pro");
    // $0.0336, rounded as every amount is (a tenth of a cent under a dollar).
    assert!(near(estimate(of(".lite.")), 0.034), "1K, all Lite makes");
    assert!(near(estimate(of(".flash.")), 0.101), "HD is 2K on flash");
    let owl = estimate(of(".owl."));
    let total = doc["totals"]["estimate_usd"].as_f64().unwrap();
    assert!(
        (total - (2.0 * 0.134 + 0.24 + 0.034 + 0.101 + owl)).abs() < 0.002,
        "{total}"
    );
    assert_eq!(doc["totals"]["unpriced"], 0);
    // --low-res is 1K.
    let run = genimg(&ws, None)
        .args(["a goose", "--model", "gemini-3.1-flash-image", "--low-res"])
        .args(["--dry-run", "--json"])
        .run();
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(near(
        doc["images"][0]["estimate_usd"].as_f64().unwrap(),
        0.067
    ));
    assert_eq!(doc["images"][0]["file"], "image_01_standard.png");
    // The text says where each provider's requests would go.
    let run = genimg(&ws, None)
        .args(["--input", "prompts.txt", "-o", "out", "--dry-run"])
        .run();
    assert_code(&run, 0);
    assert!(
        run.stdout.contains(
            "generativelanguage.googleapis.com/v1beta/models/gemini-3-pro-image:generateContent"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn max_cost_covers_both_providers() {
    let server = FakeServer::start();
    let gemini = FakeGemini::start();
    let (ws, mut cmd) = both(&server, &gemini);
    ws.write(
        "prompts.txt",
        "# goose model=gemini-3-pro-image count=3\na goose\n\n# owl\nan owl\n",
    );
    // The geese alone cost $0.402: under $0.45, but not with the owl.
    let run = cmd
        .args(["--input", "prompts.txt", "-o", "out", "--max-cost", "0.45"])
        .run();
    assert_code(&run, 2);
    assert!(server.requests().is_empty());
    assert!(gemini.requests().is_empty());
    let (_ws, mut cmd) = both(&server, &gemini);
    let run = cmd
        .args([
            "a goose",
            "-o",
            "out",
            "--model",
            PRO,
            "-n",
            "3",
            "--max-cost",
            "0.45",
        ])
        .run();
    assert_code(&run, 0);
}

#[test]
fn genimg_models_lists_both_providers_with_status_and_prices() {
    let ws = Workspace::new();
    let run = genimg(&ws, None).arg("models").run();
    assert_code(&run, 0);
    let out = &run.stdout;
    for needle in [
        "gpt-image-2",
        "gemini-nano-banana-2.1",
        "Nano Banana Pro",
        "gemini-3.1-flash-image  (Nano Banana 2; deprecated since 2026-10-06",
        "gemini-3-pro-image-preview  (Nano Banana Pro (preview); shut down on 2026-06-25)",
        "GEMINI_API_KEY",
        "1K $0.134, 2K $0.134, 4K $0.24",
        "google:NAME",
    ] {
        assert!(out.contains(needle), "{needle}: {out}");
    }
}

#[test]
fn the_config_file_may_hold_the_gemini_key_and_a_readable_one_is_warned_of() {
    use std::os::unix::fs::PermissionsExt as _;
    let gemini = FakeGemini::start();
    let ws = Workspace::new();
    let config = ws.write(
        "config.toml",
        format!("gemini-api-key = \"{GEMINI_KEY}\"\nmodel = \"{PRO}\"\n"),
    );
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = genimg(&ws, None)
        .env("GEMINI_BASE_URL", gemini.base_url())
        .env("GENIMG_CONFIG", &config)
        .args(["a goose", "-o", "out"])
        .run();
    assert_code(&run, 0);
    assert_eq!(
        gemini.generate_requests()[0].header("x-goog-api-key"),
        Some(GEMINI_KEY)
    );
    assert!(run.stderr.contains("chmod 600"), "{}", run.stderr);
    assert!(!run.all_output().contains(GEMINI_KEY));
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = genimg(&ws, None)
        .env("GEMINI_BASE_URL", gemini.base_url())
        .env("GENIMG_CONFIG", &config)
        .args(["a goose", "-o", "out", "-n", "2"])
        .run();
    assert_code(&run, 0);
    assert!(!run.stderr.contains("chmod"), "{}", run.stderr);
}

#[test]
fn an_image_named_as_a_file_is_fetched_with_the_key_and_kept() {
    let gemini = FakeGemini::with(script(|_| GeminiAction::FileData));
    let (ws, mut cmd) = gemini_only(&gemini);
    let run = cmd
        .args(["a lighthouse", "-o", "out", "--model", PRO])
        .run();
    assert_code(&run, 0);
    assert_gemini_images_match(&ws, "out", &gemini);
    let downloads: Vec<_> = gemini
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/download/"))
        .collect();
    assert_eq!(downloads.len(), 1);
    assert_eq!(downloads[0].status, 200);
    assert_eq!(
        gemini.generate_requests().len(),
        1,
        "fetched, not bought again"
    );
}

/// `--batch` with polls as often as a test can afford.
const BATCH: [&str; 3] = ["--batch", "--poll-interval", "0.05"];

/// genimg with `args` and [`BATCH`] against the Gemini fake only, run to its end (or killed
/// after 30 s, as a hung run).
fn gemini_batch(ws: &Workspace, gemini: &FakeGemini, args: &[&str]) -> Run {
    let mut cmd = genimg(ws, None);
    with_gemini(&mut cmd, gemini);
    run_within(
        cmd.args(args).args(BATCH),
        std::time::Duration::from_secs(30),
    )
}

fn gemini_images(ws: &Workspace) -> Vec<String> {
    ws.files("out")
        .into_iter()
        .filter(|n| n.ends_with(".png") || n.ends_with(".jpeg"))
        .collect()
}

#[test]
fn a_gemini_batch_completes_and_every_image_is_kept_at_batch_prices() {
    let gemini = FakeGemini::start();
    let ws = Workspace::new();
    ws.write("p.txt", "# fox\na fox\n\n# owl image_size=4K\nan owl\n");
    let run = gemini_batch(
        &ws,
        &gemini,
        &["--input", "p.txt", "-o", "out", "-n", "2", "--model", PRO],
    );
    assert_code(&run, 0);
    assert_eq!(
        gemini_images(&ws),
        [
            "image.fox.01.hd.png",
            "image.fox.02.hd.png",
            "image.owl.01.hd.png",
            "image.owl.02.hd.png"
        ]
    );
    assert_gemini_images_match(&ws, "out", &gemini);
    assert_eq!(
        gemini.batches_created(),
        1,
        "one batch per provider and model"
    );
    assert!(gemini.generate_requests().is_empty(), "nothing live");
    // The input went up through the resumable upload, as {"key", "request"} lines.
    let uploaded = gemini.uploaded_files();
    assert_eq!(uploaded.len(), 1);
    let lines = gemini.file_lines(&uploaded[0].name);
    assert_eq!(lines.len(), 4);
    let keys: HashSetOf = lines
        .iter()
        .map(|l| l["key"].as_str().unwrap().to_owned())
        .collect();
    assert!(keys.contains("image.owl.02.hd.png"));
    let owl = lines
        .iter()
        .find(|l| l["key"] == "image.owl.01.hd.png")
        .unwrap();
    assert_eq!(
        owl["request"]["generationConfig"]["imageConfig"]["imageSize"],
        "4K"
    );
    let records = ws.manifest("out");
    for r in &records {
        assert_eq!(r["mode"], "batch");
        assert_eq!(r["provider"], "gemini");
        assert!(r["batch_id"].as_str().unwrap().starts_with("batches/"));
        let cost = r["cost_usd"].as_f64().unwrap();
        // Half the live price: $0.134 at 2K, $0.24 at 4K, give or take the prompt's tokens.
        let live = if r["file"].as_str().unwrap().contains("owl") {
            0.24
        } else {
            0.134
        };
        assert!(
            (live * 0.45..live * 0.55).contains(&cost),
            "{cost} is not half of {live}"
        );
    }
    // The ledger forgot the collected batch; a re-run buys nothing.
    let run = gemini_batch(
        &ws,
        &gemini,
        &["--input", "p.txt", "-o", "out", "-n", "2", "--model", PRO],
    );
    assert_code(&run, 0);
    assert_eq!(gemini.batches_created(), 1);
}

type HashSetOf = std::collections::HashSet<String>;

#[test]
fn an_expired_gemini_batch_keeps_what_ran_and_the_rest_is_asked_again() {
    let gemini = FakeGemini::with(GeminiOptions {
        batch: GeminiBatchOptions {
            expire_after: Some(2),
            ..GeminiBatchOptions::default()
        },
        ..GeminiOptions::default()
    });
    let ws = Workspace::new();
    let run = gemini_batch(
        &ws,
        &gemini,
        &["a fox", "-o", "out", "-n", "4", "--model", PRO],
    );
    assert_code(&run, 1);
    assert_eq!(gemini_images(&ws).len(), 2, "the two lines that ran");
    assert_gemini_images_match(&ws, "out", &gemini);
    let out = run.all_output();
    assert!(out.contains("expired"), "{out}");
    // The next run submits only the two not made (a batch of two does not expire here).
    let ran = gemini.batch_lines_answered();
    let run = gemini_batch(
        &ws,
        &gemini,
        &["a fox", "-o", "out", "-n", "4", "--model", PRO],
    );
    assert_code(&run, 0);
    assert_eq!(gemini.batch_lines_answered(), ran + 2);
    assert_eq!(gemini.batches_created(), 2);
    assert_eq!(gemini_images(&ws).len(), 4);
}

#[test]
fn a_gemini_batch_whose_creation_answer_was_lost_is_found_by_its_display_name() {
    let gemini = FakeGemini::with(GeminiOptions {
        batch: GeminiBatchOptions {
            create_faults: vec![GeminiAction::Truncate],
            ..GeminiBatchOptions::default()
        },
        ..GeminiOptions::default()
    });
    let ws = Workspace::new();
    let run = gemini_batch(
        &ws,
        &gemini,
        &["a fox", "-o", "out", "-n", "3", "--model", PRO],
    );
    assert_code(&run, 0);
    assert_eq!(gemini.batches_created(), 1, "never a second batch");
    assert_eq!(gemini_images(&ws).len(), 3);
    assert_gemini_images_match(&ws, "out", &gemini);
}

#[test]
fn a_gemini_batch_left_by_a_crash_is_resumed_not_bought_again() {
    let gemini = FakeGemini::start();
    gemini.hold_batches(true);
    let ws = Workspace::new();
    // Submitted, not waited for: as a run killed while it waits leaves it.
    let run = gemini_batch(
        &ws,
        &gemini,
        &["a fox", "-o", "out", "-n", "2", "--model", PRO, "--no-wait"],
    );
    assert_code(&run, 0);
    assert_eq!(gemini.batches_created(), 1);
    let ledger: Value = serde_json::from_slice(&ws.read("out/genimg-batch.json")).unwrap();
    let entry = &ledger["batches"][0];
    assert_eq!(entry["provider"], "gemini");
    assert_eq!(
        entry["endpoint"],
        "models/gemini-3-pro-image:batchGenerateContent"
    );
    gemini.hold_batches(false);
    // The same command again: it waits for the batch it finds, and buys nothing new.
    let run = gemini_batch(
        &ws,
        &gemini,
        &["a fox", "-o", "out", "-n", "2", "--model", PRO],
    );
    assert_code(&run, 0);
    assert_eq!(gemini.batches_created(), 1);
    assert_eq!(gemini_images(&ws).len(), 2);
    assert_gemini_images_match(&ws, "out", &gemini);
}

#[test]
fn a_mixed_batch_run_makes_one_batch_per_provider_and_model() {
    let server = FakeServer::start();
    let gemini = FakeGemini::start();
    let (ws, mut cmd) = both(&server, &gemini);
    ws.write(
        "p.txt",
        "# a model=gemini-3-pro-image\na goose\n\n# b model=gemini-nano-banana-2.1\na gull\n\n\
         # c\nan owl\n",
    );
    let run = run_within(
        cmd.args(["--input", "p.txt", "-o", "out"]).args(BATCH),
        std::time::Duration::from_secs(30),
    );
    assert_code(&run, 0);
    assert_eq!(gemini.batches_created(), 2);
    assert_eq!(server.batches().len(), 1);
    assert_eq!(gemini_images(&ws).len(), 3);
    let records = ws.manifest("out");
    assert_eq!(record(&records, "image.c.01.hd.png")["provider"], "openai");
    assert_eq!(record(&records, "image.a.01.hd.png")["provider"], "gemini");
    // genimg batch status knows both, with both keys.
    let mut status = genimg(&ws, Some(&server));
    with_gemini(&mut status, &gemini);
    let run = status.args(["batch", "status", "out"]).run();
    assert_code(&run, 0);
}

#[test]
fn a_batch_line_that_names_its_image_as_a_file_is_fetched_with_the_key_and_kept() {
    let gemini = FakeGemini::with(GeminiOptions {
        batch: GeminiBatchOptions {
            script: Some(Arc::new(|_| GeminiAction::FileData)),
            ..GeminiBatchOptions::default()
        },
        ..GeminiOptions::default()
    });
    let ws = Workspace::new();
    let run = gemini_batch(
        &ws,
        &gemini,
        &["a fox", "-o", "out", "-n", "2", "--model", PRO],
    );
    assert_code(&run, 0);
    assert_eq!(gemini_images(&ws).len(), 2, "{}", run.all_output());
    assert_gemini_images_match(&ws, "out", &gemini);
    assert!(!run.all_output().contains(GEMINI_KEY));
}

#[test]
fn batch_lines_with_no_image_are_refusals_kept_as_such_or_asked_again_next_run() {
    let gemini = FakeGemini::with(GeminiOptions {
        batch: GeminiBatchOptions {
            script: Some(Arc::new(|l: &GeminiBatchLine| {
                if l.prompt.contains("blocked") {
                    GeminiAction::Blocked("PROHIBITED_CONTENT".to_owned())
                } else if l.prompt.contains("empty") && l.nth < 3 {
                    GeminiAction::Finish("NO_IMAGE".to_owned())
                } else {
                    GeminiAction::Answer
                }
            })),
            ..GeminiBatchOptions::default()
        },
        ..GeminiOptions::default()
    });
    let ws = Workspace::new();
    ws.write(
        "p.txt",
        "# a\na blocked prompt\n\n# b\nan empty answer\n\n# c\na fine cat\n",
    );
    let args = ["--input", "p.txt", "-o", "out", "--model", PRO];
    let run = gemini_batch(&ws, &gemini, &args);
    assert_code(&run, 1);
    let out = run.all_output();
    assert!(out.contains("PROHIBITED_CONTENT"), "{out}");
    assert!(out.contains("NO_IMAGE"), "{out}");
    let records = ws.manifest("out");
    assert_eq!(record(&records, "image.a.01.hd.png")["status"], "refused");
    assert_eq!(record(&records, "image.b.01.hd.png")["status"], "failed");
    assert_eq!(record(&records, "image.c.01.hd.png")["status"], "made");
    // The next run asks again for the image that did not come, not for the refused one.
    let run = gemini_batch(&ws, &gemini, &args);
    // The refused image is not there: not a success, and the summary says why.
    assert_code(&run, 1);
    assert!(
        run.stderr
            .contains("not asked      1  refused by the service before"),
        "{}",
        run.stderr
    );
    assert_eq!(gemini.batches_created(), 2);
    let second: Vec<String> = gemini
        .batch_lines()
        .into_iter()
        .skip(3)
        .map(|l| l.key)
        .collect();
    assert_eq!(second, ["image.b.01.hd.png"]);
    assert!(ws.join("out/image.b.01.hd.png").exists());
    assert!(!ws.join("out/image.a.01.hd.png").exists());
}

#[test]
fn a_gemini_key_the_service_echoes_back_is_never_shown_nor_kept() {
    let echo = format!("API key {GEMINI_KEY} is not valid for this project.");
    let live = echo.clone();
    let gemini = FakeGemini::with(GeminiOptions {
        script: Some(Arc::new(move |i: &GeminiIncoming| {
            if i.prompt.contains("live") {
                GeminiAction::error(400, "INVALID_ARGUMENT", &live)
            } else {
                GeminiAction::Answer
            }
        })),
        batch: GeminiBatchOptions {
            script: Some(Arc::new(move |_| {
                GeminiAction::error(400, "INVALID_ARGUMENT", &echo)
            })),
            ..GeminiBatchOptions::default()
        },
        ..GeminiOptions::default()
    });
    let (ws, mut cmd) = gemini_only(&gemini);
    let run = cmd
        .args(["a live fox", "-o", "out", "--model", PRO, "--json", "-vv"])
        .run();
    assert_code(&run, 1);
    let batch = gemini_batch(
        &ws,
        &gemini,
        &["a batch fox", "-o", "out", "--model", PRO, "--json", "-vv"],
    );
    assert_code(&batch, 1);
    for (what, text) in [
        ("the live run", run.all_output()),
        ("the batch run", batch.all_output()),
        (
            "the manifest",
            String::from_utf8(ws.read("out/genimg.jsonl")).unwrap(),
        ),
        (
            "the gallery",
            String::from_utf8(ws.read("out/index.html")).unwrap(),
        ),
    ] {
        assert!(text.contains("is not valid"), "{what}: {text}");
        assert!(!text.contains(GEMINI_KEY), "{what}: {text}");
    }
}

#[test]
fn help_and_a_batch_dry_run_speak_of_both_providers() {
    let ws = Workspace::new();
    let run = genimg(&ws, None).arg("--help").run();
    assert_code(&run, 0);
    // As read, whatever the terminal's width wraps.
    let help = run.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    for part in [
        "Google's Gemini",
        "gemini- goes to Google",
        "google:NAME",
        "1K on Gemini models",
        "inline on Gemini",
    ] {
        assert!(help.contains(part), "{part} missing from --help:\n{help}");
    }
    ws.write(
        "p.txt",
        "# a model=gemini-3-pro-image\na goose\n\n# b model=gemini-nano-banana-2.1\na gull\n",
    );
    let run = genimg(&ws, None)
        .args(["--input", "p.txt", "-o", "out", "--dry-run", "--batch"])
        .run();
    assert_code(&run, 0);
    assert!(!run.stdout.contains("OpenAI"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("models/gemini-nano-banana-2.1:batchGenerateContent"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_gemini_key_refused_or_not_allowed_gets_advice_about_the_gemini_key() {
    let gemini = FakeGemini::start();
    let ws = Workspace::new();
    let run = genimg(&ws, None)
        .env("GEMINI_BASE_URL", gemini.base_url())
        .env("GEMINI_API_KEY", "AIza-not-the-right-one")
        .args(["a goose", "-o", "out", "--model", PRO, "--json"])
        .run();
    assert_code(&run, 3);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let advice = doc["stopped"]["advice"].as_str().unwrap();
    assert!(advice.contains("GEMINI_API_KEY"), "{advice}");
    assert!(!advice.contains("OPENAI"), "{advice}");
    assert!(run.stderr.contains("GEMINI_API_KEY"), "{}", run.stderr);

    let gemini = FakeGemini::with(script(|_| GeminiAction::permission_denied()));
    let (_ws, mut cmd) = gemini_only(&gemini);
    let run = cmd
        .args(["a goose", "-o", "out", "--model", PRO, "--json"])
        .run();
    assert_code(&run, 3);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let advice = doc["stopped"]["advice"].as_str().unwrap();
    assert!(
        advice.contains("generativelanguage.googleapis.com"),
        "{advice}"
    );
    assert!(!advice.contains("organization"), "{advice}");
}

#[test]
fn gemini_prompts_with_and_without_references_share_their_models_batch() {
    let ws = Workspace::new();
    ws.write("ref.png", images::fixture("reference.png"));
    ws.write(
        "p.txt",
        "# a model=gemini-3-pro-image\na goose\n\n\
         # b model=gemini-3-pro-image ref=ref.png\nthe same goose, swimming\n",
    );
    let run = genimg(&ws, None)
        .args(["--input", "p.txt", "-o", "out", "--dry-run", "--batch"])
        .run();
    assert_code(&run, 0);
    let batches: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("batch "))
        .collect();
    assert_eq!(
        batches.len(),
        1,
        "one batch per provider and model:\n{}",
        run.stdout
    );
    assert!(batches[0].contains("2 request(s)"), "{}", run.stdout);
    // And so does a real run, the reference inline in its line.
    let gemini = FakeGemini::start();
    let run = gemini_batch(&ws, &gemini, &["--input", "p.txt", "-o", "out"]);
    assert_code(&run, 0);
    assert_eq!(gemini.batches_created(), 1);
    assert_eq!(gemini_images(&ws).len(), 2);
    assert_gemini_images_match(&ws, "out", &gemini);
}

#[test]
fn an_upload_session_on_another_host_never_gets_the_key() {
    let foreign = GeminiAction::Raw {
        status: 200,
        headers: vec![
            (
                "x-goog-upload-url".to_owned(),
                "http://127.0.0.1:9/upload?upload_id=elsewhere".to_owned(),
            ),
            ("x-goog-upload-status".to_owned(), "active".to_owned()),
        ],
        body: String::new(),
    };
    let gemini = FakeGemini::with(GeminiOptions {
        batch: GeminiBatchOptions {
            upload_faults: vec![
                foreign.clone(),
                foreign.clone(),
                foreign.clone(),
                foreign.clone(),
                foreign,
            ],
            ..GeminiBatchOptions::default()
        },
        ..GeminiOptions::default()
    });
    let ws = Workspace::new();
    let run = gemini_batch(&ws, &gemini, &["a fox", "-o", "out", "--model", PRO]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("on another host"), "{}", run.stderr);
    assert_eq!(gemini.batches_created(), 0);
    assert!(gemini_images(&ws).is_empty());
}
