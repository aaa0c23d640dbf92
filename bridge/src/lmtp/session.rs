//! One LMTP conversation (RFC 2033) as a state machine: commands in
//! (parsed by smtp-proto), replies out, and after DATA the recipients the
//! shell must deliver to, one reply each. Pure: no I/O, no clock.

use std::borrow::Cow;

use smtp_proto::{Error, Request};

/// Recipients accepted in one transaction, at most.
pub const MAX_RECIPIENTS: usize = 100;

/// What the shell does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Reply(String),
    /// Reply, then read the message until `<CRLF>.<CRLF>`.
    Data(String),
    /// Reply, then close the connection.
    Close(String),
}

/// An accepted recipient and the mailbox (tenant) its domain maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    pub address: String,
    pub mailbox: usize,
}

#[derive(Debug, Default)]
pub struct Session {
    greeted: bool,
    sender: Option<String>,
    recipients: Vec<Recipient>,
    max_bytes: usize,
}

/// How a delivery to one recipient ended, told by the core's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Stored,
    /// The core is down, busy or refusing this certificate: Postfix keeps
    /// the message queued and tries again.
    Later,
    /// The core cannot read the message (malformed MIME): Postfix bounces it.
    Unreadable,
    TooBig,
}

impl Outcome {
    /// From the core's HTTP status (None: it could not be reached).
    /// A 409 is the same bytes already stored through another email
    /// certificate (a renewal, a second bridge): the message is in, and
    /// retrying it would only wedge the queue or the mailbox (L12).
    pub fn from_status(status: Option<u16>) -> Self {
        match status {
            Some(200..=299 | 409) => Outcome::Stored,
            Some(413) => Outcome::TooBig,
            Some(400 | 415) => Outcome::Unreadable,
            _ => Outcome::Later,
        }
    }

    pub fn reply(self, recipient: &str) -> String {
        match self {
            Outcome::Stored => format!("250 2.0.0 <{recipient}> delivered"),
            Outcome::Later => format!("451 4.3.0 <{recipient}> cannot be stored now; try again later"),
            Outcome::Unreadable => format!("554 5.6.0 <{recipient}> the message cannot be read"),
            Outcome::TooBig => format!("552 5.3.4 <{recipient}> message too big"),
        }
    }
}

pub fn greeting(host: &str) -> String {
    format!("220 {host} LMTP Throughline bridge ready")
}

impl Session {
    pub fn new(max_bytes: usize) -> Self {
        Session { max_bytes, ..Session::default() }
    }

    fn reset(&mut self) {
        self.sender = None;
        self.recipients.clear();
    }

    /// The recipients of the message just read (the transaction ends).
    pub fn take_recipients(&mut self) -> Vec<Recipient> {
        let out = std::mem::take(&mut self.recipients);
        self.reset();
        out
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// A command line that did not parse.
    pub fn on_error(&mut self, e: &Error) -> Step {
        Step::Reply(match e {
            Error::UnknownCommand => "500 5.5.2 command not recognized".into(),
            Error::InvalidSenderAddress => "501 5.1.7 bad sender address".into(),
            Error::InvalidRecipientAddress => "501 5.1.3 bad recipient address".into(),
            Error::ResponseTooLong => "500 5.5.6 line too long".into(),
            _ => "501 5.5.4 syntax error".into(),
        })
    }

    /// A parsed command; `mailbox` maps a recipient's domain to a mailbox.
    pub fn on_request(
        &mut self,
        req: Request<Cow<'_, str>>,
        host: &str,
        mailbox: &dyn Fn(&str) -> Option<usize>,
    ) -> Step {
        let reply = |s: &str| Step::Reply(s.to_owned());
        match req {
            Request::Lhlo { .. } => {
                self.greeted = true;
                self.reset();
                Step::Reply(format!(
                    "250-{host}\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 SIZE {}",
                    self.max_bytes
                ))
            }
            Request::Ehlo { .. } | Request::Helo { .. } => reply("500 5.5.1 this is LMTP: say LHLO"),
            Request::Mail { from } => {
                if !self.greeted {
                    reply("503 5.5.1 LHLO first")
                } else if self.sender.is_some() {
                    reply("503 5.5.1 nested MAIL command")
                } else if from.size > self.max_bytes && from.size != usize::MAX {
                    reply("552 5.3.4 message too big")
                } else {
                    self.sender = Some(from.address.into_owned());
                    reply("250 2.1.0 sender ok")
                }
            }
            Request::Rcpt { to } => {
                if self.sender.is_none() {
                    return reply("503 5.5.1 MAIL first");
                }
                if self.recipients.len() >= MAX_RECIPIENTS {
                    return reply("452 4.5.3 too many recipients");
                }
                let address = to.address.into_owned();
                let domain = address.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
                match mailbox(&domain) {
                    Some(m) => {
                        self.recipients.push(Recipient { address, mailbox: m });
                        reply("250 2.1.5 recipient ok")
                    }
                    None => reply("550 5.1.1 no mailbox here for that address"),
                }
            }
            Request::Data => {
                if self.recipients.is_empty() {
                    reply("503 5.5.1 no valid recipients")
                } else {
                    Step::Data("354 2.0.0 send the message, end with <CRLF>.<CRLF>".into())
                }
            }
            Request::Rset => {
                self.reset();
                reply("250 2.0.0 ok")
            }
            Request::Noop { .. } => reply("250 2.0.0 ok"),
            Request::Vrfy { .. } => reply("252 2.5.2 cannot verify, but will accept"),
            Request::Quit => Step::Close("221 2.0.0 bye".into()),
            Request::StartTls => reply("502 5.5.1 STARTTLS not offered (listen on a unix socket or loopback)"),
            _ => reply("502 5.5.1 command not implemented"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(session: &mut Session, line: &str) -> Step {
        let bytes = format!("{line}\r\n").into_bytes();
        let lookup = |d: &str| (d == "intake.sunrise.example").then_some(0);
        match Request::parse(&mut bytes.iter()) {
            Ok(r) => session.on_request(r, "bridge.test", &lookup),
            Err(e) => session.on_error(&e),
        }
    }

    fn code(step: Step) -> String {
        match step {
            Step::Reply(s) | Step::Data(s) | Step::Close(s) => s[..3].to_owned(),
        }
    }

    #[test]
    fn a_transaction_in_rfc_2033_order() {
        let mut s = Session::new(1000);
        assert_eq!(code(run(&mut s, "MAIL FROM:<a@b.example>")), "503");
        assert_eq!(code(run(&mut s, "EHLO postfix")), "500");
        assert!(matches!(run(&mut s, "LHLO postfix"), Step::Reply(r) if r.ends_with("250 SIZE 1000")));
        assert_eq!(code(run(&mut s, "RCPT TO:<x@intake.sunrise.example>")), "503");
        assert_eq!(code(run(&mut s, "DATA")), "503");
        assert_eq!(code(run(&mut s, "MAIL FROM:<maria@example.com> SIZE=5000")), "552");
        assert_eq!(code(run(&mut s, "MAIL FROM:<maria@example.com> SIZE=500")), "250");
        assert_eq!(code(run(&mut s, "RCPT TO:<frontdesk@intake.sunrise.example>")), "250");
        assert_eq!(code(run(&mut s, "RCPT TO:<frontdesk@other-clinic.example>")), "550");
        assert_eq!(code(run(&mut s, "RCPT TO:<Billing@INTAKE.sunrise.example>")), "250");
        assert!(matches!(run(&mut s, "DATA"), Step::Data(_)));
        let r = s.take_recipients();
        assert_eq!(r.len(), 2);
        assert_eq!(code(run(&mut s, "RCPT TO:<x@intake.sunrise.example>")), "503", "the transaction ended");
        assert_eq!(code(run(&mut s, "FOO bar")), "500");
        assert!(matches!(run(&mut s, "QUIT"), Step::Close(_)));
    }

    #[test]
    fn the_cores_answer_decides_the_reply() {
        assert_eq!(Outcome::from_status(Some(201)).reply("a@b")[..3], *"250");
        assert_eq!(Outcome::from_status(Some(200)), Outcome::Stored);
        assert_eq!(Outcome::from_status(None), Outcome::Later);
        assert_eq!(Outcome::from_status(Some(503)), Outcome::Later);
        assert_eq!(Outcome::from_status(Some(500)), Outcome::Later);
        assert_eq!(Outcome::from_status(Some(401)), Outcome::Later, "a revoked certificate keeps mail queued");
        assert_eq!(Outcome::from_status(Some(400)), Outcome::Unreadable);
        assert_eq!(Outcome::from_status(Some(413)), Outcome::TooBig);
        // L12: the same bytes already stored through another certificate.
        assert_eq!(Outcome::from_status(Some(409)), Outcome::Stored);
    }
}
