//! Animated GIF and SVG output on the gpt-image-2.6 models: the exact bytes under their own
//! extension, and the options that do not apply refused before any request.

use crate::support::*;

const FLARE: &str = "gpt-image-2.6-flare";

#[test]
fn gif_and_svg_are_kept_byte_for_byte_under_their_own_extension() {
    let server = FakeServer::start();
    for (format, file, magic) in [
        ("gif", "image_01_hd.gif", &b"GIF89a"[..]),
        ("svg", "image_01_hd.svg", b"<?xml"),
    ] {
        let ws = Workspace::new();
        let run = genimg(&ws, Some(&server))
            .args(["a lighthouse", "-o", "out", "-m", FLARE, "--format", format])
            .run();
        assert_code(&run, 0);
        assert!(
            ws.join(&format!("out/{file}")).exists(),
            "{:?} {}",
            ws.all_files("out"),
            run.all_output()
        );
        assert!(ws.read(&format!("out/{file}")).starts_with(magic));
        assert_images_match(&ws, "out", &server);
        let last = server.image_requests().pop().unwrap();
        assert_eq!(last.field("output_format").as_deref(), Some(format));
        assert!(
            !run.all_output().contains("asked for"),
            "no format surprise: {}",
            run.all_output()
        );
        let records = ws.manifest("out");
        assert_eq!(records[0]["file"], file);
        assert!(
            records[0].get("received_format").is_none(),
            "{}",
            records[0]
        );
        // A re-run finds it and buys nothing.
        let before = server.image_requests().len();
        let run = genimg(&ws, Some(&server))
            .args(["a lighthouse", "-o", "out", "-m", FLARE, "--format", format])
            .run();
        assert_code(&run, 0);
        assert_eq!(server.image_requests().len(), before);
    }
}

#[test]
fn options_that_do_not_apply_to_gif_and_svg_are_refused_before_any_request() {
    let server = FakeServer::start();
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["-m", "gpt-image-2", "--format", "gif"],
            "--format gif",
            "2.6",
        ),
        (
            &["-m", "gpt-image-2.5-flare", "--format", "svg"],
            "--format svg",
            "2.6",
        ),
        (
            &[
                "-m",
                FLARE,
                "--format",
                "svg",
                "--reference-image",
                "ref.png",
            ],
            "--format svg",
            "no reference image",
        ),
        (
            &["-m", FLARE, "--format", "gif", "--compression", "50"],
            "--compression 50",
            "JPEG and WebP",
        ),
        (
            &[
                "-m",
                FLARE,
                "--format",
                "svg",
                "--background",
                "transparent",
            ],
            "--background transparent",
            "not SVG",
        ),
        (
            &[
                "-m",
                FLARE,
                "--format",
                "gif",
                "--background",
                "transparent",
            ],
            "--background transparent",
            "not GIF",
        ),
        (
            &["-m", "gemini-3-pro-image", "--format", "gif"],
            "--format gif",
            "output format",
        ),
    ];
    for (args, named, why) in cases {
        let ws = Workspace::new();
        ws.write("ref.png", images::fixture("reference.png"));
        let run = genimg(&ws, Some(&server))
            .args(["a lighthouse", "-o", "out"])
            .args(*args)
            .run();
        assert_code(&run, 2);
        assert!(run.stderr.contains(named), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(why), "{args:?}: {}", run.stderr);
    }
    assert!(server.requests().is_empty());
    // A GIF is no reference image.
    let ws = Workspace::new();
    ws.write("anim.gif", gif_bytes());
    let run = genimg(&ws, Some(&server))
        .args(["a lighthouse", "-o", "out", "--reference-image", "anim.gif"])
        .run();
    assert_code(&run, 2);
    assert!(run.stderr.contains("is a GIF image"), "{}", run.stderr);
    assert!(server.requests().is_empty());
}

fn gif_bytes() -> Vec<u8> {
    crate::support::server::gif(7)
}
