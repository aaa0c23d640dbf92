//! Which earlier messages an inbound message answers. Real clients differ:
//! Gmail, Apple Mail and Thunderbird keep In-Reply-To and References;
//! Outlook (and some IMAP clients) may put its own id in In-Reply-To or drop
//! it, keeping ours in References; a forward may carry neither. So the
//! candidates are every id from In-Reply-To and References, ours first
//! (recognised by the shape we give them), then the rest, nearest parent
//! first. Whether a candidate counts is decided by the caller: it must be
//! recorded in this tenant's store and the sender must be the same patient.

use mail_parser::{HeaderValue, Message};

/// Where a thread candidate came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    InReplyTo,
    References,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::InReplyTo => "in_reply_to",
            Via::References => "references",
        }
    }
}

/// The prefix of every Message-ID we generate: `tl.<32 hex>@<domain>`.
const OURS: &str = "tl.";

/// A new Message-ID (without angle brackets) for a message we send.
pub fn our_message_id(domain: &str) -> String {
    format!("{OURS}{}@{domain}", uuid::Uuid::new_v4().simple())
}

fn is_ours(id: &str) -> bool {
    id.strip_prefix(OURS)
        .and_then(|rest| rest.split_once('@'))
        .is_some_and(|(hex, _)| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A Message-ID as compared and recorded: no angle brackets, no spaces,
/// 1 to 998 bytes; anything else is no id.
pub fn message_id(raw: &str) -> Option<String> {
    let id = raw.trim().trim_start_matches('<').trim_end_matches('>').trim();
    let ok = !id.is_empty() && id.len() <= 998 && !id.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control());
    ok.then(|| id.to_owned())
}

fn ids(v: &HeaderValue<'_>) -> Vec<String> {
    v.as_text_list().map(|l| l.iter().filter_map(|s| message_id(s)).collect()).unwrap_or_default()
}

/// Thread candidates in the order they are tried.
pub fn thread_candidates(msg: &Message<'_>) -> Vec<(Via, String)> {
    let mut all: Vec<(Via, String)> = ids(msg.in_reply_to()).into_iter().map(|i| (Via::InReplyTo, i)).collect();
    // References lists the thread oldest first: the nearest parent is last.
    all.extend(ids(msg.references()).into_iter().rev().map(|i| (Via::References, i)));
    let own = msg.message_id().and_then(message_id);
    let mut out: Vec<(Via, String)> = Vec::with_capacity(all.len());
    for pass_ours in [true, false] {
        for (via, id) in &all {
            if is_ours(id) == pass_ours && Some(id) != own.as_ref() && !out.iter().any(|(_, o)| o == id) {
                out.push((*via, id.clone()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Vec<(Via, String)> {
        let msg = mail_parser::MessageParser::default().parse(raw.as_bytes()).unwrap();
        thread_candidates(&msg)
    }

    #[test]
    fn ours_first_then_nearest_parent() {
        let ours = "tl.0123456789abcdef0123456789abcdef@sunrise.example";
        let raw = format!(
            "From: a@b.example\r\nMessage-ID: <x1@mail.example>\r\nIn-Reply-To: <DM6PR01@outlook.example>\r\n\
             References: <{ours}> <p2@gmail.example>\r\n\r\nhi\r\n"
        );
        assert_eq!(
            parse(&raw),
            vec![
                (Via::References, ours.to_owned()),
                (Via::InReplyTo, "DM6PR01@outlook.example".to_owned()),
                (Via::References, "p2@gmail.example".to_owned()),
            ]
        );
    }

    #[test]
    fn no_thread_headers_no_candidates() {
        assert!(parse("From: a@b.example\r\nSubject: hi\r\n\r\nhello\r\n").is_empty());
    }

    #[test]
    fn ids_are_normalised() {
        assert_eq!(message_id(" <a@b> "), Some("a@b".into()));
        assert_eq!(message_id("<>"), None);
        assert_eq!(message_id("a b@c"), None);
        assert!(our_message_id("x.example").starts_with("tl."));
        assert!(is_ours(&our_message_id("x.example")));
        assert!(!is_ours("tl.short@x"));
    }
}
