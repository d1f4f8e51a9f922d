//! The demo application: an HTML page showing the identity headers it received from guichet,
//! decoded, and every other request header.

use async_trait::async_trait;
use http::Response;
use percent_encoding::percent_decode_str;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::assertion::is_identity_header;
use crate::http::pages::{escape_html, page};
use crate::http::routes::Route;

/// The echo app.
pub struct EchoApp;

#[async_trait]
impl ServeHttp for EchoApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let request = session.req_header();
        let mut identity = String::new();
        let mut others = String::new();
        let mut names: Vec<&str> = request.headers.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            for value in request.headers.get_all(name) {
                let raw = String::from_utf8_lossy(value.as_bytes());
                if is_identity_header(name) {
                    let decoded = percent_decode_str(&raw).decode_utf8_lossy();
                    identity.push_str(&format!(
                        "<tr><th scope=\"row\">{}</th><td>{}</td><td><code>{}</code></td></tr>\n",
                        escape_html(name),
                        escape_html(&decoded),
                        escape_html(&raw)
                    ));
                } else {
                    others.push_str(&format!(
                        "<tr><th scope=\"row\">{}</th><td><code>{}</code></td></tr>\n",
                        escape_html(name),
                        escape_html(&raw)
                    ));
                }
            }
        }
        let body = format!(
            "<h1>Application de démonstration</h1>\n\
             <p>Cette application n'a aucun code d'authentification : guichet lui transmet l'identité vérifiée dans des en-têtes HTTP.</p>\n\
             <p class=\"en\" lang=\"en\">This app has no login code: guichet sends it the verified identity as HTTP headers.</p>\n\
             <h2>En-têtes d'identité / Identity headers</h2>\n\
             <table><thead><tr><th>en-tête</th><th>valeur décodée</th><th>valeur brute</th></tr></thead><tbody>\n{identity}</tbody></table>\n\
             <p><a class=\"button\" href=\"{logout}\">Se déconnecter / Sign out</a></p>\n\
             <h2>Autres en-têtes / Other headers</h2>\n<table><tbody>\n{others}</tbody></table>\n<p>{} {}</p>",
            escape_html(request.method.as_str()),
            escape_html(&request.uri.to_string()),
            logout = Route::Logout.path(),
        );
        let body = page("Application de démonstration", &body).into_bytes();
        Response::builder()
            .status(200)
            .header("content-type", "text/html; charset=utf-8")
            .header("content-length", body.len())
            .body(body)
            .unwrap_or_default()
    }
}
