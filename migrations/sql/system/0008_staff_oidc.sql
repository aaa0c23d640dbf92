-- Sign-in through the clinic's identity provider (OpenID Connect). One
-- provider per clinic; roles come from a claim mapped here (never admin,
-- never break-glass). The client secret sits in this encrypted store.
CREATE TABLE tenant_idp (
    tenant_id      TEXT PRIMARY KEY REFERENCES tenants(id),
    label          TEXT NOT NULL,
    issuer         TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    client_secret  TEXT NOT NULL,
    redirect_url   TEXT NOT NULL,
    role_claim     TEXT NOT NULL,
    -- Space-separated scopes asked for besides openid (e.g. `email groups`).
    scopes         TEXT NOT NULL,
    -- One `value=role` per line, in the order they are tried.
    role_map       TEXT NOT NULL,
    updated_at     INTEGER NOT NULL
) STRICT;

-- A person signed in through the provider is bound by (issuer, subject),
-- never by email. Such accounts have no password and no TOTP secret (both
-- empty: a local sign-in can never succeed).
ALTER TABLE staff ADD COLUMN oidc_issuer TEXT;
ALTER TABLE staff ADD COLUMN oidc_subject TEXT;
CREATE UNIQUE INDEX staff_oidc ON staff(oidc_issuer, oidc_subject) WHERE oidc_subject IS NOT NULL;

-- Where signing out sends the browser for the provider's own logout
-- (RP-initiated logout), when the session came from the provider.
ALTER TABLE staff_sessions ADD COLUMN logout_url TEXT;
