//! Receive-pack (push): the request's command section and the report the
//! server sends back.
//!
//! A push request is `[shallow <oid>]* <old> <new> <ref>\0<caps>
//! [<old> <new> <ref>]* flush [push-option* flush] PACK...`. The command
//! section is parsed incrementally by [`PushRequestParser`] (or at once by
//! [`parse_push_request`]) so the caller can hand the bytes that follow to
//! the pack reader without buffering the pack. Ref names are taken as sent
//! (only an empty one is malformed), so that a name the server refuses is
//! answered with an `ng` line for that ref rather than a failed request.
//! Not here: reading the pack, validating ref names as `git
//! check-ref-format` would, and deciding the status of each update.

use gix_hash::ObjectId;

use crate::{
    capabilities::Capabilities,
    pktline::{self, trim_newline, PktLine, FLUSH},
    sideband,
    text::{self, parse_oid, HEX_LEN},
    ProtocolError,
};

/// Largest command section (shallow lines, commands, push options) accepted.
pub const MAX_COMMAND_SECTION_BYTES: usize = 16 << 20;
/// Most ref updates accepted in one push.
pub const MAX_COMMANDS: usize = 100_000;
/// Most push options accepted in one push.
pub const MAX_PUSH_OPTIONS: usize = 10_000;

/// One ref update: `<old-oid> <new-oid> <ref>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefCommand {
    /// The value the client believes the ref has; zero when creating.
    pub old: ObjectId,
    /// The value to set; zero when deleting.
    pub new: ObjectId,
    /// The ref name as sent, not empty and otherwise unchecked: it may hold
    /// control characters, and bytes that are not UTF-8 are replaced by
    /// U+FFFD (so a checker refusing that character refuses them).
    pub name: String,
}

impl RefCommand {
    /// Whether this creates the ref (old id is zero).
    pub fn is_create(&self) -> bool {
        self.old.is_null()
    }

    /// Whether this deletes the ref (new id is zero).
    pub fn is_delete(&self) -> bool {
        self.new.is_null()
    }
}

/// The command section of a push.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushRequest {
    /// The ref updates, in request order. Empty when the client had nothing
    /// to update (a lone flush).
    pub commands: Vec<RefCommand>,
    /// The capabilities after the NUL on the first command.
    pub capabilities: Capabilities,
    /// Push options (`git push -o`), sent when the `push-options`
    /// capability was requested.
    pub push_options: Vec<String>,
    /// `shallow <oid>` lines: the client's shallow boundary.
    pub shallow: Vec<ObjectId>,
}

/// What [`PushRequestParser::feed`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseProgress {
    /// The command section is not complete yet: feed more bytes.
    NeedMore,
    /// The command section is complete. `consumed` is how many bytes of the
    /// input given to this last `feed` call belonged to it; the rest of that
    /// input (and everything after) is the pack stream.
    Complete {
        /// The parsed request.
        request: PushRequest,
        /// Bytes of the last input that were part of the command section.
        consumed: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Commands,
    PushOptions,
    Done,
}

/// Parses the command section of a push from input that arrives in pieces.
///
/// Memory stays bounded: at most one partial pkt-line is buffered, and the
/// section may not exceed [`MAX_COMMAND_SECTION_BYTES`], [`MAX_COMMANDS`] or
/// [`MAX_PUSH_OPTIONS`]. When the input ends before [`ParseProgress::Complete`],
/// the request is truncated: report `ProtocolError::UnexpectedEof`.
#[derive(Debug)]
pub struct PushRequestParser {
    request: PushRequest,
    stage: Stage,
    /// Start of a packet split across `feed` calls.
    pending: Vec<u8>,
    /// Bytes of the command section read so far.
    section_bytes: usize,
    /// Whether the first command line (the one with the capabilities) was seen.
    seen_command: bool,
    /// Whether the capabilities were read (they may be empty).
    capabilities_known: bool,
}

impl Default for PushRequestParser {
    fn default() -> Self {
        Self::new()
    }
}

impl PushRequestParser {
    /// A parser at the start of a request.
    pub fn new() -> Self {
        PushRequestParser {
            request: PushRequest::default(),
            stage: Stage::Commands,
            pending: Vec::new(),
            section_bytes: 0,
            seen_command: false,
            capabilities_known: false,
        }
    }

    /// What was read before an error or a premature end of input: the
    /// commands read in full, the shallow lines and push options so far.
    /// Empty once [`ParseProgress::Complete`] handed the request out.
    pub fn partial(&self) -> &PushRequest {
        &self.request
    }

    /// The client's capabilities, once the first command line was read (even
    /// when its command part is malformed); `None` before, or when the
    /// capability list itself is malformed. Lets the caller answer a broken
    /// request in the form the client asked for.
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.capabilities_known
            .then_some(&self.request.capabilities)
    }

    /// Feeds the next bytes of the request body.
    ///
    /// After `Complete` (or an error) the parser is finished; feeding it
    /// again is an error.
    pub fn feed(&mut self, input: &[u8]) -> Result<ParseProgress, ProtocolError> {
        if self.stage == Stage::Done {
            return Err(ProtocolError::ParserFinished);
        }
        let result = self.feed_inner(input);
        if result.is_err() {
            self.stage = Stage::Done;
        }
        result
    }

    fn feed_inner(&mut self, input: &[u8]) -> Result<ParseProgress, ProtocolError> {
        let mut used = 0;
        loop {
            if self.pending.is_empty() {
                match pktline::decode_one(&input[used..])? {
                    Some((line, size)) => {
                        used += size;
                        self.accept(line, size)?;
                    }
                    None => {
                        self.pending.extend_from_slice(&input[used..]);
                        return Ok(ParseProgress::NeedMore);
                    }
                }
            } else {
                // Complete the packet split across calls, taking no more
                // input than it needs.
                if self.pending.len() < 4 {
                    let take = (4 - self.pending.len()).min(input.len() - used);
                    self.pending.extend_from_slice(&input[used..used + take]);
                    used += take;
                    if self.pending.len() < 4 {
                        // Still a partial header: refuse non-hex bytes now.
                        pktline::decode_one(&self.pending)?;
                        return Ok(ParseProgress::NeedMore);
                    }
                }
                let size = match self.pending.first_chunk::<4>() {
                    Some(header) => pktline::packet_size(header)?,
                    None => 4,
                };
                let take = size
                    .saturating_sub(self.pending.len())
                    .min(input.len() - used);
                self.pending.extend_from_slice(&input[used..used + take]);
                used += take;
                if self.pending.len() < size {
                    return Ok(ParseProgress::NeedMore);
                }
                let mut packet = std::mem::take(&mut self.pending);
                let Some((line, size)) = pktline::decode_one(&packet)? else {
                    return Err(ProtocolError::Truncated {
                        needed: size,
                        available: packet.len(),
                    });
                };
                self.accept(line, size)?;
                packet.clear();
                self.pending = packet;
            }
            if self.stage == Stage::Done {
                return Ok(ParseProgress::Complete {
                    request: std::mem::take(&mut self.request),
                    consumed: used,
                });
            }
        }
    }

    /// Handles one complete packet of `size` bytes.
    fn accept(&mut self, line: PktLine<'_>, size: usize) -> Result<(), ProtocolError> {
        self.section_bytes += size;
        if self.section_bytes > MAX_COMMAND_SECTION_BYTES {
            return Err(ProtocolError::RequestTooLarge(MAX_COMMAND_SECTION_BYTES));
        }
        match (self.stage, line) {
            (Stage::Commands, PktLine::Data(data)) => self.command_line(trim_newline(data)),
            (Stage::Commands, PktLine::Flush) => {
                self.stage = if !self.request.commands.is_empty()
                    && self.request.capabilities.has("push-options")
                {
                    Stage::PushOptions
                } else {
                    Stage::Done
                };
                Ok(())
            }
            (Stage::PushOptions, PktLine::Data(data)) => {
                if self.request.push_options.len() >= MAX_PUSH_OPTIONS {
                    return Err(ProtocolError::TooManyPushOptions(MAX_PUSH_OPTIONS));
                }
                let option = text::text(trim_newline(data), "push option")?;
                self.request.push_options.push(option.to_owned());
                Ok(())
            }
            (Stage::PushOptions, PktLine::Flush) => {
                self.stage = Stage::Done;
                Ok(())
            }
            (stage, other) => Err(ProtocolError::UnexpectedPacket {
                expected: match stage {
                    Stage::PushOptions => "a push option or flush",
                    _ => "a ref update or flush",
                },
                got: other.describe(),
            }),
        }
    }

    /// Handles one line of the command list.
    fn command_line(&mut self, line: &[u8]) -> Result<(), ProtocolError> {
        if let Some(hex) = line.strip_prefix(b"shallow ") {
            self.request.shallow.push(parse_oid(hex)?);
            return Ok(());
        }
        let (command, caps) = match line.iter().position(|&b| b == 0) {
            Some(nul) => (&line[..nul], Some(&line[nul + 1..])),
            None => (line, None),
        };
        // Only the first command carries capabilities (as git's clients
        // send them); later ones are not kept so the list stays bounded.
        // They are read before the command so that a malformed first
        // command can still be answered in the form the client asked for.
        if !self.seen_command {
            self.seen_command = true;
            if let Some(caps) = caps {
                self.request.capabilities = Capabilities::parse(caps)?;
            }
            self.capabilities_known = true;
        }
        if command == b"push-cert" {
            return Err(ProtocolError::PushCertUnsupported);
        }
        if self.request.commands.len() >= MAX_COMMANDS {
            return Err(ProtocolError::TooManyCommands(MAX_COMMANDS));
        }
        self.request.commands.push(parse_command(command)?);
        Ok(())
    }
}

/// Parses `<old-oid> <new-oid> <ref>`.
fn parse_command(line: &[u8]) -> Result<RefCommand, ProtocolError> {
    let invalid = || ProtocolError::InvalidCommand(text::show(line));
    let old = line.get(..HEX_LEN).ok_or_else(invalid)?;
    let rest = line[HEX_LEN..].strip_prefix(b" ").ok_or_else(invalid)?;
    let new = rest.get(..HEX_LEN).ok_or_else(invalid)?;
    let name = rest[HEX_LEN..].strip_prefix(b" ").ok_or_else(invalid)?;
    if name.is_empty() {
        return Err(ProtocolError::InvalidText {
            what: "ref name",
            value: String::new(),
        });
    }
    Ok(RefCommand {
        old: parse_oid(old)?,
        new: parse_oid(new)?,
        name: String::from_utf8_lossy(name).into_owned(),
    })
}

/// Parses the command section at the start of a complete body. Returns the
/// request and the offset where the pack data starts.
pub fn parse_push_request(buf: &[u8]) -> Result<(PushRequest, usize), ProtocolError> {
    match PushRequestParser::new().feed(buf)? {
        ParseProgress::Complete { request, consumed } => Ok((request, consumed)),
        ParseProgress::NeedMore => Err(ProtocolError::UnexpectedEof(
            "push command list is incomplete",
        )),
    }
}

/// The outcome of one ref update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefStatus {
    /// Updated: reported as `ok <ref>`.
    Ok,
    /// Not updated, with the reason: reported as `ng <ref> <reason>`.
    Rejected(String),
}

/// The report-status message: `unpack ok` or `unpack <reason>`, then
/// `ok <ref>` or `ng <ref> <reason>` for each ref, then a flush.
///
/// These are the raw pkt-lines; when `side-band-64k` was negotiated, send
/// them wrapped in band 1 with [`crate::sideband::write_band`] followed by a
/// flush. The same bytes serve `report-status-v2`, whose per-ref `option`
/// lines are optional (git's receive-pack sends none unless a
/// `proc-receive` hook rewrote the update). Line breaks in reasons become
/// spaces and over-long reasons are cut, so this cannot fail.
pub fn report_status(unpack: Result<(), &str>, refs: &[(String, RefStatus)]) -> Vec<u8> {
    let mut out = Vec::new();
    match unpack {
        Ok(()) => pktline::write_line_lossy(&mut out, "unpack ok"),
        // `unpack ok` means success, so never let a reason read as it.
        Err("" | "ok") => pktline::write_line_lossy(&mut out, "unpack error"),
        Err(reason) => pktline::write_line_lossy(&mut out, &format!("unpack {reason}")),
    }
    for (name, status) in refs {
        match status {
            RefStatus::Ok => pktline::write_line_lossy(&mut out, &format!("ok {name}")),
            RefStatus::Rejected(reason) if reason.is_empty() => {
                pktline::write_line_lossy(&mut out, &format!("ng {name} rejected"))
            }
            RefStatus::Rejected(reason) => {
                pktline::write_line_lossy(&mut out, &format!("ng {name} {reason}"))
            }
        }
    }
    out.extend_from_slice(FLUSH);
    out
}

/// Longest failure message sent outside a report: one sideband packet of
/// plain `side-band`, which a client reads whole.
const MESSAGE_MAX: usize = 900;

/// The body of a receive-pack answer, in the form the client asked for.
///
/// `caps` are the client's capabilities, `None` when the request broke
/// before they were read.
/// - With `report-status` (or `report-status-v2`): the [`report_status`]
///   report, on sideband channel 1 (then a flush) when `side-band-64k` or
///   `side-band` was asked for.
/// - Without, when everything went through: nothing, as git's receive-pack.
/// - Without, on a failure: one message saying why (the unpack failure, else
///   the refused refs with their reasons) that git prints. It goes on
///   sideband channel 3 (then a flush) with a sideband, and also when the
///   capabilities are unknown — git prints it as `remote: <message>` with a
///   sideband and inside `unable to parse remote unpack status` without —
///   else in an `ERR` packet (`fatal: remote error: <message>`).
pub fn push_response(
    unpack: Result<(), &str>,
    refs: &[(String, RefStatus)],
    caps: Option<&Capabilities>,
) -> Vec<u8> {
    let report = caps.is_some_and(|c| c.has("report-status") || c.has("report-status-v2"));
    let sideband_max = match caps {
        Some(c) if c.has("side-band-64k") => Some(sideband::SIDEBAND_64K_MAX),
        Some(c) if c.has("side-band") => Some(sideband::SIDEBAND_MAX),
        Some(_) => None,
        None => Some(sideband::SIDEBAND_MAX),
    };
    let mut out = Vec::new();
    if report {
        let status = report_status(unpack, refs);
        match sideband_max {
            Some(max) => {
                sideband::write_band(&mut out, sideband::Band::Data, &status, max);
                out.extend_from_slice(FLUSH);
            }
            None => out = status,
        }
        return out;
    }
    let message = match unpack {
        Err(reason) => reason.to_string(),
        Ok(()) => {
            let refused: Vec<String> = refs
                .iter()
                .filter_map(|(name, status)| match status {
                    RefStatus::Ok => None,
                    RefStatus::Rejected(reason) => Some(format!("{name} ({reason})")),
                })
                .collect();
            if refused.is_empty() {
                return out;
            }
            format!("refused {}", refused.join(", "))
        }
    };
    let message = one_line(&message, MESSAGE_MAX);
    match sideband_max {
        Some(max) => {
            sideband::write_band(&mut out, sideband::Band::Error, message.as_bytes(), max);
            out.extend_from_slice(FLUSH);
        }
        None => pktline::write_err(&mut out, &message),
    }
    out
}

/// `text` with line breaks as spaces, cut to at most `max` bytes at a
/// character boundary.
fn one_line(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "74730d410fcb6603ace96f1dc55ea6196122532d";
    const B: &str = "7d1665144a3a975c05f1f43902ddaf084e784dbe";
    const C: &str = "5a3f6be755bbb7deae50065988cbfa1ffa9ab68a";
    const ZERO: &str = "0000000000000000000000000000000000000000";

    fn oid(hex: &str) -> ObjectId {
        ObjectId::from_hex(hex.as_bytes()).unwrap()
    }

    fn pkt(data: &[u8]) -> Vec<u8> {
        pktline::data_pkt(data).unwrap()
    }

    /// The example in gitprotocol-pack(5), "Report Status".
    #[test]
    fn parses_the_documented_example() {
        let mut body = Vec::new();
        body.extend_from_slice(b"00677d1665144a3a975c05f1f43902ddaf084e784dbe 74730d410fcb6603ace96f1dc55ea6196122532d refs/heads/debug\n");
        body.extend_from_slice(b"006874730d410fcb6603ace96f1dc55ea6196122532d 5a3f6be755bbb7deae50065988cbfa1ffa9ab68a refs/heads/master\n");
        body.extend_from_slice(b"0000PACK\x00\x00\x00\x02");
        let (request, offset) = parse_push_request(&body).unwrap();
        assert_eq!(&body[offset..], b"PACK\x00\x00\x00\x02");
        assert_eq!(
            request.commands,
            vec![
                RefCommand {
                    old: oid(B),
                    new: oid(A),
                    name: "refs/heads/debug".into()
                },
                RefCommand {
                    old: oid(A),
                    new: oid(C),
                    name: "refs/heads/master".into()
                },
            ]
        );
        assert!(request.capabilities.is_empty());
    }

    #[test]
    fn parses_capabilities_shallow_and_push_options() {
        let mut body = pkt(format!("shallow {C}").as_bytes());
        body.extend(pkt(format!("{ZERO} {A} refs/heads/new\0report-status-v2 side-band-64k push-options atomic agent=git/2.45.0").as_bytes()));
        body.extend(pkt(format!("{B} {ZERO} refs/heads/old\0ignored").as_bytes()));
        body.extend_from_slice(FLUSH);
        body.extend(pkt(b"ci.skip\n"));
        body.extend(pkt(b"reviewer=someone with spaces"));
        body.extend_from_slice(FLUSH);
        body.extend_from_slice(b"PACK");
        let (request, offset) = parse_push_request(&body).unwrap();
        assert_eq!(&body[offset..], b"PACK");
        assert_eq!(request.shallow, vec![oid(C)]);
        assert_eq!(request.commands.len(), 2);
        assert!(request.commands[0].is_create());
        assert!(!request.commands[0].is_delete());
        assert!(request.commands[1].is_delete());
        assert!(!request.commands[1].is_create());
        assert!(request.capabilities.has("atomic"));
        assert!(request.capabilities.has("report-status-v2"));
        assert!(!request.capabilities.has("ignored"));
        assert_eq!(request.capabilities.get("agent"), Some("git/2.45.0"));
        assert_eq!(
            request.push_options,
            vec!["ci.skip", "reviewer=someone with spaces"]
        );
    }

    #[test]
    fn without_push_options_capability_the_pack_follows_the_first_flush() {
        let mut body = pkt(format!("{ZERO} {A} refs/heads/x\0report-status").as_bytes());
        body.extend_from_slice(b"00000000PACK");
        let (request, offset) = parse_push_request(&body).unwrap();
        assert!(request.push_options.is_empty());
        assert_eq!(&body[offset..], b"0000PACK");
    }

    #[test]
    fn a_lone_flush_has_no_commands() {
        let (request, offset) = parse_push_request(b"0000").unwrap();
        assert_eq!(request, PushRequest::default());
        assert_eq!(offset, 4);
    }

    #[test]
    fn no_push_options_without_commands() {
        let (request, offset) = parse_push_request(b"0000rest").unwrap();
        assert!(request.commands.is_empty());
        assert_eq!(offset, 4);
    }

    #[test]
    fn feeds_byte_by_byte() {
        let mut body = pkt(format!("{ZERO} {A} refs/heads/new\0push-options").as_bytes());
        body.extend_from_slice(FLUSH);
        body.extend(pkt(b"opt"));
        body.extend_from_slice(FLUSH);
        let pack_start = body.len();
        body.extend_from_slice(b"PACKDATA");
        let (expected, _) = parse_push_request(&body).unwrap();

        let mut parser = PushRequestParser::new();
        for (i, byte) in body.iter().enumerate() {
            match parser.feed(std::slice::from_ref(byte)).unwrap() {
                ParseProgress::NeedMore => assert!(i < pack_start - 1),
                ParseProgress::Complete { request, consumed } => {
                    assert_eq!(i, pack_start - 1);
                    assert_eq!(consumed, 1);
                    assert_eq!(request, expected);
                    break;
                }
            }
        }
        assert_eq!(parser.feed(b"x"), Err(ProtocolError::ParserFinished));
    }

    #[test]
    fn reports_consumed_bytes_of_the_last_chunk() {
        let mut body = pkt(format!("{ZERO} {A} refs/heads/new").as_bytes());
        body.extend_from_slice(FLUSH);
        body.extend_from_slice(b"PACK");
        let mut parser = PushRequestParser::new();
        assert_eq!(parser.feed(&body[..10]), Ok(ParseProgress::NeedMore));
        match parser.feed(&body[10..]).unwrap() {
            ParseProgress::Complete { consumed, request } => {
                assert_eq!(&body[10 + consumed..], b"PACK");
                assert_eq!(request.commands.len(), 1);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn empty_feeds_need_more() {
        let mut parser = PushRequestParser::new();
        assert_eq!(parser.feed(b""), Ok(ParseProgress::NeedMore));
        assert_eq!(parser.feed(b"00"), Ok(ParseProgress::NeedMore));
        assert_eq!(parser.feed(b""), Ok(ParseProgress::NeedMore));
        assert_eq!(
            parser.feed(b"00"),
            Ok(ParseProgress::Complete {
                request: PushRequest::default(),
                consumed: 2
            })
        );
    }

    #[test]
    fn refuses_bad_requests() {
        let bad = |body: &[u8]| parse_push_request(body).unwrap_err();
        let cmd = |line: String| {
            let mut body = pkt(line.as_bytes());
            body.extend_from_slice(FLUSH);
            body
        };
        assert!(matches!(
            bad(&cmd(format!("{} {A} refs/heads/x", &B[..39]))),
            ProtocolError::InvalidCommand(_)
        ));
        assert!(matches!(
            bad(&cmd(format!("{B} {A}"))),
            ProtocolError::InvalidCommand(_)
        ));
        assert!(matches!(
            bad(&cmd(format!("{B}  {A} refs/heads/x"))),
            ProtocolError::InvalidCommand(_)
        ));
        assert!(matches!(
            bad(&cmd(format!("{B} {A} "))),
            ProtocolError::InvalidText { .. }
        ));
        assert!(matches!(
            bad(&cmd(format!("g{} {A} refs/heads/x", &B[1..]))),
            ProtocolError::InvalidObjectId(_)
        ));
        assert!(matches!(
            bad(&cmd("shallow 123".into())),
            ProtocolError::InvalidObjectId(_)
        ));
        assert_eq!(
            bad(&cmd("push-cert\0report-status".into())),
            ProtocolError::PushCertUnsupported
        );
        assert_eq!(
            bad(&cmd("".into())),
            ProtocolError::InvalidCommand("".into())
        );
        assert_eq!(
            bad(b"0001"),
            ProtocolError::UnexpectedPacket {
                expected: "a ref update or flush",
                got: "delim"
            }
        );
        let mut options = pkt(format!("{ZERO} {A} refs/heads/x\0push-options").as_bytes());
        options.extend_from_slice(b"00000002");
        assert_eq!(
            bad(&options),
            ProtocolError::UnexpectedPacket {
                expected: "a push option or flush",
                got: "response-end"
            }
        );
        assert_eq!(
            bad(b""),
            ProtocolError::UnexpectedEof("push command list is incomplete")
        );
        assert_eq!(
            bad(&pkt(format!("{ZERO} {A} refs/heads/x").as_bytes())),
            ProtocolError::UnexpectedEof("push command list is incomplete")
        );
        assert_eq!(bad(b"PACK"), ProtocolError::InvalidLength("PACK".into()));
        assert_eq!(bad(b"fff1"), ProtocolError::LengthTooLarge(0xfff1));
    }

    /// Names the server will refuse still parse, so each can get its own
    /// `ng` line instead of failing the whole request.
    #[test]
    fn ref_names_are_taken_as_sent() {
        let mut body = pkt(format!("{ZERO} {A} refs/heads/a\x01b\0report-status").as_bytes());
        body.extend(pkt(format!("{ZERO} {A} refs/heads/a\nb").as_bytes()));
        body.extend(pkt(&[
            format!("{ZERO} {A} refs/heads/").as_bytes(),
            b"\xff\xfe",
        ]
        .concat()));
        body.extend_from_slice(FLUSH);
        let (request, _) = parse_push_request(&body).unwrap();
        let names: Vec<&str> = request.commands.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "refs/heads/a\u{1}b",
                "refs/heads/a\nb",
                "refs/heads/\u{fffd}\u{fffd}"
            ]
        );
        assert!(request.capabilities.has("report-status"));
    }

    #[test]
    fn what_was_read_before_an_error_is_kept() {
        let mut parser = PushRequestParser::new();
        assert_eq!(parser.capabilities(), None);
        let mut body =
            pkt(format!("{ZERO} {A} refs/heads/ok\0report-status side-band-64k").as_bytes());
        body.extend(pkt(format!("{ZERO} g{} refs/heads/bad", &A[1..]).as_bytes()));
        assert!(matches!(
            parser.feed(&body),
            Err(ProtocolError::InvalidObjectId(_))
        ));
        assert_eq!(parser.partial().commands.len(), 1);
        assert_eq!(parser.partial().commands[0].name, "refs/heads/ok");
        assert!(parser.capabilities().unwrap().has("side-band-64k"));

        // A malformed first command: its capabilities are still known.
        let mut parser = PushRequestParser::new();
        let line = pkt(format!("{ZERO} {} refs/heads/x\0report-status", &A[..39]).as_bytes());
        assert!(parser.feed(&line).is_err());
        assert!(parser.partial().commands.is_empty());
        assert!(parser.capabilities().unwrap().has("report-status"));

        // Without a NUL the capabilities are known to be none.
        let mut parser = PushRequestParser::new();
        assert!(parser.feed(&pkt(b"not a command")).is_err());
        assert_eq!(parser.capabilities(), Some(&Capabilities::default()));

        // Broken framing before any command: unknown.
        let mut parser = PushRequestParser::new();
        assert!(parser.feed(b"zzzz").is_err());
        assert_eq!(parser.capabilities(), None);
    }

    fn caps(text: &str) -> Capabilities {
        Capabilities::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn push_response_follows_the_client_capabilities() {
        let refs = vec![
            ("refs/heads/a".to_string(), RefStatus::Ok),
            (
                "refs/heads/b".to_string(),
                RefStatus::Rejected("funny refname".into()),
            ),
        ];
        let report = report_status(Ok(()), &refs);
        // report-status alone: the bare report.
        assert_eq!(
            push_response(Ok(()), &refs, Some(&caps("report-status"))),
            report
        );
        // With a sideband: the report on channel 1, then a flush.
        let mut banded = Vec::new();
        sideband::write_band(
            &mut banded,
            sideband::Band::Data,
            &report,
            sideband::SIDEBAND_64K_MAX,
        );
        banded.extend_from_slice(FLUSH);
        assert_eq!(
            push_response(Ok(()), &refs, Some(&caps("report-status-v2 side-band-64k"))),
            banded
        );
        // No report asked for and nothing failed: nothing to say.
        let all_ok = [("refs/heads/a".to_string(), RefStatus::Ok)];
        assert_eq!(push_response(Ok(()), &all_ok, Some(&caps("agent=x"))), b"");
        // No report asked for, refused refs: one message.
        assert_eq!(
            push_response(Ok(()), &refs, Some(&caps("agent=x"))),
            b"002dERR refused refs/heads/b (funny refname)\n".to_vec()
        );
        assert_eq!(
            push_response(Ok(()), &refs, Some(&caps("side-band-64k"))),
            b"0029\x03refused refs/heads/b (funny refname)0000".to_vec()
        );
        // Capabilities unknown: channel 3, which git prints either way.
        assert_eq!(
            push_response(Err("invalid push request: bad\nthing"), &[], None),
            b"0024\x03invalid push request: bad thing0000".to_vec()
        );
    }

    #[test]
    fn errors_finish_the_parser() {
        let mut parser = PushRequestParser::new();
        assert!(parser.feed(b"zz").is_err());
        assert_eq!(parser.feed(b"0000"), Err(ProtocolError::ParserFinished));
    }

    #[test]
    fn limits_the_number_of_commands() {
        let line = pkt(format!("{ZERO} {A} refs/heads/x").as_bytes());
        let mut body = Vec::with_capacity(line.len() * (MAX_COMMANDS + 1));
        for _ in 0..=MAX_COMMANDS {
            body.extend_from_slice(&line);
        }
        assert_eq!(
            parse_push_request(&body).unwrap_err(),
            ProtocolError::TooManyCommands(MAX_COMMANDS)
        );
    }

    #[test]
    fn limits_the_section_size() {
        let line = pkt(&vec![b'x'; pktline::MAX_PKT_DATA]);
        let mut parser = PushRequestParser::new();
        let mut first = pkt(format!("{ZERO} {A} refs/heads/x\0push-options").as_bytes());
        first.extend_from_slice(FLUSH);
        assert_eq!(parser.feed(&first), Ok(ParseProgress::NeedMore));
        let mut result = Ok(ParseProgress::NeedMore);
        for _ in 0..=(MAX_COMMAND_SECTION_BYTES / line.len()) {
            result = parser.feed(&line);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(
            result,
            Err(ProtocolError::RequestTooLarge(MAX_COMMAND_SECTION_BYTES))
        );
    }

    #[test]
    fn limits_the_number_of_push_options() {
        let mut body = pkt(format!("{ZERO} {A} refs/heads/x\0push-options").as_bytes());
        body.extend_from_slice(FLUSH);
        for _ in 0..=MAX_PUSH_OPTIONS {
            body.extend(pkt(b"o"));
        }
        assert_eq!(
            parse_push_request(&body).unwrap_err(),
            ProtocolError::TooManyPushOptions(MAX_PUSH_OPTIONS)
        );
    }

    #[test]
    fn writes_the_report() {
        let refs = vec![
            ("refs/heads/debug".to_string(), RefStatus::Ok),
            (
                "refs/heads/master".to_string(),
                RefStatus::Rejected("non-fast-forward".into()),
            ),
        ];
        // From gitprotocol-pack(5), plus the flush the grammar requires.
        let expected: &[u8] = b"000eunpack ok\n0018ok refs/heads/debug\n002ang refs/heads/master non-fast-forward\n0000";
        assert_eq!(report_status(Ok(()), &refs), expected);
    }

    #[test]
    fn writes_a_failed_report() {
        let refs = vec![(
            "refs/heads/a".to_string(),
            RefStatus::Rejected("unpacker\nerror".into()),
        )];
        let expected: &[u8] =
            b"001dunpack index-pack failed\n0023ng refs/heads/a unpacker error\n0000";
        assert_eq!(report_status(Err("index-pack failed"), &refs), expected);
        assert_eq!(report_status(Err("ok"), &[]), b"0011unpack error\n0000");
        assert_eq!(report_status(Err(""), &[]), b"0011unpack error\n0000");
        let rejected = vec![(
            "refs/heads/a".to_string(),
            RefStatus::Rejected(String::new()),
        )];
        assert_eq!(
            report_status(Ok(()), &rejected),
            b"000eunpack ok\n001dng refs/heads/a rejected\n0000"
        );
    }
}
