//! The pkt-line reader, on whole buffers and one packet at a time.
#![no_main]
use gitclaw_protocol::pktline::{decode_one, PktReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut reader = PktReader::new(data);
    let mut last = 0;
    while let Ok(Some(pkt)) = reader.read() {
        // Every packet moves the reader forward and stays inside the input.
        assert!(reader.position() > last || pkt.data().is_none());
        assert!(reader.position() <= data.len());
        last = reader.position();
        if let Some(payload) = pkt.data() {
            assert!(payload.len() <= data.len());
        }
    }
    if let Ok(Some((_, used))) = decode_one(data) {
        assert!(used <= data.len());
    }
});
