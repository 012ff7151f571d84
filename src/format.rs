//! The image formats the Images API reads and writes, recognised by their bytes: PNG, JPEG
//! and WebP both ways; animated GIF and SVG as output of the models that make them.

use std::fmt;

/// An image format genimg can send as a reference or receive as a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    Png,
    Jpeg,
    Webp,
    /// Animated GIF (gpt-image-2.6).
    Gif,
    /// SVG text (gpt-image-2.6): untrusted markup, only ever shown as an image.
    Svg,
}

impl ImageFormat {
    /// The raster formats every GPT image model reads and writes.
    pub const RASTER: [ImageFormat; 3] = [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Webp];

    /// Every format an image genimg keeps may be in.
    pub const ALL: [ImageFormat; 5] = [
        ImageFormat::Png,
        ImageFormat::Jpeg,
        ImageFormat::Webp,
        ImageFormat::Gif,
        ImageFormat::Svg,
    ];

    /// Recognises a format from the first bytes of a file (a dozen are enough).
    ///
    /// Only the magic numbers are trusted, never a file name, so a `.png` that is really a
    /// JPEG is sent with the right MIME type.
    /// An SVG is text: a UTF-8 byte order mark and blanks may come first, then an XML
    /// prolog, comments or a doctype, then `<svg`.
    pub fn sniff(header: &[u8]) -> Option<ImageFormat> {
        if header.starts_with(b"GIF87a") || header.starts_with(b"GIF89a") {
            return Some(ImageFormat::Gif);
        }
        if is_svg(header) {
            return Some(ImageFormat::Svg);
        }
        match imagesize::image_type(header).ok()? {
            imagesize::ImageType::Png => Some(ImageFormat::Png),
            imagesize::ImageType::Jpeg => Some(ImageFormat::Jpeg),
            imagesize::ImageType::Webp => Some(ImageFormat::Webp),
            _ => None,
        }
    }

    /// Whether `bytes` are a whole image of this format: a raster image's header gives its
    /// size, an SVG document closes its `<svg>` element (`</svg>`, `</svg >`, or a root
    /// `<svg .../>`).
    pub fn is_whole(self, bytes: &[u8]) -> bool {
        match self {
            ImageFormat::Svg => {
                // `</svg>`, blanks allowed before its `>` as XML allows, anywhere: what
                // follows the root (blanks, comments) may be long.
                let closed = bytes.windows(5).enumerate().any(|(at, w)| {
                    w.eq_ignore_ascii_case(b"</svg")
                        && bytes[at + 5..]
                            .iter()
                            .find(|b| !b.is_ascii_whitespace())
                            .is_some_and(|&b| b == b'>')
                });
                // Or a root element that closes itself: `<svg .../>`.
                let empty = svg_root(bytes).is_some_and(|root| {
                    bytes[root..]
                        .iter()
                        .position(|&b| b == b'>')
                        .is_some_and(|gt| bytes[root + gt - 1] == b'/')
                });
                closed || empty
            }
            _ => imagesize::blob_size(bytes).is_ok_and(|s| s.width > 0 && s.height > 0),
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Webp => "image/webp",
            ImageFormat::Gif => "image/gif",
            ImageFormat::Svg => "image/svg+xml",
        }
    }

    /// The file extension of saved images, and the `output_format` value the API uses.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Webp => "webp",
            ImageFormat::Gif => "gif",
            ImageFormat::Svg => "svg",
        }
    }

    /// The format whose files may carry `ext`.
    pub fn from_extension(ext: &str) -> Option<ImageFormat> {
        ImageFormat::ALL
            .into_iter()
            .find(|f| f.extensions().contains(&ext))
    }

    /// The format a file's name says, by its extension in any case (`a.JPG`, `b.svg`).
    pub fn of_name(name: &str) -> Option<ImageFormat> {
        let (_, ext) = name.rsplit_once('.')?;
        ImageFormat::from_extension(&ext.to_ascii_lowercase())
    }

    /// Every extension a file of this format may carry on disk.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            ImageFormat::Png => &["png"],
            ImageFormat::Jpeg => &["jpeg", "jpg"],
            ImageFormat::Webp => &["webp"],
            ImageFormat::Gif => &["gif"],
            ImageFormat::Svg => &["svg"],
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ImageFormat::Png => "PNG",
            ImageFormat::Jpeg => "JPEG",
            ImageFormat::Webp => "WebP",
            ImageFormat::Gif => "GIF",
            ImageFormat::Svg => "SVG",
        })
    }
}

/// Whether text starts as an SVG document does: after a byte order mark and blanks, any XML
/// prolog, comments and doctype, the root element `<svg`.
fn is_svg(bytes: &[u8]) -> bool {
    svg_root(bytes).is_some()
}

/// Where the root `<svg` element of an SVG document starts, if the text is one.
fn svg_root(bytes: &[u8]) -> Option<usize> {
    let bom = if bytes.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let mut at = bom;
    // Prolog, comments and doctype come first; each is skipped to its end.
    for _ in 0..16 {
        while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
            at += 1;
        }
        let rest = &bytes[at..];
        let end: &[u8] = if rest.starts_with(b"<?") {
            b"?>"
        } else if rest.starts_with(b"<!--") {
            b"-->"
        } else if rest.starts_with(b"<!") {
            b">"
        } else {
            break;
        };
        at += rest.windows(end.len()).position(|w| w == end)? + end.len();
    }
    let rest = &bytes[at..];
    (rest.len() >= 5
        && rest[..4].eq_ignore_ascii_case(b"<svg")
        && (rest[4].is_ascii_whitespace() || matches!(rest[4], b'>' | b'/')))
    .then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";
    const JPEG: &[u8] = b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0";
    const WEBP: &[u8] = b"RIFF\x24\0\0\0WEBPVP8 \x18\0\0\0";

    #[test]
    fn sniffs_the_three_formats_by_magic_bytes() {
        assert_eq!(ImageFormat::sniff(PNG), Some(ImageFormat::Png));
        assert_eq!(ImageFormat::sniff(JPEG), Some(ImageFormat::Jpeg));
        assert_eq!(ImageFormat::sniff(WEBP), Some(ImageFormat::Webp));
    }

    #[test]
    fn sniffs_gif_and_svg() {
        assert_eq!(
            ImageFormat::sniff(b"GIF89a\x01\0\x01\0\0\0\0"),
            Some(ImageFormat::Gif)
        );
        assert_eq!(
            ImageFormat::sniff(b"GIF87a\x01\0\x01\0"),
            Some(ImageFormat::Gif)
        );
        for svg in [
            &b"<svg xmlns='http://www.w3.org/2000/svg'></svg>"[..],
            b"\xEF\xBB\xBF<?xml version=\"1.0\"?>\n<!-- made by a model -->\n<!DOCTYPE svg>\n<svg>\n</svg>",
            b"  \n<SVG viewBox='0 0 1 1'/>",
        ] {
            assert_eq!(ImageFormat::sniff(svg), Some(ImageFormat::Svg), "{svg:?}");
            assert!(ImageFormat::Svg.is_whole(svg), "{svg:?}");
        }
        for not in [
            &b"<svgx>"[..],
            b"<html><svg></svg></html>",
            b"<?xml version='1.0'",
            b"<svg",
        ] {
            assert_eq!(ImageFormat::sniff(not), None, "{not:?}");
        }
        assert!(!ImageFormat::Svg.is_whole(b"<svg><rect/>"), "cut short");
    }

    #[test]
    fn an_svg_whose_end_tag_has_blanks_or_a_comment_after_it_is_whole() {
        // XML allows blanks before an end tag's `>`; what follows the root (blanks, comments,
        // processing instructions) may be long.
        let after = format!("<!-- {} -->\n", "x".repeat(5000));
        for svg in [
            &b"<svg viewBox='0 0 1 1'><rect/></svg >"[..],
            b"<svg viewBox='0 0 1 1'><rect/></svg\r\n>\n",
            b"<svg viewBox='0 0 1 1'><rect/></SVG\t>",
            format!("<svg><rect/></svg>\n{after}").as_bytes(),
        ] {
            assert_eq!(ImageFormat::sniff(svg), Some(ImageFormat::Svg));
            assert!(
                ImageFormat::Svg.is_whole(svg),
                "{:?}",
                String::from_utf8_lossy(svg)
            );
        }
        for cut in [
            &b"<svg><rect/></svg"[..],
            b"<svg><rect/></svgx>",
            b"<svg><rect/></sv",
            b"<svg><g/></svg",
        ] {
            assert!(!ImageFormat::Svg.is_whole(cut), "{cut:?}");
        }
    }

    #[test]
    fn refuses_other_bytes() {
        assert_eq!(ImageFormat::sniff(b"hello, world, not an image"), None);
        assert_eq!(ImageFormat::sniff(b""), None);
        assert_eq!(ImageFormat::sniff(b"\x89PN"), None);
    }

    #[test]
    fn mime_and_extension_agree() {
        for f in ImageFormat::ALL {
            assert!(f.mime().starts_with("image/"));
            assert_eq!(ImageFormat::from_extension(f.extension()), Some(f));
            let upper = format!("dir.d/A.{}", f.extension().to_uppercase());
            assert_eq!(ImageFormat::of_name(&upper), Some(f));
            assert!(f.extensions().contains(&f.extension()));
        }
    }
}
