-- What started a workflow run, and when a schedule last started one.
ALTER TABLE workflow_runs ADD COLUMN triggered_by TEXT NOT NULL DEFAULT 'manual'
    CHECK (triggered_by IN ('manual', 'schedule', 'api'));
ALTER TABLE workflow_schedules RENAME COLUMN last_run_at TO last_triggered_at;
