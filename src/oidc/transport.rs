//! The HTTP client the `openidconnect` crate calls for discovery, the JWKS and the token
//! endpoint: reqwest (no redirects, bounded in time), reading each answer up to
//! [`MAX_PROVIDER_ANSWER`] bytes. A provider's answers are hostile until checked, and the first
//! check is their size.

use std::future::Future;
use std::pin::Pin;

use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};

/// The longest answer read from a provider (a discovery document, a JWKS, a token response).
pub const MAX_PROVIDER_ANSWER: usize = 1 << 20;

/// Why a call to a provider did not give an answer guichet reads.
#[derive(Debug, thiserror::Error)]
pub enum ProviderHttpError {
    #[error(transparent)]
    Transport(#[from] openidconnect::reqwest::Error),
    #[error("answer longer than {0} bytes")]
    TooLarge(usize),
    #[error("cannot build the request: {0}")]
    Request(#[from] openidconnect::http::Error),
}

/// reqwest, with every answer's body bounded.
pub struct BoundedClient<'a>(pub &'a openidconnect::reqwest::Client);

impl<'c> AsyncHttpClient<'c> for BoundedClient<'_> {
    type Error = ProviderHttpError;
    type Future =
        Pin<Box<dyn Future<Output = Result<HttpResponse, ProviderHttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        let http = self.0.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let mut response = http
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let mut answer = openidconnect::http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                answer = answer.header(name, value);
            }
            let mut bytes = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if bytes.len() + chunk.len() > MAX_PROVIDER_ANSWER {
                    return Err(ProviderHttpError::TooLarge(MAX_PROVIDER_ANSWER));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(answer.body(bytes)?)
        })
    }
}
