//! Scratch space on local disk: spooled pushes, packs being indexed, big loose
//! objects being streamed. Each process has a directory of its own, so a crash
//! leaves files only in a directory nobody holds, which the next start removes.

use std::path::PathBuf;

/// This process's scratch directory, `<root>/<id>/`, beside a lock file
/// `<root>/<id>.lock` held for as long as the process lives. Opening one first
/// removes the scratch directories whose lock nobody holds: their process died
/// (killed mid-push, say) and left its spooled packs behind. Entries without a
/// lock file come from older versions and are removed too.
pub struct Scratch {
    pub dir: PathBuf,
    lock: std::fs::File,
}

impl Scratch {
    pub fn open(root: &std::path::Path) -> std::io::Result<Scratch> {
        std::fs::create_dir_all(root)?;
        Scratch::remove_abandoned(root)?;
        loop {
            let id = uuid::Uuid::new_v4().simple().to_string();
            let lock = std::fs::OpenOptions::new()
                .create_new(true)
                .write(true)
                .open(root.join(format!("{id}.lock")))?;
            if lock.try_lock().is_err() {
                // Another process's clean-up got to it first: take another name.
                continue;
            }
            let dir = root.join(&id);
            std::fs::create_dir(&dir)?;
            return Ok(Scratch { dir, lock });
        }
    }

    fn remove_abandoned(root: &std::path::Path) -> std::io::Result<()> {
        for entry in std::fs::read_dir(root)? {
            let path = entry?.path();
            let Some(id) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".lock"))
                .map(str::to_string)
            else {
                continue;
            };
            let Ok(file) = std::fs::OpenOptions::new().write(true).open(&path) else {
                continue;
            };
            if file.try_lock().is_ok() {
                let dir = root.join(&id);
                if dir.exists() {
                    tracing::info!(dir = %dir.display(), "removing the scratch space of a process that ended");
                    std::fs::remove_dir_all(&dir)?;
                }
                std::fs::remove_file(&path)?;
            }
        }
        for entry in std::fs::read_dir(root)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".lock") || root.join(format!("{name}.lock")).exists() {
                continue;
            }
            tracing::info!(entry = %entry.path().display(), "removing scratch space left behind");
            if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let mut lock_path = self.dir.clone().into_os_string();
        lock_path.push(".lock");
        let _ = std::fs::remove_file(lock_path);
        let _ = self.lock.unlock();
    }
}
