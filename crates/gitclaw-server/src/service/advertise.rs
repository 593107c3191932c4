//! What a repository advertises: its refs (with what tags peel to) and the
//! capabilities of upload-pack and receive-pack, for `info/refs` and for the
//! v2 `ls-refs` command.
//!
//! Peeled values come from the database when it knows what every tag ref peels
//! to; otherwise the objects are read once and what they peel to is recorded
//! for every later advertisement (on any server).

use std::sync::Arc;

use gitclaw_metadata::{RefRecord, Repo};
use gitclaw_pack::{odb::ObjectDb, Kind, ObjectId};
use gitclaw_protocol::{capabilities::Capabilities, pktline, refs, v2};

use crate::{app::AppState, error::GitError};

/// Capabilities upload-pack advertises in v0/v1 (symref and agent are added per response).
pub const UPLOAD_PACK_CAPABILITIES: &[&str] = &[
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

/// Capabilities receive-pack advertises (besides `agent`).
pub const RECEIVE_PACK_CAPABILITIES: &[&str] = &[
    "report-status",
    "report-status-v2",
    "delete-refs",
    "side-band-64k",
    "quiet",
    "atomic",
    "ofs-delta",
    "push-options",
    "object-format=sha1",
];

pub fn agent() -> String {
    format!("agent=gitclaw/{}", env!("CARGO_PKG_VERSION"))
}

/// The v2 capability advertisement; `bundle-uri` when the server offers
/// bundles (`GITCLAW_BUNDLE_URIS`).
pub fn v2_capabilities(bundle_uri: bool) -> Vec<String> {
    let mut caps = vec![
        agent(),
        "ls-refs=unborn".into(),
        "fetch=shallow wait-for-done filter".into(),
        "server-option".into(),
        "object-format=sha1".into(),
    ];
    if bundle_uri {
        caps.push("bundle-uri".into());
    }
    caps
}

/// The first capability the client asked for that the server did not advertise.
pub fn unknown_capability<'a>(caps: &'a Capabilities, advertised: &[&str]) -> Option<&'a str> {
    caps.iter().map(|(name, _)| name).find(|name| {
        *name != "agent"
            && *name != "session-id"
            && !advertised
                .iter()
                .any(|a| a.split('=').next() == Some(*name))
    })
}

/// The service `info/refs` was asked to advertise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    UploadPack,
    ReceivePack,
}

/// A ref with its peeled value (for annotated tags).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PeeledRef {
    pub name: String,
    pub oid: ObjectId,
    pub peeled: Option<ObjectId>,
}

impl crate::service::shared_cache::Weigh for Vec<PeeledRef> {
    fn weigh(&self) -> usize {
        self.iter()
            .map(|r| std::mem::size_of::<PeeledRef>() + r.name.len())
            .sum()
    }
}

/// The body of `info/refs` for `service`, in the protocol version the client
/// asked for (push has no version 2 and answers in version 0).
pub async fn info_refs(
    state: &AppState,
    repo: &Repo,
    service: Service,
    version: u8,
) -> Result<Vec<u8>, GitError> {
    if service == Service::UploadPack && version == 2 {
        let caps = v2_capabilities(state.config.bundles.offer);
        return Ok(refs::advertise_v2_capabilities(&caps)?);
    }
    let mut body = refs::http_service_header(match service {
        Service::UploadPack => refs::Service::UploadPack,
        Service::ReceivePack => refs::Service::ReceivePack,
    });
    // Version 1 is version 0 behind a "version 1" line.
    if version == 1 {
        body.extend(refs::version1_line());
    }
    let advertisement = match service {
        Service::UploadPack => {
            let refs = advertised_refs(state, repo).await?;
            let mut caps: Vec<String> = UPLOAD_PACK_CAPABILITIES
                .iter()
                .map(|s| s.to_string())
                .collect();
            caps.push(agent());
            let head = refs
                .iter()
                .find(|r| r.name == repo.head_ref)
                .map(|r| (r.oid, repo.head_ref.as_str()));
            refs::advertise_v0(&as_advertised(&refs, true), head, &caps)
        }
        Service::ReceivePack => {
            // Push needs no peeled values.
            let refs: Vec<PeeledRef> = state
                .meta
                .list_refs(&repo.id)
                .await?
                .into_iter()
                .map(|r| PeeledRef {
                    name: r.name,
                    oid: r.oid,
                    peeled: None,
                })
                .collect();
            let mut caps: Vec<String> = RECEIVE_PACK_CAPABILITIES
                .iter()
                .map(|c| c.to_string())
                .collect();
            caps.push(agent());
            refs::advertise_v0(&as_advertised(&refs, false), None, &caps)
        }
    };
    body.extend(advertisement?);
    Ok(body)
}

fn as_advertised(refs: &[PeeledRef], peeled: bool) -> Vec<refs::AdvertisedRef> {
    refs.iter()
        .map(|r| refs::AdvertisedRef {
            name: r.name.clone(),
            oid: r.oid,
            peeled: if peeled { r.peeled } else { None },
        })
        .collect()
}

/// The answer to a v2 `ls-refs` command.
pub fn ls_refs(
    repo: &Repo,
    refs: &[PeeledRef],
    args: &v2::LsRefsArgs,
) -> Result<Vec<u8>, GitError> {
    let matches = |name: &str| {
        args.ref_prefixes.is_empty()
            || args
                .ref_prefixes
                .iter()
                .any(|p| name.starts_with(p.as_str()))
    };
    let symref = |wanted: bool| wanted.then_some(repo.head_ref.as_str());
    let mut out = Vec::new();
    if matches("HEAD") {
        match refs.iter().find(|r| r.name == repo.head_ref) {
            Some(head) => v2::write_ls_refs_line(
                &mut out,
                Some(&head.oid),
                "HEAD",
                symref(args.symrefs),
                None,
            )?,
            None if args.unborn => {
                v2::write_ls_refs_line(&mut out, None, "HEAD", symref(true), None)?
            }
            None => {}
        }
    }
    for r in refs.iter().filter(|r| matches(&r.name)) {
        let peeled = r.peeled.as_ref().filter(|_| args.peel);
        v2::write_ls_refs_line(&mut out, Some(&r.oid), &r.name, None, peeled)?;
    }
    out.extend_from_slice(pktline::FLUSH);
    Ok(out)
}

/// Refs with their peeled values; see the module doc.
pub async fn advertised_refs(
    state: &AppState,
    repo: &Repo,
) -> Result<Arc<Vec<PeeledRef>>, GitError> {
    Ok(advertised_refs_cached(state, repo).await?.0)
}

/// [`advertised_refs`], and whether they came from the metadata cache (this
/// instance's memory or Redis; either way of the version the request started
/// with: from the database they may be newer, and what is read with them must
/// be read from the database too).
pub async fn advertised_refs_cached(
    state: &AppState,
    repo: &Repo,
) -> Result<(Arc<Vec<PeeledRef>>, bool), GitError> {
    if let Some(refs) = state.shared.repo_entry("refs", repo).await {
        return Ok((refs, true));
    }
    let refs = Arc::new(read_advertised_refs(state, repo).await?);
    state
        .shared
        .put_repo_entry(&state.meta, "refs", repo, &refs)
        .await;
    Ok((refs, false))
}

/// [`advertised_refs`] from the database.
async fn read_advertised_refs(state: &AppState, repo: &Repo) -> Result<Vec<PeeledRef>, GitError> {
    let records = state.meta.list_refs(&repo.id).await?;
    let known = state.meta.peeled_refs(&repo.id).await?;
    let is_tag = |r: &RefRecord| r.name.starts_with("refs/tags/");
    if records
        .iter()
        .filter(|r| is_tag(r))
        .all(|r| known.contains_key(&r.oid))
    {
        return Ok(records
            .into_iter()
            .map(|r| {
                let peeled = known.get(&r.oid).filter(|p| **p != r.oid).copied();
                PeeledRef {
                    name: r.name,
                    oid: r.oid,
                    peeled,
                }
            })
            .collect());
    }
    // Refs read from the database: the objects they name are in lists read after.
    let db = crate::service::objects::object_db_with(state, repo, false).await?;
    let mut refs = crate::metrics::spawn_blocking(move || peel_refs(&db, records)).await?;
    // Other refs that name tag objects were peeled when they were pushed.
    for r in refs.iter_mut().filter(|r| r.peeled.is_none()) {
        r.peeled = known.get(&r.oid).filter(|p| **p != r.oid).copied();
    }
    let learned: Vec<_> = refs
        .iter()
        .filter(|r| r.name.starts_with("refs/tags/") && !known.contains_key(&r.oid))
        .map(|r| (r.oid, r.peeled.unwrap_or(r.oid)))
        .collect();
    if let Err(err) = state.meta.record_peeled(&repo.id, &learned).await {
        tracing::warn!(repo = %repo.id, error = %err, "cannot record peeled tags");
    }
    Ok(refs)
}

/// Peel every ref that points at a tag object. Blocking.
pub fn peel_refs(db: &ObjectDb, refs: Vec<RefRecord>) -> Vec<PeeledRef> {
    let mut reader = db.reader();
    refs.into_iter()
        .map(|r| {
            // Tags under other names were peeled as they were pushed (the caller
            // adds those); reading every branch tip just to learn it is a commit
            // would cost a read per ref.
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
