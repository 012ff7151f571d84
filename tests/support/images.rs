//! Real image bytes for the fake server to send, each one different.

use std::path::PathBuf;

/// A small real PNG, distinct for every `seq` (pixels and a text chunk both vary).
pub fn png(seq: u64) -> Vec<u8> {
    let (width, height) = (16u32, 16u32);
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder
            .add_text_chunk("Comment".to_owned(), format!("genimg fake image {seq}"))
            .expect("text chunk");
        let mut writer = encoder.write_header().expect("header");
        let pixels: Vec<u8> = (0..width * height * 3)
            .map(|i| {
                (u64::from(i)
                    .wrapping_mul(31)
                    .wrapping_add(seq.wrapping_mul(97))
                    % 251) as u8
            })
            .collect();
        writer.write_image_data(&pixels).expect("pixels");
    }
    out
}

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).expect("fixture")
}
