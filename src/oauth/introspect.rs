//! RFC 7662 token introspection at `/oauth/introspect`, so other services
//! can check a token without reading Redis. Only confidential clients (the
//! resource servers) may ask; the answer for anything unknown, expired or
//! revoked is `{"active": false}` and nothing more (§2.2).

use serde::Serialize;

use super::form::Form;
use super::token::require_client;
use super::OAuthError;
use crate::respond::Reply;
use crate::store::{ClientType, Store};
use crate::tokens::{unix_now, RawToken, TokenStore};

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
    if client.client_type != ClientType::Confidential {
        return Err(OAuthError::invalid_client(
            "introspection is for confidential clients (resource servers) only",
        ));
    }
    let token = RawToken::from_client(form.require("token")?);
    let digest = token.digest();
    let hint_refresh = form.get("token_type_hint") == Some("refresh_token");

    let access = if hint_refresh {
        None
    } else {
        tokens.find_access(&digest).await?
    };
    if let Some(record) = access {
        let username = match &record.user_id {
            Some(id) => store.find_user_by_id(id).await?.map(|u| u.username),
            None => None,
        };
        return Ok(Introspection {
            active: true,
            scope: Some(record.scope),
            client_id: Some(record.client_id),
            username,
            sub: record.user_id,
            token_type: Some("Bearer"),
            exp: Some(record.expires_at),
            iat: Some(record.issued_at),
        });
    }
    let session = store
        .find_session_by_refresh(&digest.to_hex())
        .await?
        .filter(|s| s.refresh_digest == digest.to_hex() && s.refresh_expires_at > unix_now());
    if let Some(session) = session {
        let username = store
            .find_user_by_id(&session.user_id)
            .await?
            .map(|u| u.username);
        return Ok(Introspection {
            active: true,
            scope: Some(session.scope),
            client_id: Some(session.client_id),
            username,
            sub: Some(session.user_id),
            token_type: Some("refresh_token"),
            exp: Some(session.refresh_expires_at),
            iat: Some(session.rotated_at),
        });
    }
    if hint_refresh {
        if let Some(record) = tokens.find_access(&digest).await? {
            return Ok(Introspection {
                active: true,
                scope: Some(record.scope),
                client_id: Some(record.client_id),
                sub: record.user_id,
                token_type: Some("Bearer"),
                exp: Some(record.expires_at),
                iat: Some(record.issued_at),
                ..Default::default()
            });
        }
    }
    Ok(Introspection::default())
}
