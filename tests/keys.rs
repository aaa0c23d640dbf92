//! Passphrase rotation (issue 21): the keys re-wrapped under a new
//! passphrase, the old one refused, everything sealed under the master key
//! (the CA key, an SMTP password) still usable; and a process killed at each
//! step (SIGABRT, as hard as a SIGKILL for what is on disk) leaves the old
//! state or the new, never a mix, which the next open finishes or abandons.
// Test helpers panic on unexpected results by design; the lint is for request paths.
#![allow(clippy::unwrap_used)]

mod util;

use std::process::Command;

use util::{Env, PASSPHRASE};

const NEW: &str = "a new passphrase for the clinic";

fn with(env: &Env, passphrase: &str, args: &[&str]) -> std::process::Output {
    let mut cmd: Command = env.cmd(args);
    cmd.env("THROUGHLINE_PASSPHRASE", passphrase);
    cmd.output().unwrap()
}

fn works(env: &Env, passphrase: &str) -> bool {
    with(env, passphrase, &["tenant", "list"]).status.success()
}

/// A clinic with a tenant, an SMTP password sealed under the master key, and the new passphrase's file.
fn clinic() -> (Env, std::path::PathBuf) {
    let env = Env::initialised();
    env.ok(&["tenant", "create", "sunrise-clinic"]);
    let pw = env.tmp.path().join("smtp.pw");
    std::fs::write(&pw, "relay-secret\n").unwrap();
    env.ok(&[
        "tenant",
        "email",
        "sunrise-clinic",
        "--from",
        "a@sunrise.example",
        "--smtp",
        "127.0.0.1:2525",
        "--smtp-user",
        "u",
        "--smtp-password-file",
        pw.to_str().unwrap(),
    ]);
    let file = env.tmp.path().join("new.pw");
    std::fs::write(&file, format!("{NEW}\n")).unwrap();
    (env, file)
}

fn still_whole(env: &Env, passphrase: &str) {
    // The CA key unseals (a certificate is issued), the tenant store opens, the chains verify.
    let out = with(
        env,
        passphrase,
        &[
            "cert",
            "issue",
            "--tenant",
            "sunrise-clinic",
            "--channel",
            "chat",
            "--out",
            env.tmp.path().join(format!("c-{}", uuid::Uuid::new_v4().simple())).to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = with(env, passphrase, &["tenant", "show", "sunrise-clinic"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("(chain verified)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = with(env, passphrase, &["doctor"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn a_rotated_passphrase_opens_everything_and_the_old_one_nothing() {
    let (env, file) = clinic();
    let out = env.ok(&["keys", "rotate-passphrase", "--new-passphrase-file", file.to_str().unwrap()]);
    assert!(out.contains("3 sealed secrets re-sealed") || out.contains("sealed secrets re-sealed"), "{out}");
    assert!(!works(&env, PASSPHRASE), "the old passphrase still opens the keyring");
    assert!(works(&env, NEW));
    still_whole(&env, NEW);
    // The SMTP password, sealed under the master key, still opens.
    let inst = server::Installation::open(
        &env.data,
        &secrecy::SecretString::from(NEW.to_owned()),
        std::sync::Arc::new(server::SystemClock),
    )
    .unwrap();
    let email = inst.tenant_email("sunrise-clinic").unwrap();
    assert_eq!(email.smtp.unwrap().password.unwrap().as_str(), "relay-secret");
    assert!(!env.data.join("keyring.json.next").exists());
}

#[test]
fn a_crash_at_any_step_leaves_the_old_state_or_the_new() {
    for (step, new_wins) in [("after-next", false), ("after-reseal", true), ("after-rename", true)] {
        let (env, file) = clinic();
        let out = with(
            &env,
            PASSPHRASE,
            &["keys", "rotate-passphrase", "--new-passphrase-file", file.to_str().unwrap(), "--danger-crash-at", step],
        );
        assert!(!out.status.success(), "{step}: the rotation was not stopped");
        if new_wins {
            if step == "after-reseal" {
                // The old passphrase is told what to do, and changes nothing.
                let out = with(&env, PASSPHRASE, &["tenant", "list"]);
                assert!(
                    String::from_utf8_lossy(&out.stderr).contains("open with the NEW passphrase"),
                    "{step}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            assert!(works(&env, NEW), "{step}: the new passphrase does not finish the rotation");
            assert!(!works(&env, PASSPHRASE), "{step}: the old passphrase works after the rotation finished");
            still_whole(&env, NEW);
        } else {
            assert!(works(&env, PASSPHRASE), "{step}: the old state is gone");
            assert!(!works(&env, NEW), "{step}: the new passphrase works though the rotation never took effect");
            assert!(!env.data.join("keyring.json.next").exists(), "{step}: the stray keyring was not removed");
            still_whole(&env, PASSPHRASE);
        }
    }
}
