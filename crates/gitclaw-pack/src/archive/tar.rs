//! The tar form of an archive: git's ustar headers, pax records and padding.

use std::io::Write;

use gix_hash::ObjectId;

use super::{ArchiveOptions, ArchiveSummary, Mode, Sink, UMASK};
use crate::{
    files::{copy_stream, BlobContent},
    PackError, Result,
};

/// One tar record; every entry and its content are padded to a whole one.
const RECORD: usize = 512;
/// git writes its archive in blocks of 20 records: the end is padded to one.
const BLOCK: u64 = 20 * RECORD as u64;
/// The largest size or time the 11 octal digits of a ustar field can say.
const USTAR_MAX: u64 = 0o77777777777;

/// A tar archive being written.
pub(super) struct Tar<'a> {
    out: &'a mut dyn Write,
    written: u64,
    /// Every header's time (at most [`USTAR_MAX`]; the global header says more).
    mtime: u64,
    files: u64,
}

impl<'a> Tar<'a> {
    /// Starts with the pax global header.
    pub(super) fn new(out: &'a mut dyn Write, options: &ArchiveOptions) -> Result<Tar<'a>> {
        let mut tar = Tar {
            out,
            written: 0,
            mtime: options.mtime.min(USTAR_MAX),
            files: 0,
        };
        tar.global_header(options)?;
        Ok(tar)
    }

    /// Ends with git's trailer.
    pub(super) fn finish(mut self) -> Result<ArchiveSummary> {
        self.trailer()?;
        Ok(ArchiveSummary {
            files: self.files,
            bytes: self.written,
        })
    }

    fn put(&mut self, data: &[u8]) -> Result<()> {
        self.out
            .write_all(data)
            .map_err(PackError::io("writing the archive"))?;
        self.written += data.len() as u64;
        Ok(())
    }

    /// Zeros up to the next whole record.
    fn pad(&mut self) -> Result<()> {
        let tail = (self.written % RECORD as u64) as usize;
        if tail != 0 {
            self.put(&[0; RECORD][..RECORD - tail])?;
        }
        Ok(())
    }

    /// The pax global header: the commit's id, and a time past ustar's.
    fn global_header(&mut self, options: &ArchiveOptions) -> Result<()> {
        let mut records = Vec::new();
        if let Some(commit) = &options.commit {
            pax_record(
                &mut records,
                "comment",
                commit.to_hex().to_string().as_bytes(),
            );
        }
        if options.mtime > USTAR_MAX {
            pax_record(&mut records, "mtime", options.mtime.to_string().as_bytes());
        }
        if records.is_empty() {
            return Ok(());
        }
        let header = self.header(b"pax_global_header", 0o666, b'g', records.len() as u64, b"");
        self.put(&header)?;
        self.put(&records)?;
        self.pad()
    }

    /// One entry at `path`: its pax header first when ustar cannot say it.
    fn write_entry(
        &mut self,
        id: &ObjectId,
        path: &[u8],
        mode: Mode,
        content: Option<BlobContent<'_>>,
    ) -> Result<()> {
        let (perm, flag) = header_mode(mode);
        let mut records = Vec::new();
        let mut name = path.to_vec();
        let mut prefix: &[u8] = b"";
        if path.len() > 100 {
            let split = prefix_split(path);
            let rest = path.len() - split - 1;
            if split > 0 && rest <= 100 {
                prefix = &path[..split];
                name = path[split + 1..].to_vec();
            } else {
                name = format!("{}.data", id.to_hex()).into_bytes();
                pax_record(&mut records, "path", path);
            }
        }
        let mut link = Vec::new();
        let mut size = 0;
        match (&content, mode) {
            (Some(BlobContent::Whole(target)), Mode::Link) => {
                if target.len() > 100 {
                    link = format!("see {}.paxheader", id.to_hex()).into_bytes();
                    pax_record(&mut records, "linkpath", target);
                } else {
                    link = target.to_vec();
                }
            }
            (Some(content), _) => {
                size = content.len();
                if size > USTAR_MAX {
                    pax_record(&mut records, "size", size.to_string().as_bytes());
                    size = 0;
                }
            }
            (None, _) => {}
        }
        if !records.is_empty() {
            let pax_name = format!("{}.paxheader", id.to_hex());
            let header = self.header(pax_name.as_bytes(), 0o666, b'x', records.len() as u64, b"");
            self.put(&header)?;
            self.put(&records)?;
            self.pad()?;
        }
        let mut header = self.header(&name, perm, flag, size, &link);
        if !prefix.is_empty() {
            header[345..345 + prefix.len()].copy_from_slice(prefix);
            set_checksum(&mut header);
        }
        self.put(&header)?;
        match content {
            None => {}
            Some(BlobContent::Whole(data)) => {
                self.files += 1;
                if mode != Mode::Link {
                    self.put(&data)?;
                    self.pad()?;
                }
            }
            Some(BlobContent::Stream(size, mut stream)) => {
                self.files += 1;
                copy_stream(id, size, &mut stream, |data| self.put(data))?;
                self.pad()?;
            }
        }
        Ok(())
    }

    /// A ustar header (the prefix field left empty).
    fn header(&self, name: &[u8], perm: u32, flag: u8, size: u64, link: &[u8]) -> [u8; RECORD] {
        let mut h = [0u8; RECORD];
        h[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
        octal(&mut h[100..108], u64::from(perm));
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], size);
        octal(&mut h[136..148], self.mtime);
        h[156] = flag;
        h[157..157 + link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[265..269].copy_from_slice(b"root");
        h[297..301].copy_from_slice(b"root");
        octal(&mut h[329..337], 0);
        octal(&mut h[337..345], 0);
        set_checksum(&mut h);
        h
    }

    /// Two zero records, then zeros to the end of git's block of 20 records.
    fn trailer(&mut self) -> Result<()> {
        let tail = BLOCK - self.written % BLOCK;
        let mut zeros = tail;
        if tail < 2 * RECORD as u64 {
            zeros += BLOCK;
        }
        let block = [0u8; BLOCK as usize];
        while zeros > 0 {
            let n = zeros.min(BLOCK);
            self.put(&block[..n as usize])?;
            zeros -= n;
        }
        Ok(())
    }
}

impl Sink for Tar<'_> {
    fn entry(
        &mut self,
        id: &ObjectId,
        path: &[u8],
        mode: Mode,
        content: Option<BlobContent<'_>>,
        _binary: bool,
    ) -> Result<()> {
        self.write_entry(id, path, mode, content)
    }
}

/// The permission bits and type flag of an entry's header.
fn header_mode(mode: Mode) -> (u32, u8) {
    match mode {
        Mode::Dir | Mode::Submodule => (0o777 & !UMASK, b'5'),
        Mode::File => (0o666 & !UMASK, b'0'),
        Mode::Executable => (0o777 & !UMASK, b'0'),
        Mode::Link => (0o777, b'2'),
    }
}

/// `value` in octal, zero-padded to fill `field` but its last byte (a NUL).
fn octal(field: &mut [u8], value: u64) {
    let digits = format!("{value:0width$o}", width = field.len() - 1);
    field[..digits.len()].copy_from_slice(digits.as_bytes());
}

/// The header's checksum: the sum of its bytes, the checksum field counted as
/// spaces.
fn set_checksum(h: &mut [u8; RECORD]) {
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    h[148..156].fill(0);
    octal(&mut h[148..156], sum);
}

/// Where a path too long for the name field splits into prefix and name: the
/// last `/` within the prefix field's 155 bytes (not a trailing one); 0 for
/// none.
fn prefix_split(path: &[u8]) -> usize {
    let mut i = path.len();
    if i > 1 && path[i - 1] == b'/' {
        i -= 1;
    }
    i = i.min(155);
    loop {
        i -= 1;
        if i == 0 || path[i] == b'/' {
            return i;
        }
    }
}

/// A pax record, `"<length> <keyword>=<value>\n"`, its length counting itself.
fn pax_record(out: &mut Vec<u8>, keyword: &str, value: &[u8]) {
    let rest = 1 + keyword.len() + 1 + value.len() + 1;
    let mut len = rest + 1;
    while len.to_string().len() + rest > len {
        len += 1;
    }
    out.extend_from_slice(format!("{len} {keyword}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        for value_len in [
            0, 1, 5, 6, 7, 90, 94, 95, 96, 97, 990, 995, 996, 997, 9_990, 9_995,
        ] {
            let mut out = Vec::new();
            pax_record(&mut out, "path", &vec![b'a'; value_len]);
            let text = String::from_utf8(out.clone()).unwrap();
            let (len, _) = text.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), out.len(), "{value_len}");
        }
    }

    #[test]
    fn long_paths_split_at_the_last_slash_the_prefix_field_holds() {
        let path = format!("{}/{}", "d".repeat(150), "f".repeat(90));
        assert_eq!(prefix_split(path.as_bytes()), 150);
        // No slash within the first 155 bytes: no split.
        assert_eq!(prefix_split(format!("{}/f", "d".repeat(200)).as_bytes()), 0);
        // A directory's trailing slash is not where it splits.
        assert_eq!(prefix_split(b"a/b/"), 1);
    }

    #[test]
    fn checksums_are_git_s_seven_octal_digits_and_a_nul() {
        let tar = Tar {
            out: &mut Vec::new(),
            written: 0,
            mtime: 0,
            files: 0,
        };
        let h = tar.header(b"a", 0o664, b'0', 1, b"");
        let sum: u64 = h[..148]
            .iter()
            .chain(&h[156..])
            .map(|&b| u64::from(b))
            .sum::<u64>()
            + 8 * 32;
        assert_eq!(&h[148..156], format!("{sum:07o}\0").as_bytes());
    }
}
