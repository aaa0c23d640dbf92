//! Appointments: booked in a session, rescheduled or cancelled from any
//! later session of the same patient. Times are scheduling data; the reason
//! for the visit is clinical and is neither written nor shown where the
//! channel's policy does not release clinical data (email sees the time,
//! not the reason).

use policy::PhiClass;

use super::{format_time, limits, parse_time};
use crate::calendar::{ClinicZone, OffsetCheck, check_offset, offset_text};
use crate::{Actor, ContinuityError, TenantSettings, access, audit, open_row, refuse, writable};
use store::ids::SessionId;
use store::{NewAppointment, TenantStore};

pub use crate::appointment_view::AppointmentView;
use crate::appointment_view::view;

#[derive(Clone, Debug)]
pub struct BookRequest {
    /// RFC 3339 with the clinic's offset at that time (DST applied), e.g.
    /// `2027-03-16T14:00:00-07:00` for Los Angeles, or in UTC (`Z`). Any other
    /// offset is refused (`offset_mismatch`): see `calendar::check_offset`.
    pub starts_at: String,
    pub duration_min: Option<u32>,
    pub reason: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ChangeRequest {
    /// The caller's session with the patient (policy is decided for it).
    pub session_id: String,
    pub starts_at: Option<String>,
    pub duration_min: Option<u32>,
    /// `cancelled` to cancel, `booked` to restore a cancelled one.
    pub status: Option<String>,
}

fn check_duration(d: Option<u32>) -> Result<u32, ContinuityError> {
    let d = d.unwrap_or(30);
    if (5..=480).contains(&d) {
        Ok(d)
    } else {
        Err(ContinuityError::bad("invalid_duration", "duration_min must be 5 to 480"))
    }
}

/// A future time, in the clinic's offset or UTC (`calendar::check_offset`):
/// the instant and the clinic's offset then.
fn future(zone: &ClinicZone, field: &'static str, raw: &str, now: i64) -> Result<(i64, i32), ContinuityError> {
    let (at, given) = parse_time(field, raw)?;
    let out_of_range = || ContinuityError::bad("invalid_time", format!("{field} is out of range"));
    match check_offset(zone, at, given).map_err(|_| out_of_range())? {
        OffsetCheck::Accepted { offset_min } => {
            if at <= now {
                return Err(ContinuityError::bad("appointment_in_past", format!("{field} must be in the future")));
            }
            Ok((at, offset_min))
        }
        OffsetCheck::Mismatch { clinic_offset_min } => Err(ContinuityError::bad(
            "offset_mismatch",
            format!(
                "{field} has offset {} but the clinic ({}) is at {} then: write {} (or the time in UTC)",
                offset_text(given),
                zone.name(),
                offset_text(clinic_offset_min),
                format_time(at, clinic_offset_min)
            ),
        )),
    }
}

/// `POST /v1/sessions/{id}/appointments`.
pub fn book(
    store: &mut TenantStore,
    settings: &TenantSettings,
    actor: &Actor,
    session: &SessionId,
    req: &BookRequest,
    now: i64,
) -> Result<AppointmentView, ContinuityError> {
    let (starts_at, utc_offset_min) = future(&settings.zone, "starts_at", &req.starts_at, now)?;
    let duration_min = check_duration(req.duration_min)?;
    let reason = req.reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.len() > limits::REASON_BYTES) {
        return Err(ContinuityError::bad("invalid_reason", "reason is at most 1 KiB"));
    }
    let tx = store.transaction()?;
    let row = open_row(&tx, actor, session, now)?;
    let (customer, conversation) = match writable(settings, &row, PhiClass::Scheduling, now) {
        Ok(found) => found,
        Err(e) => return refuse(tx, actor, &row, audit::Action::AppointmentBook, e, now),
    };
    let (decision, _) = access(settings, &row, now);
    if reason.is_some() && !decision.access.allows(PhiClass::Clinical) {
        let e = ContinuityError::forbidden(
            "phi_class_not_allowed",
            format!("the {} channel may not record clinical data (the reason for the visit)", row.channel),
        );
        return refuse(tx, actor, &row, audit::Action::AppointmentBook, e, now);
    }
    let id = format!("apt_{}", uuid::Uuid::new_v4().simple());
    tx.mark_booking_intent(session)?;
    tx.insert_appointment(
        &NewAppointment {
            id: &id,
            customer: &customer,
            conversation: &conversation,
            session,
            starts_at,
            utc_offset_min,
            duration_min,
            reason,
        },
        now,
    )?;
    tx.touch_conversation(&conversation, now)?;
    audit(&tx, actor, audit::Action::AppointmentBook, Some(&customer), session, Some(&id), now)?;
    let stored = tx.appointment(&id)?.ok_or_else(not_found)?;
    let out = view(&tx, &settings.zone, &stored, &decision.access)?;
    tx.commit()?;
    Ok(out)
}

fn not_found() -> ContinuityError {
    ContinuityError::Missing { code: "appointment_not_found", message: "no such appointment for this patient".into() }
}

/// `PATCH /v1/appointments/{id}`: reschedule, change the length, cancel or
/// restore, from a session with the same patient.
pub fn change(
    store: &mut TenantStore,
    settings: &TenantSettings,
    actor: &Actor,
    appointment: &str,
    req: &ChangeRequest,
    now: i64,
) -> Result<AppointmentView, ContinuityError> {
    let session = SessionId::parse(&req.session_id).ok_or_else(ContinuityError::session_not_found)?;
    let new_time = req.starts_at.as_deref().map(|s| future(&settings.zone, "starts_at", s, now)).transpose()?;
    let new_duration = req.duration_min.map(|d| check_duration(Some(d))).transpose()?;
    let new_status = match req.status.as_deref() {
        None => None,
        Some(s @ ("booked" | "cancelled")) => Some(s.to_owned()),
        Some(_) => return Err(ContinuityError::bad("invalid_status", "status must be booked or cancelled")),
    };
    if new_time.is_none() && new_duration.is_none() && new_status.is_none() {
        return Err(ContinuityError::bad("empty_patch", "give starts_at, duration_min and/or status"));
    }
    let tx = store.transaction()?;
    let row = open_row(&tx, actor, &session, now)?;
    let (customer, conversation) = match writable(settings, &row, PhiClass::Scheduling, now) {
        Ok(found) => found,
        Err(e) => return refuse(tx, actor, &row, audit::Action::AppointmentChange, e, now),
    };
    // Another patient's appointment and a made-up id look alike.
    let mut apt = tx.appointment(appointment)?.filter(|a| a.customer_id == customer).ok_or_else(not_found)?;
    let action = match (&new_status, new_time) {
        (Some(s), _) if s == "cancelled" => audit::Action::AppointmentCancel,
        (_, Some(_)) => audit::Action::AppointmentReschedule,
        _ => audit::Action::AppointmentChange,
    };
    if let Some((at, offset)) = new_time {
        apt.starts_at = at;
        apt.utc_offset_min = offset;
    }
    if let Some(d) = new_duration {
        apt.duration_min = d;
    }
    if let Some(s) = new_status {
        apt.status = s;
    }
    tx.update_appointment(&apt, now)?;
    tx.touch_conversation(&conversation, now)?;
    audit(&tx, actor, action, Some(&customer), &session, Some(&apt.id), now)?;
    let (decision, _) = access(settings, &row, now);
    let out = view(&tx, &settings.zone, &apt, &decision.access)?;
    tx.commit()?;
    Ok(out)
}
