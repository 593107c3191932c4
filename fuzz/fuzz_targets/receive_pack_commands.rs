//! The command section of a push (commands, capabilities, push options, shallow
//! lines), fed in pieces as it arrives over the network, checked against the
//! same bytes parsed whole.
#![no_main]
use gitclaw_fuzz::pieces;
use gitclaw_protocol::receive_pack::{parse_push_request, ParseProgress, PushRequestParser};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = data.get(1..).unwrap_or_default();
    let whole = parse_push_request(body);
    let mut parser = PushRequestParser::new();
    let mut fed = 0;
    let mut streamed = None;
    for piece in pieces(data) {
        match parser.feed(piece) {
            Ok(ParseProgress::NeedMore) => fed += piece.len(),
            Ok(ParseProgress::Complete { request, consumed }) => {
                assert!(consumed <= piece.len());
                streamed = Some(Ok((request, fed + consumed)));
                break;
            }
            Err(err) => {
                streamed = Some(Err(err));
                break;
            }
        }
    }
    // Fed whole or in pieces, a complete section parses to the same request.
    if let Ok((a, used_a)) = &whole {
        match &streamed {
            Some(Ok((b, used_b))) => {
                assert_eq!(a, b);
                assert_eq!(used_a, used_b);
            }
            other => panic!("parsed whole, but in pieces: {other:?}"),
        }
    }
    if whole.is_err() {
        assert!(
            !matches!(streamed, Some(Ok(_))),
            "accepted in pieces, refused whole"
        );
    }
});
