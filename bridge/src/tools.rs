//! The tools an agent calls: their names and parameters are the contract
//! (docs/INTEGRATIONS.md), printed ready to paste by `throughline bridge
//! tools` and `GET /vapi/{route}/tools`. The session is never a parameter:
//! it comes from the call the platform signed.

use serde_json::{Value, json};

/// A parsed tool call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tool {
    ConfirmIdentity { date_of_birth: String },
    SendCode { via: String },
    ConfirmCode { code: String },
    SaveIntake { name: String, date_of_birth: String },
    Remember { key: String, value: String },
    Forget { key: String },
    BookAppointment { starts_at: String, duration_min: Option<u32>, reason: Option<String> },
    RescheduleAppointment { appointment_id: String, starts_at: String },
    CancelAppointment { appointment_id: String },
    RequestCallback { window_start: String, window_end: String },
    StartFresh,
}

struct Spec {
    name: &'static str,
    description: &'static str,
    /// (parameter, type, description, required)
    params: &'static [(&'static str, &'static str, &'static str, bool)],
}

const SPECS: &[Spec] = &[
    Spec {
        name: "confirm_identity",
        description: "Confirm the caller is the patient on file before discussing anything about them. Ask for their date of birth.",
        params: &[("date_of_birth", "string", "The caller's date of birth as YYYY-MM-DD.", true)],
    },
    Spec {
        name: "send_code",
        description: "Send a six-digit code to the patient's email or phone on file, when they cannot confirm their date of birth.",
        params: &[("via", "string", "email or sms.", true)],
    },
    Spec {
        name: "confirm_code",
        description: "Confirm the caller with the six-digit code they received.",
        params: &[("code", "string", "The six digits the caller reads out.", true)],
    },
    Spec {
        name: "save_intake",
        description: "Record a new patient's full name and date of birth.",
        params: &[
            ("name", "string", "The patient's full name.", true),
            ("date_of_birth", "string", "Date of birth as YYYY-MM-DD.", true),
        ],
    },
    Spec {
        name: "remember",
        description: "Remember something for this patient's conversation across calls, chats and emails. Use keys starting with pending_ for what is still to be done (pending_booking_date).",
        params: &[
            ("key", "string", "A short snake_case name, a-z 0-9 _.", true),
            ("value", "string", "What to remember.", true),
        ],
    },
    Spec {
        name: "forget",
        description: "Forget something remembered earlier, once it is done or no longer true.",
        params: &[("key", "string", "The name it was remembered under.", true)],
    },
    Spec {
        name: "book_appointment",
        description: "Book an appointment for the patient.",
        params: &[
            (
                "starts_at",
                "string",
                "Start as RFC 3339 with the clinic's UTC offset, e.g. 2027-03-16T14:00:00-07:00.",
                true,
            ),
            ("duration_min", "integer", "Length in minutes (default 30).", false),
            ("reason", "string", "Why the patient is coming, in a few words.", false),
        ],
    },
    Spec {
        name: "reschedule_appointment",
        description: "Move one of the patient's appointments to a new time.",
        params: &[
            ("appointment_id", "string", "The appointment's id (apt_…).", true),
            ("starts_at", "string", "New start as RFC 3339 with the clinic's UTC offset.", true),
        ],
    },
    Spec {
        name: "cancel_appointment",
        description: "Cancel one of the patient's appointments.",
        params: &[("appointment_id", "string", "The appointment's id (apt_…).", true)],
    },
    Spec {
        name: "request_callback",
        description: "Ask the clinic to call the patient back within a time window.",
        params: &[
            ("window_start", "string", "Earliest time, RFC 3339.", true),
            ("window_end", "string", "Latest time, RFC 3339.", true),
        ],
    },
    Spec {
        name: "start_fresh",
        description: "The patient asks to start over: close the conversation so nothing from before is used.",
        params: &[],
    },
];

pub fn names() -> impl Iterator<Item = &'static str> {
    SPECS.iter().map(|s| s.name)
}

fn schema(spec: &Spec) -> Value {
    let mut props = serde_json::Map::new();
    for (name, ty, description, _) in spec.params {
        props.insert((*name).to_owned(), json!({"type": ty, "description": description}));
    }
    let required: Vec<&str> = spec.params.iter().filter(|p| p.3).map(|p| p.0).collect();
    json!({"type": "object", "properties": props, "required": required})
}

/// Vapi function tools (`POST /tool` bodies), calling `server_url`.
pub fn vapi_definitions(server_url: &str) -> Value {
    Value::Array(
        SPECS
            .iter()
            .map(|s| {
                json!({
                    "type": "function",
                    "function": {"name": s.name, "description": s.description, "parameters": schema(s)},
                    "server": {"url": server_url},
                    "async": false
                })
            })
            .collect(),
    )
}

/// Retell custom functions (the agent's `general_tools`), calling `url`.
pub fn retell_definitions(url: &str) -> Value {
    Value::Array(
        SPECS
            .iter()
            .map(|s| {
                json!({
                    "type": "custom",
                    "name": s.name,
                    "description": s.description,
                    "url": url,
                    "method": "POST",
                    "parameters": schema(s),
                    "speak_during_execution": false,
                    "speak_after_execution": true,
                    "timeout_ms": 10000
                })
            })
            .collect(),
    )
}

/// A tool call from its name and arguments (an object, or a JSON string of
/// one, as Vapi sends either). Unknown extra arguments are ignored: models
/// add them.
pub fn parse(name: &str, args: &Value) -> Result<Tool, String> {
    let parsed;
    let args = match args {
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s).map_err(|_| "the arguments are not JSON".to_owned())?;
            &parsed
        }
        Value::Null => &Value::Null,
        other => other,
    };
    let text = |k: &str| -> Result<String, String> {
        match args.get(k) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            _ => Err(format!("{k} is required")),
        }
    };
    let optional = |k: &str| text(k).ok();
    Ok(match name {
        "confirm_identity" => Tool::ConfirmIdentity { date_of_birth: text("date_of_birth")? },
        "send_code" => Tool::SendCode { via: text("via")? },
        "confirm_code" => Tool::ConfirmCode { code: text("code")? },
        "save_intake" => Tool::SaveIntake { name: text("name")?, date_of_birth: text("date_of_birth")? },
        "remember" => Tool::Remember { key: text("key")?, value: text("value")? },
        "forget" => Tool::Forget { key: text("key")? },
        "book_appointment" => Tool::BookAppointment {
            starts_at: text("starts_at")?,
            duration_min: match optional("duration_min") {
                None => None,
                Some(d) => Some(d.parse().map_err(|_| "duration_min must be a whole number of minutes".to_owned())?),
            },
            reason: optional("reason"),
        },
        "reschedule_appointment" => {
            Tool::RescheduleAppointment { appointment_id: text("appointment_id")?, starts_at: text("starts_at")? }
        }
        "cancel_appointment" => Tool::CancelAppointment { appointment_id: text("appointment_id")? },
        "request_callback" => {
            Tool::RequestCallback { window_start: text("window_start")?, window_end: text("window_end")? }
        }
        "start_fresh" => Tool::StartFresh,
        _ => return Err(format!("there is no tool named {name:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_as_object_or_string() {
        let obj = json!({"date_of_birth": "1985-03-14", "session_id": "ses_made_up"});
        let want = Tool::ConfirmIdentity { date_of_birth: "1985-03-14".into() };
        assert_eq!(parse("confirm_identity", &obj).unwrap(), want);
        assert_eq!(parse("confirm_identity", &Value::String(obj.to_string())).unwrap(), want);
        let book = parse("book_appointment", &json!({"starts_at": "2027-03-16T14:00:00-07:00", "duration_min": "45"}));
        assert!(matches!(book, Ok(Tool::BookAppointment { duration_min: Some(45), reason: None, .. })));
        assert_eq!(parse("start_fresh", &Value::Null).unwrap(), Tool::StartFresh);
    }

    #[test]
    fn bad_calls_say_what_is_wrong() {
        assert_eq!(parse("remember", &json!({"key": "x"})).unwrap_err(), "value is required");
        assert!(parse("drop_tables", &json!({})).unwrap_err().contains("no tool named"));
        assert!(parse("confirm_code", &Value::String("{".into())).is_err());
    }

    #[test]
    fn every_tool_has_a_definition_with_its_required_parameters() {
        let defs = vapi_definitions("https://b.example/vapi/r");
        assert_eq!(defs.as_array().unwrap().len(), names().count());
        let confirm = &defs[0]["function"];
        assert_eq!(confirm["name"], "confirm_identity");
        assert_eq!(confirm["parameters"]["required"], json!(["date_of_birth"]));
        assert_eq!(retell_definitions("u")[6]["parameters"]["required"], json!(["starts_at"]));
    }
}
