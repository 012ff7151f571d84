//! A tiny HTTP forward proxy, in a thread of its own, that records what it is asked.
//!
//! Plain `http://` requests arrive in absolute form (`POST http://host:port/path HTTP/1.1`):
//! the proxy connects to `host:port`, forwards the request head unchanged but for the
//! hop-by-hop `Connection` headers (it asks for `Connection: close`, so that every request
//! takes a connection of its own and is seen), and pipes the bytes both ways. `CONNECT`
//! requests (how a client reaches an `https://` URL) are recorded and answered `502 Bad
//! Gateway`: the tests only need to prove that the proxy was asked.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::background::Background;

/// The longest request head the proxy reads.
const MAX_HEAD: usize = 64 * 1024;

/// A running proxy; it stops when dropped.
pub struct Proxy {
    service: Background,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    pub fn start() -> Proxy {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let task_seen = seen.clone();
        let service = Background::start(move |stream| {
            let seen = task_seen.clone();
            async move {
                let _ = proxy_one(stream, &seen).await;
            }
        });
        Proxy { service, seen }
    }

    /// The proxy's URL, for `HTTP_PROXY` / `HTTPS_PROXY` / `ALL_PROXY`.
    pub fn url(&self) -> String {
        format!("http://{}", self.service.addr())
    }

    pub fn addr(&self) -> SocketAddr {
        self.service.addr()
    }

    /// The request lines received, in order of arrival, e.g.
    /// `POST http://127.0.0.1:1234/v1/images/generations HTTP/1.1` or
    /// `CONNECT api.openai.com:443 HTTP/1.1`.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// Serves one client connection: one request, since the upstream is asked to close after it.
async fn proxy_one(mut client: TcpStream, seen: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let Some((head, rest)) = read_head(&mut client).await? else {
        return Ok(());
    };
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("").to_owned();
    seen.lock().unwrap().push(request_line.clone());

    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method == "CONNECT" {
        return refuse(&mut client, "502 Bad Gateway").await;
    }
    let Some(authority) = target
        .strip_prefix("http://")
        .map(|rest| rest.split('/').next().unwrap_or(rest))
    else {
        // Not a proxy request (origin form) or a scheme this proxy does not speak.
        return refuse(&mut client, "400 Bad Request").await;
    };
    let upstream_addr = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let Ok(mut upstream) = TcpStream::connect(&upstream_addr).await else {
        return refuse(&mut client, "502 Bad Gateway").await;
    };

    let mut forwarded = format!("{request_line}\r\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or("").trim();
        let hop_by_hop = ["connection", "proxy-connection", "keep-alive"]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h));
        if !hop_by_hop {
            forwarded.push_str(line);
            forwarded.push_str("\r\n");
        }
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    upstream.write_all(forwarded.as_bytes()).await?;
    upstream.write_all(&rest).await?;

    // The exchange ends when the upstream has answered and closed; whatever the client is
    // still sending then has nowhere to go.
    let (mut client_read, mut client_write) = client.split();
    let (mut upstream_read, mut upstream_write) = upstream.split();
    // The client's end of its upload is not passed on: hyper's server drops a connection
    // whose reading side closes before it has answered.
    let upload = async {
        let _ = tokio::io::copy(&mut client_read, &mut upstream_write).await;
        std::future::pending::<()>().await;
    };
    let download = async {
        let copied = tokio::io::copy(&mut upstream_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
        copied
    };
    tokio::select! {
        copied = download => copied.map(drop),
        () = upload => Ok(()),
    }
}

/// Reads up to the end of the request head; returns the head (without the blank line) and
/// the bytes that followed it. `None` if the client closed first.
async fn read_head(client: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            return Ok(Some((head, buf[end + 4..].to_vec())));
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn refuse(client: &mut TcpStream, status: &str) -> std::io::Result<()> {
    let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    client.write_all(answer.as_bytes()).await?;
    client.shutdown().await
}
