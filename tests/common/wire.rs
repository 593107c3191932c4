//! Hand-built protocol bytes: pkt-lines, receive-pack requests, and reading the
//! sideband report back.

/// One pkt-line holding `text`.
pub fn pkt(text: &str) -> Vec<u8> {
    let mut out = format!("{:04x}", text.len() + 4).into_bytes();
    out.extend_from_slice(text.as_bytes());
    out
}

pub const ZERO: &str = "0000000000000000000000000000000000000000";

/// A receive-pack request: `(old, new, ref)` commands (report-status and
/// side-band-64k asked for), a flush, then `pack`.
pub fn push_request(commands: &[(&str, &str, &str)], pack: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, (old, new, name)) in commands.iter().enumerate() {
        let line = if i == 0 {
            format!("{old} {new} {name}\0report-status side-band-64k\n")
        } else {
            format!("{old} {new} {name}\n")
        };
        body.extend(pkt(&line));
    }
    body.extend_from_slice(b"0000");
    body.extend_from_slice(pack);
    body
}

/// The text of a sideband-wrapped report (band 1).
pub fn report_text(body: &[u8]) -> String {
    let mut text = Vec::new();
    let mut rest = body;
    while rest.len() >= 4 {
        let Some(len) = std::str::from_utf8(&rest[..4])
            .ok()
            .and_then(|h| usize::from_str_radix(h, 16).ok())
        else {
            break;
        };
        if len == 0 {
            rest = &rest[4..];
            continue;
        }
        if len < 5 || len > rest.len() {
            break;
        }
        if rest[4] == 1 {
            text.extend_from_slice(&rest[5..len]);
        }
        rest = &rest[len..];
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// A pack of the objects `revs` name (as `git pack-objects --revs` reads them),
/// made by git in `dir`.
pub fn pack_of(dir: &std::path::Path, revs: &str) -> Vec<u8> {
    use std::io::Write;
    let mut child = super::git_cmd(dir)
        .args(["pack-objects", "--stdout", "--revs", "-q"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("git pack-objects runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(revs.as_bytes())
        .expect("revs written");
    let out = child.wait_with_output().expect("pack-objects ends");
    assert!(out.status.success(), "git pack-objects failed");
    out.stdout
}

/// A pack of `entries` as they are given — each an entry header (type and size
/// as the pack format encodes them, and for a REF_DELTA its base id) and the bytes
/// deflated after it — with a correct count and trailer: for packs git would never
/// write.
pub fn raw_pack(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    use std::io::Write;
    let deflated: Vec<(Vec<u8>, Vec<u8>)> = entries
        .iter()
        .map(|(header, data)| {
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            z.write_all(data).expect("deflating in memory");
            (header.clone(), z.finish().expect("deflating in memory"))
        })
        .collect();
    raw_pack_deflated(&deflated)
}

/// A pack of entries given as header and zlib stream, as the client made them.
pub fn raw_pack_deflated(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    use sha1::Digest;
    let mut bytes = b"PACK".to_vec();
    bytes.extend_from_slice(&2u32.to_be_bytes());
    bytes.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for (header, stream) in entries {
        bytes.extend_from_slice(header);
        bytes.extend_from_slice(stream);
    }
    let trailer: [u8; 20] = sha1::Sha1::digest(&bytes).into();
    bytes.extend_from_slice(&trailer);
    bytes
}

/// A valid zlib stream of `data` led by `empty_blocks` empty stored blocks
/// (5 bytes each, inflating to nothing): any number of compressed bytes for
/// the same inflated ones.
pub fn padded_zlib(data: &[u8], empty_blocks: usize) -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(data).expect("deflating in memory");
    let stream = z.finish().expect("deflating in memory");
    // After the 2-byte header the blocks start on a byte boundary, and an
    // empty stored block (not final) ends on one.
    let mut out = Vec::with_capacity(stream.len() + 5 * empty_blocks);
    out.extend_from_slice(&stream[..2]);
    for _ in 0..empty_blocks {
        out.extend_from_slice(&[0x00, 0x00, 0x00, 0xff, 0xff]);
    }
    out.extend_from_slice(&stream[2..]);
    out
}

/// The header of a pack entry of type `code` (1 commit, 2 tree, 3 blob, 4 tag,
/// 6 OFS_DELTA, 7 REF_DELTA) whose data inflates to `size` bytes.
pub fn entry_header(code: u8, size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut byte = (code << 4) | (size & 0x0f) as u8;
    let mut rest = size >> 4;
    while rest != 0 {
        out.push(byte | 0x80);
        byte = (rest & 0x7f) as u8;
        rest >>= 7;
    }
    out.push(byte);
    out
}
