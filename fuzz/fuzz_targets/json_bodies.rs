//! Every JSON request body the API accepts, from arbitrary bytes, and the
//! field checks that run before any store is touched.
#![no_main]

use libfuzzer_sys::fuzz_target;
use continuity::channels::{self, email};

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<continuity::OpenRequest>(data);
    let _ = serde_json::from_slice::<continuity::TurnRequest>(data);
    let _ = serde_json::from_slice::<continuity::ConfirmRequest>(data);
    let _ = serde_json::from_slice::<continuity::CustomerPatch>(data);
    let _ = serde_json::from_slice::<continuity::StateValue>(data);
    let _ = serde_json::from_slice::<continuity::EndRequest>(data);
    let _ = serde_json::from_slice::<channels::ChangeRequest>(data);
    let _ = serde_json::from_slice::<email::OutboundRequest>(data);
    if let Ok(b) = serde_json::from_slice::<channels::BookRequest>(data) {
        let _ = channels::parse_time("starts_at", &b.starts_at);
    }
    if let Ok(c) = serde_json::from_slice::<channels::CallbackRequest>(data) {
        let _ = channels::parse_time("window_start", &c.window_start);
        let _ = channels::parse_time("window_end", &c.window_end);
    }
});
