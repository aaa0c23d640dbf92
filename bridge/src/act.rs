//! A tool call carried out against the core in the call's session, and the
//! one line the agent hears back. Refusals come back as the core words them
//! (never PHI), so the agent can tell the caller what to do next.

use serde_json::{Value, json};

use crate::core::{Core, CoreError, safe_segment};
use crate::texts::Texts;
use crate::tools::Tool;

fn refused(e: CoreError) -> String {
    match e {
        CoreError::Refused { message, .. } if !message.is_empty() => message,
        CoreError::Unreachable => "The clinic's records cannot be reached right now; offer a call back.".into(),
        other => format!("That did not work ({}).", other.code()),
    }
}

fn local_time(v: &Value) -> String {
    v.get("local_time").and_then(Value::as_str).unwrap_or("the requested time").to_owned()
}

pub async fn perform(core: &Core, session: &str, tool: Tool, texts: Option<Texts<'_>>) -> Result<String, String> {
    match tool {
        Tool::ConfirmIdentity { date_of_birth } => core
            .confirm(session, json!({"date_of_birth": date_of_birth}))
            .await
            .map(|ctx| format!("Identity confirmed. {}", ctx.summary()))
            .map_err(refused),
        Tool::ConfirmCode { code } => core
            .confirm(session, json!({"code": code}))
            .await
            .map(|ctx| format!("Identity confirmed. {}", ctx.summary()))
            .map_err(refused),
        Tool::SendCode { via } => {
            if via != "email" && via != "sms" {
                return Err("via must be email or sms".into());
            }
            let v = core.challenge(session, &via).await.map_err(refused)?;
            let sent = "If there is one on file, a code is on its way; ask the caller to read it out.";
            match (v.get("delivery").and_then(Value::as_str), texts) {
                (Some("smtp"), _) => Ok(sent.into()),
                (Some("sms"), Some(t)) => {
                    let to = v.pointer("/sms/to").and_then(Value::as_str).unwrap_or_default();
                    let text = v.pointer("/sms/text").and_then(Value::as_str).unwrap_or_default();
                    t.send(to, text).await.map(|()| sent.to_owned()).map_err(|code| {
                        tracing::warn!(code, "code text not sent");
                        "The code could not be sent; ask for the date of birth instead.".to_owned()
                    })
                }
                // Nothing on file: the same answer as sent (a caller learns nothing).
                (Some("none"), Some(_)) if via == "sms" => Ok(sent.into()),
                _ => Err(format!("No code can be sent by {via} from this line; ask for the date of birth instead.")),
            }
        }
        Tool::SaveIntake { name, date_of_birth } => {
            core.intake(session, &name, &date_of_birth).await.map(|_| "Saved.".to_owned()).map_err(refused)
        }
        Tool::Remember { key, value } => {
            if !safe_segment(&key) {
                return Err("key must be a short snake_case name".into());
            }
            core.put_state(session, &key, &value).await.map(|()| "Noted.".to_owned()).map_err(refused)
        }
        Tool::Forget { key } => {
            if !safe_segment(&key) {
                return Err("key must be a short snake_case name".into());
            }
            core.delete_state(session, &key).await.map(|()| "Forgotten.".to_owned()).map_err(refused)
        }
        Tool::BookAppointment { starts_at, duration_min, reason } => {
            let mut body = json!({"starts_at": starts_at, "duration_min": duration_min.unwrap_or(30)});
            if let Some(r) = reason {
                body["reason"] = json!(r);
            }
            let v = core.book(session, body).await.map_err(refused)?;
            let id = v.get("id").and_then(Value::as_str).unwrap_or_default();
            if let Some(t) = texts {
                t.confirm(&format!("Your appointment is booked for {}.", local_time(&v))).await;
            }
            Ok(format!("Booked for {}. Appointment id {id}.", local_time(&v)))
        }
        Tool::RescheduleAppointment { appointment_id, starts_at } => {
            if !safe_segment(&appointment_id) {
                return Err("appointment_id is not an appointment id".into());
            }
            let body = json!({"session_id": session, "starts_at": starts_at});
            let v = core.change_appointment(&appointment_id, body).await.map_err(refused)?;
            if let Some(t) = texts {
                t.confirm(&format!("Your appointment is now {}.", local_time(&v))).await;
            }
            Ok(format!("Moved to {}.", local_time(&v)))
        }
        Tool::CancelAppointment { appointment_id } => {
            if !safe_segment(&appointment_id) {
                return Err("appointment_id is not an appointment id".into());
            }
            let body = json!({"session_id": session, "status": "cancelled"});
            core.change_appointment(&appointment_id, body).await.map(|_| "Cancelled.".to_owned()).map_err(refused)
        }
        Tool::RequestCallback { window_start, window_end } => {
            let body = json!({"window_start": window_start, "window_end": window_end});
            core.callback(session, body)
                .await
                .map(|_| "The clinic will call back in that window.".to_owned())
                .map_err(refused)
        }
        Tool::StartFresh => core
            .start_fresh(session)
            .await
            .map(|_| "Started fresh: nothing from before will be used.".to_owned())
            .map_err(refused),
    }
}
