-- The live path: residents' requests for a lawyer now, the offers made to
-- lawyers and interpreters for them, and what links a consultation to them.

-- A resident's request at a terminal. 'waiting' until it is matched (then
-- consultation_id names the consultation), cancelled by the resident, or
-- abandoned (its terminal stayed away too long). A call that drops for good
-- puts the resident back with a new request at the front of the queue
-- (front), offered first to preferred_lawyer_id.
CREATE TABLE consultation_requests (
    id                   TEXT PRIMARY KEY,
    terminal_id          TEXT NOT NULL REFERENCES terminals (id),
    region_id            TEXT NOT NULL REFERENCES regions (id),
    language             TEXT NOT NULL CHECK (length(language) BETWEEN 2 AND 3),
    topic                TEXT NOT NULL CHECK (topic IN
                           ('land', 'family', 'labour', 'debt', 'administrative', 'criminal', 'other')),
    status               TEXT NOT NULL CHECK (status IN ('waiting', 'matched', 'cancelled', 'abandoned')),
    front                BOOLEAN NOT NULL DEFAULT FALSE,
    preferred_lawyer_id  TEXT REFERENCES accounts (id),
    created_at           BIGINT NOT NULL,
    closed_at            BIGINT,
    consultation_id      TEXT REFERENCES consultations (id),
    -- The appointment this request is the start of: it becomes completed when the
    -- consultation starts, no_show when the terminal never comes.
    appointment_id       TEXT REFERENCES appointments (id),
    CHECK ((status = 'waiting') = (closed_at IS NULL)),
    CHECK ((status = 'matched') = (consultation_id IS NOT NULL))
);
-- A terminal waits for one thing at a time.
CREATE UNIQUE INDEX consultation_requests_one_waiting ON consultation_requests (terminal_id)
    WHERE status = 'waiting';
CREATE INDEX consultation_requests_status ON consultation_requests (status, created_at);
CREATE INDEX consultation_requests_region ON consultation_requests (region_id, created_at);

-- Each offer of a request to one person, and what became of it.
CREATE TABLE consultation_offers (
    id          TEXT PRIMARY KEY,
    request_id  TEXT NOT NULL REFERENCES consultation_requests (id),
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    role        TEXT NOT NULL CHECK (role IN ('lawyer', 'interpreter')),
    offered_at  BIGINT NOT NULL,
    deadline    BIGINT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('pending', 'accepted', 'declined', 'timed_out', 'withdrawn')),
    decided_at  BIGINT,
    CHECK ((outcome = 'pending') = (decided_at IS NULL))
);
CREATE INDEX consultation_offers_request ON consultation_offers (request_id);
CREATE INDEX consultation_offers_account ON consultation_offers (account_id, offered_at);

ALTER TABLE consultations ADD COLUMN request_id TEXT REFERENCES consultation_requests (id);
-- Why it ended: hung_up, resident_lost, lawyer_lost.
ALTER TABLE consultations ADD COLUMN end_reason TEXT;

-- Nobody is in two consultations at once, whatever the code does.
CREATE UNIQUE INDEX consultations_one_active_lawyer ON consultations (lawyer_id) WHERE status = 'active';
CREATE UNIQUE INDEX consultations_one_active_interpreter ON consultations (interpreter_id)
    WHERE status = 'active' AND interpreter_id IS NOT NULL;
CREATE UNIQUE INDEX consultations_one_active_terminal ON consultations (terminal_id) WHERE status = 'active';
