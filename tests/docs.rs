//! The documentation stays true: every key of the complete example configuration is in the
//! README's reference, and every metric the README or the Grafana dashboard names exists.

use std::collections::BTreeSet;

const README: &str = include_str!("../README.md");
const EXAMPLE: &str = include_str!("../config/guichet.example.toml");
const DASHBOARD: &str = include_str!("../examples/grafana-dashboard.json");
const METRICS_SOURCE: &str = include_str!("../src/metrics.rs");

/// Maps whose keys are claim or header names (one configuration key each).
fn is_name_map(key: &str, prefix: &str) -> bool {
    matches!(key, "claims" | "encodings") || (key == "headers" && prefix.ends_with("[]"))
}

/// Key paths of a TOML table: `server.listen`, `provider[].issuer`, `headers.claims`.
fn key_paths(prefix: &str, table: &toml::Table, out: &mut BTreeSet<String>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            // Maps whose keys are claim or header names are one key each.
            toml::Value::Table(inner) if !is_name_map(key, prefix) => key_paths(&path, inner, out),
            toml::Value::Array(items)
                if items.iter().all(toml::Value::is_table) && !items.is_empty() =>
            {
                for item in items {
                    if let toml::Value::Table(inner) = item {
                        key_paths(&format!("{path}[]"), inner, out);
                    }
                }
            }
            _ => {
                out.insert(path);
            }
        }
    }
}

#[test]
fn every_example_key_is_in_the_readme_reference() {
    let table: toml::Table = EXAMPLE.parse().expect("the example parses");
    let mut keys = BTreeSet::new();
    key_paths("", &table, &mut keys);
    assert!(keys.len() > 40, "{keys:?}");
    let missing: Vec<&String> = keys
        .iter()
        .filter(|key| {
            let last = key.rsplit('.').next().unwrap();
            let section = key.rsplit_once('.').map_or("", |(s, _)| s);
            // Either the full path, or `section.a` / `b` style rows for secret variants.
            !README.contains(&format!("`{key}`"))
                && !README.contains(&format!("`{section}.{last}` /"))
                && !README.contains(&format!("/ `{last}`"))
                && !README.contains(&format!("/ `{section}.{last}`"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "keys missing from the README: {missing:?}"
    );
}

fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("guichet_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        names.insert(base.to_string());
        rest = &tail[end..];
    }
    names
}

#[test]
fn documented_and_charted_metrics_exist() {
    let defined: BTreeSet<String> = metric_names(METRICS_SOURCE)
        .into_iter()
        .filter(|n| {
            n.ends_with("_total")
                || n.ends_with("_seconds")
                || n.ends_with("_active")
                || n.ends_with("_info")
        })
        .collect();
    assert!(defined.len() >= 12, "{defined:?}");
    let readme_section =
        &README[README.find("## Metrics").unwrap()..README.find("## Logs").unwrap()];
    let documented: BTreeSet<String> = metric_names(readme_section)
        .into_iter()
        .filter(|n| !n.starts_with("guichet_process_"))
        .collect();
    assert_eq!(
        documented, defined,
        "README metrics table vs src/metrics.rs"
    );

    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).expect("dashboard JSON");
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect();
    assert!(exprs.len() >= 15);
    for name in metric_names(&exprs.join(" ")) {
        assert!(
            defined.contains(&name) || name.starts_with("guichet_process_"),
            "the dashboard uses {name}, which guichet does not export"
        );
    }
}

/// The README's front-proxy recipes are the files the forward-auth tests run, verbatim.
#[test]
fn the_readme_recipes_are_the_tested_files() {
    for (file, text) in [
        (
            "nginx.conf",
            include_str!("../examples/forward-auth/nginx.conf"),
        ),
        (
            "Caddyfile",
            include_str!("../examples/forward-auth/Caddyfile"),
        ),
        (
            "apache.conf",
            include_str!("../examples/forward-auth/apache.conf"),
        ),
    ] {
        assert!(
            README.contains(text),
            "README does not quote examples/forward-auth/{file} as it is"
        );
    }
}
