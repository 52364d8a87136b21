-- Entitlement reconciliation: connectors remediate (rather than "fix"), remember how their
-- last run went, and drift includes accounts that match no user.
ALTER TABLE connectors DROP CONSTRAINT connectors_policy_check;
UPDATE connectors SET policy = 'remediate' WHERE policy = 'fix';
ALTER TABLE connectors ADD CONSTRAINT connectors_policy_check CHECK (policy IN ('report', 'remediate'));
ALTER TABLE connectors ADD COLUMN last_reconciled_at TIMESTAMPTZ;
ALTER TABLE connectors ADD COLUMN last_status TEXT CHECK (last_status IN ('ok', 'failed'));
ALTER TABLE connectors ADD COLUMN last_error TEXT;

ALTER TABLE drift_findings DROP CONSTRAINT drift_findings_kind_check;
ALTER TABLE drift_findings ADD CONSTRAINT drift_findings_kind_check
    CHECK (kind IN ('missing', 'unexpected', 'orphan'));
