//! The bridge's copies of the core's types against the core's generated
//! OpenAPI document: every field the bridge reads is one the core documents
//! (a renamed or removed field fails here, not in a call), and what the
//! core's wire types write, the bridge reads.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;

use serde::de::{self, Visitor};

/// The field names a `Deserialize` struct asks for (serde hands them to
/// `deserialize_struct`), without a value to read.
struct FieldNames(RefCell<Vec<&'static str>>);

impl<'de> de::Deserializer<'de> for &FieldNames {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("field names only"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.borrow_mut().extend_from_slice(fields);
        Err(de::Error::custom("field names only"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

fn fields_of<T: de::DeserializeOwned>() -> Vec<&'static str> {
    let names = FieldNames(RefCell::new(Vec::new()));
    let _ = T::deserialize(&names);
    names.0.into_inner()
}

fn properties(doc: &serde_json::Value, schema: &str) -> Vec<String> {
    doc["components"]["schemas"][schema]["properties"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn every_field_the_bridge_reads_is_in_the_core_document() {
    let doc = server::api::openapi_document();
    for (bridge_fields, schema) in [
        (fields_of::<bridge::context::Context>(), "ResumeContext"),
        (fields_of::<bridge::context::Identity>(), "Identity"),
        (fields_of::<bridge::context::Turn>(), "TurnOut"),
        (fields_of::<bridge::context::Appointment>(), "Appointment"),
    ] {
        assert!(!bridge_fields.is_empty(), "no fields read from the bridge's copy of {schema}");
        let documented = properties(&doc, schema);
        for f in bridge_fields {
            assert!(
                documented.iter().any(|d| d == f),
                "the bridge reads {schema}.{f}, which the core does not document"
            );
        }
    }
}

/// What the core writes, the bridge reads: a full resume context from the
/// core's own wire type parses into the bridge's copy, field for field.
#[test]
fn the_bridge_reads_what_the_core_writes() {
    let core = serde_json::json!({
        "session_id": "ses_0123456789abcdef0123456789abcdef",
        "customer_id": "cus_0123456789abcdef0123456789abcdef",
        "conversation_id": "con_0123456789abcdef0123456789abcdef",
        "channel": "voice",
        "identity": {"status": "resolved", "strength": "asserted", "confirmed": false, "confirm_with": ["date_of_birth"], "locked": false, "candidates": 0},
        "greeting_name": "Maria",
        "patient": null,
        "state": {"pending_booking_date": "Tuesday"},
        "recent_turns": [{"channel": "chat", "speaker": "patient", "text": "hello", "at": 1}],
        "appointments": [{"id": "apt_0123456789abcdef0123456789abcdef", "starts_at": "2027-03-16T14:00:00-07:00", "local_time": "Tuesday", "time_zone": "America/Los_Angeles", "duration_min": 30, "status": "booked"}],
        "brief": "chat 5 min ago",
        "withheld": ["clinical"]
    });
    // The sample is a valid core answer: it fits the core's schema's required fields.
    let doc = server::api::openapi_document();
    for r in doc["components"]["schemas"]["ResumeContext"]["required"].as_array().unwrap() {
        assert!(core.get(r.as_str().unwrap()).is_some(), "the sample lacks {r}");
    }
    let ctx: bridge::context::Context = serde_json::from_value(core).unwrap();
    assert_eq!(ctx.identity.status, "resolved");
    assert_eq!(ctx.identity.confirm_with, vec!["date_of_birth".to_owned()]);
    assert_eq!(ctx.recent_turns[0].text, "hello");
    assert_eq!(ctx.appointments[0].local_time.as_deref(), Some("Tuesday"));
    assert_eq!(ctx.withheld, vec!["clinical".to_owned()]);
}

/// The core's refusal codes the bridge acts on are read into their kinds,
/// and every one of them is a code the core can answer with.
#[test]
fn the_bridge_reads_typed_refusal_codes() {
    use bridge::core::CoreCode;
    for (text, code) in [
        ("session_ended", CoreCode::SessionEnded),
        ("session_not_found", CoreCode::SessionNotFound),
        ("identity_not_confirmed", CoreCode::IdentityNotConfirmed),
        ("identity_locked", CoreCode::IdentityLocked),
    ] {
        assert_eq!(CoreCode::parse(text), code);
        assert_eq!(code.as_str(), text);
        let api = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/API.md")).unwrap();
        assert!(api.contains(text), "docs/API.md documents {text}");
    }
    assert_eq!(CoreCode::parse("tenant_busy"), CoreCode::Other("tenant_busy".into()));
}

/// The bridge names the wire the core speaks: built from one tree they
/// agree, and a change to one without the other fails here.
#[test]
fn the_bridge_and_the_core_name_the_same_wire() {
    assert_eq!(bridge::core::WIRE, server::api::WIRE.to_string());
    assert_eq!(bridge::core::WIRE_HEADER, server::api::WIRE_HEADER);
}
