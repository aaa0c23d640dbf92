//! A real Dovecot (Debian's), started by the test with a configuration of
//! its own: one passwd-file user, IMAPS on a loopback port with a
//! certificate the test made, maildir under the test's directory. Python's
//! imaplib plays the sender's side (APPEND) and looks at the folders.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::Env;

pub const USER: &str = "intake@sunrise.example";
pub const PASSWORD: &str = "dovecot-test-password";
/// The OAuth 2.0 access token the test's token endpoint accepts.
pub const TOKEN: &str = "ya29.test-access-token";

/// An OAuth 2.0 token introspection endpoint (RFC 7662) for Dovecot's
/// oauth2 passdb: the one token above is active, for [`USER`].
const INTROSPECT: &str = r#"
import http.server, json, sys, urllib.parse
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get('content-length', 0))
        ok = urllib.parse.parse_qs(self.rfile.read(n).decode()).get('token', [''])[0] == sys.argv[1]
        b = json.dumps({'active': ok, 'username': sys.argv[2]} if ok else {'active': False}).encode()
        self.send_response(200)
        self.send_header('content-type', 'application/json')
        self.send_header('content-length', str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
http.server.HTTPServer(('127.0.0.1', int(sys.argv[3])), H).serve_forever()
"#;

pub struct Dovecot {
    pub port: u16,
    /// The server certificate (the bridge's `platform_ca_file`).
    pub ca: PathBuf,
    log: PathBuf,
    child: Child,
    introspection: Child,
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.introspection.kill();
        let _ = self.introspection.wait();
    }
}

impl Dovecot {
    pub fn start(env: &Env) -> Self {
        let root = env.tmp.path().join("dovecot");
        for d in ["run", "state", "mail", "home"] {
            std::fs::create_dir_all(root.join(d)).expect("dovecot dir");
        }
        assert!(
            Command::new("chown")
                .args(["-R", "mail:mail"])
                .arg(root.join("mail"))
                .arg(root.join("home"))
                .status()
                .expect("chown")
                .success()
        );
        let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
        let ca = root.join("cert.pem");
        std::fs::write(&ca, key.cert.pem()).expect("cert");
        std::fs::write(root.join("key.pem"), key.signing_key.serialize_pem()).expect("key");
        std::fs::write(root.join("passwd"), format!("{USER}:{{PLAIN}}{PASSWORD}::::::\n")).expect("passwd");
        let port = super::mail::free_port();
        let token_port = super::mail::free_port();
        let introspection = Command::new("python3")
            .env_remove("LD_PRELOAD")
            .args(["-c", INTROSPECT, TOKEN, USER, &token_port.to_string()])
            .spawn()
            .expect("token endpoint");
        std::fs::write(
            root.join("oauth2.conf"),
            format!(
                "introspection_mode = post\nintrospection_url = http://127.0.0.1:{token_port}/introspect\n\
                 username_attribute = username\nactive_attribute = active\nactive_value = true\n"
            ),
        )
        .expect("oauth2.conf");
        let r = root.display();
        let conf = format!(
            "protocols = imap\nlisten = 127.0.0.1\nbase_dir = {r}/run\nstate_dir = {r}/state\n\
             log_path = {r}/dovecot.log\nssl = required\nssl_cert = <{r}/cert.pem\nssl_key = <{r}/key.pem\n\
             disable_plaintext_auth = no\nauth_mechanisms = plain login xoauth2\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {r}/passwd\n}}\n\
             passdb {{\n  driver = oauth2\n  mechanisms = xoauth2\n  args = {r}/oauth2.conf\n}}\n\
             userdb {{\n  driver = static\n  args = uid=mail gid=mail home={r}/home/%u\n}}\n\
             mail_location = maildir:{r}/mail/%u\nfirst_valid_uid = 1\nfirst_valid_gid = 1\n\
             service imap-login {{\n  inet_listener imap {{\n    port = 0\n  }}\n  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {port}\n    ssl = yes\n  }}\n}}\n\
             namespace inbox {{\n  inbox = yes\n  mailbox Done {{\n    auto = create\n  }}\n}}\n"
        );
        let path = root.join("dovecot.conf");
        std::fs::write(&path, conf).expect("dovecot.conf");
        // Not under the tests' libfaketime: each of Dovecot's child processes
        // would start its fake clock anew, behind its master's.
        let child = Command::new("dovecot")
            .env_remove("LD_PRELOAD")
            .env_remove("FAKETIME")
            .arg("-F")
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dovecot (apt-get install dovecot-imapd)");
        let d = Dovecot { port, ca, log: root.join("dovecot.log"), child, introspection };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return d;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("dovecot did not start: {}", std::fs::read_to_string(&d.log).unwrap_or_default());
    }

    fn python(&self, script: &str, stdin: &[u8]) -> String {
        let prelude = format!(
            "import imaplib,ssl,sys\nctx=ssl.create_default_context(cafile='{}')\n\
             m=imaplib.IMAP4_SSL('localhost',{},ssl_context=ctx)\nm.login('{USER}','{PASSWORD}')\n",
            self.ca.display(),
            self.port
        );
        let mut child = Command::new("python3")
            .args(["-c", &format!("{prelude}{script}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), stdin).expect("write");
        let out = child.wait_with_output().expect("imaplib");
        assert!(out.status.success(), "imaplib: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// APPENDs a message to the inbox, as delivery to the mailbox would.
    pub fn append(&self, raw: &[u8]) {
        self.python("m.append('INBOX', None, None, sys.stdin.buffer.read())\nm.logout()", raw);
    }

    /// How many messages `folder` holds.
    pub fn count(&self, folder: &str) -> usize {
        let n = self.python(&format!("t,d=m.select('{folder}')\nprint(int(d[0]))\nm.logout()"), b"");
        n.parse().expect("a count")
    }
}
