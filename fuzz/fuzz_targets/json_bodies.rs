//! Every JSON request body the API accepts (the wire types), from arbitrary
//! bytes, and the field checks that run before any store is touched.
#![no_main]

use continuity::channels;
use libfuzzer_sys::fuzz_target;
use server::api::wire;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<wire::OpenSession>(data).map(continuity::OpenRequest::from);
    let _ = serde_json::from_slice::<wire::Turn>(data).map(continuity::TurnRequest::from);
    let _ = serde_json::from_slice::<wire::Confirm>(data);
    let _ = serde_json::from_slice::<wire::Challenge>(data);
    let _ = serde_json::from_slice::<wire::CustomerPatch>(data);
    let _ = serde_json::from_slice::<wire::StateValue>(data);
    let _ = serde_json::from_slice::<wire::End>(data);
    let _ = serde_json::from_slice::<wire::ChangeAppointment>(data);
    let _ = serde_json::from_slice::<wire::EmailOutbound>(data);
    if let Ok(b) = serde_json::from_slice::<wire::BookAppointment>(data) {
        let _ = channels::parse_time("starts_at", &b.starts_at);
    }
    if let Ok(c) = serde_json::from_slice::<wire::RequestCallback>(data) {
        let _ = channels::parse_time("window_start", &c.window_start);
        let _ = channels::parse_time("window_end", &c.window_end);
    }
});
