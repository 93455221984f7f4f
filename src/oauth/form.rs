//! `application/x-www-form-urlencoded` token requests (RFC 6749 §3.2: "sent
//! using the HTTP POST method", parameters "MUST NOT be included more than
//! once"). Pure.

use std::collections::BTreeMap;

use super::OAuthError;

/// A parsed form: each parameter at most once.
#[derive(Default, PartialEq, Eq)]
pub struct Form {
    values: BTreeMap<String, String>,
}

/// Names only: values include passwords, secrets and tokens.
impl std::fmt::Debug for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

impl Form {
    pub fn parse(body: &[u8]) -> Result<Form, OAuthError> {
        if std::str::from_utf8(body).is_err() {
            return Err(OAuthError::invalid_request("the request body is not UTF-8"));
        }
        let mut values = BTreeMap::new();
        for (name, value) in form_urlencoded::parse(body) {
            if name.is_empty() {
                continue;
            }
            // RFC 6749 §3.1: "Parameters sent without a value MUST be
            // treated as if they were omitted from the request."
            if value.is_empty() {
                continue;
            }
            if values.insert(name.to_string(), value.to_string()).is_some() {
                return Err(OAuthError::invalid_request(&format!(
                    "the parameter `{name}` is repeated"
                )));
            }
        }
        Ok(Form { values })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A parameter the grant cannot go without.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| {
            OAuthError::invalid_request(&format!("the parameter `{name}` is missing"))
        })
    }
}

/// True when the content type is `application/x-www-form-urlencoded`,
/// parameters (such as `charset=UTF-8`) allowed.
pub fn is_form_content_type(value: Option<&str>) -> bool {
    value
        .and_then(|v| v.split(';').next())
        .map(|media| {
            media
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        let form = Form::parse(b"grant_type=password&username=j%C3%B6rg&password=a+b%26c").unwrap();
        assert_eq!(form.get("grant_type"), Some("password"));
        assert_eq!(form.get("username"), Some("jörg"));
        assert_eq!(form.get("password"), Some("a b&c"));
        assert_eq!(form.get("scope"), None);
    }

    #[test]
    fn repeated_parameters_are_invalid_requests() {
        let error = Form::parse(b"grant_type=password&grant_type=password").unwrap_err();
        assert_eq!(error.code, "invalid_request");
        assert!(error.description.contains("grant_type"));
    }

    #[test]
    fn empty_values_count_as_omitted() {
        let form = Form::parse(b"scope=&username=u&=x").unwrap();
        assert_eq!(form.get("scope"), None);
        assert!(form.require("scope").is_err());
        assert_eq!(form.require("username").unwrap(), "u");
    }

    #[test]
    fn debug_shows_names_not_values() {
        let form = Form::parse(b"username=u&password=hunter2").unwrap();
        let shown = format!("{form:?}");
        assert!(
            shown.contains("password") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn non_utf8_bodies_are_rejected() {
        assert!(Form::parse(b"username=\xff").is_err());
    }

    #[test]
    fn content_types() {
        let cases = [
            (Some("application/x-www-form-urlencoded"), true),
            (
                Some("application/x-www-form-urlencoded; charset=UTF-8"),
                true,
            ),
            (Some("Application/X-WWW-Form-Urlencoded"), true),
            (Some("application/json"), false),
            (Some("multipart/form-data"), false),
            (None, false),
        ];
        for (value, expected) in cases {
            assert_eq!(is_form_content_type(value), expected, "{value:?}");
        }
    }
}
