//! Mail into the core through the bridge's LMTP listener: a real Postfix
//! delivering over LMTP (queued while the core is down, delivered once
//! after), and the bad input Postfix would never send, over a raw LMTP
//! connection.
#![allow(clippy::unwrap_used)]

mod util;

use std::time::{Duration, Instant};

use util::mail::{Dmarc, Postfix, mailbox};
use util::{Env, mta_stamp};

const DOMAIN: &str = "intake.sunrise.example";

fn message(id: &str, body: &str) -> Vec<u8> {
    mta_stamp(
        format!(
            "From: Maria Lopez <maria@example.com>\r\nTo: frontdesk@{DOMAIN}\r\nSubject: My appointment\r\n\
             Message-ID: <{id}@example.com>\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\n{body}\r\n"
        )
        .as_bytes(),
    )
}

fn audit(env: &Env, tenant: &str) -> Vec<serde_json::Value> {
    let out = env.tmp.path().join(format!("audit-{}.jsonl", uuid::Uuid::new_v4().simple()));
    env.ok(&["audit", "export", "--tenant", tenant, "--format", "jsonl", "--out", out.to_str().unwrap()]);
    std::fs::read_to_string(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn inbound(records: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    records.iter().filter(|r| r["action"] == "email.inbound").collect()
}

fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Postfix takes a message over SMTP and delivers it to the bridge over
/// LMTP; with the core stopped the bridge answers 4xx, Postfix keeps the
/// message queued, and delivers it once after the core returns.
#[test]
fn postfix_delivers_over_lmtp_and_keeps_mail_queued_while_the_core_is_down() {
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    let email = env.issue("sunrise", "email");
    let mut core = env.serve();
    let core_addr = core.addr;
    let bridge = env.mail_bridge(&core.url(""), "listen = \"127.0.0.1:0\"", &mailbox(DOMAIN, &email));
    let postfix = Postfix::start(&env, DOMAIN, bridge.port());

    postfix.submit("maria@example.com", &format!("frontdesk@{DOMAIN}"), &message("first", "Can I come on Friday?"));
    wait_until(20, "the first delivery", || postfix.queue().contains("Mail queue is empty"));

    core.terminate();
    postfix.submit("maria@example.com", &format!("frontdesk@{DOMAIN}"), &message("second", "Or Saturday?"));
    wait_until(20, "the second message to be deferred", || postfix.queue().contains("cannot be stored now"));
    assert!(postfix.queue().contains(&format!("frontdesk@{DOMAIN}")), "{}", postfix.queue());

    let core = env.serve_on(core_addr);
    postfix.flush();
    wait_until(20, "the queued message to be delivered", || postfix.queue().contains("Mail queue is empty"));
    let log = postfix.log_text();
    assert!(log.contains("status=deferred"), "{log}");
    assert_eq!(log.matches("status=sent").count(), 2, "{log}");
    drop(postfix);
    let bridge_log = bridge.log_text();
    drop(bridge);
    drop(core);

    let records = audit(&env, "sunrise");
    let mails = inbound(&records);
    assert_eq!(mails.len(), 2, "each message stored once: {mails:?}");
    assert_eq!(mails[0]["customer_id"], mails[1]["customer_id"], "both in the same patient's record");
    for phi in ["maria", "Friday", "Saturday"] {
        assert!(!bridge_log.contains(phi), "{phi} in the bridge log");
    }
}

/// A raw LMTP conversation, pipelined: everything in `script` is sent at
/// once, then every reply line is read until the server closes (QUIT).
/// N2 through a real MTA and a real DMARC milter: Debian's Postfix with
/// OpenDMARC 1.4 stamping every message (SPF checked against
/// `example.com`'s records on a local DNS). A genuine message from Maria's
/// domain is asserted and written, and her second one lands in the same
/// record; a forged From with a forged `dmarc=pass` in the clinic's
/// authserv-id, on top of the message or at its bottom, meets OpenDMARC's
/// own `fail` (which it inserts on top) and writes nothing: it is held as
/// `ambiguous_headers`. (With OpenDMARC's top placement the code before N2
/// held these too, as `not_authenticated`; the shapes it believed, a forged
/// pass above a milter that appends at the bottom or with no stamp below
/// it, are in `tests/trust.rs::n2_…`.)
#[test]
fn a_real_dmarc_milter_stamps_and_a_forged_stamp_writes_nothing() {
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    let email = env.issue("sunrise", "email");
    let core = env.serve();
    let bridge = env.mail_bridge(&core.url(""), "listen = \"127.0.0.1:0\"", &mailbox(DOMAIN, &email));
    let dmarc = Dmarc::start(&env);
    let milter = format!("smtpd_milters = inet:127.0.0.1:{}\nmilter_default_action = tempfail", dmarc.port);
    let postfix = Postfix::start_with(&env, DOMAIN, bridge.port(), &milter);
    let plain = |id: &str, body: &str, extra: &str| {
        format!(
            "{extra}From: Maria Lopez <maria@example.com>\r\nTo: frontdesk@{DOMAIN}\r\nSubject: My appointment\r\n\
             Message-ID: <{id}@example.com>\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\n{body}\r\n"
        )
        .into_bytes()
    };
    let to = format!("frontdesk@{DOMAIN}");
    // Genuine: the envelope sender's SPF passes for example.com, aligned with From.
    postfix.submit("maria@example.com", &to, &plain("g1", "Can I come on Friday?", ""));
    postfix.submit("maria@example.com", &to, &plain("g2", "Or Saturday?", ""));
    // Forged: another envelope, a `dmarc=pass` in the clinic's name on top, and at the bottom.
    let forged = "Authentication-Results: mx.test.example; dmarc=pass header.from=example.com\r\n";
    postfix.submit("mallory@evil.example", &to, &plain("f1", "Cancel all my appointments.", forged));
    let bottom = plain("f2", "Send my records to mallory@evil.example.", "");
    let text = String::from_utf8(bottom).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    postfix.submit("mallory@evil.example", &to, format!("{head}\r\n{forged}\r\n{body}").as_bytes());
    wait_until(30, "four deliveries", || postfix.log_text().matches("status=sent").count() == 4);
    drop(postfix);
    drop(bridge);
    drop(core);
    drop(dmarc);

    let records = audit(&env, "sunrise");
    let mails = inbound(&records);
    assert_eq!(mails.len(), 4, "{mails:?}");
    let reasons: Vec<&str> = mails.iter().map(|r| r["reason"].as_str().unwrap()).collect();
    assert!(reasons[0].contains("sender:dmarc_pass") && reasons[1].contains("sender:dmarc_pass"), "{reasons:?}");
    assert_eq!(mails[0]["customer_id"], mails[1]["customer_id"], "her second message in the same record");
    for r in &reasons[2..] {
        assert!(
            r.contains("sender:ambiguous_headers") && r.contains("held:"),
            "a forged stamp was believed: {reasons:?}"
        );
    }
    let store = env.installation().open_tenant("sunrise").unwrap();
    assert_eq!(store.count(store::Countable::Turns).unwrap(), 2, "only Maria's two messages are turns");
    assert_eq!(store.count(store::Countable::HeldMessages).unwrap(), 2);
}

fn lmtp(mut stream: std::os::unix::net::UnixStream, script: &[&[u8]]) -> Vec<String> {
    use std::io::{Read as _, Write as _};
    for chunk in script {
        stream.write_all(chunk).unwrap();
    }
    let mut all = String::new();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream.read_to_string(&mut all).unwrap();
    all.lines().map(str::to_owned).collect()
}

fn codes(replies: &[String]) -> Vec<&str> {
    replies.iter().filter(|r| r.as_bytes().get(3) != Some(&b'-')).map(|r| &r[..3]).collect()
}

/// What Postfix would never send, on the unix socket: each gets a clear
/// reply and nothing half-stored; two tenants' domains go each to its own.
#[test]
fn lmtp_bad_input_gets_clear_replies_and_stores_nothing() {
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    env.tenant(&["lakeside"]);
    let (sunrise, lakeside) = (env.issue("sunrise", "email"), env.issue("lakeside", "email"));
    let core = env.serve();
    let socket = env.tmp.path().join("lmtp.sock");
    let listen =
        format!("listen = \"unix:{}\"\nmax_message_bytes = 4096\nhostname = \"bridge.test\"", socket.display());
    let boxes = format!("{}{}", mailbox(DOMAIN, &sunrise), mailbox("intake.lakeside.example", &lakeside));
    let bridge = env.mail_bridge(&core.url(""), &listen, &boxes);
    assert_eq!(bridge.lmtp, format!("unix:{}", socket.display()));
    let connect = || std::os::unix::net::UnixStream::connect(&socket).unwrap();

    let good = message("good", "Hello");
    let mut data = good.clone();
    data.extend_from_slice(b".\r\n");
    let big = message("big", &"x".repeat(8000));
    let mut big_data = big.clone();
    big_data.extend_from_slice(b".\r\n");
    let replies = lmtp(
        connect(),
        &[
            b"HELO postfix\r\n",
            b"LHLO postfix\r\n",
            b"MAIL FROM:<maria@example.com>\r\n",
            b"RCPT TO:<frontdesk@intake.elsewhere.example>\r\n",
            b"RCPT TO:<frontdesk@intake.sunrise.example>\r\n",
            b"RCPT TO:<billing@intake.sunrise.example>\r\n",
            b"RCPT TO:<frontdesk@intake.lakeside.example>\r\n",
            b"DATA\r\n",
            &data,
            b"MAIL FROM:<maria@example.com>\r\n",
            b"RCPT TO:<frontdesk@intake.sunrise.example>\r\n",
            b"DATA\r\n",
            &big_data,
            b"MAIL FROM:<x@example.com>\r\n",
            b"RCPT TO:<frontdesk@intake.sunrise.example>\r\n",
            b"DATA\r\n",
            b"this is not a message\r\n.\r\n",
            b"MAIL FROM:<maria@example.com>\r\n",
            b"RCPT TO:<frontdesk@intake.sunrise.example>\r\n",
            b"DATA\r\n",
            &data,
            b"QUIT\r\n",
        ],
    );
    assert_eq!(
        codes(&replies),
        [
            "220", "500", "250", "250", "550", "250", "250", "250", "354", "250", "250",
            "250", // a recipient each
            "250", "250", "354", "552", // over max_message_bytes
            "250", "250", "354", "554", // not RFC 5322
            "250", "250", "354", "250", // the same message again
            "221"
        ],
        "{replies:#?}"
    );

    // A client that drops mid-DATA: nothing is stored.
    let half = &good[..good.len() / 2];
    let mut cut = connect();
    for chunk in
        [&b"LHLO postfix\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<x@intake.sunrise.example>\r\nDATA\r\n"[..], half]
    {
        std::io::Write::write_all(&mut cut, chunk).unwrap();
    }
    drop(cut);
    std::thread::sleep(Duration::from_millis(300));
    drop(bridge);
    drop(core);
    let sunrise = audit(&env, "sunrise");
    let sessions: std::collections::BTreeSet<String> =
        inbound(&sunrise).iter().map(|r| r["session_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(sessions.len(), 1, "the good message once, whatever its recipients and re-deliveries: {sessions:?}");
    assert_eq!(inbound(&audit(&env, "lakeside")).len(), 1, "the other clinic's domain went to the other clinic");
}

/// A hosted mailbox over IMAP, played by a real Dovecot: appended messages
/// are stored once and moved to the done folder; a bridge restarted in the
/// middle processes nothing twice; while the core is down nothing is moved,
/// and it is stored once the core is back.
#[test]
fn imap_messages_are_stored_once_and_moved_across_restarts() {
    use util::dovecot::{Dovecot, PASSWORD, USER};
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    let email = env.issue("sunrise", "email");
    let mut core = env.serve();
    let core_addr = core.addr;
    let dovecot = Dovecot::start(&env);
    let password = env.tmp.path().join("imap-password");
    std::fs::write(&password, format!("{PASSWORD}\n")).unwrap();
    let state = env.tmp.path().join("bridge-state");
    let config = format!(
        "core = \"{}\"\nplatform_ca_file = \"{}\"\n[[imap]]\nname = \"sunrise-inbox\"\nhost = \"localhost\"\nport = {}\n\
         user = \"{USER}\"\nauth = \"password\"\npassword_file = \"{}\"\nfolder = \"INBOX\"\ndone_folder = \"Done\"\n\
         certs = \"{}\"\nstate_dir = \"{}\"\nidle_secs = 2\n",
        core.url(""),
        dovecot.ca.display(),
        dovecot.port,
        password.display(),
        email.dir.display(),
        state.display()
    );
    let stored = |b: &util::mail::MailBridge| b.log_text().matches("Stored").count();
    dovecot.append(&message("imap-1", "First by IMAP"));
    dovecot.append(&message("imap-2", "Second by IMAP"));
    let first = env.bridge_config(&config, "imap sunrise-inbox reading ");
    assert_eq!(first.lmtp, format!("{USER}@localhost:{}/INBOX", dovecot.port));
    wait_until(30, "two messages moved", || dovecot.count("Done") == 2);
    assert_eq!(dovecot.count("INBOX"), 0);
    assert_eq!(stored(&first), 2);
    drop(first);

    // Restarted: only the new message.
    dovecot.append(&message("imap-3", "Third by IMAP"));
    let second = env.bridge_config(&config, "imap sunrise-inbox reading ");
    wait_until(30, "the third moved", || dovecot.count("Done") == 3);
    assert_eq!(stored(&second), 1, "nothing processed twice: {}", second.log_text());

    // The core down: the message stays where it is until the core is back.
    core.terminate();
    dovecot.append(&message("imap-4", "Fourth by IMAP"));
    wait_until(30, "a round that could not store", || second.log_text().contains("core_cannot_store"));
    assert_eq!((dovecot.count("INBOX"), dovecot.count("Done")), (1, 3));
    let core = env.serve_on(core_addr);
    wait_until(30, "the fourth moved", || dovecot.count("Done") == 4);
    let log = second.log_text();
    drop(second);
    drop(core);
    assert!(!log.contains("First by IMAP") && !log.contains("maria"), "PHI in the bridge log");
    let records = audit(&env, "sunrise");
    let sessions: std::collections::BTreeSet<String> =
        inbound(&records).iter().map(|r| r["session_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(sessions.len(), 4, "four messages, four stored");
}

/// XOAUTH2 (what Google Workspace and Microsoft 365 require), against
/// Dovecot's oauth2 passdb with a token introspection endpoint: a token the
/// endpoint refuses stores nothing; the token command is run again each
/// round, so a refreshed token is picked up.
#[test]
fn imap_xoauth2_with_a_token_command() {
    use util::dovecot::{Dovecot, TOKEN, USER};
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    let email = env.issue("sunrise", "email");
    let core = env.serve();
    let dovecot = Dovecot::start(&env);
    let token = env.tmp.path().join("access-token");
    std::fs::write(&token, "an-expired-token\n").unwrap();
    let config = format!(
        "core = \"{}\"\nplatform_ca_file = \"{}\"\n[[imap]]\nname = \"workspace\"\nhost = \"localhost\"\nport = {}\n\
         user = \"{USER}\"\nauth = \"xoauth2\"\ntoken_command = [\"cat\", \"{}\"]\nfolder = \"INBOX\"\ndone_folder = \"Done\"\n\
         certs = \"{}\"\nstate_dir = \"{}\"\nidle_secs = 1\n",
        core.url(""),
        dovecot.ca.display(),
        dovecot.port,
        token.display(),
        email.dir.display(),
        env.tmp.path().join("state").display()
    );
    dovecot.append(&message("oauth-1", "By OAuth"));
    let bridge = env.bridge_config(&config, "imap workspace reading ");
    wait_until(20, "a refused login", || bridge.log_text().contains("login_refused"));
    assert_eq!(dovecot.count("INBOX"), 1);
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    wait_until(20, "the message moved", || dovecot.count("Done") == 1);
    assert!(!bridge.log_text().contains(TOKEN), "the token in the bridge log");
}
