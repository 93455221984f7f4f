//! The management JSON API: access control, every endpoint and error case,
//! revocation through account changes, audit log, own listener.

use serde_json::{json, Value};

use crate::harness::*;

const ADMIN: (&str, &str) = ("admin", "admin-password-1");

/// A gateway with an administrator: embedded store and memory tokens, or,
/// given a Redis, MongoDB and Redis. Also returns the pair's name for
/// assertion messages.
fn gateway_with_admin(upstream: &Upstream, backends: &Backends) -> (Gateway, &'static str) {
    let config = backends.config(upstream).admin(ADMIN.0, ADMIN.1);
    (Gateway::start(&config), backends.name())
}

struct Admin {
    base: String,
}

impl Admin {
    fn new(gateway: &Gateway) -> Self {
        Admin {
            base: gateway.url("/oauth/management/api/v1"),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = client()
            .request(method.clone(), format!("{}{path}", self.base))
            .basic_auth(ADMIN.0, Some(ADMIN.1));
        if method != reqwest::Method::GET {
            request = request.json(&body.unwrap_or(json!({})));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        assert_eq!(
            response.headers()["cache-control"],
            "no-store",
            "{method} {path}"
        );
        let text = response.text().await.unwrap();
        for secret in ["$2b$", "$2a$", "sha256$", ADMIN.1] {
            assert!(
                !text.contains(secret),
                "{method} {path} leaked {secret}: {text}"
            );
        }
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, value)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
    async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PATCH, path, Some(body)).await
    }
    async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_administrator_management_is_never_open() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream));
    for path in ["/oauth/management", "/oauth/management/api/v1/users"] {
        let response = client()
            .get(gateway.url(path))
            .basic_auth("admin", Some("x"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let body = json(response).await;
        let description = body["error_description"].as_str().unwrap();
        assert!(
            description.contains("management.username")
                && description.contains("PORTCULLIS_ADMIN_USERNAME")
        );
    }
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_needs_the_administrator_and_same_origin() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(
        &GatewayConfig::new(&upstream).admin(ADMIN.0, ADMIN.1).oauth(
            "  lockout: {max_failures: 3, max_failures_per_address: 100, lock_seconds: 30}\n",
        ),
    );
    let url = gateway.url("/oauth/management/api/v1/users");

    // The page itself holds no data and loads with a strict CSP.
    let page = client()
        .get(gateway.url("/oauth/management"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(page.headers()["x-frame-options"], "DENY");

    let anonymous = client().get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        "Basic realm=\"portcullis management\", charset=\"UTF-8\""
    );
    let wrong = client()
        .get(&url)
        .basic_auth(ADMIN.0, Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let admin = Admin::new(&gateway);
    let (status, whoami) = admin.get("/whoami").await;
    assert_eq!(status, 200);
    assert_eq!(whoami["username"], ADMIN.0);
    assert_eq!(whoami["min_password_length"], 8);
    let csrf = whoami["csrf_token"].as_str().unwrap().to_string();

    // CSRF defences on state changes.
    let form = client()
        .post(&url)
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .form(&[("username", "x"), ("password", "long-enough")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415);
    let body = json!({"username": "eve", "password": "long-enough"});
    let origin = format!("http://127.0.0.1:{}", gateway.http_port);
    // A browser-style JSON POST with this Origin and, if given, CSRF token.
    let browser_post = |origin: &str, csrf: Option<&str>| {
        let mut request = client()
            .post(&url)
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .header("origin", origin)
            .json(&body);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        async move { request.send().await.unwrap() }
    };
    let cross_site = browser_post("https://evil.example", Some(&csrf)).await;
    assert_eq!(cross_site.status(), 403);
    let no_token = browser_post(&origin, None).await;
    assert_eq!(no_token.status(), 403);
    let same_origin = browser_post(&origin, Some(&csrf)).await;
    assert_eq!(same_origin.status(), 201);

    // Guessing the administrator's password locks out.
    // The successful sign-ins above reset the count: three new guesses lock.
    for _ in 0..3 {
        let response = client()
            .get(&url)
            .basic_auth(ADMIN.0, Some("guess"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    let locked = client()
        .get(&url)
        .basic_auth(ADMIN.0, Some("another guess"))
        .send()
        .await
        .unwrap();
    assert_eq!(locked.status(), 429);
    assert!(locked.headers().contains_key("retry-after"));

    let spec = client()
        .get(gateway.url("/oauth/management/api/v1/openapi.json"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .unwrap();
    assert_eq!(spec.status(), 200);
    assert_eq!(json(spec).await["openapi"], "3.1.0");
}

on_both_backends!(users_and_their_sessions);
async fn users_and_their_sessions(backends: Backends) {
    let upstream = Upstream::start().await;
    let (gateway, name) = gateway_with_admin(&upstream, &backends);
    let admin = Admin::new(&gateway);

    let (status, jonas) = admin
        .post(
            "/users",
            json!({"username": "jonas", "password": "long-enough"}),
        )
        .await;
    assert_eq!(status, 201, "{name}");
    assert_eq!(jonas["username"], "jonas");
    assert_eq!(jonas["disabled"], false);
    let id = jonas["id"].as_str().unwrap().to_string();
    for username in ["anna", "jonathan"] {
        assert_eq!(
            admin
                .post(
                    "/users",
                    json!({"username": username, "password": "long-enough"})
                )
                .await
                .0,
            201
        );
    }

    // Errors name their field.
    let cases = [
        (
            json!({"username": "jonas", "password": "long-enough"}),
            409,
            "username",
        ),
        (
            json!({"username": "x", "password": "short"}),
            400,
            "password",
        ),
        (
            json!({"username": "two words", "password": "long-enough"}),
            400,
            "username",
        ),
        (
            json!({"username": "y", "password": "long-enough", "admin": true}),
            400,
            "admin",
        ),
        (json!({"password": "long-enough"}), 400, "username"),
    ];
    for (body, status, field) in cases {
        let (got, error) = admin.post("/users", body.clone()).await;
        assert_eq!(got, status, "{name}: {body}");
        assert_eq!(error["field"], field, "{name}: {body}");
    }

    // Listing: sorted, searched, paged.
    let (_, page) = admin.get("/users?limit=2").await;
    assert_eq!(page["total"], 3);
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["anna", "jonas"]);
    let (_, page) = admin.get("/users?search=JON&offset=1").await;
    assert_eq!(page["total"], 2);
    assert_eq!(page["items"][0]["username"], "jonathan");
    assert_eq!(admin.get("/users?limit=0").await.0, 400);
    assert_eq!(
        admin.get(&format!("/users/{id}")).await.1["username"],
        "jonas"
    );
    assert_eq!(admin.get("/users/nope").await.0, 404);

    // Sessions: a sign-in shows up and can be revoked.
    let (_, client) = admin.post("/clients", json!({"name": "ios app"})).await;
    let client_id = client["client_id"].as_str().unwrap().to_string();
    let first = gateway.login(&client_id, "jonas", "long-enough").await;
    let second = gateway.login(&client_id, "jonas", "long-enough").await;
    let (_, sessions) = admin.get(&format!("/users/{id}/sessions")).await;
    let sessions = sessions.as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2, "{name}");
    assert_eq!(sessions[0]["client_id"], client_id.as_str());
    assert!(sessions[0].get("refresh_digest").is_none());
    let session_id = sessions
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        admin
            .delete(&format!("/users/{id}/sessions/{session_id}"))
            .await
            .0,
        204
    );
    let statuses = [
        gateway.get_status("/x", &first.access_token).await,
        gateway.get_status("/x", &second.access_token).await,
    ];
    assert!(
        statuses.contains(&401) && statuses.contains(&200),
        "{name}: exactly one revoked: {statuses:?}"
    );
    assert_eq!(
        admin
            .delete(&format!("/users/{id}/sessions/{session_id}"))
            .await
            .0,
        404
    );
    let (status, revoked) = admin.delete(&format!("/users/{id}/sessions")).await;
    assert_eq!(
        (status, revoked["revoked"].as_u64()),
        (200, Some(1)),
        "{name}"
    );
    assert_eq!(gateway.get_status("/x", &second.access_token).await, 401);

    // A password reset revokes; the new password works.
    let tokens = gateway.login(&client_id, "jonas", "long-enough").await;
    let (status, _) = admin
        .patch(
            &format!("/users/{id}"),
            json!({"password": "another-password"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        gateway.get_status("/x", &tokens.access_token).await,
        401,
        "{name}"
    );
    assert_eq!(
        admin
            .patch(&format!("/users/{id}"), json!({"password": "short"}))
            .await
            .1["field"],
        "password"
    );
    assert_eq!(admin.patch(&format!("/users/{id}"), json!({})).await.0, 400);

    // Disable, enable, delete.
    let tokens = gateway.login(&client_id, "jonas", "another-password").await;
    let (_, user) = admin
        .patch(&format!("/users/{id}"), json!({"disabled": true}))
        .await;
    assert_eq!(user["disabled"], true);
    assert_eq!(
        gateway.get_status("/x", &tokens.access_token).await,
        401,
        "{name}"
    );
    let refused = gateway
        .password_grant(&client_id, "jonas", "another-password")
        .await;
    assert_eq!(refused.status(), 400);
    admin
        .patch(&format!("/users/{id}"), json!({"disabled": false}))
        .await;
    let tokens = gateway.login(&client_id, "jonas", "another-password").await;
    assert_eq!(admin.delete(&format!("/users/{id}")).await.0, 204);
    assert_eq!(
        gateway.get_status("/x", &tokens.access_token).await,
        401,
        "{name}"
    );
    assert_eq!(admin.get(&format!("/users/{id}")).await.0, 404);
    assert_eq!(admin.delete(&format!("/users/{id}")).await.0, 404);

    // Every action left an audit event, without secrets.
    let actions = [
        "user.create",
        "user.session_revoke",
        "user.sessions_revoke_all",
        "user.password_reset",
        "user.disable",
        "user.enable",
        "user.delete",
        "client.create",
    ];
    let logs = gateway
        .logs_when(|logs| actions.iter().all(|action| logs.contains(action)))
        .await;
    let audit: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("portcullis::audit"))
        .collect();
    for action in actions {
        assert!(
            audit
                .iter()
                .any(|l| l.contains(action) && l.contains("actor=admin")),
            "{name}: no audit event {action}"
        );
    }
    for secret in ["long-enough", "another-password", ADMIN.1] {
        assert!(!logs.contains(secret), "{name}: {secret} reached the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_are_created_edited_and_deleted() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream).admin(ADMIN.0, ADMIN.1));
    let admin = Admin::new(&gateway);

    let (status, created) = admin
        .post(
            "/clients",
            json!({"name": "billing", "type": "confidential", "allowed_scopes": ["read", "write"]}),
        )
        .await;
    assert_eq!(status, 201);
    let client_id = created["client_id"].as_str().unwrap().to_string();
    let secret = created["client_secret"]
        .as_str()
        .expect("the secret, once")
        .to_string();
    assert_eq!(
        created["allowed_grants"],
        json!(["password", "refresh_token", "client_credentials"])
    );
    let (_, fetched) = admin.get(&format!("/clients/{client_id}")).await;
    assert!(
        fetched.get("client_secret").is_none(),
        "the secret is shown only at creation"
    );
    assert_eq!(fetched["type"], "confidential");

    // The secret works.
    let response = gateway
        .post_form(
            "/oauth/token",
            Some((&client_id, &secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(response.status(), 200);

    let (status, patched) = admin
        .patch(
            &format!("/clients/{client_id}"),
            json!({"allowed_grants": ["password"], "allowed_scopes": ["read"]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(patched["allowed_grants"], json!(["password"]));
    let response = gateway
        .post_form(
            "/oauth/token",
            Some((&client_id, &secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(json(response).await["error"], "unauthorized_client");

    let cases = [
        (json!({"allowed_grants": ["implicit"]}), "allowed_grants"),
        (json!({"allowed_scopes": ["two words"]}), "allowed_scopes"),
        (json!({"secret": "x"}), "secret"),
    ];
    for (body, field) in cases {
        let (status, error) = admin
            .patch(&format!("/clients/{client_id}"), body.clone())
            .await;
        assert_eq!(
            (status, error["field"].as_str()),
            (400, Some(field)),
            "{body}"
        );
    }
    let (status, error) = admin
        .post(
            "/clients",
            json!({"name": "app", "allowed_grants": ["client_credentials"]}),
        )
        .await;
    assert_eq!(
        (status, error["field"].as_str()),
        (400, Some("allowed_grants"))
    );
    assert_eq!(
        admin
            .post("/clients", json!({"name": "", "type": "public"}))
            .await
            .0,
        400
    );
    assert_eq!(
        admin
            .post("/clients", json!({"name": "x", "type": "weird"}))
            .await
            .1["field"],
        "type"
    );

    // Disabling or deleting a client ends the sessions it holds.
    let (_, app) = admin.post("/clients", json!({"name": "mobile"})).await;
    let app_id = app["client_id"].as_str().unwrap().to_string();
    admin
        .post(
            "/users",
            json!({"username": "jonas", "password": "long-enough"}),
        )
        .await;
    let tokens = gateway.login(&app_id, "jonas", "long-enough").await;
    assert_eq!(gateway.get_status("/x", &tokens.access_token).await, 200);
    admin
        .patch(&format!("/clients/{app_id}"), json!({"disabled": true}))
        .await;
    assert_eq!(gateway.get_status("/x", &tokens.access_token).await, 401);
    admin
        .patch(&format!("/clients/{app_id}"), json!({"disabled": false}))
        .await;
    let tokens = gateway.login(&app_id, "jonas", "long-enough").await;
    assert_eq!(admin.delete(&format!("/clients/{app_id}")).await.0, 204);
    assert_eq!(gateway.get_status("/x", &tokens.access_token).await, 401);

    let (_, page) = admin.get("/clients?search=bill").await;
    assert_eq!(page["total"], 1);
    let (_, disabled) = admin
        .patch(&format!("/clients/{client_id}"), json!({"disabled": true}))
        .await;
    assert_eq!(disabled["disabled"], true);
    assert_eq!(admin.delete(&format!("/clients/{client_id}")).await.0, 204);
    assert_eq!(admin.get(&format!("/clients/{client_id}")).await.0, 404);
    assert_eq!(admin.get("/nothing").await.0, 404);
    assert_eq!(
        admin
            .call(reqwest::Method::PUT, "/clients", Some(json!({})))
            .await
            .0,
        405
    );
}

on_both_backends!(disabling_or_removing_a_client_ends_its_own_tokens);
/// A client's own tokens (client_credentials) belong to no session; they
/// must still end when the client is disabled or removed, on both backends.
async fn disabling_or_removing_a_client_ends_its_own_tokens(backends: Backends) {
    let upstream = Upstream::start().await;
    let (gateway, name) = gateway_with_admin(&upstream, &backends);
    let admin = Admin::new(&gateway);
    let confidential = |name: &'static str| {
        let admin = &admin;
        async move {
            let (_, created) = admin
                .post("/clients", json!({"name": name, "type": "confidential"}))
                .await;
            (
                created["client_id"].as_str().unwrap().to_string(),
                created["client_secret"].as_str().unwrap().to_string(),
            )
        }
    };
    let machine_token = |(id, secret): &(String, String)| {
        let gateway = &gateway;
        let (id, secret) = (id.clone(), secret.clone());
        async move {
            let response = gateway
                .post_form(
                    "/oauth/token",
                    Some((&id, &secret)),
                    &[("grant_type", "client_credentials")],
                )
                .await;
            let status = response.status();
            let body = json(response).await;
            assert_eq!(status, 200, "{body}");
            body["access_token"].as_str().unwrap().to_string()
        }
    };
    let billing = confidential("billing").await;
    let reports = confidential("reports").await;
    let (first, second) = (machine_token(&billing).await, machine_token(&billing).await);
    let other = machine_token(&reports).await;
    for token in [&first, &second, &other] {
        assert_eq!(gateway.get_status("/x", token).await, 200, "{name}");
    }

    let (status, _) = admin
        .patch(
            &format!("/clients/{}", billing.0),
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(status, 200, "{name}");
    assert_eq!(gateway.get_status("/x", &first).await, 401, "{name}");
    assert_eq!(gateway.get_status("/x", &second).await, 401, "{name}");
    assert_eq!(
        gateway.get_status("/x", &other).await,
        200,
        "{name}: another client's token is untouched"
    );

    admin
        .patch(
            &format!("/clients/{}", billing.0),
            json!({"disabled": false}),
        )
        .await;
    let third = machine_token(&billing).await;
    assert_eq!(gateway.get_status("/x", &third).await, 200, "{name}");
    assert_eq!(
        admin.delete(&format!("/clients/{}", billing.0)).await.0,
        204
    );
    assert_eq!(gateway.get_status("/x", &third).await, 401, "{name}");
    assert_eq!(gateway.get_status("/x", &other).await, 200, "{name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_can_have_its_own_listener() {
    let upstream = Upstream::start().await;
    let port = free_port();
    let config = GatewayConfig {
        management_extra: format!("  address: \"127.0.0.1:{port}\"\n"),
        ..GatewayConfig::new(&upstream).admin(ADMIN.0, ADMIN.1)
    };
    let gateway = Gateway::start(&config);
    let public = client()
        .get(gateway.url("/oauth/management/api/v1/whoami"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 404, "not on the public listener");
    let own = eventually(std::time::Duration::from_secs(5), || async {
        client()
            .get(format!(
                "http://127.0.0.1:{port}/oauth/management/api/v1/whoami"
            ))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .send()
            .await
            .map(|r| r.status() == 200)
            .unwrap_or(false)
    })
    .await;
    assert!(own, "management answers on its own listener");
    let proxied = client()
        .get(format!("http://127.0.0.1:{port}/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        proxied.status(),
        404,
        "the management listener proxies nothing"
    );
    for path in [
        "/oauth/token",
        "/oauth/revoke",
        "/oauth/introspect",
        "/.well-known/oauth-authorization-server",
    ] {
        let response = client()
            .post(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            404,
            "{path} is not served on the management listener"
        );
    }
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_over_http2_compare_the_origin_with_the_authority() {
    use base64::Engine;

    use crate::wire::{h2_connect, h2_request};

    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream).admin(ADMIN.0, ADMIN.1));
    let port = gateway.https_port;
    let api = |path: &str| format!("https://localhost:{port}/oauth/management/api/v1{path}");
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", ADMIN.0, ADMIN.1))
    );
    let mut h2 = h2_connect(port).await;
    let (status, whoami) = h2_request(
        &mut h2,
        "GET",
        &api("/whoami"),
        &[("authorization", &basic)],
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{whoami}");
    let whoami: Value = serde_json::from_str(&whoami).unwrap();
    let csrf = whoami["csrf_token"].as_str().unwrap();

    let body = json!({"username": "alice", "password": "long-enough"}).to_string();
    // `:authority` is localhost:<port>, and there is no Host header.
    let post = |origin: String| {
        let (csrf, basic, body, url) =
            (csrf.to_string(), basic.clone(), body.clone(), api("/users"));
        let mut h2 = h2.clone();
        async move {
            let headers = [
                ("authorization", basic.as_str()),
                ("content-type", "application/json"),
                ("origin", origin.as_str()),
                ("x-csrf-token", csrf.as_str()),
            ];
            h2_request(&mut h2, "POST", &url, &headers, Some(&body))
                .await
                .unwrap()
        }
    };
    let (status, text) = post("https://evil.example".into()).await;
    assert_eq!(status, 403, "cross-site over HTTP/2: {text}");
    let (status, text) = post(format!("https://localhost:{port}")).await;
    assert_eq!(status, 201, "same-origin over HTTP/2: {text}");
    let created: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(created["username"], "alice");
}

/// The CSRF token `GET whoami` hands out.
async fn csrf_token_of(gateway: &Gateway) -> String {
    let (status, whoami) = Admin::new(gateway).get("/whoami").await;
    assert_eq!(status, 200);
    whoami["csrf_token"].as_str().unwrap().to_string()
}

/// A browser-style user creation on `gateway` carrying `csrf`.
async fn create_with_token(gateway: &Gateway, csrf: &str, username: &str) -> u16 {
    client()
        .post(gateway.url("/oauth/management/api/v1/users"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .header("origin", format!("http://127.0.0.1:{}", gateway.http_port))
        .header("x-csrf-token", csrf)
        .json(&json!({"username": username, "password": "long-enough"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_sharing_a_csrf_secret_accept_each_others_token() {
    let upstream = Upstream::start().await;
    let shared = GatewayConfig {
        management_extra: "  csrf_secret_env: PORTCULLIS_TEST_CSRF_SECRET\n".into(),
        extra_env: vec![("PORTCULLIS_TEST_CSRF_SECRET".into(), "7f".repeat(32))],
        ..GatewayConfig::new(&upstream).admin(ADMIN.0, ADMIN.1)
    };
    let first = Gateway::start(&shared);
    let second = Gateway::start(&shared);
    let mut own_key = Gateway::start(&GatewayConfig::new(&upstream).admin(ADMIN.0, ADMIN.1));

    let token = csrf_token_of(&first).await;
    assert_eq!(token.len(), 64);
    assert!(!token.contains(ADMIN.1));
    assert_eq!(
        csrf_token_of(&second).await,
        token,
        "the same key, the same token"
    );
    assert_eq!(create_with_token(&second, &token, "alice").await, 201);
    assert!(
        !first.dir.path().join("data/management-csrf.key").exists(),
        "a configured secret writes no key file"
    );

    // A gateway with its own key refuses another's token.
    assert_eq!(create_with_token(&own_key, &token, "bob").await, 403);
    let own_token = csrf_token_of(&own_key).await;
    assert_ne!(own_token, token);
    assert_eq!(create_with_token(&own_key, &own_token, "bob").await, 201);
    let key_file = own_key.dir.path().join("data/management-csrf.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(std::fs::read(&key_file).unwrap().len(), 32);

    // The key outlives a restart, and so does the token.
    let status = own_key.signal(libc::SIGTERM).wait().unwrap();
    assert!(status.success(), "{status}");
    own_key.spawn();
    assert_eq!(csrf_token_of(&own_key).await, own_token);
}

on_both_backends!(concurrent_wrong_admin_passwords_get_at_most_max_failures_bcrypts);
/// The administrator's sign-in reserves an attempt before bcrypt, as the
/// token endpoint does: twenty wrong passwords at once get five checks.
async fn concurrent_wrong_admin_passwords_get_at_most_max_failures_bcrypts(backends: Backends) {
    let name = backends.name();
    let upstream = Upstream::start().await;
    let config = backends
        .config(&upstream)
        .admin(ADMIN.0, ADMIN.1)
        .oauth("  bcrypt_cost: 10\n  lockout: {max_failures: 5, max_failures_per_address: 1000}\n");
    let gateway = Gateway::start(&config);
    let url = gateway.url("/oauth/management/api/v1/users");
    let guesses = (0..20).map(|i| {
        let url = url.clone();
        tokio::spawn(async move {
            client()
                .get(url)
                .basic_auth(ADMIN.0, Some(format!("guess-{i}")))
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
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, refused), (5, 15), "{name}: {statuses:?}");
}
