//! `application/x-www-form-urlencoded` bodies of the token, revocation and
//! introspection endpoints, read as those endpoints read them.
//!
//! Input: the request body. Checks, besides "never panics":
//! - a body that is not UTF-8 is refused;
//! - a parsed form has no empty values (they count as omitted), and
//!   `require` agrees with `get`;
//! - the form's client credentials (`client_secret_post`) and its `scope`
//!   go through client identification and scope resolution; a resolved
//!   scope is normalized and within what the client may have;
//! - every error becomes a JSON reply.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::accounts::{client_secret_matches, hash_client_secret};
use portcullis::oauth::client_auth::presented_client;
use portcullis::oauth::form::{is_form_content_type, Form};
use portcullis::oauth::token::{normalize_scope, resolve_scope, scope_is_subset};
use portcullis::store::GrantType;
use portcullis::tokens::RawToken;

/// Every parameter the endpoints read, and one they do not.
const NAMES: &[&str] = &[
    "grant_type",
    "username",
    "password",
    "refresh_token",
    "scope",
    "client_id",
    "client_secret",
    "token",
    "token_type_hint",
    "unknown",
];

fuzz_target!(|data: &[u8]| {
    let _ = is_form_content_type(std::str::from_utf8(data).ok());
    let form = match Form::parse(data) {
        Ok(form) => form,
        Err(error) => {
            let _ = error.into_reply();
            return;
        }
    };
    assert!(std::str::from_utf8(data).is_ok(), "a non-UTF-8 body parsed");
    for name in NAMES {
        let value = form.get(name);
        assert!(value != Some(""), "`{name}` is present but empty");
        match form.require(name) {
            Ok(required) => assert_eq!(Some(required), value),
            Err(error) => {
                assert_eq!(value, None);
                let _ = error.into_reply();
            }
        }
    }
    let _ = format!("{form:?}");

    if let Some(grant_type) = form.get("grant_type") {
        let _ = GrantType::parse(grant_type);
    }
    match presented_client(None, &form) {
        Ok(Some(client)) => {
            assert_eq!(Some(client.client_id.as_str()), form.get("client_id"));
            if let Some(secret) = &client.secret {
                let stored = hash_client_secret("the-real-secret");
                let _ = client_secret_matches(secret, &stored);
                let _ = client_secret_matches(secret, "sha256$not-hex");
            }
        }
        Ok(None) => assert_eq!(form.get("client_id"), None),
        Err(error) => {
            let _ = error.into_reply();
        }
    }

    let allowed: Vec<String> = ["read", "write", "admin:all"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    match resolve_scope(form.get("scope"), &allowed) {
        Ok(scope) => {
            assert_eq!(normalize_scope(&scope), scope, "resolved scope not normal");
            assert!(
                scope
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .all(|s| allowed.iter().any(|a| a == s)),
                "resolved scope {scope:?} is not allowed"
            );
            assert!(scope_is_subset(&scope, &allowed.join(" ")));
        }
        Err(error) => {
            let _ = error.into_reply();
        }
    }
    if let Some(scope) = form.get("scope") {
        let normal = normalize_scope(scope);
        assert_eq!(
            normalize_scope(&normal),
            normal,
            "normalize_scope not idempotent"
        );
        let _ = scope_is_subset(scope, "read write");
    }

    for name in ["token", "refresh_token"] {
        if let Some(token) = form.get(name) {
            let _ = RawToken::from_client(token).digest().to_hex();
        }
    }
});
