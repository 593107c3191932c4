//! Configuration: environment variables over an optional TOML file, validated at start.
//!
//! Every setting is one row of [`settings`]: its name, the values it takes, its
//! default, its help and its former names. From those rows come the defaults, the
//! known-key check of the file, `gitclaw serve --help` and the README's tables
//! ([`docs`]). This module reads them into a typed [`Config`]; every problem is
//! reported as one line naming the variable, and every former name in use as a
//! warning in [`Config::warnings`].
//!
//! Not here: reaching the database or the store (see `check`), or what the rest
//! of the server builds from these values (each consumer converts them itself:
//! data flows from here downward, never back).

pub mod docs;
pub mod kinds;
pub mod settings;
mod sources;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use settings::*;
use sources::Sources;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// Every format by the name `GITCLAW_LOG_FORMAT` takes.
    pub const NAMES: [(&'static str, LogFormat); 2] =
        [("text", LogFormat::Text), ("json", LogFormat::Json)];
}

/// The validated configuration of a GitClaw process.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// HTTPS on `listen` with this certificate and key.
    pub tls: Option<crate::tls::TlsFiles>,
    pub data_dir: PathBuf,
    pub database_url: String,
    /// The database pool's size; `None`: the metadata crate's default.
    pub db_max_connections: Option<u32>,
    pub max_pack_bytes: u64,
    /// The largest object (inflated) a push may hold.
    pub max_object_bytes: u64,
    /// The most a repository's objects may take in the store (0: no limit).
    pub max_repo_bytes: u64,
    /// Git LFS: the largest object accepted, and how long presigned URLs live.
    pub lfs: LfsSettings,
    pub max_concurrent_pushes: usize,
    /// How long a push waits for a free slot before it is refused.
    pub push_wait_secs: u64,
    pub log_format: LogFormat,
    /// Base URL used in `clone_url` answers; derived from the listen address when unset.
    pub public_url: Option<String>,
    /// The S3 backend's settings; `None` selects the filesystem store under `data_dir`.
    pub s3: Option<gitclaw_storage::S3Settings>,
    /// Compaction thresholds and grace period.
    pub gc: GcSettings,
    /// Bundles offered to cloning clients.
    pub bundles: BundleSettings,
    /// Webhooks may target non-public addresses.
    pub webhook_private_targets: bool,
    /// The bootstrap admin token; `None` runs the server open (no authentication).
    pub admin_token: Option<String>,
    /// The token `/metrics` asks for; `None` leaves it open.
    pub metrics_token: Option<String>,
    /// Where `/metrics` is served instead of on [`Config::listen`], if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// That listener serves HTTPS with the main listener's certificate.
    pub metrics_tls: bool,
    /// The shared metadata cache, when `REDIS_URL` is set.
    pub redis: Option<crate::service::shared_cache::RedisSettings>,
    /// How many packs are generated at once, and how many fetches wait.
    pub pack_generations: GenerationLimits,
    /// Allow running open on a non-loopback address.
    pub allow_anonymous: bool,
    /// Bytes of generated clone responses kept on disk for repeated identical clones (0: off).
    pub response_cache_bytes: u64,
    /// Times a clone is asked for before its generated pack is kept.
    pub response_cache_min_occurrences: u32,
    /// Bytes of inflated commits and trees kept in memory across requests (0: off).
    pub object_cache_bytes: u64,
    /// Bytes of refs and object lists kept in memory by repository version (0: off).
    pub metadata_cache_bytes: u64,
    /// Disk space for packs downloaded from the object store.
    pub download_cache_bytes: u64,
    /// Memory for the tables of packs kept open between requests.
    pub open_pack_cache_bytes: u64,
    /// Packs in the object store larger than this are read by ranges as needed.
    pub range_reads_above_bytes: u64,
    /// The indexes of such packs larger than this are read by ranges too.
    pub index_range_reads_above_bytes: u64,
    /// Objects each delta candidate is compared with (git's `pack.window`; 0: no search).
    pub pack_window: usize,
    /// Longest chain of new deltas (git's `pack.depth`).
    pub pack_depth: u32,
    /// How long the server waits on clients.
    pub timeouts: Timeouts,
    /// Client connections served at once; further ones wait to be accepted.
    pub max_connections: usize,
    /// Which of git's fsck checks a pushed object must pass.
    pub fsck_objects: gitclaw_pack::fsck::FsckLevel,
    /// A git request slower than this logs a warning.
    pub slow_request: Duration,
    /// A database statement slower than this logs a warning.
    pub slow_statement: Duration,
    /// How many repositories `/metrics` reports sizes for (the largest).
    pub metrics_repos: u32,
    /// What the operator should change, though the server runs as it is (a former
    /// setting name in use); the command line logs each once at start.
    pub warnings: Vec<String>,
}

/// Git LFS limits (`GITCLAW_LFS_…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LfsSettings {
    /// The largest object a batch accepts for upload.
    pub max_object_bytes: u64,
    /// How long a presigned URL stays valid.
    pub url_expiry: Duration,
}

/// How many packs are generated at once (`GITCLAW_MAX_PACK_GENERATIONS…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerationLimits {
    /// On this instance.
    pub instance: usize,
    /// For one repository.
    pub per_repo: usize,
    /// Fetches that may wait for a turn (beyond them: refused at once).
    pub queue: usize,
    /// How long one waits.
    pub wait: Duration,
}

/// How long the server waits on a client, and how slowly it lets one send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Request headers must arrive within this many seconds; an idle kept-alive
    /// connection is closed after as long.
    pub header_secs: u64,
    /// Longest silence while a request body arrives, and the stretch over which
    /// its rate is measured.
    pub body_secs: u64,
    /// Slowest request body accepted, in bytes a second over each stretch (0: any).
    pub body_min_rate: u64,
    /// A response the client takes nothing of for this many seconds is abandoned.
    pub send_secs: u64,
}

/// Thresholds and timing of compaction and of the sweep of unrecorded keys.
#[derive(Debug, Clone)]
pub struct GcSettings {
    /// Replaced keys are deleted this many seconds after the swap.
    pub grace_secs: u64,
    /// Compact automatically after a push once a repo has more loose objects than this (0: never).
    pub loose_threshold: usize,
    /// …or more packs than this (0: never).
    pub pack_threshold: usize,
    /// After a push that leaves a repo as one pack of more objects than this,
    /// record what compaction records of it (0: never).
    pub closure_threshold: u64,
    /// Compactions run at once by this process; others wait their turn.
    pub max_concurrent: usize,
    /// Every this many seconds, each repository's store keys that no row records
    /// and that are older than the grace period are deleted (0: only by `gc`).
    pub sweep_interval_secs: u64,
    /// How long a push's hold on the keys it is writing lasts unless renewed
    /// (a dead process's holds lapse after this).
    pub claim_lease_secs: u64,
    /// Compaction stores tip entries for the branch heads.
    pub tip_entries: bool,
}

/// What bundles the server offers cloning clients (protocol v2 `bundle-uri`).
#[derive(Debug, Clone)]
pub struct BundleSettings {
    /// Offer them at all.
    pub offer: bool,
    /// The smallest pack offered as one.
    pub min_bytes: u64,
}

/// One configuration problem, naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl Config {
    /// How clients reach `listen`: `https` when the server serves TLS itself.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Load from the process environment and, when given, a TOML file.
    pub fn load(file: Option<&Path>) -> Result<Config, Vec<ConfigError>> {
        Config::from_sources(|name| std::env::var(name).ok(), file)
    }

    /// Load from a variable lookup (the environment in production, a map in tests)
    /// over an optional TOML file; the lookup wins.
    pub fn from_sources(
        env: impl Fn(&str) -> Option<String>,
        file: Option<&Path>,
    ) -> Result<Config, Vec<ConfigError>> {
        let mut sources = Sources::new(&env, file);
        let config = Config::read(&mut sources);
        if sources.errors.is_empty() {
            Ok(Config {
                warnings: sources.warnings,
                ..config
            })
        } else {
            Err(sources.errors)
        }
    }

    /// A configuration for tests and embedded use: the defaults, everything under
    /// `data_dir`.
    pub fn for_data_dir(data_dir: &Path) -> Config {
        let defaults = Config::from_sources(|_| None, None).expect("the listed defaults are valid");
        Config {
            data_dir: data_dir.to_owned(),
            database_url: sqlite_in(data_dir),
            ..defaults
        }
    }

    /// Every setting from `sources`; problems are recorded there (in the order
    /// read, which is the order they are reported).
    fn read(sources: &mut Sources<'_>) -> Config {
        let listen = sources.value(&LISTEN);
        let tls = tls_files(sources);
        let data_dir = PathBuf::from(sources.value(&DATA_DIR));
        let database_url = sources
            .optional(&DATABASE_URL)
            .unwrap_or_else(|| sqlite_in(&data_dir));
        let db_max_connections = sources
            .optional(&DB_MAX_CONNECTIONS)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        let max_pack_bytes = sources.value(&MAX_PACK_BYTES);
        let max_object_bytes = sources.value(&MAX_OBJECT_BYTES);
        let max_repo_bytes = sources.value(&MAX_REPO_BYTES);
        let lfs = LfsSettings {
            max_object_bytes: sources.value(&LFS_MAX_OBJECT_BYTES),
            url_expiry: Duration::from_secs(sources.value(&LFS_URL_EXPIRY_SECS)),
        };
        let max_concurrent_pushes = sources.value(&MAX_CONCURRENT_PUSHES) as usize;
        let log_format = sources.value(&LOG_FORMAT);
        let public_url = sources.optional(&PUBLIC_URL);
        let gc = GcSettings {
            grace_secs: sources.value(&GC_GRACE_SECS),
            loose_threshold: sources.value(&GC_LOOSE_THRESHOLD) as usize,
            pack_threshold: sources.value(&GC_PACK_THRESHOLD) as usize,
            closure_threshold: sources.value(&GC_CLOSURE_THRESHOLD),
            max_concurrent: sources.value(&MAX_CONCURRENT_COMPACTIONS) as usize,
            sweep_interval_secs: sources.value(&SWEEP_INTERVAL_SECS),
            claim_lease_secs: sources.value(&CLAIM_LEASE_SECS),
            tip_entries: sources.value(&GC_TIP_ENTRIES),
        };
        let bundles = BundleSettings {
            offer: sources.value(&BUNDLE_URIS),
            min_bytes: sources.value(&BUNDLE_MIN_BYTES),
        };
        let webhook_private_targets = sources.value(&WEBHOOK_PRIVATE_TARGETS);
        let admin_token = sources.optional(&ADMIN_TOKEN);
        let metrics_token = sources.optional(&METRICS_TOKEN);
        let metrics_listen = sources.optional(&METRICS_LISTEN);
        let metrics_tls = sources.value(&METRICS_TLS);
        if metrics_tls && (metrics_listen.is_none() || tls.is_none()) {
            sources.problem(
                METRICS_TLS.name,
                "needs GITCLAW_METRICS_LISTEN and GITCLAW_TLS_CERT: it serves the metrics listener with the main listener's certificate",
            );
        }
        let pack_generations = GenerationLimits {
            instance: sources.value(&MAX_PACK_GENERATIONS) as usize,
            per_repo: sources.value(&MAX_PACK_GENERATIONS_PER_REPO) as usize,
            queue: sources.value(&PACK_QUEUE) as usize,
            wait: Duration::from_secs(sources.value(&PACK_WAIT_SECS)),
        };
        let allow_anonymous = sources.value(&ALLOW_ANONYMOUS);
        let push_wait_secs = sources.value(&PUSH_WAIT_SECS);
        let response_cache_bytes = sources.value(&RESPONSE_CACHE_BYTES);
        let response_cache_min_occurrences =
            u32::try_from(sources.value(&RESPONSE_CACHE_MIN_OCCURRENCES)).unwrap_or(u32::MAX);
        let object_cache_bytes = sources.value(&OBJECT_CACHE_BYTES);
        let metadata_cache_bytes = sources.value(&METADATA_CACHE_BYTES);
        let download_cache_bytes = sources.value(&DOWNLOAD_CACHE_BYTES);
        let open_pack_cache_bytes = sources.value(&OPEN_PACK_CACHE_BYTES);
        let range_reads_above_bytes = sources.value(&RANGE_READS_ABOVE_BYTES);
        let index_range_reads_above_bytes = sources.value(&INDEX_RANGE_READS_ABOVE_BYTES);
        let body_min_rate = sources.value(&BODY_MIN_RATE);
        let pack_window = sources.value(&PACK_WINDOW) as usize;
        let pack_depth = sources.value(&PACK_DEPTH) as u32;
        let timeouts = Timeouts {
            header_secs: sources.value(&HEADER_TIMEOUT_SECS),
            body_secs: sources.value(&BODY_TIMEOUT_SECS),
            send_secs: sources.value(&SEND_TIMEOUT_SECS),
            body_min_rate,
        };
        let max_connections = sources.value(&MAX_CONNECTIONS) as usize;
        let fsck_objects = sources.value(&FSCK_OBJECTS);
        let slow_request = Duration::from_millis(sources.value(&SLOW_REQUEST_MS));
        let slow_statement = Duration::from_millis(sources.value(&SLOW_DB_MS));
        let metrics_repos = u32::try_from(sources.value(&METRICS_REPOS)).unwrap_or(u32::MAX);
        let s3 = s3_settings(sources);
        // Read whether or not Redis is named, so each setting is checked.
        let (redis_ttl, redis_token_ttl, redis_timeout) = (
            Duration::from_secs(sources.value(&REDIS_TTL_SECS)),
            Duration::from_secs(sources.value(&REDIS_TOKEN_TTL_SECS)),
            Duration::from_millis(sources.value(&REDIS_TIMEOUT_MS)),
        );
        let redis_ca_cert = pem_file(sources, &REDIS_CA_CERT, "CERTIFICATE");
        let redis_client_cert = pem_file(sources, &REDIS_CLIENT_CERT, "CERTIFICATE");
        let redis_client_key = pem_file(sources, &REDIS_CLIENT_KEY, "PRIVATE KEY");
        let redis_url = sources.optional(&REDIS_URL);
        let redis_tls = redis_url
            .as_deref()
            .is_some_and(|url| url.starts_with("rediss://"));
        for (set, name) in [
            (redis_ca_cert.is_some(), REDIS_CA_CERT.name),
            (redis_client_cert.is_some(), REDIS_CLIENT_CERT.name),
            (redis_client_key.is_some(), REDIS_CLIENT_KEY.name),
        ] {
            if set && !redis_tls {
                sources.problem(
                    name,
                    "is only for a TLS connection: REDIS_URL must start with rediss://",
                );
            }
        }
        let redis_client = match (redis_client_cert, redis_client_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            (Some(_), None) => {
                let why = format!("is needed with {}", REDIS_CLIENT_CERT.name);
                sources.problem(REDIS_CLIENT_KEY.name, why);
                None
            }
            (None, Some(_)) => {
                let why = format!("is needed with {}", REDIS_CLIENT_KEY.name);
                sources.problem(REDIS_CLIENT_CERT.name, why);
                None
            }
        };
        let redis = redis_url.map(|url| crate::service::shared_cache::RedisSettings {
            url,
            ttl: redis_ttl,
            token_ttl: redis_token_ttl,
            timeout: redis_timeout,
            ca_cert: redis_ca_cert,
            client_cert: redis_client,
        });
        Config {
            listen,
            tls,
            data_dir,
            database_url,
            db_max_connections,
            max_pack_bytes,
            max_object_bytes,
            max_repo_bytes,
            lfs,
            max_concurrent_pushes,
            push_wait_secs,
            log_format,
            public_url,
            s3,
            gc,
            bundles,
            webhook_private_targets,
            admin_token,
            metrics_token,
            metrics_listen,
            metrics_tls,
            redis,
            pack_generations,
            allow_anonymous,
            response_cache_bytes,
            response_cache_min_occurrences,
            object_cache_bytes,
            metadata_cache_bytes,
            download_cache_bytes,
            open_pack_cache_bytes,
            range_reads_above_bytes,
            index_range_reads_above_bytes,
            pack_window,
            pack_depth,
            timeouts,
            max_connections,
            fsck_objects,
            slow_request,
            slow_statement,
            metrics_repos,
            warnings: Vec::new(),
        }
    }

    /// How packs are written (clones, fetches, compaction): the configured delta
    /// search, everything else as the pack writer's defaults.
    pub fn write_options(&self) -> gitclaw_pack::writer::WriteOptions {
        gitclaw_pack::writer::WriteOptions {
            window: self.pack_window,
            max_depth: self.pack_depth,
            ..Default::default()
        }
    }
}

/// The SQLite database of the embedded setup in `data_dir`.
fn sqlite_in(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("gitclaw.db").display())
}

/// The S3 settings when `S3_BUCKET` is set; every problem is recorded naming its variable.
fn s3_settings(sources: &mut Sources<'_>) -> Option<gitclaw_storage::S3Settings> {
    if !sources.is_set(S3_BUCKET.name) {
        // S3 settings without a bucket are a half-done setup, not a choice of the filesystem.
        let half_done = [
            S3_ENDPOINT.name,
            S3_REGION.name,
            S3_ACCESS_KEY_ID.name,
            S3_SECRET_ACCESS_KEY.name,
        ]
        .into_iter()
        .find(|name| sources.is_set(name));
        if let Some(name) = half_done {
            sources.problem(
                S3_BUCKET.name,
                format!(
                    "{name} is set but S3_BUCKET is not; set S3_BUCKET to use S3, or unset {name}"
                ),
            );
        }
        return None;
    }
    let before = sources.errors.len();
    let bucket = sources.optional(&S3_BUCKET).unwrap_or_default();
    let region = sources
        .optional(&S3_REGION)
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| {
            sources.problem(
                S3_REGION.name,
                "required when S3_BUCKET is set (e.g. us-east-1; 'garage' for Garage, 'auto' for R2)",
            );
            String::new()
        });
    let endpoint = sources.optional(&S3_ENDPOINT);
    let credentials = match (
        sources.optional(&S3_ACCESS_KEY_ID),
        sources.optional(&S3_SECRET_ACCESS_KEY),
    ) {
        (Some(id), Some(secret)) => Some((id, secret)),
        (None, None) => None,
        (Some(_), None) => {
            sources.problem(
                S3_SECRET_ACCESS_KEY.name,
                "required when S3_ACCESS_KEY_ID is set",
            );
            None
        }
        (None, Some(_)) => {
            sources.problem(
                S3_ACCESS_KEY_ID.name,
                "required when S3_SECRET_ACCESS_KEY is set",
            );
            None
        }
    };
    let path_style = sources.value(&S3_USE_PATH_STYLE);
    let auto_create_bucket = sources.value(&S3_AUTO_CREATE_BUCKET);
    let ca_cert = pem_file(sources, &S3_CA_CERT, "CERTIFICATE");
    let max_retries = sources.value(&S3_MAX_RETRIES).min(100) as u32;
    let retry_max_backoff = Duration::from_secs(sources.value(&S3_RETRY_MAX_BACKOFF));
    let slow_op = Duration::from_millis(sources.value(&S3_SLOW_OP_MS));
    let connect_timeout = Duration::from_millis(sources.value(&S3_CONNECT_TIMEOUT_MS));
    let read_timeout = Duration::from_millis(sources.value(&S3_READ_TIMEOUT_MS));
    (sources.errors.len() == before).then_some(gitclaw_storage::S3Settings {
        bucket,
        region,
        endpoint,
        credentials,
        path_style,
        auto_create_bucket,
        ca_cert,
        max_retries,
        retry_max_backoff,
        slow_op,
        connect_timeout,
        read_timeout,
    })
}

/// The certificate and key to serve HTTPS with: both or neither, and they
/// must load.
fn tls_files(sources: &mut Sources<'_>) -> Option<crate::tls::TlsFiles> {
    match (sources.optional(&TLS_CERT), sources.optional(&TLS_KEY)) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            let files = crate::tls::TlsFiles {
                cert: PathBuf::from(cert),
                key: PathBuf::from(key),
            };
            match files.load() {
                Ok(_) => Some(files),
                Err(err) => {
                    sources.problem(err.variable(), err.to_string());
                    None
                }
            }
        }
        (Some(_), None) => {
            sources.problem(TLS_KEY.name, "is needed with GITCLAW_TLS_CERT");
            None
        }
        (None, Some(_)) => {
            sources.problem(TLS_CERT.name, "is needed with GITCLAW_TLS_KEY");
            None
        }
    }
}

/// The PEM file `setting` names, if it does; a problem when it cannot be read
/// or holds no certificate.
/// The path a setting names, checked to be a PEM file holding a block whose
/// label ends with `label` (`CERTIFICATE`, `PRIVATE KEY`).
fn pem_file(
    sources: &mut Sources<'_>,
    setting: &Setting<kinds::Text>,
    label: &str,
) -> Option<PathBuf> {
    let path = PathBuf::from(sources.optional(setting)?);
    let holds = |text: &str| {
        text.lines().any(|line| {
            line.strip_prefix("-----BEGIN ")
                .and_then(|rest| rest.strip_suffix("-----"))
                .is_some_and(|found| found.ends_with(label))
        })
    };
    match std::fs::read_to_string(&path) {
        Ok(text) if holds(&text) => {}
        Ok(_) => sources.problem(
            setting.name,
            format!("{} holds no PEM {}", path.display(), label.to_lowercase()),
        ),
        Err(err) => sources.problem(
            setting.name,
            format!("cannot read {}: {err}", path.display()),
        ),
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<Config, Vec<ConfigError>> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_sources(|k| map.get(k).cloned(), None)
    }

    #[test]
    fn defaults_are_the_embedded_setup() {
        let cfg = load(&[]).unwrap();
        assert_eq!(cfg.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(cfg.data_dir, PathBuf::from("./gitclaw-data"));
        assert!(cfg.database_url.starts_with("sqlite://"));
        assert_eq!(cfg.max_pack_bytes, 2 << 30);
        assert_eq!(cfg.max_object_bytes, 1 << 30);
        assert!(cfg.warnings.is_empty());
        let embedded = Config::for_data_dir(Path::new("/srv/git"));
        assert_eq!(embedded.database_url, "sqlite:///srv/git/gitclaw.db");
        assert_eq!(embedded.response_cache_bytes, cfg.response_cache_bytes);
    }

    #[test]
    fn every_bad_variable_is_named() {
        let errs = load(&[
            ("GITCLAW_LISTEN", "nowhere"),
            ("DATABASE_URL", "mysql://x"),
            ("GITCLAW_MAX_PACK_BYTES", "lots"),
            ("GITCLAW_LOG_FORMAT", "xml"),
        ])
        .unwrap_err();
        let named: Vec<_> = errs.iter().map(|e| e.variable).collect();
        assert_eq!(
            named,
            [
                "GITCLAW_LISTEN",
                "DATABASE_URL",
                "GITCLAW_MAX_PACK_BYTES",
                "GITCLAW_LOG_FORMAT"
            ]
        );
    }

    #[test]
    fn file_values_apply_and_environment_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gitclaw.toml");
        std::fs::write(
            &path,
            "gitclaw_listen = \"127.0.0.1:9000\"\ngitclaw_data_dir = \"/srv/git\"\n",
        )
        .unwrap();
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "gitclaw_lisen = \"x\"\n").unwrap();
        let errs = Config::from_sources(|_| None, Some(&bad)).unwrap_err();
        assert!(
            errs[0]
                .to_string()
                .contains("unknown setting 'gitclaw_lisen'"),
            "{errs:?}"
        );
        let cfg = Config::from_sources(
            |k| (k == "GITCLAW_LISTEN").then(|| "127.0.0.1:9100".to_string()),
            Some(&path),
        )
        .unwrap();
        assert_eq!(cfg.listen.port(), 9100);
        assert_eq!(cfg.data_dir, PathBuf::from("/srv/git"));
    }

    #[test]
    fn s3_settings_are_read_and_checked() {
        let cfg = load(&[
            ("S3_BUCKET", "git-objects"),
            ("S3_REGION", "garage"),
            ("S3_ENDPOINT", "http://127.0.0.1:3900/"),
            ("S3_ACCESS_KEY_ID", "GK1"),
            ("S3_SECRET_ACCESS_KEY", "s3cr3t"),
            ("S3_USE_PATH_STYLE", "true"),
            ("S3_MAX_RETRIES", "5"),
            ("S3_RETRY_MAX_BACKOFF", "2"),
            ("S3_SLOW_OP_MS", "250"),
        ])
        .unwrap();
        let s3 = cfg.s3.expect("S3_BUCKET selects S3");
        assert_eq!(s3.bucket, "git-objects");
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
        assert_eq!(s3.credentials, Some(("GK1".into(), "s3cr3t".into())));
        assert!(s3.path_style && !s3.auto_create_bucket);
        assert_eq!(s3.max_retries, 5);
        assert_eq!(s3.retry_max_backoff.as_secs(), 2);
        assert_eq!(s3.slow_op.as_millis(), 250);
        let defaults = load(&[("S3_BUCKET", "b-1"), ("S3_REGION", "us-east-1")])
            .unwrap()
            .s3
            .unwrap();
        assert_eq!(
            (defaults.max_retries, defaults.retry_max_backoff.as_secs()),
            (3, 30)
        );
        assert_eq!(defaults.credentials, None, "no keys: the AWS default chain");

        let errs = load(&[
            ("S3_BUCKET", "Bad_Bucket"),
            ("S3_ENDPOINT", "ftp://x"),
            ("S3_ACCESS_KEY_ID", "GK1"),
            ("S3_CA_CERT", "/nonexistent/ca.pem"),
            ("S3_MAX_RETRIES", "many"),
        ])
        .unwrap_err();
        let named: Vec<_> = errs.iter().map(|e| e.variable).collect();
        assert_eq!(
            named,
            [
                "S3_BUCKET",
                "S3_REGION",
                "S3_ENDPOINT",
                "S3_SECRET_ACCESS_KEY",
                "S3_CA_CERT",
                "S3_MAX_RETRIES"
            ],
            "{errs:?}"
        );
        let half = load(&[("S3_ENDPOINT", "http://127.0.0.1:3900")]).unwrap_err();
        assert_eq!(half[0].variable, "S3_BUCKET");
    }

    #[test]
    fn redis_tls_settings_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let ca = ca.to_str().unwrap();
        let cfg = load(&[
            ("REDIS_URL", "rediss://:pw@cache.example.com:6380/0"),
            ("GITCLAW_REDIS_CA_CERT", ca),
        ])
        .unwrap();
        let redis = cfg.redis.expect("Redis configured");
        assert_eq!(redis.ca_cert.as_deref(), Some(Path::new(ca)));
        // Without TLS the CA would be silently unused; a missing file is named.
        for (url, cert) in [
            ("redis://cache.example.com:6379/0", ca),
            ("rediss://cache.example.com:6380/0", "/nonexistent/ca.pem"),
        ] {
            let errs = load(&[("REDIS_URL", url), ("GITCLAW_REDIS_CA_CERT", cert)]).unwrap_err();
            let named: Vec<_> = errs.iter().map(|e| e.variable).collect();
            assert_eq!(named, ["GITCLAW_REDIS_CA_CERT"], "{url} {cert}");
        }
        let errs = load(&[("GITCLAW_REDIS_CA_CERT", ca)]).unwrap_err();
        assert_eq!(errs[0].variable, "GITCLAW_REDIS_CA_CERT");
    }

    #[test]
    fn delta_search_settings_are_read_and_checked() {
        let cfg = load(&[]).unwrap();
        assert_eq!((cfg.pack_window, cfg.pack_depth), (10, 50));
        let cfg = load(&[("GITCLAW_PACK_WINDOW", "0"), ("GITCLAW_PACK_DEPTH", "4095")]).unwrap();
        let options = cfg.write_options();
        assert_eq!((options.window, options.max_depth), (0, 4095));
        let errs =
            load(&[("GITCLAW_PACK_WINDOW", "1001"), ("GITCLAW_PACK_DEPTH", "0")]).unwrap_err();
        let named: Vec<_> = errs.iter().map(|e| e.variable).collect();
        assert_eq!(named, ["GITCLAW_PACK_WINDOW", "GITCLAW_PACK_DEPTH"]);
        assert!(errs[0].message.contains("from 0 to 1000"), "{}", errs[0]);
        let errs = load(&[
            ("GITCLAW_PACK_DEPTH", "4096"),
            ("GITCLAW_PACK_WINDOW", "ten"),
        ])
        .unwrap_err();
        assert_eq!(errs.len(), 2);
    }

    #[test]
    fn object_checks_are_read_and_checked() {
        use gitclaw_pack::fsck::FsckLevel;
        assert_eq!(load(&[]).unwrap().fsck_objects, FsckLevel::Safe);
        for (text, level) in [
            ("off", FsckLevel::Off),
            ("safe", FsckLevel::Safe),
            ("strict", FsckLevel::Strict),
        ] {
            let cfg = load(&[("GITCLAW_FSCK_OBJECTS", text)]).unwrap();
            assert_eq!(cfg.fsck_objects, level);
        }
        let errs = load(&[("GITCLAW_FSCK_OBJECTS", "paranoid")]).unwrap_err();
        assert_eq!(errs[0].variable, "GITCLAW_FSCK_OBJECTS");
        assert!(
            errs[0].message.contains("'off', 'safe', 'strict'"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn cache_sizes_are_read_and_checked() {
        let cfg = load(&[
            ("GITCLAW_RESPONSE_CACHE_BYTES", "0"),
            ("GITCLAW_OBJECT_CACHE_BYTES", "64M"),
            ("GITCLAW_DOWNLOAD_CACHE_BYTES", "2G"),
            ("GITCLAW_OPEN_PACK_CACHE_BYTES", "32M"),
        ])
        .unwrap();
        assert_eq!(
            (
                cfg.response_cache_bytes,
                cfg.object_cache_bytes,
                cfg.download_cache_bytes,
                cfg.open_pack_cache_bytes
            ),
            (0, 64 << 20, 2 << 30, 32 << 20)
        );
        assert_eq!(load(&[]).unwrap().open_pack_cache_bytes, 256 << 20);
        let errs = load(&[("GITCLAW_OBJECT_CACHE_BYTES", "lots")]).unwrap_err();
        assert_eq!(errs[0].variable, "GITCLAW_OBJECT_CACHE_BYTES");
    }

    #[test]
    fn timeouts_and_store_hygiene_are_read_and_checked() {
        let cfg = load(&[]).unwrap();
        assert_eq!(
            cfg.timeouts,
            Timeouts {
                header_secs: 30,
                body_secs: 60,
                body_min_rate: 1024,
                send_secs: 120
            }
        );
        assert_eq!(
            (cfg.gc.sweep_interval_secs, cfg.gc.claim_lease_secs),
            (6 * 3600, 300)
        );
        let cfg = load(&[
            ("GITCLAW_HEADER_TIMEOUT_SECS", "5"),
            ("GITCLAW_BODY_TIMEOUT_SECS", "7"),
            ("GITCLAW_BODY_MIN_RATE", "4K"),
            ("GITCLAW_SEND_TIMEOUT_SECS", "9"),
            ("GITCLAW_SWEEP_INTERVAL_SECS", "0"),
            ("GITCLAW_CLAIM_LEASE_SECS", "30"),
        ])
        .unwrap();
        assert_eq!(
            cfg.timeouts,
            Timeouts {
                header_secs: 5,
                body_secs: 7,
                body_min_rate: 4096,
                send_secs: 9
            }
        );
        assert_eq!(
            (cfg.gc.sweep_interval_secs, cfg.gc.claim_lease_secs),
            (0, 30)
        );
        let errs = load(&[
            ("GITCLAW_HEADER_TIMEOUT_SECS", "0"),
            ("GITCLAW_BODY_TIMEOUT_SECS", "soon"),
            ("GITCLAW_BODY_MIN_RATE", "fast"),
        ])
        .unwrap_err();
        let mut named: Vec<_> = errs.iter().map(|e| e.variable).collect();
        named.sort();
        assert_eq!(
            named,
            [
                "GITCLAW_BODY_MIN_RATE",
                "GITCLAW_BODY_TIMEOUT_SECS",
                "GITCLAW_HEADER_TIMEOUT_SECS"
            ]
        );
    }

    #[test]
    fn former_cache_names_still_work_and_warn_naming_the_new_name() {
        let cfg = load(&[
            ("GITCLAW_PACK_CACHE_BYTES", "5M"),
            ("GITCLAW_STORE_CACHE_BYTES", "7M"),
        ])
        .unwrap();
        assert_eq!(
            (cfg.response_cache_bytes, cfg.download_cache_bytes),
            (5 << 20, 7 << 20)
        );
        assert_eq!(
            cfg.warnings,
            [
                "GITCLAW_PACK_CACHE_BYTES is deprecated: rename it to GITCLAW_RESPONSE_CACHE_BYTES (same meaning)",
                "GITCLAW_STORE_CACHE_BYTES is deprecated: rename it to GITCLAW_DOWNLOAD_CACHE_BYTES (same meaning)",
            ]
        );

        // Both names set: the new one wins, and the old one is called ignored.
        let cfg = load(&[
            ("GITCLAW_PACK_CACHE_BYTES", "5M"),
            ("GITCLAW_RESPONSE_CACHE_BYTES", "0"),
        ])
        .unwrap();
        assert_eq!(cfg.response_cache_bytes, 0);
        assert_eq!(cfg.warnings.len(), 1);
        assert!(
            cfg.warnings[0].contains("ignored: GITCLAW_RESPONSE_CACHE_BYTES is set"),
            "{:?}",
            cfg.warnings
        );

        // A refused value is named by the name it was given under.
        let errs = load(&[("GITCLAW_STORE_CACHE_BYTES", "lots")]).unwrap_err();
        assert_eq!(errs[0].variable, "GITCLAW_STORE_CACHE_BYTES");

        // The file takes former names too.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gitclaw.toml");
        std::fs::write(&path, "gitclaw_pack_cache_bytes = \"3M\"\n").unwrap();
        let cfg = Config::from_sources(|_| None, Some(&path)).unwrap();
        assert_eq!(cfg.response_cache_bytes, 3 << 20);
        assert!(cfg.warnings[0].contains("GITCLAW_RESPONSE_CACHE_BYTES"));
    }

    #[test]
    fn every_listed_setting_is_read_and_every_read_setting_is_listed() {
        let env = |name: &str| match name {
            "S3_BUCKET" => Some("gitclaw".to_string()),
            "S3_REGION" => Some("garage".to_string()),
            _ => None,
        };
        let mut sources = Sources::new(&env, None);
        Config::read(&mut sources);
        assert!(sources.errors.is_empty(), "{:?}", sources.errors);
        let mut read = sources.read.clone();
        read.sort();
        let mut listed: Vec<_> = settings::all().map(|s| s.name()).collect();
        listed.sort();
        assert_eq!(read, listed);
    }

    #[test]
    fn listed_defaults_agree_with_the_libraries_defaults() {
        let cfg = load(&[("S3_BUCKET", "gitclaw"), ("S3_REGION", "garage")]).unwrap();
        let writer = gitclaw_pack::writer::WriteOptions::default();
        assert_eq!(
            (cfg.pack_window, cfg.pack_depth),
            (writer.window, writer.max_depth)
        );
        assert_eq!(cfg.fsck_objects, gitclaw_pack::fsck::FsckLevel::default());
        assert_eq!(
            cfg.s3.unwrap(),
            gitclaw_storage::S3Settings::new("gitclaw", "garage"),
            "the S3 defaults listed in config/settings.rs differ from gitclaw-storage's"
        );
    }

    #[test]
    fn the_example_configuration_file_loads() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config/gitclaw.example.toml"
        );
        let cfg = Config::from_sources(|_| None, Some(Path::new(path))).unwrap();
        assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    }

    proptest::proptest! {
        /// A configuration missing a required field is refused with a message
        /// naming it; a complete one is accepted.
        #[test]
        fn missing_required_s3_fields_are_named(
            region in proptest::bool::ANY,
            key_id in proptest::bool::ANY,
            secret in proptest::bool::ANY,
            endpoint in proptest::bool::ANY,
        ) {
            let mut vars = vec![("S3_BUCKET", "gitclaw-objects")];
            if region { vars.push(("S3_REGION", "eu-west-1")); }
            if key_id { vars.push(("S3_ACCESS_KEY_ID", "AKIAEXAMPLE")); }
            if secret { vars.push(("S3_SECRET_ACCESS_KEY", "secret")); }
            if endpoint { vars.push(("S3_ENDPOINT", "https://s3.example.com")); }
            let mut missing = Vec::new();
            if !region { missing.push("S3_REGION"); }
            if key_id && !secret { missing.push("S3_SECRET_ACCESS_KEY"); }
            if secret && !key_id { missing.push("S3_ACCESS_KEY_ID"); }
            match load(&vars) {
                Ok(cfg) => {
                    proptest::prop_assert!(missing.is_empty(), "accepted without {missing:?}");
                    proptest::prop_assert!(cfg.s3.is_some());
                }
                Err(errs) => {
                    let named: Vec<_> = errs.iter().map(|e| e.variable).collect();
                    proptest::prop_assert_eq!(named, missing.clone());
                    for err in &errs {
                        proptest::prop_assert!(err.to_string().starts_with(err.variable));
                    }
                }
            }
        }
    }
}
