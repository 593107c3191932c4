//! Commits, trees and tags as the walk reads them — arbitrary bytes and
//! structured objects linking to each other (missing targets, wrong kinds,
//! odd modes and names, tags of tags) — through the fsck checks a push applies
//! and then the whole fetch walk: reachability of wants, the shallow plan
//! (depth, since, not) and enumeration with each filter; then archives (tar
//! and zip, `.gitattributes` files included) of the commits' trees and a fuzzed
//! `export-subst` format expanded for them, a path
//! looked up in them, their listings and their diffs; the log of a commit
//! (whole and of a path), a range of two, and the fsck's reachability check.
#![no_main]
use arbitrary::Arbitrary;
use gitclaw_fuzz::{db_of, MemLoose};
use gitclaw_pack::{
    archive::{
        commit_source, substitute, write_archive, ArchiveFormat, ArchiveOptions, ArchiveRefs,
    },
    files::{diff_trees, find_path, list_tree},
    fsck::{check_object, FsckLevel},
    renames::{detect_renames, RenameLimits},
    verify::verify_reachable,
    walk::{
        enumerate, log, plan_shallow, range, unreachable_wants, DeepenRequest, Filter, Graph,
        LogRequest, WalkOptions,
    },
    Kind, ObjectId,
};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Object {
    Raw {
        kind: u8,
        data: Vec<u8>,
    },
    Commit {
        tree: u8,
        parents: Vec<u8>,
        time: i64,
        extra: Vec<u8>,
    },
    Tree {
        entries: Vec<(u8, Vec<u8>, u8)>,
    },
    Tag {
        target: u8,
        kind: u8,
        extra: Vec<u8>,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    objects: Vec<Object>,
    wants: Vec<u8>,
    haves: Vec<u8>,
    depth: Option<u8>,
    since: Option<i64>,
    not: Vec<u8>,
    filter: u8,
    filter_arg: u16,
    /// An `export-subst` format, expanded for the commits archived.
    format: Vec<u8>,
}

const KINDS: [Kind; 4] = [Kind::Commit, Kind::Tree, Kind::Blob, Kind::Tag];
const MODES: [&str; 7] = ["100644", "100755", "40000", "120000", "160000", "644", "0"];

/// The id of object `n` among those made so far, or a missing one.
fn pick(ids: &[ObjectId], n: u8) -> ObjectId {
    match ids.get(n as usize) {
        Some(id) => *id,
        None => ObjectId::from_bytes_or_panic(&[n; 20]),
    }
}

fuzz_target!(|input: Input| {
    let mut loose = MemLoose::default();
    let mut ids = Vec::new();
    for object in input.objects.iter().take(64) {
        let (kind, data) = match object {
            Object::Raw { kind, data } => (KINDS[*kind as usize % 4], data.clone()),
            Object::Commit {
                tree,
                parents,
                time,
                extra,
            } => {
                let mut text = format!("tree {}\n", pick(&ids, *tree));
                for p in parents.iter().take(8) {
                    text.push_str(&format!("parent {}\n", pick(&ids, *p)));
                }
                text.push_str(&format!(
                    "author A <a@b> {time} +0000\ncommitter C <c@d> {time} +0000\n\n"
                ));
                let mut data = text.into_bytes();
                data.extend_from_slice(extra);
                (Kind::Commit, data)
            }
            Object::Tree { entries } => {
                let mut data = Vec::new();
                for (mode, name, target) in entries.iter().take(16) {
                    data.extend_from_slice(MODES[*mode as usize % MODES.len()].as_bytes());
                    data.push(b' ');
                    // A name of one 0xff byte stands for `.gitattributes`, so
                    // archives meet attribute files (another entry's blob).
                    if name.as_slice() == [0xff] {
                        data.extend_from_slice(b".gitattributes");
                    } else {
                        data.extend_from_slice(name);
                    }
                    data.push(0);
                    data.extend_from_slice(pick(&ids, *target).as_bytes());
                }
                (Kind::Tree, data)
            }
            Object::Tag {
                target,
                kind,
                extra,
            } => {
                let mut data = format!(
                    "object {}\ntype {}\ntag t\ntagger T <t@t> 0 +0000\n\n",
                    pick(&ids, *target),
                    KINDS[*kind as usize % 4]
                )
                .into_bytes();
                data.extend_from_slice(extra);
                (Kind::Tag, data)
            }
        };
        let id = loose.add(kind, &data);
        // What a push checks first; the walk must cope with whatever got past it
        // (objects stored before a check existed, `GITCLAW_FSCK_OBJECTS=off`).
        for level in [FsckLevel::Safe, FsckLevel::Strict] {
            let _ = check_object(&id, kind, &data, level);
        }
        ids.push(id);
    }
    let db = db_of(loose);
    let wants: Vec<ObjectId> = input.wants.iter().take(8).map(|n| pick(&ids, *n)).collect();
    let haves: Vec<ObjectId> = input.haves.iter().take(8).map(|n| pick(&ids, *n)).collect();
    let tips = ids.clone();
    let mut graph = Graph::new(&db);
    if unreachable_wants(&mut graph, &tips, &wants).is_err() {
        return;
    }
    let request = DeepenRequest {
        client_shallow: Vec::new(),
        depth: input.depth.map(|d| u32::from(d) + 1),
        relative: false,
        since: input.since.filter(|_| input.depth.is_none()),
        not: input.not.iter().take(4).map(|n| pick(&ids, *n)).collect(),
        unreachable_shallow: Vec::new(),
    };
    let Ok(plan) = plan_shallow(&mut graph, &wants, &request) else {
        return;
    };
    let spec = match input.filter % 5 {
        0 => None,
        1 => Some("blob:none".to_string()),
        2 => Some(format!("blob:limit={}", input.filter_arg)),
        3 => Some(format!("tree:{}", input.filter_arg % 4)),
        _ => Some("object:type=commit".to_string()),
    };
    let options = WalkOptions {
        filter: spec.and_then(|s| Filter::parse(&s).ok()),
        include_tags: Vec::new(),
        closed: None,
        // No pack here records the commits that brought its objects: the
        // walk asks and is told nothing.
        history_complete: true,
        expected_objects: 0,
    };
    let _ = enumerate(&mut graph, &wants, &haves, &plan, &options);
    // Tags and branches at the first objects, for decorations and
    // `%(describe)`.
    let mut refs: Vec<(String, ObjectId)> = ids
        .iter()
        .take(8)
        .enumerate()
        .map(|(n, id)| {
            let name = match n % 3 {
                0 => format!("refs/tags/v{n}"),
                1 => format!("refs/heads/b{n}"),
                _ => format!("refs/tags/t{n}"),
            };
            (name, *id)
        })
        .collect();
    refs.sort();
    let refs = ArchiveRefs {
        refs,
        head: Some("refs/heads/b1".to_string()),
    };
    for id in ids.iter().take(4) {
        let data = [
            &b"$Format:"[..],
            &input.format,
            b"$ $Format:%(describe:tags)%d$",
        ]
        .concat();
        let _ = substitute(&db, &refs, *id, id, data);
        let Ok((tree, mtime)) = commit_source(&db, id) else {
            continue;
        };
        let options = ArchiveOptions {
            prefix: b"p/".to_vec(),
            commit: Some(*id),
            mtime,
            refs: refs.clone(),
        };
        for format in [ArchiveFormat::Tar, ArchiveFormat::Zip] {
            let _ = write_archive(&db, tree, &options, format, &mut std::io::sink());
        }
        let mut reader = db.reader();
        let _ = find_path(&mut reader, tree, b"a/b");
        let _ = list_tree(&mut reader, tree, b"", true, 1000);
        if let Ok((other, _)) = commit_source(&db, &pick(&ids, input.depth.unwrap_or(0))) {
            if let Ok(diff) = diff_trees(&mut reader, other, tree, 1000) {
                let _ = detect_renames(&db, &mut reader, diff.changes, &RenameLimits::default());
            }
        }
        for path in [None, Some(&b"a"[..]), Some(&b"a/b"[..])] {
            let request = LogRequest {
                path,
                skip: usize::from(input.filter % 3),
                limit: 5,
                max_walked: 1000,
            };
            let _ = log(&mut Graph::new(&db), *id, &request);
        }
        let _ = range(
            &mut Graph::new(&db),
            *id,
            pick(&ids, input.filter_arg as u8),
            1000,
        );
    }
    let _ = verify_reachable(&db, &tips);
});
