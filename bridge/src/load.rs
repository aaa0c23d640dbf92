//! Start-up: read each route's secret and certificates, build its mTLS
//! client, and report every problem at once (one line each), before any
//! port is bound.

use std::collections::HashMap;
use std::path::Path;

use secrecy::{ExposeSecret as _, SecretSlice};

use crate::config::{Config, Route};
use crate::core::Core;
use crate::tls;

/// A route ready to serve: its configuration, secret and core client(s).
pub struct LiveRoute {
    pub cfg: Route,
    pub secret: SecretSlice<u8>,
    pub core: Core,
    /// Twilio only: the SMS channel's certificate, for `/twilio/{route}/sms`.
    pub sms_core: Option<Core>,
    /// Vapi's private API key (calls back), or Chatwoot's API token (notes).
    pub api_key: Option<SecretSlice<u8>>,
    /// Chatwoot: the portal's login-signing key (at least 32 bytes).
    pub portal_key: Option<SecretSlice<u8>>,
}

fn read_secret(path: &Path, what: &str, errs: &mut Vec<String>) -> Option<SecretSlice<u8>> {
    let mut b = read(path, what, errs)?;
    while b.last().is_some_and(u8::is_ascii_whitespace) {
        b.pop();
    }
    if b.is_empty() {
        errs.push(format!("{what}: {} is empty", path.display()));
        return None;
    }
    Some(SecretSlice::from(b))
}

fn read(path: &Path, what: &str, errs: &mut Vec<String>) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(b) => Some(b),
        Err(e) => {
            errs.push(format!("{what}: cannot read {}: {}", path.display(), e.kind()));
            None
        }
    }
}

pub fn core_client(base: &str, dir: &Path, what: &str, errs: &mut Vec<String>) -> Option<Core> {
    let ca = read(&dir.join("ca.crt"), what, errs);
    let cert = read(&dir.join("client.crt"), what, errs);
    let key = read(&dir.join("client.key"), what, errs);
    let config = match tls::client(&ca?, &cert?, &key?) {
        Ok(c) => c,
        Err(e) => {
            errs.push(format!("{what}: the certificates in {} do not load: {e}", dir.display()));
            return None;
        }
    };
    match Core::new(base, config) {
        Ok(c) => Some(c),
        Err(_) => {
            errs.push(format!("{what}: cannot build the HTTPS client for {}", dir.display()));
            None
        }
    }
}

/// Each `[[mailbox]]` with a core client holding its email certificate.
pub fn mailboxes(config: &Config) -> Result<Vec<crate::lmtp::LiveMailbox>, Vec<String>> {
    let mut errs = Vec::new();
    let mut out = Vec::new();
    for m in &config.mailboxes {
        let what = format!("mailbox {:?} certs", m.domain);
        if let Some(core) = core_client(&config.core, &m.certs, &what, &mut errs) {
            out.push(crate::lmtp::LiveMailbox { domain: m.domain.clone(), core });
        }
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

pub fn routes(config: &Config) -> Result<HashMap<String, LiveRoute>, Vec<String>> {
    let mut errs = Vec::new();
    let mut out = HashMap::new();
    for r in &config.routes {
        let what = format!("route {:?}", r.name);
        let secret = read_secret(&r.secret_file, &format!("{what} secret_file"), &mut errs);
        let api_key = r
            .outbound
            .as_ref()
            .and_then(|o| o.api_key_file.as_ref())
            .or(r.chatwoot_api.as_ref().map(|c| &c.token_file))
            .and_then(|p| read_secret(p, &format!("{what} api key or token file"), &mut errs));
        let portal_key =
            r.portal_key_file.as_ref().and_then(|p| read_secret(p, &format!("{what} portal_key_file"), &mut errs));
        if let (Some(k), Some(p)) = (&portal_key, &r.portal_key_file)
            && k.expose_secret().len() < 32
        {
            errs.push(format!("{what} portal_key_file: {} holds fewer than 32 bytes", p.display()));
        }
        let core = core_client(&config.core, &r.certs, &format!("{what} certs"), &mut errs);
        let sms_core =
            r.sms_certs.as_ref().and_then(|d| core_client(&config.core, d, &format!("{what} sms_certs"), &mut errs));
        if let (Some(secret), Some(core)) = (secret, core) {
            out.insert(r.name.clone(), LiveRoute { cfg: r.clone(), secret, core, sms_core, api_key, portal_key });
        }
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}
