-- Tenant store: one clinic's patients, in its own SQLCipher file opened with
-- the tenant's raw key. Columns ending in _ct are AES-256-GCM ciphertext under
-- the patient's own data key; columns ending in _bi are HMAC-SHA256 blind
-- indexes under the tenant's blind-index key. No identifier (phone, email,
-- login subject, cookie, Message-ID) is stored or indexed in the clear.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- One row per real person. wrapped_key is the patient's data key wrapped by
-- the tenant key; erasure sets it to NULL (crypto-shredding).
CREATE TABLE customers (
    id           TEXT PRIMARY KEY,
    wrapped_key  BLOB,
    name_ct      BLOB,
    dob_ct       BLOB,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    erased_at    INTEGER,
    CHECK ((erased_at IS NULL) = (wrapped_key IS NOT NULL))
) STRICT;

-- One customer has many identifiers; one identifier (a family phone) may
-- point at several customers. Unlinking keeps the row for provenance.
-- value_bi answers look-ups; value_ct (sealed under the patient's key, never
-- indexed) lets a right-of-access export show the identifier, and is
-- shredded with the patient's key.
CREATE TABLE identifiers (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('phone', 'email', 'auth', 'cookie')),
    value_bi     BLOB NOT NULL,
    value_ct     BLOB NOT NULL,
    customer_id  TEXT NOT NULL REFERENCES customers(id),
    verified     INTEGER NOT NULL DEFAULT 0 CHECK (verified IN (0, 1)),
    provenance   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    unlinked_at  INTEGER,
    unlinked_by  TEXT
) STRICT;
CREATE UNIQUE INDEX identifiers_link ON identifiers(kind, value_bi, customer_id) WHERE unlinked_at IS NULL;
CREATE INDEX identifiers_customer ON identifiers(customer_id);

-- Phone says A, email says B: resolved by priority and recorded, never merged.
CREATE TABLE identifier_conflicts (
    id                 INTEGER PRIMARY KEY,
    session_id         TEXT NOT NULL,
    winning_kind       TEXT NOT NULL,
    winning_customer   TEXT NOT NULL,
    losing_kind        TEXT NOT NULL,
    losing_customer    TEXT NOT NULL,
    created_at         INTEGER NOT NULL
) STRICT;

CREATE TABLE conversations (
    id                TEXT PRIMARY KEY,
    customer_id       TEXT NOT NULL REFERENCES customers(id),
    status            TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    opened_at         INTEGER NOT NULL,
    last_activity_at  INTEGER NOT NULL,
    closed_at         INTEGER,
    close_reason      TEXT
) STRICT;
CREATE INDEX conversations_open ON conversations(customer_id, last_activity_at) WHERE status = 'open';
CREATE INDEX conversations_activity ON conversations(last_activity_at);

-- One call, chat session, email thread or SMS exchange (the seed's call_logs).
-- customer_id and conversation_id stay NULL while the identity is ambiguous
-- (a family phone) until confirmation picks the patient.
CREATE TABLE sessions (
    id                 TEXT PRIMARY KEY,
    conversation_id    TEXT REFERENCES conversations(id),
    customer_id        TEXT REFERENCES customers(id),
    channel            TEXT NOT NULL CHECK (channel IN ('voice', 'chat', 'email', 'sms')),
    external_ref_bi    BLOB,
    cert_serial        TEXT NOT NULL,
    identity_status    TEXT NOT NULL CHECK (identity_status IN ('resolved', 'ambiguous', 'new')),
    identity_strength  TEXT NOT NULL CHECK (identity_strength IN ('claim', 'asserted', 'possession')),
    shared_identifier  INTEGER NOT NULL DEFAULT 0 CHECK (shared_identifier IN (0, 1)),
    created_customer   INTEGER NOT NULL DEFAULT 0 CHECK (created_customer IN (0, 1)),
    confirmed_at       INTEGER,
    confirm_failures   INTEGER NOT NULL DEFAULT 0,
    locked_until       INTEGER,
    started_at         INTEGER NOT NULL,
    ended_at           INTEGER,
    end_reason         TEXT CHECK (end_reason IN ('completed', 'dropped', 'transferred'))
) STRICT;
CREATE UNIQUE INDEX sessions_external_ref ON sessions(channel, external_ref_bi) WHERE external_ref_bi IS NOT NULL;
CREATE INDEX sessions_conversation ON sessions(conversation_id, started_at);

-- Identifiers offered with a claim or an ambiguous one: linked to the patient
-- only once identity is confirmed (so a stranger typing a patient's phone
-- number cannot bind their own cookie to that patient). value_sealed is
-- under the tenant's pending-identifier key; rows go when the session ends.
CREATE TABLE session_pending_identifiers (
    session_id    TEXT NOT NULL REFERENCES sessions(id),
    kind          TEXT NOT NULL CHECK (kind IN ('phone', 'email', 'auth', 'cookie')),
    value_bi      BLOB NOT NULL,
    value_sealed  BLOB NOT NULL,
    PRIMARY KEY (session_id, kind, value_bi)
) STRICT, WITHOUT ROWID;

-- Candidates of an ambiguous session (a family phone), until confirmation picks one.
CREATE TABLE session_candidates (
    session_id   TEXT NOT NULL REFERENCES sessions(id),
    customer_id  TEXT NOT NULL REFERENCES customers(id),
    PRIMARY KEY (session_id, customer_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE turns (
    id               INTEGER PRIMARY KEY,
    conversation_id  TEXT NOT NULL REFERENCES conversations(id),
    session_id       TEXT NOT NULL REFERENCES sessions(id),
    channel          TEXT NOT NULL,
    speaker          TEXT NOT NULL CHECK (speaker IN ('patient', 'agent', 'staff')),
    text_ct          BLOB NOT NULL,
    at               INTEGER NOT NULL
) STRICT;
CREATE INDEX turns_conversation ON turns(conversation_id, id);

CREATE TABLE session_state (
    conversation_id  TEXT NOT NULL REFERENCES conversations(id),
    key              TEXT NOT NULL,
    value_ct         BLOB NOT NULL,
    updated_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX session_state_expiry ON session_state(expires_at);

-- Resume tokens are signed and self-contained; this table lets one be revoked
-- and tells which identifier it stands for.
CREATE TABLE resume_tokens (
    id               TEXT PRIMARY KEY,
    customer_id      TEXT NOT NULL REFERENCES customers(id),
    conversation_id  TEXT NOT NULL REFERENCES conversations(id),
    issued_at        INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    revoked_at       INTEGER
) STRICT;

CREATE TABLE appointments (
    id               TEXT PRIMARY KEY,
    conversation_id  TEXT NOT NULL REFERENCES conversations(id),
    customer_id      TEXT NOT NULL REFERENCES customers(id),
    session_id       TEXT NOT NULL REFERENCES sessions(id),
    starts_at        INTEGER NOT NULL,
    duration_min     INTEGER NOT NULL,
    reason_ct        BLOB,
    status           TEXT NOT NULL CHECK (status IN ('booked', 'cancelled')),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX appointments_customer ON appointments(customer_id);

CREATE TABLE callback_requests (
    id                TEXT PRIMARY KEY,
    conversation_id   TEXT NOT NULL REFERENCES conversations(id),
    customer_id       TEXT NOT NULL REFERENCES customers(id),
    session_id        TEXT NOT NULL REFERENCES sessions(id),
    phone_ct          BLOB NOT NULL,
    window_start      INTEGER NOT NULL,
    window_end        INTEGER NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('pending', 'claimed', 'done', 'expired', 'cancelled')),
    claimed_by        TEXT,
    claim_expires_at  INTEGER,
    created_at        INTEGER NOT NULL
) STRICT;
CREATE INDEX callback_due ON callback_requests(status, window_start);

-- Message-IDs we sent and received, so a reply finds its conversation.
CREATE TABLE email_threads (
    id               INTEGER PRIMARY KEY,
    conversation_id  TEXT NOT NULL REFERENCES conversations(id),
    session_id       TEXT NOT NULL REFERENCES sessions(id),
    message_id_bi    BLOB NOT NULL,
    direction        TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    created_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX email_threads_message ON email_threads(message_id_bi);

CREATE TABLE attachments (
    id               TEXT PRIMARY KEY,
    conversation_id  TEXT NOT NULL REFERENCES conversations(id),
    session_id       TEXT NOT NULL REFERENCES sessions(id),
    customer_id      TEXT NOT NULL REFERENCES customers(id),
    content_type     TEXT NOT NULL,
    size             INTEGER NOT NULL,
    filename_ct      BLOB,
    content_ct       BLOB NOT NULL,
    created_at       INTEGER NOT NULL
) STRICT;

CREATE TABLE erasure_requests (
    id            TEXT PRIMARY KEY,
    customer_id   TEXT NOT NULL,
    requested_by  TEXT NOT NULL,
    requested_at  INTEGER NOT NULL,
    completed_at  INTEGER,
    receipt       TEXT
) STRICT;

-- The tenant's audit chain: written in the same transaction as the read or
-- write it records. Holds pseudonymous ids only, never PHI.
CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor_kind  TEXT NOT NULL,
    actor       TEXT NOT NULL,
    channel     TEXT,
    action      TEXT NOT NULL,
    tenant_id   TEXT,
    customer_id TEXT,
    session_id  TEXT,
    peer        TEXT,
    outcome     TEXT NOT NULL,
    reason      TEXT,
    prev_hash   BLOB NOT NULL,
    hash        BLOB NOT NULL
) STRICT;

CREATE TABLE audit_checkpoints (
    size        INTEGER PRIMARY KEY,
    root_hash   BLOB NOT NULL,
    note        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
