//! Failures: one failed image never stops the others, each failure is explained, nothing
//! half-written is left, and the API key never shows.

use std::sync::Arc;

use serde_json::Value;

use crate::support::*;

/// Two prompts; the one named `bad` meets `action` on every attempt. Retries are off, so
/// each fault shows as it is (retries have their own tests in `retries.rs`).
fn run_with_fault(action: Action) -> (Run, Workspace, FakeServer) {
    let server = FakeServer::with(Options {
        script: Some(Arc::new(move |i: &Incoming| {
            if i.prompt.contains("bad") {
                action.clone()
            } else {
                Action::Answer
            }
        })),
        ..Options::default()
    });
    let ws = Workspace::new();
    ws.write("p.txt", "# good\na good prompt\n# bad\na bad prompt\n");
    let run = genimg(&ws, Some(&server))
        .args([
            "--input",
            "p.txt",
            "-o",
            "out",
            "--count",
            "2",
            "--max-retries",
            "0",
        ])
        .run();
    (run, ws, server)
}

#[track_caller]
fn only_the_good_ones_were_made(run: &Run, ws: &Workspace, server: &FakeServer, reason: &str) {
    assert_code(run, 1);
    assert_eq!(
        ws.files("out"),
        ["image.good.01.hd.png", "image.good.02.hd.png"],
        "no stray or partial file"
    );
    assert_images_match(ws, "out", server);
    assert_summary(run, &[("made", "2"), ("failed", "2")]);
    for n in ["01", "02"] {
        let line = format!("image.bad.{n}.hd.png [bad]: ");
        let found = run
            .stderr
            .lines()
            .find(|l| l.contains(&line))
            .unwrap_or_else(|| panic!("{}", run.stderr));
        assert!(found.contains(reason), "{found}");
    }
}

#[test]
fn a_refused_prompt_is_reported_and_the_others_are_made() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write(
        "p.txt",
        "# fine\na meadow\n# nope\nsomething FORBIDDEN\n# also_fine\na lake\n",
    );
    let run = genimg(&ws, Some(&server))
        .args(["--input", "p.txt", "-o", "out"])
        .run();
    assert_code(&run, 1);
    assert_eq!(
        ws.files("out"),
        ["image.also_fine.01.hd.png", "image.fine.01.hd.png"]
    );
    let refused: Vec<Recorded> = server
        .image_requests()
        .into_iter()
        .filter(|r| r.prompt().contains("FORBIDDEN"))
        .collect();
    assert_eq!(refused.len(), 1, "a refused prompt is asked once");
    assert!(
        run.stderr.contains("image.nope.01.hd.png [nope]: refused by the service: HTTP 400 Bad Request: Your request was rejected by the safety system."),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("code moderation_blocked"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_refusal_shows_the_services_moderation_details() {
    let server = FakeServer::with(Options {
        script: Some(Arc::new(|i: &Incoming| {
            if i.prompt.contains("FORBIDDEN") {
                Action::Raw {
                    status: 400,
                    headers: vec![("content-type".into(), "application/json".into())],
                    body: r#"{"error": {"message": "Your request was rejected by the safety system. safety_violations=[violence].", "type": "image_generation_user_error", "param": null, "code": "moderation_blocked", "moderation_details": {"moderation_stage": "output", "categories": ["violence"]}}}"#.into(),
                }
            } else {
                Action::Answer
            }
        })),
        ..Options::default()
    });
    let ws = Workspace::new();
    ws.write("p.txt", "# fine\na meadow\n# nope\nsomething FORBIDDEN\n");
    let run = genimg(&ws, Some(&server))
        .args(["--input", "p.txt", "-o", "out"])
        .run();
    assert_code(&run, 1);
    let details = "refused at the output stage for violence";
    assert!(run.stderr.contains(details), "{}", run.stderr);
    let records = ws.manifest("out");
    let refused: Vec<&Value> = records
        .iter()
        .filter(|r| r["status"] == "refused")
        .collect();
    assert_eq!(refused.len(), 1, "{records:?}");
    assert!(
        refused[0]["error"].as_str().unwrap().contains(details),
        "{}",
        refused[0]
    );
}

#[test]
fn a_server_error_fails_that_image_with_message_and_request_id() {
    let (run, ws, server) = run_with_fault(Action::error(
        500,
        "server_error",
        "The server had an error while processing your request.",
    ));
    only_the_good_ones_were_made(
        &run,
        &ws,
        &server,
        "HTTP 500 Internal Server Error: The server had an error",
    );
    assert!(run.stderr.contains("request req_fake_"), "{}", run.stderr);
}

#[test]
fn a_bad_parameter_error_shows_the_service_message() {
    let (run, ws, server) = run_with_fault(Action::error(
        400,
        "invalid_value",
        "Invalid value for 'size'.",
    ));
    only_the_good_ones_were_made(
        &run,
        &ws,
        &server,
        "HTTP 400 Bad Request: Invalid value for 'size'. (code invalid_value",
    );
}

#[test]
fn a_dropped_connection() {
    let (run, ws, server) = run_with_fault(Action::Drop);
    only_the_good_ones_were_made(&run, &ws, &server, "the connection failed");
}

#[test]
fn a_truncated_body() {
    let (run, ws, server) = run_with_fault(Action::Truncate);
    only_the_good_ones_were_made(&run, &ws, &server, "the connection failed");
}

#[test]
fn malformed_json() {
    let (run, ws, server) = run_with_fault(Action::MalformedJson);
    only_the_good_ones_were_made(
        &run,
        &ws,
        &server,
        "unusable answer: the answer is not valid JSON",
    );
}

#[test]
fn bad_base64() {
    let (run, ws, server) = run_with_fault(Action::BadBase64);
    only_the_good_ones_were_made(
        &run,
        &ws,
        &server,
        "unusable answer: the image is not valid base64",
    );
}

#[test]
fn an_image_in_another_format_than_asked_is_kept_and_never_bought_again() {
    // It was paid for: it is kept under the extension of what it is, with a warning, and
    // counts as made. (Until issue 10 it was retried, buying it again and again.)
    let (run, ws, server) = run_with_fault(Action::WrongFormat);
    assert_code(&run, 0);
    assert_eq!(
        ws.files("out"),
        [
            "image.bad.01.hd.jpeg",
            "image.bad.02.hd.jpeg",
            "image.good.01.hd.png",
            "image.good.02.hd.png"
        ]
    );
    assert_images_match(&ws, "out", &server);
    assert_summary(&run, &[("made", "4")]);
    assert_eq!(server.image_requests().len(), 4, "one request per image");
    for n in ["01", "02"] {
        let warning = format!(
            "image.bad.{n}.hd.png: asked for PNG, received JPEG; kept as image.bad.{n}.hd.jpeg"
        );
        assert!(run.stderr.contains(&warning), "{}", run.stderr);
        let records = ws.manifest("out");
        let r = records
            .iter()
            .find(|r| r["file"] == format!("image.bad.{n}.hd.jpeg"))
            .unwrap();
        assert_eq!(r["status"], "made");
        assert_eq!(r["planned_file"], format!("image.bad.{n}.hd.png"));
        assert_eq!(r["asked_format"], "png");
        assert_eq!(r["received_format"], "jpeg");
        assert!(r["cost_usd"].as_f64().unwrap() > 0.0, "its cost counts");
    }

    // The next run knows them: nothing is bought again.
    let again = genimg(&ws, Some(&server))
        .args(["--input", "p.txt", "-o", "out", "--count", "2"])
        .run();
    assert_code(&again, 0);
    assert_summary(&again, &[("made", "0"), ("skipped", "4")]);
    assert_eq!(server.image_requests().len(), 4, "nothing bought twice");
}

#[test]
fn a_wrong_key_fails_without_showing_it_at_any_verbosity() {
    let server = FakeServer::start();
    let secret = "sk-wrong-but-secret-4242";
    for verbosity in [&[][..], &["-v"][..], &["-vv"][..]] {
        let ws = Workspace::new();
        let run = genimg(&ws, Some(&server))
            .args(["a cat", "-o", "out", "--api-key", secret])
            .args(verbosity)
            .run();
        assert_code(&run, 3);
        assert!(
            run.stderr
                .contains("HTTP 401 Unauthorized: Incorrect API key provided: [redacted]"),
            "{}",
            run.stderr
        );
        assert!(!run.all_output().contains(secret), "{}", run.all_output());
        assert!(!run.all_output().contains("wrong-but-secret"));
    }
}

#[test]
fn an_unreachable_server_is_named() {
    let ws = Workspace::new();
    let run = genimg(&ws, None)
        .env("OPENAI_API_KEY", "k")
        .args(["a cat", "-o", "out", "--max-retries", "1"])
        .run();
    assert_code(&run, 1);
    assert!(
        run.stderr.contains("could not connect to 127.0.0.1:9"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("(gave up after 2 attempts)"),
        "{}",
        run.stderr
    );
    assert_eq!(ws.files("out"), Vec::<String>::new());
}

#[test]
fn no_piece_of_the_key_survives_a_long_error_page() {
    // A proxy's HTML error page that quotes the key past the point messages are cut at.
    let page = format!("<html><body>{} key={KEY} </body></html>", "x ".repeat(80));
    let server = FakeServer::with(Options {
        script: Some(Arc::new(move |_: &Incoming| Action::Raw {
            status: 400,
            headers: Vec::new(),
            body: page.clone(),
        })),
        ..Options::default()
    });
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "-o", "out", "--json"])
        .run();
    assert_code(&run, 1);
    let manifest = String::from_utf8(ws.read("out/genimg.jsonl")).unwrap();
    let gallery = String::from_utf8(ws.read("out/index.html")).unwrap();
    for (what, text) in [
        ("output", run.all_output()),
        ("manifest", manifest),
        ("gallery", gallery),
    ] {
        assert!(
            !text.contains(&KEY[..12]),
            "{what} holds a piece of the key:\n{text}"
        );
    }
}

#[test]
fn a_redirect_from_the_api_is_not_followed_with_the_key() {
    // Azure's key travels in `api-key`, a header an HTTP client keeps across hosts.
    let elsewhere = FakeServer::start();
    let target = format!(
        "{}/openai/v1/images/generations",
        elsewhere.azure_endpoint()
    );
    let server = FakeServer::with(Options {
        script: Some(Arc::new(move |_: &Incoming| Action::Raw {
            status: 307,
            headers: vec![("location".into(), target.clone())],
            body: String::new(),
        })),
        ..Options::default()
    });
    let ws = Workspace::new();
    let run = genimg(&ws, None)
        .env_remove("OPENAI_BASE_URL")
        .env("AZURE_OPENAI_ENDPOINT", server.azure_endpoint())
        .env("AZURE_OPENAI_API_KEY", KEY)
        .args(["a cat", "-o", "out", "--max-retries", "0"])
        .run();
    assert_code(&run, 1);
    assert!(
        elsewhere.requests().is_empty(),
        "the key went to the redirect's host"
    );
    assert!(run.stderr.contains("HTTP 307"), "{}", run.stderr);
}

#[test]
fn a_refusal_says_which_prompt_to_reword() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", "# fox\na fox\n\n# nope\nFORBIDDEN\n");
    let run = genimg(&ws, Some(&server))
        .args(["--input", "p.txt", "-o", "out"])
        .run();
    assert_code(&run, 1);
    assert!(
        run.stderr.contains("; reword the prompt at p.txt:4"),
        "{}",
        run.stderr
    );
    let records = ws.manifest("out");
    let refused = records.iter().find(|r| r["status"] == "refused").unwrap();
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .ends_with("reword the prompt at p.txt:4"),
        "{refused}"
    );
}

#[test]
fn a_service_that_cannot_be_reached_stops_the_run_once() {
    // Nothing listens on port 9: every request is refused before reaching any service.
    let ws = Workspace::new();
    let run = genimg(&ws, None)
        .env("OPENAI_API_KEY", "k")
        .args(["a cat", "-o", "out", "-n", "24", "-j", "4"])
        .run();
    assert_code(&run, 3);
    assert!(
        run.stderr
            .contains("genimg stopped: the service could not be reached: check --base-url"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("attempts in a row, none answered"),
        "{}",
        run.stderr
    );
    // Not image by image: the run stopped after a few refused connections.
    let retries = run.stderr.matches("retrying").count();
    assert!(retries < 6, "{retries} retries:\n{}", run.stderr);
    assert_eq!(ws.files("out"), Vec::<String>::new());
}
