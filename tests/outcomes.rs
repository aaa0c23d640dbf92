//! The outcomes report end to end (docs/OUTCOMES.md): calls and a chat
//! through the real API (an interrupted intake recovered by a resume link
//! and booked, a dropped call recovered by calling back, a completed call, a
//! pocket dial), then `throughline report outcomes` reads what the store
//! recorded when each happened.

mod util;

use reqwest::Method;
use serde_json::{Value, json};
use server::Clock as _;
use util::api::Api;
use util::clinic::{clinic_with, sid};

async fn open(api: &Api, phone: &str) -> String {
    let (status, v) = api.post("/v1/sessions", json!({"identifiers": {"phone": phone}})).await;
    assert_eq!(status, 200, "{v}");
    sid(&v)
}

async fn end(api: &Api, session: &str, reason: &str) {
    api.ok(Method::POST, &format!("/v1/sessions/{session}/end"), Some(json!({"reason": reason}))).await;
}

#[tokio::test]
async fn the_report_counts_what_the_channels_did() {
    let c = clinic_with(Some(util::TEST_EVIDENCE));
    let zone = continuity::calendar::ClinicZone::parse("America/Los_Angeles").unwrap();
    let day = zone.format(c.server.clock.now_ms(), "%Y-%m-%d");
    // The story takes under three hours; near midnight it runs into the next day.
    let next_day = zone.format(c.server.clock.now_ms() + 86_400_000, "%Y-%m-%d");

    // Sarah's intake: she gives her name and date of birth, asks for Tuesday, and hangs up.
    let a = open(&c.voice, "+14155550101").await;
    c.voice
        .ok(
            Method::PATCH,
            &format!("/v1/sessions/{a}/customer"),
            Some(json!({"name": "Sarah Kim", "date_of_birth": "1990-02-01"})),
        )
        .await;
    c.voice
        .ok(Method::PUT, &format!("/v1/sessions/{a}/state/pending_booking_date"), Some(json!({"value": "Tuesday"})))
        .await;
    let token = c.voice.ok(Method::POST, &format!("/v1/sessions/{a}/resume-token"), None).await["resume_token"]
        .as_str()
        .unwrap()
        .to_owned();
    c.server.advance_minutes(3);
    end(&c.voice, &a, "completed").await;
    // A dropped call, a completed one, a pocket dial.
    let b = open(&c.voice, "+14155550102").await;
    c.server.advance_minutes(2);
    end(&c.voice, &b, "dropped").await;
    let cc = open(&c.voice, "+14155550103").await;
    c.server.advance_minutes(2);
    end(&c.voice, &cc, "completed").await;
    let d = open(&c.voice, "+14155550104").await;
    end(&c.voice, &d, "dropped").await;

    // Half an hour later Sarah opens the link and books.
    c.server.advance_minutes(30);
    let (status, v) = c.chat.post("/v1/sessions", json!({"identifiers": {"resume_token": token}})).await;
    assert_eq!(status, 200, "{v}");
    let chat = sid(&v);
    let tomorrow = c.server.clock.now_ms() + 24 * 3_600_000;
    let starts_at = continuity::calendar::rfc3339(tomorrow - tomorrow % 3_600_000);
    c.chat
        .ok(
            Method::POST,
            &format!("/v1/sessions/{chat}/appointments"),
            Some(json!({"starts_at": starts_at, "duration_min": 30})),
        )
        .await;
    c.server.advance_minutes(5);
    end(&c.chat, &chat, "completed").await;
    // Two hours on, the dropped caller calls back.
    c.server.advance_minutes(120);
    let b2 = open(&c.voice, "+14155550102").await;
    c.server.advance_minutes(4);
    end(&c.voice, &b2, "completed").await;
    c.server.stop().await;

    let report = |args: &[&str]| {
        let mut all = vec!["report", "outcomes", "--tenant", "sunrise-clinic", "--from", &day, "--to", &next_day];
        all.extend_from_slice(args);
        c.env.ok(&all)
    };
    let out = report(&["--format", "json"]);
    for phi in ["4155550101", "Sarah", "1990-02-01", "Tuesday"] {
        assert!(!out.contains(phi), "the report holds {phi}: {out}");
    }
    let v: Value = serde_json::from_str(&out).unwrap();
    let f = &v["figures"];
    let ratio = |name: &str| (f[name]["count"].as_u64().unwrap(), f[name]["of"].as_u64().unwrap());
    assert_eq!(f["voice_calls"], 4.0, "{v}");
    assert_eq!(v["short_calls_excluded"], 1);
    assert_eq!(ratio("interrupted"), (2, 4), "Sarah's completed-but-pending call and the dropped one");
    assert_eq!(ratio("recovered_within_1h"), (1, 2));
    assert_eq!(ratio("recovered_within_24h"), (2, 2));
    assert_eq!(ratio("recovered_within_24h_by_resume_link"), (1, 2));
    assert_eq!(ratio("recovered_within_24h_by_voice"), (1, 2));
    assert_eq!(ratio("abandoned_24h"), (0, 4));
    assert_eq!(ratio("booking_conversion"), (1, 1));
    assert_eq!(ratio("conversion_after_interruption"), (1, 1));
    assert_eq!(ratio("first_contact_resolution_7d"), (3, 4), "Sarah's call was followed up; the others were not");
    // Sarah back after 34 minutes (her call ended 3 minutes in), the dropped caller after 157.
    assert_eq!(f["median_minutes_to_recovery"], json!(95.5), "{v}");

    let table = report(&[]);
    assert!(table.contains("interrupted"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("interrupted") && l.ends_with("50.0%")), "{table}");
    assert!(report(&["--format", "csv"]).lines().any(|l| l == "interrupted,2,4,0.5000"));
    let bad = c.env.run(&["report", "outcomes", "--tenant", "sunrise-clinic", "--from", "yesterday", "--to", &day]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected a date such as"), "{bad:?}");
}
