//! A staff member's audit record as the console writes it: the person
//! (`stf_…`), their role, the purpose of use and, for list pages, every
//! patient shown. Page handlers write theirs inside the transaction that
//! reads; [`record`] is for events with no read (logins, logoffs, refusals).

use std::sync::Arc;

use actix_web::web;
use audit::Outcome;

use crate::app::AppState;
use crate::tenants::TenantHandle;
use store::ids::TenantId;
use store::{AuditEntry, StaffFields, StoreError, TenantTx};

/// Everything a staff audit record says.
#[derive(Clone, Debug)]
pub struct StaffEvent {
    /// `Staff`, or `System` for what Throughline does on its own (an alert mail).
    pub kind: audit::ActorKind,
    pub staff_id: String,
    pub role: String,
    pub purpose: &'static str,
    pub action: audit::Action,
    pub outcome: Outcome,
    pub reason: Option<String>,
    pub customer: Option<String>,
    pub session: Option<String>,
    pub subjects: Vec<String>,
    pub query_hmac: Option<String>,
    pub break_glass: Option<String>,
    pub peer: Option<String>,
}

impl StaffEvent {
    pub fn new(staff_id: &str, role: &str, purpose: &'static str, action: audit::Action) -> Self {
        StaffEvent {
            kind: audit::ActorKind::Staff,
            staff_id: staff_id.to_owned(),
            role: role.to_owned(),
            purpose,
            action,
            outcome: Outcome::Ok,
            reason: None,
            customer: None,
            session: None,
            subjects: Vec::new(),
            query_hmac: None,
            break_glass: None,
            peer: None,
        }
    }

    pub fn refused(mut self, reason: &str) -> Self {
        self.outcome = Outcome::Refused;
        self.reason = Some(reason.to_owned());
        self
    }

    /// Writes the record in `tx` (the caller commits it with the read).
    pub fn write(&self, tx: &TenantTx<'_>, now: i64) -> Result<(), StoreError> {
        let tenant_id = tx.keys().tenant_id().to_owned();
        let entry = AuditEntry {
            actor_kind: self.kind,
            actor: &self.staff_id,
            channel: None,
            action: self.action,
            tenant_id: Some(&tenant_id),
            customer_id: self.customer.as_deref(),
            session_id: self.session.as_deref(),
            peer: self.peer.as_deref(),
            outcome: self.outcome,
            reason: self.reason.as_deref(),
        };
        let fields = StaffFields {
            role: Some(&self.role),
            purpose: Some(self.purpose),
            break_glass: self.break_glass.as_deref(),
            subjects: &self.subjects,
            query_hmac: self.query_hmac.as_deref(),
        };
        tx.audit_staff(&entry, &fields, now)?;
        Ok(())
    }
}

/// The tenant's open store (opened on the blocking pool on first use).
pub async fn tenant(state: &web::Data<AppState>, id: &TenantId) -> Result<Arc<TenantHandle>, crate::Error> {
    if let Some(h) = state.tenants.get_open(id)? {
        return Ok(h);
    }
    let state = state.clone();
    let id = id.clone();
    web::block(move || state.tenants.get(&id)).await.map_err(|_| crate::Error::Poisoned)?
}

/// Runs `op` in one transaction of the tenant's store (group commit).
pub async fn in_tenant<T, F>(state: &web::Data<AppState>, id: &TenantId, op: F) -> Result<T, crate::Error>
where
    T: Send + 'static,
    F: FnOnce(&TenantTx<'_>, &continuity::TenantSettings) -> Result<T, StoreError> + Send + 'static,
{
    let handle = tenant(state, id).await?;
    let settings = handle.settings.clone();
    let out = handle
        .store
        .run_async(move |store| -> Result<T, StoreError> {
            let tx = store.transaction()?;
            let out = op(&tx, &settings)?;
            tx.commit()?;
            Ok(out)
        })
        .await?;
    Ok(out?)
}

/// Records an event that reads nothing.
pub async fn record(state: &web::Data<AppState>, tenant: &TenantId, ev: StaffEvent) -> Result<(), crate::Error> {
    let now = state.clock.now_ms();
    in_tenant(state, tenant, move |tx, _| ev.write(tx, now)).await
}
