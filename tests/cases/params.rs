//! `--param KEY=VALUE` (header `param.KEY=`, config `[param]`): any field, the day it ships.
//! Each param reaches the body typed, a multipart edit as a text part, a batch line as the
//! live body, Gemini's `generationConfig`; layered per key; refused with no request where
//! genimg sets the field; part of the image's identity; and a 400 about one names it.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

const FLARE: &str = "gpt-image-2.6-flare";

/// genimg in a new workspace against `server`, with a config file holding `config` (if any).
fn cmd(server: &FakeServer, config: Option<&str>) -> (Workspace, std::process::Command) {
    let ws = Workspace::new();
    let mut cmd = genimg(&ws, Some(server));
    if let Some(text) = config {
        let path = ws.write("genimg.toml", text);
        cmd.env("GENIMG_CONFIG", path);
    }
    (ws, cmd)
}

#[test]
fn params_reach_the_json_body_with_their_types() {
    let server = FakeServer::start();
    let (_ws, mut cmd) = cmd(&server, None);
    let run = cmd
        .args(["a fox", "-o", "out", "-m", FLARE])
        .args([
            "--param",
            "frame_count=8",
            "--param",
            "frame_duration_ms=150",
        ])
        .args(["--param", "user=alice"])
        .run();
    assert_code(&run, 0);
    let r = server.image_requests().remove(0);
    assert_eq!(r.fields["frame_count"], json!(8), "a number, not \"8\"");
    assert_eq!(r.fields["frame_duration_ms"], json!(150));
    assert_eq!(r.fields["user"], json!("alice"), "text that is not JSON");
}

#[test]
fn a_multipart_edit_carries_each_param_as_a_text_part() {
    let server = FakeServer::start();
    let (ws, mut cmd) = cmd(&server, None);
    ws.write("ref.png", images::fixture("reference.png"));
    let run = cmd
        .args(["the same fox", "-o", "out", "-m", FLARE])
        .args(["--reference-image", "ref.png", "--param", "frame_count=8"])
        .args(["--param", "user=[1, 2]"])
        .run();
    assert_code(&run, 0);
    let r = server.image_requests().remove(0);
    assert!(r.is_multipart && r.path.ends_with("/images/edits"));
    assert_eq!(r.files.len(), 1, "the reference, as a file part");
    assert_eq!(r.fields["frame_count"], json!("8"));
    // An array (or an object) goes as its JSON text.
    assert_eq!(r.fields["user"], json!("[1,2]"));
}

#[test]
fn a_header_param_overrides_the_flag_and_the_flag_the_config_file_key_by_key() {
    let server = FakeServer::start();
    let config = "[param]\nframe_count = 4\nframe_duration_ms = 100\nuser = \"file\"\n";
    let (ws, mut cmd) = cmd(&server, Some(config));
    ws.write(
        "p.txt",
        "# fox param.frame_count=12\na fox\n\n# owl\nan owl\n",
    );
    let run = cmd
        .args(["--input", "p.txt", "-o", "out", "-m", FLARE])
        .args(["--param", "frame_count=8", "--param", "user=flag"])
        .run();
    assert_code(&run, 0);
    let fields = |needle: &str| {
        server
            .image_requests()
            .into_iter()
            .find(|r| r.prompt().contains(needle))
            .unwrap_or_else(|| panic!("no request for {needle}"))
            .fields
    };
    let fox = fields("fox");
    assert_eq!(fox["frame_count"], json!(12), "the header's");
    assert_eq!(fox["user"], json!("flag"), "the flag's");
    assert_eq!(fox["frame_duration_ms"], json!(100), "the file's");
    let owl = fields("owl");
    assert_eq!(owl["frame_count"], json!(8), "the flag's");
    assert_eq!(owl["frame_duration_ms"], json!(100), "the file's");

    // The manifest records them with the fields sent.
    let records = ws.manifest("out");
    let fox = record(&records, "image.fox.01.hd.png");
    let text = fox.to_string();
    assert!(text.contains("\"frame_count\":12"), "{text}");
}

#[test]
fn the_config_files_param_table_is_sent_as_toml_typed_it() {
    let server = FakeServer::start();
    let (_ws, mut cmd) = cmd(&server, Some("[param]\nframe_count = 6\n"));
    let run = cmd.args(["a fox", "-o", "out", "-m", FLARE]).run();
    assert_code(&run, 0);
    assert_eq!(server.image_requests()[0].fields["frame_count"], json!(6));
}

#[test]
fn a_param_genimg_sets_itself_is_refused_before_any_request_naming_the_flag() {
    let cases: &[(&[&str], Option<&str>, &str, &str)] = &[
        (
            &["--param", "size=1536x1024"],
            None,
            "--param size=1536x1024",
            "use --size",
        ),
        (
            &["--param", "model=dall-e-3"],
            None,
            "--param model=dall-e-3",
            "use --model",
        ),
        (&["--param", "n=2"], None, "--param n=2", "use --count"),
        (
            &["--param", "prompt=x"],
            None,
            "--param prompt=x",
            "the prompt's text",
        ),
        (
            &["--param", "quality=low"],
            None,
            "--param quality=low",
            "use --quality",
        ),
        (
            &["--param", "output_format=gif"],
            None,
            "--param output_format=gif",
            "use --format",
        ),
        (
            &["--param", "output_compression=50"],
            None,
            "--param output_compression=50",
            "use --compression",
        ),
        (
            &["--param", "background=opaque"],
            None,
            "--param background=opaque",
            "use --background",
        ),
        (
            &["--param", "moderation=low"],
            None,
            "--param moderation=low",
            "use --moderation",
        ),
        (
            &["--param", "input_fidelity=high"],
            None,
            "--param input_fidelity=high",
            "use --input-fidelity",
        ),
        (
            &["--param", "complexity=low"],
            None,
            "--param complexity=low",
            "use --complexity",
        ),
        (
            &["--param", "response_format=url"],
            None,
            "--param response_format=url",
            "b64_json",
        ),
        (
            &["--param", "image=x"],
            None,
            "--param image=x",
            "use --reference-image",
        ),
        (&["--param", "mask=x"], None, "--param mask=x", "use --mask"),
        (
            &["--param", "stream=true"],
            None,
            "--param stream=true",
            "use --stream",
        ),
        (
            &[],
            Some("[param]\nsize = \"1536x1024\"\n"),
            "genimg.toml: param.size = \"1536x1024\"",
            "use --size",
        ),
    ];
    for (args, config, given, instead) in cases {
        let server = FakeServer::start();
        let (_ws, mut cmd) = cmd(&server, *config);
        let run = cmd.args(["a fox", "-o", "out"]).args(*args).run();
        assert_code(&run, 2);
        let key = given
            .split_once(['=', ' '])
            .map(|(_, rest)| rest)
            .unwrap_or(given);
        let key = key.trim_start_matches("param.");
        let key = key.split(['=', ' ']).next().unwrap();
        assert!(
            run.stderr
                .contains(&format!("{given}: genimg sets `{key}` itself: ")),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stderr.contains(instead), "{args:?}: {}", run.stderr);
        assert_eq!(server.requests().len(), 0, "{args:?}");
    }

    // On a header line, the error names the line.
    let server = FakeServer::start();
    let (ws, mut cmd) = cmd(&server, None);
    ws.write("p.txt", "# fox\na fox\n\n# owl param.size=auto\nan owl\n");
    let run = cmd.args(["--input", "p.txt", "-o", "out"]).run();
    assert_code(&run, 2);
    assert!(
        run.stderr
            .contains("p.txt:4: param.size=auto: genimg sets `size` itself: use --size"),
        "{}",
        run.stderr
    );
    assert_eq!(server.requests().len(), 0);
}

#[test]
fn a_field_the_model_does_not_take_fails_with_the_400_and_the_param_that_sent_it() {
    let server = FakeServer::start();
    let (ws, mut cmd) = cmd(&server, None);
    ws.write("p.txt", "# fox param.frames=8\na fox\n");
    let run = cmd
        .args(["--input", "p.txt", "-o", "out"])
        .args(["--param", "user=me"])
        .run();
    assert_code(&run, 1);
    assert!(
        run.stderr.contains(
            "Unknown parameter: 'frames'. (code unknown_parameter, param frames, request"
        ),
        "the service's 400: {}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("(sent because of p.txt:1: param.frames=8)"),
        "the param to drop: {}",
        run.stderr
    );
    assert!(!run.stderr.contains("--param user=me"), "{}", run.stderr);
    assert_eq!(server.image_requests().len(), 1, "a 400 is not retried");
    let records = ws.manifest("out");
    let failed = record(&records, "image.fox.01.hd.png");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("(sent because of p.txt:1: param.frames=8)"),
        "{failed}"
    );

    // A bad value of a field the model takes names it too.
    let server = FakeServer::start();
    let (_ws, mut cmd) = self::cmd(&server, None);
    let run = cmd
        .args([
            "a fox",
            "-o",
            "out",
            "-m",
            FLARE,
            "--param",
            "frame_count=99",
        ])
        .run();
    assert_code(&run, 1);
    assert!(
        run.stderr
            .contains("(sent because of --param frame_count=99)"),
        "{}",
        run.stderr
    );
}

#[test]
fn params_are_part_of_the_identity_so_changing_one_makes_the_image_stale() {
    let server = FakeServer::start();
    let (ws, _) = cmd(&server, None);
    ws.write("p.txt", "# fox\na fox\n");
    let base = ["--input", "p.txt", "-o", "out", "-m", FLARE];
    let run = |extra: &[&str]| genimg(&ws, Some(&server)).args(base).args(extra).run();
    let stale = |run: &Run| run.stdout.contains("STALE") || run.stderr.contains("Stale (1)");

    // Made without params, the image stays current when none are given...
    assert_code(&run(&[]), 0);
    let plain = run(&["--dry-run", "-v"]);
    assert!(!stale(&plain), "{}", plain.stdout);
    // ...and turns stale with one.
    let kept = run(&["--param", "frame_count=8"]);
    assert_code(&kept, 0);
    assert!(stale(&kept), "{}", kept.stderr);
    assert_eq!(server.image_requests().len(), 1, "kept, not remade");

    let remade = run(&["--param", "frame_count=8", "--remake-stale"]);
    assert_code(&remade, 0);
    assert_eq!(server.image_requests().len(), 2);
    assert_eq!(server.image_requests()[1].fields["frame_count"], json!(8));
    // Now current with that param; another value is stale again.
    let same = run(&["--param", "frame_count=8", "--dry-run", "-v"]);
    assert!(!stale(&same), "{}", same.stdout);
    let other = run(&["--param", "frame_count=9", "--dry-run", "-v"]);
    assert!(stale(&other), "{}", other.stdout);
}

#[test]
fn a_batch_line_carries_the_params_and_a_refused_one_names_its_param() {
    let server = FakeServer::start();
    let (ws, mut cmd) = cmd(&server, None);
    ws.write("p.txt", "# fox\na fox\n\n# owl param.frames=8\nan owl\n");
    let run = run_within(
        cmd.args(["--input", "p.txt", "-o", "out", "-m", FLARE, "--batch"])
            .args(["--poll-interval", "0.05", "--param", "frame_count=8"]),
        Duration::from_secs(30),
    );
    assert_code(&run, 1);
    let input = server
        .uploaded_files()
        .into_iter()
        .find(|f| f.purpose == "batch")
        .expect("an input file");
    let lines = server.file_lines(&input.id);
    let bodies: Vec<&Value> = lines.iter().map(|l| &l["body"]).collect();
    assert!(
        bodies.iter().all(|b| b["frame_count"] == json!(8)),
        "{bodies:?}"
    );
    assert!(
        run.stderr
            .contains("(sent because of p.txt:4: param.frames=8)"),
        "{}",
        run.stderr
    );
    assert_eq!(ws.files("out"), ["image.fox.01.hd.png"]);
}

#[test]
fn gemini_gets_the_params_in_generation_config_and_its_400_names_them() {
    const PRO: &str = "gemini-3-pro-image";
    let gemini = FakeGemini::start();
    let ws = Workspace::new();
    let mut cmd = genimg(&ws, None);
    with_gemini(&mut cmd, &gemini);
    let run = cmd
        .args(["a fox", "-o", "out", "-m", PRO])
        .args([
            "--param",
            "temperature=0.5",
            "--param",
            "stopSequences=[\"x\"]",
        ])
        .args(["--param", "thinkingConfig={\"thinkingBudget\":0}"])
        .run();
    assert_code(&run, 0);
    let body = &gemini.generate_requests()[0].body;
    let config = &body["generationConfig"];
    assert_eq!(config["temperature"], json!(0.5));
    assert_eq!(config["stopSequences"], json!(["x"]));
    assert_eq!(config["thinkingConfig"], json!({"thinkingBudget": 0}));
    assert_eq!(
        config["responseModalities"],
        json!(["IMAGE"]),
        "genimg's own"
    );
    assert!(
        body.get("temperature").is_none(),
        "in generationConfig only"
    );

    // A field Gemini does not know: 400 INVALID_ARGUMENT, with the param that sent it.
    let gemini = FakeGemini::start();
    let ws = Workspace::new();
    let mut cmd = genimg(&ws, None);
    with_gemini(&mut cmd, &gemini);
    let run = cmd
        .args(["a fox", "-o", "out", "-m", PRO, "--param", "frames=8"])
        .run();
    assert_code(&run, 1);
    assert!(
        run.stderr.contains("Unknown name \"frames\""),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("(sent because of --param frames=8)"),
        "{}",
        run.stderr
    );
    assert_eq!(gemini.generate_requests().len(), 1);

    // genimg's own generationConfig fields are refused, with no request.
    for (param, instead) in [
        ("imageConfig={}", "use --aspect-ratio and --image-size"),
        ("responseModalities=[\"TEXT\"]", "image-only"),
    ] {
        let gemini = FakeGemini::start();
        let ws = Workspace::new();
        let mut cmd = genimg(&ws, None);
        with_gemini(&mut cmd, &gemini);
        let run = cmd
            .args(["a fox", "-o", "out", "-m", PRO, "--param", param])
            .run();
        assert_code(&run, 2);
        assert!(run.stderr.contains(instead), "{param}: {}", run.stderr);
        assert!(gemini.requests().is_empty(), "{param}");
    }
}
