//! What the resume context and every channel show of an appointment: the
//! time in the clinic's zone, read out as an agent would say it, and the
//! reason only where clinical data is released.

use policy::{Access, PhiClass};

use crate::ContinuityError;
use crate::calendar::ClinicZone;
use store::{AppointmentRow, TenantTx};

/// An appointment as a channel sees it.
#[derive(Clone)]
pub struct AppointmentView {
    pub id: String,
    /// RFC 3339 in the clinic's zone.
    pub starts_at: String,
    /// "Tuesday, March 16, 2027 at 2:00 PM PDT": what an agent reads out.
    pub local_time: String,
    /// The clinic's IANA zone.
    pub time_zone: String,
    pub duration_min: u32,
    pub status: String,
    /// Only where the channel may see clinical data.
    pub reason: Option<String>,
}

impl std::fmt::Debug for AppointmentView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AppointmentView({}, {}, reason [REDACTED])", self.id, self.status)
    }
}

pub(crate) fn view(
    tx: &TenantTx<'_>,
    zone: &ClinicZone,
    row: &AppointmentRow,
    a: &Access,
) -> Result<AppointmentView, ContinuityError> {
    let reason =
        if a.allows(PhiClass::Clinical) { tx.appointment_reason(row, a)?.map(|r| r.to_string()) } else { None };
    Ok(AppointmentView {
        id: row.id.clone(),
        starts_at: zone.rfc3339(row.starts_at),
        local_time: zone.render(row.starts_at),
        time_zone: zone.name().to_owned(),
        duration_min: row.duration_min,
        status: row.status.clone(),
        reason,
    })
}

/// The patient's upcoming appointments for a resume context.
pub(crate) fn upcoming(
    tx: &TenantTx<'_>,
    zone: &ClinicZone,
    customer: &store::ids::CustomerId,
    a: &Access,
    now: i64,
) -> Result<Vec<AppointmentView>, ContinuityError> {
    tx.upcoming_appointments(customer, now, a)?.iter().map(|r| view(tx, zone, r, a)).collect()
}
