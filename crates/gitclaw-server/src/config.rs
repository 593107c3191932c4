//! Configuration: environment variables over an optional TOML file, validated at start.
//!
//! Every problem is reported as one line naming the variable. Not here: reaching
//! the database or the store (see `check`).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::Deserialize;

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
    pub log_format: LogFormat,
    /// Base URL used in `clone_url` answers; derived from the listen address when unset.
    pub public_url: Option<String>,
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

/// The TOML file's shape: the same names as the environment variables, lower-case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    gitclaw_listen: Option<String>,
    gitclaw_data_dir: Option<String>,
    database_url: Option<String>,
    gitclaw_max_pack_bytes: Option<u64>,
    gitclaw_max_concurrent_pushes: Option<usize>,
    gitclaw_log_format: Option<String>,
    gitclaw_public_url: Option<String>,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_MAX_PACK_BYTES: u64 = 2 * 1024 * 1024 * 1024;

impl Config {
    /// Load from the process environment and, when given, a TOML file.
    pub fn load(file: Option<&Path>) -> Result<Config, Vec<ConfigError>> {
        Config::from_sources(|name| std::env::var(name).ok(), file)
    }

    /// Load from a variable lookup (the environment in production, a map in tests).
    pub fn from_sources(
        env: impl Fn(&str) -> Option<String>,
        file: Option<&Path>,
    ) -> Result<Config, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let file_cfg = match file {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => match toml::from_str::<FileConfig>(&text) {
                    Ok(cfg) => cfg,
                    Err(err) => {
                        errors.push(problem(
                            "GITCLAW_CONFIG",
                            format!("{}: {}", path.display(), err.message()),
                        ));
                        FileConfig::default()
                    }
                },
                Err(err) => {
                    errors.push(problem(
                        "GITCLAW_CONFIG",
                        format!("cannot read {}: {err}", path.display()),
                    ));
                    FileConfig::default()
                }
            },
            None => FileConfig::default(),
        };
        let get = |name: &str, from_file: Option<String>| {
            env(name).filter(|v| !v.is_empty()).or(from_file)
        };

        let listen_text = get("GITCLAW_LISTEN", file_cfg.gitclaw_listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
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
        let data_dir = PathBuf::from(
            get("GITCLAW_DATA_DIR", file_cfg.gitclaw_data_dir)
                .unwrap_or_else(|| "./gitclaw-data".into()),
        );
        let database_url = get("DATABASE_URL", file_cfg.database_url)
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
        let max_pack_bytes = match env("GITCLAW_MAX_PACK_BYTES").filter(|v| !v.is_empty()) {
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
            None => file_cfg
                .gitclaw_max_pack_bytes
                .unwrap_or(DEFAULT_MAX_PACK_BYTES),
        };
        let max_concurrent_pushes =
            match env("GITCLAW_MAX_CONCURRENT_PUSHES").filter(|v| !v.is_empty()) {
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
                None => file_cfg.gitclaw_max_concurrent_pushes.unwrap_or(16),
            };
        let log_format = match get("GITCLAW_LOG_FORMAT", file_cfg.gitclaw_log_format).as_deref() {
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
        let public_url = get("GITCLAW_PUBLIC_URL", file_cfg.gitclaw_public_url)
            .map(|u| u.trim_end_matches('/').to_string());
        if let Some(url) = &public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                errors.push(problem(
                    "GITCLAW_PUBLIC_URL",
                    format!("'{url}' is not an http(s) URL"),
                ));
            }
        }
        match (errors.is_empty(), listen) {
            (true, Some(listen)) => Ok(Config {
                listen,
                data_dir,
                database_url,
                max_pack_bytes,
                max_concurrent_pushes,
                log_format,
                public_url,
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
            log_format: LogFormat::Text,
            public_url: None,
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
        let cfg = Config::from_sources(
            |k| (k == "GITCLAW_LISTEN").then(|| "127.0.0.1:9100".to_string()),
            Some(&path),
        )
        .unwrap();
        assert_eq!(cfg.listen.port(), 9100);
        assert_eq!(cfg.data_dir, PathBuf::from("/srv/git"));
    }
}
