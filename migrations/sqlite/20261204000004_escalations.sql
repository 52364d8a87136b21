-- Approval reminder policy, and who an overdue approval escalates to.
ALTER TABLE approvals ADD COLUMN reminder_interval_hours INTEGER NOT NULL DEFAULT 24
    CHECK (reminder_interval_hours BETWEEN 1 AND 8760);
ALTER TABLE approvals ADD COLUMN max_reminders INTEGER NOT NULL DEFAULT 3
    CHECK (max_reminders BETWEEN 0 AND 100);
ALTER TABLE users ADD COLUMN manager_id TEXT REFERENCES users (id) ON DELETE SET NULL;
