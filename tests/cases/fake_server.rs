//! The fake refuses what the real service refuses, so a request genimg gets wrong fails here
//! as it would in production.

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
