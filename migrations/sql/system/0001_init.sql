-- System store: everything about the installation that is not one tenant's
-- patient data. Encrypted with the system key (SQLCipher, raw key).

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- One row per clinic. The tenant's keys live in the keyring, wrapped under
-- the master key; its patient data lives in tenants/<id>.db.
CREATE TABLE tenants (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    state_ttl_days  INTEGER NOT NULL CHECK (state_ttl_days BETWEEN 1 AND 3650),
    default_region  TEXT NOT NULL DEFAULT 'US',
    policy_toml     TEXT,
    created_at      INTEGER NOT NULL,
    deleted_at      INTEGER
) STRICT;

-- The clinic's own CA. Its private key is sealed under the master key as
-- well as sitting inside this encrypted file.
CREATE TABLE ca (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    cert_pem    TEXT NOT NULL,
    key_sealed  BLOB NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

-- Every certificate the CA issued: channel certificates bind to exactly one
-- tenant and one channel; the server's own certificate has no tenant.
CREATE TABLE certificates (
    serial             TEXT PRIMARY KEY,
    tenant_id          TEXT REFERENCES tenants(id),
    channel            TEXT NOT NULL CHECK (channel IN ('voice', 'chat', 'email', 'server')),
    fingerprint        BLOB NOT NULL,
    not_before         INTEGER NOT NULL,
    not_after          INTEGER NOT NULL,
    issued_at          INTEGER NOT NULL,
    revoked_at         INTEGER,
    revocation_reason  TEXT,
    CHECK ((channel = 'server') = (tenant_id IS NULL))
) STRICT;
CREATE INDEX certificates_tenant ON certificates(tenant_id);

CREATE TABLE operators (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
) STRICT;

-- Erasures, kept outside the tenant stores (and so outside a tenant backup)
-- so that a restore re-applies every erasure made after the backup.
CREATE TABLE erasure_ledger (
    id           INTEGER PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    customer_id  TEXT NOT NULL,
    erased_at    INTEGER NOT NULL,
    receipt      TEXT NOT NULL,
    UNIQUE (tenant_id, customer_id)
) STRICT;

-- Operator actions that concern no single tenant (init, certificates),
-- hash-chained like a tenant's audit table.
CREATE TABLE system_audit (
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
