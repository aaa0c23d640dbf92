//! One audit record and its hash.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Who acted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A channel integration, named by its certificate serial.
    Channel,
    /// A person at the clinic using the CLI.
    Operator,
    /// Throughline itself (purge, restore re-applying erasures).
    System,
    /// A person at the clinic using the console, named by their `stf_…` id.
    Staff,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Channel => "channel",
            ActorKind::Operator => "operator",
            ActorKind::System => "system",
            ActorKind::Staff => "staff",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [ActorKind::Channel, ActorKind::Operator, ActorKind::System, ActorKind::Staff]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// What came of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Refused,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Outcome::Ok, Outcome::Refused, Outcome::Failed].into_iter().find(|k| k.as_str() == s)
    }
}

/// One audit record. Every field is pseudonymous or a code; none is PHI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Position in the tenant's chain, from 1.
    pub seq: u64,
    /// Unix time in milliseconds.
    pub at: i64,
    pub actor_kind: ActorKind,
    /// Certificate serial, operator name or `throughline`.
    pub actor: String,
    pub channel: Option<String>,
    /// Dotted action code such as `tenant.create` or `session.open`.
    pub action: String,
    pub tenant_id: Option<String>,
    pub customer_id: Option<String>,
    pub session_id: Option<String>,
    /// Peer address of the connection, or `cli`.
    pub peer: Option<String>,
    pub outcome: Outcome,
    /// Stable reason code for refusals and failures.
    pub reason: Option<String>,
    /// Hash of the previous record (`GENESIS` for the first), hex.
    pub prev_hash: String,
    /// The role a staff member acted in (`front_desk`, `clinician`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// HL7 v3 PurposeOfUse code: `TREAT`, `ETREAT`, `HOPERAT`, `HCOMPL`, `HSYSADMIN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The break-glass grant (`brk_…`) the access was made under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<String>,
    /// Every patient a list or search page showed (pseudonyms, in page order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    /// HMAC of a search's terms under the tenant's index key, never the terms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_hmac: Option<String>,
}

impl Record {
    /// True when the record carries any field a v1 record lacks.
    pub fn is_v2(&self) -> bool {
        self.role.is_some()
            || self.purpose.is_some()
            || self.break_glass.is_some()
            || !self.subjects.is_empty()
            || self.query_hmac.is_some()
    }

    /// SHA-256 over a domain tag and every field, each length-prefixed so no
    /// two different records encode alike. A record without the staff fields
    /// hashes exactly as v1 did, so chains and exports written before them
    /// still verify; one with any of them hashes under the v2 tag, the v1
    /// fields first and the new ones after, the subjects counted.
    pub fn hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        let v2 = self.is_v2();
        h.update(if v2 { b"throughline-audit-record/v2\0" } else { b"throughline-audit-record/v1\0" });
        h.update(self.seq.to_be_bytes());
        h.update(self.at.to_be_bytes());
        field(&mut h, Some(self.actor_kind.as_str()));
        field(&mut h, Some(&self.actor));
        field(&mut h, self.channel.as_deref());
        field(&mut h, Some(&self.action));
        field(&mut h, self.tenant_id.as_deref());
        field(&mut h, self.customer_id.as_deref());
        field(&mut h, self.session_id.as_deref());
        field(&mut h, self.peer.as_deref());
        field(&mut h, Some(self.outcome.as_str()));
        field(&mut h, self.reason.as_deref());
        field(&mut h, Some(&self.prev_hash));
        if v2 {
            field(&mut h, self.role.as_deref());
            field(&mut h, self.purpose.as_deref());
            field(&mut h, self.break_glass.as_deref());
            h.update((self.subjects.len() as u64).to_be_bytes());
            for s in &self.subjects {
                field(&mut h, Some(s));
            }
            field(&mut h, self.query_hmac.as_deref());
        }
        h.finalize().into()
    }

    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash())
    }
}

fn field(h: &mut Sha256, value: Option<&str>) {
    match value {
        None => h.update([0u8]),
        Some(v) => {
            h.update([1u8]);
            h.update((v.len() as u64).to_be_bytes());
            h.update(v.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1() -> Record {
        Record {
            seq: 3,
            at: 1_795_000_000_000,
            actor_kind: ActorKind::Channel,
            actor: "4f6b".into(),
            channel: Some("chat".into()),
            action: "session.open".into(),
            tenant_id: Some("ten_1".into()),
            customer_id: Some("cus_1".into()),
            session_id: Some("ses_1".into()),
            peer: Some("127.0.0.1".into()),
            outcome: Outcome::Ok,
            reason: None,
            prev_hash: crate::GENESIS.into(),
            role: None,
            purpose: None,
            break_glass: None,
            subjects: Vec::new(),
            query_hmac: None,
        }
    }

    #[test]
    fn a_record_without_staff_fields_hashes_as_v1_did() {
        // Computed by the v1 code (before the staff fields existed) over the same record.
        assert_eq!(v1().hash_hex(), "a8188d6359b51108280e245dd81beb5ed8bd52e75e1410735dafbed97796ca33");
        let json = serde_json::to_string(&v1()).unwrap();
        assert!(!json.contains("subjects") && !json.contains("role"), "{json}");
    }

    #[test]
    fn every_staff_field_is_bound_by_the_hash() {
        let mut base = v1();
        base.actor_kind = ActorKind::Staff;
        base.role = Some("front_desk".into());
        let h = base.hash_hex();
        assert_ne!(h, v1().hash_hex());
        let variants: [fn(&mut Record); 5] = [
            |r| r.role = Some("clinician".into()),
            |r| r.purpose = Some("TREAT".into()),
            |r| r.break_glass = Some("brk_1".into()),
            |r| r.subjects = vec!["cus_2".into()],
            |r| r.query_hmac = Some("ab".into()),
        ];
        for change in variants {
            let mut r = base.clone();
            change(&mut r);
            assert_ne!(r.hash_hex(), h);
        }
        // Two subjects are not one subject with a comma.
        let mut a = base.clone();
        a.subjects = vec!["cus_1".into(), "cus_2".into()];
        let mut b = base.clone();
        b.subjects = vec!["cus_1,cus_2".into()];
        assert_ne!(a.hash_hex(), b.hash_hex());
        let back: Record = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back, a);
    }
}
