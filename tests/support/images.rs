//! Real image bytes for the fake server to send, each one different.

use std::path::PathBuf;

use base64::Engine as _;
use bytes::Bytes;

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

/// A PNG of `width` x `height` in `color`, 8 bits a channel, its pixels varying with `seq`:
/// masks with and without alpha, of any size.
pub fn png_of(width: u32, height: u32, color: png::ColorType, seq: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    if color == png::ColorType::Indexed {
        encoder.set_palette(vec![0, 0, 0, 255, 255, 255]);
        // A palette image with transparency: a `tRNS` chunk, not an alpha channel.
        encoder.set_trns(vec![0, 255]);
    }
    let mut writer = encoder.write_header().expect("header");
    let len = (width * height) as usize * color.samples();
    let pixels: Vec<u8> = (0..len)
        .map(|i| match color {
            png::ColorType::Indexed => (i % 2) as u8,
            _ => (i as u8).wrapping_mul(7).wrapping_add(seq),
        })
        .collect();
    writer.write_image_data(&pixels).expect("pixels");
    writer.finish().expect("finish");
    out
}

/// An RGBA PNG of `width` x `height`: a valid mask for a reference of that size.
pub fn mask_png(width: u32, height: u32) -> Vec<u8> {
    png_of(width, height, png::ColorType::Rgba, 1)
}

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).expect("fixture")
}

/// The type of the padding chunk: ancillary (`g`), private (`n`), reserved bit clear (`P`),
/// safe to copy (`d`). Decoders skip it.
pub const PAD_CHUNK: [u8; 4] = *b"gnPd";

/// The PNG signature and the IHDR chunk (length, type, 13 bytes, CRC): where every PNG's
/// chunks after the header start. A multiple of 3, so base64 splits there.
const HEADER_LEN: usize = 8 + 4 + 4 + 13 + 4;

/// A `gnPd` chunk sized so that [`png`]`(seq)` with it comes to about `target` bytes, made
/// once (pseudo-random bytes, which neither compress nor base64-encode better than a real
/// image) and spliced into each image right after its IHDR. Its base64 is made once too, and
/// shared by every answer: an answer encodes only the small PNG around it.
#[derive(Clone)]
pub struct Padding {
    /// The whole chunk: length, type, data, CRC; a multiple of 3 bytes long, or empty.
    chunk: Vec<u8>,
    /// The chunk in base64 (no `=`, as its length is a multiple of 3).
    chunk_b64: Bytes,
}

impl std::fmt::Debug for Padding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Padding")
            .field("chunk_len", &self.chunk.len())
            .finish()
    }
}

impl Padding {
    /// Padding for images of about `target` bytes; none (an empty chunk) if [`png`] is
    /// already that big.
    pub fn new(target: usize) -> Padding {
        let base = png(1).len();
        let chunk = match target.checked_sub(base + 12) {
            Some(room) => pad_chunk(room - room % 3, 0x9E37_79B9_7F4A_7C15),
            None => Vec::new(),
        };
        let chunk_b64 = Bytes::from(base64::engine::general_purpose::STANDARD.encode(&chunk));
        Padding { chunk, chunk_b64 }
    }

    /// How many bytes the padding adds to an image.
    pub fn len(&self) -> usize {
        self.chunk.len()
    }

    /// [`png`]`(seq)` with the padding.
    pub fn png(&self, seq: u64) -> Vec<u8> {
        self.splice(&png(seq))
    }

    /// `small` (a PNG from [`png`]) with the padding chunk right after its IHDR.
    pub fn splice(&self, small: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(small.len() + self.chunk.len());
        out.extend_from_slice(&small[..HEADER_LEN]);
        out.extend_from_slice(&self.chunk);
        out.extend_from_slice(&small[HEADER_LEN..]);
        out
    }

    /// The standard base64 of [`Padding::splice`]`(small)`, in three pieces to send one after
    /// the other: the header's, the padding's (shared, not copied) and the rest's.
    pub fn base64_parts(&self, small: &[u8]) -> [Bytes; 3] {
        let engine = &base64::engine::general_purpose::STANDARD;
        [
            Bytes::from(engine.encode(&small[..HEADER_LEN])),
            self.chunk_b64.clone(),
            Bytes::from(engine.encode(&small[HEADER_LEN..])),
        ]
    }

    /// The standard base64 of [`Padding::splice`]`(small)`, in one string.
    pub fn base64(&self, small: &[u8]) -> String {
        let parts = self.base64_parts(small);
        let mut out = String::with_capacity(parts.iter().map(Bytes::len).sum());
        for part in &parts {
            out.push_str(std::str::from_utf8(part).expect("base64 is ASCII"));
        }
        out
    }
}

/// A whole `gnPd` chunk (length, type, data, CRC) of `len` pseudo-random bytes from `seed`.
pub fn pad_chunk(len: usize, seed: u64) -> Vec<u8> {
    let mut chunk = Vec::with_capacity(len + 12);
    chunk.extend_from_slice(&u32::try_from(len).expect("chunk size").to_be_bytes());
    chunk.extend_from_slice(&PAD_CHUNK);
    // xorshift64*: fast and random enough that nothing compresses it.
    let mut x = seed | 1;
    let mut next = || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let mut data = vec![0u8; len];
    let mut words = data.chunks_exact_mut(8);
    for word in &mut words {
        word.copy_from_slice(&next().to_le_bytes());
    }
    let rest = words.into_remainder();
    let last = next().to_le_bytes();
    rest.copy_from_slice(&last[..rest.len()]);
    chunk.extend_from_slice(&data);
    let crc = crc32(&chunk[4..]);
    chunk.extend_from_slice(&crc.to_be_bytes());
    chunk
}

/// The CRC-32 PNG chunks carry (ISO 3309, reflected, polynomial 0xEDB88320), over the type and
/// data; slice-by-8 tables, so a 1.5 MB chunk takes about a millisecond.
pub fn crc32(bytes: &[u8]) -> u32 {
    static TABLES: std::sync::OnceLock<[[u32; 256]; 8]> = std::sync::OnceLock::new();
    let t = TABLES.get_or_init(|| {
        let mut t = [[0u32; 256]; 8];
        for i in 0..256u32 {
            let mut c = i;
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            t[0][i as usize] = c;
        }
        for i in 0..256 {
            for k in 1..8 {
                let prev = t[k - 1][i];
                t[k][i] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            }
        }
        t
    });
    let mut crc = !0u32;
    let mut blocks = bytes.chunks_exact(8);
    for b in &mut blocks {
        let lo = crc ^ u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        crc = t[7][(lo & 0xFF) as usize]
            ^ t[6][((lo >> 8) & 0xFF) as usize]
            ^ t[5][((lo >> 16) & 0xFF) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][b[4] as usize]
            ^ t[2][b[5] as usize]
            ^ t[1][b[6] as usize]
            ^ t[0][b[7] as usize];
    }
    for &b in blocks.remainder() {
        crc = t[0][((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}
