//! pkt-line framing, as described in git's `gitprotocol-common(5)`: every
//! message of the smart protocols is a sequence of packets, each a 4-digit
//! hexadecimal length (counting itself) followed by that many bytes minus 4,
//! or one of the special packets `0000` (flush), `0001` (delim) and `0002`
//! (response-end).
//!
//! For reading there is [`PktReader`] over a complete buffer and
//! [`decode_one`] for input that arrives in pieces; for writing,
//! [`write_data`], [`write_text`] and [`write_err`]. This module knows only
//! the framing: what the lines mean belongs to the other modules, and
//! sideband multiplexing to [`crate::sideband`].

use bytes::Bytes;

use crate::{text::show, ProtocolError};

/// The flush packet: end of a message or section.
pub const FLUSH: &[u8] = b"0000";
/// The delimiter packet: separates sections of a protocol v2 message.
pub const DELIM: &[u8] = b"0001";
/// The response-end packet of protocol v2 stateless connections.
pub const RESPONSE_END: &[u8] = b"0002";
/// Largest pkt-line, length header included.
pub const MAX_PKT_LEN: usize = 65520;
/// Largest payload of one pkt-line.
pub const MAX_PKT_DATA: usize = MAX_PKT_LEN - 4;

/// Size of the length header of every packet.
pub(crate) const HEADER_LEN: usize = 4;

/// One packet, borrowing its payload from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PktLine<'a> {
    /// A data packet's payload (possibly empty, for `0004`).
    Data(&'a [u8]),
    /// `0000`.
    Flush,
    /// `0001`.
    Delim,
    /// `0002`.
    ResponseEnd,
}

impl<'a> PktLine<'a> {
    /// The payload of a data packet, `None` for the special packets.
    pub fn data(&self) -> Option<&'a [u8]> {
        match self {
            PktLine::Data(data) => Some(data),
            _ => None,
        }
    }

    /// A copy that does not borrow the input.
    pub fn into_owned(self) -> OwnedPktLine {
        match self {
            PktLine::Data(data) => OwnedPktLine::Data(Bytes::copy_from_slice(data)),
            PktLine::Flush => OwnedPktLine::Flush,
            PktLine::Delim => OwnedPktLine::Delim,
            PktLine::ResponseEnd => OwnedPktLine::ResponseEnd,
        }
    }

    /// The packet's name for error messages.
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            PktLine::Data(_) => "data line",
            PktLine::Flush => "flush",
            PktLine::Delim => "delim",
            PktLine::ResponseEnd => "response-end",
        }
    }
}

/// One packet owning its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedPktLine {
    /// A data packet's payload.
    Data(Bytes),
    /// `0000`.
    Flush,
    /// `0001`.
    Delim,
    /// `0002`.
    ResponseEnd,
}

impl OwnedPktLine {
    /// A borrowed view of this packet.
    pub fn as_pkt(&self) -> PktLine<'_> {
        match self {
            OwnedPktLine::Data(data) => PktLine::Data(data),
            OwnedPktLine::Flush => PktLine::Flush,
            OwnedPktLine::Delim => PktLine::Delim,
            OwnedPktLine::ResponseEnd => PktLine::ResponseEnd,
        }
    }
}

/// `data` without one trailing `\n`, if it has one. Text lines should end in
/// a newline, but receivers must accept them without.
pub fn trim_newline(data: &[u8]) -> &[u8] {
    data.strip_suffix(b"\n").unwrap_or(data)
}

fn hex_digit(byte: u8) -> Option<usize> {
    (byte as char).to_digit(16).map(|d| d as usize)
}

/// The total size (header included) of the packet starting with `header`.
pub(crate) fn packet_size(header: &[u8; HEADER_LEN]) -> Result<usize, ProtocolError> {
    let mut len = 0usize;
    for &byte in header {
        let digit = hex_digit(byte).ok_or_else(|| ProtocolError::InvalidLength(show(header)))?;
        len = len * 16 + digit;
    }
    match len {
        0..=2 => Ok(HEADER_LEN),
        3 => Err(ProtocolError::InvalidLength(show(header))),
        len if len > MAX_PKT_LEN => Err(ProtocolError::LengthTooLarge(len)),
        len => Ok(len),
    }
}

/// Decodes the packet at the start of `buf`.
///
/// Returns the packet and the number of bytes it took, or `None` when `buf`
/// holds only part of a packet (read more and call again with the longer
/// buffer). A malformed length is an error as soon as it is seen, even when
/// the header is still incomplete.
pub fn decode_one(buf: &[u8]) -> Result<Option<(PktLine<'_>, usize)>, ProtocolError> {
    let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
        if buf.iter().any(|&b| hex_digit(b).is_none()) {
            return Err(ProtocolError::InvalidLength(show(buf)));
        }
        return Ok(None);
    };
    let size = packet_size(header)?;
    let Some(packet) = buf.get(..size) else {
        return Ok(None);
    };
    let line = match &header[..] {
        b"0000" => PktLine::Flush,
        b"0001" => PktLine::Delim,
        b"0002" => PktLine::ResponseEnd,
        _ => PktLine::Data(&packet[HEADER_LEN..]),
    };
    Ok(Some((line, size)))
}

/// Reads packets one by one from a complete in-memory buffer.
#[derive(Debug, Clone)]
pub struct PktReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> PktReader<'a> {
    /// A reader positioned at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        PktReader { buf, pos: 0 }
    }

    /// The next packet; `None` when the buffer ends exactly after the last
    /// packet, an error when it ends inside one. After an error the reader
    /// stays where it was.
    pub fn read(&mut self) -> Result<Option<PktLine<'a>>, ProtocolError> {
        let rest = self.remaining();
        if rest.is_empty() {
            return Ok(None);
        }
        match decode_one(rest)? {
            Some((line, size)) => {
                self.pos += size;
                Ok(Some(line))
            }
            None => {
                let needed = match rest.first_chunk::<HEADER_LEN>() {
                    Some(header) => packet_size(header)?,
                    None => HEADER_LEN,
                };
                Err(ProtocolError::Truncated {
                    needed,
                    available: rest.len(),
                })
            }
        }
    }

    /// The bytes after the last packet read (for example the pack data that
    /// follows a receive-pack command list).
    pub fn remaining(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Offset in the buffer of the first byte not yet read.
    pub fn position(&self) -> usize {
        self.pos
    }
}

/// Appends one data packet carrying `data`.
pub fn write_data(out: &mut Vec<u8>, data: &[u8]) -> Result<(), ProtocolError> {
    if data.len() > MAX_PKT_DATA {
        return Err(ProtocolError::PayloadTooLarge(data.len()));
    }
    write_header(out, data.len() + HEADER_LEN);
    out.extend_from_slice(data);
    Ok(())
}

/// One data packet carrying `data`.
pub fn data_pkt(data: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    let mut out = Vec::with_capacity(data.len() + HEADER_LEN);
    write_data(&mut out, data)?;
    Ok(out)
}

/// Appends one data packet carrying `text` as it is (include the `\n`).
pub fn write_text(out: &mut Vec<u8>, text: &str) -> Result<(), ProtocolError> {
    write_data(out, text.as_bytes())
}

/// Appends `ERR <message>\n`, the packet that ends a conversation with an
/// error the git client shows to its user. Newlines in `message` become
/// spaces and an over-long message is cut, so this cannot fail.
pub fn write_err(out: &mut Vec<u8>, message: &str) {
    write_line_lossy(out, &format!("ERR {message}"));
}

/// Appends `line` plus `\n` as one data packet, with line breaks inside
/// `line` turned into spaces and the text cut (at a character boundary) to
/// fit. For lines made of messages whose length the caller cannot bound.
pub(crate) fn write_line_lossy(out: &mut Vec<u8>, line: &str) {
    let mut end = line.len().min(MAX_PKT_DATA - 1);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    let line = &line[..end];
    write_header(out, line.len() + 1 + HEADER_LEN);
    out.extend(
        line.bytes()
            .map(|b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
    );
    out.push(b'\n');
}

/// Appends the 4-digit length header; `len` is at most [`MAX_PKT_LEN`].
pub(crate) fn write_header(out: &mut Vec<u8>, len: usize) {
    debug_assert!(len <= MAX_PKT_LEN);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in [12, 8, 4, 0] {
        out.push(HEX[(len >> shift) & 0xf]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_data_packets() {
        assert_eq!(data_pkt(b"a\n").unwrap(), b"0006a\n");
        assert_eq!(data_pkt(b"a").unwrap(), b"0005a");
        assert_eq!(data_pkt(b"foobar\n").unwrap(), b"000bfoobar\n");
        assert_eq!(data_pkt(b"").unwrap(), b"0004");
        let mut out = Vec::new();
        write_text(&mut out, "version 1\n").unwrap();
        assert_eq!(out, b"000eversion 1\n");
    }

    #[test]
    fn writes_the_largest_packet_and_refuses_larger() {
        let data = vec![b'x'; MAX_PKT_DATA];
        let pkt = data_pkt(&data).unwrap();
        assert_eq!(&pkt[..4], b"fff0");
        assert_eq!(pkt.len(), MAX_PKT_LEN);
        let mut out = Vec::new();
        assert_eq!(
            write_data(&mut out, &[0; MAX_PKT_DATA + 1]),
            Err(ProtocolError::PayloadTooLarge(MAX_PKT_DATA + 1))
        );
        assert!(out.is_empty());
    }

    #[test]
    fn writes_err_packets_on_one_line() {
        let mut out = Vec::new();
        write_err(&mut out, "upload-pack: not our ref\nsecond line");
        assert_eq!(out, b"002dERR upload-pack: not our ref second line\n");

        let mut out = Vec::new();
        write_err(&mut out, &"é".repeat(40_000));
        assert_eq!(out.len(), MAX_PKT_LEN - 1);
        assert_eq!(
            PktReader::new(&out)
                .read()
                .unwrap()
                .unwrap()
                .data()
                .unwrap()
                .last(),
            Some(&b'\n')
        );
        assert!(std::str::from_utf8(&out[4..]).is_ok());
    }

    #[test]
    fn reads_packets_and_reports_the_remainder() {
        let buf = b"0006a\n00000001000200040005bPACK";
        let mut reader = PktReader::new(buf);
        assert_eq!(reader.read(), Ok(Some(PktLine::Data(b"a\n"))));
        assert_eq!(reader.read(), Ok(Some(PktLine::Flush)));
        assert_eq!(reader.read(), Ok(Some(PktLine::Delim)));
        assert_eq!(reader.read(), Ok(Some(PktLine::ResponseEnd)));
        assert_eq!(reader.read(), Ok(Some(PktLine::Data(b""))));
        assert_eq!(reader.read(), Ok(Some(PktLine::Data(b"b"))));
        assert_eq!(reader.remaining(), b"PACK");
        assert_eq!(reader.position(), buf.len() - 4);
    }

    #[test]
    fn clean_end_of_buffer_is_none() {
        let mut reader = PktReader::new(b"0000");
        assert_eq!(reader.read(), Ok(Some(PktLine::Flush)));
        assert_eq!(reader.read(), Ok(None));
        assert_eq!(PktReader::new(b"").read(), Ok(None));
    }

    #[test]
    fn accepts_uppercase_hex_lengths() {
        let mut buf = b"000A".to_vec();
        buf.extend_from_slice(b"abcdef");
        assert_eq!(
            PktReader::new(&buf).read(),
            Ok(Some(PktLine::Data(b"abcdef")))
        );
    }

    #[test]
    fn refuses_non_hex_length() {
        assert_eq!(
            PktReader::new(b"00x6a\n").read(),
            Err(ProtocolError::InvalidLength("00x6".into()))
        );
        assert_eq!(
            PktReader::new(b"PACK\x00\x00").read(),
            Err(ProtocolError::InvalidLength("PACK".into()))
        );
        assert_eq!(
            PktReader::new(b"-001").read(),
            Err(ProtocolError::InvalidLength("-001".into()))
        );
        assert_eq!(
            PktReader::new(b" 01a").read(),
            Err(ProtocolError::InvalidLength(" 01a".into()))
        );
    }

    #[test]
    fn refuses_length_three() {
        assert_eq!(
            PktReader::new(b"0003").read(),
            Err(ProtocolError::InvalidLength("0003".into()))
        );
    }

    #[test]
    fn refuses_oversize_length() {
        assert_eq!(
            PktReader::new(b"fff1").read(),
            Err(ProtocolError::LengthTooLarge(65521))
        );
        assert_eq!(
            PktReader::new(b"ffff").read(),
            Err(ProtocolError::LengthTooLarge(65535))
        );
    }

    #[test]
    fn refuses_truncated_packets() {
        let mut reader = PktReader::new(b"0009ab");
        assert_eq!(
            reader.read(),
            Err(ProtocolError::Truncated {
                needed: 9,
                available: 6
            })
        );
        assert_eq!(reader.position(), 0);
        assert_eq!(
            PktReader::new(b"00").read(),
            Err(ProtocolError::Truncated {
                needed: 4,
                available: 2
            })
        );
        let mut reader = PktReader::new(b"0000000");
        assert_eq!(reader.read(), Ok(Some(PktLine::Flush)));
        assert!(matches!(
            reader.read(),
            Err(ProtocolError::Truncated { .. })
        ));
    }

    #[test]
    fn decode_one_asks_for_more_bytes() {
        assert_eq!(decode_one(b""), Ok(None));
        assert_eq!(decode_one(b"00"), Ok(None));
        assert_eq!(decode_one(b"0008ab"), Ok(None));
        assert_eq!(
            decode_one(b"0008abcdXY"),
            Ok(Some((PktLine::Data(b"abcd"), 8)))
        );
        assert_eq!(decode_one(b"0000rest"), Ok(Some((PktLine::Flush, 4))));
        assert_eq!(
            decode_one(b"0z"),
            Err(ProtocolError::InvalidLength("0z".into()))
        );
    }

    #[test]
    fn owned_round_trip() {
        let line = PktLine::Data(b"abc");
        assert_eq!(
            line.into_owned(),
            OwnedPktLine::Data(Bytes::from_static(b"abc"))
        );
        assert_eq!(line.into_owned().as_pkt(), line);
        for special in [PktLine::Flush, PktLine::Delim, PktLine::ResponseEnd] {
            assert_eq!(special.into_owned().as_pkt(), special);
            assert_eq!(special.data(), None);
        }
    }

    #[test]
    fn trims_one_newline() {
        assert_eq!(trim_newline(b"done\n"), b"done");
        assert_eq!(trim_newline(b"done"), b"done");
        assert_eq!(trim_newline(b"x\n\n"), b"x\n");
        assert_eq!(trim_newline(b""), b"");
    }
}
