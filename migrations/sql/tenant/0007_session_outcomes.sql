-- What a session's end left behind, recorded when it happens (docs/OUTCOMES.md):
-- session state expires and is purged, and the outcomes report must not
-- depend on what is still there.
--   ended_pending   a `pending_*` state key was still set when it ended (a task left half-done)
--   booking_intent  a `pending_booking*` key was set in it, or it booked an appointment
--   recovery_arm    the resume-link holdout: 'sent' or 'holdout', for interrupted calls in one
ALTER TABLE sessions ADD COLUMN ended_pending INTEGER NOT NULL DEFAULT 0 CHECK (ended_pending IN (0, 1));
ALTER TABLE sessions ADD COLUMN booking_intent INTEGER NOT NULL DEFAULT 0 CHECK (booking_intent IN (0, 1));
ALTER TABLE sessions ADD COLUMN recovery_arm TEXT CHECK (recovery_arm IN ('sent', 'holdout'));
CREATE INDEX sessions_started ON sessions(started_at);
