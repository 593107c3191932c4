//! Checking a received pack while it arrives.
//!
//! The fetch reader hands each piece of pack data to a [`PackSink`], which
//! passes it through a small bounded channel to a blocking thread: memory stays
//! a few packets per fetch however large the pack. With [`Verify::Full`] that
//! thread indexes the pack as `git index-pack` would (gitclaw-pack's
//! [`ingest`]): every entry inflates, every delta resolves, every object is
//! hashed and parsed, the trailer checksum matches, nothing follows it. The
//! pack and its index are written under a temporary directory, removed when
//! the check ends. With [`Verify::Light`] it checks the header, the object
//! count and the trailer checksum only.
//!
//! A pack answering a complete request (a clone of whole history) is also
//! checked for connectivity: every object an object names must be in the pack.
//! Shallow, filtered and incremental answers leave objects out by design; for
//! them the referenced objects are taken as present ([`Promised`]), as a
//! partial clone's promisor remote is, and the caller checks the shape instead.

use std::{io::BufRead, path::PathBuf, sync::Arc};

use bytes::Bytes;
use gitclaw_pack::{
    fsck::FsckLevel,
    ingest::{ingest, IngestOptions, IngestedPack},
    odb::{DecodeState, LooseSource, NoLoose, ObjectDb},
    Kind, PackError,
};
use gitclaw_protocol::ObjectId;
use gix_object::ObjectRef;
use sha1::{Digest, Sha1};
use tokio::sync::mpsc;

use crate::{
    config::Verify,
    error::{ErrorKind, RunError},
};

/// What to check and learn besides the pack's own integrity.
#[derive(Debug, Clone, Default)]
pub struct PackQuery {
    /// Every object an object of the pack names must be in the pack.
    pub complete: bool,
    /// Objects whose presence the answer reports, in this order.
    pub look_for: Vec<ObjectId>,
    /// Follow first parents this many steps from this commit, inside the pack.
    pub first_parent_walk: Option<(ObjectId, u32)>,
}

/// Objects of each type in a pack.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindCounts {
    pub commits: u64,
    pub trees: u64,
    pub blobs: u64,
    pub tags: u64,
}

/// What a received pack held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackSummary {
    pub objects: u64,
    /// By type; `None` when only the header was checked.
    pub kinds: Option<KindCounts>,
    /// Whether each of [`PackQuery::look_for`] is in the pack; `None` when
    /// only the header was checked.
    pub present: Option<Vec<bool>>,
    /// Where the first-parent walk ended, when it went all its steps.
    pub walked_to: Option<ObjectId>,
}

/// Objects the client is promised and does not have: every lookup says
/// present, none reads (see the module doc).
#[derive(Debug, Default, Clone, Copy)]
pub struct Promised;

impl LooseSource for Promised {
    fn contains(&self, _id: &gitclaw_pack::oid) -> bool {
        true
    }
    fn read(&self, _id: &gitclaw_pack::oid) -> gitclaw_pack::Result<Option<(Kind, Vec<u8>)>> {
        Ok(None)
    }
    fn list(&self) -> Vec<(ObjectId, Kind)> {
        Vec::new()
    }
}

/// Pieces of pack data in flight to the checking thread.
const CHANNEL_PIECES: usize = 8;

/// The receiving end of a pack check under way.
pub struct PackSink {
    tx: Option<mpsc::Sender<Bytes>>,
    check: tokio::task::JoinHandle<Result<PackSummary, RunError>>,
    received: u64,
}

impl PackSink {
    /// Starts checking a pack on a blocking thread.
    pub fn start(verify: Verify, tmp_dir: Option<PathBuf>, query: PackQuery) -> PackSink {
        let (tx, rx) = mpsc::channel(CHANNEL_PIECES);
        let check = tokio::task::spawn_blocking(move || {
            let mut input = ChannelReader::new(rx);
            match verify {
                Verify::Full => check_full(&mut input, tmp_dir, &query),
                Verify::Light => check_light(&mut input),
            }
        });
        PackSink {
            tx: Some(tx),
            check,
            received: 0,
        }
    }

    /// Hands on the next piece of the pack. False when the check has stopped
    /// (it failed): [`PackSink::finish`] then says why, and the rest of the
    /// pack need not be read.
    pub async fn feed(&mut self, piece: Bytes) -> bool {
        self.received += piece.len() as u64;
        match &self.tx {
            Some(tx) => tx.send(piece).await.is_ok(),
            None => false,
        }
    }

    /// Pack bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Ends the pack and waits for the check's outcome.
    pub async fn finish(mut self) -> Result<PackSummary, RunError> {
        self.tx = None;
        match (&mut self.check).await {
            Ok(outcome) => outcome,
            Err(err) => Err(RunError::new(
                ErrorKind::Local,
                format!("the pack check stopped: {err}"),
            )),
        }
    }
}

/// Reads the pieces the sink sends, as a `BufRead`; the end of the channel is
/// the end of the pack.
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    piece: Bytes,
    done: bool,
    /// Bytes read so far, and the last 20 of them: the reader of a pack may
    /// read ahead of its end, so these, not what is left, tell whether the
    /// stream ended with the trailer.
    total: u64,
    tail: Vec<u8>,
}

impl ChannelReader {
    fn new(rx: mpsc::Receiver<Bytes>) -> Self {
        ChannelReader {
            rx,
            piece: Bytes::new(),
            done: false,
            total: 0,
            tail: Vec::with_capacity(40),
        }
    }

    /// Reads the stream to its end (the sender's end of the pack section).
    fn drain(&mut self) {
        loop {
            let len = match self.fill_buf() {
                Ok(rest) if !rest.is_empty() => rest.len(),
                _ => return,
            };
            self.consume(len);
        }
    }

    fn remember(&mut self, read: &[u8]) {
        self.total += read.len() as u64;
        if read.len() >= 20 {
            self.tail.clear();
            self.tail.extend_from_slice(&read[read.len() - 20..]);
        } else {
            self.tail.extend_from_slice(read);
            let excess = self.tail.len().saturating_sub(20);
            self.tail.drain(..excess);
        }
    }
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ChannelReader {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        while self.piece.is_empty() && !self.done {
            match self.rx.blocking_recv() {
                Some(piece) => self.piece = piece,
                None => self.done = true,
            }
        }
        Ok(&self.piece)
    }

    fn consume(&mut self, amount: usize) {
        let read = self.piece.split_to(amount.min(self.piece.len()));
        self.remember(&read);
    }
}

fn pack_error(err: PackError) -> RunError {
    match err {
        PackError::MissingObject(id) => RunError::bad_pack(format!(
            "incomplete: object {id} is named by the pack and not in it"
        )),
        PackError::Io { .. } => RunError::new(ErrorKind::Local, err.to_string()),
        other => RunError::bad_pack(other.to_string()),
    }
}

fn check_full(
    input: &mut ChannelReader,
    tmp_dir: Option<PathBuf>,
    query: &PackQuery,
) -> Result<PackSummary, RunError> {
    let work = match &tmp_dir {
        Some(dir) => tempfile::Builder::new()
            .prefix("gitclaw-load-")
            .tempdir_in(dir),
        None => tempfile::Builder::new().prefix("gitclaw-load-").tempdir(),
    }
    .map_err(|err| RunError::new(ErrorKind::Local, format!("temporary directory: {err}")))?;
    let loose: Arc<dyn LooseSource> = if query.complete {
        Arc::new(NoLoose)
    } else {
        Arc::new(Promised)
    };
    let db = ObjectDb::new(Vec::new(), loose);
    let options = IngestOptions {
        threads: 1,
        fsck: FsckLevel::Off,
        ..IngestOptions::default()
    };
    let ingested = ingest(input, work.path(), &db, &options).map_err(pack_error)?;
    input.drain();
    let Some(pack) = ingested else {
        // An empty pack is its header and its trailer.
        if input.total != 32 {
            return Err(RunError::bad_pack(format!(
                "{} bytes of an empty pack",
                input.total
            )));
        }
        return Ok(PackSummary {
            present: Some(vec![false; query.look_for.len()]),
            kinds: Some(KindCounts::default()),
            ..PackSummary::default()
        });
    };
    if input.tail.as_slice() != pack.pack.hash().as_slice() {
        return Err(RunError::bad_pack("data follows the pack's trailer"));
    }
    let mut kinds = KindCounts::default();
    for object in &pack.objects {
        match object.kind {
            Kind::Commit => kinds.commits += 1,
            Kind::Tree => kinds.trees += 1,
            Kind::Blob => kinds.blobs += 1,
            Kind::Tag => kinds.tags += 1,
        }
    }
    let walked_to = match query.first_parent_walk {
        Some((start, steps)) => first_parent_walk(&pack, start, steps)?,
        None => None,
    };
    Ok(PackSummary {
        objects: pack.objects.len() as u64,
        kinds: Some(kinds),
        present: Some(
            query
                .look_for
                .iter()
                .map(|id| pack.contains(id))
                .collect::<Result<_, _>>()
                .map_err(pack_error)?,
        ),
        walked_to,
    })
}

/// The commit `steps` first parents back from `start`, all inside the pack;
/// `None` when the pack does not reach that far.
fn first_parent_walk(
    pack: &IngestedPack,
    start: ObjectId,
    steps: u32,
) -> Result<Option<ObjectId>, RunError> {
    let mut state = DecodeState::default();
    let mut buf = Vec::new();
    let mut at = start;
    for _ in 0..steps {
        let Some(index) = pack.pack.lookup(&at).map_err(pack_error)? else {
            return Ok(None);
        };
        let kind = pack
            .pack
            .decode(index, &mut buf, &mut state)
            .map_err(pack_error)?;
        let parent = match ObjectRef::from_bytes(&buf, kind, gix_hash::Kind::Sha1) {
            Ok(ObjectRef::Commit(commit)) => commit.parents().next(),
            _ => return Err(RunError::bad_pack(format!("{at} is not a commit"))),
        };
        match parent {
            Some(parent) => at = parent,
            None => return Ok(None),
        }
    }
    Ok(Some(at))
}

/// The header (`PACK`, version 2 or 3, object count) and the SHA-1 trailer.
fn check_light(input: &mut ChannelReader) -> Result<PackSummary, RunError> {
    let mut hasher = Sha1::new();
    let mut header = Vec::with_capacity(12);
    // The last 20 bytes seen, held back from the hash: the trailer, at the end.
    let mut tail: Vec<u8> = Vec::with_capacity(40);
    let mut total = 0u64;
    loop {
        let piece = input
            .fill_buf()
            .map_err(|err| RunError::new(ErrorKind::Local, err.to_string()))?;
        if piece.is_empty() {
            break;
        }
        let piece = piece.to_vec();
        input.consume(piece.len());
        total += piece.len() as u64;
        if header.len() < 12 {
            let take = (12 - header.len()).min(piece.len());
            header.extend_from_slice(&piece[..take]);
        }
        tail.extend_from_slice(&piece);
        if tail.len() > 20 {
            let cut = tail.len() - 20;
            hasher.update(&tail[..cut]);
            tail.drain(..cut);
        }
    }
    if total == 0 {
        return Ok(PackSummary::default());
    }
    if header.len() < 12 || total < 32 {
        return Err(RunError::bad_pack(format!("only {total} bytes")));
    }
    if &header[..4] != b"PACK" {
        return Err(RunError::bad_pack("no `PACK` signature"));
    }
    let version = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    if version != 2 && version != 3 {
        return Err(RunError::bad_pack(format!("version {version}")));
    }
    let objects = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
    if hasher.finalize()[..] != tail[..] {
        return Err(RunError::bad_pack("the trailer's checksum does not match"));
    }
    Ok(PackSummary {
        objects: u64::from(objects),
        ..PackSummary::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push_pack::{commit_objects, new_commit, write_pack};

    async fn check(
        verify: Verify,
        query: PackQuery,
        pack: &[u8],
        piece: usize,
    ) -> Result<PackSummary, RunError> {
        let mut sink = PackSink::start(verify, None, query);
        for chunk in pack.chunks(piece) {
            sink.feed(Bytes::copy_from_slice(chunk)).await;
        }
        sink.finish().await
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_good_pack_passes_in_any_piece_size() {
        let made = new_commit(None, &[7; 3000], "root", 1);
        let rt = runtime();
        for piece in [1, 7, 100, 1 << 16] {
            for verify in [Verify::Full, Verify::Light] {
                let summary = rt
                    .block_on(check(
                        verify,
                        PackQuery {
                            complete: true,
                            look_for: vec![made.commit, made.blob],
                            first_parent_walk: None,
                        },
                        &made.pack,
                        piece,
                    ))
                    .unwrap();
                assert_eq!(summary.objects, 3, "{verify:?} {piece}");
                if verify == Verify::Full {
                    assert_eq!(summary.present, Some(vec![true, true]));
                    assert_eq!(
                        summary.kinds,
                        Some(KindCounts {
                            commits: 1,
                            trees: 1,
                            blobs: 1,
                            tags: 0
                        })
                    );
                }
            }
        }
    }

    #[test]
    fn a_corrupt_pack_is_a_bad_pack() {
        let made = new_commit(None, &[7; 3000], "root", 1);
        let rt = runtime();
        // A flipped bit inside the deflated blob, one in the trailer, a cut pack,
        // a wrong count in the header, and bytes after the trailer.
        let mut flipped = made.pack.clone();
        flipped[40] ^= 0x10;
        let mut bad_trailer = made.pack.clone();
        let last = bad_trailer.len() - 1;
        bad_trailer[last] ^= 1;
        let cut = made.pack[..made.pack.len() - 30].to_vec();
        let mut bad_count = made.pack.clone();
        bad_count[11] = 4;
        let mut extra = made.pack.clone();
        extra.extend_from_slice(b"more");
        for (name, pack) in [
            ("flipped", &flipped),
            ("trailer", &bad_trailer),
            ("cut", &cut),
            ("count", &bad_count),
            ("extra", &extra),
        ] {
            let outcome = rt.block_on(check(Verify::Full, PackQuery::default(), pack, 512));
            let err = outcome.expect_err(name);
            assert_eq!(err.kind, ErrorKind::BadPack, "{name}: {err}");
        }
        for (name, pack) in [
            ("trailer", &bad_trailer),
            ("cut", &cut),
            ("count", &bad_count),
        ] {
            let err = rt
                .block_on(check(Verify::Light, PackQuery::default(), pack, 512))
                .unwrap_err();
            assert_eq!(err.kind, ErrorKind::BadPack, "light {name}: {err}");
        }
    }

    #[test]
    fn a_complete_request_needs_every_named_object() {
        let parent = crate::push_pack::object_id(Kind::Blob, b"not sent");
        let made = new_commit(Some(parent), b"x", "child", 1);
        let rt = runtime();
        let complete = PackQuery {
            complete: true,
            ..PackQuery::default()
        };
        let err = rt
            .block_on(check(Verify::Full, complete, &made.pack, 4096))
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadPack);
        assert!(err.message.contains(&parent.to_string()), "{err}");
        // A shallow or incremental answer may leave it out.
        let summary = rt
            .block_on(check(Verify::Full, PackQuery::default(), &made.pack, 4096))
            .unwrap();
        assert_eq!(summary.objects, 3);
    }

    #[test]
    fn walks_first_parents_inside_the_pack() {
        let first = new_commit(None, b"1", "one", 1);
        let second = new_commit(Some(first.commit), b"2", "two", 2);
        let third = new_commit(Some(second.commit), b"3", "three", 3);
        // One pack of all nine objects, whole.
        let objects: Vec<(Kind, Vec<u8>)> = [
            commit_objects(None, b"1", "one", 1),
            commit_objects(Some(first.commit), b"2", "two", 2),
            commit_objects(Some(second.commit), b"3", "three", 3),
        ]
        .into_iter()
        .flatten()
        .collect();
        let borrowed: Vec<(Kind, &[u8])> =
            objects.iter().map(|(k, d)| (*k, d.as_slice())).collect();
        let pack = write_pack(&borrowed);
        let rt = runtime();
        let walk = |steps| {
            rt.block_on(check(
                Verify::Full,
                PackQuery {
                    complete: true,
                    look_for: Vec::new(),
                    first_parent_walk: Some((third.commit, steps)),
                },
                &pack,
                1000,
            ))
            .unwrap()
            .walked_to
        };
        assert_eq!(walk(0), Some(third.commit));
        assert_eq!(walk(2), Some(first.commit));
        assert_eq!(walk(3), None);
    }
}
