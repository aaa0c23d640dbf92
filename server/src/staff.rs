//! Staff administration from the operator's shell (`throughline staff`):
//! accounts are added, given roles, disabled and reset, never deleted. Each
//! change is audited in the tenant's chain with the operator as actor and
//! the staff id and role in the record, so the compliance officer's reports
//! show who was granted what, when, by whom (164.308(a)(4)(ii)(C)).

use console::Role;
use zeroize::Zeroizing;

use crate::{Error, Installation};
use store::ids::{CustomerId, StaffId};
use store::{AuditEntry, NewStaff, StaffFields, StaffRow};

fn staff_error(message: impl Into<String>) -> Error {
    Error::Staff { message: message.into() }
}

/// What a new account or a reset hands the operator, once.
pub struct Enrolment {
    pub staff_id: String,
    /// The `otpauth://` URI for the authenticator app; shown once, never stored in the clear elsewhere.
    pub otpauth_uri: Zeroizing<String>,
    pub totp_base32: Zeroizing<String>,
}

impl Installation {
    fn audit_staff_change(
        &mut self,
        tenant_name: &str,
        action: audit::Action,
        staff: &str,
        role: &str,
        customer: Option<&str>,
    ) -> Result<(), Error> {
        // On a cluster node the tenant stores here are copies the commit log
        // owns (a standby's is being written page by page): the change is
        // recorded in this node's system trail instead, naming the tenant.
        if self.dir.cluster_node().is_some() {
            let tenant = self.tenant(tenant_name)?.id;
            let reason =
                format!("{staff} role:{role}{}", customer.map(|c| format!(" customer:{c}")).unwrap_or_default());
            let (operator, now) = (self.operator().to_owned(), self.now_ms());
            self.system.record_tenant_action(&operator, action, &tenant, &reason, now)?;
            return Ok(());
        }
        let mut store = self.open_tenant(tenant_name)?;
        let now = self.now_ms();
        let tx = store.transaction()?;
        let tenant_id = tx.keys().tenant_id().to_owned();
        let entry = AuditEntry {
            tenant_id: Some(&tenant_id),
            customer_id: customer,
            reason: Some(staff),
            ..AuditEntry::operator(self.operator(), action)
        };
        tx.audit_staff(
            &entry,
            &StaffFields { role: Some(role), purpose: Some("HSYSADMIN"), ..Default::default() },
            now,
        )?;
        tx.commit()?;
        Ok(())
    }

    fn staff_of(&self, tenant_name: &str, id: &str) -> Result<StaffRow, Error> {
        let tenant = self.tenant(tenant_name)?;
        self.system
            .staff(id)?
            .filter(|s| s.tenant_id == tenant.id)
            .ok_or_else(|| staff_error(format!("no staff member {id} in tenant '{tenant_name}'")))
    }

    /// Adds an account: password (Argon2id) and a TOTP secret, both required.
    pub fn add_staff(
        &mut self,
        tenant_name: &str,
        email: &str,
        role: Role,
        break_glass: bool,
        password: &str,
    ) -> Result<Enrolment, Error> {
        let tenant = self.tenant(tenant_name)?;
        let email = email.trim().to_lowercase();
        continuity::identifiers::Identifier::email(&email)
            .map_err(|_| staff_error("--email is not a valid email address"))?;
        if self.system.staff_email_taken(&email)? {
            return Err(staff_error("a staff account with this email already exists; nothing was changed"));
        }
        let hash = console::password::hash(password).map_err(|e| staff_error(e.to_string()))?;
        let secret = console::totp::new_secret().map_err(|e| staff_error(e.to_string()))?;
        let id = StaffId::generate();
        let now = self.now_ms();
        self.system.insert_staff(
            &NewStaff {
                id: id.as_str(),
                tenant_id: &tenant.id,
                email: &email,
                role: role.as_str(),
                break_glass,
                password_hash: &hash,
                totp_secret: &secret,
            },
            now,
        )?;
        self.audit_staff_change(tenant_name, audit::Action::StaffAdd, id.as_str(), role.as_str(), None)?;
        Ok(Enrolment {
            staff_id: id.to_string(),
            otpauth_uri: console::totp::enrolment_uri(&secret, &email).map_err(|e| staff_error(e.to_string()))?,
            totp_base32: console::totp::base32(&secret),
        })
    }

    pub fn list_staff(&self, tenant_name: &str) -> Result<Vec<StaffRow>, Error> {
        let tenant = self.tenant(tenant_name)?;
        Ok(self.system.staff_of_tenant(&tenant.id)?)
    }

    /// Disables (ending every session at once) or re-enables an account.
    pub fn set_staff_disabled(&mut self, tenant_name: &str, id: &str, disabled: bool) -> Result<usize, Error> {
        let row = self.staff_of(tenant_name, id)?;
        let ended = self.system.set_staff_disabled(id, disabled, self.now_ms())?;
        let action = if disabled { audit::Action::StaffDisable } else { audit::Action::StaffEnable };
        self.audit_staff_change(tenant_name, action, id, &row.role, None)?;
        Ok(ended)
    }

    /// A new role or break-glass eligibility; the member's sessions end.
    pub fn set_staff_role(
        &mut self,
        tenant_name: &str,
        id: &str,
        role: Role,
        break_glass: bool,
    ) -> Result<usize, Error> {
        self.staff_of(tenant_name, id)?;
        let ended = self.system.set_staff_role(id, role.as_str(), break_glass)?;
        self.audit_staff_change(tenant_name, audit::Action::StaffRole, id, role.as_str(), None)?;
        Ok(ended)
    }

    /// A new password and second factor (a lost phone, a forgotten password).
    pub fn reset_staff(&mut self, tenant_name: &str, id: &str, password: &str) -> Result<Enrolment, Error> {
        let row = self.staff_of(tenant_name, id)?;
        let hash = console::password::hash(password).map_err(|e| staff_error(e.to_string()))?;
        let secret = console::totp::new_secret().map_err(|e| staff_error(e.to_string()))?;
        self.system.reset_staff(id, &hash, &secret)?;
        self.audit_staff_change(tenant_name, audit::Action::StaffReset, id, &row.role, None)?;
        Ok(Enrolment {
            staff_id: id.to_owned(),
            otpauth_uri: console::totp::enrolment_uri(&secret, &row.email).map_err(|e| staff_error(e.to_string()))?,
            totp_base32: console::totp::base32(&secret),
        })
    }

    /// Puts a patient in a clinician's scope.
    pub fn assign_patient(&mut self, tenant_name: &str, id: &str, customer: &CustomerId) -> Result<(), Error> {
        let row = self.staff_of(tenant_name, id)?;
        if row.role != Role::Clinician.as_str() {
            return Err(staff_error("only clinicians have assigned patients"));
        }
        // A cluster node's tenant stores are the commit log's copies: they
        // are not opened here (the assignment is checked when it is used).
        if self.dir.cluster_node().is_none() {
            let mut store = self.open_tenant(tenant_name)?;
            if !store.transaction()?.customer_live(customer)? {
                return Err(Error::CustomerNotFound);
            }
        }
        self.system.assign_patient(id, customer.as_str(), self.now_ms())?;
        self.audit_staff_change(tenant_name, audit::Action::StaffAssign, id, &row.role, Some(customer.as_str()))?;
        Ok(())
    }

    /// Sets the clinic's identity provider (OpenID Connect). The mapping is
    /// checked whole first: no admin, known roles, https (or loopback) URLs.
    #[allow(clippy::too_many_arguments)]
    pub fn set_idp(
        &mut self,
        tenant_name: &str,
        label: &str,
        issuer: &str,
        client_id: &str,
        client_secret: &str,
        redirect_url: &str,
        role_claim: &str,
        scopes: Vec<String>,
        map: &[String],
        provider_break_glass: bool,
    ) -> Result<(), Error> {
        let tenant = self.tenant(tenant_name)?;
        let map = console::oidc::parse_map(map).map_err(|e| staff_error(e.to_string()))?;
        if !console::oidc::acceptable_url(issuer) {
            return Err(staff_error("--issuer must be https:// (http:// only on this machine)"));
        }
        if !console::oidc::acceptable_url(redirect_url) || !redirect_url.ends_with("/oidc/callback") {
            return Err(staff_error("--redirect-url must be the console's https://HOST[:PORT]/oidc/callback"));
        }
        if client_id.is_empty() || client_secret.is_empty() || role_claim.is_empty() || label.is_empty() {
            return Err(staff_error("--label, --client-id, the client secret and --role-claim must not be empty"));
        }
        let row = store::IdpRow {
            tenant_id: tenant.id.clone(),
            label: label.to_owned(),
            issuer: issuer.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            client_secret: Zeroizing::new(client_secret.to_owned()),
            redirect_url: redirect_url.to_owned(),
            role_claim: role_claim.to_owned(),
            scopes,
            role_map: map.iter().map(|(v, r)| (v.clone(), r.as_str().to_owned())).collect(),
            break_glass: provider_break_glass,
        };
        self.system.set_idp(&row, self.now_ms())?;
        self.audit_staff_change(tenant_name, audit::Action::StaffIdp, "idp", "none", None)?;
        Ok(())
    }

    /// Removes the clinic's identity provider (its accounts stay, unable to sign in).
    pub fn remove_idp(&mut self, tenant_name: &str) -> Result<bool, Error> {
        let tenant = self.tenant(tenant_name)?;
        let removed = self.system.remove_idp(&tenant.id)?;
        self.audit_staff_change(tenant_name, audit::Action::StaffIdpRemove, "idp", "none", None)?;
        Ok(removed)
    }

    /// Test and demo support: the TOTP code an authenticator app would show at `ms`.
    pub fn danger_staff_totp_at(&self, id: &str, ms: i64) -> Result<String, Error> {
        let secrets = self.system.staff_secrets(id)?.ok_or_else(|| staff_error("no such staff member"))?;
        console::totp::code_at(&secrets.totp_secret, ms).ok_or_else(|| staff_error("no code"))
    }
}
