-- Patients' requests under GDPR Art. 15/17/20 (access, erasure): from the
-- API (answered at once, recorded here as done) or entered by staff for a
-- request made by phone or letter, with its Art. 12(3) deadline (one month
-- from receipt). An erasure entered by staff runs only when a second
-- person approves it. The verification note may say how identity was
-- checked (it can name documents), so it is sealed like held messages.
CREATE TABLE rights_requests (
    id               TEXT PRIMARY KEY,
    customer_id      TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('access', 'erasure')),
    source           TEXT NOT NULL CHECK (source IN ('api', 'staff')),
    received_at      INTEGER NOT NULL,
    due_at           INTEGER NOT NULL,
    note_sealed      BLOB,
    requested_by     TEXT NOT NULL,
    approved_by      TEXT,
    status           TEXT NOT NULL CHECK (status IN ('open', 'done')),
    done_at          INTEGER,
    receipt          TEXT
) STRICT;
CREATE INDEX rights_requests_open ON rights_requests(status, due_at);
