-- What the token endpoint really granted and refused of the answer's claimed scopes.
ALTER TABLE platforms ADD COLUMN usable_scopes {text};
ALTER TABLE platforms ADD COLUMN refused_scopes {text};
-- Then the runner drops `openid` and every other non-service scope from the stored claims
-- (Canvas's answer claims `openid`, which its token endpoint refuses): see DATA_STEPS.
