//! What values a setting takes: how its text is read, and how `--help` and the
//! README describe what is accepted.
//!
//! A kind reads text only; it never names the variable (the caller does, so the
//! same kind serves every setting and every deprecated name).

use std::net::SocketAddr;

/// How a setting's text is read.
pub trait Kind {
    type Value;
    /// The value `text` stands for, or what is wrong with it, quoting the text.
    fn parse(&self, text: &str) -> Result<Self::Value, String>;
    /// What is accepted, in markdown: `1` to `86400`, `true` or `false`.
    fn accepts(&self) -> String;
}

/// Any text, taken as given; `what` names it for the help (`path`, `URL`).
pub struct Text {
    pub what: &'static str,
}

impl Kind for Text {
    type Value = String;
    fn parse(&self, text: &str) -> Result<String, String> {
        Ok(text.to_string())
    }
    fn accepts(&self) -> String {
        self.what.to_string()
    }
}

/// A socket address: `IP:PORT`.
pub struct Address;

impl Kind for Address {
    type Value = SocketAddr;
    fn parse(&self, text: &str) -> Result<SocketAddr, String> {
        text.trim()
            .parse()
            .map_err(|_| format!("'{text}' is not an address like 127.0.0.1:8080"))
    }
    fn accepts(&self) -> String {
        "`IP:PORT`".to_string()
    }
}

/// An http or https URL with a host; a trailing `/` is dropped.
pub struct HttpUrl {
    /// Shown when a value is refused.
    pub example: &'static str,
}

impl Kind for HttpUrl {
    type Value = String;
    fn parse(&self, text: &str) -> Result<String, String> {
        let url = text.trim().trim_end_matches('/');
        let ok = match url.parse::<axum::http::Uri>() {
            Ok(uri) => {
                matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.host().is_some_and(|h| !h.is_empty())
            }
            Err(_) => false,
        };
        if ok {
            Ok(url.to_string())
        } else {
            Err(format!(
                "'{url}' is not an http(s) URL like {}",
                self.example
            ))
        }
    }
    fn accepts(&self) -> String {
        "http(s) URL".to_string()
    }
}

/// A database URL: SQLite or PostgreSQL.
pub struct DatabaseUrl;

impl Kind for DatabaseUrl {
    type Value = String;
    fn parse(&self, text: &str) -> Result<String, String> {
        if ["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| text.starts_with(scheme))
        {
            Ok(text.to_string())
        } else {
            Err(
                "must start with sqlite: or postgres:// (e.g. sqlite://./gitclaw-data/gitclaw.db)"
                    .to_string(),
            )
        }
    }
    fn accepts(&self) -> String {
        "`sqlite://PATH` or `postgres://…`".to_string()
    }
}

/// A Redis URL: `redis://[:password@]host[:port][/db]`, `rediss://` for TLS
/// (a refusal never quotes it: it may hold a password).
pub struct RedisUrl;

impl Kind for RedisUrl {
    type Value = String;
    fn parse(&self, text: &str) -> Result<String, String> {
        let text = text.trim();
        let scheme_ok = ["redis://", "rediss://", "redis+unix://"]
            .iter()
            .any(|scheme| text.starts_with(scheme));
        if scheme_ok && redis::IntoConnectionInfo::into_connection_info(text).is_ok() {
            Ok(text.to_string())
        } else {
            Err("is not a Redis URL like redis://127.0.0.1:6379/0".to_string())
        }
    }
    fn accepts(&self) -> String {
        "`redis://[:PASSWORD@]HOST[:PORT][/DB]`, or `rediss://…` for TLS".to_string()
    }
}

/// A secret of at least `min_len` bytes; a refusal never quotes it.
pub struct Secret {
    pub min_len: usize,
}

impl Kind for Secret {
    type Value = String;
    fn parse(&self, text: &str) -> Result<String, String> {
        if text.len() >= self.min_len {
            Ok(text.to_string())
        } else {
            Err(format!("must be at least {} characters", self.min_len))
        }
    }
    fn accepts(&self) -> String {
        format!("at least {} characters", self.min_len)
    }
}

/// An S3 bucket name: 3 to 63 of `a-z`, `0-9`, `-`, `.`, starting and ending
/// with a letter or digit.
pub struct BucketName;

impl Kind for BucketName {
    type Value = String;
    fn parse(&self, text: &str) -> Result<String, String> {
        let valid = (3..=63).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !text.starts_with(['-', '.'])
            && !text.ends_with(['-', '.']);
        if valid {
            Ok(text.to_string())
        } else {
            Err(format!(
                "'{text}' is not a bucket name (3 to 63 of a-z, 0-9, '-', '.')"
            ))
        }
    }
    fn accepts(&self) -> String {
        "bucket name".to_string()
    }
}

/// A number of bytes: `123`, `512K`, `64M`, `2G` (powers of 1024).
pub struct Size {
    /// `0` is refused.
    pub positive: bool,
}

impl Kind for Size {
    type Value = u64;
    fn parse(&self, text: &str) -> Result<u64, String> {
        match parse_bytes(text) {
            Some(n) if n > 0 || !self.positive => Ok(n),
            _ if self.positive => Err(format!(
                "'{text}' is not a positive size (e.g. 2147483648, 512M, 2G)"
            )),
            _ => Err(format!("'{text}' is not a size (e.g. 0, 512M, 2G)")),
        }
    }
    fn accepts(&self) -> String {
        let size = "bytes, or `512K`, `64M`, `2G`";
        if self.positive {
            format!("{size} (not `0`)")
        } else {
            size.to_string()
        }
    }
}

/// A whole number from `min` to `max`.
pub struct Number {
    pub min: u64,
    pub max: u64,
}

impl Number {
    /// Any whole number.
    pub const ANY: Number = Number::at_least(0);

    pub const fn at_least(min: u64) -> Number {
        Number { min, max: u64::MAX }
    }
}

impl Kind for Number {
    type Value = u64;
    fn parse(&self, text: &str) -> Result<u64, String> {
        match text.trim().parse::<u64>() {
            Ok(n) if (self.min..=self.max).contains(&n) => Ok(n),
            _ if self.max < u64::MAX => Err(format!(
                "'{text}' is not a number from {} to {}",
                self.min, self.max
            )),
            _ if self.min > 0 => Err(format!(
                "'{text}' is not a whole number of at least {}",
                self.min
            )),
            _ => Err(format!("'{text}' is not a whole number")),
        }
    }
    fn accepts(&self) -> String {
        match (self.min, self.max) {
            (min, u64::MAX) if min > 0 => format!("whole number, at least `{min}`"),
            (_, u64::MAX) => "whole number".to_string(),
            (min, max) => format!("`{min}` to `{max}`"),
        }
    }
}

/// `true` or `false` (also `1` or `0`).
pub struct Flag;

impl Kind for Flag {
    type Value = bool;
    fn parse(&self, text: &str) -> Result<bool, String> {
        match text.trim() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(format!("'{text}' is neither true nor false")),
        }
    }
    fn accepts(&self) -> String {
        "`true` or `false`".to_string()
    }
}

/// One of a few names, each standing for a value.
pub struct Choice<T: 'static>(pub &'static [(&'static str, T)]);

impl<T: Copy> Kind for Choice<T> {
    type Value = T;
    fn parse(&self, text: &str) -> Result<T, String> {
        let text = text.trim();
        if let Some((_, value)) = self.0.iter().find(|(name, _)| *name == text) {
            return Ok(*value);
        }
        let quoted: Vec<String> = self.0.iter().map(|(n, _)| format!("'{n}'")).collect();
        Err(match quoted.as_slice() {
            [a, b] => format!("'{text}' is neither {a} nor {b}"),
            _ => format!("'{text}' is not one of {}", quoted.join(", ")),
        })
    }
    fn accepts(&self) -> String {
        let names: Vec<String> = self.0.iter().map(|(n, _)| format!("`{n}`")).collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.concat(),
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

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_bytes("512"), Some(512));
        assert_eq!(parse_bytes("4k"), Some(4096));
        assert_eq!(parse_bytes("2G"), Some(2 << 30));
        assert_eq!(parse_bytes("x"), None);
        assert_eq!(parse_bytes("99999999999999999G"), None);
        assert!(Size { positive: true }.parse("0").is_err());
        assert_eq!(Size { positive: false }.parse("0"), Ok(0));
    }

    #[test]
    fn each_kind_says_what_it_accepts() {
        assert_eq!(Number { min: 1, max: 4095 }.accepts(), "`1` to `4095`");
        assert_eq!(Number::at_least(1).accepts(), "whole number, at least `1`");
        assert_eq!(Number::ANY.accepts(), "whole number");
        assert_eq!(
            Choice(&[("a", 1), ("b", 2), ("c", 3)]).accepts(),
            "`a`, `b` or `c`"
        );
        assert_eq!(Choice(&[("a", 1), ("b", 2)]).accepts(), "`a` or `b`");
    }

    #[test]
    fn refusals_quote_the_text_and_say_what_would_do() {
        const URL: HttpUrl = HttpUrl {
            example: "http://127.0.0.1:3900",
        };
        assert_eq!(
            Number { min: 0, max: 1000 }.parse("1001").unwrap_err(),
            "'1001' is not a number from 0 to 1000"
        );
        assert_eq!(
            Choice(&[("text", 1), ("json", 2)])
                .parse("xml")
                .unwrap_err(),
            "'xml' is neither 'text' nor 'json'"
        );
        assert_eq!(
            URL.parse("ftp://x").unwrap_err(),
            "'ftp://x' is not an http(s) URL like http://127.0.0.1:3900"
        );
        assert_eq!(
            URL.parse("http://127.0.0.1:3900/"),
            Ok("http://127.0.0.1:3900".to_string())
        );
        assert_eq!(Flag.parse(" 1 "), Ok(true));
    }
}
