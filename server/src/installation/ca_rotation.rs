//! `throughline cert rotate-ca`: a new CA, with an overlap in which
//! certificates from both are accepted. The new CA is made and cross-signed
//! by the old in memory, then one audited system-store transaction swaps it
//! in (crash-safe: before the commit nothing changed, after it the new CA is
//! whole). During the overlap the server trusts both CAs for client
//! certificates and presents the cross-signed certificate after its own, so
//! a client that holds only the old CA still verifies it; `cert issue`
//! writes both CAs into `ca.crt`. After the overlap, certificates from the
//! old CA are refused (`ca_retired`) and it leaves the trust store at the
//! next start.

use std::time::Duration;

use crate::installation::{ca_aad, datetime};
use crate::{Error, Installation};
use store::NewCa;

/// What a rotation did.
#[derive(Debug)]
pub struct CaRotation {
    pub generation: i64,
    pub trusted_until: i64,
    /// Channel certificates from the old CA still in force (to reissue in the overlap).
    pub to_reissue: usize,
}

impl Installation {
    /// Replaces the CA; the old one's certificates stay accepted for `overlap`.
    pub fn rotate_ca(&mut self, overlap: Duration) -> Result<CaRotation, Error> {
        let now = self.now_ms();
        let old = self.ca()?;
        let generation = self.system.ca_generation()? + 1;
        let (new, key_pem, cross_pem) = old.successor(self.installation_id(), generation, datetime(now))?;
        let key_sealed = self.keyring.seal_with_master(&ca_aad(self.installation_id()), key_pem.as_bytes())?;
        let trusted_until = now.saturating_add(i64::try_from(overlap.as_millis()).unwrap_or(i64::MAX));
        let record = NewCa { cert_pem: new.cert_pem(), key_sealed: &key_sealed, cross_pem: &cross_pem, trusted_until };
        let operator = self.operator().to_owned();
        let generation =
            self.system.rotate_ca(&record, &operator, &crate::clock::rfc3339(record.trusted_until), now)?;
        let to_reissue = self
            .certificates()?
            .iter()
            .filter(|c| c.ca_generation < generation && c.channel != "server")
            .filter(|c| c.revoked_at.is_none() && !c.tenant_deleted && c.not_after > now)
            .count();
        Ok(CaRotation { generation, trusted_until, to_reissue })
    }

    /// The CA certificates clients are told to trust now (PEM bundle): the
    /// current CA, then any retired one still in its overlap.
    pub fn trusted_ca_bundle(&self) -> Result<String, Error> {
        let pems = self.system.trusted_ca_pems(self.now_ms())?;
        if pems.is_empty() {
            return Err(Error::NoCa);
        }
        Ok(pems.concat())
    }

    /// The current CA cross-signed by the previous one, while it is in its overlap.
    pub fn ca_cross_pem(&self) -> Result<Option<String>, Error> {
        Ok(self.system.ca_cross_pem(self.now_ms())?)
    }

    /// The current CA's generation and the retired ones.
    pub fn ca_generations(&self) -> Result<(i64, Vec<store::RetiredCa>), Error> {
        Ok((self.system.ca_generation()?, self.system.retired_cas()?))
    }
}
