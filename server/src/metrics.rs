//! Prometheus metrics (`serve --metrics-listen ADDR`, the text format at
//! `GET /metrics`, prometheus-client). Counts, latencies, sizes and ages
//! only: every label value comes from a bounded set the code names (a route
//! pattern, a channel kind, a status, an error code, a reason), never a
//! tenant, a patient, a serial or anything a request carried.
//!
//! One registry per process: the metrics describe the process, and the
//! writers, the TLS verifier and the audit log record into it without
//! being handed a reference through every constructor.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `api` or `console`.
    pub server: &'static str,
    /// The route pattern (`/v1/sessions/{id}/turns`), `unmatched` otherwise.
    pub route: String,
    /// The caller's channel kind (`voice`, `chat`, `email`, …), `-` when none.
    pub channel: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatencyLabels {
    pub server: &'static str,
    pub route: String,
    pub channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    /// The stable error code of the refusal (`identity_confirmation_required`, …).
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

/// How a session ended (docs/OUTCOMES.md): its channel, the reason given,
/// and whether it counts as an interrupted call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndLabels {
    pub channel: &'static str,
    pub reason: &'static str,
    pub interrupted: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabels {
    /// `tenant` or `system`.
    pub trail: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CertLabels {
    /// `ca` or `server`.
    pub certificate: &'static str,
}

/// Why a console sign-in is refused (`console::session`).
pub const SIGN_IN_FAILURES: [&str; 6] =
    ["unknown_account", "source_locked", "disabled", "locked", "bad_password", "bad_code"];

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.25 ms to 4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Histograms<LatencyLabels>,
    pub refusals: Family<CodeLabels, Counter>,
    pub sign_in_failures: Family<ReasonLabels, Counter>,
    pub lockouts: Family<ReasonLabels, Counter>,
    pub session_ends: Family<EndLabels, Counter>,
    pub refused_certificates: Counter,
    pub group_jobs: Histogram,
    pub commit_seconds: Histogram,
    pub queued_jobs: Gauge,
    pub open_tenants: Gauge,
    pub store_memory_limit: Gauge,
    pub resident_memory: Gauge,
    pub audit_records: Family<TableLabels, Counter>,
    pub cert_expiry: Family<CertLabels, Gauge>,
    pub client_certs_expiring: Gauge,
    pub client_certs_live: Gauge,
    pub checkpoint_pass: Gauge,
    pub checkpoints_signed: Counter,
    pub backup_last: Gauge,
    pub backup_failures: Counter,
    pub backup_bytes: Gauge,
    pub start: Gauge,
    pub log_records: Counter,
    pub log_bytes: Counter,
    pub owned_tenants: Gauge,
    pub takeovers: Counter,
    pub fenced: Counter,
}

impl Metrics {
    fn new() -> Self {
        let mut r = Registry::with_prefix("throughline");
        let requests = Family::<RequestLabels, Counter>::default();
        r.register(
            "http_requests",
            "Requests answered, by server, route pattern, channel kind and status",
            requests.clone(),
        );
        let latency: Histograms<LatencyLabels> = Family::new_with_constructor(latency_histogram);
        r.register_with_unit(
            "http_request_duration",
            "Time from the request head to the response, by server, route pattern and channel kind",
            Unit::Seconds,
            latency.clone(),
        );
        let refusals = Family::<CodeLabels, Counter>::default();
        r.register(
            "api_refusals",
            "API requests refused (4xx) by error code: policy refusals, confirmation lockouts, bad input",
            refusals.clone(),
        );
        let sign_in_failures = Family::<ReasonLabels, Counter>::default();
        r.register("console_sign_in_failures", "Console sign-ins refused, by reason", sign_in_failures.clone());
        let lockouts = Family::<ReasonLabels, Counter>::default();
        r.register("lockouts", "Lockouts started, by reason", lockouts.clone());
        let session_ends = Family::<EndLabels, Counter>::default();
        r.register(
            "session_ends",
            "Sessions ended, by channel, reason, and whether the call was interrupted (dropped, or a task pending)",
            session_ends.clone(),
        );
        let refused_certificates = Counter::default();
        r.register(
            "tls_refused_client_certificates",
            "Client certificates refused at the TLS handshake",
            refused_certificates.clone(),
        );
        let group_jobs = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        r.register("group_commit_jobs", "Requests made durable by one group commit", group_jobs.clone());
        let commit_seconds = Histogram::new(exponential_buckets(0.000_1, 2.0, 15));
        r.register_with_unit(
            "group_commit_duration",
            "Time of one group's COMMIT (its fsync under synchronous=FULL)",
            Unit::Seconds,
            commit_seconds.clone(),
        );
        let queued_jobs = Gauge::default();
        r.register("writer_queued_jobs", "Requests waiting for a writer, all tenants", queued_jobs.clone());
        let open_tenants = Gauge::default();
        r.register("open_tenants", "Tenant stores open now", open_tenants.clone());
        let store_memory_limit = Gauge::default();
        r.register_with_unit(
            "store_memory_limit",
            "SQLite's memory limit for all tenants together (serve --store-memory-mib)",
            Unit::Bytes,
            store_memory_limit.clone(),
        );
        let resident_memory = Gauge::default();
        r.register_with_unit(
            "resident_memory",
            "The process's resident memory (SQLite's page caches are most of it)",
            Unit::Bytes,
            resident_memory.clone(),
        );
        let audit_records = Family::<TableLabels, Counter>::default();
        r.register("audit_records", "Audit records appended, by trail", audit_records.clone());
        let cert_expiry = Family::<CertLabels, Gauge>::default();
        r.register_with_unit(
            "certificate_expiry_timestamp",
            "When the CA's and the server's certificates expire, UNIX seconds",
            Unit::Seconds,
            cert_expiry.clone(),
        );
        let client_certs_expiring = Gauge::default();
        r.register(
            "channel_certificates_expiring_30d",
            "Channel certificates in force that expire within 30 days",
            client_certs_expiring.clone(),
        );
        let client_certs_live = Gauge::default();
        r.register("channel_certificates_in_force", "Channel certificates in force", client_certs_live.clone());
        let checkpoint_pass = Gauge::default();
        r.register_with_unit(
            "audit_checkpoint_pass_timestamp",
            "When the last checkpoint pass finished (every trail that grew signed), UNIX seconds",
            Unit::Seconds,
            checkpoint_pass.clone(),
        );
        let checkpoints_signed = Counter::default();
        r.register("audit_checkpoints_signed", "Audit checkpoints signed by the server", checkpoints_signed.clone());
        let backup_last = Gauge::default();
        r.register_with_unit(
            "backup_last_success_timestamp",
            "When the last scheduled backup finished, UNIX seconds (0: none yet)",
            Unit::Seconds,
            backup_last.clone(),
        );
        let backup_failures = Counter::default();
        r.register("backup_failures", "Scheduled backups that failed", backup_failures.clone());
        let backup_bytes = Gauge::default();
        r.register_with_unit(
            "backup_last_size",
            "Size of the last scheduled backup",
            Unit::Bytes,
            backup_bytes.clone(),
        );
        // The fixed reasons start at zero, so `increase()` sees the first one.
        for reason in SIGN_IN_FAILURES {
            let _ = sign_in_failures.get_or_create(&ReasonLabels { reason });
        }
        for reason in ["staff_account", "confirm_certificate_slowed", "oidc_conflict"] {
            let _ = lockouts.get_or_create(&ReasonLabels { reason });
        }
        let start = Gauge::default();
        r.register_with_unit(
            "start_timestamp",
            "When this process started, UNIX seconds",
            Unit::Seconds,
            start.clone(),
        );
        let log_records = Counter::default();
        r.register("cluster_log_records", "Commit records appended to the cluster's log", log_records.clone());
        let log_bytes = Counter::default();
        r.register_with_unit(
            "cluster_log",
            "Bytes of commit records appended to the cluster's log",
            Unit::Bytes,
            log_bytes.clone(),
        );
        let owned_tenants = Gauge::default();
        r.register("cluster_owned_tenants", "Tenants this node owns and serves now", owned_tenants.clone());
        let takeovers = Counter::default();
        r.register("cluster_takeovers", "Tenants this node took (failover, move or start)", takeovers.clone());
        let fenced = Counter::default();
        r.register("cluster_fenced", "Times this node found its hold on a tenant stale and gave it up", fenced.clone());
        Metrics {
            registry: r,
            requests,
            latency,
            refusals,
            sign_in_failures,
            lockouts,
            session_ends,
            refused_certificates,
            group_jobs,
            commit_seconds,
            queued_jobs,
            open_tenants,
            store_memory_limit,
            resident_memory,
            audit_records,
            cert_expiry,
            client_certs_expiring,
            client_certs_live,
            checkpoint_pass,
            checkpoints_signed,
            backup_last,
            backup_failures,
            backup_bytes,
            start,
            log_records,
            log_bytes,
            owned_tenants,
            takeovers,
            fenced,
        }
    }

    /// The text exposition (OpenMetrics 1.0, which Prometheus reads).
    pub fn encode(&self) -> String {
        self.resident_memory.set(resident_bytes().unwrap_or(0));
        for (trail, n) in store::audit_appended() {
            let counter = self.audit_records.get_or_create(&TableLabels { trail });
            counter.inc_by(n.saturating_sub(counter.get()));
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// One request answered.
    pub fn request(&self, server: &'static str, route: String, channel: String, status: u16, seconds: f64) {
        self.latency
            .get_or_create(&LatencyLabels { server, route: route.clone(), channel: channel.clone() })
            .observe(seconds);
        self.requests.get_or_create(&RequestLabels { server, route, channel, status }).inc();
    }
}

/// The process's metrics.
pub fn get() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// `VmRSS` from `/proc/self/status`, in bytes (Linux).
fn resident_bytes() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_family_and_carries_only_bounded_labels() {
        let m = Metrics::new();
        m.request("api", "/v1/sessions".into(), "voice".into(), 200, 0.002);
        m.refusals.get_or_create(&CodeLabels { code: "identity_locked" }).inc();
        m.group_jobs.observe(12.0);
        let text = m.encode();
        assert!(text.contains(
            "throughline_http_requests_total{server=\"api\",route=\"/v1/sessions\",channel=\"voice\",status=\"200\"} 1"
        ));
        assert!(text.contains("throughline_api_refusals_total{code=\"identity_locked\"} 1"));
        assert!(text.contains("throughline_group_commit_jobs_count 1"));
        assert!(text.contains("# TYPE throughline_backup_last_success_timestamp_seconds gauge"));
        assert!(text.ends_with("# EOF\n"));
    }
}
