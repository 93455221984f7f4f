//! WebSocket (and any `Upgrade`) through an authenticated route: the
//! upgrade request is authenticated like any other, carries the identity
//! headers to the upstream, and the connection then carries frames both
//! ways. A real WebSocket server and client, not a hand-made handshake.

use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::*;

/// A WebSocket echo server; returns its address and the headers of the
/// last upgrade request it accepted.
async fn echo_server() -> (std::net::SocketAddr, Arc<Mutex<Vec<(String, String)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                // The callback's error type is the handshake library's own.
                #[allow(clippy::result_large_err)]
                let callback = |request: &Request, response: Response| {
                    *record.lock().unwrap() = request
                        .headers()
                        .iter()
                        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
                        .collect();
                    Ok(response)
                };
                let Ok(mut socket) = tokio_tungstenite::accept_hdr_async(stream, callback).await
                else {
                    return;
                };
                while let Some(Ok(message)) = socket.next().await {
                    let echo = message.is_text() || message.is_binary();
                    if echo && socket.send(message).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (address, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_echo_works_through_an_authenticated_route() {
    let (echo, seen) = echo_server().await;
    let gateway = Gateway::start(&GatewayConfig::for_address(echo));
    // Users are made with the CLI; the echo server is the only upstream.
    let user_id = gateway.create_user("jonas", "pass");
    let client_id = gateway.create_client("ios app");
    let tokens = gateway.login(&client_id, "jonas", "pass").await;
    let url = format!("ws://127.0.0.1:{}/chat", gateway.http_port);

    // Without a token the upgrade is refused like any request.
    let refused = tokio_tungstenite::connect_async(url.as_str()).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401)
        }
        other => panic!("an unauthenticated upgrade got through: {other:?}"),
    }

    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            url.as_str(),
        )
        .unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", tokens.access_token).parse().unwrap(),
    );
    // A client's own identity header never reaches the upstream.
    request
        .headers_mut()
        .insert("x-user-id", "someone-else".parse().unwrap());
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.status(), 101);
    for text in ["hello", "second frame"] {
        socket.send(Message::text(text)).await.unwrap();
        let echoed = socket.next().await.unwrap().unwrap();
        assert_eq!(echoed, Message::text(text));
    }
    socket
        .send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    assert_eq!(
        socket.next().await.unwrap().unwrap(),
        Message::binary(vec![0u8, 1, 2, 255])
    );
    socket.close(None).await.unwrap();

    let headers = seen.lock().unwrap().clone();
    let values = |name: &str| -> Vec<String> {
        headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    };
    assert_eq!(values("x-user-id"), vec![user_id]);
    assert_eq!(values("x-client-id"), vec![client_id]);
    assert!(values("authorization").is_empty(), "{headers:?}");
    assert_eq!(values("upgrade"), vec!["websocket".to_string()]);
}
