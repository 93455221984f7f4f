//! The token lifecycle under a security review: revocation that wins over
//! work in flight, refreshes bounded by the client's current scopes and an
//! absolute lifetime, bounded session records, per-client rate limits,
//! bounded memory, and a stalled MongoDB that answers 503 in time. Flows
//! that touch the stores run on both backends.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::*;

const ADMIN: (&str, &str) = ("admin", "admin-password-1");

/// A public client with scopes, made with the CLI.
fn client_with_scopes(gateway: &Gateway, name: &str, scopes: &str) -> String {
    let output = gateway.run(&["client", "add", name, "--scopes", scopes, "--json"], None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let created: Value = serde_json::from_slice(&output.stdout).unwrap();
    created["client_id"].as_str().unwrap().to_string()
}

async fn refreshed(gateway: &Gateway, client_id: &str, refresh_token: &str) -> Value {
    let response = gateway.refresh(client_id, refresh_token).await;
    assert_eq!(response.status(), 200);
    json(response).await
}

on_both_backends!(revoking_a_rotated_refresh_token_ends_the_family);
/// RFC 7009 names the token to revoke; a refresh token the session already
/// rotated away is still of that family, and revoking it ends the family,
/// as presenting it at the token endpoint does.
async fn revoking_a_rotated_refresh_token_ends_the_family(backends: Backends) {
    let name = backends.name();
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&backends.config(&upstream));
    let session = signed_in(&gateway).await;
    let next = refreshed(&gateway, &session.client_id, &session.tokens.refresh_token).await;
    let new_access = next["access_token"].as_str().unwrap();
    assert_eq!(gateway.get_status("/x", new_access).await, 200, "{name}");

    let response = gateway
        .revoke(&session.client_id, &session.tokens.refresh_token)
        .await;
    assert_eq!(response.status(), 200, "{name}");
    assert_eq!(gateway.get_status("/x", new_access).await, 401, "{name}");
    let again = gateway
        .refresh(&session.client_id, next["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(again.status(), 400, "{name}");
    assert_eq!(json(again).await["error"], "invalid_grant", "{name}");
}

on_both_backends!(a_refresh_is_capped_by_the_clients_current_scopes);
async fn a_refresh_is_capped_by_the_clients_current_scopes(backends: Backends) {
    let name = backends.name();
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&backends.config(&upstream));
    let client_id = client_with_scopes(&gateway, "reports", "read,write");
    gateway.create_user("jonas", "pass");
    let response = gateway
        .token_request(&[
            ("grant_type", "password"),
            ("client_id", &client_id),
            ("username", "jonas"),
            ("password", "pass"),
            ("scope", "read write"),
        ])
        .await;
    let signed = json(response).await;
    assert_eq!(signed["scope"], "read write", "{name}");

    let output = gateway.run(&["client", "update", &client_id, "--scopes", "read"], None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let next = refreshed(
        &gateway,
        &client_id,
        signed["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(next["scope"], "read", "{name}");
    let access = next["access_token"].as_str().unwrap();
    assert_eq!(gateway.get_status("/x", access).await, 200, "{name}");
    assert_eq!(
        upstream.last().header_values("x-scope"),
        vec!["read"],
        "{name}"
    );
}

on_both_backends!(a_session_keeps_only_its_newest_access_tokens);
/// Each refresh adds an access token to the session; past a few, the
/// oldest are revoked, so the record stays small however long it lives.
async fn a_session_keeps_only_its_newest_access_tokens(backends: Backends) {
    let name = backends.name();
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&backends.config(&upstream));
    let session = signed_in(&gateway).await;
    let mut access = vec![session.tokens.access_token.clone()];
    let mut refresh = session.tokens.refresh_token.clone();
    for _ in 0..6 {
        let next = refreshed(&gateway, &session.client_id, &refresh).await;
        access.push(next["access_token"].as_str().unwrap().to_string());
        refresh = next["refresh_token"].as_str().unwrap().to_string();
    }
    let mut statuses = Vec::new();
    for token in &access {
        statuses.push(gateway.get_status("/x", token).await);
    }
    assert_eq!(statuses, [401, 401, 401, 200, 200, 200, 200], "{name}");
}

on_both_backends!(refresh_and_client_credentials_grants_are_rate_limited);
async fn refresh_and_client_credentials_grants_are_rate_limited(backends: Backends) {
    let name = backends.name();
    let upstream = Upstream::start().await;
    let config = backends
        .config(&upstream)
        .oauth("  rate_limit: {refresh_token_per_minute: 3, client_credentials_per_minute: 2}\n");
    let gateway = Gateway::start(&config);
    let session = signed_in(&gateway).await;
    // Made-up tokens are refused but not counted: a public client_id is no
    // secret, and anyone could otherwise spend its users' limit.
    for _ in 0..5 {
        let forged = gateway.refresh(&session.client_id, "made-up-token").await;
        assert_eq!(forged.status(), 400, "{name}");
    }
    let mut refresh = session.tokens.refresh_token.clone();
    for _ in 0..3 {
        refresh = refreshed(&gateway, &session.client_id, &refresh).await["refresh_token"]
            .as_str()
            .unwrap()
            .to_string();
    }
    let limited = gateway.refresh(&session.client_id, &refresh).await;
    assert_eq!(limited.status(), 429, "{name}");
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{name}: {wait}");
    let body = json(limited).await;
    assert_eq!(body["error"], "temporarily_unavailable", "{name}");
    // The refused refresh did not spend the token: it still works later,
    // and it was not taken for reuse either.
    let (machine, secret) = gateway.create_confidential_client("batch", &[]);
    let grant = [("grant_type", "client_credentials")];
    for _ in 0..2 {
        let response = gateway
            .post_form("/oauth/token", Some((&machine, &secret)), &grant)
            .await;
        assert_eq!(response.status(), 200, "{name}");
    }
    let response = gateway
        .post_form("/oauth/token", Some((&machine, &secret)), &grant)
        .await;
    assert_eq!(response.status(), 429, "{name}");
    assert!(
        gateway.metrics().await.contains("reason=\"rate_limited\""),
        "{name}"
    );
    // Another client's limit is its own.
    let other = signed_in_as(&gateway, "other app", "ana").await;
    refreshed(&gateway, &other.0, &other.1).await;
}

/// Signs `username` in through a new public client: (client_id, refresh).
async fn signed_in_as(gateway: &Gateway, client: &str, username: &str) -> (String, String) {
    gateway.create_user(username, "pass");
    let client_id = gateway.create_client(client);
    let tokens = gateway.login(&client_id, username, "pass").await;
    (client_id, tokens.refresh_token)
}

on_both_backends!(a_session_ends_at_its_absolute_lifetime_however_often_it_refreshes);
async fn a_session_ends_at_its_absolute_lifetime_however_often_it_refreshes(backends: Backends) {
    let upstream = Upstream::start().await;
    let config = backends
        .config(&upstream)
        .oauth("  session_max_lifetime_seconds: 2\n");
    let gateway = Gateway::start(&config);
    let session = signed_in(&gateway).await;
    let started = Instant::now();
    let mut refresh = session.tokens.refresh_token.clone();
    let mut last = Value::Null;
    while started.elapsed() < Duration::from_millis(1200) {
        last = refreshed(&gateway, &session.client_id, &refresh).await;
        refresh = last["refresh_token"].as_str().unwrap().to_string();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(last.is_object());
    tokio::time::sleep(Duration::from_millis(2100).saturating_sub(started.elapsed())).await;
    let ended = gateway.refresh(&session.client_id, &refresh).await;
    assert_eq!(ended.status(), 400);
    assert_eq!(json(ended).await["error"], "invalid_grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_token_store_is_bounded_and_refuses_rather_than_forgets() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream).tokens("  memory_max_tokens: 3\n"));
    let session = signed_in(&gateway).await;
    let mut held = vec![session.tokens.access_token.clone()];
    for _ in 0..2 {
        held.push(
            gateway
                .login(&session.client_id, "jonas", "pass")
                .await
                .access_token,
        );
    }
    let refused = gateway
        .password_grant(&session.client_id, "jonas", "pass")
        .await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    for token in &held {
        assert_eq!(gateway.get_status("/x", token).await, 200);
    }
    // Revoking one makes room.
    let response = gateway.revoke(&session.client_id, &held[0]).await;
    assert_eq!(response.status(), 200);
    gateway.login(&session.client_id, "jonas", "pass").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_mongodb_is_a_prompt_503_and_the_proxy_path_goes_on() {
    let upstream = Upstream::start().await;
    let redis = Redis::start();
    let proxy = StallingProxy::start(Mongo::shared().address());
    let (_, database) = Mongo::shared().fresh_database_uri();
    let uri = format!(
        "mongodb://127.0.0.1:{}/{database}?directConnection=true",
        proxy.port
    );
    let mut config = GatewayConfig::shared(&upstream, &redis, &uri);
    config.mongodb_timeout_ms = Some(500);
    let gateway = Gateway::start(&config);
    let session = signed_in(&gateway).await;

    proxy.stall(true);
    let asked = Instant::now();
    let response = gateway
        .refresh(&session.client_id, &session.tokens.refresh_token)
        .await;
    let took = asked.elapsed();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(json(response).await["error"], "temporarily_unavailable");
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    // The proxy path reads Redis only.
    assert_eq!(
        gateway.get_status("/x", &session.tokens.access_token).await,
        200
    );

    proxy.stall(false);
    let recovered = eventually(Duration::from_secs(10), || async {
        gateway
            .refresh(&session.client_id, &session.tokens.refresh_token)
            .await
            .status()
            == 200
    })
    .await;
    assert!(recovered, "the token endpoint did not recover");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_plain_keys_are_revoked_with_their_token() {
    let upstream = Upstream::start().await;
    let redis = Redis::start();
    let (uri, _) = Mongo::shared().fresh_database_uri();
    let config =
        GatewayConfig::shared(&upstream, &redis, &uri).oauth("  legacy_plain_keys: true\n");
    let gateway = Gateway::start(&config);
    let session = signed_in(&gateway).await;
    let mut connection = redis.connection().await;
    let plain: Option<String> = redis::cmd("GET")
        .arg(&session.tokens.access_token)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(plain.as_deref(), Some(session.user_id.as_str()));

    let response = gateway
        .revoke(&session.client_id, &session.tokens.access_token)
        .await;
    assert_eq!(response.status(), 200);
    let plain: Option<String> = redis::cmd("GET")
        .arg(&session.tokens.access_token)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(
        plain, None,
        "the Flask-Sentinel key outlived its revocation"
    );

    // A password change reaches them too.
    let fresh = gateway.login(&session.client_id, "jonas", "pass").await;
    let output = gateway.run(
        &["user", "passwd", "jonas", "--password-stdin"],
        Some("another-password\n"),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let plain: Option<String> = redis::cmd("GET")
        .arg(&fresh.access_token)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(plain, None);
}

on_both_backends!(a_sign_in_inside_bcrypt_does_not_survive_disabling_the_user);
/// A sign-in that is inside bcrypt while the user is disabled used to
/// create a session all the same. Now its final check sees the raised
/// generation and it undoes itself: no token comes out of it.
async fn a_sign_in_inside_bcrypt_does_not_survive_disabling_the_user(backends: Backends) {
    let name = backends.name();
    let upstream = Upstream::start().await;
    // Cost 13: the sign-in spends a good half second in bcrypt.
    let config = backends
        .config(&upstream)
        .admin(ADMIN.0, ADMIN.1)
        .oauth("  bcrypt_cost: 13\n");
    let gateway = Gateway::start(&config);
    let user_id = gateway.create_user("jonas", "pass");
    let client_id = gateway.create_client("ios app");
    let users = gateway.url("/oauth/management/api/v1/users");
    // Sign the administrator in once, so the disable below costs no bcrypt.
    let warm = client()
        .get(&users)
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status(), 200, "{name}");

    let sign_in = tokio::spawn({
        let url = gateway.url("/oauth/token");
        let client_id = client_id.clone();
        async move {
            let form = [
                ("grant_type", "password"),
                ("client_id", client_id.as_str()),
                ("username", "jonas"),
                ("password", "pass"),
            ];
            let response = client().post(url).form(&form).send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let disabled = client()
        .patch(format!("{users}/{user_id}"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), 200, "{name}");
    let (status, body) = sign_in.await.unwrap();
    assert!(
        !sign_in_was_quick(status, &body),
        "{name}: a sign-in that was inside bcrypt when the user was disabled got a token"
    );
    assert_eq!(status, 400, "{name}: {body}");
    assert_eq!(body["error"], "invalid_grant", "{name}");
    // And nothing it wrote is left: the user has no session.
    let sessions = client()
        .get(format!("{users}/{user_id}/sessions"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .unwrap();
    let listed = json(sessions).await;
    assert_eq!(listed, json!([]), "{name}: {listed}");
}

/// True when the sign-in got a token despite the disable it overlapped.
fn sign_in_was_quick(status: u16, body: &Value) -> bool {
    status == 200 && body["access_token"].is_string()
}

on_both_backends!(concurrent_wrong_passwords_get_at_most_max_failures_bcrypts);
/// Twenty wrong passwords for one username at once. The lockout used to
/// check, then run bcrypt, then count, so all twenty passed the check; now
/// an attempt is reserved before bcrypt, so five are answered
/// `invalid_grant` (after a bcrypt) and the rest 429 at once.
async fn concurrent_wrong_passwords_get_at_most_max_failures_bcrypts(backends: Backends) {
    let name = backends.name();
    let upstream = Upstream::start().await;
    let config = backends
        .config(&upstream)
        .oauth("  bcrypt_cost: 10\n  lockout: {max_failures: 5, max_failures_per_address: 1000}\n");
    let gateway = Gateway::start(&config);
    let session = signed_in(&gateway).await;
    let guesses = (0..20).map(|i| {
        let url = gateway.url("/oauth/token");
        let client_id = session.client_id.clone();
        tokio::spawn(async move {
            let guess = format!("guess-{i}");
            let form = [
                ("grant_type", "password"),
                ("client_id", client_id.as_str()),
                ("username", "jonas"),
                ("password", guess.as_str()),
            ];
            client()
                .post(url)
                .form(&form)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    });
    let mut statuses = Vec::new();
    for guess in guesses {
        statuses.push(guess.await.unwrap());
    }
    let checked = statuses.iter().filter(|s| **s == 400).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, refused), (5, 15), "{name}: {statuses:?}");
    // Locked now: even the right password waits.
    let locked = gateway
        .password_grant(&session.client_id, "jonas", "pass")
        .await;
    assert_eq!(locked.status(), 429, "{name}");
}

on_both_backends!(every_failed_client_authentication_gets_one_answer_with_a_challenge);
/// An unknown client, a disabled one and a wrong secret are told apart by
/// nothing, and each 401 names the Basic scheme (RFC 9110 §15.5.2), also
/// when the credentials came in the form.
async fn every_failed_client_authentication_gets_one_answer_with_a_challenge(backends: Backends) {
    let name = backends.name();
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&backends.config(&upstream));
    let (machine, secret) = gateway.create_confidential_client("batch", &[]);
    let (disabled, disabled_secret) = gateway.create_confidential_client("old", &[]);
    let output = gateway.run(&["client", "update", &disabled, "--disable"], None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let attempts = [
        ("unknown", "no-such-client", "whatever"),
        ("wrong secret", machine.as_str(), "wrong"),
        ("disabled", disabled.as_str(), disabled_secret.as_str()),
    ];
    let mut bodies = Vec::new();
    for (case, id, client_secret) in attempts {
        for in_form in [false, true] {
            let response = if in_form {
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", id),
                    ("client_secret", client_secret),
                ];
                gateway.post_form("/oauth/token", None, &form).await
            } else {
                let form = [("grant_type", "client_credentials")];
                gateway
                    .post_form("/oauth/token", Some((id, client_secret)), &form)
                    .await
            };
            assert_eq!(response.status(), 401, "{name}: {case}");
            let challenge = response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .to_string();
            assert!(
                challenge.starts_with("Basic realm="),
                "{name}: {case}: {challenge}"
            );
            let mut body = json(response).await;
            // Each answer has its own request id; the rest must match.
            body.as_object_mut().unwrap().remove("request_id");
            bodies.push(body);
        }
    }
    assert!(bodies.iter().all(|b| *b == bodies[0]), "{name}: {bodies:?}");
    assert_eq!(bodies[0]["error"], "invalid_client", "{name}");
    // The right secret still works.
    let good = gateway
        .post_form(
            "/oauth/token",
            Some((&machine, &secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(good.status(), 200, "{name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_username_is_stored_and_logged_only_as_a_keyed_hash() {
    use sha2::Digest;

    let upstream = Upstream::start().await;
    let redis = Redis::start();
    let (uri, _) = Mongo::shared().fresh_database_uri();
    let gateway = Gateway::start(
        &GatewayConfig::shared(&upstream, &redis, &uri).oauth("  lockout: {max_failures: 1}\n"),
    );
    let client_id = gateway.create_client("ios app");
    // A password typed into the username field, by mistake.
    let typed = "correct-horse-battery";
    let response = gateway.password_grant(&client_id, typed, "x").await;
    assert_eq!(response.status(), 400);
    let plain_digest = hex::encode(sha2::Sha256::digest(typed.as_bytes()));
    let mut connection = redis.connection().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(
        keys.iter()
            .any(|k| k.starts_with("portcullis:lockout:user:")),
        "{keys:?}"
    );
    for key in &keys {
        assert!(
            !key.contains(typed) && !key.contains(&plain_digest),
            "{key}"
        );
    }
    let logs = gateway.logs_when(|logs| logs.contains("locked")).await;
    assert!(
        !logs.contains(typed) && !logs.contains(&plain_digest),
        "{logs}"
    );
    assert!(logs.contains("subject=user:"), "{logs}");
}
