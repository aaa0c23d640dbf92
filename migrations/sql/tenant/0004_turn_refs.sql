-- An integration's own id for a turn (a voice bridge's call id, role and
-- time): posting the same one again in the same session is the same turn,
-- so a re-sent end-of-call report records each turn once. Opaque and never
-- PHI (docs/API.md says so to integrators).
ALTER TABLE turns ADD COLUMN external_ref TEXT;
CREATE UNIQUE INDEX turns_external_ref ON turns(session_id, external_ref) WHERE external_ref IS NOT NULL;

-- A held inbound text (an SMS from a patient who has not confirmed) keeps
-- the integration's id too, so a re-delivery is held once.
ALTER TABLE held_messages ADD COLUMN external_ref TEXT;
CREATE UNIQUE INDEX held_messages_external_ref ON held_messages(session_id, external_ref) WHERE external_ref IS NOT NULL;
