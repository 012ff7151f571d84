//! Every example in the seed script's documentation, run as its users typed it.

use std::time::Duration;

use crate::support::*;

const PROMPTS: &str = "# city\nA futuristic cityscape at sunset\n\n# forest\nA misty forest at dawn,\nwith tall pines.\n\nSoft light.\n\n# robot\nA friendly robot\n";

#[test]
fn single_prompt_three_images() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args([
            "A futuristic cityscape at sunset",
            "--dst_dir",
            "./images",
            "--count",
            "3",
        ])
        .run();
    assert_code(&run, 0);
    assert_eq!(
        ws.files("images"),
        ["image_01_hd.png", "image_02_hd.png", "image_03_hd.png"]
    );
    assert_images_match(&ws, "images", &server);

    let requests = server.image_requests();
    assert_eq!(requests.len(), 3);
    for r in &requests {
        assert_eq!(r.path, "/v1/images/generations");
        assert!(!r.is_multipart);
        assert_eq!(r.status, 200);
        assert_eq!(r.prompt(), "A futuristic cityscape at sunset");
        assert_eq!(r.field("model").as_deref(), Some("gpt-image-2"));
        assert_eq!(r.field("quality").as_deref(), Some("high"));
        assert_eq!(r.field("size").as_deref(), Some("1024x1024"));
        assert_eq!(r.fields["n"], 1);
        let mut names: Vec<&String> = r.fields.keys().collect();
        names.sort();
        assert_eq!(
            names,
            ["model", "n", "prompt", "quality", "size"],
            "no field the model does not take"
        );
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );
        assert_eq!(
            r.header("user-agent"),
            Some(format!("genimg/{}", env!("CARGO_PKG_VERSION")).as_str())
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    assert_summary(&run, &[("made", "3"), ("failed", "0")]);
}

#[test]
fn a_file_with_several_prompts_two_images_each() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("prompts.txt", PROMPTS);
    let run = genimg(&ws, Some(&server))
        .args([
            "--input",
            "prompts.txt",
            "--dst_dir",
            "./images",
            "--count",
            "2",
        ])
        .run();
    assert_code(&run, 0);
    assert_eq!(
        ws.files("images"),
        [
            "image.city.01.hd.png",
            "image.city.02.hd.png",
            "image.forest.01.hd.png",
            "image.forest.02.hd.png",
            "image.robot.01.hd.png",
            "image.robot.02.hd.png",
        ]
    );
    assert_images_match(&ws, "images", &server);
    assert_eq!(
        server.prompts(),
        [
            "A friendly robot",
            "A futuristic cityscape at sunset",
            "A misty forest at dawn,\nwith tall pines.\n\nSoft light.",
        ],
        "prompt text is sent as written, newlines included"
    );
}

#[test]
fn low_res_asks_for_medium_and_names_files_standard() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("prompts.txt", PROMPTS);
    let run = genimg(&ws, Some(&server))
        .args(["--input", "prompts.txt", "--dst_dir", "out", "--low_res"])
        .run();
    assert_code(&run, 0);
    assert_eq!(
        ws.files("out"),
        [
            "image.city.01.standard.png",
            "image.forest.01.standard.png",
            "image.robot.01.standard.png"
        ]
    );
    for r in server.image_requests() {
        assert_eq!(r.field("quality").as_deref(), Some("medium"));
    }

    let run = genimg(&ws, Some(&server))
        .args(["one prompt", "--dst_dir", "single", "--low_res"])
        .run();
    assert_code(&run, 0);
    assert_eq!(ws.files("single"), ["image_01_standard.png"]);
}

#[test]
fn dry_run_prints_the_plan_and_touches_nothing() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("prompts.txt", PROMPTS);
    // No key at all: a dry run needs none.
    let run = genimg(&ws, None)
        .env("OPENAI_BASE_URL", server.base_url())
        .args([
            "--input",
            "prompts.txt",
            "--dst_dir",
            "./images",
            "--count",
            "2",
            "--dry_run",
        ])
        .run();
    assert_code(&run, 0);
    assert!(server.requests().is_empty(), "a dry run sends nothing");
    assert!(!ws.join("images").exists(), "a dry run writes nothing");
    assert_eq!(ws.files(""), ["prompts.txt"]);

    let out = &run.stdout;
    // One line per prompt, with what every image asks for said once.
    let line = out
        .lines()
        .find(|l| l.starts_with("  forest "))
        .unwrap_or_else(|| panic!("{out}"));
    for part in [
        "2 to make",
        "\"A misty forest at dawn, with tall pines. Soft l",
    ] {
        assert!(line.contains(part), "{part} missing from: {line}");
    }
    assert!(
        out.contains("Every image: gpt-image-2 1024x1024 high /images/generations\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!("{}/images/generations", server.base_url())),
        "{out}"
    );
    assert!(
        out.contains("Total: 6 image(s) of 3 prompt(s): 6 to make, 0 already there; 6 request(s)."),
        "{out}"
    );

    // -v lists each image, with what it asks for.
    let run = genimg(&ws, None)
        .env("OPENAI_BASE_URL", server.base_url())
        .args([
            "--input",
            "prompts.txt",
            "--dst_dir",
            "./images",
            "--count",
            "2",
            "--dry_run",
            "-v",
        ])
        .run();
    assert_code(&run, 0);
    assert!(server.requests().is_empty(), "a dry run sends nothing");
    assert!(!ws.join("images").exists(), "a dry run writes nothing");
    let out = &run.stdout;
    for name in [
        "image.city.01.hd.png",
        "image.forest.02.hd.png",
        "image.robot.02.hd.png",
    ] {
        assert!(out.contains(name), "{out}");
    }
    let line = out
        .lines()
        .find(|l| l.contains("image.forest.01.hd.png"))
        .unwrap();
    for part in [
        "gpt-image-2",
        "1024x1024",
        "high",
        "/images/generations",
        // The start of the text, in what room the line has left.
        "\"A misty forest at",
    ] {
        assert!(line.contains(part), "{part} missing from: {line}");
    }
    assert!(line.ends_with("…\""), "{line}");
    assert!(line.chars().count() <= 100, "{line}");
}

/// `--from-scratch` moves genimg's images of these prompts, and nothing else, to the trash:
/// byte for byte, under their own names.
#[test]
fn from_scratch_moves_only_genimgs_images_to_the_trash_and_remakes_them() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("prompts.txt", "# city\nA city\n# robot\nA robot\n");
    ws.write("images/image.city.01.hd.png", "old image");
    ws.write(
        "images/image.city.07.standard.webp",
        "old image, other quality",
    );
    ws.write("images/image.robot.100.low.jpeg", "old image, other number");
    ws.write("images/notes.txt", "the user's notes");
    ws.write("images/image.city.01.hd.png.bak", "a backup");
    ws.write(
        "images/image.other.01.hd.png",
        "another prompt file's image",
    );
    ws.write("images/my_image_01_hd.png", "a file of the user's");

    let run = genimg(&ws, Some(&server))
        .args([
            "--input",
            "prompts.txt",
            "--dst_dir",
            "images",
            "--from_scratch",
        ])
        .run();
    assert_code(&run, 0);
    assert!(
        run.stderr.contains("moved 3 earlier image(s)"),
        "{}",
        run.stderr
    );
    let trash = ws.only_trash("images");
    assert_eq!(
        ws.files(&trash),
        [
            "image.city.01.hd.png",
            "image.city.07.standard.webp",
            "image.robot.100.low.jpeg"
        ]
    );
    for (name, bytes) in [
        ("image.city.01.hd.png", "old image"),
        ("image.city.07.standard.webp", "old image, other quality"),
        ("image.robot.100.low.jpeg", "old image, other number"),
    ] {
        assert_eq!(ws.read(&format!("{trash}/{name}")), bytes.as_bytes());
    }
    assert_eq!(
        ws.files("images"),
        [
            "image.city.01.hd.png",
            "image.city.01.hd.png.bak",
            "image.other.01.hd.png",
            "image.robot.01.hd.png",
            "my_image_01_hd.png",
            "notes.txt",
        ]
    );
    assert_ne!(
        ws.read("images/image.city.01.hd.png"),
        b"old image",
        "remade"
    );
    assert_eq!(server.image_requests().len(), 2);
    assert_images_match_named(
        &ws,
        &server,
        &[
            "images/image.city.01.hd.png",
            "images/image.robot.01.hd.png",
        ],
    );
}

fn assert_images_match_named(ws: &Workspace, server: &FakeServer, names: &[&str]) {
    let sent: Vec<Vec<u8>> = server
        .requests()
        .into_iter()
        .filter_map(|r| r.image)
        .collect();
    for name in names {
        assert!(sent.contains(&ws.read(name)), "{name}");
    }
}

#[test]
fn from_scratch_in_a_dry_run_lists_and_keeps() {
    let ws = Workspace::new();
    ws.write("images/image_01_hd.png", "old");
    ws.write("images/image_02_standard.png", "old");
    ws.write("images/keep.png", "mine");
    let run = genimg(&ws, None)
        .args([
            "a cat",
            "--dst_dir",
            "images",
            "--from_scratch",
            "--dry_run",
        ])
        .run();
    assert_code(&run, 0);
    assert!(
        run.stdout.contains(
            "--from-scratch would first move 2 file(s), with their records, to \
             images/.genimg/trash/:"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("  image_01_hd.png\n")
            && run.stdout.contains("  image_02_standard.png\n")
    );
    assert!(!run.stdout.contains("keep.png"));
    assert_eq!(
        ws.files("images"),
        ["image_01_hd.png", "image_02_standard.png", "keep.png"]
    );
}

#[test]
fn api_key_flag_is_used_and_wins_over_the_environment() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .env("OPENAI_API_KEY", "sk-from-the-environment")
        .args(["a cat", "--api_key", KEY, "--dst_dir", "out"])
        .run();
    assert_code(&run, 0);
    assert_eq!(
        server.image_requests()[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );

    let ws = Workspace::new();
    let run = genimg(&ws, None)
        .env("OPENAI_BASE_URL", server.base_url())
        .args(["a cat", "--api-key", KEY, "--dst-dir", "out"])
        .run();
    assert_code(&run, 0);
    assert_eq!(ws.files("out"), ["image_01_hd.png"]);
}

#[test]
fn reference_image_with_a_file_of_prompts() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write(
        "prompts.txt",
        "# cat\nThe cat as a watercolor\n# dog\nThe dog in the same style\n",
    );
    ws.write("ref.png", images::fixture("reference.png"));
    let run = genimg(&ws, Some(&server))
        .args([
            "--input",
            "prompts.txt",
            "--reference_image",
            "ref.png",
            "--dst_dir",
            "out",
        ])
        .run();
    assert_code(&run, 0);
    assert_eq!(
        ws.files("out"),
        ["image.cat.01.hd.png", "image.dog.01.hd.png"]
    );
    assert_images_match(&ws, "out", &server);
    for r in server.image_requests() {
        assert_eq!(r.path, "/v1/images/edits");
        assert!(r.is_multipart);
        assert!(
            r.header("content-type")
                .unwrap()
                .starts_with("multipart/form-data; boundary=")
        );
        assert_eq!(r.files.len(), 1);
        let part = &r.files[0];
        assert_eq!(part.name, "image");
        assert_eq!(part.content_type.as_deref(), Some("image/png"));
        assert_eq!(part.file_name.as_deref(), Some("ref.png"));
        assert_eq!(part.bytes, images::fixture("reference.png"));
        assert_eq!(r.field("model").as_deref(), Some("gpt-image-2"));
        assert_eq!(r.field("quality").as_deref(), Some("high"));
        assert_eq!(r.field("n").as_deref(), Some("1"));
    }
}

#[test]
fn reference_image_with_a_single_prompt() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("photo.jpg", images::fixture("reference.jpg"));
    let run = genimg(&ws, Some(&server))
        .args([
            "The same scene at night",
            "--reference_image",
            "photo.jpg",
            "--count",
            "2",
            "--dst_dir",
            "out",
        ])
        .run();
    assert_code(&run, 0);
    assert_eq!(ws.files("out"), ["image_01_hd.png", "image_02_hd.png"]);
    let requests = server.image_requests();
    assert_eq!(requests.len(), 2);
    for r in requests {
        assert_eq!(r.path, "/v1/images/edits");
        assert_eq!(r.prompt(), "The same scene at night");
        assert_eq!(r.files[0].content_type.as_deref(), Some("image/jpeg"));
    }
}

/// Runs `count` images of two prompts with latency and returns the peak in flight.
fn peak_for(args: &[&str]) -> (usize, Vec<String>) {
    let server = FakeServer::with(Options {
        latency: Duration::from_millis(400),
        ..Options::default()
    });
    let ws = Workspace::new();
    ws.write("prompts.txt", "# a\nfirst\n# b\nsecond\n");
    let run = genimg(&ws, Some(&server))
        .args(["--input", "prompts.txt", "--dst_dir", "out"])
        .args(args)
        .run();
    assert_code(&run, 0);
    (server.peak_in_flight(), ws.files("out"))
}

#[test]
fn parallel_runs_four_at_a_time() {
    let (peak, files) = peak_for(&["--parallel", "--count", "6"]);
    assert_eq!(peak, 4);
    assert_eq!(files.len(), 12);
}

#[test]
fn parallel_with_eight_threads() {
    let (peak, files) = peak_for(&["--parallel", "--num_threads", "8", "--count", "8"]);
    assert_eq!(peak, 8);
    assert_eq!(files.len(), 16);
}

#[test]
fn count_five_parallel_six_threads() {
    let (peak, files) = peak_for(&["--count", "5", "--parallel", "--num_threads", "6"]);
    assert_eq!(peak, 6);
    assert_eq!(files.len(), 10);
    assert!(files.contains(&"image.b.05.hd.png".to_owned()));
}
