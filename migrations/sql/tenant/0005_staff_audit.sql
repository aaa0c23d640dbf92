-- Audit records made by staff in the console carry what a channel's do not:
-- the role they acted in, the purpose of use, the break-glass grant, the
-- patients a list page showed and the HMAC of a search. Records without
-- them hash exactly as before (audit::Record::hash), so old chains verify.
ALTER TABLE audit ADD COLUMN role TEXT;
ALTER TABLE audit ADD COLUMN purpose TEXT;
ALTER TABLE audit ADD COLUMN break_glass TEXT;
-- Space-separated pseudonyms (cus_…), in page order; NULL when none.
ALTER TABLE audit ADD COLUMN subjects TEXT;
ALTER TABLE audit ADD COLUMN query_hmac TEXT;

-- Which records name a patient as one of a page's subjects, so "who saw
-- this patient" finds list and search appearances too.
CREATE TABLE audit_subjects (
    seq         INTEGER NOT NULL REFERENCES audit(seq),
    customer_id TEXT NOT NULL,
    PRIMARY KEY (customer_id, seq)
) STRICT, WITHOUT ROWID;

-- A turn written by a person at the clinic names them (`stf_…`).
ALTER TABLE turns ADD COLUMN author TEXT;

-- Blind index of the patient's normalised full name (HMAC under the
-- tenant's index key), so staff find a patient by name without the name in
-- any index; cleared with the rest on erasure.
ALTER TABLE customers ADD COLUMN name_bi BLOB;
CREATE INDEX customers_name_bi ON customers(name_bi) WHERE name_bi IS NOT NULL;
