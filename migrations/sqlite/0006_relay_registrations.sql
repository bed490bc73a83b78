-- Relay nodes that registered themselves (media-relay --register-at): every
-- signaling node reads this and connects to the ones heard from lately.
CREATE TABLE relay_registrations (
    name TEXT PRIMARY KEY,
    -- The region it serves first (checked against regions when it registers).
    region_id TEXT,
    control_url TEXT NOT NULL,
    first_seen_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
);
