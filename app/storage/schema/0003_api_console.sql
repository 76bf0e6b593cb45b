-- The API and the owner console: platform credentials, invitations, API keys, audit log,
-- webhook notifications.
ALTER TABLE platforms ADD COLUMN auth_method {text} NOT NULL DEFAULT 'JWK_SET';
ALTER TABLE platforms ADD COLUMN auth_key {text};
ALTER TABLE platforms ADD COLUMN invitation_id {text};
ALTER TABLE registrations ADD COLUMN invitation_id {text};
ALTER TABLE registrations ADD COLUMN done_token_hash {text};
ALTER TABLE accounts ADD COLUMN is_owner INTEGER NOT NULL DEFAULT 0;

CREATE TABLE api_keys (
    id {text} PRIMARY KEY,
    name {text} NOT NULL,
    secret_hash {text} NOT NULL,
    created_at {text} NOT NULL,
    last_used_at {text},
    revoked_at {text}
);

CREATE TABLE invitations (
    id {text} PRIMARY KEY,
    code {text} NOT NULL,
    name {text} NOT NULL,
    uses_allowed INTEGER,
    uses INTEGER NOT NULL,
    expires_at {text},
    created_at {text} NOT NULL,
    revoked_at {text}
);
CREATE UNIQUE INDEX idx_invitations_code ON invitations (code);

CREATE TABLE audit_log (
    id {id},
    at {text} NOT NULL,
    actor {text} NOT NULL,
    action {text} NOT NULL,
    subject_type {text},
    subject_id {text},
    detail {text}
);
CREATE INDEX idx_audit_log_at ON audit_log (at);

CREATE TABLE notifications (
    id {id},
    event {text} NOT NULL,
    payload {text} NOT NULL,
    created_at {text} NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at {text},
    delivered_at {text},
    last_error {text}
);
CREATE INDEX idx_notifications_delivered_at_next_attempt_at
    ON notifications (delivered_at, next_attempt_at);
