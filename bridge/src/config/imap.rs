//! `[[imap]]`: a hosted mailbox (Google Workspace, Microsoft 365, Dovecot)
//! the bridge reads over IMAPS and feeds to one tenant's email certificate.

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImap {
    name: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    auth: Option<String>,
    token_command: Option<Vec<String>>,
    password_file: Option<PathBuf>,
    folder: Option<String>,
    done_folder: Option<String>,
    certs: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    idle_secs: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImapAuth {
    /// SASL XOAUTH2 with an access token printed by `token_command`.
    XOauth2 { token_command: Vec<String> },
    /// LOGIN with the password in `password_file` (on-prem servers).
    Password { password_file: PathBuf },
}

#[derive(Clone, Debug)]
pub struct Imap {
    pub name: String,
    pub host: String,
    /// IMAPS (TLS from the first byte); 993 by default.
    pub port: u16,
    pub user: String,
    pub auth: ImapAuth,
    pub folder: String,
    pub done_folder: String,
    pub certs: PathBuf,
    /// Where the mailbox's UIDVALIDITY and last UID are kept (nothing else).
    pub state_dir: PathBuf,
    /// How long one IDLE waits before the bridge looks again anyway.
    pub idle_secs: u64,
}

fn mailbox_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 200 && !s.contains(['"', '\\', '\r', '\n'])
}

pub(super) fn imaps(raw: Vec<RawImap>, base: &Path, errs: &mut Vec<String>) -> Vec<Imap> {
    let mut out: Vec<Imap> = Vec::new();
    for (i, m) in raw.into_iter().enumerate() {
        let at = |f: &str| format!("imap[{i}].{f}");
        let start = errs.len();
        let name = m.name.unwrap_or_default();
        if !((1..=64).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
        {
            errs.push(format!("{}: 1 to 64 of a-z 0-9 - (it names the state file)", at("name")));
        } else if out.iter().any(|o| o.name == name) {
            errs.push(format!("{}: {name:?} is used twice", at("name")));
        }
        let host = m.host.unwrap_or_default();
        if host.is_empty() || host.contains(char::is_whitespace) {
            errs.push(format!("{}: missing (e.g. \"imap.gmail.com\")", at("host")));
        }
        let user = m.user.unwrap_or_default();
        if user.is_empty() || user.contains(['\r', '\n', '\u{1}']) {
            errs.push(format!("{}: missing (the mailbox's login)", at("user")));
        }
        let auth = match (m.auth.as_deref(), m.token_command, m.password_file) {
            (Some("xoauth2"), Some(cmd), None) if !cmd.is_empty() => Some(ImapAuth::XOauth2 { token_command: cmd }),
            (Some("password"), None, Some(p)) => Some(ImapAuth::Password { password_file: base.join(p) }),
            (Some("xoauth2"), _, _) => {
                errs.push(format!("{}: auth = \"xoauth2\" takes token_command (a command printing an access token) and no password_file", at("token_command")));
                None
            }
            (Some("password"), _, _) => {
                errs.push(format!(
                    "{}: auth = \"password\" takes password_file and no token_command",
                    at("password_file")
                ));
                None
            }
            _ => {
                errs.push(format!("{}: \"xoauth2\" (Google Workspace, Microsoft 365) or \"password\"", at("auth")));
                None
            }
        };
        let folder = m.folder.unwrap_or_else(|| "INBOX".to_owned());
        let done_folder = m.done_folder.unwrap_or_default();
        if !mailbox_name(&folder) {
            errs.push(format!("{}: a mailbox name", at("folder")));
        }
        if !mailbox_name(&done_folder) || done_folder == folder {
            errs.push(format!(
                "{}: the folder a stored message is moved to (not the folder itself)",
                at("done_folder")
            ));
        }
        if m.certs.is_none() {
            errs.push(format!("{}: missing (cert issue --channel email --out …)", at("certs")));
        }
        if m.state_dir.is_none() {
            errs.push(format!("{}: missing (a directory the bridge may write its last UID in)", at("state_dir")));
        }
        let idle_secs = m.idle_secs.unwrap_or(300);
        if !(1..=1740).contains(&idle_secs) {
            errs.push(format!("{}: 1 to 1740 seconds (servers end an IDLE after 30 minutes)", at("idle_secs")));
        }
        if errs.len() > start {
            continue;
        }
        let (Some(auth), Some(certs), Some(state_dir)) = (auth, m.certs, m.state_dir) else { continue };
        out.push(Imap {
            name,
            host,
            port: m.port.unwrap_or(993),
            user,
            auth,
            folder,
            done_folder,
            certs: base.join(certs),
            state_dir: base.join(state_dir),
            idle_secs,
        });
    }
    out
}
