//! The web console: its session cookie and CSRF rules over plain HTTP, then an operator's whole
//! round in headless Chromium against a host on real PostgreSQL and Redis.

use std::path::PathBuf;

use reqwest::header::{COOKIE, HeaderMap, ORIGIN, SET_COOKIE};
use serde_json::{Value, json};

use crate::fixtures;
use crate::helpers::AdminApi;
use crate::queue::{Host, TestQueue, add_and_wait};
use crate::services::needs;

const TOKEN: &str = floh::config::vars::DEV_ADMIN_TOKEN;

/// Signs in; returns the `Set-Cookie` line and the session's CSRF token.
async fn sign_in(client: &reqwest::Client, base: &str, extra: &[(&str, &str)]) -> (String, String) {
    let mut request = client.post(format!("{base}/admin/login")).json(&json!({ "token": TOKEN }));
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    (set_cookie, body["csrfToken"].as_str().unwrap().to_owned())
}

fn cookie_of(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_session_reads_and_changes_only_with_its_csrf_token() {
    needs!(Postgres, Redis);
    let queue = TestQueue::new();
    let host = Host::start(&queue, &[], &fixtures::example_toml(), &[]).await;
    let client = reqwest::Client::new();
    let base = &host.base;
    let page = client.get(format!("{base}/admin")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    assert!(page.text().await.unwrap().contains("/admin/console.js"));
    let slash = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let moved = slash.get(format!("{base}/admin/")).send().await.unwrap();
    assert_eq!((moved.status().as_u16(), moved.headers()["location"].to_str().unwrap()), (308, "/admin"));

    let wrong =
        client.post(format!("{base}/admin/login")).json(&json!({ "token": "guess" })).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(!wrong.headers().contains_key(SET_COOKIE));
    let foreign = client
        .post(format!("{base}/admin/login"))
        .header(ORIGIN, "https://elsewhere.example")
        .json(&json!({ "token": TOKEN }))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403, "a sign-in posted from another site is refused");

    let (set_cookie, csrf) = sign_in(&client, base, &[]).await;
    assert!(set_cookie.starts_with("floh_session="), "{set_cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(set_cookie.contains(attribute), "{attribute} missing: {set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    let (behind_tls, _) = sign_in(&client, base, &[("x-forwarded-proto", "https")]).await;
    assert!(behind_tls.contains("; Secure"), "{behind_tls}");

    let mut session = HeaderMap::new();
    session.insert(COOKIE, cookie_of(&set_cookie).parse().unwrap());
    let read = |path: &str| client.get(format!("{base}{path}")).headers(session.clone()).send();
    assert_eq!(read("/api/admin/queue").await.unwrap().status(), 200);
    let current: Value = read("/admin/session").await.unwrap().json().await.unwrap();
    assert_eq!(current["csrfToken"], csrf.as_str());

    let change = |csrf: Option<&str>, origin: Option<&str>| {
        let mut request = client
            .put(format!("{base}/api/admin/settings/security"))
            .headers(session.clone())
            .json(&json!({ "stuck_run_timeout_minutes": 90 }));
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        request.send()
    };
    assert_eq!(change(None, None).await.unwrap().status(), 403);
    assert_eq!(change(Some("0000"), None).await.unwrap().status(), 403);
    assert_eq!(change(Some(&csrf), Some("https://elsewhere.example")).await.unwrap().status(), 403);
    let own_origin = base.clone();
    let changed = change(Some(&csrf), Some(&own_origin)).await.unwrap();
    assert_eq!(changed.status(), 200);
    assert_eq!(changed.json::<Value>().await.unwrap()["stuck_run_timeout_minutes"]["value"], 90);

    // An edited cookie (a later expiry) is no session at all.
    let value = cookie_of(&set_cookie);
    let (expiry, rest) = value.trim_start_matches("floh_session=").split_once('.').unwrap();
    let forged = format!("floh_session={}.{rest}", expiry.parse::<i64>().unwrap() + 86_400 * 365);
    let refused = client.get(format!("{base}/api/admin/queue")).header(COOKIE, forged).send().await.unwrap();
    assert_eq!(refused.status(), 401);

    let signed_out =
        client.post(format!("{base}/admin/logout")).headers(session.clone()).send().await.unwrap();
    assert_eq!(signed_out.status(), 204);
    assert!(signed_out.headers()[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_activity_chart_counts_finished_jobs_per_hour() {
    needs!(Postgres, Redis);
    let queue = TestQueue::new();
    let host = Host::start(&queue, &["hello"], &fixtures::example_toml(), &[]).await;
    assert_eq!(add_and_wait(&queue, "hello", r#"{"name":"a"}"#)["state"], "completed");
    assert_eq!(add_and_wait(&queue, "hello", r#"{"name":"b"}"#)["state"], "completed");
    assert_eq!(add_and_wait(&queue, "no-such-job", "{}")["state"], "failed");
    let client = reqwest::Client::new();
    let activity = |hours: &str| {
        client.get(format!("{}/api/admin/queue/activity?hours={hours}", host.base)).bearer_auth(TOKEN).send()
    };
    let body: Value = activity("24").await.unwrap().json().await.unwrap();
    let hours = body["hours"].as_array().unwrap();
    assert_eq!(hours.len(), 24);
    let this_hour = hours.last().unwrap();
    assert_eq!((&this_hour["completed"], &this_hour["failed"]), (&json!(2), &json!(1)));
    assert!(hours[..23].iter().all(|h| h["completed"] == 0 && h["failed"] == 0), "{body}");
    let starts: Vec<u64> = hours.iter().map(|h| h["start"].as_u64().unwrap()).collect();
    assert!(starts.windows(2).all(|w| w[1] - w[0] == 3_600_000), "{starts:?}");
    for out_of_range in ["0", "169"] {
        assert_eq!(activity(out_of_range).await.unwrap().status(), 422);
    }
    host.stop().await;
}

/// Where the browser test leaves its screenshots: FLOH_SCREENSHOTS_DIR (docs/images/console
/// refreshes the guide's pictures), else the test build's scratch folder.
fn screenshots() -> PathBuf {
    std::env::var_os("FLOH_SCREENSHOTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_does_every_admin_action_from_the_browser_on_either_queue() {
    needs!(Postgres, Redis, Node, Chromium);
    operator_round(&[], screenshots()).await;
    let queue = tempfile::tempdir().unwrap();
    let path = queue.path().join("queue.db").display().to_string();
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots-embedded");
    operator_round(&[("QUEUE_BACKEND", "embedded"), ("QUEUE_PATH", &path)], shots).await;
}

/// An operator's whole round in the browser against a host started with `env` (its queue
/// backend); the screenshots go to `shots`.
async fn operator_round(env: &[(&str, &str)], shots: PathBuf) {
    crate::services::expect(crate::services::Service::Chromium);
    let chromium = crate::services::chromium();
    let queue = TestQueue::new();
    let checkpoints = tempfile::tempdir().unwrap();
    let store = checkpoints.path().display().to_string();
    let plugins = ["log-retention", "audit-checkpoint"];
    let env = [env, &[("AUDIT_CHECKPOINT_PATH", store.as_str())]].concat();
    let host = Host::start(&queue, &plugins, &fixtures::example_toml(), &env).await;
    let mut db = host.db.connect().await;
    for (id, age_days) in [("old", 40), ("recent", 1)] {
        sqlx::query(
            "INSERT INTO system_log (id, created_at, level, source, message)
             VALUES ($1, now() - make_interval(days => $2), 'info', 'test', $1)",
        )
        .bind(id)
        .bind(age_days)
        .execute(&mut db)
        .await
        .unwrap();
    }
    // A job no plugin handles fails for good; then its plugin arrives in the folder.
    let api = AdminApi::new(&host.base);
    let failed_id = api.add(json!({ "name": "hello", "data": { "name": "console" } })).await;
    api.wait(&failed_id, "failed", std::time::Duration::from_secs(15)).await;
    fixtures::install(host.plugins.path(), "hello.wasm", &fixtures::bytes("hello"));

    let (base, shots_dir) = (host.base.clone(), shots.display().to_string());
    let env = [
        ("FLOH_URL", base.as_str()),
        ("ADMIN_TOKEN", TOKEN),
        ("FAILED_JOB", failed_id.as_str()),
        ("SCREENSHOTS", shots_dir.as_str()),
        ("CHROMIUM", chromium.as_str()),
    ];
    let seen = tokio::task::block_in_place(|| crate::node::run_with("console.mjs", &[], &env));

    assert_eq!(seen["wrongToken"], "that is not the admin token (ADMIN_TOKEN)");
    assert_eq!((&seen["failedCount"], &seen["health"]), (&json!("1"), &json!("ok")));
    assert_eq!(seen["cookie"], json!({ "httpOnly": true, "sameSite": "Strict" }));
    assert_eq!(seen["changeWithoutCsrf"], 403);
    assert_eq!(seen["failedReason"], "no plugin for job type hello");
    assert_eq!(seen["helloStatus"], "loaded");
    assert_eq!(seen["retried"], format!("Job {failed_id} is back in the queue."));
    assert_eq!(seen["returnValue"]["greeting"], "hello, console");
    assert!(seen["added"].as_str().unwrap().ends_with("(audit-checkpoint) added."), "{seen}");
    assert_eq!(seen["rejected"], "stuck_run_timeout_minutes must be an integer 1-1440, not 1441");
    assert_eq!(seen["rejectedKind"], "error");
    assert_eq!(seen["saved"], "Security saved.");
    assert_eq!(seen["confirmation"], "Delete system log entries older than 30 days now?");
    assert!(seen["purge"].as_str().unwrap().starts_with("Purge started as job "), "{seen}");
    assert_eq!(seen["purgeJobType"], "log-retention");
    let purge_job =
        seen["purge"].as_str().unwrap().trim_start_matches("Purge started as job ").trim_end_matches('.');
    assert_eq!(seen["removed"], format!("Job {purge_job} removed."));
    assert_eq!(api.get(&format!("/api/admin/jobs/{purge_job}")).await.0, 404, "the removed job is gone");
    assert!(seen["completedListed"].as_u64().unwrap() >= 2, "{seen}");
    assert!(seen["synced"].as_str().unwrap().starts_with("Schedules synced: "), "{seen}");
    assert!(seen["verification"].as_str().unwrap().starts_with("Intact: "), "{seen}");
    assert_eq!(seen["afterSignOut"], 401);
    assert_eq!(seen["consoleErrors"], json!([]));

    // What the browser did is what the database holds.
    let timeout: String =
        sqlx::query_scalar("SELECT value FROM settings WHERE key = 'stuck_run_timeout_minutes'")
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(timeout, "45");
    let logs: Vec<String> = sqlx::query_scalar("SELECT id FROM system_log WHERE source = 'test'")
        .fetch_all(&mut db)
        .await
        .unwrap();
    assert_eq!(logs, ["recent"], "Purge Now deleted what is older than the retention");
    // A job's run may append its event before the admin API records adding it: order by name.
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log ORDER BY action").fetch_all(&mut db).await.unwrap();
    assert_eq!(
        actions,
        [
            "job.added",
            "job.added",
            "job.added",
            "job.removed",
            "job.retried",
            "setting.changed",
            "system_log.purged"
        ]
    );
    let checkpoints: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_checkpoints").fetch_one(&mut db).await.unwrap();
    assert_eq!((checkpoints, &seen["checkpointsListed"]), (1, &json!(1)));
    for page in [
        "sign-in",
        "overview",
        "failed-job",
        "plugins",
        "retried-job",
        "settings",
        "purge-confirmation",
        "jobs",
        "schedules",
        "audit",
    ] {
        assert!(
            shots.join(format!("{page}.png")).is_file(),
            "no screenshot of {page} in {}",
            shots.display()
        );
    }
    host.stop().await;
}
