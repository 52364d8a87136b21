//! Approval reminders and escalation against the real schema, a real SMTP server and the real
//! queue, with time moved by the host's clock.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use floh::clock::ManualClock;
use serde_json::{Value, json};

use crate::database::{Backend, on_both_databases, params};
use crate::fixtures::example_toml;
use crate::job_host::{Host, now};
use crate::queue::{TestQueue, inspect};
use crate::services::needs;
use crate::smtp::SmtpSink;

struct Approvals {
    host: Host,
    clock: Arc<ManualClock>,
    sink: SmtpSink,
    queue: TestQueue,
}

impl Approvals {
    async fn start(backend: Backend) -> Self {
        let (sink, queue) = (SmtpSink::start(), TestQueue::new());
        let clock = Arc::new(ManualClock::new(now()));
        // The Redis queue on either database, so the test can look at what was enqueued.
        let (sink_url, redis) = (sink.url(), crate::services::redis_url());
        let env = [
            ("SMTP_URL", sink_url.as_str()),
            ("MAIL_FROM", "floh@example.com"),
            ("REDIS_URL", redis.as_str()),
            ("QUEUE_PREFIX", queue.prefix.as_str()),
        ];
        let files = [
            ("escalation-reminder", "escalation-reminder.wasm"),
            ("escalation-reassignment", "escalation-reassignment.wasm"),
        ];
        let host = Host::start_with(backend, &files, &example_toml(), &env, clock.clone()).await;
        for (id, manager) in [("boss", None), ("approver", Some("boss")), ("loner", None), ("fallback", None)]
        {
            host.db
                .exec(
                    "INSERT INTO users (id, email, display_name, manager_id, created_at, updated_at)
                     VALUES ($1, $1 || '@example.com', $1, $2, $3, $3)",
                    params![id, manager, now()],
                )
                .await;
        }
        Self { host, clock, sink, queue }
    }

    async fn approval(&self, id: &str, approver: &str, status: &str, due_in_hours: i64) {
        self.host.db.exec("INSERT INTO approvals (id, subject, approver_id, status, due_at, reminder_interval_hours, max_reminders,
                                    created_at, updated_at)
             VALUES ($1, 'Access to payroll for Dana', $2, $3, $4, 24, 3, $5, $5)", params![id, approver, status, now() + Duration::hours(due_in_hours), now()]).await;
    }

    fn at_hour(&self, hours: i64) {
        self.clock.set(now() + Duration::hours(hours));
    }

    async fn remind(&self, id: &str, n: i64) -> Value {
        self.host.output("escalation-reminder", json!({ "approvalId": id, "reminder": n })).await
    }

    async fn reassign(&self, id: &str) -> Value {
        self.host.output("escalation-reassignment", json!({ "approvalId": id })).await
    }

    /// (approver, previous approver, reminders sent, escalated at).
    async fn state(&self, id: &str) -> (String, Option<String>, i64, Option<DateTime<Utc>>) {
        self.host.db.one("SELECT approver_id, previous_approver_id, reminder_count, escalated_at FROM approvals WHERE id = $1", params![id]).await
    }

    fn queued(&self, id: &str) -> Value {
        tokio::task::block_in_place(|| inspect(&self.queue, id))["job"].clone()
    }

    fn no_mail(&self) -> bool {
        self.sink.nothing_within(std::time::Duration::from_millis(300))
    }
}

on_both_databases!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    reminders_go_out_on_schedule_then_the_overdue_approval_is_escalated,
    decided_approvals_are_left_alone_and_a_missing_target_is_named,
);

async fn reminders_go_out_on_schedule_then_the_overdue_approval_is_escalated(backend: Backend) {
    needs!(Redis, Node);
    let approvals = Approvals::start(backend).await;
    approvals.approval("a1", "approver", "pending", 50).await;

    let first = approvals.remind("a1", 1).await;
    assert_eq!(first, json!({ "reminded": true, "reminder": 1, "next": "escalation-reminder:a1:2" }));
    let mail = approvals.sink.next();
    assert_eq!(mail["rcptTo"], json!(["approver@example.com"]));
    assert_eq!(mail["subject"], "Reminder: your approval is needed — Access to payroll for Dana");
    let next = approvals.queued("escalation-reminder:a1:2");
    assert_eq!((&next["state"], &next["opts"]["delay"]), (&json!("delayed"), &json!(86_400_000)));
    assert_eq!(next["data"], json!({ "approvalId": "a1", "reminder": 2 }));

    assert_eq!(
        approvals.remind("a1", 1).await["skipped"],
        "reminder 1 already sent",
        "a retry sends nothing"
    );
    assert!(approvals.no_mail());

    approvals.at_hour(24);
    assert_eq!(approvals.remind("a1", 2).await["next"], "escalation-reminder:a1:3");
    approvals.at_hour(48);
    assert_eq!(approvals.remind("a1", 3).await["next"], Value::Null, "the third is the last");
    for _ in 2..=3 {
        assert_eq!(
            approvals.sink.next()["subject"],
            "Reminder: your approval is needed — Access to payroll for Dana"
        );
    }
    assert_eq!(approvals.state("a1").await.2, 3);

    // Before the due date the reassignment only looks again at the due date.
    approvals.at_hour(49);
    let early = approvals.reassign("a1").await;
    assert_eq!(early["escalated"], false);
    let due = (now() + Duration::hours(50)).timestamp_millis();
    let again = approvals.queued(&format!("escalation-reassignment:a1:{due}"));
    assert_eq!(again["opts"]["delay"], json!(3_600_000));

    approvals.at_hour(50);
    assert_eq!(
        approvals.reassign("a1").await,
        json!({ "escalated": true, "from": "approver", "to": "boss" })
    );
    let (to_new, to_old) = (approvals.sink.next(), approvals.sink.next());
    assert_eq!(
        (&to_new["rcptTo"], &to_new["subject"]),
        (&json!(["boss@example.com"]), &json!("Escalated to you: Access to payroll for Dana"))
    );
    assert_eq!(to_old["rcptTo"], json!(["approver@example.com"]));
    assert_eq!(
        approvals.state("a1").await,
        ("boss".to_owned(), Some("approver".to_owned()), 3, Some(now() + Duration::hours(50)))
    );
    let audit: (String, String, String) =
        approvals.host.db.one("SELECT action, target, reason FROM audit_log", vec![]).await;
    assert_eq!(
        audit,
        (
            "approval.escalated".to_owned(),
            "approval:a1".to_owned(),
            "Approval overdue since 2027-01-17T10:00:00.000Z; reassigned from approver to boss".to_owned()
        )
    );
    assert_eq!(approvals.reassign("a1").await["skipped"], "already escalated");
    assert_eq!(approvals.remind("a1", 4).await["skipped"], "overdue: escalation takes over");
}

async fn decided_approvals_are_left_alone_and_a_missing_target_is_named(backend: Backend) {
    needs!(Redis, Node);
    let approvals = Approvals::start(backend).await;
    approvals.approval("decided", "approver", "approved", -1).await;
    assert_eq!(approvals.remind("decided", 1).await["skipped"], "approval approved");
    assert_eq!(approvals.reassign("decided").await["skipped"], "approval approved");
    assert!(approvals.no_mail());

    approvals.approval("lonely", "loner", "pending", -1).await;
    let failure =
        approvals.host.run("escalation-reassignment", json!({ "approvalId": "lonely" })).await.unwrap_err();
    assert!(failure.reason.starts_with("approval lonely has no escalation target"), "{}", failure.reason);
    approvals.host.db.exec("INSERT INTO settings (key, value, updated_at, updated_by) VALUES ('escalation_fallback_approver', '\"fallback\"', $1, 'test')", params![now()]).await;
    assert_eq!(approvals.reassign("lonely").await["to"], "fallback");
}
