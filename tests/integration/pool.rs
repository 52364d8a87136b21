//! The DB_POOL_* settings reach the pool.

use std::time::{Duration, Instant};

use floh::config::Settings;

use crate::helpers::{InProcess, TestDb, env_pairs, test_env, with};
use crate::services::needs;

#[tokio::test]
async fn pool_max_caps_connections_and_the_next_acquire_times_out() {
    needs!(Postgres);
    let db = TestDb::create().await;
    let settings = Settings::load_from(env_pairs(&[
        ("DATABASE_URL", &db.url()),
        ("DB_POOL_MAX", "3"),
        ("DB_POOL_MIN", "0"),
        ("DB_POOL_CONNECTION_TIMEOUT_MS", "700"),
    ]))
    .unwrap();
    let floh::database::Either::Postgres(pool) = floh::database::connect_lazy(&settings.database).unwrap()
    else {
        unreachable!("DATABASE_URL names PostgreSQL")
    };

    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(pool.acquire().await.expect("within DB_POOL_MAX"));
    }
    let started = Instant::now();
    let fourth = pool.acquire().await;
    let waited = started.elapsed();
    let err = fourth.expect_err("a 4th connection is beyond DB_POOL_MAX");
    assert!(matches!(err, sqlx::Error::PoolTimedOut), "{err:?}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(
        waited >= Duration::from_millis(700),
        "gave up after {waited:?}, before DB_POOL_CONNECTION_TIMEOUT_MS"
    );

    let backends: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = $1")
        .bind(&db.name)
        .fetch_one(&mut *held[0])
        .await
        .unwrap();
    assert_eq!(backends, 3);
    drop(held);
    pool.close().await;
}

#[tokio::test]
async fn pool_min_keeps_idle_connections_open() {
    needs!(Postgres, Redis);
    let db = TestDb::create().await;
    let env = with(
        test_env(&db.url(), &crate::services::redis_url()),
        &[("DB_POOL_MIN", "3"), ("DB_POOL_MAX", "5")],
    );
    let _host = InProcess::start(env, false).await;
    // Watch from outside the host's pool.
    let mut observer = db.connect().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let backends: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&db.name)
        .fetch_one(&mut observer)
        .await
        .unwrap();
        if backends >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "only {backends} of DB_POOL_MIN=3 connections opened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
