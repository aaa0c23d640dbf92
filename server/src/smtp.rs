//! Delivery through the tenant's SMTP relay (lettre, async on tokio, rustls
//! for STARTTLS and implicit TLS). Errors say what kind of failure it was,
//! never the server's text: a relay's rejection can quote the recipient.

use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use continuity::channels::{Smtp, SmtpTls};

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the SMTP relay {host}:{port} failed: {kind}")]
    Relay { host: String, port: u16, kind: &'static str },
    #[error("the message has an address SMTP cannot carry")]
    Address,
}

fn kind(e: &lettre::transport::smtp::Error) -> &'static str {
    if e.is_permanent() {
        "permanent rejection (5xx)"
    } else if e.is_transient() {
        "temporary rejection (4xx); try again later"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_tls() {
        "TLS handshake or certificate error"
    } else {
        "connection or protocol error"
    }
}

/// Sends `raw` from `from` to `to` through the relay.
pub async fn send(smtp: &Smtp, from: &str, to: &str, raw: &[u8]) -> Result<(), SendError> {
    let relay = |kind| SendError::Relay { host: smtp.host.clone(), port: smtp.port, kind };
    let builder = match smtp.tls {
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
        SmtpTls::StartTls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host).map_err(|e| relay(kind(&e)))?
        }
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host).map_err(|e| relay(kind(&e)))?,
    };
    let mut builder = builder.port(smtp.port).timeout(Some(Duration::from_secs(15)));
    if let (Some(user), Some(password)) = (&smtp.user, &smtp.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.to_string()));
    }
    let transport = builder.build();
    let envelope = Envelope::new(
        Some(from.parse().map_err(|_| SendError::Address)?),
        vec![to.parse().map_err(|_| SendError::Address)?],
    )
    .map_err(|_| SendError::Address)?;
    transport.send_raw(&envelope, raw).await.map_err(|e| relay(kind(&e)))?;
    Ok(())
}
