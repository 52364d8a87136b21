//! OpenTelemetry: with OTEL_EXPORTER_OTLP_ENDPOINT set, the host's spans reach a collector
//! over OTLP/HTTP (a receiver of the test's own on 127.0.0.1, taking what the protocol sends),
//! and JSON log lines name the trace of their span.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;

use crate::helpers::{FlohProcess, TestDb, run_floh, test_env, with};
use crate::services::needs;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_to_the_otlp_endpoint_and_logs_name_their_trace() {
    needs!(Postgres, Redis);
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
    let queue = crate::queue::TestQueue::new();
    let env = with(
        test_env(&db.url(), &crate::services::redis_url()),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("LOG_FORMAT", "json"),
            ("QUEUE_PREFIX", &queue.prefix),
        ],
    );
    let mut floh = FlohProcess::spawn(&env, &["serve"]);
    floh.wait_listening();
    assert_eq!(reqwest::get(floh.url("/api/health")).await.unwrap().status().as_u16(), 200);
    // A job nobody handles fails at once, logging inside its span.
    let (code, id, stderr) = run_floh(&env, &["jobs", "add", "nobody-handles-this"]);
    assert_eq!(code, 0, "{stderr}");
    crate::queue::wait_for(&queue, id.trim(), Duration::from_secs(15), |job| job["state"] == "failed").await;
    floh.signal("TERM");
    assert_eq!(floh.wait_exit(Duration::from_secs(15)).code(), Some(0), "{}", floh.stderr());

    let log = floh.stderr();
    let failed: serde_json::Value = log
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .find(|line: &serde_json::Value| line["message"] == "job failed")
        .expect("a JSON line for the failed job");
    assert_eq!(failed["span"]["job_type"], "nobody-handles-this");
    let trace_id = failed["span"]["trace_id"].as_str().expect("the job span names its trace").to_owned();
    assert_eq!(trace_id.len(), 32, "{failed}");

    // The last spans are flushed at exit, at the latest.
    let mut exported = Vec::new();
    while let Ok(Some((kind, body))) = tokio::time::timeout(Duration::from_secs(5), exports.recv()).await {
        assert_eq!(kind, "application/x-protobuf");
        exported.extend_from_slice(&body);
    }
    let contains = |needle: &[u8]| exported.windows(needle.len()).any(|w| w == needle);
    assert!(contains(b"service.name") && contains(b"floh"), "the resource names the service");
    assert!(contains(b"/api/health"), "the request span is among them");
    let trace: Vec<u8> =
        (0..32).step_by(2).map(|i| u8::from_str_radix(&trace_id[i..i + 2], 16).unwrap()).collect();
    assert!(contains(&trace), "the job's trace {trace_id} was exported");
}
