//! What lands in the destination: names, resume, atomic writes, Ctrl-C, the lock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;

#[test]
fn the_destination_is_created_with_its_parents() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a", "--dst-dir", "deep/er/still"])
        .run();
    assert_code(&run, 0);
    assert_eq!(ws.files("deep/er/still"), ["image_01_hd.png"]);
}

#[test]
fn a_rerun_makes_only_what_is_missing() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", "# a\nfirst\n# b\nsecond\n");
    let run = |count: &str| {
        genimg(&ws, Some(&server))
            .args(["--input", "p.txt", "-o", "out", "--count", count])
            .run()
    };
    assert_code(&run("3"), 0);
    assert_eq!(server.image_requests().len(), 6);

    let again = run("3");
    assert_code(&again, 0);
    assert_eq!(
        server.image_requests().len(),
        6,
        "a finished run re-run requests nothing"
    );
    assert!(again.stderr.contains("Nothing to do"), "{}", again.stderr);

    let more = run("5");
    assert_code(&more, 0);
    assert_eq!(
        server.prompts_of(6..),
        ["first", "first", "second", "second"],
        "raising the count from 3 to 5 makes two more of each"
    );
    assert_eq!(ws.files("out").len(), 10);
    assert_summary(&more, &[("made", "4"), ("failed", "0"), ("skipped", "6")]);
}

#[test]
fn legacy_naming() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", "# a\nfirst\n# b\nsecond\n");
    let run = genimg(&ws, Some(&server))
        .args([
            "--input",
            "p.txt",
            "-o",
            "out",
            "--count",
            "2",
            "--naming",
            "legacy",
            "--low-res",
        ])
        .run();
    assert_code(&run, 0);
    assert_eq!(
        ws.files("out"),
        [
            "desc_01_image_01_standard.png",
            "desc_01_image_02_standard.png",
            "desc_02_image_01_standard.png",
            "desc_02_image_02_standard.png",
        ]
    );
}

#[test]
fn numbers_widen_once_the_count_reaches_100() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a", "-o", "out", "--count", "100", "-j", "16"])
        .run();
    assert_code(&run, 0);
    let files = ws.files("out");
    assert_eq!(files.len(), 100);
    assert_eq!(files[0], "image_001_hd.png");
    assert_eq!(files[99], "image_100_hd.png");
}

#[cfg(unix)]
fn interrupt(child: &std::process::Child) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).expect("SIGINT");
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_new_requests_and_saves_those_in_flight() {
    let server = slow_server(1500);
    let ws = Workspace::new();
    let child = genimg(&ws, Some(&server))
        .args(["a", "-o", "out", "--count", "10", "-j", "2"])
        .start();
    wait_for("two requests in flight", || {
        server.image_requests_started() == 2
    });
    interrupt(&child);
    let run = wait(child);
    let stderr = &run.stderr;
    assert_code(&run, 130);
    assert_eq!(
        server.image_requests().len(),
        2,
        "no new request after Ctrl-C"
    );
    // Which two were in flight depends on which tasks got their slots first.
    let files = ws.files("out");
    assert_eq!(files.len(), 2, "in-flight images were saved: {files:?}");
    assert_images_match(&ws, "out", &server);
    assert!(stderr.contains("Stopping: no new requests"), "{stderr}");
    assert!(stderr.contains("Interrupted after"), "{stderr}");
    assert_summary(&run, &[("made", "2"), ("not made", "8")]);
    assert!(
        stderr.contains("Run the same command again to make the 8 image(s) not made"),
        "{stderr}"
    );
}

#[cfg(unix)]
#[test]
fn a_second_ctrl_c_abandons_requests_in_flight_and_leaves_nothing_partial() {
    let server = slow_server(5000);
    let ws = Workspace::new();
    let child = genimg(&ws, Some(&server))
        .args(["a", "-o", "out", "--count", "4", "-j", "2"])
        .start();
    wait_for("two requests in flight", || {
        server.image_requests_started() == 2
    });
    interrupt(&child);
    std::thread::sleep(Duration::from_millis(200));
    interrupt(&child);
    let started = Instant::now();
    let run = wait(child);
    assert_code(&run, 130);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "aborted without waiting for the answers"
    );
    assert_eq!(
        ws.files("out"),
        Vec::<String>::new(),
        "no partial or temporary file"
    );
}

#[test]
fn a_second_run_on_the_same_destination_is_refused_while_the_first_runs() {
    let server = slow_server(1500);
    let ws = Workspace::new();
    let first = genimg(&ws, Some(&server))
        .args(["a", "-o", "out", "--count", "2"])
        .start();
    wait_for("the first run to start", || {
        server.image_requests_started() > 0
    });
    let second = genimg(&ws, Some(&server)).args(["b", "-o", "out"]).run();
    assert_code(&second, 2);
    assert!(
        second.stderr.contains(&format!(
            "another genimg run (process {}) is writing there",
            first.id()
        )),
        "{}",
        second.stderr
    );
    assert_code(&wait(first), 0);
    assert_eq!(
        server.image_requests().len(),
        2,
        "the second run sent nothing"
    );
}

#[test]
fn a_lock_left_by_a_killed_run_does_not_block() {
    let server = slow_server(3000);
    let ws = Workspace::new();
    let mut first = genimg(&ws, Some(&server)).args(["a", "-o", "out"]).start();
    wait_for("the first run to start", || {
        server.image_requests_started() > 0
    });
    first.kill().unwrap();
    first.wait().unwrap();
    let fast = FakeServer::start();
    let run = genimg(&ws, Some(&fast)).args(["a", "-o", "out"]).run();
    assert_code(&run, 0);
    assert_eq!(ws.files("out"), ["image_01_hd.png"]);
}

#[test]
fn temporary_files_of_a_killed_run_are_cleared() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("out/.genimg-a1b2c3.tmp", "half an image");
    let run = genimg(&ws, Some(&server)).args(["a", "-o", "out"]).run();
    assert_code(&run, 0);
    assert_eq!(ws.files("out"), ["image_01_hd.png"]);
}

#[test]
fn failures_leave_no_temporary_file() {
    let server = FakeServer::with(Options {
        script: Some(Arc::new(|i: &Incoming| {
            if i.nth.is_multiple_of(2) {
                Action::Truncate
            } else {
                Action::Answer
            }
        })),
        ..Options::default()
    });
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a", "-o", "out", "--count", "6", "--max-retries", "0"])
        .run();
    assert_code(&run, 1);
    let files = ws.files("out");
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(
        files
            .iter()
            .all(|f| f.starts_with("image_") && f.ends_with("_hd.png")),
        "{files:?}"
    );
}

#[test]
fn an_image_that_cannot_be_saved_is_kept_elsewhere_and_the_run_stops() {
    // Answers after the second take a while, so that the request on its way while the second
    // image is being saved is still in flight when the save fails, however busy the machine.
    let server = FakeServer::with(Options {
        script: Some(Arc::new(|i: &Incoming| {
            if i.nth >= 2 {
                Action::Delay(std::time::Duration::from_millis(800))
            } else {
                Action::Answer
            }
        })),
        ..Options::default()
    });
    let ws = Workspace::new();
    // A directory where the second image's file would go: renaming onto it fails, as a
    // full disk or a lost mount would.
    std::fs::create_dir_all(ws.join("out/image_02_hd.png")).unwrap();
    let run = genimg(&ws, Some(&server))
        .env("TMPDIR", ws.join("tmp"))
        .args(["a cat", "-o", "out", "-n", "5", "-j", "1"])
        .run();
    assert_code(&run, 3);
    // The next request may already have been on its way while the image was being saved;
    // none starts after.
    let requests = server.image_requests().len();
    assert!(
        (2..=3).contains(&requests),
        "{requests} requests\n{}",
        run.stderr
    );
    let records = ws.manifest("out");
    let lost = records
        .iter()
        .find(|r| r["file"] == "image_02_hd.png")
        .unwrap();
    // In a folder of this destination's own, named after it.
    let kept = std::path::PathBuf::from(lost["rescued"].as_str().expect("the rescue is on record"));
    let folder = kept.parent().unwrap();
    assert_eq!(folder.parent().unwrap(), ws.join("tmp/genimg-rescue"));
    assert!(
        folder
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("out-"),
        "{}",
        kept.display()
    );
    assert_eq!(kept.file_name().unwrap(), "image_02_hd.png");
    let bytes = std::fs::read(&kept).expect("the image was kept");
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.image.as_deref() == Some(&bytes[..])),
        "byte for byte what the server sent"
    );
    assert!(
        run.stderr
            .contains(&format!("it was kept as {}", kept.display())),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("genimg stopped: the destination would not take an image")
    );
    assert_eq!(lost["status"], "failed");
    assert!(
        lost["cost_usd"].as_f64().unwrap() > 0.0,
        "what it cost is on record"
    );
}
