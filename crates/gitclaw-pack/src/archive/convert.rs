//! What `git archive` does to a regular file's content on its way out:
//! git's `convert_to_working_tree` with a server's settings (`core.autocrlf`
//! false, `core.eol` lf, no filter drivers configured). The `ident`
//! attribute expands `$Id$` to `$Id: <blob id> $`; `text`, `eol` and the
//! older `crlf` attribute asking for CRLF line ends get them: `eol=crlf`
//! (with `text` set or left unspecified) always, `text=auto eol=crlf` only
//! for content git takes for text that has no CR of its own yet.
//!
//! As in git, a file above [`BIG_FILE_THRESHOLD`] is archived as committed;
//! one read as a stream (above 16 MiB, stored whole) gets its line ends but
//! not `$Id$`.

use std::io::Read;

use gix_hash::ObjectId;

/// git's `core.bigFileThreshold`: `git archive` copies larger files as they
/// are, no conversion.
pub const BIG_FILE_THRESHOLD: u64 = 512 << 20;

/// An attribute's state, as the conversion reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Value<'a> {
    #[default]
    Unspecified,
    Set,
    Unset,
    Text(&'a str),
}

/// The line-end conversion a file gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Crlf {
    /// None: its line ends as committed.
    #[default]
    Keep,
    /// Every LF not after a CR becomes CRLF (git's `CRLF_TEXT_CRLF`).
    Always,
    /// The same, but only for text with no CR yet (`CRLF_AUTO_CRLF`).
    Auto,
}

/// What is done to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Conversion {
    pub ident: bool,
    pub crlf: Crlf,
}

/// git's `crlf_action` values before and after `eol` is weighed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Undefined,
    Binary,
    Text,
    TextInput,
    TextCrlf,
    Auto,
    AutoInput,
    AutoCrlf,
}

/// git's `git_path_check_crlf`.
fn action_of(value: Value<'_>) -> Action {
    match value {
        Value::Set => Action::Text,
        Value::Unset => Action::Binary,
        Value::Text("input") => Action::TextInput,
        Value::Text("auto") => Action::Auto,
        _ => Action::Undefined,
    }
}

impl Conversion {
    /// From the file's `crlf`, `text`, `eol` and `ident` attributes (git's
    /// `convert_attrs`).
    pub fn of(crlf: Value<'_>, text: Value<'_>, eol: Value<'_>, ident: Value<'_>) -> Conversion {
        let mut action = action_of(crlf);
        if action == Action::Undefined {
            action = action_of(text);
        }
        if action != Action::Binary {
            action = match (action, eol) {
                (Action::Auto, Value::Text("lf")) => Action::AutoInput,
                (Action::Auto, Value::Text("crlf")) => Action::AutoCrlf,
                (_, Value::Text("lf")) => Action::TextInput,
                (_, Value::Text("crlf")) => Action::TextCrlf,
                (action, _) => action,
            };
        }
        // `text` alone and `text=auto` alone end lines as core.eol (lf);
        // nothing said is binary (core.autocrlf false).
        let crlf = match action {
            Action::TextCrlf => Crlf::Always,
            Action::AutoCrlf => Crlf::Auto,
            _ => Crlf::Keep,
        };
        Conversion {
            ident: ident == Value::Set,
            crlf,
        }
    }

    pub fn is_none(&self) -> bool {
        !self.ident && self.crlf == Crlf::Keep
    }
}

/// What git's `gather_stats` counts of a content, fed in pieces.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Stats {
    lonecr: u64,
    lonelf: u64,
    crlf: u64,
    nul: u64,
    printable: u64,
    nonprintable: u64,
    /// A CR last, its LF (or not) still to come.
    pending_cr: bool,
    last: Option<u8>,
}

impl Stats {
    pub fn of(data: &[u8]) -> Stats {
        let mut stats = Stats::default();
        stats.feed(data);
        stats.finish()
    }

    pub fn feed(&mut self, data: &[u8]) {
        for &c in data {
            if self.pending_cr {
                self.pending_cr = false;
                if c == b'\n' {
                    self.crlf += 1;
                    continue;
                }
                self.lonecr += 1;
            }
            match c {
                b'\r' => self.pending_cr = true,
                b'\n' => self.lonelf += 1,
                127 => self.nonprintable += 1,
                // BS, HT, ESC and FF are printable.
                8 | 9 | 27 | 12 => self.printable += 1,
                0 => {
                    self.nul += 1;
                    self.nonprintable += 1;
                }
                c if c < 32 => self.nonprintable += 1,
                _ => self.printable += 1,
            }
        }
        if let Some(&last) = data.last() {
            self.last = Some(last);
        }
    }

    pub fn finish(mut self) -> Stats {
        if self.pending_cr {
            self.pending_cr = false;
            self.lonecr += 1;
        }
        // A content ending in EOF (^Z) does not count it as non-printable.
        if self.last == Some(0x1a) {
            self.nonprintable -= 1;
        }
        self
    }

    /// git's `convert_is_binary`.
    fn is_binary(&self) -> bool {
        self.lonecr > 0 || self.nul > 0 || (self.printable >> 7) < self.nonprintable
    }

    /// Whether `crlf` changes a content with these counts (git's
    /// `will_convert_lf_to_crlf`), and by how many bytes: one a bare LF.
    pub fn added_crs(&self, crlf: Crlf) -> Option<u64> {
        match crlf {
            Crlf::Keep => return None,
            Crlf::Auto if self.lonecr > 0 || self.crlf > 0 || self.is_binary() => return None,
            _ => {}
        }
        (self.lonelf > 0).then_some(self.lonelf)
    }
}

/// `data` as `git archive` writes it, given its blob id and conversion.
pub(super) fn convert(data: Vec<u8>, id: &ObjectId, conversion: Conversion) -> Vec<u8> {
    let data = if conversion.ident {
        expand_ident(data, id)
    } else {
        data
    };
    if Stats::of(&data).added_crs(conversion.crlf).is_none() {
        return data;
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 16);
    let mut previous = None;
    for &c in &data {
        if c == b'\n' && previous != Some(b'\r') {
            out.push(b'\r');
        }
        out.push(c);
        previous = Some(c);
    }
    out
}

/// git's `ident_to_worktree`: each `$Id$`, and each `$Id: …$` with no line
/// break and no space but the last before its closing `$`, becomes `$Id:
/// <id> $`.
fn expand_ident(data: Vec<u8>, id: &ObjectId) -> Vec<u8> {
    let find = |from: usize, byte: u8| {
        data[from..]
            .iter()
            .position(|&b| b == byte)
            .map(|p| from + p)
    };
    if !data.windows(3).any(|w| w == b"$Id") {
        return data;
    }
    let expanded = format!("Id: {id} $");
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut at = 0;
    while let Some(dollar) = find(at, b'$') {
        out.extend_from_slice(&data[at..=dollar]);
        at = dollar + 1;
        let rest = &data[at..];
        if rest.len() < 3 || &rest[..2] != b"Id" {
            continue;
        }
        match rest[2] {
            b'$' => at += 3,
            b':' => {
                let Some(close) = find(at + 3, b'$') else {
                    break;
                };
                if data[at + 3..close].contains(&b'\n') {
                    continue;
                }
                // A space before the one just before the closing `$`: an id
                // of another system, kept.
                let inner_end = close.saturating_sub(1).max(at + 4);
                if data[(at + 4).min(inner_end)..inner_end].contains(&b' ') {
                    continue;
                }
                at = close + 1;
            }
            _ => continue,
        }
        out.extend_from_slice(expanded.as_bytes());
    }
    out.extend_from_slice(&data[at..]);
    out
}

/// A stream with a CR put before each LF not after one.
pub(super) struct CrlfReader<R> {
    inner: R,
    buf: Vec<u8>,
    out: Vec<u8>,
    at: usize,
    previous: Option<u8>,
}

impl<R: Read> CrlfReader<R> {
    pub fn new(inner: R) -> Self {
        CrlfReader {
            inner,
            buf: vec![0; 64 * 1024],
            out: Vec::with_capacity(128 * 1024),
            at: 0,
            previous: None,
        }
    }
}

impl<R: Read> Read for CrlfReader<R> {
    fn read(&mut self, into: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.out.len() {
            let n = self.inner.read(&mut self.buf)?;
            if n == 0 {
                return Ok(0);
            }
            self.out.clear();
            self.at = 0;
            for &c in &self.buf[..n] {
                if c == b'\n' && self.previous != Some(b'\r') {
                    self.out.push(b'\r');
                }
                self.out.push(c);
                self.previous = Some(c);
            }
        }
        let n = into.len().min(self.out.len() - self.at);
        into[..n].copy_from_slice(&self.out[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_decide_as_git_s_convert_attrs() {
        use Value::*;
        let crlf = |crlf, text, eol| Conversion::of(crlf, text, eol, Unspecified).crlf;
        assert_eq!(crlf(Unspecified, Unspecified, Unspecified), Crlf::Keep);
        assert_eq!(crlf(Unspecified, Set, Unspecified), Crlf::Keep);
        assert_eq!(crlf(Unspecified, Set, Text("crlf")), Crlf::Always);
        assert_eq!(crlf(Unspecified, Unspecified, Text("crlf")), Crlf::Always);
        assert_eq!(crlf(Unspecified, Unset, Text("crlf")), Crlf::Keep);
        assert_eq!(crlf(Unspecified, Text("auto"), Text("crlf")), Crlf::Auto);
        assert_eq!(crlf(Unspecified, Text("auto"), Unspecified), Crlf::Keep);
        assert_eq!(crlf(Unspecified, Set, Text("lf")), Crlf::Keep);
        // The older `crlf` attribute comes first.
        assert_eq!(crlf(Unset, Set, Text("crlf")), Crlf::Keep);
        assert_eq!(crlf(Set, Unset, Text("crlf")), Crlf::Always);
        assert_eq!(crlf(Text("auto"), Unspecified, Text("crlf")), Crlf::Auto);
        assert!(Conversion::of(Unspecified, Unspecified, Unspecified, Set).ident);
        assert!(!Conversion::of(Unspecified, Unspecified, Unspecified, Text("x")).ident);
    }

    #[test]
    fn stats_fed_in_pieces_are_stats_of_the_whole() {
        let data = b"a\r\nb\rc\n\0\x7f\x1b\r\r\n\n\x1a";
        let whole = Stats::of(data);
        for piece in 1..data.len() {
            let mut stats = Stats::default();
            data.chunks(piece).for_each(|c| stats.feed(c));
            let stats = stats.finish();
            assert_eq!(
                (
                    stats.lonecr,
                    stats.lonelf,
                    stats.crlf,
                    stats.nul,
                    stats.printable,
                    stats.nonprintable
                ),
                (
                    whole.lonecr,
                    whole.lonelf,
                    whole.crlf,
                    whole.nul,
                    whole.printable,
                    whole.nonprintable
                ),
                "pieces of {piece}"
            );
        }
        // "b\rc" and the first of "\r\r\n" are lone CRs.
        assert_eq!((whole.lonecr, whole.lonelf, whole.crlf), (2, 2, 2));
    }

    #[test]
    fn a_crlf_stream_is_the_converted_whole() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| match i % 4 {
                0 => b"x\n".to_vec(),
                1 => b"y\r\n".to_vec(),
                2 => b"\n".to_vec(),
                _ => b"z\r".to_vec(),
            })
            .collect();
        let id = ObjectId::null(gix_hash::Kind::Sha1);
        let always = Conversion {
            ident: false,
            crlf: Crlf::Always,
        };
        let whole = convert(data.clone(), &id, always);
        let added = Stats::of(&data).added_crs(Crlf::Always).unwrap();
        assert_eq!(whole.len() as u64, data.len() as u64 + added);
        let mut streamed = Vec::new();
        CrlfReader::new(&data[..])
            .read_to_end(&mut streamed)
            .unwrap();
        assert_eq!(streamed, whole);
        // `auto` leaves content that has CRs alone.
        let auto = Conversion {
            ident: false,
            crlf: Crlf::Auto,
        };
        assert_eq!(convert(data.clone(), &id, auto), data);
    }
}
