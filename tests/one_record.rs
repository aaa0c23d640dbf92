//! One person, one record: three dozen synthetic patients reach the clinic
//! over voice, chat and email the way people do (numbers typed in any
//! format, a household's shared phone, an address given in a chat and
//! written from later with DMARC pass, attested calls, replies to the
//! clinic's mail), and at the end every person has exactly one record and
//! one conversation. The figure is in docs/RELIABILITY.md.
// Test helpers panic on unexpected results by design; the lint is for request paths.
#![allow(clippy::unwrap_used)]

mod util;

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde_json::{Value, json};
use store::Countable;
use util::api::Api;
use util::clinic::*;

/// People in the scenario; every third pair shares a household phone.
const PEOPLE: usize = 36;

struct Person {
    name: String,
    dob: String,
    /// Digits of the phone, national (415 555 XXXX).
    phone: String,
    email: String,
    /// The household member whose number this person uses, if not their own.
    household_of: Option<usize>,
}

fn people() -> Vec<Person> {
    (0..PEOPLE)
        .map(|i| {
            // Pairs (3k+1, 3k+2) for even k share the first one's phone.
            let household_of = (i % 3 == 2 && (i / 3) % 2 == 0).then(|| i - 1);
            let line = household_of.unwrap_or(i);
            Person {
                name: format!("Person{i:02} Synthetic"),
                dob: format!("19{:02}-{:02}-{:02}", 50 + i, 1 + i % 12, 1 + (i * 7) % 28),
                phone: format!("415555{:04}", 3000 + line),
                email: format!("person{i:02}@example.com"),
                household_of,
            }
        })
        .collect()
}

/// A phone written the way person `i` types it on this visit.
fn typed(p: &Person, visit: usize) -> String {
    let d = &p.phone;
    match visit % 4 {
        0 => format!("({}) {}-{}", &d[..3], &d[3..6], &d[6..]),
        1 => format!("{}.{}.{}", &d[..3], &d[3..6], &d[6..]),
        2 => format!("+1 {} {} {}", &d[..3], &d[3..6], &d[6..]),
        _ => d.clone(),
    }
}

/// A message from the person, stamped by the clinic's MTA with DMARC pass.
fn authenticated(p: &Person, id: &str, text: &str, in_reply_to: Option<&str>) -> Vec<u8> {
    let reply = in_reply_to.map(|r| format!("In-Reply-To: <{r}>\r\n")).unwrap_or_default();
    format!(
        "Authentication-Results: mx.sunrise-clinic.example; dmarc=pass header.from=example.com\r\n\
         From: {} <{}>\r\nTo: appointments@sunrise-clinic.example\r\nSubject: Visit\r\nMessage-ID: <{id}>\r\n{reply}\
         Content-Type: text/plain; charset=UTF-8\r\n\r\n{text}\r\n",
        p.name, p.email
    )
    .into_bytes()
}

struct Seen(BTreeMap<usize, BTreeSet<String>>);

impl Seen {
    fn saw(&mut self, person: usize, ctx: &Value) {
        if let Some(c) = ctx["customer_id"].as_str() {
            self.0.entry(person).or_default().insert(c.to_owned());
        }
    }
}

async fn intake(api: &Api, session: &str, p: &Person) -> Value {
    let body = json!({"name": p.name, "date_of_birth": p.dob});
    api.ok(Method::PATCH, &format!("/v1/sessions/{session}/customer"), Some(body)).await
}

async fn confirmed(api: &Api, session: &str, p: &Person) -> Value {
    let (status, ctx) = guess(api, session, &p.dob).await;
    assert_eq!(status, 200, "{}: {ctx}", p.name);
    ctx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_synthetic_person_has_one_record_and_one_conversation() {
    let c = clinic_with(Some(CLINIC_MTA));
    let people = people();
    let mut seen = Seen(BTreeMap::new());
    let attested = |phone: &str| json!({"identifiers": {"phone": phone}, "evidence": {"caller_id_attestation": "A"}});

    // First contact: an attested call, a chat with the number typed, or an
    // authenticated email, by turns; a household's second member chats.
    for (i, p) in people.iter().enumerate() {
        let ctx = match (i % 3, p.household_of) {
            (_, Some(_)) | (1, _) => {
                let s = chat_claims(&c.chat, &typed(p, 0)).await;
                intake(&c.chat, &s, p).await
            }
            (0, None) => {
                let open = c.voice.ok(Method::POST, "/v1/sessions", Some(attested(&typed(p, 2)))).await;
                assert_eq!(open["identity"]["status"], "new", "{}: {open}", p.name);
                intake(&c.voice, &sid(&open), p).await
            }
            _ => {
                let raw = authenticated(p, &format!("first{i}@example.com"), "Hello, I am a new patient.", None);
                let (status, v) = c.email.raw("/v1/email/inbound", raw).await;
                assert_eq!((status, &v["stored"]), (201, &json!(true)), "{}: {v}", p.name);
                intake(&c.email, v["session_id"].as_str().unwrap(), p).await
            }
        };
        seen.saw(i, &ctx);
    }

    // Second contact: a chat with the number typed another way and the
    // email address given, confirmed with the date of birth (a household's
    // number names two people: the date picks).
    for (i, p) in people.iter().enumerate() {
        let body = json!({"identifiers": {"phone": typed(p, 1), "email": p.email}});
        let s = sid(&c.chat.ok(Method::POST, "/v1/sessions", Some(body)).await);
        let ctx = confirmed(&c.chat, &s, p).await;
        seen.saw(i, &ctx);
        // The clinic writes to her from that confirmed chat.
        let body = json!({"to": p.email, "subject": "Your visit", "text": "Reply to this message with questions."});
        let sent = c.chat.ok(Method::POST, &format!("/v1/sessions/{s}/email/outbound"), Some(body)).await;
        let ours = sent["message_id"].as_str().unwrap().to_owned();
        // Third: she replies to it (DMARC pass), or writes fresh from the
        // address she gave in the chat.
        let raw = if i % 2 == 0 {
            authenticated(p, &format!("reply{i}@example.com"), "Thanks, see you then.", Some(&ours))
        } else {
            authenticated(p, &format!("fresh{i}@example.com"), "Can I bring my son?", None)
        };
        let (status, v) = c.email.raw("/v1/email/inbound", raw).await;
        assert_eq!(status, 201, "{}: {v}", p.name);
        let s = v["session_id"].as_str().unwrap().to_owned();
        if v["context"]["identity"]["confirmed"] != json!(true) && v["context"]["customer_id"].is_null() {
            // Behind confirmation: the patient is found and must confirm.
            let ctx = confirmed(&c.email, &s, p).await;
            seen.saw(i, &ctx);
        } else {
            seen.saw(i, &v["context"]);
        }
    }

    // Fourth: an attested call from the person's number (a household's line
    // names both: the date of birth picks).
    for (i, p) in people.iter().enumerate() {
        let open = c.voice.ok(Method::POST, "/v1/sessions", Some(attested(&typed(p, 3)))).await;
        let ctx = if open["identity"]["confirmed"] == json!(true)
            || (open["identity"]["confirm_with"] == json!([]) && open["customer_id"].is_string())
        {
            open
        } else {
            confirmed(&c.voice, &sid(&open), p).await
        };
        seen.saw(i, &ctx);
    }
    c.server.stop().await;

    let store = c.env.installation().open_tenant("sunrise-clinic").unwrap();
    let records = store.count(Countable::Customers).unwrap();
    let conversations = store.count(Countable::Conversations).unwrap();
    let per_person: Vec<usize> = (0..PEOPLE).map(|i| seen.0.get(&i).map_or(0, BTreeSet::len)).collect();
    let all: BTreeSet<&String> = seen.0.values().flatten().collect();
    println!(
        "one-record: {PEOPLE} people, {records} records, {conversations} conversations, \
         records per person min {} max {}, shared between people {}",
        per_person.iter().min().unwrap(),
        per_person.iter().max().unwrap(),
        seen.0.values().map(BTreeSet::len).sum::<usize>() - all.len()
    );
    assert!(per_person.iter().all(|n| *n == 1), "records per person: {per_person:?}");
    assert_eq!(all.len(), PEOPLE, "two people share a record");
    assert_eq!(records as usize, PEOPLE, "records in the store");
    assert_eq!(conversations as usize, PEOPLE, "conversations in the store");
}
