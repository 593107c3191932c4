//! Counting scenario runs and turning the counts into the report: per
//! scenario and in total, runs, rate, latency percentiles, bytes, and errors
//! by kind. Every latency is kept (a few bytes a run), so percentiles are
//! exact; each worker records alone and the records merge at the end.

use std::{collections::BTreeMap, fmt::Write as _, time::Duration};

use serde::Serialize;

use crate::{config::Scenario, error::RunError, http::Traffic};

/// What happened to the runs of one scenario.
#[derive(Debug, Clone, Default)]
pub struct ScenarioRecord {
    /// Microseconds of each successful run.
    latencies_us: Vec<u64>,
    errors: BTreeMap<String, u64>,
    /// The first message of each error kind.
    examples: BTreeMap<String, String>,
    traffic: Traffic,
}

impl ScenarioRecord {
    fn merge(&mut self, other: ScenarioRecord) {
        self.latencies_us.extend(other.latencies_us);
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
        for (kind, example) in other.examples {
            self.examples.entry(kind).or_insert(example);
        }
        self.traffic.requests += other.traffic.requests;
        self.traffic.received += other.traffic.received;
        self.traffic.sent += other.traffic.sent;
    }

    fn add_error(&mut self, error: &RunError) {
        let label = error.kind.label();
        self.examples
            .entry(label.clone())
            .or_insert_with(|| error.message.clone());
        *self.errors.entry(label).or_default() += 1;
    }
}

/// Records of every scenario.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    scenarios: BTreeMap<Scenario, ScenarioRecord>,
}

impl Recorder {
    /// One finished run.
    pub fn record(
        &mut self,
        scenario: Scenario,
        took: Duration,
        traffic: Traffic,
        outcome: Result<(), &RunError>,
    ) {
        let record = self.scenarios.entry(scenario).or_default();
        record.traffic.requests += traffic.requests;
        record.traffic.received += traffic.received;
        record.traffic.sent += traffic.sent;
        match outcome {
            Ok(()) => record
                .latencies_us
                .push(u64::try_from(took.as_micros()).unwrap_or(u64::MAX)),
            Err(error) => record.add_error(error),
        }
    }

    /// An error found after the runs (a pushed ref missing afterwards): it
    /// counts against the scenario without being a run of its own.
    pub fn record_late_error(&mut self, scenario: Scenario, error: &RunError) {
        self.scenarios.entry(scenario).or_default().add_error(error);
    }

    pub fn merge(&mut self, other: Recorder) {
        for (scenario, record) in other.scenarios {
            self.scenarios.entry(scenario).or_default().merge(record);
        }
    }

    /// The report of the records, over `elapsed`.
    pub fn report(&self, elapsed: Duration) -> (Vec<ScenarioReport>, ScenarioReport) {
        let mut total = ScenarioRecord::default();
        let mut scenarios = Vec::new();
        for (scenario, record) in &self.scenarios {
            scenarios.push(ScenarioReport::of(scenario.name(), record.clone(), elapsed));
            total.merge(record.clone());
        }
        (scenarios, ScenarioReport::of("total", total, elapsed))
    }
}

/// Latency figures of the successful runs, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The value at or below which `pct` percent of `sorted` lie (nearest rank:
/// the smallest value with at least that share of the values at or below it).
pub fn percentile(sorted: &[u64], pct: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Latency {
    pub fn of(latencies_us: &mut [u64]) -> Latency {
        if latencies_us.is_empty() {
            return Latency::default();
        }
        latencies_us.sort_unstable();
        let ms = |us: u64| us as f64 / 1000.0;
        let sum: u128 = latencies_us.iter().map(|&us| u128::from(us)).sum();
        Latency {
            mean_ms: sum as f64 / latencies_us.len() as f64 / 1000.0,
            p50_ms: ms(percentile(latencies_us, 50.0)),
            p95_ms: ms(percentile(latencies_us, 95.0)),
            p99_ms: ms(percentile(latencies_us, 99.0)),
            max_ms: ms(latencies_us[latencies_us.len() - 1]),
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScenarioReport {
    pub scenario: String,
    /// Runs finished, successful or not.
    pub runs: u64,
    pub ok: u64,
    pub errors: u64,
    /// Successful runs a second over the whole run.
    pub runs_per_sec: f64,
    pub latency: Latency,
    pub http_requests: u64,
    /// Response body bytes.
    pub bytes_received: u64,
    /// Request body bytes.
    pub bytes_sent: u64,
    /// Errors by kind.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// The first message of each error kind.
    pub error_examples: BTreeMap<String, String>,
}

impl ScenarioReport {
    fn of(name: &str, mut record: ScenarioRecord, elapsed: Duration) -> ScenarioReport {
        let ok = record.latencies_us.len() as u64;
        let errors: u64 = record.errors.values().sum();
        let secs = elapsed.as_secs_f64();
        ScenarioReport {
            scenario: name.to_string(),
            runs: ok + errors,
            ok,
            errors,
            runs_per_sec: if secs > 0.0 { ok as f64 / secs } else { 0.0 },
            latency: Latency::of(&mut record.latencies_us),
            http_requests: record.traffic.requests,
            bytes_received: record.traffic.received,
            bytes_sent: record.traffic.sent,
            errors_by_kind: record.errors,
            error_examples: record.examples,
        }
    }
}

/// The outcome of a load run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub url: String,
    pub concurrency: usize,
    /// The scenarios asked for, with their weights, in the order given.
    pub mix: Vec<MixEntry>,
    pub verify: String,
    /// Seconds from the first run's start to the last run's end.
    pub elapsed_secs: f64,
    pub scenarios: Vec<ScenarioReport>,
    pub total: ScenarioReport,
    /// Branches the pushes created, with their commits (deleted again with `--cleanup`).
    pub pushed_refs: Vec<PushedRef>,
    pub cleaned_up: bool,
}

/// One scenario of the mix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MixEntry {
    pub scenario: String,
    pub weight: u32,
}

/// A branch a push created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushedRef {
    pub name: String,
    pub commit: String,
}

impl Report {
    /// Errors over all scenarios.
    pub fn errors(&self) -> u64 {
        self.total.errors
    }

    pub fn scenario(&self, name: &str) -> Option<&ScenarioReport> {
        self.scenarios.iter().find(|s| s.scenario == name)
    }

    /// The report as a table, with the errors below it.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mix: Vec<String> = self
            .mix
            .iter()
            .map(|m| format!("{}={}", m.scenario, m.weight))
            .collect();
        let _ = writeln!(
            out,
            "{} — concurrency {}, mix {}, {:.1} s, verify {}",
            self.url,
            self.concurrency,
            mix.join(","),
            self.elapsed_secs,
            self.verify
        );
        let _ = writeln!(
            out,
            "{:<12} {:>7} {:>6} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9} {:>8}",
            "scenario",
            "runs",
            "errors",
            "runs/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "MB recv",
            "MB sent",
            "http req"
        );
        for line in self.scenarios.iter().chain(std::iter::once(&self.total)) {
            let _ = writeln!(
                out,
                "{:<12} {:>7} {:>6} {:>8.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>10.2} {:>9.2} {:>8}",
                line.scenario,
                line.runs,
                line.errors,
                line.runs_per_sec,
                line.latency.p50_ms,
                line.latency.p95_ms,
                line.latency.p99_ms,
                line.latency.max_ms,
                line.bytes_received as f64 / 1e6,
                line.bytes_sent as f64 / 1e6,
                line.http_requests
            );
        }
        for line in &self.scenarios {
            for (kind, n) in &line.errors_by_kind {
                let example = line.error_examples.get(kind).map_or("", String::as_str);
                let _ = writeln!(
                    out,
                    "error: {} {n} × {kind} (first: {example})",
                    line.scenario
                );
            }
        }
        if !self.pushed_refs.is_empty() {
            let _ = writeln!(
                out,
                "pushed {} branches{}",
                self.pushed_refs.len(),
                if self.cleaned_up {
                    ", deleted again"
                } else {
                    ""
                }
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50.0), 50);
        assert_eq!(percentile(&values, 95.0), 95);
        assert_eq!(percentile(&values, 99.0), 99);
        assert_eq!(percentile(&values, 100.0), 100);
        assert_eq!(percentile(&values, 0.0), 1);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
        // Ten values: p95 and p99 are the largest, p50 the fifth.
        let ten: Vec<u64> = (1..=10).map(|v| v * 10).collect();
        assert_eq!(percentile(&ten, 50.0), 50);
        assert_eq!(percentile(&ten, 95.0), 100);
        assert_eq!(percentile(&ten, 90.0), 90);
    }

    #[test]
    fn latency_is_computed_from_unsorted_runs() {
        let mut us = vec![3000, 1000, 2000, 4000];
        let latency = Latency::of(&mut us);
        assert_eq!(latency.p50_ms, 2.0);
        assert_eq!(latency.max_ms, 4.0);
        assert_eq!(latency.mean_ms, 2.5);
        assert_eq!(Latency::of(&mut []), Latency::default());
    }

    #[test]
    fn records_merge_into_scenario_and_total_lines() {
        let traffic = Traffic {
            requests: 3,
            received: 1000,
            sent: 100,
        };
        let mut a = Recorder::default();
        a.record(Scenario::Full, Duration::from_millis(10), traffic, Ok(()));
        let refused = RunError::new(ErrorKind::HttpStatus(503), "busy");
        a.record(
            Scenario::Full,
            Duration::from_millis(1),
            traffic,
            Err(&refused),
        );
        let mut b = Recorder::default();
        b.record(Scenario::LsRefs, Duration::from_millis(2), traffic, Ok(()));
        b.record(Scenario::Full, Duration::from_millis(30), traffic, Ok(()));
        let other = RunError::new(ErrorKind::HttpStatus(503), "busy again");
        b.record(
            Scenario::Full,
            Duration::from_millis(1),
            traffic,
            Err(&other),
        );
        a.merge(b);
        let (lines, total) = a.report(Duration::from_secs(2));
        assert_eq!(lines.len(), 2);
        let full = lines.iter().find(|l| l.scenario == "full").unwrap();
        assert_eq!((full.runs, full.ok, full.errors), (4, 2, 2));
        assert_eq!(full.runs_per_sec, 1.0);
        assert_eq!(full.latency.max_ms, 30.0);
        assert_eq!(full.http_requests, 12);
        assert_eq!(full.errors_by_kind.get("http 503"), Some(&2));
        assert_eq!(
            full.error_examples.get("http 503").map(String::as_str),
            Some("busy")
        );
        assert_eq!((total.runs, total.ok, total.errors), (5, 3, 2));
        assert_eq!(total.bytes_received, 5000);
        assert_eq!(total.latency.p50_ms, 10.0);
    }
}
