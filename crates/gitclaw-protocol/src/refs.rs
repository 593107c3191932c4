//! What the server sends first: the smart-HTTP service header, the protocol
//! v0/v1 ref advertisement (upload-pack and receive-pack alike) and the
//! protocol v2 capability advertisement.
//!
//! The caller supplies refs (sorted, already filtered), their peeled values
//! and the capability strings; this module only lays out the bytes. Protocol
//! v2 `ls-refs` output is in [`crate::v2`].

use gix_hash::ObjectId;

use crate::{
    pktline::{self, FLUSH},
    text::zero_oid,
    ProtocolError,
};

/// One ref as advertised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvertisedRef {
    /// Full name, e.g. `refs/heads/main`.
    pub name: String,
    /// The object the ref points to.
    pub oid: ObjectId,
    /// For an annotated tag, the object it finally points to; advertised as
    /// an extra `<oid> <name>^{}` line.
    pub peeled: Option<ObjectId>,
}

/// The two smart-HTTP services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// `git-upload-pack` (clone, fetch).
    UploadPack,
    /// `git-receive-pack` (push).
    ReceivePack,
}

impl Service {
    /// The name as in `?service=` and the URL path.
    pub fn as_str(&self) -> &'static str {
        match self {
            Service::UploadPack => "git-upload-pack",
            Service::ReceivePack => "git-receive-pack",
        }
    }

    /// The service called `name` (`git-upload-pack`, `git-receive-pack`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "git-upload-pack" => Some(Service::UploadPack),
            "git-receive-pack" => Some(Service::ReceivePack),
            _ => None,
        }
    }
}

/// `# service=<name>\n` as a pkt-line, then a flush: what a smart-HTTP
/// server sends before a v0/v1 ref advertisement (not before v2's).
pub fn http_service_header(service: Service) -> Vec<u8> {
    let mut out = Vec::new();
    pktline::write_line_lossy(&mut out, &format!("# service={}", service.as_str()));
    out.extend_from_slice(FLUSH);
    out
}

/// The `version 1\n` pkt-line that starts a protocol v1 advertisement.
pub fn version1_line() -> Vec<u8> {
    let mut out = Vec::new();
    pktline::write_line_lossy(&mut out, "version 1");
    out
}

/// The protocol v0/v1 ref advertisement, ending in a flush.
///
/// `head` is HEAD's object id and the ref HEAD points to; when given, a
/// `HEAD` line comes first and `symref=HEAD:<target>` is added to the
/// capabilities unless `capabilities` already has a `symref=HEAD:` entry or
/// the target is empty. Pass `None` when HEAD is unborn (and always for
/// receive-pack, which does not advertise HEAD). `refs` come out in the
/// order given, which must be sorted by name; each peeled value follows its
/// ref as `<oid> <name>^{}`. The first line carries `\0` and the
/// space-separated `capabilities`; with no refs at all the only line is
/// `<zero-id> capabilities^{}\0<capabilities>`.
///
/// A line that cannot fit in a pkt-line is left out rather than failing the
/// whole advertisement, so one ref stored with an over-long name (the push
/// path caps names well below this) cannot make a repository unreadable:
/// the `symref=HEAD:` capability is dropped when the HEAD line would not fit
/// with it, and a ref (or its peeled line) whose line would not fit is not
/// advertised, the capabilities then riding on the next line.
///
/// Fails only if the capability list alone does not fit in a pkt-line.
pub fn advertise_v0(
    refs: &[AdvertisedRef],
    head: Option<(ObjectId, &str)>,
    capabilities: &[String],
) -> Result<Vec<u8>, ProtocolError> {
    let caps = capabilities.join(" ");
    let mut out = Vec::new();
    // The capabilities, until a line has carried them.
    let mut pending = Some(caps);
    if let Some((oid, target)) = head {
        let mut caps = pending.take().unwrap_or_default();
        if !target.is_empty() && !capabilities.iter().any(|c| c.starts_with("symref=HEAD:")) {
            let mut with_symref = caps.clone();
            if !with_symref.is_empty() {
                with_symref.push(' ');
            }
            with_symref.push_str("symref=HEAD:");
            with_symref.push_str(target);
            if fits(&ref_line(&oid, "HEAD", false, Some(&with_symref))) {
                caps = with_symref;
            }
        }
        pktline::write_text(&mut out, &ref_line(&oid, "HEAD", false, Some(&caps)))?;
    }
    for r in refs {
        let line = ref_line(&r.oid, &r.name, false, pending.as_deref());
        if !fits(&line) {
            continue;
        }
        pktline::write_text(&mut out, &line)?;
        pending = None;
        if let Some(peeled) = &r.peeled {
            let line = ref_line(peeled, &r.name, true, None);
            if fits(&line) {
                pktline::write_text(&mut out, &line)?;
            }
        }
    }
    if let Some(caps) = pending {
        let line = ref_line(&zero_oid(), "capabilities^{}", false, Some(&caps));
        pktline::write_text(&mut out, &line)?;
    }
    out.extend_from_slice(FLUSH);
    Ok(out)
}

/// `<oid> <name>[^{}][\0<caps>]\n`.
fn ref_line(oid: &ObjectId, name: &str, peeled: bool, caps: Option<&str>) -> String {
    let mut text = format!("{oid} {name}");
    if peeled {
        text.push_str("^{}");
    }
    if let Some(caps) = caps {
        text.push('\0');
        text.push_str(caps);
    }
    text.push('\n');
    text
}

fn fits(line: &str) -> bool {
    line.len() <= pktline::MAX_PKT_DATA
}

/// The protocol v2 capability advertisement: `version 2\n`, one pkt-line
/// per capability (`agent=...`, `ls-refs=unborn`, `fetch=shallow filter`,
/// `server-option`, `object-format=sha1`), then a flush.
///
/// Fails only if a capability does not fit in a pkt-line.
pub fn advertise_v2_capabilities(caps: &[String]) -> Result<Vec<u8>, ProtocolError> {
    let mut out = Vec::new();
    pktline::write_text(&mut out, "version 2\n")?;
    for cap in caps {
        pktline::write_text(&mut out, &format!("{cap}\n"))?;
    }
    out.extend_from_slice(FLUSH);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(hex: &str) -> ObjectId {
        ObjectId::from_hex(hex.as_bytes()).unwrap()
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn service_header() {
        assert_eq!(
            http_service_header(Service::UploadPack),
            b"001e# service=git-upload-pack\n0000"
        );
        assert_eq!(
            http_service_header(Service::ReceivePack),
            b"001f# service=git-receive-pack\n0000"
        );
        assert_eq!(
            Service::from_name("git-receive-pack"),
            Some(Service::ReceivePack)
        );
        assert_eq!(
            Service::from_name("git-upload-pack"),
            Some(Service::UploadPack)
        );
        assert_eq!(Service::from_name("git-upload-archive"), None);
    }

    #[test]
    fn version_1_line() {
        assert_eq!(version1_line(), b"000eversion 1\n");
    }

    /// The example in gitprotocol-pack(5), "Reference Discovery".
    #[test]
    fn upload_pack_advertisement_matches_the_documentation() {
        let refs = vec![
            AdvertisedRef {
                name: "refs/heads/integration".into(),
                oid: oid("1d3fcd5ced445d1abc402225c0b8a1299641f497"),
                peeled: None,
            },
            AdvertisedRef {
                name: "refs/heads/master".into(),
                oid: oid("7217a7c7e582c46cec22a130adf4b9d7d950fba0"),
                peeled: None,
            },
            AdvertisedRef {
                name: "refs/tags/v0.9".into(),
                oid: oid("b88d2441cac0977faf98efc80305012112238d9d"),
                peeled: None,
            },
            AdvertisedRef {
                name: "refs/tags/v1.0".into(),
                oid: oid("525128480b96c89e6418b1e40909bf6c5b2d580f"),
                peeled: Some(oid("e92df48743b7bc7d26bcaabfddde0a1e20cae47c")),
            },
        ];
        let caps = strings(&[
            "multi_ack",
            "thin-pack",
            "side-band",
            "side-band-64k",
            "ofs-delta",
            "shallow",
            "no-progress",
            "include-tag",
        ]);
        let head = Some((oid("7217a7c7e582c46cec22a130adf4b9d7d950fba0"), ""));
        let expected: &[u8] = b"00887217a7c7e582c46cec22a130adf4b9d7d950fba0 HEAD\0multi_ack thin-pack side-band side-band-64k ofs-delta shallow no-progress include-tag\n\
00441d3fcd5ced445d1abc402225c0b8a1299641f497 refs/heads/integration\n\
003f7217a7c7e582c46cec22a130adf4b9d7d950fba0 refs/heads/master\n\
003cb88d2441cac0977faf98efc80305012112238d9d refs/tags/v0.9\n\
003c525128480b96c89e6418b1e40909bf6c5b2d580f refs/tags/v1.0\n\
003fe92df48743b7bc7d26bcaabfddde0a1e20cae47c refs/tags/v1.0^{}\n\
0000";
        assert_eq!(advertise_v0(&refs, head, &caps).unwrap(), expected);
    }

    /// The example in gitprotocol-pack(5), "Report Status".
    #[test]
    fn receive_pack_advertisement_matches_the_documentation() {
        let a = oid("74730d410fcb6603ace96f1dc55ea6196122532d");
        let refs = vec![
            AdvertisedRef {
                name: "refs/heads/local".into(),
                oid: a,
                peeled: None,
            },
            AdvertisedRef {
                name: "refs/heads/debug".into(),
                oid: oid("7d1665144a3a975c05f1f43902ddaf084e784dbe"),
                peeled: None,
            },
            AdvertisedRef {
                name: "refs/heads/master".into(),
                oid: a,
                peeled: None,
            },
            AdvertisedRef {
                name: "refs/heads/team".into(),
                oid: a,
                peeled: None,
            },
        ];
        let caps = strings(&["report-status", "delete-refs", "ofs-delta"]);
        let expected: &[u8] = b"006274730d410fcb6603ace96f1dc55ea6196122532d refs/heads/local\0report-status delete-refs ofs-delta\n\
003e7d1665144a3a975c05f1f43902ddaf084e784dbe refs/heads/debug\n\
003f74730d410fcb6603ace96f1dc55ea6196122532d refs/heads/master\n\
003d74730d410fcb6603ace96f1dc55ea6196122532d refs/heads/team\n\
0000";
        assert_eq!(advertise_v0(&refs, None, &caps).unwrap(), expected);
    }

    #[test]
    fn head_adds_the_symref_capability_once() {
        let id = oid("7217a7c7e582c46cec22a130adf4b9d7d950fba0");
        let refs = vec![AdvertisedRef {
            name: "refs/heads/main".into(),
            oid: id,
            peeled: None,
        }];
        // 4 + 40 + " HEAD" 5 + "\0" 1 + "agent=x symref=HEAD:refs/heads/main" 35 + "\n" 1 = 86 = 0x56
        let expected: &[u8] = b"00567217a7c7e582c46cec22a130adf4b9d7d950fba0 HEAD\0agent=x symref=HEAD:refs/heads/main\n\
003d7217a7c7e582c46cec22a130adf4b9d7d950fba0 refs/heads/main\n0000";
        let out =
            advertise_v0(&refs, Some((id, "refs/heads/main")), &strings(&["agent=x"])).unwrap();
        assert_eq!(out, expected);

        // 4 + 40 + 5 + 1 + "symref=HEAD:refs/heads/main agent=x" 35 + 1 = 0x56
        let expected: &[u8] = b"00567217a7c7e582c46cec22a130adf4b9d7d950fba0 HEAD\0symref=HEAD:refs/heads/main agent=x\n\
003d7217a7c7e582c46cec22a130adf4b9d7d950fba0 refs/heads/main\n0000";
        let caps = strings(&["symref=HEAD:refs/heads/main", "agent=x"]);
        let out = advertise_v0(&refs, Some((id, "refs/heads/main")), &caps).unwrap();
        assert_eq!(out, expected);
    }

    #[test]
    fn empty_repository_advertises_capabilities_only() {
        // 4 + 40 + " capabilities^{}" 16 + "\0" + "report-status delete-refs" 25 + "\n" = 87 = 0x57
        let expected: &[u8] =
            b"00570000000000000000000000000000000000000000 capabilities^{}\0report-status delete-refs\n0000";
        let out = advertise_v0(&[], None, &strings(&["report-status", "delete-refs"])).unwrap();
        assert_eq!(out, expected);
    }

    #[test]
    fn a_ref_too_long_to_advertise_is_left_out() {
        let id = oid("7217a7c7e582c46cec22a130adf4b9d7d950fba0");
        let long = format!("refs/heads/{}", "r".repeat(70_000));
        let refs = vec![
            AdvertisedRef {
                name: long.clone(),
                oid: id,
                peeled: None,
            },
            AdvertisedRef {
                name: "refs/heads/main".into(),
                oid: id,
                peeled: None,
            },
        ];
        // The capabilities ride on the first line that fits.
        let expected: &[u8] =
            b"00457217a7c7e582c46cec22a130adf4b9d7d950fba0 refs/heads/main\0agent=x\n0000";
        let out = advertise_v0(&refs, None, &strings(&["agent=x"])).unwrap();
        assert_eq!(out, expected);
        // Nothing left: the capabilities line.
        let out = advertise_v0(&refs[..1], None, &strings(&["agent=x"])).unwrap();
        assert!(
            out.starts_with(b"00450000000000000000000000000000000000000000"),
            "{}",
            String::from_utf8_lossy(&out)
        );
        assert!(out.ends_with(b" capabilities^{}\0agent=x\n0000"));
    }

    /// A HEAD symref that no longer fits next to the capabilities (a
    /// 65,400-byte branch name pushed first) is dropped; the ref itself
    /// still fits on its own line and is advertised.
    #[test]
    fn a_head_symref_too_long_to_advertise_is_dropped() {
        let id = oid("7217a7c7e582c46cec22a130adf4b9d7d950fba0");
        let name = format!("refs/heads/{}", "b".repeat(65_400));
        let refs = vec![AdvertisedRef {
            name: name.clone(),
            oid: id,
            peeled: None,
        }];
        let caps = strings(&[
            "multi_ack",
            "side-band-64k",
            "ofs-delta",
            "agent=gitclaw/0.1.0",
        ]);
        let out = advertise_v0(&refs, Some((id, &name)), &caps).unwrap();
        let mut reader = pktline::PktReader::new(&out);
        let Some(pktline::PktLine::Data(first)) = reader.read().unwrap() else {
            panic!("a HEAD line");
        };
        assert_eq!(
            String::from_utf8_lossy(first),
            "7217a7c7e582c46cec22a130adf4b9d7d950fba0 HEAD\0multi_ack side-band-64k ofs-delta agent=gitclaw/0.1.0\n"
        );
        let Some(pktline::PktLine::Data(second)) = reader.read().unwrap() else {
            panic!("the ref line");
        };
        assert!(second == format!("{id} {name}\n").as_bytes());
        assert_eq!(reader.read().unwrap(), Some(pktline::PktLine::Flush));
        // A target that fits keeps its symref.
        let short = "refs/heads/main";
        let out = advertise_v0(&refs, Some((id, short)), &caps).unwrap();
        assert!(String::from_utf8_lossy(&out).contains("symref=HEAD:refs/heads/main\n"));
    }

    #[test]
    fn capabilities_too_long_for_a_pkt_line_are_an_error() {
        let caps = vec!["c".repeat(70_000)];
        assert!(matches!(
            advertise_v0(&[], None, &caps),
            Err(ProtocolError::PayloadTooLarge(_))
        ));
    }

    #[test]
    fn v2_capability_advertisement() {
        let caps = strings(&[
            "agent=gitclaw/0.1.0",
            "ls-refs=unborn",
            "fetch=shallow filter",
            "server-option",
            "object-format=sha1",
        ]);
        let expected: &[u8] = b"000eversion 2\n\
0018agent=gitclaw/0.1.0\n\
0013ls-refs=unborn\n\
0019fetch=shallow filter\n\
0012server-option\n\
0017object-format=sha1\n\
0000";
        assert_eq!(advertise_v2_capabilities(&caps).unwrap(), expected);
    }
}
