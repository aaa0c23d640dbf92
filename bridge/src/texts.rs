//! Texts through a Twilio route's account (its Messages resource): the
//! one-time codes the core asks to be sent to the number on file, and
//! appointment confirmations (times, never reasons).

use std::time::Duration;

use secrecy::ExposeSecret as _;

use crate::load::LiveRoute;
use crate::outbound;

/// Where a route's texts go out: the platform client and the Twilio route.
#[derive(Clone, Copy)]
pub struct Texts<'a> {
    pub platform: &'a reqwest::Client,
    pub twilio: &'a LiveRoute,
    /// The number the call came from (confirmations go there).
    pub caller: Option<&'a str>,
}

/// The text after an interrupted call: it names nobody and says nothing of
/// why they called (the phone may be shared), only where to pick up.
pub fn recovery(link: &str) -> String {
    format!("We got cut off. You can pick up where you left off here: {link} (Not for emergencies: call 911.)")
}

impl Texts<'_> {
    pub async fn send(&self, to: &str, text: &str) -> Result<(), &'static str> {
        let o = self.twilio.cfg.outbound.as_ref().ok_or("no_outbound")?;
        let token = std::str::from_utf8(self.twilio.secret.expose_secret()).map_err(|_| "auth_token_not_utf8")?;
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(outbound::twilio_message(o, to, text))
            .finish();
        let res = self
            .platform
            .post(format!("{}{}", o.api_url, outbound::message_path(o)))
            .basic_auth(o.account_sid.as_deref().unwrap_or_default(), Some(token))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|_| "platform_unreachable")?;
        if res.status().is_success() { Ok(()) } else { Err("platform_refused") }
    }

    /// A confirmation to the caller's number; a failure is logged, not the
    /// tool's failure (the booking stands).
    pub async fn confirm(&self, text: &str) {
        let Some(to) = self.caller else { return };
        if let Err(code) = self.send(to, text).await {
            tracing::warn!(route = self.twilio.cfg.name, code, "confirmation text not sent");
        }
    }
}
