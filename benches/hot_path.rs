//! Micro-benchmarks of the work portcullis does on every request, each
//! without I/O: `cargo bench --bench hot_path` (add a name to run one group,
//! e.g. `cargo bench --bench hot_path -- route`).
//!
//! The end-to-end numbers, against nginx, come from `scripts/bench`; these
//! show where the per-request CPU goes inside the gateway.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode};
use http::{HeaderMap, HeaderValue};
use pingora::http::RequestHeader;
use portcullis::auth::{parse_bearer, sanitize_forwarded_headers};
use portcullis::forwarding::{forwarding_values, request_id, Hop};
use portcullis::oauth::form::Form;
use portcullis::request_target::check_target;
use portcullis::route::{looser_readings, Route, RouteTable};
use portcullis::tokens::memory::MemoryTokens;
use portcullis::tokens::{unix_now, AccessRecord, RawToken, TokenDigest};

/// A token as the gateway issues it: 43 characters of base64url.
const TOKEN: &str = "q3Yx0c2Vb7Kf8TQmW9pL4sZrH1uN6eJdA5gOyXiC0kE";

/// The headers of a typical API call from a client library.
fn client_headers(extra: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("host", "api.example.com"),
        ("user-agent", "python-requests/2.31.0"),
        ("accept", "application/json"),
        ("accept-encoding", "gzip, deflate"),
        (
            "authorization",
            "Bearer q3Yx0c2Vb7Kf8TQmW9pL4sZrH1uN6eJdA5gOyXiC0kE",
        ),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        headers.append(name, HeaderValue::from_static(value));
    }
    headers
}

fn bearer_parsing(c: &mut Criterion) {
    let valid = client_headers(&[]);
    c.bench_function("bearer/valid", |b| {
        b.iter(|| parse_bearer(black_box(&valid)))
    });
    let mut missing = client_headers(&[]);
    missing.remove("authorization");
    c.bench_function("bearer/missing", |b| {
        b.iter(|| parse_bearer(black_box(&missing)))
    });
}

/// 100 routes `/service-00/v1` … `/service-99/v1`, plus a catch-all `/`.
fn hundred_routes() -> RouteTable {
    let mut routes: Vec<Route> = (0..100)
        .map(|i| Route {
            path_prefix: format!("/service-{i:02}/v1"),
            upstream: i % 4,
            forward_authorization: false,
            public: i % 10 == 0,
            required_scopes: Vec::new(),
            case_sensitive: false,
            ..Default::default()
        })
        .collect();
    routes.push(Route {
        path_prefix: "/".into(),
        upstream: 0,
        forward_authorization: false,
        public: false,
        required_scopes: Vec::new(),
        case_sensitive: false,
        ..Default::default()
    });
    RouteTable::new(routes)
}

fn route_matching(c: &mut Criterion) {
    let table = hundred_routes();
    // Equal-length prefixes keep their order, so service-00 is tried first
    // and service-99 last; `/other` falls through all 100 to the catch-all.
    for (name, path) in [
        ("route/100/first", "/service-00/v1/items/42"),
        ("route/100/last", "/service-99/v1/items/42"),
        ("route/100/catch_all", "/other/items/42"),
    ] {
        c.bench_function(name, |b| b.iter(|| table.find(None, black_box(path))));
    }
}

/// The one reading of a request (`crate::request_target`): what every
/// request pays before routing. A clean target is one pass, no allocation;
/// a normalized one allocates its rewritten copy.
fn target_checks(c: &mut Criterion) {
    for (name, target) in [
        (
            "target/clean",
            &b"/service-42/v1/items/42?limit=10&offset=20"[..],
        ),
        ("target/normalized", b"/service-42/v1/%69tems/42?limit=10"),
        (
            "target/absolute_form",
            b"http://api.example.com/service-42/v1/items/42",
        ),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| check_target(black_box(target), false, Some("api.example.com")))
        });
    }
    // The strictest-reading check on a path with nothing to read loosely.
    c.bench_function("target/looser_readings_clean", |b| {
        b.iter(|| looser_readings(black_box("/service-42/v1/items/42")))
    });
    c.bench_function("target/looser_readings_params", |b| {
        b.iter(|| looser_readings(black_box("/service-42;v=1/v1/items/42")))
    });
}

/// The forwarding headers and the request id, per proxied request.
fn forwarding(c: &mut Criterion) {
    let headers = client_headers(&[]);
    let hop = Hop {
        peer: "203.0.113.7".parse().unwrap(),
        peer_trusted: false,
        client: "203.0.113.7".parse().unwrap(),
        proto: "https",
        host: Some("api.example.com"),
    };
    c.bench_function("forwarding/values", |b| {
        b.iter(|| forwarding_values(black_box(&headers), &hop, true))
    });
    c.bench_function("forwarding/new_request_id", |b| {
        b.iter(|| request_id(black_box(&headers)))
    });
}

fn access_record(user: usize) -> AccessRecord {
    AccessRecord {
        user_id: Some(format!("user-{user}")),
        client_id: "client".into(),
        scope: String::new(),
        expires_at: unix_now() + 3600,
        session_id: None,
        issued_at: unix_now(),
    }
}

fn token_lookup(c: &mut Criterion) {
    c.bench_function("token/digest", |b| {
        b.iter(|| TokenDigest::of(black_box(TOKEN)))
    });
    // 10,000 live tokens, ours among them: what the gateway does between
    // parsing the header and forwarding.
    let store = MemoryTokens::new(1_000_000);
    for user in 0..10_000 {
        store
            .save_access(RawToken::generate().digest(), access_record(user))
            .unwrap();
    }
    store
        .save_access(RawToken::from_client(TOKEN).digest(), access_record(0))
        .unwrap();
    c.bench_function("token/digest_and_memory_lookup", |b| {
        b.iter(|| store.find_access(&TokenDigest::of(black_box(TOKEN))))
    });
    c.bench_function("token/digest_and_memory_miss", |b| {
        b.iter(|| store.find_access(&TokenDigest::of(black_box("unknown-token"))))
    });
}

/// What `Gateway::upstream_request_filter` does to the upstream copy of the
/// request: strip, re-set `Connection` on upgrades, inject `X-User-Id`.
fn strip_and_inject(request: &mut RequestHeader) {
    let edit = sanitize_forwarded_headers(&request.headers, false);
    for name in &edit.remove {
        request.remove_header(name);
    }
    if edit.upgrade {
        request
            .insert_header(http::header::CONNECTION, "upgrade")
            .unwrap();
    }
    request
        .insert_header("X-User-Id", "6561f0c2a9b7e3d4c5f60718")
        .unwrap();
}

fn identity_headers(c: &mut Criterion) {
    let cases: [(&str, &[(&'static str, &'static str)]); 2] = [
        ("identity/clean_request", &[]),
        (
            "identity/spoofed_request",
            &[
                ("x-user-id", "admin"),
                ("x_user_id", "admin"),
                ("connection", "keep-alive, X-Client-Id"),
                ("x-client-id", "admin"),
            ],
        ),
    ];
    for (name, extra) in cases {
        let client = client_headers(extra);
        let mut request = RequestHeader::build("GET", b"/service-42/v1/items", None).unwrap();
        for (header, value) in &client {
            request
                .append_header(header.clone(), value.clone())
                .unwrap();
        }
        c.bench_function(name, |b| {
            b.iter_batched_ref(|| request.clone(), strip_and_inject, BatchSize::SmallInput)
        });
    }
}

fn token_form(c: &mut Criterion) {
    let body = b"grant_type=password&client_id=8f2d1c0b9a7e6d5c4b3a29180f7e6d5c4b3a2918\
&username=alice%40example.com&password=correct+horse+battery+staple&scope=";
    c.bench_function("form/password_grant", |b| {
        b.iter(|| Form::parse(black_box(body)).unwrap())
    });
}

/// One password check at the token endpoint's default cost and the lowest:
/// the load benchmark's bcrypt limit (cores ÷ time per hash) is checked
/// against these.
fn bcrypt_verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("bcrypt");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    for cost in [4, 12] {
        let hash = bcrypt::hash("correct horse battery staple", cost).unwrap();
        group.bench_function(format!("verify_cost_{cost}"), |b| {
            b.iter(|| bcrypt::verify(black_box("correct horse battery staple"), &hash).unwrap())
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    bearer_parsing,
    route_matching,
    target_checks,
    forwarding,
    token_lookup,
    identity_headers,
    token_form,
    bcrypt_verify
);
criterion_main!(benches);
