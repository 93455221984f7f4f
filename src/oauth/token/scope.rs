//! Scope arithmetic (RFC 6749 §3.3): space-separated, order-free sets.

use super::OAuthError;

/// The scope to grant: what was asked for, if the client may have all of
/// it (else `invalid_scope`), or everything the client may have when
/// nothing was asked for (RFC 6749 §3.3 lets the server pick a default).
pub fn resolve_scope(requested: Option<&str>, allowed: &[String]) -> Result<String, OAuthError> {
    let Some(requested) = requested else {
        let mut all: Vec<&str> = allowed.iter().map(String::as_str).collect();
        all.sort_unstable();
        all.dedup();
        return Ok(all.join(" "));
    };
    let requested = normalize_scope(requested);
    if let Some(unknown) = requested
        .split(' ')
        .find(|s| !s.is_empty() && !allowed.iter().any(|a| a == s))
    {
        return Err(OAuthError::invalid_scope(&format!(
            "the scope `{unknown}` is unknown or not allowed for this client"
        )));
    }
    Ok(requested)
}

/// Space-separated, deduplicated, sorted (RFC 6749 §3.3: order does not
/// matter).
pub fn normalize_scope(scope: &str) -> String {
    let mut parts: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    parts.sort_unstable();
    parts.dedup();
    parts.join(" ")
}

/// The scopes of `scope` that are in `allowed`, in order.
pub fn scope_within(scope: &str, allowed: &[String]) -> String {
    scope
        .split(' ')
        .filter(|s| !s.is_empty() && allowed.iter().any(|a| a == s))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn scope_is_subset(requested: &str, granted: &str) -> bool {
    let granted: Vec<&str> = granted.split(' ').collect();
    requested
        .split(' ')
        .filter(|s| !s.is_empty())
        .all(|s| granted.contains(&s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn scope_resolution() {
        let allowed = strings(&["write", "read"]);
        let cases: [(Option<&str>, Result<&str, &str>); 6] = [
            (None, Ok("read write")),
            (Some("read"), Ok("read")),
            (Some("write  read read"), Ok("read write")),
            (Some("admin"), Err("invalid_scope")),
            (Some("read admin"), Err("invalid_scope")),
            (Some(" "), Ok("")),
        ];
        for (requested, expected) in cases {
            let got = resolve_scope(requested, &allowed).map_err(|e| e.code);
            assert_eq!(
                got.as_ref().map(String::as_str).map_err(|e| *e),
                expected,
                "{requested:?}"
            );
        }
        assert_eq!(resolve_scope(None, &[]).unwrap(), "");
        assert_eq!(
            resolve_scope(Some("read"), &[]).unwrap_err().code,
            "invalid_scope"
        );
    }

    #[test]
    fn scope_subsets() {
        assert_eq!(normalize_scope("b a  b"), "a b");
        assert!(scope_is_subset("a", "a b"));
        assert!(scope_is_subset("", ""));
        assert!(!scope_is_subset("c", "a b"));
        assert!(!scope_is_subset("a", ""));
        let allowed = strings(&["a", "c"]);
        let cases = [("a b c", "a c"), ("b", ""), ("", ""), ("c a", "c a")];
        for (scope, expected) in cases {
            assert_eq!(scope_within(scope, &allowed), expected, "{scope}");
        }
    }
}
