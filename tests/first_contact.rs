//! A clinic's first hour (issue 34): one configuration file every command
//! reads, commands that refuse to break a directory another user owns, a
//! certificate that is issued whole or not at all, a tenant's phone region,
//! email settings that change one at a time, and the wire handshake.

mod util;

use serde_json::{Value, json};
use util::Env;
use util::server::client;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The binary with no `--data-dir`: what a clinic's IT person types.
fn bare(env: &Env, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_throughline"));
    cmd.args(args)
        .env_remove("THROUGHLINE_DATA_DIR")
        .env_remove("THROUGHLINE_CONFIG")
        .env_remove("THROUGHLINE_PASSPHRASE");
    cmd.current_dir(env.tmp.path());
    cmd
}

#[test]
fn every_command_reads_the_data_directory_and_passphrase_from_the_config() {
    let env = Env::initialised();
    let secret = env.tmp.path().join("passphrase");
    std::fs::write(&secret, format!("{}\n", util::PASSPHRASE)).unwrap();
    let config = env.tmp.path().join("throughline.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\npassphrase_file = \"{}\"\nlisten = \"127.0.0.1:0\"\n",
            env.data.display(),
            secret.display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();

    // --config before the command, then THROUGHLINE_CONFIG: the same file.
    let out = bare(&env, &["--config", config, "tenant", "create", "harbor-clinic"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = bare(&env, &["tenant", "list"]).env("THROUGHLINE_CONFIG", config).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("harbor-clinic\t"), "{}", stderr(&out));
    // `doctor` checks the file in effect without being told which.
    let out = bare(&env, &["doctor"]).env("THROUGHLINE_CONFIG", config).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("config file"), "{said}");
    // Without the file the default directory is ./throughline-data, which does not exist here.
    let out = bare(&env, &["tenant", "list"]).env("THROUGHLINE_PASSPHRASE", util::PASSPHRASE).output().unwrap();
    assert!(stderr(&out).contains("throughline-data"), "{}", stderr(&out));
    // A bad file names its problem and the command does nothing.
    let bad = env.tmp.path().join("bad.toml");
    std::fs::write(&bad, "data_dir = 7\n").unwrap();
    let out = bare(&env, &["--config", bad.to_str().unwrap(), "tenant", "list"]).output().unwrap();
    assert!(stderr(&out).contains("data_dir: expected a file path"), "{}", stderr(&out));
}

/// Files a command writes into a directory another user owns would be the
/// wrong user's, and the server could no longer write them (the review saw
/// 500 "readonly database"). The command refuses before touching anything
/// and names the command to run instead.
#[test]
fn a_command_run_as_another_user_refuses_and_names_runuser() {
    let env = Env::initialised();
    let root = nix_is_root();
    // As root (CI): the directory belongs to nobody. Otherwise: a directory root owns.
    let (dir, owner) = if root {
        std::process::Command::new("chown").args(["-R", "65534:65534"]).arg(&env.data).status().unwrap();
        (env.data.clone(), "nobody".to_owned())
    } else {
        (std::path::PathBuf::from("/"), "root".to_owned())
    };
    let before = env.snapshot();
    let out = bare(&env, &["--data-dir", dir.to_str().unwrap(), "tenant", "create", "sunrise-clinic"])
        .env("THROUGHLINE_PASSPHRASE", util::PASSPHRASE)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(e.contains(&format!("belongs to user {owner}")), "{e}");
    assert!(
        e.contains(&format!(
            "runuser -u {owner} -- throughline --data-dir {} tenant create sunrise-clinic",
            dir.display()
        )),
        "{e}"
    );
    assert_eq!(env.snapshot(), before, "nothing written");
}

fn nix_is_root() -> bool {
    let out = std::process::Command::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// The review's step 5: `--out` the command cannot write. Before, the
/// certificate was recorded first and stayed active with its key lost.
#[test]
fn a_certificate_whose_files_cannot_be_written_is_not_issued() {
    let env = Env::initialised();
    env.tenant(&["sunrise-clinic"]);
    // A regular file where the directory should be: no user can create it.
    let blocker = env.tmp.path().join("not-a-directory");
    std::fs::write(&blocker, "x").unwrap();
    let out_dir = blocker.join("voice");
    let out = env.run(&[
        "cert",
        "issue",
        "--tenant",
        "sunrise-clinic",
        "--channel",
        "voice",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot create"), "{}", stderr(&out));
    let list = env.ok(&["cert", "list"]);
    assert!(!list.contains("sunrise-clinic"), "a certificate was recorded:\n{list}");
    // The same command with a writable --out issues one, and `cert ca` prints the CA it wrote.
    let good = env.issue("sunrise-clinic", "voice");
    assert!(env.ok(&["cert", "list"]).contains(&good.serial));
    assert_eq!(env.ok(&["cert", "ca"]), good.read("ca.crt"));
}

#[test]
fn email_settings_change_one_at_a_time() {
    let env = Env::initialised();
    env.tenant(&["sunrise-clinic"]);
    let pw = env.tmp.path().join("smtp-password");
    std::fs::write(&pw, "hunter22\n").unwrap();
    let set = env.ok(&[
        "tenant",
        "email",
        "sunrise-clinic",
        "--from",
        "front@sunrise.example",
        "--smtp",
        "mail.sunrise.example:587",
        "--smtp-user",
        "front",
        "--smtp-password-file",
        pw.to_str().unwrap(),
    ]);
    assert!(set.contains("smtp mail.sunrise.example:587 tls=starttls user=front"), "{set}");
    // The review's #12: --from alone dropped the relay and its password.
    let from = env.ok(&["tenant", "email", "sunrise-clinic", "--from", "appointments@sunrise.example"]);
    assert!(from.contains("<appointments@sunrise.example>"), "{from}");
    assert!(from.contains("smtp mail.sunrise.example:587 tls=starttls user=front"), "{from}");
    let inst = env.installation();
    let kept = inst.tenant_email("sunrise-clinic").unwrap();
    let password = kept.smtp.as_ref().and_then(|s| s.password.as_ref()).map(|p| p.as_str().to_owned());
    assert_eq!(password.as_deref(), Some("hunter22"), "the sealed password survives");
    drop(inst);
    let name = env.ok(&["tenant", "email", "sunrise-clinic", "--from-name", "Sunrise Front Desk"]);
    assert!(name.contains("Sunrise Front Desk <appointments@sunrise.example>"), "{name}");
    assert!(name.contains("smtp mail.sunrise.example:587"), "{name}");
    // A user without a relay is a mistake, not a silent no-op.
    let out = env.run(&["tenant", "email", "sunrise-clinic", "--smtp-user", "x"]);
    assert!(stderr(&out).contains("need --smtp HOST:PORT"), "{}", stderr(&out));
    let removed = env.ok(&["tenant", "email", "sunrise-clinic", "--no-smtp"]);
    assert!(removed.contains("smtp none"), "{removed}");
    assert!(removed.contains("<appointments@sunrise.example>"), "{removed}");
}

/// A Berlin clinic reads "030 1234567" as a Berlin number once its region
/// is DE; before, every tenant read national numbers as US numbers.
#[tokio::test]
async fn a_tenants_region_decides_how_national_numbers_read() {
    let env = Env::initialised();
    let created = env.tenant(&["berlin-clinic", "--region", "de", "--time-zone", "Europe/Berlin"]);
    assert!(created.contains("phone region DE"), "{created}");
    env.tenant(&["boston-clinic"]);
    let bad = env.run(&["tenant", "set-region", "boston-clinic", "XX"]);
    assert!(stderr(&bad).contains("expected an ISO 3166 country code"), "{}", stderr(&bad));
    assert!(env.ok(&["tenant", "show", "boston-clinic"]).contains("region US"));

    let berlin = env.issue("berlin-clinic", "voice");
    let boston = env.issue("boston-clinic", "voice");
    let server = env.serve();
    let open = |certs| {
        let http = client(certs);
        let url = server.url("/v1/sessions");
        async move {
            let res = http.post(url).json(&json!({"identifiers": {"phone": "030 1234567"}})).send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let (status, v) = open(&berlin).await;
    assert_eq!(status, 200, "{v}");
    // The same national number is no US number.
    let (status, v) = open(&boston).await;
    assert_eq!((status, v["error"].as_str()), (400, Some("invalid_phone")), "{v}");
    drop(server);

    env.ok(&["tenant", "set-region", "boston-clinic", "DE"]);
    let server = env.serve();
    let http = client(&boston);
    let res = http
        .post(server.url("/v1/sessions"))
        .json(&json!({"identifiers": {"phone": "030 1234567"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
}

/// Every answer names the core's wire; a caller naming another wire (a
/// bridge from a different build) is refused before anything is read.
#[tokio::test]
async fn the_core_names_its_wire_and_refuses_another() {
    let env = Env::initialised();
    env.tenant(&["sunrise-clinic"]);
    let certs = env.issue("sunrise-clinic", "voice");
    let server = env.serve();
    let http = client(&certs);
    let res = http.get(server.url("/v1/health")).send().await.unwrap();
    assert_eq!(res.headers()["throughline-wire"], "1");
    let health: Value = res.json().await.unwrap();
    assert_eq!(health["wire"], 1);
    let res = http
        .post(server.url("/v1/sessions"))
        .header("throughline-wire", "2")
        .json(&json!({"identifiers": {"phone": "+14155550100"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert_eq!(res.headers()["throughline-wire"], "1");
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"], "wire_unsupported", "{v}");
    let inst_sessions = env.installation().open_tenant("sunrise-clinic").unwrap().count(store::Countable::Customers);
    assert_eq!(inst_sessions.unwrap(), 0, "nothing was written");
}
