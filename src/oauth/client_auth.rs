//! Client authentication at the token, revocation and introspection
//! endpoints (RFC 6749 §2.3.1): `client_secret_basic` (HTTP Basic with
//! form-encoded id and secret), `client_secret_post` (form parameters), or
//! `none` for public clients (client_id alone, as in Flask-Sentinel).

use base64::Engine;

use super::form::Form;
use super::OAuthError;
use crate::accounts::client_secret_matches;
use crate::store::{Client, ClientType, Store};

/// What the client presented, before checking it.
#[derive(Debug, PartialEq, Eq)]
pub struct PresentedClient {
    pub client_id: String,
    pub secret: Option<String>,
    /// Presented with HTTP Basic: failures then answer with a Basic challenge.
    pub via_basic: bool,
}

/// Reads the client's credentials from `Authorization: Basic` or the form.
/// Using both methods at once is refused (RFC 6749 §2.3: "MUST NOT use more
/// than one authentication method in each request").
pub fn presented_client(
    authorization: Option<&str>,
    form: &Form,
) -> Result<Option<PresentedClient>, OAuthError> {
    let basic = authorization.and_then(|value| {
        let (scheme, rest) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
    });
    if let Some(encoded) = basic {
        let malformed = || {
            OAuthError::invalid_client("malformed HTTP Basic credentials").with_basic_challenge()
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| malformed())?;
        let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
        // §2.3.1: both are application/x-www-form-urlencoded before Basic.
        let id = url_decode(id);
        let secret = url_decode(secret);
        if form.get("client_secret").is_some() {
            return Err(OAuthError::invalid_request(
                "send the client secret either with HTTP Basic or in the body, not both",
            ));
        }
        if form.get("client_id").is_some_and(|form_id| form_id != id) {
            return Err(OAuthError::invalid_request(
                "client_id in the body differs from the HTTP Basic user",
            ));
        }
        return Ok(Some(PresentedClient {
            client_id: id,
            secret: (!secret.is_empty()).then_some(secret),
            via_basic: true,
        }));
    }
    Ok(form.get("client_id").map(|id| PresentedClient {
        client_id: id.to_string(),
        secret: form.get("client_secret").map(String::from),
        via_basic: false,
    }))
}

fn url_decode(text: &str) -> String {
    form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

/// What every failed client authentication answers: an unknown client, a
/// disabled one, a wrong or missing secret all look the same, so the
/// endpoint tells nothing about which client ids exist. The reason goes to
/// the debug log.
pub const CLIENT_AUTHENTICATION_FAILED: &str =
    "client authentication failed: unknown client, disabled client, or wrong credentials";

/// Checks presented credentials against the store.
pub async fn authenticate_client(
    store: &Store,
    presented: &PresentedClient,
) -> Result<Client, OAuthError> {
    let found = store.find_client(&presented.client_id).await?;
    match refusal(found.as_ref(), presented) {
        None => Ok(found.expect("a refusal is given for no client")),
        Some(reason) => {
            tracing::debug!(client_id = %presented.client_id, reason, "client authentication failed");
            crate::metrics::auth_failure(crate::metrics::AuthFailure::InvalidClient);
            Err(OAuthError::invalid_client(CLIENT_AUTHENTICATION_FAILED))
        }
    }
}

/// Why `presented` does not authenticate as `client`, or `None` when it
/// does. Pure, so every case is tested.
fn refusal(client: Option<&Client>, presented: &PresentedClient) -> Option<&'static str> {
    let Some(client) = client else {
        return Some("unknown client");
    };
    if client.disabled {
        return Some("disabled client");
    }
    match (client.client_type, &presented.secret, &client.secret_hash) {
        (ClientType::Public, None, _) => None,
        (ClientType::Public, Some(_), _) => Some("a secret sent for a public client"),
        (ClientType::Confidential, Some(secret), Some(hash))
            if client_secret_matches(secret, hash) =>
        {
            None
        }
        (ClientType::Confidential, None, _) => Some("no secret for a confidential client"),
        (ClientType::Confidential, _, _) => Some("wrong secret"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(id: &str, secret: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    }

    #[test]
    fn credentials_from_basic_or_form() {
        let empty = Form::parse(b"").unwrap();
        let presented = presented_client(Some(&basic("app", "s%3Acret")), &empty)
            .unwrap()
            .unwrap();
        assert_eq!(presented.client_id, "app");
        assert_eq!(presented.secret.as_deref(), Some("s:cret"));
        assert!(presented.via_basic);

        let public = presented_client(Some(&basic("app", "")), &empty)
            .unwrap()
            .unwrap();
        assert_eq!(public.secret, None);

        let form = Form::parse(b"client_id=app&client_secret=s").unwrap();
        let presented = presented_client(None, &form).unwrap().unwrap();
        assert_eq!(presented.secret.as_deref(), Some("s"));
        assert!(!presented.via_basic);

        assert_eq!(presented_client(Some("Bearer x"), &empty).unwrap(), None);
        assert_eq!(presented_client(None, &empty).unwrap(), None);
    }

    #[test]
    fn every_refusal_has_a_reason_and_only_good_credentials_pass() {
        let hash = crate::accounts::hash_client_secret("right");
        let client = |client_type, disabled| Client {
            client_id: "c".into(),
            name: "n".into(),
            client_type,
            secret_hash: (client_type == ClientType::Confidential).then(|| hash.clone()),
            allowed_grants: Vec::new(),
            allowed_scopes: Vec::new(),
            disabled,
            created: 0,
            can_introspect: false,
            generation: 0,
        };
        let with = |secret: Option<&str>| PresentedClient {
            client_id: "c".into(),
            secret: secret.map(String::from),
            via_basic: false,
        };
        let public = client(ClientType::Public, false);
        let confidential = client(ClientType::Confidential, false);
        let disabled = client(ClientType::Confidential, true);
        let cases: [(Option<&Client>, Option<&str>, bool); 7] = [
            (Some(&public), None, true),
            (Some(&public), Some("x"), false),
            (Some(&confidential), Some("right"), true),
            (Some(&confidential), Some("wrong"), false),
            (Some(&confidential), None, false),
            (Some(&disabled), Some("right"), false),
            (None, Some("right"), false),
        ];
        for (client, secret, passes) in cases {
            assert_eq!(
                refusal(client, &with(secret)).is_none(),
                passes,
                "{client:?} {secret:?}"
            );
        }
    }

    #[test]
    fn two_methods_or_garbage_are_refused() {
        let both = Form::parse(b"client_secret=s").unwrap();
        assert_eq!(
            presented_client(Some(&basic("app", "s")), &both)
                .unwrap_err()
                .code,
            "invalid_request"
        );
        let other_id = Form::parse(b"client_id=other").unwrap();
        assert_eq!(
            presented_client(Some(&basic("app", "s")), &other_id)
                .unwrap_err()
                .code,
            "invalid_request"
        );
        let empty = Form::parse(b"").unwrap();
        for garbage in ["Basic !!!", "Basic bm9jb2xvbg=="] {
            let error = presented_client(Some(garbage), &empty).unwrap_err();
            assert_eq!(error.code, "invalid_client", "{garbage}");
            assert!(error.basic_challenge);
        }
    }
}
