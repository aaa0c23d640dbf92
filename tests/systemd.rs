//! systemd (issue 21): the unit files pass `systemd-analyze verify` and
//! score an exposure of 2.0 or less by `systemd-analyze security
//! --offline=true`; the real `throughline serve` speaks the notify protocol
//! to a socket of the test's own, as systemd's would see it: READY=1 only
//! once the listener accepts connections, WATCHDOG=1 from the maintenance
//! loop at half the watchdog period, STOPPING=1 on SIGTERM.
// Test helpers panic on unexpected results by design; the lint is for request paths.
#![allow(clippy::unwrap_used)]

mod util;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

use util::Env;

fn packaging(file: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/systemd").join(file)
}

#[test]
fn the_units_verify_and_expose_at_most_2() {
    let dir = tempfile::tempdir().unwrap();
    for unit in ["throughline.service", "throughline-bridge.service"] {
        let text = std::fs::read_to_string(packaging(unit)).unwrap();
        assert!(text.contains("ExecStart=/usr/bin/throughline "), "{unit} runs the installed binary");
        // `verify` checks that ExecStart's binary exists: the one just built stands in for /usr/bin.
        let here = dir.path().join(unit);
        std::fs::write(&here, text.replace("/usr/bin/throughline", env!("CARGO_BIN_EXE_throughline"))).unwrap();
        let out = Command::new("systemd-analyze").arg("verify").arg(&here).output().expect("systemd-analyze");
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && said.trim().is_empty(), "systemd-analyze verify {unit}: {said}");

        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--no-pager"])
            .arg(packaging(unit))
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        let exposure: f64 = said
            .lines()
            .find_map(|l| l.split("Overall exposure level for ").nth(1))
            .and_then(|l| l.split(": ").nth(1))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no exposure figure: {said}"));
        println!("{unit}: exposure {exposure}");
        assert!(exposure <= 2.0, "{unit} exposure {exposure}:\n{said}");
    }
}

/// The next datagram on the notify socket, within `secs`.
fn next(sock: &UnixDatagram, secs: u64) -> String {
    sock.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("a notification in time");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn serve_notifies_ready_once_bound_then_the_watchdog_then_stopping() {
    let env = Env::initialised();
    env.tenant(&["sunrise"]);
    let path = env.tmp.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    let mut child = env
        .cmd(&["serve", "--listen", "127.0.0.1:0"])
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "1000000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = next(&sock, 60);
    assert!(ready.starts_with("READY=1\n"), "{ready:?}");
    let addr = ready.lines().find_map(|l| l.strip_prefix("STATUS=serving on ")).unwrap();
    // READY=1 came after the bind: the port accepts at once.
    std::net::TcpStream::connect(addr).expect("the listener is bound when READY=1 arrives");
    let pings: Vec<String> = (0..2).map(|_| next(&sock, 3)).collect();
    assert_eq!(pings, ["WATCHDOG=1\n", "WATCHDOG=1\n"], "pinged at half of WATCHDOG_USEC");
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let mut stopping = next(&sock, 15);
    while stopping == "WATCHDOG=1\n" {
        stopping = next(&sock, 15);
    }
    assert_eq!(stopping, "STOPPING=1\n");
    assert!(child.wait().unwrap().success());
}

#[test]
fn the_packaged_config_file_checks() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/throughline.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_throughline")).arg("config").arg("check").arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).ends_with(": ok\n"));
}
