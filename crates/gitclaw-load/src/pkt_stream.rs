//! pkt-lines read from a response body as it arrives (the protocol crate's
//! `decode_one` on a growing buffer), without waiting for the whole body.

use std::future::Future;

use bytes::{Bytes, BytesMut};
use gitclaw_protocol::pktline::{decode_one, PktLine};

use crate::error::RunError;

/// Where the bytes come from: a response body, or test data.
pub trait ChunkSource {
    /// The next piece of the body; `None` at its end.
    fn next_chunk(&mut self) -> impl Future<Output = Result<Option<Bytes>, RunError>> + Send;
}

/// One packet, its payload shared with the receive buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pkt {
    Data(Bytes),
    Flush,
    Delim,
    ResponseEnd,
}

/// Packets from a [`ChunkSource`].
pub struct PktStream<S> {
    source: S,
    buf: BytesMut,
    received: u64,
}

impl<S: ChunkSource> PktStream<S> {
    pub fn new(source: S) -> Self {
        PktStream {
            source,
            buf: BytesMut::new(),
            received: 0,
        }
    }

    /// Body bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The next packet; `None` when the body ends between packets.
    pub async fn next(&mut self) -> Result<Option<Pkt>, RunError> {
        loop {
            let decoded = decode_one(&self.buf)?.map(|(line, size)| {
                let special = match line {
                    PktLine::Data(_) => None,
                    PktLine::Flush => Some(Pkt::Flush),
                    PktLine::Delim => Some(Pkt::Delim),
                    PktLine::ResponseEnd => Some(Pkt::ResponseEnd),
                };
                (special, size)
            });
            if let Some((special, size)) = decoded {
                let packet = self.buf.split_to(size).freeze();
                return Ok(Some(
                    special.unwrap_or_else(|| Pkt::Data(packet.slice(4..))),
                ));
            }
            match self.source.next_chunk().await? {
                Some(chunk) => {
                    self.received += chunk.len() as u64;
                    self.buf.extend_from_slice(&chunk);
                }
                None if self.buf.is_empty() => return Ok(None),
                None => {
                    return Err(RunError::malformed(format!(
                        "the answer ends inside a packet ({} bytes of it)",
                        self.buf.len()
                    )))
                }
            }
        }
    }
}

/// Test data as a body: the chunks given, in order.
#[cfg(test)]
pub struct Chunks(pub std::collections::VecDeque<Bytes>);

#[cfg(test)]
impl Chunks {
    /// `data` cut into pieces of `size` bytes.
    pub fn split(data: &[u8], size: usize) -> Self {
        Chunks(data.chunks(size).map(Bytes::copy_from_slice).collect())
    }
}

#[cfg(test)]
impl ChunkSource for Chunks {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, RunError> {
        Ok(self.0.pop_front())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn read_all(data: &[u8], piece: usize) -> Result<Vec<Pkt>, RunError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut stream = PktStream::new(Chunks::split(data, piece));
            let mut out = Vec::new();
            while let Some(pkt) = stream.next().await? {
                out.push(pkt);
            }
            assert_eq!(stream.received(), data.len() as u64);
            Ok(out)
        })
    }

    #[test]
    fn packets_split_anywhere_come_out_whole() {
        let data = b"0009hello00010000000a world0002";
        for piece in 1..data.len() {
            assert_eq!(
                read_all(data, piece).unwrap(),
                vec![
                    Pkt::Data(Bytes::from_static(b"hello")),
                    Pkt::Delim,
                    Pkt::Flush,
                    Pkt::Data(Bytes::from_static(b" world")),
                    Pkt::ResponseEnd,
                ],
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn a_body_ending_inside_a_packet_is_malformed() {
        let err = read_all(b"0009hel", 3).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Malformed);
        let err = read_all(b"00", 3).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Malformed);
    }

    #[test]
    fn a_bad_length_is_malformed() {
        let err = read_all(b"zzzzhello", 4).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Malformed);
    }
}
