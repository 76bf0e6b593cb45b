-- Console and gate sessions end on sign-out and on a password change: each session carries its
-- account's session version, both bump it, and a session holding an older one is refused.
ALTER TABLE accounts ADD COLUMN session_version INTEGER NOT NULL DEFAULT 0;

-- What Gatehouse asked Stripe for (the amount and currency are already kept): a payment settles
-- only when Stripe's session matches all three; else it is recorded as a mismatch, with why.
ALTER TABLE payments ADD COLUMN price_id {text};
ALTER TABLE payments ADD COLUMN mismatch {text};
