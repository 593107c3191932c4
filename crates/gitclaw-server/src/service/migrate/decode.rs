//! Reading a legacy row's bytes. The old server meant to store each object's
//! content as it is, but rows written by other tools may hold it zlib
//! compressed, or with git's `"<type> <size>\0"` header in front, or both.
//! The object id decides: every reading is tried, and the one whose SHA-1 is
//! the row's oid is the object. A row no reading matches is corrupt.

use gitclaw_metadata::LegacyRow;
use gitclaw_pack::{Kind, ObjectId};
use sha1::Digest;

/// How a row's bytes held the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// The content as it is.
    Raw,
    /// Git's header, then the content.
    WithHeader,
    /// zlib of the content.
    Zlib,
    /// zlib of the header and the content (a loose object file).
    ZlibWithHeader,
}

/// A row read right: the object it holds.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    pub kind: Kind,
    pub content: Vec<u8>,
    pub encoding: Encoding,
}

/// The SHA-1 git names an object of `kind` with `content` by.
pub fn object_id(kind: Kind, content: &[u8]) -> ObjectId {
    let mut hasher = sha1::Sha1::new();
    hasher.update(kind.as_bytes());
    hasher.update(format!(" {}\0", content.len()).as_bytes());
    hasher.update(content);
    ObjectId::from_bytes_or_panic(&hasher.finalize())
}

/// The object `row` holds, or why none of the readings is it. `max_bytes`
/// bounds what inflating a compressed row may allocate.
pub fn decode(row: LegacyRow, max_bytes: u64) -> Result<Decoded, String> {
    let kinds = kinds_to_try(&row.object_type);
    if let Some(decoded) = plain(&row.oid, &kinds, &row.data) {
        return Ok(Decoded {
            kind: decoded.0,
            content: match decoded.1 {
                Encoding::Raw => row.data,
                _ => strip_header(row.data),
            },
            encoding: decoded.1,
        });
    }
    let inflated = match inflate(&row.data, max_bytes) {
        Some(Ok(inflated)) => inflated,
        Some(Err(why)) => {
            return Err(format!(
                "neither its bytes nor their inflation hash to the oid ({why})"
            ))
        }
        None => {
            return Err(format!(
            "its {} bytes hash to no {} with this oid, with or without a header, and are not zlib",
            row.data.len(),
            row.object_type
        ))
        }
    };
    match plain(&row.oid, &kinds, &inflated) {
        Some((kind, Encoding::Raw)) => Ok(Decoded {
            kind,
            content: inflated,
            encoding: Encoding::Zlib,
        }),
        Some((kind, _)) => Ok(Decoded {
            kind,
            content: strip_header(inflated),
            encoding: Encoding::ZlibWithHeader,
        }),
        None => Err(format!(
            "its bytes inflate to {} bytes that hash to no {} with this oid, with or without a header",
            inflated.len(),
            row.object_type
        )),
    }
}

/// The type the row names first, then (the column being wrong is possible)
/// the others.
fn kinds_to_try(named: &str) -> Vec<Kind> {
    let named = Kind::from_bytes(named.as_bytes()).ok();
    let others = [Kind::Commit, Kind::Tree, Kind::Blob, Kind::Tag]
        .into_iter()
        .filter(|k| Some(*k) != named);
    named.into_iter().chain(others).collect()
}

/// The reading of `data` (as it is, or as header + content) that hashes to `oid`.
fn plain(oid: &ObjectId, kinds: &[Kind], data: &[u8]) -> Option<(Kind, Encoding)> {
    if let Some((kind, len, start)) = header(data) {
        if len == (data.len() - start) as u64 && sha1_of(data) == *oid {
            return Some((kind, Encoding::WithHeader));
        }
    }
    kinds
        .iter()
        .find(|kind| object_id(**kind, data) == *oid)
        .map(|kind| (*kind, Encoding::Raw))
}

fn sha1_of(data: &[u8]) -> ObjectId {
    ObjectId::from_bytes_or_panic(&sha1::Sha1::digest(data))
}

/// Git's `"<type> <size>\0"` at the start of `data`: the type, the size, and
/// where the content starts.
fn header(data: &[u8]) -> Option<(Kind, u64, usize)> {
    let end = data.iter().take(32).position(|b| *b == 0)?;
    let text = std::str::from_utf8(&data[..end]).ok()?;
    let (kind, size) = text.split_once(' ')?;
    let kind = Kind::from_bytes(kind.as_bytes()).ok()?;
    let size = size.parse().ok().filter(|_| !size.starts_with('+'))?;
    Some((kind, size, end + 1))
}

fn strip_header(mut data: Vec<u8>) -> Vec<u8> {
    let start = header(&data).map_or(0, |(_, _, start)| start);
    data.drain(..start);
    data
}

/// `data` inflated, if it is a zlib stream: `None` when it does not start like
/// one, an error when it is damaged or inflates past `max_bytes`.
fn inflate(data: &[u8], max_bytes: u64) -> Option<Result<Vec<u8>, String>> {
    // A zlib stream starts with a CMF/FLG pair whose 16-bit value is a multiple of 31.
    let looks_like_zlib = data.len() >= 2
        && data[0] & 0x0f == 8
        && (u16::from(data[0]) << 8 | u16::from(data[1])) % 31 == 0;
    if !looks_like_zlib {
        return None;
    }
    use std::io::Read;
    let mut out = Vec::new();
    let mut decoder = flate2::read::ZlibDecoder::new(data).take(max_bytes.saturating_add(1));
    Some(match decoder.read_to_end(&mut out) {
        Ok(_) if out.len() as u64 > max_bytes => Err(format!("it inflates past {max_bytes} bytes")),
        Ok(_) => Ok(out),
        Err(err) => Err(format!("it is damaged zlib: {err}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn row(kind: &str, oid: ObjectId, data: Vec<u8>) -> LegacyRow {
        LegacyRow {
            oid,
            object_type: kind.to_string(),
            size: 0,
            data,
        }
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn with_header(kind: Kind, content: &[u8]) -> Vec<u8> {
        let mut data = format!("{kind} {}\0", content.len()).into_bytes();
        data.extend_from_slice(content);
        data
    }

    proptest::proptest! {
        /// Whatever way the row holds it, the object comes back whole, and
        /// the reading found is the one the row was written with.
        #[test]
        fn every_encoding_reads_back(content: Vec<u8>, which in 0usize..4, kind_index in 0usize..4) {
            let kind = [Kind::Commit, Kind::Tree, Kind::Blob, Kind::Tag][kind_index];
            let oid = object_id(kind, &content);
            let (data, encoding) = match which {
                0 => (content.clone(), Encoding::Raw),
                1 => (with_header(kind, &content), Encoding::WithHeader),
                2 => (zlib(&content), Encoding::Zlib),
                _ => (zlib(&with_header(kind, &content)), Encoding::ZlibWithHeader),
            };
            let named = std::str::from_utf8(kind.as_bytes()).unwrap();
            let decoded = decode(row(named, oid, data), 1 << 20).unwrap();
            proptest::prop_assert_eq!(decoded.kind, kind);
            proptest::prop_assert_eq!(&decoded.content, &content);
            proptest::prop_assert_eq!(decoded.encoding, encoding);
        }

        /// A row whose bytes were altered is corrupt, never some other object.
        #[test]
        fn an_altered_row_is_corrupt(content in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..200), flip in 0usize..200) {
            let oid = object_id(Kind::Blob, &content);
            let mut data = content.clone();
            let at = flip % data.len();
            data[at] ^= 0x40;
            proptest::prop_assert!(decode(row("blob", oid, data), 1 << 20).is_err());
        }
    }

    #[test]
    fn a_wrong_type_column_is_read_past() {
        let content = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nmessage\n".to_vec();
        let oid = object_id(Kind::Commit, &content);
        let decoded = decode(row("blob", oid, content.clone()), 1 << 20).unwrap();
        assert_eq!(decoded.kind, Kind::Commit);
        assert_eq!(decoded.content, content);
    }

    #[test]
    fn a_zlib_bomb_is_refused_at_the_bound() {
        let content = vec![0u8; 1 << 20];
        let oid = object_id(Kind::Blob, &content);
        let err = decode(row("blob", oid, zlib(&content)), 4096).unwrap_err();
        assert!(err.contains("past 4096"), "{err}");
    }
}
