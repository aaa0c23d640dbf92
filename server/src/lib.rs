//! Throughline's service and its edges: the running state, the HTTP API and
//! its wire contract, mTLS, the console's shell, tenants and group commit,
//! cluster mode, metrics, delivery of mail, and the operator's jobs (backup,
//! rotation, erasure). It drives `continuity` (the domain) and `store` (the
//! SQL); it never parses a command line and never links the bridge.
#![forbid(unsafe_code)]
// The OpenAPI document is one `serde_json::json!` literal; it nests deeper than the default limit.
#![recursion_limit = "512"]

pub mod api;
pub mod app;
pub mod audit_ops;
pub mod backup;
pub mod backup_schedule;
pub mod clock;
pub mod console;
pub mod doctor;
pub mod doctor_live;
pub mod erasure;
mod error;
pub mod group_commit;
pub mod ha;
pub mod installation;
pub mod metrics;
pub mod metrics_http;
pub mod serve;
pub mod serve_config;
pub mod smtp;
pub mod staff;
pub mod tenants;
pub mod throttle;
pub mod tls;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::Error;
pub use installation::{Installation, TenantInfo, ca_rotation, rotation, tenant_rotation};
