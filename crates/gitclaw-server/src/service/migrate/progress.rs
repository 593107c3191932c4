//! What a migration shows while it runs: on a terminal, a bar with objects done
//! of the total, bytes, rate and ETA; otherwise (a log collector, a CI job) a
//! log line every few seconds with the same figures.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

/// How often the figures are logged when there is no terminal.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Progress over a run: one repository after another.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    inner: Mutex<Figures>,
}

struct Figures {
    repo: String,
    total: u64,
    done: u64,
    /// Rows done before this run started on the repository.
    resumed_at: u64,
    bytes: u64,
    started: Instant,
    last_log: Instant,
}

impl Progress {
    /// A bar when stderr is a terminal and `quiet` is false, else log lines.
    pub fn new(quiet: bool) -> Progress {
        let bar = (!quiet && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} objects, {msg}, {per_sec}, ETA {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        Progress {
            bar,
            inner: Mutex::new(Figures {
                repo: String::new(),
                total: 0,
                done: 0,
                resumed_at: 0,
                bytes: 0,
                started: Instant::now(),
                last_log: Instant::now(),
            }),
        }
    }

    /// A repository starts: `total` legacy rows, `done` of them already copied.
    pub fn start_repo(&self, repo: &str, total: u64, done: u64) {
        let mut figures = self.lock();
        *figures = Figures {
            repo: repo.to_string(),
            total,
            done,
            resumed_at: done,
            bytes: 0,
            started: Instant::now(),
            last_log: Instant::now(),
        };
        if let Some(bar) = &self.bar {
            bar.reset();
            bar.set_prefix(repo.to_string());
            bar.set_length(total);
            bar.set_position(done);
            bar.set_message("0 B");
        }
    }

    /// A batch finished: `rows` more rows dealt with, `bytes` copied.
    pub fn advance(&self, rows: u64, bytes: u64) {
        let mut figures = self.lock();
        figures.done += rows;
        figures.bytes += bytes;
        if let Some(bar) = &self.bar {
            bar.set_position(figures.done);
            bar.set_message(human_bytes(figures.bytes));
        } else if figures.last_log.elapsed() >= LOG_EVERY {
            figures.last_log = Instant::now();
            let elapsed = figures.started.elapsed().as_secs_f64().max(0.001);
            let rate = figures.bytes as f64 / elapsed;
            let left = figures.total.saturating_sub(figures.done);
            let objects_per_sec = rows_per_sec(&figures);
            let eta = if objects_per_sec > 0.0 {
                format!("{:.0}s", left as f64 / objects_per_sec)
            } else {
                "unknown".into()
            };
            tracing::info!(
                repo = %figures.repo,
                done = figures.done,
                total = figures.total,
                bytes = %human_bytes(figures.bytes),
                rate = %format!("{:.0} objects/s, {}/s", objects_per_sec, human_bytes(rate as u64)),
                eta = %eta,
                "migrating"
            );
        }
    }

    /// The repository is done (whatever the outcome).
    pub fn finish_repo(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Figures> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn rows_per_sec(figures: &Figures) -> f64 {
    figures.done.saturating_sub(figures.resumed_at) as f64
        / figures.started.elapsed().as_secs_f64().max(0.001)
}

/// `bytes` for people: `12.3 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bytes_read_as_people_write_them() {
        assert_eq!(super::human_bytes(0), "0 B");
        assert_eq!(super::human_bytes(1023), "1023 B");
        assert_eq!(super::human_bytes(1536), "1.5 KiB");
        assert_eq!(super::human_bytes(5 << 30), "5.0 GiB");
    }
}
