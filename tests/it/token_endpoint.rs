//! The token endpoint: RFC 6749 §4.3 and §6 flows, §5.1 responses, every
//! §5.2 error the endpoint can give.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_grant_answers_rfc_6749_section_5_1() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream));
    gateway.create_user("jonas", "pass");
    let client_id = gateway.create_client("ios app");

    let response = client()
        .post(gateway.https_url("/oauth/token"))
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=UTF-8",
        )
        .body(format!(
            "client_id={client_id}&grant_type=password&username=jonas&password=pass"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = json(response).await;
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 5, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "");
    for field in ["access_token", "refresh_token"] {
        let token = body[field].as_str().unwrap();
        assert_eq!(token.len(), 43, "{field}: 256 bits, base64url");
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
    assert_ne!(body["access_token"], body["refresh_token"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_login_gets_its_own_tokens() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream));
    let session = signed_in(&gateway).await;
    // A second device logs in with the same client: the first keeps working.
    let second = gateway.login(&session.client_id, "jonas", "pass").await;
    assert_ne!(second.access_token, session.tokens.access_token);
    for token in [&session.tokens.access_token, &second.access_token] {
        let response = gateway.get_with_token("/x", token).await;
        assert_eq!(response.status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_rotate_and_are_single_use() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream));
    let session = signed_in(&gateway).await;
    let refresh = |token: String| {
        let client_id = session.client_id.clone();
        let gateway = &gateway;
        async move { gateway.refresh(&client_id, &token).await }
    };

    let response = refresh(session.tokens.refresh_token.clone()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let rotated = json(response).await;
    assert_ne!(
        rotated["refresh_token"],
        session.tokens.refresh_token.as_str()
    );
    assert_eq!(rotated["expires_in"], 3600);

    let response = client()
        .get(gateway.url("/x"))
        .bearer_auth(rotated["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        upstream.last().header_values("x-user-id"),
        vec![session.user_id.as_str()]
    );

    // A retry within the grace window (a lost response) gets the same pair.
    let retried = refresh(session.tokens.refresh_token.clone()).await;
    assert_eq!(retried.status(), 200);
    assert_eq!(json(retried).await, rotated);

    let next = refresh(rotated["refresh_token"].as_str().unwrap().to_string()).await;
    assert_eq!(next.status(), 200);
    let next = json(next).await;

    // The first token is now two rotations old: its reuse is theft, and the
    // whole family is revoked, the newest tokens included.
    let reused = refresh(session.tokens.refresh_token.clone()).await;
    assert_eq!(reused.status(), 400);
    assert_eq!(json(reused).await["error"], "invalid_grant");
    let newest = refresh(next["refresh_token"].as_str().unwrap().to_string()).await;
    assert_eq!(newest.status(), 400, "the family is revoked");
    let response = client()
        .get(gateway.url("/x"))
        .bearer_auth(next["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        401,
        "access tokens of a revoked family die with it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_of_rfc_6749_section_5_2() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream));
    let session = signed_in(&gateway).await;
    let other_client = gateway.create_client("web");
    let client_id = session.client_id.as_str();
    let refresh_token = session.tokens.refresh_token.as_str();

    /// (what, form, expected status, expected error code)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "no grant_type",
            vec![("client_id", client_id)],
            400,
            "invalid_request",
        ),
        (
            "unknown grant_type",
            vec![
                ("grant_type", "authorization_code"),
                ("client_id", client_id),
                ("code", "x"),
            ],
            400,
            "unsupported_grant_type",
        ),
        (
            "no client_id",
            vec![
                ("grant_type", "password"),
                ("username", "jonas"),
                ("password", "pass"),
            ],
            400,
            "invalid_request",
        ),
        (
            "unknown client",
            vec![
                ("grant_type", "password"),
                ("client_id", "nope"),
                ("username", "jonas"),
                ("password", "pass"),
            ],
            401,
            "invalid_client",
        ),
        (
            "no username",
            vec![
                ("grant_type", "password"),
                ("client_id", client_id),
                ("password", "pass"),
            ],
            400,
            "invalid_request",
        ),
        (
            "no password",
            vec![
                ("grant_type", "password"),
                ("client_id", client_id),
                ("username", "jonas"),
            ],
            400,
            "invalid_request",
        ),
        (
            "empty password counts as missing",
            vec![
                ("grant_type", "password"),
                ("client_id", client_id),
                ("username", "jonas"),
                ("password", ""),
            ],
            400,
            "invalid_request",
        ),
        (
            "wrong password",
            vec![
                ("grant_type", "password"),
                ("client_id", client_id),
                ("username", "jonas"),
                ("password", "wrong"),
            ],
            400,
            "invalid_grant",
        ),
        (
            "unknown user",
            vec![
                ("grant_type", "password"),
                ("client_id", client_id),
                ("username", "nobody"),
                ("password", "pass"),
            ],
            400,
            "invalid_grant",
        ),
        (
            "unknown scope",
            vec![
                ("grant_type", "password"),
                ("client_id", client_id),
                ("username", "jonas"),
                ("password", "pass"),
                ("scope", "admin"),
            ],
            400,
            "invalid_scope",
        ),
        (
            "bad refresh token",
            vec![
                ("grant_type", "refresh_token"),
                ("client_id", client_id),
                ("refresh_token", "nope"),
            ],
            400,
            "invalid_grant",
        ),
        (
            "no refresh token",
            vec![("grant_type", "refresh_token"), ("client_id", client_id)],
            400,
            "invalid_request",
        ),
        (
            "refresh token of another client",
            vec![
                ("grant_type", "refresh_token"),
                ("client_id", &other_client),
                ("refresh_token", refresh_token),
            ],
            400,
            "invalid_grant",
        ),
    ];
    for (name, form, status, code) in cases {
        let response = gateway.token_request(&form).await;
        assert_eq!(response.status(), status, "{name}");
        assert_eq!(response.headers()["cache-control"], "no-store", "{name}");
        let body = json(response).await;
        assert_eq!(body["error"], code, "{name}: {body}");
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{name}"
        );
    }

    let http = client();
    let url = gateway.url("/oauth/token");

    let duplicated = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=password&grant_type=password&client_id={client_id}&username=jonas&password=pass"))
        .send()
        .await
        .unwrap();
    assert_eq!(duplicated.status(), 400);
    let body = json(duplicated).await;
    assert_eq!(body["error"], "invalid_request");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("grant_type"));

    let get = http.get(&url).send().await.unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST");
    assert_eq!(json(get).await["error"], "invalid_request");

    let as_json = http
        .post(&url)
        .json(&serde_json::json!({"grant_type": "password", "client_id": client_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(as_json.status(), 400);
    assert_eq!(json(as_json).await["error"], "invalid_request");

    let too_large = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=password&padding={}", "x".repeat(9000)))
        .send()
        .await
        .unwrap();
    assert_eq!(too_large.status(), 413);
    assert_eq!(json(too_large).await["error"], "invalid_request");

    // The refresh token given to another client above was consumed by that
    // attempt; the rest of the session still works.
    assert_eq!(
        upstream.count(),
        0,
        "the token endpoint never reaches the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_bodies_over_the_limit_are_refused() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream));
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..20).map(|_| Ok(vec![b'a'; 1024])).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let response = client()
        .post(gateway.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_usernames_cost_as_much_as_wrong_passwords() {
    let upstream = Upstream::start().await;
    // A cost where bcrypt dominates the request time, even in debug builds.
    let gateway = Gateway::start(
        &GatewayConfig::new(&upstream).oauth("  bcrypt_cost: 10\n  lockout: {max_failures: 100}\n"),
    );
    gateway.create_user("jonas", "pass");
    let client_id = gateway.create_client("app");
    let time = |username: &'static str| {
        let gateway = &gateway;
        let client_id = client_id.clone();
        async move {
            let started = Instant::now();
            let response = gateway
                .token_request(&[
                    ("grant_type", "password"),
                    ("client_id", &client_id),
                    ("username", username),
                    ("password", "wrong"),
                ])
                .await;
            assert_eq!(response.status(), 400);
            started.elapsed()
        }
    };
    // Warm up (the decoy hash is made on first use).
    time("nobody").await;
    let mut unknown = Vec::new();
    let mut known = Vec::new();
    for _ in 0..5 {
        unknown.push(time("nobody").await);
        known.push(time("jonas").await);
    }
    unknown.sort();
    known.sort();
    let (unknown, known) = (unknown[2], known[2]);
    assert!(
        known > Duration::from_millis(20),
        "bcrypt at cost 10 should take a while: {known:?}"
    );
    assert!(
        unknown.as_secs_f64() > known.as_secs_f64() * 0.6,
        "unknown user answered in {unknown:?}, wrong password in {known:?}: a timing oracle"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_storm_is_refused_with_503_instead_of_queueing() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(
        &GatewayConfig::new(&upstream)
            .oauth("  bcrypt_cost: 12\n  bcrypt_workers: 1\n  bcrypt_queue: 0\n"),
    );
    gateway.create_user("jonas", "pass");
    let client_id = gateway.create_client("app");
    let attempts = (0..4).map(|_| {
        let client_id = client_id.clone();
        let url = gateway.url("/oauth/token");
        async move {
            let response = client()
                .post(url)
                .form(&[
                    ("grant_type", "password"),
                    ("client_id", &client_id),
                    ("username", "jonas"),
                    ("password", "wrong"),
                ])
                .send()
                .await
                .unwrap();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (
                response.status().as_u16(),
                retry_after,
                json(response).await,
            )
        }
    });
    let results: Vec<(u16, Option<String>, Value)> = futures_util::future::join_all(attempts).await;
    let refused: Vec<_> = results
        .iter()
        .filter(|(status, _, _)| *status == 503)
        .collect();
    assert!(!refused.is_empty(), "{results:?}");
    for (_, retry_after, body) in refused {
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert_eq!(body["error"], "temporarily_unavailable");
    }
    assert!(
        results.iter().any(|(status, _, _)| *status == 400),
        "at least one check ran: {results:?}"
    );

    // Meanwhile and after, the proxy path is unaffected.
    let response = client().get(gateway.url("/x")).send().await.unwrap();
    assert_eq!(response.status(), 401);
}
