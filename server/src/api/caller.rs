//! Who is calling: the channel integration named by the verified client
//! certificate, checked against the certificate registry on every request.

use std::future::{Ready, ready};
use std::net::SocketAddr;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use policy::Channel;

use super::{ApiError, AppState};
use crate::tls::PeerIdentity;
use store::ids::TenantId;

/// Per-connection facts captured when the TLS connection is accepted.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub identity: Option<PeerIdentity>,
    pub peer: Option<SocketAddr>,
    /// The server name the client asked for (TLS SNI), lowercased.
    pub sni: Option<String>,
}

/// An authenticated channel integration of one tenant.
#[derive(Clone, Debug)]
pub struct Caller {
    pub serial: String,
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub channel: Channel,
    pub peer: Option<SocketAddr>,
}

impl Caller {
    /// Refuses a caller of another channel (a chat certificate cannot act as voice).
    pub fn require_channel(&self, channel: Channel) -> Result<(), ApiError> {
        if self.channel == channel {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "wrong_channel",
                format!("this route is for the {channel} channel; the certificate is for {}", self.channel),
            ))
        }
    }

    fn resolve(req: &HttpRequest) -> Result<Caller, ApiError> {
        let conn = req.conn_data::<ConnInfo>();
        let identity = conn
            .and_then(|c| c.identity.clone())
            .ok_or_else(|| ApiError::unauthorized("client_certificate_required", "present a client certificate"))?;
        let state =
            req.app_data::<web::Data<AppState>>().ok_or_else(|| ApiError::internal(&"application state missing"))?;
        if state.registry.is_stale() {
            return Err(ApiError::new(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "revocation_state_stale",
                "the certificate registry could not be refreshed; refusing until it is",
            ));
        }
        let refuse = |e: ApiError| {
            tracing::warn!(serial = %identity.serial, code = e.code(), "request refused");
            e
        };
        let Some(binding) = state.registry.get(&identity.serial) else {
            return Err(refuse(ApiError::unauthorized("certificate_unknown", "this certificate was not issued here")));
        };
        // The serial is no secret (health, audit exports, receipts): the
        // certificate must be the very one issued under it (M1).
        if binding.fingerprint.as_slice() != identity.fingerprint.as_slice() {
            return Err(refuse(ApiError::unauthorized("certificate_unknown", "this certificate was not issued here")));
        }
        if binding.revoked_at.is_some() {
            return Err(refuse(ApiError::unauthorized("certificate_revoked", "this certificate has been revoked")));
        }
        if binding.not_after < crate::clock::Clock::now_ms(&crate::clock::SystemClock) {
            return Err(refuse(ApiError::unauthorized("certificate_expired", "this certificate has expired")));
        }
        if binding.ca_trusted_until.is_some_and(|t| t <= state.clock.now_ms()) {
            return Err(refuse(ApiError::unauthorized(
                "ca_retired",
                "this certificate's CA was replaced and its overlap has ended; use a certificate from the current CA",
            )));
        }
        if binding.tenant_deleted {
            return Err(refuse(ApiError::forbidden("tenant_deleted", "the tenant of this certificate was deleted")));
        }
        let (Some(tenant_id), Some(tenant_name), Ok(channel)) =
            (binding.tenant_id, binding.tenant_name, binding.channel.parse::<Channel>())
        else {
            return Err(refuse(ApiError::forbidden("not_a_channel_certificate", "this is not a channel certificate")));
        };
        // The registry is the authority; the certificate's own SAN must agree.
        if identity.tenant_id.as_ref() != Some(&tenant_id) || identity.channel != Some(channel) {
            return Err(refuse(ApiError::forbidden(
                "certificate_binding_mismatch",
                "the certificate's binding does not match its registration",
            )));
        }
        // Cluster mode: SNI is an unauthenticated routing hint, so the
        // tenant it names must be the certificate's, and one this node
        // owns now; otherwise the client reached the wrong node.
        if let Some(node) = state.tenants.cluster() {
            let want = node.config.hostname(&tenant_name);
            if conn.and_then(|c| c.sni.as_deref()) != Some(want.as_str()) {
                return Err(refuse(ApiError::new(
                    actix_web::http::StatusCode::MISDIRECTED_REQUEST,
                    "wrong_hostname",
                    "connect to this tenant through its own hostname",
                )));
            }
            if !node.serves(&tenant_id) {
                return Err(refuse(ApiError::new(
                    actix_web::http::StatusCode::MISDIRECTED_REQUEST,
                    "not_owner",
                    "this node does not serve this tenant now; retry through its hostname",
                )));
            }
        }
        Ok(Caller { serial: identity.serial, tenant_id, tenant_name, channel, peer: conn.and_then(|c| c.peer) })
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Caller::resolve(req))
    }
}
