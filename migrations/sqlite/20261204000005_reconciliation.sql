-- Entitlement reconciliation: connectors remediate (rather than "fix"), remember how their
-- last run went, and drift includes accounts that match no user. (The SQLite schema has had
-- the new policy and kind constraints since version 1; see there.)
UPDATE connectors SET policy = 'remediate' WHERE policy = 'fix';
ALTER TABLE connectors ADD COLUMN last_reconciled_at DATETIME;
ALTER TABLE connectors ADD COLUMN last_status TEXT CHECK (last_status IN ('ok', 'failed'));
ALTER TABLE connectors ADD COLUMN last_error TEXT;
