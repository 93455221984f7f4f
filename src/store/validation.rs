//! What a store refuses, and how it says so.
//!
//! The rules on usernames, scope names and grant lists live here, not in a
//! backend, so that both backends (and the configuration, the CLI and the
//! management API, which check the same inputs) agree on them. A refusal
//! names the management API [`Field`] it is about, so a caller can point at
//! the one to fix.

use super::records::GrantType;

/// The input a validation error is about: the field names of the
/// management API, so it can point at the one to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Username,
    Password,
    Name,
    AllowedGrants,
    AllowedScopes,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Username => "username",
            Field::Password => "password",
            Field::Name => "name",
            Field::AllowedGrants => "allowed_grants",
            Field::AllowedScopes => "allowed_scopes",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    Duplicate(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{message}")]
    Invalid { field: Field, message: String },
    #[error("user store unavailable: {0}")]
    Unavailable(String),
}

/// A scope-name refusal, as the store front reports it.
pub(super) fn invalid_scopes(message: String) -> StoreError {
    StoreError::Invalid {
        field: Field::AllowedScopes,
        message,
    }
}

/// Usernames are compared exactly; this only rejects what cannot be typed
/// back or would confuse logs.
pub fn validate_username(username: &str) -> Result<(), String> {
    if username.is_empty() || username.len() > 128 {
        return Err("a username has 1 to 128 characters".into());
    }
    if username
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err("a username has no spaces or control characters".into());
    }
    Ok(())
}

/// Scope tokens (RFC 6749 §3.3): printable ASCII except space, `"` and `\\`.
pub fn validate_scopes(scopes: &[String]) -> Result<(), String> {
    for scope in scopes {
        let valid = !scope.is_empty()
            && scope
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
        if !valid {
            return Err(format!("`{scope}` is not a valid scope name"));
        }
    }
    Ok(())
}

/// Parses `password,refresh_token`; names the first unknown entry.
pub fn parse_grants(list: &str) -> Result<Vec<GrantType>, String> {
    let mut grants = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let grant = GrantType::parse(name).ok_or_else(|| {
            format!(
                "unknown grant type `{name}` (known: {})",
                GrantType::names()
            )
        })?;
        if !grants.contains(&grant) {
            grants.push(grant);
        }
    }
    grants.sort();
    Ok(grants)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        let cases = [
            ("jonas", true),
            ("jonas@example.com", true),
            ("", false),
            ("two words", false),
            ("tab\there", false),
            ("ünïcode", true),
        ];
        for (name, ok) in cases {
            assert_eq!(validate_username(name).is_ok(), ok, "{name:?}");
        }
        assert!(validate_username(&"x".repeat(129)).is_err());
    }

    #[test]
    fn grant_lists() {
        assert_eq!(
            parse_grants("refresh_token, password,password").unwrap(),
            vec![GrantType::Password, GrantType::RefreshToken]
        );
        assert!(parse_grants("implicit").unwrap_err().contains("implicit"));
        assert_eq!(parse_grants("").unwrap(), vec![]);
    }

    #[test]
    fn scope_names() {
        let ok = |s: &[&str]| {
            validate_scopes(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>()).is_ok()
        };
        assert!(ok(&["read", "write:all", "a.b-c_d~"]));
        assert!(!ok(&["two words"]));
        assert!(!ok(&["quote\""]));
        assert!(!ok(&[""]));
        assert!(!ok(&["back\\slash"]));
    }
}
