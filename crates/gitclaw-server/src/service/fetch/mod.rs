//! upload-pack: answering clone and fetch, in protocol v0/v1 (stateless RPC, as
//! over HTTP) and v2.
//!
//! [`upload_pack`] reads the request and prepares everything that needs the
//! database; the answer is then either complete ([`Answer::Bytes`]: `ls-refs`,
//! an empty request) or a [`Fetch`] whose [`Fetch::run`] writes the response on
//! a blocking thread, in this order: the wants are checked (each must be
//! reachable from a ref: CI fetches commits by SHA), the shallow boundary is
//! planned, the haves are negotiated ([`negotiate`]), the pack's source is
//! chosen ([`source::choose`]) and written ([`source::write`]) through the
//! sideband channel ([`sideband`]). A failure before the pack is an `ERR`
//! packet; after it started, a message on the error band.

pub mod limits;
pub mod negotiate;
pub mod sideband;
pub mod source;

use std::{cell::RefCell, io::Write, rc::Rc, sync::Arc};

use gitclaw_metadata::Repo;
use gitclaw_pack::{
    odb::{ObjectDb, PackHandle},
    walk::{plan_shallow, unreachable_wants, DeepenRequest, Filter, Graph},
    writer::WriteOptions,
    ObjectId,
};
use gitclaw_protocol::{pktline, sideband::Band, v0, v2, v2::Section};

pub use source::WholePackAnswers;

use crate::{
    app::AppState,
    error::{Fault, GitError, RequestId},
    metrics::Metrics,
    service::{
        advertise::{self, PeeledRef, UPLOAD_PACK_CAPABILITIES},
        bundles,
        response_cache::ResponseCache,
    },
};
use sideband::{Heartbeat, PackSink, Shared};

/// Upload-pack request bodies (wants and haves) larger than this are refused.
pub const MAX_NEGOTIATION_BYTES: usize = 32 * 1024 * 1024;

/// What upload-pack answers a request with.
pub enum Answer {
    /// The whole answer (`ls-refs`, an empty request).
    Bytes(Vec<u8>),
    /// A fetch, whose response [`Fetch::run`] writes.
    Fetch(Box<Fetch>),
}

/// One upload-pack request, ready to be answered on a blocking thread.
pub struct Fetch {
    db: ObjectDb,
    refs: Arc<Vec<PeeledRef>>,
    job: FetchJob,
    repo: String,
    /// To tell, when a stored object is missing, whether the repository was
    /// deleted while the fetch ran.
    meta: gitclaw_metadata::Metadata,
    request_id: RequestId,
    /// The request's span, entered again on the blocking thread.
    span: tracing::Span,
}

/// What the shared caches and settings give every fetch.
#[derive(Clone)]
pub struct FetchContext {
    /// The repository id that scopes the response cache's keys.
    pub repo_id: String,
    pub responses: Arc<ResponseCache>,
    pub answers: Arc<WholePackAnswers>,
    /// The configured delta search (window, depth); the client's capabilities
    /// decide the rest of how the pack is written.
    pub pack: WriteOptions,
    pub metrics: Arc<Metrics>,
    /// Turns to generate a pack; taken once no stored pack or cached response answers.
    pub generations: Arc<limits::PackGenerations>,
    /// For waiting for a turn from the blocking thread the fetch runs on.
    pub runtime: tokio::runtime::Handle,
}

/// What one upload-pack request asks for, in either protocol version.
pub struct FetchJob {
    pub v2: bool,
    pub wants: Vec<ObjectId>,
    pub haves: Vec<ObjectId>,
    pub done: bool,
    pub deepen: DeepenRequest,
    pub deepen_not_refs: Vec<String>,
    /// Partial clone filter.
    pub filter: Option<ClientFilter>,
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
    /// Annotated tags among the refs: what `include-tag` may add.
    pub tag_tips: Vec<ObjectId>,
    /// For a full clone: the newest pack recorded as the closure of some tips, and
    /// those tips.
    pub closure: Option<(Arc<PackHandle>, Vec<ObjectId>)>,
    pub context: FetchContext,
}

/// A partial clone's filter: the spec as the client wrote it (it keys cached
/// answers) and what it means.
pub struct ClientFilter {
    pub spec: String,
    pub filter: Filter,
}

impl ClientFilter {
    /// Parsed as the request is read, so that a spec GitClaw does not know is
    /// refused with an `ERR` before any answer, as git refuses one it does not
    /// allow ("remote error: …"), not on the error band once the pack began,
    /// which git clients report as a broken pack.
    fn parse(spec: Option<String>) -> Result<Option<ClientFilter>, GitError> {
        let Some(spec) = spec else { return Ok(None) };
        let filter = Filter::parse(&spec).map_err(GitError::BadRequest)?;
        Ok(Some(ClientFilter { spec, filter }))
    }
}

impl FetchJob {
    /// The client is shallow or becomes so (a depth, a date, or refs it is
    /// cut at): what its haves reach is then not all its own.
    pub fn shallow(&self) -> bool {
        self.deepen.makes_shallow() || !self.deepen_not_refs.is_empty()
    }

    /// No haves, no depth, no filter but `blob:none`: a clone of whole history.
    pub fn is_full_clone(&self) -> bool {
        self.haves.is_empty()
            && self.filter.as_ref().is_none_or(|f| f.spec == "blob:none")
            && !self.deepen.is_deepen()
            && self.deepen.client_shallow.is_empty()
            && self.deepen_not_refs.is_empty()
    }

    fn from_v2(args: v2::FetchArgs, context: FetchContext) -> Result<FetchJob, GitError> {
        Ok(FetchJob {
            v2: true,
            wants: args.wants,
            haves: args.haves,
            done: args.done,
            deepen: DeepenRequest {
                client_shallow: args.shallow,
                depth: args.deepen,
                relative: args.deepen_relative,
                since: args.deepen_since,
                not: Vec::new(),
                unreachable_shallow: Vec::new(),
            },
            deepen_not_refs: args.deepen_not,
            filter: ClientFilter::parse(args.filter)?,
            sideband: Some(gitclaw_protocol::sideband::SIDEBAND_64K_MAX),
            no_progress: args.no_progress,
            ofs_delta: args.ofs_delta,
            thin_pack: args.thin_pack,
            include_tag: args.include_tag,
            multi_ack: false,
            multi_ack_detailed: false,
            no_done: false,
            wait_for_done: args.wait_for_done,
            tag_tips: Vec::new(),
            closure: None,
            context,
        })
    }

    fn from_v0(req: v0::UploadRequest, context: FetchContext) -> Result<FetchJob, GitError> {
        let caps = &req.capabilities;
        let sideband = if caps.has("side-band-64k") {
            Some(gitclaw_protocol::sideband::SIDEBAND_64K_MAX)
        } else if caps.has("side-band") {
            Some(gitclaw_protocol::sideband::SIDEBAND_MAX)
        } else {
            None
        };
        Ok(FetchJob {
            v2: false,
            multi_ack: caps.has("multi_ack"),
            multi_ack_detailed: caps.has("multi_ack_detailed"),
            no_done: caps.has("no-done"),
            no_progress: caps.has("no-progress"),
            ofs_delta: caps.has("ofs-delta"),
            thin_pack: caps.has("thin-pack"),
            include_tag: caps.has("include-tag"),
            sideband,
            deepen: DeepenRequest {
                client_shallow: req.shallow,
                depth: req.deepen,
                relative: req.deepen_relative,
                since: req.deepen_since,
                not: Vec::new(),
                unreachable_shallow: Vec::new(),
            },
            deepen_not_refs: req.deepen_not,
            filter: ClientFilter::parse(req.filter)?,
            wants: req.wants,
            haves: req.haves,
            done: req.done,
            wait_for_done: false,
            tag_tips: Vec::new(),
            closure: None,
            context,
        })
    }
}

/// Read an upload-pack request (`version` from `Git-Protocol`) and prepare its answer.
pub async fn upload_pack(
    state: &AppState,
    repo: &Repo,
    version: u8,
    request: &[u8],
) -> Result<Answer, GitError> {
    let context = FetchContext {
        repo_id: repo.id.clone(),
        responses: state.responses.clone(),
        answers: state.answers.clone(),
        pack: state.config.write_options(),
        metrics: state.metrics.clone(),
        generations: state.generations.clone(),
        runtime: tokio::runtime::Handle::current(),
    };
    let mut job = if version == 2 {
        let Some(command) = v2::parse_command_request(request)? else {
            return Ok(Answer::Bytes(Vec::new()));
        };
        match command.command.as_str() {
            "ls-refs" => {
                let args = v2::LsRefsArgs::parse(&command.args)?;
                let refs = advertise::advertised_refs(state, repo).await?;
                return Ok(Answer::Bytes(advertise::ls_refs(repo, &refs, &args)?));
            }
            "fetch" => FetchJob::from_v2(v2::FetchArgs::parse(&command.args)?, context)?,
            "bundle-uri" if state.config.bundles.offer => {
                let bundle = bundles::offered(state, repo).await?;
                return Ok(Answer::Bytes(bundles::bundle_list(bundle.as_ref())?));
            }
            other => return Err(GitError::BadRequest(format!("unknown command '{other}'"))),
        }
    } else {
        let parsed = v0::parse_upload_request(request)?;
        if let Some(name) =
            advertise::unknown_capability(&parsed.capabilities, UPLOAD_PACK_CAPABILITIES)
        {
            return Err(GitError::BadRequest(format!("unknown capability '{name}'")));
        }
        FetchJob::from_v0(parsed, context)?
    };
    // Read once the request is known to be a fetch (and well-formed).
    let (refs, refs_cached) = advertise::advertised_refs_cached(state, repo).await?;
    job.tag_tips = refs
        .iter()
        .filter(|r| r.peeled.is_some())
        .map(|r| r.oid)
        .collect();
    // Lists at least as new as the refs: cached ones only beside cached refs.
    let db = crate::service::objects::object_db_with(state, repo, refs_cached).await?;
    if job.is_full_clone() {
        if let Some((_, pack)) = db.closure_packs().last() {
            match state.meta.closure_tips(&repo.id, pack.hash()).await {
                Ok(tips) => job.closure = Some((pack.clone(), tips)),
                Err(err) => {
                    tracing::warn!(error = %err, repo = %repo.id, "cannot read a pack's closure tips; walking instead")
                }
            }
        }
    }
    Ok(Answer::Fetch(Box::new(Fetch {
        db,
        refs,
        job,
        repo: format!("{}/{}", repo.owner, repo.name),
        meta: state.meta.clone(),
        request_id: RequestId::current(),
        span: tracing::Span::current(),
    })))
}

impl Fetch {
    /// Write the whole response to `out`. Blocking. A failure is reported to
    /// the client in git's terms and logged; whose fault it was is returned.
    pub fn run(self, out: &mut dyn Write) -> Option<Fault> {
        let (request_id, span) = (self.request_id.clone(), self.span.clone());
        span.in_scope(|| {
            request_id.scope_sync(|| {
                let mut pack_started = false;
                let shared = RefCell::new(out);
                let result = self
                    .respond(&shared, &mut pack_started)
                    .map_err(|err| self.deleted_meanwhile(err));
                let out = shared.into_inner();
                if let Err(err) = result {
                    err.log(&format!("fetch from {}", self.repo));
                    let message = format!("upload-pack: {}", err.client_message());
                    let mut report = Vec::new();
                    if pack_started && self.job.sideband.is_some() {
                        let mut sink = PackSink::new(out, self.job.sideband);
                        let _ = sink.band(Band::Error, format!("{message}\n").as_bytes());
                    } else if !pack_started {
                        pktline::write_err(&mut report, &message);
                    }
                    let _ = out.write_all(&report).and_then(|_| out.flush());
                    return Some(err.fault());
                }
                None
            })
        })
    }

    /// `err` as the client should read it: a stored object missing from a
    /// repository that no longer exists was deleted with it, by a deletion
    /// (through any server) while this fetch ran — not a fault of the server.
    fn deleted_meanwhile(&self, err: GitError) -> GitError {
        if !err.is_missing_stored_object() {
            return err;
        }
        let repo_id = &self.job.context.repo_id;
        match self
            .job
            .context
            .runtime
            .block_on(self.meta.get_repo_by_id(repo_id))
        {
            Ok(None) => GitError::Conflict(format!(
                "the repository {} was deleted while this fetch ran",
                self.repo
            )),
            _ => err,
        }
    }

    fn respond(
        &self,
        shared: &RefCell<&mut dyn Write>,
        pack_started: &mut bool,
    ) -> Result<(), GitError> {
        let (db, job, refs) = (&self.db, &self.job, &self.refs);
        let mut out = Shared(shared);
        let mut send = |bytes: &[u8]| out.write_all(bytes).map_err(GitError::ClientGone);
        // Looked up one by one below: on a fresh instance reading an index by
        // ranges, where they lie comes down in one batch first.
        if db.has_sparse_packs() {
            let ids: Vec<ObjectId> = job.wants.iter().chain(&job.haves).copied().collect();
            db.prefetch_lookups(&ids)?;
        }
        for want in &job.wants {
            if !db.contains(want)? {
                return Err(GitError::BadRequest(format!("not our ref {want}")));
            }
        }
        // A v2 request with haves but no wants that waits for `done` only
        // negotiates: `git fetch --negotiate-only` (what `push.negotiate`
        // runs) asks which of its commits the server has, and gets the
        // acknowledgments alone.
        let negotiate_only = job.v2 && job.wait_for_done && !job.done && !job.haves.is_empty();
        if job.wants.is_empty() && !negotiate_only {
            if job.v2 {
                send(pktline::FLUSH)?;
            }
            return Ok(());
        }
        let negotiation = tracing::info_span!("negotiate").entered();
        let mut graph = Graph::new(db);
        graph.know_peeled_tags(refs.iter().filter_map(|r| Some((r.oid, r.peeled?))));
        // Once the pack phase has begun (sideband open), long walks keep the client
        // hearing from us.
        let heartbeat = Rc::new(Heartbeat::new(shared, job.sideband, job.no_progress));
        {
            let heartbeat = heartbeat.clone();
            graph.on_progress(move |parsed| {
                heartbeat.beat(|| format!("Counting objects: {parsed}\r"));
            });
        }
        // A want need not be a ref tip, but it must be reachable from one
        // (`allowReachableSHA1InWant`).
        let tips: Vec<ObjectId> = refs.iter().map(|r| r.oid).collect();
        if let Some(id) = unreachable_wants(&mut graph, &tips, &job.wants)?.first() {
            return Err(GitError::BadRequest(format!("not our ref {id}")));
        }
        let mut deepen = job.deepen.clone();
        if deepen.relative && deepen.depth.is_some() {
            deepen.unreachable_shallow =
                unreachable_wants(&mut graph, &tips, &deepen.client_shallow)?;
        }
        for name in &job.deepen_not_refs {
            let tip = refs
                .iter()
                .find(|r| {
                    &r.name == name
                        || r.name == format!("refs/heads/{name}")
                        || r.name == format!("refs/tags/{name}")
                })
                .ok_or_else(|| GitError::BadRequest(format!("ambiguous deepen-not: {name}")))?;
            deepen.not.push(tip.oid);
        }
        if deepen.depth.is_some() && (deepen.since.is_some() || !deepen.not.is_empty()) {
            return Err(gitclaw_protocol::ProtocolError::ConflictingDeepen.into());
        }
        let plan = plan_shallow(&mut graph, &job.wants, &deepen)?;

        let mut lines = Vec::new();
        // v0 sends the shallow section before negotiation, in every request that deepens.
        if !job.v2 && deepen.is_deepen() {
            negotiate::shallow_lines(&mut lines, &plan);
            lines.extend_from_slice(pktline::FLUSH);
        }
        let mut commons: Vec<ObjectId> = Vec::new();
        for have in &job.haves {
            if db.contains(have)? {
                commons.push(*have);
            }
        }
        let send_pack = if job.v2 {
            negotiate::negotiate_v2(&mut graph, job, &commons, &mut lines)?
        } else {
            negotiate::negotiate_v0(&mut graph, job, &commons, &mut lines)?
        };
        if send_pack && job.v2 {
            if deepen.makes_shallow() {
                v2::write_section(&mut lines, Section::ShallowInfo);
                negotiate::shallow_lines(&mut lines, &plan);
                lines.extend_from_slice(pktline::DELIM);
            }
            v2::write_section(&mut lines, Section::Packfile);
        }
        send(&lines)?;
        drop(negotiation);
        if !send_pack {
            return out.flush().map_err(GitError::ClientGone);
        }
        *pack_started = true;
        job.context
            .metrics
            .fetch_shapes
            .with_label_values(&[shape(job, refs)])
            .inc();
        heartbeat.start();
        let source = tracing::info_span!("choose_pack_source")
            .in_scope(|| source::choose(db, job, &mut graph, &commons, &plan, &heartbeat))?;
        tracing::info_span!("write_pack", source = source.label())
            .in_scope(|| source::write(db, job, source, &heartbeat))
    }
}

/// The `shape` label of a fetch: a want that is no ref tip first (CI fetching
/// a commit by SHA), then a filter, a depth, haves, else a full clone.
fn shape(job: &FetchJob, refs: &[PeeledRef]) -> &'static str {
    let tip = |id: &ObjectId| refs.iter().any(|r| r.oid == *id);
    if !job.wants.iter().all(tip) {
        "by-sha"
    } else if job.filter.is_some() {
        "partial"
    } else if job.shallow() {
        "shallow"
    } else if !job.haves.is_empty() {
        "incremental"
    } else {
        "full"
    }
}
