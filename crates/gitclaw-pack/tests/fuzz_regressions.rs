//! Inputs the fuzz targets (`fuzz/`) found that broke a promise, kept as tests:
//! each is built here byte by byte, and named for what went wrong.

use std::{io::Write, sync::Arc};

use gitclaw_pack::{
    ingest::{ingest, IngestOptions},
    odb::{NoLoose, ObjectDb},
    ObjectId,
};
use sha1::Digest;

/// A pack of `entries` (each: header bytes, then what is deflated) with its trailer.
fn pack(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut bytes = b"PACK".to_vec();
    bytes.extend_from_slice(&2u32.to_be_bytes());
    bytes.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for (header, data) in entries {
        bytes.extend_from_slice(header);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(data).unwrap();
        bytes.extend_from_slice(&z.finish().unwrap());
    }
    let trailer: [u8; 20] = sha1::Sha1::digest(&bytes).into();
    bytes.extend_from_slice(&trailer);
    bytes
}

fn ingest_bytes(pack: &[u8]) -> Result<(), gitclaw_pack::PackError> {
    let work = tempfile::tempdir().unwrap();
    let db = ObjectDb::new(Vec::new(), Arc::new(NoLoose));
    let mut input = pack;
    let options = IngestOptions {
        threads: 1,
        ..IngestOptions::default()
    };
    ingest(&mut input, work.path(), &db, &options).map(|_| ())
}

/// fuzz target `pack_hostile`: the empty tree whole, then again as a REF_DELTA
/// against its own id (an empty delta). It was accepted, and reading the tree
/// back later could find the delta first, whose base is itself: "a pack delta
/// chain contains a cycle". Now refused as git's `index-pack --strict` does.
#[test]
fn an_object_twice_in_a_pack_once_as_a_delta_against_itself_is_refused() {
    let empty_tree = ObjectId::from_hex(b"4b825dc642cb6eb9a060e54bf8d69288fbee4904").unwrap();
    let mut ref_delta = vec![0x72]; // REF_DELTA, 2 bytes of delta data
    ref_delta.extend_from_slice(empty_tree.as_bytes());
    let pack = pack(&[
        (vec![0x20], Vec::new()), // a tree of 0 bytes
        (ref_delta, vec![0, 0]),  // base of 0 bytes, result of 0 bytes, no instructions
    ]);
    let err = ingest_bytes(&pack).expect_err("a pack holding one object twice");
    assert!(err.is_client_error(), "{err}");
    assert!(err.to_string().contains("appears twice"), "{err}");
}
