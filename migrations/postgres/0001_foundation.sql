-- The people, places and devices everything else refers to.
-- PostgreSQL's copy of migrations/sqlite/0001: the same tables, columns and
-- constraints. Times are BIGINT seconds since the Unix epoch (UTC); ids are TEXT
-- (UUIDs); flags are BOOLEAN.

-- People who sign in: lawyers, interpreters, coordinators, admins.
CREATE TABLE accounts (
    id              TEXT PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE CHECK (length(username) BETWEEN 1 AND 64),
    display_name    TEXT NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    password_hash   TEXT NOT NULL,
    -- IANA time zone the person keeps their availability in.
    time_zone       TEXT NOT NULL DEFAULT 'Asia/Shanghai',
    active          BOOLEAN NOT NULL DEFAULT TRUE,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE TABLE account_roles (
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('lawyer', 'interpreter', 'coordinator', 'admin')),
    PRIMARY KEY (account_id, role)
);

-- Languages a lawyer can advise in or an interpreter can interpret (ISO 639-1).
CREATE TABLE account_languages (
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    language    TEXT NOT NULL CHECK (length(language) BETWEEN 2 AND 3),
    PRIMARY KEY (account_id, language)
);

CREATE TABLE account_topics (
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    topic       TEXT NOT NULL CHECK (topic IN
                  ('land', 'family', 'labour', 'debt', 'administrative', 'criminal', 'other')),
    PRIMARY KEY (account_id, topic)
);

-- Areas served: a prefecture, county or township. parent_id nests them.
CREATE TABLE regions (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    parent_id   TEXT REFERENCES regions (id),
    time_zone   TEXT NOT NULL DEFAULT 'Asia/Shanghai',
    created_at  BIGINT NOT NULL
);

-- Coordinators answer for some regions (and the teams posted there).
CREATE TABLE coordinator_regions (
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    region_id   TEXT NOT NULL REFERENCES regions (id) ON DELETE CASCADE,
    PRIMARY KEY (account_id, region_id)
);

-- Kiosks in township service stations. A terminal is a device, not a person.
-- It enrolls once with a one-time code (stored as its SHA-256) and then holds a
-- signed device credential whose id is credential_id, until a coordinator
-- revokes it (revoked_at) or issues a new code.
CREATE TABLE terminals (
    id                      TEXT PRIMARY KEY,
    name                    TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    township                TEXT NOT NULL CHECK (length(township) BETWEEN 1 AND 200),
    region_id               TEXT NOT NULL REFERENCES regions (id),
    enrollment_code_hash    TEXT,
    enrollment_expires_at   BIGINT,
    enrolled_at             BIGINT,
    credential_id           TEXT UNIQUE,
    revoked_at              BIGINT,
    created_at              BIGINT NOT NULL
);
CREATE INDEX terminals_region ON terminals (region_id);
CREATE UNIQUE INDEX terminals_enrollment_code ON terminals (enrollment_code_hash);

CREATE TABLE terminal_languages (
    terminal_id TEXT NOT NULL REFERENCES terminals (id) ON DELETE CASCADE,
    language    TEXT NOT NULL CHECK (length(language) BETWEEN 2 AND 3),
    PRIMARY KEY (terminal_id, language)
);

-- Volunteer aid teams ("1+1" volunteers, aid-Tibet lawyer service teams).
CREATE TABLE aid_teams (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    created_at  BIGINT NOT NULL
);

CREATE TABLE team_members (
    team_id     TEXT NOT NULL REFERENCES aid_teams (id) ON DELETE CASCADE,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, account_id)
);

-- Which team is posted to which region.
CREATE TABLE team_regions (
    team_id     TEXT NOT NULL REFERENCES aid_teams (id) ON DELETE CASCADE,
    region_id   TEXT NOT NULL REFERENCES regions (id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, region_id)
);

-- Weekly recurring availability, in the account's own time zone.
-- weekday: 0 = Monday ... 6 = Sunday; minutes since local midnight, end exclusive.
CREATE TABLE availability_rules (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    weekday       BIGINT NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    start_minute  BIGINT NOT NULL CHECK (start_minute BETWEEN 0 AND 1439),
    end_minute    BIGINT NOT NULL CHECK (end_minute BETWEEN 1 AND 1440),
    CHECK (end_minute > start_minute)
);
CREATE INDEX availability_rules_account ON availability_rules (account_id);
