//! `[[route]]`: each route's pattern (exactly one of `path`, `exact`, `glob`), methods, `auth`,
//! upstream and answer without a session; a route that an earlier one shadows entirely is a
//! problem (it would never be used).

use http::Method;

use super::Checker;
use std::collections::BTreeMap;

use crate::config::file::{AllowValue, ProviderSection, RouteSection};
use crate::config::settings::UpstreamSettings;
use crate::config::{ProviderKind, Spelled};
use crate::http::visitor::has_dot_segments;
use crate::policy::{AllowBlock, Auth, Pattern, Requirement, Route, WithoutSession};

pub(super) fn all(
    check: &mut Checker,
    sections: &[RouteSection],
    upstreams: &[(String, UpstreamSettings)],
    providers: &[ProviderSection],
) -> Vec<Route> {
    let mut routes: Vec<Route> = Vec::new();
    for (index, section) in sections.iter().enumerate() {
        let key = format!("route[{index}]");
        let Some(route) = route(check, &key, section, upstreams, providers) else {
            continue;
        };
        if let Some(earlier) = routes.iter().find(|earlier| shadows(earlier, &route)) {
            check.problem(
                key,
                format!(
                    "never used: route {:?} before it matches all its requests",
                    earlier.name
                ),
            );
        }
        routes.push(route);
    }
    routes
}

fn route(
    check: &mut Checker,
    key: &str,
    section: &RouteSection,
    upstreams: &[(String, UpstreamSettings)],
    provider_sections: &[ProviderSection],
) -> Option<Route> {
    let before = check.problems.len();
    let ids: Vec<&str> = provider_sections.iter().map(|p| p.id.as_str()).collect();
    let providers = &ids[..];
    let pattern = pattern(check, key, section);
    let methods = section.methods.as_ref().map(|methods| {
        methods
            .iter()
            .enumerate()
            .filter_map(|(i, text)| {
                match Method::from_bytes(text.to_ascii_uppercase().as_bytes()) {
                    Ok(method) => Some(method),
                    Err(_) => {
                        check.problem(
                            format!("{key}.methods[{i}]"),
                            format!("{text:?} is not an HTTP method"),
                        );
                        None
                    }
                }
            })
            .collect()
    });
    let upstream = section.upstream.as_ref().and_then(|name| {
        let found = upstreams.iter().position(|(known, _)| known == name);
        if found.is_none() {
            check.problem(
                format!("{key}.upstream"),
                format!("no [upstreams.{name}] section names this upstream"),
            );
        }
        found
    });
    let auth = check.choice(
        &format!("{key}.auth"),
        section.auth.as_deref(),
        Auth::Required,
    );
    let without_session = check.choice(
        &format!("{key}.unauthenticated"),
        section.unauthenticated.as_deref(),
        WithoutSession::ByClient,
    );
    let route_providers = section.providers.as_ref().map(|ids| {
        for (i, id) in ids.iter().enumerate() {
            if !providers.contains(&id.as_str()) {
                check.problem(
                    format!("{key}.providers[{i}]"),
                    format!("no [[provider]] has id {id:?}"),
                );
            }
        }
        ids.clone()
    });
    let allow = section
        .allow
        .iter()
        .enumerate()
        .map(|(i, block)| allow_block(check, &format!("{key}.allow[{i}]"), block, providers))
        .collect::<Vec<AllowBlock>>();
    warn_unsent_claims(
        check,
        key,
        &allow,
        section.providers.as_deref(),
        provider_sections,
    );
    if check.problems.len() != before {
        return None;
    }
    Some(Route {
        providers: route_providers,
        allow,
        acr: section.acr.clone().unwrap_or_default(),
        name: section.name.clone().unwrap_or_else(|| key.to_string()),
        pattern: pattern?,
        methods,
        auth,
        upstream,
        without_session,
    })
}

/// Warns about a claim rule no provider the route accepts can satisfy: every such provider is a
/// federation whose documented claims do not include it (a standard `oidc` provider may send
/// anything).
fn warn_unsent_claims(
    check: &mut Checker,
    key: &str,
    blocks: &[AllowBlock],
    accepted: Option<&[String]>,
    providers: &[ProviderSection],
) {
    let kinds: Vec<ProviderKind> = providers
        .iter()
        .filter(|p| accepted.is_none_or(|ids| ids.contains(&p.id)))
        .map(|p| {
            p.kind
                .as_deref()
                .and_then(ProviderKind::parse)
                .unwrap_or(ProviderKind::Oidc)
        })
        .collect();
    for (i, block) in blocks.iter().enumerate() {
        for requirement in block {
            let Requirement::Claim { name, .. } = requirement else {
                continue;
            };
            let never_sent = kinds
                .iter()
                .all(|kind| kind.sends_claim(name) == Some(false));
            if never_sent && !kinds.is_empty() {
                check.warnings.push(format!(
                    "{key}.allow[{i}].{name}: no provider this route accepts sends this claim, so this block never matches"
                ));
            }
        }
    }
}

/// One `[[route.allow]]` block: claim → accepted values, `<claim>_file` → a file of them (one a
/// line, `#` comments), and the special keys `email_domain` and `provider`.
fn allow_block(
    check: &mut Checker,
    key: &str,
    block: &BTreeMap<String, AllowValue>,
    providers: &[&str],
) -> AllowBlock {
    if block.is_empty() {
        check.problem(
            key,
            "an empty allow block would let every signed-in visitor in",
        );
    }
    let mut requirements = Vec::new();
    for (name, value) in block {
        let entry = format!("{key}.{name}");
        let values: Vec<String> = match (name.strip_suffix("_file"), value) {
            (Some(_), AllowValue::File(path)) => match std::fs::read_to_string(path) {
                Ok(text) => text
                    .lines()
                    .map(|line| line.split('#').next().unwrap_or("").trim().to_string())
                    .filter(|line| !line.is_empty())
                    .collect(),
                Err(e) => {
                    check.problem(entry, format!("cannot read {}: {e}", path.display()));
                    continue;
                }
            },
            (None, AllowValue::Values(values)) => values.clone(),
            (Some(_), AllowValue::Values(_)) => {
                check.problem(entry, "a _file key names one file (a string)");
                continue;
            }
            (None, AllowValue::File(_)) => {
                check.problem(
                    entry,
                    "expected a list of accepted values, such as [\"a\", \"b\"]",
                );
                continue;
            }
        };
        if values.is_empty() {
            check.problem(entry.clone(), "no accepted value: nobody would match");
        }
        let claim = name.strip_suffix("_file").unwrap_or(name);
        requirements.push(match claim {
            "email_domain" => Requirement::EmailDomain(
                values
                    .iter()
                    .map(|d| d.trim_start_matches('@').to_ascii_lowercase())
                    .collect(),
            ),
            "provider" => {
                for id in &values {
                    if !providers.contains(&id.as_str()) {
                        check.problem(entry.clone(), format!("no [[provider]] has id {id:?}"));
                    }
                }
                Requirement::Provider(values.into_iter().collect())
            }
            _ => Requirement::Claim {
                name: claim.to_string(),
                values: values.into_iter().collect(),
            },
        });
    }
    requirements
}

/// Exactly one of `path`, `exact`, `glob`: an absolute path without dot segments.
fn pattern(check: &mut Checker, key: &str, section: &RouteSection) -> Option<Pattern> {
    let given: Vec<(&str, Pattern)> = [
        ("path", section.path.clone().map(Pattern::Prefix)),
        ("exact", section.exact.clone().map(Pattern::Exact)),
        ("glob", section.glob.clone().map(Pattern::Glob)),
    ]
    .into_iter()
    .filter_map(|(name, pattern)| pattern.map(|p| (name, p)))
    .collect();
    let [(name, pattern)] = &given[..] else {
        check.problem(key, "give exactly one of path, exact or glob");
        return None;
    };
    let (Pattern::Prefix(text) | Pattern::Exact(text) | Pattern::Glob(text)) = pattern;
    if matches!(pattern, Pattern::Glob(_)) && text.split('/').filter(|s| *s == "**").count() > 1 {
        // With one `**`, matching walks the path's segments at most once per position after it.
        check.problem(format!("{key}.{name}"), "use `**` at most once in a glob");
        return None;
    }
    if !text.starts_with('/') || has_dot_segments(text) || text.contains(['?', '#']) {
        check.problem(
            format!("{key}.{name}"),
            format!("expected an absolute path such as \"/static/\", without dot segments or query, got {text:?}"),
        );
        return None;
    }
    Some(pattern.clone())
}

/// Whether `earlier` matches every request `later` could match (so `later` is never used):
/// for every method `later` allows, and a path prefix covering `later`'s literal paths.
fn shadows(earlier: &Route, later: &Route) -> bool {
    let methods_covered = match (&earlier.methods, &later.methods) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => b.iter().all(|m| a.contains(m)),
    };
    let covers = |prefix: &str, path: &str| {
        let prefix = prefix.trim_end_matches('/');
        path == prefix || path.starts_with(&format!("{prefix}/"))
    };
    let paths_covered = match (&earlier.pattern, &later.pattern) {
        (Pattern::Prefix(a), Pattern::Prefix(b) | Pattern::Exact(b)) => covers(a, b),
        (Pattern::Prefix(a), Pattern::Glob(b)) => covers(a, b.split('*').next().unwrap_or("")),
        (Pattern::Exact(a), Pattern::Exact(b)) | (Pattern::Glob(a), Pattern::Glob(b)) => a == b,
        _ => false,
    };
    methods_covered && paths_covered
}
