-- Messages between signaling nodes that are too large for a NOTIFY payload.
-- Only PostgreSQL runs several nodes (SQLite has one, which never uses this
-- table); it is here so that both schemas stay table for table.
CREATE TABLE cluster_spill (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE INDEX cluster_spill_created ON cluster_spill (created_at);
