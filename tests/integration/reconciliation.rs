//! entitlement-reconciliation against a real SCIM server, in both policies, with a failing
//! connector beside it.

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::fixtures::example_toml;
use crate::job_host::{Host, now};
use crate::python::{ScimServer, TOKEN};

/// A floh database with users alice, bob and carol, and a SCIM system holding alice, bob and
/// an account nobody owns: `finance` (alice and the stranger) and `admins` (bob). Governance
/// wants alice, bob and carol in finance, and nobody in admins.
struct Reconciling {
    host: Host,
    pool: PgPool,
    scim: ScimServer,
    finance: String,
    admins: String,
    bob: String,
}

impl Reconciling {
    async fn start(policy: &str) -> Self {
        let scim = ScimServer::start().await;
        let toml = format!("{}\n", example_toml())
            .replace("# http_allow = [\"scim.example.com\"]", "http_allow = [\"127.0.0.1\"]");
        let host =
            Host::start(&[("entitlement-reconciliation", "entitlement-reconciliation.wasm")], &toml, &[])
                .await;
        let pool = PgPool::connect(&host.db.url()).await.unwrap();
        let alice = scim.user("alice@example.com").await;
        let bob = scim.user("Bob@Example.com").await;
        let stranger = scim.user("stranger@example.com").await;
        let finance = scim.group("finance", &[&alice, &stranger]).await;
        let admins = scim.group("admins", &[&bob]).await;

        let exec = |sql: String| {
            let pool = pool.clone();
            async move { sqlx::raw_sql(&sql).execute(&pool).await.unwrap() }
        };
        let at = now().to_rfc3339();
        for user in ["alice", "bob", "carol"] {
            exec(format!(
                "INSERT INTO users (id, email, display_name, created_at, updated_at)
                 VALUES ('{user}', '{user}@example.com', '{user}', '{at}', '{at}')"
            ))
            .await;
        }
        let config = json!({ "bearerToken": TOKEN, "pageSize": 2 }).to_string();
        exec(format!(
            "INSERT INTO connectors (id, name, kind, base_url, policy, config, enabled, created_at, updated_at) VALUES
               ('hr', 'hr-scim', 'scim', '{}', '{policy}', '{config}', TRUE, '{at}', '{at}'),
               ('down', 'broken', 'scim', 'http://127.0.0.1:{}/v2', 'report', '{{}}', TRUE, '{at}', '{at}'),
               ('off', 'switched-off', 'scim', 'http://127.0.0.1:1/v2', 'report', '{{}}', FALSE, '{at}', '{at}')",
            scim.base(),
            crate::helpers::free_port()
        ))
        .await;
        exec(format!(
            "INSERT INTO entitlements (id, connector_id, external_id, name, created_at) VALUES
               ('ent-finance', 'hr', '{finance}', 'finance', '{at}'), ('ent-admins', 'hr', '{admins}', 'admins', '{at}');
             INSERT INTO desired_entitlements (user_id, entitlement_id, created_at) VALUES
               ('alice', 'ent-finance', '{at}'), ('bob', 'ent-finance', '{at}'), ('carol', 'ent-finance', '{at}')"
        ))
        .await;
        Self { host, pool, scim, finance, admins, bob }
    }

    async fn run(&self) -> Vec<Value> {
        let output = self.host.output("entitlement-reconciliation", json!({})).await;
        output["connectors"].as_array().unwrap().clone()
    }

    /// (kind, user, entitlement, status) of every finding.
    async fn findings(&self) -> Vec<(String, Option<String>, Option<String>, String)> {
        sqlx::query_as(
            "SELECT kind, user_id, entitlement_id, status FROM drift_findings ORDER BY kind, user_id, status",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap()
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

#[tokio::test]
async fn report_mode_records_drift_and_a_failing_connector_stops_nothing() {
    let reconciling = Reconciling::start("report").await;
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
        sqlx::query_as("SELECT id, last_status FROM connectors ORDER BY id")
            .fetch_all(&reconciling.pool)
            .await
            .unwrap();
    assert_eq!(
        status,
        [("down".into(), Some("failed".into())), ("hr".into(), Some("ok".into())), ("off".into(), None)]
    );
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM observed_entitlements")
        .fetch_one(&reconciling.pool)
        .await
        .unwrap();
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

#[tokio::test]
async fn remediate_mode_fixes_memberships_and_audits_each_change() {
    let reconciling = Reconciling::start("remediate").await;
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
    let audited: Vec<(String, String)> = sqlx::query_as("SELECT action, target FROM audit_log ORDER BY seq")
        .fetch_all(&reconciling.pool)
        .await
        .unwrap();
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
