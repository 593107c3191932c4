//! Upload-pack requests and responses of protocol v0/v1, as they travel over
//! smart HTTP (stateless RPC): each POST body holds the whole want list, then
//! the `have` lines of this round, ending in `done` or a flush.
//!
//! Parsing checks the syntax only: whether the wants are reachable, whether
//! a shallow or filter request was allowed by the advertised capabilities,
//! and the negotiation itself (which ACKs to send) are the server's. The
//! line parsers for shallow and deepen requests are shared with
//! [`crate::v2`].

use gix_hash::ObjectId;

use crate::{
    capabilities::Capabilities,
    pktline::{self, trim_newline, PktLine, PktReader},
    text::{self, parse_oid},
    ProtocolError,
};

/// A parsed upload-pack request body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadRequest {
    /// Objects the client wants, in request order (duplicates kept). Empty
    /// when the client has everything (a body that is just a flush).
    pub wants: Vec<ObjectId>,
    /// The capabilities on the first `want` line.
    pub capabilities: Capabilities,
    /// Commits the client has without their parents (`shallow <oid>`).
    pub shallow: Vec<ObjectId>,
    /// `deepen <n>`, always positive.
    pub deepen: Option<u32>,
    /// `deepen-since <timestamp>` (seconds since the epoch).
    pub deepen_since: Option<i64>,
    /// `deepen-not <ref>` lines.
    pub deepen_not: Vec<String>,
    /// The `deepen-relative` capability.
    pub deepen_relative: bool,
    /// `filter <spec>`, unparsed.
    pub filter: Option<String>,
    /// Objects the client has (`have <oid>`), from all rounds in the body.
    pub haves: Vec<ObjectId>,
    /// Whether the client ended with `done` (send the pack now) rather than
    /// a flush (answer this round of haves).
    pub done: bool,
}

/// Parses one upload-pack request body.
///
/// The want section (`want`, `shallow`, `deepen`, `deepen-since`,
/// `deepen-not`, `filter` lines in any order) must end in a flush. Then come
/// any number of `have` lines, possibly in several flush-terminated rounds,
/// and the body ends after a flush or with `done` (anything after `done` is
/// not read, as in git).
pub fn parse_upload_request(body: &[u8]) -> Result<UploadRequest, ProtocolError> {
    let mut reader = PktReader::new(body);
    let mut request = UploadRequest::default();
    let mut first_want = true;
    loop {
        let line = match reader.read()? {
            None => {
                return Err(ProtocolError::UnexpectedEof(
                    "expected flush after the want list",
                ))
            }
            Some(PktLine::Flush) => break,
            Some(PktLine::Data(data)) => trim_newline(data),
            Some(other) => {
                return Err(ProtocolError::UnexpectedPacket {
                    expected: "a want list line or flush",
                    got: other.describe(),
                })
            }
        };
        if let Some(rest) = line.strip_prefix(b"want ") {
            let (hex, caps) = match rest.iter().position(|&b| b == b' ') {
                Some(space) => (&rest[..space], Some(&rest[space + 1..])),
                None => (rest, None),
            };
            request.wants.push(parse_oid(hex)?);
            // Only the first want carries capabilities; git's clients send
            // none later, and keeping later ones would let a body grow the
            // list without bound.
            if first_want {
                if let Some(caps) = caps {
                    request.capabilities = Capabilities::parse(caps)?;
                }
                first_want = false;
            }
        } else if let Some(parsed) = parse_shallow_line(line)? {
            match parsed {
                ShallowLine::Shallow(oid) => request.shallow.push(oid),
                ShallowLine::Deepen(depth) => request.deepen = Some(depth),
                ShallowLine::DeepenSince(time) => request.deepen_since = Some(time),
                ShallowLine::DeepenNot(name) => request.deepen_not.push(name),
            }
        } else if let Some(spec) = line.strip_prefix(b"filter ") {
            set_filter(&mut request.filter, spec)?;
        } else {
            return Err(ProtocolError::UnexpectedLine {
                context: "want list",
                line: text::show(line),
            });
        }
    }
    request.deepen_relative = request.capabilities.has("deepen-relative");
    check_deepen(request.deepen, request.deepen_since, &request.deepen_not)?;

    let mut after_flush = true;
    loop {
        let line = match reader.read()? {
            None if after_flush => break,
            None => {
                return Err(ProtocolError::UnexpectedEof(
                    "expected flush or done after have lines",
                ))
            }
            Some(PktLine::Flush) => {
                after_flush = true;
                continue;
            }
            Some(PktLine::Data(data)) => trim_newline(data),
            Some(other) => {
                return Err(ProtocolError::UnexpectedPacket {
                    expected: "have, done or flush",
                    got: other.describe(),
                })
            }
        };
        after_flush = false;
        if let Some(hex) = line.strip_prefix(b"have ") {
            request.haves.push(parse_oid(hex)?);
        } else if line == b"done" {
            request.done = true;
            break;
        } else {
            return Err(ProtocolError::UnexpectedLine {
                context: "have list",
                line: text::show(line),
            });
        }
    }
    Ok(request)
}

/// A shallow-related request line, shared by protocol v0 and v2.
pub(crate) enum ShallowLine {
    /// `shallow <oid>`.
    Shallow(ObjectId),
    /// `deepen <depth>`.
    Deepen(u32),
    /// `deepen-since <timestamp>`.
    DeepenSince(i64),
    /// `deepen-not <ref>`.
    DeepenNot(String),
}

/// Parses `line` if it is one of the [`ShallowLine`]s, `None` if it is not.
pub(crate) fn parse_shallow_line(line: &[u8]) -> Result<Option<ShallowLine>, ProtocolError> {
    let parsed = if let Some(hex) = line.strip_prefix(b"shallow ") {
        ShallowLine::Shallow(parse_oid(hex)?)
    } else if let Some(arg) = line.strip_prefix(b"deepen ") {
        ShallowLine::Deepen(parse_depth(arg)?)
    } else if let Some(arg) = line.strip_prefix(b"deepen-since ") {
        ShallowLine::DeepenSince(parse_deepen_since(arg)?)
    } else if let Some(name) = line.strip_prefix(b"deepen-not ") {
        ShallowLine::DeepenNot(text::non_empty_text(name, "deepen-not ref")?)
    } else {
        return Ok(None);
    };
    Ok(Some(parsed))
}

fn decimal<T: std::str::FromStr>(arg: &[u8]) -> Option<T> {
    if arg.is_empty() || !arg.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(arg).ok()?.parse().ok()
}

/// A `deepen` depth: decimal, positive, fitting in `u32`.
fn parse_depth(arg: &[u8]) -> Result<u32, ProtocolError> {
    match decimal::<u32>(arg) {
        Some(0) => Err(ProtocolError::DepthNotPositive),
        Some(depth) => Ok(depth),
        None => Err(ProtocolError::InvalidDepth(text::show(arg))),
    }
}

/// A `deepen-since` timestamp: decimal seconds since the epoch.
fn parse_deepen_since(arg: &[u8]) -> Result<i64, ProtocolError> {
    decimal::<i64>(arg).ok_or_else(|| ProtocolError::InvalidDeepenSince(text::show(arg)))
}

/// Records a `filter` spec, refusing a second one.
pub(crate) fn set_filter(filter: &mut Option<String>, spec: &[u8]) -> Result<(), ProtocolError> {
    if filter.is_some() {
        return Err(ProtocolError::Duplicate("filter".into()));
    }
    *filter = Some(text::non_empty_text(spec, "filter")?);
    Ok(())
}

/// Refuses `deepen` combined with `deepen-since`/`deepen-not`, as git does.
pub(crate) fn check_deepen(
    deepen: Option<u32>,
    deepen_since: Option<i64>,
    deepen_not: &[String],
) -> Result<(), ProtocolError> {
    if deepen.is_some() && (deepen_since.is_some() || !deepen_not.is_empty()) {
        return Err(ProtocolError::ConflictingDeepen);
    }
    Ok(())
}

/// The status word of a multi-ack `ACK` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckStatus {
    /// `continue` (`multi_ack`).
    Continue,
    /// `common` (`multi_ack_detailed`).
    Common,
    /// `ready` (`multi_ack_detailed`).
    Ready,
}

/// Appends `ACK <oid>` or, with a status, `ACK <oid> continue|common|ready`.
pub fn write_ack(out: &mut Vec<u8>, oid: &ObjectId, status: Option<AckStatus>) {
    let line = match status {
        None => format!("ACK {oid}"),
        Some(AckStatus::Continue) => format!("ACK {oid} continue"),
        Some(AckStatus::Common) => format!("ACK {oid} common"),
        Some(AckStatus::Ready) => format!("ACK {oid} ready"),
    };
    pktline::write_line_lossy(out, &line);
}

/// Appends `NAK`.
pub fn write_nak(out: &mut Vec<u8>) {
    pktline::write_line_lossy(out, "NAK");
}

/// Appends `shallow <oid>` (a commit whose parents are not sent).
///
/// Like `unshallow`, and unlike the other lines of a fetch response, it ends
/// without a newline, as git's upload-pack writes it: libgit2 takes the rest
/// of the packet for the id and refuses a shallow clone whose lines carry one
/// ("invalid packet line").
pub fn write_shallow(out: &mut Vec<u8>, oid: &ObjectId) {
    write_id_line(out, "shallow", oid);
}

/// Appends `unshallow <oid>` (a client-shallow commit whose parents are now
/// sent), with no newline (see [`write_shallow`]).
pub fn write_unshallow(out: &mut Vec<u8>, oid: &ObjectId) {
    write_id_line(out, "unshallow", oid);
}

/// Appends `<keyword> <oid>` as one packet, with no newline.
fn write_id_line(out: &mut Vec<u8>, keyword: &str, oid: &ObjectId) {
    let line = format!("{keyword} {oid}");
    pktline::write_header(out, line.len() + pktline::HEADER_LEN);
    out.extend_from_slice(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "74730d410fcb6603ace96f1dc55ea6196122532d";
    const B: &str = "7d1665144a3a975c05f1f43902ddaf084e784dbe";
    const C: &str = "5a3f6be755bbb7deae50065988cbfa1ffa9ab68a";

    fn oid(hex: &str) -> ObjectId {
        ObjectId::from_hex(hex.as_bytes()).unwrap()
    }

    fn body(lines: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for line in lines {
            match *line {
                "" => out.extend_from_slice(pktline::FLUSH),
                line => pktline::write_text(&mut out, line).unwrap(),
            }
        }
        out
    }

    /// The "simple clone" example of gitprotocol-pack(5).
    #[test]
    fn parses_a_clone_request() {
        let mut raw = Vec::new();
        raw.extend_from_slice(b"0054want 74730d410fcb6603ace96f1dc55ea6196122532d multi_ack side-band-64k ofs-delta\n");
        raw.extend_from_slice(b"0032want 7d1665144a3a975c05f1f43902ddaf084e784dbe\n");
        raw.extend_from_slice(b"0032want 5a3f6be755bbb7deae50065988cbfa1ffa9ab68a\n");
        raw.extend_from_slice(b"0032want 74730d410fcb6603ace96f1dc55ea6196122532d\n");
        raw.extend_from_slice(b"0000");
        raw.extend_from_slice(b"0009done\n");
        let request = parse_upload_request(&raw).unwrap();
        assert_eq!(request.wants, vec![oid(A), oid(B), oid(C), oid(A)]);
        assert!(request.capabilities.has("multi_ack"));
        assert!(request.capabilities.has("side-band-64k"));
        assert!(request.capabilities.has("ofs-delta"));
        assert_eq!(request.capabilities.len(), 3);
        assert!(request.done);
        assert!(request.haves.is_empty());
        assert!(!request.deepen_relative);
    }

    #[test]
    fn parses_a_fetch_round_with_haves() {
        let raw = body(&[
            &format!("want {A} multi_ack_detailed no-done side-band-64k thin-pack ofs-delta agent=git/2.45.0\n"),
            "",
            &format!("have {B}\n"),
            &format!("have {C}\n"),
            "",
        ]);
        let request = parse_upload_request(&raw).unwrap();
        assert_eq!(request.wants, vec![oid(A)]);
        assert_eq!(request.haves, vec![oid(B), oid(C)]);
        assert!(!request.done);
        assert_eq!(request.capabilities.get("agent"), Some("git/2.45.0"));
    }

    #[test]
    fn accepts_several_have_rounds_then_done() {
        let raw = body(&[
            &format!("want {A}"),
            "",
            &format!("have {B}"),
            "",
            &format!("have {C}"),
            "",
            "done",
        ]);
        let request = parse_upload_request(&raw).unwrap();
        assert_eq!(request.haves, vec![oid(B), oid(C)]);
        assert!(request.done);
        assert!(request.capabilities.is_empty());
    }

    #[test]
    fn ignores_what_follows_done() {
        let mut raw = body(&[&format!("want {A}"), "", "done"]);
        raw.extend_from_slice(b"garbage");
        assert!(parse_upload_request(&raw).unwrap().done);
    }

    #[test]
    fn parses_shallow_and_deepen_lines() {
        let raw = body(&[
            &format!("want {A} deepen-relative shallow filter\n"),
            &format!("want {B} ignored-capability\n"),
            &format!("shallow {C}\n"),
            "deepen 3\n",
            "filter blob:none\n",
            "",
        ]);
        let request = parse_upload_request(&raw).unwrap();
        assert_eq!(request.wants, vec![oid(A), oid(B)]);
        assert_eq!(request.shallow, vec![oid(C)]);
        assert_eq!(request.deepen, Some(3));
        assert!(request.deepen_relative);
        assert_eq!(request.filter.as_deref(), Some("blob:none"));
        assert!(!request.capabilities.has("ignored-capability"));
        assert!(!request.done);
    }

    #[test]
    fn parses_deepen_since_and_not() {
        let raw = body(&[
            &format!("want {A}"),
            "deepen-since 1700000000",
            "deepen-not refs/heads/old",
            "deepen-not refs/tags/v1",
            "",
        ]);
        let request = parse_upload_request(&raw).unwrap();
        assert_eq!(request.deepen_since, Some(1_700_000_000));
        assert_eq!(request.deepen_not, vec!["refs/heads/old", "refs/tags/v1"]);
    }

    #[test]
    fn a_lone_flush_wants_nothing() {
        let request = parse_upload_request(b"0000").unwrap();
        assert!(request.wants.is_empty());
        assert!(!request.done);
    }

    #[test]
    fn refuses_bad_requests() {
        let bad = |lines: &[&str]| parse_upload_request(&body(lines)).unwrap_err();
        let short = &A[..39];
        assert_eq!(
            bad(&[&format!("want {short}"), ""]),
            ProtocolError::InvalidObjectId(short.into())
        );
        assert!(matches!(
            bad(&[&format!("want {A}x"), ""]),
            ProtocolError::InvalidObjectId(_)
        ));
        assert!(matches!(
            bad(&[&format!("want {A}"), "shallow 1234", ""]),
            ProtocolError::InvalidObjectId(_)
        ));
        assert_eq!(
            bad(&[&format!("want {A}"), "deepen 0", ""]),
            ProtocolError::DepthNotPositive
        );
        assert_eq!(
            bad(&[&format!("want {A}"), "deepen -1", ""]),
            ProtocolError::InvalidDepth("-1".into())
        );
        assert_eq!(
            bad(&[&format!("want {A}"), "deepen +1", ""]),
            ProtocolError::InvalidDepth("+1".into())
        );
        assert_eq!(
            bad(&[&format!("want {A}"), "deepen ", ""]),
            ProtocolError::InvalidDepth("".into())
        );
        assert_eq!(
            bad(&[&format!("want {A}"), "deepen 4294967296", ""]),
            ProtocolError::InvalidDepth("4294967296".into())
        );
        assert_eq!(
            bad(&[&format!("want {A}"), "deepen-since yesterday", ""]),
            ProtocolError::InvalidDeepenSince("yesterday".into())
        );
        assert_eq!(
            bad(&[&format!("want {A}"), "deepen 1", "deepen-since 5", ""]),
            ProtocolError::ConflictingDeepen
        );
        assert_eq!(
            bad(&[&format!("want {A}"), "filter a", "filter b", ""]),
            ProtocolError::Duplicate("filter".into())
        );
        assert_eq!(
            bad(&[&format!("want {A}"), "wnat x", ""]),
            ProtocolError::UnexpectedLine {
                context: "want list",
                line: "wnat x".into()
            }
        );
        assert_eq!(
            bad(&[&format!("want {A}"), "", "have"]),
            ProtocolError::UnexpectedLine {
                context: "have list",
                line: "have".into()
            }
        );
        assert!(matches!(
            bad(&[&format!("want {A}"), "", &format!("have {short}")]),
            ProtocolError::InvalidObjectId(_)
        ));
        assert!(matches!(
            bad(&[&format!("want {A} agent=\x01")]),
            ProtocolError::InvalidText { .. }
        ));
    }

    #[test]
    fn refuses_truncated_requests() {
        let want = body(&[&format!("want {A}")]);
        assert_eq!(
            parse_upload_request(&want),
            Err(ProtocolError::UnexpectedEof(
                "expected flush after the want list"
            ))
        );
        let haves = body(&[&format!("want {A}"), "", &format!("have {B}")]);
        assert_eq!(
            parse_upload_request(&haves),
            Err(ProtocolError::UnexpectedEof(
                "expected flush or done after have lines"
            ))
        );
        assert_eq!(
            parse_upload_request(b""),
            Err(ProtocolError::UnexpectedEof(
                "expected flush after the want list"
            ))
        );
        assert!(matches!(
            parse_upload_request(b"0032want 74730d"),
            Err(ProtocolError::Truncated { .. })
        ));
    }

    #[test]
    fn refuses_special_packets_out_of_place() {
        assert_eq!(
            parse_upload_request(b"0001"),
            Err(ProtocolError::UnexpectedPacket {
                expected: "a want list line or flush",
                got: "delim"
            })
        );
        assert_eq!(
            parse_upload_request(b"00000002"),
            Err(ProtocolError::UnexpectedPacket {
                expected: "have, done or flush",
                got: "response-end"
            })
        );
    }

    #[test]
    fn writes_negotiation_lines() {
        let mut out = Vec::new();
        write_ack(&mut out, &oid(A), Some(AckStatus::Continue));
        write_ack(&mut out, &oid(B), Some(AckStatus::Common));
        write_ack(&mut out, &oid(B), Some(AckStatus::Ready));
        write_nak(&mut out);
        write_ack(&mut out, &oid(A), None);
        let expected: &[u8] = b"003aACK 74730d410fcb6603ace96f1dc55ea6196122532d continue\n\
0038ACK 7d1665144a3a975c05f1f43902ddaf084e784dbe common\n\
0037ACK 7d1665144a3a975c05f1f43902ddaf084e784dbe ready\n\
0008NAK\n\
0031ACK 74730d410fcb6603ace96f1dc55ea6196122532d\n";
        assert_eq!(out, expected);

        let mut out = Vec::new();
        write_shallow(&mut out, &oid(A));
        write_unshallow(&mut out, &oid(B));
        // No newlines, byte for byte what git's upload-pack writes.
        let expected: &[u8] = b"0034shallow 74730d410fcb6603ace96f1dc55ea6196122532d\
0036unshallow 7d1665144a3a975c05f1f43902ddaf084e784dbe";
        assert_eq!(out, expected);
    }
}
