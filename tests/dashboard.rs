//! The Grafana dashboard in deploy/grafana/ asks only for metrics the
//! gateway exports: every `portcullis_*` name in its queries is one that
//! src/metrics.rs registers (a histogram's `_bucket`, `_sum` and `_count`
//! series count as its own). A renamed metric fails here, not on a
//! dashboard that silently goes blank.

use std::collections::BTreeSet;
use std::path::Path;

fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("portcullis_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        names.insert(name);
    }
    names
}

#[test]
fn every_dashboard_query_names_an_exported_metric() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("deploy/grafana/portcullis.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let registered = metric_names(&std::fs::read_to_string(root.join("src/metrics.rs")).unwrap());
    let mut queried = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            queried.extend(metric_names(target["expr"].as_str().expect("an expr")));
        }
    }
    assert!(queried.len() >= 8, "{queried:?}");
    let unknown: Vec<&String> = queried
        .iter()
        .filter(|name| {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name);
            !registered.contains(*name) && !registered.contains(base)
        })
        .collect();
    assert!(
        unknown.is_empty(),
        "the dashboard queries metrics nobody exports: {unknown:?}"
    );
}

#[test]
fn the_check_sees_a_name_nobody_exports() {
    let names = metric_names("rate(portcullis_nope_total[5m]) / portcullis_requests_total");
    assert_eq!(names.len(), 2);
    assert!(names.contains("portcullis_nope_total"));
}
