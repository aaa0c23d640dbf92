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

-- Inbound email that may not be written into a conversation (H4): its
-- sender has no evidence the tenant trusts, the address is a family's, or
-- the patient must confirm first. Kept whole for staff review, sealed under
-- the tenant's pending key, never in any context; it goes with its session.
CREATE TABLE held_messages (
    id           INTEGER PRIMARY KEY,
    session_id   TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    reason       TEXT NOT NULL CHECK (reason IN ('sender_not_authenticated', 'identifier_shared', 'confirmation_required')),
    raw_sealed   BLOB NOT NULL,
    received_at  INTEGER NOT NULL,
    reviewed_at  INTEGER
) STRICT;
CREATE INDEX held_messages_session ON held_messages(session_id);

-- A one-time code sent to an identifier on file for the session's
-- candidate patient (never one offered in the session): confirming with it
-- is proof of possession. Only its HMAC is kept; one per session, short
-- lived, single use, attempts limited. customer_id NULL: nobody to send to,
-- and the answer looked the same.
CREATE TABLE identity_challenges (
    session_id   TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
    customer_id  TEXT REFERENCES customers(id),
    code_tag     BLOB NOT NULL,
    via          TEXT NOT NULL CHECK (via IN ('email', 'sms')),
    sent         INTEGER NOT NULL DEFAULT 1,
    expires_at   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0
) STRICT;

-- A session's last request, to the minute: confirmation has an idle limit
-- as well as an absolute one (M3).
ALTER TABLE sessions ADD COLUMN last_seen_at INTEGER;
