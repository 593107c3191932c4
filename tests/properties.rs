//! Two storage rules, through the real push path:
//!
//! - a push of N new objects stores a pack + idx when N > 10, loose objects when N ≤ 10;
//! - every stored pack has its idx, and the idx maps every object to its offset.

mod common;

use std::{path::Path, sync::OnceLock};

use common::*;
use proptest::prelude::*;

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(Server::start)
}

fn files_under(dir: &Path, sub: &str, ext: Option<&str>) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let root = dir.join(sub);
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if ext.is_none_or(|x| p.extension().is_some_and(|e| e == x)) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn loose_count(repo_dir: &Path) -> usize {
    files_under(repo_dir, "objects", None)
        .iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.len() == 38 && !n.to_string_lossy().contains('.'))
        })
        .count()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn pack_or_loose_by_count_and_every_pack_has_a_full_index(new_files in 1usize..24, seed in any::<u32>()) {
        let server = server();
        let name = format!("p{seed}-{new_files}-{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
        let url = server.create_repo("props", &name);
        let work = tempfile::tempdir().unwrap();
        let src = work.path();
        git(src, &["init", "-q", "-b", "main"]);
        commit_file(src, "base.txt", "base\n", "base");
        git(src, &["push", "-q", &url, "main"]);
        let repo_dir = server.repo_dir("props", &name);
        let loose_before = loose_count(&repo_dir);
        let packs_before = files_under(&repo_dir, "pack", Some("pack")).len();

        for i in 0..new_files {
            std::fs::write(src.join(format!("f{i}.txt")), format!("{seed} {i}\n")).unwrap();
        }
        git(src, &["add", "-A"]);
        git(src, &["commit", "-q", "-m", "new files"]);
        let new_objects = git(src, &["rev-list", "--objects", "main", "--not", "main@{1}"]).lines().count();
        git(src, &["push", "-q", &url, "main"]);

        let loose_after = loose_count(&repo_dir);
        let packs_after = files_under(&repo_dir, "pack", Some("pack")).len();
        if new_objects > 10 {
            prop_assert_eq!(packs_after, packs_before + 1, "{} new objects → one pack", new_objects);
            prop_assert_eq!(loose_after, loose_before);
        } else {
            prop_assert_eq!(packs_after, packs_before);
            prop_assert_eq!(loose_after, loose_before + new_objects, "{} new objects → loose", new_objects);
        }

        // Every stored pack of the repository has an idx that maps each object to its offset.
        for pack in files_under(&repo_dir, "pack", Some("pack")) {
            let idx = pack.with_extension("idx");
            prop_assert!(idx.exists(), "{} has its index", pack.display());
            let verify = git(work.path(), &["verify-pack", "-v", idx.to_str().unwrap()]);
            let listed = verify.lines().filter(|l| l.len() > 40 && l.as_bytes()[40] == b' ').count();
            let header = std::fs::read(&pack).unwrap();
            let count = u32::from_be_bytes([header[8], header[9], header[10], header[11]]) as usize;
            prop_assert_eq!(listed, count, "the idx maps every object of the pack");
        }
    }
}
