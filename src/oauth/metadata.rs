//! RFC 8414 authorization server metadata at
//! `/.well-known/oauth-authorization-server`: what a client library needs to
//! find our endpoints and supported features without configuration.

use serde::Serialize;

use super::OAuthError;
use crate::config::OAuthConfig;
use crate::respond::Reply;
use crate::store::{GrantType, Listing, Store};

#[derive(Serialize)]
struct Metadata {
    issuer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revocation_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    introspection_endpoint: Option<String>,
    grant_types_supported: Vec<&'static str>,
    /// No authorization endpoint: no browser redirect flows.
    response_types_supported: Vec<&'static str>,
    token_endpoint_auth_methods_supported: Vec<&'static str>,
    revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    scopes_supported: Vec<String>,
}

/// `issuer` comes from the configuration, or else from the request's host
/// (RFC 8414 requires https; the gateway terminates TLS itself).
pub async fn metadata(
    config: &OAuthConfig,
    store: &Store,
    host: Option<&str>,
    route_scopes: impl Iterator<Item = &String>,
) -> Reply {
    let issuer = match (&config.issuer, host) {
        (Some(issuer), _) => issuer.clone(),
        (None, Some(host)) if is_plausible_host(host) => format!("https://{host}"),
        _ => "https://localhost".to_string(),
    };
    let endpoint = |path: &Option<String>| path.as_ref().map(|p| format!("{issuer}{p}"));
    let clients = match store.list_clients(&Listing::everything()).await {
        Ok(page) => page.items,
        Err(error) => return OAuthError::from(error).into_reply(),
    };
    let mut scopes: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.allowed_scopes)
        .chain(route_scopes.cloned())
        .collect();
    scopes.sort();
    scopes.dedup();
    let body = Metadata {
        token_endpoint: endpoint(&config.token_path),
        revocation_endpoint: endpoint(&config.revoke_path),
        introspection_endpoint: endpoint(&config.introspect_path),
        issuer,
        grant_types_supported: GrantType::ALL.iter().map(|g| g.as_str()).collect(),
        response_types_supported: Vec::new(),
        token_endpoint_auth_methods_supported: vec![
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        revocation_endpoint_auth_methods_supported: vec![
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        introspection_endpoint_auth_methods_supported: vec![
            "client_secret_basic",
            "client_secret_post",
        ],
        scopes_supported: scopes,
    };
    Reply::json(200, &body).with_header("cache-control", "public, max-age=300")
}

/// A Host header is client input: only a host[:port] shape is echoed back.
fn is_plausible_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for (host, ok) in [
            ("gateway.example.com", true),
            ("localhost:8443", true),
            ("[::1]:8443", true),
            ("evil.com/path", false),
            ("a b", false),
            ("", false),
        ] {
            assert_eq!(is_plausible_host(host), ok, "{host}");
        }
    }
}
