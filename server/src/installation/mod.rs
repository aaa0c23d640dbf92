//! An installation: a data directory whose keyring is unlocked and whose
//! system store is open. Operator commands and the server start here.
//!
//! Argon2id runs once, in [`Installation::init`] or [`Installation::open`];
//! every later key (system, tenant, patient) is unwrapped with AES-GCM.

pub mod ca_rotation;
pub mod rotation;
pub mod tenant_rotation;

use std::path::Path;
use std::sync::Arc;

use crypto::{KdfParams, Keyring, UnlockedKeyring};
use policy::{Channel, StateTtl, TenantPolicy};
use secrecy::SecretString;

use crate::Error;
use crate::clock::Clock;
use crate::tls::{Ca, IssuedCert, LeafKind};
use store::datadir::DataDir;
use store::ids::{TenantId, TenantName};
use store::{CertRow, NewCert, Revocation, SystemStore, TenantRow, TenantStore};

pub type TenantInfo = TenantRow;

/// Present in a data directory while a restore has written its files but not
/// yet re-applied every erasure.
pub const RESTORE_MARKER: &str = "restore-incomplete";

/// This build's version, as the schema marker records it.
const BUILD: &str = env!("CARGO_PKG_VERSION");

/// What `set_tenant_email` does to the SMTP relay.
pub enum SmtpChange {
    /// Leave the stored relay (and its sealed password) as it is.
    Keep,
    /// No relay: outbound messages go back to the caller's email gateway.
    Remove,
    /// Replace the relay.
    Set(continuity::channels::Smtp),
}

pub struct Installation {
    pub(crate) dir: DataDir,
    pub(crate) keyring: UnlockedKeyring,
    pub(crate) system: SystemStore,
    clock: Arc<dyn Clock>,
    operator: String,
}

impl Installation {
    /// Creates a new installation in `root`: the directory (owner-only), the
    /// keyring and the system store. Refuses an initialised directory without
    /// touching it; on failure removes what it created.
    pub fn init(root: &Path, passphrase: &SecretString, kdf: KdfParams, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        let dir = DataDir::fresh(root)?;
        let root_existed = root.exists();
        let result = Self::init_inner(&dir, passphrase, kdf, clock);
        if result.is_err() {
            // Roll back only what this call created.
            let _ = std::fs::remove_file(dir.keyring());
            let _ = std::fs::remove_file(dir.schema_marker_path());
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", dir.system_db().display()));
            }
            if !root_existed {
                let _ = std::fs::remove_dir_all(root);
            }
        }
        result
    }

    fn init_inner(
        dir: &DataDir,
        passphrase: &SecretString,
        kdf: KdfParams,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        dir.create_layout()?;
        let _lock = dir.lock()?;
        let keyring = UnlockedKeyring::create(&dir.keyring(), passphrase, kdf)?;
        let operator = operator_name();
        let now = clock.now_ms();
        let mut system =
            SystemStore::create(&dir.system_db(), &keyring.system_key()?, keyring.installation_id(), &operator, now)?;
        let (ca, key_pem) = Ca::generate(keyring.installation_id(), datetime(now))?;
        let sealed = keyring.seal_with_master(&ca_aad(keyring.installation_id()), key_pem.as_bytes())?;
        system.store_ca(ca.cert_pem(), &sealed, &operator, now)?;
        dir.write_schema_marker(BUILD)?;
        Ok(Installation { dir: dir.clone(), keyring, system, clock, operator })
    }

    /// Opens an initialised installation: checks the keyring for damage,
    /// derives the master key (argon2id), opens the system store.
    pub fn open(root: &Path, passphrase: &SecretString, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        // A restore writes the stores before it re-applies the erasure
        // ledger; until it is done, nothing may open them (L12).
        let marker = root.join(RESTORE_MARKER);
        if marker.exists() {
            return Err(Error::RestoreIncomplete { path: marker });
        }
        let upgraded_from = Self::before_migrating(root)?;
        let inst = Self::open_restoring(root, passphrase, clock)?;
        if let Some(from) = upgraded_from {
            inst.dir.write_schema_marker(BUILD)?;
            tracing::info!(from = %from, to = BUILD, "data directory upgraded");
        }
        Ok(inst)
    }

    /// Refuses a directory a newer build wrote; before this build migrates
    /// an older one (or one from before the marker), copies its files to
    /// `upgrades/` (docs/UPGRADING.md). Returns the older build's name.
    fn before_migrating(root: &Path) -> Result<Option<String>, Error> {
        let dir = DataDir::existing(root)?;
        let ours = store::datadir_schema::latest();
        let marker = dir.schema_marker();
        match &marker {
            Some(m) if m.schema == ours => return Ok(None),
            Some(m) if m.schema.system > ours.system || m.schema.tenant > ours.tenant => {
                return Err(Error::DataDirTooNew {
                    path: root.to_owned(),
                    build: m.build.clone(),
                    schema: m.schema.to_string(),
                    ours: ours.to_string(),
                });
            }
            _ => {}
        }
        let from = marker.map_or_else(|| "unmarked".to_owned(), |m| format!("{}-{}", m.build, m.schema));
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let copy = dir.preserve(&format!("{from}-to-{BUILD}-{ours}-{stamp}"))?;
        tracing::info!(copy = %copy.display(), "copied the data directory before migrating it");
        Ok(Some(from))
    }

    /// `open` without the restore check: only `restore` itself uses it.
    pub(crate) fn open_restoring(root: &Path, passphrase: &SecretString, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        let dir = DataDir::existing(root)?;
        let (mut keyring, system) = match crate::rotation::recover(&dir.keyring(), &dir.system_db(), passphrase)? {
            Some(found) => found,
            None => {
                let keyring = Keyring::load(&dir.keyring())?.unlock(passphrase)?;
                let system = SystemStore::open(&dir.system_db(), &keyring.system_key()?)?;
                // A rotation stopped after its rename: only the mark is left.
                if system.rotation_pending()? {
                    system.finish_rotation()?;
                }
                (keyring, system)
            }
        };
        let found = system.installation_id()?.unwrap_or_default();
        if found != keyring.installation_id() {
            return Err(Error::InstallationMismatch { expected: keyring.installation_id().to_owned(), found });
        }
        crate::tenant_rotation::recover(&dir, &mut keyring)?;
        Ok(Installation { dir, keyring, system, clock, operator: operator_name() })
    }

    pub fn data_dir(&self) -> &DataDir {
        &self.dir
    }

    pub fn installation_id(&self) -> &str {
        self.keyring.installation_id()
    }

    pub fn system(&self) -> &SystemStore {
        &self.system
    }

    /// Creates a tenant: a fresh root key in the keyring, its own encrypted
    /// store, and its row in the system store. All three or none.
    pub fn create_tenant(
        &mut self,
        name: &TenantName,
        ttl: StateTtl,
        zone: &continuity::calendar::ClinicZone,
    ) -> Result<TenantInfo, Error> {
        let _lock = self.dir.lock()?;
        if self.system.tenant_name_taken(name.as_str())? {
            return Err(Error::TenantExists { name: name.to_string() });
        }
        let id = TenantId::generate();
        let now = self.clock.now_ms();
        let keys = self.keyring.add_tenant(id.as_str())?;
        let path = self.dir.tenant_db(&id);
        let row = TenantRow {
            id: id.clone(),
            name: name.to_string(),
            state_ttl_days: ttl.days(),
            default_region: "US".into(),
            time_zone: zone.name().to_owned(),
            created_at: now,
        };
        let created = TenantStore::create(&path, keys, &self.operator, now)
            .map_err(Error::from)
            .and_then(|store| {
                store.checkpoint_truncate()?;
                drop(store);
                self.keyring.save()?;
                Ok(())
            })
            .and_then(|()| self.system.insert_tenant(&row, &self.operator).map_err(Error::from));
        if let Err(e) = created {
            self.keyring.remove_tenant(id.as_str());
            let _ = self.keyring.save();
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            return Err(e);
        }
        Ok(row)
    }

    pub fn tenants(&self) -> Result<Vec<TenantInfo>, Error> {
        Ok(self.system.tenants()?)
    }

    pub fn tenant(&self, name: &str) -> Result<TenantInfo, Error> {
        self.system.tenant_by_name(name)?.ok_or_else(|| Error::TenantNotFound { name: name.to_owned() })
    }

    /// A tenant's working keys (unwrapped from the keyring, derived).
    pub fn tenant_keys(&self, id: &TenantId) -> Result<crypto::TenantKeys, Error> {
        Ok(self.keyring.tenant_keys(id.as_str())?)
    }

    /// Opens a tenant's store with its keys (unwrapped from the keyring).
    pub fn open_tenant(&self, name: &str) -> Result<TenantStore, Error> {
        let row = self.tenant(name)?;
        let keys = self.keyring.tenant_keys(row.id.as_str())?;
        Ok(TenantStore::open(&self.dir.tenant_db(&row.id), keys)?)
    }
}

impl Installation {
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The clinic's CA, its key unsealed with the master key.
    pub fn ca(&self) -> Result<Ca, Error> {
        let (cert_pem, sealed) = self.system.ca()?.ok_or(Error::NoCa)?;
        let key_pem = self.keyring.open_with_master(&ca_aad(self.installation_id()), &sealed)?;
        let key_pem = std::str::from_utf8(&key_pem).map_err(|_| Error::NoCa)?;
        Ok(Ca::load(&cert_pem, key_pem)?)
    }

    /// Issues a channel certificate bound to one tenant and channel, records
    /// the binding and audits it.
    pub fn issue_channel_cert(&mut self, tenant: &str, channel: Channel, days: u32) -> Result<IssuedCert, Error> {
        let row = self.tenant(tenant)?;
        let kind = LeafKind::Channel { tenant_id: row.id.clone(), tenant_name: row.name.clone(), channel };
        let cert = self.issue(&kind, Some(&row.id), channel.as_str(), days)?;
        self.tenant_record(
            &row.name,
            audit::Action::CertificateIssue,
            &format!("{}:{}", channel.as_str(), cert.serial),
        )?;
        Ok(cert)
    }

    /// Puts an operator action on the tenant's own chain too (the system
    /// chain has it already), so the tenant's export shows it.
    /// The outcomes report of a tenant for a period (continuity::outcomes):
    /// PHI-free aggregates from ids, instants and flags; the read is on the
    /// tenant's audit chain (`report.outcomes`).
    pub fn outcomes(
        &self,
        tenant: &str,
        period: continuity::outcomes::Period,
        short_ms: i64,
    ) -> Result<continuity::outcomes::OutcomeReport, Error> {
        let mut store = self.open_tenant(tenant)?;
        let rows = store.outcome_rows(period.from, period.to.saturating_add(continuity::outcomes::FACTS_AFTER_MS))?;
        let report = continuity::outcomes::report(period, &continuity::outcomes::Facts::from_rows(&rows), short_ms);
        let what = format!("{}..{}", crate::clock::rfc3339(period.from), crate::clock::rfc3339(period.to));
        store.record_operator_action(&self.operator, audit::Action::ReportOutcomes, &what, self.clock.now_ms())?;
        Ok(report)
    }

    fn tenant_record(&self, tenant: &str, action: audit::Action, reason: &str) -> Result<(), Error> {
        let mut store = self.open_tenant(tenant)?;
        Ok(store.record_operator_action(&self.operator, action, reason, self.clock.now_ms())?)
    }

    /// The server's certificate and key for these names: the stored one
    /// while it covers them and has more than 30 days left, so `serve`
    /// unseals no CA key in steady state (M1); otherwise a new one is
    /// issued (90 days), stored with its key sealed under the master key,
    /// and `true` says the CA key was needed.
    pub fn server_identity(&mut self, names: Vec<String>) -> Result<(String, zeroize::Zeroizing<String>, bool), Error> {
        let now = self.clock.now_ms();
        let aad = format!("server-key/{}", self.installation_id()).into_bytes();
        if let Some(row) = self.system.server_identity()?
            && names.iter().all(|n| row.names.contains(n))
            && row.not_after > now.saturating_add(30 * 86_400_000)
        {
            let key = self.keyring.open_with_master(&aad, &row.key_sealed)?;
            let key = std::str::from_utf8(&key).map_err(|_| Error::NoCa)?.to_owned();
            return Ok((row.cert_pem, zeroize::Zeroizing::new(key), false));
        }
        let cert = self.issue_server_cert(names.clone(), 90)?;
        let key_sealed = self.keyring.seal_with_master(&aad, cert.key_pem.as_bytes())?;
        let row = store::ServerIdentityRow {
            cert_pem: cert.cert_pem.clone(),
            key_sealed,
            names,
            not_after: cert.not_after_ms,
        };
        self.system.store_server_identity(&row, now)?;
        Ok((cert.cert_pem, cert.key_pem, true))
    }

    /// The CA certificate (public); its key stays sealed.
    pub fn ca_cert_pem(&self) -> Result<String, Error> {
        self.system.ca_cert_pem()?.ok_or(Error::NoCa)
    }

    /// Issues the server's own certificate for these names (recorded, audited).
    pub fn issue_server_cert(&mut self, names: Vec<String>, days: u32) -> Result<IssuedCert, Error> {
        self.issue(&LeafKind::Server { names }, None, "server", days)
    }

    fn issue(
        &mut self,
        kind: &LeafKind,
        tenant: Option<&TenantId>,
        channel: &str,
        days: u32,
    ) -> Result<IssuedCert, Error> {
        if !(1..=MAX_CERT_DAYS).contains(&days) {
            return Err(Error::CertValidity { days, max: MAX_CERT_DAYS });
        }
        let now = self.clock.now_ms();
        let cert = self.ca()?.issue(kind, datetime(now), days)?;
        let record = NewCert {
            serial: &cert.serial,
            tenant_id: tenant,
            channel,
            fingerprint: &cert.fingerprint,
            not_before: cert.not_before_ms,
            not_after: cert.not_after_ms,
        };
        self.system.insert_certificate(&record, &self.operator, now)?;
        Ok(cert)
    }

    /// Revokes a certificate; a running server refuses it within about a second.
    pub fn revoke_cert(&mut self, serial: &str, reason: &str) -> Result<Revocation, Error> {
        let serial = serial.trim().to_ascii_lowercase().replace(':', "");
        let outcome = self.system.revoke_certificate(&serial, reason, &self.operator, self.clock.now_ms())?;
        if outcome == Revocation::Revoked {
            let tenant = self.certificates()?.into_iter().find(|c| c.serial == serial).and_then(|c| c.tenant_name);
            if let Some(tenant) = tenant.filter(|t| self.tenant(t).is_ok()) {
                self.tenant_record(&tenant, audit::Action::CertificateRevoke, &serial)?;
            }
        }
        Ok(outcome)
    }

    pub fn certificates(&self) -> Result<Vec<CertRow>, Error> {
        Ok(self.system.certificates()?)
    }

    /// Deletes a tenant (soft: its certificates stop working at once; its store
    /// stays on disk for the retention purge).
    pub fn delete_tenant(&mut self, name: &str) -> Result<TenantInfo, Error> {
        let row = self.tenant(name)?;
        self.system.delete_tenant(&row.id, &self.operator, self.clock.now_ms())?;
        Ok(row)
    }

    /// Crypto-shreds tenants deleted more than `grace_ms` ago (M7): the
    /// root key leaves the keyring (so every copy of the store, backups
    /// included, becomes unreadable once the keyring is saved), then the
    /// files go. Returns the tenants shredded.
    pub fn shred_deleted_tenants(&mut self, grace_ms: i64) -> Result<Vec<TenantId>, Error> {
        let _lock = self.dir.lock()?;
        let now = self.clock.now_ms();
        let ids = self.system.tenants_to_shred(now.saturating_sub(grace_ms))?;
        for id in &ids {
            self.keyring.remove_tenant(id.as_str());
            self.keyring.save()?;
            self.dir.remove_tenant_files(id)?;
            self.system.mark_shredded(id, &self.operator, now)?;
        }
        Ok(ids)
    }

    /// Moves a tenant to another time zone. Stored times are instants, so
    /// appointments keep their moment and are shown in the new zone.
    pub fn set_tenant_time_zone(
        &mut self,
        name: &str,
        zone: &continuity::calendar::ClinicZone,
    ) -> Result<TenantInfo, Error> {
        let row = self.tenant(name)?;
        self.system.set_tenant_time_zone(&row.id, zone.name(), &self.operator, self.clock.now_ms())?;
        self.tenant(name)
    }

    /// Sets the region a tenant's national phone numbers are read in (an ISO
    /// 3166 alpha-2 code, checked by `continuity::identifiers::phone_region`).
    pub fn set_tenant_region(&mut self, name: &str, region: &str) -> Result<TenantInfo, Error> {
        let row = self.tenant(name)?;
        self.system.set_tenant_region(&row.id, region, &self.operator, self.clock.now_ms())?;
        self.tenant(name)
    }

    /// Validates a policy file whole and stores it for the tenant; an invalid
    /// file changes nothing.
    pub fn set_tenant_policy(&mut self, name: &str, toml: &str) -> Result<TenantPolicy, Error> {
        let row = self.tenant(name)?;
        let policy = TenantPolicy::from_toml(toml)?;
        self.system.set_tenant_policy(&row.id, toml, &self.operator, self.clock.now_ms())?;
        if policy.state_ttl_from_file {
            self.system.set_state_ttl_days(&row.id, policy.retention.state_ttl.days())?;
        }
        self.tenant_record(name, audit::Action::TenantPolicySet, policy.confirmation.mode.as_str())?;
        Ok(policy)
    }

    /// Sets how a tenant sends email; the SMTP password is sealed under the
    /// master key. The relay changes only as `smtp` says: changing the From
    /// address alone keeps it (and its sealed password). Returns the settings
    /// as the server will load them.
    pub fn set_tenant_email(
        &mut self,
        name: &str,
        from_name: &str,
        from_address: &str,
        smtp: SmtpChange,
    ) -> Result<continuity::channels::EmailSettings, Error> {
        let row = self.tenant(name)?;
        let smtp = match smtp {
            SmtpChange::Keep => self.system.tenant_email(&row.id)?.and_then(|e| e.smtp),
            SmtpChange::Remove => None,
            SmtpChange::Set(smtp) => {
                let aad = continuity::channels::smtp_password_aad(&row.id);
                let sealed = smtp.password.map(|p| self.keyring.seal_with_master(&aad, p.as_bytes())).transpose()?;
                Some(store::SmtpRow {
                    host: smtp.host,
                    port: smtp.port,
                    tls: smtp.tls.as_str().to_owned(),
                    user: smtp.user,
                    password_sealed: sealed,
                })
            }
        };
        let stored =
            store::EmailSettingsRow { from_address: from_address.to_owned(), from_name: from_name.to_owned(), smtp };
        self.system.set_tenant_email(&row.id, &stored, &self.operator, self.clock.now_ms())?;
        continuity::channels::email_settings(&row.id, &row.name, Some(stored), &self.keyring).map_err(Error::from)
    }

    /// A tenant's email settings (a placeholder until set).
    pub fn tenant_email(&self, name: &str) -> Result<continuity::channels::EmailSettings, Error> {
        let row = self.tenant(name)?;
        continuity::channels::email_settings(&row.id, &row.name, self.system.tenant_email(&row.id)?, &self.keyring)
            .map_err(Error::from)
    }

    /// A tenant's effective policy: its stored file, or the HIPAA-minded default.
    pub fn tenant_policy(&self, name: &str) -> Result<TenantPolicy, Error> {
        let row = self.tenant(name)?;
        match self.system.tenant_policy(&row.id)? {
            Some(toml) => Ok(TenantPolicy::from_toml(&toml)?),
            None => Ok(TenantPolicy::hipaa_default()),
        }
    }

    /// The server's pool of lazily opened tenant stores (its own keyring
    /// handle and system-store connection; no key derivation).
    pub fn tenant_pool(&self) -> Result<crate::tenants::TenantPool, Error> {
        crate::tenants::TenantPool::new(self.dir.clone(), self.keyring.duplicate(), self.open_system_store()?)
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// Runs the retention purge on one tenant (its store opened here):
    /// expired state and conversations past the tenant's retention.
    pub fn purge_tenant(&self, name: &str) -> Result<(u64, u64), Error> {
        let policy = self.tenant_policy(name)?;
        let mut store = self.open_tenant(name)?;
        let now = self.clock.now_ms();
        let state = store.purge_expired_state(now)?;
        let conversations = store.purge_old_conversations(policy.retention.conversation_days, now)?;
        Ok((state, conversations))
    }

    /// Erases a patient on a staff request (`throughline erasure`); returns
    /// the signed receipt (the first one again for a repeated request).
    pub fn erase_customer(&self, tenant: &str, customer: &store::ids::CustomerId) -> Result<String, Error> {
        let row = self.tenant(tenant)?;
        let mut store = self.open_tenant(tenant)?;
        let ledger = std::sync::Mutex::new(self.open_system_store()?);
        let by = crate::erasure::Requester {
            audit: store::AuditEntry::operator(&self.operator, audit::Action::CustomerErase),
            label: format!("operator:{}", self.operator),
        };
        crate::erasure::erase(&mut store, &ledger, &row.id, customer, &by, self.clock.now_ms())
    }

    /// The right-of-access export on a staff request (everything held).
    pub fn export_customer(&self, tenant: &str, customer: &store::ids::CustomerId) -> Result<serde_json::Value, Error> {
        let mut store = self.open_tenant(tenant)?;
        let tx = store.transaction()?;
        if !tx.customer_is_live(customer)? {
            return Err(Error::CustomerNotFound);
        }
        let by = store::AuditEntry::operator(&self.operator, audit::Action::CustomerExport);
        let doc =
            continuity::patient_export::build(&tx, customer, &policy::operator_access(), &by, self.clock.now_ms())?;
        tx.commit()?;
        Ok(doc)
    }

    pub(crate) fn keyring_system_key(&self) -> Result<crypto::Key256, Error> {
        Ok(self.keyring.system_key()?)
    }

    pub(crate) fn seal_for_backup(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(self.keyring.seal_with_master(aad, plain)?)
    }

    /// Every tenant with a key, deleted ones included (their files still exist).
    pub(crate) fn all_tenant_ids(&self) -> Result<Vec<TenantId>, Error> {
        Ok(self.keyring.tenant_ids().filter_map(TenantId::parse).collect())
    }

    pub(crate) fn open_tenant_by_id(&self, id: &TenantId) -> Result<TenantStore, Error> {
        Ok(TenantStore::open(&self.dir.tenant_db(id), self.keyring.tenant_keys(id.as_str())?)?)
    }

    pub(crate) fn record_system_action(&self, action: audit::Action, reason: &str) -> Result<(), Error> {
        let mut system = self.open_system_store()?;
        Ok(system.record_action(&self.operator, action, reason, self.clock.now_ms())?)
    }

    /// Every erasure in this installation's ledger.
    pub(crate) fn all_ledger_entries(&self) -> Result<Vec<(TenantId, store::ids::CustomerId)>, Error> {
        Ok(self
            .system
            .ledger_all()?
            .into_iter()
            .filter_map(|(t, c)| Some((TenantId::parse(&t)?, store::ids::CustomerId::parse(&c)?)))
            .collect())
    }

    /// Re-applies one erasure after a restore: shreds the patient again if the
    /// restored store still has them. Returns whether anything was erased.
    pub(crate) fn reapply_erasure(&self, tenant: &TenantId, customer: &store::ids::CustomerId) -> Result<bool, Error> {
        if !self.keyring.tenant_ids().any(|t| t == tenant.as_str()) {
            return Ok(false);
        }
        let mut store = self.open_tenant_by_id(tenant)?;
        let live = {
            let tx = store.transaction()?;
            let live = tx.customer_is_live(customer)?;
            tx.commit()?;
            live
        };
        if !live {
            return Ok(false);
        }
        let ledger = std::sync::Mutex::new(self.open_system_store()?);
        let by = crate::erasure::Requester {
            audit: store::AuditEntry {
                actor_kind: audit::ActorKind::System,
                ..store::AuditEntry::operator("throughline", audit::Action::CustomerErase)
            },
            label: "system:restore (erasure recorded after the backup)".into(),
        };
        crate::erasure::erase(&mut store, &ledger, tenant, customer, &by, self.clock.now_ms())?;
        Ok(true)
    }

    /// The operator name recorded in audit entries.
    pub fn operator(&self) -> &str {
        &self.operator
    }

    /// A second connection to the system store (for the server's certificate
    /// registry refresher, which runs on its own thread).
    pub fn open_system_store(&self) -> Result<SystemStore, Error> {
        Ok(SystemStore::open(&self.dir.system_db(), &self.keyring.system_key()?)?)
    }
}

/// Longest validity of an issued certificate (about five years).
pub const MAX_CERT_DAYS: u32 = 1825;

pub(crate) fn ca_aad(installation_id: &str) -> Vec<u8> {
    format!("ca-key/{installation_id}").into_bytes()
}

pub(crate) fn datetime(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// The operator recorded in audit entries for CLI actions: the OS account.
fn operator_name() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty() && u.len() <= 64 && u.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "operator".into())
}
