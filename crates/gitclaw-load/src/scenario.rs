//! One run of each scenario, request by request, as git would make them, with
//! every answer checked.
//!
//! A fetch shape is three requests, as a protocol v2 `git clone` or `git fetch`
//! makes them: the capability advertisement (`GET info/refs`), `ls-refs`, and
//! the `fetch` whose pack is checked while it streams (see `validate`). Then
//! the shape's own checks: the commits asked for are in the pack and the
//! commits the client has are not; a depth-1 answer holds exactly one commit;
//! a `blob:none` answer holds no blob; and the object count and shallow list
//! equal those of the first answer to the same request (the warm-up's), so an
//! answer that is fast because it is wrong shows up as an error.
//!
//! A push is two requests, as a protocol v0 `git push`: the receive-pack
//! advertisement, then the commands and a pack of one new commit (see
//! `push_pack`); its report-status must say `ok` for the branch.

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    path::PathBuf,
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use gitclaw_protocol::ObjectId;

use crate::{
    config::{Scenario, Verify},
    error::{ErrorKind, RunError},
    fetch_response::{read_fetch_answer, FetchAnswer},
    http::{GitHttp, Service, Traffic},
    pkt_stream::PktStream,
    push_pack::new_commit,
    stats::PushedRef,
    validate::{PackQuery, PackSink},
    wire::{self, FetchArgs, RefUpdate, RemoteRef, V2Capabilities},
};

/// Refs `ls-refs` asks for: what `git clone` asks for.
pub const REF_PREFIXES: [&str; 3] = ["HEAD", "refs/heads/", "refs/tags/"];

/// What the runs share: the client, what the setup learned about the
/// repository, and the first answer to each fetch request.
pub struct Target {
    pub http: GitHttp,
    pub verify: Verify,
    pub tmp_dir: Option<PathBuf>,
    /// The default branch (`refs/heads/main`): HEAD's target.
    pub default_branch: String,
    /// The commit `behind` first parents back from the default branch's tip
    /// (for `incremental` and `by-sha`).
    pub behind: Option<ObjectId>,
    /// Pushed branches start with this (`refs/heads/load/`).
    pub push_prefix: String,
    /// Names the branches of this run apart from earlier runs'.
    pub run_id: String,
    pub push_bytes: usize,
    expected: Mutex<HashMap<u64, Expected>>,
}

/// What the first answer to a fetch request held.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    objects: u64,
    shallow: Vec<ObjectId>,
}

impl Target {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        http: GitHttp,
        verify: Verify,
        tmp_dir: Option<PathBuf>,
        default_branch: String,
        push_prefix: String,
        run_id: String,
        push_bytes: usize,
    ) -> Target {
        Target {
            http,
            verify,
            tmp_dir,
            default_branch,
            behind: None,
            push_prefix: format!("refs/heads/{push_prefix}"),
            run_id,
            push_bytes,
            expected: Mutex::new(HashMap::new()),
        }
    }

    /// The prefix of every branch this run pushes.
    pub fn run_prefix(&self) -> String {
        format!("{}{}-", self.push_prefix, self.run_id)
    }

    /// Compares an answer with the first answer to the same request, which
    /// becomes the expectation when there is none yet.
    fn expect(
        &self,
        scenario: Scenario,
        args: &FetchArgs,
        answer: &FetchAnswer,
    ) -> Result<(), RunError> {
        let mut hasher = DefaultHasher::new();
        (
            scenario,
            args.wants.as_slice(),
            args.haves.as_slice(),
            args.deepen,
            &args.filter,
        )
            .hash(&mut hasher);
        let mut shallow = answer.shallow.clone();
        shallow.sort();
        let got = Expected {
            objects: answer.pack.objects,
            shallow,
        };
        let mut expected = self
            .expected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let first = expected
            .entry(hasher.finish())
            .or_insert_with(|| got.clone());
        if first.objects != got.objects {
            return Err(RunError::new(
                ErrorKind::WrongObjectCount,
                format!(
                    "{} objects, where the first answer to the same request had {}",
                    got.objects, first.objects
                ),
            ));
        }
        if first.shallow != got.shallow {
            return Err(RunError::malformed(format!(
                "shallow-info names {} commits, where the first answer named {}",
                got.shallow.len(),
                first.shallow.len()
            )));
        }
        Ok(())
    }
}

/// The capability advertisement (`GET info/refs`, protocol v2).
pub async fn advertise(target: &Target, traffic: &mut Traffic) -> Result<V2Capabilities, RunError> {
    let body = target
        .http
        .info_refs(Service::UploadPack, true, traffic)
        .await?;
    wire::parse_v2_advertisement(&body)
}

/// `ls-refs` of `prefixes`.
pub async fn ls_refs(
    target: &Target,
    caps: &V2Capabilities,
    prefixes: &[&str],
    traffic: &mut Traffic,
) -> Result<Vec<RemoteRef>, RunError> {
    let request = wire::ls_refs_request(caps, prefixes)?;
    let body = target
        .http
        .post_read(Service::UploadPack, true, request, traffic)
        .await?;
    wire::parse_ls_refs(&body)
}

/// The `ls-refs` scenario: the advertisement and the ref list, which must
/// name the default branch.
async fn list_refs(target: &Target, traffic: &mut Traffic) -> Result<(), RunError> {
    let caps = advertise(target, traffic).await?;
    let refs = ls_refs(target, &caps, &REF_PREFIXES, traffic).await?;
    default_tip(target, &refs)?;
    Ok(())
}

fn default_tip(target: &Target, refs: &[RemoteRef]) -> Result<ObjectId, RunError> {
    refs.iter()
        .find(|r| r.name == target.default_branch)
        .map(|r| r.oid)
        .ok_or_else(|| {
            RunError::malformed(format!(
                "ls-refs does not list the default branch {}",
                target.default_branch
            ))
        })
}

/// Every branch and tag, without the branches load runs push.
fn clone_wants(target: &Target, refs: &[RemoteRef]) -> Vec<ObjectId> {
    let mut wants: Vec<ObjectId> = refs
        .iter()
        .filter(|r| r.name.starts_with("refs/heads/") || r.name.starts_with("refs/tags/"))
        .filter(|r| !r.name.starts_with(&target.push_prefix))
        .map(|r| r.oid)
        .collect();
    wants.sort();
    wants.dedup();
    wants
}

/// The fetch request of a shape, given the refs listed.
fn fetch_args(
    target: &Target,
    scenario: Scenario,
    refs: &[RemoteRef],
) -> Result<FetchArgs, RunError> {
    let behind = || {
        target
            .behind
            .ok_or_else(|| RunError::new(ErrorKind::Local, "no commit behind the tip was learned"))
    };
    Ok(match scenario {
        Scenario::Full => FetchArgs {
            wants: clone_wants(target, refs),
            ..FetchArgs::default()
        },
        Scenario::BlobNone => FetchArgs {
            wants: clone_wants(target, refs),
            filter: Some("blob:none".into()),
            ..FetchArgs::default()
        },
        Scenario::Shallow => FetchArgs {
            wants: vec![default_tip(target, refs)?],
            deepen: Some(1),
            ..FetchArgs::default()
        },
        Scenario::Incremental => FetchArgs {
            wants: vec![default_tip(target, refs)?],
            haves: vec![behind()?],
            ..FetchArgs::default()
        },
        Scenario::BySha => FetchArgs {
            wants: vec![behind()?],
            deepen: Some(1),
            ..FetchArgs::default()
        },
        Scenario::LsRefs | Scenario::Push => {
            return Err(RunError::new(ErrorKind::Local, "not a fetch shape"))
        }
    })
}

/// Sends one fetch request and reads its answer, checking the pack with
/// `query` (the wants and haves are looked for in it).
pub async fn fetch(
    target: &Target,
    caps: &V2Capabilities,
    args: &FetchArgs,
    mut query: PackQuery,
    verify: Verify,
    traffic: &mut Traffic,
) -> Result<FetchAnswer, RunError> {
    let request = wire::fetch_request(caps, args)?;
    let body = target
        .http
        .post(Service::UploadPack, true, request, traffic)
        .await?;
    query.look_for = args.wants.iter().chain(&args.haves).copied().collect();
    let sink = PackSink::start(verify, target.tmp_dir.clone(), query);
    let mut stream = PktStream::new(body);
    let answer = read_fetch_answer(&mut stream, sink).await;
    traffic.received += stream.received();
    let answer = answer?;
    if let Some(present) = &answer.pack.present {
        let (wanted, had) = present.split_at(args.wants.len());
        if let Some(i) = wanted.iter().position(|p| !p) {
            return Err(RunError::bad_pack(format!(
                "the pack lacks {}, which was asked for",
                args.wants[i]
            )));
        }
        if let Some(i) = had.iter().position(|p| *p) {
            return Err(RunError::bad_pack(format!(
                "the pack holds {}, which the client said it has",
                args.haves[i]
            )));
        }
    }
    Ok(answer)
}

/// A fetch scenario: advertisement, `ls-refs`, fetch, checks.
async fn fetch_shape(
    target: &Target,
    scenario: Scenario,
    traffic: &mut Traffic,
) -> Result<(), RunError> {
    let caps = advertise(target, traffic).await?;
    let refs = ls_refs(target, &caps, &REF_PREFIXES, traffic).await?;
    let args = fetch_args(target, scenario, &refs)?;
    let query = PackQuery {
        // Only a clone of whole history must hold everything its objects name.
        complete: scenario == Scenario::Full,
        ..PackQuery::default()
    };
    let answer = fetch(target, &caps, &args, query, target.verify, traffic).await?;
    if let Some(kinds) = answer.pack.kinds {
        if args.deepen == Some(1) && kinds.commits != 1 {
            return Err(RunError::bad_pack(format!(
                "{} commits in an answer of depth 1 to one want",
                kinds.commits
            )));
        }
        if args.filter.as_deref() == Some("blob:none") && kinds.blobs != 0 {
            return Err(RunError::bad_pack(format!(
                "{} blobs in an answer to filter blob:none",
                kinds.blobs
            )));
        }
    }
    if args.deepen.is_some() && answer.shallow.iter().any(|s| !args.wants.contains(s)) {
        return Err(RunError::malformed(
            "shallow-info names a commit other than the one asked for at depth 1",
        ));
    }
    target.expect(scenario, &args, &answer)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Capabilities a push or delete sends: those wanted that the server offers.
fn push_capabilities<'a>(advert: &wire::ReceiveAdvertisement, wanted: &[&'a str]) -> Vec<&'a str> {
    let mut caps: Vec<&str> = wanted.iter().copied().filter(|c| advert.has(c)).collect();
    if advert.capabilities.iter().any(|c| c.starts_with("agent=")) {
        caps.push(concat!("agent=gitclaw-load/", env!("CARGO_PKG_VERSION")));
    }
    caps
}

/// The receive-pack advertisement, which must offer report-status.
pub async fn receive_advertisement(
    target: &Target,
    traffic: &mut Traffic,
) -> Result<wire::ReceiveAdvertisement, RunError> {
    let body = target
        .http
        .info_refs(Service::ReceivePack, false, traffic)
        .await?;
    let advert = wire::parse_receive_advertisement(&body)?;
    if !advert.has("report-status") {
        return Err(RunError::malformed(
            "receive-pack does not offer report-status",
        ));
    }
    Ok(advert)
}

/// Sends receive-pack commands (and a pack) and returns the report-status.
async fn send_commands(
    target: &Target,
    advert: &wire::ReceiveAdvertisement,
    updates: &[RefUpdate],
    extra_caps: &[&str],
    pack: Option<&[u8]>,
    traffic: &mut Traffic,
) -> Result<wire::PushReport, RunError> {
    let mut wanted = vec!["report-status", "side-band-64k"];
    wanted.extend_from_slice(extra_caps);
    let caps = push_capabilities(advert, &wanted);
    let request = wire::push_request(updates, &caps, pack)?;
    let answer = target
        .http
        .post_read(Service::ReceivePack, false, request, traffic)
        .await?;
    let report = if caps.contains(&"side-band-64k") {
        wire::parse_report_status(&wire::demux_sideband(&answer)?)?
    } else {
        wire::parse_report_status(&answer)?
    };
    if let Some(refusal) = report.refusal() {
        return Err(RunError::new(ErrorKind::PushRejected, refusal));
    }
    for update in updates {
        if !report.refs.iter().any(|(name, _)| *name == update.name) {
            return Err(RunError::malformed(format!(
                "report-status does not mention {}",
                update.name
            )));
        }
    }
    Ok(report)
}

/// The push scenario: a new branch holding one new commit on the default
/// branch's tip (a root commit when there is none).
async fn push(
    target: &Target,
    worker: usize,
    seq: u64,
    traffic: &mut Traffic,
) -> Result<PushedRef, RunError> {
    let advert = receive_advertisement(target, traffic).await?;
    let parent = advert.target(&target.default_branch);
    let mut content = vec![0u8; target.push_bytes];
    fastrand::Rng::new().fill(&mut content);
    let name = format!("{}w{worker}-{seq}", target.run_prefix());
    let made = new_commit(
        parent,
        &content,
        &format!("load test push to {name}"),
        now_secs(),
    );
    let update = RefUpdate {
        old: wire::zero_oid(),
        new: made.commit,
        name: name.clone(),
    };
    send_commands(target, &advert, &[update], &[], Some(&made.pack), traffic).await?;
    Ok(PushedRef {
        name,
        commit: made.commit.to_string(),
    })
}

/// Deletes pushed branches, a few hundred a request.
pub async fn delete_branches(
    target: &Target,
    branches: &[PushedRef],
    traffic: &mut Traffic,
) -> Result<(), RunError> {
    if branches.is_empty() {
        return Ok(());
    }
    let advert = receive_advertisement(target, traffic).await?;
    if !advert.has("delete-refs") {
        return Err(RunError::new(
            ErrorKind::PushRejected,
            "receive-pack does not offer delete-refs",
        ));
    }
    for batch in branches.chunks(500) {
        let updates = batch
            .iter()
            .map(|b| {
                Ok(RefUpdate {
                    old: wire::parse_oid(b.commit.as_bytes())?,
                    new: wire::zero_oid(),
                    name: b.name.clone(),
                })
            })
            .collect::<Result<Vec<_>, RunError>>()?;
        send_commands(target, &advert, &updates, &["delete-refs"], None, traffic).await?;
    }
    Ok(())
}

/// The pushed branches that `ls-refs` does not list with their commit.
pub async fn missing_branches(
    target: &Target,
    branches: &[PushedRef],
    traffic: &mut Traffic,
) -> Result<Vec<PushedRef>, RunError> {
    let caps = advertise(target, traffic).await?;
    let prefix = target.run_prefix();
    let listed = ls_refs(target, &caps, &[prefix.as_str()], traffic).await?;
    Ok(branches
        .iter()
        .filter(|b| {
            !listed
                .iter()
                .any(|r| r.name == b.name && r.oid == b.commit.as_str())
        })
        .cloned()
        .collect())
}

/// One run of `scenario`; a push returns the branch it made.
pub async fn run_once(
    target: &Target,
    scenario: Scenario,
    worker: usize,
    seq: u64,
    traffic: &mut Traffic,
) -> Result<Option<PushedRef>, RunError> {
    match scenario {
        Scenario::LsRefs => list_refs(target, traffic).await.map(|()| None),
        Scenario::Push => push(target, worker, seq, traffic).await.map(Some),
        shape => fetch_shape(target, shape, traffic).await.map(|()| None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config::Config, validate::PackSummary};

    fn target() -> Target {
        let config = Config::new("http://127.0.0.1:9/o/r.git", "full".parse().unwrap());
        Target::new(
            GitHttp::new(&config).unwrap(),
            Verify::Full,
            None,
            "refs/heads/main".into(),
            "load/".into(),
            "abc123".into(),
            10,
        )
    }

    fn answer(objects: u64, shallow: &[ObjectId]) -> FetchAnswer {
        FetchAnswer {
            shallow: shallow.to_vec(),
            pack: PackSummary {
                objects,
                ..PackSummary::default()
            },
            pack_bytes: 0,
        }
    }

    fn oid(byte: u8) -> ObjectId {
        ObjectId::from_bytes_or_panic(&[byte; 20])
    }

    #[test]
    fn a_later_answer_with_another_object_count_is_wrong() {
        let target = target();
        let args = FetchArgs {
            wants: vec![oid(1)],
            ..FetchArgs::default()
        };
        target
            .expect(Scenario::Full, &args, &answer(120, &[]))
            .unwrap();
        target
            .expect(Scenario::Full, &args, &answer(120, &[]))
            .unwrap();
        let err = target
            .expect(Scenario::Full, &args, &answer(119, &[]))
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::WrongObjectCount);
        assert!(
            err.message.contains("119") && err.message.contains("120"),
            "{err}"
        );
        // Another request (other wants, other shape) has its own expectation.
        let other = FetchArgs {
            wants: vec![oid(2)],
            ..FetchArgs::default()
        };
        target
            .expect(Scenario::Full, &other, &answer(5, &[]))
            .unwrap();
        target
            .expect(Scenario::BlobNone, &args, &answer(60, &[]))
            .unwrap();
    }

    #[test]
    fn a_later_answer_with_another_shallow_list_is_malformed() {
        let target = target();
        let args = FetchArgs {
            wants: vec![oid(1)],
            deepen: Some(1),
            ..FetchArgs::default()
        };
        target
            .expect(Scenario::Shallow, &args, &answer(3, &[oid(1)]))
            .unwrap();
        let err = target
            .expect(Scenario::Shallow, &args, &answer(3, &[]))
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Malformed);
    }

    #[test]
    fn clones_want_branches_and_tags_but_not_the_branches_of_load_runs() {
        let target = target();
        let line = |name: &str, byte| RemoteRef {
            name: name.into(),
            oid: oid(byte),
            peeled: None,
            symref_target: None,
        };
        let refs = [
            line("HEAD", 1),
            line("refs/heads/main", 1),
            line("refs/heads/topic", 2),
            line("refs/tags/v1", 3),
            line("refs/heads/load/abc123-w0-1", 4),
            line("refs/heads/load/old-w1-7", 5),
        ];
        assert_eq!(clone_wants(&target, &refs), vec![oid(1), oid(2), oid(3)]);
        assert_eq!(default_tip(&target, &refs).unwrap(), oid(1));
        let shallow = fetch_args(&target, Scenario::Shallow, &refs).unwrap();
        assert_eq!((shallow.wants, shallow.deepen), (vec![oid(1)], Some(1)));
        // Without the commit behind the tip, incremental cannot be asked for.
        assert_eq!(
            fetch_args(&target, Scenario::Incremental, &refs)
                .unwrap_err()
                .kind,
            ErrorKind::Local
        );
    }
}
