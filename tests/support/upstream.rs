//! The test application: echoes request headers, streams bodies back, answers websockets,
//! and has a slow path.

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

// === upstream ===

/// Starts the test application: for `GET`, a text body listing every request header as
/// `name: value` lines; for `POST /echo`, the request body streamed back as it arrives; for a
/// websocket upgrade, `101` and then every byte echoed.
pub async fn start_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let addr = listener.local_addr().expect("upstream address");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(serve_upstream(stream, addr.port()));
        }
    });
    addr
}

async fn serve_upstream(stream: TcpStream, port: u16) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        loop {
            // Header values may hold any byte: shown as UTF-8, lossily.
            let mut raw = Vec::new();
            if reader.read_until(b'\n', &mut raw).await.unwrap_or(0) == 0 {
                return;
            }
            let line = String::from_utf8_lossy(&raw).trim_end().to_string();
            if line.is_empty() {
                break;
            }
            if let Some((n, v)) = line.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
        if header("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
            let mut stream = reader.into_inner();
            let _ = stream
                .write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: test\r\n\r\n")
                .await;
            let (mut r, mut w) = stream.split();
            let _ = tokio::io::copy(&mut r, &mut w).await;
            return;
        }
        let length: u64 = header("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        if path.starts_with("/slow") {
            tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
            if !respond(&mut reader, "", "slow done").await {
                return;
            }
            continue;
        }
        if path.starts_with("/echo") {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {length}\r\n\r\n"
            );
            if reader.get_mut().write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let mut remaining = length;
            let mut buffer = vec![0u8; 64 * 1024];
            while remaining > 0 {
                let want = buffer.len().min(remaining as usize);
                let n = match reader.read(&mut buffer[..want]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if reader.get_mut().write_all(&buffer[..n]).await.is_err() {
                    return;
                }
                remaining -= n as u64;
            }
            continue;
        }
        // Discard any body.
        let mut sink = vec![0u8; length as usize];
        if length > 0 && reader.read_exact(&mut sink).await.is_err() {
            return;
        }
        let mut body = format!("{}\n", request_line.trim_end());
        for (n, v) in &headers {
            body.push_str(&format!("{n}: {v}\n"));
        }
        // `x-upstream` names this application by its port (tests with several upstreams).
        let extra = format!("content-type: text/plain; charset=utf-8\r\nx-upstream: {port}\r\n");
        if !respond(&mut reader, &extra, &body).await {
            return;
        }
    }
}

/// Writes a 200 answer with `extra` header lines and `body`; `false` when the client is gone.
async fn respond(reader: &mut BufReader<TcpStream>, extra: &str, body: &str) -> bool {
    let response = format!(
        "HTTP/1.1 200 OK\r\n{extra}content-length: {}\r\n\r\n{body}",
        body.len()
    );
    reader
        .get_mut()
        .write_all(response.as_bytes())
        .await
        .is_ok()
}
