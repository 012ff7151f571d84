//! `--stream` and `--partial-images`: answers as server-sent events, partial images under
//! `.genimg/partials/` until the final image replaces them, a cut stream asked again.

use crate::support::*;

const PARTIALS: &str = "out/.genimg/partials";

/// A fake whose every image request is answered `200` with `body` as a stream of `content_type`.
fn streaming_server(content_type: &str, body: String) -> FakeServer {
    let content_type = content_type.to_owned();
    FakeServer::with(Options {
        script: Some(std::sync::Arc::new(move |_: &Incoming| Action::Raw {
            status: 200,
            headers: vec![("content-type".into(), content_type.clone())],
            body: body.clone(),
        })),
        ..Options::default()
    })
}

#[test]
fn a_streamed_answer_gives_the_final_image_and_its_partials_go_once_it_is_saved() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args([
            "a lighthouse",
            "-o",
            "out",
            "-n",
            "2",
            "--partial-images",
            "2",
        ])
        .run();
    assert_code(&run, 0);
    let requests = server.image_requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(
            r.fields["stream"], true,
            "--partial-images implies --stream"
        );
        assert_eq!(r.fields["partial_images"], 2);
        assert_eq!(r.partials.len(), 2);
    }
    assert_images_match(&ws, "out", &server);
    for r in &requests {
        let image = r.image.as_ref().unwrap();
        assert!(!r.partials.contains(image), "a partial is never the image");
    }
    // The final images replaced their partials.
    assert!(ws.files(PARTIALS).is_empty(), "{:?}", ws.files(PARTIALS));
    let records = ws.manifest("out");
    assert!(records[0]["usage"]["output_tokens"].as_u64().is_some());
    assert!(records[0]["cost_usd"].as_f64().unwrap() > 0.0);
    // How the answer travels is no part of the image: without --stream nothing is stale.
    let run = genimg(&ws, Some(&server))
        .args(["a lighthouse", "-o", "out", "-n", "2"])
        .run();
    assert_code(&run, 0);
    assert_eq!(server.image_requests().len(), 2);
}

#[test]
fn a_stream_cut_after_its_partials_is_asked_again_and_partials_never_take_a_final_name() {
    // The first answer is cut after its partials; the second completes.
    let server = FakeServer::with(Options {
        script: Some(std::sync::Arc::new(|i: &Incoming| {
            if i.nth == 0 {
                Action::Truncate
            } else {
                Action::Answer
            }
        })),
        ..Options::default()
    });
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args([
            "a lighthouse",
            "-o",
            "out",
            "--stream",
            "--partial-images",
            "3",
        ])
        .run();
    assert_code(&run, 0);
    assert_eq!(
        server.image_requests().len(),
        2,
        "the cut stream was asked again"
    );
    assert_images_match(&ws, "out", &server);
    assert_eq!(
        ws.files("out")
            .iter()
            .filter(|f| f.ends_with(".png"))
            .count(),
        1
    );

    // Every answer cut, no retry: the partials stay where they are, under their own names.
    let server = FakeServer::with(Options {
        script: Some(std::sync::Arc::new(|_: &Incoming| Action::Truncate)),
        ..Options::default()
    });
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a lighthouse", "-o", "out", "--partial-images", "2"])
        .args(["--max-retries", "0"])
        .run();
    assert_code(&run, 1);
    assert!(run.stderr.contains("before its image"), "{}", run.stderr);
    let sent = &server.image_requests()[0].partials;
    assert_eq!(
        ws.files(PARTIALS),
        ["image_01_hd.partial-1.png", "image_01_hd.partial-2.png"]
    );
    assert_eq!(
        &ws.read(&format!("{PARTIALS}/image_01_hd.partial-1.png")),
        &sent[0]
    );
    assert_eq!(
        &ws.read(&format!("{PARTIALS}/image_01_hd.partial-2.png")),
        &sent[1]
    );
    assert!(!ws.join("out/image_01_hd.png").exists());
}

#[test]
fn streaming_is_refused_where_it_cannot_apply() {
    let server = FakeServer::start();
    let cases: &[(&[&str], &str)] = &[
        (&["--stream", "-m", "gemini-3-pro-image"], "--stream"),
        (
            &["--partial-images", "2", "-m", "dall-e-3"],
            "--partial-images",
        ),
        (&["--partial-images", "4"], "--partial-images"),
        (&["--stream", "--batch"], "--batch"),
    ];
    for (args, named) in cases {
        let ws = Workspace::new();
        let run = genimg(&ws, Some(&server))
            .args(["a lighthouse", "-o", "out"])
            .args(*args)
            .run();
        assert_code(&run, 2);
        assert!(run.stderr.contains(named), "{args:?}: {}", run.stderr);
    }
    assert!(server.requests().is_empty());
}

/// A stream whose events are `events` (an `event:` name and its JSON data each), as the
/// service sends them.
fn sse(events: &[(&str, serde_json::Value)]) -> Action {
    let body: String = events
        .iter()
        .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
        .collect();
    Action::Raw {
        status: 200,
        headers: vec![("content-type".into(), "text/event-stream".into())],
        body,
    }
}

#[test]
fn an_error_event_in_a_stream_is_judged_as_the_error_answer_it_is() {
    use base64::Engine as _;
    let partial = serde_json::json!({
        "type": "image_generation.partial_image", "partial_image_index": 0,
        "b64_json": base64::engine::general_purpose::STANDARD.encode(images::png(7)),
    });
    // A refusal in the stream, at the output stage: refused, never asked again (a retried
    // refusal may be billed).
    let refusal = serde_json::json!({"type": "error", "error": {
        "message": "Your request was rejected by the safety system. safety_violations=[violence].",
        "type": "image_generation_user_error", "param": null, "code": "moderation_blocked",
        "moderation_details": {"moderation_stage": "output", "categories": ["violence"]},
    }});
    let events = [
        ("image_generation.partial_image", partial.clone()),
        ("error", refusal),
    ];
    let server = FakeServer::with(Options {
        script: Some(std::sync::Arc::new(move |_: &Incoming| sse(&events))),
        ..Options::default()
    });
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a lighthouse", "-o", "out", "--partial-images", "1"])
        .run();
    assert_code(&run, 1);
    assert_eq!(server.image_requests().len(), 1, "a refusal is not retried");
    let details = "refused at the output stage for violence";
    assert!(run.stderr.contains(details), "{}", run.stderr);
    let records = ws.manifest("out");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["status"], "refused", "{}", records[0]);

    // An error that no retry cures stops at once too: an account out of credit stops the run.
    let quota = serde_json::json!({"type": "error", "error": {
        "message": "Your credit balance is too low.", "type": "insufficient_quota",
        "param": null, "code": "credit_balance_exhausted",
    }});
    let events = [("error", quota)];
    let server = FakeServer::with(Options {
        script: Some(std::sync::Arc::new(move |_: &Incoming| sse(&events))),
        ..Options::default()
    });
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args([
            "a lighthouse",
            "-o",
            "out",
            "-n",
            "3",
            "--stream",
            "-j",
            "1",
        ])
        .run();
    assert_ne!(run.code, 0);
    assert_eq!(server.image_requests().len(), 1, "{}", run.stderr);

    // A server error is worth asking again, as a dropped connection is.
    let server = FakeServer::with(Options {
        script: Some(std::sync::Arc::new(|i: &Incoming| {
            if i.nth == 0 {
                sse(&[(
                    "error",
                    serde_json::json!({"error": {"message": "The server had an error.",
                        "type": "server_error", "param": null, "code": null}}),
                )])
            } else {
                Action::Answer
            }
        })),
        ..Options::default()
    });
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a lighthouse", "-o", "out", "--stream"])
        .run();
    assert_code(&run, 0);
    assert_eq!(server.image_requests().len(), 2);
    assert_images_match(&ws, "out", &server);
}

#[test]
fn a_stream_is_read_as_one_whatever_the_case_of_its_content_type() {
    use base64::Engine as _;
    let image = images::png(11);
    let completed = serde_json::json!({
        "type": "image_generation.completed",
        "b64_json": base64::engine::general_purpose::STANDARD.encode(&image),
        "usage": {"input_tokens": 50, "output_tokens": 7024},
    });
    let body = format!("event: image_generation.completed\r\ndata: {completed}\r\n\r\n");
    let server = streaming_server("Text/Event-Stream; charset=UTF-8", body);
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a lighthouse", "-o", "out", "--stream"])
        .run();
    assert_code(&run, 0);
    assert_eq!(server.image_requests().len(), 1, "{}", run.stderr);
    assert_eq!(ws.read("out/image_01_hd.png"), image);
    assert_eq!(ws.manifest("out")[0]["usage"]["output_tokens"], 7024);
}

#[test]
fn a_masked_edit_streams_with_its_params_as_multipart_fields() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("ref.png", images::fixture("reference.png"));
    ws.write("mask.png", images::mask_png(32, 32));
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "-o", "out", "--reference-image", "ref.png"])
        .args(["--mask", "mask.png", "--partial-images", "2"])
        .args(["-m", "gpt-image-2.6-flare", "--param", "frame_count=8"])
        .args(["--format", "gif"])
        .run();
    assert_code(&run, 0);
    let requests = server.image_requests();
    assert_eq!(requests.len(), 1, "{}", run.stderr);
    let r = &requests[0];
    assert_eq!(r.path, "/v1/images/edits");
    assert!(r.is_multipart);
    assert_eq!(r.field("stream").as_deref(), Some("true"));
    assert_eq!(r.field("partial_images").as_deref(), Some("2"));
    assert_eq!(r.field("frame_count").as_deref(), Some("8"));
    assert_eq!(r.partials.len(), 2);
    assert_images_match(&ws, "out", &server);
    let files = ws.files("out");
    assert!(files.iter().any(|f| f.ends_with(".gif")), "{files:?}");
    assert!(ws.files(PARTIALS).is_empty(), "{:?}", ws.files(PARTIALS));
    // Streaming is no part of the image: asked again without it, nothing is stale.
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "-o", "out", "--reference-image", "ref.png"])
        .args(["--mask", "mask.png", "-m", "gpt-image-2.6-flare"])
        .args(["--param", "frame_count=8", "--format", "gif"])
        .run();
    assert_code(&run, 0);
    assert_eq!(server.image_requests().len(), 1, "{}", run.stderr);
}

#[test]
fn odd_partial_indexes_are_taken_without_a_panic() {
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let image = images::png(12);
    let mut body = String::new();
    for index in [
        serde_json::json!(4_294_967_295u64),
        serde_json::json!(u64::MAX),
        serde_json::json!(-1),
        serde_json::json!("two"),
    ] {
        let partial = serde_json::json!({"type": "image_generation.partial_image",
            "partial_image_index": index, "b64_json": b64(&images::png(13))});
        body.push_str(&format!("data: {partial}\n\n"));
    }
    let completed = serde_json::json!({"type": "image_generation.completed",
        "b64_json": b64(&image), "usage": {"input_tokens": 5, "output_tokens": 70}});
    body.push_str(&format!("data: {completed}\n\n"));
    let server = streaming_server("text/event-stream", body);
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a lighthouse", "-o", "out", "--partial-images", "3"])
        .run();
    assert_code(&run, 0);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_eq!(server.image_requests().len(), 1, "{}", run.stderr);
    assert_eq!(ws.read("out/image_01_hd.png"), image);
    assert!(ws.files(PARTIALS).is_empty(), "{:?}", ws.files(PARTIALS));
}

#[test]
fn an_unknown_event_with_a_null_error_is_skipped_not_taken_for_an_error() {
    use base64::Engine as _;
    let image = images::png(14);
    let progress = serde_json::json!({"type": "image_generation.in_progress", "error": null});
    let completed = serde_json::json!({"type": "image_generation.completed", "error": null,
        "b64_json": base64::engine::general_purpose::STANDARD.encode(&image)});
    let body = format!("data: {progress}\n\ndata: {completed}\n\n");
    let server = streaming_server("text/event-stream", body);
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a lighthouse", "-o", "out", "--stream"])
        .run();
    assert_code(&run, 0);
    assert_eq!(server.image_requests().len(), 1, "{}", run.stderr);
    assert_eq!(ws.read("out/image_01_hd.png"), image);
}

/// Events as a lenient JSON reader takes them: a completed event with a key written twice
/// (the last counts) is the image, bought once; data that is not an object is never taken
/// for an answer; an error event whose data is a string says that string.
#[test]
fn odd_event_data_is_read_leniently_and_never_taken_for_what_it_is_not() {
    use base64::Engine as _;
    let image = images::png(15);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&image);
    let twice = format!(
        "data: {{\"type\":\"image_generation.completed\",\"b64_json\":\"{b64}\",\
         \"usage\":{{\"output_tokens\":1}},\"usage\":{{\"output_tokens\":7024}}}}\n\n"
    );
    let server = streaming_server("text/event-stream", twice);
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a lighthouse", "-o", "out", "--stream"])
        .run();
    assert_code(&run, 0);
    assert_eq!(server.image_requests().len(), 1, "{}", run.stderr);
    assert_eq!(ws.read("out/image_01_hd.png"), image);
    assert_eq!(ws.manifest("out")[0]["usage"]["output_tokens"], 7024);

    for (body, says) in [
        // An array, whatever it holds, is no completed event.
        (
            format!("data: [\"image_generation.completed\",\"{b64}\"]\n\n"),
            "before its image",
        ),
        // An error event whose data is a string: its text is the message.
        (
            "event: error\ndata: \"the image service is overloaded\"\n\n".to_owned(),
            "the image service is overloaded",
        ),
    ] {
        let server = streaming_server("text/event-stream", body);
        let ws = Workspace::new();
        let run = genimg(&ws, Some(&server))
            .args([
                "a lighthouse",
                "-o",
                "out",
                "--stream",
                "--max-retries",
                "0",
            ])
            .run();
        assert_code(&run, 1);
        assert!(!ws.join("out/image_01_hd.png").exists());
        assert!(run.stderr.contains(says), "{}", run.stderr);
    }
}
