//! The one error type of this crate.
//!
//! Every variant's `Display` is a single line meant to be shown to a git
//! client as it is (in an `ERR` packet, on sideband channel 3, or in an
//! `unpack`/`ng` line). Client-supplied text inside a message is escaped and
//! shortened (see [`crate::text`]), so a message never spans lines and never
//! grows with the input.

/// What went wrong while reading or writing the git wire protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The four length bytes of a pkt-line are not hexadecimal, or are one of
    /// the reserved lengths `0003` (`0001` and `0002` are delim and
    /// response-end, lengths `0004` and up are data).
    #[error("invalid pkt-line length '{0}'")]
    InvalidLength(String),
    /// A pkt-line announces more than [`crate::pktline::MAX_PKT_LEN`] bytes.
    #[error("pkt-line length {0} exceeds the maximum of 65520")]
    LengthTooLarge(usize),
    /// The input ends in the middle of a pkt-line.
    #[error("truncated pkt-line: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the packet needs (its header alone needs 4).
        needed: usize,
        /// Bytes that were there.
        available: usize,
    },
    /// A payload handed to a writer does not fit in one pkt-line.
    #[error("pkt-line payload of {0} bytes exceeds the maximum of 65516")]
    PayloadTooLarge(usize),
    /// The input ends where the protocol requires more packets.
    #[error("unexpected end of input: {0}")]
    UnexpectedEof(&'static str),
    /// A special packet (flush, delim, response-end) or a data line where the
    /// protocol does not allow it.
    #[error("expected {expected}, got {got}")]
    UnexpectedPacket {
        /// What the protocol allows here.
        expected: &'static str,
        /// What arrived (`flush`, `delim`, `response-end` or `data line`).
        got: &'static str,
    },
    /// Not a 40-digit hexadecimal SHA-1 object id.
    #[error("invalid object id '{0}'")]
    InvalidObjectId(String),
    /// A line that does not belong where it appeared.
    #[error("unexpected line in {context}: '{line}'")]
    UnexpectedLine {
        /// The part of the request being read.
        context: &'static str,
        /// The line, escaped and shortened.
        line: String,
    },
    /// A protocol v2 command argument this crate does not know.
    #[error("unknown {command} argument '{argument}'")]
    UnknownArgument {
        /// The v2 command (`ls-refs`, `fetch`).
        command: &'static str,
        /// The argument, escaped and shortened.
        argument: String,
    },
    /// `deepen` followed by something that is not a number that fits in `u32`.
    #[error("invalid deepen '{0}'")]
    InvalidDepth(String),
    /// `deepen 0` (git refuses it too).
    #[error("deepen must be positive")]
    DepthNotPositive,
    /// `deepen-since` followed by something that is not a positive timestamp.
    #[error("invalid deepen-since '{0}'")]
    InvalidDeepenSince(String),
    /// `deepen` together with `deepen-since` or `deepen-not`.
    #[error("deepen and deepen-since (or deepen-not) cannot be used together")]
    ConflictingDeepen,
    /// A line that may appear at most once appeared again.
    #[error("duplicate {0}")]
    Duplicate(String),
    /// A v2 request without a `command=` line.
    #[error("no command requested")]
    MissingCommand,
    /// Text that must be UTF-8 is not.
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    /// Text that must not contain control characters (or must not be empty).
    #[error("invalid {what} '{value}'")]
    InvalidText {
        /// What the text is (`ref name`, `capability`, ...).
        what: &'static str,
        /// The text, escaped and shortened.
        value: String,
    },
    /// A receive-pack command line that is not `<old-oid> <new-oid> <ref>`.
    #[error("expected old/new/ref, got '{0}'")]
    InvalidCommand(String),
    /// The receive-pack command section is larger than allowed.
    #[error("push command list exceeds {0} bytes")]
    RequestTooLarge(usize),
    /// More receive-pack commands than allowed.
    #[error("push has more than {0} ref updates")]
    TooManyCommands(usize),
    /// More push options than allowed.
    #[error("push has more than {0} push options")]
    TooManyPushOptions(usize),
    /// The client sent a signed push; this server does not advertise `push-cert`.
    #[error("push certificates are not supported")]
    PushCertUnsupported,
    /// [`crate::receive_pack::PushRequestParser::feed`] was called again after
    /// it reported the request complete or an error (a bug in the caller).
    #[error("push request parser has already finished")]
    ParserFinished,
}
