//! Reading who a verified client certificate speaks for (x509-parser: rustls
//! verifies chains but does not parse certificates).

use x509_parser::extensions::GeneralName;

use store::ids::TenantId;

const URI_PREFIX: &str = "urn:throughline:tenant:";

/// The SAN URI that binds a channel certificate to one tenant and channel.
pub fn channel_uri(tenant: &TenantId, channel: policy::Channel) -> String {
    format!("{URI_PREFIX}{tenant}:channel:{channel}")
}

/// What the verified leaf says: its serial and its binding. The registry,
/// not the certificate, is the authority; the SAN must agree with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    pub serial: String,
    /// SHA-256 of the leaf's DER: a certificate minted with a live serial
    /// (someone holding the CA key) is told apart from the one issued (M1).
    pub fingerprint: [u8; 32],
    pub tenant_id: Option<TenantId>,
    pub channel: Option<policy::Channel>,
}

impl PeerIdentity {
    /// Parses a DER certificate that rustls has already verified.
    pub fn from_der(der: &[u8]) -> Option<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let serial = hex::encode(cert.tbs_certificate.raw_serial());
        use sha2::Digest as _;
        let fingerprint = sha2::Sha256::digest(der).into();
        let mut identity = PeerIdentity { serial, fingerprint, tenant_id: None, channel: None };
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                if let GeneralName::URI(uri) = name
                    && let Some((tenant, channel)) = parse_uri(uri)
                {
                    identity.tenant_id = Some(tenant);
                    identity.channel = Some(channel);
                }
            }
        }
        Some(identity)
    }
}

fn parse_uri(uri: &str) -> Option<(TenantId, policy::Channel)> {
    let rest = uri.strip_prefix(URI_PREFIX)?;
    let (tenant, channel) = rest.split_once(":channel:")?;
    Some((TenantId::parse(tenant)?, channel.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_round_trips_and_rejects_others() {
        let t = TenantId::generate();
        let uri = channel_uri(&t, policy::Channel::Chat);
        assert_eq!(parse_uri(&uri), Some((t.clone(), policy::Channel::Chat)));
        assert_eq!(parse_uri(&uri.replace("chat", "fax")), None);
        assert_eq!(parse_uri("https://example.com"), None);
        assert_eq!(parse_uri(&format!("{URI_PREFIX}ten_x:channel:chat")), None);
    }
}
