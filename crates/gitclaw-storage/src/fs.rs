//! The filesystem backend: key K is the file `root/K`, its content type and
//! metadata a sidecar `root/K.meta`. Writes go to a temp file in the same
//! directory and are renamed into place, so readers never see a partial object.

use std::{
    collections::BTreeMap,
    io::{Read, Seek, SeekFrom, Write},
    ops::Range,
    path::{Path, PathBuf},
};

use async_trait::async_trait;
use bytes::Bytes;

use crate::{
    backend::{ObjectMeta, ObjectStorageBackend, PutOptions},
    error::{Result, StorageError},
    keys::{KeyPrefix, ObjectKey},
};

const META_SUFFIX: &str = ".meta";

/// Objects as files under one root directory.
#[derive(Debug, Clone)]
pub struct FilesystemBackend {
    root: PathBuf,
}

impl FilesystemBackend {
    /// Use (and create) `root`.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)
            .map_err(StorageError::io(format!("creating {}", root.display())))?;
        Ok(FilesystemBackend { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn meta_path(path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(META_SUFFIX);
        PathBuf::from(name)
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::Other(format!("storage task failed: {e}")))?
}

fn not_found_or(key: &str, context: &str) -> impl FnOnce(std::io::Error) -> StorageError {
    let key = key.to_string();
    let context = context.to_string();
    move |err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            StorageError::NotFound { key }
        } else {
            StorageError::Io {
                context,
                source: err,
            }
        }
    }
}

/// Write `write` into a temp file next to `dest` and rename it into place.
fn atomic_write(
    dest: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let dir = dest
        .parent()
        .ok_or_else(|| StorageError::InvalidKey(format!("{} has no parent", dest.display())))?;
    std::fs::create_dir_all(dir)
        .map_err(StorageError::io(format!("creating {}", dir.display())))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(StorageError::io(format!(
            "creating a temp file in {}",
            dir.display()
        )))?;
    write(tmp.as_file_mut()).map_err(StorageError::io(format!("writing {}", dest.display())))?;
    tmp.as_file_mut()
        .flush()
        .map_err(StorageError::io(format!("writing {}", dest.display())))?;
    tmp.persist(dest)
        .map_err(|e| StorageError::io(format!("renaming into {}", dest.display()))(e.error))?;
    Ok(())
}

fn encode_meta(opts: &PutOptions) -> String {
    let mut text = format!("{}\n", opts.content_type.as_deref().unwrap_or(""));
    for (k, v) in &opts.metadata {
        text.push_str(&format!("{k}={v}\n"));
    }
    text
}

fn read_meta(path: &Path) -> (Option<String>, BTreeMap<String, String>) {
    let Ok(text) = std::fs::read_to_string(FilesystemBackend::meta_path(path)) else {
        return (None, BTreeMap::new());
    };
    let mut lines = text.lines();
    let content_type = lines.next().filter(|l| !l.is_empty()).map(str::to_string);
    let metadata = lines
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (content_type, metadata)
}

fn meta_of(key: &str, path: &Path) -> Result<ObjectMeta> {
    let stat = std::fs::metadata(path).map_err(not_found_or(key, "reading metadata"))?;
    let (content_type, metadata) = read_meta(path);
    Ok(ObjectMeta {
        key: key.to_string(),
        size: stat.len(),
        content_type,
        metadata,
        last_modified: stat.modified().ok(),
    })
}

/// Every data file under `dir`, as keys relative to `root`.
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(StorageError::io(format!("listing {}", dir.display()))(err)),
    };
    for entry in entries {
        let entry = entry.map_err(StorageError::io(format!("listing {}", dir.display())))?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(StorageError::io("listing"))?;
        if file_type.is_dir() {
            walk(root, &path, out)?;
            continue;
        }
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".tmp-") || name.ends_with(META_SUFFIX) {
            continue;
        }
        if let Ok(rel) = path.strip_prefix(root) {
            let key = rel
                .to_string_lossy()
                .replace(std::path::MAIN_SEPARATOR, "/");
            if ObjectKey::parse(&key).is_ok() {
                out.push(key);
            }
        }
    }
    Ok(())
}

fn list_keys(root: &Path, prefix: &str) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    walk(root, &root.join(prefix), &mut keys)?;
    keys.sort();
    Ok(keys)
}

#[async_trait]
impl ObjectStorageBackend for FilesystemBackend {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    async fn put(&self, key: &ObjectKey, data: Bytes, opts: &PutOptions) -> Result<()> {
        let path = self.path_of(key.as_str());
        let meta = encode_meta(opts);
        blocking(move || {
            atomic_write(&FilesystemBackend::meta_path(&path), |f| {
                f.write_all(meta.as_bytes())
            })?;
            atomic_write(&path, |f| f.write_all(&data))
        })
        .await
    }

    async fn put_file(&self, key: &ObjectKey, source: &Path, opts: &PutOptions) -> Result<()> {
        let path = self.path_of(key.as_str());
        let meta = encode_meta(opts);
        let source = source.to_owned();
        blocking(move || {
            let mut input = std::fs::File::open(&source)
                .map_err(StorageError::io(format!("opening {}", source.display())))?;
            atomic_write(&FilesystemBackend::meta_path(&path), |f| {
                f.write_all(meta.as_bytes())
            })?;
            atomic_write(&path, |f| std::io::copy(&mut input, f).map(|_| ()))
        })
        .await
    }

    async fn put_owned_file(
        &self,
        key: &ObjectKey,
        source: &Path,
        opts: &PutOptions,
    ) -> Result<()> {
        let path = self.path_of(key.as_str());
        let meta = encode_meta(opts);
        let owned = source.to_owned();
        let moved = blocking(move || {
            let dir = path.parent().ok_or_else(|| {
                StorageError::InvalidKey(format!("{} has no parent", path.display()))
            })?;
            std::fs::create_dir_all(dir)
                .map_err(StorageError::io(format!("creating {}", dir.display())))?;
            atomic_write(&FilesystemBackend::meta_path(&path), |f| {
                f.write_all(meta.as_bytes())
            })?;
            // A rename within one file system replaces the key atomically.
            Ok(std::fs::rename(&owned, &path).is_ok())
        })
        .await?;
        if moved {
            Ok(())
        } else {
            // Another file system (or another failure a copy will name).
            self.put_file(key, source, opts).await
        }
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes> {
        let path = self.path_of(key.as_str());
        let key = key.as_str().to_string();
        blocking(move || {
            std::fs::read(&path)
                .map(Bytes::from)
                .map_err(not_found_or(&key, "reading"))
        })
        .await
    }

    async fn get_range(&self, key: &ObjectKey, range: Range<u64>) -> Result<Bytes> {
        let path = self.path_of(key.as_str());
        let key = key.as_str().to_string();
        blocking(move || {
            let mut file = std::fs::File::open(&path).map_err(not_found_or(&key, "opening"))?;
            let len = file
                .metadata()
                .map_err(StorageError::io("reading metadata"))?
                .len();
            if range.start >= len && !(len == 0 && range.start == 0) || range.end < range.start {
                return Err(StorageError::Other(format!(
                    "range {}..{} is outside {key} ({len} bytes)",
                    range.start, range.end
                )));
            }
            let end = range.end.min(len);
            file.seek(SeekFrom::Start(range.start))
                .map_err(StorageError::io("seeking"))?;
            let mut buf = Vec::with_capacity((end - range.start) as usize);
            file.take(end - range.start)
                .read_to_end(&mut buf)
                .map_err(StorageError::io("reading"))?;
            Ok(Bytes::from(buf))
        })
        .await
    }

    async fn get_to_file(&self, key: &ObjectKey, dest: &Path, _len: Option<u64>) -> Result<u64> {
        let path = self.path_of(key.as_str());
        let key = key.as_str().to_string();
        let dest = dest.to_owned();
        blocking(move || {
            let mut input = std::fs::File::open(&path).map_err(not_found_or(&key, "opening"))?;
            let mut copied = 0;
            atomic_write(&dest, |f| {
                copied = std::io::copy(&mut input, f)?;
                Ok(())
            })?;
            Ok(copied)
        })
        .await
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        let path = self.path_of(key.as_str());
        let key = key.as_str().to_string();
        blocking(move || meta_of(&key, &path)).await
    }

    async fn delete(&self, key: &ObjectKey) -> Result<()> {
        let path = self.path_of(key.as_str());
        blocking(move || {
            for p in [path.clone(), FilesystemBackend::meta_path(&path)] {
                match std::fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(err) => {
                        return Err(StorageError::io(format!("deleting {}", p.display()))(err))
                    }
                }
            }
            Ok(())
        })
        .await
    }

    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<ObjectMeta>> {
        let root = self.root.clone();
        let prefix = prefix.as_str().to_string();
        blocking(move || {
            list_keys(&root, &prefix)?
                .into_iter()
                .map(|key| {
                    let path = root.join(&key);
                    meta_of(&key, &path)
                })
                .collect()
        })
        .await
    }

    async fn delete_prefix(&self, prefix: &KeyPrefix) -> Result<u64> {
        let root = self.root.clone();
        let prefix = prefix.as_str().to_string();
        blocking(move || {
            let keys = list_keys(&root, &prefix)?;
            let dir = root.join(&prefix);
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    return Err(StorageError::io(format!("deleting {}", dir.display()))(err))
                }
            }
            Ok(keys.len() as u64)
        })
        .await
    }

    async fn copy_prefix(&self, from: &KeyPrefix, to: &KeyPrefix) -> Result<u64> {
        let root = self.root.clone();
        let (from, to) = (from.as_str().to_string(), to.as_str().to_string());
        blocking(move || {
            let keys = list_keys(&root, &from)?;
            for key in &keys {
                let suffix = &key[from.len()..];
                let src = root.join(key);
                let dst = root.join(format!("{to}{suffix}"));
                let meta = std::fs::read(FilesystemBackend::meta_path(&src)).unwrap_or_default();
                atomic_write(&FilesystemBackend::meta_path(&dst), |f| f.write_all(&meta))?;
                let mut input = std::fs::File::open(&src).map_err(not_found_or(key, "opening"))?;
                atomic_write(&dst, |f| std::io::copy(&mut input, f).map(|_| ()))?;
            }
            Ok(keys.len() as u64)
        })
        .await
    }

    fn local_path(&self, key: &ObjectKey) -> Option<PathBuf> {
        let path = self.path_of(key.as_str());
        path.is_file().then_some(path)
    }
}
