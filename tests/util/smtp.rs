//! aiosmtpd, a real SMTP server, on loopback, delivering into a Maildir:
//! what the outbound-email and console-reply tests send to.
// Test helpers panic on unexpected results by design.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct SmtpServer {
    pub child: Child,
    pub port: u16,
    maildir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// aiosmtpd on loopback, delivering into a Maildir.
pub fn smtp_server() -> SmtpServer {
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts");
    let python = Command::new(scripts.join("smtp-venv.sh")).output().unwrap();
    assert!(python.status.success(), "aiosmtpd setup: {}", String::from_utf8_lossy(&python.stderr));
    let python = String::from_utf8_lossy(&python.stdout).trim().to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let maildir = tempfile::tempdir().unwrap();
    let child = Command::new(python)
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir.path().join("mail"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "aiosmtpd did not start");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    SmtpServer { child, port, maildir }
}

pub fn delivered(smtp: &SmtpServer) -> Vec<String> {
    let dir = smtp.maildir.path().join("mail/new");
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect())
        .unwrap_or_default();
    out.sort();
    out
}
