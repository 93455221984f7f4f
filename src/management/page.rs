//! The admin page: one self-contained HTML file embedded in the binary (no
//! CDN, works offline), served with a strict Content-Security-Policy that
//! allows exactly its own inline script and style, by hash.

use base64::Engine;
use bytes::Bytes;
use once_cell::sync::Lazy;
use sha2::{Digest, Sha256};

use crate::respond::Reply;

pub const PAGE: &str = include_str!("page.html");

/// `'sha256-…'` sources for every inline block between `open` and `</tag>`.
fn inline_hashes(html: &str, open: &str, close: &str) -> Vec<String> {
    let mut hashes = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find(open) {
        let after_open = &rest[start..];
        let Some(tag_end) = after_open.find('>') else {
            break;
        };
        let body_start = &after_open[tag_end + 1..];
        let Some(end) = body_start.find(close) else {
            break;
        };
        let body = &body_start[..end];
        let digest = Sha256::digest(body.as_bytes());
        hashes.push(format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        ));
        rest = &body_start[end + close.len()..];
    }
    hashes
}

static CONTENT_SECURITY_POLICY: Lazy<String> = Lazy::new(|| {
    let scripts = inline_hashes(PAGE, "<script", "</script>").join(" ");
    let styles = inline_hashes(PAGE, "<style", "</style>").join(" ");
    format!(
        "default-src 'none'; script-src {scripts}; style-src {styles}; connect-src 'self'; img-src data:; \
         form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    )
});

/// GET/HEAD: the page. It holds no data: everything comes from the API,
/// after sign-in.
pub fn page(method: &http::Method) -> Reply {
    if method != http::Method::GET && method != http::Method::HEAD {
        return Reply::error(405, "invalid_request", "the page is read with GET")
            .with_header("allow", "GET, HEAD");
    }
    Reply {
        status: 200,
        headers: vec![("content-type", "text/html; charset=utf-8".into())],
        body: Bytes::from_static(PAGE.as_bytes()),
    }
    .with_header("content-security-policy", CONTENT_SECURITY_POLICY.as_str())
    .with_header("x-frame-options", "DENY")
    .with_header("x-content-type-options", "nosniff")
    .with_header("referrer-policy", "no-referrer")
    .with_header("cache-control", "no-store")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_blocks_are_hashed() {
        let html = "<style>a{}</style><script>x()</script><script type=\"module\">y()</script>";
        let scripts = inline_hashes(html, "<script", "</script>");
        assert_eq!(scripts.len(), 2);
        let expected = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"x()"));
        assert_eq!(scripts[0], format!("'sha256-{expected}'"));
        assert_eq!(inline_hashes(html, "<style", "</style>").len(), 1);
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        for needle in [
            "src=\"http",
            "href=\"http",
            "src=\"//",
            "href=\"//",
            "url(http",
            "url(//",
            "@import",
        ] {
            assert!(!PAGE.contains(needle), "the page references {needle}");
        }
        assert!(CONTENT_SECURITY_POLICY.contains("script-src 'sha256-"));
    }
}
