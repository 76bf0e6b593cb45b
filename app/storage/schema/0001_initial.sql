-- Platforms (LMS registrations), their deployments, registration attempts, the tool's keys.
-- {text}, {id} and {bigint} are the column types the dialect fills in (app/storage/dialect.py).
CREATE TABLE platforms (
    id {text} PRIMARY KEY,
    issuer {text} NOT NULL,
    client_id {text} NOT NULL,
    name {text} NOT NULL,
    authorization_endpoint {text},
    token_endpoint {text},
    jwks_uri {text},
    authorization_server {text},
    registration_client_uri {text},
    product_family_code {text},
    version {text},
    scopes {text},
    active INTEGER NOT NULL,
    created_at {text} NOT NULL,
    updated_at {text} NOT NULL
);
CREATE UNIQUE INDEX idx_platforms_issuer_client_id ON platforms (issuer, client_id);

CREATE TABLE deployments (
    platform_id {text} REFERENCES platforms (id),
    deployment_id {text},
    active INTEGER,
    source {text},
    created_at {text},
    PRIMARY KEY (platform_id, deployment_id)
);

CREATE TABLE registrations (
    id {text} PRIMARY KEY,
    state {text} NOT NULL,
    openid_configuration_url {text},
    issuer {text},
    product_family_code {text},
    platform_version {text},
    platform_config {text},
    request {text},
    adjustments {text},
    response_status INTEGER,
    response_body {text},
    client_id {text},
    deployment_id {text},
    platform_id {text},
    error {text},
    created_at {text} NOT NULL,
    updated_at {text} NOT NULL,
    expires_at {text} NOT NULL
);
CREATE INDEX idx_registrations_state_expires_at ON registrations (state, expires_at);
CREATE INDEX idx_registrations_created_at ON registrations (created_at);

CREATE TABLE tool_keys (
    kid {text} PRIMARY KEY,
    private_pem {text} NOT NULL,
    created_at {text} NOT NULL,
    retire_at {text}
);

-- Settings kept in the database because the disk of a Heroku dyno is not.
CREATE TABLE app_settings (
    name {text} PRIMARY KEY,
    value {text}
);
