//! Mail end to end: a real Postfix (Debian's, started by the test with a
//! configuration directory of its own, listening on a loopback port and
//! relaying to the bridge over LMTP), a mail-only `throughline bridge`, and
//! a raw LMTP client for what Postfix would never send.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::Env;
use super::server::Server;

/// A `throughline bridge` with `[lmtp]` and `[[mailbox]]` only.
pub struct MailBridge {
    pub child: Child,
    /// What the bridge printed: `127.0.0.1:PORT` or `unix:/path`.
    pub lmtp: String,
    pub log: PathBuf,
}

impl Drop for MailBridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl MailBridge {
    pub fn port(&self) -> u16 {
        self.lmtp.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a TCP LMTP listener")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Env {
    /// Starts a mail-only bridge for `core` (`lmtp` is the `[lmtp]` body,
    /// `mailboxes` the `[[mailbox]]` tables).
    pub fn mail_bridge(&self, core_url: &str, lmtp: &str, mailboxes: &str) -> MailBridge {
        self.bridge_config(&format!("core = \"{core_url}\"\n[lmtp]\n{lmtp}\n{mailboxes}"), "lmtp listening on ")
    }

    /// Starts a bridge with this whole configuration; the first line it
    /// prints must start with `prefix` (the rest of it is kept in `lmtp`).
    pub fn bridge_config(&self, config: &str, prefix: &str) -> MailBridge {
        let dir = self.tmp.path().join(format!("mail-bridge-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("bridge.toml");
        std::fs::write(&path, config).expect("bridge.toml");
        let log = dir.join("bridge.log");
        let mut child = self
            .cmd(&["bridge", "--config", path.to_str().expect("utf-8")])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn bridge");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("line");
        let lmtp = line
            .trim()
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("bridge said {line:?}: {}", std::fs::read_to_string(&log).unwrap_or_default()))
            .to_owned();
        MailBridge { child, lmtp, log }
    }

    /// Starts `throughline serve` on a given address (a restart on the port
    /// the bridge knows).
    pub fn serve_on(&self, addr: std::net::SocketAddr) -> Server {
        let stderr = self.tmp.path().join(format!("serve-{}.log", uuid::Uuid::new_v4().simple()));
        let mut child = self
            .cmd(&["serve", "--listen", &addr.to_string(), "--client-timeout-secs", "1"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("log file"))
            .spawn()
            .expect("spawn serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("listening line");
        assert!(line.starts_with("listening on https://"), "{line}");
        Server { child, addr, log: stderr, metrics: None }
    }
}

/// `a@domain` as a mailbox table.
pub fn mailbox(domain: &str, certs: &super::server::CertDir) -> String {
    format!("[[mailbox]]\ndomain = \"{domain}\"\ncerts = \"{}\"\n", certs.dir.display())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A real Postfix with its own configuration and queue directories.
pub struct Postfix {
    pub etc: PathBuf,
    pub smtp_port: u16,
    log: PathBuf,
    child: Child,
}

impl Postfix {
    /// Accepts mail for `domain` on a loopback port and delivers it over
    /// LMTP to `lmtp_port`.
    pub fn start(env: &Env, domain: &str, lmtp_port: u16) -> Self {
        Self::start_with(env, domain, lmtp_port, "")
    }

    /// [`Postfix::start`] with more `main.cf` lines (a milter).
    pub fn start_with(env: &Env, domain: &str, lmtp_port: u16, extra: &str) -> Self {
        let root = env.tmp.path().join("postfix");
        let (etc, queue, data) = (root.join("etc"), root.join("queue"), root.join("data"));
        for d in [&etc, &queue, &data] {
            std::fs::create_dir_all(d).expect("postfix dir");
        }
        assert!(Command::new("chown").arg("postfix").arg(&data).status().expect("chown").success());
        let smtp_port = free_port();
        std::fs::write(
            etc.join("main.cf"),
            format!(
                "compatibility_level = 3.6\nqueue_directory = {}\ndata_directory = {}\nmail_owner = postfix\n\
                 setgid_group = postdrop\nmyhostname = mx.test.example\nmydestination =\ninet_interfaces = 127.0.0.1\n\
                 inet_protocols = ipv4\nmynetworks = 127.0.0.0/8\nalias_maps =\nalias_database =\n\
                 virtual_mailbox_domains = {domain}\nvirtual_mailbox_maps = static:ok\n\
                 virtual_transport = lmtp:inet:127.0.0.1:{lmtp_port}\nmaillog_file = /dev/stdout\nsmtputf8_enable = no\n\
                 biff = no\nminimal_backoff_time = 300s\nqueue_run_delay = 300s\n{extra}\n",
                queue.display(),
                data.display()
            ),
        )
        .expect("main.cf");
        let services = [
            "pickup unix n - n 60 1 pickup",
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "flush unix n - n 1000? 0 flush",
            "proxymap unix - - n - - proxymap",
            "showq unix n - n - - showq",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "lmtp unix - - n - - lmtp",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
        ];
        let master = format!("127.0.0.1:{smtp_port} inet n - n - - smtpd\n{}\n", services.join("\n"));
        std::fs::write(etc.join("master.cf"), master).expect("master.cf");
        let log = root.join("postfix.log");
        // Not under the tests' libfaketime (its daemons would each start a
        // fake clock of their own).
        let child = Command::new("postfix")
            .env_remove("LD_PRELOAD")
            .env_remove("FAKETIME")
            .arg("-c")
            .arg(&etc)
            .arg("start-fg")
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("postfix (apt-get install postfix)");
        let p = Postfix { etc, smtp_port, log, child };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", smtp_port)).is_ok() {
                return p;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("postfix did not start: {}", p.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `postqueue -p`.
    pub fn queue(&self) -> String {
        let out = Command::new("postqueue").arg("-c").arg(&self.etc).arg("-p").output().expect("postqueue");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `postqueue -f`: deliver what is queued now.
    pub fn flush(&self) {
        assert!(Command::new("postqueue").arg("-c").arg(&self.etc).arg("-f").status().expect("postqueue").success());
    }

    /// Submits `raw` over SMTP (Python's smtplib, a real SMTP client).
    pub fn submit(&self, from: &str, to: &str, raw: &[u8]) {
        let script = "import smtplib,sys\ns=smtplib.SMTP('127.0.0.1', int(sys.argv[1]))\n\
                      s.sendmail(sys.argv[2], [sys.argv[3]], sys.stdin.buffer.read())\ns.quit()";
        let mut child = Command::new("python3")
            .args(["-c", script, &self.smtp_port.to_string(), from, to])
            .stdin(Stdio::piped())
            .spawn()
            .expect("python3");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), raw).expect("write");
        assert!(child.wait().expect("smtplib").success(), "submission failed: {}", self.log_text());
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix").arg("-c").arg(&self.etc).arg("stop").output();
        let _ = self.child.wait();
    }
}

/// A real DMARC milter: Debian's OpenDMARC, stamping every message with the
/// authserv-id `mx.test.example` (no `IgnoreHosts` exemption), checking SPF
/// itself against a local dnsmasq that publishes `example.com`'s SPF and
/// DMARC records. OpenDMARC reads `/etc/resolv.conf`, so it runs in a mount
/// namespace of its own where that file names the dnsmasq; nothing on the
/// machine changes.
pub struct Dmarc {
    pub port: u16,
    dns: Child,
    milter: Child,
    pub log: PathBuf,
}

impl Dmarc {
    pub fn start(env: &Env) -> Self {
        let dir = env.tmp.path().join("dmarc");
        std::fs::create_dir_all(&dir).expect("dmarc dir");
        // A loopback address of its own, so port 53 is free there.
        let n = u16::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..2].try_into().expect("two bytes"));
        let ns = format!("127.53.{}.{}", n >> 8, (n & 0xff).max(1));
        let dns = Command::new("dnsmasq")
            .env_remove("LD_PRELOAD")
            .env_remove("FAKETIME")
            .args(["--keep-in-foreground", "--port=53", "--bind-interfaces", "--no-resolv", "--no-hosts"])
            .arg(format!("--listen-address={ns}"))
            .arg("--txt-record=_dmarc.example.com,v=DMARC1; p=reject")
            .arg("--txt-record=example.com,v=spf1 ip4:127.0.0.1 -all")
            .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq (apt-get install dnsmasq-base)");
        std::fs::write(dir.join("resolv.conf"), format!("nameserver {ns}\n")).expect("resolv.conf");
        std::fs::write(dir.join("ignore"), "192.0.2.1\n").expect("ignore");
        let port = free_port();
        std::fs::write(
            dir.join("opendmarc.conf"),
            format!(
                "AuthservID mx.test.example\nSocket inet:{port}@127.0.0.1\nBackground false\nIgnoreHosts {}\n\
                 IgnoreAuthenticatedClients false\nSPFSelfValidate true\nSPFIgnoreResults true\nRequiredHeaders false\n\
                 PidFile {}\nSyslog false\n",
                dir.join("ignore").display(),
                dir.join("opendmarc.pid").display()
            ),
        )
        .expect("opendmarc.conf");
        let log = dir.join("opendmarc.log");
        let script = format!(
            "mount --bind {} /etc/resolv.conf && exec opendmarc -f -c {}",
            dir.join("resolv.conf").display(),
            dir.join("opendmarc.conf").display()
        );
        let milter = Command::new("unshare")
            .env_remove("LD_PRELOAD")
            .env_remove("FAKETIME")
            .args(["--mount", "sh", "-c", &script])
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("unshare and opendmarc (apt-get install opendmarc)");
        let d = Dmarc { port, dns, milter, log };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return d;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("opendmarc did not start: {}", std::fs::read_to_string(&d.log).unwrap_or_default());
    }
}

impl Drop for Dmarc {
    fn drop(&mut self) {
        for c in [&mut self.milter, &mut self.dns] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
