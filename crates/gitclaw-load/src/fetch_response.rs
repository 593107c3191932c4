//! Reading a protocol v2 fetch answer as it streams: the sections before the
//! pack (`acknowledgments`, `shallow-info`, `wanted-refs`, `packfile-uris`),
//! then the `packfile` section's sideband — band 1 to the pack check, band 2
//! (progress) skipped, band 3 the server's error — then the closing flush.

use bytes::Bytes;
use gitclaw_protocol::{pktline::trim_newline, ObjectId};

use crate::{
    error::{ErrorKind, RunError},
    pkt_stream::{ChunkSource, Pkt, PktStream},
    validate::{PackSink, PackSummary},
    wire::parse_oid,
};

/// What a fetch answer held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchAnswer {
    /// The `shallow` lines of `shallow-info`: commits sent without their parents.
    pub shallow: Vec<ObjectId>,
    pub pack: PackSummary,
    /// Bytes of pack data (band 1).
    pub pack_bytes: u64,
}

fn text(data: &Bytes) -> Result<&str, RunError> {
    let text = std::str::from_utf8(trim_newline(data))
        .map_err(|_| RunError::malformed("a line of the fetch answer is not UTF-8"))?;
    match text.strip_prefix("ERR ") {
        Some(message) => Err(RunError::new(ErrorKind::ProtocolErr, message.to_string())),
        None => Ok(text),
    }
}

async fn next_pkt<S: ChunkSource>(
    stream: &mut PktStream<S>,
    expected: &str,
) -> Result<Pkt, RunError> {
    stream
        .next()
        .await?
        .ok_or_else(|| RunError::malformed(format!("the answer ends before {expected}")))
}

/// The lines of a section up to the delimiter that ends it.
async fn section_lines<S: ChunkSource>(
    stream: &mut PktStream<S>,
    name: &str,
) -> Result<Vec<Bytes>, RunError> {
    let mut lines = Vec::new();
    loop {
        match next_pkt(stream, &format!("the end of `{name}`")).await? {
            Pkt::Delim => return Ok(lines),
            Pkt::Data(data) => lines.push(data),
            Pkt::Flush if name == "acknowledgments" => {
                return Err(RunError::malformed(
                    "the server answered with acknowledgments only, though the request said `done`",
                ))
            }
            other => return Err(RunError::malformed(format!("{other:?} inside `{name}`"))),
        }
    }
}

/// Reads a fetch answer, handing the pack to `sink`, and returns what it held
/// once the pack check is done.
pub async fn read_fetch_answer<S: ChunkSource>(
    stream: &mut PktStream<S>,
    mut sink: PackSink,
) -> Result<FetchAnswer, RunError> {
    let mut answer = FetchAnswer::default();
    loop {
        let header = match next_pkt(stream, "the packfile section").await? {
            Pkt::Data(data) => data,
            other => {
                return Err(RunError::malformed(format!(
                    "{other:?} where a section should start"
                )))
            }
        };
        match text(&header)? {
            "packfile" => break,
            "shallow-info" => {
                for line in section_lines(stream, "shallow-info").await? {
                    let line = text(&line)?;
                    if let Some(id) = line.strip_prefix("shallow ") {
                        answer.shallow.push(parse_oid(id.as_bytes())?);
                    } else if !line.starts_with("unshallow ") {
                        return Err(RunError::malformed(format!("`{line}` in shallow-info")));
                    }
                }
            }
            name @ ("acknowledgments" | "wanted-refs" | "packfile-uris") => {
                section_lines(stream, name).await?;
            }
            other => {
                return Err(RunError::malformed(format!("unknown section `{other}`")));
            }
        }
    }
    loop {
        match next_pkt(stream, "the flush ending the pack").await? {
            Pkt::Flush => break,
            Pkt::Data(data) => match data.first() {
                Some(1) => {
                    if !sink.feed(data.slice(1..)).await {
                        // The check failed: its reason is the answer's error.
                        sink.finish().await?;
                        return Err(RunError::bad_pack("the pack check stopped early"));
                    }
                }
                Some(2) => {}
                Some(3) => {
                    return Err(RunError::new(
                        ErrorKind::ProtocolErr,
                        String::from_utf8_lossy(trim_newline(&data[1..])).into_owned(),
                    ))
                }
                _ => {
                    text(&data)?;
                    return Err(RunError::malformed("a packfile packet without a band"));
                }
            },
            other => {
                return Err(RunError::malformed(format!("{other:?} inside the pack")));
            }
        }
    }
    answer.pack_bytes = sink.received();
    answer.pack = sink.finish().await?;
    match stream.next().await? {
        None | Some(Pkt::ResponseEnd) => Ok(answer),
        Some(other) => Err(RunError::malformed(format!(
            "{other:?} after the packfile section"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use gitclaw_protocol::{
        pktline,
        sideband::{write_band, Band, SIDEBAND_64K_MAX},
    };

    use super::*;
    use crate::{config::Verify, pkt_stream::Chunks, push_pack::new_commit, validate::PackQuery};

    fn answer(sections: &[&str], pack: &[u8], trailer: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for line in sections {
            match *line {
                "0001" => out.extend_from_slice(b"0001"),
                text => pktline::write_text(&mut out, text).unwrap(),
            }
        }
        pktline::write_text(&mut out, "packfile\n").unwrap();
        write_band(
            &mut out,
            Band::Progress,
            b"Enumerating objects: 3\n",
            SIDEBAND_64K_MAX,
        );
        // Small packets, so the pack spans several.
        write_band(&mut out, Band::Data, pack, 100);
        out.extend_from_slice(trailer);
        out
    }

    fn read(body: &[u8], piece: usize) -> Result<FetchAnswer, RunError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut stream = PktStream::new(Chunks::split(body, piece));
            let sink = PackSink::start(Verify::Full, None, PackQuery::default());
            read_fetch_answer(&mut stream, sink).await
        })
    }

    #[test]
    fn reads_shallow_info_and_the_pack() {
        let made = new_commit(None, b"content", "m", 1);
        let shallow = format!("shallow {}\n", made.commit);
        let body = answer(&["shallow-info\n", &shallow, "0001"], &made.pack, b"0000");
        for piece in [3, 1000] {
            let got = read(&body, piece).unwrap();
            assert_eq!(got.shallow, vec![made.commit]);
            assert_eq!(got.pack.objects, 3);
            assert_eq!(got.pack_bytes, made.pack.len() as u64);
        }
    }

    #[test]
    fn skips_acknowledgments_before_a_pack() {
        let made = new_commit(None, b"content", "m", 1);
        let body = answer(
            &["acknowledgments\n", "NAK\n", "ready\n", "0001"],
            &made.pack,
            b"0000",
        );
        assert_eq!(read(&body, 50).unwrap().pack.objects, 3);
    }

    #[test]
    fn a_pack_cut_short_is_an_error() {
        let made = new_commit(None, b"content", "m", 1);
        // No closing flush: the body ends inside the pack section.
        let body = answer(&[], &made.pack[..made.pack.len() - 10], b"");
        assert_eq!(read(&body, 64).unwrap_err().kind, ErrorKind::Malformed);
        // With a flush, the pack itself is short.
        let body = answer(&[], &made.pack[..made.pack.len() - 10], b"0000");
        assert_eq!(read(&body, 64).unwrap_err().kind, ErrorKind::BadPack);
    }

    #[test]
    fn a_corrupt_pack_in_an_answer_is_a_bad_pack() {
        let made = new_commit(None, &[9; 2000], "m", 1);
        let mut pack = made.pack.clone();
        pack[30] ^= 0x40;
        let body = answer(&[], &pack, b"0000");
        assert_eq!(read(&body, 64).unwrap_err().kind, ErrorKind::BadPack);
    }

    #[test]
    fn the_servers_error_on_band_3_or_in_err_is_a_protocol_error() {
        let mut body = Vec::new();
        pktline::write_text(&mut body, "packfile\n").unwrap();
        write_band(
            &mut body,
            Band::Error,
            b"upload-pack: too many packs\n",
            SIDEBAND_64K_MAX,
        );
        let err = read(&body, 64).unwrap_err();
        assert_eq!(err.kind, ErrorKind::ProtocolErr);
        assert_eq!(err.message, "upload-pack: too many packs");

        let mut body = Vec::new();
        pktline::write_err(&mut body, "upload-pack: not our ref 1234");
        let err = read(&body, 64).unwrap_err();
        assert_eq!(err.kind, ErrorKind::ProtocolErr);
    }

    #[test]
    fn unknown_sections_and_trailing_data_are_malformed() {
        let made = new_commit(None, b"content", "m", 1);
        let body = answer(&["surprise\n", "0001"], &made.pack, b"0000");
        assert_eq!(read(&body, 64).unwrap_err().kind, ErrorKind::Malformed);
        let body = answer(&[], &made.pack, b"00000008more");
        assert_eq!(read(&body, 64).unwrap_err().kind, ErrorKind::Malformed);
    }
}
