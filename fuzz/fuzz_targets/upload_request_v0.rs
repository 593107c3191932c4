//! A protocol v0/v1 upload-pack request body (wants, capabilities, shallow,
//! deepen forms, filter, haves, done).
#![no_main]
use gitclaw_protocol::v0::parse_upload_request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = parse_upload_request(data) {
        // What was parsed came from the input: no more lines than it holds.
        assert!(request.wants.len() + request.haves.len() <= data.len() / 4 + 1);
        if let Some(spec) = request.filter.as_deref() {
            let _ = gitclaw_pack::walk::Filter::parse(spec);
        }
    }
});
