//! SQL migrations for the system store and the tenant stores.
//!
//! The SQL lives in `migrations/sql/{system,tenant}/NNNN_name.sql` and is
//! embedded into the binary at compile time; `rusqlite_migration` applies it
//! and records the schema version in SQLite's `user_version`. Migrations are
//! append-only: a landed file is never edited, a change is a new file.
#![forbid(unsafe_code)]

use rusqlite_migration::{M, Migrations};

/// Migrations of the system store (`system.db`): tenants, the CA, channel
/// certificates, operators and the erasure ledger.
pub fn system() -> Migrations<'static> {
    Migrations::new(system_steps())
}

/// The schema version a system store has once every migration ran.
pub fn system_latest() -> i64 {
    system_steps().len() as i64
}

fn system_steps() -> Vec<M<'static>> {
    vec![
        M::up(include_str!("../sql/system/0001_init.sql")),
        M::up(include_str!("../sql/system/0002_tenant_email.sql")),
        M::up(include_str!("../sql/system/0003_tenant_time_zone.sql")),
        M::up(include_str!("../sql/system/0004_sms_certificates.sql")),
        M::up(include_str!("../sql/system/0005_tenant_shredded.sql")),
        M::up(include_str!("../sql/system/0006_server_identity.sql")),
        M::up(include_str!("../sql/system/0007_staff.sql")),
        M::up(include_str!("../sql/system/0008_staff_oidc.sql")),
        M::up(include_str!("../sql/system/0009_access_reviews.sql")),
        M::up(include_str!("../sql/system/0010_ca_rotation.sql")),
        M::up(include_str!("../sql/system/0011_provider_sessions.sql")),
    ]
}

/// Migrations of one tenant store (`tenants/<id>.db`): the patient data model
/// of DESIGN.md and the tenant's audit chain.
pub fn tenant() -> Migrations<'static> {
    Migrations::new(tenant_steps())
}

/// The schema version a tenant store has once every migration ran.
pub fn tenant_latest() -> i64 {
    tenant_steps().len() as i64
}

fn tenant_steps() -> Vec<M<'static>> {
    vec![
        M::up(include_str!("../sql/tenant/0001_init.sql")),
        M::up(include_str!("../sql/tenant/0002_channels.sql")),
        M::up(include_str!("../sql/tenant/0003_identity_assurance.sql")),
        M::up(include_str!("../sql/tenant/0004_turn_refs.sql")),
        M::up(include_str!("../sql/tenant/0005_staff_audit.sql")),
        M::up(include_str!("../sql/tenant/0006_rights_requests.sql")),
        M::up(include_str!("../sql/tenant/0007_session_outcomes.sql")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_migrations_are_valid() {
        assert!(system().validate().is_ok());
    }

    #[test]
    fn tenant_migrations_are_valid() {
        assert!(tenant().validate().is_ok());
    }

    #[test]
    fn the_latest_versions_are_what_a_migrated_store_records() {
        for (m, latest) in [(system(), system_latest()), (tenant(), tenant_latest())] {
            let mut conn = rusqlite::Connection::open_in_memory().unwrap();
            m.to_latest(&mut conn).unwrap();
            let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
            assert_eq!(v, latest);
        }
    }
}
