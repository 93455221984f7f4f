//! The gateway authorizes exactly the request the upstream receives: odd
//! request-targets are refused or normalized, the upstream gets the checked
//! target byte for byte, and forwarding headers are the gateway's.

use crate::harness::*;
use crate::wire::{get_raw, send_raw, RawResponse};

/// `/` public, `/admin` protected, `/Exact` protected and case-sensitive.
const ROUTES: &str = "  - {path_prefix: /, upstream: app, public: true}
  - {path_prefix: /admin, upstream: app}
  - {path_prefix: /Exact, upstream: app, case_sensitive: true}
";

fn error_of(response: &RawResponse) -> serde_json::Value {
    serde_json::from_str(&response.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", response.body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reported_bypasses_need_a_token_or_are_refused() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream).routes(ROUTES));
    let cases: [(&[u8], u16); 8] = [
        // Flask decodes %61 to `a`: this is /admin/users to it.
        (b"/%61dmin/users", 401),
        (b"/%41DMIN/users", 401),
        // Not origin-form: Pingora would parse `/` and write the raw bytes.
        (b"admin/users", 400),
        (b"*admin/users", 400),
        // Express and ASP.NET route without regard to case.
        (b"/ADMIN/users", 401),
        // Tomcat and Spring drop `;x`.
        (b"/admin;x/users", 400),
        (b"/admin%3Bx/users", 400),
        // IIS drops trailing dots.
        (b"/admin./users", 400),
    ];
    for (target, expected) in cases {
        let label = String::from_utf8_lossy(target);
        let response = get_raw(gateway.http_port, target, "")
            .unwrap_or_else(|| panic!("{label}: no response"));
        assert_eq!(response.status, expected, "{label}: {}", response.body);
        let body = error_of(&response);
        let code = if expected == 401 {
            "unauthorized"
        } else {
            "invalid_request"
        };
        assert_eq!(body["error"], code, "{label}");
    }
    assert_eq!(upstream.count(), 0, "nothing may reach the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_receives_the_checked_target_byte_for_byte() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream).routes(ROUTES));
    let session = signed_in(&gateway).await;
    let bearer = format!("Authorization: Bearer {}\r\n", session.tokens.access_token);
    let host = format!("127.0.0.1:{}", gateway.http_port);
    let absolute = format!("http://{host}/admin/%75sers?x=%7e");
    let cases: [(&[u8], &str, &str); 7] = [
        (b"/%61dmin/%75sers?q=%7e", &bearer, "/admin/users?q=%7e"),
        (b"/admin/caf%c3%a9", &bearer, "/admin/caf%C3%A9"),
        (b"/ADMIN/Users", &bearer, "/ADMIN/Users"),
        (absolute.as_bytes(), &bearer, "/admin/users?x=%7e"),
        // Legitimate encodings on public paths pass untouched.
        (b"/public%20page?a=b%20c", "", "/public%20page?a=b%20c"),
        (b"/shop/items;color=red", "", "/shop/items;color=red"),
        (b"/a%3Fb", "", "/a%3Fb"),
    ];
    for (target, extra, expected) in cases {
        let label = String::from_utf8_lossy(target);
        let response = get_raw(gateway.http_port, target, extra)
            .unwrap_or_else(|| panic!("{label}: no response"));
        assert_eq!(response.status, 200, "{label}: {}", response.body);
        assert_eq!(upstream.last().uri, expected, "{label}");
    }
    // The identity of the protected request went with it.
    let response = get_raw(gateway.http_port, b"/%61dmin", &bearer).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        upstream.last().header_values("x-user-id"),
        vec![session.user_id.as_str()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_and_hosts_that_have_two_readings_are_refused() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream).routes(ROUTES));
    let port = gateway.http_port;
    // Each request closes its connection, so reading to the end is quick.
    let host = format!("Host: 127.0.0.1:{port}\r\nConnection: close\r\n");
    let requests: Vec<(String, Vec<u8>)> = [
        (
            "foreign absolute-form",
            "GET http://evil.example/admin HTTP/1.1\r\n{host}\r\n",
        ),
        (
            "userinfo",
            "GET http://u@127.0.0.1:{port}/ HTTP/1.1\r\n{host}\r\n",
        ),
        (
            "ftp scheme",
            "GET ftp://127.0.0.1:{port}/ HTTP/1.1\r\n{host}\r\n",
        ),
        (
            "duplicate Host",
            "GET / HTTP/1.1\r\n{host}Host: evil.example\r\n\r\n",
        ),
        ("same Host twice", "GET / HTTP/1.1\r\n{host}{host}\r\n"),
        ("no Host", "GET / HTTP/1.1\r\nConnection: close\r\n\r\n"),
        (
            "Host with a path",
            "GET / HTTP/1.1\r\nHost: a/b\r\nConnection: close\r\n\r\n",
        ),
        ("asterisk for GET", "GET * HTTP/1.1\r\n{host}\r\n"),
        ("encoded NUL", "GET /a%00 HTTP/1.1\r\n{host}\r\n"),
        (
            "encoded dot segment",
            "GET /x/%2e%2e/admin HTTP/1.1\r\n{host}\r\n",
        ),
        ("dot segment", "GET /x/../admin HTTP/1.1\r\n{host}\r\n"),
        ("encoded slash", "GET /x%2Fadmin HTTP/1.1\r\n{host}\r\n"),
        ("empty segment", "GET //admin HTTP/1.1\r\n{host}\r\n"),
        ("backslash", "GET /x\\admin HTTP/1.1\r\n{host}\r\n"),
        (
            "double encoding",
            "GET /%252e%252e/admin HTTP/1.1\r\n{host}\r\n",
        ),
        (
            "overlong UTF-8",
            "GET /%C0%AE%C0%AE/admin HTTP/1.1\r\n{host}\r\n",
        ),
        ("bad percent", "GET /%zz HTTP/1.1\r\n{host}\r\n"),
    ]
    .into_iter()
    .map(|(name, template)| {
        let request = template
            .replace("{host}", &host)
            .replace("{port}", &port.to_string());
        (name.to_string(), request.into_bytes())
    })
    .chain([(
        "raw non-ASCII".to_string(),
        [
            b"GET /caf\xc3\xa9 HTTP/1.1\r\n".as_slice(),
            host.as_bytes(),
            b"\r\n",
        ]
        .concat(),
    )])
    .collect();
    for (name, request) in &requests {
        let response = send_raw(port, request).unwrap_or_else(|| panic!("{name}: no response"));
        assert_eq!(response.status, 400, "{name}: {}", response.body);
    }
    assert_eq!(upstream.count(), 0, "nothing may reach the upstream");

    // The gateway's own 400s say why, and name the request.
    let response = get_raw(port, b"/x/%2e%2e/admin", "X-Request-Id: bug-report-7\r\n").unwrap();
    let body = error_of(&response);
    assert_eq!(body["error"], "invalid_request");
    assert!(
        body["error_description"].as_str().unwrap().contains("`..`"),
        "{body}"
    );
    assert_eq!(body["request_id"], "bug-report-7");
    assert_eq!(response.header("x-request-id"), Some("bug-report-7"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_asterisk_is_answered_and_case_sensitive_routes_match_exact_case() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream).routes(ROUTES));
    let port = gateway.http_port;
    let request =
        format!("OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    let response = send_raw(port, request.as_bytes()).unwrap();
    assert_eq!(response.status, 204);
    assert!(response.header("allow").unwrap().contains("GET"));
    assert_eq!(upstream.count(), 0);

    assert_eq!(get_raw(port, b"/Exact/x", "").unwrap().status, 401);
    let other_case = get_raw(port, b"/exact/x", "").unwrap();
    assert_eq!(
        other_case.status, 200,
        "a case-sensitive route leaves /exact to /"
    );
    assert_eq!(upstream.last().uri, "/exact/x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_are_the_gateways() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream).routes(ROUTES));
    let port = gateway.http_port;
    let spoofed = "X-Forwarded-For: 6.6.6.6\r\nX_Forwarded_For: 6.6.6.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\nForwarded: for=6.6.6.6;host=evil.example\r\nX-Real-IP: 6.6.6.6\r\nX-Original-URL: /admin\r\nX-Rewrite-URL: /admin\r\nX-Forwarded-Prefix: /admin\r\nX-Request-Id: <script>\r\n";
    let response = get_raw(port, b"/anything", spoofed).unwrap();
    assert_eq!(response.status, 200);
    let seen = upstream.last();
    assert_eq!(seen.header_values("x-forwarded-for"), vec!["127.0.0.1"]);
    assert_eq!(seen.header_values("x-forwarded-proto"), vec!["http"]);
    let host = format!("127.0.0.1:{port}");
    assert_eq!(seen.header_values("x-forwarded-host"), vec![host.as_str()]);
    assert_eq!(
        seen.header_values("forwarded"),
        vec![format!("for=127.0.0.1;proto=http;host=\"{host}\"").as_str()]
    );
    assert_eq!(seen.header_values("x-real-ip"), vec!["127.0.0.1"]);
    for stripped in [
        "x_forwarded_for",
        "x-original-url",
        "x-rewrite-url",
        "x-forwarded-prefix",
    ] {
        assert!(
            seen.header_values(stripped).is_empty(),
            "{stripped} reached the upstream"
        );
    }
    let request_id = seen.header_values("x-request-id");
    assert_eq!(request_id.len(), 1);
    assert_eq!(
        request_id[0].len(),
        32,
        "an ill-formed id is replaced: {request_id:?}"
    );
    assert_eq!(response.header("x-request-id"), Some(request_id[0]));

    // Over HTTPS the proto says so.
    let response = client()
        .get(gateway.https_url("/tls"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        upstream.last().header_values("x-forwarded-proto"),
        vec!["https"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxys_forwarding_headers_are_extended() {
    let upstream = Upstream::start().await;
    let mut config = GatewayConfig::new(&upstream).routes(ROUTES);
    config.trusted_proxies = vec!["127.0.0.1".into()];
    let gateway = Gateway::start(&config);
    let headers = "X-Forwarded-For: 198.51.100.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: api.example.com\r\nForwarded: for=198.51.100.7;proto=https\r\n";
    let response = get_raw(gateway.http_port, b"/x", headers).unwrap();
    assert_eq!(response.status, 200);
    let seen = upstream.last();
    assert_eq!(
        seen.header_values("x-forwarded-for"),
        vec!["198.51.100.7, 127.0.0.1"]
    );
    assert_eq!(seen.header_values("x-forwarded-proto"), vec!["https"]);
    assert_eq!(
        seen.header_values("x-forwarded-host"),
        vec!["api.example.com"]
    );
    let forwarded = seen.header_values("forwarded");
    assert!(
        forwarded[0].starts_with("for=198.51.100.7;proto=https, for=127.0.0.1;proto=http"),
        "{forwarded:?}"
    );
    assert_eq!(seen.header_values("x-real-ip"), vec!["198.51.100.7"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_follow_the_request_into_the_logs() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream).routes(ROUTES));
    let proxied = get_raw(gateway.http_port, b"/page", "X-Request-Id: trace-0001\r\n").unwrap();
    assert_eq!(proxied.header("x-request-id"), Some("trace-0001"));
    assert_eq!(
        upstream.last().header_values("x-request-id"),
        vec!["trace-0001"]
    );

    let refused = get_raw(gateway.http_port, b"/admin", "X-Request-Id: trace-0002\r\n").unwrap();
    assert_eq!(refused.status, 401);
    assert_eq!(refused.header("x-request-id"), Some("trace-0002"));
    assert_eq!(error_of(&refused)["request_id"], "trace-0002");

    let logs = gateway
        .logs_when(|logs| logs.contains("trace-0001") && logs.contains("trace-0002"))
        .await;
    let line = logs
        .lines()
        .find(|l| l.contains("portcullis::access") && l.contains("trace-0002"))
        .unwrap_or_else(|| panic!("no access line with the request id:\n{logs}"));
    assert!(line.contains("status=401"), "{line}");
}
