//! Which Host a route serves: exactly one name, every name under a domain
//! (`*.example.com`), or, without `host`, every host. Matching ignores
//! ASCII case, the port and a trailing dot, as DNS and RFC 9110 §4.2.3 do.

use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `api.example.com`, lower-cased.
    Exact(String),
    /// `*.example.com`, kept as its suffix `.example.com`: any name that
    /// ends with it and has something before it (`a.example.com`,
    /// `a.b.example.com`, never `example.com` itself).
    Wildcard(String),
}

impl HostPattern {
    /// Parses a configured `host`, or says why it is not one.
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let lower = text.trim_end_matches('.').to_ascii_lowercase();
        let (wildcard, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower.as_str()),
        };
        let is_name = crate::request_target::is_dns_name(name);
        if !is_name {
            return Err(format!(
                "`{text}` is not a host name or `*.` followed by one (example: api.example.com, *.example.com)"
            ));
        }
        Ok(if wildcard {
            HostPattern::Wildcard(format!(".{name}"))
        } else {
            HostPattern::Exact(name.to_string())
        })
    }

    /// `host` as [`for_matching`] made it.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(name) => host == name,
            HostPattern::Wildcard(suffix) => {
                host.len() > suffix.len() && host.ends_with(suffix.as_str())
            }
        }
    }

    /// An exact host beats a wildcard, which beats no host.
    pub fn specificity(pattern: Option<&HostPattern>) -> u8 {
        match pattern {
            Some(HostPattern::Exact(_)) => 2,
            Some(HostPattern::Wildcard(_)) => 1,
            None => 0,
        }
    }
}

/// A request's Host as routes compare it: without the port and a trailing
/// dot, lower-cased. An IPv6 literal keeps its brackets. No allocation for
/// the common lower-case name.
pub fn for_matching(host: &str) -> Cow<'_, str> {
    let without_port = if host.starts_with('[') {
        host.find(']').map_or(host, |end| &host[..=end])
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    let name = without_port.strip_suffix('.').unwrap_or(without_port);
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_parse_and_match() {
        let cases: [(&str, &str, bool); 12] = [
            ("api.example.com", "api.example.com", true),
            ("API.Example.com.", "api.example.com", true),
            ("api.example.com", "www.example.com", false),
            ("*.example.com", "api.example.com", true),
            ("*.example.com", "a.b.example.com", true),
            ("*.example.com", "example.com", false),
            ("*.example.com", "badexample.com", false),
            ("*.example.com", ".example.com", false),
            ("localhost", "localhost", true),
            ("*.internal", "app.internal", true),
            ("app.internal", "app.internal.evil", false),
            ("127.0.0.1", "127.0.0.1", true),
        ];
        for (pattern, host, expected) in cases {
            let parsed = HostPattern::parse(pattern).unwrap();
            assert_eq!(parsed.matches(host), expected, "{pattern} ~ {host}");
        }
        for bad in [
            "", "*", "*.", "a..b", "-a.com", "a b", "*.*.com", "a.com:80", "[::1]",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn request_hosts_lose_port_case_and_trailing_dot() {
        let cases = [
            ("api.example.com", "api.example.com"),
            ("API.example.com:8443", "api.example.com"),
            ("api.example.com.", "api.example.com"),
            ("api.example.com.:443", "api.example.com"),
            ("[::1]:8080", "[::1]"),
            ("127.0.0.1:80", "127.0.0.1"),
        ];
        for (host, expected) in cases {
            assert_eq!(for_matching(host), expected, "{host}");
        }
        assert!(matches!(for_matching("a.example.com:1"), Cow::Borrowed(_)));
    }
}
