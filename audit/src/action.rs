//! Every action an audit record can name: one closed set, so a record's
//! action is never a typo and a reader (the compliance pages, the FHIR
//! mapping, an auditor's query) can know them all. Stored and exported as
//! the dotted string ([`Action::as_str`]); `subject.verb`, the verb last.

/// What an audit record says was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// `appointment.book`
    AppointmentBook,
    /// `appointment.cancel`
    AppointmentCancel,
    /// `appointment.change`
    AppointmentChange,
    /// `appointment.reschedule`
    AppointmentReschedule,
    /// `audit.checkpoint`
    AuditCheckpoint,
    /// `audit.export`
    AuditExport,
    /// `audit.report`
    AuditReport,
    /// `audit.search`
    AuditSearch,
    /// `audit.verify`
    AuditVerify,
    /// `audit.view`
    AuditView,
    /// `backup.create`
    BackupCreate,
    /// `backup.restore`
    BackupRestore,
    /// `breakglass.alert`
    BreakglassAlert,
    /// `breakglass.review`
    BreakglassReview,
    /// `breakglass.review.list`
    BreakglassReviewList,
    /// `breakglass.start`
    BreakglassStart,
    /// `ca.create`
    CaCreate,
    /// `ca.rotate`
    CaRotate,
    /// `callback.claim`
    CallbackClaim,
    /// `callback.done`
    CallbackDone,
    /// `callback.request`
    CallbackRequest,
    /// `callback.requeue`
    CallbackRequeue,
    /// `certificate.issue`
    CertificateIssue,
    /// `certificate.revoke`
    CertificateRevoke,
    /// `context.read`
    ContextRead,
    /// `conversation.purge`
    ConversationPurge,
    /// `conversation.queue.list`
    ConversationQueueList,
    /// `conversation.start_fresh`
    ConversationStartFresh,
    /// `conversation.view`
    ConversationView,
    /// `customer.create`
    CustomerCreate,
    /// `customer.erase`
    CustomerErase,
    /// `customer.export`
    CustomerExport,
    /// `customer.read`
    CustomerRead,
    /// `customer.update`
    CustomerUpdate,
    /// `email.inbound`
    EmailInbound,
    /// `email.outbound`
    EmailOutbound,
    /// `email.send`
    EmailSend,
    /// `held.discard`
    HeldDiscard,
    /// `held.release`
    HeldRelease,
    /// `held.view`
    HeldView,
    /// `identifier.unlink`
    IdentifierUnlink,
    /// `identity.challenge`
    IdentityChallenge,
    /// `identity.clash`
    IdentityClash,
    /// `identity.confirm`
    IdentityConfirm,
    /// `identity.conflict`
    IdentityConflict,
    /// `installation.init`
    InstallationInit,
    /// `keys.rotate_passphrase`
    KeysRotatePassphrase,
    /// `patient.search`
    PatientSearch,
    /// `patient.view`
    PatientView,
    /// `resume_token.issue`
    ResumeTokenIssue,
    /// `resume_token.revoke`
    ResumeTokenRevoke,
    /// `rights.approve`
    RightsApprove,
    /// `rights.complete`
    RightsComplete,
    /// `rights.list`
    RightsList,
    /// `rights.request`
    RightsRequest,
    /// `session.end`
    SessionEnd,
    /// `session.open`
    SessionOpen,
    /// `staff.access_review.attest`
    StaffAccessReviewAttest,
    /// `staff.add`
    StaffAdd,
    /// `staff.assign`
    StaffAssign,
    /// `staff.disable`
    StaffDisable,
    /// `staff.enable`
    StaffEnable,
    /// `staff.idp`
    StaffIdp,
    /// `staff.idp.remove`
    StaffIdpRemove,
    /// `staff.idp_link`
    StaffIdpLink,
    /// `staff.login`
    StaffLogin,
    /// `staff.logout`
    StaffLogout,
    /// `staff.reset`
    StaffReset,
    /// `staff.role`
    StaffRole,
    /// `state.delete`
    StateDelete,
    /// `state.purge`
    StatePurge,
    /// `state.put`
    StatePut,
    /// `recovery.arm`
    RecoveryArm,
    /// `report.outcomes`
    ReportOutcomes,
    /// `tenant.create`
    TenantCreate,
    /// `tenant.delete`
    TenantDelete,
    /// `tenant.email.set`
    TenantEmailSet,
    /// `tenant.key_rotate`
    TenantKeyRotate,
    /// `tenant.policy.set`
    TenantPolicySet,
    /// `tenant.region.set`
    TenantRegionSet,
    /// `tenant.shred`
    TenantShred,
    /// `tenant.time_zone.set`
    TenantTimeZoneSet,
    /// `turn.append`
    TurnAppend,
    /// `turn.hold`
    TurnHold,
}

impl Action {
    /// Every action, in the order above.
    pub const ALL: [Action; 84] = [
        Action::AppointmentBook,
        Action::AppointmentCancel,
        Action::AppointmentChange,
        Action::AppointmentReschedule,
        Action::AuditCheckpoint,
        Action::AuditExport,
        Action::AuditReport,
        Action::AuditSearch,
        Action::AuditVerify,
        Action::AuditView,
        Action::BackupCreate,
        Action::BackupRestore,
        Action::BreakglassAlert,
        Action::BreakglassReview,
        Action::BreakglassReviewList,
        Action::BreakglassStart,
        Action::CaCreate,
        Action::CaRotate,
        Action::CallbackClaim,
        Action::CallbackDone,
        Action::CallbackRequest,
        Action::CallbackRequeue,
        Action::CertificateIssue,
        Action::CertificateRevoke,
        Action::ContextRead,
        Action::ConversationPurge,
        Action::ConversationQueueList,
        Action::ConversationStartFresh,
        Action::ConversationView,
        Action::CustomerCreate,
        Action::CustomerErase,
        Action::CustomerExport,
        Action::CustomerRead,
        Action::CustomerUpdate,
        Action::EmailInbound,
        Action::EmailOutbound,
        Action::EmailSend,
        Action::HeldDiscard,
        Action::HeldRelease,
        Action::HeldView,
        Action::IdentifierUnlink,
        Action::IdentityChallenge,
        Action::IdentityClash,
        Action::IdentityConfirm,
        Action::IdentityConflict,
        Action::InstallationInit,
        Action::KeysRotatePassphrase,
        Action::PatientSearch,
        Action::PatientView,
        Action::ResumeTokenIssue,
        Action::ResumeTokenRevoke,
        Action::RightsApprove,
        Action::RightsComplete,
        Action::RightsList,
        Action::RightsRequest,
        Action::SessionEnd,
        Action::SessionOpen,
        Action::StaffAccessReviewAttest,
        Action::StaffAdd,
        Action::StaffAssign,
        Action::StaffDisable,
        Action::StaffEnable,
        Action::StaffIdp,
        Action::StaffIdpRemove,
        Action::StaffIdpLink,
        Action::StaffLogin,
        Action::StaffLogout,
        Action::StaffReset,
        Action::StaffRole,
        Action::StateDelete,
        Action::StatePurge,
        Action::StatePut,
        Action::RecoveryArm,
        Action::ReportOutcomes,
        Action::TenantCreate,
        Action::TenantDelete,
        Action::TenantEmailSet,
        Action::TenantKeyRotate,
        Action::TenantPolicySet,
        Action::TenantRegionSet,
        Action::TenantShred,
        Action::TenantTimeZoneSet,
        Action::TurnAppend,
        Action::TurnHold,
    ];

    /// The dotted name records carry.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::AppointmentBook => "appointment.book",
            Action::AppointmentCancel => "appointment.cancel",
            Action::AppointmentChange => "appointment.change",
            Action::AppointmentReschedule => "appointment.reschedule",
            Action::AuditCheckpoint => "audit.checkpoint",
            Action::AuditExport => "audit.export",
            Action::AuditReport => "audit.report",
            Action::AuditSearch => "audit.search",
            Action::AuditVerify => "audit.verify",
            Action::AuditView => "audit.view",
            Action::BackupCreate => "backup.create",
            Action::BackupRestore => "backup.restore",
            Action::BreakglassAlert => "breakglass.alert",
            Action::BreakglassReview => "breakglass.review",
            Action::BreakglassReviewList => "breakglass.review.list",
            Action::BreakglassStart => "breakglass.start",
            Action::CaCreate => "ca.create",
            Action::CaRotate => "ca.rotate",
            Action::CallbackClaim => "callback.claim",
            Action::CallbackDone => "callback.done",
            Action::CallbackRequest => "callback.request",
            Action::CallbackRequeue => "callback.requeue",
            Action::CertificateIssue => "certificate.issue",
            Action::CertificateRevoke => "certificate.revoke",
            Action::ContextRead => "context.read",
            Action::ConversationPurge => "conversation.purge",
            Action::ConversationQueueList => "conversation.queue.list",
            Action::ConversationStartFresh => "conversation.start_fresh",
            Action::ConversationView => "conversation.view",
            Action::CustomerCreate => "customer.create",
            Action::CustomerErase => "customer.erase",
            Action::CustomerExport => "customer.export",
            Action::CustomerRead => "customer.read",
            Action::CustomerUpdate => "customer.update",
            Action::EmailInbound => "email.inbound",
            Action::EmailOutbound => "email.outbound",
            Action::EmailSend => "email.send",
            Action::HeldDiscard => "held.discard",
            Action::HeldRelease => "held.release",
            Action::HeldView => "held.view",
            Action::IdentifierUnlink => "identifier.unlink",
            Action::IdentityChallenge => "identity.challenge",
            Action::IdentityClash => "identity.clash",
            Action::IdentityConfirm => "identity.confirm",
            Action::IdentityConflict => "identity.conflict",
            Action::InstallationInit => "installation.init",
            Action::KeysRotatePassphrase => "keys.rotate_passphrase",
            Action::PatientSearch => "patient.search",
            Action::PatientView => "patient.view",
            Action::ResumeTokenIssue => "resume_token.issue",
            Action::ResumeTokenRevoke => "resume_token.revoke",
            Action::RightsApprove => "rights.approve",
            Action::RightsComplete => "rights.complete",
            Action::RightsList => "rights.list",
            Action::RightsRequest => "rights.request",
            Action::SessionEnd => "session.end",
            Action::SessionOpen => "session.open",
            Action::StaffAccessReviewAttest => "staff.access_review.attest",
            Action::StaffAdd => "staff.add",
            Action::StaffAssign => "staff.assign",
            Action::StaffDisable => "staff.disable",
            Action::StaffEnable => "staff.enable",
            Action::StaffIdp => "staff.idp",
            Action::StaffIdpRemove => "staff.idp.remove",
            Action::StaffIdpLink => "staff.idp_link",
            Action::StaffLogin => "staff.login",
            Action::StaffLogout => "staff.logout",
            Action::StaffReset => "staff.reset",
            Action::StaffRole => "staff.role",
            Action::StateDelete => "state.delete",
            Action::StatePurge => "state.purge",
            Action::StatePut => "state.put",
            Action::TenantCreate => "tenant.create",
            Action::TenantDelete => "tenant.delete",
            Action::TenantEmailSet => "tenant.email.set",
            Action::TenantKeyRotate => "tenant.key_rotate",
            Action::TenantPolicySet => "tenant.policy.set",
            Action::TenantShred => "tenant.shred",
            Action::TenantTimeZoneSet => "tenant.time_zone.set",
            Action::TenantRegionSet => "tenant.region.set",
            Action::ReportOutcomes => "report.outcomes",
            Action::RecoveryArm => "recovery.arm",
            Action::TurnAppend => "turn.append",
            Action::TurnHold => "turn.hold",
        }
    }

    /// The action a stored record names, if it is one of ours.
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_dotted_and_read_back() {
        let mut seen = std::collections::BTreeSet::new();
        for a in Action::ALL {
            assert!(seen.insert(a.as_str()), "{a} twice");
            assert!(
                a.as_str().contains('.')
                    && a.as_str().bytes().all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')
            );
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        assert_eq!(Action::parse("session.opened"), None);
    }
}
