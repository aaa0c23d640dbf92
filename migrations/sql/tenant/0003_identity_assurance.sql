-- Identity assurance (the security review of 2026-12, H1): failed identity
-- confirmations count per patient and per identifier over a sliding window,
-- whatever the session. A subject is `customer:<id>` or an identifier's
-- blind index (the same HMAC as identifiers.value_bi): no PHI in the clear.
CREATE TABLE session_subjects (
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    subject     BLOB NOT NULL,
    PRIMARY KEY (session_id, subject)
) STRICT, WITHOUT ROWID;

CREATE TABLE confirm_failures (
    subject  BLOB NOT NULL,
    at       INTEGER NOT NULL
) STRICT;
CREATE INDEX confirm_failures_subject ON confirm_failures(subject, at);
CREATE INDEX confirm_failures_at ON confirm_failures(at);
