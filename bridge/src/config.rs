//! `bridge.toml`: parsed whole, validated whole. Every problem is one line
//! naming the field; nothing starts until the file is right. Secrets and
//! certificates are only named here and read by [`crate::load`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    core: Option<String>,
    webhooks: Option<RawWebhooks>,
    /// An extra CA the platforms' APIs are trusted with (a TLS-inspecting
    /// proxy; the tests' recording server), besides the public roots.
    platform_ca_file: Option<PathBuf>,
    #[serde(default, rename = "route")]
    routes: Vec<RawRoute>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhooks {
    listen: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    #[serde(default)]
    danger_plain_http: bool,
    public_url: Option<String>,
    max_body_bytes: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
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
}

/// The whole configuration, resolved.
#[derive(Clone, Debug)]
pub struct Config {
    /// The core API's base URL (`https://…`, no trailing slash).
    pub core: String,
    pub webhooks: Webhooks,
    pub platform_ca_file: Option<PathBuf>,
    pub routes: Vec<Route>,
}

#[derive(Clone, Debug)]
pub struct Webhooks {
    pub listen: SocketAddr,
    pub tls: ListenerTls,
    /// The URL the platforms call, without a trailing slash (Twilio signs it).
    pub public_url: String,
    pub max_body_bytes: usize,
}

#[derive(Clone, Debug)]
pub enum ListenerTls {
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
    /// Only on a loopback address, behind a TLS-terminating proxy.
    DangerPlainHttp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    Vapi,
    Retell,
    Twilio,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Vapi => "vapi",
            Platform::Retell => "retell",
            Platform::Twilio => "twilio",
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HmacAlgorithm {
    Sha1,
    Sha256,
    Sha512,
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

pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Parses and validates `text` (from `path`, which relative paths are taken
/// against). The error is every problem, one line each.
pub fn parse(text: &str, path: &Path) -> Result<Config, Vec<String>> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| vec![one_line(&e.to_string())])?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut errs = Vec::new();
    let core = match raw.core.as_deref().map(str::trim) {
        Some(c) if c.starts_with("https://") => c.trim_end_matches('/').to_owned(),
        Some(_) => {
            errs.push("core: must be the core API's https:// URL (it is mTLS only)".to_owned());
            String::new()
        }
        None => {
            errs.push("core: missing (the core API's URL, e.g. \"https://127.0.0.1:8443\")".to_owned());
            String::new()
        }
    };
    let webhooks = webhooks(raw.webhooks, base, &mut errs);
    let mut routes = Vec::new();
    for (i, r) in raw.routes.into_iter().enumerate() {
        if let Some(route) = route(i, r, base, &mut errs) {
            if routes.iter().any(|o: &Route| o.name == route.name) {
                errs.push(format!("route[{i}].name: {:?} is used by another route", route.name));
            }
            routes.push(route);
        }
    }
    for (i, r) in routes.iter().enumerate() {
        let Some(via) = &r.sms_via else { continue };
        let ok = routes.iter().any(|t| &t.name == via && t.platform == Platform::Twilio && t.outbound.is_some());
        if !ok {
            errs.push(format!("route[{i}].sms_via: {via:?} is not a twilio route with account_sid and from"));
        }
    }
    if routes.is_empty() && errs.is_empty() {
        errs.push("route: none configured ([[route]] with name, platform, certs, secret_file)".to_owned());
    }
    let platform_ca_file = raw.platform_ca_file.map(|p| base.join(p));
    match webhooks {
        Some(webhooks) if errs.is_empty() => Ok(Config { core, webhooks, platform_ca_file, routes }),
        _ => Err(errs),
    }
}

fn webhooks(raw: Option<RawWebhooks>, base: &Path, errs: &mut Vec<String>) -> Option<Webhooks> {
    let Some(w) = raw else {
        errs.push("webhooks: missing ([webhooks] with listen, tls_cert, tls_key, public_url)".to_owned());
        return None;
    };
    let listen = match w.listen.as_deref().map(str::parse::<SocketAddr>) {
        Some(Ok(a)) => Some(a),
        Some(Err(_)) => {
            errs.push("webhooks.listen: not an address:port (e.g. \"0.0.0.0:9443\")".to_owned());
            None
        }
        None => {
            errs.push("webhooks.listen: missing".to_owned());
            None
        }
    };
    let tls = match (w.danger_plain_http, w.tls_cert, w.tls_key) {
        (true, None, None) => match listen {
            Some(a) if a.ip().is_loopback() => Some(ListenerTls::DangerPlainHttp),
            Some(_) => {
                errs.push("webhooks.danger_plain_http: only on a loopback address (behind a TLS proxy)".to_owned());
                None
            }
            None => None,
        },
        (true, _, _) => {
            errs.push("webhooks.danger_plain_http: cannot be set with tls_cert or tls_key".to_owned());
            None
        }
        (false, Some(cert), Some(key)) => Some(ListenerTls::Files { cert: base.join(cert), key: base.join(key) }),
        (false, _, _) => {
            errs.push("webhooks.tls_cert and webhooks.tls_key: both needed (platforms call over HTTPS)".to_owned());
            None
        }
    };
    let public_url = match w.public_url.as_deref().map(str::trim) {
        Some(u) if u.starts_with("https://") || u.starts_with("http://") => u.trim_end_matches('/').to_owned(),
        Some(_) => {
            errs.push("webhooks.public_url: must be the http(s):// URL the platforms call".to_owned());
            String::new()
        }
        None => {
            errs.push("webhooks.public_url: missing (the URL the platforms call; Twilio signs it)".to_owned());
            String::new()
        }
    };
    let max_body_bytes = w.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
    if !(1024..=16 * 1024 * 1024).contains(&max_body_bytes) {
        errs.push("webhooks.max_body_bytes: between 1024 and 16777216".to_owned());
    }
    Some(Webhooks { listen: listen?, tls: tls?, public_url, max_body_bytes })
}

fn route(i: usize, r: RawRoute, base: &Path, errs: &mut Vec<String>) -> Option<Route> {
    let at = |field: &str| format!("route[{i}].{field}");
    let start = errs.len();
    let vapi_auth = vapi_auth(&r, &at, errs);
    let name = r.name.clone().unwrap_or_default();
    let platform = match r.platform.as_deref() {
        Some("vapi") => Some(Platform::Vapi),
        Some("retell") => Some(Platform::Retell),
        Some("twilio") => Some(Platform::Twilio),
        _ => None,
    };
    let outbound = outbound(&r, platform, base, &at, errs);
    let name_ok = (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !name_ok {
        errs.push(format!("{}: 1 to 64 of a-z 0-9 - _ (it is the URL path)", at("name")));
    }
    match r.platform.as_deref() {
        Some("vapi" | "retell" | "twilio") => {}
        Some(other) => errs.push(format!("{}: {other:?} is not vapi, retell or twilio", at("platform"))),
        None => errs.push(format!("{}: missing (vapi, retell or twilio)", at("platform"))),
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
    })
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

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
core = "https://127.0.0.1:8443/"
[webhooks]
listen = "127.0.0.1:9443"
tls_cert = "bridge.crt"
tls_key = "bridge.key"
public_url = "https://bridge.sunrise.example/"
[[route]]
name = "sunrise-vapi"
platform = "vapi"
certs = "certs/voice"
secret_file = "secrets/vapi"
assistant_id = "asst_1"
[[route]]
name = "sunrise-twilio"
platform = "twilio"
certs = "/etc/certs/voice"
secret_file = "secrets/twilio"
stream_url = "wss://agent.example/stream"
"#;

    #[test]
    fn a_good_file_resolves_paths_and_urls() {
        let c = parse(GOOD, Path::new("/etc/throughline/bridge.toml")).unwrap();
        assert_eq!(c.core, "https://127.0.0.1:8443");
        assert_eq!(c.webhooks.public_url, "https://bridge.sunrise.example");
        assert_eq!(c.routes[0].certs, Path::new("/etc/throughline/certs/voice"));
        assert_eq!(c.routes[1].certs, Path::new("/etc/certs/voice"));
        assert!(c.routes[1].twiml.as_deref().unwrap().contains("wss://agent.example/stream"));
        assert_eq!(c.routes[0].vapi_auth, VapiAuth::Secret);
        assert!(c.routes[0].outbound.is_none());
    }

    #[test]
    fn outbound_needs_all_of_a_platforms_settings() {
        let vapi = GOOD.replace(
            "assistant_id = \"asst_1\"",
            "assistant_id = \"asst_1\"\nphone_number_id = \"pn_1\"\napi_key_file = \"k\"",
        );
        let c = parse(&vapi, Path::new("/etc/b.toml")).unwrap();
        let o = c.routes[0].outbound.as_ref().unwrap();
        assert_eq!((o.api_url.as_str(), o.from.as_str(), o.poll_secs), ("https://api.vapi.ai", "pn_1", 15));
        let half = GOOD.replace("stream_url", "from = \"+14155559999\"\nstream_url");
        let errs = parse(&half, Path::new("b.toml")).unwrap_err().join("\n");
        assert!(errs.contains("route[1].account_sid: missing"), "{errs}");
        let wrong = GOOD.replace("assistant_id = \"asst_1\"", "assistant_id = \"asst_1\"\nfrom_number = \"+1\"");
        assert!(
            parse(&wrong, Path::new("b.toml"))
                .unwrap_err()
                .join("\n")
                .contains("route[0].from_number: only for platform = \"retell\"")
        );
    }

    #[test]
    fn every_problem_is_one_line_naming_its_field() {
        let bad = r#"
core = "http://127.0.0.1:8443"
[webhooks]
listen = "0.0.0.0:9443"
danger_plain_http = true
public_url = "bridge.example"
[[route]]
name = "Bad Name"
platform = "zoom"
[[route]]
name = "v"
platform = "vapi"
certs = "c"
secret_file = "s"
twiml = "<Response/>"
auth = "hmac"
hmac_algorithm = "md5"
"#;
        let errs = parse(bad, Path::new("bridge.toml")).unwrap_err();
        let text = errs.join("\n");
        for needle in [
            "core: must be",
            "webhooks.danger_plain_http: only on a loopback",
            "webhooks.public_url",
            "route[0].name",
            "route[0].platform: \"zoom\"",
            "route[0].certs: missing",
            "route[0].secret_file: missing",
            "route[1].twiml: only for platform = \"twilio\"",
            "route[1].assistant_id: missing",
            "route[1].hmac_algorithm",
        ] {
            assert!(text.contains(needle), "{needle} not in:\n{text}");
        }
        assert!(errs.iter().all(|e| !e.contains('\n')));
    }

    #[test]
    fn unknown_keys_and_duplicate_routes_are_refused() {
        let typo = GOOD.replace("assistant_id", "assistant");
        assert!(parse(&typo, Path::new("b.toml")).unwrap_err()[0].contains("unknown field"));
        let dup = GOOD.replace("sunrise-twilio", "sunrise-vapi");
        assert!(parse(&dup, Path::new("b.toml")).unwrap_err().join("\n").contains("used by another route"));
    }

    #[test]
    fn a_broken_template_is_refused_at_start() {
        let t = GOOD
            .replace("stream_url = \"wss://agent.example/stream\"", "twiml = \"<Response>{{ session_id </Response>\"");
        assert!(parse(&t, Path::new("b.toml")).unwrap_err()[0].contains("route[1].twiml"));
    }
}
