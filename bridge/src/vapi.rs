//! Vapi's server messages (`{"message": {"type": …}}`), read leniently as
//! Vapi's own schema allows (arguments as an object or a string, roles
//! `bot` or `assistant`), and the answers it expects. Pure: no I/O.

use serde_json::{Value, json};

use crate::context::{Context, single_line};

/// The call a message is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub id: String,
    /// The caller's number (`call.customer.number`, else `customer.number`).
    pub customer_number: Option<String>,
    /// The session the bridge put in `assistantOverrides.metadata`, which
    /// Vapi sends back on the call; trusted only with its tag
    /// ([`Call::session`]).
    pub metadata_session: Option<String>,
    pub metadata_tag: Option<String>,
}

impl Call {
    /// The session the bridge itself named for this call (L4).
    pub fn session(&self, secret: &[u8]) -> Option<String> {
        crate::sig::tagged_session(secret, self.metadata_session.as_deref(), self.metadata_tag.as_deref())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: Value,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Turn {
    /// `patient` or `agent`.
    pub speaker: &'static str,
    pub text: String,
    /// Unix ms (`time`), with the role it names the turn for idempotency.
    pub time: i64,
    pub role: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    AssistantRequest(Call),
    ToolCalls {
        call: Call,
        calls: Vec<ToolCall>,
    },
    StatusUpdate {
        call: Call,
        status: String,
        ended_reason: Option<String>,
    },
    /// The legacy single function call (`functionCall`), answered `{"result"}`.
    FunctionCall {
        call: Call,
        name: String,
        parameters: Value,
    },
    EndOfCallReport {
        call: Call,
        ended_reason: String,
        turns: Vec<Turn>,
    },
    /// Anything else Vapi sends (speech-update, hang, …): acknowledged.
    Other(String),
}

impl Message {
    pub fn kind(&self) -> &str {
        match self {
            Message::AssistantRequest(_) => "assistant-request",
            Message::ToolCalls { .. } => "tool-calls",
            Message::StatusUpdate { .. } => "status-update",
            Message::EndOfCallReport { .. } => "end-of-call-report",
            Message::FunctionCall { .. } => "function-call",
            Message::Other(t) => t,
        }
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k)).and_then(Value::as_str)
}

fn call(m: &Value) -> Result<Call, String> {
    let id = str_at(m, &["call", "id"]).ok_or("message.call.id is missing")?.to_owned();
    if id.is_empty() || id.len() > 200 {
        return Err("message.call.id must be 1 to 200 bytes".into());
    }
    let customer_number = str_at(m, &["call", "customer", "number"])
        .or_else(|| str_at(m, &["customer", "number"]))
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    let meta = |k: &str| str_at(m, &["call", "assistantOverrides", "metadata", k]).map(str::to_owned);
    Ok(Call {
        id,
        customer_number,
        metadata_session: meta("throughline_session"),
        metadata_tag: meta("throughline_tag"),
    })
}

/// Parses a Vapi server message body.
pub fn parse(body: crate::sig::Verified<'_>) -> Result<Message, String> {
    let body = body.bytes();
    let v: Value = serde_json::from_slice(body).map_err(|_| "the body is not JSON".to_owned())?;
    let m = v.get("message").ok_or("the body has no message")?;
    let kind = m.get("type").and_then(Value::as_str).ok_or("message.type is missing")?;
    Ok(match kind {
        "assistant-request" => Message::AssistantRequest(call(m)?),
        "tool-calls" => Message::ToolCalls { call: call(m)?, calls: tool_calls(m)? },
        "status-update" => Message::StatusUpdate {
            call: call(m)?,
            status: m.get("status").and_then(Value::as_str).unwrap_or_default().to_owned(),
            ended_reason: m.get("endedReason").and_then(Value::as_str).map(str::to_owned),
        },
        "end-of-call-report" => Message::EndOfCallReport {
            call: call(m)?,
            ended_reason: m.get("endedReason").and_then(Value::as_str).unwrap_or_default().to_owned(),
            turns: turns(m.get("artifact").and_then(|a| a.get("messages"))),
        },
        "function-call" => {
            let f = m.get("functionCall").ok_or("message.functionCall is missing")?;
            Message::FunctionCall {
                call: call(m)?,
                name: f.get("name").and_then(Value::as_str).ok_or("functionCall.name is missing")?.to_owned(),
                parameters: f.get("parameters").cloned().unwrap_or(Value::Null),
            }
        }
        other => Message::Other(other.chars().take(64).collect()),
    })
}

fn tool_calls(m: &Value) -> Result<Vec<ToolCall>, String> {
    let list = m.get("toolCallList").and_then(Value::as_array).ok_or("message.toolCallList is missing")?;
    list.iter()
        .map(|c| {
            let id = c.get("id").and_then(Value::as_str).ok_or("a tool call has no id")?.to_owned();
            let name = str_at(c, &["function", "name"])
                .or_else(|| c.get("name").and_then(Value::as_str))
                .ok_or("a tool call has no name")?
                .to_owned();
            let arguments = c
                .get("function")
                .and_then(|f| f.get("arguments"))
                .or_else(|| c.get("arguments"))
                .or_else(|| c.get("parameters"))
                .cloned()
                .unwrap_or(Value::Null);
            Ok(ToolCall { id, name, arguments })
        })
        .collect()
}

fn turns(messages: Option<&Value>) -> Vec<Turn> {
    let Some(list) = messages.and_then(Value::as_array) else { return Vec::new() };
    list.iter()
        .filter_map(|m| {
            let role = m.get("role").and_then(Value::as_str)?;
            let speaker = match role {
                "user" => "patient",
                "bot" | "assistant" => "agent",
                _ => return None,
            };
            let text = m.get("message").and_then(Value::as_str)?.trim();
            let time = m.get("time").and_then(Value::as_f64)? as i64;
            (!text.is_empty()).then(|| Turn { speaker, text: text.to_owned(), time, role: role.to_owned() })
        })
        .collect()
}

/// The answer to `assistant-request`: the route's assistant with this
/// call's context in `assistantOverrides` (per call; never stored config).
pub fn assistant_response(
    assistant_id: &str,
    ctx: Option<&Context>,
    first_message: Option<&str>,
    secret: &[u8],
) -> Value {
    match ctx {
        None => json!({"assistantId": assistant_id}),
        Some(ctx) => json!({
            "assistantId": assistant_id,
            "assistantOverrides": {
                "variableValues": ctx.variables(),
                "firstMessage": ctx.first_message(first_message),
                "metadata": crate::sig::session_metadata(secret, &ctx.session_id)
            }
        }),
    }
}

/// One tool's answer: always a single line.
pub fn tool_result(id: &str, name: &str, outcome: &Result<String, String>) -> Value {
    match outcome {
        Ok(r) => json!({"toolCallId": id, "name": name, "result": single_line(r)}),
        Err(e) => json!({"toolCallId": id, "name": name, "error": single_line(e)}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_assistant_request() {
        let body = br#"{"message":{"type":"assistant-request","timestamp":1723595100000,
            "call":{"id":"c0a8","orgId":"o","type":"inboundPhoneCall","phoneCallProvider":"twilio",
                    "phoneCallProviderId":"CA1","phoneNumberId":"pn_1","customer":{"number":"+15559871234"}},
            "phoneNumber":{"id":"pn_1","number":"+15551234567"},"customer":{"number":"+15559871234"}}}"#;
        let want = Call {
            id: "c0a8".into(),
            customer_number: Some("+15559871234".into()),
            metadata_session: None,
            metadata_tag: None,
        };
        assert_eq!(parse(crate::sig::Verified::checked(body)).unwrap(), Message::AssistantRequest(want));
    }

    #[test]
    fn tool_arguments_wherever_vapi_puts_them() {
        let body = br#"{"message":{"type":"tool-calls","call":{"id":"c1"},"toolCallList":[
            {"id":"a","type":"function","function":{"name":"remember","arguments":{"key":"k","value":"v"}}},
            {"id":"b","type":"function","function":{"name":"forget","arguments":"{\"key\":\"k\"}"}},
            {"id":"c","name":"start_fresh","arguments":{}},
            {"id":"d","name":"confirm_code","parameters":{"code":"123456"}}]}}"#;
        let Message::ToolCalls { calls, .. } = parse(crate::sig::Verified::checked(body)).unwrap() else {
            panic!("tool-calls")
        };
        assert_eq!(calls[0].arguments, json!({"key": "k", "value": "v"}));
        assert_eq!(calls[1].arguments, json!("{\"key\":\"k\"}"));
        assert_eq!(calls[2].name, "start_fresh");
        assert_eq!(calls[3].arguments, json!({"code": "123456"}));
    }

    #[test]
    fn report_turns_keep_user_and_bot_or_assistant() {
        let body = br#"{"message":{"type":"end-of-call-report","endedReason":"customer-ended-call",
            "call":{"id":"c1","customer":{"number":"+1555"}},
            "artifact":{"transcript":"AI: How can I help? User: move it","messages":[
              {"role":"system","message":"You are a receptionist","time":1723595100000,"secondsFromStart":0},
              {"role":"bot","message":"How can I help?","time":1723595101000,"endTime":1723595102000,"secondsFromStart":0.6},
              {"role":"user","message":"I need to move my appointment","time":1723595103000.5,"endTime":1723595104000},
              {"role":"assistant","message":"Sure.","time":1723595105000},
              {"role":"tool_calls","toolCalls":[],"message":""}]},
            "analysis":{"summary":"moved"}}}"#;
        let Message::EndOfCallReport { turns, ended_reason, .. } = parse(crate::sig::Verified::checked(body)).unwrap()
        else {
            panic!("report")
        };
        assert_eq!(ended_reason, "customer-ended-call");
        let got: Vec<(&str, i64)> = turns.iter().map(|t| (t.speaker, t.time)).collect();
        assert_eq!(got, [("agent", 1723595101000), ("patient", 1723595103000), ("agent", 1723595105000)]);
    }

    #[test]
    fn the_legacy_function_call() {
        let body = br#"{"message":{"type":"function-call","call":{"id":"c1"},"functionCall":{"name":"forget","parameters":{"key":"k"}}}}"#;
        let Message::FunctionCall { name, parameters, .. } = parse(crate::sig::Verified::checked(body)).unwrap() else {
            panic!("function-call")
        };
        assert_eq!((name.as_str(), parameters), ("forget", json!({"key": "k"})));
    }

    #[test]
    fn malformed_bodies_say_what_is_missing() {
        assert_eq!(parse(crate::sig::Verified::checked(b"not json")).unwrap_err(), "the body is not JSON");
        assert_eq!(
            parse(crate::sig::Verified::checked(br#"{"message":{"type":"tool-calls"}}"#)).unwrap_err(),
            "message.call.id is missing"
        );
        assert_eq!(
            parse(crate::sig::Verified::checked(br#"{"message":{"type":"hang","call":{"id":"c"}}}"#)).unwrap(),
            Message::Other("hang".into())
        );
        let r = tool_result("x", "forget", &Err("line one\nline two".into()));
        assert_eq!(r["error"], "line one line two");
    }
}
