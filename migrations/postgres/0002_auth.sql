-- Sign-in sessions, token signing keys, the audit log, and consultation records
-- (whose access rules arrive with accounts; the live path fills them).

-- Ed25519 keys that sign tokens. The newest unretired key signs; every unretired
-- key verifies, so rotating keys logs nobody out.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    generation   BIGINT NOT NULL UNIQUE,   -- 1, 2, ...: the highest unretired one signs
    private_key  BYTEA NOT NULL,     -- PKCS#8 DER
    public_key   BYTEA NOT NULL,     -- 32 raw bytes
    created_at   BIGINT NOT NULL,
    retired_at   BIGINT
);

-- One row per login. Access and refresh tokens name their session; revoking it
-- ends them all, and closes the session's WebSocket connections.
CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    revoked_at      BIGINT,
    revoked_reason  TEXT,
    source          TEXT
);
CREATE INDEX sessions_account ON sessions (account_id);

-- Every refresh token issued. Using one marks it used and issues the next;
-- presenting a used one again revokes its whole session (a stolen token).
CREATE TABLE refresh_tokens (
    id          TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- Append-only, hash-chained record of who did what, when and from where.
-- seq counts from 1 without gaps; prev_hash is the previous row's hash (64 zeros
-- for the first); hash = SHA-256 over prev_hash and this row's fields.
CREATE TABLE audit_log (
    seq         BIGINT PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,      -- 'account:<id>', 'terminal:<id>', 'anonymous', 'system'
    action      TEXT NOT NULL,
    subject     TEXT NOT NULL DEFAULT '',
    detail      TEXT NOT NULL DEFAULT '{}',
    source      TEXT NOT NULL DEFAULT '',
    prev_hash   TEXT NOT NULL UNIQUE,
    hash        TEXT NOT NULL UNIQUE
);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
-- TRUNCATE skips row triggers; refuse it too.
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- A consultation between a resident at a terminal and a lawyer (and perhaps an
-- interpreter), with the lawyer's record and the resident's rating.
CREATE TABLE consultations (
    id              TEXT PRIMARY KEY,
    terminal_id     TEXT NOT NULL REFERENCES terminals (id),
    region_id       TEXT NOT NULL REFERENCES regions (id),
    lawyer_id       TEXT NOT NULL REFERENCES accounts (id),
    interpreter_id  TEXT REFERENCES accounts (id),
    topic           TEXT NOT NULL CHECK (topic IN
                      ('land', 'family', 'labour', 'debt', 'administrative', 'criminal', 'other')),
    language        TEXT NOT NULL CHECK (length(language) BETWEEN 2 AND 3),
    status          TEXT NOT NULL CHECK (status IN ('active', 'wrap_up', 'ended')),
    started_at      BIGINT NOT NULL,
    ended_at        BIGINT,
    summary         TEXT CHECK (summary IS NULL OR length(summary) <= 20000),
    outcome         TEXT CHECK (outcome IS NULL OR outcome IN
                      ('advice_given', 'referred_legal_aid', 'referred_mediation', 'follow_up_appointment')),
    rating          BIGINT CHECK (rating IS NULL OR rating BETWEEN 1 AND 5),
    CHECK ((status = 'active') = (ended_at IS NULL))
);
CREATE INDEX consultations_lawyer ON consultations (lawyer_id, started_at);
CREATE INDEX consultations_interpreter ON consultations (interpreter_id, started_at);
CREATE INDEX consultations_terminal ON consultations (terminal_id, started_at);
CREATE INDEX consultations_region ON consultations (region_id, started_at);
