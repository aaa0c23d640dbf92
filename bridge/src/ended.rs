//! How each platform's end-of-call reason maps onto the core's
//! `completed | dropped | transferred` (the table in docs/INTEGRATIONS.md).
//! A dropped call leaves the conversation for the next channel and puts a
//! claimed callback back in the queue; a reason we do not know counts as
//! dropped, so nothing a patient was promised is settled by accident.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    Completed,
    Dropped,
    Transferred,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Completed => "completed",
            EndReason::Dropped => "dropped",
            EndReason::Transferred => "transferred",
        }
    }
}

/// Vapi's `endedReason` (627 values, grouped by meaning).
pub fn vapi(reason: &str) -> EndReason {
    const COMPLETED: &[&str] = &[
        // The patient hung up.
        "customer-ended-call",
        "customer-ended-call-during-transfer",
        "customer-ended-call-before-warm-transfer",
        "customer-ended-call-after-warm-transfer-attempt",
        "call.ringing.sip-inbound-caller-hungup-before-call-connect",
        // Ended normally.
        "assistant-ended-call",
        "assistant-said-end-call-phrase",
        "assistant-ended-call-after-message-spoken",
        "assistant-ended-call-with-hangup-task",
        "silence-timed-out",
        "exceeded-max-duration",
        "voicemail",
        "manually-canceled",
        // The provider says completed.
        "call.in-progress.twilio-completed-call",
        "call.in-progress.sip-completed-call",
        "vonage-completed",
    ];
    const TRANSFERRED: &[&str] = &["assistant-forwarded-call"];
    if COMPLETED.contains(&reason) {
        EndReason::Completed
    } else if TRANSFERRED.contains(&reason) {
        EndReason::Transferred
    } else {
        // phone-call-provider-closed-websocket, worker-shutdown, the
        // *-worker-died, pipeline-error-*, call.in-progress.error-* families,
        // twilio-failed-to-connect-call, the outbound not-answered group
        // (customer-busy, customer-did-not-answer, …) and anything new.
        EndReason::Dropped
    }
}

/// Retell's `disconnection_reason`.
pub fn retell(reason: &str) -> EndReason {
    match reason {
        "user_hangup"
        | "agent_hangup"
        | "voicemail_reached"
        | "ivr_reached"
        | "inactivity"
        | "max_duration_reached" => EndReason::Completed,
        "call_transfer" => EndReason::Transferred,
        // error_*, dial_busy, dial_failed, dial_no_answer, invalid_destination,
        // telephony_provider_*, sip_routing_error, marked_as_spam, user_declined.
        _ => EndReason::Dropped,
    }
}

/// Twilio's final `CallStatus` (None while the call is still going).
pub fn twilio(status: &str) -> Option<EndReason> {
    match status {
        "completed" => Some(EndReason::Completed),
        "busy" | "no-answer" | "failed" | "canceled" => Some(EndReason::Dropped),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_groups_map() {
        assert_eq!(vapi("customer-ended-call"), EndReason::Completed);
        assert_eq!(vapi("phone-call-provider-closed-websocket"), EndReason::Dropped);
        assert_eq!(vapi("call.in-progress.error-vapifault-worker-died"), EndReason::Dropped);
        assert_eq!(vapi("pipeline-error-openai-llm-failed"), EndReason::Dropped);
        assert_eq!(vapi("worker-shutdown"), EndReason::Dropped);
        assert_eq!(vapi("customer-did-not-answer"), EndReason::Dropped);
        assert_eq!(vapi("assistant-forwarded-call"), EndReason::Transferred);
        assert_eq!(vapi("a-reason-vapi-adds-next-year"), EndReason::Dropped);
        assert_eq!(retell("user_hangup"), EndReason::Completed);
        assert_eq!(retell("error_llm_websocket_lost_connection"), EndReason::Dropped);
        assert_eq!(retell("call_transfer"), EndReason::Transferred);
        assert_eq!(twilio("no-answer"), Some(EndReason::Dropped));
        assert_eq!(twilio("in-progress"), None);
    }
}
