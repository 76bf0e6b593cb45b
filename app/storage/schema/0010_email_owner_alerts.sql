-- Notifications go to the owner's webhook or by e-mail: each queued row names its channel.
ALTER TABLE notifications ADD COLUMN channel {text} NOT NULL DEFAULT 'webhook';

-- When the owner was last told that someone launched a platform or deployment still waiting
-- for activation: one row per platform, claimed with a guarded upsert so that however many
-- workers refuse launches at once, the owner hears of it once an hour.
CREATE TABLE owner_alerts (
    platform_id {text} PRIMARY KEY,
    alerted_at {text} NOT NULL
);
