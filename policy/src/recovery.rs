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
    ) -> Result<Self, PolicyError> {
        let holdout_percent = match holdout {
            None => 0,
            Some(p) if p <= u32::from(Self::MAX_HOLDOUT) => p as u8,
            Some(p) => return Err(PolicyError::HoldoutOutOfRange(p)),
        };
        if resume_link != Some(true) {
            return Ok(RecoveryPolicy { link_base: None, holdout_percent });
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
        Ok(RecoveryPolicy { link_base: Some(base), holdout_percent })
    }

    /// The arm for a roll in 0..100 (uniform, from the caller's randomness):
    /// `None` when no links are sent.
    pub fn arm(&self, roll: u8) -> Option<RecoveryArm> {
        self.link_base.as_ref()?;
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
        assert_eq!(RecoveryPolicy::parse(None, None, None).unwrap().arm(0), None);
        let p = RecoveryPolicy::parse(Some(true), Some("https://chat.example/r".into()), Some(20)).unwrap();
        assert_eq!(p.link("rt1.a.b").as_deref(), Some("https://chat.example/r#rt1.a.b"));
        assert_eq!(
            (p.arm(0), p.arm(19), p.arm(20), p.arm(99)),
            (Some(RecoveryArm::Holdout), Some(RecoveryArm::Holdout), Some(RecoveryArm::Sent), Some(RecoveryArm::Sent))
        );
        for bad in ["http://chat.example/r", "https://", "https://x/?a=1", "https://x/#y", "javascript:alert(1)"] {
            assert!(RecoveryPolicy::parse(Some(true), Some(bad.into()), None).is_err(), "{bad}");
        }
        assert!(RecoveryPolicy::parse(Some(true), None, None).is_err());
        assert_eq!(RecoveryPolicy::parse(None, None, Some(91)), Err(PolicyError::HoldoutOutOfRange(91)));
    }
}
