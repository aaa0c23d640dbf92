//! The load driver of `bench --http`: concurrent clients on one tokio
//! runtime, each looping over a workload's steps until the run ends; every
//! request timed into an HDR histogram per kind (microseconds, three
//! significant digits), recorded only after the warm-up and before the end;
//! the measured process's CPU read at both edges. Figures only.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// One kind of request a workload sends (a column of the breakdown).
pub const KINDS: [&str; 4] = ["open", "confirm", "turn", "state put"];

/// A workload: one step is one call (a few requests), drawing what it sends from `rng`.
pub trait Workload: Send + Sync + 'static {
    fn step(&self, rng: &mut Rng, rec: &mut Recorder) -> impl Future<Output = ()> + Send;
}

/// xorshift64*: cheap, reproducible draws of tenants and patients.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// A client's tally: latencies per kind, successes, errors and the first error seen.
pub struct Recorder {
    from: Instant,
    until: Instant,
    hist: Vec<Histogram<u64>>,
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Recorder {
    fn new(from: Instant, until: Instant) -> anyhow::Result<Self> {
        let hist = (0..KINDS.len()).map(|_| Histogram::new_with_bounds(1, 60_000_000, 3)).collect::<Result<_, _>>()?;
        Ok(Recorder { from, until, hist, ok: 0, errors: 0, first_error: None })
    }

    /// Times one request of `kind`; it counts when it started after the
    /// warm-up and ended before the run did.
    pub async fn timed<T>(&mut self, kind: usize, request: impl Future<Output = Result<T, String>>) -> Option<T> {
        let started = Instant::now();
        let out = request.await;
        let ended = Instant::now();
        let counted = started >= self.from && ended <= self.until;
        match out {
            Ok(v) => {
                if counted {
                    self.ok += 1;
                    let us = ended.duration_since(started).as_micros().max(1) as u64;
                    if let Some(h) = self.hist.get_mut(kind) {
                        h.saturating_record(us);
                    }
                }
                Some(v)
            }
            Err(e) => {
                if counted {
                    self.errors += 1;
                }
                self.first_error.get_or_insert(e);
                None
            }
        }
    }

    pub fn finished(&self) -> bool {
        Instant::now() >= self.until
    }

    fn merge(&mut self, other: &Recorder) -> anyhow::Result<()> {
        for (a, b) in self.hist.iter_mut().zip(&other.hist) {
            a.add(b)?;
        }
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
        Ok(())
    }
}

/// What one run measured.
pub struct Outcome {
    pub seconds: f64,
    pub all: Histogram<u64>,
    pub per_kind: Vec<Histogram<u64>>,
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// CPU seconds of the measured process(es) inside the window.
    pub cpu: f64,
    /// CPU seconds of the load driver (this process) inside the window.
    pub driver_cpu: f64,
}

impl Outcome {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.seconds
    }

    /// Milliseconds at quantile `q` of all requests.
    pub fn ms(&self, q: f64) -> f64 {
        self.all.value_at_quantile(q) as f64 / 1e3
    }

    /// The measured process's CPU per request, in milliseconds.
    pub fn cpu_ms_per_request(&self) -> f64 {
        self.cpu * 1e3 / self.ok.max(1) as f64
    }

    /// The run as a row of the figures table.
    pub fn row(&self, name: &str, tenants: u64, clients: usize) -> String {
        if let Some(e) = &self.first_error {
            eprintln!("   {name} at {tenants} tenants: {} errors, the first: {e}", self.errors);
        }
        format!(
            "| {name} | {tenants} | {clients} | {:.0} | {:.2} | {:.2} | {:.2} | {:.3} | {:.2} | {:.3} | {} |",
            self.per_second(),
            self.ms(0.5),
            self.ms(0.99),
            self.ms(0.999),
            self.cpu_ms_per_request(),
            self.cpu / self.seconds,
            self.driver_ms_per_request(),
            self.errors
        )
    }

    /// The driver's CPU per request, in milliseconds.
    pub fn driver_ms_per_request(&self) -> f64 {
        self.driver_cpu * 1e3 / self.ok.max(1) as f64
    }
}

/// Runs `clients` copies of the workload for `warmup + duration`; `cpu`
/// reads the measured process's CPU seconds, and the driver's own.
pub fn drive<W: Workload>(
    runtime: &tokio::runtime::Runtime,
    workload: Arc<W>,
    clients: usize,
    warmup: Duration,
    duration: Duration,
    cpu: impl Fn() -> (f64, f64) + Send + 'static,
) -> anyhow::Result<Outcome> {
    runtime.block_on(async move {
        let from = Instant::now() + warmup;
        let until = from + duration;
        let mut tasks = Vec::new();
        for c in 0..clients {
            let (workload, mut rec) = (workload.clone(), Recorder::new(from, until)?);
            tasks.push(tokio::spawn(async move {
                let mut rng = Rng::new(c as u64 + 1);
                while !rec.finished() {
                    workload.step(&mut rng, &mut rec).await;
                }
                rec
            }));
        }
        tokio::time::sleep_until(from.into()).await;
        let cpu0 = cpu();
        tokio::time::sleep_until(until.into()).await;
        let cpu1 = cpu();
        let mut total = Recorder::new(from, until)?;
        for t in tasks {
            total.merge(&t.await?)?;
        }
        let mut all = Histogram::new_with_bounds(1, 60_000_000, 3)?;
        for h in &total.hist {
            all.add(h)?;
        }
        Ok(Outcome {
            seconds: duration.as_secs_f64(),
            all,
            per_kind: total.hist,
            ok: total.ok,
            errors: total.errors,
            first_error: total.first_error,
            cpu: cpu1.0 - cpu0.0,
            driver_cpu: cpu1.1 - cpu0.1,
        })
    })
}
