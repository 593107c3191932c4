//! Property tests: pkt-line round trips, no panics on any input, and
//! chunking-independence of the push request parser.

use gitclaw_protocol::{
    pktline::{self, decode_one, PktLine, PktReader, MAX_PKT_DATA},
    receive_pack::{parse_push_request, ParseProgress, PushRequestParser},
    v0, v2, ProtocolError,
};
use proptest::prelude::*;

const HEX_A: &str = "74730d410fcb6603ace96f1dc55ea6196122532d";
const ZERO: &str = "0000000000000000000000000000000000000000";

#[derive(Debug, Clone)]
enum Packet {
    Data(Vec<u8>),
    Flush,
    Delim,
    ResponseEnd,
}

fn encode(packets: &[Packet]) -> Vec<u8> {
    let mut out = Vec::new();
    for packet in packets {
        match packet {
            Packet::Data(data) => pktline::write_data(&mut out, data).unwrap(),
            Packet::Flush => out.extend_from_slice(pktline::FLUSH),
            Packet::Delim => out.extend_from_slice(pktline::DELIM),
            Packet::ResponseEnd => out.extend_from_slice(pktline::RESPONSE_END),
        }
    }
    out
}

fn v0_lines() -> Vec<String> {
    vec![
        format!("want {HEX_A} multi_ack_detailed side-band-64k deepen-relative"),
        format!("want {HEX_A}"),
        format!("want {}", &HEX_A[1..]),
        format!("have {HEX_A}"),
        format!("shallow {HEX_A}"),
        "done".into(),
        "deepen 0".into(),
        "deepen 3".into(),
        "deepen 99999999999".into(),
        "deepen-since 17".into(),
        "deepen-not refs/heads/x".into(),
        "filter blob:none".into(),
    ]
}

fn v2_lines() -> Vec<String> {
    let mut lines = v0_lines();
    lines.extend([
        "command=fetch".into(),
        "command=ls-refs".into(),
        "agent=git/2".into(),
        "symrefs".into(),
        "peel".into(),
        "unborn".into(),
        "ref-prefix refs/".into(),
        "want-ref refs/heads/main".into(),
        "packfile-uris https".into(),
        "thin-pack".into(),
        "wait-for-done".into(),
    ]);
    lines
}

fn push_lines() -> Vec<String> {
    vec![
        format!("{ZERO} {HEX_A} refs/heads/main\0report-status push-options"),
        format!("{ZERO} {HEX_A} refs/heads/main\0report-status"),
        format!("{HEX_A} {ZERO} refs/heads/old"),
        format!("{HEX_A} {ZERO} refs/heads/\x01"),
        format!("{HEX_A} {HEX_A}"),
        format!("shallow {HEX_A}"),
        "push-cert\0x".into(),
        "ci.skip".into(),
    ]
}

/// A data packet: mostly one of `known` (lines that mean something to the
/// parser under test, so generated input gets past the framing), sometimes
/// printable noise or arbitrary bytes.
fn packet(known: Vec<String>) -> impl Strategy<Value = Packet> {
    let line = (
        prop_oneof![
            12 => proptest::sample::select(known),
            1 => "[ -~]{0,60}",
        ],
        any::<bool>(),
    )
        .prop_map(|(line, newline)| {
            let mut line = line.into_bytes();
            if newline {
                line.push(b'\n');
            }
            line
        });
    prop_oneof![
        12 => line.prop_map(Packet::Data),
        1 => proptest::collection::vec(any::<u8>(), 0..80).prop_map(Packet::Data),
        3 => Just(Packet::Flush),
        1 => Just(Packet::Delim),
        1 => Just(Packet::ResponseEnd),
    ]
}

/// Arbitrary bytes, or mostly well-framed packets (see [`packet`]),
/// sometimes followed by arbitrary bytes or cut short.
fn request_input(known: Vec<String>) -> impl Strategy<Value = Vec<u8>> {
    let framed = (
        proptest::collection::vec(packet(known), 0..12),
        proptest::collection::vec(any::<u8>(), 0..16),
        any::<prop::sample::Index>(),
        0..4u8,
    )
        .prop_map(|(packets, tail, cut, mangle)| {
            let mut bytes = encode(&packets);
            if mangle == 0 {
                bytes.extend_from_slice(&tail);
            }
            if mangle == 1 && !bytes.is_empty() {
                bytes.truncate(cut.index(bytes.len()));
            }
            bytes
        });
    prop_oneof![1 => proptest::collection::vec(any::<u8>(), 0..200), 4 => framed]
}

/// Feeds `input` in pieces cut at `cuts`; returns the outcome and the
/// absolute offset where the command section ended.
fn feed_in_chunks(
    input: &[u8],
    cuts: &[prop::sample::Index],
) -> Result<Option<(gitclaw_protocol::receive_pack::PushRequest, usize)>, ProtocolError> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
    points.push(0);
    points.push(input.len());
    points.sort_unstable();
    let mut parser = PushRequestParser::new();
    for pair in points.windows(2) {
        match parser.feed(&input[pair[0]..pair[1]])? {
            ParseProgress::NeedMore => {}
            ParseProgress::Complete { request, consumed } => {
                return Ok(Some((request, pair[0] + consumed)))
            }
        }
    }
    Ok(None)
}

proptest! {
    #[test]
    fn pkt_line_round_trip(data in proptest::collection::vec(any::<u8>(), 0..2048), big in any::<bool>()) {
        let data = if big { data.repeat(MAX_PKT_DATA / data.len().max(1)).into_iter().take(MAX_PKT_DATA).collect() } else { data };
        let pkt = pktline::data_pkt(&data).unwrap();
        prop_assert_eq!(pkt.len(), data.len() + 4);
        let mut reader = PktReader::new(&pkt);
        prop_assert_eq!(reader.read(), Ok(Some(PktLine::Data(&data))));
        prop_assert_eq!(reader.read(), Ok(None));
        prop_assert_eq!(decode_one(&pkt), Ok(Some((PktLine::Data(&data), pkt.len()))));
        // Every proper prefix asks for more bytes.
        for len in [0, 1, 3, 4, pkt.len() / 2, pkt.len() - 1] {
            if len < pkt.len() {
                prop_assert_eq!(decode_one(&pkt[..len]), Ok(None));
            }
        }
    }

    #[test]
    fn packet_sequence_round_trip(packets in proptest::collection::vec(packet(v2_lines()), 0..20)) {
        let bytes = encode(&packets);
        let mut reader = PktReader::new(&bytes);
        for packet in &packets {
            let line = reader.read().unwrap().unwrap();
            match (packet, line) {
                (Packet::Data(expected), PktLine::Data(data)) => prop_assert_eq!(expected.as_slice(), data),
                (Packet::Flush, PktLine::Flush) | (Packet::Delim, PktLine::Delim) | (Packet::ResponseEnd, PktLine::ResponseEnd) => {}
                (expected, got) => prop_assert!(false, "expected {:?}, got {:?}", expected, got),
            }
        }
        prop_assert_eq!(reader.read(), Ok(None));
    }

    #[test]
    fn pkt_reader_never_panics(input in request_input(v2_lines())) {
        let mut reader = PktReader::new(&input);
        // Each successful read consumes at least 4 bytes, so this ends.
        while let Ok(Some(_)) = reader.read() {}
        prop_assert!(reader.remaining().len() <= input.len());
    }

    #[test]
    fn decode_one_never_panics(input in request_input(v2_lines())) {
        if let Ok(Some((_, size))) = decode_one(&input) {
            prop_assert!((4..=pktline::MAX_PKT_LEN).contains(&size));
            prop_assert!(size <= input.len());
        }
    }

    #[test]
    fn upload_request_parser_never_panics(input in request_input(v0_lines())) {
        let _ = v0::parse_upload_request(&input);
    }

    #[test]
    fn command_request_parser_never_panics(input in request_input(v2_lines())) {
        if let Ok(Some(request)) = v2::parse_command_request(&input) {
            let _ = v2::LsRefsArgs::parse(&request.args);
            let _ = v2::FetchArgs::parse(&request.args);
        }
    }

    #[test]
    fn errors_are_one_line(input in request_input([v2_lines(), push_lines()].concat())) {
        let errors = [
            v0::parse_upload_request(&input).err(),
            v2::parse_command_request(&input).err(),
            parse_push_request(&input).err(),
        ];
        for error in errors.into_iter().flatten() {
            let message = error.to_string();
            prop_assert!(!message.contains('\n') && !message.contains('\r'), "{:?}", message);
            prop_assert!(message.len() < 400, "{:?}", message);
        }
    }

    #[test]
    fn push_parser_is_independent_of_chunking(
        input in request_input(push_lines()),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let whole = parse_push_request(&input);
        let chunked = feed_in_chunks(&input, &cuts);
        match (whole, chunked) {
            (Ok(whole), Ok(Some(chunked))) => prop_assert_eq!(whole, chunked),
            (Err(ProtocolError::UnexpectedEof(_)), Ok(None)) => {}
            (Err(a), Err(b)) => prop_assert_eq!(std::mem::discriminant(&a), std::mem::discriminant(&b), "{:?} vs {:?}", a, b),
            (whole, chunked) => prop_assert!(false, "whole {:?}, chunked {:?}", whole, chunked),
        }
    }

    #[test]
    fn valid_push_requests_parse_the_same_in_any_chunking(
        commands in proptest::collection::vec(("[a-z]{1,20}", any::<bool>()), 1..20),
        options in proptest::collection::vec("[ -~]{0,30}", 0..5),
        pack in proptest::collection::vec(any::<u8>(), 0..64),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let mut packets = vec![Packet::Data(format!("shallow {HEX_A}").into_bytes())];
        for (i, (name, delete)) in commands.iter().enumerate() {
            let (old, new) = if *delete { (HEX_A, ZERO) } else { (ZERO, HEX_A) };
            let mut line = format!("{old} {new} refs/heads/{name}");
            if i == 0 {
                line.push_str("\0report-status side-band-64k push-options");
            }
            packets.push(Packet::Data(line.into_bytes()));
        }
        packets.push(Packet::Flush);
        packets.extend(options.iter().map(|o| Packet::Data(o.clone().into_bytes())));
        packets.push(Packet::Flush);
        let section = encode(&packets);
        let mut input = section.clone();
        input.extend_from_slice(&pack);

        let (request, offset) = parse_push_request(&input).unwrap();
        prop_assert_eq!(offset, section.len());
        prop_assert_eq!(request.commands.len(), commands.len());
        prop_assert_eq!(&request.push_options, &options);
        for (command, (name, delete)) in request.commands.iter().zip(&commands) {
            prop_assert_eq!(&command.name, &format!("refs/heads/{name}"));
            prop_assert_eq!(command.is_delete(), *delete);
        }
        let chunked = feed_in_chunks(&input, &cuts).unwrap();
        prop_assert_eq!(chunked, Some((request, offset)));
    }
}
