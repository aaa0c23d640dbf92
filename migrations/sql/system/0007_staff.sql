-- People at the clinic (DESIGN.md, "Staff and the console"). A staff row is
-- never deleted: old audit records name `stf_…` ids and must still resolve
-- to a person. One row per person per clinic; the email signs in.
CREATE TABLE staff (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    email            TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role             TEXT NOT NULL CHECK (role IN ('front_desk', 'clinician', 'email_reviewer', 'compliance', 'admin')),
    -- Pre-authorised for emergency access (break-glass).
    break_glass      INTEGER NOT NULL DEFAULT 0 CHECK (break_glass IN (0, 1)),
    password_hash    TEXT NOT NULL,
    totp_secret      BLOB NOT NULL,
    -- The last TOTP step accepted: a code is never taken twice.
    totp_last_step   INTEGER NOT NULL DEFAULT 0,
    failed_logins    INTEGER NOT NULL DEFAULT 0,
    locked_until     INTEGER,
    disabled_at      INTEGER,
    created_at       INTEGER NOT NULL,
    last_login_at    INTEGER
) STRICT;

-- Patients assigned to a clinician: their scope.
CREATE TABLE staff_assignments (
    staff_id     TEXT NOT NULL REFERENCES staff(id),
    customer_id  TEXT NOT NULL,
    assigned_at  INTEGER NOT NULL,
    PRIMARY KEY (staff_id, customer_id)
) STRICT, WITHOUT ROWID;

-- Server-side console sessions, keyed by the SHA-256 of the cookie's id.
CREATE TABLE staff_sessions (
    id_hash      BLOB PRIMARY KEY,
    staff_id     TEXT NOT NULL REFERENCES staff(id),
    csrf         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    peer         TEXT
) STRICT;
CREATE INDEX staff_sessions_staff ON staff_sessions(staff_id);

-- Emergency access: one patient, a typed reason, 60 minutes, a review.
-- The reason may name the patient's condition, so it lives here in the
-- encrypted store and never in an audit record (which carries the id).
CREATE TABLE break_glass (
    id              TEXT PRIMARY KEY,
    staff_id        TEXT NOT NULL REFERENCES staff(id),
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    customer_id     TEXT NOT NULL,
    reason          TEXT NOT NULL,
    started_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    reviewed_by     TEXT REFERENCES staff(id),
    reviewed_at     INTEGER,
    review_outcome  TEXT CHECK (review_outcome IN ('justified', 'not_justified', 'escalated'))
) STRICT;
CREATE INDEX break_glass_open ON break_glass(tenant_id, started_at) WHERE reviewed_at IS NULL;

-- What the clinic's compliance staff are told of (break-glass, lockouts).
CREATE TABLE staff_alerts (
    id           INTEGER PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    kind         TEXT NOT NULL,
    staff_id     TEXT,
    reference    TEXT,
    at           INTEGER NOT NULL
) STRICT;

-- The system chain takes the staff fields too (see tenant 0005).
ALTER TABLE system_audit ADD COLUMN role TEXT;
ALTER TABLE system_audit ADD COLUMN purpose TEXT;
ALTER TABLE system_audit ADD COLUMN break_glass TEXT;
ALTER TABLE system_audit ADD COLUMN subjects TEXT;
ALTER TABLE system_audit ADD COLUMN query_hmac TEXT;
