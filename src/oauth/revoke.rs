//! RFC 7009 token revocation at `/oauth/revoke`.
//!
//! The client authenticates as at the token endpoint and may revoke only
//! tokens issued to it. A refresh token takes its whole session with it
//! (every access token issued from it), and so does a refresh token the
//! session already rotated away: whoever holds an old one should not be
//! able to keep the family alive by revoking it quietly, and reuse at the
//! token endpoint ends the family the same way. An access token goes alone. The
//! answer is 200 whether or not the token was known (§2.2), so the endpoint
//! cannot be used to probe for valid tokens.

use super::form::Form;
use super::token::require_client;
use super::OAuthError;
use crate::respond::Reply;
use crate::store::Store;
use crate::tokens::{RawToken, TokenStore};

pub async fn revoke(
    store: &Store,
    tokens: &TokenStore,
    form: &Form,
    authorization: Option<&str>,
) -> Reply {
    match revoke_inner(store, tokens, form, authorization).await {
        Ok(()) => Reply {
            status: 200,
            headers: Vec::new(),
            body: bytes::Bytes::new(),
        }
        .no_store(),
        Err(error) => error.into_reply(),
    }
}

async fn revoke_inner(
    store: &Store,
    tokens: &TokenStore,
    form: &Form,
    authorization: Option<&str>,
) -> Result<(), OAuthError> {
    let client = require_client(store, authorization, form).await?;
    let token = RawToken::from_client(form.require("token")?);
    let digest = token.digest();
    // §2.1: the hint only orders the search; an unknown hint is ignored.
    let refresh_first = form.get("token_type_hint") != Some("access_token");
    for look_for_refresh in [refresh_first, !refresh_first] {
        if look_for_refresh {
            if let Some(session) = store.find_session_by_refresh(&digest.to_hex()).await? {
                // Found by its current, previous or a retired digest.
                if session.client_id == client.client_id {
                    crate::sessions::end_session::<OAuthError>(store, tokens, &session.id).await?;
                    crate::metrics::token_revoked(crate::metrics::RevokedToken::RefreshToken);
                    return Ok(());
                }
            }
        } else if let Some(record) = tokens.find_access(&digest).await? {
            if record.client_id == client.client_id {
                tokens.delete_access(&[digest]).await?;
                crate::metrics::token_revoked(crate::metrics::RevokedToken::AccessToken);
                return Ok(());
            }
        }
    }
    Ok(())
}
