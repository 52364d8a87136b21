//! OpenTelemetry: with OTEL_EXPORTER_OTLP_ENDPOINT set, the host's spans reach a collector
//! over OTLP/HTTP (a receiver of the test's own on 127.0.0.1, taking what the protocol sends).

use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;

use crate::helpers::{FlohProcess, TestDb, test_env, with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_to_the_otlp_endpoint() {
    let (received, mut exports) = tokio::sync::mpsc::unbounded_channel::<(String, Bytes)>();
    let collector = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let received = received.clone();
            async move {
                let kind = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                let _ = received.send((kind, body));
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, collector).await });

    let db = TestDb::create().await;
    let env =
        with(test_env(&db.url(), "redis://127.0.0.1:6379"), &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)]);
    let mut floh = FlohProcess::spawn(&env, &["serve"]);
    floh.wait_listening();
    assert_eq!(reqwest::get(floh.url("/api/health")).await.unwrap().status().as_u16(), 200);
    floh.signal("TERM");
    assert_eq!(floh.wait_exit(Duration::from_secs(15)).code(), Some(0), "{}", floh.stderr());

    // The last spans are flushed at exit, at the latest.
    let (kind, body) = tokio::time::timeout(Duration::from_secs(10), exports.recv()).await.unwrap().unwrap();
    assert_eq!(kind, "application/x-protobuf");
    let contains = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    assert!(contains(b"service.name") && contains(b"floh"), "the resource names the service");
    assert!(contains(b"/api/health"), "the request span is among them");
}
