-- Failed sign-ins per account and per address, shared by every worker.
CREATE TABLE signin_throttle (
    key {text} PRIMARY KEY,
    failures INTEGER NOT NULL,
    locked_until {text},
    updated_at {text} NOT NULL
);
