-- The hotline (signaling::phone): a phone call waits and talks as a terminal
-- of channel 'phone', one of its region's phone lines, created by the
-- gateway as calls need them. Kiosks are channel 'kiosk'.
ALTER TABLE terminals ADD COLUMN channel TEXT NOT NULL DEFAULT 'kiosk' CHECK (channel IN ('kiosk', 'phone'));
