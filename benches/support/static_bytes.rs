//! The ceiling of a read: an axum server answering every `POST /graphql` with the very bytes
//! idp-graph answered. Shared by `load` and `replicas`.

use std::net::SocketAddr;

use axum::routing::post;

/// Serves `body` to every POST on `/graphql`, in this process.
pub async fn static_server(body: Vec<u8>) -> SocketAddr {
    let body = bytes::Bytes::from(body);
    let app = axum::Router::new().route(
        "/graphql",
        post(move || {
            let body = body.clone();
            async move { ([("content-type", "application/json")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}
