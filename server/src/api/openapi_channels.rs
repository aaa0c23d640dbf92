//! The channel routes' part of the OpenAPI document: appointments,
//! callbacks and email. Merged into [`super::openapi::document`].

use serde_json::{Value, json};

use super::openapi::{responses, session_param};

pub fn paths() -> Value {
    json!({
        "/v1/sessions/{id}/appointments": {
            "post": {
                "operationId": "bookAppointment",
                "summary": "Book an appointment for the session's patient (scheduling data; a reason needs clinical clearance on this channel)",
                "parameters": [session_param()],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BookAppointment"}}}},
                "responses": responses("201", "Appointment")
            }
        },
        "/v1/appointments/{id}": {
            "patch": {
                "operationId": "changeAppointment",
                "summary": "Reschedule, change the length of, cancel or restore an appointment, from a session with the same patient",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^apt_[0-9a-f]{32}$"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChangeAppointment"}}}},
                "responses": responses("200", "Appointment")
            }
        },
        "/v1/sessions/{id}/callbacks": {
            "post": {
                "operationId": "requestCallback",
                "summary": "Ask for a call back in a time window (the patient's number on file unless one is given)",
                "parameters": [session_param()],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RequestCallback"}}}},
                "responses": responses("201", "Callback")
            }
        },
        "/v1/callbacks/claim": {
            "post": {
                "operationId": "claimCallback",
                "summary": "Voice only: claim the oldest due callback (exclusive, expires after 15 minutes) and get a new voice session with its resume context",
                "responses": {
                    "200": {"description": "Claimed", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CallbackClaim"}}}},
                    "204": {"description": "No callback is due"},
                    "401": {"$ref": "#/components/responses/Error"},
                    "403": {"$ref": "#/components/responses/Error"},
                    "503": {"$ref": "#/components/responses/Error"}
                }
            }
        },
        "/v1/email/inbound": {
            "post": {
                "operationId": "emailInbound",
                "summary": "Email channel only: a raw RFC 5322 message as received, threaded into the sender's conversation (at most 10 MiB)",
                "requestBody": {"required": true, "content": {
                    "message/rfc822": {"schema": {"type": "string", "format": "binary"}},
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                }},
                "responses": {
                    "200": {"description": "Delivered before: nothing new stored", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EmailInbound"}}}},
                    "201": {"description": "Recorded", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EmailInbound"}}}},
                    "400": {"$ref": "#/components/responses/Error"},
                    "401": {"$ref": "#/components/responses/Error"},
                    "403": {"$ref": "#/components/responses/Error"},
                    "413": {"$ref": "#/components/responses/Error"},
                    "503": {"$ref": "#/components/responses/Error"}
                }
            }
        },
        "/v1/sessions/{id}/email/outbound": {
            "post": {
                "operationId": "emailOutbound",
                "summary": "Compose a message to the patient with a Message-ID Throughline records; sent through the tenant's SMTP relay, or handed back for the gateway",
                "parameters": [session_param()],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EmailOutbound"}}}},
                "responses": {
                    "201": {"description": "Composed (and sent, with a relay)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EmailOutboundResult"}}}},
                    "400": {"$ref": "#/components/responses/Error"},
                    "401": {"$ref": "#/components/responses/Error"},
                    "403": {"$ref": "#/components/responses/Error"},
                    "404": {"$ref": "#/components/responses/Error"},
                    "409": {"$ref": "#/components/responses/Error"},
                    "413": {"$ref": "#/components/responses/Error"},
                    "415": {"$ref": "#/components/responses/Error"},
                    "502": {"$ref": "#/components/responses/Error"},
                    "503": {"$ref": "#/components/responses/Error"}
                }
            }
        }
    })
}

pub fn schemas() -> Value {
    let time = json!({
        "type": "string",
        "format": "date-time",
        "description": "RFC 3339 in the clinic's offset at that time (DST applied) or in UTC; any other offset is 400 offset_mismatch"
    });
    json!({
        "Appointment": {
            "type": "object",
            "required": ["id", "starts_at", "local_time", "time_zone", "duration_min", "status"],
            "properties": {
                "id": {"type": "string", "pattern": "^apt_[0-9a-f]{32}$"},
                "starts_at": {"type": "string", "format": "date-time", "description": "In the clinic's zone"},
                "local_time": {"type": "string", "description": "As a person reads it, e.g. 'Tuesday, March 16, 2027 at 2:00 PM PDT'"},
                "time_zone": {"type": "string", "description": "The clinic's IANA zone, e.g. America/Los_Angeles"},
                "duration_min": {"type": "integer", "minimum": 5, "maximum": 480},
                "status": {"type": "string", "enum": ["booked", "cancelled"]},
                "reason": {"type": "string", "description": "Only where the channel may see clinical data"}
            }
        },
        "BookAppointment": {
            "type": "object",
            "additionalProperties": false,
            "required": ["starts_at"],
            "properties": {
                "starts_at": time,
                "duration_min": {"type": "integer", "minimum": 5, "maximum": 480, "default": 30},
                "reason": {"type": "string", "maxLength": 1024, "description": "Clinical data: refused where the channel may not record it"}
            }
        },
        "ChangeAppointment": {
            "type": "object",
            "additionalProperties": false,
            "minProperties": 2,
            "required": ["session_id"],
            "properties": {
                "session_id": {"type": "string", "pattern": "^ses_[0-9a-f]{32}$", "description": "The caller's session with the patient"},
                "starts_at": time,
                "duration_min": {"type": "integer", "minimum": 5, "maximum": 480},
                "status": {"type": "string", "enum": ["booked", "cancelled"]}
            }
        },
        "RequestCallback": {
            "type": "object",
            "additionalProperties": false,
            "required": ["window_start", "window_end"],
            "properties": {
                "phone": {"type": "string", "description": "Any common format; the patient's most recent number when left out"},
                "window_start": time,
                "window_end": time
            }
        },
        "Callback": {
            "type": "object",
            "required": ["id", "status", "window_start", "window_end"],
            "properties": {
                "id": {"type": "string", "pattern": "^cb_[0-9a-f]{32}$"},
                "status": {"type": "string", "enum": ["pending"]},
                "window_start": {"type": "string", "format": "date-time"},
                "window_end": {"type": "string", "format": "date-time"}
            }
        },
        "CallbackClaim": {
            "type": "object",
            "required": ["callback", "context"],
            "properties": {
                "callback": {
                    "type": "object",
                    "required": ["id", "phone", "window_start", "window_end", "claim_expires_at"],
                    "properties": {
                        "id": {"type": "string"},
                        "phone": {"type": "string", "description": "E.164, the number to dial"},
                        "window_start": {"type": "string", "format": "date-time"},
                        "window_end": {"type": "string", "format": "date-time"},
                        "claim_expires_at": {"type": "string", "format": "date-time"}
                    }
                },
                "context": {"$ref": "#/components/schemas/ResumeContext"}
            }
        },
        "EmailInbound": {
            "type": "object",
            "required": ["session_id", "duplicate", "threaded_by", "thread_sender_mismatch", "stored", "held_for_review", "sender_evidence", "turn_id", "attachments", "context"],
            "properties": {
                "session_id": {"type": "string"},
                "duplicate": {"type": "boolean", "description": "Delivered before by this integration (the same bytes)"},
                "held_for_review": {"type": "boolean", "description": "Not written into the conversation (sender not authenticated, address shared, or confirmation pending): kept sealed for staff review"},
                "sender_evidence": {"type": "string", "enum": ["dmarc_pass", "dkim_aligned_pass", "not_authenticated", "no_trusted_header"], "description": "What the Authentication-Results of a trusted authserv-id said about the From domain"},
                "threaded_by": {"type": "string", "enum": ["in_reply_to", "references", "sender", "new", "duplicate"]},
                "thread_sender_mismatch": {"type": "boolean", "description": "The message answered another patient's thread: not merged"},
                "stored": {"type": "boolean", "description": "Written into the conversation: only for a sender asserted by evidence with nothing to confirm"},
                "turn_id": {"type": ["integer", "null"]},
                "attachments": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "content_type", "size"],
                        "properties": {"id": {"type": "string"}, "content_type": {"type": "string"}, "size": {"type": "integer"}}
                    }
                },
                "context": {"$ref": "#/components/schemas/ResumeContext"}
            }
        },
        "EmailOutbound": {
            "type": "object",
            "additionalProperties": false,
            "required": ["subject", "text"],
            "properties": {
                "to": {"type": "string", "format": "email", "description": "The patient's most recent address when left out"},
                "subject": {"type": "string", "minLength": 1, "maxLength": 200},
                "text": {"type": "string", "minLength": 1, "maxLength": 16384},
                "appointment_id": {"type": "string", "description": "Its time (never its reason) is written into the message"},
                "in_reply_to": {"type": "string", "description": "A Message-ID of this conversation"}
            }
        },
        "EmailOutboundResult": {
            "type": "object",
            "required": ["message_id", "to", "delivery"],
            "properties": {
                "message_id": {"type": "string", "description": "Without angle brackets"},
                "to": {"type": "string"},
                "delivery": {"type": "string", "enum": ["smtp", "gateway"]},
                "raw": {"type": "string", "description": "The RFC 5322 message, for the gateway to send (delivery gateway only)"}
            }
        }
    })
}
