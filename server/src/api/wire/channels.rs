//! The channels' wire types: appointments, callbacks and email.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ResumeContext;

/// An appointment's status.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum AppointmentStatus {
    Booked,
    Cancelled,
}

/// An appointment as a channel sees it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Appointment)]
pub struct AppointmentOut {
    #[schema(pattern = "^apt_[0-9a-f]{32}$")]
    pub id: String,
    /// In the clinic's zone.
    #[schema(format = DateTime)]
    pub starts_at: String,
    /// As a person reads it, e.g. 'Tuesday, March 16, 2027 at 2:00 PM PDT'.
    pub local_time: String,
    /// The clinic's IANA zone, e.g. America/Los_Angeles.
    pub time_zone: String,
    #[schema(minimum = 5, maximum = 480)]
    pub duration_min: u32,
    #[schema(value_type = AppointmentStatus)]
    pub status: String,
    /// Only where the channel may see clinical data.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub reason: Option<String>,
}

impl From<continuity::channels::AppointmentView> for AppointmentOut {
    fn from(d: continuity::channels::AppointmentView) -> Self {
        AppointmentOut {
            id: d.id,
            starts_at: d.starts_at,
            local_time: d.local_time,
            time_zone: d.time_zone,
            duration_min: d.duration_min,
            status: d.status,
            reason: d.reason,
        }
    }
}

/// `POST /v1/sessions/{id}/appointments`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookAppointment {
    /// RFC 3339 in the clinic's offset at that time (DST applied) or in
    /// UTC; any other offset is 400 offset_mismatch.
    #[schema(format = DateTime)]
    pub starts_at: String,
    #[schema(minimum = 5, maximum = 480, default = 30)]
    pub duration_min: Option<u32>,
    /// Clinical data: refused where the channel may not record it.
    #[schema(max_length = 1024)]
    pub reason: Option<String>,
}

impl From<BookAppointment> for continuity::channels::BookRequest {
    fn from(w: BookAppointment) -> Self {
        continuity::channels::BookRequest { starts_at: w.starts_at, duration_min: w.duration_min, reason: w.reason }
    }
}

/// `PATCH /v1/appointments/{id}` (at least one change besides the session).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeAppointment {
    /// The caller's session with the patient.
    #[schema(pattern = "^ses_[0-9a-f]{32}$")]
    pub session_id: String,
    /// RFC 3339 in the clinic's offset at that time (DST applied) or in
    /// UTC; any other offset is 400 offset_mismatch.
    #[schema(format = DateTime)]
    pub starts_at: Option<String>,
    #[schema(minimum = 5, maximum = 480)]
    pub duration_min: Option<u32>,
    /// `cancelled` to cancel, `booked` to restore a cancelled one.
    #[schema(value_type = Option<AppointmentStatus>)]
    pub status: Option<String>,
}

impl From<ChangeAppointment> for continuity::channels::ChangeRequest {
    fn from(w: ChangeAppointment) -> Self {
        continuity::channels::ChangeRequest {
            session_id: w.session_id,
            starts_at: w.starts_at,
            duration_min: w.duration_min,
            status: w.status,
        }
    }
}

/// `POST /v1/sessions/{id}/callbacks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestCallback {
    /// Any common format; the patient's most recent number when left out.
    pub phone: Option<String>,
    /// RFC 3339 in the clinic's offset at that time (DST applied) or in
    /// UTC; any other offset is 400 offset_mismatch.
    #[schema(format = DateTime)]
    pub window_start: String,
    /// RFC 3339 in the clinic's offset at that time (DST applied) or in
    /// UTC; any other offset is 400 offset_mismatch.
    #[schema(format = DateTime)]
    pub window_end: String,
}

impl From<RequestCallback> for continuity::channels::CallbackRequest {
    fn from(w: RequestCallback) -> Self {
        continuity::channels::CallbackRequest { phone: w.phone, window_start: w.window_start, window_end: w.window_end }
    }
}

/// A callback's status when requested.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum CallbackStatus {
    Pending,
}

/// A callback request.
#[derive(Debug, Serialize, ToSchema)]
pub struct Callback {
    #[schema(pattern = "^cb_[0-9a-f]{32}$")]
    pub id: String,
    #[schema(value_type = CallbackStatus)]
    pub status: &'static str,
    #[schema(format = DateTime)]
    pub window_start: String,
    #[schema(format = DateTime)]
    pub window_end: String,
}

impl From<continuity::channels::CallbackView> for Callback {
    fn from(d: continuity::channels::CallbackView) -> Self {
        Callback { id: d.id, status: d.status, window_start: d.window_start, window_end: d.window_end }
    }
}

/// The callback a voice integration claimed, exclusively, for a while.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimedCallback {
    pub id: String,
    /// E.164, the number to dial.
    pub phone: String,
    #[schema(format = DateTime)]
    pub window_start: String,
    #[schema(format = DateTime)]
    pub window_end: String,
    #[schema(format = DateTime)]
    pub claim_expires_at: String,
}

/// `POST /v1/callbacks/claim`: the due callback and the session opened for it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallbackClaim {
    pub callback: ClaimedCallback,
    pub context: ResumeContext,
}

impl From<continuity::channels::Claim> for CallbackClaim {
    fn from(d: continuity::channels::Claim) -> Self {
        let c = d.callback;
        CallbackClaim {
            callback: ClaimedCallback {
                id: c.id,
                phone: c.phone,
                window_start: c.window_start,
                window_end: c.window_end,
                claim_expires_at: c.claim_expires_at,
            },
            context: d.context.into(),
        }
    }
}

/// How an inbound message found its conversation.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ThreadedBy {
    InReplyTo,
    References,
    Sender,
    New,
    Duplicate,
}

/// What the Authentication-Results of a trusted authserv-id said.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum SenderEvidence {
    DmarcPass,
    DkimAlignedPass,
    NotAuthenticated,
    NoTrustedHeader,
}

/// An attachment kept, sealed.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentAck {
    pub id: String,
    pub content_type: String,
    pub size: u64,
}

/// `POST /v1/email/inbound`: what the email gateway gets back.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmailInbound {
    pub session_id: String,
    /// Delivered before by this integration (the same bytes).
    pub duplicate: bool,
    #[schema(value_type = ThreadedBy)]
    pub threaded_by: &'static str,
    /// The message answered another patient's thread: not merged.
    pub thread_sender_mismatch: bool,
    /// Written into the conversation: only for a sender asserted by
    /// evidence with nothing to confirm.
    pub stored: bool,
    /// Not written into the conversation (sender not authenticated, address
    /// shared, or confirmation pending): kept sealed for staff review.
    pub held_for_review: bool,
    /// What the Authentication-Results of a trusted authserv-id said about the From domain.
    #[schema(value_type = SenderEvidence)]
    pub sender_evidence: &'static str,
    #[schema(required)]
    pub turn_id: Option<i64>,
    pub attachments: Vec<AttachmentAck>,
    pub context: ResumeContext,
}

impl From<continuity::channels::email::Inbound> for EmailInbound {
    fn from(d: continuity::channels::email::Inbound) -> Self {
        EmailInbound {
            session_id: d.session_id,
            duplicate: d.duplicate,
            threaded_by: d.threaded_by,
            thread_sender_mismatch: d.thread_sender_mismatch,
            stored: d.stored,
            held_for_review: d.held_for_review,
            sender_evidence: d.sender_evidence,
            turn_id: d.turn_id,
            attachments: d
                .attachments
                .into_iter()
                .map(|a| AttachmentAck { id: a.id, content_type: a.content_type, size: a.size as u64 })
                .collect(),
            context: d.context.into(),
        }
    }
}

/// `POST /v1/sessions/{id}/email/outbound`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailOutbound {
    /// The patient's most recent address when left out.
    #[schema(format = Email)]
    pub to: Option<String>,
    #[schema(min_length = 1, max_length = 200)]
    pub subject: String,
    #[schema(min_length = 1, max_length = 16384)]
    pub text: String,
    /// Its time (never its reason) is written into the message.
    pub appointment_id: Option<String>,
    /// A Message-ID of this conversation.
    pub in_reply_to: Option<String>,
}

impl From<EmailOutbound> for continuity::channels::email::OutboundRequest {
    fn from(w: EmailOutbound) -> Self {
        continuity::channels::email::OutboundRequest {
            to: w.to,
            subject: w.subject,
            text: w.text,
            appointment_id: w.appointment_id,
            in_reply_to: w.in_reply_to,
        }
    }
}

/// How an outbound message leaves.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum OutboundDelivery {
    Smtp,
    Gateway,
}

/// A composed message: sent through the tenant's relay, or handed back.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmailOutboundResult {
    /// Without angle brackets.
    pub message_id: String,
    pub to: String,
    /// `smtp` (sent through the tenant's relay) or `gateway` (in `raw`, for
    /// the caller's email gateway to send).
    #[schema(value_type = OutboundDelivery)]
    pub delivery: &'static str,
    /// The RFC 5322 message, for the gateway to send (delivery gateway only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub raw: Option<String>,
}
