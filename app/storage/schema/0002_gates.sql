-- The approval gates: accounts, accepted terms and Stripe payments.
ALTER TABLE registrations ADD COLUMN pending_secret {text};
ALTER TABLE registrations ADD COLUMN account_id {text};
ALTER TABLE registrations ADD COLUMN platform_created INTEGER;
ALTER TABLE platforms ADD COLUMN registration_id {text};

CREATE TABLE accounts (
    id {text} PRIMARY KEY,
    email {text} NOT NULL,
    name {text},
    password_hash {text},
    oidc_issuer {text},
    oidc_subject {text},
    created_at {text} NOT NULL,
    last_login_at {text}
);
CREATE UNIQUE INDEX idx_accounts_email ON accounts (email);
CREATE UNIQUE INDEX idx_accounts_oidc_issuer_oidc_subject ON accounts (oidc_issuer, oidc_subject);

CREATE TABLE terms_acceptances (
    id {id},
    registration_id {text} NOT NULL,
    version {text} NOT NULL,
    accepted_at {text} NOT NULL,
    account_id {text},
    email {text},
    signer_name {text} NOT NULL,
    ip {text},
    user_agent {text}
);
CREATE INDEX idx_terms_acceptances_registration_id_version
    ON terms_acceptances (registration_id, version);

CREATE TABLE payments (
    session_id {text} PRIMARY KEY,
    registration_id {text} NOT NULL,
    account_id {text},
    mode {text},
    amount {bigint},
    currency {text},
    status {text} NOT NULL,
    created_at {text} NOT NULL,
    updated_at {text} NOT NULL
);
CREATE INDEX idx_payments_registration_id ON payments (registration_id);
