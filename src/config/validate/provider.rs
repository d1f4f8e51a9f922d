//! `[[provider]]`: each provider's settings, from its kind's preset and what the file overrides.

use url::Url;

use super::headers::claim_headers;
use super::Checker;
use crate::config::file::ProviderSection;
use crate::config::presets::{Preset, ProviderKind};
use crate::config::settings::{ProviderSettings, Secret, TokenAuthMethod};
use crate::config::spelling::Spelled;
use crate::http::routes::Route;

/// Every provider, ids unique; at least one.
pub(super) fn all(check: &mut Checker, sections: &[ProviderSection]) -> Vec<ProviderSettings> {
    if sections.is_empty() {
        check.problem(
            "provider",
            "at least one [[provider]] is needed: visitors must sign in somewhere",
        );
    }
    let mut providers = Vec::new();
    for (index, section) in sections.iter().enumerate() {
        let key = format!("provider[{index}]");
        if sections[..index].iter().any(|p| p.id == section.id) {
            check.problem(
                format!("{key}.id"),
                format!("{:?} is used twice", section.id),
            );
        }
        providers.extend(settings(check, &key, section));
    }
    providers
}

fn settings(check: &mut Checker, key: &str, section: &ProviderSection) -> Option<ProviderSettings> {
    let before = check.problems.len();
    check_id(check, key, &section.id);
    let kind = check.choice(
        &format!("{key}.kind"),
        section.kind.as_deref(),
        ProviderKind::Oidc,
    );
    let preset = kind.preset();
    let issuer = issuer(check, key, section, kind);
    let (token_auth_method, client_secret) = credentials(check, key, section, kind);
    let scopes = scopes(check, key, section, &preset);
    let encryption_keys =
        check.key_files(&format!("{key}.encryption_keys"), &section.encryption_keys);
    let signing_keys = check.key_files(&format!("{key}.signing_keys"), &section.signing_keys);
    if kind == ProviderKind::FranceConnectPlus && section.encryption_keys.is_empty() {
        check.problem(
            format!("{key}.encryption_keys"),
            format!("franceconnect-plus encrypts id_token and userinfo (JWE): give at least one PEM key (RSA or EC P-256) to decrypt them, and register {} with the federation", Route::ProviderJwks.path()),
        );
    }
    if section.client_id.trim().is_empty() {
        check.problem(format!("{key}.client_id"), "must not be empty");
    }
    let userinfo_format = check.choice(
        &format!("{key}.userinfo_format"),
        section.userinfo_format.as_deref(),
        preset.userinfo,
    );
    let http_timeout = check.duration(&format!("{key}.http_timeout"), &section.http_timeout);
    let claim_headers = claim_headers(check, &format!("{key}.headers"), &section.headers);
    if check.problems.len() != before {
        return None;
    }
    let strings = |values: &[&str]| values.iter().map(|v| v.to_string()).collect::<Vec<_>>();
    Some(ProviderSettings {
        id: section.id.clone(),
        kind,
        display_name: section
            .display_name
            .clone()
            .unwrap_or_else(|| match preset.display_name {
                "" => section.id.clone(),
                name => name.to_string(),
            }),
        issuer: issuer?,
        client_id: section.client_id.clone(),
        client_secret: client_secret?,
        scopes,
        acr: section.acr.clone().unwrap_or_else(|| strings(preset.acr)),
        acr_request: preset.acr_request,
        pkce: section.pkce.unwrap_or(preset.pkce),
        token_auth_method,
        encryption_keys,
        signing_keys,
        userinfo: section.userinfo,
        userinfo_format,
        hints: strings(preset.hints),
        mandatory_claims: section
            .mandatory_claims
            .clone()
            .unwrap_or_else(|| strings(preset.mandatory_claims)),
        http_timeout,
        claim_headers,
    })
}

fn check_id(check: &mut Checker, key: &str, id: &str) {
    let ok = !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        check.problem(
            format!("{key}.id"),
            "must be 1 to 32 letters, digits, '-' or '_'",
        );
    }
}

/// The issuer: as given, or from the kind's preset for an environment and platform.
fn issuer(
    check: &mut Checker,
    key: &str,
    section: &ProviderSection,
    kind: ProviderKind,
) -> Option<String> {
    let platform = section.platform.as_deref().unwrap_or("internet");
    let federation_with_platforms =
        matches!(kind, ProviderKind::ProConnect | ProviderKind::AgentConnect);
    if section.platform.is_some() && !federation_with_platforms {
        check.problem(
            format!("{key}.platform"),
            "only ProConnect/AgentConnect have platforms",
        );
    } else if !matches!(platform, "internet" | "rie") {
        check.problem(
            format!("{key}.platform"),
            format!("expected \"internet\" or \"rie\", got {platform:?}"),
        );
    }
    match section.environment.as_deref() {
        Some(environment) if !matches!(environment, "integration" | "production") => check.problem(
            format!("{key}.environment"),
            format!("expected \"integration\" or \"production\", got {environment:?}"),
        ),
        Some(_) if kind == ProviderKind::Oidc => check.problem(
            format!("{key}.environment"),
            "only a federation kind has environments; give issuer for an oidc provider",
        ),
        _ => {}
    }
    let text = match (&section.issuer, section.environment.as_deref()) {
        (Some(issuer), _) => issuer.clone(),
        (None, Some(environment)) => kind.issuer(environment, platform)?.to_string(),
        (None, None) => {
            let message = match kind {
                ProviderKind::Oidc => "required for an oidc provider".to_string(),
                _ => format!(
                    "give environment = \"integration\" or \"production\" (or the issuer) for {}",
                    kind.as_str()
                ),
            };
            check.problem(format!("{key}.issuer"), message);
            return None;
        }
    };
    match Url::parse(&text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(text),
        _ => {
            check.problem(
                format!("{key}.issuer"),
                format!("expected an absolute http(s) URL, got {text:?}"),
            );
            None
        }
    }
}

/// How the client authenticates at the token endpoint, and its secret (`Some(None)`: none
/// needed, with `private_key_jwt`; `None`: a problem).
fn credentials(
    check: &mut Checker,
    key: &str,
    section: &ProviderSection,
    kind: ProviderKind,
) -> (TokenAuthMethod, Option<Option<Secret>>) {
    let method = check.choice(
        &format!("{key}.token_auth_method"),
        Some(section.token_auth_method.as_str()),
        TokenAuthMethod::ClientSecretPost,
    );
    let given = section.client_secret_source();
    let secret_given = given.0.is_some() || given.1.is_some() || given.2.is_some();
    let secret = if method == TokenAuthMethod::PrivateKeyJwt && !secret_given {
        Some(None)
    } else {
        check
            .secret(&format!("{key}.client_secret"), given, 0)
            .map(Some)
    };
    if method == TokenAuthMethod::PrivateKeyJwt {
        if kind == ProviderKind::FranceConnectV1 {
            check.problem(
                format!("{key}.token_auth_method"),
                "franceconnect-v1 authenticates with the client secret (it also signs the id_token with it): use client_secret_post",
            );
        }
        if section.signing_keys.is_empty() {
            check.problem(
                format!("{key}.signing_keys"),
                "private_key_jwt signs a client assertion: give at least one PEM key (RSA or EC P-256)",
            );
        }
    }
    (method, secret)
}

/// The scopes to request, each a word, without `openid` (the OIDC library adds it) and without
/// duplicates.
fn scopes(
    check: &mut Checker,
    key: &str,
    section: &ProviderSection,
    preset: &Preset,
) -> Vec<String> {
    let listed: Vec<String> = section
        .scopes
        .clone()
        .unwrap_or_else(|| preset.scopes.iter().map(|s| s.to_string()).collect());
    let mut scopes: Vec<String> = Vec::new();
    for (i, scope) in listed.iter().enumerate() {
        if scope.is_empty() || scope.contains(char::is_whitespace) {
            check.problem(
                format!("{key}.scopes[{i}]"),
                "a scope is one non-empty word without spaces",
            );
        } else if scope != "openid" && !scopes.contains(scope) {
            scopes.push(scope.clone());
        }
    }
    scopes
}
