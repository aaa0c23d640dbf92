//! Helpers shared by the end-to-end tests: every test gets its own temporary
//! data directory and runs the real `throughline` binary against it.
#![allow(dead_code)]

pub mod api;
pub mod bridge;
pub mod clinic;
pub mod console;
pub mod dovecot;
pub mod inproc;
pub mod mail;
pub mod recorder;
pub mod server;
pub mod smtp;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const PASSPHRASE: &str = "correct horse battery staple";

/// The evidence a test clinic trusts unless a test says otherwise: its own
/// PBX (caller ID asserted) and its own MTA, `mx.test.example`, whose
/// `Authentication-Results` stamp [`mta_stamp`] writes. The identity tests
/// create their clinics with the product's defaults instead.
pub const TEST_EVIDENCE: &str =
    "[evidence]\ncaller_id = \"trusted\"\nsms_sender = \"trusted\"\nemail_authserv_ids = [\"mx.test.example\"]\n";

/// A message as the test clinic's MTA delivers it: stamped with the DMARC
/// result for its From domain (a pass, as for a real sender's signed mail).
pub fn mta_stamp(raw: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(raw);
    let from = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("from:"))
        .and_then(|l| l.rsplit_once('@'))
        .map(|(_, d)| d.trim_end_matches(['>', ' ', '\r']).to_ascii_lowercase())
        .unwrap_or_default();
    let mut out = format!("Authentication-Results: mx.test.example; dmarc=pass header.from={from}\r\n").into_bytes();
    out.extend_from_slice(raw);
    out
}

/// A temporary data directory and the binary to drive it.
pub struct Env {
    pub tmp: tempfile::TempDir,
    pub data: PathBuf,
}

impl Env {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        Env { tmp, data }
    }

    /// An initialised data directory (cheapest accepted argon2id cost, so
    /// tests stay fast; the default cost is exercised by the demo).
    pub fn initialised() -> Self {
        let env = Env::new();
        env.ok(&["init", "--kdf-memory-mib", "19", "--kdf-iterations", "2"]);
        env
    }

    /// The installation, unlocked in this process (argon2id at test cost).
    pub fn installation(&self) -> ::server::Installation {
        let passphrase = secrecy::SecretString::from(PASSPHRASE.to_owned());
        ::server::Installation::open(&self.data, &passphrase, std::sync::Arc::new(::server::SystemClock))
            .expect("open installation")
    }

    /// `tenant create ARGS…`, then the test evidence policy
    /// ([`TEST_EVIDENCE`]); returns what `tenant create` printed.
    pub fn tenant(&self, args: &[&str]) -> String {
        let mut create = vec!["tenant", "create"];
        create.extend_from_slice(args);
        let out = self.ok(&create);
        let file = self.tmp.path().join(format!("evidence-{}.toml", uuid::Uuid::new_v4().simple()));
        std::fs::write(&file, TEST_EVIDENCE).expect("policy file");
        self.ok(&["tenant", "policy", "set", args[0], "--file", file.to_str().expect("utf-8 path")]);
        out
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_throughline"));
        cmd.arg("--data-dir").arg(&self.data).args(args);
        cmd.env("THROUGHLINE_PASSPHRASE", PASSPHRASE);
        cmd.env_remove("THROUGHLINE_DATA_DIR");
        cmd.env_remove("THROUGHLINE_CONFIG");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run throughline")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "throughline {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and asserts a clean failure: non-zero exit, exactly one line on
    /// stderr starting with `error:`, no panic. Returns that line.
    pub fn fails(&self, cmd: &mut Command) -> String {
        let out = cmd.output().expect("run throughline");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "expected failure, got success; stdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(out.status.code(), Some(1), "exit status; stderr: {stderr}");
        assert!(!stderr.contains("panicked"), "panic: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line expected on stderr, got: {stderr}");
        assert!(lines[0].starts_with("error: "), "{stderr}");
        lines[0].to_owned()
    }

    /// Every file under the data directory with its bytes.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        files(&self.data).into_iter().map(|p| (p.clone(), std::fs::read(&p).expect("read"))).collect()
    }
}

/// All regular files below `root`, sorted.
pub fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}
