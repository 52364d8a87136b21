-- One row per report occurrence that was handled, so a retried delivery never mails twice.
ALTER TABLE scheduled_reports ADD COLUMN skip_if_empty BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE report_deliveries (
    id            TEXT NOT NULL PRIMARY KEY,
    report_id     TEXT NOT NULL REFERENCES scheduled_reports (id) ON DELETE CASCADE,
    scheduled_for DATETIME NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('sent', 'skipped')),
    row_count     BIGINT NOT NULL,
    recipients    TEXT NOT NULL,
    created_at    DATETIME NOT NULL,
    UNIQUE (report_id, scheduled_for)
);
