//! `genimg gallery DIR --serve`: the gallery of DIR on 127.0.0.1 only, on a port the system
//! picks, with one thing the static page cannot do: picks are saved straight into
//! `DIR/picks.txt` (the page POSTs them there when it is served over http).
//!
//! Only files inside DIR are served, read-only; an SVG (untrusted markup from a model) is
//! served sandboxed, so that opened as a page no script of it runs.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

/// The file the page's picks are saved to, in DIR.
pub const PICKS: &str = "picks.txt";

/// The most a POST of picks may carry: file names, one a line.
const MAX_PICKS_BYTES: usize = 1024 * 1024;

/// Binds 127.0.0.1 on a port the system picks.
pub async fn bind() -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await
}

/// Serves `dir` on `listener` until `stop` is cancelled; `/` is `page`, the gallery written
/// (`index.html`, or `genimg-index.html` beside a page of the user's own).
pub async fn serve(
    listener: tokio::net::TcpListener,
    dir: PathBuf,
    page: PathBuf,
    stop: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let root = dir.canonicalize()?;
    let page = page.canonicalize()?;
    let port = listener.local_addr()?.port();
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = stop.cancelled() => return Ok(()),
        };
        let (root, page) = (root.clone(), page.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (root, page) = (root.clone(), page.clone());
                async move { Ok::<_, Infallible>(answer(&root, &page, port, req).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(text.to_owned())))
        .expect("a plain answer")
}

/// Whether a request comes from the page as this server shows it: its `Host` is this
/// server's own address, and an `Origin`, if it sends one, is too. A web page elsewhere (or
/// one that rebinds its name to 127.0.0.1) sends another: it may neither read nor write, nor
/// embed the folder's images to learn what it holds (a browser says so in `Sec-Fetch-Site`).
fn from_the_page(req: &Request<Incoming>, port: u16) -> bool {
    let own =
        |host: &str| host == format!("127.0.0.1:{port}") || host == format!("localhost:{port}");
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let host_ok = header("host").is_some_and(own);
    let origin_ok = header("origin").is_none_or(|origin| {
        origin
            .strip_prefix("http://")
            .is_some_and(|rest| own(rest.trim_end_matches('/')))
    });
    // A link followed from another page (a top-level navigation) shows the gallery to the
    // user, not to that page: it may GET. Anything else another site starts may not.
    let navigation = header("sec-fetch-mode") == Some("navigate")
        && matches!(*req.method(), Method::GET | Method::HEAD);
    let site_ok = navigation
        || header("sec-fetch-site").is_none_or(|site| matches!(site, "same-origin" | "none"));
    host_ok && origin_ok && site_ok
}

async fn answer(
    root: &Path,
    page: &Path,
    port: u16,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    if !from_the_page(&req, port) {
        return plain(StatusCode::FORBIDDEN, "only the gallery's own page may ask");
    }
    let path = req.uri().path().to_owned();
    match (req.method(), path.as_str()) {
        (&Method::POST, "/picks.txt") => {
            let body = match Limited::new(req.into_body(), MAX_PICKS_BYTES)
                .collect()
                .await
            {
                Ok(body) => body.to_bytes(),
                Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "too many picks"),
            };
            let Ok(text) = std::str::from_utf8(&body) else {
                return plain(StatusCode::BAD_REQUEST, "picks are text");
            };
            match save_picks(root, text) {
                Ok(()) => plain(StatusCode::OK, "saved"),
                Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
            }
        }
        (&Method::GET | &Method::HEAD, _) => {
            let Some(file) = file_of(root, page, &path) else {
                return plain(StatusCode::NOT_FOUND, "not found");
            };
            // HEAD asks for the headers only: the file's size, not its bytes.
            let body = if req.method() == Method::HEAD {
                tokio::fs::metadata(&file)
                    .await
                    .map(|m| (m.len(), Bytes::new()))
            } else {
                tokio::fs::read(&file)
                    .await
                    .map(|bytes| (bytes.len() as u64, Bytes::from(bytes)))
            };
            let Ok((length, body)) = body else {
                return plain(StatusCode::NOT_FOUND, "not found");
            };
            let mut response = Response::builder()
                .header("content-type", content_type(&file))
                .header("content-length", length)
                .header("cache-control", "no-cache")
                .header("x-content-type-options", "nosniff");
            // Anything but the page itself runs no script, whatever it holds.
            if file != page {
                response = response.header("content-security-policy", "script-src 'none'; sandbox");
            }
            response.body(Full::new(body)).expect("a file answer")
        }
        _ => plain(StatusCode::METHOD_NOT_ALLOWED, "GET, or POST /picks.txt"),
    }
}

/// The folders of genimg's own (in `.genimg`) that the page shows files from: anything else
/// there (the trash, batches, partial images) is not the page's to read.
const SHOWN_FROM_GENIMG: [&str; 2] = [super::thumbs::DIR, crate::store::sink::UNRECOGNISED_DIR];

/// The file a request path names inside `root` (canonical), if it is one the page shows:
/// `/` is the gallery; then images, `picks.txt`, and of genimg's own files the thumbnails
/// and unrecognised answers. `..`, empty segments, anything that resolves outside `root`
/// and any other file (a `.env` beside the images) are refused.
fn file_of(root: &Path, page: &Path, path: &str) -> Option<PathBuf> {
    let mut file = root.to_owned();
    let trimmed = path.trim_start_matches('/');
    if trimmed.is_empty() {
        return Some(page.to_owned());
    }
    for segment in trimmed.split('/') {
        let segment = percent_encoding::percent_decode_str(segment)
            .decode_utf8()
            .ok()?;
        if segment.is_empty()
            || segment == "."
            || segment == ".."
            || segment.contains(['/', '\\', '\0'])
        {
            return None;
        }
        file.push(segment.as_ref());
    }
    // A link inside the folder may point out of it: where it leads decides.
    let real = file.canonicalize().ok()?;
    let inside = real.strip_prefix(root).ok()?;
    let shown = if inside.starts_with(".genimg") {
        SHOWN_FROM_GENIMG.iter().any(|d| inside.starts_with(d))
    } else {
        real == page
            || inside == Path::new(PICKS)
            || crate::format::ImageFormat::of_name(&inside.to_string_lossy()).is_some()
    };
    (shown && real.is_file()).then_some(real)
}

/// Writes the picks to `root/picks.txt` whole, as genimg writes every file (a temporary file,
/// renamed; permissions as the umask gives any file the user makes).
fn save_picks(root: &Path, text: &str) -> std::io::Result<()> {
    let path = root.join(PICKS);
    crate::store::atomic::write(
        &path,
        text.as_bytes(),
        crate::store::atomic::Exists::Replace,
    )?;
    Ok(())
}

fn content_type(file: &Path) -> &'static str {
    let ext = file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match ext.as_str() {
        "html" => "text/html; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "json" | "jsonl" => "application/json",
        _ => crate::format::ImageFormat::of_name(&file.to_string_lossy())
            .map_or("application/octet-stream", crate::format::ImageFormat::mime),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_inside_the_folder_are_served() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join("a.png"), b"x").unwrap();
        std::fs::create_dir_all(root.join(".genimg/thumbs")).unwrap();
        std::fs::write(root.join(".genimg/thumbs/t.jpg"), b"x").unwrap();
        assert_eq!(
            file_of(&root, &root.join("index.html"), "/a.png"),
            Some(root.join("a.png"))
        );
        assert_eq!(
            file_of(&root, &root.join("index.html"), "/.genimg/thumbs/t.jpg"),
            Some(root.join(".genimg/thumbs/t.jpg"))
        );
        assert_eq!(
            file_of(&root, &root.join("index.html"), "/"),
            Some(root.join("index.html"))
        );
        std::fs::create_dir_all(root.join(".genimg/trash/20260101T000000Z")).unwrap();
        std::fs::write(root.join(".genimg/trash/20260101T000000Z/a.png"), b"x").unwrap();
        std::fs::create_dir_all(root.join(".genimg/partials")).unwrap();
        std::fs::write(root.join(".genimg/partials/p.png"), b"x").unwrap();
        std::fs::create_dir_all(root.join(".genimg/unrecognised")).unwrap();
        std::fs::write(root.join(".genimg/unrecognised/u.bin"), b"x").unwrap();
        assert_eq!(
            file_of(
                &root,
                &root.join("index.html"),
                "/.genimg/unrecognised/u.bin"
            ),
            Some(root.join(".genimg/unrecognised/u.bin"))
        );
        std::fs::write(root.join(".env"), b"OPENAI_API_KEY=sk-x").unwrap();
        std::fs::write(root.join("notes.txt"), b"mine").unwrap();
        std::fs::write(root.join("picks.txt"), b"a.png\n").unwrap();
        std::fs::write(root.join("B.JPG"), b"x").unwrap();
        assert_eq!(
            file_of(&root, &root.join("index.html"), "/picks.txt"),
            Some(root.join("picks.txt"))
        );
        assert_eq!(
            file_of(&root, &root.join("index.html"), "/B.JPG"),
            Some(root.join("B.JPG"))
        );
        for bad in [
            "/.env",
            "/notes.txt",
            "/.genimg/trash/20260101T000000Z/a.png",
            "/.genimg/partials/p.png",
            "/../etc/passwd",
            "/%2e%2e/x",
            "/a.png/..",
            "/x//a.png",
            "/missing.png",
        ] {
            assert_eq!(file_of(&root, &root.join("index.html"), bad), None, "{bad}");
        }
        #[cfg(unix)]
        {
            let outside = tempfile::tempdir().unwrap();
            std::fs::write(outside.path().join("secret"), b"s").unwrap();
            std::os::unix::fs::symlink(outside.path().join("secret"), root.join("link")).unwrap();
            assert_eq!(
                file_of(&root, &root.join("index.html"), "/link"),
                None,
                "a link out of the folder"
            );
        }
        assert_eq!(content_type(Path::new("x.svg")), "image/svg+xml");
        assert_eq!(content_type(Path::new("x.JPG")), "image/jpeg");
    }
}
