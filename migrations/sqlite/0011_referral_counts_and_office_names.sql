-- How many referrals a consultation led to (the resident agreed), kept on the
-- consultation itself: the retention sweep deletes closed referrals, and the
-- service records of past periods must still count them.
ALTER TABLE consultations ADD COLUMN referrals_made INTEGER NOT NULL DEFAULT 0;
UPDATE consultations SET referrals_made =
    (SELECT COUNT(*) FROM referrals r WHERE r.consultation_id = consultations.id AND r.status <> 'proposed');

-- An office's name in the languages its residents read, as a JSON object by
-- language code ({"bo": "..."}), beside its own name: a kiosk shows a resident
-- the one in their language.
ALTER TABLE referral_offices ADD COLUMN names TEXT NOT NULL DEFAULT '{}';
