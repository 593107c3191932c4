//! The server's metrics, in the Prometheus text format at `GET /metrics`.
//!
//! One registry per [`App`](crate::app::App) (never a global one: a test can
//! run several servers in one process and read each one's counts). Names carry
//! the `gitclaw_` prefix and base units; counters end in `_total`. Labels only
//! ever take values from fixed sets (a service, an operation, a fault), never
//! client input such as repository names or refs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::error::Fault;

mod request;

use request::count_store_request;
pub use request::{background, spawn_blocking, GitRequestTimer, StoreRequests};

/// Buckets of the object store's latency: 1 ms to 60 s.
const STORE_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Buckets of a git request's duration: 5 ms to 1500 s (a clone of a big
/// repository over a slow link takes many minutes).
const GIT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    1500.0,
];

/// Buckets of the wait for a push slot: 1 ms to 5 min.
const WAIT_BUCKETS: &[f64] = &[
    0.001, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub git_requests: IntCounterVec,
    pub git_duration: HistogramVec,
    pub git_in_flight: IntGaugeVec,
    pub git_store_requests: HistogramVec,
    pub fetch_shapes: IntCounterVec,
    pub pack_sources: IntCounterVec,
    pub pack_bytes_sent: IntCounterVec,
    pub pack_objects_sent: IntCounterVec,
    pub pack_bytes_received: IntCounter,
    pub push_slots_in_use: IntGauge,
    pub push_slots_queued: IntGauge,
    pub compactions_running: IntGauge,
    pub compactions_waiting: IntGauge,
    pub push_slot_wait: HistogramVec,
    pub store_requests: IntCounterVec,
    pub store_duration: HistogramVec,
    pub store_errors: IntCounterVec,
    pub store_retries: IntCounterVec,
    pub store_bytes: IntCounterVec,
    pub cache_lookups: IntCounterVec,
    pub cache_bytes: IntGaugeVec,
    pub cache_capacity: IntGaugeVec,
    pub cache_evictions: IntCounterVec,
    pub responses_generated_bytes: IntCounter,
    /// The object cache's counts as last reported (it counts on its own).
    object_cache_reported: std::sync::Mutex<gitclaw_pack::odb::CacheCounts>,
    pub repo_objects: IntGaugeVec,
    pub repo_bytes: IntGaugeVec,
    pub repo_lfs_objects: IntGaugeVec,
    pub repo_lfs_bytes: IntGaugeVec,
    pub db_connections: IntGaugeVec,
    pub db_operations: HistogramVec,
    pub migration_objects: IntCounterVec,
    pub migration_bytes: IntCounter,
    pub migration_batches_in_flight: IntGauge,
    pub migration_repositories: IntGaugeVec,
    pub migration_rows: IntGaugeVec,
    pub pack_generations_in_use: IntGauge,
    /// Client connections open on the git listener.
    pub connections_open: IntGauge,
    pub pack_generations_queued: IntGauge,
    pub pack_generations_refused: IntCounterVec,
    pub redis_errors: IntCounterVec,
    pub redis_up: IntGauge,
    /// LFS objects and their bytes, all repositories (set at each scrape).
    pub lfs_objects: IntGauge,
    pub lfs_bytes: IntGauge,
    /// LFS object bytes that went through the server itself, by direction.
    pub lfs_transfer_bytes: IntCounterVec,
    /// Objects of LFS batch requests, by operation and how each was answered.
    pub lfs_batch_objects: IntCounterVec,
    /// When the certificate served on the main listener expires (unix
    /// seconds; 0 without HTTPS).
    pub tls_certificate_expiry: IntGauge,
    /// Bundle downloads started, and the bytes sent of them.
    pub bundle_downloads: IntCounter,
    pub bundle_bytes: IntCounter,
    /// Webhook delivery attempts, by outcome.
    pub webhook_deliveries: IntCounterVec,
    /// Archives asked for, by format and outcome.
    pub archives: IntCounterVec,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter");
    registry
        .register(Box::new(metric.clone()))
        .expect("unique metric");
    metric
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    let metric = HistogramVec::new(opts, labels).expect("valid histogram");
    registry
        .register(Box::new(metric.clone()))
        .expect("unique metric");
    metric
}

fn gauges(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let metric = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge");
    registry
        .register(Box::new(metric.clone()))
        .expect("unique metric");
    metric
}

fn plain_counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let metric = IntCounter::new(name, help).expect("valid counter");
    registry
        .register(Box::new(metric.clone()))
        .expect("unique metric");
    metric
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let metric = IntGauge::new(name, help).expect("valid gauge");
    registry
        .register(Box::new(metric.clone()))
        .expect("unique metric");
    metric
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        let build = GaugeVec::new(
            Opts::new("gitclaw_build_info", "The running build: always 1."),
            &["version"],
        )
        .expect("valid gauge");
        build
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1.0);
        r.register(Box::new(build)).expect("unique metric");
        let start = Gauge::new(
            "gitclaw_start_time_seconds",
            "When the process started, in unix seconds.",
        )
        .expect("valid gauge");
        start.set(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        );
        r.register(Box::new(start)).expect("unique metric");
        Metrics {
            lfs_objects: gauge(
                &r,
                "gitclaw_lfs_objects",
                "Git LFS objects recorded, all repositories.",
            ),
            lfs_bytes: gauge(
                &r,
                "gitclaw_lfs_bytes",
                "Bytes of the Git LFS objects recorded, all repositories.",
            ),
            lfs_transfer_bytes: counter(
                &r,
                "gitclaw_lfs_transfer_bytes_total",
                "Git LFS object bytes that passed through the server (upload or download); with S3 they go straight to the bucket and are not counted here.",
                &["direction"],
            ),
            tls_certificate_expiry: gauge(
                &r,
                "gitclaw_tls_certificate_expiry_timestamp_seconds",
                "When the certificate served on GITCLAW_LISTEN (GITCLAW_TLS_CERT) expires, in unix seconds; 0 without HTTPS. Updated when a renewed certificate is taken into use.",
            ),
            bundle_downloads: plain_counter(
                &r,
                "gitclaw_bundle_downloads_total",
                "Bundle downloads started (protocol v2 bundle-uri: a clone's download of a compacted pack before it fetches the rest).",
            ),
            bundle_bytes: plain_counter(
                &r,
                "gitclaw_bundle_bytes_total",
                "Bytes of bundles sent to clients.",
            ),
            webhook_deliveries: counter(
                &r,
                "gitclaw_webhook_deliveries_total",
                "Webhook delivery attempts made by this instance, by outcome (delivered: the receiver answered 2xx; retry: it failed and will be tried again; failed: it failed for the last time).",
                &["outcome"],
            ),
            archives: counter(
                &r,
                "gitclaw_archives_total",
                "Archive downloads (the API's archive route), by format (tar, tar.gz, zip) and outcome (sent: made and sent; cached: sent from the response cache; failed: cut off by an error after it began; refused: no pack-generation turn).",
                &["format", "outcome"],
            ),
            lfs_batch_objects: counter(
                &r,
                "gitclaw_lfs_batch_objects_total",
                "Objects named in Git LFS batch requests, by operation and answer (presigned: a URL of the bucket; server: a URL of this server; present: nothing to do; error: refused or missing).",
                &["operation", "answer"],
            ),
            http_requests: counter(
                &r,
                "gitclaw_http_requests_total",
                "HTTP requests answered, by route template and status code.",
                &["route", "status"],
            ),
            git_requests: counter(
                &r,
                "gitclaw_git_requests_total",
                "Git requests, by service, protocol version and outcome (ok, whose fault a failure was, or cancelled).",
                &["service", "protocol", "outcome"],
            ),
            git_duration: histogram(
                &r,
                "gitclaw_git_request_duration_seconds",
                "How long git requests took, to the last byte of the response.",
                &["service"],
                GIT_BUCKETS,
            ),
            git_in_flight: gauges(
                &r,
                "gitclaw_git_requests_in_flight",
                "Git requests being answered now.",
                &["service"],
            ),
            git_store_requests: histogram(
                &r,
                "gitclaw_git_request_store_requests",
                "Object-store requests one git request made (each attempt and part).",
                &["service"],
                &[0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 5000.0],
            ),
            fetch_shapes: counter(
                &r,
                "gitclaw_fetches_total",
                "Fetches by shape: full, shallow, partial, incremental, or by-sha (a want that is no ref tip).",
                &["shape"],
            ),
            pack_sources: counter(
                &r,
                "gitclaw_fetch_pack_sources_total",
                "Where fetch packs came from: a stored pack as it is, the response cache, a stored pack plus a walk, or a walk.",
                &["source"],
            ),
            pack_bytes_sent: counter(
                &r,
                "gitclaw_pack_sent_bytes_total",
                "Pack bytes sent to clients, by where the pack came from.",
                &["source"],
            ),
            pack_objects_sent: counter(
                &r,
                "gitclaw_pack_sent_objects_total",
                "Objects sent to clients in packs, by where the pack came from.",
                &["source"],
            ),
            pack_bytes_received: plain_counter(&r, "gitclaw_pack_received_bytes_total", "Pack bytes received in pushes (as spooled, after any inflation)."),
            push_slots_in_use: gauge(
                &r,
                "gitclaw_push_slots_in_use",
                "Pushes doing their work now (at most GITCLAW_MAX_CONCURRENT_PUSHES).",
            ),
            push_slots_queued: gauge(
                &r,
                "gitclaw_push_slots_queued",
                "Pushes whose pack has arrived, waiting for a slot.",
            ),
            compactions_running: gauge(
                &r,
                "gitclaw_compactions_running",
                "Compactions running now (at most GITCLAW_MAX_CONCURRENT_COMPACTIONS).",
            ),
            compactions_waiting: gauge(
                &r,
                "gitclaw_compactions_waiting",
                "Compactions waiting for their turn.",
            ),
            push_slot_wait: histogram(
                &r,
                "gitclaw_push_slot_wait_seconds",
                "How long pushes waited for a slot, by whether they got one.",
                &["outcome"],
                WAIT_BUCKETS,
            ),
            store_requests: counter(
                &r,
                "gitclaw_store_requests_total",
                "Requests sent to the object store (each attempt and each part), by operation and status.",
                &["operation", "status"],
            ),
            store_duration: histogram(
                &r,
                "gitclaw_store_request_duration_seconds",
                "Latency of object-store requests, by operation.",
                &["operation"],
                STORE_BUCKETS,
            ),
            store_errors: counter(
                &r,
                "gitclaw_store_errors_total",
                "Failed object-store requests, by operation and kind (throttled, connection, not_found, denied, corrupt, server, other).",
                &["operation", "kind"],
            ),
            store_retries: counter(
                &r,
                "gitclaw_store_retries_total",
                "Object-store requests tried again after a retryable failure, by operation.",
                &["operation"],
            ),
            store_bytes: counter(
                &r,
                "gitclaw_store_bytes_total",
                "Object data moved to or from the object store, by direction (read, written).",
                &["direction"],
            ),
            cache_lookups: counter(
                &r,
                "gitclaw_cache_lookups_total",
                "Cache lookups, by cache and result (hit or miss).",
                &["cache", "result"],
            ),
            cache_bytes: gauges(
                &r,
                "gitclaw_cache_bytes",
                "Bytes a cache holds now.",
                &["cache"],
            ),
            cache_capacity: gauges(
                &r,
                "gitclaw_cache_capacity_bytes",
                "The most bytes a cache may hold.",
                &["cache"],
            ),
            cache_evictions: counter(
                &r,
                "gitclaw_cache_evictions_total",
                "Entries a cache dropped to stay within its bound.",
                &["cache"],
            ),
            responses_generated_bytes: plain_counter(&r, "gitclaw_response_cache_generated_bytes_total", "Bytes of clone packs written into the response cache (compare with gitclaw_pack_sent_bytes_total{source=\"response_cache\"}, the bytes served from it)."),
            object_cache_reported: Default::default(),
            repo_objects: gauges(
                &r,
                "gitclaw_repository_objects",
                "Objects a repository stores, for the GITCLAW_METRICS_REPOS largest.",
                &["repository"],
            ),
            repo_bytes: gauges(
                &r,
                "gitclaw_repository_stored_bytes",
                "Bytes a repository stores (packs, indexes, loose objects), for the GITCLAW_METRICS_REPOS largest.",
                &["repository"],
            ),
            repo_lfs_objects: gauges(
                &r,
                "gitclaw_repository_lfs_objects",
                "Git LFS objects a repository has, for the GITCLAW_METRICS_REPOS largest.",
                &["repository"],
            ),
            repo_lfs_bytes: gauges(
                &r,
                "gitclaw_repository_lfs_bytes",
                "Bytes of a repository's Git LFS objects, for the GITCLAW_METRICS_REPOS largest.",
                &["repository"],
            ),
            db_connections: gauges(
                &r,
                "gitclaw_db_pool_connections",
                "Connections of the metadata database pool, by state (in_use, idle).",
                &["state"],
            ),
            db_operations: histogram(
                &r,
                "gitclaw_db_operation_duration_seconds",
                "How long each metadata database operation took (a query such as list_refs, or a transaction such as commit_push), by operation and outcome.",
                &["operation", "outcome"],
                STORE_BUCKETS,
            ),
            migration_objects: counter(
                &r,
                "gitclaw_migration_objects_total",
                "Legacy rows this process migrated, by outcome (copied, corrupt).",
                &["outcome"],
            ),
            migration_bytes: plain_counter(&r, "gitclaw_migration_bytes_total", "Bytes of object content this process copied out of the legacy table."),
            migration_batches_in_flight: gauge(
                &r,
                "gitclaw_migration_batches_in_flight",
                "Migration batches under way: this process's own, or (on a server) what the running migrations last reported.",
            ),
            migration_repositories: gauges(
                &r,
                "gitclaw_migration_repositories",
                "Repositories a migration has touched, by state (pending, in_progress, migrated, failed), from the database.",
                &["state"],
            ),
            migration_rows: gauges(
                &r,
                "gitclaw_migration_rows",
                "Legacy rows of every migration, from the database: total, copied, corrupt.",
                &["kind"],
            ),
            connections_open: gauge(
                &r,
                "gitclaw_connections_open",
                "Client connections being served on the main listener (at most GITCLAW_MAX_CONNECTIONS; beyond it new ones wait to be accepted).",
            ),
            pack_generations_in_use: gauge(
                &r,
                "gitclaw_pack_generations_in_use",
                "Packs being generated now (walk, delta search, writing); stored packs and cached responses need no turn.",
            ),
            pack_generations_queued: gauge(
                &r,
                "gitclaw_pack_generations_queued",
                "Fetches waiting for a turn to generate their pack.",
            ),
            pack_generations_refused: counter(
                &r,
                "gitclaw_pack_generations_refused_total",
                "Fetches refused because too many packs were being generated, by the limit reached (instance, repository).",
                &["scope"],
            ),
            redis_errors: counter(
                &r,
                "gitclaw_redis_errors_total",
                "Shared metadata cache (Redis) calls that failed or timed out, by operation; the request went on against the database.",
                &["operation"],
            ),
            redis_up: gauge(
                &r,
                "gitclaw_redis_up",
                "1 while the shared metadata cache (Redis) answers, 0 while requests go to the database without it (0 too when REDIS_URL is unset).",
            ),
            registry: r,
        }
    }

    /// A migration batch finished.
    pub fn migration_rows(&self, copied: u64, bytes: u64, corrupt: u64) {
        self.migration_objects
            .with_label_values(&["copied"])
            .inc_by(copied);
        self.migration_objects
            .with_label_values(&["corrupt"])
            .inc_by(corrupt);
        self.migration_bytes.inc_by(bytes);
    }

    /// The text of `GET /metrics`.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let families = self.registry.gather();
        if TextEncoder::new().encode(&families, &mut out).is_err() {
            return String::new();
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// Bring the object cache's figures (it counts by itself, in the pack
    /// engine) into the metrics.
    pub fn report_object_cache(&self, cache: &gitclaw_pack::odb::ObjectCache) {
        const NAME: &str = "objects";
        let now = cache.counts();
        let mut last = self
            .object_cache_reported
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let lookups = |result, delta: u64| {
            self.cache_lookups
                .with_label_values(&[NAME, result])
                .inc_by(delta)
        };
        lookups("hit", now.hits.saturating_sub(last.hits));
        lookups("miss", now.misses.saturating_sub(last.misses));
        self.cache_evictions
            .with_label_values(&[NAME])
            .inc_by(now.evicted.saturating_sub(last.evicted));
        *last = now;
        let gauge = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        self.cache_bytes
            .with_label_values(&[NAME])
            .set(gauge(cache.size()));
        self.cache_capacity
            .with_label_values(&[NAME])
            .set(gauge(cache.capacity()));
    }

    /// Count one cache lookup.
    pub fn cache_lookup(&self, cache: &'static str, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.cache_lookups.with_label_values(&[cache, result]).inc();
    }
}

/// Holds a gauge one higher while it lives (a push in its slot).
pub struct Raised<'a>(&'a IntGauge);

impl<'a> Raised<'a> {
    pub fn new(gauge: &'a IntGauge) -> Self {
        gauge.inc();
        Raised(gauge)
    }
}

impl Drop for Raised<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The `outcome` label of a git request.
pub fn outcome(fault: Option<Fault>) -> &'static str {
    match fault {
        None => "ok",
        Some(Fault::Client) => "client_error",
        Some(Fault::Conflict) => "conflict",
        Some(Fault::Limit) => "limit",
        Some(Fault::Unavailable) => "unavailable",
        Some(Fault::Internal) => "internal_error",
    }
}

/// The `kind` label of a failed object-store request.
pub fn store_error_kind(err: &gitclaw_storage::StorageError) -> &'static str {
    use gitclaw_storage::StorageError as E;
    match err {
        E::RateLimited(_) => "throttled",
        E::Connection(_) => "connection",
        E::NotFound { .. } => "not_found",
        E::AccessDenied(_) | E::BucketNotFound(_) => "denied",
        E::Corrupted { .. } => "corrupt",
        E::UploadFailed { .. } => "server",
        _ => "other",
    }
}

impl gitclaw_metadata::QueryObserver for Metrics {
    fn query(
        &self,
        operation: &'static str,
        elapsed: Duration,
        error: Option<&gitclaw_metadata::Error>,
    ) {
        let outcome = if error.is_none() { "ok" } else { "error" };
        self.db_operations
            .with_label_values(&[operation, outcome])
            .observe(elapsed.as_secs_f64());
    }
}

impl gitclaw_storage::StoreObserver for Metrics {
    fn request(
        &self,
        operation: &'static str,
        elapsed: Duration,
        error: Option<&gitclaw_storage::StorageError>,
    ) {
        count_store_request();
        // A key that is not there is an answer, not a failure of the store.
        let status = match error {
            None => "ok",
            Some(gitclaw_storage::StorageError::NotFound { .. }) => "not_found",
            Some(_) => "error",
        };
        self.store_requests
            .with_label_values(&[operation, status])
            .inc();
        self.store_duration
            .with_label_values(&[operation])
            .observe(elapsed.as_secs_f64());
        if let Some(err) = error {
            self.store_errors
                .with_label_values(&[operation, store_error_kind(err)])
                .inc();
        }
    }

    fn retry(&self, operation: &'static str) {
        self.store_retries.with_label_values(&[operation]).inc();
    }

    fn transferred(&self, direction: gitclaw_storage::Transfer, bytes: u64) {
        let direction = match direction {
            gitclaw_storage::Transfer::Read => "read",
            gitclaw_storage::Transfer::Written => "written",
        };
        self.store_bytes
            .with_label_values(&[direction])
            .inc_by(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitclaw_storage::StoreObserver;

    #[test]
    fn store_requests_are_counted_timed_and_their_failures_sorted() {
        let metrics = Metrics::new();
        metrics.request("GetObject", Duration::from_millis(3), None);
        metrics.request(
            "GetObject",
            Duration::from_millis(40),
            Some(&gitclaw_storage::StorageError::RateLimited(
                "slow down".into(),
            )),
        );
        metrics.retry("GetObject");
        let text = metrics.render();
        for line in [
            "gitclaw_store_requests_total{operation=\"GetObject\",status=\"ok\"} 1",
            "gitclaw_store_requests_total{operation=\"GetObject\",status=\"error\"} 1",
            "gitclaw_store_errors_total{kind=\"throttled\",operation=\"GetObject\"} 1",
            "gitclaw_store_retries_total{operation=\"GetObject\"} 1",
            "gitclaw_store_request_duration_seconds_count{operation=\"GetObject\"} 2",
            "gitclaw_store_request_duration_seconds_bucket{operation=\"GetObject\",le=\"0.005\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        assert!(text.contains("gitclaw_build_info{version=\""));
    }
}
