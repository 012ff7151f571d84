//! SIGTERM and SIGHUP, as `timeout`, `docker stop`, a CI cancel, `kill` or a closed SSH
//! session send them, stop a run the way Ctrl-C does: the requests in flight finish and are
//! saved, the summary and the gallery are written, and the exit code names the signal.
#![cfg(unix)]

use std::process::Child;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::support::*;

fn send(child: &Child, signal: Signal) {
    kill(Pid::from_raw(child.id() as i32), signal).expect("kill");
}

/// No temporary file of genimg's is left in `out`.
#[track_caller]
fn assert_no_temp_file(ws: &Workspace) {
    let all = ws.all_files("out");
    assert!(
        all.iter()
            .all(|f| !(f.starts_with(".genimg-") && f.ends_with(".tmp"))),
        "a temporary file is left: {all:?}"
    );
}

/// Ten images, two at a time; `signal` arrives `times` times, 20 ms apart, while the first
/// two are in flight.
fn stopped_by(signal: Signal, times: usize, code: i32, name: &str, status: &str) {
    let server = slow_server(1500);
    let ws = Workspace::new();
    let args = ["a", "-o", "out", "--count", "10", "-j", "2"];
    let child = genimg(&ws, Some(&server)).args(args).arg("--json").start();
    wait_for("two requests in flight", || {
        server.image_requests_started() == 2
    });
    for n in 0..times {
        if n > 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
        send(&child, signal);
    }
    let run = wait(child);
    let stderr = &run.stderr;
    assert_code(&run, code);
    assert_eq!(
        server.image_requests().len(),
        2,
        "no new request after {name}"
    );
    let files = ws.files("out");
    assert_eq!(files.len(), 2, "in-flight images were saved: {files:?}");
    assert_images_match(&ws, "out", &server);
    assert!(
        stderr.contains(&format!("Stopping on {name}: no new requests")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("Interrupted by {name} after")),
        "{stderr}"
    );
    assert_summary(&run, &[("made", "2"), ("not made", "8")]);
    assert!(
        stderr.contains("Run the same command again to make the 8 image(s) not made"),
        "{stderr}"
    );
    let doc: Value = serde_json::from_str(&run.stdout).expect("--json document");
    assert_eq!(doc["status"], status, "{doc}");
    assert_eq!(doc["exit_code"], code, "{doc}");
    assert!(
        ws.all_files("out").contains(&GALLERY.to_owned()),
        "the gallery is written"
    );
    let gallery = String::from_utf8(ws.read("out/index.html")).unwrap();
    for file in &files {
        assert!(gallery.contains(file.as_str()), "{file} in the gallery");
    }
    assert_eq!(
        ws.manifest("out").len(),
        2,
        "both saved images are recorded"
    );
    assert_no_temp_file(&ws);

    // The re-run buys only the rest.
    let fresh = FakeServer::start();
    let again = genimg(&ws, Some(&fresh)).args(args).run();
    assert_code(&again, 0);
    assert_eq!(
        fresh.image_requests().len(),
        8,
        "only the images not made are requested"
    );
    assert_eq!(ws.files("out").len(), 10);
    assert_no_temp_file(&ws);
}

#[test]
fn sigterm_stops_new_requests_saves_those_in_flight_and_exits_143() {
    stopped_by(Signal::SIGTERM, 1, 143, "SIGTERM", "terminated");
}

#[test]
fn sighup_stops_new_requests_saves_those_in_flight_and_exits_129() {
    stopped_by(Signal::SIGHUP, 1, 129, "SIGHUP", "hung_up");
}

/// A closed SSH session may send SIGHUP twice (the shell passes one on, the kernel sends
/// another when the shell exits): nobody is left to ask for an abort, so the images in
/// flight are still saved.
#[test]
fn a_second_sighup_abandons_nothing() {
    stopped_by(Signal::SIGHUP, 2, 129, "SIGHUP", "hung_up");
}

/// A SIGTERM, then `second`: the requests in flight are abandoned, nothing partial is left,
/// and the first signal decides the exit code.
fn aborted_by(second: Signal) {
    let server = slow_server(5000);
    let ws = Workspace::new();
    let child = genimg(&ws, Some(&server))
        .args(["a", "-o", "out", "--count", "4", "-j", "2"])
        .start();
    wait_for("two requests in flight", || {
        server.image_requests_started() == 2
    });
    send(&child, Signal::SIGTERM);
    std::thread::sleep(Duration::from_millis(200));
    send(&child, second);
    let started = Instant::now();
    let run = wait(child);
    assert_code(&run, 143);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "aborted without waiting for the answers"
    );
    assert!(
        run.stderr.contains("Abandoning the requests in flight"),
        "{}",
        run.stderr
    );
    assert_summary(&run, &[("made", "0"), ("not made", "4")]);
    assert_eq!(
        ws.files("out"),
        Vec::<String>::new(),
        "no partial or temporary file"
    );
    assert_no_temp_file(&ws);
}

#[test]
fn a_second_sigterm_abandons_requests_in_flight_and_leaves_nothing_partial() {
    aborted_by(Signal::SIGTERM);
}

#[test]
fn ctrl_c_after_sigterm_abandons_requests_in_flight_and_the_exit_code_stays_143() {
    aborted_by(Signal::SIGINT);
}
