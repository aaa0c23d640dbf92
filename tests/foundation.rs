//! Foundation end to end: init, tenants, encryption at rest, and every bad
//! input of issue 3 giving one clear line with no file changed.

mod util;

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use secrecy::SecretString;
use server::{Clock as _, Installation, SystemClock};
use store::{AuditEntry, Countable, IdentifierKind};
use util::{Env, PASSPHRASE, files};

const NAME: &str = "Maria Lopez";
const DOB: &str = "1985-03-14";
const PHONE: &str = "+14155550100";
const EMAIL: &str = "maria.lopez@example.com";

fn passphrase() -> SecretString {
    SecretString::from(PASSPHRASE.to_owned())
}

#[test]
fn init_create_list_show() {
    let env = Env::initialised();
    let out = env.ok(&["tenant", "create", "sunrise-clinic", "--state-ttl-days", "7"]);
    assert!(out.starts_with("created tenant sunrise-clinic (ten_"), "{out}");
    env.ok(&["tenant", "create", "harbor-health"]);

    let list = env.ok(&["tenant", "list"]);
    let names: Vec<&str> = list.lines().map(|l| l.split('\t').next().unwrap_or("")).collect();
    assert_eq!(names, ["harbor-health", "sunrise-clinic"]);
    assert!(list.contains("sunrise-clinic\tten_") && list.contains("state_ttl_days=7"), "{list}");
    assert!(list.contains("state_ttl_days=30"), "{list}");

    let show = env.ok(&["tenant", "show", "sunrise-clinic"]);
    assert!(show.contains(&format!("schema_version {}", store::datadir_schema::latest().tenant)), "{show}");
    assert!(show.contains("time_zone "), "{show}");
    assert!(show.contains("patients 0"), "{show}");
    assert!(show.contains("audit_records 1 (chain verified)"), "{show}");
}

/// A clinic's time zone: an IANA name checked against the database (a bad
/// one is one clear line and writes nothing), shown, changed and audited.
#[test]
fn tenant_time_zones_are_validated_shown_and_changed() {
    let env = Env::initialised();
    let before = env.snapshot();
    for bad in ["America/Los Angeles", "Mars/Olympus_Mons", "+05:00", "PST", ""] {
        let line = env.fails(&mut env.cmd(&["tenant", "create", "sunrise-clinic", "--time-zone", bad]));
        assert!(line.contains("unknown time zone") && line.contains("IANA name"), "{bad}: {line}");
        assert_eq!(line.trim().lines().count(), 1, "{line}");
    }
    assert_eq!(env.snapshot(), before, "a refused zone wrote something");

    let out = env.ok(&["tenant", "create", "sunrise-clinic", "--time-zone", "america/los_angeles"]);
    assert!(out.contains("time zone America/Los_Angeles"), "{out}");
    assert!(env.ok(&["tenant", "show", "sunrise-clinic"]).contains("time_zone America/Los_Angeles"));
    assert!(env.ok(&["tenant", "list"]).contains("time_zone=America/Los_Angeles"));

    let line = env.fails(&mut env.cmd(&["tenant", "set-time-zone", "sunrise-clinic", "Europe/Nowhere"]));
    assert!(line.contains("unknown time zone"), "{line}");
    let records = || {
        let inst = Installation::open(&env.data, &passphrase(), Arc::new(SystemClock)).unwrap();
        inst.system().verify_audit().unwrap()
    };
    let audited = records();
    let out = env.ok(&["tenant", "set-time-zone", "sunrise-clinic", "Europe/Berlin"]);
    assert_eq!(records(), audited + 1, "the change is on the system audit chain");
    assert!(out.contains("set to Europe/Berlin") && (out.contains(" CET") || out.contains(" CEST")), "{out}");
    assert!(env.ok(&["tenant", "show", "sunrise-clinic"]).contains("time_zone Europe/Berlin"));
    let line = env.fails(&mut env.cmd(&["tenant", "set-time-zone", "no-such-clinic", "Europe/Berlin"]));
    assert!(line.contains("no-such-clinic"), "{line}");
}

#[test]
fn passphrase_from_file_and_missing_passphrase() {
    let env = Env::initialised();
    let file = env.tmp.path().join("pass");
    std::fs::write(&file, format!("{PASSPHRASE}\n")).unwrap();
    let mut cmd = env.cmd(&["--passphrase-file", file.to_str().unwrap(), "tenant", "list"]);
    cmd.env_remove("THROUGHLINE_PASSPHRASE");
    assert!(cmd.output().unwrap().status.success());

    let mut none = env.cmd(&["tenant", "list"]);
    none.env_remove("THROUGHLINE_PASSPHRASE").stdin(std::process::Stdio::null());
    let line = env.fails(&mut none);
    assert!(line.contains("no passphrase:") && line.contains("set THROUGHLINE_PASSPHRASE"), "{line}");
}

/// Acceptance 2: no file is plain SQLite, Python's sqlite3 cannot read any of
/// them, and no patient name, DOB, phone or email is in any file (WAL included).
#[test]
fn data_dir_holds_no_plaintext() {
    let env = Env::initialised();
    env.ok(&["tenant", "create", "sunrise-clinic"]);

    let inst = Installation::open(&env.data, &passphrase(), Arc::new(SystemClock)).unwrap();
    let mut store = inst.open_tenant("sunrise-clinic").unwrap();
    let who = AuditEntry::operator("test", audit::Action::CustomerCreate);
    let id = store.create_customer(NAME, DOB, &who, 1_700_000_000_000).unwrap();
    store.link_identifier(IdentifierKind::Phone, PHONE, &id, "intake", 1_700_000_000_000).unwrap();
    store.link_identifier(IdentifierKind::Email, EMAIL, &id, "intake", 1_700_000_000_000).unwrap();

    // While the store is open its WAL holds the fresh pages: check it too.
    let open_files = files(&env.data);
    assert!(open_files.iter().any(|p| p.to_string_lossy().ends_with(".db-wal")), "{open_files:?}");
    assert_no_plaintext(&env);
    drop(store);
    drop(inst);
    assert_no_plaintext(&env);

    // The data is really there: reopen and find the patient by phone.
    let inst = Installation::open(&env.data, &passphrase(), Arc::new(SystemClock)).unwrap();
    let mut store = inst.open_tenant("sunrise-clinic").unwrap();
    assert_eq!(store.customers_by_identifier(IdentifierKind::Phone, PHONE).unwrap(), std::slice::from_ref(&id));
    assert_eq!(store.customers_by_identifier(IdentifierKind::Email, PHONE).unwrap(), []);
    let display = store.operator_customer_display(&id, "test", 1_700_000_000_001).unwrap().unwrap();
    assert_eq!((display.name.as_str(), display.dob.as_str()), (NAME, DOB));
    assert_eq!(format!("{display:?}"), "CustomerDisplay([REDACTED])");
    assert_eq!(store.count(Countable::Customers).unwrap(), 1);
    assert_eq!(store.verify_audit().unwrap(), 3, "tenant.create, customer.create, customer.read");
}

/// Inspects the data directory from other processes only: reading a live
/// SQLite file from the process that holds it open would drop SQLite's POSIX
/// locks (closing any descriptor of a file releases all of a process's locks
/// on it) and let another process delete the live WAL.
fn assert_no_plaintext(env: &Env) {
    let grep = Command::new("grep")
        .args(["-r", "-l", "-a", "-F"])
        .args(["-e", NAME, "-e", DOB, "-e", PHONE, "-e", EMAIL, "-e", "Lopez", "-e", "5550100"])
        .arg(&env.data)
        .output()
        .expect("grep");
    assert_eq!(grep.status.code(), Some(1), "grep found PHI in: {}", String::from_utf8_lossy(&grep.stdout));

    let py = Command::new("python3")
        .args(["-c", PY_CHECK])
        .arg(&env.data)
        .output()
        .expect("python3 (scripts/test-deps.sh installs it)");
    let report = String::from_utf8_lossy(&py.stdout);
    assert!(py.status.success(), "{report}{}", String::from_utf8_lossy(&py.stderr));
    eprintln!("{report}");
    assert!(report.lines().count() >= 4, "{report}");
}

/// For every file: not plain SQLite, and Python's sqlite3 cannot read it.
/// SQLite takes any empty file for an empty database; an empty WAL (a store
/// opened with nothing written yet) holds no data, so only that is let pass.
const PY_CHECK: &str = r#"
import os, sqlite3, sys
bad = []
for d, _, names in os.walk(sys.argv[1]):
    for n in sorted(names):
        p = os.path.join(d, n)
        data = open(p, 'rb').read()
        if data.startswith(b'SQLite format 3'):
            bad.append(p + ': plain SQLite header')
        if not data:
            print(p, 'empty', 'ok' if p.endswith('-wal') else 'UNEXPECTED')
            if not p.endswith('-wal'): bad.append(p + ': empty')
            continue
        try:
            sqlite3.connect('file:' + p + '?mode=ro', uri=True).execute('select * from sqlite_master').fetchall()
            bad.append(p + ': readable by sqlite3')
        except sqlite3.DatabaseError as e:
            print(p, len(data), 'bytes, sqlite3 says:', e)
if bad:
    print('\n'.join(bad)); sys.exit(1)
"#;

#[test]
fn init_twice_refuses_and_changes_nothing() {
    let env = Env::initialised();
    let before = env.snapshot();
    let line = env.fails(&mut env.cmd(&["init", "--kdf-memory-mib", "19", "--kdf-iterations", "2"]));
    assert!(line.contains("is already initialised") && line.contains("nothing was changed"), "{line}");
    assert_eq!(env.snapshot(), before);
}

#[test]
fn wrong_passphrase() {
    let env = Env::initialised();
    env.ok(&["tenant", "create", "sunrise-clinic"]);
    let before = env.snapshot();
    let mut cmd = env.cmd(&["tenant", "list"]);
    cmd.env("THROUGHLINE_PASSPHRASE", "not the passphrase at all");
    assert_eq!(env.fails(&mut cmd), "error: wrong passphrase");
    assert_eq!(env.snapshot(), before);
}

#[test]
fn keyring_with_one_flipped_byte() {
    let env = Env::initialised();
    env.ok(&["tenant", "create", "sunrise-clinic"]);
    let keyring = env.data.join("keyring.json");
    let mut bytes = std::fs::read(&keyring).unwrap();
    // Flip a byte inside the first tenant's wrapped key (base64 stays base64).
    let at = String::from_utf8_lossy(&bytes).find("\"wrapped_key\": \"").unwrap() + 20;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(&keyring, &bytes).unwrap();
    let before = env.snapshot();
    let line = env.fails(&mut env.cmd(&["tenant", "list"]));
    assert!(line.contains("keyring.json is damaged (checksum mismatch)"), "{line}");
    assert_eq!(env.snapshot(), before);
}

#[test]
fn truncated_keyring() {
    let env = Env::initialised();
    let keyring = env.data.join("keyring.json");
    let bytes = std::fs::read(&keyring).unwrap();
    std::fs::write(&keyring, &bytes[..bytes.len() / 3]).unwrap();
    let before = env.snapshot();
    let line = env.fails(&mut env.cmd(&["tenant", "list"]));
    assert!(line.contains("is truncated or not a Throughline keyring"), "{line}");
    assert_eq!(env.snapshot(), before);
}

#[test]
fn tenant_file_opened_with_another_tenants_key() {
    let env = Env::initialised();
    env.ok(&["tenant", "create", "alpha"]);
    env.ok(&["tenant", "create", "beta"]);
    let ids: Vec<String> =
        env.ok(&["tenant", "list"]).lines().map(|l| l.split('\t').nth(1).unwrap().to_owned()).collect();
    let file = |id: &str| env.data.join("tenants").join(format!("{id}.db"));
    // Someone copies alpha's file over beta's.
    std::fs::copy(file(&ids[0]), file(&ids[1])).unwrap();
    let before = env.snapshot();
    let line = env.fails(&mut env.cmd(&["tenant", "show", "beta"]));
    assert!(line.contains("does not open with this key"), "{line}");
    assert_eq!(env.snapshot(), before);
}

#[test]
fn missing_data_dir() {
    let env = Env::new();
    let line = env.fails(&mut env.cmd(&["tenant", "list"]));
    assert!(line.contains("does not exist (run `throughline init"), "{line}");
    assert!(!env.data.exists());
}

#[test]
fn duplicate_tenant_name() {
    let env = Env::initialised();
    env.ok(&["tenant", "create", "sunrise-clinic"]);
    let before = env.snapshot();
    let line = env.fails(&mut env.cmd(&["tenant", "create", "sunrise-clinic"]));
    assert_eq!(line, "error: tenant 'sunrise-clinic' already exists; nothing was changed");
    assert_eq!(env.snapshot(), before);
}

#[test]
fn invalid_tenant_arguments() {
    let env = Env::initialised();
    let before = env.snapshot();
    let line = env.fails(&mut env.cmd(&["tenant", "create", "Sunrise Clinic"]));
    assert!(line.contains("tenant name \"Sunrise Clinic\" is invalid"), "{line}");
    let line = env.fails(&mut env.cmd(&["tenant", "create", "sunrise", "--state-ttl-days", "0"]));
    assert!(line.contains("state TTL of 0 days is out of range"), "{line}");
    let line = env.fails(&mut env.cmd(&["tenant", "show", "nobody"]));
    assert_eq!(line, "error: no tenant named 'nobody'");
    assert_eq!(env.snapshot(), before);
}

/// Acceptance 4: the build is SQLCipher, and opening a store costs a raw-key
/// open, not a key derivation: argon2id runs once per process.
#[test]
fn sqlcipher_build_and_key_derivation_once_per_process() {
    let env = Env::initialised();
    env.ok(&["tenant", "create", "sunrise-clinic"]);

    let t0 = Instant::now();
    let inst = Installation::open(&env.data, &passphrase(), Arc::new(SystemClock)).unwrap();
    let unlock = t0.elapsed();
    let derivations = crypto::kdf::derivations();

    const OPENS: u32 = 50;
    let t1 = Instant::now();
    for _ in 0..OPENS {
        let store = inst.open_tenant("sunrise-clinic").unwrap();
        let version = store.cipher_version().unwrap();
        assert!(version.as_deref().is_some_and(|v| !v.is_empty()), "not SQLCipher");
    }
    let per_open = t1.elapsed() / OPENS;
    assert_eq!(crypto::kdf::derivations(), derivations, "opening a store derived a key");

    let store = inst.open_tenant("sunrise-clinic").unwrap();
    eprintln!(
        "cipher_version {} | unlock (argon2id 19 MiB x2 + system store) {:?} | tenant store open (raw key) {:?}",
        store.cipher_version().unwrap().unwrap_or_default(),
        unlock,
        per_open
    );
}

#[test]
fn tenant_policy_set_show_and_bad_files_change_nothing() {
    let env = Env::initialised();
    env.ok(&["tenant", "create", "sunrise-clinic"]);
    let show = env.ok(&["tenant", "policy", "show", "sunrise-clinic"]);
    assert!(show.contains("confirmation.mode on_shared_identifier"), "{show}");
    assert!(show.contains("channels.email.after_confirmation greeting,identity,contact,scheduling"), "{show}");

    let file = env.tmp.path().join("policy.toml");
    std::fs::write(&file, "[confirmation]\nmode = \"always\"\nwith = [\"date_of_birth\", \"name\"]\n").unwrap();
    let f = file.to_str().unwrap();
    assert!(env.ok(&["tenant", "policy", "set", "sunrise-clinic", "--file", f]).contains("confirmation always"));
    let show = env.ok(&["tenant", "policy", "show", "sunrise-clinic"]);
    assert!(show.contains("confirmation.mode always") && show.contains("confirmation.with date_of_birth,name"));

    let before = env.snapshot();
    for (text, expected) in [
        ("[channels.fax]\nafter_confirmation = []\n", "unknown channel 'fax'"),
        ("[channels.chat]\nafter_confirmation = [\"notes\"]\n", "unknown PHI class 'notes'"),
        ("[confirmation]\nwith = [\"shoe_size\"]\n", "unknown confirmation field 'shoe_size'"),
        (
            "[channels.email]\nbefore_confirmation = [\"clinical\"]\nafter_confirmation = [\"scheduling\"]\n",
            "contradictory policy",
        ),
        ("[confirmation]\nmode = \"always\"\n[confirmation]\n", "policy file:"),
    ] {
        std::fs::write(&file, text).unwrap();
        let line = env.fails(&mut env.cmd(&["tenant", "policy", "set", "sunrise-clinic", "--file", f]));
        assert!(line.contains(expected), "{text:?}: {line}");
    }
    std::fs::remove_file(&file).unwrap();
    let mut snapshot_without_policy_file = env.snapshot();
    snapshot_without_policy_file.retain(|p, _| !p.ends_with("policy.toml"));
    assert_eq!(snapshot_without_policy_file, before);
    let show = env.ok(&["tenant", "policy", "show", "sunrise-clinic"]);
    assert!(show.contains("confirmation.mode always"), "a bad file replaced the policy: {show}");
}

#[test]
fn expired_state_is_purged_and_the_purge_audited() {
    let env = Env::initialised();
    env.ok(&["tenant", "create", "sunrise-clinic"]);
    let inst = Installation::open(&env.data, &passphrase(), Arc::new(SystemClock)).unwrap();
    let mut store = inst.open_tenant("sunrise-clinic").unwrap();
    let customer = {
        let tx = store.transaction().unwrap();
        let c = tx.create_customer(1_000).unwrap();
        let v = tx.create_conversation(&c, 1_000).unwrap();
        tx.put_state(&c, &v, "pending_a", "x", 1_000, 5_000).unwrap();
        tx.put_state(&c, &v, "pending_b", "y", 1_000, 9_000).unwrap();
        tx.commit().unwrap();
        c
    };
    assert_eq!(store.purge_expired_state(4_999).unwrap(), 0);
    assert_eq!(store.purge_expired_state(5_000).unwrap(), 1);
    assert_eq!(store.count(Countable::StateKeys).unwrap(), 1);
    let records = store.audit_records().unwrap();
    let purge = records.iter().find(|r| r.action == "state.purge").expect("purge audited");
    assert_eq!((purge.reason.as_deref(), purge.actor_kind), (Some("1"), audit::ActorKind::System));
    assert!(!format!("{customer}").is_empty());
    store.verify_audit().unwrap();
}

#[test]
fn conversations_past_retention_are_purged_with_their_history() {
    let env = Env::initialised();
    env.ok(&["tenant", "create", "sunrise-clinic"]);
    let file = env.tmp.path().join("policy.toml");
    std::fs::write(&file, "[retention]\nconversation_days = 30\n").unwrap();
    env.ok(&["tenant", "policy", "set", "sunrise-clinic", "--file", file.to_str().unwrap()]);
    let day = 86_400_000_i64;
    let now = SystemClock.now_ms();
    {
        let inst = Installation::open(&env.data, &passphrase(), Arc::new(SystemClock)).unwrap();
        let mut store = inst.open_tenant("sunrise-clinic").unwrap();
        let tx = store.transaction().unwrap();
        for age_days in [40, 10] {
            let at = now - age_days * day;
            let c = tx.create_customer(at).unwrap();
            let v = tx.create_conversation(&c, at).unwrap();
            tx.put_state(&c, &v, "pending_x", "y", at, now + day).unwrap();
            // A chat that only claimed a number and never confirmed (L6).
            let s = store::ids::SessionId::generate();
            tx.insert_session(&store::SessionRow::starting(s.clone(), policy::Channel::Chat, at), None, "t").unwrap();
            tx.add_pending_identifier(&s, IdentifierKind::Phone, "+14155550100").unwrap();
        }
        tx.commit().unwrap();
    }
    let out = env.ok(&["purge", "--tenant", "sunrise-clinic"]);
    assert_eq!(out.trim(), "sunrise-clinic: purged 0 expired state keys, 1 conversations past retention");
    let inst = Installation::open(&env.data, &passphrase(), Arc::new(SystemClock)).unwrap();
    let store = inst.open_tenant("sunrise-clinic").unwrap();
    assert_eq!(store.count(Countable::Conversations).unwrap(), 1);
    assert_eq!(store.count(Countable::StateKeys).unwrap(), 1);
    assert_eq!(store.count(Countable::Sessions).unwrap(), 1, "the 40-day-old unattached session survived");
    assert!(
        store
            .audit_records()
            .unwrap()
            .iter()
            .any(|r| r.action == "conversation.purge" && r.reason.as_deref() == Some("1"))
    );
    store.verify_audit().unwrap();
    let out = env.ok(&["purge"]);
    assert!(out.contains("0 conversations past retention"), "{out}");
}

/// M7: a deleted tenant is crypto-shredded once its grace period is over:
/// its key leaves the keyring, its files go, the act is audited, and it
/// happens once.
#[test]
fn deleted_tenants_are_shredded_after_their_grace_period() {
    let env = Env::initialised();
    env.ok(&["tenant", "create", "harbor-health"]);
    env.ok(&["tenant", "create", "sunrise-clinic"]);
    let clock = server::ManualClock::new(1_800_000_000_000);
    let mut inst = Installation::open(&env.data, &passphrase(), Arc::new(clock.clone())).unwrap();
    let id = inst.tenant("harbor-health").unwrap().id;
    let file = env.data.join("tenants").join(format!("{id}.db"));
    assert!(file.exists());
    inst.delete_tenant("harbor-health").unwrap();
    let grace = 30 * 86_400_000;
    assert!(inst.shred_deleted_tenants(grace).unwrap().is_empty(), "shredded inside the grace period");
    assert!(inst.tenant_keys(&id).is_ok());
    clock.advance_ms(grace + 1);
    let audited = inst.system().verify_audit().unwrap();
    assert_eq!(inst.shred_deleted_tenants(grace).unwrap(), std::slice::from_ref(&id));
    assert!(!file.exists(), "the store file survived");
    assert!(inst.tenant_keys(&id).is_err(), "the key survived");
    assert_eq!(inst.system().verify_audit().unwrap(), audited + 1);
    assert!(inst.shred_deleted_tenants(grace).unwrap().is_empty(), "shredded twice");
    drop(inst);
    // Reopened from disk: the keyring no longer holds it; the live tenant is untouched.
    let inst = Installation::open(&env.data, &passphrase(), Arc::new(SystemClock)).unwrap();
    assert!(inst.tenant_keys(&id).is_err());
    assert!(inst.open_tenant("sunrise-clinic").is_ok());
}

/// The running server's hourly pass shreds the same way (M7), and never
/// drops a tenant another process created since the server started.
#[test]
fn the_servers_pool_shreds_deleted_tenants_and_keeps_new_ones() {
    let env = Env::initialised();
    env.ok(&["tenant", "create", "harbor-health"]);
    let inst = Installation::open(&env.data, &passphrase(), Arc::new(SystemClock)).unwrap();
    let pool = inst.tenant_pool().unwrap();
    let id = inst.tenant("harbor-health").unwrap().id;
    assert!(pool.get(&id).is_ok(), "opened while live");
    drop(inst);
    // Another process deletes one tenant and creates another while the pool runs.
    env.ok(&["tenant", "delete", "harbor-health"]);
    env.ok(&["tenant", "create", "sunrise-clinic"]);
    let grace = server::tenants::TENANT_SHRED_GRACE_MS;
    let now = SystemClock.now_ms();
    assert!(pool.shred_deleted(grace, now).unwrap().is_empty(), "shredded inside the grace period");
    assert_eq!(pool.shred_deleted(grace, now + grace + 1).unwrap(), std::slice::from_ref(&id));
    assert!(!env.data.join("tenants").join(format!("{id}.db")).exists(), "the store file survived");
    drop(pool);
    let inst = Installation::open(&env.data, &passphrase(), Arc::new(SystemClock)).unwrap();
    assert!(inst.tenant_keys(&id).is_err(), "the key survived");
    assert!(inst.open_tenant("sunrise-clinic").is_ok(), "the tenant made meanwhile lost its key");
}

/// An unattended start reads the passphrase from a systemd credential
/// (`$CREDENTIALS_DIRECTORY/throughline-passphrase`), never from the unit.
#[test]
fn the_passphrase_comes_from_a_systemd_credential() {
    let env = Env::initialised();
    let creds = env.tmp.path().join("creds");
    std::fs::create_dir_all(&creds).unwrap();
    std::fs::write(creds.join("throughline-passphrase"), format!("{PASSPHRASE}\n")).unwrap();
    let mut cmd = env.cmd(&["tenant", "create", "sunrise-clinic"]);
    cmd.env_remove("THROUGHLINE_PASSPHRASE").env("CREDENTIALS_DIRECTORY", &creds);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(creds.join("throughline-passphrase"), "the wrong passphrase\n").unwrap();
    let mut cmd = env.cmd(&["tenant", "list"]);
    cmd.env_remove("THROUGHLINE_PASSPHRASE").env("CREDENTIALS_DIRECTORY", &creds);
    let err = env.fails(&mut cmd);
    assert!(err.to_lowercase().contains("passphrase"), "{err}");
}

/// `serve --config FILE`: the settings come from the file, a flag wins over
/// it, and `config check` names every problem of a bad file, one per line.
#[test]
fn serve_takes_a_config_file_and_config_check_names_every_problem() {
    let env = Env::initialised();
    let good = env.tmp.path().join("throughline.toml");
    std::fs::write(&good, "listen = \"127.0.0.1:0\"\nwriters = 2\ncheckpoint_interval = \"30m\"\n").unwrap();
    let out = env.ok(&["config", "check", good.to_str().unwrap()]);
    assert!(out.contains(": ok"), "{out}");
    let bad = env.tmp.path().join("bad.toml");
    std::fs::write(&bad, "listen = \"nowhere\"\nwriters = 0\ncolour = \"blue\"\n").unwrap();
    // Every problem on its own line (so not `Env::fails`, which wants one).
    let out = env.cmd(&["config", "check", bad.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 4, "{err}");
    for line in
        ["colour: not a setting of throughline.toml", "listen: expected an address", "writers: expected a whole number"]
    {
        assert!(err.contains(line), "{line} missing from {err}");
    }
    // serve refuses the bad file before it touches any key.
    let out =
        env.cmd(&["serve", "--config", bad.to_str().unwrap()]).env_remove("THROUGHLINE_PASSPHRASE").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success() && err.contains("writers: expected a whole number"), "{err}");
    // The good file's listen (port 0) is used: the server comes up and says where.
    let mut serve =
        env.cmd(&["serve", "--config", good.to_str().unwrap()]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(serve.stdout.take().unwrap()), &mut line).unwrap();
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(line.starts_with("listening on https://127.0.0.1:") && !line.contains(":8443"), "{line}");
}

/// `throughline doctor`: every line ok on a healthy installation (warnings
/// allowed: no checkpoint yet); a loosened directory, a broken store or an
/// altered audit record each fail it, with a non-zero exit.
#[test]
fn doctor_passes_a_healthy_installation_and_names_what_is_broken() {
    let env = Env::initialised();
    env.ok(&["tenant", "create", "sunrise-clinic"]);
    env.ok(&["tenant", "create", "harbor-health"]);
    env.ok(&["audit", "checkpoint", "--tenant", "sunrise-clinic"]);
    let out = env.ok(&["doctor"]);
    assert!(out.contains("0 failures"), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("ok") && l.contains("tenant sunrise-clinic") && l.contains("checkpoint at")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("warn") && l.contains("tenant harbor-health") && l.contains("no checkpoint")),
        "{out}"
    );

    // An audit record altered on disk (through SQLite, with the key): the chain breaks.
    let inst = env.installation();
    let store = inst.open_tenant("sunrise-clinic").unwrap();
    store.danger_alter_audit_record(1, "tenant.tampered").unwrap();
    drop(store);
    drop(inst);
    let run = env.cmd(&["doctor"]).output().unwrap();
    let text = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(!run.status.success(), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("FAIL") && l.contains("tenant sunrise-clinic") && l.contains("broken at record 1")),
        "{text}"
    );

    // A data directory others can read fails too.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&env.data, std::fs::Permissions::from_mode(0o755)).unwrap();
        let run = env.cmd(&["doctor"]).output().unwrap();
        let text = String::from_utf8_lossy(&run.stdout).into_owned();
        assert!(text.lines().any(|l| l.starts_with("FAIL") && l.contains("data directory")), "{text}");
        std::fs::set_permissions(&env.data, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
}
