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
        ("anim.gif", images::fixture("reference.gif")),
        ("notes.png", b"these are notes, not pixels".to_vec()),
        ("empty.png", Vec::new()),
    ] {
        let (run, server) = edit_with(name, &bytes);
        refused(&run, &server, name, "is not a PNG, JPEG or WebP image");
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
