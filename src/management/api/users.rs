//! The users' endpoints: list, create, read, change (password, disabled),
//! remove, and their sessions.

use serde_json::json;

use super::{
    account_error, invalid, listing, no_content, parse_body, Api, ApiRequest, NewUser, SessionView,
    UserPatch,
};
use crate::accounts::AccountError;
use crate::respond::Reply;

impl Api<'_> {
    pub(super) async fn list_users(&self, request: &ApiRequest) -> Result<Reply, Reply> {
        let listing = listing(&request.query)?;
        let page = self
            .accounts
            .store
            .list_users(&listing)
            .await
            .map_err(|e| account_error(e.into(), "users"))?;
        Ok(Reply::json(200, &page))
    }

    pub(super) async fn create_user(&self, request: &ApiRequest) -> Result<Reply, Reply> {
        let body: NewUser = parse_body(&request.body)?;
        if let Err(message) = crate::store::validate_username(&body.username) {
            return Err(invalid("username", &message));
        }
        let user = self
            .accounts()
            .create_user(&body.username, &body.password)
            .await
            .map_err(|e| {
                let field = if matches!(e, AccountError::Duplicate(_)) {
                    "username"
                } else {
                    "password"
                };
                account_error(e, field)
            })?;
        self.audit(request, "user.create", &user.id);
        Ok(Reply::json(201, &user))
    }

    pub(super) async fn get_user(&self, id: &str) -> Result<Reply, Reply> {
        match self.accounts.store.find_user_by_id(id).await {
            Ok(Some(user)) => Ok(Reply::json(200, &user)),
            Ok(None) => Err(crate::respond::not_found(&format!("user `{id}` not found"))),
            Err(e) => Err(account_error(e.into(), "id")),
        }
    }

    pub(super) async fn patch_user(&self, request: &ApiRequest, id: &str) -> Result<Reply, Reply> {
        let body: UserPatch = parse_body(&request.body)?;
        if body.password.is_none() && body.disabled.is_none() {
            return Err(invalid("body", "send `password` and/or `disabled`"));
        }
        let accounts = self.accounts();
        let mut user = None;
        if let Some(password) = &body.password {
            user = Some(
                accounts
                    .set_password(id, password)
                    .await
                    .map_err(|e| account_error(e, "password"))?,
            );
            self.audit(request, "user.password_reset", id);
        }
        if let Some(disabled) = body.disabled {
            user = Some(
                accounts
                    .set_disabled(id, disabled)
                    .await
                    .map_err(|e| account_error(e, "disabled"))?,
            );
            self.audit(
                request,
                if disabled {
                    "user.disable"
                } else {
                    "user.enable"
                },
                id,
            );
        }
        Ok(Reply::json(200, &user))
    }

    pub(super) async fn delete_user(&self, request: &ApiRequest, id: &str) -> Result<Reply, Reply> {
        self.accounts()
            .remove_user(id)
            .await
            .map_err(|e| account_error(e, "id"))?;
        self.audit(request, "user.delete", id);
        Ok(no_content())
    }

    pub(super) async fn list_sessions(&self, id: &str) -> Result<Reply, Reply> {
        self.get_user(id).await?;
        let sessions = self
            .accounts
            .store
            .sessions_of_user(id)
            .await
            .map_err(|e| account_error(e.into(), "id"))?;
        let now = crate::tokens::unix_now();
        let views: Vec<SessionView> = sessions
            .iter()
            .filter(|s| s.refresh_expires_at > now)
            .map(SessionView::from)
            .collect();
        Ok(Reply::json(200, &views))
    }

    pub(super) async fn revoke_all_sessions(
        &self,
        request: &ApiRequest,
        id: &str,
    ) -> Result<Reply, Reply> {
        self.get_user(id).await?;
        let revoked = self
            .accounts()
            .revoke_user_sessions(id)
            .await
            .map_err(|e| account_error(e, "id"))?;
        self.audit(request, "user.sessions_revoke_all", id);
        Ok(Reply::json(200, &json!({"revoked": revoked})))
    }

    pub(super) async fn revoke_session(
        &self,
        request: &ApiRequest,
        id: &str,
        session: &str,
    ) -> Result<Reply, Reply> {
        self.accounts()
            .revoke_session(id, session)
            .await
            .map_err(|e| account_error(e, "session"))?;
        self.audit(request, "user.session_revoke", &format!("{id}/{session}"));
        Ok(no_content())
    }
}
