//! deliver-scheduled-report against the demo data and a real SMTP server.

use chrono::{DateTime, Duration, Utc};
use floh::plugins::executor::JobRequest;
use serde_json::{Value, json};

use crate::database::{Backend, on_both_databases, params};
use crate::fixtures::example_toml;
use crate::job_host::{Host, now};
use crate::services::needs;
use crate::smtp::SmtpSink;

struct Reporting {
    host: Host,
    sink: SmtpSink,
}

impl Reporting {
    async fn start(backend: Backend) -> Self {
        let sink = SmtpSink::start();
        let host = Host::start_on(
            backend,
            &[("deliver-scheduled-report", "deliver-scheduled-report.wasm")],
            &example_toml(),
            &[("SMTP_URL", &sink.url()), ("MAIL_FROM", "floh@example.com")],
        )
        .await;
        floh::seed::demo(&host.db.pool, now()).await.unwrap();
        Self { host, sink }
    }

    async fn report(&self, id: &str, report_type: &str, parameters: Value, skip_if_empty: bool) {
        self.host.db.exec("INSERT INTO scheduled_reports (id, name, report_type, cron, recipients, parameters, skip_if_empty,
                                            created_at, updated_at)
             VALUES ($1, $2, $3, '0 7 * * 1', '[\"ops@example.com\", \"audit@example.com\"]', $4, $5, $6, $6)", params![id, format!("Weekly {report_type}"), report_type, parameters.to_string(), skip_if_empty, now()]).await;
    }

    /// Delivers the occurrence of report `id` due at `due`, as the scheduler's job would.
    async fn deliver(&self, id: &str, due: DateTime<Utc>, attempt: u32) -> Result<Value, String> {
        let job = JobRequest {
            id: format!("repeat:deliver-scheduled-report:{id}:{}", due.timestamp_millis()),
            name: "deliver-scheduled-report".into(),
            data: json!({ "reportId": id }).to_string(),
            attempt,
            enqueued_at: due,
        };
        match self.host.plugins.executor.execute(&job).await {
            Ok(done) => Ok(serde_json::from_str(&done.output).unwrap()),
            Err(failure) => Err(failure.reason),
        }
    }

    async fn deliveries(&self) -> Vec<(String, String, i64)> {
        self.host
            .db
            .rows("SELECT report_id, status, row_count FROM report_deliveries ORDER BY report_id", vec![])
            .await
    }
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

on_both_databases!(
    a_report_is_mailed_once_per_occurrence_with_its_csv,
    report_types_select_their_rows_and_empty_ones_may_be_skipped,
);

async fn a_report_is_mailed_once_per_occurrence_with_its_csv(backend: Backend) {
    needs!(Node);
    let reporting = Reporting::start(backend).await;
    reporting.report("weekly-access", "active-assignments", json!({}), false).await;
    let due = now() - Duration::hours(1);

    let sent = reporting.deliver("weekly-access", due, 1).await.unwrap();
    assert_eq!(sent, json!({ "sent": true, "rows": 8, "recipients": 2 }));
    let message = reporting.sink.next();
    assert_eq!(message["rcptTo"], json!(["ops@example.com", "audit@example.com"]));
    assert_eq!(message["subject"], "Weekly active-assignments — 2027-01-15");
    assert!(
        message["text"]
            .as_str()
            .unwrap()
            .starts_with("Active role assignments: 8 rows as of 2027-01-15T08:00:00.000Z"),
        "{message}"
    );
    let attachment = &message["attachments"][0];
    assert_eq!(attachment["filename"], "active-assignments-2027-01-15.csv");
    assert_eq!(attachment["contentType"], "text/csv");
    let bytes: Vec<u8> = serde_json::from_value(attachment["content"].clone()).unwrap();
    let csv = String::from_utf8(bytes).unwrap();
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(lines[0], "assignment,user,email,role,granted_at,expires_at");
    assert_eq!(lines.len(), 1 + 8 + 1, "a header, eight rows, and the final line end: {csv}");
    let granted = stamp(now() - Duration::days(90));
    assert_eq!(
        lines[1],
        format!(
            "demo-ra-alice-finance,Alice Example,alice@example.com,Finance approver,{granted},{}",
            stamp(now() - Duration::hours(2))
        )
    );
    assert!(lines.contains(
        &format!("demo-ra-dave-finance,Dave Example,dave@example.com,Finance approver,{granted},").as_str()
    ));

    // The retry of a delivered occurrence mails nothing.
    let again = reporting.deliver("weekly-access", due, 2).await.unwrap();
    assert_eq!(again, json!({ "sent": false, "skipped": "occurrence already delivered" }));
    assert!(reporting.sink.nothing_within(std::time::Duration::from_millis(300)));
    assert_eq!(reporting.deliveries().await, [("weekly-access".to_owned(), "sent".to_owned(), 8)]);
    let audited: (String, String) =
        reporting.host.db.one("SELECT action, target FROM audit_log", vec![]).await;
    assert_eq!(audited, ("report.delivered".to_owned(), "scheduled_report:weekly-access".to_owned()));

    // The next occurrence is a delivery of its own.
    assert_eq!(reporting.deliver("weekly-access", due + Duration::days(7), 1).await.unwrap()["sent"], true);
    assert_eq!(reporting.sink.next()["subject"], "Weekly active-assignments — 2027-01-22");
}

async fn report_types_select_their_rows_and_empty_ones_may_be_skipped(backend: Backend) {
    needs!(Node);
    let reporting = Reporting::start(backend).await;
    reporting.report("expiring", "expiring-assignments", json!({ "days": 31 }), false).await;
    reporting.report("failures", "failed-runs", json!({}), true).await;
    reporting.report("failures-anyway", "failed-runs", json!({}), false).await;
    reporting.report("bogus", "everything", json!({}), false).await;

    assert_eq!(reporting.deliver("expiring", now(), 1).await.unwrap()["rows"], 1);
    let csv = reporting.sink.next()["attachments"][0]["content"].clone();
    let csv = String::from_utf8(serde_json::from_value(csv).unwrap()).unwrap();
    assert!(csv.contains("\r\ndemo-ra-carol-finance,Carol Example,"), "{csv}");

    assert_eq!(
        reporting.deliver("failures", now(), 1).await.unwrap(),
        json!({ "sent": false, "skipped": "empty" })
    );
    assert!(
        reporting.sink.nothing_within(std::time::Duration::from_millis(300)),
        "an empty report is skipped"
    );
    assert_eq!(reporting.deliver("failures-anyway", now(), 1).await.unwrap()["rows"], 0);
    assert_eq!(reporting.sink.next()["subject"], "Weekly failed-runs — 2027-01-15", "unless it may be empty");
    assert_eq!(
        reporting.deliveries().await,
        [
            ("expiring".to_owned(), "sent".to_owned(), 1),
            ("failures".to_owned(), "skipped".to_owned(), 0),
            ("failures-anyway".to_owned(), "sent".to_owned(), 0),
        ]
    );

    let failure = reporting.deliver("bogus", now(), 1).await.unwrap_err();
    assert!(
        failure.starts_with("unknown report type \"everything\"; expected one of active-assignments"),
        "{failure}"
    );
    assert_eq!(reporting.deliver("gone", now(), 1).await.unwrap()["skipped"], "report not found");
}
