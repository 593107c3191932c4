//! One thread reads a file only as far as another has checked it.
//!
//! A received pack of unknown make is looked through (every entry inflated)
//! before gix's indexer may read it: the indexer keeps each entry's compressed
//! bytes and allocates what a header claims, so an entry must be checked
//! first. Both read the file front to back at about the same speed, so rather
//! than one after the other they run side by side, the indexer held behind
//! the look-through by a [`Gate`]: the look-through [`Gate::advance`]s past
//! each entry it has checked, then [`Gate::open`]s the rest (the trailer) or
//! [`Gate::shut`]s it (a big object to stream instead, or a refusal), which
//! makes the indexer's next read fail.

use std::{
    fs::File,
    io::{self, Read},
    sync::{Condvar, Mutex, PoisonError},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Bytes before this offset may be read.
    Checked(u64),
    /// Everything may be read.
    Open,
    /// Nothing more may be read.
    Shut,
}

/// How far a file may be read (see the module's doc).
#[derive(Debug)]
pub(crate) struct Gate {
    state: Mutex<State>,
    moved: Condvar,
}

impl Gate {
    pub(crate) fn new() -> Gate {
        Gate {
            state: Mutex::new(State::Checked(0)),
            moved: Condvar::new(),
        }
    }

    fn set(&self, next: impl FnOnce(State) -> State) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        *state = next(*state);
        self.moved.notify_all();
    }

    /// Bytes before `offset` are checked and may be read.
    pub(crate) fn advance(&self, offset: u64) {
        self.set(|state| match state {
            State::Checked(before) => State::Checked(before.max(offset)),
            done => done,
        });
    }

    /// The rest of the file may be read.
    pub(crate) fn open(&self) {
        self.set(|state| match state {
            State::Shut => State::Shut,
            _ => State::Open,
        });
    }

    /// No more of the file may be read: the reader's next read fails.
    pub(crate) fn shut(&self) {
        self.set(|_| State::Shut);
    }

    /// How many bytes from `pos` on may be read (`u64::MAX`: all), waiting
    /// until at least one may; an error once shut.
    fn readable(&self, pos: u64) -> io::Result<u64> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            match *state {
                State::Open => return Ok(u64::MAX),
                State::Shut => return Err(io::Error::other("the pack's look-through stopped it")),
                State::Checked(end) if end > pos => return Ok(end - pos),
                State::Checked(_) => {
                    state = self
                        .moved
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner)
                }
            }
        }
    }
}

/// Shuts its gate when dropped unless opened: a checker that returns early,
/// fails or panics never leaves the reader waiting.
pub(crate) struct Keeper<'g> {
    gate: &'g Gate,
    opened: bool,
}

impl<'g> Keeper<'g> {
    pub(crate) fn new(gate: &'g Gate) -> Keeper<'g> {
        Keeper {
            gate,
            opened: false,
        }
    }

    pub(crate) fn advance(&self, offset: u64) {
        self.gate.advance(offset);
    }

    pub(crate) fn open(mut self) {
        self.opened = true;
        self.gate.open();
    }
}

impl Drop for Keeper<'_> {
    fn drop(&mut self) {
        if !self.opened {
            self.gate.shut();
        }
    }
}

/// A file read from its start, no further than its gate allows.
pub(crate) struct GatedFile<'g> {
    file: File,
    pos: u64,
    gate: &'g Gate,
}

impl<'g> GatedFile<'g> {
    pub(crate) fn new(file: File, gate: &'g Gate) -> GatedFile<'g> {
        GatedFile { file, pos: 0, gate }
    }
}

impl Read for GatedFile<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let readable = self.gate.readable(self.pos)?;
        let want = usize::try_from(readable)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.file.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_of(bytes: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        let file = File::open(f.path()).unwrap();
        (f, file)
    }

    #[test]
    fn the_reader_gets_what_was_checked_then_all_once_open() {
        let data: Vec<u8> = (0..=255).collect();
        let (_keep, file) = file_of(&data);
        let gate = Gate::new();
        let mut read = Vec::new();
        std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let mut r = GatedFile::new(file, &gate);
                let mut chunk = [0u8; 100];
                let mut sizes = Vec::new();
                loop {
                    let n = r.read(&mut chunk).unwrap();
                    if n == 0 {
                        break;
                    }
                    sizes.push(n);
                    read.extend_from_slice(&chunk[..n]);
                }
                sizes
            });
            let keeper = Keeper::new(&gate);
            keeper.advance(10);
            keeper.advance(50);
            keeper.open();
            let sizes = reader.join().unwrap();
            // Never more in one read than was let through.
            assert!(sizes.iter().all(|&n| n <= 100), "{sizes:?}");
        });
        assert_eq!(read, data);
    }

    #[test]
    fn a_keeper_dropped_unopened_fails_the_reader_past_what_was_checked() {
        let data = vec![7u8; 1000];
        let (_keep, file) = file_of(&data);
        let gate = Gate::new();
        std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let mut r = GatedFile::new(file, &gate);
                let mut all = Vec::new();
                let outcome = r.read_to_end(&mut all);
                (all.len(), outcome.is_err())
            });
            {
                let keeper = Keeper::new(&gate);
                keeper.advance(300);
                // Dropped without opening: a refusal, or a panic.
            }
            let (got, failed) = reader.join().unwrap();
            assert!(got <= 300 && failed, "read {got} bytes, failed: {failed}");
        });
    }
}
