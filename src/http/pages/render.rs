//! The page templates (minijinja, HTML auto-escaped) and the static assets they use, with the
//! operator's branding from `[pages]`: built once by [`Pages::new`], which also renders every
//! overridden template against sample pages, so a template that cannot render is a start-up
//! (and `guichet check`) error, never a 500. Should an override still fail on some real page,
//! the built-in template renders it and an error line names the file.

use std::collections::HashMap;

use bytes::Bytes;
use minijinja::{AutoEscape, Environment};
use serde::Serialize;

use super::escape_html;
use crate::config::{Button, PagesSettings, ProviderKind};
use crate::http::routes::Route;

/// The templates guichet renders, each overridable by a file of the same name.
pub const TEMPLATES: [(&str, &str); 5] = [
    ("base.html", include_str!("templates/base.html")),
    ("chooser.html", include_str!("templates/chooser.html")),
    ("error.html", include_str!("templates/error.html")),
    ("message.html", include_str!("templates/message.html")),
    ("me.html", include_str!("templates/me.html")),
];

/// Files served under `/.guichet/assets/`: name, content type, bytes.
const ASSETS: [(&str, &str, &[u8]); 2] = [
    (
        "dsfr-connect.min.css",
        "text/css; charset=utf-8",
        include_bytes!("assets/dsfr-connect.min.css"),
    ),
    (
        "guichet.css",
        "text/css; charset=utf-8",
        include_bytes!("assets/guichet.css"),
    ),
];

/// The page shown should even a built-in template fail to render.
const FALLBACK_PAGE: &str = "<!doctype html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\"><title>Erreur</title></head><body><main><h1>Erreur</h1><p>Une erreur est survenue. <a href=\"/\">Revenir à l'accueil</a>.</p><p lang=\"en\">An error occurred. <a href=\"/\">Back to the start page</a>.</p></main></body></html>\n";

/// What every page knows of the site.
#[derive(Clone, Debug, Serialize)]
pub struct Site {
    pub application_name: Option<String>,
    /// The organisation's name, line by line.
    pub organisation: Vec<String>,
    pub logo: bool,
    pub logo_alt: String,
    pub support_url: Option<String>,
    /// Where the assets are served.
    pub assets: &'static str,
    /// Appended to asset URLs, so that a new version is not served from a stale cache.
    pub version: &'static str,
}

/// A link: label and address.
#[derive(Clone, Debug, Serialize)]
pub struct Link {
    pub label: String,
    pub href: String,
}

/// One way of signing in on the chooser.
#[derive(Clone, Debug, Serialize)]
pub struct Method {
    /// The accessible name of its section (and the text of a plain button).
    pub label: String,
    pub href: String,
    /// A federation's official button; `None` for another provider or the application's own
    /// sign-in (a plain button with `label`).
    pub button: Option<Button>,
}

impl Method {
    /// A federation's button, named after its "what is it?" link, or a plain button.
    pub fn new(label: impl Into<String>, href: impl Into<String>, button: Option<Button>) -> Self {
        Method {
            label: button.map_or_else(|| label.into(), |b| b.about_name.to_string()),
            href: href.into(),
            button,
        }
    }
}

/// An error page's content.
#[derive(Clone, Debug, Serialize)]
pub struct ErrorView {
    pub title: String,
    pub fr: String,
    pub en: String,
    pub link: Option<Link>,
    pub status: u16,
    pub reference: String,
}

/// A short page: a heading, some text, a form button and/or a link.
#[derive(Clone, Debug, Serialize)]
pub struct Message {
    pub heading: &'static str,
    pub text: Vec<&'static str>,
    pub english: &'static str,
    pub form: Option<Form>,
    pub link: Option<Link>,
}

/// A form posted from this origin (sign-out).
#[derive(Clone, Debug, Serialize)]
pub struct Form {
    pub action: &'static str,
    pub label: &'static str,
}

/// A row of `/.guichet/me`.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub label: &'static str,
    pub value: String,
}

/// Problems with `[pages]` found while building [`Pages`].
#[derive(Debug, thiserror::Error)]
#[error("pages.templates: {0}")]
pub struct TemplateError(pub String);

/// The compiled templates, the assets, and the site's branding.
pub struct Pages {
    env: Environment<'static>,
    /// Only the built-in templates: the fallback when an override fails.
    builtin: Environment<'static>,
    site: Site,
    assets: HashMap<String, (&'static str, Bytes)>,
    /// The application's own sign-in, offered on the chooser.
    pub alternative: Option<Link>,
    /// The `Content-Security-Policy` of pages with the sign-out form.
    pub sign_out_policy: String,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages").field("site", &self.site).finish()
    }
}

/// A new environment: HTML-escaping of strings as [`escape_html`] does (minijinja's own escaper
/// also writes `/` as `&#x2f;`, which makes every address unreadable in the page source).
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_formatter(|out, state, value| match value.as_str() {
        Some(text) if state.auto_escape() == AutoEscape::Html && !value.is_safe() => {
            out.write_str(&escape_html(text))?;
            Ok(())
        }
        _ => minijinja::escape_formatter(out, state, value),
    });
    env
}

fn builtin_environment() -> Environment<'static> {
    let mut env = environment();
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .expect("the built-in templates parse (tested)");
    }
    env
}

impl Pages {
    /// The built-in pages without branding.
    pub fn builtin() -> Self {
        Pages::new(&PagesSettings::default()).expect("the built-in pages render (tested)")
    }

    /// Compiles the templates (built-in, then the overrides) and renders each override against
    /// sample pages.
    pub fn new(settings: &PagesSettings) -> Result<Self, TemplateError> {
        let mut env = builtin_environment();
        for (name, source) in &settings.templates {
            env.add_template_owned(name.clone(), source.clone())
                .map_err(|e| TemplateError(format!("{name}: {e:#}")))?;
        }
        let mut assets: HashMap<String, (&'static str, Bytes)> = ASSETS
            .iter()
            .map(|(name, kind, bytes)| (name.to_string(), (*kind, Bytes::from_static(bytes))))
            .collect();
        if let Some(logo) = &settings.logo {
            assets.insert(
                "logo".into(),
                (logo.content_type, Bytes::from(logo.bytes.clone())),
            );
        }
        let site = Site {
            application_name: settings.application_name.clone(),
            organisation: settings
                .organisation
                .as_deref()
                .map(|text| text.lines().map(str::to_string).collect())
                .unwrap_or_default(),
            logo: settings.logo.is_some(),
            logo_alt: settings.logo_alt.clone().unwrap_or_default(),
            support_url: settings.support_url.clone(),
            assets: Route::ASSETS_PREFIX,
            version: env!("CARGO_PKG_VERSION"),
        };
        let pages = Pages {
            env,
            builtin: builtin_environment(),
            site,
            assets,
            alternative: settings
                .alternative_login
                .as_ref()
                .map(|(href, label)| Link {
                    label: label.clone(),
                    href: href.clone(),
                }),
            sign_out_policy: super::sign_out_policy(&[]),
        };
        for (name, _) in &settings.templates {
            pages
                .samples(name)
                .into_iter()
                .try_for_each(|ctx| pages.try_render(&pages.env, name, ctx).map(drop))
                .map_err(|e| TemplateError(format!("{name}: {e:#}")))?;
        }
        Ok(pages)
    }

    /// Lets the sign-out form lead to these origins (the providers' logout endpoints).
    pub fn with_sign_out_origins(mut self, origins: &[String]) -> Self {
        self.sign_out_policy = super::sign_out_policy(origins);
        self
    }

    /// An asset by name: content type and bytes.
    pub fn asset(&self, name: &str) -> Option<&(&'static str, Bytes)> {
        self.assets.get(name)
    }

    fn try_render(
        &self,
        env: &Environment<'static>,
        name: &str,
        ctx: minijinja::Value,
    ) -> Result<String, minijinja::Error> {
        let ctx = minijinja::context! { site => &self.site, ..ctx };
        env.get_template(name)?.render(ctx)
    }

    /// Renders `name`; an override that fails falls back to the built-in template.
    pub fn render(&self, name: &str, ctx: minijinja::Value) -> String {
        match self.try_render(&self.env, name, ctx.clone()) {
            Ok(html) => html,
            Err(e) => {
                tracing::error!(template = name, error = %format!("{e:#}"), "a page template override failed to render; the built-in one was used (fix pages.templates)");
                self.try_render(&self.builtin, name, ctx)
                    .unwrap_or_else(|e| {
                        // Not expected (the built-in templates are tested): a bare page, no panic.
                        tracing::error!(template = name, error = %format!("{e:#}"), "a built-in page template failed to render");
                        FALLBACK_PAGE.to_string()
                    })
            }
        }
    }

    /// The chooser page.
    pub fn chooser(&self, methods: &[Method]) -> String {
        self.render(
            "chooser.html",
            minijinja::context! { title => "Connexion", methods, several => methods.len() > 1 },
        )
    }

    pub fn error(&self, error: &ErrorView) -> String {
        self.render(
            "error.html",
            minijinja::context! { title => &error.title, error },
        )
    }

    pub fn message(&self, title: &str, message: &Message) -> String {
        self.render("message.html", minijinja::context! { title, message })
    }

    pub fn me(&self, rows: &[Row]) -> String {
        self.render(
            "me.html",
            minijinja::context! { title => "Mon compte", rows, logout => Route::Logout.path() },
        )
    }

    /// Contexts a template is checked against: every page that uses it, with every optional
    /// part present.
    fn samples(&self, name: &str) -> Vec<minijinja::Value> {
        let error = ErrorView {
            title: "Titre".into(),
            fr: "Texte".into(),
            en: "Text".into(),
            link: Some(Link {
                label: "Lien".into(),
                href: "/".into(),
            }),
            status: 400,
            reference: "abc".into(),
        };
        let message = Message {
            heading: "Titre",
            text: vec!["Texte"],
            english: "Text",
            form: Some(Form {
                action: Route::Logout.path(),
                label: "Envoyer",
            }),
            link: Some(Link {
                label: "Lien".into(),
                href: "/".into(),
            }),
        };
        let methods = vec![
            Method::new("", "/", ProviderKind::FranceConnectPlus.button()),
            Method::new("Lien", "/", None),
        ];
        let chooser = minijinja::context! { title => "t", methods, several => true };
        let error = minijinja::context! { title => "t", error };
        let message = minijinja::context! { title => "t", message };
        let me = minijinja::context! { title => "t", rows => vec![Row { label: "Nom", value: "x".into() }], logout => "/" };
        match name {
            "chooser.html" => vec![chooser],
            "error.html" => vec![error],
            "message.html" => vec![message],
            "me.html" => vec![me],
            _ => vec![chooser, error, message, me],
        }
    }
}

#[cfg(test)]
mod tests;
