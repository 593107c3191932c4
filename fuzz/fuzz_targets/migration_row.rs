//! A legacy `repo_objects` row as `gitclaw migrate` reads it: the content as it
//! is, with git's header, zlib-compressed, or both — built so that a reading can
//! match the row's id, with a type name, a size and a header that may lie, and
//! bytes after the zlib stream.
#![no_main]
use std::io::Write;

use arbitrary::Arbitrary;
use gitclaw_metadata::LegacyRow;
use gitclaw_pack::{Kind, ObjectId};
use gitclaw_server::service::migrate::decode::{decode, object_id};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Row {
    kind: u8,
    content: Vec<u8>,
    with_header: bool,
    header_size_lie: Option<u32>,
    zlib: bool,
    after_stream: Vec<u8>,
    /// Some: this id instead of the content's.
    other_oid: Option<[u8; 20]>,
    /// Some: this type name instead of the kind's.
    type_name: Option<String>,
    size: i64,
}

const KINDS: [Kind; 4] = [Kind::Commit, Kind::Tree, Kind::Blob, Kind::Tag];
const MAX_BYTES: u64 = 1 << 20;

fuzz_target!(|row: Row| {
    let kind = KINDS[row.kind as usize % 4];
    let mut data = Vec::new();
    if row.with_header {
        let size = row
            .header_size_lie
            .map_or(row.content.len() as u64, u64::from);
        data.extend_from_slice(format!("{kind} {size}\0").as_bytes());
    }
    data.extend_from_slice(&row.content);
    if row.zlib {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&data).unwrap();
        data = z.finish().unwrap();
        data.extend_from_slice(&row.after_stream);
    }
    let oid = match row.other_oid {
        Some(raw) => ObjectId::from_bytes_or_panic(&raw),
        None => object_id(kind, &row.content),
    };
    let legacy = LegacyRow {
        oid,
        object_type: row.type_name.unwrap_or_else(|| kind.to_string()),
        size: row.size,
        data,
    };
    if let Ok(decoded) = decode(legacy, MAX_BYTES) {
        // A row is only ever read as the object its id names.
        assert_eq!(object_id(decoded.kind, &decoded.content), oid);
        assert!(decoded.content.len() as u64 <= MAX_BYTES);
    }
});
