-- Channels: email threading, appointments and callbacks.
--
-- An appointment keeps the UTC offset it was booked in, so a confirmation
-- says "2:00 PM" as the clinic meant it. A Message-ID is recorded once per
-- direction (a re-delivered message finds its first record). A callback's
-- claimed_by is the voice session that claimed it.
ALTER TABLE appointments ADD COLUMN utc_offset_min INTEGER NOT NULL DEFAULT 0
    CHECK (utc_offset_min BETWEEN -1080 AND 1080);
CREATE INDEX appointments_conversation ON appointments(conversation_id, starts_at);

DROP INDEX email_threads_message;
CREATE UNIQUE INDEX email_threads_message ON email_threads(message_id_bi, direction);

CREATE INDEX callback_claimed ON callback_requests(claimed_by) WHERE claimed_by IS NOT NULL;
