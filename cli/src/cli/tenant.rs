//! `throughline tenant create|list|show|set-time-zone|delete|policy|email`.

use std::path::Path;
use std::sync::Arc;

use clap::Subcommand;
use continuity::calendar::ClinicZone;
use policy::{Channel, StateTtl, TenantPolicy};
use server::clock::rfc3339;
use server::{Clock as _, Installation, SystemClock};
use store::Countable;
use store::ids::TenantName;

use super::passphrase::Source;

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant (clinic) with its own encrypted store and keys.
    Create {
        /// Lowercase letters, digits and hyphens, e.g. `sunrise-clinic`.
        name: String,
        /// How long session state is kept (1 to 3650 days).
        #[arg(long, default_value_t = 30)]
        state_ttl_days: u64,
        /// The clinic's IANA time zone, e.g. America/Los_Angeles (default:
        /// this machine's zone, or UTC when it has none).
        #[arg(long)]
        time_zone: Option<String>,
        /// The region national phone numbers are read in, as an ISO 3166
        /// code such as US, DE or GB (default US); numbers written with a
        /// leading + are read the same everywhere.
        #[arg(long, default_value = "US")]
        region: String,
    },
    /// Change the region a tenant's national phone numbers are read in (ISO
    /// 3166 code, e.g. DE). Numbers already stored keep their E.164 form.
    /// Takes effect when the server next opens the tenant (restart `serve`).
    SetRegion {
        name: String,
        /// e.g. US, DE, GB, FR.
        region: String,
    },
    /// Move a tenant to another IANA time zone. Appointments keep their
    /// instant and are shown in the new zone. Takes effect when the server
    /// next opens the tenant (restart `serve`).
    SetTimeZone {
        name: String,
        /// e.g. America/Los_Angeles, Europe/Berlin.
        time_zone: String,
    },
    /// List tenants.
    List,
    /// Open a tenant's store and report its schema, counts and audit chain.
    Show { name: String },
    /// Delete a tenant: its certificates stop working at once; its name is
    /// never reused; its store stays on disk until the retention purge.
    Delete { name: String },
    /// A tenant's policy: confirmation, per-channel PHI classes, retention.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// How a tenant sends email: the From address (our Message-IDs use its
    /// domain) and optionally an SMTP relay; without one, outbound messages
    /// are handed back to the caller for its email gateway. Each flag
    /// changes only its own setting: `--from` alone keeps the relay. Takes
    /// effect when the server next opens the tenant (restart `serve`).
    Email {
        name: String,
        /// The From address, e.g. appointments@sunrise.example.
        #[arg(long)]
        from: Option<String>,
        /// The display name of the From address (default: the tenant's name).
        #[arg(long)]
        from_name: Option<String>,
        /// The SMTP relay as HOST:PORT (replaces the stored relay and its password).
        #[arg(long, conflicts_with = "no_smtp")]
        smtp: Option<String>,
        /// Remove the SMTP relay: outbound messages go back to the caller's gateway.
        #[arg(long)]
        no_smtp: bool,
        /// none, starttls or tls (implicit TLS).
        #[arg(long, default_value = "starttls")]
        smtp_tls: String,
        #[arg(long)]
        smtp_user: Option<String>,
        /// A file holding the SMTP password (its first line).
        #[arg(long)]
        smtp_password_file: Option<std::path::PathBuf>,
    },
}

/// `tenant email` arguments, checked.
struct EmailPlan {
    name: String,
    from: Option<String>,
    from_name: Option<String>,
    smtp: server::installation::SmtpChange,
}

#[allow(clippy::too_many_arguments)]
fn email_plan(
    name: String,
    from: Option<String>,
    from_name: Option<String>,
    smtp: Option<String>,
    no_smtp: bool,
    smtp_tls: &str,
    smtp_user: Option<String>,
    password_file: Option<std::path::PathBuf>,
) -> anyhow::Result<EmailPlan> {
    if let Some(f) = &from {
        continuity::identifiers::Identifier::email(f)
            .map_err(|_| anyhow::anyhow!("--from is not a valid email address"))?;
    }
    let tls = continuity::channels::SmtpTls::parse(smtp_tls)
        .ok_or_else(|| anyhow::anyhow!("--smtp-tls must be none, starttls or tls"))?;
    use server::installation::SmtpChange;
    let smtp = match smtp {
        None if no_smtp => SmtpChange::Remove,
        None => {
            anyhow::ensure!(
                smtp_user.is_none() && password_file.is_none(),
                "--smtp-user and --smtp-password-file need --smtp HOST:PORT (the relay is replaced whole)"
            );
            SmtpChange::Keep
        }
        Some(hp) => {
            let (host, port) = hp.rsplit_once(':').ok_or_else(|| anyhow::anyhow!("--smtp must be HOST:PORT"))?;
            let port: u16 = port
                .parse()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| anyhow::anyhow!("--smtp port must be 1 to 65535"))?;
            anyhow::ensure!(!host.is_empty(), "--smtp must be HOST:PORT");
            let password = match password_file {
                Some(p) => {
                    let text = std::fs::read_to_string(&p)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {}", p.display(), e.kind()))?;
                    Some(zeroize::Zeroizing::new(text.lines().next().unwrap_or_default().to_owned()))
                }
                None => None,
            };
            anyhow::ensure!(password.is_none() || smtp_user.is_some(), "--smtp-password-file needs --smtp-user");
            SmtpChange::Set(continuity::channels::Smtp {
                host: host.trim_matches(['[', ']']).to_owned(),
                port,
                tls,
                user: smtp_user,
                password,
            })
        }
    };
    Ok(EmailPlan { name, from, from_name, smtp })
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a TOML policy file and store it for the tenant (all or nothing).
    Set {
        name: String,
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Print the tenant's effective policy.
    Show { name: String },
}

/// A command with its arguments checked, before any key is touched.
enum Plan {
    Create(TenantName, StateTtl, ClinicZone, String),
    SetTimeZone(String, ClinicZone),
    SetRegion(String, String),
    List,
    Show(String),
    Delete(String),
    PolicySet(String, String),
    PolicyShow(String),
    Email(EmailPlan),
}

pub fn run(data_dir: &Path, source: &Source, cmd: TenantCommand) -> anyhow::Result<()> {
    // Check arguments before the (slow) unlock, so bad input fails fast.
    let plan = match cmd {
        TenantCommand::Create { name, state_ttl_days, time_zone, region } => {
            let zone = match time_zone {
                Some(z) => ClinicZone::parse(&z)?,
                None => ClinicZone::system(),
            };
            Plan::Create(
                TenantName::parse(&name)?,
                StateTtl::from_days(state_ttl_days)?,
                zone,
                checked_region(&region)?,
            )
        }
        TenantCommand::SetRegion { name, region } => Plan::SetRegion(name, checked_region(&region)?),
        TenantCommand::SetTimeZone { name, time_zone } => Plan::SetTimeZone(name, ClinicZone::parse(&time_zone)?),
        TenantCommand::List => Plan::List,
        TenantCommand::Show { name } => Plan::Show(name),
        TenantCommand::Delete { name } => Plan::Delete(name),
        TenantCommand::Policy(PolicyCommand::Set { name, file }) => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("cannot read policy file {}: {e}", file.display()))?;
            // Validate before the unlock: a bad file fails fast and touches nothing.
            TenantPolicy::from_toml(&text)?;
            Plan::PolicySet(name, text)
        }
        TenantCommand::Policy(PolicyCommand::Show { name }) => Plan::PolicyShow(name),
        TenantCommand::Email { name, from, from_name, smtp, no_smtp, smtp_tls, smtp_user, smtp_password_file } => {
            Plan::Email(email_plan(name, from, from_name, smtp, no_smtp, &smtp_tls, smtp_user, smtp_password_file)?)
        }
    };
    let mut inst = Installation::open(data_dir, &source.get()?, Arc::new(SystemClock))?;
    match plan {
        Plan::Create(name, ttl, zone, region) => {
            let mut t = inst.create_tenant(&name, ttl, &zone)?;
            if t.default_region != region {
                t = inst.set_tenant_region(&t.name, &region)?;
            }
            println!(
                "created tenant {} ({}), state TTL {} days, time zone {}, phone region {}",
                t.name, t.id, t.state_ttl_days, t.time_zone, t.default_region
            );
        }
        Plan::SetRegion(name, region) => {
            let t = inst.set_tenant_region(&name, &region)?;
            println!(
                "phone region of {} set to {}: national numbers are read as {} numbers",
                t.name, t.default_region, t.default_region
            );
        }
        Plan::SetTimeZone(name, zone) => {
            let t = inst.set_tenant_time_zone(&name, &zone)?;
            let now = SystemClock.now_ms();
            println!("time zone of {} set to {}: now {}", t.name, t.time_zone, zone.render(now));
        }
        Plan::List => {
            let tenants = inst.tenants()?;
            if tenants.is_empty() {
                println!("no tenants (create one with `throughline tenant create NAME`)");
            }
            for t in tenants {
                println!(
                    "{}\t{}\tstate_ttl_days={}\ttime_zone={}\tregion={}\tcreated={}",
                    t.name,
                    t.id,
                    t.state_ttl_days,
                    t.time_zone,
                    t.default_region,
                    rfc3339(t.created_at)
                );
            }
        }
        Plan::Show(name) => {
            let t = inst.tenant(&name)?;
            let store = inst.open_tenant(&name)?;
            let audit = store.verify_audit()?;
            println!("tenant {} ({})", t.name, t.id);
            println!("state_ttl_days {}", t.state_ttl_days);
            println!("time_zone {}", t.time_zone);
            println!("region {}", t.default_region);
            println!("schema_version {}", store.schema_version()?);
            println!("patients {}", store.count(Countable::Customers)?);
            println!("identifiers {}", store.count(Countable::Identifiers)?);
            println!("audit_records {audit} (chain verified)");
        }
        Plan::PolicySet(name, text) => {
            let p = inst.set_tenant_policy(&name, &text)?;
            println!("policy of {name} set: confirmation {}", p.confirmation.mode.as_str());
        }
        Plan::PolicyShow(name) => print_policy(&inst.tenant_policy(&name)?),
        Plan::Email(plan) => {
            let current = inst.tenant_email(&plan.name)?;
            let unchanged = plan.from.is_none()
                && plan.from_name.is_none()
                && matches!(plan.smtp, server::installation::SmtpChange::Keep);
            let e = if unchanged {
                current
            } else {
                // A new From address without a display name takes the tenant's name.
                let display = match (&plan.from_name, &plan.from) {
                    (Some(n), _) => n.clone(),
                    (None, Some(_)) => plan.name.clone(),
                    (None, None) => current.from_name.clone(),
                };
                let address = plan.from.clone().unwrap_or_else(|| current.from_address.clone());
                inst.set_tenant_email(&plan.name, &display, &address, plan.smtp)?
            };
            println!("email of {}: from {} <{}>", plan.name, e.from_name, e.from_address);
            match &e.smtp {
                Some(s) => println!(
                    "smtp {}:{} tls={} user={}",
                    s.host,
                    s.port,
                    s.tls.as_str(),
                    s.user.as_deref().unwrap_or("-")
                ),
                None => println!("smtp none: outbound messages are handed back to the caller's email gateway"),
            }
        }
        Plan::Delete(name) => {
            let t = inst.delete_tenant(&name)?;
            println!("deleted tenant {} ({}); its certificates are refused from now on", t.name, t.id);
        }
    }
    Ok(())
}

fn checked_region(raw: &str) -> anyhow::Result<String> {
    continuity::identifiers::phone_region(raw)
        .ok_or_else(|| anyhow::anyhow!("region {raw:?}: expected an ISO 3166 country code such as US, DE or GB"))
}

fn print_policy(p: &TenantPolicy) {
    let with: Vec<&str> = p.confirmation.with.iter().map(|f| f.as_str()).collect();
    println!("confirmation.mode {}", p.confirmation.mode.as_str());
    println!("confirmation.with {}", with.join(","));
    println!("confirmation.max_attempts {}", p.confirmation.lockout.max_attempts);
    println!("confirmation.lockout_minutes {}", p.confirmation.lockout.window_ms / 60_000);
    for c in Channel::ALL {
        let rules = p.channel(c);
        println!("channels.{c}.before_confirmation {}", rules.before);
        println!("channels.{c}.after_confirmation {}", rules.after);
    }
    println!("retention.state_ttl_days {}", p.retention.state_ttl.days());
    println!("retention.conversation_days {}", p.retention.conversation_days);
    println!("retention.audit_years {}", p.retention.audit_years);
    println!("recovery.resume_link {}", p.recovery.link_base.is_some());
    if let Some(base) = &p.recovery.link_base {
        println!("recovery.link_base {base}");
    }
    println!("recovery.holdout_percent {}", p.recovery.holdout_percent);
}
