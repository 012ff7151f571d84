//! The three image formats the Images API reads and writes, recognised by their bytes.

use std::fmt;

/// An image format genimg can send as a reference or receive as a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    Png,
    Jpeg,
    Webp,
}

impl ImageFormat {
    pub const ALL: [ImageFormat; 3] = [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Webp];

    /// Recognises a format from the first bytes of a file (a dozen are enough).
    ///
    /// Only the magic numbers are trusted, never a file name, so a `.png` that is really a
    /// JPEG is sent with the right MIME type.
    pub fn sniff(header: &[u8]) -> Option<ImageFormat> {
        match imagesize::image_type(header).ok()? {
            imagesize::ImageType::Png => Some(ImageFormat::Png),
            imagesize::ImageType::Jpeg => Some(ImageFormat::Jpeg),
            imagesize::ImageType::Webp => Some(ImageFormat::Webp),
            _ => None,
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Webp => "image/webp",
        }
    }

    /// The file extension of saved images, and the `output_format` value the API uses.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Webp => "webp",
        }
    }

    /// Every extension a file of this format may carry on disk.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            ImageFormat::Png => &["png"],
            ImageFormat::Jpeg => &["jpeg", "jpg"],
            ImageFormat::Webp => &["webp"],
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ImageFormat::Png => "PNG",
            ImageFormat::Jpeg => "JPEG",
            ImageFormat::Webp => "WebP",
        })
    }
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
    fn refuses_other_bytes() {
        assert_eq!(ImageFormat::sniff(b"GIF89a\x01\0\x01\0\0\0\0"), None);
        assert_eq!(ImageFormat::sniff(b"hello, world, not an image"), None);
        assert_eq!(ImageFormat::sniff(b""), None);
        assert_eq!(ImageFormat::sniff(b"\x89PN"), None);
    }

    #[test]
    fn mime_and_extension_agree() {
        for f in ImageFormat::ALL {
            assert!(f.mime().starts_with("image/"));
            assert!(f.extensions().contains(&f.extension()));
        }
    }
}
