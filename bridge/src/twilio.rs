//! Twilio's webhooks: `X-Twilio-Signature` as Twilio's SDKs check it
//! (HMAC-SHA1 of the URL and the sorted form parameters, with and without
//! the default port; `bodySHA256` for JSON bodies), the form parameters the
//! bridge reads, STIR/SHAKEN's `StirVerstat`, and TwiML. Pure: no I/O.

use base64::Engine as _;
use ring::digest;

use crate::sig;
use crate::sig::HmacAlgorithm;

/// The decoded form body, in order, repeats kept.
pub fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

fn signature(token: &[u8], url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut s = url.to_owned();
    for (k, v) in sorted {
        s.push_str(k);
        s.push_str(v);
    }
    base64::engine::general_purpose::STANDARD.encode(sig::mac(HmacAlgorithm::Sha1, token, s.as_bytes()))
}

/// The URL as given, and with the scheme's default port added or removed:
/// Twilio has signed both forms, and its SDKs accept either.
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else { return out };
    let (authority, path) = rest.find(['/', '?']).map_or((rest, ""), |i| rest.split_at(i));
    let default = if scheme == "https" { "443" } else { "80" };
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => {
            out.push(format!("{scheme}://{host}{path}"));
        }
        _ => out.push(format!("{scheme}://{authority}:{default}{path}")),
    }
    out
}

/// Checks a request Twilio made to `url` (exactly as Twilio called it, query
/// included) with form `params` (empty for JSON bodies) and raw `body`.
pub fn verify(
    token: &[u8],
    url: &str,
    params: &[(String, String)],
    body: &[u8],
    given: Option<&str>,
) -> Result<(), sig::Refusal> {
    let given = given.ok_or(sig::Refusal::Missing)?;
    let body_hash = url
        .split_once('?')
        .and_then(|(_, q)| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "bodySHA256"))
        .map(|(_, v)| v.into_owned());
    let params: &[(String, String)] = if body_hash.is_some() { &[] } else { params };
    if let Some(want) = body_hash {
        let got = hex::encode(digest::digest(&digest::SHA256, body));
        if !sig::same(got.as_bytes(), want.to_ascii_lowercase().as_bytes()) {
            return Err(sig::Refusal::Mismatch);
        }
    }
    let ok = url_variants(url).iter().any(|u| sig::same(signature(token, u, params).as_bytes(), given.as_bytes()));
    if ok { Ok(()) } else { Err(sig::Refusal::Mismatch) }
}

/// `StirVerstat` to the attestation the core takes: only a passed
/// validation counts (`TN-Validation-Passed-A`); failures and
/// `No-TN-Validation` give none.
pub fn attestation(stir_verstat: Option<&str>) -> Option<&'static str> {
    match stir_verstat? {
        "TN-Validation-Passed-A" => Some("A"),
        "TN-Validation-Passed-B" => Some("B"),
        "TN-Validation-Passed-C" => Some("C"),
        _ => None,
    }
}

/// The default answer: connect the call's audio to the clinic's agent over
/// a Media Stream, with the session as a custom parameter.
pub fn stream_twiml(url: &str) -> String {
    let url = url.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect><Stream url=\"{url}\">\
         <Parameter name=\"throughline_session\" value=\"{{{{ session_id }}}}\"/></Stream></Connect></Response>"
    )
}

/// Said when the core cannot be reached: the call is not silently dropped.
pub const UNAVAILABLE_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>We are sorry, we cannot take your call right now. Please call again in a few minutes.</Say></Response>";

/// An SMS webhook's answer: nothing to send back now.
pub const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";

#[cfg(test)]
mod tests {
    use super::*;

    // The worked example of Twilio's webhook-security page.
    const TOKEN: &[u8] = b"12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    fn params() -> Vec<(String, String)> {
        [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    #[test]
    fn twilios_documented_example_verifies() {
        let sig = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";
        assert_eq!(verify(TOKEN, URL, &params(), b"", Some(sig)), Ok(()));
        // With the port Twilio sometimes signs, too.
        assert_eq!(verify(TOKEN, "https://mycompany.com:443/myapp.php?foo=1&bar=2", &params(), b"", Some(sig)), Ok(()));
        let mut changed = params();
        changed[3].1 = "+15550000000".into();
        assert_eq!(verify(TOKEN, URL, &changed, b"", Some(sig)), Err(sig::Refusal::Mismatch));
        assert_eq!(verify(TOKEN, URL, &params(), b"", None), Err(sig::Refusal::Missing));
    }

    #[test]
    fn json_bodies_are_bound_by_their_hash() {
        let body = br#"{"property": "value", "boolean": true}"#;
        let hash = hex::encode(digest::digest(&digest::SHA256, body));
        let url = format!("https://mycompany.com/myapp.php?bodySHA256={hash}");
        let sig = signature(TOKEN, &url, &[]);
        assert_eq!(verify(TOKEN, &url, &[], body, Some(&sig)), Ok(()));
        assert_eq!(verify(TOKEN, &url, &[], b"{\"property\":\"other\"}", Some(&sig)), Err(sig::Refusal::Mismatch));
    }

    #[test]
    fn only_a_passed_validation_attests() {
        assert_eq!(attestation(Some("TN-Validation-Passed-A")), Some("A"));
        assert_eq!(attestation(Some("TN-Validation-Failed-A")), None);
        assert_eq!(attestation(Some("No-TN-Validation")), None);
        assert_eq!(attestation(None), None);
        assert!(stream_twiml("wss://a.example/s?x=1&y=2").contains("wss://a.example/s?x=1&amp;y=2"));
    }
}
