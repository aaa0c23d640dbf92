//! Roles and what each may see: deny by default. A role names the PHI
//! classes it may be shown, the screens it may open and the patients in its
//! scope. The table is the minimum-necessary policy docs/COMPLIANCE.md
//! prints for an auditor; `tests/console.rs` walks it role by screen.

use policy::{PhiClass, PhiClasses};

/// A staff member's role in their clinic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Identity, contact and scheduling of every patient; the email review queue.
    FrontDesk,
    /// Everything, clinical included, of the patients assigned to them.
    Clinician,
    /// The email review queue and what the email policy allows.
    EmailReviewer,
    /// The audit trail, break-glass reviews and alerts; no clinical text.
    Compliance,
    /// Staff and settings; no patient data at all.
    Admin,
}

/// A console screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Screen {
    /// Find a patient by phone, email or name.
    Search,
    /// One patient: identity, appointments and the timeline across channels.
    Patient,
    /// Email waiting for a human, and held messages.
    Queue,
    /// One email thread, to read and answer.
    Thread,
    /// Sending a reply.
    Reply,
    /// Emergency access to a patient outside one's scope.
    BreakGlass,
    /// Break-glass uses waiting for sign-off, and alerts.
    Reviews,
    /// The audit trail: integrity, search, reports, exports.
    Audit,
    /// Patients' requests (access, erasure) and their deadlines.
    Requests,
    /// The clinic's staff.
    Staff,
    /// The clinic's outcomes: interrupted calls, recovery, conversion
    /// (aggregates, no patient).
    Outcomes,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::FrontDesk, Role::Clinician, Role::EmailReviewer, Role::Compliance, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::FrontDesk => "front_desk",
            Role::Clinician => "clinician",
            Role::EmailReviewer => "email_reviewer",
            Role::Compliance => "compliance",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// How the role is named on screen.
    pub fn label(self) -> &'static str {
        match self {
            Role::FrontDesk => "Front desk",
            Role::Clinician => "Clinician",
            Role::EmailReviewer => "Email reviewer",
            Role::Compliance => "Compliance officer",
            Role::Admin => "Administrator",
        }
    }

    /// The HL7 v3 PurposeOfUse the role's reads are recorded under.
    pub fn purpose(self) -> &'static str {
        match self {
            Role::Clinician => "TREAT",
            Role::FrontDesk | Role::EmailReviewer => "HOPERAT",
            Role::Compliance => "HCOMPL",
            Role::Admin => "HSYSADMIN",
        }
    }

    /// The classes the role may ever be shown, whatever the patient.
    pub fn classes(self) -> PhiClasses {
        let front: PhiClasses =
            [PhiClass::Greeting, PhiClass::Identity, PhiClass::Contact, PhiClass::Scheduling].into_iter().collect();
        match self {
            Role::Clinician => PhiClasses::all(),
            // Email text is conversation, shown only on the email queue's threads.
            Role::FrontDesk => front.with(PhiClass::Conversation),
            Role::EmailReviewer => [PhiClass::Greeting, PhiClass::Identity, PhiClass::Contact, PhiClass::Conversation]
                .into_iter()
                .collect(),
            Role::Compliance | Role::Admin => PhiClasses::default(),
        }
    }

    /// Whether the role may open the screen at all.
    pub fn allows(self, screen: Screen) -> bool {
        use Screen::*;
        match self {
            Role::FrontDesk => matches!(screen, Search | Patient | Queue | Thread | Reply),
            Role::Clinician => matches!(screen, Search | Patient | Thread | Reply | BreakGlass),
            Role::EmailReviewer => matches!(screen, Queue | Thread | Reply),
            Role::Compliance => matches!(screen, Reviews | Audit | Requests | Outcomes),
            Role::Admin => matches!(screen, Staff | Requests | Outcomes),
        }
    }
}

/// What one staff member may see of one patient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sight {
    /// The classes shown; the rest are withheld, and the page says so.
    pub classes: PhiClasses,
    /// Turn text of voice, chat and sms sessions (email text is `email_text`).
    pub spoken_text: bool,
    /// Turn text of email sessions.
    pub email_text: bool,
    /// The access is an emergency one (purpose ETREAT, recorded with the grant).
    pub break_glass: bool,
}

/// Why a patient page was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("your role does not open this screen")]
    Screen,
    /// A clinician and a patient not assigned to them: break-glass may open it.
    #[error("this patient is outside your scope")]
    OutOfScope { may_break_glass: bool },
}

/// What the role may see of a patient on a screen. `assigned`: the patient
/// is assigned to this staff member; `grant`: a live break-glass grant for
/// this patient; `eligible`: the member is pre-authorised for break-glass.
pub fn sight(role: Role, screen: Screen, assigned: bool, grant: bool, eligible: bool) -> Result<Sight, Denied> {
    if !role.allows(screen) || !matches!(screen, Screen::Patient | Screen::Thread | Screen::Reply) {
        return Err(Denied::Screen);
    }
    let classes = role.classes();
    match role {
        Role::Clinician if assigned || grant => {
            Ok(Sight { classes, spoken_text: true, email_text: true, break_glass: grant && !assigned })
        }
        Role::Clinician => Err(Denied::OutOfScope { may_break_glass: eligible }),
        Role::FrontDesk | Role::EmailReviewer => {
            Ok(Sight { classes, spoken_text: false, email_text: screen != Screen::Patient, break_glass: false })
        }
        Role::Compliance | Role::Admin => Err(Denied::Screen),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_role_but_the_clinician_is_ever_shown_clinical_text() {
        for role in Role::ALL {
            let clinical = role.classes().contains(PhiClass::Clinical);
            assert_eq!(clinical, role == Role::Clinician, "{role:?}");
            for screen in [Screen::Patient, Screen::Thread, Screen::Reply] {
                for (assigned, grant) in [(false, false), (true, false), (false, true)] {
                    if let Ok(s) = sight(role, screen, assigned, grant, true) {
                        assert_eq!(s.classes.contains(PhiClass::Clinical), role == Role::Clinician);
                        assert_eq!(s.spoken_text, role == Role::Clinician);
                    }
                }
            }
        }
    }

    #[test]
    fn a_clinician_sees_an_unassigned_patient_only_under_a_grant() {
        assert_eq!(
            sight(Role::Clinician, Screen::Patient, false, false, true),
            Err(Denied::OutOfScope { may_break_glass: true })
        );
        assert_eq!(
            sight(Role::Clinician, Screen::Patient, false, false, false),
            Err(Denied::OutOfScope { may_break_glass: false })
        );
        let s = sight(Role::Clinician, Screen::Patient, false, true, true).unwrap();
        assert!(s.break_glass && s.classes.contains(PhiClass::Clinical));
        assert!(!sight(Role::Clinician, Screen::Patient, true, false, false).unwrap().break_glass);
    }

    #[test]
    fn compliance_and_admin_open_no_patient() {
        for role in [Role::Compliance, Role::Admin] {
            assert!(role.classes().iter().next().is_none());
            for screen in [Screen::Patient, Screen::Thread, Screen::Reply, Screen::Search, Screen::Queue] {
                assert!(!role.allows(screen));
            }
        }
    }

    #[test]
    fn front_desk_reads_email_text_on_threads_only() {
        let p = sight(Role::FrontDesk, Screen::Patient, false, false, false).unwrap();
        assert!(!p.email_text && !p.spoken_text);
        let t = sight(Role::FrontDesk, Screen::Thread, false, false, false).unwrap();
        assert!(t.email_text && !t.spoken_text);
        assert_eq!(Role::parse("front_desk"), Some(Role::FrontDesk));
        assert_eq!(Role::parse("root"), None);
    }
}
