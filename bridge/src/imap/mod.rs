//! The IMAP poller for hosted mailboxes (async-imap on tokio-rustls):
//! SELECT, the UIDs after the last one stored, each message fetched whole
//! (`BODY.PEEK[]`, unmodified) into `POST /v1/email/inbound`, moved to the
//! done folder only once the core stored it, the last UID saved after the
//! move; then IDLE until the server says something changed. A restart
//! processes nothing twice (the state file) and skips nothing (a message
//! not yet moved is fetched again; the core stores it once).

pub mod state;

use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt as _;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::config::{Imap, ImapAuth};
use crate::core::Core;
use crate::lmtp::session::Outcome;
use state::State;

type Session = async_imap::Session<TlsStream<TcpStream>>;

/// Why a round ended early; the server's own words are never logged (they
/// can quote addresses).
#[derive(Debug)]
struct Fail(&'static str);

impl<E> From<(async_imap::error::Error, E)> for Fail {
    fn from(_: (async_imap::error::Error, E)) -> Self {
        Fail("login_refused")
    }
}

fn imap(_: async_imap::error::Error) -> Fail {
    Fail("imap_error")
}

struct XOAuth2 {
    user: String,
    token: String,
}

impl async_imap::Authenticator for &XOAuth2 {
    type Response = String;
    fn process(&mut self, _challenge: &[u8]) -> String {
        format!("user={}\u{1}auth=Bearer {}\u{1}\u{1}", self.user, self.token)
    }
}

/// Reads the mailbox for ever (on the current runtime); a failed round is
/// retried after a pause (`idle_secs`, at most 30 s).
pub async fn run(cfg: Imap, core: Core, tls: Arc<rustls::ClientConfig>) {
    loop {
        if let Err(Fail(code)) = round(&cfg, &core, &tls).await {
            tracing::warn!(imap = cfg.name, code, "mailbox round ended; retrying");
        }
        tokio::time::sleep(Duration::from_secs(cfg.idle_secs.min(30))).await;
    }
}

async fn token(cmd: &[String]) -> Result<String, Fail> {
    let (program, args) = cmd.split_first().ok_or(Fail("token_command_empty"))?;
    let out = tokio::time::timeout(Duration::from_secs(30), tokio::process::Command::new(program).args(args).output())
        .await
        .map_err(|_| Fail("token_command_timed_out"))?
        .map_err(|_| Fail("token_command_failed"))?;
    let token = String::from_utf8(out.stdout).map_err(|_| Fail("token_not_utf8"))?.trim().to_owned();
    if !out.status.success() || token.is_empty() {
        return Err(Fail("token_command_failed"));
    }
    Ok(token)
}

async fn connect(cfg: &Imap, tls: &Arc<rustls::ClientConfig>) -> Result<Session, Fail> {
    let tcp = tokio::time::timeout(Duration::from_secs(30), TcpStream::connect((cfg.host.as_str(), cfg.port)))
        .await
        .map_err(|_| Fail("connect_timed_out"))?
        .map_err(|_| Fail("connect_failed"))?;
    let name = rustls::pki_types::ServerName::try_from(cfg.host.clone()).map_err(|_| Fail("bad_host_name"))?;
    let stream = TlsConnector::from(tls.clone()).connect(name, tcp).await.map_err(|_| Fail("tls_failed"))?;
    let mut client = async_imap::Client::new(stream);
    client.read_response().await.map_err(|_| Fail("no_greeting"))?.ok_or(Fail("no_greeting"))?;
    Ok(match &cfg.auth {
        ImapAuth::Password { password_file } => {
            let password = zeroize::Zeroizing::new(
                std::fs::read_to_string(password_file).map_err(|_| Fail("password_file_unreadable"))?,
            );
            client.login(&cfg.user, password.trim_end_matches(['\r', '\n'])).await?
        }
        ImapAuth::XOauth2 { token_command } => {
            let auth = XOAuth2 { user: cfg.user.clone(), token: token(token_command).await? };
            client.authenticate("XOAUTH2", &auth).await?
        }
    })
}

async fn round(cfg: &Imap, core: &Core, tls: &Arc<rustls::ClientConfig>) -> Result<(), Fail> {
    let mut session = connect(cfg, tls).await?;
    let idle = session.capabilities().await.map_err(imap)?.has_str("IDLE");
    let path = state::path(&cfg.state_dir, &cfg.name);
    loop {
        let mailbox = session.select(&cfg.folder).await.map_err(imap)?;
        let mut st = State::after_select(state::load(&path), mailbox.uid_validity.unwrap_or(0));
        let found = session.uid_search(format!("UID {}:*", st.last_uid.saturating_add(1))).await.map_err(imap)?;
        for uid in st.to_process(found) {
            let raw = fetch(&mut session, uid).await?;
            let outcome = match raw {
                Some(raw) => Outcome::from_status(core.inbound_email(&raw).await),
                None => Outcome::Unreadable,
            };
            tracing::info!(imap = cfg.name, outcome = ?outcome, "imap message");
            match outcome {
                Outcome::Stored => move_to_done(&mut session, cfg, uid).await?,
                // Left in the folder for a person; not fetched again.
                Outcome::Unreadable | Outcome::TooBig => {}
                Outcome::Later => return Err(Fail("core_cannot_store")),
            }
            st.last_uid = uid;
            state::save(&path, st).map_err(|_| Fail("state_not_saved"))?;
        }
        if idle {
            let mut handle = session.idle();
            handle.init().await.map_err(imap)?;
            let (wait, _stop) = handle.wait_with_timeout(Duration::from_secs(cfg.idle_secs));
            wait.await.map_err(imap)?;
            session = handle.done().await.map_err(imap)?;
        } else {
            tokio::time::sleep(Duration::from_secs(cfg.idle_secs.min(60))).await;
        }
    }
}

async fn fetch(session: &mut Session, uid: u32) -> Result<Option<Vec<u8>>, Fail> {
    let fetches: Vec<_> =
        session.uid_fetch(uid.to_string(), "BODY.PEEK[]").await.map_err(imap)?.try_collect().await.map_err(imap)?;
    Ok(fetches.iter().find(|f| f.uid == Some(uid)).and_then(|f| f.body()).map(<[u8]>::to_vec))
}

/// UID MOVE (RFC 6851), or COPY, flag deleted and UID EXPUNGE where the
/// server has no MOVE.
async fn move_to_done(session: &mut Session, cfg: &Imap, uid: u32) -> Result<(), Fail> {
    if session.uid_mv(uid.to_string(), &cfg.done_folder).await.is_ok() {
        return Ok(());
    }
    session.uid_copy(uid.to_string(), &cfg.done_folder).await.map_err(|_| Fail("move_failed"))?;
    let _: Vec<_> = session
        .uid_store(uid.to_string(), "+FLAGS.SILENT (\\Deleted)")
        .await
        .map_err(imap)?
        .try_collect()
        .await
        .map_err(imap)?;
    let _: Vec<_> = session.uid_expunge(uid.to_string()).await.map_err(imap)?.try_collect().await.map_err(imap)?;
    Ok(())
}
