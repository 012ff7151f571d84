//! An error that stops the run is said once on stderr: the stop line when it happens, and one
//! advice block at the end. The images it stopped are counted as not made, not listed one by
//! one, and that count is what a second run makes. `--json` keeps every failure.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// A fake that answers every image request after `latency`, as `script` says (by arrival,
/// from 0): with a latency, every request in flight meets the error, not only the first.
fn answering(
    latency: Duration,
    script: impl Fn(usize) -> Action + Send + Sync + 'static,
) -> FakeServer {
    FakeServer::with(Options {
        latency,
        script: Some(Arc::new(move |i: &Incoming| script(i.nth))),
        ..Options::default()
    })
}

const WRONG_KEY: &str = "Incorrect API key provided: sk-abc***xyz. You can find your API key at \
                         https://platform.openai.com/account/api-keys.";

fn wrong_key() -> Action {
    Action::error(401, "invalid_api_key", WRONG_KEY)
}

/// Asserts that `text` appears exactly once on stderr.
#[track_caller]
fn said_once(run: &Run, text: &str) {
    assert_eq!(
        run.stderr.matches(text).count(),
        1,
        "{text:?} should be said once:\n{}",
        run.stderr
    );
}

/// Asserts that no image is listed as failed, on a progress line or in the summary, and that
/// the advice does not repeat the service.
#[track_caller]
fn nothing_listed(run: &Run) {
    for repeated in ["FAILED", "Failed (", "The service said"] {
        assert!(
            !run.stderr.contains(repeated),
            "{repeated:?} in:\n{}",
            run.stderr
        );
    }
}

/// Runs the same command against a healthy fake: it must make exactly `not_made` images.
#[track_caller]
fn a_second_run_makes(ws: &Workspace, args: &[&str], not_made: usize) {
    let healthy = FakeServer::start();
    let again = genimg(ws, Some(&healthy)).args(args).run();
    assert_code(&again, 0);
    assert_eq!(
        healthy.image_requests().len(),
        not_made,
        "the images said not made are those a second run makes"
    );
}

#[test]
fn a_wrong_key_met_by_three_requests_is_said_once() {
    let server = answering(Duration::from_millis(300), |_| wrong_key());
    let ws = Workspace::new();
    let args = ["a cat", "-o", "out", "-n", "6", "-j", "3"];
    let run = genimg(&ws, Some(&server)).args(args).run();
    assert_code(&run, 3);
    assert_eq!(server.image_requests().len(), 3, "three requests met it");
    said_once(&run, "Incorrect API key provided");
    said_once(&run, "Stopping: HTTP 401 Unauthorized");
    said_once(&run, "genimg stopped: the API key was not accepted");
    nothing_listed(&run);
    assert_summary(&run, &[("made", "0"), ("failed", "0"), ("not made", "6")]);
    said_once(
        &run,
        "Run the same command again to make the 6 image(s) not made",
    );
    assert_eq!(ws.files("out"), Vec::<String>::new());
    a_second_run_makes(&ws, &args, 6);
}

#[test]
fn quiet_says_the_stop_once_and_json_keeps_every_failure() {
    let server = answering(Duration::from_millis(300), |_| wrong_key());
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "-o", "out", "-n", "6", "-j", "3", "-q", "--json"])
        .run();
    assert_code(&run, 3);
    assert_eq!(server.image_requests().len(), 3);
    said_once(&run, "Incorrect API key provided");
    said_once(&run, "genimg stopped: the API key was not accepted");
    said_once(
        &run,
        "Run the same command again to make the 6 image(s) not made",
    );
    nothing_listed(&run);
    assert!(!run.stderr.contains("Stopped after"), "{}", run.stderr);

    // The document is data: each request that met the error is there, with what it said.
    let doc: Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    assert_eq!(doc["status"], "stopped_by_service");
    assert_eq!(doc["totals"]["failed"], 0);
    assert_eq!(doc["totals"]["not_made"], 6);
    let images = doc["images"].as_array().unwrap();
    assert!(
        images.iter().all(|i| i["status"] == "not_made"),
        "{images:?}"
    );
    let met: Vec<&Value> = images.iter().filter(|i| i.get("error").is_some()).collect();
    assert_eq!(met.len(), 3, "each failure is kept: {images:?}");
    for image in met {
        assert!(
            image["error"]
                .as_str()
                .unwrap()
                .contains("Incorrect API key provided"),
            "{image}"
        );
        assert_eq!(image["attempts"], 1, "{image}");
    }
    assert!(
        doc["stopped"]["error"]
            .as_str()
            .unwrap()
            .contains("Incorrect API key provided"),
        "{doc}"
    );
}

#[test]
fn an_unknown_model_is_said_once_with_the_models_to_pick_from() {
    // The service does not know gpt-image-9 (the fake is told to take it, so that its
    // answers come after a while, as the service's do).
    let server = FakeServer::with(Options {
        latency: Duration::from_millis(300),
        extra_models: vec!["gpt-image-9".to_owned()],
        script: Some(Arc::new(|_: &Incoming| {
            Action::error(
                404,
                "model_not_found",
                "The model `gpt-image-9` does not exist or you do not have access to it.",
            )
        })),
        ..Options::default()
    });
    let ws = Workspace::new();
    let args = [
        "a cat",
        "-o",
        "out",
        "-n",
        "6",
        "-j",
        "4",
        "-m",
        "gpt-image-9",
    ];
    let run = genimg(&ws, Some(&server)).args(args).run();
    assert_code(&run, 3);
    assert_eq!(server.image_requests().len(), 4, "four requests met it");
    said_once(&run, "does not exist or you do not have access to it");
    said_once(&run, "Stopping: HTTP 404 Not Found");
    said_once(
        &run,
        "genimg stopped: the model does not exist or this key cannot use it",
    );
    // The warning before the run has its own "did you mean"; the advice says it once.
    said_once(&run, "Did you mean gpt-image-2");
    said_once(&run, "Live models: ");
    nothing_listed(&run);
    assert_summary(&run, &[("made", "0"), ("failed", "0"), ("not made", "6")]);
    said_once(
        &run,
        "Run the same command again to make the 6 image(s) not made",
    );
}

#[test]
fn an_empty_account_is_said_once_and_the_count_is_what_a_second_run_makes() {
    // Three in flight: two meet the empty account, then the third is made.
    let server = answering(Duration::from_millis(300), |n| match n {
        0 => Action::Delay(Duration::from_millis(300)),
        _ => Action::Error {
            status: 429,
            code: Some("insufficient_quota".to_owned()),
            kind: "insufficient_quota".to_owned(),
            message: "You exceeded your current quota, please check your plan and billing \
                      details."
                .to_owned(),
            headers: vec![("retry-after".to_owned(), "1".to_owned())],
        },
    });
    let ws = Workspace::new();
    let args = ["a cat", "-o", "out", "-n", "10", "-j", "3"];
    let run = genimg(&ws, Some(&server)).args(args).run();
    assert_code(&run, 3);
    assert_eq!(server.image_requests().len(), 3);
    assert_eq!(ws.files("out").len(), 1, "the image in flight was saved");
    said_once(&run, "You exceeded your current quota");
    said_once(&run, "code insufficient_quota");
    said_once(
        &run,
        "genimg stopped: the account is out of credit or over its spend limit",
    );
    assert!(!run.stderr.contains("retrying"), "{}", run.stderr);
    nothing_listed(&run);
    assert_summary(&run, &[("made", "1"), ("failed", "0"), ("not made", "9")]);
    said_once(
        &run,
        "Run the same command again to make the 9 image(s) not made",
    );
    a_second_run_makes(&ws, &args, 9);
}

#[test]
fn an_ordinary_failure_beside_a_stop_is_still_listed() {
    // A bad parameter is the image's own error: it is listed with its reason, the stop is
    // not.
    let server = answering(Duration::from_millis(300), |n| match n {
        0 => Action::error(400, "invalid_value", "Invalid value for 'size'."),
        _ => wrong_key(),
    });
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "-o", "out", "-n", "6", "-j", "3"])
        .args(["--max-retries", "0"])
        .run();
    assert_code(&run, 3);
    said_once(&run, "Incorrect API key provided");
    assert!(run.stderr.contains("Failed (1):"), "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("Invalid value for 'size'.").count(),
        2,
        "its progress line and the failure list:\n{}",
        run.stderr
    );
    assert_summary(&run, &[("made", "0"), ("failed", "1"), ("not made", "5")]);
    said_once(
        &run,
        "Run the same command again to make the 5 image(s) not made",
    );
}
