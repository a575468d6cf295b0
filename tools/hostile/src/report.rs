//! The report: a Markdown table, then one line of raw numbers per attack.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::bystander::BystanderReport;
use crate::conn::Conn;
use crate::{Attack, Outcome, Target};

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// The value at percentile `p` of sorted `values` (nearest rank).
pub fn percentile<T: Copy>(values: &[T], p: f64) -> Option<T> {
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values.get(rank.clamp(1, values.len().max(1)) - 1).copied()
}

pub struct Disconnects {
    pub established: usize,
    pub failed: usize,
    pub first_failure: Option<String>,
    pub closed: Vec<Duration>,
    pub how: BTreeMap<&'static str, usize>,
}

pub fn disconnects(conns: &[Arc<Conn>]) -> Disconnects {
    let mut closed: Vec<Duration> = conns
        .iter()
        .filter_map(|c| c.closed.get())
        .map(|c| c.0)
        .collect();
    closed.sort();
    let mut how = BTreeMap::new();
    for (_, reason) in conns.iter().filter_map(|c| c.closed.get()) {
        *how.entry(*reason).or_insert(0) += 1;
    }
    let failed = conns.iter().filter(|c| c.failed.get().is_some()).count();
    Disconnects {
        established: conns.len() - failed,
        failed,
        first_failure: conns.iter().find_map(|c| c.failed.get().cloned()),
        closed,
        how,
    }
}

impl Disconnects {
    pub fn cell(&self) -> String {
        let (Some(median), Some(max)) = (percentile(&self.closed, 50.0), self.closed.last()) else {
            return format!("held (0/{})", self.established);
        };
        let held = if self.closed.len() < self.established {
            "; rest held"
        } else {
            ""
        };
        format!(
            "{:.1} s / {:.1} s ({}/{}{held})",
            median.as_secs_f64(),
            max.as_secs_f64(),
            self.closed.len(),
            self.established
        )
    }

    pub fn summary(&self) -> String {
        let mut out = format!("{} established", self.established);
        if self.failed > 0 {
            let why = self.first_failure.as_deref().unwrap_or_default();
            out += &format!(", {} failed to open (first: {why})", self.failed);
        }
        out += &format!(", disconnected {}", self.cell());
        if !self.how.is_empty() {
            let how: Vec<String> = self
                .how
                .iter()
                .map(|(how, n)| format!("{n} {how}"))
                .collect();
            out += &format!(" [{}]", how.join(", "));
        }
        out
    }
}

pub struct Row {
    pub attack: Attack,
    pub target: Target,
    pub baseline: u64,
    pub peak: u64,
    pub hwm: u64,
    pub end: u64,
    pub outcome: Outcome,
    pub bystander: BystanderReport,
    pub stderr_bytes: u64,
    pub stderr_lines: u64,
    /// Written while the attack's connections were dropped and in the second after.
    pub stderr_teardown: u64,
    pub stderr_sample: Vec<(u64, String)>,
    /// The number of the first stderr line written after the attack ended.
    pub stderr_end_line: u64,
    pub died: Option<String>,
    pub duration: Duration,
}

impl Row {
    pub fn table_line(&self) -> String {
        let mut target = self.target.name().to_owned();
        if let Some(status) = &self.died {
            target += &format!(" **DIED** ({status})");
        }
        let mut peak = format!("+{:.1} MiB", mib(self.peak.saturating_sub(self.baseline)));
        if let Some(per) = &self.outcome.per_unit {
            peak += &format!(" ({per})");
        }
        let d = disconnects(&self.outcome.conns);
        let disconnect = if self.outcome.no_disconnect {
            format!("n/a ({} closed)", d.closed.len())
        } else {
            d.cell()
        };
        let mut rtts = self.bystander.rtts.clone();
        rtts.sort();
        let latency = match (percentile(&rtts, 50.0), percentile(&rtts, 99.0)) {
            (Some(p50), Some(p99)) => format!("{} / {} ms", ms(p50), ms(p99)),
            _ => "–".to_owned(),
        };
        let b = &self.bystander;
        let mut failures = format!("{} of {}", b.failures(), b.attempts());
        if b.timeouts > 0 {
            failures += &format!(" ({} timed out)", b.timeouts);
        }
        format!(
            "| {} | {target} | {peak} | {disconnect} | {latency} | {failures} | {} |",
            self.attack.name(),
            self.stderr_bytes
        )
    }

    pub fn raw_line(&self) -> String {
        let mut rtts = self.bystander.rtts.clone();
        rtts.sort();
        let b = &self.bystander;
        let mut out = format!(
            "- {} vs {} ({:.1} s): RSS baseline {:.1} MiB, sampled peak {:.1} MiB, HWM {:.1} MiB, \
             1 s after the attackers left {:.1} MiB",
            self.attack.name(),
            self.target.name(),
            self.duration.as_secs_f64(),
            mib(self.baseline),
            mib(self.peak),
            mib(self.hwm),
            mib(self.end)
        );
        for note in &self.outcome.notes {
            out += &format!("; {note}");
        }
        // Attacks of two groups give each group's summary in their notes.
        if !self.outcome.no_disconnect && !matches!(self.attack, Attack::Silent | Attack::Trickle) {
            out += &format!("; {}", disconnects(&self.outcome.conns).summary());
        }
        out += &format!(
            "; bystander {} ok, p50 {} ms, p99 {} ms, max {} ms, {} timed out, {} errors",
            rtts.len(),
            percentile(&rtts, 50.0).map_or("–".into(), ms),
            percentile(&rtts, 99.0).map_or("–".into(), ms),
            rtts.last().map_or("–".into(), |d| ms(*d)),
            b.timeouts,
            b.errors
        );
        if let Some(error) = &b.first_error {
            out += &format!(" (first: {error})");
        }
        out += &format!(
            "; stderr during the attack {} B in {} lines, at teardown {} B more",
            self.stderr_bytes, self.stderr_lines, self.stderr_teardown
        );
        if let Some((number, first)) = self.stderr_sample.first() {
            let when = if *number < self.stderr_end_line {
                "during the attack"
            } else {
                "at teardown"
            };
            let first: String = first.chars().take(160).collect();
            out += &format!(" (first line {when}: {first:?})");
        }
        if let Some(status) = &self.died {
            out += &format!("; SERVER DIED: {status}");
        }
        out
    }
}

pub fn print_report(rows: &[Row]) {
    if rows.is_empty() {
        return;
    }
    println!();
    println!(
        "| attack | target | peak RSS growth | disconnect (median/max) | bystander p50 / p99 | \
         bystander failures | server stderr bytes |"
    );
    println!("|---|---|---|---|---|---|---|");
    for row in rows {
        println!("{}", row.table_line());
    }
    println!();
    for row in rows {
        println!("{}", row.raw_line());
    }
}
