//! The client's side of one request, whichever protocol carries it: an HTTP/1.x request on
//! guichet's own server session (`http::inbound`), or an HTTP/2 stream on pingora-core's.
//! The loop (`http::h1`) and the decisions it calls (`http::proxy`) see only this.

use std::net::IpAddr;

use bytes::Bytes;
use http::StatusCode;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::http::ServerSession;
use pingora::Result;

use crate::http::inbound::Inbound;

pub enum Downstream {
    /// HTTP/1.x.
    H1(Inbound),
    /// A stream of an HTTP/2 connection.
    H2(Box<ServerSession>),
}

impl Downstream {
    pub fn req_header(&self) -> &RequestHeader {
        match self {
            Downstream::H1(s) => s.req_header(),
            Downstream::H2(s) => s.req_header(),
        }
    }

    pub fn peer_ip(&self) -> Option<IpAddr> {
        match self {
            Downstream::H1(s) => s.peer_ip(),
            Downstream::H2(s) => s.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip()),
        }
    }

    pub fn is_upgrade_req(&self) -> bool {
        match self {
            Downstream::H1(s) => s.is_upgrade_req(),
            Downstream::H2(s) => s.is_upgrade_req(),
        }
    }

    pub fn is_body_empty(&mut self) -> bool {
        match self {
            Downstream::H1(s) => s.is_body_empty(),
            Downstream::H2(s) => s.is_body_empty(),
        }
    }

    pub fn is_body_done(&mut self) -> bool {
        match self {
            Downstream::H1(s) => s.is_body_done(),
            Downstream::H2(s) => s.is_body_done(),
        }
    }

    pub fn was_upgraded(&self) -> bool {
        match self {
            Downstream::H1(s) => s.was_upgraded(),
            Downstream::H2(s) => s.was_upgraded(),
        }
    }

    /// The final response's status, once its header is written.
    pub fn response_status(&self) -> Option<StatusCode> {
        match self {
            Downstream::H1(s) => s.response_status(),
            Downstream::H2(s) => s.response_written().map(|r| r.status),
        }
    }

    pub fn body_bytes_read(&self) -> usize {
        match self {
            Downstream::H1(s) => s.body_bytes_read(),
            Downstream::H2(s) => s.body_bytes_read(),
        }
    }

    pub fn body_bytes_sent(&self) -> usize {
        match self {
            Downstream::H1(s) => s.body_bytes_sent(),
            Downstream::H2(s) => s.body_bytes_sent(),
        }
    }

    /// No other request on this connection after this one (HTTP/1.x).
    pub fn set_keepalive_off(&mut self) {
        match self {
            Downstream::H1(s) => s.set_keepalive_off(),
            Downstream::H2(s) => s.set_keepalive(None),
        }
    }

    /// The next piece of the request's body (`None` at its end); with `done`, waits until the
    /// client goes away (an error).
    pub async fn read_body_or_idle(&mut self, done: bool) -> Result<Option<Bytes>> {
        match self {
            Downstream::H1(s) => s.read_body_or_idle(done).await,
            Downstream::H2(s) => s.read_body_or_idle(done).await,
        }
    }

    pub async fn write_response_header(&mut self, header: Box<ResponseHeader>) -> Result<()> {
        match self {
            Downstream::H1(s) => s.write_response_header(header).await,
            Downstream::H2(s) => s.write_response_header(header).await,
        }
    }

    pub async fn write_response_body(&mut self, data: Bytes, end: bool) -> Result<()> {
        match self {
            Downstream::H1(s) => s.write_response_body(data, end).await,
            Downstream::H2(s) => s.write_response_body(data, end).await,
        }
    }

    pub async fn finish_body(&mut self) -> Result<()> {
        match self {
            Downstream::H1(s) => s.finish_body().await,
            Downstream::H2(s) => s.finish_body().await,
        }
    }

    /// Answers with `status` and no body; the connection (or stream) is not used again.
    pub async fn refuse(&mut self, status: u16) {
        match self {
            Downstream::H1(s) => s.refuse(status).await,
            Downstream::H2(s) => {
                let _ = s.respond_error(status).await;
            }
        }
    }

    pub async fn shutdown(&mut self) {
        match self {
            Downstream::H1(s) => s.shutdown().await,
            Downstream::H2(s) => s.shutdown().await,
        }
    }
}
