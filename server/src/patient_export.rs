//! The right-of-access export (GDPR Art. 15/20): a machine-readable JSON
//! document of everything held about one patient, including the audit
//! records about them. PHI parts appear only where the `Access` allows (the
//! channel's post-confirmation view, or the staff console's full view); what
//! is left out is listed in `withheld`. The export itself is audited.

use policy::{Access, PhiClass};
use serde_json::{Value, json};

use crate::ids::CustomerId;
use crate::store::{AuditEntry, StoreError, TenantTx};

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
        action: "customer.export",
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
        "appointments": tx.export_appointments(customer, access)?,
        "callbacks": tx.export_callbacks(customer, access)?,
        "attachments": tx.export_attachments(customer, access)?,
        "audit": audit,
    });
    Ok(doc)
}

fn non_empty(s: &str) -> Value {
    if s.is_empty() { Value::Null } else { Value::String(s.to_owned()) }
}
