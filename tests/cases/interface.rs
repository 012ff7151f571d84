//! The command line itself: help, version, exit codes.

use crate::support::*;

#[test]
fn help_shows_examples_and_every_flag() {
    let ws = Workspace::new();
    let run = genimg(&ws, None).arg("--help").run();
    assert_code(&run, 0);
    for part in [
        "Examples:",
        "genimg \"A futuristic cityscape at sunset\" --dst-dir ./images --count 3",
        "--input <FILE>",
        "--dst-dir <DIR>",
        "--count <N>",
        "--model <NAME>",
        "--low-res",
        "--reference-image <PATH>",
        "--jobs <N>",
        "--parallel",
        "--dry-run",
        "--from-scratch",
        "--api-key <KEY>",
        "--base-url <URL>",
        "--timeout <SECS>",
        "--naming <SCHEME>",
        "Exit codes:",
    ] {
        assert!(run.stdout.contains(part), "{part} missing from --help");
    }
}

#[test]
fn version() {
    let ws = Workspace::new();
    let run = genimg(&ws, None).arg("--version").run();
    assert_code(&run, 0);
    assert_eq!(
        run.stdout.trim(),
        format!("genimg {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn errors_go_to_stderr() {
    let ws = Workspace::new();
    let run = genimg(&ws, None).args(["a cat"]).run();
    assert_code(&run, 2);
    assert!(run.stdout.is_empty());
    assert!(!run.stderr.is_empty());
}

/// A user reads the README in a checkout of this repository alone: every file it names is
/// there, and nothing it points at lies outside it.
#[test]
fn the_readme_names_only_files_in_the_checkout() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        !readme.contains("../"),
        "the README points outside the checkout"
    );
    let mut named = Vec::new();
    for word in readme.split(|c: char| c.is_whitespace() || "`()[]<>\"'".contains(c)) {
        let word = word.trim_end_matches(['.', ',', ';', ':']);
        if word.ends_with(".md") {
            assert!(
                root.join(word).is_file(),
                "the README names {word}, which is not in the repository"
            );
            named.push(word);
        }
    }
    assert!(named.contains(&"BENCHMARKS.md"), "{named:?}");
}
