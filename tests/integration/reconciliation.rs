//! entitlement-reconciliation against a real SCIM server, in both policies, with a failing
//! connector beside it.

use serde_json::{Value, json};

use crate::database::{Backend, on_both_databases, params};
use crate::fixtures::example_toml;
use crate::job_host::{Host, now};
use crate::python::{ScimServer, TOKEN};
use crate::services::needs;

/// A floh database with users alice, bob and carol, and a SCIM system holding alice, bob and
/// an account nobody owns: `finance` (alice and the stranger) and `admins` (bob). Governance
/// wants alice, bob and carol in finance, and nobody in admins.
struct Reconciling {
    host: Host,
    scim: ScimServer,
    finance: String,
    admins: String,
    bob: String,
}

impl Reconciling {
    async fn start(backend: Backend, policy: &str) -> Self {
        let scim = ScimServer::start().await;
        let toml = format!("{}\n", example_toml())
            .replace("# http_allow = [\"scim.example.com\"]", "http_allow = [\"127.0.0.1\"]");
        let files = [("entitlement-reconciliation", "entitlement-reconciliation.wasm")];
        let host = Host::start_on(backend, &files, &toml, &[]).await;
        let alice = scim.user("alice@example.com").await;
        let bob = scim.user("Bob@Example.com").await;
        let stranger = scim.user("stranger@example.com").await;
        let finance = scim.group("finance", &[&alice, &stranger]).await;
        let admins = scim.group("admins", &[&bob]).await;

        let (db, at) = (&host.db, now());
        for user in ["alice", "bob", "carol"] {
            db.exec(
                "INSERT INTO users (id, email, display_name, created_at, updated_at)
                 VALUES ($1, $1 || '@example.com', $1, $2, $2)",
                params![user, at],
            )
            .await;
        }
        let config = json!({ "bearerToken": TOKEN, "pageSize": 2 }).to_string();
        let down = format!("http://127.0.0.1:{}/v2", crate::helpers::free_port());
        for (id, name, url, policy, config, enabled) in [
            ("hr", "hr-scim", scim.base(), policy, config.as_str(), true),
            ("down", "broken", down, "report", "{}", true),
            ("off", "switched-off", "http://127.0.0.1:1/v2".to_owned(), "report", "{}", false),
        ] {
            db.exec(
                "INSERT INTO connectors (id, name, kind, base_url, policy, config, enabled, created_at, updated_at)
                 VALUES ($1, $2, 'scim', $3, $4, $5, $6, $7, $7)",
                params![id, name, url, policy, config, enabled, at],
            )
            .await;
        }
        for (id, group, name) in [("ent-finance", &finance, "finance"), ("ent-admins", &admins, "admins")] {
            db.exec(
                "INSERT INTO entitlements (id, connector_id, external_id, name, created_at)
                 VALUES ($1, 'hr', $2, $3, $4)",
                params![id, group.as_str(), name, at],
            )
            .await;
        }
        for user in ["alice", "bob", "carol"] {
            db.exec(
                "INSERT INTO desired_entitlements (user_id, entitlement_id, created_at) VALUES ($1, 'ent-finance', $2)",
                params![user, at],
            )
            .await;
        }
        Self { host, scim, finance, admins, bob }
    }

    async fn run(&self) -> Vec<Value> {
        let output = self.host.output("entitlement-reconciliation", json!({})).await;
        output["connectors"].as_array().unwrap().clone()
    }

    /// (kind, user, entitlement, status) of every finding.
    async fn findings(&self) -> Vec<(String, Option<String>, Option<String>, String)> {
        self.host.db.rows("SELECT kind, user_id, entitlement_id, status FROM drift_findings ORDER BY kind, user_id, status", vec![]).await
    }
}

fn finding(
    kind: &str,
    user: Option<&str>,
    entitlement: Option<&str>,
    status: &str,
) -> (String, Option<String>, Option<String>, String) {
    (kind.to_owned(), user.map(str::to_owned), entitlement.map(str::to_owned), status.to_owned())
}

on_both_databases!(
    report_mode_records_drift_and_a_failing_connector_stops_nothing,
    remediate_mode_fixes_memberships_and_audits_each_change,
);

async fn report_mode_records_drift_and_a_failing_connector_stops_nothing(backend: Backend) {
    needs!(Python);
    let reconciling = Reconciling::start(backend, "report").await;
    let results = reconciling.run().await;
    assert_eq!(results.len(), 2, "the disabled connector is skipped: {results:?}");
    let (broken, hr) = (&results[0], &results[1]);
    assert_eq!((&broken["name"], &broken["status"]), (&json!("broken"), &json!("failed")));
    assert!(
        broken["error"].as_str().unwrap().starts_with("HTTP request failed: ConnectionRefused"),
        "{broken}"
    );
    assert_eq!(
        hr,
        &json!({
            "id": "hr", "name": "hr-scim", "status": "ok", "error": null,
            "accounts": 3, "entitlements": 2, "missing": 2, "unexpected": 1, "orphans": 1, "resolved": 0, "fixed": 0,
        })
    );
    let open = [
        finding("missing", Some("bob"), Some("ent-finance"), "open"),
        finding("missing", Some("carol"), Some("ent-finance"), "open"),
        finding("orphan", None, None, "open"),
        finding("unexpected", Some("bob"), Some("ent-admins"), "open"),
    ];
    assert_eq!(reconciling.findings().await, open);
    let status: Vec<(String, Option<String>)> =
        reconciling.host.db.rows("SELECT id, last_status FROM connectors ORDER BY id", vec![]).await;
    assert_eq!(
        status,
        [("down".into(), Some("failed".into())), ("hr".into(), Some("ok".into())), ("off".into(), None)]
    );
    let held: i64 = reconciling.host.db.scalar("SELECT count(*) FROM observed_entitlements", vec![]).await;
    assert_eq!(held, 3);
    assert_eq!(
        reconciling.scim.members(&reconciling.admins).await,
        std::slice::from_ref(&reconciling.bob),
        "report mode changes nothing"
    );

    // Again: the same drift, no new findings.
    assert_eq!(reconciling.run().await[1]["missing"], 2);
    assert_eq!(reconciling.findings().await, open);
}

async fn remediate_mode_fixes_memberships_and_audits_each_change(backend: Backend) {
    needs!(Python);
    let reconciling = Reconciling::start(backend, "remediate").await;
    let hr = reconciling.run().await[1].clone();
    assert_eq!((&hr["status"], &hr["fixed"], &hr["missing"]), (&json!("ok"), &json!(2), &json!(2)), "{hr}");
    assert!(reconciling.scim.members(&reconciling.finance).await.contains(&reconciling.bob));
    assert!(reconciling.scim.members(&reconciling.admins).await.is_empty());
    assert_eq!(
        reconciling.findings().await,
        [
            finding("missing", Some("bob"), Some("ent-finance"), "fixed"),
            finding("missing", Some("carol"), Some("ent-finance"), "open"),
            finding("orphan", None, None, "open"),
            finding("unexpected", Some("bob"), Some("ent-admins"), "fixed"),
        ],
        "carol has no account to add, and orphans are for people to decide"
    );
    let audited: Vec<(String, String)> =
        reconciling.host.db.rows("SELECT action, target FROM audit_log ORDER BY seq", vec![]).await;
    let account = format!("connector_account:hr/{}", reconciling.bob);
    assert_eq!(
        audited,
        [("entitlement.granted".to_owned(), account.clone()), ("entitlement.removed".to_owned(), account)]
    );

    let again = reconciling.run().await[1].clone();
    assert_eq!(
        (&again["missing"], &again["unexpected"], &again["fixed"], &again["resolved"]),
        (&json!(1), &json!(0), &json!(0), &json!(0)),
        "{again}"
    );
}
