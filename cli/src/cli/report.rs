//! `throughline report outcomes`: the seed's outcomes for one clinic and
//! period (docs/OUTCOMES.md), as a table, CSV or JSON. PHI-free.

use std::path::Path;

use anyhow::Context as _;
use clap::Subcommand;
use continuity::calendar::ClinicZone;
use continuity::outcomes::{OutcomeReport, Period, Ratio};
use serde_json::json;

use super::passphrase::Source;

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Interrupted calls, recovery (1, 24, 72 h, by channel), abandonment,
    /// booking conversion (and after an interruption), first-contact
    /// resolution, time to recovery, callback yield, the holdout's lift.
    Outcomes {
        #[arg(long)]
        tenant: String,
        /// First day, in the clinic's time zone (YYYY-MM-DD).
        #[arg(long)]
        from: String,
        /// Last day, included (YYYY-MM-DD).
        #[arg(long)]
        to: String,
        /// table, csv or json.
        #[arg(long, default_value = "table")]
        format: String,
        /// Calls shorter than this many seconds are left out (pocket dials).
        #[arg(long, default_value_t = 10)]
        short_secs: u64,
    },
}

pub fn run(data_dir: &Path, source: &Source, cmd: ReportCommand) -> anyhow::Result<()> {
    let ReportCommand::Outcomes { tenant, from, to, format, short_secs } = cmd;
    anyhow::ensure!(matches!(format.as_str(), "table" | "csv" | "json"), "--format must be table, csv or json");
    let inst = super::open(data_dir, source)?;
    let zone = ClinicZone::parse(&inst.tenant(&tenant)?.time_zone)?;
    let start =
        zone.start_of_day(&from).with_context(|| format!("--from {from:?}: expected a date such as 2026-11-01"))?;
    let end = zone.end_of_day(&to).with_context(|| format!("--to {to:?}: expected a date such as 2026-11-30"))?;
    anyhow::ensure!(start < end, "--from must not be after --to");
    let short_ms = i64::try_from(short_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let r = inst.outcomes(&tenant, Period { from: start, to: end }, short_ms)?;
    let rows = rows(&r);
    match format.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&as_json(&tenant, &from, &to, zone.name(), &r, &rows))?),
        "csv" => {
            println!("metric,count,of,value");
            for (name, v) in &rows {
                match v {
                    Figure::Ratio(x) => {
                        println!("{name},{},{},{}", x.count, x.of, x.value().map(fmt4).unwrap_or_default())
                    }
                    Figure::Number(n) => println!("{name},,,{}", n.map(fmt4).unwrap_or_default()),
                }
            }
        }
        _ => {
            println!(
                "outcomes of {tenant}, {from} to {to} ({}); calls shorter than {short_secs} s left out: {}",
                zone.name(),
                r.short_excluded
            );
            for (name, v) in &rows {
                match v {
                    Figure::Ratio(x) => println!(
                        "{name:<40} {:>6} of {:<6} {}",
                        x.count,
                        x.of,
                        x.value().map(|p| format!("{:.1}%", p * 100.0)).unwrap_or_else(|| "-".into())
                    ),
                    Figure::Number(n) => {
                        println!("{name:<40} {}", n.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into()))
                    }
                }
            }
            match &r.holdout {
                Some(h) => println!(
                    "holdout: recovery within 24 h {:.1}% with the link, {:.1}% without: difference {:+.1} points \
                     (95% CI {:+.1} to {:+.1}), z = {:.2}, p = {:.4}",
                    h.sent.value().unwrap_or(0.0) * 100.0,
                    h.held_out.value().unwrap_or(0.0) * 100.0,
                    h.difference * 100.0,
                    h.ci95.0 * 100.0,
                    h.ci95.1 * 100.0,
                    h.z,
                    h.p_value
                ),
                None => println!("holdout: none in this period"),
            }
        }
    }
    Ok(())
}

enum Figure {
    Ratio(Ratio),
    Number(Option<f64>),
}

fn fmt4(v: f64) -> String {
    format!("{v:.4}")
}

/// The report's figures in print order, with their stable names.
fn rows(r: &OutcomeReport) -> Vec<(String, Figure)> {
    let mut out = vec![
        ("voice_calls".to_owned(), Figure::Number(Some(r.voice_sessions as f64))),
        ("interrupted".to_owned(), Figure::Ratio(r.interrupted)),
    ];
    let mut windows: Vec<_> = r.recovery.iter().collect();
    windows.sort_by_key(|w| w.hours);
    for w in windows {
        out.push((format!("recovered_within_{}h", w.hours), Figure::Ratio(w.recovered)));
        for (channel, n) in &w.by_channel {
            out.push((
                format!("recovered_within_{}h_by_{}", w.hours, channel.as_str()),
                Figure::Ratio(Ratio { count: *n, of: w.recovered.of }),
            ));
        }
    }
    out.extend([
        ("abandoned_24h".to_owned(), Figure::Ratio(r.abandonment)),
        ("median_minutes_to_recovery".to_owned(), Figure::Number(r.median_minutes_to_recovery)),
        ("booking_conversion".to_owned(), Figure::Ratio(r.booking_conversion)),
        ("conversion_after_interruption".to_owned(), Figure::Ratio(r.conversion_after_interruption)),
        ("first_contact_resolution_7d".to_owned(), Figure::Ratio(r.first_contact_resolution)),
        ("callback_yield".to_owned(), Figure::Ratio(r.callback_yield)),
    ]);
    out
}

fn as_json(
    tenant: &str,
    from: &str,
    to: &str,
    zone: &str,
    r: &OutcomeReport,
    rows: &[(String, Figure)],
) -> serde_json::Value {
    let mut figures = serde_json::Map::new();
    for (name, v) in rows {
        figures.insert(
            name.clone(),
            match v {
                Figure::Ratio(x) => json!({"count": x.count, "of": x.of, "value": x.value()}),
                Figure::Number(n) => json!(n),
            },
        );
    }
    let holdout = r.holdout.as_ref().map(|h| {
        json!({
            "sent": {"recovered": h.sent.count, "of": h.sent.of},
            "held_out": {"recovered": h.held_out.count, "of": h.held_out.of},
            "difference": h.difference, "z": h.z, "p_value": h.p_value, "ci95": [h.ci95.0, h.ci95.1],
        })
    });
    json!({
        "tenant": tenant, "from": from, "to": to, "time_zone": zone,
        "short_calls_excluded": r.short_excluded, "figures": figures, "holdout": holdout,
    })
}
