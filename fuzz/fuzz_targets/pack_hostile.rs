//! Valid-but-hostile packs (see `gitclaw_fuzz::hostile`): deltas out of range,
//! size lies, REF_DELTA chains, cycles and missing bases, count lies,
//! truncation. A clean pack must be accepted with every object the model
//! resolved; anything else refused as the client's fault, and whatever is
//! accepted reads back as the object its id names.
#![no_main]
use std::sync::OnceLock;

use gitclaw_fuzz::{assert_reads_back, base_repository, db_of, hostile::HostilePack, MemLoose};
use gitclaw_pack::{ingest::ingest_file, odb::ObjectDb, Kind, ObjectId};
use libfuzzer_sys::fuzz_target;

type Known = std::collections::HashMap<ObjectId, (Kind, Vec<u8>)>;

fn repository() -> &'static (ObjectDb, Known) {
    static DB: OnceLock<(ObjectDb, Known)> = OnceLock::new();
    DB.get_or_init(|| {
        let known = base_repository().0.objects;
        let mut loose = MemLoose::default();
        loose.objects = known.clone();
        (db_of(loose), known)
    })
}

fuzz_target!(|hostile: HostilePack| {
    let (db, known) = repository();
    let built = hostile.build(known);
    let work = gitclaw_fuzz::scratch_dir();
    let options = gitclaw_fuzz::ingest_options();
    let (received, out) = gitclaw_fuzz::received_pack(&work, &built.bytes);
    match ingest_file(&received, &out, db, &options) {
        Ok(Some(pack)) => {
            let ids: std::collections::HashSet<ObjectId> =
                pack.objects.iter().map(|o| o.id).collect();
            if built.clean {
                assert!(built.expected.is_subset(&ids), "a clean pack lost objects");
            }
            assert_reads_back(pack);
        }
        Ok(None) => assert!(
            !built.clean || built.expected.is_empty(),
            "a clean pack read as empty"
        ),
        Err(err) => {
            assert!(!built.clean, "a clean pack was refused: {err}");
            assert!(err.is_client_error(), "{err}");
        }
    }
});
