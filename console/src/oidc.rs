//! Signing in through the clinic's identity provider: which Throughline
//! role a person gets from the provider's claim (the first mapping whose
//! value they carry; none: refused), what a mapping may never grant
//! (`admin`; break-glass is never granted by a provider at all), and which
//! issuer addresses are acceptable (HTTPS; plain HTTP only on loopback,
//! for a provider running on the same machine, as the tests do).

use crate::Role;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("'{0}' is not a role (front_desk, clinician, email_reviewer, compliance)")]
    Unknown(String),
    #[error("a provider's claim may never grant admin: give admin with `throughline staff role`")]
    Admin,
    #[error("write each mapping as VALUE=ROLE")]
    Shape,
    #[error("give at least one --map VALUE=ROLE")]
    Empty,
}

/// Parses `VALUE=ROLE` mappings, refusing `admin`.
pub fn parse_map(raw: &[String]) -> Result<Vec<(String, Role)>, MappingError> {
    if raw.is_empty() {
        return Err(MappingError::Empty);
    }
    raw.iter()
        .map(|m| {
            let (value, role) =
                m.split_once('=').filter(|(v, r)| !v.is_empty() && !r.is_empty()).ok_or(MappingError::Shape)?;
            let role = Role::parse(role.trim()).ok_or_else(|| MappingError::Unknown(role.to_owned()))?;
            if role == Role::Admin {
                return Err(MappingError::Admin);
            }
            Ok((value.trim().to_owned(), role))
        })
        .collect()
}

/// The role for the claim's values: the first mapping they match.
pub fn role_for(values: &[String], map: &[(String, Role)]) -> Option<Role> {
    map.iter().find(|(v, _)| values.iter().any(|x| x == v)).map(|(_, r)| *r).filter(|r| *r != Role::Admin)
}

/// HTTPS, or HTTP to this machine only.
pub fn acceptable_url(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else { return false };
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host =
        host.rsplit_once(':').map_or(host, |(h, p)| if p.bytes().all(|b| b.is_ascii_digit()) { h } else { host });
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_never_grant_admin_and_the_first_match_wins() {
        let map = parse_map(&["nurses=front_desk".into(), "doctors=clinician".into()]).unwrap();
        assert_eq!(role_for(&["doctors".into(), "nurses".into()], &map), Some(Role::FrontDesk));
        assert_eq!(role_for(&["doctors".into()], &map), Some(Role::Clinician));
        assert_eq!(role_for(&["visitors".into()], &map), None);
        assert_eq!(role_for(&[], &map), None);
        assert_eq!(parse_map(&["it=admin".into()]), Err(MappingError::Admin));
        assert_eq!(parse_map(&["x=root".into()]), Err(MappingError::Unknown("root".into())));
        assert_eq!(parse_map(&["nope".into()]), Err(MappingError::Shape));
        assert_eq!(parse_map(&[]), Err(MappingError::Empty));
    }

    #[test]
    fn issuers_are_https_or_this_machine() {
        assert!(acceptable_url("https://login.microsoftonline.com/t/v2.0"));
        assert!(acceptable_url("http://127.0.0.1:4000"));
        assert!(acceptable_url("http://localhost:4000/realms/x"));
        assert!(!acceptable_url("http://idp.example.com"));
        assert!(!acceptable_url("http://127.0.0.1.evil.example:80"));
        assert!(!acceptable_url("ftp://127.0.0.1"));
    }
}
