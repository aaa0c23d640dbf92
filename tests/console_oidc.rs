//! Sign-in through the clinic's identity provider, end to end: a real
//! OpenID Provider (node-oidc-provider, OpenID Certified) on 127.0.0.1,
//! configured with `throughline staff idp`, and Debian's Chromium signing
//! in through it (`tests/e2e/oidc.mjs`): a mapped group becomes the
//! clinician role, an unmapped one is refused, signing out signs out at the
//! provider; a mapping to admin is refused when it is configured. N5 of the
//! second review: a provider identity never takes over an account bound to
//! another, a local account is linked only after its holder's own password
//! and code, and a provider session offers no emergency access.
// Test helpers panic on unexpected results by design; the lint is for request paths.
#![allow(clippy::unwrap_used)]

mod util;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use server::Clock as _;
use util::console::{PASSWORD, TENANT, add_staff_with_key, clinic};

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn e2e() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_sign_in_through_the_clinics_provider_with_roles_from_its_groups() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    // No skipping: without the browser or the provider the test fails and says how to get them.
    assert!(
        Path::new(&chromium).exists() && e2e().join("node_modules/oidc-provider").exists(),
        "the provider test needs {chromium} and tests/e2e's packages: \
         apt-get install chromium nodejs npm && (cd tests/e2e && npm ci) (what scripts/test-deps.sh does)"
    );
    let c = clinic().await;
    let console = format!("https://console.test:{}", c.server.console.unwrap().port());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut idp = Command::new("node")
        .arg(e2e().join("idp.mjs"))
        .current_dir(e2e())
        .env("IDP_PORT", port.to_string())
        .env("REDIRECT_URI", format!("{console}/oidc/callback"))
        .env("POST_LOGOUT_URI", format!("{console}/login"))
        .env("CLIENT_SECRET", "idp-test-secret")
        .env("IDP_GROUPS", r#"{"nina": ["doctors"], "mallory": ["visitors"], "eve": ["doctors"], "doc": ["doctors"]}"#)
        // Eve's provider lets her claim Nina's address (a reassigned or duplicated email).
        .env("IDP_EMAILS", r#"{"eve": "nina@sunrise-clinic.example"}"#)
        // The provider keeps the tests' clock (years ahead under libfaketime):
        // its tokens' times are judged against the server's.
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node idp");
    let mut out = BufReader::new(idp.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    // Keep reading what the provider says, or its next line hits a closed pipe.
    std::thread::spawn(move || for _ in out.lines() {});
    let _idp = Child(idp);
    assert!(line.starts_with("listening"), "the provider did not start: {line}");

    let secret = c.env.tmp.path().join("idp-secret");
    std::fs::write(&secret, "idp-test-secret").unwrap();
    let issuer = format!("http://127.0.0.1:{port}");
    let redirect = format!("{console}/oidc/callback");
    let mut args = vec![
        "staff",
        "idp",
        "--tenant",
        TENANT,
        "--label",
        "Sunrise SSO",
        "--issuer",
        &issuer,
        "--client-id",
        "throughline-console",
        "--client-secret-file",
        secret.to_str().unwrap(),
        "--redirect-url",
        &redirect,
        "--scope",
        "email",
        "--scope",
        "groups",
    ];
    // A provider's group can never make anyone an administrator.
    let mut admin = args.clone();
    admin.extend(["--map", "it=admin"]);
    let err = c.env.fails(&mut c.env.cmd(&admin));
    assert!(err.contains("never grant admin"), "{err}");
    args.extend(["--map", "doctors=clinician", "--map", "desk=front_desk"]);
    c.env.ok(&args);

    // Doc: a local account with a password, TOTP and emergency access.
    let (doc, doc_key) = add_staff_with_key(&c.env, "doc@sunrise-clinic.example", "clinician", true);
    let out = Command::new("node")
        .arg(e2e().join("oidc.mjs"))
        .current_dir(e2e())
        .env("CONSOLE_URL", &console)
        .env("DOC_EMAIL", "doc@sunrise-clinic.example")
        .env("DOC_PASSWORD", PASSWORD)
        .env("DOC_TOTP_SECRET", &doc_key)
        .env("SERVER_NOW_MS", c.server.clock.now_ms().to_string())
        .env("PATIENT", &c.maria)
        .env("CHROMIUM", &chromium)
        .env_remove("LD_PRELOAD")
        .env_remove("FAKETIME")
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "the browser run failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Nina's account was made from the provider: clinician, no break-glass,
    // bound to the provider; Mallory got none, and both are on the trail.
    let list = c.env.ok(&["staff", "list", "--tenant", TENANT]);
    let nina = list.lines().find(|l| l.contains("nina@sunrise-clinic.example")).expect("nina's account");
    assert!(nina.contains("clinician") && nina.contains(" no "), "{nina}");
    assert!(!list.contains("mallory"), "{list}");
    let file = c.env.tmp.path().join("trail.jsonl");
    c.env.ok(&["audit", "export", "--tenant", TENANT, "--out", file.to_str().unwrap()]);
    let trail = std::fs::read_to_string(&file).unwrap();
    // The login record names the issuer and the subject.
    let nina_login = format!("\"reason\":\"oidc {issuer} nina\"");
    assert!(
        trail
            .lines()
            .any(|l| l.contains("\"staff.login\"") && l.contains(&nina_login) && l.contains("\"outcome\":\"ok\"")),
        "{trail}"
    );
    // Eve was refused as someone bound elsewhere, named by her own subject.
    assert!(trail.lines().any(|l| l.contains("\"staff.login\"")
        && l.contains(&format!("oidc:bound_elsewhere {issuer} eve"))
        && l.contains("\"refused\"")));
    // Doc's provider identity was linked by his own sign-in, then used.
    assert!(trail.lines().any(|l| l.contains("oidc:link_needs_step_up") && l.contains(&doc)));
    assert!(
        trail
            .lines()
            .any(|l| l.contains("\"staff.idp_link\"") && l.contains(&doc) && l.contains(&format!("oidc {issuer} doc")))
    );
    let list = c.env.ok(&["staff", "list", "--tenant", TENANT]);
    assert_eq!(
        list.matches("@sunrise-clinic.example").count(),
        2,
        "no account was made for Eve or a second Doc: {list}"
    );
    assert!(
        trail
            .lines()
            .any(|l| l.contains("\"staff.login\"") && l.contains("oidc:unmapped_role") && l.contains("\"refused\""))
    );
}
