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

// Every input is read with a bound: a size cap, and regular files only. A run that would
// read `/dev/zero` or wait on a FIFO for ever is a hang, so these runs have a time limit.

/// Long enough for a loaded machine; a run that reads a FIFO or `/dev/zero` never ends.
const HANG: std::time::Duration = std::time::Duration::from_secs(20);

/// The documented caps (README, "The prompt file" and "Config file").
const MIB: u64 = 1024 * 1024;
const PROMPT_FILE_CAP: u64 = 16 * MIB;
const CONFIG_FILE_CAP: u64 = MIB;
const STYLE_FILE_CAP: u64 = MIB;

#[test]
fn a_device_as_the_prompt_file() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = run_within(
        genimg(&ws, Some(&server)).args(["--input", "/dev/zero"]),
        HANG,
    );
    usage_error(
        &server,
        &run,
        "cannot read the prompt file /dev/zero: it is a character device, not a regular file",
    );
}

#[cfg(unix)]
#[test]
fn a_fifo_as_the_prompt_file() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    mkfifo(&ws.join("prompts.txt"));
    let run = run_within(
        genimg(&ws, Some(&server)).args(["--input", "prompts.txt"]),
        HANG,
    );
    usage_error(
        &server,
        &run,
        "cannot read the prompt file prompts.txt: it is a FIFO (named pipe), not a regular file",
    );
}

#[test]
fn a_prompt_file_one_byte_over_its_cap() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    sparse_file(&ws.join("big.txt"), PROMPT_FILE_CAP + 1);
    let run = run_within(
        genimg(&ws, Some(&server)).args(["--input", "big.txt"]),
        HANG,
    );
    usage_error(
        &server,
        &run,
        "cannot read the prompt file big.txt: it is more than the size cap of 16 MB",
    );
}

#[test]
fn endless_standard_input_is_read_up_to_the_cap() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let zero = std::fs::File::open("/dev/zero").expect("open /dev/zero");
    let run = run_within(
        genimg(&ws, Some(&server))
            .args(["--input", "-"])
            .stdin(zero),
        HANG,
    );
    usage_error(
        &server,
        &run,
        "cannot read the prompt file <stdin>: it is more than the size cap of 16 MB",
    );
}

#[test]
fn ten_thousand_prompts_filling_the_cap_exactly_are_read() {
    let ws = Workspace::new();
    let count = 10_000;
    let mut text = String::with_capacity(PROMPT_FILE_CAP as usize);
    for i in 0..count {
        text.push_str(&format!("# p{i:05}\n"));
        // Each prompt takes its share of the cap; the last one the rest.
        let end = if i + 1 == count {
            PROMPT_FILE_CAP as usize - 1
        } else {
            (PROMPT_FILE_CAP as usize / count) * (i + 1) - 1
        };
        text.push_str(&"a".repeat(end - text.len()));
        text.push('\n');
    }
    assert_eq!(text.len() as u64, PROMPT_FILE_CAP);
    ws.write("prompts.txt", &text);
    let run = genimg(&ws, None)
        .args(["--input", "prompts.txt", "--dry-run", "--dst-dir", "out"])
        .run();
    assert_code(&run, 0);
    assert!(run.all_output().contains("p09999"), "{}", run.stderr);
}

#[test]
fn a_device_as_the_config_file() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = run_within(
        genimg(&ws, Some(&server))
            .env("GENIMG_CONFIG", "/dev/zero")
            .args(["a cat"]),
        HANG,
    );
    usage_error(
        &server,
        &run,
        "config file /dev/zero: it is a character device, not a regular file",
    );
}

#[cfg(unix)]
#[test]
fn a_fifo_as_the_config_file() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    mkfifo(&ws.join("genimg.toml"));
    let run = run_within(
        genimg(&ws, Some(&server))
            .env("GENIMG_CONFIG", "genimg.toml")
            .args(["a cat"]),
        HANG,
    );
    usage_error(
        &server,
        &run,
        "config file genimg.toml: it is a FIFO (named pipe), not a regular file",
    );
}

#[test]
fn a_config_file_one_byte_over_its_cap() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    sparse_file(&ws.join("big.toml"), CONFIG_FILE_CAP + 1);
    let run = run_within(
        genimg(&ws, Some(&server))
            .env("GENIMG_CONFIG", "big.toml")
            .args(["a cat"]),
        HANG,
    );
    usage_error(
        &server,
        &run,
        "config file big.toml: it is more than the size cap of 1 MB",
    );
}

#[test]
fn a_device_as_the_style_file() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = run_within(
        genimg(&ws, Some(&server)).args(["a cat", "--style", "@/dev/zero"]),
        HANG,
    );
    usage_error(
        &server,
        &run,
        "--style @/dev/zero: cannot read /dev/zero: it is a character device, not a regular file",
    );
}

#[cfg(unix)]
#[test]
fn a_fifo_as_the_style_file() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    mkfifo(&ws.join("style.txt"));
    let run = run_within(
        genimg(&ws, Some(&server)).args(["a cat", "--style", "@style.txt"]),
        HANG,
    );
    usage_error(
        &server,
        &run,
        "--style @style.txt: cannot read style.txt: it is a FIFO (named pipe), not a regular file",
    );
}

#[test]
fn a_style_file_one_byte_over_its_cap() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    sparse_file(&ws.join("style.txt"), STYLE_FILE_CAP + 1);
    let run = run_within(
        genimg(&ws, Some(&server)).args(["a cat", "--style", "@style.txt"]),
        HANG,
    );
    usage_error(
        &server,
        &run,
        "--style @style.txt: cannot read style.txt: it is more than the size cap of 1 MB",
    );
}

/// A config file cannot set what would act on every run, or hold the key: refused before
/// any request, naming the key and its line.
#[test]
fn a_config_file_cannot_delete_remake_skip_or_hold_the_key() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    for (text, key) in [
        ("count = 1\nfrom-scratch = true\n", "line 2: `from-scratch`"),
        ("overwrite = true\n", "line 1: `overwrite`"),
        ("dry_run = true\n", "line 1: `dry-run`"),
        ("api-key = \"sk-in-a-file\"\n", "line 1: `api-key`"),
    ] {
        let config = ws.write("genimg.toml", text);
        let run = genimg(&ws, Some(&server))
            .env("GENIMG_CONFIG", &config)
            .args(["a fox", "-o", "out"])
            .run();
        assert_code(&run, 2);
        assert!(run.stderr.contains(key), "{text:?}: {}", run.stderr);
        assert!(!run.stderr.contains("sk-in-a-file"), "{}", run.stderr);
    }
    assert!(server.requests().is_empty(), "nothing was sent");
}
