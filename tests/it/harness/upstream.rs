//! The echo upstream: answers every request with what it saw.

use super::*;

// Echo upstream

/// What the upstream saw of one request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    /// In arrival order, names lowercased by hyper.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// An HTTP/1.1 server that answers 200 with a JSON echo of each request and
/// remembers what it saw. `/slow` answers after one second; `/healthz`
/// (the gateway's health checks) is answered and counted apart, not seen.
/// It can be stopped and started again on the same port.
pub struct Upstream {
    pub address: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    health_checks: Arc<AtomicUsize>,
    /// The accept loop and every connection: aborted by `stop`, which
    /// closes them all, as a crashed server would.
    tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = Upstream {
            address: listener.local_addr().unwrap(),
            seen: Arc::default(),
            health_checks: Arc::default(),
            tasks: Arc::default(),
        };
        upstream.serve(listener);
        upstream
    }

    /// Closes the listener and every open connection.
    pub async fn stop(&self) {
        // Twice: a connection accepted while the first sweep ran may have
        // registered just after it.
        for _ in 0..2 {
            for task in self.tasks.lock().unwrap().drain(..) {
                task.abort();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Listens again on the same address, after [`Upstream::stop`].
    pub async fn restart(&self) {
        let listener = tokio::net::TcpListener::bind(self.address).await.unwrap();
        self.serve(listener);
    }

    /// `/healthz` requests answered so far.
    pub fn health_checks(&self) -> usize {
        self.health_checks.load(Ordering::SeqCst)
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let record = self.seen.clone();
        let health_checks = self.health_checks.clone();
        let tasks = self.tasks.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let record = record.clone();
                let health_checks = health_checks.clone();
                let connection = tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: hyper::Request<hyper::body::Incoming>| {
                            let record = record.clone();
                            let health_checks = health_checks.clone();
                            async move {
                                if request.uri().path() == "/healthz" {
                                    health_checks.fetch_add(1, Ordering::SeqCst);
                                    return Ok(hyper::Response::new(Full::new(Bytes::from("ok"))));
                                }
                                let (parts, body) = request.into_parts();
                                let body = body
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes().to_vec())
                                    .unwrap_or_default();
                                let seen = Seen {
                                    method: parts.method.to_string(),
                                    uri: parts.uri.to_string(),
                                    headers: parts
                                        .headers
                                        .iter()
                                        .map(|(n, v)| {
                                            (
                                                n.to_string(),
                                                String::from_utf8_lossy(v.as_bytes()).to_string(),
                                            )
                                        })
                                        .collect(),
                                    body,
                                };
                                if parts.uri.path() == "/slow" {
                                    tokio::time::sleep(Duration::from_secs(1)).await;
                                }
                                let echo = serde_json::json!({
                                    "method": seen.method,
                                    "uri": seen.uri,
                                    "headers": seen.headers,
                                    "body_len": seen.body.len(),
                                });
                                record.lock().unwrap().push(seen);
                                Ok::<_, std::convert::Infallible>(
                                    hyper::Response::builder()
                                        .header("content-type", "application/json")
                                        .body(Full::new(Bytes::from(echo.to_string())))
                                        .unwrap(),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
                let mut tasks = tasks.lock().unwrap();
                tasks.retain(|task| !task.is_finished());
                tasks.push(connection.abort_handle());
            }
        });
        self.tasks.lock().unwrap().push(accept.abort_handle());
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn last(&self) -> Seen {
        self.seen().pop().expect("the upstream saw no request")
    }
}
