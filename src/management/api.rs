//! The management JSON API under `…/api/v1/`, described by `openapi.json`
//! beside this file. Every state change goes through [`crate::accounts`]
//! (so revocations happen) and is logged as an audit event.

use std::net::IpAddr;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::admin_auth::AdminAuth;
use crate::accounts::{AccountError, Accounts};
use crate::respond::Reply;
use crate::store::{ClientType, ClientUpdate, GrantType, Listing, Session};

pub const OPENAPI: &str = include_str!("openapi.json");

/// A management API request, after authentication.
pub struct ApiRequest {
    pub method: http::Method,
    /// The path after `/api/v1`, e.g. `/users/abc`.
    pub endpoint: String,
    pub query: String,
    pub body: Bytes,
    pub actor: String,
    pub address: IpAddr,
}

pub struct Api<'a> {
    pub accounts: &'a Accounts<'a>,
    pub admin: &'a AdminAuth,
}

/// 400 naming the field at fault.
fn invalid(field: &str, description: &str) -> Reply {
    Reply::json(
        400,
        &json!({"error": "invalid_request", "error_description": description, "field": field}),
    )
}

fn no_content() -> Reply {
    Reply {
        status: 204,
        headers: Vec::new(),
        body: Bytes::new(),
    }
}

fn method_not_allowed(allow: &'static str) -> Reply {
    Reply::error(405, "invalid_request", "method not allowed here").with_header("allow", allow)
}

/// The field an account error is about, for the page to highlight.
fn account_error(error: AccountError, field: &str) -> Reply {
    match error {
        AccountError::Invalid(description) => invalid(field, &description),
        AccountError::NotFound(what) => crate::respond::not_found(&format!("{what} not found")),
        AccountError::Duplicate(what) => Reply::json(
            409,
            &json!({"error": "conflict", "error_description": format!("{what} already exists"), "field": field}),
        ),
        AccountError::Password(crate::password::PasswordError::Busy) => {
            crate::respond::temporarily_unavailable(
                "too many password operations in progress; retry shortly",
            )
        }
        other => {
            tracing::warn!(error = %other, "management operation failed");
            crate::respond::temporarily_unavailable("a store is unavailable; retry shortly")
        }
    }
}

/// Parses a JSON body, naming the offending field on failure.
fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, Reply> {
    serde_json::from_slice(body).map_err(|error| {
        let message = error.to_string();
        // serde names the field in "unknown field `x`" / "missing field `x`".
        let field = message.split('`').nth(1).unwrap_or("body").to_string();
        invalid(&field, &format!("invalid JSON body: {message}"))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPatch {
    password: Option<String>,
    disabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewClientBody {
    name: String,
    #[serde(rename = "type", default = "public")]
    client_type: String,
    allowed_grants: Option<Vec<String>>,
    #[serde(default)]
    allowed_scopes: Vec<String>,
}

fn public() -> String {
    "public".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientPatch {
    name: Option<String>,
    allowed_grants: Option<Vec<String>>,
    allowed_scopes: Option<Vec<String>>,
    disabled: Option<bool>,
}

/// What the API shows of a session: never its token digests.
#[derive(Serialize)]
struct SessionView<'a> {
    id: &'a str,
    client_id: &'a str,
    scope: &'a str,
    created: u64,
    last_used: u64,
    refresh_expires_at: u64,
}

impl<'a> From<&'a Session> for SessionView<'a> {
    fn from(session: &'a Session) -> Self {
        SessionView {
            id: &session.id,
            client_id: &session.client_id,
            scope: &session.scope,
            created: session.created,
            last_used: session.last_used,
            refresh_expires_at: session.refresh_expires_at,
        }
    }
}

fn parse_grants(names: Vec<String>) -> Result<Vec<GrantType>, Reply> {
    crate::store::parse_grants(&names.join(",")).map_err(|e| invalid("allowed_grants", &e))
}

fn listing(query: &str) -> Result<Listing, Reply> {
    let mut listing = Listing {
        search: None,
        offset: 0,
        limit: 50,
    };
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "search" if !value.is_empty() => listing.search = Some(value.into_owned()),
            "search" => {}
            "offset" => {
                listing.offset = value
                    .parse()
                    .map_err(|_| invalid("offset", "offset is a number"))?
            }
            "limit" => {
                listing.limit = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=500).contains(l))
                    .ok_or_else(|| invalid("limit", "limit is a number from 1 to 500"))?
            }
            other => {
                return Err(invalid(
                    other,
                    &format!("unknown query parameter `{other}`"),
                ))
            }
        }
    }
    Ok(listing)
}

impl Api<'_> {
    fn accounts(&self) -> Accounts<'_> {
        *self.accounts
    }

    fn audit(&self, request: &ApiRequest, action: &str, record: &str) {
        tracing::info!(
            target: "portcullis::audit",
            actor = %request.actor,
            address = %request.address,
            action,
            record,
            "management action"
        );
    }

    pub async fn handle(&self, request: ApiRequest) -> Reply {
        let segments: Vec<&str> = request
            .endpoint
            .trim_start_matches('/')
            .split('/')
            .collect();
        let result = match (segments.as_slice(), &request.method) {
            (["whoami"], &http::Method::GET) => Ok(Reply::json(
                200,
                &json!({
                    "username": self.admin.username(),
                    "min_password_length": self.accounts.min_password_length,
                    "csrf_token": self.admin.csrf_token(),
                }),
            )),
            (["openapi.json"], &http::Method::GET) => Ok(Reply {
                status: 200,
                headers: vec![("content-type", "application/json".into())],
                body: Bytes::from_static(OPENAPI.as_bytes()),
            }),
            (["users"], &http::Method::GET) => self.list_users(&request).await,
            (["users"], &http::Method::POST) => self.create_user(&request).await,
            (["users"], _) => Err(method_not_allowed("GET, POST")),
            (["users", id], &http::Method::GET) => self.get_user(id).await,
            (["users", id], &http::Method::PATCH) => self.patch_user(&request, id).await,
            (["users", id], &http::Method::DELETE) => self.delete_user(&request, id).await,
            (["users", _], _) => Err(method_not_allowed("GET, PATCH, DELETE")),
            (["users", id, "sessions"], &http::Method::GET) => self.list_sessions(id).await,
            (["users", id, "sessions"], &http::Method::DELETE) => {
                self.revoke_all_sessions(&request, id).await
            }
            (["users", _, "sessions"], _) => Err(method_not_allowed("GET, DELETE")),
            (["users", id, "sessions", session], &http::Method::DELETE) => {
                self.revoke_session(&request, id, session).await
            }
            (["users", _, "sessions", _], _) => Err(method_not_allowed("DELETE")),
            (["clients"], &http::Method::GET) => self.list_clients(&request).await,
            (["clients"], &http::Method::POST) => self.create_client(&request).await,
            (["clients"], _) => Err(method_not_allowed("GET, POST")),
            (["clients", id], &http::Method::GET) => self.get_client(id).await,
            (["clients", id], &http::Method::PATCH) => self.patch_client(&request, id).await,
            (["clients", id], &http::Method::DELETE) => self.delete_client(&request, id).await,
            (["clients", _], _) => Err(method_not_allowed("GET, PATCH, DELETE")),
            _ => Err(crate::respond::not_found("no such management endpoint")),
        };
        result.unwrap_or_else(|reply| reply).no_store()
    }

    async fn list_users(&self, request: &ApiRequest) -> Result<Reply, Reply> {
        let listing = listing(&request.query)?;
        let page = self
            .accounts
            .store
            .list_users(&listing)
            .await
            .map_err(|e| account_error(e.into(), "users"))?;
        Ok(Reply::json(200, &page))
    }

    async fn create_user(&self, request: &ApiRequest) -> Result<Reply, Reply> {
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

    async fn get_user(&self, id: &str) -> Result<Reply, Reply> {
        match self.accounts.store.find_user_by_id(id).await {
            Ok(Some(user)) => Ok(Reply::json(200, &user)),
            Ok(None) => Err(crate::respond::not_found(&format!("user `{id}` not found"))),
            Err(e) => Err(account_error(e.into(), "id")),
        }
    }

    async fn patch_user(&self, request: &ApiRequest, id: &str) -> Result<Reply, Reply> {
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

    async fn delete_user(&self, request: &ApiRequest, id: &str) -> Result<Reply, Reply> {
        self.accounts()
            .remove_user(id)
            .await
            .map_err(|e| account_error(e, "id"))?;
        self.audit(request, "user.delete", id);
        Ok(no_content())
    }

    async fn list_sessions(&self, id: &str) -> Result<Reply, Reply> {
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

    async fn revoke_all_sessions(&self, request: &ApiRequest, id: &str) -> Result<Reply, Reply> {
        self.get_user(id).await?;
        let revoked = self
            .accounts()
            .revoke_user_sessions(id)
            .await
            .map_err(|e| account_error(e, "id"))?;
        self.audit(request, "user.sessions_revoke_all", id);
        Ok(Reply::json(200, &json!({"revoked": revoked})))
    }

    async fn revoke_session(
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

    async fn list_clients(&self, request: &ApiRequest) -> Result<Reply, Reply> {
        let listing = listing(&request.query)?;
        let page = self
            .accounts
            .store
            .list_clients(&listing)
            .await
            .map_err(|e| account_error(e.into(), "clients"))?;
        Ok(Reply::json(200, &page))
    }

    async fn create_client(&self, request: &ApiRequest) -> Result<Reply, Reply> {
        let body: NewClientBody = parse_body(&request.body)?;
        let client_type = ClientType::parse(&body.client_type)
            .ok_or_else(|| invalid("type", "type is `public` or `confidential`"))?;
        let grants = body.allowed_grants.map(parse_grants).transpose()?;
        let (client, secret) = self
            .accounts()
            .create_client(&body.name, client_type, grants, body.allowed_scopes)
            .await
            .map_err(|e| {
                let field = match &e {
                    AccountError::Invalid(message) if message.contains("scope") => "allowed_scopes",
                    AccountError::Invalid(message)
                        if message.contains("grant") || message.contains("client_credentials") =>
                    {
                        "allowed_grants"
                    }
                    _ => "name",
                };
                account_error(e, field)
            })?;
        self.audit(request, "client.create", &client.client_id);
        let mut value = serde_json::to_value(&client).expect("clients serialize");
        if let Some(secret) = secret {
            // Shown this once; only its hash is stored.
            value["client_secret"] = json!(secret);
        }
        Ok(Reply::json(201, &value))
    }

    async fn get_client(&self, id: &str) -> Result<Reply, Reply> {
        match self.accounts.store.find_client(id).await {
            Ok(Some(client)) => Ok(Reply::json(200, &client)),
            Ok(None) => Err(crate::respond::not_found(&format!(
                "client `{id}` not found"
            ))),
            Err(e) => Err(account_error(e.into(), "client_id")),
        }
    }

    async fn patch_client(&self, request: &ApiRequest, id: &str) -> Result<Reply, Reply> {
        let body: ClientPatch = parse_body(&request.body)?;
        let update = ClientUpdate {
            name: body.name,
            allowed_grants: body.allowed_grants.map(parse_grants).transpose()?,
            allowed_scopes: body.allowed_scopes,
            disabled: body.disabled,
        };
        let client = self
            .accounts()
            .update_client(id, update)
            .await
            .map_err(|e| {
                let field = match &e {
                    AccountError::Invalid(message) if message.contains("scope") => "allowed_scopes",
                    _ => "allowed_grants",
                };
                account_error(e, field)
            })?;
        self.audit(request, "client.update", id);
        Ok(Reply::json(200, &client))
    }

    async fn delete_client(&self, request: &ApiRequest, id: &str) -> Result<Reply, Reply> {
        self.accounts()
            .remove_client(id)
            .await
            .map_err(|e| account_error(e, "client_id"))?;
        self.audit(request, "client.delete", id);
        Ok(no_content())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_are_validated() {
        let ok = listing("search=jo&offset=20&limit=10").unwrap();
        assert_eq!(
            (ok.search.as_deref(), ok.offset, ok.limit),
            (Some("jo"), 20, 10)
        );
        assert_eq!(listing("").unwrap().limit, 50);
        for bad in ["limit=0", "limit=501", "offset=-1", "limit=x", "sort=name"] {
            assert_eq!(listing(bad).err().map(|r| r.status), Some(400), "{bad}");
        }
    }

    #[test]
    fn body_errors_name_the_field() {
        let error = parse_body::<NewUser>(br#"{"username": "a"}"#)
            .err()
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&error.body).unwrap();
        assert_eq!(body["field"], "password");
        let error = parse_body::<NewUser>(br#"{"username": "a", "password": "b", "admin": true}"#)
            .err()
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&error.body).unwrap();
        assert_eq!(body["field"], "admin");
    }

    #[test]
    fn the_openapi_document_is_valid_json_for_every_route() {
        let spec: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(spec["openapi"], "3.1.0");
        for path in [
            "/whoami",
            "/users",
            "/users/{id}",
            "/users/{id}/sessions",
            "/users/{id}/sessions/{session_id}",
            "/clients",
            "/clients/{client_id}",
        ] {
            assert!(spec["paths"][path].is_object(), "{path} is not documented");
        }
    }
}
