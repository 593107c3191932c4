//! The zip form of an archive, as `git archive --format=zip` writes it: a
//! local header per entry with the extended-timestamp extra field, files
//! deflated at zlib's default level (stored when that does not make them
//! smaller; links and directories stored), Unix modes for executables and
//! links, the text/binary bit, ZIP64 records past 4 GiB or 65,535 entries,
//! and the commit's id as the archive's comment. A file streamed (above
//! [`STREAM_ABOVE`](super::STREAM_ABOVE), stored whole) is deflated as it is
//! read and followed by a data descriptor. Times are DOS times in UTC (git
//! uses the server's time zone: the same under `TZ=UTC`).

use std::io::Write;

use flate2::{write::DeflateEncoder, Compression, Crc};
use gix_hash::ObjectId;

use super::{ArchiveOptions, ArchiveSummary, Mode, Sink};
use crate::{files::BlobContent, PackError, Result};

const STORE: u16 = 0;
const DEFLATE: u16 = 8;
/// General-purpose flag: sizes and CRC follow the data.
const STREAMED: u16 = 1 << 3;
/// General-purpose flag: the name is UTF-8.
const UTF8: u16 = 1 << 11;
/// Made by Unix, zip 2.3: for entries whose Unix mode matters.
const UNIX_CREATOR: u16 = 0x0317;
/// How much of a file decides whether it is text (git's `buffer_is_binary`).
const TEXT_PROBE: usize = 8000;
const U32_MAX: u64 = 0xffff_ffff;

/// A zip archive being written: entries go out as they come, the central
/// directory (some 60 bytes and the path, an entry) is kept for the end.
pub(super) struct Zip<'a> {
    out: &'a mut dyn Write,
    written: u64,
    dos_date: u16,
    dos_time: u16,
    /// The time in the extended-timestamp field (git keeps its low 32 bits).
    mtime: u32,
    directory: Vec<u8>,
    entries: u64,
    max_creator: u16,
    files: u64,
}

impl<'a> Zip<'a> {
    pub(super) fn new(out: &'a mut dyn Write, options: &ArchiveOptions) -> Zip<'a> {
        let (dos_date, dos_time) = dos_date_time(options.mtime);
        Zip {
            out,
            written: 0,
            dos_date,
            dos_time,
            mtime: options.mtime as u32,
            directory: Vec::new(),
            entries: 0,
            max_creator: 0,
            files: 0,
        }
    }

    fn put(&mut self, data: &[u8]) -> Result<()> {
        self.out
            .write_all(data)
            .map_err(PackError::io("writing the archive"))?;
        self.written += data.len() as u64;
        Ok(())
    }

    /// The central directory, the ZIP64 end records when a count or offset
    /// does not fit the classic ones, the end record and the comment.
    pub(super) fn finish(mut self, options: &ArchiveOptions) -> Result<ArchiveSummary> {
        let start = self.written;
        let directory = std::mem::take(&mut self.directory);
        self.put(&directory)?;
        let clamped = self.entries > 0xffff || start > U32_MAX;
        if clamped {
            let mut end64 = Vec::with_capacity(76);
            le(&mut end64, 4, 0x0606_4b50);
            le(&mut end64, 8, 44);
            le(&mut end64, 2, u64::from(self.max_creator));
            le(&mut end64, 2, 45);
            le(&mut end64, 4, 0);
            le(&mut end64, 4, 0);
            le(&mut end64, 8, self.entries);
            le(&mut end64, 8, self.entries);
            le(&mut end64, 8, directory.len() as u64);
            le(&mut end64, 8, start);
            le(&mut end64, 4, 0x0706_4b50);
            le(&mut end64, 4, 0);
            le(&mut end64, 8, start + directory.len() as u64);
            le(&mut end64, 4, 1);
            self.put(&end64)?;
        }
        let comment = options.commit.map(|id| id.to_hex().to_string());
        let mut end = Vec::with_capacity(22 + 40);
        le(&mut end, 4, 0x0605_4b50);
        le(&mut end, 2, 0);
        le(&mut end, 2, 0);
        le(&mut end, 2, self.entries.min(0xffff));
        le(&mut end, 2, self.entries.min(0xffff));
        le(&mut end, 4, directory.len() as u64 & U32_MAX);
        le(&mut end, 4, start.min(U32_MAX));
        le(&mut end, 2, comment.as_ref().map_or(0, |c| c.len() as u64));
        if let Some(comment) = &comment {
            end.extend_from_slice(comment.as_bytes());
        }
        self.put(&end)?;
        Ok(ArchiveSummary {
            files: self.files,
            bytes: self.written,
        })
    }
}

impl Sink for Zip<'_> {
    fn entry(
        &mut self,
        id: &ObjectId,
        path: &[u8],
        mode: Mode,
        content: Option<BlobContent<'_>>,
        binary: bool,
    ) -> Result<()> {
        if path.len() > 0xffff {
            return Err(PackError::Corrupt(format!(
                "path too long for a zip ({} bytes, blob {id})",
                path.len()
            )));
        }
        let offset = self.written;
        let mut flags = 0;
        if !path.is_ascii() && std::str::from_utf8(path).is_ok() {
            flags |= UTF8;
        }
        let (attr2, creator) = match mode {
            Mode::Dir | Mode::Submodule => (16, 0),
            Mode::File => (0, 0),
            Mode::Executable => (0o100_755 << 16, UNIX_CREATOR),
            Mode::Link => (0o120_777 << 16, UNIX_CREATOR),
        };
        self.max_creator = self.max_creator.max(creator);
        let mut crc = Crc::new();
        // (method, size, compressed size, text bit, data ready to write)
        let (method, size, mut compressed_size, mut text, data, stream) = match content {
            None => (STORE, 0, 0, 0, None, None),
            Some(BlobContent::Whole(data)) => {
                crc.update(&data);
                let text = u16::from(!binary && !data[..data.len().min(TEXT_PROBE)].contains(&0));
                let size = data.len() as u64;
                if mode == Mode::Link || data.is_empty() {
                    (STORE, size, size, text, Some(data), None)
                } else {
                    let deflated = deflate(&data)?;
                    if deflated.len() >= data.len() {
                        (STORE, size, size, text, Some(data), None)
                    } else {
                        let compressed = deflated.len() as u64;
                        (DEFLATE, size, compressed, text, Some(deflated), None)
                    }
                }
            }
            Some(BlobContent::Stream(size, stream)) => {
                flags |= STREAMED;
                let method = if mode == Mode::Link { STORE } else { DEFLATE };
                let compressed = if method == STORE { size } else { 0 };
                (method, size, compressed, 0, None, Some(stream))
            }
        };
        let streamed = stream.is_some();
        let zip64_local =
            size > U32_MAX || compressed_size > U32_MAX || (streamed && size > 0x7fff_ffff);
        let version_needed = if zip64_local { 45 } else { 10 };

        let mut header = Vec::with_capacity(30 + path.len() + 29);
        le(&mut header, 4, 0x0403_4b50);
        le(&mut header, 2, version_needed);
        le(&mut header, 2, u64::from(flags));
        le(&mut header, 2, u64::from(method));
        le(&mut header, 2, u64::from(self.dos_time));
        le(&mut header, 2, u64::from(self.dos_date));
        le(
            &mut header,
            4,
            if streamed { 0 } else { u64::from(crc.sum()) },
        );
        if zip64_local {
            le(&mut header, 4, U32_MAX);
            le(&mut header, 4, U32_MAX);
        } else {
            le(&mut header, 4, compressed_size);
            le(&mut header, 4, size);
        }
        le(&mut header, 2, path.len() as u64);
        le(&mut header, 2, if zip64_local { 9 + 20 } else { 9 });
        header.extend_from_slice(path);
        let mtime_extra = self.mtime_extra();
        header.extend_from_slice(&mtime_extra);
        if zip64_local {
            le(&mut header, 2, 1);
            le(&mut header, 2, 16);
            le(&mut header, 8, size);
            le(&mut header, 8, compressed_size);
        }
        self.put(&header)?;

        if let Some(data) = data {
            self.put(&data)?;
        }
        if let Some(mut stream) = stream {
            let (sent, is_text) = self.copy_streamed(id, size, &mut *stream, method, &mut crc)?;
            compressed_size = sent;
            text = u16::from(!binary && is_text);
            let mut descriptor = Vec::with_capacity(24);
            le(&mut descriptor, 4, 0x0807_4b50);
            le(&mut descriptor, 4, u64::from(crc.sum()));
            if size >= U32_MAX || compressed_size >= U32_MAX {
                le(&mut descriptor, 8, compressed_size);
                le(&mut descriptor, 8, size);
            } else {
                le(&mut descriptor, 4, compressed_size);
                le(&mut descriptor, 4, size);
            }
            self.put(&descriptor)?;
        }
        if content_kind_is_file(mode) {
            self.files += 1;
        }

        let mut zip64_payload = Vec::new();
        if compressed_size > U32_MAX || size > U32_MAX || offset > U32_MAX {
            if size >= U32_MAX {
                le(&mut zip64_payload, 8, size);
            }
            if compressed_size >= U32_MAX {
                le(&mut zip64_payload, 8, compressed_size);
            }
            if offset >= U32_MAX {
                le(&mut zip64_payload, 8, offset);
            }
        }
        let extra_len = 9 + if zip64_payload.is_empty() {
            0
        } else {
            4 + zip64_payload.len()
        };
        let d = &mut self.directory;
        le(d, 4, 0x0201_4b50);
        le(d, 2, u64::from(creator));
        le(d, 2, version_needed);
        le(d, 2, u64::from(flags));
        le(d, 2, u64::from(method));
        le(d, 2, u64::from(self.dos_time));
        le(d, 2, u64::from(self.dos_date));
        le(d, 4, u64::from(crc.sum()));
        le(d, 4, compressed_size.min(U32_MAX));
        le(d, 4, size.min(U32_MAX));
        le(d, 2, path.len() as u64);
        le(d, 2, extra_len as u64);
        le(d, 2, 0);
        le(d, 2, 0);
        le(d, 2, u64::from(text));
        le(d, 4, attr2);
        le(d, 4, offset.min(U32_MAX));
        d.extend_from_slice(path);
        d.extend_from_slice(&mtime_extra);
        if !zip64_payload.is_empty() {
            le(d, 2, 1);
            le(d, 2, zip64_payload.len() as u64);
            d.extend_from_slice(&zip64_payload);
        }
        self.entries += 1;
        Ok(())
    }
}

impl Zip<'_> {
    /// The extended-timestamp extra field: the modification time.
    fn mtime_extra(&self) -> [u8; 9] {
        let mut extra = [0u8; 9];
        extra[..2].copy_from_slice(&0x5455u16.to_le_bytes());
        extra[2..4].copy_from_slice(&5u16.to_le_bytes());
        extra[4] = 1;
        extra[5..].copy_from_slice(&self.mtime.to_le_bytes());
        extra
    }

    /// Exactly `size` bytes of `stream`, deflated (or stored) as they are
    /// read; returns the bytes written and whether the start is text.
    fn copy_streamed(
        &mut self,
        id: &ObjectId,
        size: u64,
        stream: &mut dyn std::io::Read,
        method: u16,
        crc: &mut Crc,
    ) -> Result<(u64, bool)> {
        let mut text = None;
        let mut counted = Counted {
            inner: &mut *self.out,
            written: 0,
        };
        if method == STORE {
            crate::files::copy_stream(id, size, stream, |data| {
                crc.update(data);
                text.get_or_insert_with(|| !data[..data.len().min(TEXT_PROBE)].contains(&0));
                counted
                    .write_all(data)
                    .map_err(PackError::io("writing the archive"))
            })?;
        } else {
            let mut encoder = DeflateEncoder::new(&mut counted, Compression::default());
            crate::files::copy_stream(id, size, stream, |data| {
                crc.update(data);
                text.get_or_insert_with(|| !data[..data.len().min(TEXT_PROBE)].contains(&0));
                encoder
                    .write_all(data)
                    .map_err(PackError::io("writing the archive"))
            })?;
            encoder
                .finish()
                .map_err(PackError::io("writing the archive"))?;
        }
        let written = counted.written;
        self.written += written;
        Ok((written, text.unwrap_or(true)))
    }
}

/// A writer that counts what passes.
struct Counted<'a> {
    inner: &'a mut dyn Write,
    written: u64,
}

impl Write for Counted<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(data)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn content_kind_is_file(mode: Mode) -> bool {
    matches!(mode, Mode::File | Mode::Executable | Mode::Link)
}

/// `data` deflated (raw, no zlib header) at zlib's default level.
fn deflate(data: &[u8]) -> Result<Vec<u8>> {
    let mut encoder =
        DeflateEncoder::new(Vec::with_capacity(data.len() / 2), Compression::default());
    encoder
        .write_all(data)
        .and_then(|()| encoder.finish())
        .map_err(PackError::io("deflating a file"))
}

/// `value`'s low `bytes` bytes, little-endian.
fn le(out: &mut Vec<u8>, bytes: usize, value: u64) {
    out.extend_from_slice(&value.to_le_bytes()[..bytes]);
}

/// The DOS date and time (UTC) of unix seconds, as git computes them (a year
/// before 1980 wraps as it does in git).
fn dos_date_time(unix_secs: u64) -> (u16, u16) {
    let t = crate::civil::civil(i64::try_from(unix_secs).unwrap_or(i64::MAX));
    let date = t.day + t.month * 32 + (t.year - 1980) * 512;
    let time = t.second / 2 + t.minute * 32 + t.hour * 2048;
    (date as u16, time as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dos_times_are_git_s() {
        // 2023-11-14 22:13:20 UTC.
        let (date, time) = dos_date_time(1_700_000_000);
        assert_eq!(date, 14 + 11 * 32 + (2023 - 1980) * 512);
        assert_eq!(time, 20 / 2 + 13 * 32 + 22 * 2048);
    }
}
