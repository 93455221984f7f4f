//! MongoDB + Redis: the shared backends of a multi-instance deployment.

use std::time::{Duration, Instant};

use mongodb::bson::{doc, oid::ObjectId, Document};
use redis::AsyncCommands;
use sha2::{Digest, Sha256};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walkthrough_on_mongodb_and_redis_from_the_environment() {
    let upstream = Upstream::start().await;
    let redis = Redis::start();
    let (uri, database) = Mongo::shared().fresh_database_uri();
    let config = GatewayConfig {
        backends_from_env: true,
        ..GatewayConfig::shared(&upstream, &redis, &uri)
    };
    let gateway = Gateway::start(&config);
    let session = signed_in(&gateway).await;

    // The user went to MongoDB in Flask-Sentinel's schema.
    let db = Mongo::shared().database(&database).await;
    let stored: Document = db
        .collection::<Document>("users")
        .find_one(doc! {"username": "jonas"})
        .await
        .unwrap()
        .expect("the user is in MongoDB");
    assert_eq!(
        stored.get_object_id("_id").unwrap().to_hex(),
        session.user_id
    );
    assert!(stored.get_str("hashpw").unwrap().starts_with("$2b$04$"));
    let stored_client: Document = db
        .collection::<Document>("clients")
        .find_one(doc! {"client_id": &session.client_id})
        .await
        .unwrap()
        .expect("the client is in MongoDB");
    assert_eq!(stored_client.get_str("client_type").unwrap(), "public");

    // The token went to Redis, by digest only, with its lifetime as TTL.
    let mut connection = redis.connection().await;
    let digest = hex_sha256(&session.tokens.access_token);
    let key = format!("portcullis:access:{digest}");
    let record: String = connection.get(&key).await.unwrap();
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(record["user_id"], session.user_id.as_str());
    assert_eq!(record["client_id"], session.client_id.as_str());
    let ttl: i64 = connection.ttl(&key).await.unwrap();
    assert!((3590..=3600).contains(&ttl), "ttl {ttl}");
    // Refresh tokens live in MongoDB, by digest, so they survive Redis.
    let refresh_digest = hex_sha256(&session.tokens.refresh_token);
    let stored_session: Document = db
        .collection::<Document>("portcullis_sessions")
        .find_one(doc! {"refresh_digest": &refresh_digest})
        .await
        .unwrap()
        .expect("the session is in MongoDB");
    assert_eq!(stored_session.get_str("user_id").unwrap(), session.user_id);
    let keys: Vec<String> = connection.keys("*").await.unwrap();
    assert!(
        keys.iter().all(|k| !k.contains(&refresh_digest)),
        "{keys:?}"
    );
    let raw: Option<String> = connection.get(&session.tokens.access_token).await.unwrap();
    assert!(
        raw.is_none(),
        "raw tokens are not keys unless legacy_plain_keys is on"
    );

    let response = client()
        .get(gateway.https_url("/anything?q=1"))
        .bearer_auth(&session.tokens.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        upstream.last().header_values("x-user-id"),
        vec![session.user_id.as_str()]
    );
}

fn hex_sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_plain_keys_write_flask_sentinels_format() {
    let upstream = Upstream::start().await;
    let redis = Redis::start();
    let (uri, _) = Mongo::shared().fresh_database_uri();
    let gateway = Gateway::start(
        &GatewayConfig::shared(&upstream, &redis, &uri).oauth("  legacy_plain_keys: true\n"),
    );
    let session = signed_in(&gateway).await;
    let mut connection = redis.connection().await;
    let user_id: String = connection.get(&session.tokens.access_token).await.unwrap();
    assert_eq!(user_id, session.user_id);
    let ttl: i64 = connection.ttl(&session.tokens.access_token).await.unwrap();
    assert!((3590..=3600).contains(&ttl), "ttl {ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_closed_and_recovers() {
    let upstream = Upstream::start().await;
    let mut redis = Redis::start();
    let (uri, _) = Mongo::shared().fresh_database_uri();
    let gateway = Gateway::start(&GatewayConfig::shared(&upstream, &redis, &uri));
    let session = signed_in(&gateway).await;
    let token = session.tokens.access_token.clone();
    assert_eq!(gateway.get_status("/x", &token).await, 200);
    let forwarded = upstream.count();

    redis.stop();
    for _ in 0..3 {
        let started = Instant::now();
        let response = gateway.get_with_token("/x", &token).await;
        assert_eq!(response.status(), 503);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "answered in {:?}",
            started.elapsed()
        );
        assert_eq!(response.headers()["retry-after"], "1");
        assert_eq!(json(response).await["error"], "temporarily_unavailable");
    }
    let login = gateway
        .password_grant(&session.client_id, "jonas", "pass")
        .await;
    assert_eq!(login.status(), 503);
    assert_eq!(json(login).await["error"], "temporarily_unavailable");
    assert_eq!(
        upstream.count(),
        forwarded,
        "nothing is forwarded while Redis is down"
    );
    assert!(gateway
        .metrics()
        .await
        .contains("portcullis_token_store_up 0"));

    // Redis comes back empty (no persistence): the gateway reconnects on its
    // own; the old token is gone, a new login works.
    redis.restart();
    let restarted = Instant::now();
    let recovered = eventually(Duration::from_secs(2), || async {
        gateway.get_status("/x", &token).await == 401
    })
    .await;
    assert!(recovered, "the gateway did not reconnect within 2 s");
    assert!(restarted.elapsed() < Duration::from_secs(2));
    // The lockout's own connection learns of the restart on its first use:
    // that sign-in may get a 503 (fail closed); the next ones succeed.
    let mut fresh = None;
    for _ in 0..20 {
        let response = gateway
            .password_grant(&session.client_id, "jonas", "pass")
            .await;
        match response.status().as_u16() {
            200 => {
                fresh = Some(
                    json(response).await["access_token"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
                break;
            }
            503 => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("sign-in after Redis came back: {other}"),
        }
    }
    let fresh = fresh.expect("a sign-in works once Redis is back");
    let response = gateway.get_with_token("/x", &fresh).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flask_sentinel_user_logs_in_unchanged() {
    let upstream = Upstream::start().await;
    let redis = Redis::start();
    let (uri, database) = Mongo::shared().fresh_database_uri();
    // Another program writes users and clients the way Flask-Sentinel did.
    let db = Mongo::shared().database(&database).await;
    let oid = ObjectId::new();
    let hash = bcrypt::hash("legacy-pass", 4)
        .unwrap()
        .replacen("$2b$", "$2a$", 1);
    db.collection::<Document>("users")
        .insert_one(doc! {"_id": oid, "username": "alice", "hashpw": hash})
        .await
        .unwrap();
    db.collection::<Document>("clients")
        .insert_one(doc! {"client_id": "flask-sentinel-client-0123456789abcdefghij", "client_type": "public"})
        .await
        .unwrap();

    let gateway = Gateway::start(&GatewayConfig::shared(&upstream, &redis, &uri));
    let tokens = gateway
        .login(
            "flask-sentinel-client-0123456789abcdefghij",
            "alice",
            "legacy-pass",
        )
        .await;
    let response = gateway.get_with_token("/x", &tokens.access_token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        upstream.last().header_values("x-user-id"),
        vec![oid.to_hex().as_str()]
    );

    // The CLI sees the same user and does not print its hash.
    let listed = gateway.run(&["user", "list", "--json"], None);
    assert!(listed.status.success());
    let stdout = String::from_utf8(listed.stdout).unwrap();
    assert!(
        stdout.contains("alice") && !stdout.contains("$2a$"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_accept_each_others_tokens() {
    let upstream = Upstream::start().await;
    let redis = Redis::start();
    let (uri, _) = Mongo::shared().fresh_database_uri();
    let first = Gateway::start(
        &GatewayConfig::shared(&upstream, &redis, &uri).oauth("  refresh_grace_seconds: 0\n"),
    );
    let second = Gateway::start(
        &GatewayConfig::shared(&upstream, &redis, &uri).oauth("  refresh_grace_seconds: 0\n"),
    );
    let session = signed_in(&first).await;

    let response = second
        .get_with_token("/x", &session.tokens.access_token)
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        upstream.last().header_values("x-user-id"),
        vec![session.user_id.as_str()]
    );

    // A refresh at the second instance rotates for both: replaying the old
    // token at the first instance, after the grace window, revokes it all.
    let refreshed = second
        .refresh(&session.client_id, &session.tokens.refresh_token)
        .await;
    assert_eq!(refreshed.status(), 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let replay = first
        .refresh(&session.client_id, &session.tokens.refresh_token)
        .await;
    assert_eq!(replay.status(), 400);
    assert_eq!(json(replay).await["error"], "invalid_grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_usernames_in_mongodb_stop_startup_with_a_clear_error() {
    let upstream = Upstream::start().await;
    let redis = Redis::start();
    let (uri, database) = Mongo::shared().fresh_database_uri();
    let db = Mongo::shared().database(&database).await;
    for _ in 0..2 {
        db.collection::<Document>("users")
            .insert_one(doc! {"_id": ObjectId::new(), "username": "twin", "hashpw": "$2b$04$x"})
            .await
            .unwrap();
    }
    let gateway = Gateway::prepare(&GatewayConfig::shared(&upstream, &redis, &uri));
    let output = gateway.run(&["serve"], None);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("duplicate") && stderr.contains("username"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_manages_users_and_clients_in_mongodb() {
    let upstream = Upstream::start().await;
    let redis = Redis::start();
    let (uri, _) = Mongo::shared().fresh_database_uri();
    let gateway = Gateway::prepare(&GatewayConfig::shared(&upstream, &redis, &uri));
    crate::cli::exercise_user_and_client_commands(&gateway);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_over_tls() {
    let upstream = Upstream::start().await;
    let (redis, certificate) = Redis::start_tls();
    let (uri, _) = Mongo::shared().fresh_database_uri();
    let config = GatewayConfig {
        // The system trust store, extended with the test CA.
        extra_env: vec![("SSL_CERT_FILE".into(), certificate.display().to_string())],
        ..GatewayConfig::shared(&upstream, &redis, &uri)
    };
    let gateway = Gateway::start(&config);
    let session = signed_in(&gateway).await;
    assert_eq!(
        gateway.get_status("/x", &session.tokens.access_token).await,
        200
    );
    assert_eq!(
        upstream.last().header_values("x-user-id"),
        vec![session.user_id.as_str()]
    );

    // Without trusting the CA, the gateway refuses to start: TLS is verified.
    let untrusted = Gateway::prepare(&GatewayConfig::shared(&upstream, &redis, &uri));
    let output = untrusted.run(&["serve"], None);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot reach Redis"));
}
