//! The authorization server beyond the password grant: confidential clients,
//! client_credentials, scopes, revocation (RFC 7009), introspection
//! (RFC 7662), metadata (RFC 8414), brute-force lockout, revocation on
//! account changes, durability of sessions. Key flows run on both backends.

use std::time::Duration;

use serde_json::Value;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_require_scopes() {
    let upstream = Upstream::start().await;
    let config = GatewayConfig {
        routes: Some("  - {path_prefix: /, upstream: app}\n  - {path_prefix: /reports, upstream: app, required_scopes: [reports, read]}\n".into()),
        ..GatewayConfig::new(&upstream)
    };
    let gateway = Gateway::start(&config);
    gateway.create_user("jonas", "pass");
    let client_id = gateway.create_client("app");
    assert!(gateway
        .run(
            &["client", "update", &client_id, "--scopes", "read,reports"],
            None
        )
        .status
        .success());
    let login = |scope: &'static str| {
        let gateway = &gateway;
        let client_id = client_id.clone();
        async move {
            let response = gateway
                .post_form(
                    "/oauth/token",
                    None,
                    &[
                        ("grant_type", "password"),
                        ("client_id", &client_id),
                        ("username", "jonas"),
                        ("password", "pass"),
                        ("scope", scope),
                    ],
                )
                .await;
            assert_eq!(response.status(), 200);
            json(response).await
        }
    };
    let narrow = login("read").await;
    assert_eq!(narrow["scope"], "read");
    let response = client()
        .get(gateway.url("/reports/q3"))
        .bearer_auth(narrow["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"portcullis\", error=\"insufficient_scope\", error_description=\"the access token lacks a scope this resource requires\", scope=\"reports read\""
    );
    assert_eq!(json(response).await["error"], "insufficient_scope");
    assert_eq!(upstream.count(), 0);
    assert_eq!(
        gateway
            .get_status("/other", narrow["access_token"].as_str().unwrap())
            .await,
        200
    );

    let wide = login("reports read").await;
    assert_eq!(wide["scope"], "read reports");
    assert_eq!(
        gateway
            .get_status("/reports/q3", wide["access_token"].as_str().unwrap())
            .await,
        200
    );
    assert_eq!(
        upstream.last().header_values("x-scope"),
        vec!["read reports"]
    );

    // A refresh may narrow the scope, never widen it.
    let refresh = |token: &str, scope: &'static str| {
        let gateway = &gateway;
        let form = [
            ("grant_type", "refresh_token".to_string()),
            ("client_id", client_id.clone()),
            ("refresh_token", token.to_string()),
            ("scope", scope.to_string()),
        ];
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            gateway.post_form("/oauth/token", None, &form).await
        }
    };
    let widened = refresh(narrow["refresh_token"].as_str().unwrap(), "read reports").await;
    assert_eq!(widened.status(), 400);
    assert_eq!(json(widened).await["error"], "invalid_scope");
    let narrowed = refresh(wide["refresh_token"].as_str().unwrap(), "read").await;
    assert_eq!(narrowed.status(), 200);
    assert_eq!(json(narrowed).await["scope"], "read");
}

on_both_backends!(revocation_follows_rfc_7009);
async fn revocation_follows_rfc_7009(backends: Backends) {
    let name = backends.name();
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&backends.config(&upstream));
    let session = signed_in(&gateway).await;
    let client_id = session.client_id.as_str();
    let revoke = |token: String, hint: Option<&'static str>, client: String| {
        let gateway = &gateway;
        async move {
            let mut form = vec![("client_id", client.as_str()), ("token", token.as_str())];
            if let Some(hint) = hint {
                form.push(("token_type_hint", hint));
            }
            gateway.post_form("/oauth/revoke", None, &form).await
        }
    };

    // Another client cannot revoke our token, and learns nothing.
    let other = gateway.create_client("other");
    let response = revoke(session.tokens.access_token.clone(), None, other).await;
    assert_eq!(response.status(), 200, "{name}");
    assert_eq!(
        gateway.get_status("/x", &session.tokens.access_token).await,
        200,
        "{name}"
    );

    // Revoking an access token: that token alone.
    let response = revoke(
        session.tokens.access_token.clone(),
        Some("access_token"),
        client_id.into(),
    )
    .await;
    assert_eq!(response.status(), 200, "{name}");
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.text().await.unwrap(), "", "{name}");
    assert_eq!(
        gateway.get_status("/x", &session.tokens.access_token).await,
        401,
        "{name}"
    );

    // Revoking a refresh token (wrong hint: the search goes on): the whole
    // session, and the access tokens issued from it.
    let second = gateway.login(client_id, "jonas", "pass").await;
    assert_eq!(
        gateway.get_status("/x", &second.access_token).await,
        200,
        "{name}"
    );
    let response = revoke(
        second.refresh_token.clone(),
        Some("access_token"),
        client_id.into(),
    )
    .await;
    assert_eq!(response.status(), 200, "{name}");
    assert_eq!(
        gateway.get_status("/x", &second.access_token).await,
        401,
        "{name}"
    );
    let refreshed = gateway.refresh(client_id, &second.refresh_token).await;
    assert_eq!(refreshed.status(), 400, "{name}");

    // Unknown tokens are fine (§2.2); a missing token is not.
    assert_eq!(
        revoke("no-such-token".into(), None, client_id.into())
            .await
            .status(),
        200,
        "{name}"
    );
    let missing = gateway
        .post_form("/oauth/revoke", None, &[("client_id", client_id)])
        .await;
    assert_eq!(missing.status(), 400, "{name}");
    assert_eq!(json(missing).await["error"], "invalid_request");
    let unknown_client = revoke("x".into(), None, "nope".into()).await;
    assert_eq!(unknown_client.status(), 401, "{name}");
    assert_eq!(
        client()
            .get(gateway.url("/oauth/revoke"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
}

on_both_backends!(introspection_follows_rfc_7662);
async fn introspection_follows_rfc_7662(backends: Backends) {
    let name = backends.name();
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&backends.config(&upstream));
    let session = signed_in(&gateway).await;
    let (resource_server, secret) =
        gateway.create_confidential_client("reports-service", &["--can-introspect"]);
    let introspect = |token: String| {
        let gateway = &gateway;
        let (id, secret) = (resource_server.clone(), secret.clone());
        async move {
            let response = gateway
                .post_form(
                    "/oauth/introspect",
                    Some((&id, &secret)),
                    &[("token", &token)],
                )
                .await;
            assert_eq!(response.status(), 200);
            assert_eq!(response.headers()["cache-control"], "no-store");
            json(response).await
        }
    };

    let access = introspect(session.tokens.access_token.clone()).await;
    assert_eq!(access["active"], true, "{name}");
    assert_eq!(access["sub"], session.user_id.as_str(), "{name}");
    assert_eq!(access["username"], "jonas", "{name}");
    assert_eq!(access["client_id"], session.client_id.as_str(), "{name}");
    assert_eq!(access["token_type"], "Bearer", "{name}");
    assert_eq!(access["scope"], "", "{name}");
    let (exp, iat) = (
        access["exp"].as_u64().unwrap(),
        access["iat"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, 3600, "{name}");

    let refresh = introspect(session.tokens.refresh_token.clone()).await;
    assert_eq!(refresh["active"], true, "{name}");
    assert_eq!(refresh["token_type"], "refresh_token", "{name}");

    let unknown = introspect("garbage".into()).await;
    assert_eq!(unknown, serde_json::json!({"active": false}), "{name}");

    // Public clients, and confidential ones not marked can_introspect, may
    // not introspect: authenticated, but forbidden.
    let response = gateway
        .post_form(
            "/oauth/introspect",
            None,
            &[
                ("client_id", &session.client_id),
                ("token", &session.tokens.access_token),
            ],
        )
        .await;
    assert_eq!(response.status(), 403, "{name}");
    assert_eq!(json(response).await["error"], "unauthorized_client");
    let (unmarked, unmarked_secret) = gateway.create_confidential_client("billing", &[]);
    let response = gateway
        .post_form(
            "/oauth/introspect",
            Some((&unmarked, &unmarked_secret)),
            &[("token", &session.tokens.access_token)],
        )
        .await;
    assert_eq!(response.status(), 403, "{name}");
    let body = json(response).await;
    assert_eq!(body["error"], "unauthorized_client", "{name}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("can_introspect"),
        "{body}"
    );

    // Revoked tokens are inactive.
    gateway
        .post_form(
            "/oauth/revoke",
            None,
            &[
                ("client_id", &session.client_id),
                ("token", &session.tokens.refresh_token),
            ],
        )
        .await;
    assert_eq!(
        introspect(session.tokens.access_token.clone()).await["active"],
        false,
        "{name}"
    );
    assert_eq!(
        introspect(session.tokens.refresh_token.clone()).await["active"],
        false,
        "{name}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_follows_rfc_8414() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream));
    gateway.create_confidential_client("svc", &["--scopes", "read,write"]);
    let response = client()
        .get(gateway.https_url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = json(response).await;
    let issuer = format!("https://localhost:{}", gateway.https_port);
    assert_eq!(body["issuer"], issuer.as_str());
    assert_eq!(body["token_endpoint"], format!("{issuer}/oauth/token"));
    assert_eq!(
        body["revocation_endpoint"],
        format!("{issuer}/oauth/revoke")
    );
    assert_eq!(
        body["introspection_endpoint"],
        format!("{issuer}/oauth/introspect")
    );
    assert_eq!(
        body["grant_types_supported"],
        serde_json::json!(["password", "refresh_token", "client_credentials"])
    );
    // The scopes routes require, never the clients' (metadata reads no
    // store); this gateway's routes require none.
    assert_eq!(body["scopes_supported"], serde_json::json!([]));
    let methods = body["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    assert!(
        methods.contains(&Value::from("client_secret_basic"))
            && methods.contains(&Value::from("none"))
    );
    assert_eq!(upstream.count(), 0);
    let post = client()
        .post(gateway.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
}

on_both_backends!(failed_sign_ins_lock_the_username_and_the_address);
async fn failed_sign_ins_lock_the_username_and_the_address(backends: Backends) {
    let name = backends.name();
    let upstream = Upstream::start().await;
    let config = backends
        .config(&upstream)
        .oauth("  lockout: {max_failures: 3, max_failures_per_address: 7, window_seconds: 60, lock_seconds: 2, max_lock_seconds: 8}\n");
    let gateway = Gateway::start(&config);
    gateway.create_user("jonas", "pass");
    let client_id = gateway.create_client("app");
    let attempt = |username: &'static str, password: &'static str| {
        let gateway = &gateway;
        let client_id = client_id.clone();
        async move {
            gateway
                .post_form(
                    "/oauth/token",
                    None,
                    &[
                        ("grant_type", "password"),
                        ("client_id", &client_id),
                        ("username", username),
                        ("password", password),
                    ],
                )
                .await
        }
    };
    // A success resets the username's counter.
    for _ in 0..2 {
        assert_eq!(attempt("jonas", "wrong").await.status(), 400, "{name}");
    }
    assert_eq!(attempt("jonas", "pass").await.status(), 200, "{name}");
    for _ in 0..2 {
        let response = attempt("jonas", "wrong").await;
        let status = response.status();
        assert_eq!(status, 400, "{name}: {}", response.text().await.unwrap());
    }
    assert_eq!(
        attempt("jonas", "pass").await.status(),
        200,
        "{name}: the count restarted"
    );

    // Three failures in a row lock: even the right password is refused,
    // without running bcrypt.
    for _ in 0..3 {
        assert_eq!(attempt("jonas", "wrong").await.status(), 400, "{name}");
    }
    let locked = attempt("jonas", "pass").await;
    assert_eq!(locked.status(), 429, "{name}");
    let retry_after: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{name}: {retry_after}");
    assert_eq!(json(locked).await["error"], "temporarily_unavailable");

    // The address is locked too (its 7th failure locked it): spraying
    // other usernames from it is refused.
    let sprayed = attempt("someone-else", "guess").await;
    assert_eq!(sprayed.status(), 429, "{name}");

    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        attempt("jonas", "pass").await.status(),
        200,
        "{name}: the lock expired"
    );
    assert!(
        gateway
            .metrics()
            .await
            .contains("portcullis_auth_failures_total{reason=\"locked_out\"} 2"),
        "{name}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_are_shared_by_instances_on_redis() {
    let upstream = Upstream::start().await;
    let redis = Redis::start();
    let (uri, _) = Mongo::shared().fresh_database_uri();
    let config = || {
        GatewayConfig::shared(&upstream, &redis, &uri)
            .oauth("  lockout: {max_failures: 2, lock_seconds: 30}\n")
    };
    let first = Gateway::start(&config());
    let second = Gateway::start(&config());
    first.create_user("jonas", "pass");
    let client_id = first.create_client("app");
    for _ in 0..2 {
        let response = first
            .post_form(
                "/oauth/token",
                None,
                &[
                    ("grant_type", "password"),
                    ("client_id", &client_id),
                    ("username", "jonas"),
                    ("password", "x"),
                ],
            )
            .await;
        assert_eq!(response.status(), 400);
    }
    let response = second
        .post_form(
            "/oauth/token",
            None,
            &[
                ("grant_type", "password"),
                ("client_id", &client_id),
                ("username", "jonas"),
                ("password", "pass"),
            ],
        )
        .await;
    assert_eq!(response.status(), 429, "the lock holds on every instance");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_counts_only_from_trusted_proxies() {
    let upstream = Upstream::start().await;
    let lockout = "  lockout: {max_failures: 2, max_failures_per_address: 2, lock_seconds: 30}\n";
    let attempt = |gateway: &Gateway, client_id: &str, username: &str, forwarded_for: &str| {
        let request = client()
            .post(gateway.url("/oauth/token"))
            .header("x-forwarded-for", forwarded_for)
            .form(&[
                ("grant_type", "password"),
                ("client_id", client_id),
                ("username", username),
                ("password", "wrong"),
            ])
            .send();
        async move { request.await.unwrap().status().as_u16() }
    };

    // Behind a trusted proxy, each forwarded client is counted on its own.
    let mut config = GatewayConfig::new(&upstream).oauth(lockout);
    config.trusted_proxies = vec!["127.0.0.0/8".into()];
    let gateway = Gateway::start(&config);
    let client_id = gateway.create_client("app");
    assert_eq!(attempt(&gateway, &client_id, "a", "203.0.113.7").await, 400);
    assert_eq!(attempt(&gateway, &client_id, "b", "203.0.113.7").await, 400);
    assert_eq!(
        attempt(&gateway, &client_id, "c", "203.0.113.7").await,
        429,
        "203.0.113.7 is locked"
    );
    assert_eq!(
        attempt(&gateway, &client_id, "d", "203.0.113.8").await,
        400,
        "another client is not"
    );
    // IPv6 counts by /64: rotating through one's own network does not
    // dodge the lock; a neighbouring /64 is someone else.
    assert_eq!(
        attempt(&gateway, &client_id, "e", "2001:db8:1:2::1").await,
        400
    );
    assert_eq!(
        attempt(&gateway, &client_id, "f", "2001:db8:1:2:ffff::9").await,
        400
    );
    assert_eq!(
        attempt(&gateway, &client_id, "g", "2001:db8:1:2:abcd::77").await,
        429,
        "2001:db8:1:2::/64 is locked"
    );
    assert_eq!(
        attempt(&gateway, &client_id, "h", "2001:db8:1:3::1").await,
        400,
        "2001:db8:1:3::/64 is not"
    );

    // Without trusted proxies the header is ignored: a client cannot dodge
    // its lock by inventing addresses.
    let gateway = Gateway::start(&GatewayConfig::new(&upstream).oauth(lockout));
    let client_id = gateway.create_client("app");
    assert_eq!(
        attempt(&gateway, &client_id, "a", "198.51.100.1").await,
        400
    );
    assert_eq!(
        attempt(&gateway, &client_id, "b", "198.51.100.2").await,
        400
    );
    assert_eq!(
        attempt(&gateway, &client_id, "c", "198.51.100.3").await,
        429
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_changes_revoke_every_token_of_the_user() {
    let upstream = Upstream::start().await;
    let redis = Redis::start();
    let (uri, _) = Mongo::shared().fresh_database_uri();
    let gateway = Gateway::start(&GatewayConfig::shared(&upstream, &redis, &uri));
    let session = signed_in(&gateway).await;
    let phone = gateway.login(&session.client_id, "jonas", "pass").await;
    let refresh = |token: &str| {
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", session.client_id.as_str()),
            ("refresh_token", token),
        ]
        .map(|(k, v)| (k, v.to_string()));
        let gateway = &gateway;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            gateway
                .post_form("/oauth/token", None, &form)
                .await
                .status()
                .as_u16()
        }
    };

    // A new password (from the CLI, beside the running gateway) ends both
    // devices' sessions at once.
    let changed = gateway.run(
        &["user", "passwd", "jonas", "--password-stdin"],
        Some("new-pass\n"),
    );
    assert!(
        changed.status.success(),
        "{}",
        String::from_utf8_lossy(&changed.stderr)
    );
    for tokens in [&session.tokens, &phone] {
        assert_eq!(gateway.get_status("/x", &tokens.access_token).await, 401);
        assert_eq!(refresh(&tokens.refresh_token).await, 400);
    }

    // Disabling: sessions end and sign-in is refused until enabled again.
    let tokens = gateway.login(&session.client_id, "jonas", "new-pass").await;
    assert!(gateway
        .run(&["user", "disable", "jonas"], None)
        .status
        .success());
    assert_eq!(gateway.get_status("/x", &tokens.access_token).await, 401);
    let refused = gateway
        .post_form(
            "/oauth/token",
            None,
            &[
                ("grant_type", "password"),
                ("client_id", &session.client_id),
                ("username", "jonas"),
                ("password", "new-pass"),
            ],
        )
        .await;
    assert_eq!(refused.status(), 400);
    assert!(gateway
        .run(&["user", "enable", "jonas"], None)
        .status
        .success());
    let tokens = gateway.login(&session.client_id, "jonas", "new-pass").await;

    // Removal ends everything.
    assert!(gateway
        .run(&["user", "remove", "jonas"], None)
        .status
        .success());
    assert_eq!(gateway.get_status("/x", &tokens.access_token).await, 401);
    assert_eq!(refresh(&tokens.refresh_token).await, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_a_restart_and_the_loss_of_redis() {
    // Embedded store: a gateway restart loses memory tokens, not sessions.
    let upstream = Upstream::start().await;
    let mut gateway = Gateway::start(&GatewayConfig::new(&upstream));
    let session = signed_in(&gateway).await;
    let mut child = gateway.signal(libc::SIGKILL);
    child.wait().unwrap();
    gateway.spawn();
    assert_eq!(
        gateway.get_status("/x", &session.tokens.access_token).await,
        401
    );
    let refreshed = gateway
        .refresh(&session.client_id, &session.tokens.refresh_token)
        .await;
    assert_eq!(refreshed.status(), 200);
    let refreshed = json(refreshed).await;
    assert_eq!(
        gateway
            .get_status("/x", refreshed["access_token"].as_str().unwrap())
            .await,
        200
    );

    // MongoDB + Redis: Redis comes back empty; the refresh token still works.
    let mut redis = Redis::start();
    let (uri, _) = Mongo::shared().fresh_database_uri();
    let gateway = Gateway::start(&GatewayConfig::shared(&upstream, &redis, &uri));
    let session = signed_in(&gateway).await;
    redis.restart();
    let back = eventually(Duration::from_secs(2), || async {
        gateway.get_status("/x", &session.tokens.access_token).await == 401
    })
    .await;
    assert!(back, "the gateway reconnects to the new Redis");
    let refreshed = gateway
        .refresh(&session.client_id, &session.tokens.refresh_token)
        .await;
    assert_eq!(refreshed.status(), 200);
    let refreshed = json(refreshed).await;
    assert_eq!(
        gateway
            .get_status("/x", refreshed["access_token"].as_str().unwrap())
            .await,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_expire() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(
        &GatewayConfig::new(&upstream).oauth("  refresh_token_lifetime_seconds: 1\n"),
    );
    let session = signed_in(&gateway).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let response = gateway
        .refresh(&session.client_id, &session.tokens.refresh_token)
        .await;
    assert_eq!(response.status(), 400);
    let body = json(response).await;
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_reaches_every_instance_on_the_next_request() {
    let upstream = Upstream::start().await;
    let redis = Redis::start();
    let (uri, _) = Mongo::shared().fresh_database_uri();
    let first = Gateway::start(&GatewayConfig::shared(&upstream, &redis, &uri));
    let second = Gateway::start(&GatewayConfig::shared(&upstream, &redis, &uri));
    let session = signed_in(&first).await;
    assert_eq!(
        second.get_status("/x", &session.tokens.access_token).await,
        200
    );
    let revoked = first
        .post_form(
            "/oauth/revoke",
            None,
            &[
                ("client_id", &session.client_id),
                ("token", &session.tokens.refresh_token),
            ],
        )
        .await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(
        second.get_status("/x", &session.tokens.access_token).await,
        401
    );
    let refreshed = second
        .refresh(&session.client_id, &session.tokens.refresh_token)
        .await;
    assert_eq!(refreshed.status(), 400);
}

/// A third-party client library, used as an application would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oauth2_crate_works_against_us() {
    use oauth2::basic::BasicClient;
    use oauth2::{
        ClientId, ClientSecret, RefreshToken, ResourceOwnerPassword, ResourceOwnerUsername, Scope,
        TokenResponse, TokenUrl,
    };

    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream));
    gateway.create_user("jonas", "pass");
    let public_id = gateway.create_client("ios app");
    let (confidential_id, secret) =
        gateway.create_confidential_client("billing", &["--scopes", "read"]);
    let http = oauth2::reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let token_url = TokenUrl::new(gateway.https_url("/oauth/token")).unwrap();

    // Public client, password grant, then refresh.
    let public = BasicClient::new(ClientId::new(public_id)).set_token_uri(token_url.clone());
    let tokens = public
        .exchange_password(
            &ResourceOwnerUsername::new("jonas".into()),
            &ResourceOwnerPassword::new("pass".into()),
        )
        .request_async(&http)
        .await
        .expect("password grant through the oauth2 crate");
    assert_eq!(tokens.expires_in(), Some(Duration::from_secs(3600)));
    let refresh = tokens.refresh_token().expect("a refresh token").clone();
    assert_eq!(
        gateway
            .get_status("/x", tokens.access_token().secret())
            .await,
        200
    );
    let refreshed = public
        .exchange_refresh_token(&RefreshToken::new(refresh.secret().clone()))
        .request_async(&http)
        .await
        .expect("refresh through the oauth2 crate");
    assert_ne!(
        refreshed.access_token().secret(),
        tokens.access_token().secret()
    );

    // A wrong password comes back as a typed RFC 6749 error.
    let error = public
        .exchange_password(
            &ResourceOwnerUsername::new("jonas".into()),
            &ResourceOwnerPassword::new("nope".into()),
        )
        .request_async(&http)
        .await
        .unwrap_err();
    let typed = matches!(
        &error,
        oauth2::RequestTokenError::ServerResponse(response)
            if *response.error() == oauth2::basic::BasicErrorResponseType::InvalidGrant
    );
    assert!(typed, "{error:?}");

    // Confidential client, client_credentials with HTTP Basic (the crate's default).
    let confidential = BasicClient::new(ClientId::new(confidential_id))
        .set_client_secret(ClientSecret::new(secret))
        .set_token_uri(token_url);
    let machine = confidential
        .exchange_client_credentials()
        .add_scope(Scope::new("read".into()))
        .request_async(&http)
        .await
        .expect("client_credentials through the oauth2 crate");
    assert_eq!(machine.scopes().map(|s| s.len()), Some(1));
    assert!(machine.refresh_token().is_none());
    assert_eq!(
        gateway
            .get_status("/x", machine.access_token().secret())
            .await,
        200
    );
}
