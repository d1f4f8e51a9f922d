//! `[pages]`: names and links shown on guichet's pages, the logo and the template overrides,
//! read now so that what `guichet check` accepts is what runs.

use std::path::Path;

use super::Checker;
use crate::config::file::PagesSection;
use crate::config::settings::{Logo, PagesSettings};

/// Largest logo file.
const MAX_LOGO_BYTES: u64 = 512 * 1024;
/// Largest template file.
const MAX_TEMPLATE_BYTES: u64 = 256 * 1024;
/// Longest name or label.
const MAX_TEXT: usize = 200;
/// The templates that may be overridden.
pub const TEMPLATE_NAMES: [&str; 5] = [
    "base.html",
    "chooser.html",
    "error.html",
    "message.html",
    "me.html",
];

pub(super) fn settings(check: &mut Checker, section: &PagesSection) -> PagesSettings {
    for (key, value) in [
        ("pages.application_name", &section.application_name),
        ("pages.organisation", &section.organisation),
        ("pages.logo_alt", &section.logo_alt),
        (
            "pages.alternative_login_label",
            &section.alternative_login_label,
        ),
    ] {
        if let Some(value) = value {
            if value.trim().is_empty() || value.chars().count() > MAX_TEXT {
                check.problem(key, format!("must be 1 to {MAX_TEXT} characters"));
            }
        }
    }
    if let Some(url) = &section.support_url {
        let ok = ["https://", "http://", "mailto:", "tel:"]
            .iter()
            .any(|scheme| url.starts_with(scheme) && url.len() > scheme.len())
            && url.len() <= 2048
            && !url.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            check.problem(
                "pages.support_url",
                format!("expected an https://, mailto: or tel: address, got {url:?}"),
            );
        }
    }
    let logo = section.logo.as_deref().and_then(|path| logo(check, path));
    if logo.is_some() && section.logo_alt.is_none() {
        check.problem(
            "pages.logo_alt",
            "required with pages.logo: the logo's text alternative, read by screen readers (e.g. the organisation's name)",
        );
    }
    let alternative_login = match (
        &section.alternative_login_url,
        &section.alternative_login_label,
    ) {
        (Some(url), label) => {
            let local = url.starts_with('/') && !url.starts_with("//") && !url.contains('\\');
            if !(local || url.starts_with("https://")) || url.chars().any(char::is_whitespace) {
                check.problem(
                    "pages.alternative_login_url",
                    format!("expected a path on this site (\"/login\") or an https:// address, got {url:?}"),
                );
            }
            Some((
                url.clone(),
                label
                    .clone()
                    .unwrap_or_else(|| "Se connecter autrement".to_string()),
            ))
        }
        (None, Some(_)) => {
            check.problem(
                "pages.alternative_login_label",
                "set pages.alternative_login_url too (the address of the application's own sign-in)",
            );
            None
        }
        (None, None) => None,
    };
    let templates = section
        .templates
        .as_deref()
        .map(|dir| templates(check, dir))
        .unwrap_or_default();
    PagesSettings {
        application_name: section.application_name.clone(),
        organisation: section.organisation.clone(),
        support_url: section.support_url.clone(),
        logo,
        logo_alt: section.logo_alt.clone(),
        alternative_login,
        templates,
    }
}

/// The logo file: bounded, of a known image type (by its first bytes, not its name).
fn logo(check: &mut Checker, path: &Path) -> Option<Logo> {
    let bytes = match read_bounded(path, MAX_LOGO_BYTES) {
        Ok(bytes) => bytes,
        Err(e) => {
            check.problem("pages.logo", e);
            return None;
        }
    };
    let content_type = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if bytes.starts_with(b"\xff\xd8\xff") {
        "image/jpeg"
    } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        "image/webp"
    } else if is_svg(&bytes) {
        "image/svg+xml"
    } else {
        check.problem(
            "pages.logo",
            format!("{} is not a PNG, JPEG, WebP or SVG image", path.display()),
        );
        return None;
    };
    Some(Logo {
        bytes,
        content_type,
    })
}

fn is_svg(bytes: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]);
    let head = head.trim_start_matches('\u{feff}').trim_start();
    (head.starts_with("<?xml") || head.starts_with("<svg") || head.starts_with("<!--"))
        && head.contains("<svg")
}

/// Every `*.html` file of the directory, each one of [`TEMPLATE_NAMES`].
fn templates(check: &mut Checker, dir: &Path) -> Vec<(String, String)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            check.problem(
                "pages.templates",
                format!("cannot read the directory {}: {e}", dir.display()),
            );
            return Vec::new();
        }
    };
    let mut templates = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".html") {
            continue;
        }
        if !TEMPLATE_NAMES.contains(&name.as_str()) {
            check.problem(
                "pages.templates",
                format!(
                    "{}: not a template guichet renders (expected one of {})",
                    entry.path().display(),
                    TEMPLATE_NAMES.join(", ")
                ),
            );
            continue;
        }
        match read_bounded(&entry.path(), MAX_TEMPLATE_BYTES).and_then(|bytes| {
            String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8", entry.path().display()))
        }) {
            Ok(source) => templates.push((name, source)),
            Err(e) => check.problem("pages.templates", e),
        }
    }
    templates.sort();
    templates
}

fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let metadata =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if metadata.len() > max {
        return Err(format!(
            "{} is {} bytes; at most {max} are accepted",
            path.display(),
            metadata.len()
        ));
    }
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}
