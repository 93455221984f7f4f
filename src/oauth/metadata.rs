//! RFC 8414 authorization server metadata at
//! `/.well-known/oauth-authorization-server`: what a client library needs to
//! find our endpoints and supported features without configuration.

use serde::Serialize;

use crate::config::OAuthConfig;
use crate::respond::Reply;
use crate::store::GrantType;

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

/// The issuer and every endpoint URL, and how the document may be cached.
///
/// `issuer` comes from `oauth.issuer`, or else from the request's host
/// (RFC 8414 requires https; the gateway terminates TLS itself). A document
/// built from the client's `Host` is only that client's: a shared cache
/// that kept it would hand everyone the endpoints some client named, so it
/// is sent `private` with `Vary: Host`. Nothing here reads the store, so
/// the document answers while a store is down.
pub fn metadata(config: &OAuthConfig, host: Option<&str>, route_scopes: &[String]) -> Reply {
    let issuer = match (&config.issuer, host) {
        (Some(issuer), _) => issuer.clone(),
        (None, Some(host)) if is_plausible_host(host) => format!("https://{host}"),
        _ => "https://localhost".to_string(),
    };
    let endpoint = |path: &Option<String>| path.as_ref().map(|p| format!("{issuer}{p}"));
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
        // The scopes routes ask for. Each client's own are not listed:
        // finding them would cost a scan of every client per request, and
        // RFC 8414 §2 lets a server leave supported scopes out.
        scopes_supported: route_scopes.to_vec(),
    };
    let reply = Reply::json(200, &body);
    match config.issuer {
        Some(_) => reply.with_header("cache-control", "public, max-age=300"),
        None => reply
            .with_header("cache-control", "private")
            .with_header("vary", "Host"),
    }
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

    fn oauth_config(oauth_yaml: &str) -> OAuthConfig {
        let text = format!(
            "upstreams: {{app: {{servers: [\"127.0.0.1:3000\"]}}}}\nroutes: [{{path_prefix: /, upstream: app}}]\noauth: {{{oauth_yaml}}}\n"
        );
        let env = std::collections::BTreeMap::new();
        crate::config::parse(&text, std::path::Path::new("."), &env)
            .unwrap()
            .oauth
    }

    fn body(reply: &Reply) -> serde_json::Value {
        serde_json::from_slice(&reply.body).unwrap()
    }

    #[test]
    fn a_document_built_from_the_host_is_not_for_shared_caches() {
        let scopes = ["admin".to_string()];
        let derived = metadata(&oauth_config(""), Some("evil.example"), &scopes);
        assert_eq!(derived.status, 200);
        assert_eq!(derived.header("cache-control"), Some("private"));
        assert_eq!(derived.header("vary"), Some("Host"));
        assert_eq!(body(&derived)["issuer"], "https://evil.example");
        assert_eq!(
            body(&derived)["token_endpoint"],
            "https://evil.example/oauth/token"
        );
        assert_eq!(
            body(&derived)["scopes_supported"],
            serde_json::json!(["admin"])
        );

        let configured = oauth_config("issuer: \"https://auth.example\"");
        let fixed = metadata(&configured, Some("evil.example"), &scopes);
        assert_eq!(fixed.header("cache-control"), Some("public, max-age=300"));
        assert_eq!(fixed.header("vary"), None);
        assert_eq!(body(&fixed)["issuer"], "https://auth.example");
        assert_eq!(
            body(&fixed)["revocation_endpoint"],
            "https://auth.example/oauth/revoke"
        );
    }

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
