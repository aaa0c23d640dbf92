//! Throughline's service: the data directory, the encrypted stores, and (as
//! later layers land) the HTTP API, mTLS, continuity and channels.
//!
//! Only this crate knows SQL, files, sockets, JSON wire shapes and the clock.
//! `crypto`, `policy` and `audit` are pure libraries it drives.
#![forbid(unsafe_code)]
// The OpenAPI document is one `serde_json::json!` literal; it nests deeper than the default limit.
#![recursion_limit = "512"]

pub mod api;
pub mod audit_ops;
pub mod backup;
pub mod backup_schedule;
pub mod bench;
pub mod ca_rotation;
pub mod calendar;
pub mod channels;
pub mod clock;
pub mod console;
pub mod continuity;
pub mod datadir;
pub mod doctor;
pub mod doctor_live;
pub mod erasure;
mod error;
pub mod group_commit;
pub mod ha;
pub mod ids;
pub mod installation;
pub mod metrics;
pub mod metrics_http;
pub mod patient_export;
pub mod rotation;
pub mod serve;
pub mod serve_config;
pub mod staff;
pub mod store;
pub mod tenant_rotation;
pub mod tenants;
pub mod tls;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::Error;
pub use installation::{Installation, TenantInfo};
