//! A whole load run: setting up (what the repository looks like, a warm-up
//! run of each fetch shape whose answer becomes the expectation), the workers,
//! and the checks and clean-up after them.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use crate::{
    config::{Config, Scenario, Stop, Verify},
    error::{ErrorKind, RunError, SetupError},
    http::{GitHttp, Traffic},
    scenario::{self, Target, REF_PREFIXES},
    stats::{MixEntry, PushedRef, Recorder, Report},
    validate::PackQuery,
    wire::FetchArgs,
};

/// How often the progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Runs the load described by `config` and reports on it. Errors of single
/// runs are counted in the report; only a failure to set up is an `Err`.
pub async fn run(config: Config) -> Result<Report, SetupError> {
    check_options(&config)?;
    let http = GitHttp::new(&config)?;
    let target = Arc::new(setup(http, &config).await?);

    let started = Instant::now();
    let runs_left = Arc::new(AtomicU64::new(match config.stop {
        Stop::Runs(n) => n,
        Stop::After(_) => u64::MAX,
    }));
    let deadline = match config.stop {
        Stop::After(duration) => Some(started + duration),
        Stop::Runs(_) => None,
    };
    let progress = Arc::new(Progress::default());
    let ticker = config
        .progress
        .then(|| tokio::spawn(print_progress(progress.clone(), started)));
    let seed = fastrand::u64(..);
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..config.concurrency {
        let worker_state = Worker {
            target: target.clone(),
            deck: config.mix.deck(),
            timeout: config.timeout,
            runs_left: runs_left.clone(),
            deadline,
            progress: progress.clone(),
            rng: fastrand::Rng::with_seed(seed.wrapping_add(worker as u64)),
            id: worker,
        };
        workers.spawn(worker_state.work());
    }
    let mut recorder = Recorder::default();
    let mut pushed = Vec::new();
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok((record, branches)) => {
                recorder.merge(record);
                pushed.extend(branches);
            }
            Err(err) => eprintln!("gitclaw-load: a worker stopped: {err}"),
        }
    }
    let elapsed = started.elapsed();
    if let Some(ticker) = ticker {
        ticker.abort();
    }

    // After the clock: every branch a push reported must be there.
    let mut after = Traffic::default();
    if !pushed.is_empty() {
        match scenario::missing_branches(&target, &pushed, &mut after).await {
            Ok(missing) => {
                for branch in missing {
                    recorder.record_late_error(
                        Scenario::Push,
                        &RunError::new(
                            ErrorKind::PushRejected,
                            format!(
                                "{} was reported ok and is not listed at {} after the run",
                                branch.name, branch.commit
                            ),
                        ),
                    );
                }
            }
            Err(err) => recorder.record_late_error(Scenario::Push, &err),
        }
    }
    let mut cleaned_up = false;
    if config.cleanup && !pushed.is_empty() {
        match scenario::delete_branches(&target, &pushed, &mut after).await {
            Ok(()) => cleaned_up = true,
            Err(err) => eprintln!("gitclaw-load: deleting the pushed branches failed: {err}"),
        }
    }

    let (scenarios, total) = recorder.report(elapsed);
    pushed.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Report {
        url: target.http.url().to_string(),
        concurrency: config.concurrency,
        mix: config
            .mix
            .entries()
            .iter()
            .map(|(s, w)| MixEntry {
                scenario: s.name().to_string(),
                weight: *w,
            })
            .collect(),
        verify: match config.verify {
            Verify::Full => "full".into(),
            Verify::Light => "light".into(),
        },
        elapsed_secs: elapsed.as_secs_f64(),
        scenarios,
        total,
        pushed_refs: pushed,
        cleaned_up,
    })
}

fn check_options(config: &Config) -> Result<(), SetupError> {
    let bad = |m: &str| Err(SetupError::Options(m.to_string()));
    if config.concurrency == 0 || config.concurrency > 10_000 {
        return bad("--concurrency must be between 1 and 10000");
    }
    if config.behind == 0 || config.behind > 100_000 {
        return bad("--behind must be between 1 and 100000");
    }
    if config.push_bytes > 256 << 20 {
        return bad("--push-bytes must be at most 256 MiB");
    }
    if matches!(config.stop, Stop::Runs(0)) {
        return bad("--requests must be at least 1");
    }
    let prefix = &config.push_prefix;
    if prefix.is_empty()
        || prefix.starts_with('/')
        || prefix.contains("..")
        || prefix
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c))
    {
        return bad("--push-prefix must be a plain ref path, like `load/`");
    }
    Ok(())
}

fn server_step(step: impl Into<String>) -> impl FnOnce(RunError) -> SetupError {
    let step = step.into();
    move |source| SetupError::Server { step, source }
}

/// Learns what the runs need and warms each fetch shape up once.
async fn setup(http: GitHttp, config: &Config) -> Result<Target, SetupError> {
    let mix = &config.mix;
    let mut traffic = Traffic::default();
    let mut target = Target::new(
        http,
        config.verify,
        config.tmp_dir.clone(),
        String::new(),
        config.push_prefix.clone(),
        format!("{:06x}", fastrand::u32(..0x100_0000)),
        config.push_bytes,
    );
    let caps = scenario::advertise(&target, &mut traffic)
        .await
        .map_err(server_step(
            "reading the protocol v2 capability advertisement",
        ))?;
    if caps.get("ls-refs").is_none() {
        return Err(SetupError::Unsupported("ls-refs".into()));
    }
    let needs_shallow = [Scenario::Shallow, Scenario::Incremental, Scenario::BySha]
        .iter()
        .any(|s| mix.contains(*s));
    if needs_shallow && !caps.command_has("fetch", "shallow") {
        return Err(SetupError::Unsupported(
            "shallow fetches (`fetch=shallow` is not advertised)".into(),
        ));
    }
    if mix.contains(Scenario::BlobNone) && !caps.command_has("fetch", "filter") {
        return Err(SetupError::Unsupported(
            "filters (`fetch=filter` is not advertised; git http-backend needs uploadpack.allowFilter)"
                .into(),
        ));
    }
    let refs = scenario::ls_refs(&target, &caps, &REF_PREFIXES, &mut traffic)
        .await
        .map_err(server_step("listing refs"))?;
    let head = refs.iter().find(|r| r.name == "HEAD");
    target.default_branch = head
        .and_then(|h| h.symref_target.clone())
        .or_else(|| {
            refs.iter()
                .find(|r| r.name == "refs/heads/main")
                .or_else(|| refs.iter().find(|r| r.name.starts_with("refs/heads/")))
                .map(|r| r.name.clone())
        })
        .unwrap_or_else(|| "refs/heads/main".into());
    let tip = refs
        .iter()
        .find(|r| r.name == target.default_branch)
        .map(|r| r.oid);
    let fetches = mix.entries().iter().any(|(s, _)| s.fetches());
    let Some(tip) = tip else {
        if fetches || mix.contains(Scenario::LsRefs) {
            return Err(SetupError::Options(format!(
                "the repository has no {} to fetch (is it empty?)",
                target.default_branch
            )));
        }
        return Ok(target);
    };

    if mix.contains(Scenario::Incremental) || mix.contains(Scenario::BySha) {
        let args = FetchArgs {
            wants: vec![tip],
            deepen: Some(config.behind + 1),
            ..FetchArgs::default()
        };
        let query = PackQuery {
            first_parent_walk: Some((tip, config.behind)),
            ..PackQuery::default()
        };
        let answer = scenario::fetch(&target, &caps, &args, query, Verify::Full, &mut traffic)
            .await
            .map_err(server_step(format!(
                "fetching the last {} commits of {}",
                config.behind + 1,
                target.default_branch
            )))?;
        target.behind = Some(answer.pack.walked_to.ok_or_else(|| {
            SetupError::Options(format!(
                "{} has fewer than {} commits along its first parents: lower --behind",
                target.default_branch,
                config.behind + 1
            ))
        })?);
    }

    if mix.contains(Scenario::Push) {
        let advert = scenario::receive_advertisement(&target, &mut traffic)
            .await
            .map_err(server_step("reading the receive-pack advertisement"))?;
        if config.cleanup && !advert.has("delete-refs") {
            return Err(SetupError::Unsupported(
                "deleting branches (`delete-refs`), which --cleanup needs".into(),
            ));
        }
    }

    // Each fetch shape once: its answer is the one later answers must match.
    for &(scenario, _) in mix.entries() {
        if scenario.fetches() {
            let mut traffic = Traffic::default();
            let warm_up = scenario::run_once(&target, scenario, 0, 0, &mut traffic);
            tokio::time::timeout(config.timeout, Box::pin(warm_up))
                .await
                .unwrap_or_else(|_| Err(timed_out(config.timeout)))
                .map_err(server_step(format!("warm-up run of `{}`", scenario.name())))?;
        }
    }
    Ok(target)
}

fn timed_out(limit: Duration) -> RunError {
    RunError::new(
        ErrorKind::Timeout,
        format!("not finished within {:.1} s", limit.as_secs_f64()),
    )
}

/// Counts shared by the workers for the progress line.
#[derive(Default)]
struct Progress {
    runs: AtomicU64,
    errors: AtomicU64,
}

async fn print_progress(progress: Arc<Progress>, started: Instant) {
    loop {
        tokio::time::sleep(PROGRESS_EVERY).await;
        eprintln!(
            "{:>6.0} s  {} runs, {} errors",
            started.elapsed().as_secs_f64(),
            progress.runs.load(Ordering::Relaxed),
            progress.errors.load(Ordering::Relaxed)
        );
    }
}

/// One of `--concurrency` loops running scenarios back to back.
struct Worker {
    target: Arc<Target>,
    /// The mix's deck, dealt in a new order each time round.
    deck: Vec<Scenario>,
    timeout: Duration,
    runs_left: Arc<AtomicU64>,
    deadline: Option<Instant>,
    progress: Arc<Progress>,
    rng: fastrand::Rng,
    id: usize,
}

impl Worker {
    /// Claims one run of the budget; false when it is spent or time is up.
    fn may_start(&self) -> bool {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        self.runs_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    async fn work(mut self) -> (Recorder, Vec<PushedRef>) {
        let mut recorder = Recorder::default();
        let mut pushed = Vec::new();
        let mut seq = 0u64;
        while self.may_start() {
            let turn = (seq % self.deck.len() as u64) as usize;
            if turn == 0 {
                self.rng.shuffle(&mut self.deck);
            }
            seq += 1;
            let scenario = self.deck[turn];
            let mut traffic = Traffic::default();
            let started = Instant::now();
            let run = scenario::run_once(&self.target, scenario, self.id, seq, &mut traffic);
            let outcome = tokio::time::timeout(self.timeout, Box::pin(run))
                .await
                .unwrap_or_else(|_| Err(timed_out(self.timeout)));
            let took = started.elapsed();
            self.progress.runs.fetch_add(1, Ordering::Relaxed);
            match &outcome {
                Ok(branch) => {
                    pushed.extend(branch.clone());
                    recorder.record(scenario, took, traffic, Ok(()));
                }
                Err(err) => {
                    self.progress.errors.fetch_add(1, Ordering::Relaxed);
                    recorder.record(scenario, took, traffic, Err(err));
                }
            }
        }
        (recorder, pushed)
    }
}
