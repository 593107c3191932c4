//! upload-pack: ref advertisement, negotiation and pack streaming for clone and fetch,
//! in protocol v0/v1 (stateless RPC, as over HTTP) and v2.
//!
//! The negotiation mirrors git's upload-pack (`multi_ack_detailed`, `no-done`, v2
//! `acknowledgments`/`ready`), the object selection and pack writing are the pack
//! engine's. Everything here after request parsing runs on a blocking thread and
//! writes into a streamed response body.

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    io::Write,
    rc::Rc,
    time::Instant,
};

use gitclaw_metadata::RefRecord;
use gitclaw_pack::{
    odb::{ObjectDb, PackHandle},
    repack::closure_key,
    walk::WalkObject,
    walk::{
        enumerate, ok_to_give_up, plan_shallow, reaches_all, unreachable_wants, DeepenRequest,
        Filter, Graph, ShallowPlan, WalkOptions,
    },
    writer::{stream_pack, write_pack, write_pack_after, Phase, WriteOptions, WriteStats},
    Kind, ObjectId,
};
use gitclaw_protocol::{pktline, sideband};

use crate::service::response_cache::{CacheFill, CacheKey, ResponseCache};

/// Capabilities advertised in v0/v1 (symref and agent are added per response).
pub const V0_CAPABILITIES: &[&str] = &[
    "multi_ack",
    "thin-pack",
    "side-band",
    "side-band-64k",
    "ofs-delta",
    "shallow",
    "deepen-since",
    "deepen-not",
    "deepen-relative",
    "no-progress",
    "include-tag",
    "multi_ack_detailed",
    "no-done",
    "allow-tip-sha1-in-want",
    "allow-reachable-sha1-in-want",
    "filter",
    "object-format=sha1",
];

pub fn agent() -> String {
    format!("agent=gitclaw/{}", env!("CARGO_PKG_VERSION"))
}

/// The v2 capability advertisement.
pub fn v2_capabilities() -> Vec<String> {
    vec![
        agent(),
        "ls-refs=unborn".into(),
        "fetch=shallow wait-for-done filter".into(),
        "server-option".into(),
        "object-format=sha1".into(),
    ]
}

/// A ref with its peeled value (for annotated tags).
#[derive(Debug, Clone)]
pub struct PeeledRef {
    pub name: String,
    pub oid: ObjectId,
    pub peeled: Option<ObjectId>,
}

/// Peel every ref that points at a tag object. Blocking.
pub fn peel_refs(db: &ObjectDb, refs: Vec<RefRecord>) -> Vec<PeeledRef> {
    let mut reader = db.reader();
    refs.into_iter()
        .map(|r| {
            // Only tags can point at tag objects in practice; reading every branch tip
            // just to learn it is a commit would cost a read per ref.
            let peeled = if r.name.starts_with("refs/tags/") {
                // The header only: a tag may name a big blob.
                match reader.header(&r.oid) {
                    Ok(Some((Kind::Tag, _))) => reader.peel(&r.oid).ok().map(|(id, _)| id),
                    _ => None,
                }
            } else {
                None
            };
            PeeledRef {
                name: r.name,
                oid: r.oid,
                peeled,
            }
        })
        .collect()
}

/// What one upload-pack request asks for, in either protocol version.
#[derive(Debug, Clone, Default)]
pub struct FetchJob {
    pub v2: bool,
    pub wants: Vec<ObjectId>,
    pub haves: Vec<ObjectId>,
    pub done: bool,
    pub deepen: DeepenRequest,
    pub deepen_not_refs: Vec<String>,
    /// Partial clone filter spec, as the client sent it.
    pub filter: Option<String>,
    /// Largest sideband packet, or `None` for no sideband.
    pub sideband: Option<usize>,
    pub no_progress: bool,
    pub ofs_delta: bool,
    pub thin_pack: bool,
    pub include_tag: bool,
    pub multi_ack: bool,
    pub multi_ack_detailed: bool,
    pub no_done: bool,
    pub wait_for_done: bool,
    /// The clone-pack cache and the repository id that scopes its keys.
    pub cache: Option<(std::sync::Arc<ResponseCache>, String)>,
    /// For a full clone: the newest pack recorded as the closure of some tips, and
    /// those tips.
    pub closure: Option<(std::sync::Arc<PackHandle>, Vec<ObjectId>)>,
    /// The configured delta search (window, depth); the client's capabilities
    /// decide the rest of how the pack is written.
    pub pack: WriteOptions,
}

impl FetchJob {
    /// No haves, no depth, no filter but `blob:none`: a clone of whole history.
    pub fn is_full_clone(&self) -> bool {
        self.haves.is_empty()
            && self.filter.as_deref().is_none_or(|f| f == "blob:none")
            && !self.deepen.is_deepen()
            && self.deepen.client_shallow.is_empty()
            && self.deepen_not_refs.is_empty()
    }
}

/// Commits searched, at most, for the tips a stored closure was taken of.
const CLOSURE_SEARCH_LIMIT: usize = 100_000;

fn pkt(out: &mut dyn Write, text: &str) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(text.len() + 4);
    pktline::write_text(&mut buf, text).map_err(std::io::Error::other)?;
    out.write_all(&buf)
}

/// Writes pack data as sideband packets on band 1, or raw when no sideband was negotiated.
/// Pack data and messages on their sideband channels. Pack data is gathered into
/// full packets (the writer hands it over an entry header at a time, and a packet
/// per write would cost five bytes and a copy each).
struct PackSink<'a> {
    out: &'a mut dyn Write,
    sideband: Option<usize>,
    pending: Vec<u8>,
}

impl<'a> PackSink<'a> {
    fn new(out: &'a mut dyn Write, sideband: Option<usize>) -> Self {
        PackSink {
            out,
            sideband,
            pending: Vec::new(),
        }
    }

    fn band(&mut self, band: sideband::Band, data: &[u8]) -> std::io::Result<()> {
        self.send_pending(true)?;
        if let Some(max) = self.sideband {
            let mut buf = Vec::with_capacity(data.len() + 16);
            sideband::write_band(&mut buf, band, data, max);
            self.out.write_all(&buf)
        } else if matches!(band, sideband::Band::Data) {
            self.out.write_all(data)
        } else {
            Ok(())
        }
    }

    /// Send the gathered pack data: only whole packets, or everything when `all`.
    fn send_pending(&mut self, all: bool) -> std::io::Result<()> {
        let Some(max) = self.sideband else {
            return Ok(());
        };
        let chunk = sideband::payload_len(max);
        let ready = if all {
            self.pending.len()
        } else {
            self.pending.len() / chunk * chunk
        };
        if ready == 0 {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(ready + ready.div_ceil(chunk) * 5);
        sideband::write_band(&mut buf, sideband::Band::Data, &self.pending[..ready], max);
        self.pending.drain(..ready);
        self.out.write_all(&buf)
    }
}

impl Write for PackSink<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.sideband.is_none() {
            self.out.write_all(data)?;
        } else {
            self.pending.extend_from_slice(data);
            self.send_pending(false)?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send_pending(true)?;
        self.out.flush()
    }
}

/// A failure to report to the client, before or during the pack.
#[derive(Debug)]
pub struct FetchError(pub String);

impl<E: std::fmt::Display> From<E> for FetchError {
    fn from(err: E) -> Self {
        FetchError(err.to_string())
    }
}

/// Run one upload-pack request against `db`, writing the whole response to `out`.
/// Blocking. Errors are reported to the client in git's terms before returning.
pub fn run_fetch(
    db: &ObjectDb,
    refs: &[PeeledRef],
    job: &FetchJob,
    out: &mut dyn Write,
) -> Result<(), FetchError> {
    let mut pack_started = false;
    let shared = RefCell::new(out);
    let result = fetch_inner(db, refs, job, &shared, &mut pack_started);
    let out = shared.into_inner();
    if let Err(err) = &result {
        let message = format!("upload-pack: {}", err.0);
        if pack_started && job.sideband.is_some() {
            let mut sink = PackSink::new(out, job.sideband);
            let _ = sink.band(sideband::Band::Error, format!("{message}\n").as_bytes());
        } else if !pack_started {
            let _ = pkt(out, &format!("ERR {message}\n"));
        }
        let _ = out.flush();
    }
    result
}

/// The response writer, shared between the request's own writes and the
/// keepalives sent from inside long walks (one thread; never both at once).
struct Shared<'r, 'w>(&'r RefCell<&'w mut dyn Write>);

impl Write for Shared<'_, '_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().write(data)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.borrow_mut().flush()
    }
}

/// Seconds of silence after which a keepalive (or a progress line) goes out.
const KEEPALIVE_SECS: u64 = 2;

/// What the client hears during the quiet phases of the pack (counting,
/// compressing): progress lines, or empty keepalive packets under `no-progress`,
/// at most one per [`KEEPALIVE_SECS`], so proxies and clients never see the
/// connection go idle. Written straight to the response, between the pack
/// sink's whole packets; silent until [`Heartbeat::start`] (sideband open).
struct Heartbeat<'r, 'w> {
    shared: &'r RefCell<&'w mut dyn Write>,
    sideband: Option<usize>,
    progress: bool,
    since: Cell<Option<Instant>>,
}

impl<'r, 'w> Heartbeat<'r, 'w> {
    fn new(shared: &'r RefCell<&'w mut dyn Write>, job: &FetchJob) -> Self {
        Heartbeat {
            shared,
            sideband: job.sideband,
            progress: !job.no_progress && job.sideband.is_some(),
            since: Cell::new(None),
        }
    }

    fn start(&self) {
        self.since.set(Some(Instant::now()));
    }

    /// Speak if the connection has been quiet long enough: `line()` when the
    /// client takes progress, an empty data packet (git's keepalive) when it does not.
    fn beat(&self, line: impl FnOnce() -> String) {
        self.after_silence(|max, buf| {
            if self.progress {
                sideband::write_band(buf, sideband::Band::Progress, line().as_bytes(), max);
            } else {
                sideband::write_band(buf, sideband::Band::Data, b"", max);
            }
        });
    }

    /// An empty data packet if the connection has been quiet long enough.
    fn keep_alive(&self) {
        self.after_silence(|max, buf| sideband::write_band(buf, sideband::Band::Data, b"", max));
    }

    fn after_silence(&self, packet: impl FnOnce(usize, &mut Vec<u8>)) {
        let (Some(since), Some(max)) = (self.since.get(), self.sideband) else {
            return;
        };
        if since.elapsed().as_secs() < KEEPALIVE_SECS {
            return;
        }
        let mut buf = Vec::new();
        packet(max, &mut buf);
        self.send(&buf);
    }

    /// A progress line now, whatever the clock says (a phase's closing line).
    fn say(&self, line: &str) {
        let (true, Some(max)) = (self.progress, self.sideband) else {
            return;
        };
        let mut buf = Vec::new();
        sideband::write_band(&mut buf, sideband::Band::Progress, line.as_bytes(), max);
        self.send(&buf);
    }

    fn send(&self, packet: &[u8]) {
        // Never inside a write of the response itself (the same thread).
        if let Ok(mut w) = self.shared.try_borrow_mut() {
            let _ = w.write_all(packet).and_then(|_| w.flush());
        }
        self.since.set(Some(Instant::now()));
    }
}

/// The progress callback of the pack writer: "Compressing objects" while the
/// delta search runs (git's wording; keepalives under `no-progress`), keepalives
/// if the writing stalls.
fn compress_progress<'h, 'r, 'w>(
    heartbeat: &'h Heartbeat<'r, 'w>,
) -> impl FnMut(Phase, u32, u32) + use<'h, 'r, 'w> {
    let mut closed = false;
    move |phase, done, total| {
        if phase != Phase::Compressing {
            heartbeat.keep_alive();
        } else if done < total {
            heartbeat.beat(|| {
                let percent = u64::from(done) * 100 / u64::from(total);
                format!("Compressing objects: {percent}% ({done}/{total})\r")
            });
        } else if !closed {
            closed = true;
            heartbeat.say(&format!(
                "Compressing objects: 100% ({total}/{total}), done.\n"
            ));
        }
    }
}

fn fetch_inner(
    db: &ObjectDb,
    refs: &[PeeledRef],
    job: &FetchJob,
    shared: &RefCell<&mut dyn Write>,
    pack_started: &mut bool,
) -> Result<(), FetchError> {
    let mut out_writer = Shared(shared);
    let out: &mut dyn Write = &mut out_writer;
    for want in &job.wants {
        if !db.contains(want) {
            return Err(FetchError(format!("not our ref {want}")));
        }
    }
    if job.wants.is_empty() {
        if job.v2 {
            out.write_all(pktline::FLUSH)?;
        }
        return Ok(());
    }
    let mut graph = Graph::new(db);
    // Once the pack phase has begun (sideband open), long walks keep the client
    // hearing from us.
    let heartbeat = Rc::new(Heartbeat::new(shared, job));
    {
        let heartbeat = heartbeat.clone();
        graph.on_progress(move |parsed| {
            heartbeat.beat(|| format!("Counting objects: {parsed}\r"));
        });
    }
    // A want need not be a ref tip, but it must be reachable from one
    // (`allowReachableSHA1InWant`): CI checkouts fetch commits by SHA.
    let tips: Vec<ObjectId> = refs.iter().map(|r| r.oid).collect();
    if let Some(id) = unreachable_wants(&mut graph, &tips, &job.wants)?.first() {
        return Err(FetchError(format!("not our ref {id}")));
    }
    let mut deepen = job.deepen.clone();
    for name in &job.deepen_not_refs {
        let tip = refs
            .iter()
            .find(|r| {
                &r.name == name
                    || r.name == format!("refs/heads/{name}")
                    || r.name == format!("refs/tags/{name}")
            })
            .ok_or_else(|| FetchError(format!("git upload-pack: ambiguous deepen-not: {name}")))?;
        deepen.not.push(tip.oid);
    }
    if deepen.depth.is_some() && (deepen.since.is_some() || !deepen.not.is_empty()) {
        return Err(FetchError(
            "deepen and deepen-since (or deepen-not) cannot be used together".into(),
        ));
    }
    let plan = plan_shallow(&mut graph, &job.wants, &deepen)?;

    // v0 sends the shallow section before negotiation, in every request that deepens.
    if !job.v2 && deepen.is_deepen() {
        write_shallow_lines(out, &plan)?;
        out.write_all(pktline::FLUSH)?;
    }

    let commons: Vec<ObjectId> = job
        .haves
        .iter()
        .copied()
        .filter(|h| db.contains(h))
        .collect();
    let send_pack = if job.v2 {
        negotiate_v2(&mut graph, job, &commons, out)?
    } else {
        negotiate_v0(&mut graph, job, &commons, out)?
    };
    if !send_pack {
        out.flush()?;
        return Ok(());
    }

    if job.v2 {
        if deepen.is_deepen() || !deepen.client_shallow.is_empty() {
            pkt(out, "shallow-info\n")?;
            write_shallow_lines(out, &plan)?;
            out.write_all(pktline::DELIM)?;
        }
        pkt(out, "packfile\n")?;
    }
    *pack_started = true;
    heartbeat.start();
    send_pack_data(db, refs, job, &mut graph, &commons, &plan, &heartbeat)?;
    Ok(())
}

fn write_shallow_lines(out: &mut dyn Write, plan: &ShallowPlan) -> std::io::Result<()> {
    for id in &plan.shallow {
        pkt(out, &format!("shallow {id}\n"))?;
    }
    for id in &plan.unshallow {
        pkt(out, &format!("unshallow {id}\n"))?;
    }
    Ok(())
}

/// v0/v1 stateless negotiation; returns whether the pack follows.
fn negotiate_v0(
    graph: &mut Graph<'_>,
    job: &FetchJob,
    commons: &[ObjectId],
    out: &mut dyn Write,
) -> Result<bool, FetchError> {
    if !job.done && job.haves.is_empty() {
        // The request ended after the want section (the first round of a shallow
        // fetch): git's upload-pack answers only the shallow list, nothing more.
        return Ok(false);
    }
    for (i, id) in commons.iter().enumerate() {
        if job.multi_ack_detailed {
            pkt(out, &format!("ACK {id} common\n"))?;
        } else if job.multi_ack {
            pkt(out, &format!("ACK {id} continue\n"))?;
        } else if i == 0 {
            pkt(out, &format!("ACK {id}\n"))?;
        }
    }
    let last = commons.last();
    if job.done {
        match last {
            Some(id) if job.multi_ack || job.multi_ack_detailed => {
                pkt(out, &format!("ACK {id}\n"))?
            }
            Some(_) => {}
            None => pkt(out, "NAK\n")?,
        }
        return Ok(true);
    }
    let ready = match last {
        Some(_) if job.multi_ack_detailed => ok_to_give_up(graph, &job.wants, commons)?,
        _ => false,
    };
    if let (true, Some(id)) = (ready, last) {
        pkt(out, &format!("ACK {id} ready\n"))?;
    }
    if commons.is_empty() || job.multi_ack || job.multi_ack_detailed {
        pkt(out, "NAK\n")?;
    }
    if let (true, true, Some(id)) = (ready, job.no_done, last) {
        pkt(out, &format!("ACK {id}\n"))?;
        return Ok(true);
    }
    Ok(false)
}

/// v2 negotiation; returns whether the pack follows.
fn negotiate_v2(
    graph: &mut Graph<'_>,
    job: &FetchJob,
    commons: &[ObjectId],
    out: &mut dyn Write,
) -> Result<bool, FetchError> {
    if job.done || job.haves.is_empty() {
        return Ok(true);
    }
    pkt(out, "acknowledgments\n")?;
    if commons.is_empty() {
        pkt(out, "NAK\n")?;
    }
    for id in commons {
        pkt(out, &format!("ACK {id}\n"))?;
    }
    if !job.wait_for_done && ok_to_give_up(graph, &job.wants, commons)? {
        pkt(out, "ready\n")?;
        out.write_all(pktline::DELIM)?;
        return Ok(true);
    }
    out.write_all(pktline::FLUSH)?;
    Ok(false)
}

fn send_pack_data(
    db: &ObjectDb,
    refs: &[PeeledRef],
    job: &FetchJob,
    graph: &mut Graph<'_>,
    commons: &[ObjectId],
    plan: &ShallowPlan,
    heartbeat: &Heartbeat<'_, '_>,
) -> Result<(), FetchError> {
    // The response, written through the same cell the heartbeat speaks into.
    let mut out = Shared(heartbeat.shared);
    let mut sink = PackSink::new(&mut out, job.sideband);
    let progress = heartbeat.progress;
    if progress {
        sink.band(sideband::Band::Progress, b"Enumerating objects, done.\n")?;
    }
    let filter = match &job.filter {
        Some(spec) => Some(Filter::parse(spec).map_err(FetchError)?),
        None => None,
    };
    let mut options = WalkOptions {
        closed: None,
        filter,
        include_tags: if job.include_tag {
            refs.iter()
                .filter(|r| r.peeled.is_some())
                .map(|r| r.oid)
                .collect()
        } else {
            Vec::new()
        },
    };
    // A full clone that one stored pack answered before is answered by it again,
    // without walking the history (the answer depends on content only).
    let write_options = WriteOptions {
        ofs_delta: job.ofs_delta,
        thin: job.thin_pack,
        ..job.pack.clone()
    };
    let answer_key = (commons.is_empty() && plan.is_full() && options.filter.is_none())
        .then(|| whole_pack_key(&job.wants, &options.include_tags));
    if let Some(key) = &answer_key {
        // Compaction records the pack that holds exactly the closure of the refs it
        // saw; a full clone of those refs is that pack.
        let stored = db.closure_pack(key).cloned();
        if let Some(handle) = stored.or_else(|| known_whole_pack(db, key)) {
            if job.ofs_delta || !handle.has_ofs_deltas()? {
                if progress {
                    let line = format!(
                        "Counting objects: {}, done (answered by a stored pack).\n",
                        handle.num_objects()
                    );
                    sink.band(sideband::Band::Progress, line.as_bytes())?;
                }
                let stats = stream_pack(&handle, &mut sink, &mut |_, _, _| {})?;
                return finish_pack(&mut sink, &stats, progress, job);
            }
        }
    }
    // A clone asked for before (same commits, depth, filter) is answered from the
    // pack the first one wrote.
    let deepen = &job.deepen;
    let cacheable = commons.is_empty()
        && deepen.client_shallow.is_empty()
        && deepen.since.is_none()
        && deepen.not.is_empty()
        && job.deepen_not_refs.is_empty()
        && !deepen.relative;
    let cache_key = match (&job.cache, cacheable) {
        (Some((cache, repo_id)), true) => Some((
            cache,
            CacheKey {
                repo_id,
                wants: &job.wants,
                depth: deepen.depth,
                filter: job.filter.as_deref(),
                include_tags: &options.include_tags,
                ofs_delta: job.ofs_delta,
            }
            .digest(),
        )),
        _ => None,
    };
    if let Some((cache, key)) = &cache_key {
        if let Some((mut file, size)) = cache.get(key) {
            if progress {
                let line = format!("Reusing a cached pack of {size} bytes, done.\n");
                sink.band(sideband::Band::Progress, line.as_bytes())?;
            }
            std::io::copy(&mut file, &mut sink)?;
            sink.send_pending(true)?;
            if job.sideband.is_some() {
                sink.out.write_all(pktline::FLUSH)?;
            }
            sink.out.flush()?;
            return Ok(());
        }
    }
    // A clone of refs that moved on since the last compaction: the pack that holds
    // all of their old state goes out whole, and the walk covers only what is newer
    // (what reachability bitmaps give git). Only when the wants reach every tip
    // that pack was taken of: it must not carry anything the clone does not reach.
    // A `blob:none` clone takes that pack's commits, trees and tags the same way.
    let mut first = None;
    let mut from_first: Vec<WalkObject> = Vec::new();
    let blob_none = matches!(options.filter, Some(Filter::BlobNone));
    if commons.is_empty() && plan.is_full() && (options.filter.is_none() || blob_none) {
        let key = whole_pack_key(&job.wants, &options.include_tags);
        let base = match (db.closure_pack(&key), &job.closure) {
            (Some(pack), _) => Some(pack.clone()),
            (None, Some((pack, tips))) if !tips.is_empty() => {
                reaches_all(graph, &job.wants, tips, CLOSURE_SEARCH_LIMIT)?.then(|| pack.clone())
            }
            _ => None,
        };
        if let Some(pack) = base {
            if blob_none {
                // Wanted blobs would pass the filter: only commits and tags here.
                let mut all_commits = true;
                for want in &job.wants {
                    all_commits &= graph.peel_to_commit(want)?.is_some();
                }
                if all_commits {
                    from_first = pack
                        .kinds()?
                        .into_iter()
                        .filter(|(_, kind)| *kind != Kind::Blob)
                        .map(|(id, kind)| WalkObject::new(id, kind))
                        .collect();
                    options.closed = Some(pack);
                }
            } else if job.ofs_delta || !pack.has_ofs_deltas()? {
                options.closed = Some(pack.clone());
                first = Some(pack);
            }
        }
    }
    let mut outcome = enumerate(graph, &job.wants, commons, plan, &options)?;
    let stored = first
        .as_ref()
        .map_or(from_first.len(), |p| p.num_objects() as usize);
    if !from_first.is_empty() {
        from_first.append(&mut outcome.objects);
        outcome.objects = from_first;
    }
    if progress {
        let total = outcome.objects.len() + first.as_ref().map_or(0, |p| p.num_objects() as usize);
        let line = if stored > 0 {
            format!("Counting objects: {total}, done ({stored} from a stored pack).\n")
        } else {
            format!("Counting objects: {total}, done.\n")
        };
        sink.band(sideband::Band::Progress, line.as_bytes())?;
    }
    let mut tee = Tee {
        sink: &mut sink,
        fill: cache_key.as_ref().and_then(|(cache, key)| cache.fill(*key)),
    };
    let mut report = compress_progress(heartbeat);
    let stats = match &first {
        Some(pack) => write_pack_after(
            db,
            pack,
            &outcome.objects,
            &write_options,
            &mut tee,
            &mut report,
        )?,
        None => write_pack(
            db,
            &outcome.objects,
            Some(&outcome.client_has),
            &write_options,
            &mut tee,
            &mut report,
        )?,
    };
    // A pack streamed from the store as it is needs no second copy.
    if let (Some(fill), false) = (tee.fill.take(), stats.whole_pack) {
        fill.finish();
    }
    if let (Some(key), Some(pack), true) = (answer_key, stats.checksum, stats.whole_pack) {
        remember_whole_pack(key, pack);
    }
    finish_pack(&mut sink, &stats, progress, job)
}

/// The response, and a copy of the pack data for the cache.
struct Tee<'s, 'a> {
    sink: &'s mut PackSink<'a>,
    fill: Option<CacheFill>,
}

impl Write for Tee<'_, '_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.sink.write_all(data)?;
        if let Some(fill) = &mut self.fill {
            fill.copy(data);
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.sink.flush()
    }
}

fn finish_pack(
    sink: &mut PackSink<'_>,
    stats: &WriteStats,
    progress: bool,
    job: &FetchJob,
) -> Result<(), FetchError> {
    if progress {
        let line = format!(
            "Total {} (reused {}, deltas reused {}, new deltas {}), pack {} bytes\n",
            stats.objects, stats.reused, stats.reused_deltas, stats.new_deltas, stats.bytes
        );
        sink.band(sideband::Band::Progress, line.as_bytes())?;
    }
    sink.send_pending(true)?;
    if job.sideband.is_some() {
        sink.out.write_all(pktline::FLUSH)?;
    }
    sink.out.flush()?;
    Ok(())
}

/// Full clones that one stored pack answered exactly: digest of (wants, included
/// tags) → that pack's checksum. Commit ids and pack checksums name immutable
/// content, so an entry is never stale and holds for every repository that has
/// the pack; the map is bounded by starting afresh when full.
static WHOLE_PACK_ANSWERS: std::sync::Mutex<Option<HashMap<ObjectId, ObjectId>>> =
    std::sync::Mutex::new(None);
const WHOLE_PACK_ANSWERS_MAX: usize = 4096;

/// The key of a full clone's answer. When every tag `include-tag` could add is
/// wanted anyway, the answer is exactly the closure of the wants, the key
/// compaction records its packs under.
fn whole_pack_key(wants: &[ObjectId], include_tags: &[ObjectId]) -> ObjectId {
    use sha1::Digest;
    let wanted: std::collections::HashSet<&ObjectId> = wants.iter().collect();
    if include_tags.iter().all(|t| wanted.contains(t)) {
        return closure_key(wants);
    }
    let mut wants = wants.to_vec();
    wants.sort();
    wants.dedup();
    let mut tags = include_tags.to_vec();
    tags.sort();
    let mut hasher = sha1::Sha1::new();
    for id in &wants {
        hasher.update(id.as_bytes());
    }
    hasher.update(b"tags");
    for id in &tags {
        hasher.update(id.as_bytes());
    }
    ObjectId::from_bytes_or_panic(&hasher.finalize())
}

fn known_whole_pack(db: &ObjectDb, key: &ObjectId) -> Option<std::sync::Arc<PackHandle>> {
    let pack = {
        let answers = WHOLE_PACK_ANSWERS.lock().unwrap_or_else(|p| p.into_inner());
        *answers.as_ref()?.get(key)?
    };
    db.packs().iter().find(|p| *p.hash() == pack).cloned()
}

fn remember_whole_pack(key: ObjectId, pack: ObjectId) {
    let mut answers = WHOLE_PACK_ANSWERS.lock().unwrap_or_else(|p| p.into_inner());
    let map = answers.get_or_insert_with(HashMap::new);
    if map.len() >= WHOLE_PACK_ANSWERS_MAX {
        map.clear();
    }
    map.insert(key, pack);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_data_goes_out_in_full_sideband_packets() {
        let mut out = Vec::new();
        let mut sink = PackSink::new(&mut out, Some(sideband::SIDEBAND_64K_MAX));
        let piece = [7u8; 10];
        for _ in 0..20_000 {
            sink.write_all(&piece).unwrap();
        }
        sink.band(sideband::Band::Progress, b"done\n").unwrap();
        sink.flush().unwrap();
        // 200,000 data bytes: three full packets and one for the rest, then the message.
        let lengths: Vec<(usize, u8)> = packets(&out)
            .iter()
            .map(|(band, payload)| (payload.len() + 5, *band))
            .collect();
        assert_eq!(
            lengths,
            [(65520, 1), (65520, 1), (65520, 1), (3460, 1), (10, 2)]
        );
    }

    /// The sideband packets in `out`: (band, payload).
    fn packets(out: &[u8]) -> Vec<(u8, String)> {
        let mut reader = pktline::PktReader::new(out);
        let mut found = Vec::new();
        while let Some(pkt) = reader.read().unwrap() {
            let data = pkt.data().expect("only data packets");
            found.push((data[0], String::from_utf8_lossy(&data[1..]).into_owned()));
        }
        found
    }

    fn heartbeat<'r, 'w>(
        shared: &'r RefCell<&'w mut dyn Write>,
        progress: bool,
    ) -> Heartbeat<'r, 'w> {
        Heartbeat {
            shared,
            sideband: Some(sideband::SIDEBAND_64K_MAX),
            progress,
            since: Cell::new(None),
        }
    }

    fn quiet_for(seconds: u64) -> Option<Instant> {
        Instant::now().checked_sub(std::time::Duration::from_secs(seconds))
    }

    #[test]
    fn quiet_phases_speak_only_after_a_silence() {
        let mut out = Vec::new();
        {
            let shared: RefCell<&mut dyn Write> = RefCell::new(&mut out);
            let beat = heartbeat(&shared, true);
            // Before the pack phase, and right after something was said: nothing.
            beat.beat(|| "early\r".into());
            beat.start();
            beat.beat(|| "too soon\r".into());
            // After a silence: one line, and the clock starts again.
            beat.since.set(quiet_for(KEEPALIVE_SECS + 1));
            beat.beat(|| "Counting objects: 7\r".into());
            beat.beat(|| "again\r".into());
        }
        assert_eq!(packets(&out), [(2, "Counting objects: 7\r".to_string())]);
    }

    #[test]
    fn without_progress_a_silence_gets_an_empty_data_packet() {
        let mut out = Vec::new();
        {
            let shared: RefCell<&mut dyn Write> = RefCell::new(&mut out);
            let beat = heartbeat(&shared, false);
            beat.since.set(quiet_for(KEEPALIVE_SECS + 1));
            beat.beat(|| "Counting objects: 7\r".into());
            beat.say("Compressing objects: 100% (1/1), done.\n");
        }
        assert_eq!(out, b"0005\x01");
    }

    #[test]
    fn a_long_delta_search_reports_its_share_then_done_once() {
        let mut out = Vec::new();
        {
            let shared: RefCell<&mut dyn Write> = RefCell::new(&mut out);
            let beat = heartbeat(&shared, true);
            beat.start();
            let mut report = compress_progress(&beat);
            report(Phase::Compressing, 0, 400);
            beat.since.set(quiet_for(KEEPALIVE_SECS + 1));
            report(Phase::Compressing, 100, 400);
            report(Phase::Compressing, 200, 400);
            report(Phase::Compressing, 400, 400);
            report(Phase::Compressing, 400, 400);
            report(Phase::Writing, 10, 500);
        }
        assert_eq!(
            packets(&out),
            [
                (2, "Compressing objects: 25% (100/400)\r".to_string()),
                (
                    2,
                    "Compressing objects: 100% (400/400), done.\n".to_string()
                ),
            ]
        );
    }
}
