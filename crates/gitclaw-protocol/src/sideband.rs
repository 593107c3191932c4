//! Sideband multiplexing (`side-band`, `side-band-64k`, and always in the
//! protocol v2 `packfile` section): each pkt-line's first payload byte names
//! a channel — 1 pack data, 2 progress text, 3 a fatal error text.
//!
//! Only the writing side: the server never reads sideband data. Choosing
//! whether to multiplex at all is the caller's (it depends on the negotiated
//! capabilities).

use crate::pktline::{self, MAX_PKT_LEN};

/// Largest packet (header included) with `side-band-64k` and in protocol v2.
pub const SIDEBAND_64K_MAX: usize = MAX_PKT_LEN;
/// Largest packet (header included) with plain `side-band`.
pub const SIDEBAND_MAX: usize = 1000;

/// Length header plus band byte.
const OVERHEAD: usize = 5;

/// A sideband channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Band {
    /// Pack data (or, on receive-pack, the report-status packets).
    Data = 1,
    /// Progress text the client prints as `remote: ...`.
    Progress = 2,
    /// An error text; the client shows it and gives up.
    Error = 3,
}

/// Data bytes one packet of at most `max_pkt` bytes carries.
pub fn payload_len(max_pkt: usize) -> usize {
    max_pkt.clamp(OVERHEAD + 1, MAX_PKT_LEN) - OVERHEAD
}

/// Appends `data` on `band`, split into as many packets of at most `max_pkt`
/// bytes (header included) as needed. `max_pkt` is [`SIDEBAND_64K_MAX`] or
/// [`SIDEBAND_MAX`]; other values are clamped to what a packet can hold.
/// Empty `data` writes one packet holding only the band byte, which is what
/// git sends on band 2 as a keepalive.
pub fn write_band(out: &mut Vec<u8>, band: Band, data: &[u8], max_pkt: usize) {
    let chunk_len = payload_len(max_pkt);
    if data.is_empty() {
        out.extend_from_slice(b"0005");
        out.push(band as u8);
        return;
    }
    out.reserve(data.len() + data.len().div_ceil(chunk_len) * OVERHEAD);
    for chunk in data.chunks(chunk_len) {
        pktline::write_header(out, chunk.len() + OVERHEAD);
        out.push(band as u8);
        out.extend_from_slice(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktline::{PktLine, PktReader};

    fn packets(buf: &[u8]) -> Vec<Vec<u8>> {
        let mut reader = PktReader::new(buf);
        let mut out = Vec::new();
        while let Some(line) = reader.read().unwrap() {
            match line {
                PktLine::Data(data) => out.push(data.to_vec()),
                other => panic!("unexpected {other:?}"),
            }
        }
        out
    }

    #[test]
    fn writes_one_small_packet() {
        let mut out = Vec::new();
        write_band(
            &mut out,
            Band::Progress,
            b"Counting objects: 3\n",
            SIDEBAND_64K_MAX,
        );
        assert_eq!(out, b"0019\x02Counting objects: 3\n");
    }

    #[test]
    fn splits_at_the_64k_limit() {
        let data = vec![7u8; 65515 * 2 + 1];
        let mut out = Vec::new();
        write_band(&mut out, Band::Data, &data, SIDEBAND_64K_MAX);
        let pkts = packets(&out);
        assert_eq!(pkts.len(), 3);
        assert_eq!(&out[..5], b"fff0\x01");
        assert_eq!(pkts[0].len(), 65516);
        assert_eq!(pkts[2], vec![1, 7]);
        let joined: Vec<u8> = pkts.iter().flat_map(|p| p[1..].to_vec()).collect();
        assert_eq!(joined, data);
    }

    #[test]
    fn splits_at_the_small_limit() {
        let data = vec![b'e'; 995 * 2];
        let mut out = Vec::new();
        write_band(&mut out, Band::Error, &data, SIDEBAND_MAX);
        let pkts = packets(&out);
        assert_eq!(pkts.len(), 2);
        assert!(out.starts_with(b"03e8\x03"));
        assert!(pkts.iter().all(|p| p.len() == 996 && p[0] == 3));
    }

    #[test]
    fn empty_data_is_a_keepalive() {
        let mut out = Vec::new();
        write_band(&mut out, Band::Progress, b"", SIDEBAND_64K_MAX);
        assert_eq!(out, b"0005\x02");
    }

    #[test]
    fn absurd_limits_are_clamped() {
        let mut out = Vec::new();
        write_band(&mut out, Band::Data, b"abc", 0);
        assert_eq!(out, b"0006\x01a0006\x01b0006\x01c");
        let mut out = Vec::new();
        write_band(&mut out, Band::Data, &vec![0; 70_000], usize::MAX);
        assert_eq!(packets(&out).len(), 2);
    }
}
