//! zlib streams of a pack being written: entries compressed anew or again,
//! stored entries inflated to be compressed again — with one compressor and
//! one decompressor for a whole pack.

use super::WriteOptions;
use crate::{PackError, Result};

/// Append the zlib stream of `content` to `out`, with `deflate` reset first.
pub(super) fn deflate_into(
    deflate: &mut flate2::Compress,
    content: &[u8],
    out: &mut Vec<u8>,
) -> Result<()> {
    deflate.reset();
    out.reserve(content.len() / 2 + 64);
    loop {
        let consumed = deflate.total_in() as usize;
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(64));
        }
        let status = deflate
            .compress_vec(&content[consumed..], out, flate2::FlushCompress::Finish)
            .map_err(|e| PackError::io("compressing an object")(std::io::Error::other(e)))?;
        if status == flate2::Status::StreamEnd {
            return Ok(());
        }
    }
}

/// The zlib streams of one pack being written: one compressor and one
/// decompressor for all its entries. Setting one up per entry (its window and
/// hash tables allocated and zeroed) cost more than compressing a small object,
/// and compaction compresses every entry again: at 2.5M objects a compressor
/// an entry took 3–23M page faults of freshly zeroed tables and up to 26 s of
/// system time, as the allocator returned their pages between entries.
pub(super) struct Zlib {
    /// At the pack's level ([`WriteOptions::compression`]), for entries made anew.
    fresh: flate2::Compress,
    /// At zlib's best, for stored entries compressed again (made when first needed).
    best: Option<flate2::Compress>,
    inflate: flate2::Decompress,
    /// A stored entry inflated, and compressed again.
    data: Vec<u8>,
    again: Vec<u8>,
}

/// The shortest stored stream [`Zlib::smaller`] compresses again. Shorter
/// ones come out of zlib's best level as they went in, or a byte or two
/// smaller, and they are most of a pack's entries: in a compaction of 200k
/// objects, the 196k streams under 256 bytes took 1.5 s (of 1.7 s compressing
/// again, of 6.9 s in all) to save 9 bytes in all; the 660 streams of 1 KiB
/// and more saved 12.8 KB.
const RECOMPRESS_MIN_BYTES: usize = 1 << 10;

/// What [`Zlib`] keeps of its buffers between entries; a larger entry's are
/// let go once it is written.
const ZLIB_KEPT_BYTES: usize = 1 << 20;

impl Zlib {
    pub(super) fn new(level: u32) -> Zlib {
        Zlib {
            fresh: flate2::Compress::new(flate2::Compression::new(level.min(9)), true),
            best: None,
            inflate: flate2::Decompress::new(true),
            data: Vec::new(),
            again: Vec::new(),
        }
    }

    /// The zlib stream of `data` at the pack's level.
    pub(super) fn deflate(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        deflate_into(&mut self.fresh, data, &mut out)?;
        Ok(out)
    }

    /// A stored entry's stream (`compressed`, inflating to `size` bytes)
    /// compressed again at zlib's best, when that is smaller and the pack is
    /// written so ([`WriteOptions::recompress`]); `None` to copy it as it is.
    pub(super) fn smaller(
        &mut self,
        compressed: &[u8],
        size: u64,
        options: &WriteOptions,
    ) -> Result<Option<&[u8]>> {
        if !options.recompress
            || compressed.len() < RECOMPRESS_MIN_BYTES
            || size > options.max_delta_object_bytes
            || at_best_already(compressed)
        {
            return Ok(None);
        }
        self.release();
        let size = usize::try_from(size)
            .map_err(|_| PackError::Corrupt(format!("a stored entry of {size} bytes")))?;
        inflate_exactly(&mut self.inflate, compressed, size, &mut self.data)?;
        let best = self
            .best
            .get_or_insert_with(|| flate2::Compress::new(flate2::Compression::best(), true));
        self.again.clear();
        deflate_into(best, &self.data, &mut self.again)?;
        Ok((self.again.len() < compressed.len()).then_some(self.again.as_slice()))
    }

    /// Let go of buffers a large entry grew.
    fn release(&mut self) {
        for buf in [&mut self.data, &mut self.again] {
            if buf.capacity() > ZLIB_KEPT_BYTES {
                *buf = Vec::new();
            }
        }
    }
}

/// Whether a zlib stream says it was compressed at zlib's best levels (7 to
/// 9: `FLEVEL` 3 in its header, as zlib writes it), as a compaction's entries
/// were: compressed again at 9 it would come out the same or next to it, and
/// a compaction after pushes then copies what the last one wrote instead of
/// inflating and compressing nearly every entry again. (`FLEVEL` only informs;
/// a stream that says so wrongly is copied as it is, still whole and valid.)
fn at_best_already(compressed: &[u8]) -> bool {
    compressed.get(1).is_some_and(|flags| flags >> 6 == 3)
}

/// Inflate the zlib stream `compressed` into `out` (emptied first), which
/// must come to exactly `size` bytes: a stream that ends sooner, goes on
/// longer or stops short is a corrupt entry.
fn inflate_exactly(
    inflate: &mut flate2::Decompress,
    compressed: &[u8],
    size: usize,
    out: &mut Vec<u8>,
) -> Result<()> {
    let corrupt = |what: String| PackError::Corrupt(format!("inflating a stored entry: {what}"));
    inflate.reset(true);
    out.clear();
    // One byte more than promised: a stream that fills it is too long.
    out.reserve_exact(size + 1);
    loop {
        let consumed = inflate.total_in() as usize;
        let before = out.len();
        let status = inflate
            .decompress_vec(
                &compressed[consumed..],
                out,
                flate2::FlushDecompress::Finish,
            )
            .map_err(|err| corrupt(err.to_string()))?;
        if out.len() > size {
            return Err(corrupt(format!(
                "it inflates past the {size} bytes its header says"
            )));
        }
        match status {
            flate2::Status::StreamEnd if out.len() == size => return Ok(()),
            flate2::Status::StreamEnd => {
                return Err(corrupt(format!(
                    "it inflates to {} bytes, its header says {size}",
                    out.len()
                )))
            }
            // Room is left (one byte past the size), so no progress means the
            // stream stopped short.
            _ if out.len() == before && inflate.total_in() as usize == consumed => {
                return Err(corrupt("the stream ends before its end".into()))
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn zlib_stream(data: &[u8], level: u32) -> Vec<u8> {
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(level));
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn inflated(stream: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(stream)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// Options of a pack whose stored streams are compressed again.
    fn recompressing() -> WriteOptions {
        WriteOptions {
            recompress: true,
            ..WriteOptions::default()
        }
    }

    /// `len` bytes of words picked by a simple generator: text zlib's levels
    /// compress differently, and too varied to shrink to a few bytes.
    fn words(len: usize) -> Vec<u8> {
        const WORDS: [&str; 12] = [
            "pack ", "index ", "delta ", "base ", "tree ", "blob ", "commit ", "tag ", "offset ",
            "window ", "chain ", "stream ",
        ];
        let mut state = 0x2545_f491_u32;
        let mut text = Vec::with_capacity(len + 8);
        while text.len() < len {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            text.extend_from_slice(WORDS[(state >> 16) as usize % WORDS.len()].as_bytes());
        }
        text.truncate(len);
        text
    }

    #[test]
    fn one_set_of_streams_compresses_entry_after_entry_each_as_its_own() {
        let recompress = recompressing();
        let mut zlib = Zlib::new(1);
        // Large ones first: what they leave in the streams and buffers must not
        // leak into the next; one past the kept buffers' size too.
        let texts: Vec<Vec<u8>> = [3 << 20, 200_000, 5000, 17, 0, 64 << 10]
            .iter()
            .enumerate()
            .map(|(n, &len)| {
                (0..len)
                    .map(|i| b"abcdefgh "[(i * (n + 3) / 7 + i / 1000) % 9])
                    .collect()
            })
            .collect();
        for text in &texts {
            let fresh = zlib.deflate(text).unwrap();
            assert_eq!(&inflated(&fresh), text);
            // Stored at level 1: at zlib's best it is smaller (but for the
            // tiniest), and inflates to the same bytes.
            let stored = zlib_stream(text, 1);
            match zlib
                .smaller(&stored, text.len() as u64, &recompress)
                .unwrap()
            {
                Some(again) => {
                    assert!(again.len() < stored.len());
                    assert_eq!(&inflated(again), text);
                }
                None => assert!(
                    stored.len() < RECOMPRESS_MIN_BYTES
                        || zlib_stream(text, 9).len() >= stored.len()
                ),
            }
            // Without `recompress`, never.
            let copy = zlib.smaller(&stored, text.len() as u64, &WriteOptions::default());
            assert_eq!(copy.unwrap(), None);
        }
        assert!(zlib.data.capacity() <= ZLIB_KEPT_BYTES.max(64 << 10) + 1);
    }

    #[test]
    fn a_stream_compressed_at_the_best_levels_is_copied_not_compressed_again() {
        let recompress = recompressing();
        let text = words(20_000);
        let mut zlib = Zlib::new(7);
        for level in 0..=9 {
            let stored = zlib_stream(&text, level);
            let again = zlib
                .smaller(&stored, text.len() as u64, &recompress)
                .unwrap();
            // What git writes (6), and anything below, is compressed again and
            // comes out smaller; 7 to 9 are left as they are.
            assert_eq!(at_best_already(&stored), level >= 7, "level {level}");
            assert_eq!(again.is_some(), level < 7, "level {level}");
        }
        // The writer's own fresh entries (level 7 by default) say so too.
        assert!(at_best_already(&zlib.deflate(&text).unwrap()));
    }

    #[test]
    fn a_short_stream_is_copied_however_it_was_compressed() {
        let recompress = recompressing();
        let mut zlib = Zlib::new(7);
        let text = words(1500);
        let stored = zlib_stream(&text, 1);
        // A stream zlib's best would shorten, were it long enough.
        assert!(stored.len() < RECOMPRESS_MIN_BYTES, "{}", stored.len());
        assert!(zlib_stream(&text, 9).len() < stored.len());
        let again = zlib.smaller(&stored, text.len() as u64, &recompress);
        assert_eq!(again.unwrap(), None);
        // Such text over more bytes, level 1 again: compressed anew.
        let text = words(20_000);
        let stored = zlib_stream(&text, 1);
        assert!(stored.len() >= RECOMPRESS_MIN_BYTES, "{}", stored.len());
        let again = zlib.smaller(&stored, text.len() as u64, &recompress);
        let again = again.unwrap().expect("compressed again");
        assert!(again.len() < stored.len());
        assert_eq!(inflated(again), text);
    }

    #[test]
    fn a_stored_stream_must_inflate_to_exactly_what_its_header_says() {
        let text = b"tree 1234\0some bytes of an object, some bytes of an object".repeat(50);
        let stream = zlib_stream(&text, 6);
        let mut inflate = flate2::Decompress::new(true);
        let mut out = Vec::new();
        inflate_exactly(&mut inflate, &stream, text.len(), &mut out).unwrap();
        assert_eq!(out, text);
        // The header says more, or less, than the stream holds.
        for size in [text.len() + 1, text.len() - 1, 0] {
            let err = inflate_exactly(&mut inflate, &stream, size, &mut out).unwrap_err();
            assert!(matches!(err, PackError::Corrupt(_)), "{err}");
        }
        // A stream cut short, or not zlib at all.
        let cut = &stream[..stream.len() / 2];
        assert!(inflate_exactly(&mut inflate, cut, text.len(), &mut out).is_err());
        assert!(inflate_exactly(&mut inflate, b"not zlib", text.len(), &mut out).is_err());
        assert!(inflate_exactly(&mut inflate, b"", text.len(), &mut out).is_err());
        // And the same decompressor still inflates a good one afterwards.
        inflate_exactly(&mut inflate, &stream, text.len(), &mut out).unwrap();
        assert_eq!(out, text);
    }
}
