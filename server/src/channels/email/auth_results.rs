//! `Authentication-Results` (RFC 8601) as evidence about an email's sender.
//! mail-parser hands us the raw header fields in order; this reads only the
//! grammar needed for a verdict (the authserv-id, then `method=result` and
//! `ptype.property=value` per result, comments dropped) and trusts only the
//! topmost header of an authserv-id the tenant named: the clinic's own MTA
//! adds its header above everything the sender wrote, and a header that
//! claims another authserv-id is the sender's word.

use policy::{EmailVerdict, EvidencePolicy};

/// One `method=result` with its properties (lowercase).
#[derive(Debug, PartialEq, Eq)]
struct Result_ {
    method: String,
    result: String,
    props: Vec<(String, String)>,
}

impl Result_ {
    fn prop(&self, name: &str) -> Option<&str> {
        self.props.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// The verdict on `from_domain` from the header fields `(name, value)` in
/// message order.
pub fn verdict<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    from_domain: &str,
    policy: &EvidencePolicy,
) -> EmailVerdict {
    let from = from_domain.to_ascii_lowercase();
    let trusted = headers
        .into_iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("Authentication-Results"))
        .filter_map(|(_, value)| parse(value))
        .find(|(id, _)| policy.trusts_authserv_id(id));
    let Some((_, results)) = trusted else { return EmailVerdict::NoTrustedHeader };
    let dmarc = results.iter().any(|r| {
        r.method == "dmarc" && r.result == "pass" && r.prop("header.from").is_none_or(|d| d.eq_ignore_ascii_case(&from))
    });
    if dmarc {
        return EmailVerdict::DmarcPass;
    }
    let dkim = results
        .iter()
        .any(|r| r.method == "dkim" && r.result == "pass" && r.prop("header.d").is_some_and(|d| aligned(&from, d)));
    if dkim { EmailVerdict::AlignedDkimPass } else { EmailVerdict::NotAuthenticated }
}

/// Relaxed alignment (RFC 7489 3.1.1) without a public-suffix list: the
/// signing domain is the From domain or a parent of it with at least two
/// labels.
fn aligned(from: &str, d: &str) -> bool {
    let d = d.trim_end_matches('.').to_ascii_lowercase();
    from == d || (d.contains('.') && from.ends_with(&format!(".{d}")))
}

/// (authserv-id, results), or `None` for a field that is not one.
fn parse(value: &str) -> Option<(String, Vec<Result_>)> {
    let text = strip_comments(value);
    let mut parts = text.split(';');
    let id = parts.next()?.split_whitespace().next()?.trim_matches('"').to_ascii_lowercase();
    if id.is_empty() {
        return None;
    }
    let mut results = Vec::new();
    for part in parts {
        let mut words = part.split_whitespace();
        let Some((method, result)) = words.next().and_then(|w| w.split_once('=')) else { continue };
        let method = method.split('/').next().unwrap_or(method).to_ascii_lowercase();
        let mut r = Result_ { method, result: result.to_ascii_lowercase(), props: Vec::new() };
        for w in words {
            if let Some((k, v)) = w.split_once('=') {
                r.props.push((k.to_ascii_lowercase(), v.trim_matches('"').to_owned()));
            }
        }
        results.push(r);
    }
    Some((id, results))
}

/// The field with its (nested) comments removed and folding undone;
/// parentheses inside quoted strings are kept.
fn strip_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let (mut depth, mut quoted, mut escaped) = (0u32, false, false);
    for c in value.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth = depth.saturating_add(1),
            ')' if !quoted && depth > 0 => depth -= 1,
            '\r' | '\n' | '\t' if depth == 0 => out.push(' '),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusting(ids: &[&str]) -> EvidencePolicy {
        EvidencePolicy { email_authserv_ids: ids.iter().map(|s| s.to_string()).collect(), ..Default::default() }
    }

    fn v(headers: &[&str], from: &str, policy: &EvidencePolicy) -> EmailVerdict {
        verdict(headers.iter().map(|h| ("Authentication-Results", *h)), from, policy)
    }

    #[test]
    fn a_trusted_dmarc_pass_asserts_the_sender() {
        let p = trusting(&["mx.sunrise-clinic.example"]);
        // Gmail-style, folded, with comments.
        let gmail = "mx.sunrise-clinic.example;\r\n       dkim=pass header.i=@example.com header.s=20230601 header.b=Ab12;\r\n       spf=pass (domain of maria@example.com designates 192.0.2.1 as permitted sender) smtp.mailfrom=maria@example.com;\r\n       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.com";
        assert_eq!(v(&[gmail], "example.com", &p), EmailVerdict::DmarcPass);
        // RFC 8601 appendix B style, with a version and a reason.
        let rfc = "MX.Sunrise-Clinic.example 1; dkim=pass reason=\"good signature\" header.d=mail.example.com; dmarc=fail header.from=example.com";
        assert_eq!(v(&[rfc], "mail.example.com", &p), EmailVerdict::AlignedDkimPass);
        assert_eq!(
            v(&[rfc], "example.com", &p),
            EmailVerdict::NotAuthenticated,
            "dkim d= a child of From is not aligned"
        );
        let parent = "mx.sunrise-clinic.example; dkim=pass header.d=example.com";
        assert_eq!(v(&[parent], "mail.example.com", &p), EmailVerdict::AlignedDkimPass, "relaxed alignment");
    }

    #[test]
    fn nothing_else_counts() {
        let p = trusting(&["mx.sunrise-clinic.example"]);
        let cases = [
            // Another authserv-id: the sender can write anything.
            ("mx.evil.example; dmarc=pass header.from=example.com", EmailVerdict::NoTrustedHeader),
            // SPF alone, DKIM of another domain, DMARC of another domain, failures.
            ("mx.sunrise-clinic.example; spf=pass smtp.mailfrom=example.com", EmailVerdict::NotAuthenticated),
            ("mx.sunrise-clinic.example; dkim=pass header.d=evil.example", EmailVerdict::NotAuthenticated),
            ("mx.sunrise-clinic.example; dkim=pass header.d=com", EmailVerdict::NotAuthenticated),
            ("mx.sunrise-clinic.example; dmarc=pass header.from=evil.example", EmailVerdict::NotAuthenticated),
            ("mx.sunrise-clinic.example; dmarc=fail header.from=example.com", EmailVerdict::NotAuthenticated),
            ("mx.sunrise-clinic.example; none", EmailVerdict::NotAuthenticated),
            // A comment that reads like a pass.
            (
                "mx.sunrise-clinic.example; dmarc=fail (dmarc=pass) header.from=example.com",
                EmailVerdict::NotAuthenticated,
            ),
            ("", EmailVerdict::NoTrustedHeader),
        ];
        for (h, want) in cases {
            assert_eq!(v(&[h], "example.com", &p), want, "{h}");
        }
        assert_eq!(v(&[], "example.com", &p), EmailVerdict::NoTrustedHeader);
        // Trusting nobody (the default): nothing is evidence.
        let pass = "mx.sunrise-clinic.example; dmarc=pass header.from=example.com";
        assert_eq!(v(&[pass], "example.com", &EvidencePolicy::default()), EmailVerdict::NoTrustedHeader);
    }

    #[test]
    fn only_the_topmost_trusted_header_counts() {
        let p = trusting(&["mx.sunrise-clinic.example"]);
        // The clinic's MTA (top) says fail; a forged header below says pass.
        let ours = "mx.sunrise-clinic.example; dmarc=fail header.from=example.com";
        let forged = "mx.sunrise-clinic.example; dmarc=pass header.from=example.com";
        assert_eq!(v(&[ours, forged], "example.com", &p), EmailVerdict::NotAuthenticated);
        let other = "mx.evil.example; dmarc=pass header.from=example.com";
        assert_eq!(v(&[other, forged], "example.com", &p), EmailVerdict::DmarcPass);
    }
}
