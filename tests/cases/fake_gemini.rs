//! The fake Gemini service speaks the Gemini API's wire format and refuses what the real
//! service refuses, so a request genimg gets wrong fails here as it would in production.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::support::gemini::{GEMINI_BATCH_SEQ_BASE, GEMINI_SEQ_BASE, REFUSAL_REASONS};
use crate::support::gemini_rules::{PER_DAY_QUOTA, PER_MINUTE_QUOTA};
use crate::support::*;

/// A plain HTTP client; genimg installs its TLS provider the same way.
fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn url(gemini: &FakeGemini, path: &str) -> String {
    format!("{}{path}", gemini.base_url())
}

/// The status and the body as JSON (`Null` if it is not JSON).
async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A request with the key in its header.
fn keyed(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request.header("x-goog-api-key", GEMINI_KEY)
}

fn generate_url(gemini: &FakeGemini, model: &str) -> String {
    url(gemini, &format!("/v1beta/models/{model}:generateContent"))
}

async fn generate(gemini: &FakeGemini, model: &str, body: &Value) -> (u16, Value) {
    send(keyed(http().post(generate_url(gemini, model))).json(body)).await
}

/// A request for an image of `prompt`, image only.
fn request(prompt: &str) -> Value {
    json!({
        "contents": [{"role": "user", "parts": [{"text": prompt}]}],
        "generationConfig": {"responseModalities": ["IMAGE"]},
    })
}

/// A request for `prompt` with `image_config` as its `generationConfig.imageConfig`.
fn configured(prompt: &str, image_config: Value) -> Value {
    let mut body = request(prompt);
    body["generationConfig"]["imageConfig"] = image_config;
    body
}

/// The error's status name, or `""` for a success.
fn status_name(answer: &(u16, Value)) -> (u16, &str) {
    (answer.0, answer.1["error"]["status"].as_str().unwrap_or(""))
}

const OK: (u16, &str) = (200, "");
const INVALID: (u16, &str) = (400, "INVALID_ARGUMENT");

/// The answer's parts.
fn parts(answer: &Value) -> &Vec<Value> {
    answer["candidates"][0]["content"]["parts"]
        .as_array()
        .expect("parts")
}

/// The last image part that is not a thought: its `mimeType` and decoded bytes.
fn final_image(answer: &Value) -> (String, Vec<u8>) {
    let part = parts(answer)
        .iter()
        .rev()
        .find(|p| p["inlineData"].is_object() && p["thought"] != true)
        .expect("an image part");
    let mime = part["inlineData"]["mimeType"].as_str().unwrap().to_owned();
    let data = STANDARD
        .decode(part["inlineData"]["data"].as_str().unwrap())
        .unwrap();
    (mime, data)
}

/// Decodes a PNG fully, panicking if it is not one.
fn decode_png(bytes: &[u8]) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    reader.next_frame(&mut pixels).expect("pixels");
}

#[tokio::test]
async fn a_normal_answer_is_one_png_part_with_its_usage() {
    let gemini = FakeGemini::start();
    let response = keyed(http().post(generate_url(&gemini, "gemini-3-pro-image")))
        .json(&configured(
            "a lighthouse",
            json!({"aspectRatio": "16:9", "imageSize": "2K"}),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    // Gemini sends no rate-limit headers.
    for name in response.headers().keys() {
        let name = name.as_str();
        assert!(
            !name.starts_with("x-ratelimit") && name != "retry-after",
            "{name}"
        );
    }
    let answer: Value = response.json().await.unwrap();
    let candidate = &answer["candidates"][0];
    assert_eq!(candidate["finishReason"], "STOP");
    assert_eq!(candidate["index"], 0);
    assert_eq!(candidate["content"]["role"], "model");
    assert_eq!(parts(&answer).len(), 1, "image only: {answer}");
    assert!(parts(&answer)[0]["thoughtSignature"].is_string());
    assert!(answer["promptFeedback"].is_null());
    let (mime, image) = final_image(&answer);
    assert_eq!(mime, "image/png");
    decode_png(&image);
    assert_eq!(image, images::png(GEMINI_SEQ_BASE + 1));

    let usage = &answer["usageMetadata"];
    assert_eq!(usage["candidatesTokenCount"], 1120, "Pro at 2K: {usage}");
    assert_eq!(usage["thoughtsTokenCount"], 210, "Pro always thinks");
    assert_eq!(
        usage["candidatesTokensDetails"],
        json!([{"modality": "IMAGE", "tokenCount": 1120}])
    );
    let total = usage["promptTokenCount"].as_u64().unwrap() + 1120 + 210;
    assert_eq!(usage["totalTokenCount"].as_u64(), Some(total));
    assert_eq!(answer["modelVersion"], "gemini-3-pro-image");
    assert!(answer["responseId"].is_string());

    // Every answer is a different image; the fake keeps what it sent.
    let second = generate(&gemini, "gemini-3-pro-image", &request("a harbour")).await;
    assert_eq!(second.0, 200);
    assert_ne!(final_image(&second.1).1, image);
    let recorded = gemini.generate_requests();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].image.as_ref(), Some(&image));
    assert_eq!(recorded[0].image_mime.as_deref(), Some("image/png"));
    assert_eq!(recorded[0].model().as_deref(), Some("gemini-3-pro-image"));
    assert_eq!(recorded[0].usage.as_ref(), Some(usage));
    assert_eq!(recorded[0].outcome.as_deref(), Some("STOP"));
    assert_eq!(
        recorded[0].image_config(),
        Some(&json!({"aspectRatio": "16:9", "imageSize": "2K"}))
    );
    assert_eq!(gemini.prompts(), ["a harbour", "a lighthouse"]);
    assert_eq!(gemini.images_delivered().len(), 2);
}

#[tokio::test]
async fn text_is_answered_before_the_image_when_asked_for() {
    let gemini = FakeGemini::start();
    let mut body = request("a mug");
    body["generationConfig"]["responseModalities"] = json!(["TEXT", "IMAGE"]);
    let answer = generate(&gemini, "gemini-2.5-flash-image", &body).await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    let parts = parts(&answer.1);
    assert_eq!(parts.len(), 2);
    assert!(parts[0]["text"].is_string());
    assert!(parts[1]["inlineData"].is_object());
    assert!(
        parts[1]["thoughtSignature"].is_null(),
        "2.5 signs no thoughts"
    );
    assert_eq!(answer.1["usageMetadata"]["candidatesTokenCount"], 1290 + 12);
    assert!(answer.1["usageMetadata"]["thoughtsTokenCount"].is_null());
}

#[tokio::test]
async fn the_key_goes_in_the_header_and_never_in_the_url() {
    let gemini = FakeGemini::start();
    let body = request("a lighthouse");

    let in_url = send(
        http()
            .post(format!(
                "{}?key={GEMINI_KEY}",
                generate_url(&gemini, "gemini-3-pro-image")
            ))
            .json(&body),
    )
    .await;
    assert_eq!(status_name(&in_url), INVALID, "{}", in_url.1);
    assert!(
        in_url.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("?key=")
    );
    // Even with the header too.
    let both = send(
        keyed(http().post(format!(
            "{}?key={GEMINI_KEY}",
            generate_url(&gemini, "gemini-3-pro-image")
        )))
        .json(&body),
    )
    .await;
    assert_eq!(status_name(&both), INVALID);

    let missing = send(
        http()
            .post(generate_url(&gemini, "gemini-3-pro-image"))
            .json(&body),
    )
    .await;
    assert_eq!(status_name(&missing), (403, "PERMISSION_DENIED"));

    let bearer = send(
        http()
            .post(generate_url(&gemini, "gemini-3-pro-image"))
            .bearer_auth(KEY)
            .json(&body),
    )
    .await;
    assert_eq!(status_name(&bearer), (401, "UNAUTHENTICATED"));

    let wrong = send(
        http()
            .post(generate_url(&gemini, "gemini-3-pro-image"))
            .header("x-goog-api-key", "AIzaSyWRONG")
            .json(&body),
    )
    .await;
    assert_eq!(status_name(&wrong), INVALID);
    assert_eq!(wrong.1["error"]["code"], 400);
    let details = &wrong.1["error"]["details"];
    assert_eq!(
        details[0]["@type"],
        "type.googleapis.com/google.rpc.ErrorInfo"
    );
    assert_eq!(details[0]["reason"], "API_KEY_INVALID");
    assert_eq!(gemini.generate_requests_started(), 0, "none went through");

    let right = generate(&gemini, "gemini-3-pro-image", &body).await;
    assert_eq!(right.0, 200, "{}", right.1);

    // The other routes check the key too.
    let list = send(http().get(url(&gemini, "/v1beta/batches"))).await;
    assert_eq!(status_name(&list), (403, "PERMISSION_DENIED"));
    let start = send(
        http()
            .post(url(
                &gemini,
                &format!("/upload/v1beta/files?key={GEMINI_KEY}"),
            ))
            .header("x-goog-upload-protocol", "resumable")
            .header("x-goog-upload-command", "start")
            .header("x-goog-upload-header-content-length", "2"),
    )
    .await;
    assert_eq!(status_name(&start), INVALID);
    assert_eq!(gemini.upload_sessions(), 0);
}

#[tokio::test]
async fn image_config_is_checked_per_model() {
    let gemini = FakeGemini::start();
    let cases = [
        (
            "gemini-3-pro-image",
            json!({"aspectRatio": "16:9", "imageSize": "4K"}),
            OK,
        ),
        (
            "gemini-3-pro-image",
            json!({"aspectRatio": "21:9", "imageSize": "1K"}),
            OK,
        ),
        ("gemini-3-pro-image", json!({"aspectRatio": "1:4"}), INVALID),
        ("gemini-3-pro-image", json!({"aspectRatio": "7:3"}), INVALID),
        ("gemini-3-pro-image", json!({"imageSize": "512"}), INVALID),
        ("gemini-3-pro-image", json!({"imageSize": "2k"}), INVALID),
        ("gemini-3-pro-image", json!({"imageSize": 2}), INVALID),
        (
            "gemini-3-pro-image",
            json!({"personGeneration": "ALLOW_ALL"}),
            INVALID,
        ),
        (
            "gemini-3-pro-image",
            json!({"outputMimeType": "image/jpeg"}),
            INVALID,
        ),
        (
            "gemini-3-pro-image",
            json!({"aspect_ratio": "3:2", "image_size": "2K"}),
            OK,
        ),
        (
            "gemini-nano-banana-2.1",
            json!({"aspectRatio": "1:8", "imageSize": "4K"}),
            OK,
        ),
        (
            "gemini-nano-banana-2.1",
            json!({"imageSize": "512"}),
            INVALID,
        ),
        (
            "gemini-3.1-flash-image",
            json!({"aspectRatio": "8:1", "imageSize": "512"}),
            OK,
        ),
        ("gemini-3.1-flash-image", json!({"imageSize": 512}), INVALID),
        (
            "gemini-3.1-flash-lite-image",
            json!({"imageSize": "1K"}),
            OK,
        ),
        (
            "gemini-3.1-flash-lite-image",
            json!({"imageSize": "2K"}),
            INVALID,
        ),
        ("gemini-2.5-flash-image", json!({"aspectRatio": "21:9"}), OK),
        (
            "gemini-2.5-flash-image",
            json!({"aspectRatio": "1:4"}),
            INVALID,
        ),
        (
            "gemini-2.5-flash-image",
            json!({"imageSize": "1K"}),
            INVALID,
        ),
    ];
    for (model, config, expected) in cases {
        let answer = generate(&gemini, model, &configured("x", config.clone())).await;
        assert_eq!(
            status_name(&answer),
            expected,
            "{model} {config}: {}",
            answer.1
        );
    }
    // A refusal names the field.
    let answer = generate(
        &gemini,
        "gemini-3-pro-image",
        &configured("x", json!({"personGeneration": "ALLOW_ALL"})),
    )
    .await;
    let message = answer.1["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"personGeneration\"")
            && message.contains("generation_config.image_config"),
        "{message}"
    );
    assert_eq!(
        answer.1["error"]["details"][0]["@type"],
        "type.googleapis.com/google.rpc.BadRequest"
    );
    let answer = generate(
        &gemini,
        "gemini-2.5-flash-image",
        &configured("x", json!({"imageSize": "1K"})),
    )
    .await;
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("image_size")
    );

    // The image tokens follow the model and the size.
    let tokens = |answer: &(u16, Value)| answer.1["usageMetadata"]["candidatesTokenCount"].clone();
    for (model, size, expected) in [
        ("gemini-nano-banana-2.1", "4K", 3767),
        ("gemini-3.1-flash-image", "512", 747),
        ("gemini-3-pro-image", "4K", 2000),
    ] {
        let answer = generate(&gemini, model, &configured("x", json!({"imageSize": size}))).await;
        assert_eq!(tokens(&answer), expected, "{model} {size}");
    }
    let answer = generate(&gemini, "gemini-3.1-flash-lite-image", &request("x")).await;
    assert_eq!(tokens(&answer), 1120, "1K by default");
}

/// A request for `prompt` with `images` (MIME type, bytes) inline after the text.
fn with_images(prompt: &str, images: &[(&str, Vec<u8>)]) -> Value {
    let mut body = request(prompt);
    let parts = body["contents"][0]["parts"].as_array_mut().unwrap();
    for (mime, bytes) in images {
        parts.push(json!({"inlineData": {"mimeType": mime, "data": STANDARD.encode(bytes)}}));
    }
    body
}

#[tokio::test]
async fn requests_are_checked_like_the_service() {
    let gemini = FakeGemini::start();
    let png = images::fixture("reference.png");
    let jpg = images::fixture("reference.jpg");
    let model = "gemini-3-pro-image";
    let mut cases: Vec<(&str, Value, (u16, &str))> = vec![
        (
            "an unknown top-level field",
            {
                let mut b = request("x");
                b["quality"] = "high".into();
                b
            },
            INVALID,
        ),
        (
            "an unknown generationConfig field",
            {
                let mut b = request("x");
                b["generationConfig"]["size"] = "1024x1024".into();
                b
            },
            INVALID,
        ),
        (
            "no contents",
            json!({"generationConfig": {"responseModalities": ["IMAGE"]}}),
            INVALID,
        ),
        (
            "empty parts",
            json!({"contents": [{"role": "user", "parts": []}]}),
            INVALID,
        ),
        (
            "a bad role",
            json!({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}),
            INVALID,
        ),
        (
            "two data fields in a part",
            json!({"contents": [{"parts": [{"text": "x", "inlineData": {"mimeType": "image/png", "data": STANDARD.encode(&png)}}]}]}),
            INVALID,
        ),
        (
            "text only",
            json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"responseModalities": ["TEXT"]}}),
            INVALID,
        ),
        (
            "an unknown modality",
            json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"responseModalities": ["PICTURE"]}}),
            INVALID,
        ),
        (
            "two candidates",
            json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"candidateCount": 2}}),
            INVALID,
        ),
        (
            "a bad thinking level",
            json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"thinkingConfig": {"thinkingLevel": "EXTREME"}}}),
            INVALID,
        ),
        (
            "a bad service tier",
            json!({"contents": [{"parts": [{"text": "x"}]}], "serviceTier": "cheap"}),
            INVALID,
        ),
        (
            "a GIF",
            with_images("x", &[("image/gif", b"GIF89a....".to_vec())]),
            INVALID,
        ),
        (
            "JPEG bytes labelled PNG",
            with_images("x", &[("image/png", jpg.clone())]),
            INVALID,
        ),
        (
            "a reference",
            with_images(
                "x",
                &[("image/png", png.clone()), ("image/jpeg", jpg.clone())],
            ),
            OK,
        ),
        (
            "snake_case",
            json!({"contents": [{"parts": [{"text": "x"}, {"inline_data": {"mime_type": "image/png", "data": STANDARD.encode(&png)}}]}], "generation_config": {"response_modalities": ["Image"], "seed": 7, "thinking_config": {"thinking_level": "HIGH"}}, "service_tier": "flex"}),
            OK,
        ),
        (
            "no generationConfig",
            json!({"contents": [{"parts": [{"text": "x"}]}]}),
            OK,
        ),
    ];
    let mut bad = with_images("x", &[("image/png", png.clone())]);
    bad["contents"][0]["parts"][1]["inlineData"]["data"] = "not base64 %%%".into();
    cases.push(("bad base64", bad, INVALID));
    for (what, body, expected) in &cases {
        let answer = generate(&gemini, model, body).await;
        assert_eq!(status_name(&answer), *expected, "{what}: {}", answer.1);
    }
    let answer = generate(&gemini, model, &{
        let mut b = request("x");
        b["quality"] = "high".into();
        b
    })
    .await;
    assert_eq!(
        answer.1["error"]["message"],
        "Invalid JSON payload received. Unknown name \"quality\": Cannot find field."
    );

    // Input images are counted against the model's limit.
    let three: Vec<(&str, Vec<u8>)> = (0..3).map(|_| ("image/png", png.clone())).collect();
    let four: Vec<(&str, Vec<u8>)> = (0..4).map(|_| ("image/png", png.clone())).collect();
    let answer = generate(&gemini, "gemini-2.5-flash-image", &with_images("x", &three)).await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(
        answer.1["usageMetadata"]["promptTokensDetails"][1],
        json!({"modality": "IMAGE", "tokenCount": 3 * 1090})
    );
    let answer = generate(&gemini, "gemini-2.5-flash-image", &with_images("x", &four)).await;
    assert_eq!(status_name(&answer), INVALID, "{}", answer.1);
    let fifteen: Vec<(&str, Vec<u8>)> = (0..15).map(|_| ("image/png", png.clone())).collect();
    let answer = generate(&gemini, model, &with_images("x", &fifteen)).await;
    assert_eq!(status_name(&answer), INVALID);

    // What the references were is recorded.
    let with_refs = gemini
        .generate_requests()
        .into_iter()
        .find(|r| r.status == 200 && r.inline_images().len() == 2)
        .expect("the request with a reference");
    assert_eq!(
        with_refs.inline_images(),
        [
            ("image/png".to_owned(), png.clone()),
            ("image/jpeg".to_owned(), jpg)
        ]
    );
}

#[tokio::test]
async fn the_request_size_and_the_models_are_limited() {
    let gemini = FakeGemini::with(GeminiOptions {
        max_request_bytes: 2_000,
        extra_models: vec!["gemini-9-image".to_owned()],
        gone_models: vec!["gemini-3.1-flash-image".to_owned()],
        ..GeminiOptions::default()
    });
    let big = request(&"x".repeat(3_000));
    let answer = generate(&gemini, "gemini-3-pro-image", &big).await;
    assert_eq!(status_name(&answer), INVALID);
    assert_eq!(
        answer.1["error"]["message"],
        "Request payload size exceeds the limit: 2000 bytes."
    );

    for gone in [
        "gemini-3-pro-image-preview",
        "imagen-4.0-generate-001",
        "gemini-3.1-flash-image",
        "no-such-model",
    ] {
        let answer = generate(&gemini, gone, &request("x")).await;
        assert_eq!(status_name(&answer), (404, "NOT_FOUND"), "{gone}");
        assert_eq!(
            answer.1["error"]["message"],
            format!(
                "models/{gone} is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods."
            )
        );
    }
    let answer = generate(
        &gemini,
        "gemini-9-image",
        &configured("x", json!({"imageSize": "512", "aspectRatio": "4:1"})),
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);

    let (status, models) = send(keyed(http().get(url(&gemini, "/v1beta/models")))).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "models/gemini-nano-banana-2.1",
            "models/gemini-3-pro-image",
            "models/gemini-3.1-flash-lite-image",
            "models/gemini-2.5-flash-image",
            "models/gemini-9-image",
        ]
    );
    let (status, model) = send(keyed(
        http().get(url(&gemini, "/v1beta/models/gemini-3-pro-image")),
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(model["name"], "models/gemini-3-pro-image");

    // A path the service does not have: Google's HTML page.
    let response = keyed(http().get(url(&gemini, "/v1/images/generations")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

/// An action for a model.
type ForModel = fn(&str) -> GeminiAction;

/// A fake whose script answers by the prompt: `"prompt"` gets `action(model)`.
fn scripted(table: Vec<(&'static str, ForModel)>) -> FakeGemini {
    let script: GeminiScript = Arc::new(move |incoming: &GeminiIncoming| {
        table
            .iter()
            .find(|(prompt, _)| *prompt == incoming.prompt)
            .map_or(GeminiAction::Answer, |(_, action)| action(&incoming.model))
    });
    FakeGemini::with(GeminiOptions {
        script: Some(script),
        ..GeminiOptions::default()
    })
}

#[tokio::test]
async fn refusals_come_as_200s_in_both_shapes() {
    let gemini = scripted(vec![
        ("blocked", |_| {
            GeminiAction::Blocked("PROHIBITED_CONTENT".into())
        }),
        ("talk", |_| {
            GeminiAction::TextOnly("I can't draw that.".into())
        }),
    ]);
    let model = "gemini-nano-banana-2.1";

    let blocked = generate(&gemini, model, &request("blocked")).await;
    assert_eq!(blocked.0, 200);
    assert_eq!(
        blocked.1["promptFeedback"]["blockReason"],
        "PROHIBITED_CONTENT"
    );
    assert!(
        blocked.1.get("candidates").is_none(),
        "an empty list is left out"
    );
    assert!(blocked.1["usageMetadata"]["promptTokenCount"].is_u64());

    for reason in REFUSAL_REASONS.iter().chain(&["NO_IMAGE", "OTHER"]) {
        let reason = (*reason).to_owned();
        let script: GeminiScript =
            Arc::new(move |_: &GeminiIncoming| GeminiAction::Finish(reason.clone()));
        let gemini = FakeGemini::with(GeminiOptions {
            script: Some(script),
            ..GeminiOptions::default()
        });
        let answer = generate(&gemini, model, &request("a lighthouse")).await;
        assert_eq!(answer.0, 200);
        let candidate = &answer.1["candidates"][0];
        assert_eq!(candidate["finishReason"], *reason_of(&gemini));
        assert!(candidate["content"].is_null(), "no image: {candidate}");
        assert!(answer.1["usageMetadata"]["candidatesTokenCount"].is_null());
        assert_eq!(gemini.images_delivered().len(), 0);
    }

    // The refuse marker refuses after generation.
    let answer = generate(&gemini, model, &request("a FORBIDDEN thing")).await;
    assert_eq!(answer.1["candidates"][0]["finishReason"], "IMAGE_SAFETY");
    assert!(answer.1["candidates"][0]["finishMessage"].is_string());

    let talk = generate(&gemini, model, &request("talk")).await;
    assert_eq!(talk.1["candidates"][0]["finishReason"], "STOP");
    assert_eq!(parts(&talk.1), &vec![json!({"text": "I can't draw that."})]);
    let outcomes: Vec<Option<String>> = gemini
        .generate_requests()
        .into_iter()
        .map(|r| r.outcome)
        .collect();
    assert_eq!(
        outcomes,
        [
            Some("blockReason:PROHIBITED_CONTENT".to_owned()),
            Some("IMAGE_SAFETY".to_owned()),
            Some("STOP".to_owned()),
        ]
    );
}

/// The outcome of a fake's only request.
fn reason_of(gemini: &FakeGemini) -> String {
    gemini.generate_requests()[0].outcome.clone().unwrap()
}

#[tokio::test]
async fn thought_parts_come_before_the_final_image() {
    let gemini = scripted(vec![("think", |_| GeminiAction::Thought)]);
    let answer = generate(&gemini, "gemini-3-pro-image", &request("think")).await;
    assert_eq!(answer.0, 200);
    let parts = parts(&answer.1);
    assert_eq!(parts.len(), 3, "{}", answer.1);
    assert_eq!(parts[0]["thought"], true);
    assert!(parts[0]["text"].is_string());
    assert_eq!(parts[1]["thought"], true);
    let draft = STANDARD
        .decode(parts[1]["inlineData"]["data"].as_str().unwrap())
        .unwrap();
    assert!(parts[2]["thought"].is_null());
    let (_, image) = final_image(&answer.1);
    decode_png(&draft);
    decode_png(&image);
    assert_ne!(draft, image);
    let recorded = &gemini.generate_requests()[0];
    assert_eq!(recorded.image.as_ref(), Some(&image));
    assert_eq!(recorded.thought_images, std::slice::from_ref(&draft));
    assert_eq!(gemini.thought_images(), [draft]);
}

#[tokio::test]
async fn a_jpeg_may_come_labelled_png() {
    let gemini = scripted(vec![
        ("lie", |_| GeminiAction::JpegAsPng),
        ("jpeg", |_| GeminiAction::Jpeg),
    ]);
    let answer = generate(&gemini, "gemini-3.1-flash-lite-image", &request("lie")).await;
    let (mime, bytes) = final_image(&answer.1);
    assert_eq!(mime, "image/png");
    assert!(bytes.starts_with(&[0xFF, 0xD8]), "JPEG bytes");
    let answer = generate(&gemini, "gemini-3.1-flash-lite-image", &request("jpeg")).await;
    let (mime, jpeg) = final_image(&answer.1);
    assert_eq!(mime, "image/jpeg");
    assert!(jpeg.starts_with(&[0xFF, 0xD8]));
    assert_ne!(bytes, jpeg);
    let recorded = gemini.generate_requests();
    assert_eq!(recorded[0].image.as_ref(), Some(&bytes));
    assert_eq!(recorded[0].image_mime.as_deref(), Some("image/png"));
    assert_eq!(recorded[1].image_mime.as_deref(), Some("image/jpeg"));
}

#[tokio::test]
async fn a_file_data_answer_names_a_file_to_download() {
    let gemini = scripted(vec![("file", |_| GeminiAction::FileData)]);
    let answer = generate(&gemini, "gemini-3-pro-image", &request("file")).await;
    assert_eq!(answer.0, 200);
    let part = &parts(&answer.1)[0];
    assert_eq!(part["fileData"]["mimeType"], "image/png");
    let uri = part["fileData"]["fileUri"].as_str().unwrap();
    assert!(uri.starts_with(&gemini.base_url()), "{uri}");
    let (status, file) = send(keyed(http().get(uri))).await;
    assert_eq!(status, 200, "{file}");
    assert_eq!(file["source"], "GENERATED");
    let response = keyed(http().get(file["downloadUri"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let bytes = response.bytes().await.unwrap().to_vec();
    assert_eq!(gemini.generate_requests()[0].image.as_ref(), Some(&bytes));
    decode_png(&bytes);
}

#[tokio::test]
async fn errors_come_in_the_google_rpc_shape() {
    let gemini = scripted(vec![
        ("minute", |m| GeminiAction::rate_limited(m)),
        ("minute-26s", |m| GeminiAction::per_minute(m, "26s")),
        ("day", |m| GeminiAction::per_day(m)),
        ("bare", |_| GeminiAction::exhausted_without_details()),
        ("denied", |_| GeminiAction::permission_denied()),
        ("gone", |m| GeminiAction::not_found(m)),
        ("internal", |_| GeminiAction::internal()),
        ("unavailable", |_| GeminiAction::unavailable()),
        ("deadline", |_| GeminiAction::deadline_exceeded()),
    ]);
    let model = "gemini-3-pro-image";
    let detail = |answer: &Value, kind: &str| -> Value {
        answer["error"]["details"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["@type"] == format!("type.googleapis.com/google.rpc.{kind}"))
            .cloned()
            .unwrap_or(Value::Null)
    };

    let minute = generate(&gemini, model, &request("minute")).await;
    assert_eq!(status_name(&minute), (429, "RESOURCE_EXHAUSTED"));
    assert_eq!(minute.1["error"]["code"], 429);
    let quota = detail(&minute.1, "QuotaFailure");
    assert_eq!(quota["violations"][0]["quotaId"], PER_MINUTE_QUOTA);
    assert_eq!(quota["violations"][0]["quotaDimensions"]["model"], model);
    assert_eq!(detail(&minute.1, "RetryInfo")["retryDelay"], "0.2s");
    let minute = generate(&gemini, model, &request("minute-26s")).await;
    assert_eq!(detail(&minute.1, "RetryInfo")["retryDelay"], "26s");

    let day = generate(&gemini, model, &request("day")).await;
    assert_eq!(status_name(&day), (429, "RESOURCE_EXHAUSTED"));
    let quota = detail(&day.1, "QuotaFailure");
    assert_eq!(quota["violations"][0]["quotaId"], PER_DAY_QUOTA);
    assert!(
        quota["violations"][0]["quotaId"]
            .as_str()
            .unwrap()
            .contains("PerDay")
    );

    let bare = generate(&gemini, model, &request("bare")).await;
    assert_eq!(status_name(&bare), (429, "RESOURCE_EXHAUSTED"));
    assert!(bare.1["error"]["details"].is_null());

    let denied = generate(&gemini, model, &request("denied")).await;
    assert_eq!(status_name(&denied), (403, "PERMISSION_DENIED"));
    assert_eq!(
        detail(&denied.1, "ErrorInfo")["reason"],
        "API_KEY_SERVICE_BLOCKED"
    );
    let gone = generate(&gemini, model, &request("gone")).await;
    assert_eq!(status_name(&gone), (404, "NOT_FOUND"));
    for (prompt, expected) in [
        ("internal", (500, "INTERNAL")),
        ("unavailable", (503, "UNAVAILABLE")),
        ("deadline", (504, "DEADLINE_EXCEEDED")),
    ] {
        let answer = generate(&gemini, model, &request(prompt)).await;
        assert_eq!(status_name(&answer), expected);
        assert!(answer.1["error"]["message"].is_string());
    }
    let statuses: Vec<Option<String>> = gemini
        .generate_requests()
        .iter()
        .map(|r| r.error_status.clone())
        .collect();
    assert!(statuses.iter().all(Option::is_some), "{statuses:?}");
}

#[tokio::test]
async fn broken_answers_are_broken_as_asked() {
    let gemini = scripted(vec![
        ("drop", |_| GeminiAction::Drop),
        ("cut", |_| GeminiAction::Truncate),
        ("garbled", |_| GeminiAction::MalformedJson),
        ("bad base64", |_| GeminiAction::BadBase64),
    ]);
    let post = |prompt: &str| {
        keyed(http().post(generate_url(&gemini, "gemini-3-pro-image"))).json(&request(prompt))
    };
    assert!(post("drop").send().await.is_err(), "no answer");
    let cut = post("cut").send().await.unwrap();
    assert_eq!(cut.status().as_u16(), 200);
    assert!(cut.bytes().await.is_err(), "the body is cut");
    let garbled = post("garbled").send().await.unwrap();
    assert!(serde_json::from_slice::<Value>(&garbled.bytes().await.unwrap()).is_err());
    let answer = send(post("bad base64")).await;
    assert_eq!(answer.0, 200);
    let data = parts(&answer.1)[0]["inlineData"]["data"].as_str().unwrap();
    assert!(STANDARD.decode(data).is_err());
    let recorded = gemini.generate_requests();
    assert_eq!(recorded[0].status, 0, "dropped");
    assert!(recorded[3].image.is_none(), "nothing delivered");
}

#[tokio::test]
async fn the_limiters_answer_429s_a_client_can_tell_apart() {
    let gemini = FakeGemini::with(GeminiOptions {
        rate_limit: Some(RateLimit {
            per_minute: 6,
            burst: 2,
        }),
        ..GeminiOptions::default()
    });
    let model = "gemini-3-pro-image";
    for _ in 0..2 {
        assert_eq!(generate(&gemini, model, &request("x")).await.0, 200);
    }
    let limited = generate(&gemini, model, &request("x")).await;
    assert_eq!(status_name(&limited), (429, "RESOURCE_EXHAUSTED"));
    let details = limited.1["error"]["details"].as_array().unwrap();
    assert_eq!(details[0]["violations"][0]["quotaId"], PER_MINUTE_QUOTA);
    let delay = details
        .iter()
        .find_map(|d| d["retryDelay"].as_str())
        .expect("a RetryInfo");
    let seconds: f64 = delay.strip_suffix('s').unwrap().parse().unwrap();
    // A refused request counts against the limit too, as the service counts it: the next
    // token is one interval (10 s) past the burst's.
    assert!(seconds > 0.0 && seconds <= 30.0, "{delay}");
    assert_eq!(gemini.rate_limited(), 1);

    let gemini = FakeGemini::with(GeminiOptions {
        daily_limit: Some(2),
        ..GeminiOptions::default()
    });
    for _ in 0..2 {
        assert_eq!(generate(&gemini, model, &request("x")).await.0, 200);
    }
    for _ in 0..2 {
        let limited = generate(&gemini, model, &request("x")).await;
        assert_eq!(status_name(&limited), (429, "RESOURCE_EXHAUSTED"));
        assert_eq!(
            limited.1["error"]["details"][0]["violations"][0]["quotaId"],
            PER_DAY_QUOTA
        );
    }
    assert_eq!(gemini.rate_limited(), 2);
    assert_eq!(gemini.generate_requests_started(), 2);
}

#[tokio::test]
async fn padded_answers_are_as_big_as_asked_and_still_decode() {
    let gemini = FakeGemini::with(GeminiOptions {
        payload_bytes: Some(300_000),
        ..GeminiOptions::default()
    });
    let answer = generate(&gemini, "gemini-3-pro-image", &request("big")).await;
    let (_, image) = final_image(&answer.1);
    assert!(
        (290_000..=310_000).contains(&image.len()),
        "{}",
        image.len()
    );
    decode_png(&image);
    let recorded: Vec<GeminiRecorded> = gemini.generate_requests();
    assert_eq!(recorded[0].image.as_ref(), Some(&image));
}

#[tokio::test]
async fn latency_keeps_requests_in_flight() {
    let gemini = FakeGemini::with(GeminiOptions {
        latency: std::time::Duration::from_millis(300),
        ..GeminiOptions::default()
    });
    let body = request("slow");
    let calls = (0..3).map(|_| generate(&gemini, "gemini-3-pro-image", &body));
    let answers = futures_util::future::join_all(calls).await;
    assert!(answers.iter().all(|a| a.0 == 200));
    assert_eq!(gemini.peak_in_flight(), 3);
}

#[tokio::test]
async fn chaos_mixes_faults_with_answers_and_scripts_build_any_error() {
    let gemini = FakeGemini::with(GeminiOptions {
        script: Some(gemini_chaos(0.5, 11)),
        ..GeminiOptions::default()
    });
    let mut ok = 0;
    let mut faulted = 0;
    for _ in 0..30 {
        let sent = keyed(http().post(generate_url(&gemini, "gemini-3-pro-image")))
            .json(&request("x"))
            .send()
            .await;
        let good = match sent {
            Ok(response) if response.status() == 200 => {
                response.json::<Value>().await.ok().is_some_and(|answer| {
                    answer["candidates"][0]["content"]["parts"][0]["inlineData"]["data"]
                        .as_str()
                        .is_some_and(|d| STANDARD.decode(d).is_ok())
                })
            }
            _ => false,
        };
        if good {
            ok += 1;
        } else {
            faulted += 1;
        }
    }
    assert!(ok > 5 && faulted > 5, "{ok} answered, {faulted} faulted");

    let script: GeminiScript = Arc::new(|_: &GeminiIncoming| {
        GeminiAction::Error(
            GoogleError::new(
                400,
                "FAILED_PRECONDITION",
                "User location is not supported.",
            )
            .with_detail(
                json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "LOCATION"}),
            ),
        )
    });
    let gemini = FakeGemini::with(GeminiOptions {
        script: Some(script),
        ..GeminiOptions::default()
    });
    let answer = generate(&gemini, "gemini-3-pro-image", &request("x")).await;
    assert_eq!(status_name(&answer), (400, "FAILED_PRECONDITION"));
    assert_eq!(answer.1["error"]["details"][0]["reason"], "LOCATION");
}

#[tokio::test]
async fn written_images_are_matched_against_what_the_fake_sent() {
    let gemini = scripted(vec![("think", |_| GeminiAction::Thought)]);
    let answer = generate(&gemini, "gemini-3-pro-image", &request("think")).await;
    let (_, image) = final_image(&answer.1);
    let ws = Workspace::new();
    ws.write("out/a.png", &image);
    assert_gemini_images_match(&ws, "out", &gemini);

    let draft = gemini.thought_images().remove(0);
    ws.write("out/b.png", &draft);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_gemini_images_match(&ws, "out", &gemini);
    }));
    assert!(caught.is_err(), "a thought image is no answer");

    let mut cmd = genimg(&ws, None);
    with_gemini(&mut cmd, &gemini);
    let envs: Vec<(String, String)> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v?.to_str()?.to_owned())))
        .collect();
    assert!(envs.contains(&("GEMINI_BASE_URL".to_owned(), gemini.base_url())));
    assert!(envs.contains(&("GEMINI_API_KEY".to_owned(), GEMINI_KEY.to_owned())));
}

// The Files API

/// Starts a resumable upload of `len` bytes; the session URL.
async fn start_upload(gemini: &FakeGemini, len: usize, mime: &str, display: &str) -> String {
    let response = keyed(http().post(url(gemini, "/upload/v1beta/files")))
        .header("x-goog-upload-protocol", "resumable")
        .header("x-goog-upload-command", "start")
        .header("x-goog-upload-header-content-length", len.to_string())
        .header("x-goog-upload-header-content-type", mime)
        .json(&json!({"file": {"display_name": display}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["x-goog-upload-status"], "active");
    response.headers()["x-goog-upload-url"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// Sends `bytes` at `offset` with `command`: the status, the upload status, the body.
async fn upload_chunk(
    session: &str,
    command: &str,
    offset: usize,
    bytes: Vec<u8>,
) -> (u16, String, Value) {
    let response = http()
        .post(session)
        .header("x-goog-upload-command", command)
        .header("x-goog-upload-offset", offset.to_string())
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let upload = response
        .headers()
        .get("x-goog-upload-status")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap_or(Value::Null);
    (status, upload, body)
}

/// Uploads `bytes` in one request; the file's name.
async fn upload(gemini: &FakeGemini, bytes: Vec<u8>, display: &str) -> String {
    let session = start_upload(gemini, bytes.len(), "application/jsonl", display).await;
    let (status, upload, body) = upload_chunk(&session, "upload, finalize", 0, bytes).await;
    assert_eq!((status, upload.as_str()), (200, "final"), "{body}");
    body["file"]["name"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_resumable_upload_makes_a_file() {
    let gemini = FakeGemini::start();
    let bytes: Vec<u8> = (0..100u8).collect();
    let session = start_upload(&gemini, 100, "application/jsonl", "input-1").await;
    assert!(session.starts_with(&gemini.base_url()), "{session}");

    // A chunk at the wrong offset is refused.
    let (status, _, _) = upload_chunk(&session, "upload", 10, bytes[..40].to_vec()).await;
    assert_eq!(status, 400);
    let (status, upload, _) = upload_chunk(&session, "upload", 0, bytes[..40].to_vec()).await;
    assert_eq!((status, upload.as_str()), (200, "active"));
    let query = http()
        .post(&session)
        .header("x-goog-upload-command", "query")
        .send()
        .await
        .unwrap();
    assert_eq!(query.headers()["x-goog-upload-size-received"], "40");
    let (status, upload, body) =
        upload_chunk(&session, "upload, finalize", 40, bytes[40..].to_vec()).await;
    assert_eq!((status, upload.as_str()), (200, "final"), "{body}");
    let file = &body["file"];
    let name = file["name"].as_str().unwrap();
    assert!(name.starts_with("files/"), "{name}");
    assert_eq!(file["displayName"], "input-1");
    assert_eq!(file["mimeType"], "application/jsonl");
    assert_eq!(file["sizeBytes"], "100", "int64 as a string");
    assert_eq!(file["state"], "ACTIVE");
    assert_eq!(file["source"], "UPLOADED");
    assert!(file["sha256Hash"].is_string());
    let id = name.trim_start_matches("files/");
    assert_eq!(
        file["uri"],
        format!("{}/v1beta/files/{id}", gemini.base_url())
    );
    // A retried finalize gets the same file.
    let (_, upload, again) = upload_chunk(&session, "upload, finalize", 100, Vec::new()).await;
    assert_eq!(upload, "final");
    assert_eq!(again["file"]["name"], name);

    let (status, got) = send(keyed(http().get(url(&gemini, &format!("/v1beta/{name}"))))).await;
    assert_eq!(status, 200);
    assert_eq!(&got, file);
    assert_eq!(gemini.file_content(name), Some(bytes));
    assert_eq!(gemini.uploaded_files().len(), 1);
    assert_eq!(gemini.uploaded_files()[0].size, 100);

    // An uploaded file cannot be downloaded; a missing one is not there.
    let (status, _) = send(keyed(http().get(url(
        &gemini,
        &format!("/download/v1beta/{name}:download?alt=media"),
    ))))
    .await;
    assert_eq!(status, 400);
    let (status, answer) = send(keyed(http().get(url(&gemini, "/v1beta/files/nope")))).await;
    assert_eq!(status_name(&(status, answer)), (403, "PERMISSION_DENIED"));

    // A finalize short of the declared length is refused.
    let session = start_upload(&gemini, 10, "application/jsonl", "short").await;
    let (status, _, _) = upload_chunk(&session, "upload, finalize", 0, vec![1; 5]).await;
    assert_eq!(status, 400);

    let (status, listed) = send(keyed(http().get(url(&gemini, "/v1beta/files")))).await;
    assert_eq!(status, 200);
    assert_eq!(listed["files"].as_array().unwrap().len(), 1);

    // An uploaded image can be a reference by its URI.
    let png = images::fixture("reference.png");
    let session = start_upload(&gemini, png.len(), "image/png", "ref").await;
    let (_, _, body) = upload_chunk(&session, "upload, finalize", 0, png).await;
    let uri = body["file"]["uri"].as_str().unwrap();
    let mut with_file = request("x");
    with_file["contents"][0]["parts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"fileData": {"mimeType": "image/png", "fileUri": uri}}));
    let answer = generate(&gemini, "gemini-3-pro-image", &with_file).await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    with_file["contents"][0]["parts"][1]["fileData"]["fileUri"] =
        format!("{}/v1beta/files/nope", gemini.base_url()).into();
    let answer = generate(&gemini, "gemini-3-pro-image", &with_file).await;
    assert_eq!(status_name(&answer), (403, "PERMISSION_DENIED"));
}

// Batch mode

/// A batch input line for `key` with `prompt`.
fn line(key: &str, prompt: &str) -> Value {
    json!({"key": key, "request": {
        "contents": [{"parts": [{"text": prompt}]}],
        "generation_config": {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "4:5", "imageSize": "2K"}},
    }})
}

fn jsonl(lines: &[Value]) -> Vec<u8> {
    lines
        .iter()
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .into_bytes()
}

async fn create(gemini: &FakeGemini, model: &str, body: &Value) -> (u16, Value) {
    send(
        keyed(http().post(url(
            gemini,
            &format!("/v1beta/models/{model}:batchGenerateContent"),
        )))
        .json(body),
    )
    .await
}

/// Uploads `lines` and creates a batch of them named `display`; the operation.
async fn submit(gemini: &FakeGemini, display: &str, lines: &[Value]) -> Value {
    let file = upload(gemini, jsonl(lines), display).await;
    let answer = create(
        gemini,
        "gemini-3-pro-image",
        &json!({"batch": {"display_name": display, "input_config": {"file_name": file}}}),
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    answer.1
}

/// One poll; the operation.
async fn poll(gemini: &FakeGemini, name: &str) -> Value {
    let (status, operation) =
        send(keyed(http().get(url(gemini, &format!("/v1beta/{name}"))))).await;
    assert_eq!(status, 200, "{operation}");
    operation
}

/// Polls until the batch is done; the states seen, one per poll, and the last operation.
async fn poll_to_end(gemini: &FakeGemini, name: &str) -> (Vec<String>, Value) {
    let mut seen = Vec::new();
    for _ in 0..100 {
        let operation = poll(gemini, name).await;
        seen.push(operation["metadata"]["state"].as_str().unwrap().to_owned());
        if operation["done"] == true {
            return (seen, operation);
        }
    }
    panic!("batch {name} never ended: {seen:?}");
}

async fn download(gemini: &FakeGemini, file: &str) -> Vec<u8> {
    let response = keyed(http().get(url(
        gemini,
        &format!("/download/v1beta/{file}:download?alt=media"),
    )))
    .send()
    .await
    .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.bytes().await.unwrap().to_vec()
}

fn parse_lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn keys(lines: &[Value]) -> Vec<&str> {
    lines.iter().map(|l| l["key"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_batch_goes_from_pending_to_succeeded_with_a_responses_file() {
    let gemini = FakeGemini::with(GeminiOptions {
        batch: GeminiBatchOptions {
            download_cuts: 1,
            ..GeminiBatchOptions::default()
        },
        ..GeminiOptions::default()
    });
    let created = submit(
        &gemini,
        "genimg-run-1",
        &[
            line("a", "a lighthouse"),
            line("b", "a harbour"),
            line("c", "a ship"),
        ],
    )
    .await;
    let name = created["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("batches/"), "{name}");
    let metadata = &created["metadata"];
    assert_eq!(metadata["state"], "BATCH_STATE_PENDING");
    assert_eq!(metadata["displayName"], "genimg-run-1");
    assert_eq!(metadata["model"], "models/gemini-3-pro-image");
    assert_eq!(metadata["name"], name);
    assert_eq!(
        metadata["batchStats"],
        json!({"requestCount": "3", "pendingRequestCount": "3"})
    );
    assert!(metadata["createTime"].is_string());
    assert!(created["done"].is_null());
    assert_eq!(gemini.batches_created(), 1);

    let running = poll(&gemini, &name).await;
    assert_eq!(running["metadata"]["state"], "BATCH_STATE_RUNNING");
    let (states, done) = poll_to_end(&gemini, &name).await;
    assert_eq!(states, ["BATCH_STATE_SUCCEEDED"]);
    assert_eq!(done["done"], true);
    assert!(done["error"].is_null());
    assert_eq!(
        done["metadata"]["batchStats"],
        json!({"requestCount": "3", "successfulRequestCount": "3"})
    );
    assert!(done["metadata"]["endTime"].is_string());
    let file = done["metadata"]["output"]["responsesFile"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(done["response"]["responsesFile"], file);
    assert!(
        done["response"]["@type"]
            .as_str()
            .unwrap()
            .ends_with("GenerateContentBatchOutput")
    );

    // The responses file, as a client downloads it: the first download is cut.
    let cut = keyed(http().get(url(
        &gemini,
        &format!("/download/v1beta/{file}:download?alt=media"),
    )))
    .send()
    .await
    .unwrap();
    assert!(cut.bytes().await.is_err());
    assert_eq!(gemini.downloads_cut(), 1);
    let bytes = download(&gemini, &file).await;
    assert_eq!(gemini.file_content(&file).as_ref(), Some(&bytes));
    let lines = parse_lines(&bytes);
    assert_eq!(keys(&lines), ["c", "b", "a"], "not in the input's order");
    let mut seen = Vec::new();
    for line in &lines {
        assert!(line["error"].is_null());
        let response = &line["response"];
        assert_eq!(response["candidates"][0]["finishReason"], "STOP");
        assert_eq!(response["usageMetadata"]["candidatesTokenCount"], 1120);
        let (_, image) = final_image(response);
        decode_png(&image);
        assert!(!seen.contains(&image));
        seen.push(image);
    }
    assert_eq!(gemini.response_lines(&name), lines);
    let answered = gemini.batch_lines();
    assert_eq!(gemini.batch_lines_answered(), 3);
    assert_eq!(
        answered.iter().map(|l| l.line).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(
        answered[0].image,
        Some(images::png(GEMINI_BATCH_SEQ_BASE + 1))
    );
    assert!(
        answered
            .iter()
            .all(|l| seen.contains(l.image.as_ref().unwrap()))
    );
    assert!(gemini.generate_requests().is_empty(), "no live request");

    // A range of it.
    let ranged = keyed(http().get(url(
        &gemini,
        &format!("/download/v1beta/{file}:download?alt=media"),
    )))
    .header("range", "bytes=10-19")
    .send()
    .await
    .unwrap();
    assert_eq!(ranged.status().as_u16(), 206);
    assert_eq!(
        ranged.bytes().await.unwrap().to_vec(),
        bytes[10..20].to_vec()
    );
}

#[tokio::test]
async fn batch_lines_are_judged_and_scripted_one_by_one() {
    let script: GeminiBatchScript = Arc::new(|line: &GeminiBatchLine| match line.key.as_str() {
        "busy" => GeminiAction::rate_limited(&line.model),
        "think" => GeminiAction::Thought,
        _ => GeminiAction::Answer,
    });
    let gemini = FakeGemini::with(GeminiOptions {
        batch: GeminiBatchOptions {
            script: Some(script),
            order: OutputOrder::InOrder,
            ..GeminiBatchOptions::default()
        },
        ..GeminiOptions::default()
    });
    let mut bad = line("bad", "x");
    bad["request"]["generation_config"]["imageConfig"]["imageSize"] = "512".into();
    let created = submit(
        &gemini,
        "mixed",
        &[
            line("ok", "a lighthouse"),
            bad,
            line("busy", "x"),
            line("refused", "a FORBIDDEN thing"),
            line("think", "a ship"),
        ],
    )
    .await;
    let name = created["name"].as_str().unwrap();
    let (_, done) = poll_to_end(&gemini, name).await;
    assert_eq!(done["metadata"]["state"], "BATCH_STATE_SUCCEEDED");
    assert_eq!(
        done["metadata"]["batchStats"],
        json!({"requestCount": "5", "successfulRequestCount": "3", "failedRequestCount": "2"})
    );
    let lines = gemini.response_lines(name);
    assert_eq!(keys(&lines), ["ok", "bad", "busy", "refused", "think"]);
    assert!(lines[0]["response"].is_object());
    assert_eq!(lines[1]["error"]["code"], 3, "INVALID_ARGUMENT");
    assert!(
        lines[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("image_size")
    );
    assert_eq!(lines[2]["error"]["code"], 8, "RESOURCE_EXHAUSTED");
    assert_eq!(
        lines[3]["response"]["candidates"][0]["finishReason"],
        "IMAGE_SAFETY"
    );
    assert_eq!(parts(&lines[4]["response"]).len(), 3, "thought parts");
    let answered = gemini.batch_lines();
    assert_eq!(
        answered[1].error_status.as_deref(),
        Some("INVALID_ARGUMENT")
    );
    assert_eq!(answered[3].outcome.as_deref(), Some("IMAGE_SAFETY"));
    assert_eq!(answered[4].thought_images.len(), 1);
    assert_eq!(gemini.images_delivered().len(), 2);
}

#[tokio::test]
async fn a_batch_expires_after_some_lines_with_what_ran() {
    let gemini = FakeGemini::with(GeminiOptions {
        batch: GeminiBatchOptions {
            expire_after: Some(2),
            ..GeminiBatchOptions::default()
        },
        ..GeminiOptions::default()
    });
    let created = submit(
        &gemini,
        "expiring",
        &[line("a", "x"), line("b", "y"), line("c", "z")],
    )
    .await;
    let name = created["name"].as_str().unwrap();
    let (states, done) = poll_to_end(&gemini, name).await;
    assert_eq!(states, ["BATCH_STATE_RUNNING", "BATCH_STATE_EXPIRED"]);
    assert_eq!(done["done"], true);
    assert_eq!(done["error"]["code"], 4);
    assert!(done["response"].is_null());
    let lines = gemini.response_lines(name);
    assert_eq!(keys(&lines), ["b", "a"]);
    assert_eq!(gemini.batch_lines_answered(), 2);

    // Without partial output, an expired batch names no file.
    let gemini = FakeGemini::with(GeminiOptions {
        batch: GeminiBatchOptions {
            expire_after: Some(1),
            partial_output: false,
            ..GeminiBatchOptions::default()
        },
        ..GeminiOptions::default()
    });
    let created = submit(&gemini, "expiring", &[line("a", "x"), line("b", "y")]).await;
    let name = created["name"].as_str().unwrap();
    let (_, done) = poll_to_end(&gemini, name).await;
    assert_eq!(done["metadata"]["state"], "BATCH_STATE_EXPIRED");
    assert!(done["metadata"]["output"].is_null());
}

#[tokio::test]
async fn a_batch_can_be_cancelled_once() {
    let gemini = FakeGemini::with(GeminiOptions {
        batch: GeminiBatchOptions {
            polls_per_step: 2,
            ..GeminiBatchOptions::default()
        },
        ..GeminiOptions::default()
    });
    let lines: Vec<Value> = (0..4).map(|i| line(&format!("k{i}"), "x")).collect();
    let created = submit(&gemini, "to-cancel", &lines).await;
    let name = created["name"].as_str().unwrap();
    poll(&gemini, name).await;
    poll(&gemini, name).await;
    let halfway = poll(&gemini, name).await;
    assert_eq!(halfway["metadata"]["state"], "BATCH_STATE_RUNNING");
    assert_eq!(gemini.batch_lines_answered(), 2, "half the lines ran");

    let cancel_url = url(&gemini, &format!("/v1beta/{name}:cancel"));
    let (status, answer) = send(keyed(http().post(&cancel_url))).await;
    assert_eq!((status, answer), (200, json!({})));
    let cancelled = poll(&gemini, name).await;
    assert_eq!(cancelled["metadata"]["state"], "BATCH_STATE_CANCELLED");
    assert_eq!(cancelled["done"], true);
    assert_eq!(gemini.response_lines(name).len(), 2, "what ran is kept");
    let again = send(keyed(http().post(&cancel_url))).await;
    assert_eq!(status_name(&again), (400, "FAILED_PRECONDITION"));
    let missing = send(keyed(
        http().post(url(&gemini, "/v1beta/batches/nope:cancel")),
    ))
    .await;
    assert_eq!(status_name(&missing), (404, "NOT_FOUND"));
}

#[tokio::test]
async fn batches_are_listed_newest_first_in_pages() {
    let gemini = FakeGemini::start();
    for i in 1..=3 {
        submit(&gemini, &format!("run-{i}"), &[line("a", "x")]).await;
    }
    let (status, first) = send(keyed(
        http().get(url(&gemini, "/v1beta/batches?pageSize=2")),
    ))
    .await;
    assert_eq!(status, 200);
    let names = |page: &Value| -> Vec<String> {
        page["operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["metadata"]["displayName"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&first), ["run-3", "run-2"]);
    let token = first["nextPageToken"].as_str().unwrap();
    let (_, second) = send(keyed(http().get(url(
        &gemini,
        &format!("/v1beta/batches?pageSize=2&pageToken={token}"),
    ))))
    .await;
    assert_eq!(names(&second), ["run-1"]);
    assert!(second["nextPageToken"].is_null());
    let (status, _) = send(keyed(
        http().get(url(&gemini, "/v1beta/batches?pageToken=garbage")),
    ))
    .await;
    assert_eq!(status, 400);
    assert_eq!(gemini.batch_polls(), 0, "a list is no poll");
}

#[tokio::test]
async fn a_cut_create_makes_a_batch_that_is_found_by_its_display_name() {
    let gemini = FakeGemini::with(GeminiOptions {
        batch: GeminiBatchOptions {
            create_faults: vec![GeminiAction::Truncate],
            ..GeminiBatchOptions::default()
        },
        ..GeminiOptions::default()
    });
    let file = upload(&gemini, jsonl(&[line("a", "x")]), "lost").await;
    let response = keyed(http().post(url(
        &gemini,
        "/v1beta/models/gemini-3-pro-image:batchGenerateContent",
    )))
    .json(&json!({"batch": {"display_name": "genimg-lost-1", "input_config": {"file_name": file}}}))
    .send()
    .await
    .unwrap();
    assert!(response.bytes().await.is_err(), "the answer is cut");
    assert_eq!(gemini.batches_created(), 1, "but the batch exists");

    let (_, listed) = send(keyed(http().get(url(&gemini, "/v1beta/batches")))).await;
    let found = listed["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["metadata"]["displayName"] == "genimg-lost-1")
        .expect("found by display name");
    let name = found["name"].as_str().unwrap();
    let (states, _) = poll_to_end(&gemini, name).await;
    assert_eq!(states.last().unwrap(), "BATCH_STATE_SUCCEEDED");
}

#[tokio::test]
async fn batch_creation_is_checked() {
    let gemini = FakeGemini::start();
    let file = upload(&gemini, jsonl(&[line("a", "x")]), "in").await;
    let cases = [
        (
            "gemini-3-pro-image",
            json!({"batch": {"input_config": {"file_name": "files/nope"}}}),
            (403, "PERMISSION_DENIED"),
        ),
        (
            "gemini-3-pro-image",
            json!({"batch": {"display_name": "x"}}),
            INVALID,
        ),
        (
            "gemini-3-pro-image",
            json!({"batch": {"input_config": {"file_name": file}, "colour": "red"}}),
            INVALID,
        ),
        ("gemini-3-pro-image", json!({"display_name": "x"}), INVALID),
        (
            "gemini-3-pro-image-preview",
            json!({"batch": {"input_config": {"file_name": file}}}),
            (404, "NOT_FOUND"),
        ),
        (
            "gemini-3-pro-image",
            json!({"batch": {"displayName": "camel", "inputConfig": {"fileName": file}}}),
            OK,
        ),
    ];
    for (model, body, expected) in cases {
        let answer = create(&gemini, model, &body).await;
        assert_eq!(status_name(&answer), expected, "{body}: {}", answer.1);
    }
    let answer = create(
        &gemini,
        "gemini-3-pro-image-preview",
        &json!({"batch": {"input_config": {"file_name": file}}}),
    )
    .await;
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not supported for batchGenerateContent")
    );
    assert_eq!(gemini.batches_created(), 1);

    // An input the service cannot read fails the batch as it is validated.
    let file = upload(
        &gemini,
        b"{\"key\": \"a\", \"request\": {}}\nnot json\n".to_vec(),
        "bad",
    )
    .await;
    let answer = create(
        &gemini,
        "gemini-3-pro-image",
        &json!({"batch": {"input_config": {"file_name": file}}}),
    )
    .await;
    let name = answer.1["name"].as_str().unwrap();
    let (states, done) = poll_to_end(&gemini, name).await;
    assert_eq!(states, ["BATCH_STATE_FAILED"]);
    assert_eq!(done["error"]["code"], 3);
    assert!(
        done["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 2")
    );
}

#[tokio::test]
async fn an_inline_batch_answers_inline() {
    let gemini = FakeGemini::start();
    let request = |key: &str, prompt: &str| json!({"request": line(key, prompt)["request"], "metadata": {"key": key}});
    let answer = create(
        &gemini,
        "gemini-nano-banana-2.1",
        &json!({"batch": {"display_name": "inline", "input_config": {"requests": {"requests": [
            request("one", "x"), request("two", "y"),
        ]}}}}),
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    let name = answer.1["name"].as_str().unwrap();
    let (_, done) = poll_to_end(&gemini, name).await;
    let inline = &done["response"]["inlinedResponses"]["inlinedResponses"];
    assert_eq!(inline.as_array().unwrap().len(), 2);
    assert_eq!(inline[0]["metadata"]["key"], "two");
    assert!(inline[0]["response"]["candidates"].is_array());
    assert_eq!(
        done["metadata"]["output"]["inlinedResponses"]["inlinedResponses"],
        *inline
    );
    assert_eq!(gemini.response_lines(name).len(), 2);
}

#[tokio::test]
async fn tests_can_drive_batches_by_hand() {
    let gemini = FakeGemini::start();
    gemini.hold_batches(true);
    let created = submit(&gemini, "held", &[line("a", "x"), line("b", "y")]).await;
    let name = created["name"].as_str().unwrap();
    assert_eq!(
        poll(&gemini, name).await["metadata"]["state"],
        "BATCH_STATE_PENDING"
    );
    gemini.advance_all();
    assert_eq!(
        gemini.batch_state(name).as_deref(),
        Some("BATCH_STATE_RUNNING")
    );
    gemini.set_batch_state(name, "EXPIRED");
    assert_eq!(
        gemini.batch_state(name).as_deref(),
        Some("BATCH_STATE_EXPIRED")
    );
    assert!(gemini.response_lines(name).is_empty(), "nothing ran");

    let created = submit(&gemini, "forced", &[line("a", "x")]).await;
    let name = created["name"].as_str().unwrap();
    gemini.set_batch_state(name, "BATCH_STATE_SUCCEEDED");
    assert_eq!(gemini.response_lines(name).len(), 1);
    let (status, _) = send(keyed(
        http().delete(url(&gemini, &format!("/v1beta/{name}"))),
    ))
    .await;
    assert_eq!(status, 200);
    assert!(gemini.batch(name).is_none());
}

#[tokio::test]
async fn uploads_and_polls_can_fail_on_their_way() {
    let gemini = FakeGemini::with(GeminiOptions {
        batch: GeminiBatchOptions {
            upload_faults: vec![GeminiAction::Truncate, GeminiAction::unavailable()],
            poll_faults: vec![GeminiAction::internal(), GeminiAction::Drop],
            ..GeminiBatchOptions::default()
        },
        ..GeminiOptions::default()
    });
    let start = || {
        keyed(http().post(url(&gemini, "/upload/v1beta/files")))
            .header("x-goog-upload-protocol", "resumable")
            .header("x-goog-upload-command", "start")
            .header("x-goog-upload-header-content-length", "10")
            .send()
    };
    assert!(start().await.is_err(), "the first start is cut");
    assert_eq!(gemini.upload_sessions(), 1, "but its session was opened");
    assert_eq!(start().await.unwrap().status().as_u16(), 503);
    assert_eq!(gemini.upload_sessions(), 1);

    let created = submit(&gemini, "polled", &[line("a", "x")]).await;
    let name = created["name"].as_str().unwrap();
    let poll_url = url(&gemini, &format!("/v1beta/{name}"));
    let (status, _) = send(keyed(http().get(&poll_url))).await;
    assert_eq!(status, 500);
    assert!(keyed(http().get(&poll_url)).send().await.is_err());
    assert_eq!(
        gemini.batch_state(name).as_deref(),
        Some("BATCH_STATE_PENDING"),
        "a faulted poll moves nothing"
    );
    let (states, _) = poll_to_end(&gemini, name).await;
    assert_eq!(states, ["BATCH_STATE_RUNNING", "BATCH_STATE_SUCCEEDED"]);
    let files: Vec<GeminiFile> = gemini.uploaded_files();
    assert_eq!(files.len(), 1);
    let answered: Vec<GeminiAnsweredLine> = gemini.batch_lines();
    assert_eq!(answered[0].key, "a");
}
