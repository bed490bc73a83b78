-- Messages between signaling nodes that are too large for a NOTIFY payload
-- (PostgreSQL caps one at 8000 bytes): the sender stores the message here
-- and notifies its id; the receivers read it. Rows are deleted a minute
-- after they were written (by the node that runs the live path).
CREATE TABLE cluster_spill (
    id BIGSERIAL PRIMARY KEY,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX cluster_spill_created ON cluster_spill (created_at);
