//! Configuration: environment variables over an optional TOML file, validated at start.
//!
//! Every problem is reported as one line naming the variable. Not here: reaching
//! the database or the store (see `check`).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The validated configuration of a GitClaw process.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub max_pack_bytes: u64,
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
    /// The bootstrap admin token; `None` runs the server open (no authentication).
    pub admin_token: Option<String>,
    /// Allow running open on a non-loopback address.
    pub allow_anonymous: bool,
    /// Bytes of generated clone packs kept on disk for repeated identical clones (0: off).
    pub pack_cache_bytes: u64,
    /// Bytes of inflated commits and trees kept in memory across requests (0: off).
    pub object_cache_bytes: u64,
    /// Disk space for packs downloaded from the object store.
    pub store_cache_bytes: u64,
    /// Objects each delta candidate is compared with (git's `pack.window`; 0: no search).
    pub pack_window: usize,
    /// Longest chain of new deltas (git's `pack.depth`).
    pub pack_depth: u32,
    /// How long the server waits on clients.
    pub timeouts: Timeouts,
    /// Which of git's fsck checks a pushed object must pass.
    pub fsck_objects: gitclaw_pack::fsck::FsckLevel,
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

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header_secs: 30,
            body_secs: 60,
            body_min_rate: 1024,
            send_secs: 120,
        }
    }
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
    /// Every this many seconds, each repository's store keys that no row records
    /// and that are older than the grace period are deleted (0: only by `gc`).
    pub sweep_interval_secs: u64,
    /// How long a push's hold on the keys it is writing lasts unless renewed
    /// (a dead process's holds lapse after this).
    pub claim_lease_secs: u64,
}

impl Default for GcSettings {
    fn default() -> Self {
        GcSettings {
            grace_secs: 3600,
            loose_threshold: 100,
            pack_threshold: 10,
            sweep_interval_secs: 6 * 3600,
            claim_lease_secs: 300,
        }
    }
}

/// One configuration problem, naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

fn problem(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        message: message.into(),
    }
}

/// Every variable the configuration file may set (in lower case there).
pub const KNOWN_VARIABLES: &[&str] = &[
    "GITCLAW_LISTEN",
    "GITCLAW_DATA_DIR",
    "DATABASE_URL",
    "GITCLAW_MAX_PACK_BYTES",
    "GITCLAW_MAX_CONCURRENT_PUSHES",
    "GITCLAW_PUSH_WAIT_SECS",
    "GITCLAW_LOG_FORMAT",
    "GITCLAW_PUBLIC_URL",
    "GITCLAW_ADMIN_TOKEN",
    "GITCLAW_ALLOW_ANONYMOUS",
    "GITCLAW_GC_GRACE_SECS",
    "GITCLAW_GC_LOOSE_THRESHOLD",
    "GITCLAW_GC_PACK_THRESHOLD",
    "GITCLAW_PACK_CACHE_BYTES",
    "GITCLAW_OBJECT_CACHE_BYTES",
    "GITCLAW_STORE_CACHE_BYTES",
    "GITCLAW_PACK_WINDOW",
    "GITCLAW_PACK_DEPTH",
    "GITCLAW_HEADER_TIMEOUT_SECS",
    "GITCLAW_BODY_TIMEOUT_SECS",
    "GITCLAW_BODY_MIN_RATE",
    "GITCLAW_SEND_TIMEOUT_SECS",
    "GITCLAW_SWEEP_INTERVAL_SECS",
    "GITCLAW_CLAIM_LEASE_SECS",
    "GITCLAW_FSCK_OBJECTS",
    "S3_ENDPOINT",
    "S3_BUCKET",
    "S3_REGION",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
    "S3_USE_PATH_STYLE",
    "S3_AUTO_CREATE_BUCKET",
    "S3_CA_CERT",
    "S3_MAX_RETRIES",
    "S3_RETRY_MAX_BACKOFF",
    "S3_SLOW_OP_MS",
    "S3_CONNECT_TIMEOUT_MS",
    "S3_READ_TIMEOUT_MS",
];

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_MAX_PACK_BYTES: u64 = 2 * 1024 * 1024 * 1024;
pub const DEFAULT_PACK_CACHE_BYTES: u64 = 1024 * 1024 * 1024;
pub const DEFAULT_OBJECT_CACHE_BYTES: u64 = 256 * 1024 * 1024;
pub const DEFAULT_STORE_CACHE_BYTES: u64 = 10 * 1024 * 1024 * 1024;
/// Largest delta-search window: each entry holds an object's body in memory.
pub const MAX_PACK_WINDOW: u64 = 1000;

/// Values from a TOML file, keyed by upper-case variable name.
fn read_file(
    path: &Path,
    errors: &mut Vec<ConfigError>,
) -> std::collections::HashMap<String, String> {
    let mut values = std::collections::HashMap::new();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) => {
            errors.push(problem(
                "GITCLAW_CONFIG",
                format!("cannot read {}: {err}", path.display()),
            ));
            return values;
        }
    };
    let table = match text.parse::<toml::Table>() {
        Ok(table) => table,
        Err(err) => {
            errors.push(problem(
                "GITCLAW_CONFIG",
                format!("{}: {}", path.display(), err.message()),
            ));
            return values;
        }
    };
    for (key, value) in table {
        let name = key.to_ascii_uppercase();
        if !KNOWN_VARIABLES.contains(&name.as_str()) {
            errors.push(problem(
                "GITCLAW_CONFIG",
                format!("{}: unknown setting '{key}'", path.display()),
            ));
            continue;
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Float(f) => f.to_string(),
            other => {
                errors.push(problem(
                    "GITCLAW_CONFIG",
                    format!(
                        "{}: '{key}' must be a string, number or boolean, not {}",
                        path.display(),
                        other.type_str()
                    ),
                ));
                continue;
            }
        };
        values.insert(name, text);
    }
    values
}

impl Config {
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
        let mut errors = Vec::new();
        let file_values = file.map(|p| read_file(p, &mut errors)).unwrap_or_default();
        let get = |name: &str| {
            env(name)
                .filter(|v| !v.is_empty())
                .or_else(|| file_values.get(name).cloned())
        };

        let listen_text = get("GITCLAW_LISTEN").unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen = match listen_text.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                errors.push(problem(
                    "GITCLAW_LISTEN",
                    format!("'{listen_text}' is not an address like 127.0.0.1:8080"),
                ));
                None
            }
        };
        let data_dir =
            PathBuf::from(get("GITCLAW_DATA_DIR").unwrap_or_else(|| "./gitclaw-data".into()));
        let database_url = get("DATABASE_URL")
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("gitclaw.db").display()));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            errors.push(problem(
                "DATABASE_URL",
                "must start with sqlite: or postgres:// (e.g. sqlite://./gitclaw-data/gitclaw.db)",
            ));
        }
        let max_pack_bytes = match get("GITCLAW_MAX_PACK_BYTES") {
            Some(text) => match parse_bytes(&text) {
                Some(n) if n > 0 => n,
                _ => {
                    errors.push(problem(
                        "GITCLAW_MAX_PACK_BYTES",
                        format!("'{text}' is not a positive size (e.g. 2147483648, 512M, 2G)"),
                    ));
                    0
                }
            },
            None => DEFAULT_MAX_PACK_BYTES,
        };
        let max_concurrent_pushes = match get("GITCLAW_MAX_CONCURRENT_PUSHES") {
            Some(text) => match text.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    errors.push(problem(
                        "GITCLAW_MAX_CONCURRENT_PUSHES",
                        format!("'{text}' is not a positive number"),
                    ));
                    1
                }
            },
            None => 16,
        };
        let log_format = match get("GITCLAW_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                errors.push(problem(
                    "GITCLAW_LOG_FORMAT",
                    format!("'{other}' is neither 'text' nor 'json'"),
                ));
                LogFormat::Text
            }
        };
        let public_url = get("GITCLAW_PUBLIC_URL").map(|u| u.trim_end_matches('/').to_string());
        if let Some(url) = &public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                errors.push(problem(
                    "GITCLAW_PUBLIC_URL",
                    format!("'{url}' is not an http(s) URL"),
                ));
            }
        }
        let mut number = |name: &'static str, default: u64| match get(name) {
            Some(text) => text.trim().parse::<u64>().unwrap_or_else(|_| {
                errors.push(problem(name, format!("'{text}' is not a whole number")));
                default
            }),
            None => default,
        };
        let defaults = GcSettings::default();
        let gc = GcSettings {
            grace_secs: number("GITCLAW_GC_GRACE_SECS", defaults.grace_secs),
            loose_threshold: number(
                "GITCLAW_GC_LOOSE_THRESHOLD",
                defaults.loose_threshold as u64,
            ) as usize,
            pack_threshold: number("GITCLAW_GC_PACK_THRESHOLD", defaults.pack_threshold as u64)
                as usize,
            sweep_interval_secs: number(
                "GITCLAW_SWEEP_INTERVAL_SECS",
                defaults.sweep_interval_secs,
            ),
            claim_lease_secs: number("GITCLAW_CLAIM_LEASE_SECS", defaults.claim_lease_secs),
        };
        let admin_token = get("GITCLAW_ADMIN_TOKEN");
        if let Some(token) = &admin_token {
            if token.len() < 16 {
                errors.push(problem(
                    "GITCLAW_ADMIN_TOKEN",
                    "must be at least 16 characters",
                ));
            }
        }
        let allow_anonymous = match get("GITCLAW_ALLOW_ANONYMOUS").as_deref() {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(other) => {
                errors.push(problem(
                    "GITCLAW_ALLOW_ANONYMOUS",
                    format!("'{other}' is neither true nor false"),
                ));
                false
            }
        };
        let push_wait_secs = match get("GITCLAW_PUSH_WAIT_SECS") {
            Some(text) => text.trim().parse::<u64>().unwrap_or_else(|_| {
                errors.push(problem(
                    "GITCLAW_PUSH_WAIT_SECS",
                    format!("'{text}' is not a whole number of seconds"),
                ));
                0
            }),
            None => 60,
        };
        let mut size = |name: &'static str, default: u64| match get(name) {
            Some(text) => parse_bytes(&text).unwrap_or_else(|| {
                errors.push(problem(
                    name,
                    format!("'{text}' is not a size (e.g. 0, 512M, 2G)"),
                ));
                0
            }),
            None => default,
        };
        let pack_cache_bytes = size("GITCLAW_PACK_CACHE_BYTES", DEFAULT_PACK_CACHE_BYTES);
        let object_cache_bytes = size("GITCLAW_OBJECT_CACHE_BYTES", DEFAULT_OBJECT_CACHE_BYTES);
        let store_cache_bytes = size("GITCLAW_STORE_CACHE_BYTES", DEFAULT_STORE_CACHE_BYTES);
        let body_min_rate = size("GITCLAW_BODY_MIN_RATE", Timeouts::default().body_min_rate);
        let defaults = gitclaw_pack::writer::WriteOptions::default();
        let mut bounded = |name: &'static str, low: u64, high: u64, default: u64| match get(name) {
            Some(text) => match text.trim().parse::<u64>() {
                Ok(n) if (low..=high).contains(&n) => n,
                _ => {
                    errors.push(problem(
                        name,
                        format!("'{text}' is not a number from {low} to {high}"),
                    ));
                    default
                }
            },
            None => default,
        };
        let pack_window = bounded(
            "GITCLAW_PACK_WINDOW",
            0,
            MAX_PACK_WINDOW,
            defaults.window as u64,
        ) as usize;
        // Readers (git's and ours) follow chains up to 4095 deep.
        let pack_depth =
            bounded("GITCLAW_PACK_DEPTH", 1, 4095, u64::from(defaults.max_depth)) as u32;
        let defaults = Timeouts::default();
        let timeouts = Timeouts {
            header_secs: bounded(
                "GITCLAW_HEADER_TIMEOUT_SECS",
                1,
                86400,
                defaults.header_secs,
            ),
            body_secs: bounded("GITCLAW_BODY_TIMEOUT_SECS", 1, 86400, defaults.body_secs),
            send_secs: bounded("GITCLAW_SEND_TIMEOUT_SECS", 1, 86400, defaults.send_secs),
            body_min_rate,
        };
        let fsck_objects = match get("GITCLAW_FSCK_OBJECTS") {
            None => gitclaw_pack::fsck::FsckLevel::default(),
            Some(text) => {
                gitclaw_pack::fsck::FsckLevel::from_name(text.trim()).unwrap_or_else(|| {
                    errors.push(problem(
                        "GITCLAW_FSCK_OBJECTS",
                        format!("'{text}' is not one of 'off', 'safe', 'strict'"),
                    ));
                    gitclaw_pack::fsck::FsckLevel::default()
                })
            }
        };
        let s3 = s3_settings(&get, &mut errors);
        match (errors.is_empty(), listen) {
            (true, Some(listen)) => Ok(Config {
                listen,
                data_dir,
                database_url,
                max_pack_bytes,
                max_concurrent_pushes,
                push_wait_secs,
                log_format,
                public_url,
                s3,
                gc,
                admin_token,
                allow_anonymous,
                pack_cache_bytes,
                object_cache_bytes,
                store_cache_bytes,
                pack_window,
                pack_depth,
                timeouts,
                fsck_objects,
            }),
            _ => Err(errors),
        }
    }

    /// A configuration for tests and embedded use: everything under `data_dir`.
    pub fn for_data_dir(data_dir: &Path) -> Config {
        Config {
            listen: DEFAULT_LISTEN.parse().expect("constant address"),
            data_dir: data_dir.to_owned(),
            database_url: format!("sqlite://{}", data_dir.join("gitclaw.db").display()),
            max_pack_bytes: DEFAULT_MAX_PACK_BYTES,
            max_concurrent_pushes: 16,
            push_wait_secs: 60,
            log_format: LogFormat::Text,
            public_url: None,
            s3: None,
            gc: GcSettings::default(),
            admin_token: None,
            allow_anonymous: false,
            pack_cache_bytes: DEFAULT_PACK_CACHE_BYTES,
            object_cache_bytes: DEFAULT_OBJECT_CACHE_BYTES,
            store_cache_bytes: DEFAULT_STORE_CACHE_BYTES,
            pack_window: gitclaw_pack::writer::WriteOptions::default().window,
            pack_depth: gitclaw_pack::writer::WriteOptions::default().max_depth,
            timeouts: Timeouts::default(),
            fsck_objects: gitclaw_pack::fsck::FsckLevel::default(),
        }
    }
}

/// The S3 settings when `S3_BUCKET` is set; every problem is pushed naming its variable.
fn s3_settings(
    get: &impl Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) -> Option<gitclaw_storage::S3Settings> {
    let Some(bucket) = get("S3_BUCKET") else {
        // S3 settings without a bucket are a half-done setup, not a choice of the filesystem.
        for name in [
            "S3_ENDPOINT",
            "S3_REGION",
            "S3_ACCESS_KEY_ID",
            "S3_SECRET_ACCESS_KEY",
        ] {
            if get(name).is_some() {
                errors.push(problem(
                    "S3_BUCKET",
                    format!("{name} is set but S3_BUCKET is not; set S3_BUCKET to use S3, or unset {name}"),
                ));
                break;
            }
        }
        return None;
    };
    let before = errors.len();
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !bucket.starts_with(['-', '.'])
        && !bucket.ends_with(['-', '.']);
    if !valid_bucket {
        errors.push(problem(
            "S3_BUCKET",
            format!("'{bucket}' is not a bucket name (3 to 63 of a-z, 0-9, '-', '.')"),
        ));
    }
    let region = get("S3_REGION").unwrap_or_default();
    if region.is_empty() {
        errors.push(problem(
            "S3_REGION",
            "required when S3_BUCKET is set (e.g. us-east-1; 'garage' for Garage, 'auto' for R2)",
        ));
    }
    let endpoint = get("S3_ENDPOINT").map(|e| e.trim_end_matches('/').to_string());
    if let Some(endpoint) = &endpoint {
        let ok = match endpoint.parse::<axum::http::Uri>() {
            Ok(uri) => {
                matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.host().is_some_and(|h| !h.is_empty())
            }
            Err(_) => false,
        };
        if !ok {
            errors.push(problem(
                "S3_ENDPOINT",
                format!("'{endpoint}' is not an http(s) URL like http://127.0.0.1:3900"),
            ));
        }
    }
    let credentials = match (get("S3_ACCESS_KEY_ID"), get("S3_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => Some((id, secret)),
        (None, None) => None,
        (Some(_), None) => {
            errors.push(problem(
                "S3_SECRET_ACCESS_KEY",
                "required when S3_ACCESS_KEY_ID is set",
            ));
            None
        }
        (None, Some(_)) => {
            errors.push(problem(
                "S3_ACCESS_KEY_ID",
                "required when S3_SECRET_ACCESS_KEY is set",
            ));
            None
        }
    };
    let mut flag = |name: &'static str| match get(name).as_deref() {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(other) => {
            errors.push(problem(
                name,
                format!("'{other}' is neither true nor false"),
            ));
            false
        }
    };
    let path_style = flag("S3_USE_PATH_STYLE");
    let auto_create_bucket = flag("S3_AUTO_CREATE_BUCKET");
    let ca_cert = get("S3_CA_CERT").map(PathBuf::from);
    if let Some(path) = &ca_cert {
        match std::fs::read_to_string(path) {
            Ok(text) if text.contains("-----BEGIN CERTIFICATE-----") => {}
            Ok(_) => errors.push(problem(
                "S3_CA_CERT",
                format!("{} holds no PEM certificate", path.display()),
            )),
            Err(err) => errors.push(problem(
                "S3_CA_CERT",
                format!("cannot read {}: {err}", path.display()),
            )),
        }
    }
    let mut number = |name: &'static str, default: u64, min: u64| match get(name) {
        Some(text) => match text.trim().parse::<u64>() {
            Ok(n) if n >= min => n,
            _ => {
                errors.push(problem(
                    name,
                    format!("'{text}' is not a whole number of at least {min}"),
                ));
                default
            }
        },
        None => default,
    };
    let defaults = gitclaw_storage::S3Settings::new("", "");
    let max_retries = number("S3_MAX_RETRIES", defaults.max_retries as u64, 0).min(100) as u32;
    let retry_max_backoff = std::time::Duration::from_secs(number(
        "S3_RETRY_MAX_BACKOFF",
        defaults.retry_max_backoff.as_secs(),
        1,
    ));
    let ms = std::time::Duration::from_millis;
    let slow_op = ms(number(
        "S3_SLOW_OP_MS",
        defaults.slow_op.as_millis() as u64,
        1,
    ));
    let connect_timeout = ms(number(
        "S3_CONNECT_TIMEOUT_MS",
        defaults.connect_timeout.as_millis() as u64,
        1,
    ));
    let read_timeout = ms(number(
        "S3_READ_TIMEOUT_MS",
        defaults.read_timeout.as_millis() as u64,
        1,
    ));
    (errors.len() == before).then_some(gitclaw_storage::S3Settings {
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

impl Config {
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

/// Parse `123`, `512K`, `64M`, `2G` (powers of 1024).
pub fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, factor) = match text.char_indices().last()? {
        (i, 'k' | 'K') => (&text[..i], 1u64 << 10),
        (i, 'm' | 'M') => (&text[..i], 1 << 20),
        (i, 'g' | 'G') => (&text[..i], 1 << 30),
        _ => (text, 1),
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(factor)
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
        assert_eq!(cfg.max_pack_bytes, DEFAULT_MAX_PACK_BYTES);
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
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_bytes("512"), Some(512));
        assert_eq!(parse_bytes("4k"), Some(4096));
        assert_eq!(parse_bytes("2G"), Some(2 << 30));
        assert_eq!(parse_bytes("x"), None);
        assert_eq!(parse_bytes("99999999999999999G"), None);
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
            ("GITCLAW_PACK_CACHE_BYTES", "0"),
            ("GITCLAW_OBJECT_CACHE_BYTES", "64M"),
            ("GITCLAW_STORE_CACHE_BYTES", "2G"),
        ])
        .unwrap();
        assert_eq!(
            (
                cfg.pack_cache_bytes,
                cfg.object_cache_bytes,
                cfg.store_cache_bytes
            ),
            (0, 64 << 20, 2 << 30)
        );
        let errs = load(&[("GITCLAW_OBJECT_CACHE_BYTES", "lots")]).unwrap_err();
        assert_eq!(errs[0].variable, "GITCLAW_OBJECT_CACHE_BYTES");
    }

    #[test]
    fn timeouts_and_store_hygiene_are_read_and_checked() {
        let cfg = load(&[]).unwrap();
        assert_eq!(cfg.timeouts, Timeouts::default());
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

    proptest::proptest! {
        /// Property 3: a configuration missing a required field is refused with a
        /// message naming it; a complete one is accepted.
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
