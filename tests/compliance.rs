//! The compliance officer's console end to end (issue 20): the integrity
//! badge (amber without a checkpoint, green once `serve` signed one, red for
//! an uploaded copy with an altered record), a search by phone and its
//! export verifying offline with `throughline audit verify`, the report of
//! who accessed a patient naming the clinician, the sign-in failures report,
//! and every reading of the trail audited. Only the compliance role opens it.
// Test helpers panic on unexpected results by design; the lint is for request paths.
#![allow(clippy::unwrap_used)]

mod util;

use serde_json::{Value, json};
use server::Clock as _;
use util::console::{Browser, PASSWORD, TENANT, add_staff, clinic};
use util::smtp::delivered;

async fn signed_in(c: &util::console::Clinic, email: &str, id: &str) -> Browser {
    let mut b = Browser::new(c.server.console.unwrap(), &c.ca);
    let code = c.env.installation().danger_staff_totp_at(id, c.server.clock.now_ms()).unwrap();
    assert_eq!(b.login(email, PASSWORD, &code).await.status, 303);
    b
}

fn trail(c: &util::console::Clinic) -> Vec<Value> {
    let out = c.env.tmp.path().join(format!("t-{}.jsonl", uuid::Uuid::new_v4().simple()));
    c.env.ok(&["audit", "export", "--tenant", TENANT, "--out", out.to_str().unwrap()]);
    std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_officer_proves_the_trail_intact_and_finds_who_read_the_patient() {
    let c = clinic().await;
    let cal = add_staff(&c.env, "cal@sunrise-clinic.example", "clinician", false);
    c.env.ok(&["staff", "assign", "--tenant", TENANT, &cal, "--customer", &c.maria]);
    let cora = add_staff(&c.env, "cora@sunrise-clinic.example", "compliance", false);
    let ana = add_staff(&c.env, "ana@sunrise-clinic.example", "front_desk", false);

    let mut doc = signed_in(&c, "cal@sunrise-clinic.example", &cal).await;
    assert_eq!(doc.get(&format!("/patients/{}", c.maria)).await.status, 200);
    assert_eq!(doc.get("/audit").await.status, 403, "a clinician opened the audit trail");
    let mut desk = signed_in(&c, "ana@sunrise-clinic.example", &ana).await;
    assert_eq!(desk.get("/audit").await.status, 403);
    let mut wrong = Browser::new(c.server.console.unwrap(), &c.ca);
    assert_eq!(wrong.login("ana@sunrise-clinic.example", PASSWORD, "000000").await.status, 401);

    // `serve` signs a checkpoint on its schedule: the badge turns green.
    let mut o = signed_in(&c, "cora@sunrise-clinic.example", &cora).await;
    let mut green = None;
    for _ in 0..50 {
        let p = o.get("/audit").await;
        if p.body.contains("integrity verified") {
            green = Some(p);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let p = green.expect("no checkpoint was signed on the schedule");
    assert!(p.body.contains("records verified") && p.body.contains("throughline audit verify"), "{}", p.body);
    let key = c.env.ok(&["audit", "key", "--tenant", TENANT]).trim().to_owned();
    assert!(p.body.contains(&key), "the page does not give the verifier key");

    // Who accessed Maria: the clinician, with purpose.
    let p = o.get(&format!("/audit/patients/{}", c.maria)).await;
    assert!(
        p.body.contains("cal@sunrise-clinic.example") && p.body.contains("patient.view") && p.body.contains("TREAT"),
        "{}",
        p.body
    );
    // What one person did (COMPLIANCE "What one person did"): everything Cal
    // did, oldest first, and nothing of anyone else's; the report is itself recorded.
    let p = o.get(&format!("/audit/staff/{cal}")).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains(&format!("Everything {cal} did")) && p.body.contains("patient.view"), "{}", p.body);
    assert!(!p.body.contains("ana@sunrise-clinic.example"), "another person's records on Cal's report");
    assert_eq!(o.get("/audit/staff/not-an-id").await.status, 404);
    assert_eq!(desk.get(&format!("/audit/staff/{cal}")).await.status, 403, "the front desk opened a staff report");
    // Sign-in failures: Ana's wrong code.
    let p = o.get("/audit/logins").await;
    assert!(p.body.contains("ana@sunrise-clinic.example") && p.body.contains("bad_code"), "{}", p.body);

    // Search by phone (never echoed), then export the result: it verifies offline.
    let csrf = o.get("/audit").await.csrf();
    let form = [("csrf", csrf.as_str()), ("patient", "(415) 555-0100"), ("action", "patient.view"), ("do", "search")];
    let p = o.post("/audit", &form).await;
    assert!(p.body.contains("cal@sunrise-clinic.example") && !p.body.contains("555-0100"), "{}", p.body);
    let form = [("csrf", csrf.as_str()), ("patient", "(415) 555-0100"), ("action", "patient.view"), ("do", "export")];
    let p = o.post("/audit", &form).await;
    assert_eq!(p.status, 200);
    assert!(p.headers.get("content-disposition").unwrap().to_str().unwrap().starts_with("attachment"));
    let bundle = c.env.tmp.path().join("search.jsonl");
    std::fs::write(&bundle, &p.body).unwrap();
    let out = c.env.ok(&["audit", "verify", bundle.to_str().unwrap(), "--key", &key]);
    assert!(out.contains("verified 1 records: each unchanged and included in the signed checkpoint"), "{out}");
    assert!(out.contains("exactly the records the signed search found"), "{out}");
    let forged = c.env.tmp.path().join("forged.jsonl");
    std::fs::write(&forged, p.body.replace("\"role\":\"clinician\"", "\"role\":\"front_desk\"")).unwrap();
    let err = c.env.fails(&mut c.env.cmd(&["audit", "verify", forged.to_str().unwrap(), "--key", &key]));
    assert!(err.contains("altered"), "{err}");
    // L7: the record left out of the file is noticed (the list is signed).
    let thinned = c.env.tmp.path().join("thinned.jsonl");
    std::fs::write(&thinned, p.body.lines().next().unwrap()).unwrap();
    let err = c.env.fails(&mut c.env.cmd(&["audit", "verify", thinned.to_str().unwrap(), "--key", &key]));
    assert!(err.contains("records were dropped"), "{err}");

    // An exported copy with one record altered: the upload shows it broken.
    let whole = c.env.tmp.path().join("whole.jsonl");
    c.env.ok(&["audit", "export", "--tenant", TENANT, "--out", whole.to_str().unwrap()]);
    let text = std::fs::read_to_string(&whole).unwrap();
    let p = o.upload("/audit/verify", &csrf, text.as_bytes()).await;
    assert!(
        p.body.contains("class=\"notice\" role=\"status\">Uploaded export:") && p.body.contains("records verified"),
        "{}",
        p.body
    );
    let altered = text.replacen("\"patient.view\"", "\"patient.search\"", 1);
    let p = o.upload("/audit/verify", &csrf, altered.as_bytes()).await;
    assert!(p.body.contains("class=\"error\" role=\"status\">Uploaded export: does not verify"), "{}", p.body);

    // The failed check is an alert on the Reviews page.
    let p = o.get("/reviews").await;
    assert!(p.body.contains("verification failed") && p.body.contains(&cora), "{}", p.body);

    // The quarter's access review: every account, what it accessed; recorded.
    let p = o.get("/audit/access-review").await;
    assert!(
        p.body.contains("cal@sunrise-clinic.example") && p.body.contains("password and authenticator code"),
        "{}",
        p.body
    );
    let csrf = p.csrf();
    let p = o.post("/audit/access-review", &[("csrf", &csrf), ("note", "All four accounts needed; no change.")]).await;
    assert_eq!(p.status, 303);
    assert!(o.get("/audit/access-review").await.body.contains("All four accounts needed; no change."));

    // Reading the trail was itself audited, naming the officer.
    let records = trail(&c);
    for action in
        ["audit.view", "audit.report", "audit.search", "audit.export", "audit.verify", "staff.access_review.attest"]
    {
        assert!(
            records.iter().any(|r| r["action"] == action && r["actor"] == json!(cora) && r["role"] == "compliance"),
            "no {action} record by the officer"
        );
    }
    assert!(records.iter().any(|r| r["action"] == "audit.verify" && r["outcome"] == "failed"));
    assert!(records.iter().any(|r| r["action"] == "audit.checkpoint" && r["actor_kind"] == "system"));
    assert!(!records.iter().any(|r| r.to_string().contains("4155550100")), "the searched phone reached the trail");
}

/// Enters an access request for `patient`; its send form's path.
async fn access_request(o: &mut Browser, csrf: &str, patient: &str) -> String {
    let form = [("csrf", csrf), ("patient", patient), ("kind", "access")];
    assert_eq!(o.post("/requests", &form).await.status, 303);
    let page = o.get("/requests").await.body;
    let forms: Vec<&str> = page.split("action=\"/requests/").filter_map(|s| s.split('"').next()).collect();
    forms.into_iter().rev().find(|a| a.ends_with("/export")).unwrap().to_owned()
}

/// The access copies the clinic's relay delivered, as JSON documents.
fn copies(c: &util::console::Clinic) -> Vec<Value> {
    delivered(&c.smtp)
        .iter()
        .filter(|m| m.contains("Your records at"))
        .map(|m| {
            let msg = mail_parser::MessageParser::default().parse(m.as_bytes()).unwrap();
            let part = msg.attachments().next().expect("the copy is attached");
            serde_json::from_slice(part.contents()).unwrap()
        })
        .collect()
}

/// Patients' requests: entered for a request by phone, due a calendar month
/// after receipt (overdue shows), an access copy sent to the patient's
/// verified address (clinical classes only after a second person approved;
/// the officer never sees it: N6), and an erasure that runs only when a
/// second person approves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_entered_by_phone_runs_only_when_a_second_person_approves() {
    let c = clinic().await;
    let cora = add_staff(&c.env, "cora@sunrise-clinic.example", "compliance", false);
    let amy = add_staff(&c.env, "amy@sunrise-clinic.example", "admin", false);
    let mut o = signed_in(&c, "cora@sunrise-clinic.example", &cora).await;
    let csrf = o.get("/requests").await.csrf();

    // Access, by pseudonym: answered to the patient, never to the officer's
    // browser (N6). Without a second person, the copy holds no clinical
    // class; the officer's page never shows it.
    let export = access_request(&mut o, &csrf, &c.maria).await;
    let p = o.post(&format!("/requests/{export}"), &[("csrf", &csrf)]).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("Sent to the patient&#39;s verified address"), "{}", p.body);
    for secret in ["Maria Lopez", "knee", "throughline-patient-export"] {
        assert!(!p.body.contains(secret), "the officer's page shows {secret}");
    }
    let sent = copies(&c);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["format"], "throughline-patient-export/v1");
    assert_eq!(sent[0]["identity"]["name"], "Maria Lopez");
    let text = sent[0].to_string();
    assert!(!text.contains("knee"), "clinical text or a transcript went without approval: {text}");
    assert!(text.contains("clinical") && sent[0]["withheld"].as_array().unwrap().len() == 3, "{}", sent[0]["withheld"]);

    // Another request, approved by a second person (not its author): the full copy.
    let export = access_request(&mut o, &csrf, &c.maria).await;
    let id = export.trim_end_matches("/export").to_owned();
    let p = o.post(&format!("/requests/{id}/clinical"), &[("csrf", &csrf)]).await;
    assert!(p.body.contains("A second person must approve"), "{}", p.body);
    let mut amy_b = signed_in(&c, "amy@sunrise-clinic.example", &amy).await;
    let csrf_a = amy_b.get("/requests").await.csrf();
    let p = amy_b.post(&format!("/requests/{id}/clinical"), &[("csrf", &csrf_a)]).await;
    assert!(p.body.contains("Approved: the copy sent to the patient will be complete"), "{}", p.body);
    let p = o.post(&format!("/requests/{export}"), &[("csrf", &csrf)]).await;
    assert!(p.body.contains("Sent to the patient&#39;s verified address") && !p.body.contains("knee"), "{}", p.body);
    let sent = copies(&c);
    assert_eq!(sent.len(), 2);
    let full = sent.iter().find(|d| d["withheld"] == json!([])).expect("the approved copy");
    assert!(full.to_string().contains("knee"), "{full}");
    // The trail names who sent it, in what role, for what purpose, and what went.
    let records = trail(&c);
    let exports: Vec<&Value> = records.iter().filter(|r| r["action"] == "customer.export").collect();
    assert_eq!(exports.len(), 2);
    assert!(
        exports.iter().all(|r| r["actor"] == json!(cora) && r["role"] == "compliance" && r["purpose"] == "HCOMPL"),
        "{exports:?}"
    );
    assert!(exports.iter().all(|r| r["reason"].as_str().unwrap().starts_with("to:patient_email;released:")));
    assert!(!records.iter().any(|r| r.to_string().contains("maria@example.com")), "the address reached the trail");

    // Erasure, by phone, received in January: due the last day of February, overdue now.
    let p = o
        .post(
            "/requests",
            &[("csrf", &csrf), ("patient", "(415) 555-0100"), ("kind", "erasure"), ("received", "2026-01-31")],
        )
        .await;
    assert_eq!(p.status, 303);
    let page = o.get("/requests").await.body;
    assert!(page.contains("2026-02-28") && page.contains("overdue"), "{page}");
    assert!(!page.contains("/approve"), "the person who entered it was offered the approval");
    let mut admin = amy_b;
    let page = admin.get("/requests").await.body;
    let approve = page
        .split("action=\"/requests/")
        .find(|s| s.contains("/approve"))
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    // Cora cannot approve her own, even by posting the form herself.
    let p = o.post(&format!("/requests/{approve}"), &[("csrf", &csrf)]).await;
    assert!(p.body.contains("A second person must approve"), "{}", p.body);
    {
        let mut store = c.env.installation().open_tenant(TENANT).unwrap();
        let tx = store.transaction().unwrap();
        assert!(tx.customer_live(&store::ids::CustomerId::parse(&c.maria).unwrap()).unwrap());
    }
    let csrf2 = admin.get("/requests").await.csrf();
    let p = admin.post(&format!("/requests/{approve}"), &[("csrf", &csrf2)]).await;
    assert!(p.body.contains("the patient was erased and the receipt recorded"), "{}", p.body);
    {
        let mut store = c.env.installation().open_tenant(TENANT).unwrap();
        let tx = store.transaction().unwrap();
        assert!(!tx.customer_live(&store::ids::CustomerId::parse(&c.maria).unwrap()).unwrap());
    }
    let records = trail(&c);
    assert!(
        records
            .iter()
            .any(|r| r["action"] == "rights.approve" && r["outcome"] == "refused" && r["reason"] == "same_person")
    );
    let erase = records.iter().rev().find(|r| r["action"] == "customer.erase").unwrap();
    assert_eq!((&erase["actor_kind"], &erase["actor"]), (&json!("staff"), &json!(amy)));
    assert!(
        records.iter().any(|r| r["action"] == "rights.approve" && r["outcome"] == "ok" && r["actor"] == json!(amy))
    );
}
