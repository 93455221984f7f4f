//! RFC 7662 token introspection at `/oauth/introspect`, so other services
//! can check a token without reading Redis. Only confidential clients that
//! an administrator marked `can_introspect` (the resource servers) may ask
//! (§2.1, §4: the answer tells a caller about other clients' tokens); the
//! answer for anything unknown, expired or revoked is `{"active": false}`
//! and nothing more (§2.2).

use serde::Serialize;

use super::form::Form;
use super::token::require_client;
use super::OAuthError;
use crate::respond::Reply;
use crate::store::{ClientType, Store};
use crate::tokens::{unix_now, RawToken, TokenDigest, TokenStore};

#[derive(Serialize, Default)]
struct Introspection {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
}

pub async fn introspect(
    store: &Store,
    tokens: &TokenStore,
    form: &Form,
    authorization: Option<&str>,
) -> Reply {
    match introspect_inner(store, tokens, form, authorization).await {
        Ok(answer) => Reply::json(200, &answer).no_store(),
        Err(error) => error.into_reply(),
    }
}

async fn introspect_inner(
    store: &Store,
    tokens: &TokenStore,
    form: &Form,
    authorization: Option<&str>,
) -> Result<Introspection, OAuthError> {
    let client = require_client(store, authorization, form).await?;
    if client.client_type != ClientType::Confidential || !client.can_introspect {
        // Authenticated, but not allowed: 403 rather than 401, which would
        // invite the client to retry with other credentials.
        return Err(OAuthError::forbidden(
            "this client may not introspect tokens: it must be confidential and marked can_introspect",
        ));
    }
    let token = RawToken::from_client(form.require("token")?);
    let digest = token.digest();
    // §2.1: the hint only orders the search.
    let refresh_first = form.get("token_type_hint") == Some("refresh_token");
    for look_for_refresh in [refresh_first, !refresh_first] {
        let answer = if look_for_refresh {
            refresh_token_answer(store, &digest).await?
        } else {
            access_token_answer(store, tokens, &digest).await?
        };
        if let Some(answer) = answer {
            return Ok(answer);
        }
    }
    Ok(Introspection::default())
}

/// The answer for a live access token: one builder, whichever order the
/// search took.
async fn access_token_answer(
    store: &Store,
    tokens: &TokenStore,
    digest: &TokenDigest,
) -> Result<Option<Introspection>, OAuthError> {
    let Some(record) = tokens.find_access(digest).await? else {
        return Ok(None);
    };
    Ok(Some(Introspection {
        active: true,
        username: username_of(store, record.user_id.as_deref()).await?,
        scope: Some(record.scope),
        client_id: Some(record.client_id),
        sub: record.user_id,
        token_type: Some("Bearer"),
        exp: Some(record.expires_at),
        iat: Some(record.issued_at),
    }))
}

/// The answer for a session's current, unexpired refresh token.
async fn refresh_token_answer(
    store: &Store,
    digest: &TokenDigest,
) -> Result<Option<Introspection>, OAuthError> {
    let hex = digest.to_hex();
    let session = store
        .find_session_by_refresh(&hex)
        .await?
        .filter(|s| s.refresh_digest == hex && s.refresh_expires_at > unix_now());
    let Some(session) = session else {
        return Ok(None);
    };
    Ok(Some(Introspection {
        active: true,
        username: username_of(store, Some(&session.user_id)).await?,
        scope: Some(session.scope),
        client_id: Some(session.client_id),
        sub: Some(session.user_id),
        token_type: Some("refresh_token"),
        exp: Some(session.refresh_expires_at),
        iat: Some(session.rotated_at),
    }))
}

async fn username_of(store: &Store, user_id: Option<&str>) -> Result<Option<String>, OAuthError> {
    Ok(match user_id {
        Some(id) => store.find_user_by_id(id).await?.map(|user| user.username),
        None => None,
    })
}
