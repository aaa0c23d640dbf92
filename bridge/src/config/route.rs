//! A `[[route]]`: one platform account bound to one tenant's channel
//! certificate, validated field by field.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::sig::HmacAlgorithm;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    name: Option<String>,
    platform: Option<String>,
    certs: Option<PathBuf>,
    secret_file: Option<PathBuf>,
    // Vapi
    assistant_id: Option<String>,
    auth: Option<String>,
    hmac_algorithm: Option<String>,
    hmac_signature_header: Option<String>,
    hmac_timestamp_header: Option<String>,
    hmac_prefix: Option<String>,
    hmac_encoding: Option<String>,
    first_message: Option<String>,
    // Twilio
    twiml: Option<String>,
    stream_url: Option<String>,
    sms_certs: Option<PathBuf>,
    // Outbound calls for due callbacks (and texts, Twilio).
    api_key_file: Option<PathBuf>,
    phone_number_id: Option<String>,
    from_number: Option<String>,
    from: Option<String>,
    account_sid: Option<String>,
    api_url: Option<String>,
    callback_poll_secs: Option<u64>,
    /// Vapi and Retell: the Twilio route whose account sends texts.
    sms_via: Option<String>,
    /// Chatwoot: the API token private notes are posted with.
    api_token_file: Option<PathBuf>,
    /// Chatwoot: the key the clinic's portal signs logins with.
    portal_key_file: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    Vapi,
    Retell,
    Twilio,
    Chatwoot,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Vapi => "vapi",
            Platform::Retell => "retell",
            Platform::Twilio => "twilio",
            Platform::Chatwoot => "chatwoot",
        }
    }
}

/// How a Vapi route's requests prove they come from Vapi.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VapiAuth {
    /// The secret as `X-Vapi-Secret` or `Authorization: Bearer` (Vapi's
    /// legacy secret and its Bearer credential).
    Secret,
    /// Vapi's HMAC credential.
    Hmac(HmacPlan),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HmacPlan {
    pub algorithm: HmacAlgorithm,
    pub signature_header: String,
    pub timestamp_header: String,
    pub prefix: String,
    pub base64: bool,
}

#[derive(Clone, Debug)]
pub struct Route {
    pub name: String,
    pub platform: Platform,
    /// What `throughline cert issue --out` wrote for this tenant and channel.
    pub certs: PathBuf,
    pub secret_file: PathBuf,
    pub vapi_auth: VapiAuth,
    pub assistant_id: Option<String>,
    pub first_message: Option<String>,
    pub twiml: Option<String>,
    pub sms_certs: Option<PathBuf>,
    /// Set when the route places calls for due callbacks itself.
    pub outbound: Option<Outbound>,
    /// The Twilio route (with outbound settings) that sends this route's
    /// texts: one-time codes, appointment confirmations.
    pub sms_via: Option<String>,
    /// Chatwoot: where to post the resume context as a private note.
    pub chatwoot_api: Option<ChatwootApi>,
    /// Chatwoot: the key the clinic's portal signs `throughline_login`
    /// tokens with; without it no Chatwoot contact is a login.
    pub portal_key_file: Option<PathBuf>,
}

/// Chatwoot's API (its base URL and a token: an agent bot's or a user's).
#[derive(Clone, Debug)]
pub struct ChatwootApi {
    pub url: String,
    pub token_file: PathBuf,
}

/// What a route needs to call patients back through its platform.
#[derive(Clone, Debug)]
pub struct Outbound {
    /// The platform's API (default: its public one).
    pub api_url: String,
    /// Vapi: the API key; Retell and Twilio use `secret_file`.
    pub api_key_file: Option<PathBuf>,
    /// Vapi `phoneNumberId`, Retell `from_number`, Twilio `from`.
    pub from: String,
    /// Twilio's Account SID.
    pub account_sid: Option<String>,
    pub poll_secs: u64,
}

pub(super) fn route(i: usize, r: RawRoute, base: &Path, errs: &mut Vec<String>) -> Option<Route> {
    let at = |field: &str| format!("route[{i}].{field}");
    let start = errs.len();
    let vapi_auth = vapi_auth(&r, &at, errs);
    let name = r.name.clone().unwrap_or_default();
    let platform = match r.platform.as_deref() {
        Some("vapi") => Some(Platform::Vapi),
        Some("retell") => Some(Platform::Retell),
        Some("twilio") => Some(Platform::Twilio),
        Some("chatwoot") => Some(Platform::Chatwoot),
        _ => None,
    };
    let chatwoot_api = chatwoot_api(&r, platform, base, &at, errs);
    let outbound = if platform == Some(Platform::Chatwoot) { None } else { outbound(&r, platform, base, &at, errs) };
    let name_ok = (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !name_ok {
        errs.push(format!("{}: 1 to 64 of a-z 0-9 - _ (it is the URL path)", at("name")));
    }
    match r.platform.as_deref() {
        Some("vapi" | "retell" | "twilio" | "chatwoot") => {}
        Some(other) => errs.push(format!("{}: {other:?} is not vapi, retell, twilio or chatwoot", at("platform"))),
        None => errs.push(format!("{}: missing (vapi, retell, twilio or chatwoot)", at("platform"))),
    }
    let certs = r.certs.map(|p| base.join(p));
    if certs.is_none() {
        errs.push(format!("{}: missing (the directory `throughline cert issue --out` wrote)", at("certs")));
    }
    let secret_file = r.secret_file.map(|p| base.join(p));
    if secret_file.is_none() {
        errs.push(format!("{}: missing (a file holding the platform's secret)", at("secret_file")));
    }
    let only = |field: &str, set: bool, on: Platform, errs: &mut Vec<String>| {
        if set && platform.is_some_and(|p| p != on) {
            errs.push(format!("{}: only for platform = \"{}\"", at(field), on.as_str()));
        }
    };
    only("assistant_id", r.assistant_id.is_some(), Platform::Vapi, errs);
    only("auth", r.auth.is_some(), Platform::Vapi, errs);
    only("first_message", r.first_message.is_some(), Platform::Vapi, errs);
    only("twiml", r.twiml.is_some(), Platform::Twilio, errs);
    only("stream_url", r.stream_url.is_some(), Platform::Twilio, errs);
    only("sms_certs", r.sms_certs.is_some(), Platform::Twilio, errs);
    only("portal_key_file", r.portal_key_file.is_some(), Platform::Chatwoot, errs);
    if r.sms_via.is_some() && platform == Some(Platform::Twilio) {
        errs.push(format!(
            "{}: for vapi and retell routes (a Twilio route texts through its own account)",
            at("sms_via")
        ));
    }
    if platform == Some(Platform::Vapi) && r.assistant_id.as_deref().is_none_or(str::is_empty) {
        errs.push(format!("{}: missing (the Vapi assistant that answers the calls)", at("assistant_id")));
    }
    let twiml = match (r.twiml, r.stream_url) {
        (Some(_), Some(_)) => {
            errs.push(format!("{}: give twiml or stream_url, not both", at("twiml")));
            None
        }
        (Some(t), None) => Some(t),
        (None, Some(url)) if url.starts_with("wss://") => Some(crate::twilio::stream_twiml(&url)),
        (None, Some(_)) => {
            errs.push(format!("{}: must be a wss:// URL", at("stream_url")));
            None
        }
        (None, None) => {
            if platform == Some(Platform::Twilio) {
                errs.push(format!("{}: missing (twiml, or stream_url for a <Connect><Stream>)", at("twiml")));
            }
            None
        }
    };
    for (field, template) in [("first_message", r.first_message.as_deref()), ("twiml", twiml.as_deref())] {
        if let Some(t) = template
            && let Err(e) = crate::template::check(t)
        {
            errs.push(format!("{}: {e}", at(field)));
        }
    }
    if errs.len() > start {
        return None;
    }
    Some(Route {
        name,
        platform: platform?,
        certs: certs?,
        secret_file: secret_file?,
        vapi_auth,
        assistant_id: r.assistant_id,
        first_message: r.first_message,
        twiml,
        sms_certs: r.sms_certs.map(|p| base.join(p)),
        outbound,
        sms_via: r.sms_via,
        chatwoot_api,
        portal_key_file: r.portal_key_file.map(|p| base.join(p)),
    })
}

/// Chatwoot's `api_url` and `api_token_file`: both or neither.
fn chatwoot_api(
    r: &RawRoute,
    platform: Option<Platform>,
    base: &Path,
    at: &dyn Fn(&str) -> String,
    errs: &mut Vec<String>,
) -> Option<ChatwootApi> {
    if platform != Some(Platform::Chatwoot) {
        if r.api_token_file.is_some() {
            errs.push(format!("{}: only for platform = \"chatwoot\"", at("api_token_file")));
        }
        return None;
    }
    match (&r.api_url, &r.api_token_file) {
        (None, None) => None,
        (Some(url), Some(token)) if url.starts_with("https://") || url.starts_with("http://") => {
            Some(ChatwootApi { url: url.trim_end_matches('/').to_owned(), token_file: base.join(token) })
        }
        (Some(_), Some(_)) => {
            errs.push(format!("{}: Chatwoot's http(s):// base URL", at("api_url")));
            None
        }
        _ => {
            errs.push(format!("{}: api_url and api_token_file go together (private notes)", at("api_token_file")));
            None
        }
    }
}

/// The outbound settings: all of a platform's or none.
fn outbound(
    r: &RawRoute,
    platform: Option<Platform>,
    base: &Path,
    at: &dyn Fn(&str) -> String,
    errs: &mut Vec<String>,
) -> Option<Outbound> {
    let any = r.api_key_file.is_some()
        || r.phone_number_id.is_some()
        || r.from_number.is_some()
        || r.from.is_some()
        || r.account_sid.is_some()
        || r.api_url.is_some()
        || r.callback_poll_secs.is_some();
    if !any {
        return None;
    }
    let platform = platform?;
    let mut need = |field: &str, value: &Option<String>, on: Platform| -> Option<String> {
        match value {
            Some(v) if platform == on && !v.trim().is_empty() => Some(v.trim().to_owned()),
            Some(_) if platform != on => {
                errs.push(format!("{}: only for platform = \"{}\"", at(field), on.as_str()));
                None
            }
            _ if platform == on => {
                errs.push(format!("{}: missing (outbound callbacks through {} need it)", at(field), on.as_str()));
                None
            }
            _ => None,
        }
    };
    let vapi_from = need("phone_number_id", &r.phone_number_id, Platform::Vapi);
    let retell_from = need("from_number", &r.from_number, Platform::Retell);
    let twilio_from = need("from", &r.from, Platform::Twilio);
    let account_sid = need("account_sid", &r.account_sid, Platform::Twilio);
    let api_key_file = match (&r.api_key_file, platform) {
        (Some(p), Platform::Vapi) => Some(base.join(p)),
        (None, Platform::Vapi) => {
            errs.push(format!("{}: missing (Vapi's private API key, for POST /call)", at("api_key_file")));
            None
        }
        (Some(_), _) => {
            errs.push(format!("{}: only for platform = \"vapi\" (the others use secret_file)", at("api_key_file")));
            None
        }
        (None, _) => None,
    };
    let default_api = match platform {
        Platform::Vapi => "https://api.vapi.ai",
        Platform::Retell => "https://api.retellai.com",
        Platform::Twilio => "https://api.twilio.com",
        Platform::Chatwoot => return None,
    };
    let api_url = r.api_url.as_deref().unwrap_or(default_api).trim_end_matches('/').to_owned();
    if !api_url.starts_with("https://") {
        errs.push(format!("{}: must be an https:// URL", at("api_url")));
    }
    let poll_secs = r.callback_poll_secs.unwrap_or(15);
    if !(1..=3600).contains(&poll_secs) {
        errs.push(format!("{}: 1 to 3600 seconds", at("callback_poll_secs")));
    }
    Some(Outbound { api_url, api_key_file, from: vapi_from.or(retell_from).or(twilio_from)?, account_sid, poll_secs })
}

fn vapi_auth(r: &RawRoute, at: &dyn Fn(&str) -> String, errs: &mut Vec<String>) -> VapiAuth {
    let hmac_fields = r.hmac_algorithm.is_some()
        || r.hmac_signature_header.is_some()
        || r.hmac_timestamp_header.is_some()
        || r.hmac_prefix.is_some()
        || r.hmac_encoding.is_some();
    match r.auth.as_deref() {
        None | Some("secret") | Some("bearer") => {
            if hmac_fields {
                errs.push(format!("{}: hmac_* settings need auth = \"hmac\"", at("auth")));
            }
            VapiAuth::Secret
        }
        Some("hmac") => {
            let algorithm = match r.hmac_algorithm.as_deref().unwrap_or("sha256") {
                "sha1" => HmacAlgorithm::Sha1,
                "sha256" => HmacAlgorithm::Sha256,
                "sha512" => HmacAlgorithm::Sha512,
                other => {
                    errs.push(format!("{}: {other:?} is not sha256, sha512 or sha1", at("hmac_algorithm")));
                    HmacAlgorithm::Sha256
                }
            };
            let base64 = match r.hmac_encoding.as_deref().unwrap_or("hex") {
                "hex" => false,
                "base64" => true,
                other => {
                    errs.push(format!("{}: {other:?} is not hex or base64", at("hmac_encoding")));
                    false
                }
            };
            VapiAuth::Hmac(HmacPlan {
                algorithm,
                signature_header: r.hmac_signature_header.clone().unwrap_or_else(|| "x-signature".into()),
                timestamp_header: r.hmac_timestamp_header.clone().unwrap_or_else(|| "x-timestamp".into()),
                prefix: r.hmac_prefix.clone().unwrap_or_default(),
                base64,
            })
        }
        Some(other) => {
            errs.push(format!("{}: {other:?} is not secret, bearer or hmac", at("auth")));
            VapiAuth::Secret
        }
    }
}
