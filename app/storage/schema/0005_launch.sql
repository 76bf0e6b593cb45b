-- LTI launches: the state and nonce of each OIDC login, kept until its launch comes back.
CREATE TABLE launch_states (
    state_hash {text} PRIMARY KEY,
    nonce {text} NOT NULL,
    platform_id {text} NOT NULL,
    target_link_uri {text},
    created_at {text} NOT NULL,
    expires_at {text} NOT NULL,
    used_at {text}
);
CREATE INDEX idx_launch_states_expires_at ON launch_states (expires_at);
ALTER TABLE platforms ADD COLUMN last_launch_at {text};
