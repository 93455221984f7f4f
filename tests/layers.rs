//! The import check: the crate's modules form layers without a circle.
//!
//! Every top-level module of `src/` is given a layer below. A module may use
//! (`crate::name`) modules of its own layer or a lower one, never a higher
//! one, and the uses within a layer must not form a cycle. A new module
//! fails this test until it is placed in a layer, so the map stays true.
//!
//! Comments and `#[cfg(test)]` code are not counted: a test may reach
//! across layers, and a doc link is not a dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top to bottom, as ARCHITECTURE.md draws them.
const LAYERS: &[(&str, &[&str])] = &[
    ("entry", &["cli"]),
    ("wiring", &["app", "control_socket"]),
    ("hooks", &["gateway", "ops_listener", "reload", "sweeper"]),
    ("endpoints", &["oauth", "management"]),
    ("state", &["state"]),
    (
        "services",
        &[
            "accounts",
            "admin_auth",
            "config",
            "connection_guard",
            "lockout",
            "log_writer",
            "password",
            "rate_limit",
            "sessions",
            "signing_keys",
            "store",
            "tls",
            "tokens",
            "upstream_pool",
        ],
    ),
    (
        "leaves",
        &[
            "auth",
            "body",
            "client_address",
            "clock",
            "forwarding",
            "log_format",
            "log_json",
            "metrics",
            "owned_headers",
            "redis_connection",
            "request_target",
            "respond",
            "route",
        ],
    ),
];

type Uses = BTreeMap<String, BTreeMap<String, String>>;

#[test]
fn modules_form_layers_without_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let declared = declared_modules(&src.join("lib.rs"));
    let layer_of: BTreeMap<&str, usize> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(rank, (_, modules))| modules.iter().map(move |m| (*m, rank)))
        .collect();
    let unplaced: Vec<&String> = declared
        .iter()
        .filter(|m| !layer_of.contains_key(m.as_str()))
        .collect();
    assert!(
        unplaced.is_empty(),
        "modules in no layer of tests/layers.rs (place them, and in ARCHITECTURE.md): {unplaced:?}"
    );
    let stale: Vec<&&str> = layer_of
        .keys()
        .filter(|m| !declared.contains(**m))
        .collect();
    assert!(
        stale.is_empty(),
        "layers name modules lib.rs does not declare: {stale:?}"
    );

    let mut uses = Uses::new();
    collect_uses(&src, &src, &mut uses);
    let mut upward = Vec::new();
    for (from, targets) in &uses {
        for (to, place) in targets {
            let (Some(&a), Some(&b)) = (layer_of.get(from.as_str()), layer_of.get(to.as_str()))
            else {
                continue;
            };
            if b < a {
                upward.push(format!(
                    "{from} ({}) uses {to} ({}) at {place}",
                    LAYERS[a].0, LAYERS[b].0
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "uses of a higher layer:\n{}",
        upward.join("\n")
    );
    if let Some(cycle) = find_cycle(&uses) {
        panic!("modules use each other in a circle: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_check_sees_a_circle() {
    let mut uses = Uses::new();
    for (from, to) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        uses.entry(from.into())
            .or_default()
            .insert(to.into(), String::new());
    }
    let cycle = find_cycle(&uses).expect("a -> b -> c -> a is a circle");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4);
    uses.get_mut("c").unwrap().remove("a");
    assert_eq!(find_cycle(&uses), None);
}

#[test]
fn uses_are_read_from_code_not_comments_or_tests() {
    let text = "//! see [`crate::doc_only`]\nuse crate::{alpha, beta::Thing};\nfn f() { crate::gamma::call(); }\n// crate::commented\n#[cfg(test)]\nmod tests {\n    use crate::in_test;\n}\n";
    let names: BTreeSet<String> = code_uses(text).into_iter().map(|(n, _)| n).collect();
    let expected: BTreeSet<String> = ["alpha", "beta", "gamma"].map(String::from).into();
    assert_eq!(names, expected);
}

/// `pub mod name;` lines of lib.rs.
fn declared_modules(lib: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(lib).expect("read src/lib.rs");
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("pub mod "))
        .map(|rest| rest.trim_end_matches(';').trim().to_string())
        .collect()
}

fn collect_uses(src: &Path, dir: &Path, uses: &mut Uses) {
    for entry in std::fs::read_dir(dir).expect("read a source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect_uses(src, &path, uses);
            continue;
        }
        let relative = path.strip_prefix(src).unwrap();
        let is_rust = path.extension().is_some_and(|e| e == "rs");
        if !is_rust || path.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let module = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read a source file");
        for (name, line) in code_uses(&text) {
            if name != module {
                let place = format!("src/{}:{line}", relative.display());
                uses.entry(module.clone())
                    .or_default()
                    .entry(name)
                    .or_insert(place);
            }
        }
    }
}

/// The top-level modules a file's code names as `crate::name` or inside
/// `crate::{…}`, with the line of each, up to its `#[cfg(test)] mod`.
fn code_uses(text: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    for (index, line) in lines.iter().enumerate() {
        let test_module_follows = lines
            .get(index + 1)
            .is_some_and(|next| next.starts_with("mod "));
        if line.starts_with("#[cfg(test)]") && test_module_follows {
            break;
        }
        if line.starts_with("//") {
            continue;
        }
        let mut rest: &str = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                for item in group.split(',') {
                    let head = item.trim().split("::").next().unwrap_or_default();
                    if !head.is_empty() && head != "self" {
                        found.push((identifier(head), index + 1));
                    }
                }
            } else {
                found.push((identifier(rest), index + 1));
            }
        }
    }
    found.retain(|(name, _)| !name.is_empty());
    found
}

fn identifier(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// A circle of uses, first module repeated at the end, if there is one.
fn find_cycle(uses: &Uses) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        uses: &Uses,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = path.iter().position(|n| n == node).unwrap();
                let mut cycle = path[start..].to_vec();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_string(), Mark::Open);
        path.push(node.to_string());
        for next in uses.get(node).into_iter().flat_map(|t| t.keys()) {
            if let Some(cycle) = visit(next, uses, marks, path) {
                return Some(cycle);
            }
        }
        path.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in uses.keys() {
        if let Some(cycle) = visit(node, uses, &mut marks, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}
