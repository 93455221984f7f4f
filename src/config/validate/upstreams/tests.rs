use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::config::{
    parse, test_pki, Config, ConfigErrors, HashOn, HealthCheck, PassivePolicy, Selection,
    ServerAddress, UpstreamServer, WithoutResolving,
};

/// A file whose only upstream, `app`, is `body` (a YAML flow map's inside).
fn with_upstream(body: &str) -> Result<Config, ConfigErrors> {
    with_upstream_in(Path::new("."), body)
}

/// The same, for a configuration file in `folder`.
fn with_upstream_in(folder: &Path, body: &str) -> Result<Config, ConfigErrors> {
    let text =
        format!("upstreams:\n  app: {{{body}}}\nroutes:\n  - {{path_prefix: /, upstream: app}}\n");
    parse(&text, folder, &BTreeMap::new())
}

fn problem_paths(body: &str) -> Vec<String> {
    problem_paths_in(Path::new("."), body)
}

fn problem_paths_in(folder: &Path, body: &str) -> Vec<String> {
    match with_upstream_in(folder, body) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.0.into_iter().map(|p| p.path).collect(),
    }
}

fn server(address: &str, weight: u32) -> UpstreamServer {
    UpstreamServer {
        address: ServerAddress::parse(address).unwrap(),
        weight,
    }
}

#[test]
fn both_server_forms_parse_and_mix() {
    let config = with_upstream(
        "servers: [\"127.0.0.1:3001\", {address: \"app.internal:8000\", weight: 3}, {address: \"[::1]:3002\"}]",
    )
    .unwrap();
    let upstream = &config.upstreams[0];
    assert_eq!(
        upstream.servers,
        [
            server("127.0.0.1:3001", 1),
            server("app.internal:8000", 3),
            server("[::1]:3002", 1),
        ]
    );
    assert_eq!(
        upstream.servers[1].address,
        ServerAddress::Name {
            host: "app.internal".into(),
            port: 8000
        }
    );
    // The defaults of everything else.
    assert_eq!(upstream.selection, Selection::RoundRobin);
    assert_eq!(upstream.health_check, None);
    assert_eq!(
        upstream.passive,
        PassivePolicy {
            failures: 3,
            eject: Duration::from_secs(5)
        }
    );
    assert_eq!(upstream.retries, 1);
    assert_eq!(upstream.resolve_interval, Duration::from_secs(30));
    assert_eq!(upstream.tls, None);
}

#[test]
fn bad_servers_are_reported_by_path() {
    let cases: &[(&str, &[&str])] = &[
        (
            "servers: [{address: \"h:1\", weight: 0}]",
            &["upstreams.app.servers[0].weight"],
        ),
        (
            "servers: [{address: \"h:1\", weight: -1}]",
            &["upstreams.app.servers[0].weight"],
        ),
        (
            "servers: [{address: \"h:1\", weight: 101}]",
            &["upstreams.app.servers[0].weight"],
        ),
        ("servers: [\"h:1\", {address: \"h:2\", weight: 100}]", &[]),
        ("servers: [\"h\"]", &["upstreams.app.servers[0]"]),
        ("servers: [\"h:0\"]", &["upstreams.app.servers[0]"]),
        ("servers: [\"-h:80\"]", &["upstreams.app.servers[0]"]),
        ("servers: [\"h:1\", \"h:1\"]", &["upstreams.app.servers[1]"]),
        ("servers: []", &["upstreams.app.servers"]),
    ];
    for (body, expected) in cases {
        assert_eq!(problem_paths(body), *expected, "{body}");
    }
}

#[test]
fn malformed_server_entries_are_yaml_errors_naming_the_key() {
    let cases = [
        (
            "servers: [{address: \"h:1\", wieght: 3}]",
            "unknown field `wieght`",
        ),
        ("servers: [{weight: 3}]", "missing field `address`"),
        (
            "servers: [{address: \"h:1\", weight: heavy}]",
            "invalid type",
        ),
        ("servers: [3]", "a \"host:port\" string or a map"),
    ];
    for (body, expected) in cases {
        let message = with_upstream(body).unwrap_err().to_string();
        assert!(message.contains(expected), "{body}: {message}");
        assert!(message.contains("line"), "{body}: {message}");
    }
}

#[test]
fn selections_and_hash_keys() {
    let x_tenant = http::HeaderName::from_static("x-tenant");
    let cases: &[(&str, Option<Selection>)] = &[
        ("", Some(Selection::RoundRobin)),
        ("selection: round_robin", Some(Selection::RoundRobin)),
        (
            "selection: least_connections",
            Some(Selection::LeastConnections),
        ),
        (
            "selection: consistent_hash",
            Some(Selection::ConsistentHash(HashOn::ClientAddress)),
        ),
        (
            "selection: consistent_hash, hash_on: client_address",
            Some(Selection::ConsistentHash(HashOn::ClientAddress)),
        ),
        (
            "selection: consistent_hash, hash_on: \"header:X-Tenant\"",
            Some(Selection::ConsistentHash(HashOn::Header(x_tenant))),
        ),
        (
            "selection: consistent_hash, hash_on: \"header:bad name\"",
            None,
        ),
        ("selection: consistent_hash, hash_on: cookie", None),
        ("selection: round_robin, hash_on: client_address", None),
        ("selection: fastest", None),
    ];
    for (extra, expected) in cases {
        let body = format!("servers: [\"h:1\"], {extra}");
        let got = with_upstream(&body)
            .ok()
            .map(|c| c.upstreams[0].selection.clone());
        assert_eq!(&got, expected, "{extra}");
    }
    let message = with_upstream("servers: [\"h:1\"], selection: fastest")
        .unwrap_err()
        .to_string();
    assert!(message.contains("unknown variant `fastest`"), "{message}");
    assert!(message.contains("least_connections"), "{message}");
}

#[test]
fn health_checks_passive_ejection_and_limits() {
    let config = with_upstream(
        "servers: [\"h:1\"], health_check: {path: /healthz, interval_ms: 1000, timeout_ms: 500, healthy_after: 2, unhealthy_after: 3, expect_status: 204}, passive: {failures: 5, eject_ms: 100}, retries: 0, resolve_interval_seconds: 5",
    )
    .unwrap();
    let upstream = &config.upstreams[0];
    assert_eq!(
        upstream.health_check,
        Some(HealthCheck {
            path: "/healthz".into(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            healthy_after: 2,
            unhealthy_after: 3,
            expect_status: 204,
        })
    );
    assert_eq!(upstream.passive.failures, 5);
    assert_eq!(upstream.retries, 0);
    assert_eq!(upstream.resolve_interval, Duration::from_secs(5));

    let cases: &[(&str, &[&str])] = &[
        ("health_check: {path: /h}", &[]),
        (
            "health_check: {path: healthz}",
            &["upstreams.app.health_check.path"],
        ),
        (
            "health_check: {path: \"/a b\"}",
            &["upstreams.app.health_check.path"],
        ),
        (
            "health_check: {path: /h, interval_ms: 100, timeout_ms: 200}",
            &["upstreams.app.health_check.timeout_ms"],
        ),
        (
            "health_check: {path: /h, healthy_after: 0}",
            &["upstreams.app.health_check.healthy_after"],
        ),
        (
            "health_check: {path: /h, expect_status: 99}",
            &["upstreams.app.health_check.expect_status"],
        ),
        ("passive: {failures: 0, eject_ms: 0}", &[]),
        (
            "passive: {failures: 2, eject_ms: 0}",
            &["upstreams.app.passive.eject_ms"],
        ),
        ("retries: 6", &["upstreams.app.retries"]),
        (
            "resolve_interval_seconds: 0",
            &["upstreams.app.resolve_interval_seconds"],
        ),
    ];
    for (extra, expected) in cases {
        assert_eq!(
            problem_paths(&format!("servers: [\"h:1\"], {extra}")),
            *expected,
            "{extra}"
        );
    }
}

#[test]
fn names_are_resolved_by_check_config_only() {
    // Validation never looks a name up: this one resolves nowhere.
    let config = with_upstream("servers: [\"127.0.0.1:1\", \"portcullis-test.invalid:80\"]")
        .expect("an unresolvable name is no configuration error");
    assert!(config.check_names_resolve(&WithoutResolving).is_ok());
    let errors = config
        .check_names_resolve(&BTreeMap::<&str, &str>::new())
        .unwrap_err();
    assert_eq!(errors.0.len(), 1, "{errors}");
    assert_eq!(errors.0[0].path, "upstreams.app.servers[1]");
    assert!(errors.0[0].message.contains("--no-resolve"), "{errors}");
}

#[test]
fn tls_names_are_never_empty_and_tls_keys_need_tls() {
    let cases: &[(&str, &[&str])] = &[
        ("tls: true", &[]),
        ("tls: true, sni: api.internal", &[]),
        ("tls: true, sni: 10.0.0.1", &[]),
        ("tls: true, sni: \"\"", &["upstreams.app.sni"]),
        ("tls: true, sni: \" \"", &["upstreams.app.sni"]),
        ("tls: true, sni: \"not a name\"", &["upstreams.app.sni"]),
        ("sni: api.internal", &["upstreams.app.sni"]),
        ("ca_file: ca.pem", &["upstreams.app.ca_file"]),
        (
            "client_certificate: {certificate_file: c.pem, private_key_file: c.key}",
            &["upstreams.app.client_certificate"],
        ),
        (
            "tls: false, sni: a, ca_file: ca.pem",
            &["upstreams.app.sni", "upstreams.app.ca_file"],
        ),
    ];
    for (extra, expected) in cases {
        let body = format!("servers: [\"h:1\"], {extra}");
        assert_eq!(problem_paths(&body), *expected, "{extra}");
    }
    let config =
        with_upstream("servers: [\"10.0.0.1:443\", \"app.internal:443\"], tls: true").unwrap();
    let tls = config.upstreams[0].tls.as_ref().unwrap();
    let servers = &config.upstreams[0].servers;
    assert_eq!(tls.sni, None);
    assert_eq!(tls.sni_for(&servers[0].address), "10.0.0.1");
    assert_eq!(tls.sni_for(&servers[1].address), "app.internal");
}

#[test]
fn tls_files_are_read_and_checked_at_validation() {
    let folder = tempfile::tempdir().unwrap();
    test_pki::write_files(folder.path());
    let absolute = folder.path().join("ca.pem");
    let client = |certificate: &str, key: &str| {
        format!("client_certificate: {{certificate_file: {certificate}, private_key_file: {key}}}")
    };
    const CA: &str = "upstreams.app.ca_file";
    const CERTIFICATE: &str = "upstreams.app.client_certificate.certificate_file";
    const KEY: &str = "upstreams.app.client_certificate.private_key_file";
    let cases: Vec<(String, &[&str])> = vec![
        ("ca_file: ca.pem".into(), &[]),
        (format!("ca_file: {}", absolute.display()), &[]),
        ("ca_file: missing.pem".into(), &[CA]),
        ("ca_file: junk.pem".into(), &[CA]),
        ("ca_file: client.key".into(), &[CA]),
        ("ca_file: bad-der.pem".into(), &[CA]),
        (client("client.pem", "client.key"), &[]),
        (client("client.pem", "other.key"), &[KEY]),
        (client("client.pem", "client.pem"), &[KEY]),
        (client("client.key", "client.key"), &[CERTIFICATE]),
        (client("bad-der.pem", "client.key"), &[CERTIFICATE]),
        (client("missing.pem", "missing.key"), &[CERTIFICATE, KEY]),
        (client("junk.pem", "junk.pem"), &[CERTIFICATE, KEY]),
    ];
    for (extra, expected) in &cases {
        let body = format!("servers: [\"h:1\"], tls: true, {extra}");
        assert_eq!(problem_paths_in(folder.path(), &body), *expected, "{extra}");
    }
    let message = with_upstream_in(
        folder.path(),
        &format!(
            "servers: [\"h:1\"], tls: true, {}",
            client("client.pem", "other.key")
        ),
    )
    .unwrap_err()
    .to_string();
    assert!(
        message.contains("is not the key of the certificate"),
        "{message}"
    );
    let message = with_upstream_in(
        folder.path(),
        "servers: [\"h:1\"], tls: true, client_certificate: {certificate_file: client.pem}",
    )
    .unwrap_err()
    .to_string();
    assert!(
        message.contains("missing field `private_key_file`"),
        "{message}"
    );
}

#[test]
fn loaded_tls_settings_compare_by_content_and_never_show_the_key() {
    let folder = tempfile::tempdir().unwrap();
    test_pki::write_files(folder.path());
    let body = "servers: [\"h:1\"], tls: true, ca_file: ca.pem, client_certificate: {certificate_file: client.pem, private_key_file: client.key}";
    let first = with_upstream_in(folder.path(), body).unwrap().upstreams;
    let tls = first[0].tls.as_ref().unwrap();
    assert_eq!(tls.ca.as_ref().unwrap().path, folder.path().join("ca.pem"));
    assert_eq!(tls.ca.as_ref().unwrap().certificates.len(), 1);
    let client = tls.client_certificate.as_ref().unwrap();
    assert_eq!(client.chain.certificates.len(), 1);
    assert_eq!(client.private_key_path, folder.path().join("client.key"));

    let again = with_upstream_in(folder.path(), body).unwrap().upstreams;
    assert_eq!(first, again, "the same files give equal upstreams");
    let other_ca = std::fs::read(folder.path().join("other-ca.pem")).unwrap();
    std::fs::write(folder.path().join("ca.pem"), other_ca).unwrap();
    let changed = with_upstream_in(folder.path(), body).unwrap().upstreams;
    assert_ne!(first, changed, "a CA file with new content is a change");

    // No line of the key's PEM body shows in the configuration's Debug.
    let key = std::fs::read_to_string(folder.path().join("client.key")).unwrap();
    let shown = format!("{first:?}");
    for line in key.lines().filter(|line| !line.starts_with("-----")) {
        assert!(!shown.contains(line), "{shown}");
    }
    assert!(shown.contains("client.key"), "{shown}");
}
