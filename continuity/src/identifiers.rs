//! Identifiers, normalised on construction (parse, don't validate): a
//! `Phone` is E.164, an `Email` has its domain lowercased and its spaces
//! trimmed. They are PHI: `Debug` is redacted and errors never echo them.

use std::fmt;

use policy::{Channel, Strength};

use store::IdentifierKind;

/// Why an offered identifier was refused (the code is the API's error code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    #[error("phone is not a valid phone number for the tenant's region")]
    Phone,
    #[error("email is not a valid address")]
    Email,
    #[error("auth must be 1 to 256 printable characters")]
    Auth,
    #[error("cookie must be 16 to 256 characters of A-Z a-z 0-9 . _ ~ -")]
    Cookie,
}

impl IdentifierError {
    pub fn code(self) -> &'static str {
        match self {
            IdentifierError::Phone => "invalid_phone",
            IdentifierError::Email => "invalid_email",
            IdentifierError::Auth => "invalid_auth",
            IdentifierError::Cookie => "invalid_cookie",
        }
    }
}

/// A normalised identifier.
#[derive(Clone, PartialEq, Eq)]
pub struct Identifier {
    kind: IdentifierKind,
    value: String,
}

impl fmt::Debug for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identifier({}, [REDACTED])", self.kind.as_str())
    }
}

/// A region for reading national phone numbers: an ISO 3166 alpha-2 code
/// the phone library knows ("DE", "us"), uppercased; `None` otherwise.
pub fn phone_region(raw: &str) -> Option<String> {
    let code = raw.trim().to_ascii_uppercase();
    (code.len() == 2 && code.parse::<phonenumber::country::Id>().is_ok()).then_some(code)
}

impl Identifier {
    /// A phone number in any common format, read with the tenant's default
    /// region, as E.164.
    pub fn phone(raw: &str, region: &str) -> Result<Self, IdentifierError> {
        let region = region.parse::<phonenumber::country::Id>().ok();
        let number = phonenumber::parse(region, raw.trim()).map_err(|_| IdentifierError::Phone)?;
        if !phonenumber::is_valid(&number) {
            return Err(IdentifierError::Phone);
        }
        let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
        Ok(Identifier { kind: IdentifierKind::Phone, value: e164 })
    }

    /// An email address: surrounding spaces trimmed, the domain lowercased;
    /// the local part is kept as given (no plus-address guessing).
    pub fn email(raw: &str) -> Result<Self, IdentifierError> {
        let s = raw.trim();
        let (local, domain) = s.rsplit_once('@').ok_or(IdentifierError::Email)?;
        let local_ok = (1..=64).contains(&local.len())
            && !local.contains('@')
            && local.chars().all(|c| !c.is_whitespace() && !c.is_control());
        let domain = domain.to_ascii_lowercase();
        let domain_ok = (3..=253).contains(&domain.len())
            && domain.contains('.')
            && domain.split('.').all(|label| {
                (1..=63).contains(&label.len())
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !(local_ok && domain_ok) || s.len() > 254 {
            return Err(IdentifierError::Email);
        }
        Ok(Identifier { kind: IdentifierKind::Email, value: format!("{local}@{domain}") })
    }

    /// The clinic's login subject, as the integration asserts it.
    pub fn auth(raw: &str) -> Result<Self, IdentifierError> {
        let s = raw.trim();
        let ok = (1..=256).contains(&s.len()) && s.chars().all(|c| !c.is_control());
        if ok { Ok(Identifier { kind: IdentifierKind::Auth, value: s.to_owned() }) } else { Err(IdentifierError::Auth) }
    }

    /// An opaque browser cookie set by the chat backend.
    pub fn cookie(raw: &str) -> Result<Self, IdentifierError> {
        let ok = (16..=256).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'));
        if ok {
            Ok(Identifier { kind: IdentifierKind::Cookie, value: raw.to_owned() })
        } else {
            Err(IdentifierError::Cookie)
        }
    }

    pub fn kind(&self) -> IdentifierKind {
        self.kind
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// How far this identifier can be trusted on this channel, given the
    /// evidence (judged by the tenant's `[evidence]` policy): caller ID on
    /// voice/SMS and the sender on email are as strong as their evidence; a
    /// phone or email typed into chat is a claim; a login identity is proof;
    /// a cookie is the browser's, asserted by the chat backend.
    pub fn strength(&self, channel: Channel, evidence: Evidence) -> Strength {
        Self::kind_strength(self.kind, channel, evidence)
    }

    /// [`Identifier::strength`] for an identifier known by its kind.
    pub fn kind_strength(kind: IdentifierKind, channel: Channel, evidence: Evidence) -> Strength {
        match (kind, channel) {
            (IdentifierKind::Auth, _) => Strength::Possession,
            (IdentifierKind::Phone, Channel::Voice | Channel::Sms) => evidence.caller_id,
            (IdentifierKind::Email, Channel::Email) => evidence.email_sender,
            _ => Strength::Claim,
        }
    }
}

/// What a session's evidence makes of caller ID and of an email sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Evidence {
    pub caller_id: Strength,
    pub email_sender: Strength,
}

impl Evidence {
    /// No evidence: both are claims.
    pub const NONE: Evidence = Evidence { caller_id: Strength::Claim, email_sender: Strength::Claim };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_in_any_format_are_one_e164() {
        for raw in ["(415) 555-0100", "415.555.0100", "+1 415 555 0100", " 4155550100 ", "+14155550100"] {
            assert_eq!(Identifier::phone(raw, "US").unwrap().value(), "+14155550100", "{raw}");
        }
        assert_eq!(Identifier::phone("020 7946 0958", "GB").unwrap().value(), "+442079460958");
        for bad in ["", "12", "not a phone", "+1 415 555", "555-0100"] {
            assert_eq!(Identifier::phone(bad, "US"), Err(IdentifierError::Phone), "{bad}");
        }
    }

    #[test]
    fn emails_normalise_only_domain_case_and_spaces() {
        let e = Identifier::email("  Maria.Lopez+clinic@Example.COM ").unwrap();
        assert_eq!(e.value(), "Maria.Lopez+clinic@example.com");
        for bad in
            ["", "maria", "@example.com", "maria@", "maria@example", "ma ria@example.com", "a@b@c.com", "x@-a.com"]
        {
            assert_eq!(Identifier::email(bad), Err(IdentifierError::Email), "{bad}");
        }
    }

    #[test]
    fn auth_cookie_and_redaction() {
        assert!(Identifier::auth("portal|12345").is_ok());
        assert_eq!(Identifier::auth(""), Err(IdentifierError::Auth));
        assert!(Identifier::cookie("c_0123456789abcdef").is_ok());
        assert_eq!(Identifier::cookie("short"), Err(IdentifierError::Cookie));
        assert_eq!(Identifier::cookie("has space 0123456789"), Err(IdentifierError::Cookie));
        let p = Identifier::phone("+14155550100", "US").unwrap();
        assert_eq!(format!("{p:?}"), "Identifier(phone, [REDACTED])");
        let attested = Evidence { caller_id: Strength::Asserted, ..Evidence::NONE };
        assert_eq!(p.strength(Channel::Voice, attested), Strength::Asserted);
        assert_eq!(p.strength(Channel::Voice, Evidence::NONE), Strength::Claim);
        assert_eq!(p.strength(Channel::Chat, attested), Strength::Claim);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// A valid North American number in one of the formats people type.
    fn formatted() -> impl Strategy<Value = (String, String)> {
        (2u32..10, 0u32..100, 2u32..10, 0u32..100, 0u32..10000, 0usize..8).prop_map(|(a, b, c, d, line, style)| {
            let area = format!("{a}{b:02}");
            let exch = format!("{c}{d:02}");
            let line = format!("{line:04}");
            let e164 = format!("+1{area}{exch}{line}");
            let text = match style {
                0 => format!("({area}) {exch}-{line}"),
                1 => format!("{area}.{exch}.{line}"),
                2 => format!("+1 {area} {exch} {line}"),
                3 => format!("{area}{exch}{line}"),
                4 => format!("1-{area}-{exch}-{line}"),
                5 => format!(" +1 ({area}) {exch} {line} "),
                6 => format!("{area}-{exch}-{line}"),
                _ => e164.clone(),
            };
            (text, e164)
        })
    }

    proptest! {
        /// Any formatting of one number is one identifier: either every
        /// format parses to the same E.164, or the number is invalid in all.
        #[test]
        fn any_formatting_of_one_number_is_one_identifier((text, e164) in formatted()) {
            let canonical = Identifier::phone(&e164, "US");
            let typed = Identifier::phone(&text, "US");
            match (canonical, typed) {
                (Ok(a), Ok(b)) => { prop_assert_eq!(a.value(), e164.as_str()); prop_assert_eq!(a, b); }
                (Err(_), Err(_)) => {}
                (a, b) => prop_assert!(false, "{text:?} vs {e164}: {:?} / {:?}", a.map(|i| i.value().to_owned()), b.map(|i| i.value().to_owned())),
            }
        }
    }
}
