-- The domain schema for every job type floh runs: the SQLite twin of
-- migrations/20261204000001_initial_schema.sql, kept in lock-step with the PostgreSQL set (one
-- file per version; the same tables and columns in the end, which a test compares).
--
-- Differences, all of them: DATETIME for TIMESTAMPTZ (the declared type by which floh reads a
-- column back as a timestamp); BLOB for BYTEA; NOT NULL spelled out on primary keys (SQLite
-- would let a TEXT primary key be NULL); and the CHECK constraints that PostgreSQL's
-- version 5 replaces are written here as version 5 leaves them, because SQLite cannot alter
-- a constraint and no SQLite database predates version 5.

CREATE TABLE users (
    id           TEXT NOT NULL PRIMARY KEY,
    email        TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at   DATETIME NOT NULL,
    updated_at   DATETIME NOT NULL
);

CREATE TABLE roles (
    id          TEXT NOT NULL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at  DATETIME NOT NULL
);

-- status: active -> revoked (by a person or a job, reason says why).
CREATE TABLE role_assignments (
    id         TEXT NOT NULL PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id    TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    status     TEXT NOT NULL CHECK (status IN ('pending', 'active', 'revoked')),
    granted_at DATETIME NOT NULL,
    granted_by TEXT,
    expires_at DATETIME,
    revoked_at DATETIME,
    reason     TEXT,
    updated_at DATETIME NOT NULL
);
CREATE INDEX role_assignments_active_expiry ON role_assignments (status, expires_at);
CREATE INDEX role_assignments_user ON role_assignments (user_id, status);
CREATE INDEX role_assignments_role ON role_assignments (role_id, status);

CREATE TABLE documents (
    id            TEXT NOT NULL PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    document_type TEXT NOT NULL,
    issued_at     DATETIME NOT NULL,
    expires_at    DATETIME,
    revoked_at    DATETIME,
    created_at    DATETIME NOT NULL
);
CREATE INDEX documents_user_type ON documents (user_id, document_type);

-- Holding the role requires a valid document of this type.
CREATE TABLE role_document_requirements (
    role_id       TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    document_type TEXT NOT NULL,
    PRIMARY KEY (role_id, document_type)
);

-- A connected system (SCIM or plain HTTP). policy: report drift only, or fix it.
CREATE TABLE connectors (
    id         TEXT NOT NULL PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL CHECK (kind IN ('scim', 'http')),
    base_url   TEXT NOT NULL,
    policy     TEXT NOT NULL DEFAULT 'report' CHECK (policy IN ('report', 'remediate')),
    config     TEXT NOT NULL DEFAULT '{}',
    enabled    BOOLEAN NOT NULL DEFAULT TRUE,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);

-- An entitlement (group, permission) that exists in a connected system.
CREATE TABLE entitlements (
    id           TEXT NOT NULL PRIMARY KEY,
    connector_id TEXT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    external_id  TEXT NOT NULL,
    name         TEXT NOT NULL,
    created_at   DATETIME NOT NULL,
    UNIQUE (connector_id, external_id)
);

-- A user's account in a connected system.
CREATE TABLE connector_accounts (
    id           TEXT NOT NULL PRIMARY KEY,
    connector_id TEXT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    user_id      TEXT REFERENCES users (id) ON DELETE SET NULL,
    external_id  TEXT NOT NULL,
    created_at   DATETIME NOT NULL,
    UNIQUE (connector_id, external_id)
);

-- What governance says a user should hold.
CREATE TABLE desired_entitlements (
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    entitlement_id TEXT NOT NULL REFERENCES entitlements (id) ON DELETE CASCADE,
    source_role_id TEXT REFERENCES roles (id) ON DELETE SET NULL,
    created_at     DATETIME NOT NULL,
    PRIMARY KEY (user_id, entitlement_id)
);

-- What the connected system reported at the last reconciliation.
CREATE TABLE observed_entitlements (
    account_id     TEXT NOT NULL REFERENCES connector_accounts (id) ON DELETE CASCADE,
    entitlement_id TEXT NOT NULL REFERENCES entitlements (id) ON DELETE CASCADE,
    observed_at    DATETIME NOT NULL,
    PRIMARY KEY (account_id, entitlement_id)
);

-- kind: missing (desired, not observed) or unexpected (observed, not desired).
CREATE TABLE drift_findings (
    id             TEXT NOT NULL PRIMARY KEY,
    connector_id   TEXT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    account_id     TEXT REFERENCES connector_accounts (id) ON DELETE SET NULL,
    user_id        TEXT REFERENCES users (id) ON DELETE SET NULL,
    entitlement_id TEXT REFERENCES entitlements (id) ON DELETE SET NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('missing', 'unexpected', 'orphan')),
    status         TEXT NOT NULL CHECK (status IN ('open', 'fixed', 'reported', 'resolved')),
    detail         TEXT NOT NULL DEFAULT '',
    detected_at    DATETIME NOT NULL,
    resolved_at    DATETIME
);
CREATE INDEX drift_findings_open ON drift_findings (connector_id, status);

CREATE TABLE workflows (
    id         TEXT NOT NULL PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    definition TEXT NOT NULL DEFAULT '{}',
    enabled    BOOLEAN NOT NULL DEFAULT TRUE,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);

-- cron: standard 5-field crontab, evaluated in timezone (IANA name).
CREATE TABLE workflow_schedules (
    id          TEXT NOT NULL PRIMARY KEY,
    workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    cron        TEXT NOT NULL,
    timezone    TEXT NOT NULL DEFAULT 'UTC',
    input       TEXT NOT NULL DEFAULT '{}',
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    last_run_at DATETIME,
    created_at  DATETIME NOT NULL,
    updated_at  DATETIME NOT NULL
);

-- scheduled_for with schedule_id makes a scheduled start idempotent.
CREATE TABLE workflow_runs (
    id             TEXT NOT NULL PRIMARY KEY,
    workflow_id    TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    schedule_id    TEXT REFERENCES workflow_schedules (id) ON DELETE SET NULL,
    scheduled_for  DATETIME,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    input          TEXT NOT NULL DEFAULT '{}',
    started_at     DATETIME,
    finished_at    DATETIME,
    failure_reason TEXT,
    created_at     DATETIME NOT NULL,
    updated_at     DATETIME NOT NULL,
    UNIQUE (schedule_id, scheduled_for)
);
CREATE INDEX workflow_runs_status_updated ON workflow_runs (status, updated_at);

-- No foreign key to workflow_runs on purpose: artifacts can outlive their run, and
-- run-orphan-cleanup finds and deletes those. Content is inline or a file path.
CREATE TABLE run_artifacts (
    id           TEXT NOT NULL PRIMARY KEY,
    run_id       TEXT NOT NULL,
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL DEFAULT 'application/octet-stream',
    size_bytes   BIGINT NOT NULL DEFAULT 0,
    storage      TEXT NOT NULL DEFAULT 'inline' CHECK (storage IN ('inline', 'file')),
    path         TEXT,
    content      BLOB,
    created_at   DATETIME NOT NULL
);
CREATE INDEX run_artifacts_run ON run_artifacts (run_id);

CREATE TABLE approvals (
    id                    TEXT NOT NULL PRIMARY KEY,
    run_id                TEXT REFERENCES workflow_runs (id) ON DELETE CASCADE,
    subject               TEXT NOT NULL,
    approver_id           TEXT NOT NULL REFERENCES users (id),
    status                TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled')),
    due_at                DATETIME NOT NULL,
    reminded_at           DATETIME,
    reminder_count        INTEGER NOT NULL DEFAULT 0,
    escalation_target_id  TEXT REFERENCES users (id),
    escalated_at          DATETIME,
    previous_approver_id  TEXT REFERENCES users (id),
    decided_at            DATETIME,
    created_at            DATETIME NOT NULL,
    updated_at            DATETIME NOT NULL
);
CREATE INDEX approvals_pending_due ON approvals (status, due_at);

-- recipients: JSON array of e-mail addresses. parameters: JSON object for the report.
CREATE TABLE scheduled_reports (
    id           TEXT NOT NULL PRIMARY KEY,
    name         TEXT NOT NULL,
    report_type  TEXT NOT NULL,
    cron         TEXT NOT NULL,
    timezone     TEXT NOT NULL DEFAULT 'UTC',
    recipients   TEXT NOT NULL DEFAULT '[]',
    format       TEXT NOT NULL DEFAULT 'csv' CHECK (format IN ('csv')),
    parameters   TEXT NOT NULL DEFAULT '{}',
    enabled      BOOLEAN NOT NULL DEFAULT TRUE,
    last_sent_at DATETIME,
    created_at   DATETIME NOT NULL,
    updated_at   DATETIME NOT NULL
);

-- Operational log, purged after LOG_RETENTION_DAYS. fields: JSON object.
CREATE TABLE system_log (
    id         TEXT NOT NULL PRIMARY KEY,
    created_at DATETIME NOT NULL,
    level      TEXT NOT NULL CHECK (level IN ('trace', 'debug', 'info', 'warn', 'error')),
    source     TEXT NOT NULL,
    message    TEXT NOT NULL,
    fields     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX system_log_created ON system_log (created_at);

-- Append-only, hash-chained: hash = H(canonical(seq, occurred_at, actor, action, target,
-- reason, details, prev_hash)); the first row's prev_hash is the chain's genesis value.
CREATE TABLE audit_log (
    seq         BIGINT NOT NULL PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    occurred_at DATETIME NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    details     TEXT NOT NULL DEFAULT '{}',
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE
);

-- A signed statement over audit_log rows first_seq..last_seq, linked to the previous one.
CREATE TABLE audit_checkpoints (
    id                   TEXT NOT NULL PRIMARY KEY,
    first_seq            BIGINT NOT NULL,
    last_seq             BIGINT NOT NULL UNIQUE,
    entry_count          BIGINT NOT NULL,
    last_hash            TEXT NOT NULL,
    prev_checkpoint_hash TEXT NOT NULL,
    record               TEXT NOT NULL,
    record_hash          TEXT NOT NULL UNIQUE,
    key_id               TEXT NOT NULL,
    signature            TEXT NOT NULL,
    store                TEXT NOT NULL,
    location             TEXT NOT NULL,
    created_at           DATETIME NOT NULL
);

-- Runtime settings changed through the admin API (e.g. stuck_run_timeout_minutes).
-- value: JSON.
CREATE TABLE settings (
    key        TEXT NOT NULL PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at DATETIME NOT NULL,
    updated_by TEXT NOT NULL
);
