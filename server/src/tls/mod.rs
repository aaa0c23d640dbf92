//! Mutual TLS: the clinic's own CA, channel certificates bound to one tenant
//! and one channel, the rustls server configuration, and the registry that
//! re-checks every request's certificate serial (revocation within seconds,
//! resumed sessions included).

mod ca;
mod config;
mod identity;
mod registry;

pub use ca::{Ca, IssuedCert, LeafKind};
pub use config::{TlsCounters, anonymous_client_config, client_config, console_config, server_config};
pub use identity::{PeerIdentity, channel_uri};
pub use registry::{Binding, CertRegistry};

/// What can go wrong building or reading certificates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("PEM: {0}")]
    Pem(#[from] rustls::pki_types::pem::Error),
    #[error("the CA certificate's validity cannot be represented")]
    Validity,
}

/// A PEM certificate's `notAfter`, in UNIX milliseconds.
pub fn not_after_ms(pem: &str) -> Option<i64> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = p.parse_x509().ok()?;
    Some(cert.validity().not_after.timestamp() * 1000)
}
