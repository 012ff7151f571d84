//! `--mask`: an edit's mask, sent as the `mask` part (or in a batch line beside the images),
//! checked before any request, part of the image's identity, recorded and shown.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

/// The reference fixture is 32x32: a mask of that size fits it.
const REF: &str = "reference.png";

/// A workspace with `ref.png` (the fixture) and `mask.png` (an RGBA mask of its size).
fn masked_ws() -> Workspace {
    let ws = Workspace::new();
    ws.write("ref.png", images::fixture(REF));
    ws.write("mask.png", images::mask_png(32, 32));
    ws
}

const EDIT: [&str; 7] = [
    "a cat",
    "--reference-image",
    "ref.png",
    "--mask",
    "mask.png",
    "--dst-dir",
    "out",
];

/// The parts of a multipart request: name, file name, type.
fn parts(r: &Recorded) -> Vec<(&str, Option<&str>, Option<&str>)> {
    r.files
        .iter()
        .map(|f| {
            (
                f.name.as_str(),
                f.file_name.as_deref(),
                f.content_type.as_deref(),
            )
        })
        .collect()
}

#[test]
fn a_masked_edit_sends_the_mask_part_byte_exact() {
    let server = FakeServer::start();
    let ws = masked_ws();
    let run = genimg(&ws, Some(&server)).args(EDIT).run();
    assert_code(&run, 0);
    let requests = server.image_requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.path, "/v1/images/edits");
    assert_eq!(
        parts(r),
        [
            ("image", Some("ref.png"), Some("image/png")),
            ("mask", Some("mask.png"), Some("image/png")),
        ]
    );
    assert_eq!(r.files[0].bytes, images::fixture(REF));
    assert_eq!(r.files[1].bytes, images::mask_png(32, 32));
    assert!(!r.fields.contains_key("mask"), "a file part, not a field");

    // With several references the mask follows the `image[]` parts, sized as the first.
    let server = FakeServer::start();
    ws.write("b.webp", images::fixture("reference.webp"));
    let run = genimg(&ws, Some(&server))
        .args(EDIT)
        .args(["--reference-image", "b.webp", "--overwrite"])
        .run();
    assert_code(&run, 0);
    let r = &server.image_requests()[0];
    assert_eq!(
        parts(r),
        [
            ("image[]", Some("ref.png"), Some("image/png")),
            ("image[]", Some("b.webp"), Some("image/webp")),
            ("mask", Some("mask.png"), Some("image/png")),
        ]
    );
    assert_eq!(r.files[2].bytes, images::mask_png(32, 32));
}

#[test]
fn a_gray_and_alpha_mask_is_taken() {
    let server = FakeServer::start();
    let ws = masked_ws();
    let gray = images::png_of(32, 32, png::ColorType::GrayscaleAlpha, 3);
    ws.write("mask.png", &gray);
    let run = genimg(&ws, Some(&server)).args(EDIT).run();
    assert_code(&run, 0);
    assert_eq!(server.image_requests()[0].files[1].bytes, gray);
}

#[test]
fn a_headers_mask_is_relative_to_the_prompt_file_and_a_config_files_to_it() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("prompts/ref.png", images::fixture(REF));
    ws.write("prompts/m.png", images::mask_png(32, 32));
    ws.write(
        "prompts/p.txt",
        "# cat ref=ref.png mask=m.png\na cat\n\n# dog ref=ref.png\na dog\n",
    );
    let run = genimg(&ws, Some(&server))
        .args(["--input", "prompts/p.txt", "-o", "out"])
        .run();
    assert_code(&run, 0);
    let mut requests = server.image_requests();
    requests.sort_by_key(Recorded::prompt);
    let masks: Vec<(String, Option<Vec<u8>>)> = requests
        .iter()
        .map(|r| {
            let mask = r.files.iter().find(|f| f.name == "mask");
            (r.prompt(), mask.map(|f| f.bytes.clone()))
        })
        .collect();
    assert_eq!(
        masks,
        [
            ("a cat".to_owned(), Some(images::mask_png(32, 32))),
            ("a dog".to_owned(), None),
        ]
    );

    // The config file's `mask` is relative to the file; a flag overrides it.
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("ref.png", images::fixture(REF));
    ws.write("conf/m.png", images::mask_png(32, 32));
    ws.write("conf/genimg.toml", "mask = \"m.png\"\n");
    let run = genimg(&ws, Some(&server))
        .env("GENIMG_CONFIG", "conf/genimg.toml")
        .args(["a cat", "--reference-image", "ref.png", "-o", "out"])
        .run();
    assert_code(&run, 0);
    let r = &server.image_requests()[0];
    assert_eq!(r.files[1].name, "mask");
    assert_eq!(r.files[1].bytes, images::mask_png(32, 32));
}

// Every bad mask is refused before any request, with exit code 2, naming where it was given,
// the file and what is wrong with it.

const HANG: Duration = Duration::from_secs(20);

/// Runs `genimg ARGS` against a fresh fake in `ws` and checks it was refused, naming
/// `given` (`--mask m.png`, `p.txt:1: mask=m.png`) and `problem`, with no request made.
#[track_caller]
fn refused(ws: &Workspace, args: &[&str], given: &str, problem: &str) {
    let server = FakeServer::start();
    let run = run_within(genimg(ws, Some(&server)).args(args), HANG);
    assert_code(&run, 2);
    assert!(
        server.requests().is_empty(),
        "{:?}",
        server.requests().len()
    );
    assert!(
        run.stderr.contains(&format!("{given}: {problem}")),
        "expected `{given}: {problem}` in:\n{}",
        run.stderr
    );
}

/// The arguments of a masked edit of `ref.png` with the mask `mask`.
fn with_mask(mask: &str) -> Vec<&str> {
    vec![
        "a cat",
        "--reference-image",
        "ref.png",
        "--mask",
        mask,
        "-o",
        "out",
    ]
}

#[test]
fn a_mask_that_is_not_a_png() {
    let ws = masked_ws();
    ws.write("m.jpg", images::fixture("reference.jpg"));
    ws.write("m.webp", images::fixture("reference.webp"));
    ws.write("notes.png", "these are notes, not pixels");
    refused(
        &ws,
        &with_mask("m.jpg"),
        "--mask m.jpg",
        "is a JPEG image; a mask must be a PNG with an alpha channel",
    );
    refused(
        &ws,
        &with_mask("m.webp"),
        "--mask m.webp",
        "is a WebP image; a mask must be a PNG with an alpha channel",
    );
    refused(
        &ws,
        &with_mask("notes.png"),
        "--mask notes.png",
        "is not a PNG, JPEG or WebP image",
    );
    ws.write("cut.png", &images::mask_png(32, 32)[..20]);
    refused(
        &ws,
        &with_mask("cut.png"),
        "--mask cut.png",
        "is a truncated or damaged PNG image",
    );
}

#[test]
fn a_png_mask_without_an_alpha_channel() {
    let ws = masked_ws();
    for (name, color, kind) in [
        ("rgb.png", png::ColorType::Rgb, "an RGB PNG"),
        ("gray.png", png::ColorType::Grayscale, "a grayscale PNG"),
        // Transparency from a `tRNS` chunk is not an alpha channel.
        ("palette.png", png::ColorType::Indexed, "a palette PNG"),
    ] {
        ws.write(name, images::png_of(32, 32, color, 1));
        refused(
            &ws,
            &with_mask(name),
            &format!("--mask {name}"),
            &format!("is {kind} without an alpha channel; a mask must be a PNG with one"),
        );
    }
}

#[test]
fn a_mask_of_4_mb_or_more() {
    let ws = masked_ws();
    // Sparse: the size is what counts, and it is checked before reading.
    let sized = |name: &str, len: u64| {
        let path = ws.write(name, images::mask_png(32, 32));
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len)
            .unwrap();
    };
    sized("at.png", 4 * 1024 * 1024);
    sized("over.png", 40 * 1024 * 1024);
    sized("under.png", 4 * 1024 * 1024 - 1);
    refused(
        &ws,
        &with_mask("at.png"),
        "--mask at.png",
        "is 4 MB; a mask must be under 4 MB",
    );
    refused(
        &ws,
        &with_mask("over.png"),
        "--mask over.png",
        "is 40 MB; a mask must be under 4 MB",
    );
    let mut dry = with_mask("under.png");
    dry.push("--dry-run");
    let run = run_within(genimg(&ws, None).args(&dry), HANG);
    assert_code(&run, 0);
}

#[test]
fn a_mask_of_another_size_than_the_first_reference() {
    let ws = masked_ws();
    ws.write("small.png", images::mask_png(16, 16));
    ws.write("wide.png", images::mask_png(64, 32));
    refused(
        &ws,
        &with_mask("small.png"),
        "--mask small.png",
        "is 16x16; the first reference image, ref.png, is 32x32: a mask must be the same size",
    );
    // The first reference decides, not a later one of the mask's size.
    ws.write("wide-ref.png", images::mask_png(64, 32));
    let mut args = with_mask("wide.png");
    args.extend(["--reference-image", "wide-ref.png"]);
    refused(
        &ws,
        &args,
        "--mask wide.png",
        "is 64x32; the first reference image, ref.png, is 32x32",
    );
}

#[test]
fn a_mask_without_references() {
    let ws = masked_ws();
    refused(
        &ws,
        &["a cat", "--mask", "mask.png", "-o", "out"],
        "--mask mask.png",
        "a mask applies to edits: give reference images as well",
    );
    // In a prompt file, the header's place is named.
    ws.write("p.txt", "# cat\na cat\n\n# dog mask=mask.png\na dog\n");
    refused(
        &ws,
        &["--input", "p.txt", "-o", "out"],
        "p.txt:4: mask=mask.png",
        "a mask applies to edits",
    );
}

#[test]
fn a_mask_that_is_missing_a_directory_or_a_fifo() {
    let ws = masked_ws();
    refused(
        &ws,
        &with_mask("gone.png"),
        "--mask gone.png",
        "no such file",
    );
    std::fs::create_dir(ws.join("folder.png")).unwrap();
    refused(
        &ws,
        &with_mask("folder.png"),
        "--mask folder.png",
        "is a directory, not a regular file",
    );
    #[cfg(unix)]
    {
        mkfifo(&ws.join("pipe.png"));
        refused(
            &ws,
            &with_mask("pipe.png"),
            "--mask pipe.png",
            "is a FIFO (named pipe), not a regular file",
        );
    }
    // From the config file, its key is named.
    ws.write("genimg.toml", "mask = \"gone.png\"\n");
    let server = FakeServer::start();
    let run = genimg(&ws, Some(&server))
        .env("GENIMG_CONFIG", "genimg.toml")
        .args(["a cat", "--reference-image", "ref.png", "-o", "out"])
        .run();
    assert_code(&run, 2);
    assert!(server.requests().is_empty());
    assert!(
        run.stderr
            .contains("genimg.toml: mask = \"gone.png\": no such file"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_mask_with_a_gemini_model() {
    let ws = masked_ws();
    let mut args = with_mask("mask.png");
    args.extend(["--model", "gemini-3-pro-image"]);
    refused(
        &ws,
        &args,
        "--mask mask.png",
        "gemini-3-pro-image takes no mask; masks are for the edits of OpenAI's image models",
    );
}

// Identity, manifest, gallery

/// The last manifest record of `out/image_01_hd.png`.
fn the_record(ws: &Workspace) -> Value {
    record(&ws.manifest("out"), "image_01_hd.png").clone()
}

#[test]
fn the_manifest_records_the_mask_and_the_gallery_shows_it() {
    let server = FakeServer::start();
    let ws = masked_ws();
    assert_code(&genimg(&ws, Some(&server)).args(EDIT).run(), 0);
    let mask = images::mask_png(32, 32);
    let r = the_record(&ws);
    assert_eq!(r["status"], "made");
    assert_eq!(r["operation"], "images/edits");
    assert_eq!(
        r["mask"],
        json!({
            "path": "mask.png",
            "format": "image/png",
            "bytes": mask.len(),
            "sha256": sha256_hex(&mask),
        })
    );
    assert!(r["request"].get("mask").is_none(), "{r}");
    let gallery = String::from_utf8(ws.read("out/index.html")).unwrap();
    assert!(
        gallery.contains("<p class=\"mask\">Edited with the mask mask.png</p>"),
        "{gallery}"
    );

    // Without a mask, the record has none and the gallery says none.
    let ws = masked_ws();
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "--reference-image", "ref.png", "-o", "out"])
        .run();
    assert_code(&run, 0);
    assert!(the_record(&ws).get("mask").is_none());
    let gallery = String::from_utf8(ws.read("out/index.html")).unwrap();
    assert!(!gallery.contains("Edited with the mask"));
}

#[test]
fn a_changed_mask_makes_the_image_stale_and_a_moved_one_does_not() {
    let server = FakeServer::start();
    let ws = masked_ws();
    // A named prompt: a changed ask leaves its image stale (a prompt from the command line
    // would take a new number instead).
    ws.write("p.txt", "# cat ref=ref.png\na cat\n");
    let edit = ["--input", "p.txt", "-o", "out"];
    let hash = || record(&ws.manifest("out"), "image.cat.01.hd.png")["request_hash"].clone();
    let stale = |run: &Run| {
        run.stderr.contains(
            "Stale (1): kept, but made from a different prompt or options than now; \
             --remake-stale makes them again:\n  image.cat.01.hd.png",
        )
    };
    // Made without a mask first: giving one makes the image stale.
    assert_code(&genimg(&ws, Some(&server)).args(edit).run(), 0);
    let plain = hash();
    let run = genimg(&ws, Some(&server))
        .args(edit)
        .args(["--mask", "mask.png"])
        .run();
    assert_code(&run, 0);
    assert!(stale(&run), "{}", run.stderr);
    assert_eq!(server.image_requests().len(), 1, "a stale image is kept");

    let run = genimg(&ws, Some(&server))
        .args(edit)
        .args(["--mask", "mask.png", "--remake-stale"])
        .run();
    assert_code(&run, 0);
    assert_eq!(server.image_requests().len(), 2);
    assert_eq!(server.image_requests()[1].files[1].name, "mask");
    let masked = hash();
    assert_ne!(masked, plain);

    // The same mask elsewhere is the same ask: nothing to make, nothing stale.
    ws.write("moved/other-name.png", images::mask_png(32, 32));
    let run = genimg(&ws, Some(&server))
        .args(edit)
        .args(["--mask", "moved/other-name.png"])
        .run();
    assert_code(&run, 0);
    assert!(!run.stderr.contains("Stale"), "{}", run.stderr);
    assert_eq!(server.image_requests().len(), 2);

    // Other pixels in the mask: stale again.
    ws.write("mask.png", images::png_of(32, 32, png::ColorType::Rgba, 9));
    let run = genimg(&ws, Some(&server))
        .args(edit)
        .args(["--mask", "mask.png"])
        .run();
    assert_code(&run, 0);
    assert!(stale(&run), "{}", run.stderr);

    // And without a mask, the first ask, which the masked image no longer answers.
    let run = genimg(&ws, Some(&server)).args(edit).run();
    assert_code(&run, 0);
    assert!(stale(&run), "{}", run.stderr);
    assert_eq!(server.image_requests().len(), 2);
    assert_eq!(hash(), masked);
}

// Batches

const POLL: [&str; 2] = ["--poll-interval", "0.05"];

fn batch_run(ws: &Workspace, server: &FakeServer) -> Run {
    run_within(
        genimg(ws, Some(server))
            .args(["--input", "p.txt", "-o", "out", "-n", "2", "--batch"])
            .args(POLL),
        Duration::from_secs(30),
    )
}

/// Records each batch line the fake runs.
fn recording() -> (
    BatchScript,
    std::sync::Arc<std::sync::Mutex<Vec<BatchLine>>>,
) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = seen.clone();
    let script: BatchScript = std::sync::Arc::new(move |line: &BatchLine| {
        keep.lock().unwrap().push(line.clone());
        Action::Answer
    });
    (script, seen)
}

#[test]
fn a_batch_uploads_the_mask_once_and_names_it_in_each_line() {
    let (script, seen) = recording();
    let server = FakeServer::with(Options {
        batch: BatchOptions {
            script: Some(script),
            ..BatchOptions::default()
        },
        ..Options::default()
    });
    let ws = masked_ws();
    ws.write(
        "p.txt",
        "# cat ref=ref.png mask=mask.png\na cat\n\n# dog ref=ref.png\na dog\n",
    );
    let run = batch_run(&ws, &server);
    assert_code(&run, 0);
    let vision: Vec<FileInfo> = server
        .uploaded_files()
        .into_iter()
        .filter(|f| f.purpose == "vision")
        .collect();
    assert_eq!(vision.len(), 2, "the reference and the mask, once each");
    let id_of = |bytes: &[u8]| {
        vision
            .iter()
            .find(|f| server.file_content(&f.id).as_deref() == Some(bytes))
            .map(|f| f.id.clone())
            .unwrap_or_else(|| panic!("no upload of these bytes: {vision:?}"))
    };
    let (reference, mask) = (
        id_of(&images::fixture(REF)),
        id_of(&images::mask_png(32, 32)),
    );
    let seen = seen.lock().unwrap();
    let mut lines: Vec<(String, Value, Option<Value>)> = seen
        .iter()
        .map(|l| {
            (
                l.custom_id.clone(),
                l.body["images"].clone(),
                l.body.get("mask").cloned(),
            )
        })
        .collect();
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    let images = json!([{"file_id": reference}]);
    let masked = Some(json!({"file_id": mask}));
    assert_eq!(
        lines,
        [
            (
                "image.cat.01.hd.png".to_owned(),
                images.clone(),
                masked.clone()
            ),
            ("image.cat.02.hd.png".to_owned(), images.clone(), masked),
            ("image.dog.01.hd.png".to_owned(), images.clone(), None),
            ("image.dog.02.hd.png".to_owned(), images, None),
        ]
    );
    let records = ws.manifest("out");
    assert_eq!(
        record(&records, "image.cat.01.hd.png")["mask"]["path"],
        "mask.png"
    );
    assert!(
        record(&records, "image.dog.01.hd.png")
            .get("mask")
            .is_none()
    );
}

#[test]
fn a_batch_sends_the_mask_inline_where_uploads_are_refused() {
    let (script, seen) = recording();
    let server = FakeServer::with(Options {
        batch: BatchOptions {
            script: Some(script),
            upload_faults: vec![Action::error(
                400,
                "invalid_request_error",
                "Invalid value for 'purpose': 'vision' is not supported for this organization.",
            )],
            ..BatchOptions::default()
        },
        ..Options::default()
    });
    let ws = masked_ws();
    ws.write("p.txt", "# cat ref=ref.png mask=mask.png\na cat\n");
    let run = batch_run(&ws, &server);
    assert_code(&run, 0);
    let data_url = |bytes: &[u8]| {
        use base64::Engine as _;
        format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    };
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    for line in seen.iter() {
        assert_eq!(
            line.body["images"],
            json!([{"image_url": data_url(&images::fixture(REF))}])
        );
        assert_eq!(
            line.body["mask"],
            json!({"image_url": data_url(&images::mask_png(32, 32))})
        );
    }
}
