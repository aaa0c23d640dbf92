-- How a tenant sends email: the From address (whose domain our Message-IDs
-- use) and, optionally, an SMTP relay. Without a relay the outbound route
-- hands the composed message back for the clinic's email gateway to send.
-- The SMTP password is sealed under the master key.
CREATE TABLE tenant_email (
    tenant_id             TEXT PRIMARY KEY REFERENCES tenants(id),
    from_address          TEXT NOT NULL,
    from_name             TEXT NOT NULL,
    smtp_host             TEXT,
    smtp_port             INTEGER CHECK (smtp_port BETWEEN 1 AND 65535),
    smtp_tls              TEXT CHECK (smtp_tls IN ('none', 'starttls', 'tls')),
    smtp_user             TEXT,
    smtp_password_sealed  BLOB,
    updated_at            INTEGER NOT NULL,
    CHECK ((smtp_host IS NULL) = (smtp_port IS NULL) AND (smtp_host IS NULL) = (smtp_tls IS NULL))
) STRICT;
