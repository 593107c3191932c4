//! The key layout of the object store, built in one place.
//!
//! - loose object: `{repo_id}/objects/{oid[0:2]}/{oid[2:]}`
//! - pack: `{repo_id}/pack/pack-{hash}.pack`, its index `{repo_id}/pack/pack-{hash}.idx`
//!   and, for a pack compaction wrote, the commit-graph of its commits
//!   `{repo_id}/pack/pack-{hash}.graph`
//! - Git LFS object: `{repo_id}/lfs/{oid[0:2]}/{oid[2:4]}/{oid}`, the oid being
//!   the SHA-256 of the content in 64 lowercase hex digits
//!
//! Keys can only be made by these constructors (or parsed back from one of these
//! shapes), so no caller can address anything outside a repository's prefix.

use gix_hash::{oid, ObjectId};

use crate::error::{Result, StorageError};

/// A repository's stable id, the first segment of all its keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoId(String);

impl RepoId {
    /// Accepts 1 to 64 characters of `[A-Za-z0-9_-]`.
    pub fn new(id: impl AsRef<str>) -> Result<RepoId> {
        let id = id.as_ref();
        let ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(RepoId(id.to_string()))
        } else {
            Err(StorageError::InvalidKey(format!(
                "'{}' is not a repository id",
                id.escape_default()
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `{repo_id}/`: everything the repository stores lies under it.
    pub fn prefix(&self) -> KeyPrefix {
        KeyPrefix(format!("{}/", self.0))
    }
}

impl std::fmt::Display for RepoId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A prefix of keys: one repository's `{repo_id}/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyPrefix(String);

impl KeyPrefix {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Git LFS object id: the SHA-256 of the object's content. Its text form is
/// 64 lowercase hex digits, the only form [`LfsOid::parse`] accepts.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LfsOid([u8; 32]);

impl LfsOid {
    /// The id written as 64 lowercase hex digits; anything else is `None`.
    pub fn parse(text: &str) -> Option<LfsOid> {
        let lower_hex = text.len() == 64
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !lower_hex {
            return None;
        }
        let mut raw = [0u8; 32];
        hex::decode_to_slice(text, &mut raw).ok()?;
        Some(LfsOid(raw))
    }

    /// The id of content whose SHA-256 digest is `digest`.
    pub fn from_digest(digest: [u8; 32]) -> LfsOid {
        LfsOid(digest)
    }

    /// The raw digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Display for LfsOid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::fmt::Debug for LfsOid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LfsOid({})", self.to_hex())
    }
}

/// What a key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    Loose {
        repo: RepoId,
        oid: ObjectId,
    },
    Pack {
        repo: RepoId,
        hash: ObjectId,
    },
    PackIndex {
        repo: RepoId,
        hash: ObjectId,
    },
    /// A pack's commit-graph: recorded when its pack is.
    PackGraph {
        repo: RepoId,
        hash: ObjectId,
    },
    /// A Git LFS object's content.
    Lfs {
        repo: RepoId,
        oid: LfsOid,
    },
}

/// A key of the layout.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn loose(repo: &RepoId, id: &oid) -> ObjectKey {
        let hex = id.to_hex().to_string();
        ObjectKey(format!("{repo}/objects/{}/{}", &hex[..2], &hex[2..]))
    }

    pub fn pack(repo: &RepoId, hash: &oid) -> ObjectKey {
        ObjectKey(format!("{repo}/pack/pack-{}.pack", hash.to_hex()))
    }

    pub fn pack_index(repo: &RepoId, hash: &oid) -> ObjectKey {
        ObjectKey(format!("{repo}/pack/pack-{}.idx", hash.to_hex()))
    }

    pub fn pack_graph(repo: &RepoId, hash: &oid) -> ObjectKey {
        ObjectKey(format!("{repo}/pack/pack-{}.graph", hash.to_hex()))
    }

    /// A Git LFS object's content.
    pub fn lfs(repo: &RepoId, oid: &LfsOid) -> ObjectKey {
        let hex = oid.to_hex();
        ObjectKey(format!("{repo}/lfs/{}/{}/{hex}", &hex[..2], &hex[2..4]))
    }

    /// Parse a key read back from a listing; only the shapes above are keys.
    pub fn parse(key: &str) -> Result<ObjectKey> {
        Self::kind_of(key)?;
        Ok(ObjectKey(key.to_string()))
    }

    pub fn kind(&self) -> KeyKind {
        // Constructed or parsed only from valid shapes.
        Self::kind_of(&self.0).unwrap_or_else(|_| unreachable!("ObjectKey holds a valid key"))
    }

    fn kind_of(key: &str) -> Result<KeyKind> {
        let bad =
            || StorageError::InvalidKey(format!("'{}' is not a GitClaw key", key.escape_default()));
        let parts: Vec<&str> = key.split('/').collect();
        let hex = |s: &str| {
            if s.len() == 40
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                ObjectId::from_hex(s.as_bytes()).ok()
            } else {
                None
            }
        };
        match parts.as_slice() {
            [repo, "objects", dir, rest] if dir.len() == 2 && rest.len() == 38 => {
                let repo = RepoId::new(repo).map_err(|_| bad())?;
                let oid = hex(&format!("{dir}{rest}")).ok_or_else(bad)?;
                Ok(KeyKind::Loose { repo, oid })
            }
            [repo, "lfs", a, b, name]
                if name.len() == 64 && name.get(..2) == Some(*a) && name.get(2..4) == Some(*b) =>
            {
                let repo = RepoId::new(repo).map_err(|_| bad())?;
                let oid = LfsOid::parse(name).ok_or_else(bad)?;
                Ok(KeyKind::Lfs { repo, oid })
            }
            [repo, "pack", file] => {
                let repo = RepoId::new(repo).map_err(|_| bad())?;
                let name = file.strip_prefix("pack-").ok_or_else(bad)?;
                if let Some(h) = name.strip_suffix(".pack") {
                    Ok(KeyKind::Pack {
                        repo,
                        hash: hex(h).ok_or_else(bad)?,
                    })
                } else if let Some(h) = name.strip_suffix(".idx") {
                    Ok(KeyKind::PackIndex {
                        repo,
                        hash: hex(h).ok_or_else(bad)?,
                    })
                } else if let Some(h) = name.strip_suffix(".graph") {
                    Ok(KeyKind::PackGraph {
                        repo,
                        hash: hex(h).ok_or_else(bad)?,
                    })
                } else {
                    Err(bad())
                }
            }
            _ => Err(bad()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bad_repo_ids_are_refused() {
        for id in ["", "a/b", "..", "a.b", "a b", &"x".repeat(65)] {
            assert!(RepoId::new(id).is_err(), "{id:?}");
        }
    }

    #[test]
    fn foreign_keys_do_not_parse() {
        for key in [
            "",
            "x",
            "a/objects/zz/0000",
            "a/pack/foo.pack",
            "../etc/passwd",
            "a/objects/ab/../../x",
            "a/lfs/00/11/0011",
            "a/lfs/00/12/0011000000000000000000000000000000000000000000000000000000000000",
            "a/lfs/AB/CD/ABCD000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert!(ObjectKey::parse(key).is_err(), "{key:?}");
        }
    }

    #[test]
    fn lfs_oids_are_64_lowercase_hex_digits() {
        let good = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";
        assert_eq!(
            LfsOid::parse(good).map(|o| o.to_hex()).as_deref(),
            Some(good)
        );
        for bad in [
            "",
            &good[..63],
            &format!("{good}0"),
            &good.to_uppercase(),
            &good.replace('4', "g"),
            &"é".repeat(32),
        ] {
            assert_eq!(LfsOid::parse(bad), None, "{bad:?}");
        }
    }

    proptest! {
        /// Keys follow the layout for any repo id and object id, parse back to
        /// themselves and lie under their repository's prefix.
        #[test]
        fn keys_follow_the_layout(repo in "[A-Za-z0-9_-]{1,64}", bytes in any::<[u8; 20]>()) {
            let repo = RepoId::new(&repo).unwrap();
            let id = ObjectId::from_bytes_or_panic(&bytes);
            let hex = id.to_hex().to_string();
            let loose = ObjectKey::loose(&repo, &id);
            prop_assert_eq!(loose.as_str(), format!("{repo}/objects/{}/{}", &hex[..2], &hex[2..]));
            prop_assert_eq!(loose.kind(), KeyKind::Loose { repo: repo.clone(), oid: id });
            let pack = ObjectKey::pack(&repo, &id);
            prop_assert_eq!(pack.as_str(), format!("{repo}/pack/pack-{hex}.pack"));
            prop_assert_eq!(pack.kind(), KeyKind::Pack { repo: repo.clone(), hash: id });
            let idx = ObjectKey::pack_index(&repo, &id);
            prop_assert_eq!(idx.as_str(), format!("{repo}/pack/pack-{hex}.idx"));
            let graph = ObjectKey::pack_graph(&repo, &id);
            prop_assert_eq!(graph.as_str(), format!("{repo}/pack/pack-{hex}.graph"));
            prop_assert_eq!(graph.kind(), KeyKind::PackGraph { repo: repo.clone(), hash: id });
            let mut digest = [0u8; 32];
            digest[..20].copy_from_slice(&bytes);
            let lfs_oid = LfsOid::from_digest(digest);
            let lfs_hex = lfs_oid.to_hex();
            let lfs = ObjectKey::lfs(&repo, &lfs_oid);
            prop_assert_eq!(lfs.as_str(), format!("{repo}/lfs/{}/{}/{lfs_hex}", &lfs_hex[..2], &lfs_hex[2..4]));
            prop_assert_eq!(lfs.kind(), KeyKind::Lfs { repo: repo.clone(), oid: lfs_oid });
            prop_assert_eq!(LfsOid::parse(&lfs_hex), Some(lfs_oid));
            for key in [&loose, &pack, &idx, &graph, &lfs] {
                prop_assert_eq!(&ObjectKey::parse(key.as_str()).unwrap(), key);
                prop_assert!(key.as_str().starts_with(repo.prefix().as_str()));
            }
        }
    }
}
