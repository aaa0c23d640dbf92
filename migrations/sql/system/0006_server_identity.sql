-- The server's own certificate and key (sealed under the master key), kept
-- so that `serve` needs the CA key only when it must issue a new one (the
-- security review's M1): not at every start.
CREATE TABLE server_identity (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    cert_pem    TEXT NOT NULL,
    key_sealed  BLOB NOT NULL,
    names       TEXT NOT NULL,
    not_after   INTEGER NOT NULL,
    issued_at   INTEGER NOT NULL
) STRICT;
