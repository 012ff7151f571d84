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
    assert!(again >= wait + 950, "retry-after-ms {again} after {wait}");
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
