//! Erasure orchestration: the tenant store (shred and delete, one
//! transaction with its audit record and receipt) and the erasure ledger in
//! the system store (outside the tenant's backup, so a restore re-applies
//! it). The ledger is noted first and withdrawn if the tenant side fails, so
//! a failed erasure leaves everything as it was; after success the WAL is
//! checkpointed with TRUNCATE so no old page of the patient survives there.

use std::sync::Mutex;

use base64::Engine as _;
use serde::Serialize;
use serde_json::json;

use crate::Error;
use store::ids::{CustomerId, TenantId};
use store::{AuditEntry, Erased, SystemStore, TenantStore};

/// Who asked: a channel (for a confirmed patient) or an operator.
#[derive(Clone, Debug)]
pub struct Requester<'a> {
    pub audit: AuditEntry<'a>,
    /// For the receipt: `channel:<serial>` or `operator:<name>`.
    pub label: String,
}

#[derive(Serialize)]
struct ReceiptBody<'a> {
    r#type: &'static str,
    tenant: &'a str,
    customer: &'a str,
    erased_at: i64,
    requested_by: &'a str,
    erased: &'a Erased,
    kept: &'static str,
}

/// Erases a patient and returns the signed receipt (JSON). A second erasure
/// of the same patient returns the first receipt.
pub fn erase(
    store: &mut TenantStore,
    ledger: &Mutex<SystemStore>,
    tenant: &TenantId,
    customer: &CustomerId,
    by: &Requester<'_>,
    now: i64,
) -> Result<String, Error> {
    {
        let tx = store.transaction()?;
        let done = tx.erasure_receipt(customer)?;
        if done.is_none() && !tx.customer_is_live(customer)? {
            return Err(Error::CustomerNotFound);
        }
        drop(tx);
        if let Some(receipt) = done {
            // A retry after a busy checkpoint finishes the job first.
            store.checkpoint_truncate()?;
            lock(ledger)?.ledger_complete(tenant, customer.as_str(), &receipt)?;
            return Ok(receipt);
        }
    }
    lock(ledger)?.ledger_pending(tenant, customer.as_str(), now)?;
    let receipt = match erase_in_store(store, tenant, customer, by, now) {
        Ok(r) => r,
        Err(e) => {
            let _ = lock(ledger).map(|l| l.ledger_abandon(tenant, customer.as_str()));
            return Err(e);
        }
    };
    store.checkpoint_truncate()?;
    lock(ledger)?.ledger_complete(tenant, customer.as_str(), &receipt)?;
    Ok(receipt)
}

fn erase_in_store(
    store: &mut TenantStore,
    tenant: &TenantId,
    customer: &CustomerId,
    by: &Requester<'_>,
    now: i64,
) -> Result<String, Error> {
    let tx = store.transaction()?;
    let erased = tx.erase_customer(customer, now)?;
    let body = ReceiptBody {
        r#type: "throughline-erasure-receipt/v1",
        tenant: tenant.as_str(),
        customer: customer.as_str(),
        erased_at: now,
        requested_by: &by.label,
        erased: &erased,
        kept: "audit records (pseudonymous ids and codes only, no PHI) and a tombstone of the patient id",
    };
    let body_json = serde_json::to_string(&body).map_err(|e| Error::Bench { message: e.to_string() })?;
    let signature = base64::engine::general_purpose::STANDARD.encode(tx.keys().sign(body_json.as_bytes()));
    let receipt = json!({"receipt": serde_json::from_str::<serde_json::Value>(&body_json).unwrap_or_default(), "signed": body_json, "signature": signature}).to_string();
    let id = format!("era_{}", uuid::Uuid::new_v4().simple());
    tx.record_erasure(&id, customer, &by.label, &receipt, now)?;
    let entry = AuditEntry {
        action: audit::Action::CustomerErase,
        customer_id: Some(customer.as_str()),
        tenant_id: Some(tenant.as_str()),
        reason: Some(&id),
        ..by.audit.clone()
    };
    tx.audit(&entry, now)?;
    tx.commit()?;
    Ok(receipt)
}

fn lock(m: &Mutex<SystemStore>) -> Result<std::sync::MutexGuard<'_, SystemStore>, Error> {
    m.lock().map_err(|_| Error::Poisoned)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use secrecy::SecretString;

    use crate::{Installation, SystemClock};
    use continuity::calendar::ClinicZone;
    use store::AuditEntry;
    use store::ids::TenantName;

    fn wal_bytes(dir: &std::path::Path) -> u64 {
        std::fs::read_dir(dir.join("tenants"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with("-wal"))
            .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    /// M6(b): a reader holding a snapshot from before the erasure (a CLI
    /// export, a backup) keeps the WAL's frames alive; the erasure commits,
    /// then reports busy rather than claiming the WAL is clean, and a
    /// retry once the reader is gone truncates it and returns the receipt.
    #[test]
    fn a_reader_holding_the_wal_makes_erasure_report_busy_until_a_retry() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("d");
        let pass = SecretString::from("test passphrase".to_owned());
        let kdf = crypto::KdfParams::new(19 * 1024, 2, 1).unwrap();
        let mut inst = Installation::init(&data, &pass, kdf, Arc::new(SystemClock)).unwrap();
        inst.create_tenant(&TenantName::parse("t").unwrap(), policy::StateTtl::default(), &ClinicZone::utc()).unwrap();
        let mut store = inst.open_tenant("t").unwrap();
        let now = crate::clock::Clock::now_ms(&SystemClock);
        let c = store
            .create_customer(
                "Maria Lopez",
                "1985-03-14",
                &AuditEntry::operator("test", audit::Action::CustomerCreate),
                now,
            )
            .unwrap();

        let reader = inst.open_tenant("t").unwrap();
        reader.begin_read().unwrap();
        let busy = inst.erase_customer("t", &c).unwrap_err();
        assert!(format!("{busy:?}").contains("CheckpointBusy"), "{busy:?}");
        assert!(wal_bytes(&data) > 0, "the WAL still holds frames while the reader lives");

        reader.end_read().unwrap();
        let receipt = inst.erase_customer("t", &c).unwrap();
        assert!(receipt.contains("throughline-erasure-receipt/v1"));
        assert_eq!(inst.erase_customer("t", &c).unwrap(), receipt, "the same receipt again");
        drop(reader);
        assert_eq!(wal_bytes(&data), 0, "truncated once nobody holds it");
    }
}
