//! The sessions' wire types: what an integration sends to open, confirm,
//! write into and end a session, and what it gets back. Each request type
//! converts into the domain's; each response type is made from the
//! domain's. The OpenAPI schemas are derived from these (utoipa).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AppointmentOut, Channel, PhiClassName};

/// The identifiers an integration offers: at least one. Priority: phone,
/// email, auth, cookie; a resume token stands for the patient it was
/// issued to.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Identifiers {
    /// Any common format; read with the tenant's default region; normalised to E.164.
    pub phone: Option<String>,
    /// Surrounding spaces trimmed, domain lowercased, local part kept.
    pub email: Option<String>,
    /// The clinic's login subject (proof of possession).
    #[schema(min_length = 1, max_length = 256)]
    pub auth: Option<String>,
    /// Opaque browser cookie set by the chat backend.
    #[schema(min_length = 16, max_length = 256, pattern = "^[A-Za-z0-9._~-]+$")]
    pub cookie: Option<String>,
    /// From POST /v1/sessions/{id}/resume-token.
    pub resume_token: Option<String>,
}

/// STIR/SHAKEN attestation (Twilio's `StirVerstat`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub enum Attestation {
    A,
    B,
    C,
}

/// What the voice or SMS integration knows about caller ID (400
/// evidence_not_allowed elsewhere).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// STIR/SHAKEN attestation from the carrier (Twilio StirVerstat); with
    /// the tenant's default evidence policy only A makes caller ID asserted.
    #[schema(value_type = Option<Attestation>)]
    pub caller_id_attestation: Option<String>,
}

/// `POST /v1/sessions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenSession {
    pub identifiers: Identifiers,
    /// Call id, chat id or Message-ID; opening twice with the same one by
    /// the same certificate returns the same session while it is open (409
    /// external_ref_conflict for another certificate, 409 session_ended
    /// once it ended).
    #[schema(min_length = 1, max_length = 256)]
    pub external_ref: Option<String>,
    pub evidence: Option<Evidence>,
}

impl From<OpenSession> for continuity::OpenRequest {
    fn from(w: OpenSession) -> Self {
        let i = w.identifiers;
        continuity::OpenRequest {
            identifiers: continuity::Offered {
                phone: i.phone,
                email: i.email,
                auth: i.auth,
                cookie: i.cookie,
                resume_token: i.resume_token,
            },
            external_ref: w.external_ref,
            evidence: w
                .evidence
                .map(|e| continuity::EvidenceRequest { caller_id_attestation: e.caller_id_attestation }),
        }
    }
}

/// `POST /v1/sessions/{id}/identity/confirm`: the fields the tenant
/// confirms with, or a one-time code.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Confirm {
    /// YYYY-MM-DD.
    #[schema(format = Date)]
    pub date_of_birth: Option<String>,
    /// Full name, when the tenant confirms with name too.
    pub name: Option<String>,
    /// The one-time code of identity/challenge, instead of the fields:
    /// confirms with possession strength.
    #[schema(pattern = "^[0-9]{6}$")]
    pub code: Option<String>,
}

impl From<Confirm> for continuity::ConfirmRequest {
    fn from(w: Confirm) -> Self {
        continuity::ConfirmRequest { date_of_birth: w.date_of_birth, name: w.name, code: w.code }
    }
}

/// Where a one-time code goes.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum Via {
    Email,
    Sms,
}

/// `POST /v1/sessions/{id}/identity/challenge`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Challenge {
    #[schema(value_type = Via)]
    pub via: String,
}

impl From<Challenge> for continuity::challenge::ChallengeRequest {
    fn from(w: Challenge) -> Self {
        continuity::challenge::ChallengeRequest { via: w.via }
    }
}

/// How a one-time code went out.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum Delivery {
    Smtp,
    Gateway,
    Sms,
    None,
    Unavailable,
}

/// A text for the SMS integration to send.
#[derive(Debug, Serialize, ToSchema)]
pub struct SmsOut {
    pub to: String,
    pub text: String,
}

/// A one-time code was made (and sent, or handed to the gateway).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChallengeSent {
    pub session_id: String,
    #[schema(value_type = Via)]
    pub via: &'static str,
    /// Unix ms; a code lasts 10 minutes.
    pub expires_at: i64,
    /// smtp: sent through the tenant's relay (the same answer when nobody
    /// is on file); gateway: the message is in raw; sms: in sms; none:
    /// nothing on file to send to. Never show raw or sms to the person in
    /// the session. A chat integration gets only smtp or unavailable, the
    /// same whoever is on file.
    #[schema(value_type = Delivery)]
    pub delivery: &'static str,
    /// The RFC 5322 message for the email gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms: Option<SmsOut>,
}

impl From<continuity::challenge::ChallengeSent> for ChallengeSent {
    fn from(d: continuity::challenge::ChallengeSent) -> Self {
        ChallengeSent {
            session_id: d.session_id,
            via: d.via,
            expires_at: d.expires_at,
            delivery: d.delivery,
            raw: d.raw,
            sms: d.sms.map(|s| SmsOut { to: s.to, text: s.text }),
        }
    }
}

/// `PATCH /v1/sessions/{id}/customer`: intake (at least one field).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerPatch {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[schema(format = Date)]
    pub date_of_birth: Option<String>,
}

impl From<CustomerPatch> for continuity::CustomerPatch {
    fn from(w: CustomerPatch) -> Self {
        continuity::CustomerPatch { name: w.name, date_of_birth: w.date_of_birth }
    }
}

/// Who said a turn.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum Speaker {
    Patient,
    Agent,
    Staff,
}

/// `POST /v1/sessions/{id}/turns`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    #[schema(value_type = Speaker)]
    pub speaker: String,
    #[schema(min_length = 1, max_length = 16384)]
    pub text: String,
    #[schema(min_length = 1, max_length = 256)]
    #[serde(default)]
    pub external_ref: Option<String>,
    /// Keep the turn for staff review instead of writing it (202).
    #[serde(default)]
    pub hold: bool,
}

impl From<Turn> for continuity::TurnRequest {
    fn from(w: Turn) -> Self {
        continuity::TurnRequest { speaker: w.speaker, text: w.text, external_ref: w.external_ref, hold: w.hold }
    }
}

/// `PUT /v1/sessions/{id}/state/{key}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StateValue {
    #[schema(max_length = 4096)]
    pub value: String,
}

impl From<StateValue> for continuity::StateValue {
    fn from(w: StateValue) -> Self {
        continuity::StateValue { value: w.value }
    }
}

/// How a session ended.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum EndReason {
    Completed,
    Dropped,
    Transferred,
}

/// `POST /v1/sessions/{id}/end`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct End {
    #[schema(value_type = EndReason)]
    pub reason: String,
}

impl From<End> for continuity::EndRequest {
    fn from(w: End) -> Self {
        continuity::EndRequest { reason: w.reason }
    }
}

/// What a write into a session answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ack {
    pub session_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Unix milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume_token: Option<String>,
    /// The turn was kept for staff review, not written (`hold`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<bool>,
    /// On `end`: a call that ended dropped, or with a `pending_*` state key
    /// still set (docs/OUTCOMES.md, "interrupted").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<bool>,
    /// On `end` of an interrupted call under the tenant's recovery policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery: Option<Recovery>,
}

/// What the recovery policy did with an interrupted call (docs/OUTCOMES.md).
#[derive(Debug, Serialize, ToSchema)]
pub struct Recovery {
    /// `sent`: text `link` to the number that called; `holdout`: send nothing.
    #[schema(value_type = RecoveryArm)]
    pub arm: &'static str,
    /// The resume link (its single-use token after `#`), in the `sent` arm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The callback queued to the verified number on file, in the `sent` arm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback: Option<String>,
}

#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum RecoveryArm {
    Sent,
    Holdout,
}

impl From<continuity::Ack> for Ack {
    fn from(d: continuity::Ack) -> Self {
        Ack {
            session_id: d.session_id,
            turn_id: d.turn_id,
            key: d.key,
            expires_at: d.expires_at,
            ended_reason: d.ended_reason,
            resume_token: d.resume_token,
            held: d.held,
            interrupted: d.interrupted,
            recovery: d.recovery.map(|r| Recovery { arm: r.arm.as_str(), link: r.link, callback: r.callback }),
        }
    }
}

/// How the session's patient was found.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum Status {
    Resolved,
    Ambiguous,
    New,
}

/// How far the resolving identifier can be trusted.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum Strength {
    Claim,
    Asserted,
    Possession,
}

/// A field identity is confirmed with.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ConfirmField {
    DateOfBirth,
    Name,
}

/// Who the session is about, and how sure.
#[derive(Debug, Serialize, ToSchema)]
pub struct Identity {
    #[schema(value_type = Status)]
    pub status: &'static str,
    #[schema(value_type = Strength)]
    pub strength: &'static str,
    pub confirmed: bool,
    /// Empty when no confirmation is needed.
    #[schema(value_type = Vec<ConfirmField>)]
    pub confirm_with: Vec<&'static str>,
    /// Too many failed confirmations.
    pub locked: bool,
    /// How many patients share the identifier (ambiguous only); never who.
    #[schema(minimum = 0)]
    pub candidates: u64,
}

/// PHI class identity.
#[derive(Debug, Serialize, ToSchema)]
pub struct Patient {
    pub name: Option<String>,
    #[schema(format = Date)]
    pub date_of_birth: Option<String>,
}

/// One turn of the conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct TurnOut {
    pub channel: String,
    #[schema(value_type = Speaker)]
    pub speaker: String,
    pub text: String,
    /// Unix milliseconds.
    pub at: i64,
}

/// What an integration needs to carry on the conversation, released as the
/// tenant's policy allows for this session.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResumeContext {
    #[schema(pattern = "^ses_[0-9a-f]{32}$")]
    pub session_id: String,
    /// Pseudonymous patient id; null while ambiguous.
    #[schema(required)]
    pub customer_id: Option<String>,
    /// The patient's one open conversation; null while ambiguous.
    #[schema(required)]
    pub conversation_id: Option<String>,
    #[schema(value_type = Channel)]
    pub channel: &'static str,
    pub identity: Identity,
    /// First name, when policy allows a greeting.
    #[schema(required)]
    pub greeting_name: Option<String>,
    #[schema(required)]
    pub patient: Option<Patient>,
    /// Unexpired session state (PHI class conversation).
    pub state: BTreeMap<String, String>,
    /// Last turns, oldest first (PHI class conversation).
    pub recent_turns: Vec<TurnOut>,
    /// Upcoming booked appointments (PHI class scheduling; the reason only with clinical).
    pub appointments: Vec<AppointmentOut>,
    /// One line, e.g. 'voice call 10 min ago, dropped; pending: booking
    /// date Tuesday'; PHI-free while details are withheld.
    pub brief: String,
    /// PHI classes this response left out.
    #[schema(value_type = Vec<PhiClassName>)]
    pub withheld: Vec<&'static str>,
}

impl From<continuity::ResumeContext> for ResumeContext {
    fn from(d: continuity::ResumeContext) -> Self {
        ResumeContext {
            session_id: d.session_id,
            customer_id: d.customer_id,
            conversation_id: d.conversation_id,
            channel: d.channel,
            identity: Identity {
                status: d.identity.status,
                strength: d.identity.strength,
                confirmed: d.identity.confirmed,
                confirm_with: d.identity.confirm_with,
                locked: d.identity.locked,
                candidates: d.identity.candidates as u64,
            },
            greeting_name: d.greeting_name,
            patient: d.patient.map(|p| Patient { name: p.name, date_of_birth: p.date_of_birth }),
            state: d.state,
            recent_turns: d
                .recent_turns
                .into_iter()
                .map(|t| TurnOut { channel: t.channel, speaker: t.speaker, text: t.text, at: t.at })
                .collect(),
            appointments: d.appointments.into_iter().map(AppointmentOut::from).collect(),
            brief: d.brief,
            withheld: d.withheld,
        }
    }
}
