//! A request body as the server reads it, with `Content-Encoding: gzip` (or
//! identity): what comes out is bounded by the limit whatever the input claims
//! (gzip bombs, concatenated members, garbage after a member).
#![no_main]
use std::sync::OnceLock;

use axum::{body::Body, http::HeaderMap};
use gitclaw_server::http::body::{body_reader, read_limited};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 1 << 20;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, body)) = data.split_first() else {
        return;
    };
    let mut headers = HeaderMap::new();
    let encoding = ["gzip", "x-gzip", "identity", "br"][choice as usize % 4];
    headers.insert("content-encoding", encoding.parse().unwrap());
    let Ok(mut reader) = body_reader(&headers, Body::from(body.to_vec())) else {
        assert_eq!(
            encoding, "br",
            "only unknown encodings are refused up front"
        );
        return;
    };
    if let Ok(read) = runtime().block_on(read_limited(&mut reader, LIMIT)) {
        assert!(read.len() <= LIMIT);
        if encoding == "identity" {
            assert_eq!(read, body);
        }
    }
});
