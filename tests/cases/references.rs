//! Reference images: sent with their real MIME type, and checked before any request.

use crate::support::*;

fn edit_with(file: &str, contents: &[u8]) -> (Run, FakeServer) {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write(file, contents);
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "--reference-image", file, "--dst-dir", "out"])
        .run();
    (run, server)
}

#[test]
fn each_format_goes_with_its_mime_type() {
    for (fixture, mime) in [
        ("reference.png", "image/png"),
        ("reference.jpg", "image/jpeg"),
        ("reference.webp", "image/webp"),
    ] {
        let (run, server) = edit_with(fixture, &images::fixture(fixture));
        assert_code(&run, 0);
        let r = &server.image_requests()[0];
        assert_eq!(r.files[0].content_type.as_deref(), Some(mime), "{fixture}");
        assert_eq!(r.files[0].bytes, images::fixture(fixture));
    }
}

#[test]
fn the_mime_type_comes_from_the_bytes_not_the_name() {
    let (run, server) = edit_with("looks-like.png", &images::fixture("reference.jpg"));
    assert_code(&run, 0);
    assert_eq!(
        server.image_requests()[0].files[0].content_type.as_deref(),
        Some("image/jpeg")
    );
}

#[test]
fn several_references_go_as_image_array_parts() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("a.png", images::fixture("reference.png"));
    ws.write("b.webp", images::fixture("reference.webp"));
    let run = genimg(&ws, Some(&server))
        .args([
            "a cat",
            "--reference-image",
            "a.png",
            "--reference_image",
            "b.webp",
            "--dst-dir",
            "out",
        ])
        .run();
    assert_code(&run, 0);
    let r = &server.image_requests()[0];
    let parts: Vec<(&str, Option<&str>)> = r
        .files
        .iter()
        .map(|f| (f.name.as_str(), f.content_type.as_deref()))
        .collect();
    assert_eq!(
        parts,
        [
            ("image[]", Some("image/png")),
            ("image[]", Some("image/webp"))
        ]
    );
}

/// Checks a run was refused before any request with an error naming the file.
fn refused(run: &Run, server: &FakeServer, path: &str, problem: &str) {
    assert_code(run, 2);
    assert!(server.requests().is_empty());
    assert!(
        run.stderr.contains(&format!("--reference-image {path}: ")) && run.stderr.contains(problem),
        "{}",
        run.stderr
    );
}

#[test]
fn a_missing_reference() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "--reference_image", "gone.png"])
        .run();
    refused(&run, &server, "gone.png", "no such file");
}

#[test]
fn an_unreadable_reference() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    std::fs::create_dir(ws.join("folder.png")).unwrap();
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "--reference_image", "folder.png"])
        .run();
    refused(&run, &server, "folder.png", "is a directory");

    // Permission bits do not stop root, so this half runs for other users only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = ws.write("locked.png", images::fixture("reference.png"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
        if std::fs::read(&path).is_err() {
            let run = genimg(&ws, Some(&server))
                .args(["a cat", "--reference_image", "locked.png"])
                .run();
            refused(&run, &server, "locked.png", "cannot be read");
        }
    }
}

#[test]
fn a_reference_that_is_not_a_png_jpeg_or_webp() {
    for (name, bytes) in [
        ("notes.png", b"these are notes, not pixels".to_vec()),
        ("empty.png", Vec::new()),
    ] {
        let (run, server) = edit_with(name, &bytes);
        refused(&run, &server, name, "is not a PNG, JPEG or WebP image");
    }
    // A GIF or an SVG is an image genimg knows (a 2.6 model makes them), but no model reads
    // one as a reference.
    for (name, bytes) in [
        ("anim.gif", images::fixture("reference.gif")),
        (
            "logo.svg",
            b"<svg xmlns='http://www.w3.org/2000/svg'></svg>".to_vec(),
        ),
    ] {
        let (run, server) = edit_with(name, &bytes);
        let format = if name.ends_with("gif") { "GIF" } else { "SVG" };
        refused(
            &run,
            &server,
            name,
            &format!("is a {format} image; gpt-image-2 takes PNG or JPEG or WebP"),
        );
    }
}

#[test]
fn an_oversized_reference() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let path = ws.write("huge.png", images::fixture("reference.png"));
    // Sparse: the size is what counts, and it is checked before reading.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(50 * 1024 * 1024 + 1)
        .unwrap();
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "--reference_image", "huge.png"])
        .run();
    refused(
        &run,
        &server,
        "huge.png",
        "takes reference images under 50 MB",
    );
}

#[test]
fn a_model_that_cannot_edit_is_a_usage_error() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("ref.png", images::fixture("reference.png"));
    let run = genimg(&ws, Some(&server))
        .args([
            "a cat",
            "--model",
            "dall-e-3",
            "--reference_image",
            "ref.png",
        ])
        .run();
    assert_code(&run, 2);
    assert!(
        run.stderr.contains("dall-e-3 cannot edit images"),
        "{}",
        run.stderr
    );
    assert!(server.requests().is_empty());
}

// A reference is read with a bound: regular files only, under the model's limit, and whole
// enough that its header gives its size. Runs that once hung have a time limit.

const HANG: std::time::Duration = std::time::Duration::from_secs(20);

#[test]
fn a_device_as_a_reference() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = run_within(
        genimg(&ws, Some(&server)).args(["a cat", "--reference-image", "/dev/zero"]),
        HANG,
    );
    refused(
        &run,
        &server,
        "/dev/zero",
        "is a character device, not a regular file",
    );
}

#[cfg(unix)]
#[test]
fn a_fifo_as_a_reference_is_refused_without_waiting() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    mkfifo(&ws.join("ref.png"));
    let run = run_within(
        genimg(&ws, Some(&server)).args(["a cat", "--reference-image", "ref.png"]),
        HANG,
    );
    refused(
        &run,
        &server,
        "ref.png",
        "is a FIFO (named pipe), not a regular file",
    );
}

#[cfg(unix)]
#[test]
fn a_symlink_to_a_reference_is_followed() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let target = ws.write("real.png", images::fixture("reference.png"));
    std::os::unix::fs::symlink(&target, ws.join("link.png")).unwrap();
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "--reference-image", "link.png", "--dst-dir", "out"])
        .run();
    assert_code(&run, 0);
    assert_eq!(
        server.image_requests()[0].files[0].bytes,
        images::fixture("reference.png")
    );
}

/// A PNG reference of exactly `len` bytes: the fixture, padded sparsely.
fn png_of_len(ws: &Workspace, name: &str, len: u64) {
    let path = ws.write(name, images::fixture("reference.png"));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

#[test]
fn a_reference_is_capped_at_its_models_limit() {
    // dall-e-2 takes references under 4 MB: 4 MiB - 1 bytes is the most it is sent.
    let server = FakeServer::start();
    let ws = Workspace::new();
    png_of_len(&ws, "under.png", 4 * 1024 * 1024 - 1);
    png_of_len(&ws, "at.png", 4 * 1024 * 1024);
    let dry = |file: &str| {
        run_within(
            genimg(&ws, Some(&server)).args([
                "a cat",
                "-m",
                "dall-e-2",
                "--reference-image",
                file,
                "--dry-run",
            ]),
            HANG,
        )
    };
    assert_code(&dry("under.png"), 0);
    refused(
        &dry("at.png"),
        &server,
        "at.png",
        "is 4 MB; dall-e-2 takes reference images under 4 MB",
    );
}

#[test]
fn a_truncated_reference_is_refused() {
    for fixture in ["reference.png", "reference.jpg", "reference.webp"] {
        let whole = images::fixture(fixture);
        let name = format!("cut-{fixture}");
        let (run, server) = edit_with(&name, &whole[..20]);
        refused(
            &run,
            &server,
            &name,
            "image: its header gives no width and height",
        );
        assert!(
            run.stderr.contains("is a truncated or damaged"),
            "{}",
            run.stderr
        );
    }
}
