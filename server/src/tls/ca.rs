//! The clinic's certificate authority (rcgen, ECDSA P-256). `throughline init`
//! makes it; its private key is sealed under the master key in the system
//! store. Leaves are channel certificates (clientAuth, bound by a SAN URI to
//! one tenant and one channel) and the server's own certificate.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::{TlsError, channel_uri};
use store::ids::TenantId;

/// The CA, able to sign leaves.
pub struct Ca {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// What a leaf certificate is for.
#[derive(Clone, Debug)]
pub enum LeafKind {
    /// A channel integration of one tenant.
    Channel { tenant_id: TenantId, tenant_name: String, channel: policy::Channel },
    /// The server itself, for these DNS names and IP addresses.
    Server { names: Vec<String> },
}

/// A freshly issued leaf: its key exists only here and in the file it is
/// written to.
pub struct IssuedCert {
    /// Lowercase hex of the certificate's serial number.
    pub serial: String,
    pub cert_pem: String,
    pub key_pem: Zeroizing<String>,
    pub not_before_ms: i64,
    pub not_after_ms: i64,
    /// SHA-256 of the DER certificate.
    pub fingerprint: [u8; 32],
}

impl std::fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCert").field("serial", &self.serial).field("key_pem", &"[REDACTED]").finish()
    }
}

impl Ca {
    /// A new self-signed CA valid for ten years; returns it with its key PEM
    /// (for the caller to seal).
    pub fn generate(installation_id: &str, now: OffsetDateTime) -> Result<(Ca, Zeroizing<String>), TlsError> {
        let (ca, key, _) = Self::generate_params(installation_id, 1, now)?;
        Ok((ca, key))
    }

    /// The CA that replaces this one (`cert rotate-ca`): a new key and a new
    /// name (`… G{generation}`), and the same certificate cross-signed by
    /// this CA, which the server presents during the overlap so a client
    /// that holds only this CA still verifies it. Returns (the new CA, its
    /// key PEM, the cross-signed certificate PEM).
    pub fn successor(
        &self,
        installation_id: &str,
        generation: i64,
        now: OffsetDateTime,
    ) -> Result<(Ca, Zeroizing<String>, String), TlsError> {
        let (ca, key_pem, mut params) = Self::generate_params(installation_id, generation, now)?;
        params.serial_number = Some(random_serial()?.1);
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::from_pem(&key_pem)?;
        let cross = params.signed_by(&key, &self.issuer)?;
        Ok((ca, key_pem, cross.pem()))
    }

    fn generate_params(
        installation_id: &str,
        generation: i64,
        now: OffsetDateTime,
    ) -> Result<(Ca, Zeroizing<String>, CertificateParams), TlsError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let id = &installation_id[..8.min(installation_id.len())];
        // Generation 1 keeps the name every installation's CA had before rotation existed.
        let name =
            if generation <= 1 { format!("Throughline CA {id}") } else { format!("Throughline CA {id} G{generation}") };
        params.distinguished_name = dn(&name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = now - time::Duration::minutes(5);
        params.not_after = now + time::Duration::days(3650);
        params.serial_number = Some(random_serial()?.1);
        let cert = params.self_signed(&key)?;
        let key_pem = Zeroizing::new(key.serialize_pem());
        Ok((Ca { cert_pem: cert.pem(), issuer: Issuer::new(params.clone(), key) }, key_pem, params))
    }

    /// The CA from its stored certificate and (unsealed) key.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Ca, TlsError> {
        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)?;
        Ok(Ca { cert_pem: cert_pem.to_owned(), issuer })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a leaf valid from a few minutes before `now` for `days` days.
    pub fn issue(&self, kind: &LeafKind, now: OffsetDateTime, days: u32) -> Result<IssuedCert, TlsError> {
        let serial = random_serial()?;
        self.issue_with(kind, serial, now, days)
    }

    /// Issues a leaf under a serial of the caller's choosing: what someone
    /// holding the CA key could do to impersonate a live certificate. Only
    /// the tests that prove the registry refuses such a twin use it.
    pub fn dangerous_issue_with_serial(
        &self,
        kind: &LeafKind,
        serial_hex: &str,
        now: OffsetDateTime,
        days: u32,
    ) -> Result<IssuedCert, TlsError> {
        let bytes = hex::decode(serial_hex).map_err(|_| TlsError::Validity)?;
        self.issue_with(kind, (serial_hex.to_owned(), SerialNumber::from_slice(&bytes)), now, days)
    }

    fn issue_with(
        &self,
        kind: &LeafKind,
        (serial_hex, serial): (String, SerialNumber),
        now: OffsetDateTime,
        days: u32,
    ) -> Result<IssuedCert, TlsError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.serial_number = Some(serial);
        params.not_before = now - time::Duration::minutes(5);
        params.not_after = now + time::Duration::days(i64::from(days));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        match kind {
            LeafKind::Channel { tenant_id, tenant_name, channel } => {
                params.distinguished_name = dn(&format!("{tenant_name} {channel}"));
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
                params.subject_alt_names = vec![SanType::URI(channel_uri(tenant_id, *channel).try_into()?)];
            }
            LeafKind::Server { names } => {
                params.distinguished_name = dn("Throughline server");
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
                params.subject_alt_names = names
                    .iter()
                    .map(|n| match n.parse::<IpAddr>() {
                        Ok(ip) => Ok(SanType::IpAddress(ip)),
                        Err(_) => Ok(SanType::DnsName(n.clone().try_into()?)),
                    })
                    .collect::<Result<_, rcgen::Error>>()?;
            }
        }
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCert {
            serial: serial_hex,
            cert_pem: cert.pem(),
            key_pem: Zeroizing::new(key.serialize_pem()),
            not_before_ms: millis(params.not_before)?,
            not_after_ms: millis(params.not_after)?,
            fingerprint: Sha256::digest(cert.der()).into(),
        })
    }
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Throughline");
    dn.push(DnType::CommonName, common_name);
    dn
}

/// 128 random bits, positive and without a leading zero byte, so the DER
/// encoding is exactly these 16 bytes and the hex form is stable.
fn random_serial() -> Result<(String, SerialNumber), TlsError> {
    let mut bytes: [u8; 16] = crypto::random_bytes().map_err(|_| TlsError::Validity)?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok((hex::encode(bytes), SerialNumber::from_slice(&bytes)))
}

fn millis(t: OffsetDateTime) -> Result<i64, TlsError> {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|_| TlsError::Validity)
}
