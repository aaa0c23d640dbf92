//! FHIR R4 (4.0.1) AuditEvent form of an audit record, one resource per
//! line (NDJSON, as FHIR bulk data uses). The mapping:
//!
//! | record | AuditEvent |
//! | --- | --- |
//! | `seq`, tenant | `id` = `<tenant>-<seq>` |
//! | — | `type` = DICOM `110112` "Query" for reads, `rest` otherwise |
//! | `action` | `subtype[0]` (system `urn:throughline:action`), and `action` C/R/U/D/E |
//! | `at` | `recorded` (instant) |
//! | `outcome`, `reason` | `outcome` 0 / 4 / 8, `outcomeDesc` |
//! | `actor_kind`, `actor`, `channel`, `peer` | `agent[0]`: `who.identifier` (certificate serial or operator), `name` (channel), `network.address` |
//! | tenant | `source.site`, `source.observer.display` = Throughline |
//! | `customer_id` | `entity` of type 1 (Person), pseudonymous identifier |
//! | `session_id` | `entity` of type 2 (System Object) |
//! | `role`, `purpose` | `agent[0].role`, `purposeOfEvent` (HL7 v3 ActReason) |
//! | `subjects`, `query_hmac` | one `entity` per patient a page showed (role 24 Query), and the search's HMAC |
//! | `break_glass` | `type` DICOM 110113 Security Alert, `subtype` 110127 Emergency Override Started, the grant as an `entity` |
//! | `prev_hash`, `hash` | `entity` "audit-record" with `detail` prev_hash / hash, so the chain stays verifiable in FHIR form |

use serde_json::{Value, json};

use crate::{ActorKind, Outcome, Record};

/// The AuditEvent resource of one record.
pub fn audit_event(r: &Record, hash: &str) -> Value {
    let tenant = r.tenant_id.as_deref().unwrap_or("system");
    let action = match r.action.rsplit('.').next().unwrap_or("") {
        "read" | "open" | "export" => "R",
        "create" | "append" | "issue" | "put" => "C",
        "update" | "confirm" | "end" | "unlink" | "revoke" | "set" | "start_fresh" => "U",
        "delete" | "purge" => "D",
        _ => "E",
    };
    let (type_code, type_display, type_system) = if action == "R" {
        ("110112", "Query", "http://dicom.nema.org/resources/ontology/DCM")
    } else {
        ("rest", "RESTful Operation", "http://terminology.hl7.org/CodeSystem/audit-event-type")
    };
    let outcome = match r.outcome {
        Outcome::Ok => "0",
        Outcome::Refused => "4",
        Outcome::Failed => "8",
    };
    let who_system = match r.actor_kind {
        ActorKind::Channel => "urn:throughline:certificate-serial",
        ActorKind::Operator => "urn:throughline:operator",
        ActorKind::System => "urn:throughline:system",
        ActorKind::Staff => "urn:throughline:staff",
    };
    let mut agent = json!({
        "who": {"identifier": {"system": who_system, "value": r.actor}},
        "requestor": r.actor_kind != ActorKind::System,
    });
    if let Some(c) = &r.channel {
        agent["name"] = json!(c);
    }
    if let Some(p) = &r.peer {
        agent["network"] = json!({"address": p, "type": "2"});
    }
    if let Some(role) = &r.role {
        agent["role"] = json!([{"coding": [{"system": "urn:throughline:role", "code": role}]}]);
    }
    let mut entities = vec![json!({
        "what": {"identifier": {"system": "urn:throughline:audit-record", "value": format!("{tenant}/{}", r.seq)}},
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
        "detail": [
            {"type": "prev_hash", "valueString": r.prev_hash},
            {"type": "hash", "valueString": hash}
        ]
    })];
    if let Some(c) = &r.customer_id {
        entities.push(json!({
            "what": {"identifier": {"system": "urn:throughline:customer", "value": c}},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"}
        }));
    }
    for s in &r.subjects {
        entities.push(json!({
            "what": {"identifier": {"system": "urn:throughline:customer", "value": s}},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "24", "display": "Query"}
        }));
    }
    if let Some(q) = &r.query_hmac {
        entities.push(json!({
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "24", "display": "Query"},
            "detail": [{"type": "query_hmac", "valueString": q}]
        }));
    }
    if let Some(s) = &r.session_id {
        entities.push(json!({
            "what": {"identifier": {"system": "urn:throughline:session", "value": s}},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"}
        }));
    }
    let mut event = json!({
        "resourceType": "AuditEvent",
        "id": format!("{}-{}", tenant.replace('_', "-"), r.seq),
        "type": {"system": type_system, "code": type_code, "display": type_display},
        "subtype": [{"system": "urn:throughline:action", "code": r.action}],
        "action": action,
        "recorded": instant(r.at),
        "outcome": outcome,
        "agent": [agent],
        "source": {
            "site": tenant,
            "observer": {"display": "Throughline"},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}]
        },
        "entity": entities
    });
    if let Some(reason) = &r.reason {
        event["outcomeDesc"] = json!(reason);
    }
    if let Some(p) = &r.purpose {
        event["purposeOfEvent"] =
            json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": p}]}]);
    }
    if let Some(b) = &r.break_glass {
        // DICOM 110113 "Security Alert" with 110127 "Emergency Override Started".
        event["type"] = json!({"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110113", "display": "Security Alert"});
        event["subtype"] = json!([
            {"system": "urn:throughline:action", "code": r.action},
            {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110127", "display": "Emergency Override Started"}
        ]);
        if let Some(e) = event["entity"].as_array_mut() {
            e.push(json!({
                "what": {"identifier": {"system": "urn:throughline:break-glass", "value": b}},
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"}
            }));
        }
    }
    event
}

/// FHIR `instant`: RFC 3339 with milliseconds, UTC.
fn instant(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GENESIS;

    #[test]
    fn maps_the_fields() {
        let r = Record {
            seq: 7,
            at: 1_795_000_000_123,
            actor_kind: ActorKind::Channel,
            actor: "4f6b".into(),
            channel: Some("chat".into()),
            action: "identity.confirm".into(),
            tenant_id: Some("ten_ab".into()),
            customer_id: Some("cus_1".into()),
            session_id: Some("ses_1".into()),
            peer: Some("127.0.0.1".into()),
            outcome: Outcome::Refused,
            reason: Some("mismatch".into()),
            prev_hash: GENESIS.into(),
            role: None,
            purpose: None,
            break_glass: None,
            subjects: Vec::new(),
            query_hmac: None,
        };
        let e = audit_event(&r, "abc");
        assert_eq!(e["resourceType"], "AuditEvent");
        assert_eq!(e["id"], "ten-ab-7");
        assert_eq!(e["action"], "U");
        assert_eq!(e["outcome"], "4");
        assert_eq!(e["recorded"], "2026-11-18T11:06:40.123Z");
        assert_eq!(e["agent"][0]["network"]["address"], "127.0.0.1");
        assert_eq!(e["entity"][0]["detail"][1]["valueString"], "abc");
        assert_eq!(e["entity"].as_array().map(Vec::len), Some(3));
    }
}
