//! Upload-pack protocol v2 (`gitprotocol-v2(5)`): the command request
//! framing (`command=`, capabilities, delim, arguments, flush), the
//! arguments of `ls-refs` and `fetch`, and the lines of their responses.
//!
//! Syntax only: whether a command or capability was advertised, what to
//! answer, and when to send `ready` are the server's decisions. The
//! capability advertisement is in [`crate::refs`]; sideband framing of the
//! `packfile` section is in [`crate::sideband`]. Push has no protocol v2.

use gix_hash::ObjectId;

use crate::{
    capabilities::Capabilities,
    pktline::{self, trim_newline, PktLine, PktReader},
    text::{self, parse_oid},
    v0::{check_deepen, parse_shallow_line, set_filter, ShallowLine},
    ProtocolError,
};

pub use crate::v0::{write_nak, write_shallow, write_unshallow};

/// One protocol v2 command request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandRequest {
    /// The value of `command=` (`ls-refs`, `fetch`, ...), not checked here.
    pub command: String,
    /// The capability lines (`agent=...`, `object-format=sha1`,
    /// `server-option=...`), in request order.
    pub capabilities: Capabilities,
    /// The argument lines after the delim, each with one trailing `\n`
    /// removed; parse them with [`LsRefsArgs::parse`] or
    /// [`FetchArgs::parse`].
    pub args: Vec<Vec<u8>>,
}

/// Parses one command request.
///
/// Returns `Ok(None)` for an empty request (a lone flush, or no bytes at
/// all), by which a client says it has no more commands. A `command=` line
/// may come anywhere among the capability lines; the arguments section
/// (after a delim) is optional. Bytes after the final flush are not read.
pub fn parse_command_request(body: &[u8]) -> Result<Option<CommandRequest>, ProtocolError> {
    let mut reader = PktReader::new(body);
    let mut command: Option<String> = None;
    let mut capabilities = Capabilities::default();
    let mut seen_line = false;
    let has_args = loop {
        match reader.read()? {
            None if !seen_line => return Ok(None),
            None => {
                return Err(ProtocolError::UnexpectedEof(
                    "expected delim or flush after capabilities",
                ))
            }
            Some(PktLine::Flush) if !seen_line => return Ok(None),
            Some(PktLine::Flush) => break false,
            Some(PktLine::Delim) => break true,
            Some(PktLine::ResponseEnd) => {
                return Err(ProtocolError::UnexpectedPacket {
                    expected: "a capability, delim or flush",
                    got: "response-end",
                })
            }
            Some(PktLine::Data(data)) => {
                seen_line = true;
                let line = trim_newline(data);
                if let Some(name) = line.strip_prefix(b"command=") {
                    if command.is_some() {
                        return Err(ProtocolError::Duplicate("command".into()));
                    }
                    command = Some(text::non_empty_text(name, "command")?);
                } else {
                    capabilities.push(text::text(line, "capability")?);
                }
            }
        }
    };
    let command = command.ok_or(ProtocolError::MissingCommand)?;
    let mut args = Vec::new();
    if has_args {
        loop {
            match reader.read()? {
                None => {
                    return Err(ProtocolError::UnexpectedEof(
                        "expected flush after command arguments",
                    ))
                }
                Some(PktLine::Flush) => break,
                Some(PktLine::Data(data)) => args.push(trim_newline(data).to_vec()),
                Some(other) => {
                    return Err(ProtocolError::UnexpectedPacket {
                        expected: "an argument or flush",
                        got: other.describe(),
                    })
                }
            }
        }
    }
    Ok(Some(CommandRequest {
        command,
        capabilities,
        args,
    }))
}

/// At most this many `ref-prefix` arguments are used; with more, git (and
/// this crate) ignores them all and lists every ref.
pub const MAX_REF_PREFIXES: usize = 65536;

/// The arguments of `ls-refs`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LsRefsArgs {
    /// `symrefs`: add `symref-target:<ref>` to symbolic refs.
    pub symrefs: bool,
    /// `peel`: add `peeled:<oid>` to annotated tags.
    pub peel: bool,
    /// `unborn`: list an unborn HEAD as `unborn HEAD symref-target:<ref>`.
    pub unborn: bool,
    /// `ref-prefix <prefix>` arguments; empty means every ref.
    pub ref_prefixes: Vec<String>,
}

impl LsRefsArgs {
    /// Parses the argument lines of an `ls-refs` request.
    pub fn parse(args: &[Vec<u8>]) -> Result<Self, ProtocolError> {
        let mut parsed = LsRefsArgs::default();
        let mut prefix_count = 0usize;
        for arg in args {
            match arg.as_slice() {
                b"symrefs" => parsed.symrefs = true,
                b"peel" => parsed.peel = true,
                b"unborn" => parsed.unborn = true,
                line => match line.strip_prefix(b"ref-prefix ") {
                    Some(prefix) => {
                        let prefix = text::text(prefix, "ref-prefix")?;
                        prefix_count += 1;
                        if prefix_count <= MAX_REF_PREFIXES {
                            parsed.ref_prefixes.push(prefix.to_owned());
                        }
                    }
                    None => return Err(unknown("ls-refs", line)),
                },
            }
        }
        if prefix_count > MAX_REF_PREFIXES {
            parsed.ref_prefixes.clear();
        }
        Ok(parsed)
    }
}

fn unknown(command: &'static str, argument: &[u8]) -> ProtocolError {
    ProtocolError::UnknownArgument {
        command,
        argument: text::show(argument),
    }
}

/// The arguments of `fetch`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchArgs {
    /// `want <oid>`, in request order (duplicates kept).
    pub wants: Vec<ObjectId>,
    /// `want-ref <ref>` (each ref at most once).
    pub want_refs: Vec<String>,
    /// `have <oid>`.
    pub haves: Vec<ObjectId>,
    /// `done`: stop negotiating and send the pack.
    pub done: bool,
    /// `thin-pack`.
    pub thin_pack: bool,
    /// `no-progress`.
    pub no_progress: bool,
    /// `include-tag`.
    pub include_tag: bool,
    /// `ofs-delta`.
    pub ofs_delta: bool,
    /// `shallow <oid>`: commits the client has without their parents.
    pub shallow: Vec<ObjectId>,
    /// `deepen <depth>`, always positive.
    pub deepen: Option<u32>,
    /// `deepen-relative`.
    pub deepen_relative: bool,
    /// `deepen-since <timestamp>`.
    pub deepen_since: Option<i64>,
    /// `deepen-not <ref>`.
    pub deepen_not: Vec<String>,
    /// `filter <spec>`, unparsed.
    pub filter: Option<String>,
    /// `sideband-all`.
    pub sideband_all: bool,
    /// `wait-for-done`.
    pub wait_for_done: bool,
    /// `packfile-uris <protocols>` (comma-separated), unparsed.
    pub packfile_uris: Option<String>,
}

impl FetchArgs {
    /// Parses the argument lines of a `fetch` request. Any argument not in
    /// `gitprotocol-v2(5)` is an error naming it; whether the feature an
    /// argument needs (`shallow`, `filter`, `ref-in-want`, `sideband-all`,
    /// `packfile-uris`, `wait-for-done`) was advertised is the caller's check.
    pub fn parse(args: &[Vec<u8>]) -> Result<Self, ProtocolError> {
        let mut parsed = FetchArgs::default();
        for arg in args {
            let line = arg.as_slice();
            match line {
                b"done" => parsed.done = true,
                b"thin-pack" => parsed.thin_pack = true,
                b"no-progress" => parsed.no_progress = true,
                b"include-tag" => parsed.include_tag = true,
                b"ofs-delta" => parsed.ofs_delta = true,
                b"deepen-relative" => parsed.deepen_relative = true,
                b"sideband-all" => parsed.sideband_all = true,
                b"wait-for-done" => parsed.wait_for_done = true,
                _ => parsed.parse_valued(line)?,
            }
        }
        check_deepen(parsed.deepen, parsed.deepen_since, &parsed.deepen_not)?;
        let mut refs: Vec<&str> = parsed.want_refs.iter().map(String::as_str).collect();
        refs.sort_unstable();
        if let Some(pair) = refs.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(ProtocolError::Duplicate(format!(
                "want-ref {}",
                text::show(pair[0].as_bytes())
            )));
        }
        Ok(parsed)
    }

    /// Parses the arguments that carry a value.
    fn parse_valued(&mut self, line: &[u8]) -> Result<(), ProtocolError> {
        if let Some(hex) = line.strip_prefix(b"want ") {
            self.wants.push(parse_oid(hex)?);
        } else if let Some(hex) = line.strip_prefix(b"have ") {
            self.haves.push(parse_oid(hex)?);
        } else if let Some(name) = line.strip_prefix(b"want-ref ") {
            self.want_refs.push(text::non_empty_text(name, "want-ref")?);
        } else if let Some(spec) = line.strip_prefix(b"filter ") {
            set_filter(&mut self.filter, spec)?;
        } else if let Some(protocols) = line.strip_prefix(b"packfile-uris ") {
            if self.packfile_uris.is_some() {
                return Err(ProtocolError::Duplicate("packfile-uris".into()));
            }
            self.packfile_uris = Some(text::text(protocols, "packfile-uris")?.to_owned());
        } else {
            match parse_shallow_line(line)? {
                Some(ShallowLine::Shallow(oid)) => self.shallow.push(oid),
                Some(ShallowLine::Deepen(depth)) => self.deepen = Some(depth),
                Some(ShallowLine::DeepenSince(time)) => self.deepen_since = Some(time),
                Some(ShallowLine::DeepenNot(name)) => self.deepen_not.push(name),
                None => return Err(unknown("fetch", line)),
            }
        }
        Ok(())
    }
}

/// Appends one `ls-refs` output line:
/// `<oid> <name>[ symref-target:<target>][ peeled:<oid>]`, or with `oid`
/// `None`, `unborn <name>[ symref-target:<target>]` (for an unborn HEAD).
///
/// Fails only if the line does not fit in a pkt-line.
pub fn write_ls_refs_line(
    out: &mut Vec<u8>,
    oid: Option<&ObjectId>,
    name: &str,
    symref_target: Option<&str>,
    peeled: Option<&ObjectId>,
) -> Result<(), ProtocolError> {
    let mut line = match oid {
        Some(oid) => format!("{oid} {name}"),
        None => format!("unborn {name}"),
    };
    if let Some(target) = symref_target {
        line.push_str(" symref-target:");
        line.push_str(target);
    }
    if let (Some(peeled), Some(_)) = (peeled, oid) {
        line.push_str(&format!(" peeled:{peeled}"));
    }
    line.push('\n');
    pktline::write_text(out, &line)
}

/// The section headers of a `fetch` response. Sections are separated by
/// [`pktline::DELIM`] and the response ends with [`pktline::FLUSH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `acknowledgments`: `ACK`/`NAK` lines and maybe `ready`.
    Acknowledgments,
    /// `shallow-info`: `shallow`/`unshallow` lines.
    ShallowInfo,
    /// `wanted-refs`: `<oid> <ref>` for each `want-ref`.
    WantedRefs,
    /// `packfile-uris`.
    PackfileUris,
    /// `packfile`: sideband-framed pack data follows.
    Packfile,
}

impl Section {
    /// The header text, without the newline.
    pub fn as_str(&self) -> &'static str {
        match self {
            Section::Acknowledgments => "acknowledgments",
            Section::ShallowInfo => "shallow-info",
            Section::WantedRefs => "wanted-refs",
            Section::PackfileUris => "packfile-uris",
            Section::Packfile => "packfile",
        }
    }
}

/// Appends a section header line.
pub fn write_section(out: &mut Vec<u8>, section: Section) {
    pktline::write_line_lossy(out, section.as_str());
}

/// Appends `ACK <oid>` (in the `acknowledgments` section).
pub fn write_ack(out: &mut Vec<u8>, oid: &ObjectId) {
    crate::v0::write_ack(out, oid, None);
}

/// Appends `ready` (in the `acknowledgments` section).
pub fn write_ready(out: &mut Vec<u8>) {
    pktline::write_line_lossy(out, "ready");
}

/// Appends `<oid> <name>` (in the `wanted-refs` section). Fails only if the
/// line does not fit in a pkt-line.
pub fn write_wanted_ref(
    out: &mut Vec<u8>,
    oid: &ObjectId,
    name: &str,
) -> Result<(), ProtocolError> {
    pktline::write_text(out, &format!("{oid} {name}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "74730d410fcb6603ace96f1dc55ea6196122532d";
    const B: &str = "7d1665144a3a975c05f1f43902ddaf084e784dbe";

    fn oid(hex: &str) -> ObjectId {
        ObjectId::from_hex(hex.as_bytes()).unwrap()
    }

    fn args(lines: &[&str]) -> Vec<Vec<u8>> {
        lines.iter().map(|l| l.as_bytes().to_vec()).collect()
    }

    #[test]
    fn parses_a_command_request() {
        let body: &[u8] = b"0014command=ls-refs\n\
0015agent=git/2.45.0\n\
0017object-format=sha1\n\
0018server-option=a b=c\n\
0001\
000csymrefs\n\
0009peel\n\
0014ref-prefix HEAD\n\
001bref-prefix refs/heads/\n\
0000";
        let request = parse_command_request(body).unwrap().unwrap();
        assert_eq!(request.command, "ls-refs");
        assert_eq!(request.capabilities.get("agent"), Some("git/2.45.0"));
        assert_eq!(request.capabilities.get("object-format"), Some("sha1"));
        assert_eq!(request.capabilities.get("server-option"), Some("a b=c"));
        assert_eq!(
            request.args,
            args(&[
                "symrefs",
                "peel",
                "ref-prefix HEAD",
                "ref-prefix refs/heads/"
            ])
        );
        let ls = LsRefsArgs::parse(&request.args).unwrap();
        assert_eq!(
            ls,
            LsRefsArgs {
                symrefs: true,
                peel: true,
                unborn: false,
                ref_prefixes: vec!["HEAD".into(), "refs/heads/".into()],
            }
        );
    }

    #[test]
    fn command_may_follow_capabilities_and_args_are_optional() {
        let request = parse_command_request(b"000cagent=x\n0012command=fetch\n0000")
            .unwrap()
            .unwrap();
        assert_eq!(request.command, "fetch");
        assert!(request.capabilities.has("agent"));
        assert!(request.args.is_empty());
        let request = parse_command_request(b"000dcommand=x00010000")
            .unwrap()
            .unwrap();
        assert_eq!(request.command, "x");
    }

    #[test]
    fn empty_request_is_none() {
        assert_eq!(parse_command_request(b"0000"), Ok(None));
        assert_eq!(parse_command_request(b""), Ok(None));
    }

    #[test]
    fn refuses_bad_command_requests() {
        assert_eq!(
            parse_command_request(b"000cagent=x\n0000"),
            Err(ProtocolError::MissingCommand)
        );
        assert_eq!(
            parse_command_request(b"000cagent=x\n00010000"),
            Err(ProtocolError::MissingCommand)
        );
        assert_eq!(
            parse_command_request(b"000dcommand=a000dcommand=b0000"),
            Err(ProtocolError::Duplicate("command".into()))
        );
        assert!(matches!(
            parse_command_request(b"000ccommand=0000"),
            Err(ProtocolError::InvalidText { .. })
        ));
        assert_eq!(
            parse_command_request(b"0012command=fetch\n"),
            Err(ProtocolError::UnexpectedEof(
                "expected delim or flush after capabilities"
            ))
        );
        assert_eq!(
            parse_command_request(b"0012command=fetch\n00010009done\n"),
            Err(ProtocolError::UnexpectedEof(
                "expected flush after command arguments"
            ))
        );
        assert_eq!(
            parse_command_request(b"0012command=fetch\n000100010000"),
            Err(ProtocolError::UnexpectedPacket {
                expected: "an argument or flush",
                got: "delim"
            })
        );
        assert_eq!(
            parse_command_request(b"0002"),
            Err(ProtocolError::UnexpectedPacket {
                expected: "a capability, delim or flush",
                got: "response-end"
            })
        );
        assert!(matches!(
            parse_command_request(b"0012command=fetch\n0008ag\x01t"),
            Err(ProtocolError::InvalidText { .. })
        ));
        assert!(matches!(
            parse_command_request(b"0012command=fe"),
            Err(ProtocolError::Truncated { .. })
        ));
    }

    #[test]
    fn ls_refs_args() {
        let parsed = LsRefsArgs::parse(&args(&["unborn", "ref-prefix "])).unwrap();
        assert!(parsed.unborn);
        assert_eq!(parsed.ref_prefixes, vec![String::new()]);
        assert_eq!(
            LsRefsArgs::parse(&args(&["symref"])),
            Err(ProtocolError::UnknownArgument {
                command: "ls-refs",
                argument: "symref".into()
            })
        );
        assert!(LsRefsArgs::parse(&args(&[""])).is_err());
    }

    #[test]
    fn too_many_ref_prefixes_mean_all_refs() {
        let many: Vec<Vec<u8>> = (0..=MAX_REF_PREFIXES)
            .map(|i| format!("ref-prefix r{i}").into_bytes())
            .collect();
        assert!(LsRefsArgs::parse(&many).unwrap().ref_prefixes.is_empty());
        assert_eq!(
            LsRefsArgs::parse(&many[1..]).unwrap().ref_prefixes.len(),
            MAX_REF_PREFIXES
        );
    }

    #[test]
    fn fetch_args() {
        let parsed = FetchArgs::parse(&args(&[
            "thin-pack",
            "no-progress",
            "include-tag",
            "ofs-delta",
            &format!("want {A}"),
            &format!("want {B}"),
            "want-ref refs/heads/main",
            &format!("have {B}"),
            &format!("shallow {A}"),
            "deepen 1",
            "deepen-relative",
            "filter blob:limit=1024",
            "sideband-all",
            "wait-for-done",
            "packfile-uris https,http",
            "done",
        ]))
        .unwrap();
        assert_eq!(
            parsed,
            FetchArgs {
                wants: vec![oid(A), oid(B)],
                want_refs: vec!["refs/heads/main".into()],
                haves: vec![oid(B)],
                done: true,
                thin_pack: true,
                no_progress: true,
                include_tag: true,
                ofs_delta: true,
                shallow: vec![oid(A)],
                deepen: Some(1),
                deepen_relative: true,
                deepen_since: None,
                deepen_not: vec![],
                filter: Some("blob:limit=1024".into()),
                sideband_all: true,
                wait_for_done: true,
                packfile_uris: Some("https,http".into()),
            }
        );
        let parsed =
            FetchArgs::parse(&args(&["deepen-since 1234", "deepen-not refs/tags/v1"])).unwrap();
        assert_eq!(parsed.deepen_since, Some(1234));
        assert_eq!(parsed.deepen_not, vec!["refs/tags/v1"]);
    }

    #[test]
    fn refuses_bad_fetch_args() {
        let bad = |lines: &[&str]| FetchArgs::parse(&args(lines)).unwrap_err();
        assert_eq!(
            bad(&["thin-pack", "frobnicate"]),
            ProtocolError::UnknownArgument {
                command: "fetch",
                argument: "frobnicate".into()
            }
        );
        assert_eq!(bad(&["deepen 0"]), ProtocolError::DepthNotPositive);
        assert_eq!(bad(&["deepen x"]), ProtocolError::InvalidDepth("x".into()));
        assert_eq!(
            bad(&[&format!("want {}", &A[..39])]),
            ProtocolError::InvalidObjectId(A[..39].into())
        );
        assert!(matches!(
            bad(&[&format!("have {A}0")]),
            ProtocolError::InvalidObjectId(_)
        ));
        assert!(matches!(
            bad(&[&format!("shallow {}", &A[1..])]),
            ProtocolError::InvalidObjectId(_)
        ));
        assert_eq!(
            bad(&["deepen 2", "deepen-not refs/heads/x"]),
            ProtocolError::ConflictingDeepen
        );
        assert_eq!(
            bad(&["filter a", "filter b"]),
            ProtocolError::Duplicate("filter".into())
        );
        assert_eq!(
            bad(&["packfile-uris https", "packfile-uris http"]),
            ProtocolError::Duplicate("packfile-uris".into())
        );
        assert_eq!(
            bad(&[
                "want-ref refs/heads/a",
                "want-ref refs/heads/b",
                "want-ref refs/heads/a"
            ]),
            ProtocolError::Duplicate("want-ref refs/heads/a".into())
        );
        assert!(matches!(
            bad(&["want-ref "]),
            ProtocolError::InvalidText { .. }
        ));
        assert!(matches!(
            bad(&["deepen-not "]),
            ProtocolError::InvalidText { .. }
        ));
        // A trailing newline is removed by parse_command_request, not here.
        assert!(matches!(
            bad(&["done\n"]),
            ProtocolError::UnknownArgument { .. }
        ));
    }

    #[test]
    fn writes_ls_refs_lines() {
        let mut out = Vec::new();
        write_ls_refs_line(
            &mut out,
            Some(&oid(A)),
            "HEAD",
            Some("refs/heads/main"),
            None,
        )
        .unwrap();
        write_ls_refs_line(&mut out, Some(&oid(A)), "refs/heads/main", None, None).unwrap();
        write_ls_refs_line(&mut out, Some(&oid(B)), "refs/tags/v1", None, Some(&oid(A))).unwrap();
        write_ls_refs_line(
            &mut out,
            None,
            "HEAD",
            Some("refs/heads/main"),
            Some(&oid(A)),
        )
        .unwrap();
        // 4 + 40 + " HEAD" 5 + " symref-target:refs/heads/main" 30 + "\n" = 80 = 0x50
        // 4 + 40 + 1 + 15 + 1 = 61 = 0x3d
        // 4 + 40 + " refs/tags/v1" 13 + " peeled:" 8 + 40 + 1 = 106 = 0x6a
        // 4 + "unborn HEAD" 11 + 30 + 1 = 46 = 0x2e
        let expected: &[u8] = b"005074730d410fcb6603ace96f1dc55ea6196122532d HEAD symref-target:refs/heads/main\n\
003d74730d410fcb6603ace96f1dc55ea6196122532d refs/heads/main\n\
006a7d1665144a3a975c05f1f43902ddaf084e784dbe refs/tags/v1 peeled:74730d410fcb6603ace96f1dc55ea6196122532d\n\
002eunborn HEAD symref-target:refs/heads/main\n";
        assert_eq!(out, expected);
        assert!(write_ls_refs_line(&mut out, None, &"x".repeat(70_000), None, None).is_err());
    }

    #[test]
    fn writes_fetch_response_lines() {
        let mut out = Vec::new();
        write_section(&mut out, Section::Acknowledgments);
        write_ack(&mut out, &oid(A));
        write_ready(&mut out);
        out.extend_from_slice(pktline::DELIM);
        write_section(&mut out, Section::ShallowInfo);
        write_shallow(&mut out, &oid(A));
        write_unshallow(&mut out, &oid(B));
        out.extend_from_slice(pktline::DELIM);
        write_section(&mut out, Section::WantedRefs);
        write_wanted_ref(&mut out, &oid(A), "refs/heads/main").unwrap();
        out.extend_from_slice(pktline::DELIM);
        write_section(&mut out, Section::PackfileUris);
        out.extend_from_slice(pktline::DELIM);
        write_section(&mut out, Section::Packfile);
        write_nak(&mut out);
        let expected: &[u8] = b"0014acknowledgments\n\
0031ACK 74730d410fcb6603ace96f1dc55ea6196122532d\n\
000aready\n\
0001\
0011shallow-info\n\
0034shallow 74730d410fcb6603ace96f1dc55ea6196122532d\
0036unshallow 7d1665144a3a975c05f1f43902ddaf084e784dbe\
0001\
0010wanted-refs\n\
003d74730d410fcb6603ace96f1dc55ea6196122532d refs/heads/main\n\
0001\
0012packfile-uris\n\
0001\
000dpackfile\n\
0008NAK\n";
        assert_eq!(out, expected);
    }
}
