//! The LMTP listener Postfix delivers to (`lmtp:unix:…` or `lmtp:inet:…`):
//! a tokio server around [`session::Session`]. Each accepted recipient gets
//! its own reply after DATA, and a 250 only once the core has stored the
//! message (`POST /v1/email/inbound` over mTLS with the recipient domain's
//! email certificate, the message unmodified); anything else is a 4xx, so
//! Postfix keeps the mail queued. Nothing is stored here.

pub mod session;

use std::sync::Arc;
use std::time::Duration;

use smtp_proto::Error as ProtoError;
use smtp_proto::request::receiver::{DataReceiver, RequestReceiver};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::config::{Lmtp, LmtpListen};
use crate::core::Core;
use session::{Outcome, Session, Step};

/// A recipient domain and the core client holding its email certificate.
pub struct LiveMailbox {
    pub domain: String,
    pub core: Core,
}

pub struct LmtpState {
    pub config: Lmtp,
    pub mailboxes: Vec<LiveMailbox>,
}

/// A client silent for this long is dropped (RFC 5321 suggests 5 minutes).
const IDLE: Duration = Duration::from_secs(300);

/// Where the listener is, for the operator.
pub fn describe(listen: &LmtpListen, tcp: Option<std::net::SocketAddr>) -> String {
    match (listen, tcp) {
        (_, Some(a)) => a.to_string(),
        (LmtpListen::Unix(p), None) => format!("unix:{}", p.display()),
        (LmtpListen::Tcp(a), None) => a.to_string(),
    }
}

pub enum Listener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

/// Binds the listener (a stale socket file is replaced).
pub fn bind(config: &Lmtp) -> std::io::Result<Listener> {
    match &config.listen {
        LmtpListen::Tcp(a) => {
            let std = std::net::TcpListener::bind(a)?;
            std.set_nonblocking(true)?;
            Ok(Listener::Tcp(tokio::net::TcpListener::from_std(std)?))
        }
        LmtpListen::Unix(p) => {
            if p.exists() {
                std::fs::remove_file(p)?;
            }
            let l = tokio::net::UnixListener::bind(p)?;
            std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(config.socket_mode))?;
            Ok(Listener::Unix(l))
        }
    }
}

pub async fn serve(listener: Listener, state: Arc<LmtpState>) {
    loop {
        let accepted = match &listener {
            Listener::Tcp(l) => l.accept().await.map(|(s, _)| {
                let _ = s.set_nodelay(true);
                Box::new(s) as Box<dyn Stream>
            }),
            Listener::Unix(l) => l.accept().await.map(|(s, _)| Box::new(s) as Box<dyn Stream>),
        };
        match accepted {
            Ok(stream) => {
                let state = state.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection(stream, &state).await {
                        tracing::info!(cause = %e.kind(), "lmtp connection ended");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(cause = %e.kind(), "lmtp accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

enum Mode {
    Commands,
    Data { receiver: DataReceiver, message: Vec<u8>, too_big: bool },
}

/// One reply in one write (two small writes would wait on Nagle's
/// algorithm and the client's delayed ACK: 40 ms a transaction).
async fn write(stream: &mut Box<dyn Stream>, line: &str) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(line.len() + 2);
    out.extend_from_slice(line.as_bytes());
    out.extend_from_slice(b"\r\n");
    stream.write_all(&out).await
}

async fn connection(mut stream: Box<dyn Stream>, state: &LmtpState) -> std::io::Result<()> {
    let host = state.config.hostname.clone();
    write(&mut stream, &session::greeting(&host)).await?;
    let mut session = Session::new(state.config.max_message_bytes);
    let mut commands = RequestReceiver::default();
    let mut mode = Mode::Commands;
    let mut buf = vec![0u8; 64 * 1024];
    let lookup = |d: &str| state.mailboxes.iter().position(|m| m.domain == d);
    loop {
        let n = match tokio::time::timeout(IDLE, stream.read(&mut buf)).await {
            Ok(r) => r?,
            Err(_) => {
                let _ = write(&mut stream, "421 4.4.2 idle too long").await;
                return Ok(());
            }
        };
        if n == 0 {
            // The client went away; a message cut mid-DATA was never delivered.
            return Ok(());
        }
        let mut bytes = buf[..n].iter();
        loop {
            match &mut mode {
                Mode::Commands => match commands.ingest(&mut bytes) {
                    Ok(req) => match session.on_request(req, &host, &lookup) {
                        Step::Reply(r) => write(&mut stream, &r).await?,
                        Step::Data(r) => {
                            write(&mut stream, &r).await?;
                            mode = Mode::Data { receiver: DataReceiver::new(), message: Vec::new(), too_big: false };
                        }
                        Step::Close(r) => {
                            write(&mut stream, &r).await?;
                            return stream.shutdown().await;
                        }
                    },
                    Err(ProtoError::NeedsMoreData { .. }) => break,
                    Err(e) => write(&mut stream, &step_text(session.on_error(&e))).await?,
                },
                Mode::Data { receiver, message, too_big } => {
                    let done = receiver.ingest(&mut bytes, message);
                    if message.len() > session.max_bytes() + 3 {
                        // Keep reading to the end, holding only the tail the
                        // receiver needs to find it.
                        *too_big = true;
                        let keep = message.len() - 3;
                        message.drain(..keep);
                    }
                    if !done {
                        break;
                    }
                    let (message, too_big) = (std::mem::take(message), *too_big);
                    mode = Mode::Commands;
                    let replies = deliver(state, &mut session, &message, too_big).await;
                    write(&mut stream, &replies.join("\r\n")).await?;
                }
            }
        }
        stream.flush().await?;
    }
}

fn step_text(step: Step) -> String {
    match step {
        Step::Reply(s) | Step::Data(s) | Step::Close(s) => s,
    }
}

/// Stores the message once per mailbox; one reply per recipient, in order.
async fn deliver(state: &LmtpState, session: &mut Session, message: &[u8], too_big: bool) -> Vec<String> {
    let recipients = session.take_recipients();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; state.mailboxes.len()];
    for r in &recipients {
        if outcomes[r.mailbox].is_some() {
            continue;
        }
        let outcome = if too_big {
            Outcome::TooBig
        } else {
            Outcome::from_status(state.mailboxes[r.mailbox].core.inbound_email(message).await)
        };
        tracing::info!(mailbox = state.mailboxes[r.mailbox].domain, outcome = ?outcome, bytes = message.len(), "lmtp delivery");
        outcomes[r.mailbox] = Some(outcome);
    }
    recipients.iter().map(|r| outcomes[r.mailbox].unwrap_or(Outcome::Later).reply(&r.address)).collect()
}
