//! `bridge.toml`: parsed whole, validated whole. Every problem is one line
//! naming the field; nothing starts until the file is right. Secrets and
//! certificates are only named here and read by [`crate::load`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod imap;
mod mail;
mod route;

pub use imap::{Imap, ImapAuth};
pub use mail::{Lmtp, LmtpListen, Mailbox};

pub use crate::sig::HmacAlgorithm;
use route::RawRoute;
pub use route::{ChatwootApi, HmacPlan, Outbound, Platform, Route, VapiAuth};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    core: Option<String>,
    webhooks: Option<RawWebhooks>,
    /// An extra CA the platforms' APIs are trusted with (a TLS-inspecting
    /// proxy; the tests' recording server), besides the public roots.
    platform_ca_file: Option<PathBuf>,
    /// Prometheus metrics (plain HTTP, `GET /metrics`).
    metrics_listen: Option<String>,
    #[serde(default, rename = "route")]
    routes: Vec<RawRoute>,
    lmtp: Option<mail::RawLmtp>,
    #[serde(default, rename = "mailbox")]
    mailboxes: Vec<mail::RawMailbox>,
    #[serde(default, rename = "imap")]
    imaps: Vec<imap::RawImap>,
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
    max_in_flight_per_source: Option<usize>,
}

/// The whole configuration, resolved.
#[derive(Clone, Debug)]
pub struct Config {
    /// The core API's base URL (`https://…`, no trailing slash).
    pub core: String,
    /// The HTTPS listener for the platforms (needed when there are routes).
    pub webhooks: Option<Webhooks>,
    pub platform_ca_file: Option<PathBuf>,
    pub routes: Vec<Route>,
    /// The LMTP listener (needed when there are mailboxes).
    pub lmtp: Option<Lmtp>,
    pub mailboxes: Vec<Mailbox>,
    /// Hosted mailboxes read over IMAP.
    pub imaps: Vec<Imap>,
    /// The Prometheus listener (plain HTTP, loopback or a monitoring network).
    pub metrics_listen: Option<SocketAddr>,
}

#[derive(Clone, Debug)]
pub struct Webhooks {
    pub listen: SocketAddr,
    pub tls: ListenerTls,
    /// The URL the platforms call, without a trailing slash (Twilio signs it).
    pub public_url: String,
    pub max_body_bytes: usize,
    /// Requests one source address may have in flight at once (L6).
    pub max_in_flight_per_source: usize,
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

pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Requests in flight from one address before the next is refused (503):
/// the platforms send a handful at a time; a trickler holds no more.
pub const DEFAULT_MAX_IN_FLIGHT_PER_SOURCE: usize = 64;

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
    let webhooks = raw.webhooks.map(|w| webhooks(w, base, &mut errs));
    let lmtp = mail::lmtp(raw.lmtp, base, &mut errs);
    let mailboxes = mail::mailboxes(raw.mailboxes, base, &mut errs);
    let imaps = imap::imaps(raw.imaps, base, &mut errs);
    let mut routes = Vec::new();
    for (i, r) in raw.routes.into_iter().enumerate() {
        if let Some(route) = route::route(i, r, base, &mut errs) {
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
    if routes.is_empty() && mailboxes.is_empty() && imaps.is_empty() && errs.is_empty() {
        errs.push(
            "route, mailbox, imap: none configured (a [[route]] for a platform, a [[mailbox]] or [[imap]] for mail)"
                .to_owned(),
        );
    }
    if !routes.is_empty() && webhooks.is_none() {
        errs.push(
            "webhooks: missing ([webhooks] with listen, tls_cert, tls_key, public_url: the routes need it)".to_owned(),
        );
    }
    if !mailboxes.is_empty() && lmtp.is_none() {
        errs.push("lmtp: missing ([lmtp] with listen: the mailboxes need it)".to_owned());
    }
    let platform_ca_file = raw.platform_ca_file.map(|p| base.join(p));
    let metrics_listen = raw.metrics_listen.as_deref().and_then(|m| match m.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            errs.push("metrics_listen: not an address:port (e.g. \"127.0.0.1:9465\")".to_owned());
            None
        }
    });
    let webhooks = match webhooks {
        Some(Some(w)) => Some(w),
        Some(None) => return Err(errs),
        None => None,
    };
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(Config { core, webhooks, platform_ca_file, routes, lmtp, mailboxes, imaps, metrics_listen })
}

fn webhooks(w: RawWebhooks, base: &Path, errs: &mut Vec<String>) -> Option<Webhooks> {
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
    let max_in_flight_per_source = w.max_in_flight_per_source.unwrap_or(DEFAULT_MAX_IN_FLIGHT_PER_SOURCE);
    if !(1..=100_000).contains(&max_in_flight_per_source) {
        errs.push("webhooks.max_in_flight_per_source: between 1 and 100000".to_owned());
    }
    Some(Webhooks { listen: listen?, tls: tls?, public_url, max_body_bytes, max_in_flight_per_source })
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
        assert_eq!(c.webhooks.as_ref().unwrap().public_url, "https://bridge.sunrise.example");
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
    fn mail_only_needs_no_webhooks() {
        let mail = "core = \"https://127.0.0.1:8443\"\n[lmtp]\nlisten = \"unix:run/lmtp.sock\"\n[[mailbox]]\ndomain = \"Intake.Sunrise.example\"\ncerts = \"certs/email\"\n";
        let c = parse(mail, Path::new("/etc/t/bridge.toml")).unwrap();
        let lmtp = c.lmtp.unwrap();
        assert_eq!(lmtp.listen, LmtpListen::Unix("/etc/t/run/lmtp.sock".into()));
        assert_eq!((lmtp.socket_mode, lmtp.max_message_bytes), (0o660, 10 * 1024 * 1024));
        assert_eq!(c.mailboxes[0].domain, "intake.sunrise.example");
        assert!(c.webhooks.is_none());
        let port25 = mail.replace("unix:run/lmtp.sock", "127.0.0.1:25");
        assert!(parse(&port25, Path::new("b.toml")).unwrap_err()[0].contains("port 25"));
        let no_lmtp = "core = \"https://127.0.0.1:8443\"\n[[mailbox]]\ndomain = \"a.example\"\ncerts = \"c\"\n";
        assert!(parse(no_lmtp, Path::new("b.toml")).unwrap_err().join("\n").contains("lmtp: missing"));
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
