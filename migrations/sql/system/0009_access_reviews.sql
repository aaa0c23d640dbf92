-- The periodic access review (HIPAA 164.308(a)(1)(ii)(D), (a)(4)(ii)(B)(C)):
-- a compliance officer looks at every account of the clinic, their roles
-- and what they accessed in the period, and records that they did.
CREATE TABLE access_reviews (
    id           INTEGER PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    period       TEXT NOT NULL,
    reviewer     TEXT NOT NULL REFERENCES staff(id),
    accounts     INTEGER NOT NULL,
    note         TEXT NOT NULL,
    at           INTEGER NOT NULL
) STRICT;
