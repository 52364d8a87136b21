//! entitlement-reconciliation: for each enabled SCIM connector, reads the accounts and groups
//! the connected system reports, compares the memberships with the desired entitlements and
//! keeps `drift_findings` current: `missing` (desired, not held), `unexpected` (held, not
//! desired) and `orphan` (an account matching no user). A finding stays `open` while the drift
//! lasts and becomes `resolved` when it is gone. With policy `remediate` the job also changes
//! the group memberships (SCIM PATCH) to match, marks those findings `fixed` and audits each
//! change. A connector that fails (unreachable, an error status, a malformed answer) is recorded
//! as failed for this run and the others carry on; the outcome lists every connector.

mod drift;
mod scim;

use std::collections::{BTreeMap, BTreeSet};

use drift::{Finding, Kind, State};
use floh_plugin_sdk::audit::{self, Event};
use floh_plugin_sdk::{Capability, Job, JobError, Outcome, Plugin, PluginInfo, Timestamp, clock, db, log};
use serde_json::{Value, json};

struct EntitlementReconciliation;

/// Users read per query while matching accounts.
const USER_PAGE: i64 = 5000;

struct Connector {
    id: String,
    name: String,
    base_url: String,
    remediate: bool,
    config: Value,
}

impl Plugin for EntitlementReconciliation {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "entitlement-reconciliation",
            env!("CARGO_PKG_VERSION"),
            "Reconciles entitlements with connected systems over SCIM",
        )
        .schedule("0 2 * * *")
        .needs(&[Capability::Db, Capability::Http, Capability::Audit])
    }

    fn run(_job: Job) -> Result<Outcome, JobError> {
        let listed = db::query(
            "SELECT id, name, base_url, policy, config FROM connectors WHERE enabled AND kind = 'scim' ORDER BY name",
            &[],
        )?;
        let mut connectors = Vec::new();
        for row in listed.iter() {
            connectors.push(Connector {
                id: row.required("id", db::Row::text)?.to_owned(),
                name: row.required("name", db::Row::text)?.to_owned(),
                base_url: row.required("base_url", db::Row::text)?.to_owned(),
                remediate: row.text("policy")? == Some("remediate"),
                config: serde_json::from_str(row.text("config")?.unwrap_or("{}")).unwrap_or(Value::Null),
            });
        }
        let users = users_by_login()?;
        // End the reading transaction before talking to the connected systems: on SQLite an
        // open transaction holds the file's write lock, which other jobs would wait for.
        db::commit()?;
        let mut results = Vec::new();
        for connector in &connectors {
            let now = clock::now();
            let result = reconcile(connector, &users, now);
            let (status, error, summary) = match result {
                Ok(summary) => ("ok", None, summary),
                Err((error, summary)) => ("failed", Some(error), summary),
            };
            db::execute(
                "UPDATE connectors SET last_reconciled_at = $2, last_status = $3, last_error = $4 WHERE id = $1",
                &[connector.id.as_str().into(), db::at(now), status.into(), error.clone().into()],
            )?;
            db::commit()?;
            if let Some(error) = &error {
                log::with_fields(
                    log::Level::Warn,
                    "connector reconciliation failed",
                    &[("connector", &connector.name), ("error", error)],
                );
            }
            let mut summary = summary;
            summary["id"] = json!(connector.id);
            summary["name"] = json!(connector.name);
            summary["status"] = json!(status);
            summary["error"] = json!(error);
            results.push(summary);
        }
        floh_plugin_sdk::outcome(&json!({ "connectors": results }))
    }
}

/// Every user by lower-case e-mail and by id, to match accounts (`userName`, an e-mail,
/// or `externalId` naming the user id).
fn users_by_login() -> Result<BTreeMap<String, String>, JobError> {
    let mut users = BTreeMap::new();
    let mut after = String::new();
    loop {
        let page = db::query(
            "SELECT id, email FROM users WHERE id > $1 ORDER BY id LIMIT $2",
            &[after.as_str().into(), USER_PAGE.into()],
        )?;
        for row in page.iter() {
            let id = row.required("id", db::Row::text)?.to_owned();
            users.insert(row.required("email", db::Row::text)?.to_lowercase(), id.clone());
            users.insert(format!("id:{id}"), id.clone());
            after = id;
        }
        if page.len() < USER_PAGE as usize {
            return Ok(users);
        }
    }
}

type Failure = (String, Value);

/// Reads the connector's system, records what it holds and the drift, and remediates if asked.
/// On failure: the reason, and the counts so far.
fn reconcile(
    connector: &Connector,
    users: &BTreeMap<String, String>,
    now: Timestamp,
) -> Result<Value, Failure> {
    let token = connector.config.get("bearerToken").and_then(Value::as_str).map(str::to_owned);
    let page_size =
        connector.config.get("pageSize").and_then(Value::as_u64).unwrap_or(100).clamp(1, 1000) as usize;
    let client = scim::Client::new(&connector.base_url, token, page_size);
    let failed = |e: &dyn std::fmt::Display| (e.to_string(), json!({}));
    // Everything is read before anything is written, so a failing system changes nothing.
    let scim_users = client.users().map_err(|e| failed(&e))?;
    let groups = client.groups().map_err(|e| failed(&e))?;

    let db_failed = |e: JobError| (format!("{e:?}"), json!({}));
    let mut state = State { accounts: BTreeMap::new(), held: BTreeSet::new(), desired: BTreeSet::new() };
    let mut names = BTreeMap::new();
    for user in &scim_users {
        let account = format!("{}/{}", connector.id, user.id);
        let owner = std::iter::once(user.user_name.to_lowercase())
            .chain(user.emails.iter().map(|e| e.value.to_lowercase()))
            .chain(user.external_id.iter().map(|id| format!("id:{id}")))
            .find_map(|login| users.get(&login).cloned());
        store_account(connector, &account, &user.id, owner.as_deref(), now).map_err(db_failed)?;
        names.insert(account.clone(), user.user_name.clone());
        state.accounts.insert(account, owner);
    }
    let mut groups_of = BTreeMap::new();
    for group in &groups {
        let entitlement = store_entitlement(connector, group, now).map_err(db_failed)?;
        for member in &group.members {
            let account = format!("{}/{}", connector.id, member.value);
            if state.accounts.contains_key(&account) {
                state.held.insert((account, entitlement.clone()));
            }
        }
        groups_of.insert(entitlement, group.id.clone());
    }
    store_held(connector, &state.held, now).map_err(db_failed)?;
    state.desired = desired(connector).map_err(db_failed)?;

    let found = drift::findings(&state);
    let (open, resolved) = record_findings(connector, &found, &names, now).map_err(db_failed)?;
    db::commit().map_err(|e| db_failed(e.into()))?;
    let count = |kind: Kind| found.iter().filter(|f| f.kind == kind).count();
    let mut summary = json!({
        "accounts": scim_users.len(),
        "entitlements": groups.len(),
        "missing": count(Kind::Missing),
        "unexpected": count(Kind::Unexpected),
        "orphans": count(Kind::Orphan),
        "resolved": resolved,
        "fixed": 0,
    });
    if connector.remediate {
        let fixed = remediate(connector, &client, &open, &groups_of, now);
        db::commit().map_err(|e| db_failed(e.into()))?;
        summary["fixed"] = json!(fixed.as_ref().map_or_else(|(n, _)| *n, |n| *n));
        if let Err((_, error)) = fixed {
            return Err((format!("remediation stopped: {error}"), summary));
        }
    }
    Ok(summary)
}

fn store_account(
    connector: &Connector,
    account: &str,
    external: &str,
    user: Option<&str>,
    now: Timestamp,
) -> Result<(), JobError> {
    db::execute(
        "INSERT INTO connector_accounts (id, connector_id, user_id, external_id, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (connector_id, external_id) DO UPDATE SET user_id = excluded.user_id",
        &[account.into(), connector.id.as_str().into(), user.into(), external.into(), db::at(now)],
    )?;
    Ok(())
}

/// Records the group as an entitlement (keeping the id of one recorded before); returns its id.
fn store_entitlement(connector: &Connector, group: &scim::Group, now: Timestamp) -> Result<String, JobError> {
    let rows = db::query(
        "INSERT INTO entitlements (id, connector_id, external_id, name, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (connector_id, external_id) DO UPDATE SET name = excluded.name
         RETURNING id",
        &[
            format!("{}/{}", connector.id, group.id).into(),
            connector.id.as_str().into(),
            group.id.as_str().into(),
            group.display_name.as_str().into(),
            db::at(now),
        ],
    )?;
    let row = rows.iter().next().ok_or_else(|| JobError::Permanent("upsert returned no row".into()))?;
    Ok(row.required("id", db::Row::text)?.to_owned())
}

/// Replaces what was observed of the connector's accounts with `held`.
fn store_held(
    connector: &Connector,
    held: &BTreeSet<(String, String)>,
    now: Timestamp,
) -> Result<(), JobError> {
    db::execute(
        "DELETE FROM observed_entitlements WHERE account_id IN (SELECT id FROM connector_accounts WHERE connector_id = $1)",
        &[connector.id.as_str().into()],
    )?;
    for (account, entitlement) in held {
        db::execute(
            "INSERT INTO observed_entitlements (account_id, entitlement_id, observed_at) VALUES ($1, $2, $3)",
            &[account.as_str().into(), entitlement.as_str().into(), db::at(now)],
        )?;
    }
    Ok(())
}

fn desired(connector: &Connector) -> Result<BTreeSet<(String, String)>, JobError> {
    let rows = db::query(
        "SELECT d.user_id, d.entitlement_id FROM desired_entitlements d JOIN entitlements e ON e.id = d.entitlement_id
         WHERE e.connector_id = $1",
        &[connector.id.as_str().into()],
    )?;
    rows.iter()
        .map(|row| {
            Ok((
                row.required("user_id", db::Row::text)?.to_owned(),
                row.required("entitlement_id", db::Row::text)?.to_owned(),
            ))
        })
        .collect()
}

/// Opens findings not yet open and resolves open ones that no longer hold. Returns the open
/// findings with their ids, and how many were resolved.
fn record_findings(
    connector: &Connector,
    found: &BTreeSet<Finding>,
    names: &BTreeMap<String, String>,
    now: Timestamp,
) -> Result<(Vec<(String, Finding)>, usize), JobError> {
    let rows = db::query(
        "SELECT id, kind, account_id, user_id, entitlement_id FROM drift_findings WHERE connector_id = $1 AND status = 'open'",
        &[connector.id.as_str().into()],
    )?;
    let mut open = BTreeMap::new();
    for row in rows.iter() {
        let Some(kind) = Kind::parse(row.required("kind", db::Row::text)?) else { continue };
        let finding = Finding {
            kind,
            account_id: row.text("account_id")?.map(str::to_owned),
            user_id: row.text("user_id")?.map(str::to_owned),
            entitlement_id: row.text("entitlement_id")?.map(str::to_owned),
        };
        open.insert(finding, row.required("id", db::Row::text)?.to_owned());
    }
    let mut resolved = 0;
    for (finding, id) in &open {
        if !found.contains(finding) {
            db::execute(
                "UPDATE drift_findings SET status = 'resolved', resolved_at = $2 WHERE id = $1",
                &[id.as_str().into(), db::at(now)],
            )?;
            resolved += 1;
        }
    }
    let mut current = Vec::new();
    for finding in found {
        let id = match open.get(finding) {
            Some(id) => id.clone(),
            None => {
                let id = format!("{}/{}/{}", connector.id, finding.kind.as_str(), now);
                let id = format!("{id}/{}", current.len());
                let account = finding.account_id.as_deref();
                let detail = match finding.kind {
                    Kind::Missing if account.is_none() => format!("no account in {}", connector.name),
                    Kind::Missing => "desired, not held".to_owned(),
                    Kind::Unexpected => "held, not desired".to_owned(),
                    Kind::Orphan => format!(
                        "account {} matches no user",
                        account.and_then(|a| names.get(a)).map_or("?", String::as_str)
                    ),
                };
                db::execute(
                    "INSERT INTO drift_findings (id, connector_id, account_id, user_id, entitlement_id, kind, status, detail,
                                                 detected_at)
                     VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8)",
                    &[
                        id.as_str().into(),
                        connector.id.as_str().into(),
                        account.into(),
                        finding.user_id.as_deref().into(),
                        finding.entitlement_id.as_deref().into(),
                        finding.kind.as_str().into(),
                        detail.into(),
                        db::at(now),
                    ],
                )?;
                id
            }
        };
        current.push((id, finding.clone()));
    }
    Ok((current, resolved))
}

/// Changes memberships to match for every open finding it can fix; returns how many it fixed,
/// or that count and the error that stopped it.
fn remediate(
    connector: &Connector,
    client: &scim::Client,
    open: &[(String, Finding)],
    groups_of: &BTreeMap<String, String>,
    now: Timestamp,
) -> Result<usize, (usize, String)> {
    let mut fixed = 0;
    for (id, finding) in open {
        let add = match finding.kind {
            Kind::Missing => true,
            Kind::Unexpected => false,
            Kind::Orphan => continue,
        };
        // A missing entitlement without an account needs provisioning first: it stays open.
        let (Some(account), Some(entitlement)) = (&finding.account_id, &finding.entitlement_id) else {
            continue;
        };
        let Some(group) = groups_of.get(entitlement) else { continue };
        let member = account.rsplit_once('/').map_or(account.as_str(), |(_, external)| external);
        client.change_membership(group, member, add).map_err(|e| (fixed, e.to_string()))?;
        let record = || -> Result<(), JobError> {
            db::execute(
                "UPDATE drift_findings SET status = 'fixed', resolved_at = $2 WHERE id = $1",
                &[id.as_str().into(), db::at(now)],
            )?;
            let (action, reason) = if add {
                ("entitlement.granted", format!("Desired entitlement added in {}", connector.name))
            } else {
                ("entitlement.removed", format!("Undesired entitlement removed in {}", connector.name))
            };
            audit::append(
                &Event::new(
                    "system:entitlement-reconciliation",
                    action,
                    &format!("connector_account:{account}"),
                    &reason,
                )
                .details(
                    &json!({ "entitlementId": entitlement, "userId": finding.user_id, "findingId": id }),
                ),
            )?;
            Ok(())
        };
        record().map_err(|e| (fixed, format!("{e:?}")))?;
        fixed += 1;
    }
    Ok(fixed)
}

floh_plugin_sdk::export!(EntitlementReconciliation);
