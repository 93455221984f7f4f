//! The management JSON API under `…/api/v1/`, described by `openapi.json`
//! beside this file. Every state change goes through [`crate::accounts`]
//! (so revocations happen) and is logged as an audit event.

use std::net::IpAddr;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::accounts::{AccountError, Accounts};
use crate::admin_auth::AdminAuth;
use crate::respond::Reply;
use crate::store::{ClientType, GrantType, Listing, Session};

mod clients;
mod users;

pub const OPENAPI: &str = include_str!("../openapi.json");

/// The OpenAPI document as served: openapi.json with the grant-type enum
/// filled from [`GrantType::ALL`], the one list of grant names.
pub fn openapi_document() -> &'static str {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut spec: serde_json::Value =
            serde_json::from_str(OPENAPI).expect("openapi.json is valid JSON (unit-tested)");
        spec["components"]["schemas"]["GrantType"]["enum"] =
            json!(GrantType::ALL.map(GrantType::as_str));
        spec.to_string()
    })
}

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
    /// `None` on the control socket, which may serve with no administrator
    /// configured.
    pub admin: Option<&'a AdminAuth>,
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

fn method_not_allowed(allow: &str) -> Reply {
    Reply::error(405, "invalid_request", "method not allowed here").with_header("allow", allow)
}

/// The reply to an account error. An invalid input names its own field;
/// `field` is the one a conflict or a missing record is about.
fn account_error(error: AccountError, field: &str) -> Reply {
    match error {
        AccountError::Invalid { field, message } => invalid(field.as_str(), &message),
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
    #[serde(default)]
    can_introspect: bool,
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
    can_introspect: Option<bool>,
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

/// The API's endpoints: one per path template in [`ROUTES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    WhoAmI,
    OpenApi,
    Users,
    User,
    UserSessions,
    UserSession,
    Clients,
    Client,
}

/// Every route the API serves: its OpenAPI path template, its endpoint and
/// its methods. The dispatcher matches requests against it, and the OpenAPI
/// test checks the document against it, so the two cannot drift apart.
const ROUTES: &[(&str, Endpoint, &[&str])] = &[
    ("/whoami", Endpoint::WhoAmI, &["GET"]),
    ("/openapi.json", Endpoint::OpenApi, &["GET"]),
    ("/users", Endpoint::Users, &["GET", "POST"]),
    ("/users/{id}", Endpoint::User, &["GET", "PATCH", "DELETE"]),
    (
        "/users/{id}/sessions",
        Endpoint::UserSessions,
        &["GET", "DELETE"],
    ),
    (
        "/users/{id}/sessions/{session_id}",
        Endpoint::UserSession,
        &["DELETE"],
    ),
    ("/clients", Endpoint::Clients, &["GET", "POST"]),
    (
        "/clients/{client_id}",
        Endpoint::Client,
        &["GET", "PATCH", "DELETE"],
    ),
];

/// The route `segments` belong to, with the values of its `{…}` segments.
fn find_route<'a>(
    segments: &[&'a str],
) -> Option<(Endpoint, &'static [&'static str], Vec<&'a str>)> {
    ROUTES.iter().find_map(|(template, endpoint, methods)| {
        let pattern: Vec<&str> = template.trim_start_matches('/').split('/').collect();
        if pattern.len() != segments.len() {
            return None;
        }
        let mut values = Vec::new();
        for (expected, actual) in pattern.iter().zip(segments) {
            if expected.starts_with('{') {
                if actual.is_empty() {
                    return None;
                }
                values.push(*actual);
            } else if expected != actual {
                return None;
            }
        }
        Some((*endpoint, *methods, values))
    })
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
        let Some((endpoint, methods, values)) = find_route(&segments) else {
            return crate::respond::not_found("no such management endpoint").no_store();
        };
        let method = request.method.as_str();
        if !methods.contains(&method) {
            return method_not_allowed(&methods.join(", ")).no_store();
        }
        let id = values.first().copied().unwrap_or_default();
        let result = match (endpoint, method) {
            (Endpoint::WhoAmI, _) => Ok(self.whoami()),
            (Endpoint::OpenApi, _) => Ok(Reply {
                status: 200,
                headers: vec![("content-type", "application/json".into())],
                body: Bytes::from_static(openapi_document().as_bytes()),
            }),
            (Endpoint::Users, "GET") => self.list_users(&request).await,
            (Endpoint::Users, _) => self.create_user(&request).await,
            (Endpoint::User, "GET") => self.get_user(id).await,
            (Endpoint::User, "PATCH") => self.patch_user(&request, id).await,
            (Endpoint::User, _) => self.delete_user(&request, id).await,
            (Endpoint::UserSessions, "GET") => self.list_sessions(id).await,
            (Endpoint::UserSessions, _) => self.revoke_all_sessions(&request, id).await,
            (Endpoint::UserSession, _) => self.revoke_session(&request, id, values[1]).await,
            (Endpoint::Clients, "GET") => self.list_clients(&request).await,
            (Endpoint::Clients, _) => self.create_client(&request).await,
            (Endpoint::Client, "GET") => self.get_client(id).await,
            (Endpoint::Client, "PATCH") => self.patch_client(&request, id).await,
            (Endpoint::Client, _) => self.delete_client(&request, id).await,
        };
        result.unwrap_or_else(|reply| reply).no_store()
    }

    /// Who is signed in, the page's CSRF token, and the rules the page
    /// checks before it asks: the password length and the grant types.
    fn whoami(&self) -> Reply {
        let public_defaults = GrantType::defaults(ClientType::Public);
        Reply::json(
            200,
            &json!({
                "username": self.admin.map(AdminAuth::username),
                "min_password_length": self.accounts.min_password_length,
                "csrf_token": self.admin.map(AdminAuth::csrf_token),
                "grant_types": GrantType::ALL.map(GrantType::as_str),
                "confidential_only_grants": GrantType::ALL
                    .into_iter()
                    .filter(|grant| grant.needs_confidential_client())
                    .map(GrantType::as_str)
                    .collect::<Vec<_>>(),
                "default_grants": public_defaults.into_iter().map(GrantType::as_str).collect::<Vec<_>>(),
            }),
        )
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
    fn the_openapi_document_describes_exactly_the_routes_served() {
        let spec: serde_json::Value = serde_json::from_str(openapi_document()).unwrap();
        assert_eq!(spec["openapi"], "3.1.0");
        let documented: std::collections::BTreeSet<(String, String)> = spec["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .filter(|key| ["get", "post", "patch", "delete", "put"].contains(&key.as_str()))
                    .map(move |method| (path.clone(), method.to_uppercase()))
            })
            .collect();
        let served: std::collections::BTreeSet<(String, String)> = ROUTES
            .iter()
            .flat_map(|(template, _, methods)| {
                methods
                    .iter()
                    .map(move |method| (template.to_string(), method.to_string()))
            })
            .collect();
        assert_eq!(documented, served);
        assert_eq!(
            spec["components"]["schemas"]["GrantType"]["enum"],
            json!(GrantType::ALL.map(GrantType::as_str))
        );
    }

    #[test]
    fn requests_find_their_route() {
        type Found<'a> = Option<(Endpoint, Vec<&'a str>)>;
        let cases: [(&str, Found); 8] = [
            ("whoami", Some((Endpoint::WhoAmI, vec![]))),
            ("users", Some((Endpoint::Users, vec![]))),
            ("users/u1", Some((Endpoint::User, vec!["u1"]))),
            (
                "users/u1/sessions",
                Some((Endpoint::UserSessions, vec!["u1"])),
            ),
            (
                "users/u1/sessions/s2",
                Some((Endpoint::UserSession, vec!["u1", "s2"])),
            ),
            ("clients/c1", Some((Endpoint::Client, vec!["c1"]))),
            ("users//sessions", None),
            ("nothing", None),
        ];
        for (path, expected) in cases {
            let segments: Vec<&str> = path.split('/').collect();
            let found = find_route(&segments).map(|(endpoint, _, values)| (endpoint, values));
            assert_eq!(found, expected, "{path}");
        }
    }
}
