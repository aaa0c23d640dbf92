//! `GET /openapi.json`: the OpenAPI 3.1 document of the API. It grows with
//! every route; docs/API.md describes the same fields for people.

use actix_web::HttpResponse;
use serde_json::{Value, json};

use super::Caller;

pub async fn openapi(_caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(document())
}

/// The document (also used by tests and the fuzzing harness).
pub fn document() -> Value {
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
