-- The scheduler: dated availability overrides, team duty rosters, the
-- terminals a team covers, appointments and what they hold, calendar feeds.

-- Extra hours or hours off on one local date, in the account's time zone.
CREATE TABLE availability_overrides (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    date          TEXT NOT NULL CHECK (date ~ '^[0-9]{4}-[0-1][0-9]-[0-3][0-9]$'),
    start_minute  BIGINT NOT NULL CHECK (start_minute BETWEEN 0 AND 1439),
    end_minute    BIGINT NOT NULL CHECK (end_minute BETWEEN 1 AND 1440),
    kind          TEXT NOT NULL CHECK (kind IN ('extra', 'off')),
    CHECK (end_minute > start_minute)
);
CREATE INDEX availability_overrides_account ON availability_overrides (account_id, date);

-- A team's recurring duty for a region: on the weekdays in the bit mask
-- (bit 0 = Monday), from start to end minute, local to the region's time zone,
-- between two dates inclusive (a six-month posting).
CREATE TABLE duty_rosters (
    id            TEXT PRIMARY KEY,
    team_id       TEXT NOT NULL REFERENCES aid_teams (id) ON DELETE CASCADE,
    region_id     TEXT NOT NULL REFERENCES regions (id) ON DELETE CASCADE,
    weekdays      BIGINT NOT NULL CHECK (weekdays BETWEEN 1 AND 127),
    start_minute  BIGINT NOT NULL CHECK (start_minute BETWEEN 0 AND 1439),
    end_minute    BIGINT NOT NULL CHECK (end_minute BETWEEN 1 AND 1440),
    starts_on     TEXT NOT NULL,
    ends_on       TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    CHECK (end_minute > start_minute),
    CHECK (ends_on >= starts_on)
);
CREATE INDEX duty_rosters_region ON duty_rosters (region_id);

CREATE TABLE team_terminals (
    team_id      TEXT NOT NULL REFERENCES aid_teams (id) ON DELETE CASCADE,
    terminal_id  TEXT NOT NULL REFERENCES terminals (id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, terminal_id)
);

-- How many appointments a lawyer takes a day; NULL means the configured default.
ALTER TABLE accounts ADD COLUMN daily_cap BIGINT CHECK (daily_cap IS NULL OR daily_cap BETWEEN 0 AND 50);

CREATE TABLE appointments (
    id               TEXT PRIMARY KEY,
    terminal_id      TEXT NOT NULL REFERENCES terminals (id),
    region_id        TEXT NOT NULL REFERENCES regions (id),
    lawyer_id        TEXT NOT NULL REFERENCES accounts (id),
    language         TEXT NOT NULL CHECK (length(language) BETWEEN 2 AND 3),
    topic            TEXT NOT NULL CHECK (topic IN
                       ('land', 'family', 'labour', 'debt', 'administrative', 'criminal', 'other')),
    starts_at        BIGINT NOT NULL,
    ends_at          BIGINT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('booked', 'cancelled', 'completed', 'no_show')),
    booked_by        TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    reminded_at      BIGINT,
    due_notified_at  BIGINT,
    consultation_id  TEXT REFERENCES consultations (id),
    CHECK (ends_at > starts_at)
);
CREATE INDEX appointments_lawyer ON appointments (lawyer_id, starts_at);
CREATE INDEX appointments_terminal ON appointments (terminal_id, starts_at);
CREATE INDEX appointments_region ON appointments (region_id, starts_at);
CREATE INDEX appointments_pending ON appointments (status, starts_at);

-- What a booked appointment holds, in five-minute ticks (unix seconds / 300):
-- its lawyer's time (with the buffer after it) and its terminal's time. The
-- primary key is what makes a double booking impossible, whatever the code does
-- and however many bookings race.
CREATE TABLE schedule_claims (
    resource        TEXT NOT NULL,      -- 'lawyer:<id>' or 'terminal:<id>'
    tick            BIGINT NOT NULL,
    appointment_id  TEXT NOT NULL REFERENCES appointments (id) ON DELETE CASCADE,
    PRIMARY KEY (resource, tick)
);
CREATE INDEX schedule_claims_appointment ON schedule_claims (appointment_id);

-- A lawyer's private iCalendar feed; the token in its URL is stored hashed.
CREATE TABLE calendar_feeds (
    account_id  TEXT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);
