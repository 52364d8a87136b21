-- The embedded queue's own SQLite file (QUEUE_PATH). Times are ms since the epoch, as in BullMQ.
CREATE TABLE IF NOT EXISTS jobs (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    name             TEXT NOT NULL,
    data             TEXT NOT NULL,
    -- The job's options in BullMQ's shape, as the admin API shows them.
    opts             TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('waiting', 'delayed', 'active', 'completed', 'failed')),
    -- When a waiting or delayed job may start.
    run_at           INTEGER NOT NULL,
    attempts         INTEGER NOT NULL,
    attempts_made    INTEGER NOT NULL DEFAULT 0,
    attempts_started INTEGER NOT NULL DEFAULT 0,
    -- Times the stalled check found it active with its lock expired.
    stalled          INTEGER NOT NULL DEFAULT 0,
    failed_reason    TEXT,
    stacktrace       TEXT NOT NULL DEFAULT '[]',
    returnvalue      TEXT,
    created_at       INTEGER NOT NULL,
    processed_on     INTEGER,
    finished_on      INTEGER,
    -- The worker holding an active job, and until when, unless it renews the lock.
    lock_token       TEXT,
    lock_until       INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (state, run_at);
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (state, finished_on, seq);

-- Job ids for jobs added without one: 1, 2, 3, … as BullMQ numbers them.
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO counters (name, value) VALUES ('job', 0);

CREATE TABLE IF NOT EXISTS schedulers (
    id       TEXT PRIMARY KEY,
    job_name TEXT NOT NULL,
    pattern  TEXT NOT NULL,
    tz       TEXT NOT NULL,
    data     TEXT NOT NULL,
    -- The next occurrence, ms since the epoch.
    next     INTEGER NOT NULL
);

-- Workers seen recently (each refreshes its row every second), for the admin API's count.
CREATE TABLE IF NOT EXISTS workers (
    name    TEXT PRIMARY KEY,
    seen_at INTEGER NOT NULL
);
