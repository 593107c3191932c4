//! Capabilities a client asks for: the space-separated list after the first
//! `want` (upload-pack v0/v1) or after the NUL of the first command
//! (receive-pack), and the one-per-line capabilities of a protocol v2
//! request. Each is `name` or `name=value`.
//!
//! This module only records them. Unknown names are kept, never an error:
//! deciding which capabilities are acceptable (and that the client only asks
//! for what was advertised) is the server's job. Writing the server's own
//! advertisement is in [`crate::refs`].

use crate::{text, ProtocolError};

/// The capabilities of one request, in the order the client sent them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    entries: Vec<(String, Option<String>)>,
}

impl Capabilities {
    /// Parses a space-separated list (`multi_ack side-band-64k agent=git/2.45`).
    /// Errors only when the list is not UTF-8 or holds control characters.
    pub fn parse(list: &[u8]) -> Result<Self, ProtocolError> {
        let list = text::text(list, "capability list")?;
        let mut caps = Capabilities::default();
        for entry in list.split(' ').filter(|entry| !entry.is_empty()) {
            caps.push(entry);
        }
        Ok(caps)
    }

    /// Adds one `name` or `name=value` entry (a protocol v2 capability line,
    /// whose value may contain spaces).
    pub(crate) fn push(&mut self, entry: &str) {
        let (name, value) = match entry.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (entry, None),
        };
        self.entries.push((name.to_owned(), value));
    }

    /// Whether the client asked for `name` (with or without a value).
    pub fn has(&self, name: &str) -> bool {
        self.entries.iter().any(|(n, _)| n == name)
    }

    /// The value of the first `name=value` entry called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, value)| value.as_deref())
    }

    /// Every entry as `(name, value)`, in request order (a name may repeat,
    /// e.g. v2 `server-option`).
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> + '_ {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_deref()))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_values() {
        let caps = Capabilities::parse(
            b"multi_ack_detailed  side-band-64k agent=git/2.45.0 object-format=sha1 x=",
        )
        .unwrap();
        assert_eq!(caps.len(), 5);
        assert!(caps.has("side-band-64k"));
        assert!(!caps.has("side-band"));
        assert!(caps.has("agent"));
        assert_eq!(caps.get("agent"), Some("git/2.45.0"));
        assert_eq!(caps.get("object-format"), Some("sha1"));
        assert_eq!(caps.get("multi_ack_detailed"), None);
        assert_eq!(caps.get("x"), Some(""));
        assert_eq!(
            caps.iter().collect::<Vec<_>>(),
            vec![
                ("multi_ack_detailed", None),
                ("side-band-64k", None),
                ("agent", Some("git/2.45.0")),
                ("object-format", Some("sha1")),
                ("x", Some("")),
            ]
        );
    }

    #[test]
    fn keeps_unknown_capabilities() {
        let caps = Capabilities::parse(b"frobnicate=yes").unwrap();
        assert_eq!(caps.get("frobnicate"), Some("yes"));
    }

    #[test]
    fn empty_list() {
        let caps = Capabilities::parse(b"").unwrap();
        assert!(caps.is_empty());
        assert_eq!(caps, Capabilities::default());
    }

    #[test]
    fn value_may_contain_equals() {
        let mut caps = Capabilities::default();
        caps.push("server-option=a=b c");
        assert_eq!(caps.get("server-option"), Some("a=b c"));
    }

    #[test]
    fn refuses_control_characters_and_bad_utf8() {
        assert!(matches!(
            Capabilities::parse(b"a\tb"),
            Err(ProtocolError::InvalidText { .. })
        ));
        assert!(matches!(
            Capabilities::parse(b"a\0b"),
            Err(ProtocolError::InvalidText { .. })
        ));
        assert_eq!(
            Capabilities::parse(b"agent=\xff"),
            Err(ProtocolError::InvalidUtf8("capability list"))
        );
    }
}
