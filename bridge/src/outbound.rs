//! What the bridge sends a platform's API to call a patient back (a due
//! callback the core handed it): Vapi `POST /call`, Retell
//! `POST /v2/create-phone-call`, Twilio's Calls resource; and the call id
//! each answers with. Pure: the shell ([`crate::callbacks`]) sends them.

use serde_json::{Value, json};

use crate::config::{Outbound, Platform, Route};
use crate::context::Context;

/// Said first on a call back unless the route's template says otherwise:
/// whoever answers may not be the patient, so it names nobody.
pub const CALLBACK_FIRST_MESSAGE: &str = "Hello, this is your clinic returning your call. Who am I speaking with?";

/// The platform API path for placing a call.
pub fn call_path(platform: Platform, outbound: &Outbound) -> String {
    match platform {
        Platform::Vapi | Platform::Chatwoot => "/call".to_owned(),
        Platform::Retell => "/v2/create-phone-call".to_owned(),
        Platform::Twilio => {
            format!("/2010-04-01/Accounts/{}/Calls.json", outbound.account_sid.as_deref().unwrap_or_default())
        }
    }
}

/// Vapi `POST /call`: the route's assistant, its number, the patient's
/// number and the resume context for this call only.
pub fn vapi_call(route: &Route, outbound: &Outbound, phone: &str, ctx: &Context, secret: &[u8]) -> Value {
    let first = match &route.first_message {
        Some(t) => ctx.first_message(Some(t)),
        None => CALLBACK_FIRST_MESSAGE.to_owned(),
    };
    json!({
        "assistantId": route.assistant_id,
        "phoneNumberId": outbound.from,
        "customer": {"number": phone},
        "assistantOverrides": {
            "variableValues": ctx.variables(),
            "firstMessage": first,
            "metadata": crate::sig::session_metadata(secret, &ctx.session_id)
        }
    })
}

/// Retell's create-phone-call: string dynamic variables, the session in
/// metadata (sent back with every event of the call).
pub fn retell_call(outbound: &Outbound, phone: &str, ctx: &Context, secret: &[u8]) -> Value {
    json!({
        "from_number": outbound.from,
        "to_number": phone,
        "retell_llm_dynamic_variables": ctx.variables(),
        "metadata": crate::sig::session_metadata(secret, &ctx.session_id)
    })
}

/// Twilio's Calls resource (form-encoded): the route's TwiML, already
/// rendered for the session, and the status callback that ends it.
pub fn twilio_call(outbound: &Outbound, phone: &str, twiml: &str, status_url: &str) -> Vec<(String, String)> {
    [
        ("To", phone),
        ("From", outbound.from.as_str()),
        ("Twiml", twiml),
        ("StatusCallback", status_url),
        ("StatusCallbackEvent", "completed"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

/// Twilio's Messages resource: one text.
pub fn twilio_message(outbound: &Outbound, to: &str, text: &str) -> Vec<(String, String)> {
    vec![("To".into(), to.to_owned()), ("From".into(), outbound.from.clone()), ("Body".into(), text.to_owned())]
}

pub fn message_path(outbound: &Outbound) -> String {
    format!("/2010-04-01/Accounts/{}/Messages.json", outbound.account_sid.as_deref().unwrap_or_default())
}

/// The call id in the platform's answer (Vapi `id`, Retell `call_id`,
/// Twilio `sid`).
pub fn call_id(platform: Platform, answer: &Value) -> Option<String> {
    let key = match platform {
        Platform::Vapi => "id",
        Platform::Retell => "call_id",
        Platform::Twilio => "sid",
        Platform::Chatwoot => return None,
    };
    answer.get(key).and_then(Value::as_str).filter(|s| !s.is_empty() && s.len() <= 200).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbound(from: &str, sid: Option<&str>) -> Outbound {
        Outbound {
            api_url: "https://api.example".into(),
            api_key_file: None,
            from: from.into(),
            account_sid: sid.map(str::to_owned),
            poll_secs: 15,
        }
    }

    fn ctx() -> Context {
        serde_json::from_value(json!({"session_id": "ses_1", "identity": {"status": "resolved", "confirm_with": ["date_of_birth"]}, "greeting_name": "Maria"})).unwrap()
    }

    #[test]
    fn the_documented_request_shapes() {
        let o = outbound("pn_1", None);
        let route = Route {
            name: "r".into(),
            platform: Platform::Vapi,
            certs: "c".into(),
            secret_file: "s".into(),
            vapi_auth: crate::config::VapiAuth::Secret,
            assistant_id: Some("asst".into()),
            first_message: None,
            twiml: None,
            sms_certs: None,
            outbound: None,
            sms_via: None,
            chatwoot_api: None,
            portal_key_file: None,
        };
        let v = vapi_call(&route, &o, "+14155550100", &ctx(), b"route-secret");
        assert_eq!(v["assistantId"], "asst");
        assert_eq!(v["phoneNumberId"], "pn_1");
        assert_eq!(v["customer"]["number"], "+14155550100");
        assert_eq!(v["assistantOverrides"]["metadata"]["throughline_session"], "ses_1");
        assert_eq!(v["assistantOverrides"]["firstMessage"], CALLBACK_FIRST_MESSAGE);
        let r = retell_call(&outbound("+14155559999", None), "+14155550100", &ctx(), b"route-secret");
        // The session rides with its tag: only this route's secret makes one (L4).
        let tagged = |m: &Value| {
            crate::sig::tagged_session(
                b"route-secret",
                m["throughline_session"].as_str(),
                m["throughline_tag"].as_str(),
            )
        };
        assert_eq!(tagged(&r["metadata"]).as_deref(), Some("ses_1"));
        assert_eq!(tagged(&v["assistantOverrides"]["metadata"]).as_deref(), Some("ses_1"));
        assert_eq!((r["from_number"].as_str(), r["to_number"].as_str()), (Some("+14155559999"), Some("+14155550100")));
        assert!(r["retell_llm_dynamic_variables"].as_object().unwrap().values().all(Value::is_string));
        let t = outbound("+14155559999", Some("AC1"));
        assert_eq!(call_path(Platform::Twilio, &t), "/2010-04-01/Accounts/AC1/Calls.json");
        assert_eq!(twilio_call(&t, "+1", "<Response/>", "https://b/s")[2], ("Twiml".into(), "<Response/>".into()));
        assert_eq!(call_id(Platform::Retell, &json!({"call_id": "c1"})).as_deref(), Some("c1"));
        assert_eq!(call_id(Platform::Twilio, &json!({"id": "x"})), None);
    }
}
