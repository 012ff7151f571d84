//! Bad input gets a clear error naming the flag, exit code 2, and no request.

use crate::support::*;

#[track_caller]
fn usage_error(server: &FakeServer, run: &Run, needle: &str) {
    assert_code(run, 2);
    assert!(
        run.stderr.contains(needle),
        "{needle:?} not in:\n{}",
        run.stderr
    );
    assert!(server.requests().is_empty(), "no request on bad input");
}

#[test]
fn zero_count_and_zero_threads() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server)).args(["a", "--count", "0"]).run();
    usage_error(&server, &run, "--count <N>");
    let run = genimg(&ws, Some(&server))
        .args(["a", "--num_threads", "0"])
        .run();
    usage_error(&server, &run, "--jobs <N>");
    let run = genimg(&ws, Some(&server))
        .args(["a", "--count", "many"])
        .run();
    usage_error(&server, &run, "`many` is not a whole number of 1 or more");
}

#[test]
fn negative_numbers_say_what_the_flag_takes() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    for (args, needle) in [
        (
            ["a", "--count", "-1"],
            "invalid value '-1' for '--count <N>': `-1` is not a whole number of 1 or more",
        ),
        (
            ["a", "-j", "-1"],
            "invalid value '-1' for '--jobs <N>': `-1` is not a whole number of 1 or more",
        ),
        (
            ["a", "--max-cost", "-1"],
            "invalid value '-1' for '--max-cost <USD>': `-1` is not an amount of US dollars of \
             0 or more",
        ),
        (
            ["a", "--max-retries", "-1"],
            "invalid value '-1' for '--max-retries <N>': `-1` is not a whole number of 0 or more",
        ),
    ] {
        let run = genimg(&ws, Some(&server)).args(args).run();
        usage_error(&server, &run, needle);
        assert!(
            !run.stderr.contains("unexpected argument"),
            "{}",
            run.stderr
        );
    }
    // A prompt that starts with `-` goes after `--`, as before, and is made as written.
    let run = genimg(&ws, Some(&server))
        .args([
            "--count",
            "1",
            "-o",
            "out",
            "--",
            "-1 degree, a frosty harbour",
        ])
        .run();
    assert_code(&run, 0);
    let requests = server.image_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].prompt(), "-1 degree, a frosty harbour");
}

#[test]
fn prompt_and_input_together_or_neither() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", "# a\nx\n");
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "--input", "p.txt"])
        .run();
    usage_error(&server, &run, "cannot be used with");
    let run = genimg(&ws, Some(&server)).args(["--count", "2"]).run();
    usage_error(
        &server,
        &run,
        "nothing to make: give a prompt, or --input FILE",
    );
}

#[test]
fn a_destination_that_cannot_be_written() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("a-file", "not a directory");
    let run = genimg(&ws, Some(&server))
        .args(["a", "--dst-dir", "a-file/images"])
        .run();
    usage_error(
        &server,
        &run,
        "--dst-dir a-file/images: cannot create the directory",
    );
    let run = genimg(&ws, Some(&server))
        .args(["a", "--dst_dir", "a-file"])
        .run();
    usage_error(&server, &run, "--dst-dir a-file: is not a directory");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = ws.join("read-only");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        // Root writes anywhere; the check is for other users.
        if std::fs::write(dir.join("probe"), b"").is_err() {
            let run = genimg(&ws, Some(&server))
                .args(["a", "--dst-dir", "read-only"])
                .run();
            usage_error(&server, &run, "--dst-dir read-only: cannot write there");
        }
    }
}

#[cfg(unix)]
#[test]
fn a_destination_that_is_a_broken_link_is_named() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    std::os::unix::fs::symlink("elsewhere/images", ws.join("images")).unwrap();
    for (dst, needle) in [
        (
            "images",
            "--dst-dir images: is a broken symbolic link (it points at elsewhere/images, which \
             does not exist)",
        ),
        (
            "images/today",
            "--dst-dir images/today: images is a broken symbolic link (it points at \
             elsewhere/images, which does not exist)",
        ),
    ] {
        let run = genimg(&ws, Some(&server)).args(["a", "-o", dst]).run();
        usage_error(&server, &run, needle);
        assert!(!run.stderr.contains("File exists"), "{}", run.stderr);
    }
    assert_eq!(ws.all_files(""), ["images"], "nothing created");
}

#[test]
fn a_missing_key_names_the_variable() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = genimg(&ws, None)
        .env("OPENAI_BASE_URL", server.base_url())
        .args(["a cat"])
        .run();
    usage_error(&server, &run, "OPENAI_API_KEY");
    assert!(
        run.stderr.starts_with("genimg: error: no API key"),
        "{}",
        run.stderr
    );
    assert_eq!(ws.files(""), Vec::<String>::new(), "nothing written");
}

#[test]
fn a_bad_base_url() {
    let ws = Workspace::new();
    let run = genimg(&ws, None)
        .env("OPENAI_API_KEY", "k")
        .args(["a", "--base-url", "api.openai.com"])
        .run();
    assert_code(&run, 2);
    assert!(
        run.stderr
            .contains("--base-url `api.openai.com` is not an http(s) URL"),
        "{}",
        run.stderr
    );
}
