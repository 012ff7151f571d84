//! The fake refuses what the real service refuses, so a request genimg gets wrong fails here
//! as it would in production.

use std::collections::HashMap;

use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::support::*;

/// A plain HTTP client; genimg installs its TLS provider the same way.
fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn post_json(server: &FakeServer, key: &str, body: Value) -> (u16, Value) {
    let response = http()
        .post(format!("{}/images/generations", server.base_url()))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn post_form(server: &FakeServer, form: Form) -> (u16, Value) {
    let response = http()
        .post(format!("{}/images/edits", server.base_url()))
        .bearer_auth(KEY)
        .multipart(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn code(answer: &(u16, Value)) -> (u16, &str) {
    (answer.0, answer.1["error"]["code"].as_str().unwrap_or(""))
}

#[tokio::test]
async fn generations_are_checked_like_the_service() {
    let server = FakeServer::start();
    let cases = [
        (
            json!({"model": "gpt-image-2", "prompt": "x", "response_format": "b64_json"}),
            (400, "unknown_parameter"),
        ),
        (
            json!({"model": "gpt-image-2", "prompt": "x", "style": "vivid"}),
            (400, "unknown_parameter"),
        ),
        (
            json!({"model": "gpt-image-2", "prompt": "x", "size": "1000x1000"}),
            (400, "invalid_value"),
        ),
        (
            json!({"model": "gpt-image-2", "prompt": "x", "quality": "hd"}),
            (400, "invalid_value"),
        ),
        (
            json!({"model": "gpt-image-2", "prompt": "x", "quality": "xhigh"}),
            (400, "invalid_value"),
        ),
        (
            json!({"model": "gpt-image-1.5", "prompt": "x", "size": "2048x1152"}),
            (400, "invalid_value"),
        ),
        (
            json!({"model": "dall-e-3", "prompt": "x", "n": 2}),
            (400, "invalid_value"),
        ),
        (
            json!({"model": "dall-e-3", "prompt": "x", "quality": "high"}),
            (400, "invalid_value"),
        ),
        (
            json!({"model": "dall-e-3", "prompt": "x".repeat(4001)}),
            (400, "string_above_max_length"),
        ),
        (
            json!({"model": "gpt-image-2"}),
            (400, "missing_required_parameter"),
        ),
        (
            json!({"model": "no-such-model", "prompt": "x"}),
            (404, "model_not_found"),
        ),
    ];
    for (body, expected) in cases {
        let answer = post_json(&server, KEY, body.clone()).await;
        assert_eq!(code(&answer), expected, "{body}");
    }
    let ok = post_json(&server, KEY, json!({"model": "gpt-image-2.5-flare", "prompt": "x", "quality": "xhigh", "size": "2048x1152"})).await;
    assert_eq!(ok.0, 200, "{}", ok.1);
    assert!(ok.1["data"][0]["b64_json"].is_string());
    assert!(ok.1["usage"]["output_tokens"].is_number());
}

#[tokio::test]
async fn a_wrong_key_is_refused() {
    let server = FakeServer::start();
    let answer = post_json(
        &server,
        "sk-nope",
        json!({"model": "gpt-image-2", "prompt": "x"}),
    )
    .await;
    assert_eq!(code(&answer), (401, "invalid_api_key"));
}

fn png_part() -> Part {
    Part::bytes(images::fixture("reference.png"))
        .file_name("a.png")
        .mime_str("image/png")
        .unwrap()
}

#[tokio::test]
async fn edits_are_checked_like_the_service() {
    let server = FakeServer::start();
    let base = || Form::new().text("model", "gpt-image-2").text("prompt", "x");

    let answer = post_form(
        &server,
        base().part("image", png_part()).part("image", png_part()),
    )
    .await;
    assert_eq!(
        code(&answer),
        (400, "duplicate_parameter"),
        "repeated plain `image`"
    );

    let wrong_mime = Part::bytes(images::fixture("reference.jpg"))
        .file_name("a.jpg")
        .mime_str("image/png")
        .unwrap();
    let answer = post_form(&server, base().part("image", wrong_mime)).await;
    assert_eq!(
        code(&answer),
        (400, "invalid_image_format"),
        "a MIME type that lies"
    );

    let no_mime = Part::bytes(images::fixture("reference.png")).file_name("a.png");
    let answer = post_form(&server, base().part("image", no_mime)).await;
    assert_eq!(code(&answer), (400, "invalid_image_format"), "no MIME type");

    let answer = post_form(&server, base()).await;
    assert_eq!(code(&answer), (400, "missing_required_parameter"));

    let dalle3 = Form::new()
        .text("model", "dall-e-3")
        .text("prompt", "x")
        .part("image", png_part());
    assert_eq!(
        code(&post_form(&server, dalle3).await),
        (400, "invalid_value")
    );

    let answer = post_form(
        &server,
        base()
            .part("image[]", png_part())
            .part("image[]", png_part()),
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    let answer = post_form(&server, base().part("image", png_part())).await;
    assert_eq!(answer.0, 200, "{}", answer.1);
}

/// The status, error code and param of an answer; `(200, "", "")` for a success.
fn outcome(answer: &(u16, Value)) -> (u16, &str, &str) {
    let error = &answer.1["error"];
    (
        answer.0,
        error["code"].as_str().unwrap_or(""),
        error["param"].as_str().unwrap_or(""),
    )
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

const OK: (u16, &str, &str) = (200, "", "");

fn invalid(param: &str) -> (u16, &'static str, &str) {
    (400, "invalid_value", param)
}

fn unknown(param: &str) -> (u16, &'static str, &str) {
    (400, "unknown_parameter", param)
}

/// Sends each JSON generation and checks its outcome.
async fn expect_generations(server: &FakeServer, cases: &[(Value, (u16, &str, &str))]) {
    // One client for all: building one per request costs more than the requests.
    let client = http();
    let url = format!("{}/images/generations", server.base_url());
    for (body, expected) in cases {
        let answer = send(client.post(&url).bearer_auth(KEY).json(body)).await;
        assert_eq!(outcome(&answer), *expected, "{body}\n{}", answer.1);
    }
}

#[tokio::test]
async fn quality_follows_the_model_family() {
    let server = FakeServer::start();
    let q = |model: &str, quality: &str| json!({"model": model, "prompt": "x", "quality": quality});
    let mut cases = Vec::new();
    for model in ["gpt-image-2", "gpt-image-2-2026-04-21"] {
        for quality in ["low", "medium", "high", "auto"] {
            cases.push((q(model, quality), OK));
        }
        for quality in ["xhigh", "max", "hd", "standard", "ultra"] {
            cases.push((q(model, quality), invalid("quality")));
        }
    }
    for model in [
        "gpt-image-2.5-flare",
        "gpt-image-2.5-sunburst",
        "gpt-image-2.5-flare-2026-09-08",
        "gpt-image-2.5-sunburst-2026-09-08",
        "gpt-image-2.6-flare",
        "gpt-image-2.6-sunburst",
    ] {
        for quality in ["low", "medium", "high", "xhigh", "max", "auto"] {
            cases.push((q(model, quality), OK));
        }
        for quality in ["hd", "standard", "ultra"] {
            cases.push((q(model, quality), invalid("quality")));
        }
    }
    for model in [
        "gpt-image-1",
        "gpt-image-1.5",
        "gpt-image-1-mini",
        "chatgpt-image-latest",
    ] {
        for quality in ["low", "medium", "high", "auto"] {
            cases.push((q(model, quality), OK));
        }
        for quality in ["xhigh", "max", "hd", "standard"] {
            cases.push((q(model, quality), invalid("quality")));
        }
    }
    cases.push((q("dall-e-3", "hd"), OK));
    cases.push((q("dall-e-3", "standard"), OK));
    for quality in ["high", "auto", "low", "xhigh"] {
        cases.push((q("dall-e-3", quality), invalid("quality")));
    }
    cases.push((q("dall-e-2", "standard"), OK));
    cases.push((json!({"model": "dall-e-2", "prompt": "x"}), OK));
    for quality in ["hd", "high", "auto"] {
        cases.push((q("dall-e-2", quality), invalid("quality")));
    }
    cases.push((
        json!({"model": "gpt-image-2", "prompt": "x", "quality": 3}),
        invalid("quality"),
    ));
    expect_generations(&server, &cases).await;
}

#[tokio::test]
async fn output_options_are_for_gpt_image_models_only() {
    let server = FakeServer::start();
    let gpt2 = |extra: Value| {
        let mut body = json!({"model": "gpt-image-2", "prompt": "x"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let mut cases = vec![
        (gpt2(json!({"output_format": "png"})), OK),
        (gpt2(json!({"output_format": "jpeg"})), OK),
        (gpt2(json!({"output_format": "webp"})), OK),
        (
            gpt2(json!({"output_format": "jpg"})),
            invalid("output_format"),
        ),
        (
            gpt2(json!({"output_format": "gif"})),
            invalid("output_format"),
        ),
        (gpt2(json!({"moderation": "low"})), OK),
        (gpt2(json!({"moderation": "auto"})), OK),
        (gpt2(json!({"moderation": "high"})), invalid("moderation")),
        (gpt2(json!({"background": "transparent"})), OK),
        (gpt2(json!({"background": "opaque"})), OK),
        (gpt2(json!({"background": "auto"})), OK),
        (gpt2(json!({"background": "white"})), invalid("background")),
        (
            gpt2(json!({"background": "transparent", "output_format": "png"})),
            OK,
        ),
        (
            gpt2(json!({"background": "transparent", "output_format": "webp"})),
            OK,
        ),
        (
            gpt2(json!({"background": "transparent", "output_format": "jpeg"})),
            invalid("background"),
        ),
        (
            gpt2(json!({"background": "opaque", "output_format": "jpeg"})),
            OK,
        ),
    ];
    for model in ["dall-e-2", "dall-e-3"] {
        for (name, value) in [
            ("output_format", "png"),
            ("moderation", "low"),
            ("background", "opaque"),
            ("complexity", "low"),
            ("input_fidelity", "high"),
        ] {
            cases.push((
                json!({"model": model, "prompt": "x", name: value}),
                unknown(name),
            ));
        }
        cases.push((
            json!({"model": model, "prompt": "x", "output_compression": 50}),
            unknown("output_compression"),
        ));
    }
    expect_generations(&server, &cases).await;
}

#[tokio::test]
async fn output_compression_is_an_integer_for_jpeg_or_webp() {
    let server = FakeServer::start();
    let compressed = |format: Option<&str>, compression: Value| {
        let mut body =
            json!({"model": "gpt-image-2", "prompt": "x", "output_compression": compression});
        if let Some(format) = format {
            body["output_format"] = format.into();
        }
        body
    };
    let cases = [
        (compressed(Some("jpeg"), json!(0)), OK),
        (compressed(Some("jpeg"), json!(50)), OK),
        (compressed(Some("webp"), json!(100)), OK),
        (
            compressed(Some("jpeg"), json!(101)),
            invalid("output_compression"),
        ),
        (
            compressed(Some("webp"), json!(-1)),
            invalid("output_compression"),
        ),
        (
            compressed(Some("jpeg"), json!(50.5)),
            invalid("output_compression"),
        ),
        (
            compressed(Some("jpeg"), json!("50")),
            invalid("output_compression"),
        ),
        (
            compressed(Some("png"), json!(50)),
            invalid("output_compression"),
        ),
        (compressed(None, json!(50)), invalid("output_compression")),
    ];
    expect_generations(&server, &cases).await;

    let answer = post_json(&server, KEY, compressed(Some("png"), json!(80))).await;
    let message = answer.1["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("jpeg") && message.contains("webp"),
        "{message}"
    );
}

#[tokio::test]
async fn complexity_is_for_the_2_6_models_only() {
    let server = FakeServer::start();
    let c = |model: &str, value: &str| json!({"model": model, "prompt": "x", "complexity": value});
    let mut cases = Vec::new();
    for model in ["gpt-image-2.6-flare", "gpt-image-2.6-sunburst"] {
        for value in ["low", "medium", "high"] {
            cases.push((c(model, value), OK));
        }
        cases.push((c(model, "max"), invalid("complexity")));
    }
    for model in [
        "gpt-image-2",
        "gpt-image-2.5-flare",
        "gpt-image-2.5-sunburst-2026-09-08",
        "gpt-image-1.5",
        "gpt-image-1-mini",
        "dall-e-3",
    ] {
        cases.push((c(model, "high"), unknown("complexity")));
    }
    expect_generations(&server, &cases).await;
}

#[tokio::test]
async fn gif_and_svg_are_for_the_2_6_models_and_svg_for_generations_only() {
    let server = FakeServer::start();
    let f =
        |model: &str, format: &str| json!({"model": model, "prompt": "x", "output_format": format});
    let mut cases = Vec::new();
    for model in ["gpt-image-2.6-flare", "gpt-image-2.6-sunburst"] {
        cases.push((f(model, "gif"), OK));
        cases.push((f(model, "svg"), OK));
    }
    for model in ["gpt-image-2", "gpt-image-2.5-flare"] {
        cases.push((f(model, "gif"), invalid("output_format")));
        cases.push((f(model, "svg"), invalid("output_format")));
    }
    let mut transparent = f("gpt-image-2.6-flare", "svg");
    transparent["background"] = json!("transparent");
    cases.push((transparent, invalid("background")));
    expect_generations(&server, &cases).await;
    // The answers are a GIF and an SVG.
    let client = http();
    let url = format!("{}/images/generations", server.base_url());
    for (format, magic) in [("gif", &b"GIF89a"[..]), ("svg", b"<?xml")] {
        let (status, body) = send(
            client
                .post(&url)
                .bearer_auth(KEY)
                .json(&f("gpt-image-2.6-flare", format)),
        )
        .await;
        assert_eq!(status, 200);
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body["data"][0]["b64_json"].as_str().unwrap())
            .unwrap();
        assert!(bytes.starts_with(magic), "{format}");
    }
    // An SVG edit is refused.
    let form = Form::new()
        .text("model", "gpt-image-2.6-flare")
        .text("prompt", "x")
        .text("output_format", "svg")
        .part("image", png_part());
    assert_eq!(
        code(&post_form(&server, form).await),
        (400, "invalid_value")
    );
}

#[tokio::test]
async fn a_streamed_answer_is_partial_images_then_the_completed_event() {
    let server = FakeServer::start();
    let url = format!("{}/images/generations", server.base_url());
    let body = json!({"model": "gpt-image-2", "prompt": "x", "stream": true, "partial_images": 2});
    let response = http()
        .post(&url)
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let text = response.text().await.unwrap();
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(
        events,
        [
            "image_generation.partial_image",
            "image_generation.partial_image",
            "image_generation.completed"
        ]
    );
    assert!(
        text.contains("\"usage\""),
        "the completed event carries the usage"
    );
    assert_eq!(server.image_requests()[0].partials.len(), 2);
}

#[tokio::test]
async fn fields_the_model_does_not_take_are_unknown_parameters() {
    let server = FakeServer::start();
    let f = |model: &str, field: &str, value: Value| {
        let mut body = json!({"model": model, "prompt": "x"});
        body[field] = value;
        body
    };
    let mut cases = vec![
        (f("gpt-image-2", "frames", json!(8)), unknown("frames")),
        (
            f("gpt-image-2.6-flare", "frames", json!(8)),
            unknown("frames"),
        ),
        (f("gpt-image-2", "user", json!("me")), OK),
        (f("gpt-image-2", "user", json!(7)), invalid("user")),
        (f("dall-e-3", "style", json!("natural")), OK),
    ];
    // The 2.6 family's GIF frames, by the third-party names API-NOTES gives.
    for model in ["gpt-image-2.6-flare", "gpt-image-2.6-sunburst"] {
        cases.push((f(model, "frame_count", json!(8)), OK));
        cases.push((f(model, "frame_duration_ms", json!(150)), OK));
        cases.push((f(model, "frame_count", json!(17)), invalid("frame_count")));
        cases.push((f(model, "frame_count", json!("8")), invalid("frame_count")));
        cases.push((f(model, "frame_count", json!(true)), invalid("frame_count")));
    }
    for model in ["gpt-image-2", "gpt-image-2.5-flare", "dall-e-3"] {
        cases.push((f(model, "frame_count", json!(8)), unknown("frame_count")));
    }
    expect_generations(&server, &cases).await;
}

#[tokio::test]
async fn input_fidelity_is_for_edits_of_some_models() {
    let server = FakeServer::start();
    for model in ["gpt-image-1.5", "gpt-image-1", "chatgpt-image-latest"] {
        let answer = post_json(
            &server,
            KEY,
            json!({"model": model, "prompt": "x", "input_fidelity": "high"}),
        )
        .await;
        assert_eq!(
            outcome(&answer),
            unknown("input_fidelity"),
            "{model} generation"
        );
    }
    let edit = |model: &str, fidelity: &str| {
        Form::new()
            .text("model", model.to_owned())
            .text("prompt", "x")
            .text("input_fidelity", fidelity.to_owned())
            .part("image", png_part())
    };
    for model in ["gpt-image-1.5", "gpt-image-1", "chatgpt-image-latest"] {
        for fidelity in ["high", "low"] {
            let answer = post_form(&server, edit(model, fidelity)).await;
            assert_eq!(outcome(&answer), OK, "{model} {fidelity}: {}", answer.1);
        }
        let answer = post_form(&server, edit(model, "medium")).await;
        assert_eq!(outcome(&answer), invalid("input_fidelity"), "{model}");
    }
    for model in [
        "gpt-image-1-mini",
        "gpt-image-2",
        "gpt-image-2-2026-04-21",
        "gpt-image-2.5-flare",
        "gpt-image-2.6-sunburst",
        "dall-e-2",
    ] {
        let answer = post_form(&server, edit(model, "high")).await;
        assert_eq!(outcome(&answer), unknown("input_fidelity"), "{model}");
    }
}

#[tokio::test]
async fn multipart_values_are_strings_parsed_like_json() {
    let server = FakeServer::start();
    let base = |model: &str| {
        Form::new()
            .text("model", model.to_owned())
            .text("prompt", "x")
            .part("image", png_part())
    };
    let cases: Vec<(Form, (u16, &str, &str))> = vec![
        (base("gpt-image-2").text("n", "2"), OK),
        (base("gpt-image-2").text("n", "11"), invalid("n")),
        (base("gpt-image-2").text("n", "two"), invalid("n")),
        (
            base("gpt-image-2")
                .text("output_format", "webp")
                .text("output_compression", "80"),
            OK,
        ),
        (
            base("gpt-image-2")
                .text("output_format", "jpeg")
                .text("output_compression", "101"),
            invalid("output_compression"),
        ),
        (
            base("gpt-image-2")
                .text("output_format", "jpeg")
                .text("output_compression", "high"),
            invalid("output_compression"),
        ),
        (
            base("gpt-image-2").text("output_compression", "80"),
            invalid("output_compression"),
        ),
        (
            base("gpt-image-2")
                .text("background", "transparent")
                .text("output_format", "jpeg"),
            invalid("background"),
        ),
        (base("gpt-image-2").text("moderation", "low"), OK),
        (
            base("gpt-image-2").text("quality", "max"),
            invalid("quality"),
        ),
        (base("gpt-image-2.5-flare").text("quality", "max"), OK),
        (base("gpt-image-2.6-flare").text("complexity", "medium"), OK),
        (
            base("gpt-image-2.5-flare").text("complexity", "medium"),
            unknown("complexity"),
        ),
        (base("gpt-image-2").text("stream", "false"), OK),
        (base("gpt-image-2").text("stream", "yes"), invalid("stream")),
        (
            base("dall-e-2").text("output_format", "png"),
            unknown("output_format"),
        ),
        // A reference sent as text, not as a file.
        (
            Form::new()
                .text("model", "gpt-image-2")
                .text("prompt", "x")
                .text("image", "iVBORw0KGgo="),
            invalid("image"),
        ),
    ];
    for (i, (form, expected)) in cases.into_iter().enumerate() {
        let answer = post_form(&server, form).await;
        assert_eq!(outcome(&answer), expected, "case {i}: {}", answer.1);
    }
}

#[tokio::test]
async fn extra_models_take_every_gpt_image_field() {
    let server = FakeServer::with(Options {
        extra_models: vec!["acme-image-9".into()],
        ..Options::default()
    });
    let answer = post_json(
        &server,
        KEY,
        json!({"model": "acme-image-9", "prompt": "x", "quality": "max", "complexity": "high",
               "output_format": "webp", "output_compression": 40, "background": "transparent",
               "moderation": "low", "size": "2048x1152"}),
    )
    .await;
    assert_eq!(outcome(&answer), OK, "{}", answer.1);
    let form = Form::new()
        .text("model", "acme-image-9")
        .text("prompt", "x")
        .text("input_fidelity", "high")
        .text("quality", "xhigh")
        .part("image", png_part());
    let answer = post_form(&server, form).await;
    assert_eq!(outcome(&answer), OK, "{}", answer.1);
    // Still the generations endpoint's rule, and still real values only.
    expect_generations(
        &server,
        &[
            (
                json!({"model": "acme-image-9", "prompt": "x", "input_fidelity": "high"}),
                unknown("input_fidelity"),
            ),
            (
                json!({"model": "acme-image-9", "prompt": "x", "quality": "hd"}),
                invalid("quality"),
            ),
            (
                json!({"model": "acme-image-9", "prompt": "x", "style": "vivid"}),
                unknown("style"),
            ),
        ],
    )
    .await;
}

/// The image an answer carries, decoded.
fn answer_image(answer: &(u16, Value)) -> Vec<u8> {
    use base64::Engine as _;
    let b64 = answer.1["data"][0]["b64_json"].as_str().expect("b64_json");
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

#[tokio::test]
async fn answers_come_in_the_format_asked_for() {
    let server = FakeServer::start();
    let mut seen = Vec::new();
    for (format, mime) in [
        (None, "image/png"),
        (Some("png"), "image/png"),
        (Some("jpeg"), "image/jpeg"),
        (Some("webp"), "image/webp"),
    ] {
        for _ in 0..2 {
            let mut body = json!({"model": "gpt-image-2", "prompt": "x"});
            if let Some(format) = format {
                body["output_format"] = format.into();
            }
            let answer = post_json(&server, KEY, body).await;
            assert_eq!(answer.0, 200, "{}", answer.1);
            assert_eq!(answer.1["output_format"], format.unwrap_or("png"));
            let image = answer_image(&answer);
            assert_eq!(rules::sniff(&image), Some(mime));
            let size = imagesize::blob_size(&image).expect("a header imagesize reads");
            assert!(size.width > 0 && size.height > 0);
            assert_eq!(
                server.image_requests().last().unwrap().image.as_ref(),
                Some(&image)
            );
            assert!(!seen.contains(&image), "every answer is a different image");
            seen.push(image);
        }
    }

    let answer = post_json(
        &server,
        KEY,
        json!({"model": "gpt-image-2", "prompt": "x", "background": "transparent", "output_format": "webp"}),
    )
    .await;
    assert_eq!(answer.1["background"], "transparent");
}

#[tokio::test]
async fn a_wrong_format_answer_differs_from_the_format_asked_for() {
    let server = FakeServer::with(Options {
        script: Some(std::sync::Arc::new(|_: &Incoming| Action::WrongFormat)),
        ..Options::default()
    });
    for (format, wrong) in [
        ("png", "image/jpeg"),
        ("jpeg", "image/png"),
        ("webp", "image/png"),
    ] {
        let answer = post_json(
            &server,
            KEY,
            json!({"model": "gpt-image-2", "prompt": "x", "output_format": format}),
        )
        .await;
        assert_eq!(
            rules::sniff(&answer_image(&answer)),
            Some(wrong),
            "{format}"
        );
    }
}

#[tokio::test]
async fn links_serve_the_format_asked_for() {
    let server = FakeServer::with(Options {
        url_answers: true,
        ..Options::default()
    });
    let answer = post_json(
        &server,
        KEY,
        json!({"model": "gpt-image-2", "prompt": "x", "output_format": "jpeg"}),
    )
    .await;
    let url = answer.1["data"][0]["url"].as_str().unwrap();
    assert!(url.ends_with(".jpeg"), "{url}");
    let response = http().get(url).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    let bytes = response.bytes().await.unwrap();
    assert_eq!(rules::sniff(&bytes), Some("image/jpeg"));
}

/// A PNG of `width` x `height`, with or without an alpha channel.
fn png_of(width: u32, height: u32, alpha: bool) -> Vec<u8> {
    let (color, channels) = if alpha {
        (png::ColorType::Rgba, 4)
    } else {
        (png::ColorType::Rgb, 3)
    };
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer
        .write_image_data(&vec![0; (width * height * channels) as usize])
        .unwrap();
    writer.finish().unwrap();
    out
}

fn png_bytes_part(bytes: Vec<u8>) -> Part {
    Part::bytes(bytes)
        .file_name("m.png")
        .mime_str("image/png")
        .unwrap()
}

#[tokio::test]
async fn masks_and_dall_e_2_references_are_checked() {
    let server = FakeServer::start();
    let edit = |model: &str| {
        Form::new()
            .text("model", model.to_owned())
            .text("prompt", "x")
            .part("image", png_part())
    };
    // The fixture is 32x32.
    let answer = post_form(
        &server,
        edit("gpt-image-2").part("mask", png_bytes_part(png_of(32, 32, true))),
    )
    .await;
    assert_eq!(outcome(&answer), OK, "{}", answer.1);
    let answer = post_form(
        &server,
        edit("gpt-image-2").part("mask", png_bytes_part(png_of(32, 32, false))),
    )
    .await;
    assert_eq!(outcome(&answer), invalid("mask"), "a mask without alpha");
    let answer = post_form(
        &server,
        edit("gpt-image-2").part("mask", png_bytes_part(png_of(16, 16, true))),
    )
    .await;
    assert_eq!(outcome(&answer), invalid("mask"), "a mask of another size");

    let answer = post_form(&server, edit("dall-e-2")).await;
    assert_eq!(outcome(&answer), OK, "{}", answer.1);
    let not_square = Form::new()
        .text("model", "dall-e-2")
        .text("prompt", "x")
        .part("image", png_bytes_part(png_of(64, 32, false)));
    let answer = post_form(&server, not_square).await;
    assert_eq!(outcome(&answer), invalid("image"));
}

#[tokio::test]
async fn a_mask_part_must_be_a_small_png_with_alpha_of_the_first_images_size() {
    let server = FakeServer::start();
    let edit = |mask: Part| {
        Form::new()
            .text("model", "gpt-image-2")
            .text("prompt", "x")
            .part("image[]", png_part())
            .part("image[]", png_bytes_part(png_of(16, 16, false)))
            .part("mask", mask)
    };
    let mask_of = |bytes: Vec<u8>, mime: &str| {
        Part::bytes(bytes)
            .file_name("m.png")
            .mime_str(mime)
            .unwrap()
    };
    // The size of the first image (32x32) counts, not of the others.
    let answer = post_form(&server, edit(png_bytes_part(images::mask_png(32, 32)))).await;
    assert_eq!(outcome(&answer), OK, "{}", answer.1);
    let gray_alpha = images::png_of(32, 32, png::ColorType::GrayscaleAlpha, 1);
    let answer = post_form(&server, edit(png_bytes_part(gray_alpha))).await;
    assert_eq!(outcome(&answer), OK, "gray + alpha: {}", answer.1);
    let answer = post_form(&server, edit(png_bytes_part(images::mask_png(16, 16)))).await;
    assert_eq!(outcome(&answer), invalid("mask"), "the second image's size");

    let bad_format = (400, "invalid_image_format", "mask");
    let jpeg = images::fixture("reference.jpg");
    let answer = post_form(&server, edit(mask_of(jpeg, "image/jpeg"))).await;
    assert_eq!(outcome(&answer), bad_format, "a JPEG mask");
    let answer = post_form(
        &server,
        edit(mask_of(images::mask_png(32, 32), "image/webp")),
    )
    .await;
    assert_eq!(outcome(&answer), bad_format, "a PNG sent as WebP");
    let untyped = Part::bytes(images::mask_png(32, 32)).file_name("m.png");
    let answer = post_form(&server, edit(untyped)).await;
    assert_eq!(
        outcome(&answer).0,
        400,
        "a mask without a type: {}",
        answer.1
    );

    // Under 4 MB: 4 MiB of RGBA mask is refused, a byte under it is not.
    let small = images::mask_png(32, 32);
    let big = images::Padding::new(rules::MAX_MASK_BYTES + 1000).splice(&small);
    assert!(big.len() >= rules::MAX_MASK_BYTES, "{}", big.len());
    let answer = post_form(&server, edit(png_bytes_part(big))).await;
    assert_eq!(outcome(&answer), invalid("mask"), "a mask of 4 MB");
    assert_eq!(answer.1["error"]["message"], "Image file too large.");
    let under = images::Padding::new(rules::MAX_MASK_BYTES - 1000).splice(&small);
    assert!(under.len() < rules::MAX_MASK_BYTES, "{}", under.len());
    let answer = post_form(&server, edit(png_bytes_part(under))).await;
    assert_eq!(outcome(&answer), OK, "a mask under 4 MB: {}", answer.1);

    // A mask as text, or twice, is refused as the service refuses it.
    let text = Form::new()
        .text("model", "gpt-image-2")
        .text("prompt", "x")
        .part("image", png_part())
        .text("mask", "m.png");
    let answer = post_form(&server, text).await;
    assert_eq!(outcome(&answer), invalid("mask"), "a mask as text");
    let twice = edit(png_bytes_part(images::mask_png(32, 32)))
        .part("mask", png_bytes_part(images::mask_png(32, 32)));
    let answer = post_form(&server, twice).await;
    assert_eq!(outcome(&answer), (400, "duplicate_parameter", "mask"));
}

#[tokio::test]
async fn a_json_edits_mask_is_checked_like_a_mask_part() {
    use base64::Engine as _;
    let server = FakeServer::start();
    let data_url = |mime: &str, bytes: &[u8]| {
        format!(
            "data:{mime};base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    };
    let image = json!({"image_url": data_url("image/png", &images::fixture("reference.png"))});
    let edit = |mask: Value| {
        http()
            .post(format!("{}/images/edits", server.base_url()))
            .bearer_auth(KEY)
            .json(&json!({"model": "gpt-image-2", "prompt": "x", "images": [image], "mask": mask}))
    };
    let mask = |bytes: Vec<u8>| json!({"image_url": data_url("image/png", &bytes)});
    let cases = [
        (edit(mask(images::mask_png(32, 32))), OK),
        (edit(mask(png_of(32, 32, false))), invalid("mask")),
        (edit(mask(images::mask_png(16, 16))), invalid("mask")),
        (
            edit(json!({"image_url": data_url("image/jpeg", &images::fixture("reference.jpg"))})),
            (400, "invalid_image_format", "mask"),
        ),
        (edit(json!({"file_id": "file-abc123"})), OK),
        (edit(json!({"url": "x"})), unknown("mask.url")),
    ];
    for (i, (request, expected)) in cases.into_iter().enumerate() {
        let answer = send(request).await;
        assert_eq!(outcome(&answer), expected, "case {i}: {}", answer.1);
    }
}

#[tokio::test]
async fn a_batch_edits_mask_is_checked_as_a_file_or_a_data_url() {
    use base64::Engine as _;
    let server = FakeServer::start();
    let (_, a) = upload(&server, "vision", "a.png", images::fixture("reference.png")).await;
    let (_, good) = upload(&server, "vision", "m.png", images::mask_png(32, 32)).await;
    let (_, flat) = upload(&server, "vision", "flat.png", png_of(32, 32, false)).await;
    let (_, small) = upload(&server, "vision", "small.png", images::mask_png(16, 16)).await;
    let (_, jpeg) = upload(&server, "vision", "m.jpg", images::fixture("reference.jpg")).await;
    let [a, good, flat, small, jpeg] =
        [&a, &good, &flat, &small, &jpeg].map(|f| f["id"].as_str().unwrap());
    let data_url = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(images::fixture("reference.png"))
    );
    let masked = |custom_id: &str, image: Value, mask: Value| {
        json!({"custom_id": custom_id, "method": "POST", "url": "/v1/images/edits",
               "body": {"model": "gpt-image-2", "prompt": "x", "images": [image], "mask": mask}})
    };
    let lines = [
        masked("file", json!({"file_id": a}), json!({"file_id": good})),
        masked(
            "inline-image",
            json!({"image_url": data_url}),
            json!({"file_id": good}),
        ),
        masked("flat", json!({"file_id": a}), json!({"file_id": flat})),
        masked(
            "small",
            json!({"image_url": data_url}),
            json!({"file_id": small}),
        ),
        masked(
            "gone",
            json!({"file_id": a}),
            json!({"file_id": "file-999"}),
        ),
        masked("jpeg", json!({"file_id": a}), json!({"file_id": jpeg})),
    ];
    let batch = submit(&server, "/v1/images/edits", &lines).await;
    let id = batch["id"].as_str().unwrap();
    assert_eq!(poll_to_end(&server, id).await.last().unwrap(), "completed");
    let output = server.output_lines(id);
    let mut ok = custom_ids(&output);
    ok.sort_unstable();
    assert_eq!(ok, ["file", "inline-image"]);
    let errors = server.error_lines(id);
    let mut failed: Vec<(&str, &str, &str)> = errors
        .iter()
        .map(|l| {
            let e = &l["response"]["body"]["error"];
            (
                l["custom_id"].as_str().unwrap(),
                e["code"].as_str().unwrap(),
                e["param"].as_str().unwrap(),
            )
        })
        .collect();
    failed.sort_unstable();
    assert_eq!(
        failed,
        [
            ("flat", "invalid_value", "mask"),
            ("gone", "invalid_value", "mask.file_id"),
            ("jpeg", "invalid_image_format", "mask"),
            ("small", "invalid_value", "mask"),
        ]
    );
}

#[tokio::test]
async fn json_edits_take_image_references() {
    use base64::Engine as _;
    let server = FakeServer::start();
    let data_url = |mime: &str, fixture: &str| {
        format!(
            "data:{mime};base64,{}",
            base64::engine::general_purpose::STANDARD.encode(images::fixture(fixture))
        )
    };
    let edit = |model: &str, images: Value| {
        http()
            .post(format!("{}/images/edits", server.base_url()))
            .bearer_auth(KEY)
            .json(&json!({"model": model, "prompt": "x", "images": images}))
    };
    let png = json!({"image_url": data_url("image/png", "reference.png")});
    let cases = [
        (edit("gpt-image-2", json!([png])), OK),
        (
            edit(
                "gpt-image-2",
                json!([png, {"image_url": data_url("image/webp", "reference.webp")}, {"file_id": "file-abc123"}]),
            ),
            OK,
        ),
        (
            edit(
                "gpt-image-2",
                json!([{"image_url": data_url("image/png", "reference.jpg")}]),
            ),
            (400, "invalid_image_format", "images[0]"),
        ),
        (
            edit(
                "gpt-image-2",
                json!([{"image_url": "https://example.com/a.png", "file_id": "file-1"}]),
            ),
            invalid("images[0]"),
        ),
        (edit("gpt-image-2", json!([])), invalid("images")),
        (
            edit("gpt-image-2", Value::Array(vec![png.clone(); 17])),
            invalid("images"),
        ),
        (edit("dall-e-2", json!([png])), invalid("model")),
        (
            http()
                .post(format!("{}/images/edits", server.base_url()))
                .bearer_auth(KEY)
                .json(&json!({"model": "gpt-image-2", "prompt": "x"})),
            (400, "missing_required_parameter", "images"),
        ),
    ];
    for (i, (request, expected)) in cases.into_iter().enumerate() {
        let answer = send(request).await;
        assert_eq!(outcome(&answer), expected, "case {i}: {}", answer.1);
    }
}

#[tokio::test]
async fn image_urls_are_limited_in_length() {
    let server = FakeServer::start();
    let long = format!("https://example.com/{}", "a".repeat(rules::MAX_IMAGE_URL));
    let answer = send(
        http()
            .post(format!("{}/images/edits", server.base_url()))
            .bearer_auth(KEY)
            .json(&json!({"model": "gpt-image-2", "prompt": "x", "images": [{"image_url": long}]})),
    )
    .await;
    assert_eq!(
        outcome(&answer),
        (400, "string_above_max_length", "images[0].image_url")
    );
}

// Azure OpenAI

fn azure_v1(server: &FakeServer, endpoint: &str) -> reqwest::RequestBuilder {
    http().post(format!(
        "{}/openai/v1/images/{endpoint}",
        server.azure_endpoint()
    ))
}

fn deployment(
    server: &FakeServer,
    name: &str,
    endpoint: &str,
    query: &str,
) -> reqwest::RequestBuilder {
    http().post(format!(
        "{}/openai/deployments/{name}/images/{endpoint}{query}",
        server.azure_endpoint()
    ))
}

const API_VERSION: &str = "?api-version=2025-04-01-preview";

#[tokio::test]
async fn azure_v1_routes_take_the_api_key_header() {
    let server = FakeServer::start();
    let body = json!({"model": "gpt-image-2", "prompt": "x", "quality": "high"});
    assert_eq!(server.azure_endpoint(), format!("http://{}", server.addr()));

    let answer = send(
        azure_v1(&server, "generations")
            .header("api-key", KEY)
            .json(&body),
    )
    .await;
    assert_eq!(outcome(&answer), OK, "{}", answer.1);
    let r = server.image_requests().pop().unwrap();
    assert_eq!(r.path, "/openai/v1/images/generations");
    assert_eq!(r.header("api-key"), Some(KEY));
    assert_eq!(r.status, 200);
    assert!(r.image.is_some());

    let answer = send(
        azure_v1(&server, "generations")
            .bearer_auth(KEY)
            .json(&body),
    )
    .await;
    assert_eq!(
        outcome(&answer),
        (401, "401", ""),
        "a bearer token is not Azure's key"
    );
    let answer = send(
        azure_v1(&server, "generations")
            .header("api-key", "wrong")
            .json(&body),
    )
    .await;
    assert_eq!(outcome(&answer).0, 401);

    // The same rules as OpenAI's routes.
    let answer = send(
        azure_v1(&server, "generations")
            .header("api-key", KEY)
            .json(&json!({"model": "gpt-image-2", "prompt": "x", "quality": "max"})),
    )
    .await;
    assert_eq!(outcome(&answer), invalid("quality"));
    let answer = send(
        azure_v1(&server, "generations")
            .header("api-key", KEY)
            .json(&json!({"prompt": "x"})),
    )
    .await;
    assert_eq!(
        outcome(&answer),
        (400, "missing_required_parameter", "model"),
        "Azure has no default deployment"
    );
    let answer = send(
        azure_v1(&server, "generations")
            .header("api-key", KEY)
            .json(&json!({"model": "no-such-deployment", "prompt": "x"})),
    )
    .await;
    assert_eq!(outcome(&answer), (404, "DeploymentNotFound", ""));

    let form = Form::new()
        .text("model", "gpt-image-1.5")
        .text("prompt", "x")
        .text("input_fidelity", "high")
        .part("image", png_part());
    let answer = send(
        azure_v1(&server, "edits")
            .header("api-key", KEY)
            .multipart(form),
    )
    .await;
    assert_eq!(outcome(&answer), OK, "{}", answer.1);
    let answered = server
        .image_requests()
        .iter()
        .filter(|r| r.status == 200)
        .count();
    assert_eq!(answered, 2);
}

#[tokio::test]
async fn azure_deployment_routes_need_an_api_version_and_name_the_model() {
    let models = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = models.clone();
    let server = FakeServer::with(Options {
        extra_models: vec!["my-images".into()],
        script: Some(std::sync::Arc::new(move |i: &Incoming| {
            seen.lock().unwrap().push(i.model.clone());
            Action::Answer
        })),
        ..Options::default()
    });
    let prompt = json!({"prompt": "x"});

    let answer = send(
        deployment(&server, "gpt-image-2", "generations", API_VERSION)
            .header("api-key", KEY)
            .json(&prompt),
    )
    .await;
    assert_eq!(outcome(&answer), OK, "{}", answer.1);
    let r = server.image_requests().pop().unwrap();
    assert_eq!(r.path, "/openai/deployments/gpt-image-2/images/generations");
    assert_eq!(r.query, "api-version=2025-04-01-preview");
    assert_eq!(
        r.query_param("api-version").as_deref(),
        Some("2025-04-01-preview")
    );
    assert_eq!(r.field("model"), None);

    // The deployment is the model: its rules apply, and a `model` in the body is ignored.
    let cases = [
        (
            "gpt-image-2",
            json!({"prompt": "x", "quality": "xhigh"}),
            invalid("quality"),
        ),
        (
            "gpt-image-2.5-flare",
            json!({"prompt": "x", "quality": "xhigh"}),
            OK,
        ),
        (
            "gpt-image-2",
            json!({"model": "dall-e-2", "prompt": "x", "quality": "high", "output_format": "webp"}),
            OK,
        ),
        (
            "dall-e-3",
            json!({"model": "gpt-image-2", "prompt": "x", "quality": "high"}),
            invalid("quality"),
        ),
        ("my-images", json!({"prompt": "x", "complexity": "low"}), OK),
        (
            "nowhere",
            json!({"prompt": "x"}),
            (404, "DeploymentNotFound", ""),
        ),
    ];
    for (name, body, expected) in cases {
        let answer = send(
            deployment(&server, name, "generations", API_VERSION)
                .header("api-key", KEY)
                .json(&body),
        )
        .await;
        assert_eq!(outcome(&answer), expected, "{name} {body}: {}", answer.1);
    }
    assert_eq!(
        *models.lock().unwrap(),
        [
            "gpt-image-2",
            "gpt-image-2.5-flare",
            "gpt-image-2",
            "my-images"
        ],
        "scripts see the deployment as the model"
    );

    let answer = send(
        deployment(&server, "gpt-image-2", "generations", "")
            .header("api-key", KEY)
            .json(&prompt),
    )
    .await;
    assert_eq!(outcome(&answer), (404, "404", ""), "no api-version");
    let answer = send(
        deployment(
            &server,
            "gpt-image-2",
            "generations",
            "?api-version=latest-and-greatest",
        )
        .header("api-key", KEY)
        .json(&prompt),
    )
    .await;
    assert_eq!(outcome(&answer), (400, "BadRequest", ""));
    let answer = send(
        deployment(&server, "gpt-image-2", "generations", API_VERSION)
            .bearer_auth(KEY)
            .json(&prompt),
    )
    .await;
    assert_eq!(outcome(&answer), (401, "401", ""));

    let form = Form::new().text("prompt", "x").part("image", png_part());
    let answer = send(
        deployment(&server, "gpt-image-1.5", "edits", "?api-version=2024-10-21")
            .header("api-key", KEY)
            .multipart(form),
    )
    .await;
    assert_eq!(outcome(&answer), OK, "{}", answer.1);
    let r = server.image_requests().pop().unwrap();
    assert!(r.is_multipart);
    assert_eq!(r.query_param("api-version").as_deref(), Some("2024-10-21"));
}

#[tokio::test]
async fn openai_routes_do_not_take_azure_keys() {
    let server = FakeServer::start();
    let answer = send(
        http()
            .post(format!("{}/images/generations", server.base_url()))
            .header("api-key", KEY)
            .json(&json!({"model": "gpt-image-2", "prompt": "x"})),
    )
    .await;
    assert_eq!(outcome(&answer), (401, "invalid_api_key", ""));
    assert_eq!(server.requests()[0].query, "");
}

// The test proxy

#[tokio::test]
async fn the_proxy_forwards_plain_http_and_records_each_request() {
    let server = FakeServer::start();
    let proxy = proxy::Proxy::start();
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(proxy.url()).unwrap())
        .build()
        .unwrap();
    let url = format!("{}/images/generations", server.base_url());
    for _ in 0..2 {
        let answer = send(
            client
                .post(&url)
                .bearer_auth(KEY)
                .json(&json!({"model": "gpt-image-2", "prompt": "x"})),
        )
        .await;
        assert_eq!(outcome(&answer), OK, "{}", answer.1);
    }
    let form = Form::new()
        .text("model", "gpt-image-2")
        .text("prompt", "x")
        .part("image", png_part());
    let edits = format!("{}/images/edits", server.base_url());
    let answer = send(client.post(&edits).bearer_auth(KEY).multipart(form)).await;
    assert_eq!(outcome(&answer), OK, "{}", answer.1);

    let line = format!("POST {url} HTTP/1.1");
    assert_eq!(
        proxy.seen(),
        [line.clone(), line, format!("POST {edits} HTTP/1.1")]
    );
    assert_eq!(server.image_requests().len(), 3);
    assert!(server.image_requests().iter().all(|r| r.status == 200));
}

#[tokio::test]
async fn the_proxy_records_connect_and_refuses_it() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let proxy = proxy::Proxy::start();
    let mut stream = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
    stream
        .write_all(b"CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.example.test:443\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 502 "), "{answer}");
    assert_eq!(proxy.seen(), ["CONNECT api.example.test:443 HTTP/1.1"]);

    // As a client sees it: an https:// URL through the proxy fails, after asking it.
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::https(proxy.url()).unwrap())
        .build()
        .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let result = client
        .post("https://api.example.test/v1/images/generations")
        .send()
        .await;
    assert!(result.is_err());
    assert_eq!(proxy.seen()[1], "CONNECT api.example.test:443 HTTP/1.1");
}

// Realistic payloads, the rate limiter and the concurrency record

/// The chunks of a PNG: type and data, each one's CRC checked bit by bit (independently of
/// the fake's table-driven CRC).
fn png_chunks(png: &[u8]) -> Vec<([u8; 4], &[u8])> {
    fn bitwise_crc(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    0xEDB8_8320 ^ (crc >> 1)
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let mut chunks = Vec::new();
    let mut at = 8;
    while at < png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = png[at + 4..at + 8].try_into().unwrap();
        let data = &png[at + 8..at + 8 + len];
        let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
        assert_eq!(
            crc,
            bitwise_crc(&png[at + 4..at + 8 + len]),
            "CRC of {}",
            String::from_utf8_lossy(&kind)
        );
        chunks.push((kind, data));
        at += 12 + len;
    }
    assert_eq!(at, png.len());
    chunks
}

#[test]
fn the_padding_crc_is_png_s() {
    assert_eq!(images::crc32(b""), 0);
    assert_eq!(images::crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(images::crc32(b"IEND"), 0xAE42_6082);
    let chunk = images::pad_chunk(1001, 7);
    assert_eq!(chunk.len(), 1013);
    assert_eq!(
        png_chunks(&[&b"\x89PNG\r\n\x1a\n"[..], &chunk].concat()).len(),
        1
    );
}

#[tokio::test]
async fn padded_answers_are_as_big_as_asked_and_still_decode() {
    use base64::Engine as _;
    const TARGET: usize = 300_000;
    let server = FakeServer::with(Options {
        payload_bytes: Some(TARGET),
        ..Options::default()
    });
    let mut seen = Vec::new();
    for _ in 0..3 {
        let answer = post_json(&server, KEY, json!({"model": "gpt-image-2", "prompt": "x"})).await;
        assert_eq!(answer.0, 200, "{}", answer.1);
        let image = answer_image(&answer);
        assert!(
            image.len().abs_diff(TARGET) < TARGET / 50,
            "{} bytes for a target of {TARGET}",
            image.len()
        );
        // The spliced base64 is the image's own.
        assert_eq!(
            answer.1["data"][0]["b64_json"].as_str().unwrap(),
            base64::engine::general_purpose::STANDARD.encode(&image)
        );
        assert_eq!(
            server.image_requests().last().unwrap().image.as_ref(),
            Some(&image)
        );

        let chunks = png_chunks(&image);
        assert_eq!(&chunks[0].0, b"IHDR");
        let padding: Vec<_> = chunks.iter().filter(|(k, _)| k == b"gnPd").collect();
        assert_eq!(padding.len(), 1);
        // Pseudo-random: every byte value, none much more often than the others.
        let mut counts = [0usize; 256];
        for &b in padding[0].1 {
            counts[b as usize] += 1;
        }
        let expected = padding[0].1.len() / 256;
        assert!(
            counts.iter().all(|&c| c.abs_diff(expected) < expected / 4),
            "padding bytes are not uniform: {counts:?}"
        );

        let mut decoder = png::Decoder::new(std::io::Cursor::new(&image));
        decoder.ignore_checksums(false);
        let mut reader = decoder.read_info().expect("a PNG the png crate reads");
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut pixels).expect("pixels");
        assert_eq!((frame.width, frame.height), (16, 16));
        assert!(!seen.contains(&image), "every answer is a different image");
        seen.push(image);
    }

    // Other formats are not padded.
    let answer = post_json(
        &server,
        KEY,
        json!({"model": "gpt-image-2", "prompt": "x", "output_format": "jpeg"}),
    )
    .await;
    assert_eq!(rules::sniff(&answer_image(&answer)), Some("image/jpeg"));
    assert!(answer_image(&answer).len() < TARGET / 10);

    // A benchmark can keep the fake from keeping every image.
    let server = FakeServer::with(Options {
        payload_bytes: Some(TARGET),
        record_images: false,
        ..Options::default()
    });
    let answer = post_json(&server, KEY, json!({"model": "gpt-image-2", "prompt": "x"})).await;
    assert!(answer_image(&answer).len().abs_diff(TARGET) < TARGET / 50);
    assert_eq!(server.image_requests()[0].image, None);
}

#[test]
fn durations_are_written_as_the_service_writes_them() {
    use std::time::Duration;
    let ms = Duration::from_millis;
    for (d, text) in [
        (Duration::ZERO, "0s"),
        (Duration::from_nanos(1), "1ms"),
        (ms(100), "100ms"),
        (Duration::from_micros(99_001), "100ms"),
        (ms(1000), "1s"),
        (ms(1500), "1.5s"),
        (ms(17_280), "17.28s"),
        (ms(60_000), "1m0s"),
        (ms(360_000), "6m0s"),
        (ms(3_661_500), "1h1m1.5s"),
    ] {
        assert_eq!(server::go_duration(d), text, "{d:?}");
    }
}

/// A duration the service writes (`100ms`, `1.5s`; no minutes here), in seconds.
fn seconds(text: &str) -> f64 {
    match text.strip_suffix("ms") {
        Some(ms) => ms.parse::<f64>().unwrap() / 1000.0,
        None => text.strip_suffix('s').unwrap().parse().unwrap(),
    }
}

/// An image request's status, `x-ratelimit-*` and `retry-after-ms` headers, and body.
async fn limited_post(server: &FakeServer) -> (u16, HashMap<String, String>, Value) {
    let response = http()
        .post(format!("{}/images/generations", server.base_url()))
        .bearer_auth(KEY)
        .json(&json!({"model": "gpt-image-2", "prompt": "x"}))
        .send()
        .await
        .unwrap();
    let headers = response
        .headers()
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-ratelimit-") || k.as_str() == "retry-after-ms")
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    (
        response.status().as_u16(),
        headers,
        response.json().await.unwrap(),
    )
}

#[tokio::test]
async fn the_rate_limiter_answers_429_once_the_burst_is_spent_and_refills() {
    // A token a second, two at most: the bucket does not refill between quick requests.
    let server = FakeServer::with(Options {
        rate_limit: Some(RateLimit {
            per_minute: 60,
            burst: 2,
        }),
        ..Options::default()
    });
    let (status, headers, _) = limited_post(&server).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-ratelimit-limit-requests"], "60");
    assert_eq!(headers["x-ratelimit-remaining-requests"], "1");
    // Said as the answer leaves, a moment after the token was taken.
    let reset = seconds(&headers["x-ratelimit-reset-requests"]);
    assert!(
        0.9 < reset && reset <= 1.0,
        "one token to refill: {reset} s"
    );
    assert!(!headers.contains_key("retry-after-ms"));

    let (status, headers, _) = limited_post(&server).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-ratelimit-remaining-requests"], "0");
    let reset = seconds(&headers["x-ratelimit-reset-requests"]);
    assert!(
        1.0 < reset && reset <= 2.0,
        "two tokens to refill: {reset} s"
    );

    let (status, headers, body) = limited_post(&server).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(body["error"]["type"], "requests");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("images per min (IPM): Limit 60, Used 60"),
        "{message}"
    );
    assert_eq!(headers["x-ratelimit-limit-requests"], "60");
    assert_eq!(headers["x-ratelimit-remaining-requests"], "0");
    assert!(headers.contains_key("x-ratelimit-reset-requests"));
    // The refused request counts too: the next token is a second further away than the
    // bucket alone would say.
    let wait: u64 = headers["retry-after-ms"].parse().unwrap();
    let first_refused = std::time::Instant::now();
    assert!((1001..=2000).contains(&wait), "retry-after-ms {wait}");
    assert_eq!(server.rate_limited(), 1);
    let answered = server.image_requests();
    assert_eq!(
        answered.iter().map(|r| r.status).collect::<Vec<_>>(),
        [200, 200, 429]
    );
    assert!(answered[2].image.is_none());

    // Hammering pushes it further: another refusal, a second more to wait.
    let (status, headers, _) = limited_post(&server).await;
    assert_eq!(status, 429);
    let again: u64 = headers["retry-after-ms"].parse().unwrap();
    // A second more, less the time between the two answers (a loaded machine is slow).
    let between = first_refused.elapsed().as_millis() as u64;
    assert!(
        again + between >= wait + 950,
        "retry-after-ms {again} after {wait}, {between} ms later"
    );
    assert_eq!(server.rate_limited(), 2);

    // Once the token is there, the next request gets it.
    tokio::time::sleep(std::time::Duration::from_millis(again + 20)).await;
    let (status, headers, body) = limited_post(&server).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-ratelimit-remaining-requests"], "0");
    assert_eq!(server.rate_limited(), 2);
}

#[tokio::test]
async fn the_rate_limiter_takes_the_token_on_arrival() {
    // Three requests at once against a bucket of two, each answered after 300 ms: the third
    // is refused at once, not after the others' latency.
    let server = FakeServer::with(Options {
        latency: std::time::Duration::from_millis(300),
        rate_limit: Some(RateLimit {
            per_minute: 6,
            burst: 2,
        }),
        ..Options::default()
    });
    let (a, b, c) = tokio::join!(
        limited_post(&server),
        limited_post(&server),
        limited_post(&server)
    );
    let mut statuses = [a.0, b.0, c.0];
    statuses.sort();
    assert_eq!(statuses, [200, 200, 429]);
    // The successes' headers say what the bucket holds as they leave, 300 ms after the
    // tokens were taken: three tokens of 10 s each (the refused request counts too), minus
    // what refilled meanwhile.
    for (status, headers, _) in [&a, &b, &c] {
        if *status == 200 {
            assert_eq!(headers["x-ratelimit-remaining-requests"], "0");
            let reset = seconds(&headers["x-ratelimit-reset-requests"]);
            assert!(29.0 < reset && reset <= 29.8, "reset {reset} s");
        }
    }
    let refused = server
        .image_requests()
        .into_iter()
        .find(|r| r.status == 429)
        .unwrap();
    assert!(refused.answered - refused.arrived < std::time::Duration::from_millis(200));
    assert_eq!(server.rate_limited(), 1);
}

#[tokio::test]
async fn the_fake_records_how_many_requests_were_in_flight() {
    use std::time::{Duration, Instant};
    let server = FakeServer::with(Options {
        latency: Duration::from_millis(300),
        script: Some(std::sync::Arc::new(|i: &Incoming| {
            if i.nth == 1 {
                Action::Drop
            } else {
                Action::Answer
            }
        })),
        ..Options::default()
    });
    let client = http();
    let url = format!("{}/images/generations", server.base_url());
    let post = || {
        client
            .post(&url)
            .bearer_auth(KEY)
            .json(&json!({"model": "gpt-image-2", "prompt": "x"}))
            .send()
    };
    let start = Instant::now();
    assert!(server.in_flight_timeline().is_empty());
    let (a, b, c) = tokio::join!(post(), post(), post());
    let oks = [a, b, c].into_iter().filter(Result::is_ok).count();
    assert_eq!(oks, 2, "one of three was dropped");
    let between = Instant::now();

    // One more, looked at while it is in flight, then answered.
    let late = tokio::spawn(post());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.in_flight_timeline().last().unwrap().1, 1);
    late.await.unwrap().unwrap();
    let end = Instant::now();

    let timeline = server.in_flight_timeline();
    let counts: Vec<usize> = timeline.iter().map(|&(_, n)| n).collect();
    assert_eq!(counts, [1, 2, 3, 2, 1, 0, 1, 0], "{timeline:?}");
    assert!(
        timeline.windows(2).all(|w| w[0].0 <= w[1].0),
        "in time order"
    );
    assert!(timeline.iter().all(|&(t, _)| start <= t && t <= end));

    assert_eq!(server.peak_in_flight_between(start, end), 3);
    assert_eq!(server.peak_in_flight_between(start, between), 3);
    assert_eq!(server.peak_in_flight_between(between, end), 1);
    assert_eq!(server.peak_in_flight_between(end, Instant::now()), 0);
    // A window inside the first batch's latency sees the three in flight.
    let arrived = timeline[2].0;
    assert_eq!(
        server.peak_in_flight_between(
            arrived + Duration::from_millis(10),
            arrived + Duration::from_millis(20)
        ),
        3
    );
    assert_eq!(server.peak_in_flight(), 3);
}

// The Files and Batches APIs

/// A JSONL file of `lines`.
fn jsonl(lines: &[Value]) -> Vec<u8> {
    lines
        .iter()
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .into_bytes()
}

/// A batch request for the generations endpoint.
fn generation(custom_id: &str, body: Value) -> Value {
    json!({"custom_id": custom_id, "method": "POST", "url": "/v1/images/generations", "body": body})
}

/// A batch request for `gpt-image-2` with `prompt`.
fn gen_line(custom_id: &str, prompt: &str) -> Value {
    generation(custom_id, json!({"model": "gpt-image-2", "prompt": prompt}))
}

fn api(server: &FakeServer, path: &str) -> String {
    format!("{}/{path}", server.base_url())
}

async fn upload(server: &FakeServer, purpose: &str, name: &str, bytes: Vec<u8>) -> (u16, Value) {
    let form = Form::new()
        .text("purpose", purpose.to_owned())
        .part("file", Part::bytes(bytes).file_name(name.to_owned()));
    send(
        http()
            .post(api(server, "files"))
            .bearer_auth(KEY)
            .multipart(form),
    )
    .await
}

/// Uploads `lines` as a batch input file; its id.
async fn upload_lines(server: &FakeServer, lines: &[Value]) -> String {
    let answer = upload(server, "batch", "input.jsonl", jsonl(lines)).await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    answer.1["id"].as_str().unwrap().to_owned()
}

async fn create(server: &FakeServer, body: Value) -> (u16, Value) {
    send(
        http()
            .post(api(server, "batches"))
            .bearer_auth(KEY)
            .json(&body),
    )
    .await
}

/// Uploads `lines` and creates a batch of them for `endpoint`; the batch object.
async fn submit(server: &FakeServer, endpoint: &str, lines: &[Value]) -> Value {
    let file = upload_lines(server, lines).await;
    let answer = create(
        server,
        json!({"input_file_id": file, "endpoint": endpoint, "completion_window": "24h"}),
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    answer.1
}

async fn get(server: &FakeServer, path: &str) -> (u16, Value) {
    send(http().get(api(server, path)).bearer_auth(KEY)).await
}

/// One poll of a batch; the batch object.
async fn poll(server: &FakeServer, id: &str) -> Value {
    let answer = get(server, &format!("batches/{id}")).await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    answer.1
}

/// Polls until the batch ends; the statuses seen, one per poll.
async fn poll_to_end(server: &FakeServer, id: &str) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..100 {
        let batch = poll(server, id).await;
        let status = batch["status"].as_str().unwrap().to_owned();
        seen.push(status.clone());
        if ["completed", "failed", "expired", "cancelled"].contains(&status.as_str()) {
            return seen;
        }
    }
    panic!("batch {id} never ended: {seen:?}");
}

async fn download(server: &FakeServer, id: &str) -> Vec<u8> {
    let response = http()
        .get(api(server, &format!("files/{id}/content")))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.bytes().await.unwrap().to_vec()
}

/// The JSONL lines of `bytes`.
fn parse_lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn custom_ids(lines: &[Value]) -> Vec<&str> {
    lines
        .iter()
        .map(|l| l["custom_id"].as_str().unwrap())
        .collect()
}

/// The image in an output line's answer, decoded; it must be a PNG the png crate reads.
fn line_png(line: &Value) -> Vec<u8> {
    use base64::Engine as _;
    let b64 = line["response"]["body"]["data"][0]["b64_json"]
        .as_str()
        .expect("b64_json");
    let image = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(&image));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    reader.next_frame(&mut pixels).expect("pixels");
    image
}

#[tokio::test]
async fn a_batch_goes_through_its_statuses_to_an_output_file() {
    let server = FakeServer::start();
    let lines = [
        gen_line("a", "a lighthouse"),
        gen_line("b", "a harbour"),
        gen_line("c", "a ship"),
    ];
    let created = submit(&server, "/v1/images/generations", &lines).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("batch_"), "{id}");
    assert_eq!(created["object"], "batch");
    assert_eq!(created["status"], "validating");
    assert_eq!(created["endpoint"], "/v1/images/generations");
    assert_eq!(created["completion_window"], "24h");
    assert_eq!(created["errors"], Value::Null);
    assert_eq!(created["output_file_id"], Value::Null);
    assert_eq!(created["metadata"], Value::Null);
    let created_at = created["created_at"].as_u64().unwrap();
    assert_eq!(created["expires_at"].as_u64(), Some(created_at + 86_400));
    for field in [
        "in_progress_at",
        "finalizing_at",
        "completed_at",
        "failed_at",
    ] {
        assert_eq!(created[field], Value::Null, "{field}");
    }

    let batch = poll(&server, &id).await;
    assert_eq!(batch["status"], "in_progress");
    assert!(batch["in_progress_at"].is_u64());
    assert_eq!(
        batch["request_counts"],
        json!({"total": 3, "completed": 0, "failed": 0})
    );
    let batch = poll(&server, &id).await;
    assert_eq!(batch["status"], "finalizing");
    assert_eq!(
        batch["request_counts"],
        json!({"total": 3, "completed": 3, "failed": 0})
    );
    let batch = poll(&server, &id).await;
    assert_eq!(batch["status"], "completed");
    assert!(batch["completed_at"].is_u64());
    assert_eq!(batch["error_file_id"], Value::Null);
    let output_id = batch["output_file_id"].as_str().unwrap();

    // The output file, as a client downloads it.
    let (status, file) = get(&server, &format!("files/{output_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(file["purpose"], "batch_output");
    assert_eq!(file["object"], "file");
    let bytes = download(&server, output_id).await;
    assert_eq!(file["bytes"].as_u64(), Some(bytes.len() as u64));
    assert_eq!(server.file_content(output_id).as_ref(), Some(&bytes));
    let output = parse_lines(&bytes);
    // Not in the input's order.
    assert_eq!(custom_ids(&output), ["c", "b", "a"]);
    let mut seen = Vec::new();
    for line in &output {
        assert!(line["id"].as_str().unwrap().starts_with("batch_req_"));
        assert_eq!(line["error"], Value::Null);
        assert_eq!(line["response"]["status_code"], 200);
        assert!(
            line["response"]["request_id"]
                .as_str()
                .unwrap()
                .starts_with("req_")
        );
        let body = &line["response"]["body"];
        assert_eq!(body["output_format"], "png");
        assert!(body["usage"]["output_tokens"].is_number(), "{body}");
        let image = line_png(line);
        assert!(!seen.contains(&image), "every line is a different image");
        seen.push(image);
    }

    assert_eq!(server.batch_lines_answered(), 3);
    let answered: Vec<AnsweredLine> = server.batch_lines();
    assert_eq!(
        answered.iter().map(|l| l.line).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(answered.iter().all(|l| l.status == 200));
    assert!(
        answered
            .iter()
            .all(|l| seen.contains(l.image.as_ref().unwrap()))
    );
    // No live image request was made, and none of the batch images is a live one's.
    assert!(server.image_requests().is_empty());
    assert_eq!(server.batches_created(), 1);
    assert_eq!(server.batch(&id).unwrap()["status"], "completed");
    let polls = server
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == format!("/v1/batches/{id}"))
        .count();
    assert_eq!(polls, 3);
    // Polling a finished batch changes nothing.
    assert_eq!(poll(&server, &id).await, batch);
    assert_eq!(
        server.output_lines(&id).len(),
        3,
        "the accessors read the same file"
    );
}

#[tokio::test]
async fn uploads_are_checked_and_files_can_be_read_and_deleted() {
    let server = FakeServer::with(Options {
        batch: BatchOptions {
            max_file_bytes: 1000,
            max_upload_requests: 3,
            ..BatchOptions::default()
        },
        ..Options::default()
    });
    let answer = upload(
        &server,
        "fine-tune",
        "a.jsonl",
        jsonl(&[gen_line("a", "x")]),
    )
    .await;
    assert_eq!(outcome(&answer), invalid("purpose"), "{}", answer.1);
    let answer = upload(
        &server,
        "batch",
        "a.jsonl",
        b"{\"a\": 1}\nnot json\n".to_vec(),
    )
    .await;
    assert_eq!(
        outcome(&answer),
        (400, "invalid_file_format", "file"),
        "{}",
        answer.1
    );
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Line 2")
    );
    let answer = upload(&server, "batch", "a.jsonl", vec![b' '; 1001]).await;
    assert_eq!(outcome(&answer), (400, "file_too_large", "file"));
    let four: Vec<Value> = (0..4).map(|i| gen_line(&i.to_string(), "x")).collect();
    let answer = upload(&server, "batch", "a.jsonl", jsonl(&four)).await;
    assert_eq!(outcome(&answer), (400, "file_too_large", "file"));
    let answer = send(
        http()
            .post(api(&server, "files"))
            .bearer_auth(KEY)
            .multipart(Form::new().text("purpose", "batch")),
    )
    .await;
    assert_eq!(
        outcome(&answer),
        (400, "missing_required_parameter", "file")
    );
    let answer = send(
        http()
            .post(api(&server, "files"))
            .bearer_auth("sk-nope")
            .multipart(Form::new().text("purpose", "batch")),
    )
    .await;
    assert_eq!(code(&answer), (401, "invalid_api_key"));
    assert!(server.uploaded_files().is_empty());

    // Any bytes will do for the other purposes.
    let png = images::fixture("reference.png");
    for purpose in ["vision", "user_data", "assistants"] {
        let answer = upload(&server, purpose, "ref.png", png.clone()).await;
        assert_eq!(answer.0, 200, "{}", answer.1);
        assert_eq!(answer.1["purpose"], purpose);
        assert_eq!(answer.1["filename"], "ref.png");
        assert_eq!(answer.1["bytes"].as_u64(), Some(png.len() as u64));
        assert!(answer.1["created_at"].is_u64());
        assert!(answer.1["id"].as_str().unwrap().starts_with("file-"));
    }
    let input = jsonl(&[gen_line("a", "x")]);
    let answer = upload(&server, "batch", "in.jsonl", input.clone()).await;
    let id = answer.1["id"].as_str().unwrap().to_owned();
    let files: Vec<FileInfo> = server.uploaded_files();
    assert_eq!(files.len(), 4);
    assert_eq!(files[3].id, id);
    assert_eq!(files[3].purpose, "batch");
    assert_eq!(files[3].bytes, input.len());
    assert_eq!(server.file_content(&id), Some(input.clone()));
    let recorded = server.requests().into_iter().last().unwrap();
    assert_eq!(recorded.field("purpose").as_deref(), Some("batch"));
    assert_eq!(recorded.files[0].bytes, input);

    let (status, file) = get(&server, &format!("files/{id}")).await;
    assert_eq!((status, file["id"].as_str()), (200, Some(id.as_str())));
    assert_eq!(download(&server, &id).await, input);
    // Reference images are not for downloading.
    let vision = &files[0].id;
    let answer = get(&server, &format!("files/{vision}/content")).await;
    assert_eq!(answer.0, 400, "{}", answer.1);

    let answer = send(
        http()
            .delete(api(&server, &format!("files/{id}")))
            .bearer_auth(KEY),
    )
    .await;
    assert_eq!(
        answer,
        (200, json!({"id": id, "object": "file", "deleted": true}))
    );
    for path in [format!("files/{id}"), format!("files/{id}/content")] {
        assert_eq!(
            code(&get(&server, &path).await),
            (404, "not_found"),
            "{path}"
        );
    }
    let answer = send(
        http()
            .delete(api(&server, &format!("files/{id}")))
            .bearer_auth(KEY),
    )
    .await;
    assert_eq!(code(&answer), (404, "not_found"));
    assert!(server.uploaded_files()[3].deleted);
    assert_eq!(server.file_content(&id), None);
    assert_eq!(
        code(&get(&server, "files/file-999").await),
        (404, "not_found")
    );
}

#[tokio::test]
async fn batch_creation_is_checked() {
    let server = FakeServer::start();
    let file = upload_lines(&server, &[gen_line("a", "x")]).await;
    let vision = upload(&server, "vision", "a.png", images::fixture("reference.png")).await;
    let vision = vision.1["id"].as_str().unwrap();
    let ok = json!({"input_file_id": file, "endpoint": "/v1/images/generations", "completion_window": "24h"});
    let with = |key: &str, value: Value| {
        let mut body = ok.clone();
        body[key] = value;
        body
    };
    let cases = [
        (
            with("endpoint", "/v1/chat/completions".into()),
            invalid("endpoint"),
        ),
        (
            with("completion_window", "48h".into()),
            invalid("completion_window"),
        ),
        (
            with("input_file_id", "file-999".into()),
            invalid("input_file_id"),
        ),
        (
            with("input_file_id", vision.into()),
            invalid("input_file_id"),
        ),
        (with("metadata", json!({"k": 1})), invalid("metadata.k")),
        (with("priority", "high".into()), unknown("priority")),
        (
            json!({"input_file_id": file, "endpoint": "/v1/images/generations"}),
            (400, "missing_required_parameter", "completion_window"),
        ),
    ];
    for (body, expected) in cases {
        let answer = create(&server, body.clone()).await;
        assert_eq!(outcome(&answer), expected, "{body}: {}", answer.1);
    }
    assert_eq!(server.batches_created(), 0);
    let answer = send(
        http()
            .post(api(&server, "batches"))
            .bearer_auth("sk-nope")
            .json(&ok),
    )
    .await;
    assert_eq!(code(&answer), (401, "invalid_api_key"));
    assert_eq!(
        code(&get(&server, "batches/batch_9").await),
        (404, "not_found")
    );

    let answer = create(
        &server,
        with("metadata", json!({"run": "genimg", "dst": "out"})),
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(answer.1["metadata"], json!({"run": "genimg", "dst": "out"}));
    assert_eq!(server.batches_created(), 1);
}

#[tokio::test]
async fn validation_fails_a_batch_with_its_bad_lines_numbered() {
    let server = FakeServer::start();
    let mut wrong_url = gen_line("b", "x");
    wrong_url["url"] = "/v1/images/edits".into();
    let mut get_method = gen_line("d", "x");
    get_method["method"] = "GET".into();
    let lines = [
        gen_line("a", "x"),
        wrong_url,
        gen_line("a", "x"),
        get_method,
        json!({"custom_id": "e", "method": "POST", "url": "/v1/images/generations"}),
        json!([1, 2]),
        generation("g", json!({"model": "gpt-image-1.5", "prompt": "x"})),
        json!({"method": "POST", "url": "/v1/images/generations", "body": {}}),
    ];
    let batch = submit(&server, "/v1/images/generations", &lines).await;
    let id = batch["id"].as_str().unwrap();
    let batch = poll(&server, id).await;
    assert_eq!(batch["status"], "failed");
    assert!(batch["failed_at"].is_u64());
    assert_eq!(batch["errors"]["object"], "list");
    let errors: Vec<(u64, &str, &str)> = batch["errors"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
            (
                e["line"].as_u64().unwrap(),
                e["code"].as_str().unwrap(),
                e["param"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            (2, "invalid_request", "url"),
            (3, "duplicate_custom_id", "custom_id"),
            (4, "invalid_request", "method"),
            (5, "invalid_request", "body"),
            (6, "invalid_json_line", ""),
            (7, "mismatched_model", "body.model"),
            (8, "invalid_request", "custom_id"),
        ]
    );
    assert!(
        batch["errors"]["data"][0]["message"]
            .as_str()
            .unwrap()
            .contains("does not match the batch endpoint")
    );
    assert_eq!(batch["output_file_id"], Value::Null);
    assert_eq!(batch["error_file_id"], Value::Null);
    assert_eq!(server.batch_lines_answered(), 0);
    // It stays failed, and cannot be cancelled.
    assert_eq!(poll(&server, id).await["status"], "failed");
    let answer = send(
        http()
            .post(api(&server, &format!("batches/{id}/cancel")))
            .bearer_auth(KEY),
    )
    .await;
    assert_eq!(answer.0, 400);
    assert_eq!(
        answer.1["error"]["message"],
        "Cannot cancel a batch with status failed."
    );

    // A file of blank lines holds no request.
    let file = upload(&server, "batch", "empty.jsonl", b"\n  \n".to_vec()).await;
    let answer = create(
        &server,
        json!({"input_file_id": file.1["id"], "endpoint": "/v1/images/generations", "completion_window": "24h"}),
    )
    .await;
    let id = answer.1["id"].as_str().unwrap();
    let batch = poll(&server, id).await;
    assert_eq!(batch["status"], "failed");
    assert_eq!(batch["errors"]["data"][0]["code"], "empty_file");
}

#[tokio::test]
async fn a_batch_over_the_request_limit_fails_validation() {
    let server = FakeServer::with(Options {
        batch: BatchOptions {
            max_requests: 2,
            max_upload_requests: 10,
            ..BatchOptions::default()
        },
        ..Options::default()
    });
    let lines: Vec<Value> = (0..3).map(|i| gen_line(&i.to_string(), "x")).collect();
    let batch = submit(&server, "/v1/images/generations", &lines).await;
    let batch = poll(&server, batch["id"].as_str().unwrap()).await;
    assert_eq!(batch["status"], "failed");
    assert_eq!(batch["errors"]["data"][0]["code"], "too_many_requests");
    assert_eq!(batch["errors"]["data"][0]["line"], Value::Null);

    // Requests of different models are fine where the service takes them.
    let server = FakeServer::with(Options {
        batch: BatchOptions {
            one_model: false,
            ..BatchOptions::default()
        },
        ..Options::default()
    });
    let lines = [
        gen_line("a", "x"),
        generation("b", json!({"model": "gpt-image-1.5", "prompt": "x"})),
    ];
    let batch = submit(&server, "/v1/images/generations", &lines).await;
    let statuses = poll_to_end(&server, batch["id"].as_str().unwrap()).await;
    assert_eq!(statuses.last().unwrap(), "completed");
}

#[tokio::test]
async fn failed_and_refused_requests_go_to_the_error_file() {
    // By custom_id, or by a marker in the prompt.
    let script: BatchScript =
        std::sync::Arc::new(|line: &BatchLine| match line.custom_id.as_str() {
            "busy" => Action::error(500, "server_error", "The server had an error."),
            "blocked" => Action::moderation_blocked("output", &["violence"]),
            _ if line.prompt.contains("QUOTA") => Action::error(
                429,
                "insufficient_quota",
                "You exceeded your current quota.",
            ),
            _ => Action::Answer,
        });
    let server = FakeServer::with(Options {
        batch: BatchOptions {
            script: Some(script),
            order: OutputOrder::InOrder,
            ..BatchOptions::default()
        },
        ..Options::default()
    });
    let lines = [
        gen_line("ok1", "a lighthouse"),
        gen_line("busy", "a harbour"),
        gen_line("refused", "a FORBIDDEN thing"),
        gen_line("blocked", "a ship"),
        generation(
            "bad",
            json!({"model": "gpt-image-2", "prompt": "x", "style": "vivid"}),
        ),
        gen_line("quota", "QUOTA please"),
        gen_line("ok2", "a boat"),
        generation(
            "stream",
            json!({"model": "gpt-image-2", "prompt": "x", "stream": true}),
        ),
    ];
    let batch = submit(&server, "/v1/images/generations", &lines).await;
    let id = batch["id"].as_str().unwrap();
    let statuses = poll_to_end(&server, id).await;
    assert_eq!(statuses, ["in_progress", "finalizing", "completed"]);
    let batch = server.batch(id).unwrap();
    assert_eq!(
        batch["request_counts"],
        json!({"total": 8, "completed": 2, "failed": 6})
    );

    let output = server.output_lines(id);
    assert_eq!(custom_ids(&output), ["ok1", "ok2"]);
    for line in &output {
        line_png(line);
    }
    let errors = server.error_lines(id);
    assert_eq!(
        custom_ids(&errors),
        ["busy", "refused", "blocked", "bad", "quota", "stream"]
    );
    let answers: Vec<(u64, &str)> = errors
        .iter()
        .map(|l| {
            assert_eq!(l["error"], Value::Null, "{l}");
            (
                l["response"]["status_code"].as_u64().unwrap(),
                l["response"]["body"]["error"]["code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        answers,
        [
            (500, "server_error"),
            (400, "moderation_blocked"),
            (400, "moderation_blocked"),
            (400, "unknown_parameter"),
            (429, "insufficient_quota"),
            (400, "invalid_value"),
        ]
    );
    let refused = &errors[1]["response"]["body"]["error"];
    assert_eq!(refused["type"], "image_generation_user_error");
    let blocked = &errors[2]["response"]["body"]["error"];
    assert_eq!(
        blocked["moderation_details"],
        json!({"moderation_stage": "output", "categories": ["violence"]})
    );
    assert_eq!(errors[3]["response"]["body"]["error"]["param"], "style");

    // Every request ran, and only two gave an image.
    assert_eq!(server.batch_lines_answered(), 8);
    let made: Vec<String> = server
        .batch_lines()
        .into_iter()
        .filter(|l| l.image.is_some())
        .map(|l| l.custom_id)
        .collect();
    assert_eq!(made, ["ok1", "ok2"]);
}

#[tokio::test]
async fn an_expired_batch_keeps_what_ran_and_lists_the_rest() {
    let server = FakeServer::with(Options {
        batch: BatchOptions {
            expire_after: Some(2),
            order: OutputOrder::Shuffled(7),
            script: Some(std::sync::Arc::new(|line: &BatchLine| {
                if line.custom_id == "1" {
                    Action::error(500, "server_error", "The server had an error.")
                } else {
                    Action::Answer
                }
            })),
            ..BatchOptions::default()
        },
        ..Options::default()
    });
    let lines: Vec<Value> = (0..5).map(|i| gen_line(&i.to_string(), "x")).collect();
    let batch = submit(&server, "/v1/images/generations", &lines).await;
    let id = batch["id"].as_str().unwrap();
    let statuses = poll_to_end(&server, id).await;
    assert_eq!(statuses, ["in_progress", "expired"]);
    let batch = server.batch(id).unwrap();
    assert!(batch["expired_at"].is_u64());
    assert_eq!(batch["completed_at"], Value::Null);
    assert_eq!(
        batch["request_counts"],
        json!({"total": 5, "completed": 1, "failed": 1})
    );
    assert_eq!(custom_ids(&server.output_lines(id)), ["0"]);
    let errors = server.error_lines(id);
    let mut ids = custom_ids(&errors);
    ids.sort_unstable();
    assert_eq!(ids, ["1", "2", "3", "4"]);
    for line in &errors {
        if line["custom_id"] == "1" {
            assert_eq!(line["response"]["status_code"], 500);
        } else {
            assert_eq!(line["response"], Value::Null);
            assert_eq!(line["error"]["code"], "batch_expired");
            assert_eq!(
                line["error"]["message"],
                "This request could not be executed before the completion window expired."
            );
        }
    }
    assert_eq!(server.batch_lines_answered(), 2);
}

#[tokio::test]
async fn a_test_can_hold_advance_and_force_batches() {
    let server = FakeServer::start();
    let lines: Vec<Value> = (0..3).map(|i| gen_line(&i.to_string(), "x")).collect();
    let a = submit(&server, "/v1/images/generations", &lines).await;
    let a = a["id"].as_str().unwrap();
    server.hold_batches(true);
    for _ in 0..3 {
        assert_eq!(poll(&server, a).await["status"], "validating");
    }
    server.advance_all();
    assert_eq!(server.batch(a).unwrap()["status"], "in_progress");
    server.advance_batch(a);
    assert_eq!(server.batch(a).unwrap()["status"], "finalizing");
    server.hold_batches(false);
    assert_eq!(poll(&server, a).await["status"], "completed");

    let b = submit(&server, "/v1/images/generations", &lines).await;
    let b = b["id"].as_str().unwrap();
    server.set_batch_status(b, "completed");
    assert_eq!(server.output_lines(b).len(), 3);

    let c = submit(&server, "/v1/images/generations", &lines).await;
    let c = c["id"].as_str().unwrap();
    server.set_batch_status(c, "expired");
    let batch = server.batch(c).unwrap();
    assert_eq!(batch["status"], "expired");
    assert_eq!(batch["output_file_id"], Value::Null);
    assert_eq!(server.error_lines(c).len(), 3);
}

#[tokio::test]
async fn polls_per_step_hold_each_status_and_the_counts_grow() {
    let server = FakeServer::with(Options {
        batch: BatchOptions {
            polls_per_step: 3,
            ..BatchOptions::default()
        },
        ..Options::default()
    });
    let lines: Vec<Value> = (0..6).map(|i| gen_line(&i.to_string(), "x")).collect();
    let batch = submit(&server, "/v1/images/generations", &lines).await;
    let id = batch["id"].as_str().unwrap();
    let mut seen = Vec::new();
    loop {
        let batch = poll(&server, id).await;
        let status = batch["status"].as_str().unwrap().to_owned();
        seen.push((
            status.clone(),
            batch["request_counts"]["completed"].as_u64().unwrap(),
        ));
        if status == "completed" {
            break;
        }
    }
    let expected: Vec<(String, u64)> = [
        ("validating", 0),
        ("validating", 0),
        ("in_progress", 0),
        ("in_progress", 2),
        ("in_progress", 4),
        ("finalizing", 6),
        ("finalizing", 6),
        ("finalizing", 6),
        ("completed", 6),
    ]
    .iter()
    .map(|(s, n)| ((*s).to_owned(), *n))
    .collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn a_cancelled_batch_keeps_what_ran() {
    let server = FakeServer::with(Options {
        batch: BatchOptions {
            polls_per_step: 2,
            order: OutputOrder::InOrder,
            ..BatchOptions::default()
        },
        ..Options::default()
    });
    let lines: Vec<Value> = (0..4).map(|i| gen_line(&i.to_string(), "x")).collect();
    let batch = submit(&server, "/v1/images/generations", &lines).await;
    let id = batch["id"].as_str().unwrap();
    let cancel = || {
        send(
            http()
                .post(api(&server, &format!("batches/{id}/cancel")))
                .bearer_auth(KEY),
        )
    };
    // Two polls validate it, the third runs half of it.
    for _ in 0..3 {
        poll(&server, id).await;
    }
    assert_eq!(server.batch_lines_answered(), 2);
    let answer = cancel().await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(answer.1["status"], "cancelling");
    assert!(answer.1["cancelling_at"].is_u64());
    // Cancelling again is no error.
    assert_eq!(cancel().await.1["status"], "cancelling");
    assert_eq!(poll(&server, id).await["status"], "cancelling");
    let batch = poll(&server, id).await;
    assert_eq!(batch["status"], "cancelled");
    assert!(batch["cancelled_at"].is_u64());
    assert_eq!(
        batch["request_counts"],
        json!({"total": 4, "completed": 2, "failed": 0})
    );
    assert_eq!(
        server.batch_lines_answered(),
        2,
        "nothing ran once cancelled"
    );
    assert_eq!(custom_ids(&server.output_lines(id)), ["0", "1"]);
    let errors = server.error_lines(id);
    assert_eq!(custom_ids(&errors), ["2", "3"]);
    assert!(
        errors
            .iter()
            .all(|l| l["error"]["code"] == "batch_cancelled" && l["response"] == Value::Null)
    );

    let answer = cancel().await;
    assert_eq!(answer.0, 400);
    assert_eq!(
        answer.1["error"]["message"],
        "Cannot cancel a batch with status cancelled."
    );
    let done = submit(&server, "/v1/images/generations", &lines).await;
    let done = done["id"].as_str().unwrap();
    server.set_batch_status(done, "completed");
    let answer = send(
        http()
            .post(api(&server, &format!("batches/{done}/cancel")))
            .bearer_auth(KEY),
    )
    .await;
    assert_eq!(answer.0, 400);
    assert_eq!(
        answer.1["error"]["message"],
        "Cannot cancel a batch with status completed."
    );
}

#[tokio::test]
async fn batches_are_listed_newest_first_a_page_at_a_time() {
    let server = FakeServer::start();
    let mut ids = Vec::new();
    for i in 0..3 {
        let batch = submit(
            &server,
            "/v1/images/generations",
            &[gen_line(&i.to_string(), "x")],
        )
        .await;
        ids.push(batch["id"].as_str().unwrap().to_owned());
    }
    let (status, page) = get(&server, "batches?limit=2").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["object"], "list");
    let listed: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[2].as_str(), ids[1].as_str()]);
    assert_eq!(page["first_id"], ids[2].as_str());
    assert_eq!(page["last_id"], ids[1].as_str());
    assert_eq!(page["has_more"], true);
    let (_, page) = get(&server, &format!("batches?limit=2&after={}", ids[1])).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["data"][0]["id"], ids[0].as_str());
    assert_eq!(page["has_more"], false);
    let (_, page) = get(&server, "batches").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 3);
    // Listing is no poll.
    assert!(
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["status"] == "validating")
    );
    assert_eq!(
        outcome(&get(&server, "batches?limit=0").await),
        invalid("limit")
    );
    assert_eq!(
        outcome(&get(&server, "batches?after=batch_99").await),
        invalid("after")
    );
}

#[tokio::test]
async fn file_contents_come_in_frames_and_ranges() {
    use bytes::Bytes;
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    // Framing: big pieces are sliced, small ones gathered; no frame over 64 KB.
    let parts = vec![
        Bytes::from(content[..10].to_vec()),
        Bytes::from(content[10..150_000].to_vec()),
        Bytes::from(content[150_000..150_003].to_vec()),
        Bytes::from(content[150_003..].to_vec()),
    ];
    for start in [0, 5, 10, 70_000, 150_001, 199_999] {
        let frames = batches::frames(parts.clone(), start, content.len() - start);
        assert!(frames.iter().all(|f| f.len() <= batches::FRAME));
        assert!(
            frames[..frames.len() - 1]
                .iter()
                .all(|f| f.len() == batches::FRAME)
        );
        assert_eq!(frames.concat(), content[start..], "from {start}");
    }

    let server = FakeServer::start();
    let (_, file) = upload(&server, "user_data", "data.bin", content.clone()).await;
    let id = file["id"].as_str().unwrap();
    let url = api(&server, &format!("files/{id}/content"));
    let response = http().get(&url).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-length"], "200000");
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    assert_eq!(response.bytes().await.unwrap(), content);

    for (range, first, last) in [
        ("bytes=150000-", 150_000, 199_999),
        ("bytes=10-19", 10, 19),
        ("bytes=-100", 199_900, 199_999),
        ("bytes=199999-300000", 199_999, 199_999),
    ] {
        let response = http()
            .get(&url)
            .bearer_auth(KEY)
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 206, "{range}");
        assert_eq!(
            response.headers()["content-range"],
            format!("bytes {first}-{last}/200000").as_str()
        );
        assert_eq!(
            response.bytes().await.unwrap(),
            content[first..=last],
            "{range}"
        );
    }
    let response = http()
        .get(&url)
        .bearer_auth(KEY)
        .header("range", "bytes=200000-")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 416);
    assert_eq!(response.headers()["content-range"], "bytes */200000");
}

#[tokio::test]
async fn cut_downloads_can_be_resumed_with_a_range() {
    let server = FakeServer::with(Options {
        batch: BatchOptions {
            download_cuts: 2,
            ..BatchOptions::default()
        },
        ..Options::default()
    });
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let (_, file) = upload(&server, "user_data", "data.bin", content.clone()).await;
    let url = api(
        &server,
        &format!("files/{}/content", file["id"].as_str().unwrap()),
    );

    // The first download: the headers promise it all, about half comes.
    let mut response = http().get(&url).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-length"], "300000");
    let mut got = Vec::new();
    let failed = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => got.extend_from_slice(&chunk),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(failed, "the download was cut");
    assert!(got.len() <= 150_000 && got.len() > 100_000, "{}", got.len());
    assert_eq!(got, content[..got.len()]);

    // The second, a resumption, is cut too: half of what it was to send.
    let from = got.len();
    let response = http()
        .get(&url)
        .bearer_auth(KEY)
        .header("range", format!("bytes={from}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 206);
    assert!(response.bytes().await.is_err());
    // The third comes whole.
    let response = http()
        .get(&url)
        .bearer_auth(KEY)
        .header("range", format!("bytes={from}-"))
        .send()
        .await
        .unwrap();
    got.extend_from_slice(&response.bytes().await.unwrap());
    assert_eq!(got, content);
    assert_eq!(server.downloads_cut(), 2);
}

#[tokio::test]
async fn batch_edits_take_file_ids_and_data_urls() {
    use base64::Engine as _;
    let server = FakeServer::start();
    let png = images::fixture("reference.png");
    let (_, a) = upload(&server, "vision", "a.png", png.clone()).await;
    let (_, b) = upload(
        &server,
        "user_data",
        "b.webp",
        images::fixture("reference.webp"),
    )
    .await;
    let (_, text) = upload(&server, "user_data", "notes.txt", b"not an image".to_vec()).await;
    let (a, b, text) = (
        a["id"].as_str().unwrap(),
        b["id"].as_str().unwrap(),
        text["id"].as_str().unwrap(),
    );
    let data_url = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&png)
    );
    let edit = |custom_id: &str, images: Value| {
        json!({"custom_id": custom_id, "method": "POST", "url": "/v1/images/edits",
               "body": {"model": "gpt-image-2", "prompt": "x", "images": images}})
    };
    // The fixture is 32x32: so is the mask.
    let (_, m) = upload(&server, "vision", "m.png", images::mask_png(32, 32)).await;
    let m = m["id"].as_str().unwrap();
    let mut masked = edit("masked", json!([{"file_id": a}]));
    masked["body"]["mask"] = json!({"file_id": m});
    let lines = [
        edit("one", json!([{"file_id": a}])),
        edit("two", json!([{"file_id": a}, {"file_id": b}])),
        edit("data", json!([{"image_url": data_url}])),
        edit("mixed", json!([{"image_url": data_url}, {"file_id": b}])),
        masked,
        edit("unknown", json!([{"file_id": "file-999"}])),
        edit("text", json!([{"file_id": text}])),
        edit("both", json!([{"file_id": a, "image_url": data_url}])),
    ];
    let batch = submit(&server, "/v1/images/edits", &lines).await;
    let id = batch["id"].as_str().unwrap();
    assert_eq!(poll_to_end(&server, id).await.last().unwrap(), "completed");
    let mut ok = custom_ids(&server.output_lines(id))
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    ok.sort();
    assert_eq!(ok, ["data", "masked", "mixed", "one", "two"]);
    for line in server.output_lines(id) {
        line_png(&line);
    }
    let errors = server.error_lines(id);
    let mut failed: Vec<(&str, &str, &str)> = errors
        .iter()
        .map(|l| {
            let e = &l["response"]["body"]["error"];
            (
                l["custom_id"].as_str().unwrap(),
                e["code"].as_str().unwrap(),
                e["param"].as_str().unwrap(),
            )
        })
        .collect();
    failed.sort_unstable();
    assert_eq!(
        failed,
        [
            ("both", "invalid_value", "images[0]"),
            ("text", "invalid_image_format", "images[0]"),
            ("unknown", "invalid_value", "images[0].file_id"),
        ]
    );
}

#[tokio::test]
async fn batch_calls_can_fail_before_they_succeed() {
    let server = FakeServer::with(Options {
        batch: BatchOptions {
            upload_faults: vec![Action::error(
                503,
                "overloaded",
                "The engine is currently overloaded.",
            )],
            create_faults: vec![
                Action::error(500, "server_error", "The server had an error."),
                Action::error(429, "rate_limit_exceeded", "Slow down.")
                    .with_header("retry-after-ms", "10"),
                Action::Truncate,
            ],
            poll_faults: vec![Action::error(
                500,
                "server_error",
                "The server had an error.",
            )],
            ..BatchOptions::default()
        },
        ..Options::default()
    });
    let input = jsonl(&[gen_line("a", "x")]);
    let answer = upload(&server, "batch", "in.jsonl", input.clone()).await;
    assert_eq!(code(&answer), (503, "overloaded"));
    assert!(server.uploaded_files().is_empty());
    let file = upload_lines(&server, &[gen_line("a", "x")]).await;
    let body = json!({"input_file_id": file, "endpoint": "/v1/images/generations", "completion_window": "24h"});

    assert_eq!(
        code(&create(&server, body.clone()).await),
        (500, "server_error")
    );
    let response = http()
        .post(api(&server, "batches"))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after-ms"], "10");
    assert_eq!(server.batches_created(), 0);
    // A cut answer: the batch was made, the client never saw its id.
    let response = http()
        .post(api(&server, "batches"))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.bytes().await.is_err());
    assert_eq!(server.batches_created(), 1);
    let (status, batch) = create(&server, body).await;
    assert_eq!(status, 200);
    assert_eq!(server.batches_created(), 2);
    let posts = server
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/batches")
        .count();
    assert_eq!(posts, 4);

    let id = batch["id"].as_str().unwrap();
    assert_eq!(
        code(&get(&server, &format!("batches/{id}")).await),
        (500, "server_error")
    );
    assert_eq!(server.batch(id).unwrap()["status"], "validating");
    assert_eq!(poll(&server, id).await["status"], "in_progress");
}

#[tokio::test]
async fn padded_batch_outputs_share_their_padding() {
    use base64::Engine as _;
    const TARGET: usize = 300_000;
    let server = FakeServer::with(Options {
        payload_bytes: Some(TARGET),
        record_images: false,
        ..Options::default()
    });
    let lines: Vec<Value> = (0..20).map(|i| gen_line(&i.to_string(), "x")).collect();
    let batch = submit(&server, "/v1/images/generations", &lines).await;
    let id = batch["id"].as_str().unwrap();
    poll_to_end(&server, id).await;
    let output = server.batch(id).unwrap()["output_file_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bytes = download(&server, &output).await;
    assert!(bytes.len() > 20 * TARGET, "{}", bytes.len());
    let lines = parse_lines(&bytes);
    assert_eq!(lines.len(), 20);
    let mut seen = std::collections::HashSet::new();
    for line in &lines {
        let image = line_png(line);
        assert!(
            image.len().abs_diff(TARGET) < TARGET / 50,
            "{}",
            image.len()
        );
        let b64 = line["response"]["body"]["data"][0]["b64_json"]
            .as_str()
            .unwrap();
        assert_eq!(
            b64,
            base64::engine::general_purpose::STANDARD.encode(&image)
        );
        assert!(seen.insert(image), "every line is a different image");
    }
    assert!(server.batch_lines().iter().all(|l| l.image.is_none()));
}
