//! A tenant's policy: parsed from TOML (by `throughline tenant policy set`
//! or a file), validated whole, or the HIPAA-minded default. A file with any
//! error yields no policy at all: nothing loads half.
//!
//! ```toml
//! [confirmation]
//! mode = "on_shared_identifier"     # never | on_shared_identifier | on_new_session | always
//! with = ["date_of_birth"]          # date_of_birth, name
//! max_attempts = 5
//! lockout_minutes = 15
//!
//! [channels.email]
//! before_confirmation = ["greeting"]
//! after_confirmation = ["greeting", "identity", "contact", "scheduling"]
//!
//! [retention]
//! state_ttl_days = 30
//! conversation_days = 2190
//! audit_years = 6
//!
//! [evidence]
//! email_authserv_ids = ["mx.sunrise-clinic.example"]
//! caller_id = "attested"            # attested | trusted | claim
//! sms_sender = "claim"               # attested | trusted | claim
//!
//! [recovery]
//! resume_link = true                # text a resume link after an interrupted call
//! link_base = "https://chat.sunrise-clinic.example/resume"
//! holdout_percent = 0               # 0 to 90: this share gets no text (docs/OUTCOMES.md)
//! callback = false                  # also queue a call back to the number on file
//! callback_within_hours = 4         # its window from the interruption (1 to 72)
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::classes::{PhiClass, PhiClasses};
use crate::confirmation::{ConfirmField, ConfirmationMode, Lockout};
use crate::evidence::EvidencePolicy;
use crate::recovery::RecoveryPolicy;
use crate::{Channel, PolicyError, Retention, StateTtl};

/// Which PHI classes a channel may receive before and after confirmation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelRules {
    pub before: PhiClasses,
    pub after: PhiClasses,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfirmationPolicy {
    pub mode: ConfirmationMode,
    pub with: Vec<ConfirmField>,
    pub lockout: Lockout,
}

/// A tenant's validated policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantPolicy {
    pub confirmation: ConfirmationPolicy,
    channels: BTreeMap<Channel, ChannelRules>,
    pub retention: Retention,
    /// What makes an identifier asserted rather than a claim.
    pub evidence: EvidencePolicy,
    /// Dropped-call recovery: the resume-link text and its holdout.
    pub recovery: RecoveryPolicy,
    /// The file set `retention.state_ttl_days` (else the tenant's own TTL,
    /// from `tenant create --state-ttl-days`, applies).
    pub state_ttl_from_file: bool,
}

impl TenantPolicy {
    /// The default: confirm on a shared identifier with the date of birth,
    /// 5 attempts then 15 minutes locked; before confirmation nothing beyond a
    /// first-name greeting; after it, voice and chat see everything, email
    /// and SMS see scheduling but never turn text or clinical notes.
    pub fn hipaa_default() -> Self {
        use PhiClass::*;
        let set = |classes: &[PhiClass]| classes.iter().copied().collect::<PhiClasses>();
        let greeting = set(&[Greeting]);
        let channels = BTreeMap::from([
            (Channel::Voice, ChannelRules { before: greeting, after: PhiClasses::all() }),
            (Channel::Chat, ChannelRules { before: greeting, after: PhiClasses::all() }),
            (Channel::Email, ChannelRules { before: greeting, after: set(&[Greeting, Identity, Contact, Scheduling]) }),
            (Channel::Sms, ChannelRules { before: greeting, after: set(&[Greeting, Scheduling]) }),
        ]);
        TenantPolicy {
            confirmation: ConfirmationPolicy {
                mode: ConfirmationMode::OnSharedIdentifier,
                with: vec![ConfirmField::DateOfBirth],
                lockout: Lockout { max_attempts: 5, window_ms: 15 * 60_000 },
            },
            channels,
            retention: Retention::new(StateTtl::default()),
            evidence: EvidencePolicy::default(),
            recovery: RecoveryPolicy::default(),
            state_ttl_from_file: false,
        }
    }

    /// Parses and validates a policy file; unset values keep the defaults.
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let raw: RawPolicy = toml::from_str(text).map_err(|e| PolicyError::Syntax(e.message().to_owned()))?;
        let mut policy = Self::hipaa_default();
        if let Some(c) = raw.confirmation {
            if let Some(mode) = c.mode {
                policy.confirmation.mode = mode.parse()?;
            }
            if let Some(with) = c.with {
                let fields = with.iter().map(|f| f.parse()).collect::<Result<Vec<ConfirmField>, _>>()?;
                if fields.is_empty() {
                    return Err(PolicyError::NoConfirmField);
                }
                policy.confirmation.with = fields;
            }
            if let Some(n) = c.max_attempts {
                if !(1..=20).contains(&n) {
                    return Err(PolicyError::AttemptsOutOfRange(n));
                }
                policy.confirmation.lockout.max_attempts = n;
            }
            if let Some(m) = c.lockout_minutes {
                if !(1..=1440).contains(&m) {
                    return Err(PolicyError::LockoutOutOfRange(m));
                }
                policy.confirmation.lockout.window_ms = i64::from(m) * 60_000;
            }
        }
        for (name, rules) in raw.channels.unwrap_or_default() {
            let channel: Channel = name.parse()?;
            let current = policy.channel(channel);
            let parse = |list: Option<Vec<String>>, fallback: PhiClasses| -> Result<PhiClasses, PolicyError> {
                match list {
                    None => Ok(fallback),
                    Some(l) => l.iter().map(|c| c.parse::<PhiClass>()).collect(),
                }
            };
            let before = parse(rules.before_confirmation, current.before)?;
            let after = parse(rules.after_confirmation, current.after)?;
            if !before.is_subset_of(after) {
                return Err(PolicyError::Contradiction {
                    channel: channel.to_string(),
                    classes: before.minus(after).to_string(),
                });
            }
            policy.channels.insert(channel, ChannelRules { before, after });
        }
        if let Some(r) = raw.retention {
            if let Some(days) = r.state_ttl_days {
                policy.retention.state_ttl = StateTtl::from_days(days)?;
                policy.state_ttl_from_file = true;
            }
            if let Some(days) = r.conversation_days {
                policy.retention.conversation_days = Retention::conversation_days(days)?;
            }
            if let Some(years) = r.audit_years {
                if years < Retention::AUDIT_YEARS {
                    return Err(PolicyError::AuditRetentionTooShort { years });
                }
                policy.retention.audit_years = years;
            }
        }
        if let Some(e) = raw.evidence {
            policy.evidence = EvidencePolicy::parse(e.email_authserv_ids, e.caller_id, e.sms_sender)?;
        }
        if let Some(r) = raw.recovery {
            policy.recovery = RecoveryPolicy::parse(
                r.resume_link,
                r.link_base,
                r.holdout_percent,
                r.callback,
                r.callback_within_hours,
            )?;
        }
        Ok(policy)
    }

    pub fn channel(&self, channel: Channel) -> ChannelRules {
        self.channels
            .get(&channel)
            .copied()
            .unwrap_or(ChannelRules { before: PhiClasses::NONE, after: PhiClasses::NONE })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    confirmation: Option<RawConfirmation>,
    channels: Option<BTreeMap<String, RawChannel>>,
    retention: Option<RawRetention>,
    evidence: Option<RawEvidence>,
    recovery: Option<RawRecovery>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecovery {
    resume_link: Option<bool>,
    link_base: Option<String>,
    holdout_percent: Option<u32>,
    callback: Option<bool>,
    callback_within_hours: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvidence {
    email_authserv_ids: Option<Vec<String>>,
    caller_id: Option<String>,
    sms_sender: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfirmation {
    mode: Option<String>,
    with: Option<Vec<String>>,
    max_attempts: Option<u32>,
    lockout_minutes: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    before_confirmation: Option<Vec<String>>,
    after_confirmation: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    state_ttl_days: Option<u64>,
    conversation_days: Option<u64>,
    audit_years: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default() {
        assert_eq!(TenantPolicy::from_toml(""), Ok(TenantPolicy::hipaa_default()));
    }

    #[test]
    fn a_full_file_loads() {
        let p = TenantPolicy::from_toml(
            r#"
            [confirmation]
            mode = "always"
            with = ["date_of_birth", "name"]
            max_attempts = 3
            lockout_minutes = 60
            [channels.chat]
            before_confirmation = []
            after_confirmation = ["greeting", "scheduling", "conversation"]
            [retention]
            state_ttl_days = 7
            conversation_days = 365
            audit_years = 10
            "#,
        )
        .unwrap();
        assert_eq!(p.confirmation.mode, ConfirmationMode::Always);
        assert_eq!(p.confirmation.with, [ConfirmField::DateOfBirth, ConfirmField::Name]);
        assert_eq!(p.confirmation.lockout, Lockout { max_attempts: 3, window_ms: 3_600_000 });
        assert_eq!(p.channel(Channel::Chat).before, PhiClasses::NONE);
        assert_eq!(p.channel(Channel::Chat).after.to_string(), "greeting,scheduling,conversation");
        assert_eq!(p.channel(Channel::Voice), TenantPolicy::hipaa_default().channel(Channel::Voice));
        assert_eq!(
            (p.retention.state_ttl.days(), p.retention.conversation_days, p.retention.audit_years),
            (7, 365, 10)
        );
    }

    #[test]
    fn bad_files_are_refused_whole() {
        let cases = [
            ("[confirmation]\nmode = \"sometimes\"", "unknown confirmation mode 'sometimes'"),
            ("[confirmation]\nwith = [\"favourite_colour\"]", "unknown confirmation field 'favourite_colour'"),
            ("[confirmation]\nwith = []", "at least one field"),
            ("[confirmation]\nmax_attempts = 0", "max_attempts must be between 1 and 20"),
            ("[confirmation]\nlockout_minutes = 0", "lockout_minutes"),
            ("[channels.fax]\nafter_confirmation = []", "unknown channel 'fax'"),
            ("[channels.chat]\nafter_confirmation = [\"notes\"]", "unknown PHI class 'notes'"),
            (
                "[channels.email]\nbefore_confirmation = [\"clinical\"]\nafter_confirmation = [\"scheduling\"]",
                "channel email: clinical allowed before confirmation but not after",
            ),
            ("[retention]\naudit_years = 2", "below HIPAA's six years"),
            ("[retention]\nstate_ttl_days = 0", "state TTL of 0 days"),
            ("[confirmaton]\nmode = \"always\"", "policy file: unknown field"),
            ("[confirmation\nmode = 1", "policy file:"),
            ("[evidence]\ncaller_id = \"sometimes\"", "unknown caller_id trust 'sometimes'"),
            ("[evidence]\nemail_authserv_ids = [\"mx; evil\"]", "is not an authserv-id"),
        ];
        for (text, expected) in cases {
            let err = TenantPolicy::from_toml(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }
}
