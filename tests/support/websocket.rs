//! A websocket handshake over a raw connection, and the echo the test application gives.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends a websocket upgrade for `/ws` to `address` (with `cookie` when given) and returns the
/// connection and the response head (up to the blank line).
pub async fn websocket_upgrade(address: &str, cookie: Option<&str>) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{cookie}\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read_exact(&mut byte).await.is_err() {
            break;
        }
        head.push(byte[0]);
    }
    (stream, String::from_utf8_lossy(&head).into_owned())
}

/// Sends three masked text frames "bonjour", as a browser would, and checks each comes back
/// (the test application echoes the bytes).
async fn echoes(stream: &mut TcpStream) -> Result<(), String> {
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | 7];
    frame.extend_from_slice(&mask);
    frame.extend(b"bonjour".iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    for round in 0..3 {
        stream
            .write_all(&frame)
            .await
            .map_err(|e| format!("frame {round}: {e}"))?;
        let mut echoed = vec![0u8; frame.len()];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut echoed))
            .await
            .map_err(|_| format!("no echo in 5 s (frame {round})"))?
            .map_err(|e| format!("frame {round}: {e}"))?;
        if echoed != frame {
            return Err(format!("echoed {echoed:?}, sent {frame:?}"));
        }
    }
    Ok(())
}

/// A websocket client's view: upgrades `/ws` at `address` with `cookie` and checks the tunnel
/// echoes, on the first try.
pub async fn assert_websocket_echoes(address: &str, cookie: &str) {
    let (mut stream, head) = websocket_upgrade(address, Some(cookie)).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    if let Err(e) = echoes(&mut stream).await {
        panic!("websocket tunnel: {e}");
    }
}
