//! Exports from the compliance console that verify on another machine, and
//! checking an uploaded export here. A search's export is a bundle
//! (`audit::bundle`): a checkpoint is signed first so it covers every
//! record, then each matching record goes with its inclusion proof. An
//! uploaded export (a bundle, or a whole-trail `audit export`) is checked
//! against this tenant's latest checkpoint and key.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use console::Screen;
use futures_util::StreamExt as _;

use super::audit_event::StaffEvent;
use super::audit_pages::{View, render};
use super::session::{Signed, admitted};
use super::{internal, page};
use crate::app::AppState;
use store::{AuditEntry, AuditFilter, StoreError};

/// Largest export accepted for checking (a year of a busy clinic is ~50 MiB).
const UPLOAD_LIMIT: usize = 64 * 1024 * 1024;

pub(super) async fn export(
    state: &web::Data<AppState>,
    signed: &Signed,
    mut filter: AuditFilter,
    filter_text: String,
    query_hmac: Option<String>,
) -> HttpResponse {
    let handle = match super::audit_event::tenant(state, &signed.tenant).await {
        Ok(h) => h,
        Err(e) => return internal(&e),
    };
    let now = state.clock.now_ms();
    let (staff, peer) = (signed.staff.id.clone(), signed.peer.clone());
    filter.limit = 1_000;
    let f = filter.clone();
    let built = handle
        .store
        .run_async(move |store| -> Result<(String, usize), StoreError> {
            let actor = AuditEntry {
                actor_kind: audit::ActorKind::Staff,
                actor: &staff,
                peer: peer.as_deref(),
                ..AuditEntry::operator(&staff, audit::Action::AuditCheckpoint)
            };
            store.sign_checkpoint(&actor, now)?;
            let (size, _, note) =
                store.latest_checkpoint()?.ok_or(StoreError::AuditInconsistent { reason: "no checkpoint".into() })?;
            let chain = store.audit_chain()?;
            let n = usize::try_from(size).unwrap_or(usize::MAX).min(chain.len());
            let leaves = audit::export::leaves(&chain[..n]);
            let tx = store.transaction()?;
            let picked: Vec<_> = tx.audit_search(&f)?.into_iter().filter(|(r, _)| r.seq <= size).collect();
            tx.commit()?;
            let seqs: Vec<u64> = picked.iter().map(|(r, _)| r.seq).collect();
            let signature = store.sign_bundle_manifest(size, &filter_text, &seqs)?;
            let mut out = audit::bundle::header(&note, &filter_text, &seqs, &signature);
            for (r, h) in &picked {
                let i = usize::try_from(r.seq.saturating_sub(1)).unwrap_or(0);
                out.push('\n');
                out.push_str(&audit::bundle::line(r, h, &audit::merkle::inclusion_proof(&leaves, i)));
            }
            out.push('\n');
            Ok((out, picked.len()))
        })
        .await;
    let (body, count) = match built {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return internal(&e),
        Err(e) => return internal(&e),
    };
    let mut ev = signed.event(audit::Action::AuditExport);
    ev.reason = Some(format!("bundle:{count}"));
    ev.query_hmac = query_hmac;
    ev.subjects = filter.customer.iter().filter(|c| c.as_str() != "cus_none").cloned().collect();
    if let Err(e) = super::audit_event::record(state, &signed.tenant, ev).await {
        return internal(&e);
    }
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"audit-{}-{count}.jsonl\"", signed.tenant),
        ))
        .body(body)
}

/// The latest checkpoint note, to keep or carry to another machine.
pub async fn checkpoint(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let signed = match admitted(&req, &state, Some(Screen::Audit), None).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let handle = match super::audit_event::tenant(&state, &signed.tenant).await {
        Ok(h) => h,
        Err(e) => return internal(&e),
    };
    let note = match handle.store.run_async(|store| store.latest_checkpoint()).await {
        Ok(Ok(Some((_, _, note)))) => note,
        Ok(Ok(None)) => {
            return page(StatusCode::NOT_FOUND, &super::forbidden_page("No checkpoint has been signed yet."));
        }
        Ok(Err(e)) => return internal(&e),
        Err(e) => return internal(&e),
    };
    let mut ev = signed.event(audit::Action::AuditExport);
    ev.reason = Some("checkpoint".into());
    if let Err(e) = super::audit_event::record(&state, &signed.tenant, ev).await {
        return internal(&e);
    }
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header(("content-disposition", format!("attachment; filename=\"checkpoint-{}.txt\"", signed.tenant)))
        .body(note)
}

/// What checking an uploaded export found: (ok, what to say, reason code).
fn check(bytes: &[u8], note: Option<&str>, key: &audit::VerifierKey) -> (bool, String, String) {
    if audit::bundle::is_bundle(bytes) {
        return match audit::bundle::verify(bytes, key) {
            Ok(v) => (
                true,
                format!(
                    "{} records, each unchanged and in the signed checkpoint at record {}; {}",
                    v.records,
                    v.checkpoint_size,
                    if v.complete {
                        "exactly the records the signed search found (none dropped, repeated or added)."
                    } else {
                        "this file has no signed list of records, so it cannot show that none were left out."
                    }
                ),
                "bundle".into(),
            ),
            Err(e) => (false, format!("does not verify: {e}."), "bundle_broken".into()),
        };
    }
    let records = match audit::export::parse_jsonl(bytes) {
        Ok(r) => r,
        Err(e) => return (false, format!("is not an audit export: {e}."), "not_an_export".into()),
    };
    match audit::export::verify(&records, note.map(|n| (n, key))) {
        Ok(v) => (
            true,
            match v.checkpoint_size {
                Some(k) if k > 0 => format!(
                    "{} records verified as one chain; the first {k} are anchored by the signed checkpoint, \
                     the last {} are not (a later checkpoint would anchor them).",
                    v.records,
                    v.records.saturating_sub(k)
                ),
                _ => format!(
                    "{} records verified as one chain, but no signed checkpoint anchors them: \
                     a whole rewritten trail would verify too.",
                    v.records
                ),
            },
            "export".into(),
        ),
        Err(e) => (false, format!("does not verify: {e}."), "export_broken".into()),
    }
}

pub async fn verify(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut form: actix_multipart::Multipart,
) -> HttpResponse {
    let signed = match admitted(&req, &state, Some(Screen::Audit), None).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (mut csrf, mut file) = (String::new(), Vec::new());
    while let Some(Ok(mut field)) = form.next().await {
        let name = field.name().unwrap_or_default().to_owned();
        let mut data = Vec::new();
        while let Some(chunk) = field.next().await {
            let Ok(chunk) = chunk else { return internal(&"upload interrupted") };
            if data.len() + chunk.len() > UPLOAD_LIMIT {
                return page(StatusCode::PAYLOAD_TOO_LARGE, &super::forbidden_page("The file is larger than 64 MiB."));
            }
            data.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "csrf" => csrf = String::from_utf8_lossy(&data).into_owned(),
            "file" => file = data,
            _ => {}
        }
    }
    if let Err(r) = signed.check_csrf(&csrf) {
        return r;
    }
    let handle = match super::audit_event::tenant(&state, &signed.tenant).await {
        Ok(h) => h,
        Err(e) => return internal(&e),
    };
    let facts =
        handle.store.run_async(|store| Ok::<_, StoreError>((store.latest_checkpoint()?, store.integrity()?))).await;
    let (latest, integrity) = match facts {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return internal(&e),
        Err(e) => return internal(&e),
    };
    let Ok(key) = audit::VerifierKey::parse(&integrity.verifier_key) else { return internal(&"verifier key") };
    let (ok, said, reason) = web::block(move || check(&file, latest.as_ref().map(|(_, _, n)| n.as_str()), &key))
        .await
        .unwrap_or((false, "could not be checked.".into(), "error".into()));
    let mut ev: StaffEvent = signed.event(audit::Action::AuditVerify);
    ev.reason = Some(reason);
    if !ok {
        ev.outcome = audit::Outcome::Failed;
    }
    let view = View {
        title: "Audit trail".into(),
        note: None,
        query: Default::default(),
        filter: AuditFilter { limit: 50, ..Default::default() },
        verified: Some((ok, said)),
    };
    render(&state, &signed, view, ev).await
}
