-- Referrals (signaling::http::referrals): a consultation's matter handed, with
-- the resident's consent, to the receiving office of the terminal's region
-- (a legal-aid centre, a people's mediation committee, ...), whose
-- caseworkers take it to an outcome.

-- The caseworker role joins the others. SQLite cannot change a CHECK in place:
-- the table is made again (nothing refers to it).
CREATE TABLE account_roles_new (
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('lawyer', 'interpreter', 'coordinator', 'admin', 'caseworker')),
    PRIMARY KEY (account_id, role)
);
INSERT INTO account_roles_new (account_id, role) SELECT account_id, role FROM account_roles;
DROP TABLE account_roles;
ALTER TABLE account_roles_new RENAME TO account_roles;

-- A region's receiving office for one service. `decision_days`: how long the
-- office has to decide once the resident agreed (the legal-aid decision period).
CREATE TABLE referral_offices (
    id              TEXT PRIMARY KEY,
    region_id       TEXT NOT NULL REFERENCES regions (id),
    service         TEXT NOT NULL CHECK (length(service) BETWEEN 2 AND 32 AND service NOT GLOB '*[^a-z_]*'),
    name            TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    decision_days   INTEGER NOT NULL CHECK (decision_days BETWEEN 1 AND 365),
    created_at      INTEGER NOT NULL,
    UNIQUE (region_id, service)
);

CREATE TABLE office_caseworkers (
    office_id   TEXT NOT NULL REFERENCES referral_offices (id) ON DELETE CASCADE,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    PRIMARY KEY (office_id, account_id)
);
CREATE INDEX office_caseworkers_account ON office_caseworkers (account_id);

-- `proposed`: the lawyer asked, the resident has not answered (no code yet; a
-- refusal deletes the row). Then `new`, `accepted` (a caseworker has it),
-- `closed` (with its outcome). Only what the office needs is kept: the matter
-- in the lawyer's words, topic, language and the contact the resident gave.
CREATE TABLE referrals (
    id              TEXT PRIMARY KEY,
    code            TEXT UNIQUE CHECK (length(code) = 8),
    consultation_id TEXT NOT NULL REFERENCES consultations (id),
    office_id       TEXT NOT NULL REFERENCES referral_offices (id),
    terminal_id     TEXT NOT NULL REFERENCES terminals (id),
    topic           TEXT NOT NULL,
    language        TEXT NOT NULL,
    matter          TEXT NOT NULL CHECK (length(matter) BETWEEN 1 AND 2000),
    contact         TEXT CHECK (length(contact) BETWEEN 1 AND 100),
    status          TEXT NOT NULL CHECK (status IN ('proposed', 'new', 'accepted', 'closed')),
    outcome         TEXT CHECK (outcome IN ('legal_aid_granted', 'legal_aid_refused', 'mediated',
                                            'mediation_failed', 'withdrawn', 'unreachable', 'other')),
    assignee_id     TEXT REFERENCES accounts (id),
    proposed_by     TEXT NOT NULL REFERENCES accounts (id),
    proposed_at     INTEGER NOT NULL,
    consented_at    INTEGER,
    due_at          INTEGER,
    closed_at       INTEGER,
    updated_at      INTEGER NOT NULL,
    UNIQUE (consultation_id, office_id),
    CHECK ((status = 'proposed') = (code IS NULL)),
    CHECK ((status = 'proposed') = (consented_at IS NULL)),
    CHECK ((status = 'closed') = (outcome IS NOT NULL AND closed_at IS NOT NULL))
);
CREATE INDEX referrals_office ON referrals (office_id, status);

CREATE TABLE referral_notes (
    id          TEXT PRIMARY KEY,
    referral_id TEXT NOT NULL REFERENCES referrals (id) ON DELETE CASCADE,
    author_id   TEXT NOT NULL REFERENCES accounts (id),
    at          INTEGER NOT NULL,
    text        TEXT NOT NULL CHECK (length(text) BETWEEN 1 AND 4000)
);
CREATE INDEX referral_notes_referral ON referral_notes (referral_id, at);
