//! A revision's files as a tar or tar.gz archive (the API's `archive`
//! route): what `git archive` makes of it, which git cannot fetch over HTTP.
//!
//! The revision is resolved by [`revision::resolve`]. Making one takes a
//! pack-generation turn (see `fetch::limits`), so archives count against the
//! same limits as the packs they are as costly as.

use std::io::Write;

use gitclaw_metadata::Repo;
use gitclaw_pack::{
    archive::{
        commit_source, head_mailmap, write_archive, ArchiveFormat, ArchiveOptions, ArchiveRefs,
        ArchiveSummary,
    },
    odb::ObjectDb,
    ObjectId,
};

use crate::{
    app::AppState,
    error::GitError,
    service::{
        advertise::PeeledRef,
        fetch::limits::GenerationSlot,
        response_cache::{CacheFill, Lookup},
        revision::{self, Resolved},
    },
};

/// How archives are made, in their cache key and entity tag: another value
/// when the same commit's archive would have other bytes (v2: files are
/// converted as their `ident`, `text`, `eol` and `crlf` attributes ask; v3:
/// `export-subst` files get `$Format:…$` replaced).
const ARCHIVE_VERSION: &str = "gitclaw archive v3";

/// The longest prefix a caller may ask for.
pub const MAX_PREFIX_BYTES: usize = 256;

/// What the archive is wrapped in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Tar,
    TarGz,
    Zip,
}

impl Format {
    /// The format a file name's extension names, and the name without it.
    pub fn split(file: &str) -> Option<(&str, Format)> {
        [
            (".tar.gz", Format::TarGz),
            (".tgz", Format::TarGz),
            (".tar", Format::Tar),
            (".zip", Format::Zip),
        ]
        .into_iter()
        .find_map(|(ext, format)| file.strip_suffix(ext).map(|rest| (rest, format)))
        .filter(|(rest, _)| !rest.is_empty())
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Tar => "tar",
            Format::TarGz => "tar.gz",
            Format::Zip => "zip",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Tar => "application/x-tar",
            Format::TarGz => "application/gzip",
            Format::Zip => "application/zip",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Format::Tar => "tar",
            Format::TarGz => "tar.gz",
            Format::Zip => "zip",
        }
    }
}

/// An archive ready to be written: its revision resolved and its objects
/// open; [`Archive::take_turn`] before [`Archive::write`].
pub struct Archive {
    /// The commit archived.
    pub commit: ObjectId,
    pub format: Format,
    /// `NAME-REVISION.EXT`, for the download.
    pub file_name: String,
    db: ObjectDb,
    tree: ObjectId,
    options: ArchiveOptions,
    repo_id: String,
    /// What `export-subst` reads besides the commit (see [`subst_key`]).
    subst_key: ObjectId,
    turn: Option<GenerationSlot>,
}

/// Resolve `revision` in `repo`, to archive it with `prefix` (by default
/// `NAME-REVISION/`) before every path.
pub async fn prepare(
    state: &AppState,
    repo: &Repo,
    revision: &str,
    format: Format,
    prefix: Option<&str>,
) -> Result<Archive, GitError> {
    let prefix = match prefix {
        Some(prefix) => {
            check_prefix(prefix)?;
            prefix.to_string()
        }
        None => format!("{}-{}/", repo.name, revision.replace('/', "-")),
    };
    let Resolved { db, commit, refs } = revision::resolve(state, repo, revision).await?;
    let mut names: Vec<(String, ObjectId)> = refs.iter().map(|r| (r.name.clone(), r.oid)).collect();
    // git lists refs in byte order (a database may collate otherwise).
    names.sort_unstable();
    let archive_refs = ArchiveRefs {
        refs: names,
        head: Some(repo.head_ref.clone()),
    };
    let (db, tree, mtime, archive_refs, subst_key) = crate::metrics::spawn_blocking(move || {
        let (tree, mtime) = commit_source(&db, &commit)?;
        let mailmap = head_mailmap(&db, &archive_refs)?;
        let head = archive_refs.head.as_deref().unwrap_or_default();
        let key = subst_key(&refs, head, &commit, db.auto_abbrev_len(), mailmap);
        Ok::<_, GitError>((db, tree, mtime, archive_refs, key))
    })
    .await??;
    Ok(Archive {
        commit,
        format,
        file_name: format!(
            "{}-{}.{}",
            repo.name,
            revision.replace('/', "-"),
            format.extension()
        ),
        db,
        tree,
        options: ArchiveOptions {
            prefix: prefix.into_bytes(),
            commit: Some(commit),
            mtime,
            refs: archive_refs,
        },
        repo_id: repo.id.clone(),
        subst_key,
        turn: None,
    })
}

impl Archive {
    /// Wait for a pack-generation turn (refused when too many wait).
    pub async fn take_turn(mut self, state: &AppState) -> Result<Archive, GitError> {
        self.turn = Some(state.generations.acquire_async(&self.repo_id).await?);
        Ok(self)
    }

    /// Where the archive's bytes come from: the response cache, when an
    /// identical request made them earlier (no turn, no object read), or this
    /// request, in its turn, keeping a copy in the cache as it goes. (While an
    /// identical archive is being made, this one is made too, uncached.)
    pub async fn source(self, state: &AppState) -> Result<Source, GitError> {
        let (key, responses) = (self.cache_key(), state.responses.clone());
        // The lookup opens a cached file or makes a fill file: off the runtime.
        let found = crate::metrics::spawn_blocking(move || responses.lookup(key)).await?;
        let fill = match found {
            Lookup::Hit { file, size } => return Ok(Source::Cached { file, size }),
            Lookup::Follow(_) => None,
            Lookup::Lead(fill) => fill,
        };
        Ok(Source::Made {
            archive: Box::new(self.take_turn(state).await?),
            fill,
        })
    }

    /// The response cache's key of the archive's bytes.
    fn cache_key(&self) -> ObjectId {
        use sha1::Digest;
        let mut h = sha1::Sha1::new();
        // v2: files converted as their attributes ask (line ends, `$Id$`).
        h.update(ARCHIVE_VERSION.as_bytes());
        h.update(b"\0");
        h.update(self.repo_id.as_bytes());
        h.update(b"\0");
        h.update(self.commit.as_bytes());
        h.update(self.format.label().as_bytes());
        h.update(b"\0");
        h.update(&self.options.prefix);
        h.update(self.subst_key.as_bytes());
        ObjectId::from_bytes_or_panic(&h.finalize())
    }

    /// A strong validator of the archive's bytes: its commit, format and
    /// prefix decide them, with what `export-subst` reads of the refs
    /// ([`subst_key`]) and how this server makes archives
    /// ([`ARCHIVE_VERSION`]).
    pub fn etag(&self) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(&self.options.prefix);
        h.update(self.subst_key.as_bytes());
        let inputs: String = h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let version = ARCHIVE_VERSION.rsplit(' ').next().unwrap_or_default();
        format!(
            "\"{}-{}-{inputs}-{version}\"",
            self.commit,
            self.format.label()
        )
    }

    /// Write the archive to `out`. Blocking.
    fn write(self, out: &mut dyn Write) -> Result<ArchiveSummary, GitError> {
        match self.format {
            Format::Tar => Ok(write_archive(
                &self.db,
                self.tree,
                &self.options,
                ArchiveFormat::Tar,
                out,
            )?),
            Format::Zip => Ok(write_archive(
                &self.db,
                self.tree,
                &self.options,
                ArchiveFormat::Zip,
                out,
            )?),
            Format::TarGz => {
                let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
                let summary = write_archive(
                    &self.db,
                    self.tree,
                    &self.options,
                    ArchiveFormat::Tar,
                    &mut gz,
                )?;
                gz.finish().map_err(|source| GitError::Io {
                    context: "writing the archive",
                    source,
                })?;
                Ok(summary)
            }
        }
    }
}

/// An archive's bytes, cached or to be made.
pub enum Source {
    Cached {
        file: std::fs::File,
        size: u64,
    },
    Made {
        archive: Box<Archive>,
        fill: Option<CacheFill>,
    },
}

impl Source {
    /// The archive's length, when it is known before it is sent.
    pub fn size(&self) -> Option<u64> {
        match self {
            Source::Cached { size, .. } => Some(*size),
            Source::Made { .. } => None,
        }
    }

    /// Send the archive to `out`: what was made (`None` for a cached one).
    /// Blocking.
    pub fn write(self, out: &mut dyn Write) -> Result<Option<ArchiveSummary>, GitError> {
        let io = |source| GitError::Io {
            context: "sending the archive",
            source,
        };
        match self {
            Source::Cached { mut file, .. } => {
                std::io::copy(&mut file, out).map_err(io)?;
                Ok(None)
            }
            Source::Made { archive, fill } => {
                let mut tee = Tee { out, fill };
                let summary = archive.write(&mut tee)?;
                if let Some(fill) = tee.fill {
                    fill.finish(true);
                }
                Ok(Some(summary))
            }
        }
    }
}

/// The response, and a copy for the cache.
struct Tee<'a> {
    out: &'a mut dyn Write,
    fill: Option<CacheFill>,
}

impl Write for Tee<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.out.write_all(data)?;
        if let Some(fill) = &mut self.fill {
            fill.copy(data);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// A digest of what an archive's `export-subst` files may read besides the
/// commit and its history, so a cached archive or a validator is not reused
/// once it changed: the tags (`%(describe)`), the refs that name the commit
/// directly or through tags, HEAD's branch (decorations), git's automatic
/// abbreviation length (`%h`; an abbreviation lengthened because a later
/// object shares its first digits is not seen) and HEAD's `.mailmap` (`%aN`).
/// Pushes of other branches leave it as it was.
fn subst_key(
    refs: &[PeeledRef],
    head: &str,
    commit: &ObjectId,
    abbrev_len: usize,
    mailmap: Option<ObjectId>,
) -> ObjectId {
    use sha1::Digest;
    let mut h = sha1::Sha1::new();
    let replace = format!("refs/replace/{commit}");
    let mut read: Vec<&PeeledRef> = refs
        .iter()
        .filter(|r| {
            r.name.starts_with("refs/tags/")
                || r.oid == *commit
                || r.peeled == Some(*commit)
                || r.name == replace
        })
        .collect();
    // The same digest whatever order the database listed them in.
    read.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    for r in read {
        h.update(r.name.as_bytes());
        h.update(b"\0");
        h.update(r.oid.as_bytes());
    }
    h.update(head.as_bytes());
    h.update(b"\0");
    h.update((abbrev_len as u64).to_be_bytes());
    if let Some(mailmap) = mailmap {
        h.update(mailmap.as_bytes());
    }
    ObjectId::from_bytes_or_panic(&h.finalize())
}

/// A prefix may not lead out of the directory it is extracted in.
fn check_prefix(prefix: &str) -> Result<(), GitError> {
    let bad = prefix.len() > MAX_PREFIX_BYTES
        || prefix.starts_with('/')
        || prefix.split('/').any(|part| part == "..")
        || prefix.chars().any(|c| c.is_control());
    if bad {
        return Err(GitError::BadRequest(format!(
            "the prefix must be a relative path of at most {MAX_PREFIX_BYTES} bytes, \
             without '..' or control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_name_the_format() {
        assert_eq!(Format::split("main.tar.gz"), Some(("main", Format::TarGz)));
        assert_eq!(Format::split("v1.0.tgz"), Some(("v1.0", Format::TarGz)));
        assert_eq!(
            Format::split("feature/x.tar"),
            Some(("feature/x", Format::Tar))
        );
        assert_eq!(Format::split(".tar"), None);
        assert_eq!(Format::split("main.zip"), Some(("main", Format::Zip)));
        assert_eq!(Format::split("main.7z"), None);
    }

    #[test]
    fn prefixes_that_could_mislead_are_refused() {
        for bad in ["/abs/", "../up/", "a/../../b/", "a\0b"] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
        for good in ["", "app/", "app-", "a/b/"] {
            assert!(check_prefix(good).is_ok(), "{good:?}");
        }
        assert!(check_prefix(&"p".repeat(MAX_PREFIX_BYTES + 1)).is_err());
    }
}
