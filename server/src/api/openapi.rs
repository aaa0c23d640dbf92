//! `GET /openapi.json`: the OpenAPI 3.1 document of the API. It grows with
//! every route; docs/API.md describes the same fields for people.

use actix_web::HttpResponse;
use serde_json::{Value, json};

use super::Caller;

pub(super) fn session_param() -> Value {
    json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^ses_[0-9a-f]{32}$"}})
}

fn key_param() -> Value {
    json!({"name": "key", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[a-z0-9_]{1,64}$"}})
}

/// A success response of `schema` plus every error status an operation may return.
pub(super) fn responses(ok: &str, schema: &str) -> Value {
    let mut r = json!({
        "400": {"$ref": "#/components/responses/Error"},
        "401": {"$ref": "#/components/responses/Error"},
        "403": {"$ref": "#/components/responses/Error"},
        "404": {"$ref": "#/components/responses/Error"},
        "409": {"$ref": "#/components/responses/Error"},
        "413": {"$ref": "#/components/responses/Error"},
        "415": {"$ref": "#/components/responses/Error"},
        "503": {"$ref": "#/components/responses/Error"},
        "507": {"$ref": "#/components/responses/Error"}
    });
    r[ok] = json!({"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
    r
}

/// Adds the 502 of a route that hands mail to the tenant's relay.
fn with_bad_gateway(mut r: Value) -> Value {
    r["502"] = json!({"$ref": "#/components/responses/Error"});
    r
}

/// Adds the 202 of a turn kept for staff review (`hold`).
fn held(mut r: Value) -> Value {
    r["202"] = json!({"description": "Held for staff review, not written", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Ack"}}}});
    r
}

/// Adds the 429 (with `Retry-After`) of a throttled route.
fn throttled(mut r: Value) -> Value {
    r["429"] = json!({
        "description": "Throttled: too many failed confirmations from this certificate",
        "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer", "minimum": 1}}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    });
    r
}

pub async fn openapi(_caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(document())
}

/// The document (also used by tests and the fuzzing harness).
pub fn document() -> Value {
    let mut doc = sessions_document();
    if let (Some(paths), Value::Object(more)) = (doc["paths"].as_object_mut(), super::openapi_channels::paths()) {
        paths.extend(more);
    }
    if let (Some(schemas), Value::Object(more)) =
        (doc["components"]["schemas"].as_object_mut(), super::openapi_channels::schemas())
    {
        schemas.extend(more);
    }
    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        schemas.values_mut().for_each(nullable_optionals);
    }
    doc
}

/// Request bodies (closed objects) accept `null` for an optional field, as
/// "not given" (serde reads `Option` that way): say so in the schema.
fn nullable_optionals(schema: &mut Value) {
    if schema["additionalProperties"] != Value::Bool(false) {
        return;
    }
    let required: Vec<String> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    if let Some(props) = schema["properties"].as_object_mut() {
        for (name, prop) in props.iter_mut() {
            nullable_optionals(prop);
            if required.contains(name) {
                continue;
            }
            if let Some(t) = prop["type"].as_str().map(str::to_owned) {
                prop["type"] = json!([t, "null"]);
            }
        }
    }
}

fn sessions_document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Throughline",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "One conversation per patient across voice, chat and email. Every route requires mutual TLS with a channel certificate issued by the clinic's Throughline CA; the tenant and channel come from that certificate, never from the request."
        },
        "paths": {
            "/v1/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness, and what the presented certificate is bound to",
                    "responses": {
                        "200": {"description": "Serving", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}},
                        "401": {"$ref": "#/components/responses/Error"},
                        "403": {"$ref": "#/components/responses/Error"},
                        "503": {"$ref": "#/components/responses/Error"}
                    }
                }
            },
            "/v1/sessions": {
                "post": {
                    "operationId": "openSession",
                    "summary": "Open a session: resolve the patient from the identifiers offered, find or open their conversation, return the resume context",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenSession"}}}},
                    "responses": responses("200", "ResumeContext")
                }
            },
            "/v1/sessions/{id}/context": {
                "get": {
                    "operationId": "sessionContext",
                    "summary": "The resume context again, fresh",
                    "parameters": [session_param()],
                    "responses": responses("200", "ResumeContext")
                }
            },
            "/v1/sessions/{id}/identity/confirm": {
                "post": {
                    "operationId": "confirmIdentity",
                    "summary": "Confirm identity with what the tenant's policy asks (date of birth by default); failures count per patient and per identifier over a sliding window, whatever the session, and never say which field was wrong; a visitor named in Throughline-Visitor who fails too often gets 429 with Retry-After; a certificate over its budget is slowed, never refused",
                    "parameters": [session_param(), {"name": "Throughline-Visitor", "in": "header", "required": false,
                        "description": "The integration's opaque name for the visitor (a device cookie, a contact inbox), never stored: the throttle's key",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[!-~]+$"}}],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Confirm"}}}},
                    "responses": throttled(responses("200", "ResumeContext"))
                }
            },
            "/v1/sessions/{id}/identity/challenge": {
                "post": {
                    "operationId": "identityChallenge",
                    "summary": "Send a six-digit one-time code to an identifier on file for the session's candidate patient (never one offered in the session); confirm with it for possession strength",
                    "parameters": [session_param()],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Challenge"}}}},
                    "responses": with_bad_gateway(responses("202", "ChallengeSent"))
                }
            },
            "/v1/sessions/{id}/customer": {
                "patch": {
                    "operationId": "updateCustomer",
                    "summary": "Intake fields (name, date of birth), for a patient created in this session or a confirmed one",
                    "parameters": [session_param()],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CustomerPatch"}}}},
                    "responses": responses("200", "ResumeContext")
                }
            },
            "/v1/sessions/{id}/turns": {
                "post": {
                    "operationId": "appendTurn",
                    "summary": "Record who said what",
                    "parameters": [session_param()],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Turn"}}}},
                    "responses": held(responses("201", "Ack"))
                }
            },
            "/v1/sessions/{id}/state/{key}": {
                "put": {
                    "operationId": "putState",
                    "summary": "Set a state key of the conversation; it expires after the tenant's state TTL",
                    "parameters": [session_param(), key_param()],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/StateValue"}}}},
                    "responses": responses("200", "Ack")
                },
                "delete": {
                    "operationId": "deleteState",
                    "summary": "Clear a state key",
                    "parameters": [session_param(), key_param()],
                    "responses": responses("200", "Ack")
                }
            },
            "/v1/sessions/{id}/end": {
                "post": {
                    "operationId": "endSession",
                    "summary": "End the session; a dropped call leaves the conversation open",
                    "parameters": [session_param()],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/End"}}}},
                    "responses": responses("200", "Ack")
                }
            },
            "/v1/sessions/{id}/resume-token": {
                "post": {
                    "operationId": "issueResumeToken",
                    "summary": "A signed, expiring token a chat link or SMS can carry to resume with proof of possession",
                    "parameters": [session_param()],
                    "responses": responses("201", "Ack")
                }
            },
            "/v1/sessions/{id}/start-fresh": {
                "post": {
                    "operationId": "startFresh",
                    "summary": "The patient starts over: the conversation closes and its state is cleared (history stays for the record); this session continues on a new conversation",
                    "parameters": [session_param()],
                    "responses": responses("200", "ResumeContext")
                }
            },
            "/v1/sessions/{id}/export": {
                "get": {
                    "operationId": "exportPatient",
                    "summary": "GDPR Art. 15/20: everything held about the confirmed patient of this session, as far as this channel may receive it (the rest is listed in withheld)",
                    "parameters": [session_param()],
                    "responses": responses("200", "PatientExport")
                }
            },
            "/v1/sessions/{id}/erasure": {
                "post": {
                    "operationId": "requestErasure",
                    "summary": "GDPR Art. 17 for the confirmed patient of this session: their data key is destroyed and their data deleted; answers with a receipt signed by the tenant's audit key",
                    "parameters": [session_param()],
                    "responses": responses("200", "ErasureReceipt")
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {
                        "200": {"description": "The OpenAPI document", "content": {"application/json": {"schema": {"type": "object"}}}},
                        "401": {"$ref": "#/components/responses/Error"},
                        "403": {"$ref": "#/components/responses/Error"}
                    }
                }
            }
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {
                        "error": {"type": "string", "description": "Stable snake_case code, e.g. certificate_revoked, body_too_large, not_found"},
                        "message": {"type": "string", "description": "For people; never carries PHI or internals"}
                    }
                },
                "OpenSession": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["identifiers"],
                    "properties": {
                        "identifiers": {
                            "type": "object",
                            "additionalProperties": false,
                            "description": "At least one. Priority: phone, email, auth, cookie; a resume token stands for the patient it was issued to.",
                            "properties": {
                                "phone": {"type": "string", "description": "Any common format; read with the tenant's default region; normalised to E.164"},
                                "email": {"type": "string", "description": "Surrounding spaces trimmed, domain lowercased, local part kept"},
                                "auth": {"type": "string", "minLength": 1, "maxLength": 256, "description": "The clinic's login subject (proof of possession)"},
                                "cookie": {"type": "string", "minLength": 16, "maxLength": 256, "pattern": "^[A-Za-z0-9._~-]+$", "description": "Opaque browser cookie set by the chat backend"},
                                "resume_token": {"type": "string", "description": "From POST /v1/sessions/{id}/resume-token"}
                            }
                        },
                        "external_ref": {"type": "string", "minLength": 1, "maxLength": 256, "description": "Call id, chat id or Message-ID; opening twice with the same one by the same certificate returns the same session while it is open (409 external_ref_conflict for another certificate, 409 session_ended once it ended)"},
                        "evidence": {
                            "type": "object",
                            "additionalProperties": false,
                            "description": "Voice and SMS only (400 evidence_not_allowed elsewhere)",
                            "properties": {
                                "caller_id_attestation": {"type": "string", "enum": ["A", "B", "C"], "description": "STIR/SHAKEN attestation from the carrier (Twilio StirVerstat); with the tenant's default evidence policy only A makes caller ID asserted"}
                            }
                        }
                    }
                },
                "ResumeContext": {
                    "type": "object",
                    "required": ["session_id", "customer_id", "conversation_id", "channel", "identity", "greeting_name", "patient", "state", "recent_turns", "appointments", "brief", "withheld"],
                    "properties": {
                        "session_id": {"type": "string", "pattern": "^ses_[0-9a-f]{32}$"},
                        "customer_id": {"type": ["string", "null"], "description": "Pseudonymous patient id; null while ambiguous"},
                        "conversation_id": {"type": ["string", "null"], "description": "The patient's one open conversation; null while ambiguous"},
                        "channel": {"type": "string", "enum": ["voice", "chat", "email", "sms"]},
                        "identity": {
                            "type": "object",
                            "required": ["status", "strength", "confirmed", "confirm_with", "locked", "candidates"],
                            "properties": {
                                "status": {"type": "string", "enum": ["resolved", "ambiguous", "new"]},
                                "strength": {"type": "string", "enum": ["claim", "asserted", "possession"], "description": "How far the resolving identifier can be trusted"},
                                "confirmed": {"type": "boolean"},
                                "confirm_with": {"type": "array", "items": {"type": "string", "enum": ["date_of_birth", "name"]}, "description": "Empty when no confirmation is needed"},
                                "locked": {"type": "boolean", "description": "Too many failed confirmations"},
                                "candidates": {"type": "integer", "minimum": 0, "description": "How many patients share the identifier (ambiguous only); never who"}
                            }
                        },
                        "greeting_name": {"type": ["string", "null"], "description": "First name, when policy allows a greeting"},
                        "patient": {
                            "type": ["object", "null"],
                            "description": "PHI class identity",
                            "properties": {"name": {"type": ["string", "null"]}, "date_of_birth": {"type": ["string", "null"], "format": "date"}}
                        },
                        "state": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Unexpired session state (PHI class conversation)"},
                        "recent_turns": {
                            "type": "array",
                            "description": "Last turns, oldest first (PHI class conversation)",
                            "items": {
                                "type": "object",
                                "required": ["channel", "speaker", "text", "at"],
                                "properties": {
                                    "channel": {"type": "string"},
                                    "speaker": {"type": "string", "enum": ["patient", "agent", "staff"]},
                                    "text": {"type": "string"},
                                    "at": {"type": "integer", "description": "Unix milliseconds"}
                                }
                            }
                        },
                        "appointments": {"type": "array", "items": {"$ref": "#/components/schemas/Appointment"}, "description": "Upcoming booked appointments (PHI class scheduling; the reason only with clinical)"},
                        "brief": {"type": "string", "description": "One line, e.g. 'voice call 10 min ago, dropped; pending: booking date Tuesday'; PHI-free while details are withheld"},
                        "withheld": {"type": "array", "items": {"type": "string", "enum": ["greeting", "identity", "contact", "scheduling", "conversation", "clinical", "attachments"]}, "description": "PHI classes this response left out"}
                    }
                },
                "Confirm": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "date_of_birth": {"type": "string", "format": "date", "description": "YYYY-MM-DD"},
                        "name": {"type": "string", "description": "Full name, when the tenant confirms with name too"},
                        "code": {"type": "string", "pattern": "^[0-9]{6}$", "description": "The one-time code of identity/challenge, instead of the fields: confirms with possession strength"}
                    }
                },
                "Challenge": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["via"],
                    "properties": {
                        "via": {"type": "string", "enum": ["email", "sms"]}
                    }
                },
                "ChallengeSent": {
                    "type": "object",
                    "required": ["session_id", "via", "expires_at", "delivery"],
                    "properties": {
                        "session_id": {"type": "string"},
                        "via": {"type": "string", "enum": ["email", "sms"]},
                        "expires_at": {"type": "integer", "description": "Unix ms; a code lasts 10 minutes"},
                        "delivery": {"type": "string", "enum": ["smtp", "gateway", "sms", "none", "unavailable"], "description": "smtp: sent through the tenant's relay (the same answer when nobody is on file); gateway: the message is in raw; sms: in sms; none: nothing on file to send to. Never show raw or sms to the person in the session. A chat integration gets only smtp or unavailable, the same whoever is on file"},
                        "raw": {"type": "string", "description": "The RFC 5322 message for the email gateway"},
                        "sms": {"type": "object", "required": ["to", "text"], "properties": {"to": {"type": "string"}, "text": {"type": "string"}}}
                    }
                },
                "CustomerPatch": {
                    "type": "object",
                    "additionalProperties": false,
                    "minProperties": 1,
                    "properties": {
                        "name": {"type": "string", "minLength": 1, "maxLength": 200},
                        "date_of_birth": {"type": "string", "format": "date"}
                    }
                },
                "Turn": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["speaker", "text"],
                    "properties": {
                        "speaker": {"type": "string", "enum": ["patient", "agent", "staff"]},
                        "text": {"type": "string", "minLength": 1, "maxLength": 16384},
                        "external_ref": {"type": "string", "minLength": 1, "maxLength": 256},
                        "hold": {"type": "boolean"}
                    }
                },
                "StateValue": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["value"],
                    "properties": {"value": {"type": "string", "maxLength": 4096}}
                },
                "End": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["reason"],
                    "properties": {"reason": {"type": "string", "enum": ["completed", "dropped", "transferred"]}}
                },
                "Ack": {
                    "type": "object",
                    "required": ["session_id"],
                    "properties": {
                        "session_id": {"type": "string"},
                        "turn_id": {"type": "integer"},
                        "key": {"type": "string"},
                        "expires_at": {"type": "integer", "description": "Unix milliseconds"},
                        "ended_reason": {"type": "string"},
                        "resume_token": {"type": "string"},
                        "held": {"type": "boolean"}
                    }
                },
                "PatientExport": {
                    "type": "object",
                    "required": ["format", "tenant", "customer_id", "exported_at", "withheld", "identity", "identifiers", "conversations", "appointments", "callbacks", "attachments", "audit"],
                    "properties": {
                        "format": {"type": "string", "enum": ["throughline-patient-export/v1"]},
                        "tenant": {"type": "string"},
                        "customer_id": {"type": "string"},
                        "exported_at": {"type": "integer"},
                        "withheld": {"type": "array", "items": {"type": "string"}},
                        "identity": {"type": ["object", "null"], "properties": {"name": {"type": ["string", "null"]}, "date_of_birth": {"type": ["string", "null"]}}},
                        "identifiers": {"type": "array", "items": {"type": "object", "properties": {"kind": {"type": "string"}, "value": {"type": "string"}, "provenance": {"type": "string"}, "created_at": {"type": "integer"}, "last_seen": {"type": "integer"}, "unlinked_at": {"type": ["integer", "null"]}}}},
                        "conversations": {"type": "array", "items": {"type": "object", "properties": {
                            "id": {"type": "string"}, "status": {"type": "string"}, "opened_at": {"type": "integer"}, "last_activity_at": {"type": "integer", "description": "last activity, ms since the epoch, kept to the minute"}, "closed_at": {"type": ["integer", "null"]},
                            "sessions": {"type": "array", "items": {"type": "object"}},
                            "turns": {"type": "array", "items": {"type": "object"}},
                            "state": {"type": "object"}
                        }}},
                        "appointments": {"type": "array"},
                        "callbacks": {"type": "array"},
                        "attachments": {"type": "array"},
                        "audit": {"type": "array", "items": {"type": "object"}, "description": "Audit records that name this patient (pseudonymous, no PHI)"}
                    }
                },
                "ErasureReceipt": {
                    "type": "object",
                    "required": ["receipt", "signed", "signature"],
                    "properties": {
                        "receipt": {
                            "type": "object",
                            "properties": {
                                "type": {"type": "string"},
                                "tenant": {"type": "string"},
                                "customer": {"type": "string"},
                                "erased_at": {"type": "integer", "description": "Unix milliseconds"},
                                "requested_by": {"type": "string"},
                                "erased": {"type": "object", "additionalProperties": {"type": "integer"}, "description": "Rows removed, per kind"},
                                "kept": {"type": "string"}
                            }
                        },
                        "signed": {"type": "string", "description": "The exact JSON text the signature covers"},
                        "signature": {"type": "string", "description": "Ed25519 (base64) by the tenant's audit key (throughline audit key)"}
                    }
                },
                "Health": {
                    "type": "object",
                    "required": ["status", "version", "tenant", "channel", "certificate_serial", "uptime_s", "refused_certificates"],
                    "properties": {
                        "status": {"type": "string", "enum": ["ok"]},
                        "version": {"type": "string"},
                        "tenant": {"type": "string", "description": "Name of the tenant the certificate is bound to"},
                        "channel": {"type": "string", "enum": ["voice", "chat", "email", "sms"]},
                        "certificate_serial": {"type": "string", "description": "Hex serial of the presented certificate"},
                        "uptime_s": {"type": "integer", "minimum": 0},
                        "refused_certificates": {"type": "integer", "minimum": 0, "description": "Client certificates refused at the TLS handshake since start"}
                    }
                }
            },
            "responses": {
                "Error": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both ways: every route of the table is in the document with exactly
    /// its methods, and the document names no route the server lacks. A
    /// route added without its schema fails here.
    #[test]
    fn every_route_is_documented() {
        let doc = document();
        let paths = doc["paths"].as_object().expect("paths");
        for (path, methods) in super::super::ROUTES.iter().filter(|(p, _)| *p != "/openapi.json") {
            let documented: std::collections::BTreeSet<&str> = paths
                .get(*path)
                .and_then(|o| o.as_object())
                .map(|o| o.keys().map(String::as_str).collect())
                .unwrap_or_default();
            let served: std::collections::BTreeSet<&str> = methods.iter().copied().collect();
            assert_eq!(documented, served, "{path}: the document and the route table disagree");
        }
        for path in paths.keys() {
            assert!(super::super::ROUTES.iter().any(|(p, _)| p == path), "{path} is documented but not served");
        }
        // Every $ref resolves.
        let text = doc.to_string();
        for piece in text.split("\"$ref\":\"#/components/").skip(1) {
            let target = piece.split('"').next().unwrap_or_default();
            let mut node = &doc["components"];
            for part in target.split('/') {
                node = &node[part];
            }
            assert!(node.is_object(), "dangling $ref {target}");
        }
    }

    /// The fields a request type takes, from serde's own refusal of an
    /// unknown one (every request body denies unknown fields).
    fn fields<T: serde::de::DeserializeOwned>() -> std::collections::BTreeSet<String> {
        let Err(e) = serde_json::from_value::<T>(json!({"\u{1}probe": 1})) else {
            panic!("a request type took an unknown field")
        };
        let text = e.to_string();
        let listed = text.split("expected").nth(1).unwrap_or_default();
        listed.split('`').skip(1).step_by(2).map(str::to_owned).collect()
    }

    /// Each request body's schema names exactly the fields its type takes:
    /// a field added to a type without its schema (or the reverse) fails.
    #[test]
    fn request_schemas_name_every_field() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        let check = |name: &str, want: std::collections::BTreeSet<String>| {
            let have: std::collections::BTreeSet<String> =
                schemas[name]["properties"].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
            assert!(!want.is_empty(), "no fields read from {name}'s type");
            assert_eq!(have, want, "schema {name} and its request type disagree");
        };
        check("OpenSession", fields::<continuity::OpenRequest>());
        check("Confirm", fields::<continuity::ConfirmRequest>());
        check("Challenge", fields::<continuity::challenge::ChallengeRequest>());
        check("CustomerPatch", fields::<continuity::CustomerPatch>());
        check("Turn", fields::<continuity::TurnRequest>());
        check("StateValue", fields::<continuity::StateValue>());
        check("End", fields::<continuity::EndRequest>());
        check("BookAppointment", fields::<continuity::channels::BookRequest>());
        check("ChangeAppointment", fields::<continuity::channels::ChangeRequest>());
        check("RequestCallback", fields::<continuity::channels::CallbackRequest>());
        check("EmailOutbound", fields::<continuity::channels::email::OutboundRequest>());
    }
}
