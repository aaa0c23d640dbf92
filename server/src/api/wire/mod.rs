//! The wire contract: every request and response body of the API, in one
//! place at the edge. Request types deserialize (unknown fields refused)
//! and convert into the domain's; response types are made from the
//! domain's. The OpenAPI document (`api::openapi`) is derived from these
//! types and the handlers' annotations, so a field cannot reach the wire
//! without reaching the document. The domain (`continuity`) derives no
//! wire format of its own.

mod channels;
mod sessions;

use serde::Serialize;
use utoipa::ToSchema;

pub use channels::*;
pub use sessions::*;

/// Every error: a stable code and a sentence for people.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody<'a> {
    /// Stable snake_case code, e.g. certificate_revoked, body_too_large, not_found.
    pub error: &'a str,
    /// For people; never carries PHI or internals.
    pub message: &'a str,
}

/// A channel, as certificates name them.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum Channel {
    Voice,
    Chat,
    Email,
    Sms,
}

/// A PHI class (policy.toml's names).
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum PhiClassName {
    Greeting,
    Identity,
    Contact,
    Scheduling,
    Conversation,
    Clinical,
    Attachments,
}

/// Liveness, and what the presented certificate is bound to.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health<'a> {
    #[schema(value_type = HealthStatus)]
    pub status: &'static str,
    pub version: &'static str,
    /// The wire contract this core speaks (also the `Throughline-Wire`
    /// header on every answer).
    #[schema(minimum = 1)]
    pub wire: u32,
    /// Name of the tenant the certificate is bound to.
    pub tenant: &'a str,
    #[schema(value_type = Channel)]
    pub channel: &'a str,
    /// Hex serial of the presented certificate.
    pub certificate_serial: &'a str,
    #[schema(minimum = 0)]
    pub uptime_s: u64,
    /// Client certificates refused at the TLS handshake since start.
    #[schema(minimum = 0)]
    pub refused_certificates: u64,
}

/// The one status a serving core reports.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum HealthStatus {
    Ok,
}

/// The right-of-access document (GDPR Art. 15/20), as the domain builds it
/// (`continuity::patient_export`): this type documents its shape.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PatientExport {
    #[schema(pattern = "^throughline-patient-export/v1$")]
    pub format: String,
    pub tenant: String,
    pub customer_id: String,
    pub exported_at: i64,
    pub withheld: Vec<String>,
    #[schema(value_type = Option<Object>, required)]
    pub identity: Option<serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    pub identifiers: Vec<serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    pub conversations: Vec<serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    pub appointments: Vec<serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    pub callbacks: Vec<serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    pub attachments: Vec<serde_json::Value>,
    /// Audit records that name this patient (pseudonymous, no PHI).
    #[schema(value_type = Vec<Object>)]
    pub audit: Vec<serde_json::Value>,
}

/// The signed erasure receipt, as `erasure::erase` writes it: this type
/// documents its shape.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErasureReceipt {
    pub receipt: ErasureFacts,
    /// The exact JSON text the signature covers.
    pub signed: String,
    /// Ed25519 (base64) by the tenant's audit key (throughline audit key).
    pub signature: String,
}

/// What an erasure removed.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErasureFacts {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub tenant: Option<String>,
    pub customer: Option<String>,
    /// Unix milliseconds.
    pub erased_at: Option<i64>,
    pub requested_by: Option<String>,
    /// Rows removed, per kind.
    pub erased: Option<std::collections::BTreeMap<String, i64>>,
    pub kept: Option<String>,
}
