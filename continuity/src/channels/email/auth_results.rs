//! `Authentication-Results` (RFC 8601) as evidence about an email's sender.
//! mail-parser hands us the raw header fields in order; this reads only the
//! grammar needed for a verdict (the authserv-id, then `method=result` and
//! `ptype.property=value` per result, comments dropped).
//!
//! Only the hop the clinic controls speaks (N2): its MTA adds its trace
//! fields and its `Authentication-Results` on top of everything the sender
//! wrote. So the verdict comes from the *stamp*: the trusted fields in the
//! message's top block, read from the first field down through trace fields
//! (`Received`, `Return-Path`, `Delivered-To`, `X-Original-To`, `ARC-*`) and
//! trusted A-R fields, ending at the first other field. A trusted field
//! anywhere below the stamp, or one method reported twice in the stamp with
//! different results, is somebody writing in the clinic's name: the sender
//! is then a claim ([`EmailVerdict::Ambiguous`]). `dmarc=pass` counts only
//! with `header.from` naming the From domain; a DKIM pass only where the
//! stamp gives no DMARC result, and with a signing domain under the same
//! registrable domain (relaxed alignment, RFC 7489 3.1.1) by the
//! public-suffix list (the `psl` crate).
//!
//! What this cannot see: a message the MTA did not stamp whose sender wrote
//! a trusted field at its top. The MTA must stamp every message and strip
//! fields in its own name (docs/INTEGRATIONS.md, "the sender's evidence").

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

/// Header fields an MTA adds on its hop, through which the stamp is read.
fn is_trace(name: &str) -> bool {
    ["received", "return-path", "delivered-to", "x-original-to"].iter().any(|t| name.eq_ignore_ascii_case(t))
        || name.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("arc-"))
}

fn is_auth_results(name: &str) -> bool {
    name.eq_ignore_ascii_case("Authentication-Results")
}

/// The verdict on `from_domain` from the message's header fields
/// `(name, value)`, all of them, in message order.
pub fn verdict<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    from_domain: &str,
    policy: &EvidencePolicy,
) -> EmailVerdict {
    let from = from_domain.trim_end_matches('.').to_ascii_lowercase();
    let mut stamp: Vec<Vec<Result_>> = Vec::new();
    let mut in_top_block = true;
    for (name, value) in headers {
        let trusted = is_auth_results(name)
            .then(|| parse(value))
            .flatten()
            .filter(|(id, _)| policy.trusts_authserv_id(id))
            .map(|(_, results)| results);
        match trusted {
            Some(results) if in_top_block => stamp.push(results),
            // A field in the clinic's name below what its MTA stamped.
            Some(_) => return EmailVerdict::Ambiguous,
            None if in_top_block && is_trace(name) => {}
            None => in_top_block = false,
        }
    }
    if stamp.is_empty() {
        return EmailVerdict::NoTrustedHeader;
    }
    let results: Vec<&Result_> = stamp.iter().flatten().collect();
    for (i, a) in results.iter().enumerate() {
        if results[i + 1..].iter().any(|b| b.method == a.method && b.result != a.result) {
            return EmailVerdict::Ambiguous;
        }
    }
    // The MTA's DMARC verdict decides when it gave one; a DKIM pass counts
    // only where it did not evaluate DMARC.
    if results.iter().any(|r| r.method == "dmarc") {
        let pass = results.iter().any(|r| {
            r.method == "dmarc"
                && r.result == "pass"
                && r.prop("header.from").is_some_and(|d| d.trim_end_matches('.').eq_ignore_ascii_case(&from))
        });
        return if pass { EmailVerdict::DmarcPass } else { EmailVerdict::NotAuthenticated };
    }
    let dkim = results
        .iter()
        .any(|r| r.method == "dkim" && r.result == "pass" && r.prop("header.d").is_some_and(|d| aligned(&from, d)));
    if dkim { EmailVerdict::AlignedDkimPass } else { EmailVerdict::NotAuthenticated }
}

/// Relaxed alignment (RFC 7489 3.1.1): the signing domain and the From
/// domain have the same registrable domain under the public-suffix list,
/// and the signing domain is not itself a public suffix.
fn aligned(from: &str, d: &str) -> bool {
    let d = d.trim_end_matches('.').to_ascii_lowercase();
    match (psl::domain_str(from), psl::domain_str(&d)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
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

    /// A whole header block, `Name: value` per entry.
    fn block(fields: &[String], from: &str, policy: &EvidencePolicy) -> EmailVerdict {
        let pairs: Vec<(&str, &str)> = fields.iter().map(|f| f.split_once(": ").unwrap_or((f, ""))).collect();
        verdict(pairs, from, policy)
    }

    #[test]
    fn a_trusted_dmarc_pass_asserts_the_sender() {
        let p = trusting(&["mx.sunrise-clinic.example"]);
        // Gmail-style, folded, with comments.
        let gmail = "mx.sunrise-clinic.example;\r\n       dkim=pass header.i=@example.com header.s=20230601 header.b=Ab12;\r\n       spf=pass (domain of maria@example.com designates 192.0.2.1 as permitted sender) smtp.mailfrom=maria@example.com;\r\n       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.com";
        assert_eq!(v(&[gmail], "example.com", &p), EmailVerdict::DmarcPass);
        // RFC 8601 appendix B style, with a version and a reason.
        let rfc = "MX.Sunrise-Clinic.example 1; dkim=pass reason=\"good signature\" header.d=mail.example.com";
        assert_eq!(v(&[rfc], "mail.example.com", &p), EmailVerdict::AlignedDkimPass);
        // The MTA's own DMARC verdict, when it gave one, outranks a DKIM pass.
        let failed = format!("{rfc}; dmarc=fail header.from=mail.example.com");
        assert_eq!(v(&[&failed], "mail.example.com", &p), EmailVerdict::NotAuthenticated);
        let parent = "mx.sunrise-clinic.example; dkim=pass header.d=example.com";
        assert_eq!(v(&[parent], "mail.example.com", &p), EmailVerdict::AlignedDkimPass, "relaxed alignment");
        let child = "mx.sunrise-clinic.example; dkim=pass header.d=mail.example.com";
        assert_eq!(v(&[child], "example.com", &p), EmailVerdict::AlignedDkimPass, "same registrable domain");
    }

    #[test]
    fn alignment_follows_the_public_suffix_list() {
        let p = trusting(&["mx.sunrise-clinic.example"]);
        let signed = |d: &str| format!("mx.sunrise-clinic.example; dkim=pass header.d={d}");
        // A public suffix of two labels is nobody's organisation.
        assert_eq!(v(&[&signed("co.uk")], "nhs-patient.co.uk", &p), EmailVerdict::NotAuthenticated);
        assert_eq!(v(&[&signed("github.io")], "maria.github.io", &p), EmailVerdict::NotAuthenticated);
        assert_eq!(v(&[&signed("evil.co.uk")], "good.co.uk", &p), EmailVerdict::NotAuthenticated);
        assert_eq!(v(&[&signed("mail.good.co.uk")], "good.co.uk", &p), EmailVerdict::AlignedDkimPass);
    }

    #[test]
    fn dmarc_pass_must_name_the_from_domain() {
        let p = trusting(&["mx.sunrise-clinic.example"]);
        assert_eq!(v(&["mx.sunrise-clinic.example; dmarc=pass"], "example.com", &p), EmailVerdict::NotAuthenticated);
        let named = "mx.sunrise-clinic.example; dmarc=pass header.from=Example.COM";
        assert_eq!(v(&[named], "example.com", &p), EmailVerdict::DmarcPass);
    }

    /// The review's reproductions (N2), as whole header blocks.
    #[test]
    fn only_the_stamp_of_the_clinics_hop_counts() {
        let p = trusting(&["mx.sunrise.example"]);
        let pass = "Authentication-Results: mx.sunrise.example; dmarc=pass header.from=example.com";
        let fail = "Authentication-Results: mx.sunrise.example; dmarc=fail header.from=example.com";
        let dkim = "Authentication-Results: mx.sunrise.example; dkim=pass header.d=example.com";
        let ours = "Received: from out.example.com by mx.sunrise.example (Postfix) with ESMTPS id 4Q";
        let theirs = "Received: from laptop by out.example.com";
        let body = ["From: maria@example.com", "To: intake@sunrise.example", "Subject: hi"];
        let with = |top: &[&str], rest: &[&str]| -> Vec<String> {
            top.iter().chain(&body).chain(rest).map(|s| s.to_string()).collect()
        };
        // 1. Genuine, on top (above or below the MTA's own Received).
        assert_eq!(block(&with(&[pass, ours], &[]), "example.com", &p), EmailVerdict::DmarcPass);
        assert_eq!(block(&with(&[ours, pass], &[]), "example.com", &p), EmailVerdict::DmarcPass);
        // Two milters of the hop, one field each (OpenDKIM, OpenDMARC).
        assert_eq!(block(&with(&[dkim, pass, ours], &[]), "example.com", &p), EmailVerdict::DmarcPass);
        // 2. No stamp at all.
        assert_eq!(block(&with(&[ours], &[]), "example.com", &p), EmailVerdict::NoTrustedHeader);
        // 3. A forged field at the bottom, with or without the MTA's stamp.
        assert_eq!(block(&with(&[ours, theirs], &[pass]), "example.com", &p), EmailVerdict::Ambiguous);
        assert_eq!(block(&with(&[fail, ours], &[pass]), "example.com", &p), EmailVerdict::Ambiguous);
        // 4. A forged pass on top of the MTA's fail (or the reverse): one
        //    method twice with different results.
        assert_eq!(block(&with(&[pass, fail, ours], &[]), "example.com", &p), EmailVerdict::Ambiguous);
        assert_eq!(block(&with(&[fail, ours, pass], &[]), "example.com", &p), EmailVerdict::Ambiguous);
        // A forged field below the sender's own Received, under the stamp.
        assert_eq!(block(&with(&[fail, ours, theirs, pass], &[]), "example.com", &p), EmailVerdict::Ambiguous);
        // Another authserv-id's word is nobody's evidence, and ends the top block.
        let other = "Authentication-Results: mx.evil.example; dmarc=pass header.from=example.com";
        assert_eq!(block(&with(&[other, pass], &[]), "example.com", &p), EmailVerdict::Ambiguous);
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
}
