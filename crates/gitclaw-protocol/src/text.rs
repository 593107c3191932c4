//! Crate-internal helpers that turn client bytes into checked values (object
//! ids, UTF-8 text without control characters) and into short, escaped text
//! fit for an error message. Not for framing: see [`crate::pktline`].

use gix_hash::ObjectId;

use crate::ProtocolError;

/// Longest piece of client input quoted in an error message.
const SHOW_MAX: usize = 100;

/// Client bytes as printable one-line text, at most [`SHOW_MAX`] input bytes.
pub(crate) fn show(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(SHOW_MAX)];
    let mut shown = cut.escape_ascii().to_string();
    if bytes.len() > SHOW_MAX {
        shown.push_str("...");
    }
    shown
}

/// Length of a SHA-1 object id in hexadecimal.
pub(crate) const HEX_LEN: usize = 40;

/// Parses exactly 40 hexadecimal digits (either case) as a SHA-1 object id.
pub(crate) fn parse_oid(hex: &[u8]) -> Result<ObjectId, ProtocolError> {
    if hex.len() != HEX_LEN {
        return Err(ProtocolError::InvalidObjectId(show(hex)));
    }
    ObjectId::from_hex(hex).map_err(|_| ProtocolError::InvalidObjectId(show(hex)))
}

/// The all-zero SHA-1 id (create/delete in push commands, the no-refs
/// advertisement).
pub(crate) fn zero_oid() -> ObjectId {
    ObjectId::null(gix_hash::Kind::Sha1)
}

/// Checks that `bytes` are UTF-8 without ASCII control characters.
pub(crate) fn text<'a>(bytes: &'a [u8], what: &'static str) -> Result<&'a str, ProtocolError> {
    if bytes.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(ProtocolError::InvalidText {
            what,
            value: show(bytes),
        });
    }
    std::str::from_utf8(bytes).map_err(|_| ProtocolError::InvalidUtf8(what))
}

/// Like [`text`], and also refuses the empty string.
pub(crate) fn non_empty_text(bytes: &[u8], what: &'static str) -> Result<String, ProtocolError> {
    if bytes.is_empty() {
        return Err(ProtocolError::InvalidText {
            what,
            value: String::new(),
        });
    }
    text(bytes, what).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_escapes_and_shortens() {
        assert_eq!(show(b"a\nb\0"), "a\\nb\\x00");
        let long = vec![b'x'; 300];
        assert_eq!(show(&long), format!("{}...", "x".repeat(100)));
    }

    #[test]
    fn parse_oid_accepts_only_forty_hex_digits() {
        let hex = b"7217a7c7e582c46cec22a130adf4b9d7d950fba0";
        assert_eq!(
            parse_oid(hex).map(|o| o.to_string()),
            Ok(String::from_utf8_lossy(hex).into_owned())
        );
        assert!(parse_oid(b"7217A7C7E582C46CEC22A130ADF4B9D7D950FBA0").is_ok());
        assert!(matches!(
            parse_oid(&hex[..39]),
            Err(ProtocolError::InvalidObjectId(_))
        ));
        assert!(matches!(
            parse_oid(b"g217a7c7e582c46cec22a130adf4b9d7d950fba0"),
            Err(ProtocolError::InvalidObjectId(_))
        ));
        let sha256 = [b'a'; 64];
        assert!(matches!(
            parse_oid(&sha256),
            Err(ProtocolError::InvalidObjectId(_))
        ));
    }

    #[test]
    fn text_refuses_control_characters_and_bad_utf8() {
        assert_eq!(text(b"refs/heads/main", "ref name"), Ok("refs/heads/main"));
        assert!(matches!(
            text(b"a\x01b", "ref name"),
            Err(ProtocolError::InvalidText { .. })
        ));
        assert!(matches!(
            text(b"a\x7f", "ref name"),
            Err(ProtocolError::InvalidText { .. })
        ));
        assert_eq!(
            text(b"\xff", "ref name"),
            Err(ProtocolError::InvalidUtf8("ref name"))
        );
        assert!(matches!(
            non_empty_text(b"", "ref name"),
            Err(ProtocolError::InvalidText { .. })
        ));
    }
}
