//! Every option on a model that takes it, and refused with no request on one that does not.

use crate::support::*;

/// Runs one prompt with `args` and returns the run and the first request's fields.
fn sent(args: &[&str]) -> (Run, Recorded, Workspace) {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("ref.png", images::fixture("reference.png"));
    ws.write("style.txt", "A woodcut print, black ink on cream paper.\n");
    let run = genimg(&ws, Some(&server))
        .args(["a lighthouse", "-o", "out"])
        .args(args)
        .run();
    assert_code(&run, 0);
    let request = server.image_requests().remove(0);
    (run, request, ws)
}

#[test]
fn each_option_reaches_a_model_that_takes_it() {
    let cases: &[(&[&str], &str, &str)] = &[
        (&["--size", "1536x1024"], "size", "1536x1024"),
        (&["--size", "2048x1152"], "size", "2048x1152"),
        (&["--size", "auto"], "size", "auto"),
        (&["--quality", "low"], "quality", "low"),
        (
            &["--quality", "xhigh", "-m", "gpt-image-2.5-flare"],
            "quality",
            "xhigh",
        ),
        (
            &["--quality", "max", "-m", "gpt-image-2.6-sunburst"],
            "quality",
            "max",
        ),
        (&["--quality", "hd", "-m", "dall-e-3"], "quality", "hd"),
        // The seed's words mean its levels on GPT image models too.
        (&["--quality", "hd"], "quality", "high"),
        (&["--quality", "standard"], "quality", "medium"),
        (&["--format", "webp"], "output_format", "webp"),
        (
            &["--format", "jpeg", "--compression", "60"],
            "output_compression",
            "60",
        ),
        (
            &["--background", "transparent"],
            "background",
            "transparent",
        ),
        (
            &["--background", "opaque", "--format", "jpeg"],
            "background",
            "opaque",
        ),
        (&["--moderation", "low"], "moderation", "low"),
        (
            &[
                "-m",
                "gpt-image-1.5",
                "--reference-image",
                "ref.png",
                "--input-fidelity",
                "high",
            ],
            "input_fidelity",
            "high",
        ),
        (
            &["-m", "gpt-image-2.6-flare", "--complexity", "high"],
            "complexity",
            "high",
        ),
    ];
    for (args, field, value) in cases {
        let (_, r, _) = sent(args);
        assert_eq!(r.field(field).as_deref(), Some(*value), "{args:?}");
    }
}

#[test]
fn the_quality_given_names_the_files_and_wins_over_low_res() {
    let (_, r, ws) = sent(&["--quality", "low", "--low-res"]);
    assert_eq!(r.field("quality").as_deref(), Some("low"));
    assert_eq!(ws.files("out"), ["image_01_low.png"]);
}

#[test]
fn the_extension_follows_the_format_and_the_bytes_match_it() {
    for (format, file, magic) in [
        ("jpeg", "image_01_hd.jpeg", &b"\xff\xd8\xff"[..]),
        ("webp", "image_01_hd.webp", &b"RIFF"[..]),
        ("png", "image_01_hd.png", &b"\x89PNG"[..]),
    ] {
        let (_, _, ws) = sent(&["--format", format]);
        assert_eq!(ws.files("out"), [file], "{format}");
        assert!(
            ws.read(&format!("out/{file}")).starts_with(magic),
            "{format}"
        );
    }
}

#[test]
fn a_style_is_a_preamble_to_every_prompt() {
    let (_, r, _) = sent(&["--style", "In the style of a watercolour."]);
    assert_eq!(r.prompt(), "In the style of a watercolour.\n\na lighthouse");
    let (_, r, _) = sent(&["--style", "@style.txt"]);
    assert_eq!(
        r.prompt(),
        "A woodcut print, black ink on cream paper.\n\na lighthouse"
    );
}

/// Asserts exit code 2, a message containing `needle`, and that nothing was sent.
#[track_caller]
fn refused(args: &[&str], needle: &str) {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("ref.png", images::fixture("reference.png"));
    let run = genimg(&ws, Some(&server))
        .args(["a lighthouse", "-o", "out"])
        .args(args)
        .run();
    assert_code(&run, 2);
    assert!(
        run.stderr.contains(needle),
        "{args:?}: {needle:?} not in:\n{}",
        run.stderr
    );
    assert!(server.requests().is_empty(), "{args:?}: a request was sent");
    assert!(
        ws.files("out").is_empty(),
        "{args:?}: something was written"
    );
}

#[test]
fn each_option_is_refused_by_a_model_that_does_not_take_it() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["-m", "dall-e-3", "--size", "1536x1024"],
            "--size 1536x1024: dall-e-3 takes the sizes 1024x1024, 1792x1024, 1024x1792",
        ),
        (
            &["--size", "1000x1000"],
            "--size 1000x1000: 1000x1000: both sides must be multiples of 16",
        ),
        (
            &["-m", "gpt-image-1.5", "--size", "2048x1152"],
            "gpt-image-1.5 takes the sizes",
        ),
        (
            &["--quality", "xhigh"],
            "--quality xhigh: gpt-image-2 takes the qualities low, medium, high, auto",
        ),
        // The seed's words mean high and medium on GPT image models (see
        // hd_and_standard_mean_high_and_medium_on_gpt_image_models); a model with no
        // quality refuses them.
        (
            &["-m", "dall-e-2", "--quality", "hd"],
            "--quality hd: dall-e-2 takes no quality",
        ),
        (
            &["-m", "dall-e-3", "--quality", "low"],
            "dall-e-3 takes the qualities hd, standard",
        ),
        (
            &["-m", "dall-e-2", "--quality", "high"],
            "dall-e-2 takes no quality",
        ),
        (
            &["-m", "dall-e-3", "--format", "webp"],
            "--format webp: dall-e-3 does not take an output format",
        ),
        (
            &["-m", "dall-e-3", "--compression", "50"],
            "--compression 50: dall-e-3 does not take a compression level",
        ),
        (
            &["--compression", "50"],
            "--compression 50: compression applies to JPEG and WebP output",
        ),
        (
            &["-m", "dall-e-2", "--background", "opaque"],
            "--background opaque: dall-e-2 does not take a background",
        ),
        (
            &["--background", "transparent", "--format", "jpeg"],
            "--background transparent: a transparent background needs PNG or WebP",
        ),
        (
            &["-m", "dall-e-3", "--moderation", "low"],
            "--moderation low: dall-e-3 does not take a moderation level",
        ),
        (
            &["--reference-image", "ref.png", "--input-fidelity", "high"],
            "--input-fidelity high: gpt-image-2 does not take an input fidelity",
        ),
        (
            &["-m", "gpt-image-1.5", "--input-fidelity", "low"],
            "--input-fidelity low: input fidelity applies to edits",
        ),
        (
            &["-m", "gpt-image-2.5-flare", "--complexity", "low"],
            "--complexity low: gpt-image-2.5-flare does not take a complexity",
        ),
        (
            &["-m", "dall-e-3", "--reference-image", "ref.png"],
            "--reference-image: dall-e-3 cannot edit images",
        ),
        (
            &["--style", "@missing.txt"],
            "--style @missing.txt: cannot read missing.txt",
        ),
        (
            &["--format", "bmp"],
            "`bmp` is not one of png, jpeg, webp, gif, svg",
        ),
        (
            &["--compression", "101"],
            "`101` is not a whole number from 0 to 100",
        ),
    ];
    for (args, needle) in cases {
        refused(args, needle);
    }
}

#[test]
fn up_to_sixteen_references_and_not_one_more() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let mut args: Vec<String> = vec!["a collage".into(), "-o".into(), "out".into()];
    for i in 0..16 {
        let name = format!("r{i}.png");
        ws.write(&name, images::fixture("reference.png"));
        args.extend(["--reference-image".into(), name]);
    }
    let run = genimg(&ws, Some(&server)).args(&args).run();
    assert_code(&run, 0);
    let r = &server.image_requests()[0];
    assert_eq!(r.files.len(), 16);
    assert!(r.files.iter().all(|f| f.name == "image[]"));

    ws.write("r16.png", images::fixture("reference.png"));
    args.extend(["--reference-image".into(), "r16.png".into()]);
    let run = genimg(&ws, Some(&server)).args(&args).run();
    assert_code(&run, 2);
    assert!(
        run.stderr
            .contains("--reference-image is given 17 times; gpt-image-2 takes at most 16"),
        "{}",
        run.stderr
    );
    assert_eq!(server.image_requests().len(), 1);
}

#[test]
fn header_options_override_the_command_line_for_their_prompt() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("refs/brand.png", images::fixture("reference.png"));
    ws.write(
        "prompts/p.txt",
        "# plain\na lighthouse\n\n\
         # wide size=1536x1024 quality=low count=2 ref=../refs/brand.png\na harbour\n\n\
         # styled style=\"Pencil sketch.\" format=webp\na boat\n",
    );
    let run = genimg(&ws, Some(&server))
        .args([
            "--input",
            "prompts/p.txt",
            "-o",
            "out",
            "--quality",
            "medium",
        ])
        .run();
    assert_code(&run, 0);
    assert_eq!(
        ws.files("out"),
        [
            "image.plain.01.medium.png",
            "image.styled.01.medium.webp",
            "image.wide.01.low.png",
            "image.wide.02.low.png",
        ]
    );
    let requests = server.image_requests();
    let by = |prompt: &str| {
        requests
            .iter()
            .find(|r| r.prompt().ends_with(prompt))
            .unwrap_or_else(|| panic!("no request for {prompt}"))
    };
    let plain = by("a lighthouse");
    assert_eq!(plain.field("quality").as_deref(), Some("medium"));
    assert_eq!(plain.field("size").as_deref(), Some("1024x1024"));
    assert!(!plain.is_multipart);
    let wide = by("a harbour");
    assert_eq!(wide.field("quality").as_deref(), Some("low"));
    assert_eq!(wide.field("size").as_deref(), Some("1536x1024"));
    assert_eq!(wide.path, "/v1/images/edits");
    assert_eq!(wide.files[0].bytes, images::fixture("reference.png"));
    let styled = by("a boat");
    assert_eq!(styled.prompt(), "Pencil sketch.\n\na boat");
    assert_eq!(styled.field("output_format").as_deref(), Some("webp"));
}

#[test]
fn header_option_errors_name_the_file_and_line() {
    let cases = [
        (
            "# a\nx\n# b quality=ultra\ny\n",
            "p.txt:3: quality=ultra: `ultra` is not one of",
        ),
        (
            "# a sizes=1x1\nx\n",
            "p.txt:1: sizes: unknown option; a header takes model, count, size",
        ),
        (
            "# a\nx\n\n# b model=dall-e-3 size=1536x1024\ny\n",
            "p.txt:4: size=1536x1024: dall-e-3 takes the sizes",
        ),
        (
            "# a ref=nope.png\nx\n",
            "p.txt:1: ref=nope.png: no such file",
        ),
        (
            "# a count=0\nx\n",
            "p.txt:1: count=0: `0` is not a whole number of 1 or more",
        ),
        (
            "# a size=1024x1024 wide\nx\n",
            "p.txt:1: `wide` is not an option: write key=value",
        ),
        (
            "# a\nx\n# b count=2 count=3\ny\n",
            "p.txt:3: the option `count` is given twice in this header (`count=2`, then `count=3`)",
        ),
    ];
    for (text, needle) in cases {
        let server = FakeServer::start();
        let ws = Workspace::new();
        ws.write("p.txt", text);
        let run = genimg(&ws, Some(&server))
            .args(["--input", "p.txt", "-o", "out"])
            .run();
        assert_code(&run, 2);
        assert!(
            run.stderr.contains(needle),
            "{needle:?} not in:\n{}",
            run.stderr
        );
        assert!(server.requests().is_empty());
    }
}

#[test]
fn a_seed_file_reads_as_before() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", "# one\nfirst # not a header\n# two\nsecond\n");
    let run = genimg(&ws, Some(&server))
        .args(["--input", "p.txt", "-o", "out"])
        .run();
    assert_code(&run, 0);
    assert_eq!(server.prompts(), ["first # not a header", "second"]);
}

/// `hd` and `standard`, the seed's quality words, mean `high` and `medium` on a GPT image
/// model, from a flag or a prompt header, and name the files as they always did; a model
/// with no quality at all still refuses them, naming where the value came from.
#[test]
fn hd_and_standard_mean_high_and_medium_on_gpt_image_models() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", "# a quality=standard\nx\n\n# b\ny\n");
    let run = genimg(&ws, Some(&server))
        .args(["--input", "p.txt", "-o", "out", "--quality", "hd"])
        .run();
    assert_code(&run, 0);
    assert_eq!(
        ws.files("out"),
        ["image.a.01.standard.png", "image.b.01.hd.png"]
    );
    let mut sent: Vec<(String, String)> = server
        .image_requests()
        .iter()
        .map(|r| (r.prompt(), r.field("quality").unwrap_or_default()))
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        [
            ("x".to_owned(), "medium".to_owned()),
            ("y".to_owned(), "high".to_owned())
        ]
    );
    let refused = genimg(&ws, None)
        .args([
            "a cat",
            "-o",
            "out2",
            "--dry-run",
            "--quality",
            "hd",
            "-m",
            "dall-e-2",
        ])
        .run();
    assert_code(&refused, 2);
    assert!(
        refused
            .stderr
            .contains("--quality hd: dall-e-2 takes no quality"),
        "{}",
        refused.stderr
    );
}

#[test]
fn the_models_subcommand_prints_the_table() {
    let ws = Workspace::new();
    let run = genimg(&ws, None).arg("models").run();
    assert_code(&run, 0);
    for needle in [
        "gpt-image-2.6-flare  (live)",
        "gpt-image-1.5  (shut down on 2026-12-01; use gpt-image-2.6-sunburst or gpt-image-2.6-flare)",
        "dall-e-3  (removed from OpenAI on 2026-05-12; use gpt-image-2)",
        "qualities   low, medium, high, xhigh, max, auto",
        "--complexity",
        "--input-fidelity",
        "high $0.211",
    ] {
        assert!(
            run.stdout.contains(needle),
            "{needle:?} not in:\n{}",
            run.stdout
        );
    }
}

#[test]
fn a_retired_model_warns_and_names_its_successor() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "-o", "out", "-m", "gpt-image-1"])
        .run();
    assert_code(&run, 0);
    assert!(
        run.stderr.contains(
            "warning: gpt-image-1 was removed from OpenAI on 2026-10-23; only other servers may \
             still run it; use gpt-image-2 instead (--model gpt-image-2)"
        ),
        "{}",
        run.stderr
    );
}

/// The models shut down on 2026-12-01 are still sent (a compatible service may serve them),
/// with a warning that names OpenAI's replacement; if the service does not know them, the
/// stop names it too.
#[test]
fn a_model_shut_down_today_warns_names_its_successor_and_is_still_sent() {
    let server = FakeServer::with(Options {
        script: Some(std::sync::Arc::new(|_: &Incoming| {
            Action::error(
                404,
                "model_not_found",
                "The model `gpt-image-1.5` does not exist or you do not have access to it.",
            )
        })),
        ..Options::default()
    });
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "-o", "out", "-m", "gpt-image-1.5"])
        .run();
    assert_code(&run, 3);
    assert_eq!(server.image_requests().len(), 1, "still sent");
    assert_eq!(
        run.stderr
            .matches("warning: gpt-image-1.5 was shut down on 2026-12-01; use gpt-image-2.6-sunburst or gpt-image-2.6-flare instead")
            .count(),
        1,
        "warned once: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "gpt-image-1.5: shut down on 2026-12-01; use gpt-image-2.6-sunburst or \
             gpt-image-2.6-flare instead."
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn model_not_found_suggests_live_models() {
    let ws = Workspace::new();
    let server = FakeServer::start();
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "-o", "out", "-m", "gpt-image-9"])
        .run();
    assert_code(&run, 3);
    assert!(
        run.stderr
            .contains("Live models: gpt-image-2.6-flare, gpt-image-2.6-sunburst"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_near_miss_model_name_is_questioned_but_still_sent() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "-o", "out", "-m", "gpt-image2"])
        .run();
    // The fake knows no gpt-image2: the service's 404 stops the run.
    assert_code(&run, 3);
    let warning =
        "warning: unknown model gpt-image2; did you mean gpt-image-2? (genimg models lists them)";
    let stderr = &run.stderr;
    let at = stderr.find(warning).unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        at < stderr.find("Stopping").unwrap_or(usize::MAX),
        "the warning comes before any request: {stderr}"
    );
    assert_eq!(stderr.matches(warning).count(), 1, "{stderr}");
    let requests = server.image_requests();
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|r| r.field("model").as_deref() == Some("gpt-image2")),
        "sent as given"
    );
    for needle in [
        "pick a live model with --model (genimg models lists them)",
        "Did you mean gpt-image-2?",
        "Live models: gpt-image-2.6-flare, gpt-image-2.6-sunburst",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in:\n{stderr}");
    }
    assert!(!stderr.contains("README"), "{stderr}");
}

#[test]
fn a_near_miss_model_name_in_a_header_is_questioned_in_a_dry_run() {
    let ws = Workspace::new();
    ws.write(
        "p.txt",
        "# a\nx\n\n# b model=GPT-Image-2.6-Flare\ny\n\n# c model=my-model\nz\n",
    );
    let run = genimg(&ws, None)
        .args(["--input", "p.txt", "-o", "out", "--dry-run"])
        .run();
    assert_code(&run, 0);
    assert!(
        run.stderr.contains(
            "warning: unknown model GPT-Image-2.6-Flare; did you mean gpt-image-2.6-flare? \
             (genimg models lists them)"
        ),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("unknown model my-model"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("unknown model gpt-image-2;"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_model_name_far_from_any_known_one_draws_no_guess() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "-o", "out", "-m", "my-own-model"])
        .run();
    assert_code(&run, 3);
    assert!(!run.stderr.contains("did you mean"), "{}", run.stderr);
    assert!(!run.stderr.contains("Did you mean"), "{}", run.stderr);
}

#[test]
fn an_option_refused_because_of_a_headers_model_names_that_line() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", "# a\nx\n\n# c model=dall-e-3\ny\n");
    let run = genimg(&ws, Some(&server))
        .args(["--input", "p.txt", "-o", "out", "--format", "webp"])
        .run();
    assert_code(&run, 2);
    assert!(
        run.stderr.contains(
            "p.txt:4: for the prompt `c`: --format webp: dall-e-3 does not take an output format"
        ),
        "{}",
        run.stderr
    );
    assert!(server.requests().is_empty());
}
