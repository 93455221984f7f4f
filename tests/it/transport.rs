//! Credentials only under TLS: with `oauth.allow_plaintext: false` the token,
//! revocation and introspection endpoints and management refuse plain HTTP,
//! unless a trusted proxy says it terminated TLS; metadata answers anywhere.

use serde_json::{json, Value};

use crate::harness::*;

const ADMIN: (&str, &str) = ("admin", "admin-password-1");
const TLS_ONLY: &str = "  allow_plaintext: false\n";

/// Asserts the plain-HTTP refusal: 403, JSON naming the way out, not cached.
async fn assert_refused(response: reqwest::Response, what: &str) {
    assert_eq!(response.status(), 403, "{what}");
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/json", "{what}");
    assert_eq!(headers["cache-control"], "no-store", "{what}");
    assert!(headers.contains_key("x-request-id"), "{what}");
    assert!(
        !headers.contains_key("www-authenticate"),
        "{what}: no sign-in prompt over plain HTTP"
    );
    let body = json(response).await;
    assert_eq!(body["error"], "invalid_request", "{what}");
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.contains("oauth.allow_plaintext")
            && description.contains("server.trusted_proxies"),
        "{what}: {description}"
    );
}

/// A password grant at `url`, with `extra` headers.
async fn sign_in(
    url: &str,
    client_id: &str,
    password: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = client().post(url).form(&[
        ("grant_type", "password"),
        ("client_id", client_id),
        ("username", "jonas"),
        ("password", password),
    ]);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// The user's sessions, asked for over HTTPS.
async fn sessions_of(gateway: &Gateway, user_id: &str) -> Vec<Value> {
    let response = client()
        .get(gateway.https_url(&format!(
            "/oauth/management/api/v1/users/{user_id}/sessions"
        )))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    json(response).await.as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_over_plain_http_are_refused_and_not_read() {
    let upstream = Upstream::start().await;
    // One failed sign-in would lock the username: a refused request that
    // was read would show as a lock.
    let gateway = Gateway::start(
        &GatewayConfig::new(&upstream)
            .admin(ADMIN.0, ADMIN.1)
            .oauth(TLS_ONLY)
            .oauth("  lockout: {max_failures: 1, max_failures_per_address: 1, lock_seconds: 60}\n"),
    );
    let user_id = gateway.create_user("jonas", "pass");
    let client_id = gateway.create_client("ios app");
    let (service_id, service_secret) = gateway.create_confidential_client("svc", &[]);

    let token_url = gateway.url("/oauth/token");
    assert_refused(
        sign_in(&token_url, &client_id, "pass", &[]).await,
        "password grant",
    )
    .await;
    assert_refused(
        sign_in(&token_url, &client_id, "wrong", &[]).await,
        "wrong password",
    )
    .await;
    // Untrusted peers cannot claim TLS.
    assert_refused(
        sign_in(
            &token_url,
            &client_id,
            "pass",
            &[("x-forwarded-proto", "https")],
        )
        .await,
        "an untrusted peer's X-Forwarded-Proto",
    )
    .await;
    for path in ["/oauth/revoke", "/oauth/introspect"] {
        let response = gateway
            .post_form(
                path,
                Some((&service_id, &service_secret)),
                &[("token", "x")],
            )
            .await;
        assert_refused(response, path).await;
    }
    for path in ["/oauth/management", "/oauth/management/api/v1/whoami"] {
        let response = client()
            .get(gateway.url(path))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .send()
            .await
            .unwrap();
        assert_refused(response, path).await;
    }
    let write = client()
        .post(gateway.url("/oauth/management/api/v1/users"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .json(&json!({"username": "eve", "password": "long-enough"}))
        .send()
        .await
        .unwrap();
    assert_refused(write, "a management write").await;

    // Metadata holds no credential: it answers over plain HTTP.
    let metadata = client()
        .get(gateway.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.status(), 200);
    assert_eq!(upstream.count(), 0);

    // Nothing the refused requests carried was acted on: no session, no
    // user, and the wrong password locked nothing.
    assert!(sessions_of(&gateway, &user_id).await.is_empty());
    let users = client()
        .get(gateway.https_url("/oauth/management/api/v1/users?search=eve"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .unwrap();
    assert_eq!(json(users).await["total"], 0);
    let over_tls = sign_in(&gateway.https_url("/oauth/token"), &client_id, "pass", &[]).await;
    assert_eq!(over_tls.status(), 200, "not locked, and served over HTTPS");
    let body = json(over_tls).await;
    assert!(body["access_token"].is_string());
    assert_eq!(sessions_of(&gateway, &user_id).await.len(), 1);

    // Over HTTPS (HTTP/2 here) management writes work.
    let whoami = client()
        .get(gateway.https_url("/oauth/management/api/v1/whoami"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .unwrap();
    assert_eq!(whoami.status(), 200);
    let csrf = json(whoami).await["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    let created = client()
        .post(gateway.https_url("/oauth/management/api/v1/users"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .header(
            "origin",
            format!("https://localhost:{}", gateway.https_port),
        )
        .header("x-csrf-token", csrf)
        .json(&json!({"username": "eve", "password": "long-enough"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.version(), reqwest::Version::HTTP_2);
    assert_eq!(created.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_that_terminated_tls_is_believed() {
    let upstream = Upstream::start().await;
    let config = GatewayConfig {
        trusted_proxies: vec!["127.0.0.1/32".into()],
        ..GatewayConfig::new(&upstream)
            .admin(ADMIN.0, ADMIN.1)
            .oauth(TLS_ONLY)
    };
    let gateway = Gateway::start(&config);
    gateway.create_user("jonas", "pass");
    let client_id = gateway.create_client("ios app");
    let token_url = gateway.url("/oauth/token");

    let behind_tls = sign_in(
        &token_url,
        &client_id,
        "pass",
        &[("x-forwarded-proto", "https")],
    )
    .await;
    assert_eq!(behind_tls.status(), 200);
    assert!(json(behind_tls).await["refresh_token"].is_string());
    // A proxy that appends: its own value is the last one.
    let appended = sign_in(
        &token_url,
        &client_id,
        "pass",
        &[("x-forwarded-proto", "http, https")],
    )
    .await;
    assert_eq!(appended.status(), 200);

    for (proto, what) in [
        (None, "no X-Forwarded-Proto"),
        (Some("http"), "the proxy got plain HTTP"),
        (
            Some("https, http"),
            "the client's https before the proxy's http",
        ),
        (Some("https;x"), "not a scheme"),
    ] {
        let extra: Vec<(&str, &str)> = proto
            .map(|p| ("x-forwarded-proto", p))
            .into_iter()
            .collect();
        assert_refused(sign_in(&token_url, &client_id, "pass", &extra).await, what).await;
    }

    let whoami = |proto: Option<&'static str>| {
        let mut request = client()
            .get(gateway.url("/oauth/management/api/v1/whoami"))
            .basic_auth(ADMIN.0, Some(ADMIN.1));
        if let Some(proto) = proto {
            request = request.header("x-forwarded-proto", proto);
        }
        async move { request.send().await.unwrap() }
    };
    assert_eq!(whoami(Some("https")).await.status(), 200);
    assert_refused(whoami(None).await, "management without the proxy's word").await;
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_management_listener_is_plain_http_and_needs_a_tls_proxy() {
    let upstream = Upstream::start().await;
    let port = free_port();
    let config = GatewayConfig {
        management_extra: format!("  address: \"127.0.0.1:{port}\"\n"),
        trusted_proxies: vec!["127.0.0.1/32".into()],
        ..GatewayConfig::new(&upstream)
            .admin(ADMIN.0, ADMIN.1)
            .oauth(TLS_ONLY)
    };
    let _gateway = Gateway::start(&config);
    let whoami = format!("http://127.0.0.1:{port}/oauth/management/api/v1/whoami");
    let listening = eventually(std::time::Duration::from_secs(5), || async {
        client().get(&whoami).send().await.is_ok()
    })
    .await;
    assert!(listening, "the management listener answers");
    let direct = client()
        .get(&whoami)
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .unwrap();
    assert_refused(direct, "management.address over plain HTTP").await;
    let proxied = client()
        .get(&whoami)
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 200);
    assert_eq!(json(proxied).await["username"], ADMIN.0);
}
