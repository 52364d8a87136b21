//! Graceful shutdown in the runbook's order, in-process and as the real process under signals.

use std::time::{Duration, Instant};

use axum::routing::get;

use crate::helpers::{FlohProcess, HangingServer, InProcess, TestDb, test_env, with};
use crate::services::needs;

/// Polls until a new TCP connection to `addr` is refused.
async fn wait_refused(addr: std::net::SocketAddr, limit: Duration) {
    let deadline = Instant::now() + limit;
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "{addr} still accepts connections");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn in_flight_requests_finish_while_health_says_503_and_new_connections_are_refused() {
    needs!(Postgres, Redis);
    let db = TestDb::create().await;
    // A Redis that hangs makes each health request take the full check timeout (1 s), so one
    // can be in flight when shutdown begins.
    let hanging = HangingServer::start().await;
    let host = InProcess::start(test_env(&db.url(), &format!("redis://{}", hanging.addr)), true).await;
    let addr = host.addr;
    let base = host.url("");
    // A deliberately slow route of the test's own stands for any long request.
    let router = host.app.router().route(
        "/test/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            "slow done"
        }),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(host.app.serve(router, async move {
        let _ = stopped.await;
    }));

    let slow = tokio::spawn(reqwest::get(format!("{base}/test/slow")));
    let health = tokio::spawn(reqwest::get(format!("{base}/api/health")));
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.send(()).unwrap();

    wait_refused(addr, Duration::from_secs(1)).await;
    assert!(!slow.is_finished(), "the slow request is still in flight when the listener closes");

    let health = health.await.unwrap().expect("in-flight health request answered");
    assert_eq!(health.status().as_u16(), 503);
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!(body["status"], "shutting_down");

    let slow = slow.await.unwrap().expect("in-flight request answered");
    assert_eq!(slow.status().as_u16(), 200);
    assert_eq!(slow.text().await.unwrap(), "slow done");

    served.await.unwrap().expect("drained within the grace period");
}

#[tokio::test]
async fn a_request_that_outlives_the_grace_period_is_named() {
    needs!(Postgres, Redis);
    let db = TestDb::create().await;
    let env = with(test_env(&db.url(), &crate::services::redis_url()), &[("SHUTDOWN_GRACE_SECONDS", "1")]);
    let host = InProcess::start(env, true).await;
    let base = host.url("");
    let router = host.app.router().route("/test/stuck", get(std::future::pending::<&'static str>));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(host.app.serve(router, async move {
        let _ = stopped.await;
    }));
    let _stuck = tokio::spawn(reqwest::get(format!("{base}/test/stuck")));
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).unwrap();

    let err = served.await.unwrap().expect_err("the grace period runs out");
    assert_eq!(err.still_running, ["http server"]);
}

#[tokio::test]
async fn sigterm_drains_and_exits_zero_within_the_grace_period() {
    needs!(Postgres, Redis);
    let db = TestDb::create().await;
    let hanging = HangingServer::start().await;
    // The probe hangs on Redis for up to 4 s; SIGTERM comes a second into it, late enough for
    // the host to have accepted the connection even on a busy machine.
    let env = with(
        test_env(&db.url(), &format!("redis://{}", hanging.addr)),
        &[("SHUTDOWN_GRACE_SECONDS", "10"), ("HEALTH_CHECK_TIMEOUT_MS", "4000")],
    );
    let mut floh = FlohProcess::spawn(&env, &["serve"]);
    floh.wait_listening();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", floh.port).parse().unwrap();

    let health = tokio::spawn(reqwest::get(floh.url("/api/health")));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let signalled = Instant::now();
    floh.signal("TERM");

    wait_refused(addr, Duration::from_secs(1)).await;
    let health = health.await.unwrap().expect("the in-flight probe is answered");
    assert_eq!(health.status().as_u16(), 503, "health says 503 once shutdown began");

    let status = floh.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", floh.stderr());
    assert!(signalled.elapsed() < Duration::from_secs(10), "exited inside the grace period");
    let log = floh.stderr();
    for line in ["received SIGTERM", "shutting down", "shutdown complete"] {
        assert!(log.contains(line), "{line:?} not logged: {log}");
    }
}

#[tokio::test]
async fn sigint_shuts_down_too() {
    needs!(Postgres, Redis);
    let db = TestDb::create().await;
    let mut floh = FlohProcess::spawn(&test_env(&db.url(), &crate::services::redis_url()), &["serve"]);
    floh.wait_listening();
    let response = reqwest::get(floh.url("/api/health")).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    floh.signal("INT");
    assert_eq!(floh.wait_exit(Duration::from_secs(10)).code(), Some(0), "{}", floh.stderr());
    assert!(floh.stderr().contains("received SIGINT"));
}

#[tokio::test]
async fn exceeding_the_grace_period_exits_non_zero_and_says_what_ran() {
    needs!(Postgres, Redis);
    let db = TestDb::create().await;
    let hanging = HangingServer::start().await;
    // Health checks that wait 5 s on a hanging Redis outlive a 1 s grace period.
    let env = with(
        test_env(&db.url(), &format!("redis://{}", hanging.addr)),
        &[("SHUTDOWN_GRACE_SECONDS", "1"), ("HEALTH_CHECK_TIMEOUT_MS", "5000")],
    );
    let mut floh = FlohProcess::spawn(&env, &["serve"]);
    floh.wait_listening();
    let _probe = tokio::spawn(reqwest::get(floh.url("/api/health")));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    floh.signal("TERM");
    let status = floh.wait_exit(Duration::from_secs(5));
    assert_ne!(status.code(), Some(0));
    let log = floh.stderr();
    assert!(log.contains("still running: http server"), "{log}");
}
