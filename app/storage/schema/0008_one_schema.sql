-- Until 0008 each database named five indexes its own way (SQLite by sqlite-utils' rule,
-- PostgreSQL by hand). One name each from now on, the rule idx_<table>_<columns>: a database
-- that has the other name gets the index rebuilt under this one; a new database has it already.
DROP INDEX IF EXISTS idx_accounts_oidc;
CREATE UNIQUE INDEX IF NOT EXISTS idx_accounts_oidc_issuer_oidc_subject
    ON accounts (oidc_issuer, oidc_subject);
DROP INDEX IF EXISTS idx_terms_acceptances_registration_version;
CREATE INDEX IF NOT EXISTS idx_terms_acceptances_registration_id_version
    ON terms_acceptances (registration_id, version);
DROP INDEX IF EXISTS idx_notifications_due;
CREATE INDEX IF NOT EXISTS idx_notifications_delivered_at_next_attempt_at
    ON notifications (delivered_at, next_attempt_at);
DROP INDEX IF EXISTS idx_launch_states_expires;
CREATE INDEX IF NOT EXISTS idx_launch_states_expires_at ON launch_states (expires_at);
DROP INDEX IF EXISTS idx_audit_log_subject;
CREATE INDEX IF NOT EXISTS idx_audit_log_subject_id ON audit_log (subject_id);
