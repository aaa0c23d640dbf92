-- A deleted tenant is crypto-shredded after a grace period (the security
-- review's M7): its root key leaves the keyring and its files are removed;
-- the row stays (its name is never reused, old audit records still name it).
ALTER TABLE tenants ADD COLUMN shredded_at INTEGER;
