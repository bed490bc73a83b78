-- An appointment booked "by phone" (signaling::phone): the lawyer calls the
-- resident at `phone_number` instead of meeting them at a kiosk. Its terminal
-- is one of the region's phone lines; the number is what is held against a
-- double booking. The number is cleared `phone.callback_days` after the
-- appointment ends (the channel stays).
ALTER TABLE appointments ADD COLUMN channel TEXT NOT NULL DEFAULT 'kiosk' CHECK (channel IN ('kiosk', 'phone'));
ALTER TABLE appointments ADD COLUMN phone_number TEXT CHECK (length(phone_number) BETWEEN 3 AND 32);
