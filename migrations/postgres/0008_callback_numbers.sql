-- A hotline caller's number, kept only where it is needed: for the lawyer to call them back
-- (signaling::phone, when phone.outbound_trunk is set). It goes with its consultation.
CREATE TABLE callback_numbers (
    consultation_id TEXT PRIMARY KEY REFERENCES consultations (id) ON DELETE CASCADE,
    number          TEXT NOT NULL CHECK (length(number) BETWEEN 3 AND 32),
    stored_at       BIGINT NOT NULL
);
