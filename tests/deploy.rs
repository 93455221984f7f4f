//! deploy/portcullis.service says what the gateway really does: its
//! ExecStart parses with the CLI's own arguments, a reload sends SIGHUP to
//! the main process, the stop timeout outlasts the default graceful
//! shutdown, the one writable folder is the shipped configuration's
//! `data_dir`, and systemd-analyze finds nothing wrong with it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use portcullis::cli::{Cli, Command as CliCommand};

const UNIT: &str = "deploy/portcullis.service";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `[Section]` → key → every value given, in order.
fn parse_unit(text: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut sections: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not `key=value`: {line}"));
        sections
            .entry(section.clone())
            .or_default()
            .entry(key.trim().to_string())
            .or_default()
            .push(value.trim().to_string());
    }
    sections
}

struct Unit(BTreeMap<String, BTreeMap<String, Vec<String>>>);

impl Unit {
    fn load() -> Unit {
        Unit(parse_unit(
            &std::fs::read_to_string(root().join(UNIT)).unwrap(),
        ))
    }

    /// The one value of `[Service] key`.
    fn service(&self, key: &str) -> &str {
        let values = self.0["Service"]
            .get(key)
            .unwrap_or_else(|| panic!("{UNIT} has no {key}="));
        assert_eq!(values.len(), 1, "{key}= is given once");
        &values[0]
    }
}

#[test]
fn exec_start_uses_arguments_the_cli_accepts() {
    let unit = Unit::load();
    let argv: Vec<&str> = unit.service("ExecStart").split_whitespace().collect();
    assert_eq!(argv[0], "/usr/local/bin/portcullis");
    let cli = Cli::try_parse_from(&argv)
        .unwrap_or_else(|error| panic!("ExecStart does not parse: {error}"));
    assert_eq!(cli.config, PathBuf::from("/etc/portcullis/gateway.yaml"));
    assert!(
        matches!(cli.command, Some(CliCommand::Serve { upgrade: false })),
        "{:?}",
        cli.command
    );
}

#[test]
fn reload_is_sighup_and_stop_outlasts_the_graceful_shutdown() {
    let unit = Unit::load();
    assert_eq!(unit.service("ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(unit.service("KillSignal"), "SIGTERM");
    assert_eq!(unit.service("Restart"), "on-failure");
    assert!(unit.service("LimitNOFILE").parse::<u64>().unwrap() >= 4096);
    // The defaults of the checked configuration, not numbers copied here.
    let minimal = "upstreams:\n  app: {servers: [\"127.0.0.1:3000\"]}\nroutes:\n  - {path_prefix: /, upstream: app}\n";
    let config =
        portcullis::config::parse(minimal, Path::new("/etc/portcullis"), &BTreeMap::new()).unwrap();
    let shutdown = config.server.grace_period_seconds + config.server.shutdown_timeout_seconds;
    let stop: u64 = unit.service("TimeoutStopSec").parse().unwrap();
    assert!(stop > shutdown, "TimeoutStopSec={stop} within {shutdown} s");
}

#[test]
fn the_only_writable_folder_is_the_shipped_data_dir() {
    let unit = Unit::load();
    for (key, value) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
        ("CapabilityBoundingSet", ""),
    ] {
        assert_eq!(unit.service(key), value, "{key}");
    }
    assert!(!["", "root", "0"].contains(&unit.service("User")));
    let shipped = std::fs::read_to_string(root().join("deploy/gateway.container.yaml")).unwrap();
    let config =
        portcullis::config::parse(&shipped, Path::new("/etc/portcullis"), &BTreeMap::new())
            .unwrap();
    let data_dir = config.data_dir.display().to_string();
    assert_eq!(unit.service("ReadWritePaths"), data_dir);
    assert_eq!(unit.service("WorkingDirectory"), data_dir);
    // systemd creates /var/lib/<StateDirectory> for the service's user.
    let state = format!("/var/lib/{}", unit.service("StateDirectory"));
    assert_eq!(state, data_dir);
}

/// Any warning counts: systemd-analyze exits 0 on an unknown key.
#[test]
fn systemd_analyze_verify_finds_nothing() {
    let folder = tempfile::tempdir().unwrap();
    // verify checks that ExecStart's program exists: the one just built.
    let text = std::fs::read_to_string(root().join(UNIT)).unwrap().replace(
        "/usr/local/bin/portcullis",
        env!("CARGO_BIN_EXE_portcullis"),
    );
    let unit = folder.path().join("portcullis.service");
    std::fs::write(&unit, text).unwrap();
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run systemd-analyze ({error}): install systemd (scripts/test does)")
        });
    let said = String::from_utf8_lossy(&output.stderr).to_string()
        + &String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{said}");
    assert_eq!(said.trim(), "", "systemd-analyze verify warned");
}
