//! The client's side of the wire: the requests a git client sends and the
//! small answers it reads whole (capability and ref advertisements, `ls-refs`,
//! a push's report-status). Framing is the protocol crate's; the fetch answer,
//! which carries a pack and is read as a stream, is `fetch_response`'s.

use gitclaw_protocol::{
    pktline::{self, PktLine, PktReader},
    ObjectId,
};

use crate::error::{ErrorKind, RunError};

/// What this client calls itself in `agent=`.
pub const AGENT: &str = concat!("gitclaw-load/", env!("CARGO_PKG_VERSION"));

/// An object id from 40 hex digits.
pub fn parse_oid(hex: &[u8]) -> Result<ObjectId, RunError> {
    if hex.len() != 40 {
        return Err(RunError::malformed(format!(
            "`{}` is not an object id",
            String::from_utf8_lossy(hex)
        )));
    }
    ObjectId::from_hex(hex).map_err(|_| {
        RunError::malformed(format!(
            "`{}` is not an object id",
            String::from_utf8_lossy(hex)
        ))
    })
}

/// The all-zero id: "no object" in push commands.
pub fn zero_oid() -> ObjectId {
    ObjectId::null(gix_hash::Kind::Sha1)
}

/// The text of a data packet, or an error naming what was expected. An `ERR`
/// packet becomes [`ErrorKind::ProtocolErr`] with the server's message.
fn text_line<'a>(line: PktLine<'a>, expected: &str) -> Result<&'a str, RunError> {
    let data = match line {
        PktLine::Data(data) => data,
        other => {
            return Err(RunError::malformed(format!(
                "expected {expected}, got {other:?}"
            )))
        }
    };
    let text = std::str::from_utf8(pktline::trim_newline(data))
        .map_err(|_| RunError::malformed(format!("{expected} is not UTF-8")))?;
    if let Some(message) = text.strip_prefix("ERR ") {
        return Err(RunError::new(ErrorKind::ProtocolErr, message.to_string()));
    }
    Ok(text)
}

fn next<'a>(reader: &mut PktReader<'a>, expected: &str) -> Result<PktLine<'a>, RunError> {
    reader
        .read()?
        .ok_or_else(|| RunError::malformed(format!("the answer ends before {expected}")))
}

/// Skips the `# service=git-…` line and its flush that smart HTTP puts before
/// an advertisement (git's `http-backend` leaves them out for protocol v2).
fn skip_service_line<'a>(body: &'a [u8], service: &str) -> Result<PktReader<'a>, RunError> {
    let mut reader = PktReader::new(body);
    let mut probe = reader.clone();
    if let Some(line @ PktLine::Data(_)) = probe.read()? {
        if text_line(line, "the first line")?.starts_with("# service=") {
            let text = text_line(line, "the service line")?;
            if text != format!("# service={service}") {
                return Err(RunError::malformed(format!("unexpected `{text}`")));
            }
            if next(&mut probe, "the flush after the service line")? != PktLine::Flush {
                return Err(RunError::malformed("no flush after the service line"));
            }
            reader = probe;
        }
    }
    Ok(reader)
}

/// A protocol v2 capability advertisement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct V2Capabilities {
    lines: Vec<String>,
}

impl V2Capabilities {
    /// The value of `key=value`, or `Some("")` for a bare `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.lines
            .iter()
            .find_map(|line| match line.split_once('=') {
                Some((k, v)) if k == key => Some(v),
                None if line == key => Some(""),
                _ => None,
            })
    }

    /// Whether `command` (`fetch`, `ls-refs`) is advertised with `feature` in its value.
    pub fn command_has(&self, command: &str, feature: &str) -> bool {
        self.get(command)
            .is_some_and(|value| value.split(' ').any(|f| f == feature))
    }

    /// The capability lines a request sends after `command=…`: the agent, and
    /// the object format when the server names one (a server may refuse
    /// capabilities it did not advertise).
    fn request_lines(&self, out: &mut Vec<u8>) -> Result<(), RunError> {
        if self.get("agent").is_some() {
            pktline::write_text(out, &format!("agent={AGENT}\n"))?;
        }
        if self.get("object-format").is_some() {
            pktline::write_text(out, "object-format=sha1\n")?;
        }
        Ok(())
    }
}

/// Parses the answer to `GET info/refs?service=git-upload-pack` with
/// `Git-Protocol: version=2`.
pub fn parse_v2_advertisement(body: &[u8]) -> Result<V2Capabilities, RunError> {
    let mut reader = skip_service_line(body, "git-upload-pack")?;
    let first = text_line(next(&mut reader, "`version 2`")?, "`version 2`")?;
    if first != "version 2" {
        return Err(RunError::malformed(
            "the server answered without protocol v2 (`version 2` missing)",
        ));
    }
    let mut lines = Vec::new();
    loop {
        match next(&mut reader, "the end of the capabilities")? {
            PktLine::Flush => break,
            line => lines.push(text_line(line, "a capability")?.to_string()),
        }
    }
    let caps = V2Capabilities { lines };
    if let Some(format) = caps.get("object-format") {
        if format != "sha1" {
            return Err(RunError::malformed(format!(
                "object format {format}: only sha1 is supported"
            )));
        }
    }
    Ok(caps)
}

/// A `command=ls-refs` request listing HEAD, branches and tags, peeled, with symrefs.
pub fn ls_refs_request(caps: &V2Capabilities, prefixes: &[&str]) -> Result<Vec<u8>, RunError> {
    let mut out = Vec::new();
    pktline::write_text(&mut out, "command=ls-refs\n")?;
    caps.request_lines(&mut out)?;
    out.extend_from_slice(pktline::DELIM);
    pktline::write_text(&mut out, "peel\n")?;
    pktline::write_text(&mut out, "symrefs\n")?;
    for prefix in prefixes {
        pktline::write_text(&mut out, &format!("ref-prefix {prefix}\n"))?;
    }
    out.extend_from_slice(pktline::FLUSH);
    Ok(out)
}

/// One line of an `ls-refs` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRef {
    pub name: String,
    pub oid: ObjectId,
    pub peeled: Option<ObjectId>,
    pub symref_target: Option<String>,
}

/// Parses an `ls-refs` answer: `<oid> <name>[ symref-target:…][ peeled:…]` lines and a flush.
pub fn parse_ls_refs(body: &[u8]) -> Result<Vec<RemoteRef>, RunError> {
    let mut reader = PktReader::new(body);
    let mut refs = Vec::new();
    loop {
        let line = match next(&mut reader, "the flush ending the ref list")? {
            PktLine::Flush => break,
            line => text_line(line, "a ref line")?,
        };
        let mut words = line.split(' ');
        let (Some(oid), Some(name)) = (words.next(), words.next()) else {
            return Err(RunError::malformed(format!("bad ref line `{line}`")));
        };
        if oid == "unborn" {
            continue;
        }
        let mut remote = RemoteRef {
            name: name.to_string(),
            oid: parse_oid(oid.as_bytes())?,
            peeled: None,
            symref_target: None,
        };
        for attribute in words {
            if let Some(target) = attribute.strip_prefix("symref-target:") {
                remote.symref_target = Some(target.to_string());
            } else if let Some(peeled) = attribute.strip_prefix("peeled:") {
                remote.peeled = Some(parse_oid(peeled.as_bytes())?);
            }
        }
        refs.push(remote);
    }
    if reader.read()?.is_some() {
        return Err(RunError::malformed("data after the ref list"));
    }
    Ok(refs)
}

/// What one `command=fetch` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchArgs {
    pub wants: Vec<ObjectId>,
    pub haves: Vec<ObjectId>,
    pub deepen: Option<u32>,
    pub filter: Option<String>,
}

/// A `command=fetch` request that ends negotiation at once (`done`): no
/// progress, `ofs-delta`, never a thin pack (the harness has no objects to
/// complete one with).
pub fn fetch_request(caps: &V2Capabilities, args: &FetchArgs) -> Result<Vec<u8>, RunError> {
    let mut out = Vec::new();
    pktline::write_text(&mut out, "command=fetch\n")?;
    caps.request_lines(&mut out)?;
    out.extend_from_slice(pktline::DELIM);
    pktline::write_text(&mut out, "no-progress\n")?;
    pktline::write_text(&mut out, "ofs-delta\n")?;
    for want in &args.wants {
        pktline::write_text(&mut out, &format!("want {want}\n"))?;
    }
    for have in &args.haves {
        pktline::write_text(&mut out, &format!("have {have}\n"))?;
    }
    if let Some(depth) = args.deepen {
        pktline::write_text(&mut out, &format!("deepen {depth}\n"))?;
    }
    if let Some(filter) = &args.filter {
        pktline::write_text(&mut out, &format!("filter {filter}\n"))?;
    }
    pktline::write_text(&mut out, "done\n")?;
    out.extend_from_slice(pktline::FLUSH);
    Ok(out)
}

/// The answer to `GET info/refs?service=git-receive-pack` (protocol v0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiveAdvertisement {
    pub refs: Vec<(String, ObjectId)>,
    pub capabilities: Vec<String>,
}

impl ReceiveAdvertisement {
    pub fn has(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }

    pub fn target(&self, name: &str) -> Option<ObjectId> {
        self.refs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, oid)| *oid)
    }
}

/// Parses a v0 receive-pack advertisement: refs, the first carrying the
/// capabilities after a NUL (an empty repository advertises
/// `capabilities^{}` with the zero id).
pub fn parse_receive_advertisement(body: &[u8]) -> Result<ReceiveAdvertisement, RunError> {
    let mut reader = skip_service_line(body, "git-receive-pack")?;
    let mut advert = ReceiveAdvertisement::default();
    let mut first = true;
    loop {
        let data = match next(&mut reader, "the flush ending the refs")? {
            PktLine::Flush => break,
            PktLine::Data(data) => pktline::trim_newline(data),
            other => {
                return Err(RunError::malformed(format!(
                    "unexpected {other:?} in the refs"
                )))
            }
        };
        if data.starts_with(b"ERR ") {
            text_line(PktLine::Data(data), "a ref")?;
        }
        let (line, caps) = match data.iter().position(|&b| b == 0) {
            Some(nul) if first => (&data[..nul], Some(&data[nul + 1..])),
            Some(_) => return Err(RunError::malformed("capabilities on a later ref line")),
            None => (data, None),
        };
        if let Some(caps) = caps {
            advert.capabilities = String::from_utf8_lossy(caps)
                .split(' ')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
        }
        first = false;
        let line = std::str::from_utf8(line)
            .map_err(|_| RunError::malformed("a ref line is not UTF-8"))?;
        let Some((oid, name)) = line.split_once(' ') else {
            return Err(RunError::malformed(format!("bad ref line `{line}`")));
        };
        if name == "capabilities^{}" {
            continue;
        }
        advert
            .refs
            .push((name.to_string(), parse_oid(oid.as_bytes())?));
    }
    Ok(advert)
}

/// One ref update of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    pub old: ObjectId,
    pub new: ObjectId,
    pub name: String,
}

/// A receive-pack request: the commands (capabilities after a NUL on the
/// first), a flush, then the pack, if any (a push that only deletes sends none).
pub fn push_request(
    updates: &[RefUpdate],
    capabilities: &[&str],
    pack: Option<&[u8]>,
) -> Result<Vec<u8>, RunError> {
    let mut out = Vec::with_capacity(pack.map_or(0, <[u8]>::len) + updates.len() * 100 + 100);
    for (i, update) in updates.iter().enumerate() {
        let mut line = format!("{} {} {}", update.old, update.new, update.name).into_bytes();
        if i == 0 {
            line.push(0);
            line.extend_from_slice(capabilities.join(" ").as_bytes());
        }
        line.push(b'\n');
        pktline::write_data(&mut out, &line)?;
    }
    out.extend_from_slice(pktline::FLUSH);
    if let Some(pack) = pack {
        out.extend_from_slice(pack);
    }
    Ok(out)
}

/// Joins the band-1 payloads of a sideband stream that ends with a flush (or
/// just ends); band 2 (progress) is skipped, band 3 is the server's error.
pub fn demux_sideband(body: &[u8]) -> Result<Vec<u8>, RunError> {
    let mut reader = PktReader::new(body);
    let mut data = Vec::new();
    while let Some(line) = reader.read()? {
        let payload = match line {
            PktLine::Flush => break,
            PktLine::Data(payload) => payload,
            other => {
                return Err(RunError::malformed(format!(
                    "unexpected {other:?} in sideband"
                )))
            }
        };
        match payload.split_first() {
            Some((1, rest)) => data.extend_from_slice(rest),
            Some((2, _)) => {}
            Some((3, message)) => {
                return Err(RunError::new(
                    ErrorKind::ProtocolErr,
                    String::from_utf8_lossy(pktline::trim_newline(message)).into_owned(),
                ))
            }
            _ if payload.starts_with(b"ERR ") => {
                text_line(line, "a sideband packet")?;
            }
            _ => return Err(RunError::malformed("a sideband packet without a band")),
        }
    }
    Ok(data)
}

/// A push's report-status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// `Err(reason)` when the server could not unpack the pack.
    pub unpack: Result<(), String>,
    /// Each ref's `ok` or `ng <reason>`.
    pub refs: Vec<(String, Result<(), String>)>,
}

impl PushReport {
    /// The first refusal, as one line, or `None` when everything was accepted.
    pub fn refusal(&self) -> Option<String> {
        if let Err(reason) = &self.unpack {
            return Some(format!("unpack {reason}"));
        }
        self.refs.iter().find_map(|(name, status)| match status {
            Err(reason) => Some(format!("{name}: {reason}")),
            Ok(()) => None,
        })
    }
}

/// Parses report-status: `unpack ok` (or `unpack <reason>`), then `ok <ref>` /
/// `ng <ref> <reason>` lines, then a flush.
pub fn parse_report_status(body: &[u8]) -> Result<PushReport, RunError> {
    let mut reader = PktReader::new(body);
    let first = text_line(next(&mut reader, "`unpack …`")?, "`unpack …`")?;
    let Some(unpack) = first.strip_prefix("unpack ") else {
        return Err(RunError::malformed(format!(
            "report-status starts with `{first}`"
        )));
    };
    let mut report = PushReport {
        unpack: if unpack == "ok" {
            Ok(())
        } else {
            Err(unpack.to_string())
        },
        refs: Vec::new(),
    };
    loop {
        let line = match next(&mut reader, "the flush ending report-status")? {
            PktLine::Flush => break,
            line => text_line(line, "a ref status")?,
        };
        if let Some(name) = line.strip_prefix("ok ") {
            report.refs.push((name.to_string(), Ok(())));
        } else if let Some(rest) = line.strip_prefix("ng ") {
            let (name, reason) = rest.split_once(' ').unwrap_or((rest, "no reason given"));
            report
                .refs
                .push((name.to_string(), Err(reason.to_string())));
        } else {
            return Err(RunError::malformed(format!("bad ref status `{line}`")));
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkts(lines: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for line in lines {
            match *line {
                "0000" => out.extend_from_slice(b"0000"),
                "0001" => out.extend_from_slice(b"0001"),
                text => pktline::write_text(&mut out, text).unwrap(),
            }
        }
        out
    }

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    fn oid(hex: &str) -> ObjectId {
        ObjectId::from_hex(hex.as_bytes()).unwrap()
    }

    #[test]
    fn reads_a_v2_advertisement_with_or_without_the_service_line() {
        let caps_lines = [
            "version 2\n",
            "agent=git/2.45\n",
            "ls-refs=unborn\n",
            "fetch=shallow wait-for-done filter\n",
            "server-option\n",
            "object-format=sha1\n",
            "0000",
        ];
        let mut with_service = pkts(&["# service=git-upload-pack\n", "0000"]);
        with_service.extend(pkts(&caps_lines));
        for body in [pkts(&caps_lines), with_service] {
            let caps = parse_v2_advertisement(&body).unwrap();
            assert!(caps.command_has("fetch", "shallow"));
            assert!(caps.command_has("fetch", "filter"));
            assert!(!caps.command_has("fetch", "packfile-uris"));
            assert_eq!(caps.get("server-option"), Some(""));
            assert_eq!(caps.get("ls-refs"), Some("unborn"));
        }
    }

    #[test]
    fn a_v0_advertisement_is_not_taken_for_v2() {
        let body = pkts(&[
            "# service=git-upload-pack\n",
            "0000",
            &format!("{A} HEAD\0multi_ack\n"),
            "0000",
        ]);
        let err = parse_v2_advertisement(&body).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Malformed);
        assert!(err.message.contains("protocol v2"), "{err}");
    }

    #[test]
    fn writes_ls_refs_and_fetch_requests_with_only_advertised_capabilities() {
        let caps =
            parse_v2_advertisement(&pkts(&["version 2\n", "fetch=shallow\n", "0000"])).unwrap();
        assert_eq!(
            ls_refs_request(&caps, &["HEAD", "refs/heads/"]).unwrap(),
            b"0014command=ls-refs\n00010009peel\n000csymrefs\n0014ref-prefix HEAD\n001bref-prefix refs/heads/\n0000"
        );
        let caps = parse_v2_advertisement(&pkts(&[
            "version 2\n",
            "agent=x\n",
            "object-format=sha1\n",
            "0000",
        ]))
        .unwrap();
        let request = fetch_request(
            &caps,
            &FetchArgs {
                wants: vec![oid(A)],
                haves: vec![oid(B)],
                deepen: Some(1),
                filter: Some("blob:none".into()),
            },
        )
        .unwrap();
        let expected = pkts(&[
            "command=fetch\n",
            &format!("agent={AGENT}\n"),
            "object-format=sha1\n",
            "0001",
            "no-progress\n",
            "ofs-delta\n",
            &format!("want {A}\n"),
            &format!("have {B}\n"),
            "deepen 1\n",
            "filter blob:none\n",
            "done\n",
            "0000",
        ]);
        assert_eq!(request, expected);
    }

    #[test]
    fn reads_ls_refs_lines_with_symrefs_and_peeled_tags() {
        let body = pkts(&[
            &format!("{A} HEAD symref-target:refs/heads/main\n"),
            &format!("{A} refs/heads/main\n"),
            &format!("{B} refs/tags/v1 peeled:{A}\n"),
            "unborn refs/heads/other\n",
            "0000",
        ]);
        let refs = parse_ls_refs(&body).unwrap();
        assert_eq!(refs.len(), 3);
        assert_eq!(refs[0].symref_target.as_deref(), Some("refs/heads/main"));
        assert_eq!(refs[2].peeled, Some(oid(A)));
        assert_eq!(refs[2].oid, oid(B));
    }

    #[test]
    fn an_err_packet_is_the_servers_refusal() {
        let body = pkts(&["ERR upload-pack: not our ref\n"]);
        let err = parse_ls_refs(&body).unwrap_err();
        assert_eq!(err.kind, ErrorKind::ProtocolErr);
        assert_eq!(err.message, "upload-pack: not our ref");
    }

    #[test]
    fn a_truncated_ref_list_is_malformed() {
        let body = pkts(&[&format!("{A} refs/heads/main\n")]);
        assert_eq!(parse_ls_refs(&body).unwrap_err().kind, ErrorKind::Malformed);
        let mut body = pkts(&[&format!("{A} refs/heads/main\n"), "0000"]);
        body.truncate(body.len() - 6);
        assert_eq!(parse_ls_refs(&body).unwrap_err().kind, ErrorKind::Malformed);
        let body = pkts(&["xyz refs/heads/main\n", "0000"]);
        assert_eq!(parse_ls_refs(&body).unwrap_err().kind, ErrorKind::Malformed);
    }

    #[test]
    fn reads_receive_pack_advertisements_of_full_and_empty_repositories() {
        let body = pkts(&[
            "# service=git-receive-pack\n",
            "0000",
            &format!("{A} refs/heads/main\0report-status delete-refs side-band-64k ofs-delta\n"),
            &format!("{B} refs/heads/topic\n"),
            "0000",
        ]);
        let advert = parse_receive_advertisement(&body).unwrap();
        assert_eq!(advert.target("refs/heads/main"), Some(oid(A)));
        assert_eq!(advert.target("refs/heads/topic"), Some(oid(B)));
        assert!(advert.has("side-band-64k") && advert.has("delete-refs"));

        let zero = "0".repeat(40);
        let body = pkts(&[
            "# service=git-receive-pack\n",
            "0000",
            &format!("{zero} capabilities^{{}}\0report-status\n"),
            "0000",
        ]);
        let advert = parse_receive_advertisement(&body).unwrap();
        assert!(advert.refs.is_empty());
        assert!(advert.has("report-status"));
    }

    #[test]
    fn writes_push_commands_with_capabilities_on_the_first_line() {
        let updates = [
            RefUpdate {
                old: zero_oid(),
                new: oid(A),
                name: "refs/heads/a".into(),
            },
            RefUpdate {
                old: oid(B),
                new: zero_oid(),
                name: "refs/heads/b".into(),
            },
        ];
        let body =
            push_request(&updates, &["report-status", "side-band-64k"], Some(b"PACK")).unwrap();
        let zero = "0".repeat(40);
        let mut expected = Vec::new();
        pktline::write_data(
            &mut expected,
            format!("{zero} {A} refs/heads/a\0report-status side-band-64k\n").as_bytes(),
        )
        .unwrap();
        pktline::write_text(&mut expected, &format!("{B} {zero} refs/heads/b\n")).unwrap();
        expected.extend_from_slice(b"0000PACK");
        assert_eq!(body, expected);
    }

    #[test]
    fn reads_report_status_through_the_sideband() {
        let report = pkts(&[
            "unpack ok\n",
            "ok refs/heads/a\n",
            "ng refs/heads/b non-fast-forward\n",
            "0000",
        ]);
        let mut body = Vec::new();
        gitclaw_protocol::sideband::write_band(
            &mut body,
            gitclaw_protocol::sideband::Band::Progress,
            b"resolving\n",
            gitclaw_protocol::sideband::SIDEBAND_64K_MAX,
        );
        // Split over two band-1 packets, as a server may.
        let (head, tail) = report.split_at(7);
        for part in [head, tail] {
            gitclaw_protocol::sideband::write_band(
                &mut body,
                gitclaw_protocol::sideband::Band::Data,
                part,
                gitclaw_protocol::sideband::SIDEBAND_64K_MAX,
            );
        }
        body.extend_from_slice(b"0000");
        let parsed = parse_report_status(&demux_sideband(&body).unwrap()).unwrap();
        assert_eq!(parsed.unpack, Ok(()));
        assert_eq!(
            parsed.refs,
            vec![
                ("refs/heads/a".to_string(), Ok(())),
                (
                    "refs/heads/b".to_string(),
                    Err("non-fast-forward".to_string())
                ),
            ]
        );
        assert_eq!(
            parsed.refusal().as_deref(),
            Some("refs/heads/b: non-fast-forward")
        );
    }

    #[test]
    fn an_unpack_failure_is_a_refusal() {
        let parsed = parse_report_status(&pkts(&[
            "unpack index-pack failed\n",
            "ng refs/heads/a unpacker error\n",
            "0000",
        ]))
        .unwrap();
        assert_eq!(
            parsed.refusal().as_deref(),
            Some("unpack index-pack failed")
        );
    }

    #[test]
    fn a_band_3_message_is_the_servers_refusal() {
        let mut body = Vec::new();
        gitclaw_protocol::sideband::write_band(
            &mut body,
            gitclaw_protocol::sideband::Band::Error,
            b"too many pushes\n",
            gitclaw_protocol::sideband::SIDEBAND_64K_MAX,
        );
        let err = demux_sideband(&body).unwrap_err();
        assert_eq!(err.kind, ErrorKind::ProtocolErr);
        assert_eq!(err.message, "too many pushes");
    }

    #[test]
    fn report_status_garbage_is_malformed() {
        assert_eq!(
            parse_report_status(&pkts(&["hello\n", "0000"]))
                .unwrap_err()
                .kind,
            ErrorKind::Malformed
        );
        assert_eq!(
            parse_report_status(&pkts(&["unpack ok\n", "maybe refs/heads/a\n", "0000"]))
                .unwrap_err()
                .kind,
            ErrorKind::Malformed
        );
        assert_eq!(
            parse_report_status(&pkts(&["unpack ok\n"]))
                .unwrap_err()
                .kind,
            ErrorKind::Malformed
        );
    }
}
