//! `throughline staff add|list|disable|enable|reset|role|assign`: the
//! clinic's people. Accounts are never deleted (old audit records must still
//! name a person); disabling ends every session at once.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use console::Role;
use server::clock::rfc3339;
use zeroize::Zeroizing;

use super::passphrase::Source;

#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Add a staff account; prints the otpauth:// URI to enrol the required second factor.
    Add {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        /// front_desk, clinician, email_reviewer, compliance or admin.
        #[arg(long)]
        role: String,
        /// Pre-authorise emergency access (break-glass) to patients outside their scope.
        #[arg(long)]
        break_glass: bool,
        /// A file whose first line is the password (prompted for otherwise).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// List a tenant's staff.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Disable an account: its sessions end at once.
    Disable {
        #[arg(long)]
        tenant: String,
        id: String,
    },
    /// Enable a disabled account again.
    Enable {
        #[arg(long)]
        tenant: String,
        id: String,
    },
    /// New password and second factor (prints a new otpauth:// URI).
    Reset {
        #[arg(long)]
        tenant: String,
        id: String,
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Change an account's role or break-glass eligibility; its sessions end.
    Role {
        #[arg(long)]
        tenant: String,
        id: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        break_glass: bool,
    },
    /// Sign-in through the clinic's identity provider (OpenID Connect).
    /// Roles come from a claim of the ID token at every sign-in; a person
    /// with no mapped value is refused; nothing maps to admin.
    Idp {
        #[arg(long)]
        tenant: String,
        /// The button's text, e.g. "Sunrise SSO".
        #[arg(long)]
        label: String,
        /// The provider's issuer URL (https; http only on this machine).
        #[arg(long)]
        issuer: String,
        #[arg(long)]
        client_id: String,
        /// A file whose first line is the client secret.
        #[arg(long)]
        client_secret_file: PathBuf,
        /// The console's callback: https://HOST[:PORT]/oidc/callback.
        #[arg(long)]
        redirect_url: String,
        /// The ID token claim holding groups or roles.
        #[arg(long, default_value = "groups")]
        role_claim: String,
        /// A scope besides openid (repeatable; default: email).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// VALUE=ROLE, tried in order (repeatable).
        #[arg(long = "map", required = true)]
        map: Vec<String>,
        /// Let a session the provider vouched for start emergency access
        /// (for accounts that have it). Off by default: break-glass then
        /// needs a password and TOTP signed in here.
        #[arg(long)]
        allow_break_glass: bool,
    },
    /// Stop signing in through the clinic's identity provider.
    IdpRemove {
        #[arg(long)]
        tenant: String,
    },
    /// Put a patient in a clinician's scope.
    Assign {
        #[arg(long)]
        tenant: String,
        id: String,
        #[arg(long)]
        customer: String,
    },
}

fn role(raw: &str) -> anyhow::Result<Role> {
    Role::parse(raw)
        .ok_or_else(|| anyhow::anyhow!("--role must be front_desk, clinician, email_reviewer, compliance or admin"))
}

fn password(file: Option<&Path>) -> anyhow::Result<Zeroizing<String>> {
    let text = match file {
        Some(p) => Zeroizing::new(
            std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("cannot read {}: {}", p.display(), e.kind()))?,
        ),
        None => Zeroizing::new(rpassword::prompt_password("staff password: ").context("reading the password")?),
    };
    Ok(Zeroizing::new(text.lines().next().unwrap_or_default().to_owned()))
}

fn print_enrolment(e: &server::staff::Enrolment) {
    println!("staff id: {}", e.staff_id);
    println!("enrol the authenticator app (shown once):");
    println!("  {}", e.otpauth_uri.as_str());
    println!("  or type the key: {}", e.totp_base32.as_str());
}

pub fn run(data_dir: &Path, source: &Source, cmd: StaffCommand) -> anyhow::Result<()> {
    // Check what needs no key first.
    let pw = match &cmd {
        StaffCommand::Add { role: r, password_file, .. } => {
            role(r)?;
            Some(password(password_file.as_deref())?)
        }
        StaffCommand::Reset { password_file, .. } => Some(password(password_file.as_deref())?),
        StaffCommand::Role { role: r, .. } => {
            role(r)?;
            None
        }
        _ => None,
    };
    let pw = pw.unwrap_or_default();
    let mut inst = super::open(data_dir, source)?;
    match cmd {
        StaffCommand::Add { tenant, email, role: r, break_glass, .. } => {
            let e = inst.add_staff(&tenant, &email, role(&r)?, break_glass, &pw)?;
            print_enrolment(&e);
        }
        StaffCommand::List { tenant } => {
            println!("{:<37} {:<32} {:<15} {:<11} {:<9} last sign-in", "id", "email", "role", "break-glass", "status");
            for s in inst.list_staff(&tenant)? {
                let status = if s.disabled_at.is_some() { "disabled" } else { "active" };
                let last = s.last_login_at.map(rfc3339).unwrap_or_else(|| "never".into());
                let bg = if s.break_glass { "yes" } else { "no" };
                println!("{:<37} {:<32} {:<15} {:<11} {:<9} {last}", s.id, s.email, s.role, bg, status);
            }
        }
        StaffCommand::Disable { tenant, id } => {
            let ended = inst.set_staff_disabled(&tenant, &id, true)?;
            println!("disabled {id}; ended {ended} console session(s)");
        }
        StaffCommand::Enable { tenant, id } => {
            inst.set_staff_disabled(&tenant, &id, false)?;
            println!("enabled {id}");
        }
        StaffCommand::Reset { tenant, id, .. } => {
            let e = inst.reset_staff(&tenant, &id, &pw)?;
            print_enrolment(&e);
        }
        StaffCommand::Role { tenant, id, role: r, break_glass } => {
            let ended = inst.set_staff_role(&tenant, &id, role(&r)?, break_glass)?;
            println!(
                "{id} is now {r}{}; ended {ended} console session(s)",
                if break_glass { " (break-glass)" } else { "" }
            );
        }
        StaffCommand::Idp {
            tenant,
            label,
            issuer,
            client_id,
            client_secret_file,
            redirect_url,
            role_claim,
            scopes,
            map,
            allow_break_glass,
        } => {
            let secret = password(Some(&client_secret_file))?;
            let scopes = if scopes.is_empty() { vec!["email".to_owned()] } else { scopes };
            inst.set_idp(
                &tenant,
                &label,
                &issuer,
                &client_id,
                &secret,
                &redirect_url,
                &role_claim,
                scopes,
                &map,
                allow_break_glass,
            )?;
            println!("{tenant} signs in through {issuer} (roles from the `{role_claim}` claim)");
        }
        StaffCommand::IdpRemove { tenant } => {
            let removed = inst.remove_idp(&tenant)?;
            println!("{}", if removed { "removed" } else { "no identity provider was set" });
        }
        StaffCommand::Assign { tenant, id, customer } => {
            let customer = super::customer_id(&customer)?;
            inst.assign_patient(&tenant, &id, &customer)?;
            println!("assigned {customer} to {id}");
        }
    }
    Ok(())
}
