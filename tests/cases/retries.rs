//! Retries that honour the server, and the errors that must not be retried.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// A server that answers the `n`th image request (from 0) as `script` says.
fn scripted(script: impl Fn(usize) -> Action + Send + Sync + 'static) -> FakeServer {
    FakeServer::with(Options {
        script: Some(Arc::new(move |i: &Incoming| script(i.nth))),
        ..Options::default()
    })
}

fn rate_limited() -> Action {
    Action::error(
        429,
        "rate_limit_exceeded",
        "Rate limit reached for gpt-image-2 on images per minute.",
    )
}

#[test]
fn every_image_is_made_through_a_random_mix_of_faults() {
    let server = FakeServer::with(Options {
        script: Some(chaos(0.3, 20261124)),
        ..Options::default()
    });
    let ws = Workspace::new();
    ws.write(
        "p.txt",
        "# fox\na fox\n# owl\nan owl\n# elk\nan elk\n# eel\nan eel\n",
    );
    let run = genimg(&ws, Some(&server))
        .args(["--input", "p.txt", "-o", "out", "-n", "5", "-j", "4"])
        // 0.3^11: no image runs out of retries by bad luck.
        .args(["--max-retries", "10"])
        .run();
    assert_code(&run, 0);

    let requests = server.image_requests();
    let faults = requests.iter().filter(|r| r.image.is_none()).count();
    assert!(faults >= 5, "the mix hit only {faults} answers");
    assert_eq!(
        requests.len(),
        20 + faults,
        "one more request per fault, none for an image already delivered"
    );
    assert!(run.stderr.contains("retrying "), "{}", run.stderr);

    // Nothing stray: twenty images, the manifest, the gallery, the lock, and the gallery's
    // twenty thumbnails in .genimg.
    let mut expected: Vec<String> = ["eel", "elk", "fox", "owl"]
        .iter()
        .flat_map(|p| (1..=5).map(move |i| format!("image.{p}.{i:02}.hd.png")))
        .collect();
    expected.sort();
    assert_eq!(ws.files("out"), expected);
    assert_eq!(ws.all_files("out").len(), 24, "{:?}", ws.all_files("out"));
    assert_eq!(ws.all_files("out/.genimg"), ["thumbs"]);
    assert_eq!(ws.all_files("out/.genimg/thumbs").len(), 20);

    // Each image is byte for byte what the server sent in the answer the manifest names.
    let records = ws.manifest("out");
    assert_eq!(records.len(), 20);
    for r in &records {
        let file = r["file"].as_str().unwrap();
        let bytes = ws.read(&format!("out/{file}"));
        let id = r["request_id"].as_str().unwrap();
        let seq: usize = id.strip_prefix("req_fake_").unwrap().parse().unwrap();
        let answer = server
            .requests()
            .into_iter()
            .find(|q| q.seq == seq)
            .unwrap();
        assert_eq!(answer.image.as_deref(), Some(&bytes[..]), "{file}");
        assert_eq!(r["status"], "made");
        let attempts = r["attempts"].as_u64().unwrap();
        let sent = requests
            .iter()
            .filter(|q| q.prompt() == r["prompt_text"].as_str().unwrap())
            .count() as u64;
        assert!(attempts >= 1 && attempts <= sent, "{file}: {attempts}");
    }
}

#[test]
fn retry_after_is_honoured() {
    let server = scripted(|n| match n {
        0 => rate_limited().with_header("retry-after", "1"),
        _ => Action::Answer,
    });
    let (run, _) = one_image(&server, &[]);
    assert_code(&run, 0);
    let r = server.image_requests();
    assert_eq!(r.len(), 2);
    let gap = r[1].arrived - r[0].answered;
    assert!(gap >= Duration::from_secs(1), "retried after {gap:?}");
    assert!(
        run.stderr.contains(
            "rate limited: retrying image_01_hd.png in 1.0 s (not counted against its 5 \
             attempts: HTTP 429 Too Many Requests"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("no new request starts until then"),
        "{}",
        run.stderr
    );
}

#[test]
fn retry_after_ms_wins_over_retry_after() {
    let server = scripted(|n| match n {
        0 => rate_limited()
            .with_header("retry-after-ms", "300")
            .with_header("retry-after", "30"),
        _ => Action::Answer,
    });
    let (run, _) = one_image(&server, &[]);
    assert_code(&run, 0);
    let r = server.image_requests();
    assert!(r[1].arrived - r[0].answered >= Duration::from_millis(300));
    assert!(
        run.stderr.contains("retrying image_01_hd.png in 0.3 s"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_429_holds_back_every_new_request_for_its_wait() {
    // Four slots. The first request is rate limited at once with a one-second wait; the
    // other three take half a second, and the requests after them must wait out the pause.
    let server = scripted(|n| match n {
        0 => rate_limited().with_header("retry-after", "1"),
        _ => Action::Delay(Duration::from_millis(500)),
    });
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "-o", "out", "-n", "8", "-j", "4"])
        .run();
    assert_code(&run, 0);
    let r = server.image_requests();
    assert_eq!(r.len(), 9);
    // Arrival order, not the order the fake numbered them in, decides which is first.
    let limited = r.iter().find(|q| q.status == 429).unwrap().answered;
    for later in &r[4..] {
        let after = later.arrived - limited;
        assert!(
            after >= Duration::from_secs(1),
            "request {} started {after:?} after the 429",
            later.seq
        );
    }
}

#[test]
fn x_should_retry_false_stops_the_retries() {
    let server = scripted(|_| {
        Action::error(503, "overloaded", "The engine is overloaded.")
            .with_header("x-should-retry", "false")
    });
    let (run, _) = one_image(&server, &[]);
    assert_code(&run, 1);
    assert_eq!(server.image_requests().len(), 1);
    assert!(
        run.stderr
            .contains("image_01_hd.png: HTTP 503 Service Unavailable"),
        "{}",
        run.stderr
    );
}

#[test]
fn x_should_retry_true_retries_what_would_not_be() {
    let server = scripted(|n| match n {
        0 => {
            Action::error(400, "invalid_value", "Try again.").with_header("x-should-retry", "true")
        }
        _ => Action::Answer,
    });
    let (run, _) = one_image(&server, &[]);
    assert_code(&run, 0);
    assert_eq!(server.image_requests().len(), 2);
}

#[test]
fn a_bad_parameter_is_not_retried() {
    let server = scripted(|_| Action::error(400, "invalid_value", "Invalid value for 'size'."));
    let (run, _) = one_image(&server, &[]);
    assert_code(&run, 1);
    assert_eq!(server.image_requests().len(), 1);
    assert!(
        run.stderr
            .contains("Invalid value for 'size'. (code invalid_value, request req_fake_0)"),
        "{}",
        run.stderr
    );
}

#[test]
fn max_retries_sets_the_number_of_retries() {
    let server = scripted(|_| Action::error(500, "server_error", "The server had an error."));
    let (run, ws) = one_image(&server, &["--max_retries", "2"]);
    assert_code(&run, 1);
    assert_eq!(server.image_requests().len(), 3);
    assert!(
        run.stderr.contains("(gave up after 3 attempts)"),
        "{}",
        run.stderr
    );
    let records = ws.manifest("out");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["status"], "failed");
    assert_eq!(records[0]["attempts"], 3);
    assert_eq!(records[0]["request_id"], "req_fake_2");
}

/// Three slots, ten images: one request meets `fatal` at once while the other two take a
/// while. Returns the run, its workspace and the server.
fn run_into(fatal: Action, extra: &[&str]) -> (Run, Workspace, FakeServer) {
    // The third request to arrive meets the error: by then the other two are surely in
    // flight, whatever the order the three were sent in.
    let server = scripted(move |n| match n {
        2 => fatal.clone(),
        _ => Action::Delay(Duration::from_millis(400)),
    });
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "-o", "out", "-n", "10", "-j", "3"])
        .args(extra)
        .run();
    (run, ws, server)
}

#[track_caller]
fn stopped_with(run: &Run, ws: &Workspace, server: &FakeServer, advice: &str) {
    assert_code(run, 3);
    assert_eq!(
        server.image_requests().len(),
        3,
        "no request after the three in flight"
    );
    // Which of the first images met the error depends on arrival order.
    let files = ws.files("out");
    assert_eq!(
        files.len(),
        2,
        "the requests in flight were saved: {files:?}"
    );
    assert!(
        files.iter().all(|f| f.as_str() <= "image_06_hd.png"),
        "{files:?}"
    );
    assert_images_match(ws, "out", server);
    let stderr = &run.stderr;
    assert!(stderr.contains("Stopping: HTTP "), "{stderr}");
    assert!(stderr.contains("Stopped after"), "{stderr}");
    // The image that met the error is not made, as those never sent: a second run makes
    // all eight.
    assert_summary(run, &[("made", "2"), ("failed", "0"), ("not made", "8")]);
    assert!(
        stderr.contains(&format!("genimg stopped: {advice}")),
        "{stderr}"
    );
    assert!(
        stderr.contains("Run the same command again to make the 8 image(s) not made"),
        "{stderr}"
    );
}

#[test]
fn a_wrong_key_stops_the_run() {
    let (run, ws, server) = run_into(
        Action::error(401, "invalid_api_key", "Incorrect API key provided."),
        &[],
    );
    stopped_with(
        &run,
        &ws,
        &server,
        "the API key was not accepted: check OPENAI_API_KEY",
    );
}

#[test]
fn a_forbidden_request_stops_the_run() {
    let (run, ws, server) = run_into(
        Action::error(
            403,
            "unsupported_country_region_territory",
            "Country not supported.",
        ),
        &[],
    );
    stopped_with(&run, &ws, &server, "the API key may not make this request");
}

#[test]
fn an_unknown_model_stops_the_run() {
    let (run, ws, server) = run_into(
        Action::error(
            404,
            "model_not_found",
            "The model `gpt-image-9` does not exist.",
        ),
        &[],
    );
    stopped_with(
        &run,
        &ws,
        &server,
        "the model does not exist or this key cannot use it",
    );
}

#[test]
fn an_empty_account_stops_the_run_without_retrying() {
    for code in [
        "insufficient_quota",
        "billing_hard_limit_reached",
        "monthly_spend_limit_exceeded",
    ] {
        let (run, ws, server) = run_into(
            Action::error(429, code, "You exceeded your current quota.")
                .with_header("retry-after", "1"),
            &[],
        );
        stopped_with(
            &run,
            &ws,
            &server,
            "the account is out of credit or over its spend limit",
        );
        assert!(!run.stderr.contains("retrying"), "{}", run.stderr);
    }
}

/// `insufficient_quota` in `type`, the billing stop in `code`, as the service sends them.
fn quota(status: u16, code: &str) -> Action {
    Action::Error {
        status,
        code: Some(code.to_owned()),
        kind: "insufficient_quota".to_owned(),
        message: "You exceeded your current quota, please check your plan and billing details."
            .to_owned(),
        headers: vec![("retry-after".to_owned(), "1".to_owned())],
    }
}

#[test]
fn each_billing_stop_has_its_own_advice() {
    for (status, code, advice) in [
        (
            429,
            "credit_balance_exhausted",
            "the account's credit balance is used up: add credit",
        ),
        (
            429,
            "project_spend_limit_exceeded",
            "the project has reached its spend limit: raise the project's budget",
        ),
        (
            429,
            "organization_spend_limit_exceeded",
            "the organization has reached its spend or usage limit: raise the organization's limit",
        ),
        (
            429,
            "organization_usage_limit_exceeded",
            "the organization has reached its spend or usage limit: raise the organization's limit",
        ),
    ] {
        let (run, ws, server) = run_into(quota(status, code), &[]);
        stopped_with(&run, &ws, &server, advice);
        assert!(!run.stderr.contains("retrying"), "{code}: {}", run.stderr);
    }
}

#[test]
fn a_400_hard_billing_limit_stops_the_run() {
    let (run, ws, server) = run_into(
        Action::error(
            400,
            "billing_hard_limit_reached",
            "Billing hard limit has been reached",
        ),
        &[],
    );
    stopped_with(
        &run,
        &ws,
        &server,
        "the account is out of credit or over its spend limit",
    );
}

#[test]
fn a_stopped_run_resumes_where_it_stopped() {
    let (run, ws, _) = run_into(
        Action::error(401, "invalid_api_key", "Incorrect API key provided."),
        &[],
    );
    assert_code(&run, 3);
    let server = FakeServer::start();
    let again = genimg(&ws, Some(&server))
        .args(["a cat", "-o", "out", "-n", "10", "-j", "3"])
        .run();
    assert_code(&again, 0);
    assert_eq!(server.image_requests().len(), 8, "only the missing images");
    assert_eq!(ws.files("out").len(), 10);
    let records = ws.manifest("out");
    let made: Vec<&Value> = records.iter().filter(|r| r["status"] == "made").collect();
    assert_eq!(made.len(), 10, "each image has its record");
    let failed: Vec<&Value> = records.iter().filter(|r| r["status"] == "failed").collect();
    assert_eq!(failed.len(), 1, "and the one that met the 401");
}

#[test]
fn a_wrong_key_met_by_every_request_in_flight_is_said_once() {
    let server = scripted(|_| Action::error(401, "invalid_api_key", "Incorrect API key provided."));
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "-o", "out", "-n", "12", "-j", "4"])
        .run();
    assert_code(&run, 3);
    let requests = server.image_requests().len();
    assert!((1..=4).contains(&requests), "{requests} requests");
    // The stop line says it; every image it stopped counts as not made.
    assert_summary(&run, &[("made", "0"), ("failed", "0"), ("not made", "12")]);
    assert!(
        run.stderr
            .contains("Run the same command again to make the 12 image(s) not made"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("FAILED").count(),
        0,
        "no FAILED line:\n{}",
        run.stderr
    );
}

/// A server that asks the first image request to wait `secs` seconds.
fn asks_to_wait(secs: &'static str) -> FakeServer {
    scripted(move |n| match n {
        0 => rate_limited().with_header("retry-after", secs),
        _ => Action::Answer,
    })
}

#[test]
fn a_wait_longer_than_max_wait_stops_the_run_cleanly() {
    let server = asks_to_wait("3600");
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a fox", "-o", "out", "-n", "3", "-j", "1"])
        .run();
    assert_code(&run, 3);
    assert_eq!(server.image_requests().len(), 1, "no hammering");
    assert!(
        run.stderr
            .contains("the service asks to wait 1h 00m, longer than --max-wait 15m 00s"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("run the same command after that wait"),
        "{}",
        run.stderr
    );
    assert_summary(&run, &[("made", "0"), ("failed", "0"), ("not made", "3")]);
    assert!(ws.files("out").is_empty());

    // --max-wait 0: any wait beyond 120 s stops the run.
    let server = asks_to_wait("121");
    let run = genimg(&ws, Some(&server))
        .args(["a fox", "-o", "out", "--max-wait", "0"])
        .run();
    assert_code(&run, 3);
    assert_eq!(server.image_requests().len(), 1);
    assert!(
        run.stderr.contains("the service asks to wait 2m 01s"),
        "{}",
        run.stderr
    );
}

#[cfg(unix)]
#[test]
fn a_wait_within_max_wait_is_sat_out_and_shown() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let server = asks_to_wait("130");
    let ws = Workspace::new();
    let child = genimg(&ws, Some(&server))
        .args(["a fox", "-o", "out", "-n", "2", "-j", "1"])
        .start();
    wait_for("the first answer", || server.image_requests().len() == 1);
    // Waiting, not retrying: nothing more goes out.
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(server.image_requests().len(), 1);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let run = wait(child);
    assert_code(&run, 130);
    assert_eq!(server.image_requests().len(), 1);
    assert!(
        run.stderr.contains(
            "the service asks to wait 2m 10s; waiting (--max-wait is 15m 00s), Ctrl-C to stop"
        ),
        "{}",
        run.stderr
    );
    assert_summary(&run, &[("not made", "2")]);
}

#[test]
fn max_wait_is_read_from_the_flag_and_the_config_file_and_checked() {
    let server = asks_to_wait("600");
    let ws = Workspace::new();
    let config = ws.write("genimg.toml", b"max-wait = \"5m\"\n");
    let run = genimg(&ws, Some(&server))
        .env("GENIMG_CONFIG", &config)
        .args(["a fox", "-o", "out"])
        .run();
    assert_code(&run, 3);
    assert!(
        run.stderr.contains("longer than --max-wait 5m 00s"),
        "{}",
        run.stderr
    );

    let run = genimg(&ws, None)
        .args(["a fox", "-o", "out", "--dry-run", "--max-wait", "soon"])
        .run();
    assert_code(&run, 2);
    assert!(run.stderr.contains("--max-wait"), "{}", run.stderr);
    assert!(
        run.stderr.contains("is not a duration such as 15m"),
        "{}",
        run.stderr
    );

    // Over a day is refused rather than cut to one without a word.
    let run = genimg(&ws, None)
        .args(["a fox", "-o", "out", "--dry-run", "--max-wait", "48h"])
        .run();
    assert_code(&run, 2);
    assert!(
        run.stderr.contains("`48h` is more than 24h"),
        "{}",
        run.stderr
    );
    let run = genimg(&ws, None)
        .args(["a fox", "-o", "out", "--dry-run", "--max-wait", "24h"])
        .run();
    assert_code(&run, 0);

    let bad = ws.write("bad.toml", b"max-wait = \"later\"\n");
    let run = genimg(&ws, None)
        .env("GENIMG_CONFIG", &bad)
        .args(["a fox", "-o", "out", "--dry-run"])
        .run();
    assert_code(&run, 2);
    assert!(run.stderr.contains("max-wait"), "{}", run.stderr);
}
