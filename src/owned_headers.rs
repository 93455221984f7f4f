//! Every header the gateway owns on the way upstream, in one table.
//!
//! It sets some (identity, forwarding, request id) and only strips others
//! (headers some frameworks read as the path to serve, or as the client's
//! port and prefix). A header set in one place but missing from the strip
//! list would let a client send its own copy beside ours: a spoofing hole.
//! So the gateway sets a header only through an [`OwnedHeader`], and strips
//! every spelling of every [`OwnedHeader::ALL`].

/// A header the gateway owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnedHeader {
    // Identity, from the token.
    UserId,
    ClientId,
    Scope,
    // Forwarding, from the connection (see `crate::forwarding`).
    ForwardedFor,
    ForwardedProto,
    ForwardedHost,
    Forwarded,
    RealIp,
    RequestId,
    // Never forwarded: Symfony, Zend and IIS's URL Rewrite read these as the
    // path; others as the client's port, prefix or scheme.
    OriginalUrl,
    RewriteUrl,
    ForwardedPort,
    ForwardedPrefix,
    ForwardedSsl,
    ForwardedScheme,
}

impl OwnedHeader {
    pub const ALL: [OwnedHeader; 15] = [
        OwnedHeader::UserId,
        OwnedHeader::ClientId,
        OwnedHeader::Scope,
        OwnedHeader::ForwardedFor,
        OwnedHeader::ForwardedProto,
        OwnedHeader::ForwardedHost,
        OwnedHeader::Forwarded,
        OwnedHeader::RealIp,
        OwnedHeader::RequestId,
        OwnedHeader::OriginalUrl,
        OwnedHeader::RewriteUrl,
        OwnedHeader::ForwardedPort,
        OwnedHeader::ForwardedPrefix,
        OwnedHeader::ForwardedSsl,
        OwnedHeader::ForwardedScheme,
    ];

    /// The spelling the gateway writes.
    pub const fn name(self) -> &'static str {
        match self {
            OwnedHeader::UserId => "X-User-Id",
            OwnedHeader::ClientId => "X-Client-Id",
            OwnedHeader::Scope => "X-Scope",
            OwnedHeader::ForwardedFor => "X-Forwarded-For",
            OwnedHeader::ForwardedProto => "X-Forwarded-Proto",
            OwnedHeader::ForwardedHost => "X-Forwarded-Host",
            OwnedHeader::Forwarded => "Forwarded",
            OwnedHeader::RealIp => "X-Real-IP",
            OwnedHeader::RequestId => "X-Request-Id",
            OwnedHeader::OriginalUrl => "X-Original-URL",
            OwnedHeader::RewriteUrl => "X-Rewrite-URL",
            OwnedHeader::ForwardedPort => "X-Forwarded-Port",
            OwnedHeader::ForwardedPrefix => "X-Forwarded-Prefix",
            OwnedHeader::ForwardedSsl => "X-Forwarded-Ssl",
            OwnedHeader::ForwardedScheme => "X-Forwarded-Scheme",
        }
    }

    /// The identity headers, which only a protected route's request gets.
    pub const fn is_identity(self) -> bool {
        matches!(
            self,
            OwnedHeader::UserId | OwnedHeader::ClientId | OwnedHeader::Scope
        )
    }

    /// True when `name` is this header in any letter case and with `_` for
    /// `-`: WSGI/CGI servers read `X_User_Id` and `X-User-Id` as the same
    /// variable, so both spellings are one header to us. No allocation:
    /// this runs for every header of every proxied request.
    pub fn is_spelled_by(self, name: &str) -> bool {
        let ours = self.name();
        name.len() == ours.len()
            && name.bytes().zip(ours.bytes()).all(|(a, b)| {
                let a = if a == b'_' { b'-' } else { a };
                a.eq_ignore_ascii_case(&b)
            })
    }

    /// The owned header `name` spells, if any.
    pub fn spelled_by(name: &str) -> Option<OwnedHeader> {
        OwnedHeader::ALL
            .into_iter()
            .find(|header| header.is_spelled_by(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_is_one_header() {
        let cases = [
            ("X-User-Id", Some(OwnedHeader::UserId)),
            ("x-user-id", Some(OwnedHeader::UserId)),
            ("X_User_Id", Some(OwnedHeader::UserId)),
            ("x_user-id", Some(OwnedHeader::UserId)),
            ("X-USER-ID", Some(OwnedHeader::UserId)),
            ("x_scope", Some(OwnedHeader::Scope)),
            ("x-real-ip", Some(OwnedHeader::RealIp)),
            ("X_Forwarded_For", Some(OwnedHeader::ForwardedFor)),
            ("forwarded", Some(OwnedHeader::Forwarded)),
            ("x-original-url", Some(OwnedHeader::OriginalUrl)),
            ("X-User-Ids", None),
            ("X-User", None),
            ("User-Id", None),
            ("X-Forwarded", None),
        ];
        for (name, expected) in cases {
            assert_eq!(OwnedHeader::spelled_by(name), expected, "{name}");
        }
    }

    #[test]
    fn the_table_is_complete_and_its_names_are_headers() {
        for header in OwnedHeader::ALL {
            assert_eq!(OwnedHeader::spelled_by(header.name()), Some(header));
            assert!(http::HeaderName::from_bytes(header.name().as_bytes()).is_ok());
        }
        let identity: Vec<_> = OwnedHeader::ALL
            .into_iter()
            .filter(|h| h.is_identity())
            .collect();
        assert_eq!(
            identity,
            [
                OwnedHeader::UserId,
                OwnedHeader::ClientId,
                OwnedHeader::Scope
            ]
        );
    }
}
