//! The administrative command line, on both stores.

use serde_json::Value;

use crate::harness::*;

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// Every user and client command against whichever store `gateway` names.
pub fn exercise_user_and_client_commands(gateway: &Gateway) {
    let id = gateway.create_user("jonas", "pass");

    let duplicate = gateway.run(
        &["user", "add", "jonas", "--password-stdin"],
        Some("other\n"),
    );
    assert!(!duplicate.status.success());
    assert!(
        stderr(&duplicate).contains("already exists"),
        "{}",
        stderr(&duplicate)
    );

    let no_flag = gateway.run(&["user", "add", "eve"], Some("pw\n"));
    assert!(!no_flag.status.success());
    assert!(
        stderr(&no_flag).contains("--password-stdin"),
        "{}",
        stderr(&no_flag)
    );

    let empty = gateway.run(&["user", "add", "eve", "--password-stdin"], Some("\n"));
    assert!(!empty.status.success());
    assert!(stderr(&empty).contains("empty"), "{}", stderr(&empty));

    let listed = gateway.run(&["user", "list", "--json"], None);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let users: Value = serde_json::from_str(&stdout(&listed)).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 1);
    assert_eq!(users[0]["id"], id.as_str());
    assert_eq!(users[0]["username"], "jonas");
    assert!(!stdout(&listed).contains("$2"), "hashes are never shown");

    let passwd = gateway.run(
        &["user", "passwd", "jonas", "--password-stdin"],
        Some("new-pass\n"),
    );
    assert!(passwd.status.success(), "{}", stderr(&passwd));
    let passwd_missing = gateway.run(
        &["user", "passwd", "nobody", "--password-stdin"],
        Some("x\n"),
    );
    assert!(!passwd_missing.status.success());

    let client_id = gateway.create_client("ios app");
    let clients = gateway.run(&["client", "list", "--json"], None);
    let clients: Value = serde_json::from_str(&stdout(&clients)).unwrap();
    assert_eq!(clients[0]["client_id"], client_id.as_str());
    assert_eq!(clients[0]["type"], "public");
    let plain = gateway.run(&["client", "list"], None);
    assert!(stdout(&plain).contains(&client_id));

    assert!(gateway
        .run(&["client", "remove", &client_id], None)
        .status
        .success());
    let again = gateway.run(&["client", "remove", &client_id], None);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("not found"), "{}", stderr(&again));

    assert!(gateway
        .run(&["user", "remove", "jonas"], None)
        .status
        .success());
    let gone = gateway.run(&["user", "list", "--json"], None);
    assert_eq!(stdout(&gone).trim(), "[]");
    assert!(!gateway
        .run(&["user", "remove", "jonas"], None)
        .status
        .success());
}

#[test]
fn cli_manages_users_and_clients_in_the_embedded_store() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let upstream = runtime.block_on(Upstream::start());
    let gateway = Gateway::prepare(&GatewayConfig::new(&upstream));
    exercise_user_and_client_commands(&gateway);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_writes_are_seen_by_a_running_gateway() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream));
    let session = signed_in(&gateway).await;
    let passwd = gateway.run(
        &["user", "passwd", "jonas", "--password-stdin"],
        Some("changed\n"),
    );
    assert!(passwd.status.success());
    let old = gateway
        .password_grant(&session.client_id, "jonas", "pass")
        .await;
    assert_eq!(old.status(), 400);
    gateway.login(&session.client_id, "jonas", "changed").await;
}

#[test]
fn check_config_lists_every_problem_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "upstreams:\n  app: {servers: [\"127.0.0.1:3000\"]}\nroutes:\n  - {path_prefix: /, upstream: app}\n").unwrap();
    let output = run_binary(&good, &[], &["check-config", good.to_str().unwrap()], None);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("ok"));

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "upstreams:\n  app: {servers: []}\nroutes:\n  - {path_prefix: api, upstream: nope}\noauth:\n  bcrypt_cost: 40\n",
    )
    .unwrap();
    let output = run_binary(&bad, &[], &["check-config", bad.to_str().unwrap()], None);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    for path in [
        "upstreams.app.servers",
        "routes[0].path_prefix",
        "routes[0].upstream",
        "oauth.bcrypt_cost",
    ] {
        assert!(message.contains(path), "{path} missing in:\n{message}");
    }

    let typo = dir.path().join("typo.yaml");
    std::fs::write(&typo, "upstream:\n  app: {servers: [\"127.0.0.1:3000\"]}\n").unwrap();
    let output = run_binary(&typo, &[], &["check-config", typo.to_str().unwrap()], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("unknown field `upstream`"),
        "{}",
        stderr(&output)
    );

    // serve refuses the same file with the same report.
    let output = run_binary(&bad, &[], &["serve"], None);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("routes[0].upstream"));
}

/// Every configuration the project ships is one `check-config` accepts:
/// gateway.yaml as it is, and the container and Kubernetes files without
/// resolving `app:8000`, which only exists on their network.
#[test]
fn every_shipped_configuration_passes_check_config() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let configmap: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(root.join("deploy/kubernetes/configmap.yaml")).unwrap(),
    )
    .unwrap();
    let embedded = configmap["data"]["gateway.yaml"]
        .as_str()
        .expect("the ConfigMap embeds gateway.yaml under data");
    let kubernetes = dir.path().join("kubernetes-gateway.yaml");
    std::fs::write(&kubernetes, embedded).unwrap();
    let mut shipped = vec![
        (root.join("gateway.yaml"), false),
        (root.join("deploy/gateway.container.yaml"), true),
        (kubernetes, true),
    ];
    // The examples name servers of their own network: not resolved here.
    let mut examples: Vec<_> = std::fs::read_dir(root.join("examples"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    examples.sort();
    assert!(!examples.is_empty(), "examples/*.yaml");
    shipped.extend(examples.into_iter().map(|example| (example, true)));
    for (file, no_resolve) in &shipped {
        let mut args = vec!["check-config", file.to_str().unwrap()];
        if *no_resolve {
            args.push("--no-resolve");
        }
        let output = run_binary(file, &[], &args, None);
        assert!(
            output.status.success(),
            "{}: {}",
            file.display(),
            stderr(&output)
        );
        assert!(stdout(&output).ends_with(": ok\n"), "{}", stdout(&output));
    }

    // The check without resolving still refuses what is not `host:port`,
    // and resolving is the default: `app` does not resolve here.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "upstreams:\n  app: {servers: [\"app\", \"app:http\", \"-app:80\"]}\nroutes:\n  - {path_prefix: /, upstream: app}\n").unwrap();
    let output = run_binary(&bad, &[], &["check-config", "--no-resolve"], None);
    assert_eq!(output.status.code(), Some(1));
    for server in 0..3 {
        let path = format!("upstreams.app.servers[{server}]");
        assert!(
            stderr(&output).contains(&path),
            "{path}: {}",
            stderr(&output)
        );
    }
    let output = run_binary(&shipped[1].0, &[], &["check-config"], None);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(stderr(&output).contains("upstreams.app.servers[0]"));
}

on_both_backends!(the_cli_reaches_the_running_gateway_and_revokes_at_once);
/// With the default memory tokens, access tokens live in the gateway's
/// memory. The CLI reaches the running gateway through its control socket,
/// so a password change, a disable or a removal revokes them at once;
/// client changes too. Without a running gateway it works on the store.
async fn the_cli_reaches_the_running_gateway_and_revokes_at_once(backends: Backends) {
    use std::os::unix::fs::PermissionsExt;

    let upstream = Upstream::start().await;
    let mut gateway = Gateway::start(&backends.config(&upstream));
    let socket = gateway.dir.path().join("data/control.sock");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let session = signed_in(&gateway).await;
    let token = session.tokens.access_token.clone();
    assert_eq!(gateway.get_status("/x", &token).await, 200);

    let changed = gateway.run(
        &["user", "passwd", "jonas", "--password-stdin"],
        Some("new-pass\n"),
    );
    assert!(changed.status.success(), "{}", stderr(&changed));
    assert!(!stderr(&changed).contains("note:"), "{}", stderr(&changed));
    assert_eq!(
        gateway.get_status("/x", &token).await,
        401,
        "the old token outlived the new password"
    );

    let token = gateway
        .login(&session.client_id, "jonas", "new-pass")
        .await
        .access_token;
    assert!(gateway
        .run(&["user", "disable", "jonas"], None)
        .status
        .success());
    assert_eq!(gateway.get_status("/x", &token).await, 401);
    assert!(gateway
        .run(&["user", "enable", "jonas"], None)
        .status
        .success());
    let token = gateway
        .login(&session.client_id, "jonas", "new-pass")
        .await
        .access_token;
    assert!(gateway
        .run(&["user", "remove", "jonas"], None)
        .status
        .success());
    assert_eq!(gateway.get_status("/x", &token).await, 401);

    // A client's own tokens, on disable and on removal.
    let (machine, secret) = gateway.create_confidential_client("batch", &[]);
    let machine_token = || async {
        let response = gateway
            .post_form(
                "/oauth/token",
                Some((&machine, &secret)),
                &[("grant_type", "client_credentials")],
            )
            .await;
        json(response).await["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let token = machine_token().await;
    assert_eq!(gateway.get_status("/x", &token).await, 200);
    assert!(gateway
        .run(&["client", "update", &machine, "--disable"], None)
        .status
        .success());
    assert_eq!(gateway.get_status("/x", &token).await, 401);
    assert!(gateway
        .run(&["client", "update", &machine, "--enable"], None)
        .status
        .success());
    let token = machine_token().await;
    assert!(gateway
        .run(&["client", "remove", &machine], None)
        .status
        .success());
    assert_eq!(gateway.get_status("/x", &token).await, 401);

    // The gateway did the work, and audited it.
    let logs = gateway.logs();
    assert!(
        logs.lines().any(|l| l.contains("portcullis::audit")
            && l.contains("control-socket")
            && l.contains("user.password_reset")),
        "{logs}"
    );
    // Bad input through the socket is the API's clear error.
    let duplicate = gateway.run(&["client", "update", "no-such-client", "--disable"], None);
    assert!(!duplicate.status.success());
    assert!(
        stderr(&duplicate).contains("not found"),
        "{}",
        stderr(&duplicate)
    );

    // Once the gateway is gone, the CLI works on the store directly, even
    // with the socket file left behind.
    let mut child = gateway.signal(libc::SIGKILL);
    child.wait().unwrap();
    let listed = gateway.run(&["user", "list", "--json"], None);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let added = gateway.run(&["user", "add", "ana", "--password-stdin"], Some("pass\n"));
    assert!(added.status.success(), "{}", stderr(&added));
}
