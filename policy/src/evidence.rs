//! Evidence decides an identifier's strength, not the channel's name
//! (DESIGN.md, "Identity assurance"). Caller ID is asserted only where the
//! carrier vouches for it (STIR/SHAKEN attestation A) or the tenant says its
//! own PBX is trusted; an email sender only when an MTA the tenant trusts
//! stamped `Authentication-Results` with a DMARC pass (or an aligned DKIM
//! pass). Everything else is a claim.
//!
//! ```toml
//! [evidence]
//! email_authserv_ids = ["mx.sunrise-clinic.example"]  # default: none
//! caller_id = "attested"      # attested | trusted | claim
//! sms_sender = "claim"        # attested | trusted | claim
//! ```
//!
//! An SMS `From` is spoofable through many routes that a voice trunk is
//! not, so the sender of a text has its own setting, a claim by default
//! (L5): a clinic that trusts its PBX does not thereby trust every text.

use crate::{PolicyError, Strength};

/// How far the tenant trusts caller ID on voice and SMS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallerIdTrust {
    /// Asserted only with STIR/SHAKEN attestation A (full attestation:
    /// the carrier knows the caller and that they may use the number).
    Attested,
    /// The clinic's own PBX or trunk: caller ID is asserted.
    Trusted,
    /// Caller ID is never more than a claim.
    Claim,
}

impl std::str::FromStr for CallerIdTrust {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, PolicyError> {
        match s {
            "attested" => Ok(CallerIdTrust::Attested),
            "trusted" => Ok(CallerIdTrust::Trusted),
            "claim" => Ok(CallerIdTrust::Claim),
            other => Err(PolicyError::UnknownCallerIdTrust(other.chars().take(40).collect())),
        }
    }
}

impl CallerIdTrust {
    pub fn as_str(self) -> &'static str {
        match self {
            CallerIdTrust::Attested => "attested",
            CallerIdTrust::Trusted => "trusted",
            CallerIdTrust::Claim => "claim",
        }
    }
}

/// A STIR/SHAKEN attestation level as the carrier reported it (Twilio's
/// `StirVerstat` carries it as `TN-Validation-Passed-A` and so on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attestation {
    A,
    B,
    C,
}

impl std::str::FromStr for Attestation {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "A" => Ok(Attestation::A),
            "B" => Ok(Attestation::B),
            "C" => Ok(Attestation::C),
            _ => Err(()),
        }
    }
}

impl Attestation {
    pub fn as_str(self) -> &'static str {
        match self {
            Attestation::A => "A",
            Attestation::B => "B",
            Attestation::C => "C",
        }
    }
}

/// The tenant's evidence rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvidencePolicy {
    /// authserv-ids (RFC 8601) of the MTAs whose `Authentication-Results`
    /// the tenant trusts; lowercase.
    pub email_authserv_ids: Vec<String>,
    pub caller_id: CallerIdTrust,
    /// The sender of an incoming text (SMS), apart from voice.
    pub sms_sender: CallerIdTrust,
}

impl Default for EvidencePolicy {
    /// No MTA trusted, caller ID asserted only with attestation A, an SMS
    /// sender a claim.
    fn default() -> Self {
        EvidencePolicy {
            email_authserv_ids: Vec::new(),
            caller_id: CallerIdTrust::Attested,
            sms_sender: CallerIdTrust::Claim,
        }
    }
}

impl EvidencePolicy {
    /// Validates the `[evidence]` section.
    pub fn parse(
        authserv_ids: Option<Vec<String>>,
        caller_id: Option<String>,
        sms_sender: Option<String>,
    ) -> Result<Self, PolicyError> {
        let mut out = EvidencePolicy::default();
        if let Some(ids) = authserv_ids {
            for id in ids {
                let id = id.trim().to_ascii_lowercase();
                let ok = (1..=253).contains(&id.len())
                    && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
                if !ok {
                    return Err(PolicyError::BadAuthservId(id.chars().take(60).collect()));
                }
                out.email_authserv_ids.push(id);
            }
        }
        if let Some(c) = caller_id {
            out.caller_id = c.parse()?;
        }
        if let Some(c) = sms_sender {
            out.sms_sender = c.parse()?;
        }
        Ok(out)
    }

    /// Caller ID's strength given what the voice integration reported.
    pub fn caller_id_strength(&self, attestation: Option<Attestation>) -> Strength {
        Self::strength(self.caller_id, attestation)
    }

    /// A text's sender's strength given what the SMS integration reported.
    pub fn sms_sender_strength(&self, attestation: Option<Attestation>) -> Strength {
        Self::strength(self.sms_sender, attestation)
    }

    fn strength(trust: CallerIdTrust, attestation: Option<Attestation>) -> Strength {
        match (trust, attestation) {
            (CallerIdTrust::Trusted, _) => Strength::Asserted,
            (CallerIdTrust::Attested, Some(Attestation::A)) => Strength::Asserted,
            _ => Strength::Claim,
        }
    }

    pub fn trusts_authserv_id(&self, id: &str) -> bool {
        self.email_authserv_ids.iter().any(|t| t.eq_ignore_ascii_case(id))
    }
}

/// What an email's `Authentication-Results` said about its From, as the
/// server read it (only from trusted authserv-ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmailVerdict {
    /// `dmarc=pass` for the From domain.
    DmarcPass,
    /// `dkim=pass` with a signing domain aligned with the From domain.
    AlignedDkimPass,
    /// A trusted header, but neither of the above.
    NotAuthenticated,
    /// No header from a trusted authserv-id.
    NoTrustedHeader,
    /// A trusted authserv-id's field below the MTA's stamp, or results
    /// that contradict each other in it: someone wrote in the clinic's name.
    Ambiguous,
}

impl EmailVerdict {
    pub fn strength(self) -> Strength {
        match self {
            EmailVerdict::DmarcPass | EmailVerdict::AlignedDkimPass => Strength::Asserted,
            EmailVerdict::NotAuthenticated | EmailVerdict::NoTrustedHeader | EmailVerdict::Ambiguous => Strength::Claim,
        }
    }

    /// What the audit record says decided.
    pub fn as_str(self) -> &'static str {
        match self {
            EmailVerdict::DmarcPass => "dmarc_pass",
            EmailVerdict::AlignedDkimPass => "dkim_aligned_pass",
            EmailVerdict::NotAuthenticated => "not_authenticated",
            EmailVerdict::NoTrustedHeader => "no_trusted_header",
            EmailVerdict::Ambiguous => "ambiguous_headers",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_id_strength_follows_the_tenants_trust_and_the_attestation() {
        let table = [
            (CallerIdTrust::Attested, Some(Attestation::A), Strength::Asserted),
            (CallerIdTrust::Attested, Some(Attestation::B), Strength::Claim),
            (CallerIdTrust::Attested, Some(Attestation::C), Strength::Claim),
            (CallerIdTrust::Attested, None, Strength::Claim),
            (CallerIdTrust::Trusted, None, Strength::Asserted),
            (CallerIdTrust::Trusted, Some(Attestation::C), Strength::Asserted),
            (CallerIdTrust::Claim, Some(Attestation::A), Strength::Claim),
        ];
        for (trust, att, want) in table {
            let p = EvidencePolicy { caller_id: trust, ..EvidencePolicy::default() };
            assert_eq!(p.caller_id_strength(att), want, "{trust:?} {att:?}");
        }
    }

    #[test]
    fn the_section_is_validated() {
        let p = EvidencePolicy::parse(Some(vec!["MX.Sunrise-Clinic.example".into()]), Some("trusted".into()), None)
            .unwrap();
        assert!(p.trusts_authserv_id("mx.sunrise-clinic.example"));
        assert!(!p.trusts_authserv_id("mx.evil.example"));
        assert_eq!(p.caller_id, CallerIdTrust::Trusted);
        // Trusting the PBX does not trust texts (L5).
        assert_eq!(p.sms_sender_strength(None), Strength::Claim);
        assert_eq!(p.caller_id_strength(None), Strength::Asserted);
        let texts = EvidencePolicy::parse(None, None, Some("trusted".into())).unwrap();
        assert_eq!(texts.sms_sender_strength(None), Strength::Asserted);
        assert!(EvidencePolicy::parse(Some(vec!["mx example".into()]), None, None).is_err());
        assert!(EvidencePolicy::parse(None, Some("always".into()), None).is_err());
        assert!(EvidencePolicy::parse(None, None, Some("always".into())).is_err());
        assert_eq!(EvidencePolicy::parse(None, None, None).unwrap(), EvidencePolicy::default());
    }
}
