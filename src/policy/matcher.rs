//! Path patterns compiled into one segment trie, so finding the routes a path matches costs
//! the path's length, not the number of routes: exact paths, segment-aware prefixes (`/static/`
//! matches `/static` and `/static/x`, never `/staticx`) and globs (`*` one segment, `**` any
//! number of them).

use std::collections::HashMap;

/// How a route names its paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pattern {
    Exact(String),
    Prefix(String),
    Glob(String),
}

#[derive(Default)]
struct Node {
    children: HashMap<String, Node>,
    /// `*`: any one segment.
    star: Option<Box<Node>>,
    /// `**`: any number of segments, none included.
    globstar: Option<Box<Node>>,
    /// Routes whose prefix ends here.
    prefix: Vec<usize>,
    /// Routes whose exact path or glob ends here.
    end: Vec<usize>,
}

/// The segments of a path: `/a/b` → `["a", "b"]`, `/a/` → `["a", ""]`, `/` → `[""]`.
fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.strip_prefix('/').unwrap_or(path).split('/')
}

/// Every route's pattern, compiled.
#[derive(Default)]
pub struct Matcher {
    root: Node,
}

impl Matcher {
    /// Adds route `index` with its pattern.
    pub fn insert(&mut self, index: usize, pattern: &Pattern) {
        let (text, is_glob) = match pattern {
            Pattern::Exact(p) => (p.as_str(), false),
            Pattern::Prefix(p) => {
                let trimmed = p.trim_end_matches('/');
                let mut node = &mut self.root;
                if !trimmed.is_empty() {
                    for segment in segments(trimmed) {
                        node = node.children.entry(segment.to_string()).or_default();
                    }
                }
                node.prefix.push(index);
                return;
            }
            Pattern::Glob(p) => (p.as_str(), true),
        };
        let mut node = &mut self.root;
        for segment in segments(text) {
            node = match segment {
                "*" if is_glob => node.star.get_or_insert_with(Default::default),
                "**" if is_glob => node.globstar.get_or_insert_with(Default::default),
                other => node.children.entry(other.to_string()).or_default(),
            };
        }
        node.end.push(index);
    }

    /// The indices of every route whose pattern matches `path`, in any order.
    pub fn matches(&self, path: &str, out: &mut Vec<usize>) {
        let segments: Vec<&str> = segments(path).collect();
        collect(&self.root, &segments, out);
    }
}

fn collect(node: &Node, rest: &[&str], out: &mut Vec<usize>) {
    out.extend_from_slice(&node.prefix);
    if let Some(globstar) = &node.globstar {
        for skip in 0..=rest.len() {
            collect(globstar, &rest[skip..], out);
        }
    }
    let Some((first, tail)) = rest.split_first() else {
        out.extend_from_slice(&node.end);
        return;
    };
    if let Some(child) = node.children.get(*first) {
        collect(child, tail, out);
    }
    if let Some(star) = &node.star {
        collect(star, tail, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(patterns: &[Pattern]) -> Matcher {
        let mut matcher = Matcher::default();
        for (i, pattern) in patterns.iter().enumerate() {
            matcher.insert(i, pattern);
        }
        matcher
    }

    fn matching(matcher: &Matcher, path: &str) -> Vec<usize> {
        let mut out = Vec::new();
        matcher.matches(path, &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }

    #[test]
    fn patterns_match_what_they_say() {
        use Pattern::*;
        let m = matcher(&[
            Prefix("/static/".into()),    // 0
            Exact("/healthz".into()),     // 1
            Glob("/api/*/export".into()), // 2
            Glob("/docs/**".into()),      // 3
            Glob("/a/**/z".into()),       // 4
            Prefix("/".into()),           // 5
            Exact("/".into()),            // 6
        ]);
        let table: &[(&str, &[usize])] = &[
            ("/static", &[0, 5]),
            ("/static/", &[0, 5]),
            ("/static/css/site.css", &[0, 5]),
            ("/staticx", &[5]),
            ("/healthz", &[1, 5]),
            ("/healthz/", &[5]),
            ("/healthzx", &[5]),
            ("/api/42/export", &[2, 5]),
            ("/api/42/export/x", &[5]),
            ("/api/export", &[5]),
            ("/docs", &[3, 5]),
            ("/docs/a/b/c", &[3, 5]),
            ("/a/z", &[4, 5]),
            ("/a/b/c/z", &[4, 5]),
            ("/a/b/c/y", &[5]),
            ("/", &[5, 6]),
        ];
        for (path, expected) in table {
            assert_eq!(matching(&m, path), *expected, "{path}");
        }
    }
}
