ALTER TABLE registrations ADD COLUMN token_digest {text};
CREATE INDEX idx_registrations_token_digest ON registrations (token_digest);
-- One POST per registration token: a claimed attempt (request set) spends its token.
CREATE UNIQUE INDEX idx_registrations_token_spent ON registrations (token_digest) WHERE token_digest IS NOT NULL AND request IS NOT NULL;
-- The console filters the audit log by each of these.
CREATE INDEX idx_audit_log_action ON audit_log (action);
CREATE INDEX idx_audit_log_actor ON audit_log (actor);
CREATE INDEX idx_audit_log_subject_id ON audit_log (subject_id);
