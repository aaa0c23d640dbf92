//! The right-of-access export (GDPR Art. 15/20): a machine-readable JSON
//! document of everything held about one patient, including the audit
//! records about them. PHI parts appear only where the `Access` allows (the
//! channel's post-confirmation view, or the staff console's full view); what
//! is left out is listed in `withheld`. The export itself is audited.

use base64::Engine as _;
use policy::{Access, PhiClass};
use serde_json::{Value, json};

use store::ids::CustomerId;
use store::{AppointmentExport, AttachmentExport, AuditEntry, CallbackExport, StoreError, TenantTx};

pub const FORMAT: &str = "throughline-patient-export/v1";

/// Builds the document inside `tx` and records the export in the audit trail.
pub fn build(
    tx: &TenantTx<'_>,
    customer: &CustomerId,
    access: &Access,
    by: &AuditEntry<'_>,
    now: i64,
) -> Result<Value, StoreError> {
    let doc = document(tx, customer, access, now)?;
    let tenant = tx.keys().tenant_id().to_owned();
    let released = access.allowed().to_string();
    let entry = AuditEntry {
        action: audit::Action::CustomerExport,
        tenant_id: Some(&tenant),
        customer_id: Some(customer.as_str()),
        reason: Some(&released),
        ..by.clone()
    };
    tx.audit(&entry, now)?;
    Ok(doc)
}

/// The document alone: the caller records the export in the same
/// transaction (the console does, naming the person's role and purpose).
pub fn document(tx: &TenantTx<'_>, customer: &CustomerId, access: &Access, now: i64) -> Result<Value, StoreError> {
    let tenant = tx.keys().tenant_id().to_owned();
    let identity = if access.allows(PhiClass::Identity) {
        let f = tx.customer_fields(customer, access)?;
        json!({"name": non_empty(&f.name), "date_of_birth": non_empty(&f.dob)})
    } else {
        Value::Null
    };
    let identifiers = if access.allows(PhiClass::Contact) {
        serde_json::to_value(tx.export_identifiers(customer, access)?)
    } else {
        Ok(json!([]))
    }
    .unwrap_or_default();
    let conversations = serde_json::to_value(tx.export_conversations(customer, access, now)?).unwrap_or_default();
    let audit: Vec<Value> = tx
        .audit_records_about(customer)?
        .into_iter()
        .map(|(r, h)| serde_json::from_str(&audit::export::to_jsonl_line(&r, &h)).unwrap_or_default())
        .collect();
    let doc = json!({
        "format": FORMAT,
        "tenant": tenant,
        "customer_id": customer.as_str(),
        "exported_at": now,
        "withheld": access.withheld().iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "identity": identity,
        "identifiers": identifiers,
        "conversations": conversations,
        "appointments": tx.export_appointments(customer, access)?.iter().map(appointment).collect::<Vec<_>>(),
        "callbacks": tx.export_callbacks(customer, access)?.iter().map(callback).collect::<Vec<_>>(),
        "attachments": tx.export_attachments(customer, access)?.iter().map(attachment).collect::<Vec<_>>(),
        "audit": audit,
    });
    Ok(doc)
}

fn non_empty(s: &str) -> Value {
    if s.is_empty() { Value::Null } else { Value::String(s.to_owned()) }
}

fn appointment(a: &AppointmentExport) -> Value {
    json!({
        "id": a.id,
        "conversation_id": a.conversation_id,
        "starts_at": crate::calendar::format_time(a.starts_at, a.utc_offset_min),
        "duration_min": a.duration_min,
        "status": a.status,
        "reason": a.reason,
        "created_at": a.created_at,
        "updated_at": a.updated_at,
    })
}

fn callback(c: &CallbackExport) -> Value {
    json!({
        "id": c.id,
        "conversation_id": c.conversation_id,
        "phone": c.phone,
        "window_start": crate::calendar::format_time(c.window_start, 0),
        "window_end": crate::calendar::format_time(c.window_end, 0),
        "status": c.status,
        "created_at": c.created_at,
    })
}

fn attachment(a: &AttachmentExport) -> Value {
    json!({
        "id": a.id,
        "conversation_id": a.conversation_id,
        "session_id": a.session_id,
        "content_type": a.content_type,
        "size": a.size,
        "filename": a.filename,
        "content_base64": base64::engine::general_purpose::STANDARD.encode(&a.content[..]),
        "created_at": a.created_at,
    })
}
