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
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Channel => "channel",
            ActorKind::Operator => "operator",
            ActorKind::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [ActorKind::Channel, ActorKind::Operator, ActorKind::System].into_iter().find(|k| k.as_str() == s)
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
}

impl Record {
    /// SHA-256 over a domain tag and every field, each length-prefixed so no
    /// two different records encode alike.
    pub fn hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"throughline-audit-record/v1\0");
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
