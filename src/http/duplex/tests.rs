use super::*;
use crate::http::pool::tests::connected;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// More than loopback sockets hold between two ends that do not read.
const LARGE: usize = 32 * 1024 * 1024;

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn writes_complete_while_the_peer_reads_nothing_and_arrive_in_order() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stream, mut peer) = connected(&listener).await;
    let (mut stream, drain) = DuplexStream::wrap(stream);
    let data = pattern(LARGE);

    // Every write completes at once although the peer reads nothing: the socket takes what
    // it can, the rest waits.
    for piece in data.chunks(60_000) {
        stream.write_all(piece).await.unwrap();
    }
    stream.flush().await.unwrap();
    assert!(drain.pending() > 0, "the socket cannot hold {LARGE} bytes");
    assert!(!drain.is_drained());

    // The peer reads; what waited is sent, in order.
    let reader = tokio::spawn(async move {
        let mut received = vec![0u8; LARGE];
        peer.read_exact(&mut received).await.unwrap();
        received
    });
    drain.drained(None).await.unwrap();
    assert!(drain.is_drained());
    assert_eq!(drain.pending(), 0);
    assert!(reader.await.unwrap() == data, "bytes changed or reordered");
}

#[tokio::test]
async fn the_response_is_read_while_writes_wait() {
    // The peer sends before it reads (as an application that answers before it takes the
    // body): reading it does not wait for the writes it has not taken.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stream, mut peer) = connected(&listener).await;
    let (mut stream, drain) = DuplexStream::wrap(stream);
    let answer = pattern(LARGE);
    let sent = answer.clone();
    let application = tokio::spawn(async move {
        peer.write_all(&sent).await.unwrap();
        let mut body = vec![0u8; LARGE];
        peer.read_exact(&mut body).await.unwrap();
        body
    });
    let body = pattern(LARGE);
    stream.write_all(&body).await.unwrap();
    let mut received = vec![0u8; LARGE];
    let mut read = 0;
    while read < LARGE || !drain.is_drained() {
        tokio::select! {
            n = stream.read(&mut received[read..]), if read < LARGE => {
                let n = n.unwrap();
                assert!(n > 0, "closed after {read} bytes");
                read += n;
            }
            sent = drain.drained(None), if !drain.is_drained() => sent.unwrap(),
        }
    }
    assert!(received == answer);
    assert!(application.await.unwrap() == body);
}

#[tokio::test]
async fn unwrap_gives_back_the_connection_only_when_all_is_sent() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();

    // Not a duplex stream: given back as it is.
    let (plain, _peer) = connected(&listener).await;
    let id = plain.id();
    assert_eq!(DuplexStream::unwrap(plain).map(|s| s.id()), Some(id));

    // Drained, and its drain dropped: the inner connection.
    let (stream, _peer) = connected(&listener).await;
    let id = stream.id();
    let (mut stream, drain) = DuplexStream::wrap(stream);
    stream.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    drain.drained(None).await.unwrap();
    drop(drain);
    let inner = DuplexStream::unwrap(stream).expect("drained: reusable");
    assert_eq!(inner.id(), id);

    // A drain still alive: not given back.
    let (stream, _peer) = connected(&listener).await;
    let (stream, _drain) = DuplexStream::wrap(stream);
    assert!(DuplexStream::unwrap(stream).is_none());

    // Bytes left to send: not given back (the next request would follow them).
    let (stream, _peer) = connected(&listener).await;
    let (mut stream, drain) = DuplexStream::wrap(stream);
    stream.write_all(&pattern(LARGE)).await.unwrap();
    assert!(drain.pending() > 0);
    drop(drain);
    assert!(DuplexStream::unwrap(stream).is_none());
}

#[tokio::test]
async fn a_peer_that_closes_ends_the_drain_and_every_later_write() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stream, peer) = connected(&listener).await;
    let (mut stream, drain) = DuplexStream::wrap(stream);
    stream.write_all(&pattern(LARGE)).await.unwrap();
    drop(peer);
    let error = drain.drained(None).await.unwrap_err();
    assert!(
        matches!(
            error.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
        ),
        "{error:?}"
    );
    assert!(drain.is_drained(), "a failed side has nothing left to send");
    assert_eq!(drain.pending(), 0);
    let again = stream.write_all(b"more").await.unwrap_err();
    assert_eq!(again.kind(), error.kind());
    drop(drain);
    assert!(DuplexStream::unwrap(stream).is_none());
}

#[tokio::test]
async fn a_peer_that_takes_nothing_times_the_drain_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stream, _peer) = connected(&listener).await;
    let (mut stream, drain) = DuplexStream::wrap(stream);
    stream.write_all(&pattern(LARGE)).await.unwrap();
    let error = drain
        .drained(Some(Duration::from_millis(50)))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    // The writing side has ended: nothing left to send, later writes fail, not reusable.
    assert!(drain.is_drained());
    assert_eq!(drain.pending(), 0);
    let again = stream.write_all(b"more").await.unwrap_err();
    assert_eq!(again.kind(), io::ErrorKind::TimedOut);
    drop(drain);
    assert!(DuplexStream::unwrap(stream).is_none());
}

/// Gathered writes (a chunk's size line, data, line end) are taken whole and arrive in order,
/// both when the socket takes them at once and when it takes part of them, the cut falling
/// inside any of the pieces.
#[tokio::test]
async fn gathered_writes_are_taken_whole_and_arrive_in_order() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stream, mut peer) = connected(&listener).await;
    let (mut stream, drain) = DuplexStream::wrap(stream);
    assert!(stream.is_write_vectored());
    let data = pattern(LARGE);
    let mut expected = Vec::with_capacity(LARGE + LARGE / 1000);
    // Pieces of varied lengths, so that the socket's cut falls in every position.
    let mut rest = &data[..];
    let mut sizes = [1usize, 7, 60_000, 3, 65_536, 250_000, 13].iter().cycle();
    while !rest.is_empty() {
        let (piece, tail) = rest.split_at((*sizes.next().unwrap()).min(rest.len()));
        rest = tail;
        let head = format!("{:x}\r\n", piece.len());
        let parts = [
            IoSlice::new(head.as_bytes()),
            IoSlice::new(piece),
            IoSlice::new(b"\r\n"),
        ];
        let total = head.len() + piece.len() + 2;
        let written =
            std::future::poll_fn(|cx| Pin::new(&mut stream).poll_write_vectored(cx, &parts))
                .await
                .unwrap();
        assert_eq!(written, total, "a gathered write is taken whole");
        expected.extend_from_slice(head.as_bytes());
        expected.extend_from_slice(piece);
        expected.extend_from_slice(b"\r\n");
    }
    assert!(drain.pending() > 0, "the socket cannot hold {LARGE} bytes");
    let length = expected.len();
    let reader = tokio::spawn(async move {
        let mut received = vec![0u8; length];
        peer.read_exact(&mut received).await.unwrap();
        received
    });
    drain.drained(None).await.unwrap();
    assert!(
        reader.await.unwrap() == expected,
        "bytes changed or reordered"
    );
}
