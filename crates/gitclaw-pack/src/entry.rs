//! Byte-level encoding of pack entry headers (type and size, delta base references).
//!
//! Only encoding lives here; decoding stored entries is gix-pack's job.

/// Pack entry type numbers as Git writes them.
pub const OBJ_COMMIT: u8 = 1;
pub const OBJ_TREE: u8 = 2;
pub const OBJ_BLOB: u8 = 3;
pub const OBJ_TAG: u8 = 4;
pub const OBJ_OFS_DELTA: u8 = 6;
pub const OBJ_REF_DELTA: u8 = 7;

/// The pack type number of a whole object.
pub fn kind_type(kind: gix_object::Kind) -> u8 {
    match kind {
        gix_object::Kind::Commit => OBJ_COMMIT,
        gix_object::Kind::Tree => OBJ_TREE,
        gix_object::Kind::Blob => OBJ_BLOB,
        gix_object::Kind::Tag => OBJ_TAG,
    }
}

/// Append the type-and-size header of a pack entry.
pub fn write_type_and_size(out: &mut Vec<u8>, type_id: u8, mut size: u64) {
    let mut byte = (type_id << 4) | (size & 0x0f) as u8;
    size >>= 4;
    while size != 0 {
        out.push(byte | 0x80);
        byte = (size & 0x7f) as u8;
        size >>= 7;
    }
    out.push(byte);
}

/// Append the base distance of an OFS_DELTA entry in Git's offset encoding.
pub fn write_ofs_distance(out: &mut Vec<u8>, mut distance: u64) {
    let mut buf = [0u8; 10];
    let mut pos = buf.len() - 1;
    buf[pos] = (distance & 0x7f) as u8;
    distance >>= 7;
    while distance != 0 {
        distance -= 1;
        pos -= 1;
        buf[pos] = 0x80 | (distance & 0x7f) as u8;
        distance >>= 7;
    }
    out.extend_from_slice(&buf[pos..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_ofs(bytes: &[u8]) -> u64 {
        let mut c = bytes[0];
        let mut value = u64::from(c & 0x7f);
        let mut i = 1;
        while c & 0x80 != 0 {
            c = bytes[i];
            i += 1;
            value = ((value + 1) << 7) | u64::from(c & 0x7f);
        }
        value
    }

    #[test]
    fn type_and_size_matches_git() {
        let mut out = Vec::new();
        write_type_and_size(&mut out, OBJ_BLOB, 15);
        assert_eq!(out, [0x3f]);
        out.clear();
        write_type_and_size(&mut out, OBJ_COMMIT, 16);
        assert_eq!(out, [0x90, 0x01]);
        out.clear();
        write_type_and_size(&mut out, OBJ_TREE, 0);
        assert_eq!(out, [0x20]);
    }

    proptest::proptest! {
        #[test]
        fn ofs_distance_round_trips(d in 1u64..(1u64 << 62)) {
            let mut out = Vec::new();
            write_ofs_distance(&mut out, d);
            proptest::prop_assert_eq!(decode_ofs(&out), d);
        }
    }
}
