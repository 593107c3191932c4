//! Pack ingest (the indexer that verifies a push, with thin-pack completion
//! against the repository's objects) fed arbitrary bytes — and, from the seed
//! corpus, real packs git wrote, which the fuzzer mutates.
#![no_main]
use std::sync::OnceLock;

use gitclaw_fuzz::{assert_reads_back, base_repository, db_of};
use gitclaw_pack::{ingest::ingest_file, odb::ObjectDb};
use libfuzzer_sys::fuzz_target;

fn repository() -> &'static ObjectDb {
    static DB: OnceLock<ObjectDb> = OnceLock::new();
    DB.get_or_init(|| db_of(base_repository().0))
}

fuzz_target!(|data: &[u8]| {
    let work = gitclaw_fuzz::scratch_dir();
    let options = gitclaw_fuzz::ingest_options();
    let (received, out) = gitclaw_fuzz::received_pack(&work, &data);
    match ingest_file(&received, &out, repository(), &options) {
        Ok(Some(pack)) => {
            // Whatever was accepted reads back as the object its id names.
            assert_reads_back(pack);
        }
        Ok(None) => {}
        // Refused: the fault must be the input's, never the server's.
        Err(err) => assert!(err.is_client_error(), "{err}"),
    }
});
