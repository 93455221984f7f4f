//! `listen`: the addresses the gateway serves on, and the HTTPS
//! certificate, which is either given whole or generated.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::{parse_address, Problems};
use crate::config::{FileListen, HttpsListener};

/// `listen`: (HTTPS, HTTP, metrics); at least one of the first two.
pub(super) fn check_listeners(
    problems: &mut Problems,
    listen: FileListen,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
) -> (
    Option<HttpsListener>,
    Option<SocketAddr>,
    Option<SocketAddr>,
) {
    let https = listen.https.and_then(|https| {
            let address = parse_address(problems, "listen.https.address", &https.address)?;
            let certificate = match (https.certificate, https.private_key) {
                (Some(cert), Some(key)) => Some((resolve(cert), resolve(key))),
                (None, None) => None,
                _ => {
                    problems.add(
                        "listen.https",
                        "set both `certificate` and `private_key`, or neither for a generated self-signed certificate",
                    );
                    None
                }
            };
            Some(HttpsListener {
                address,
                certificate,
                http2: https.http2,
            })
        });
    let http = listen
        .http
        .and_then(|http| parse_address(problems, "listen.http.address", &http.address));
    let metrics = listen
        .metrics
        .and_then(|metrics| parse_address(problems, "listen.metrics.address", &metrics.address));
    if https.is_none() && http.is_none() {
        problems.add(
            "listen",
            "no listener: configure `listen.https` or `listen.http`",
        );
    }

    (https, http, metrics)
}
