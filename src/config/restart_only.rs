//! Settings a running gateway cannot take on a reload: listening sockets,
//! the stores it is connected to, its threads. A reload keeps the running
//! value of each and names it, so nothing is half-applied: the new value
//! takes effect, whole, at the next start (or `serve --upgrade`).

use super::Config;

/// `new` with the running value of every restart-only setting, and the
/// YAML paths of those that differed.
pub fn keep_restart_only(running: &Config, mut new: Config) -> (Config, Vec<&'static str>) {
    let mut kept = Vec::new();
    // `path => field`: if the new file changed the field, keep the running
    // value and say so.
    macro_rules! keep {
        ($($path:literal => $($field:ident).+;)*) => {$(
            if new.$($field).+ != running.$($field).+ {
                kept.push($path);
                new.$($field).+ = running.$($field).+.clone();
            }
        )*};
    }
    keep! {
        "listen.http.address" => http;
        "listen.metrics.address" => metrics;
        "management.address" => management.address;
        "management.csrf_secret_env" => management.csrf_secret;
        "data_dir" => data_dir;
        "store" => store;
        "tokens" => tokens;
        "oauth.bcrypt_workers" => oauth.bcrypt_workers;
        "oauth.bcrypt_queue" => oauth.bcrypt_queue;
        "oauth.legacy_plain_keys" => oauth.legacy_plain_keys;
        "server.threads" => server.threads;
        "server.grace_period_seconds" => server.grace_period_seconds;
        "server.shutdown_timeout_seconds" => server.shutdown_timeout_seconds;
        "server.max_connections, server.request_head_timeout_seconds" => server.connection_limits;
        "server.http2_max_concurrent_streams" => server.http2_max_concurrent_streams;
        "server.upstream_keepalive_pool_size" => server.upstream_keepalive_pool_size;
        "logging.format" => log_format;
    }
    // The HTTPS socket and its protocols are the listener's; its
    // certificate is read at every handshake and does reload.
    let socket = |config: &Config| config.https.as_ref().map(|h| (h.address, h.http2));
    if socket(&new) != socket(running) {
        kept.push("listen.https");
        new.https = match (running.https.clone(), new.https) {
            (Some(mut listener), Some(changed)) => {
                listener.certificate = changed.certificate;
                Some(listener)
            }
            (running, _) => running,
        };
    }
    (new, kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, HttpsListener};
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    const BASE: &str = "
listen:
  http: {address: \"127.0.0.1:8080\"}
  https: {address: \"127.0.0.1:8443\", certificate: a.crt, private_key: a.key}
upstreams:
  app: {servers: [\"127.0.0.1:3000\"]}
routes:
  - {path_prefix: /, upstream: app}
";

    fn config(extra: &str) -> Config {
        let text = format!("{BASE}{extra}");
        parse(
            &text,
            Path::new("/etc/portcullis"),
            &BTreeMap::<&str, &str>::new(),
        )
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn each_restart_only_setting_keeps_its_running_value_and_is_named() {
        // (what the new file adds, the paths named)
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            // Reloadable: applied, nothing named.
            ("oauth: {access_token_lifetime_seconds: 60}\n", &[]),
            ("server: {trusted_proxies: [\"10.0.0.0/8\"]}\n", &[]),
            // The embedded store's file is in the data folder: it moves too.
            ("data_dir: /var/lib/elsewhere\n", &["data_dir", "store"]),
            ("server: {threads: 7}\n", &["server.threads"]),
            (
                "server: {max_connections: 9}\n",
                &["server.max_connections, server.request_head_timeout_seconds"],
            ),
            ("oauth: {bcrypt_workers: 3}\n", &["oauth.bcrypt_workers"]),
            (
                "tokens: {kind: redis, redis: {url: \"redis://127.0.0.1:1\"}}\n",
                &["tokens"],
            ),
            ("logging: {format: json}\n", &["logging.format"]),
            (
                "server: {threads: 7, upstream_keepalive_pool_size: 3}\n",
                &["server.threads", "server.upstream_keepalive_pool_size"],
            ),
        ];
        let running = config("");
        for (extra, named) in cases {
            let (kept, changed) = keep_restart_only(&running, config(extra));
            assert_eq!(&changed, named, "{extra}");
            assert_eq!(kept.data_dir, running.data_dir, "{extra}");
            assert_eq!(kept.server.threads, running.server.threads, "{extra}");
            assert_eq!(kept.tokens, running.tokens, "{extra}");
            assert_eq!(kept.log_format, running.log_format, "{extra}");
        }
        // What may change does.
        let (kept, _) = keep_restart_only(
            &running,
            config("oauth: {access_token_lifetime_seconds: 60}\n"),
        );
        assert_eq!(kept.oauth.access_token_lifetime.as_secs(), 60);
    }

    #[test]
    fn a_moved_https_listener_keeps_its_socket_and_takes_the_new_certificate() {
        let running = config("");
        let mut moved = config("");
        moved.https = Some(HttpsListener {
            address: "127.0.0.1:9443".parse().unwrap(),
            certificate: Some((PathBuf::from("/b.crt"), PathBuf::from("/b.key"))),
            http2: true,
        });
        let (kept, changed) = keep_restart_only(&running, moved);
        assert_eq!(changed, ["listen.https"]);
        let https = kept.https.unwrap();
        assert_eq!(https.address, running.https.as_ref().unwrap().address);
        assert_eq!(https.certificate.unwrap().0, PathBuf::from("/b.crt"));
        // A listener the running gateway does not have is not made.
        let mut without = config("");
        without.https = None;
        let (kept, changed) = keep_restart_only(&without, config(""));
        assert_eq!(changed, ["listen.https"]);
        assert!(kept.https.is_none());
        // A new certificate alone is a reload, not a restart.
        let mut renewed = config("");
        renewed.https.as_mut().unwrap().certificate =
            Some((PathBuf::from("/c.crt"), PathBuf::from("/c.key")));
        let (kept, changed) = keep_restart_only(&running, renewed);
        assert!(changed.is_empty());
        assert_eq!(
            kept.https.unwrap().certificate.unwrap().0,
            PathBuf::from("/c.crt")
        );
    }
}
