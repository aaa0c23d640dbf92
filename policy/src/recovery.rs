//! Dropped-call recovery (docs/OUTCOMES.md): after an interrupted call, a
//! text with a resume link to the number that called, for all interrupted
//! calls or, with a holdout, for a random share of them so the clinic can
//! measure its own lift.
//!
//! ```toml
//! [recovery]
//! resume_link = true
//! link_base = "https://chat.sunrise.example/resume"   # the widget's page; the token goes after '#'
//! holdout_percent = 20                                # this share gets nothing (0 to 90)
//! callback = true                                     # also queue a call back to the number on file
//! callback_within_hours = 4                           # its window, from the interruption (1 to 72)
//! ```

use crate::PolicyError;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryPolicy {
    /// Where the link points, when links are sent: an https URL with no
    /// query or fragment (the token is put in the fragment, which browsers
    /// never send to a server or a log).
    pub link_base: Option<String>,
    /// Percent of interrupted calls held out (no text), 0 to 90.
    pub holdout_percent: u8,
    /// Also queue a callback (to the verified number on file) within this
    /// many hours of the interruption; `None`: no callback.
    pub callback_within_hours: Option<u8>,
}

/// The arm an interrupted call is put in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryArm {
    Sent,
    Holdout,
}

impl RecoveryArm {
    pub fn as_str(self) -> &'static str {
        match self {
            RecoveryArm::Sent => "sent",
            RecoveryArm::Holdout => "holdout",
        }
    }
}

impl RecoveryPolicy {
    pub const MAX_HOLDOUT: u8 = 90;

    pub fn parse(
        resume_link: Option<bool>,
        link_base: Option<String>,
        holdout: Option<u32>,
        callback: Option<bool>,
        callback_within_hours: Option<u32>,
    ) -> Result<Self, PolicyError> {
        let holdout_percent = match holdout {
            None => 0,
            Some(p) if p <= u32::from(Self::MAX_HOLDOUT) => p as u8,
            Some(p) => return Err(PolicyError::HoldoutOutOfRange(p)),
        };
        let callback_within_hours = match (callback, callback_within_hours) {
            (Some(true), None) => Some(4),
            (Some(true), Some(h)) if (1..=72).contains(&h) => Some(h as u8),
            (Some(true), Some(_)) => {
                return Err(PolicyError::RecoveryLink("callback_within_hours must be from 1 to 72".into()));
            }
            (_, Some(_)) => {
                return Err(PolicyError::RecoveryLink("callback_within_hours needs callback = true".into()));
            }
            (_, None) => None,
        };
        if resume_link != Some(true) {
            return Ok(RecoveryPolicy { link_base: None, holdout_percent, callback_within_hours });
        }
        let base = link_base.ok_or_else(|| PolicyError::RecoveryLink("resume_link needs link_base".into()))?;
        let ok = base.starts_with("https://")
            && base.len() > "https://".len()
            && base.len() <= 200
            && !base.contains(['?', '#', ' ', '"', '<', '>'])
            && base.chars().all(|c| c.is_ascii_graphic());
        if !ok {
            return Err(PolicyError::RecoveryLink(
                "link_base must be an https URL of at most 200 characters, without '?' or '#'".into(),
            ));
        }
        Ok(RecoveryPolicy { link_base: Some(base), holdout_percent, callback_within_hours })
    }

    /// The arm for a roll in 0..100 (uniform, from the caller's randomness):
    /// `None` when the policy does nothing (no link, no callback).
    pub fn arm(&self, roll: u8) -> Option<RecoveryArm> {
        if self.link_base.is_none() && self.callback_within_hours.is_none() {
            return None;
        }
        Some(if roll % 100 < self.holdout_percent { RecoveryArm::Holdout } else { RecoveryArm::Sent })
    }

    /// The link that carries `token`.
    pub fn link(&self, token: &str) -> Option<String> {
        self.link_base.as_ref().map(|b| format!("{b}#{token}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_unless_asked_and_the_link_is_checked() {
        assert_eq!(RecoveryPolicy::parse(None, None, None, None, None).unwrap().arm(0), None);
        let p = RecoveryPolicy::parse(Some(true), Some("https://chat.example/r".into()), Some(20), None, None).unwrap();
        assert_eq!(p.link("rt1.a.b").as_deref(), Some("https://chat.example/r#rt1.a.b"));
        assert_eq!(
            (p.arm(0), p.arm(19), p.arm(20), p.arm(99)),
            (Some(RecoveryArm::Holdout), Some(RecoveryArm::Holdout), Some(RecoveryArm::Sent), Some(RecoveryArm::Sent))
        );
        for bad in ["http://chat.example/r", "https://", "https://x/?a=1", "https://x/#y", "javascript:alert(1)"] {
            assert!(RecoveryPolicy::parse(Some(true), Some(bad.into()), None, None, None).is_err(), "{bad}");
        }
        assert!(RecoveryPolicy::parse(Some(true), None, None, None, None).is_err());
        assert_eq!(RecoveryPolicy::parse(None, None, Some(91), None, None), Err(PolicyError::HoldoutOutOfRange(91)));
        let cb = RecoveryPolicy::parse(None, None, None, Some(true), None).unwrap();
        assert_eq!((cb.callback_within_hours, cb.arm(50), cb.link("x")), (Some(4), Some(RecoveryArm::Sent), None));
        assert!(RecoveryPolicy::parse(None, None, None, Some(true), Some(73)).is_err());
        assert!(RecoveryPolicy::parse(None, None, None, None, Some(4)).is_err());
    }
}
