-- CA rotation (`throughline cert rotate-ca`): the CA's generation; the
-- current CA's certificate cross-signed by the CA it replaced, which the
-- server presents during the overlap so a client holding only the old CA
-- still verifies it; the retired CAs, trusted until their overlap ends;
-- and which CA generation issued each certificate.
ALTER TABLE ca ADD COLUMN generation INTEGER NOT NULL DEFAULT 1;
ALTER TABLE ca ADD COLUMN cross_pem TEXT;

CREATE TABLE retired_cas (
    generation     INTEGER PRIMARY KEY,
    cert_pem       TEXT NOT NULL,
    retired_at     INTEGER NOT NULL,
    trusted_until  INTEGER NOT NULL
) STRICT;

ALTER TABLE certificates ADD COLUMN ca_generation INTEGER NOT NULL DEFAULT 1;
