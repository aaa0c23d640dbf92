//! Seeding the peer like Throughline's bench seeds a tenant: per patient a
//! phone identifier, an open conversation, a dropped call with two turns
//! and a pending state key, every sealed field encrypted with pgcrypto.
//! Done by PostgreSQL itself (`generate_series`), tenants in parallel.

use crate::{Peer, PeerError};

/// pgcrypto's options for every sealed field: AES-256, a salted key hash
/// (the keys are random, not passwords to stretch).
pub(crate) const SEAL: &str = "cipher-algo=aes256, s2k-mode=1";

/// Where tenant `t`'s seeded ids start.
fn base(tenant: u32) -> i64 {
    i64::from(tenant) * 1_000_000_000
}

impl Peer {
    /// Creates the schema (pgcrypto, tables, indexes) in an empty database.
    pub async fn create_schema(&self) -> Result<(), PeerError> {
        let client = self.pool.get().await?;
        client.batch_execute(include_str!("schema.sql")).await?;
        Ok(())
    }

    /// Seeds tenants `1..=tenants` with `patients` each, `parallel` at once.
    pub async fn seed(&self, tenants: u32, patients: u64, parallel: usize) -> Result<(), PeerError> {
        let mut next = 1;
        while next <= tenants {
            let batch: Vec<u32> = (next..=tenants).take(parallel.max(1)).collect();
            next += batch.len() as u32;
            futures_util::future::try_join_all(batch.into_iter().map(|t| self.seed_tenant(t, patients))).await?;
        }
        let client = self.pool.get().await?;
        client.batch_execute("VACUUM ANALYZE").await?;
        Ok(())
    }

    async fn seed_tenant(&self, tenant: u32, patients: u64) -> Result<(), PeerError> {
        let client = self.pool.get().await?;
        let (t, n, key, base) = (tenant as i32, patients as i64, Peer::tenant_key(tenant), base(tenant));
        let series = "FROM generate_series(0::bigint, $2::bigint - 1) i";
        let statements = [
            format!(
                "INSERT INTO customers (id, tenant_id, name_ct, dob_ct, created_at)
                 SELECT $4::bigint + i, $1, pgp_sym_encrypt('Patient ' || i, $3, '{SEAL}'),
                        pgp_sym_encrypt(peer_dob(i), $3, '{SEAL}'), 0 {series}"
            ),
            format!(
                "INSERT INTO identifiers (tenant_id, kind, value_bi, customer_id)
                 SELECT $1, 'phone', hmac('phone:' || peer_phone(i), $3, 'sha256'), $4::bigint + i {series}"
            ),
            format!(
                "INSERT INTO conversations (id, tenant_id, customer_id, status, last_activity_at)
                 SELECT $4::bigint + i, $1, $4::bigint + i, 'open', 0 {series}"
            ),
            format!(
                "INSERT INTO sessions (tenant_id, conversation_id, customer_id, channel, cert_serial,
                     identity_status, identity_strength, started_at, ended_at)
                 SELECT $1, $4::bigint + i, $4::bigint + i, 'voice', 'bench', 'resolved', 'asserted', -600000, -570000 {series}"
            ),
            format!(
                "INSERT INTO turns (tenant_id, conversation_id, channel, speaker, text_ct, at)
                 SELECT $1, $4::bigint + i, 'voice', s.speaker, pgp_sym_encrypt(s.text, $3, '{SEAL}'), s.at {series},
                 (VALUES ('patient', 'I''d like to book a check-up.', -590000::bigint),
                         ('agent', 'Which day suits you?', -580000::bigint)) AS s(speaker, text, at)"
            ),
            format!(
                "INSERT INTO session_state (conversation_id, key, value_ct, expires_at)
                 SELECT $4::bigint + i, 'pending_booking_date', pgp_sym_encrypt('Tuesday', $3, '{SEAL}'), 9000000000000 {series}"
            ),
        ];
        use tokio_postgres::types::Type;
        for sql in &statements {
            // Typed: not every statement uses every parameter.
            let statement = client.prepare_typed(sql, &[Type::INT4, Type::INT8, Type::TEXT, Type::INT8]).await?;
            client.execute(&statement, &[&t, &n, &key, &base]).await?;
        }
        client.execute("INSERT INTO audit_head (tenant_id, seq, hash) VALUES ($1, 0, '\\x00'::bytea)", &[&t]).await?;
        Ok(())
    }
}
