-- Whether the clinic's identity provider vouched for a console session
-- rather than a password and TOTP here: a provider session starts no
-- emergency access unless the clinic allows it for its provider (N5 of the
-- second review), whatever the account's own break-glass flag.
ALTER TABLE staff_sessions ADD COLUMN via_provider INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenant_idp ADD COLUMN break_glass INTEGER NOT NULL DEFAULT 0;

-- When an account was last disabled or enabled: in cluster mode the newest
-- change, made on any node, is the one every node keeps (L8).
ALTER TABLE staff ADD COLUMN status_changed_at INTEGER;
