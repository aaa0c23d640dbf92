-- A clinic's IANA time zone (America/Los_Angeles): appointment times are
-- checked against it and written for people in it. Tenants created before
-- this migration are in UTC until an operator runs `tenant set-time-zone`.
ALTER TABLE tenants ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
