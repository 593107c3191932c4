//! Archives of a tree: `git archive --format=tar` is the oracle, byte for byte.

mod common;

use std::{path::Path, process::Command, sync::Arc};

use common::git;
use gitclaw_pack::{
    archive::{
        commit_source, write_archive, ArchiveFormat, ArchiveOptions, ArchiveRefs, ArchiveSummary,
        MAX_SUBSTITUTED_BYTES, STREAM_ABOVE,
    },
    ingest::{ingest_file, IngestOptions},
    odb::{NoLoose, ObjectDb, PackHandle},
    ObjectId,
};

/// `git` in `dir` with the environment given, its stdout as bytes.
fn git_bytes(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Vec<u8> {
    let out = Command::new("git")
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Write `data` at `path` in the work tree of `repo`, making directories.
fn write_file(repo: &Path, path: &str, data: &[u8]) {
    let path = repo.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// A new repository under `work`, its branch `main`.
fn new_repo(work: &Path) -> std::path::PathBuf {
    let repo = work.join("src");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    repo
}

/// Commit a submodule at `path` (a gitlink to the current commit).
fn commit_submodule(repo: &Path, path: &str, message: &str) {
    let head = git(repo, &["rev-parse", "HEAD"]).trim().to_string();
    let entry = format!("160000,{head},{path}");
    git(repo, &["update-index", "--add", "--cacheinfo", &entry]);
    git(repo, &["commit", "-q", "-m", message]);
}

/// A repository of one commit holding `big.bin`, above [`STREAM_ABOVE`] (its
/// bytes do not delta), and `small.txt`; its objects, and the commit's id.
fn big_file_repo(work: &Path) -> (std::path::PathBuf, ObjectDb, String) {
    let repo = new_repo(work);
    let big: Vec<u8> = (0..STREAM_ABOVE as usize + 1000)
        .map(|n| (n % 251) as u8)
        .collect();
    std::fs::write(repo.join("big.bin"), &big).unwrap();
    std::fs::write(repo.join("small.txt"), b"small\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "big"]);
    let db = db_of(&repo, work);
    let main = git(&repo, &["rev-parse", "main"]).trim().to_string();
    (repo, db, main)
}

/// Every object of `repo`, packed by git and ingested.
fn db_of(repo: &Path, work: &Path) -> ObjectDb {
    db_of_with(repo, work, &IngestOptions::default())
}

/// [`db_of`], ingested with `options`.
fn db_of_with(repo: &Path, work: &Path, options: &IngestOptions) -> ObjectDb {
    let pack = work.join("all.pack");
    let bytes = git_bytes(repo, &["pack-objects", "--all", "--stdout", "-q"], &[]);
    std::fs::write(&pack, bytes).unwrap();
    let out = work.join("ingested");
    std::fs::create_dir(&out).unwrap();
    let empty = ObjectDb::new(Vec::new(), Arc::new(NoLoose));
    let ingested = ingest_file(&pack, &out, &empty, options)
        .unwrap()
        .expect("a pack");
    ObjectDb::new(
        vec![Arc::new(PackHandle::open(&ingested.index_path).unwrap())],
        Arc::new(NoLoose),
    )
}

/// The refs of `repo` as an archive's `export-subst` reads them.
fn refs_of(repo: &Path) -> ArchiveRefs {
    let listed = git(repo, &["for-each-ref", "--format=%(refname) %(objectname)"]);
    let refs = listed
        .lines()
        .map(|line| {
            let (name, id) = line.split_once(' ').unwrap();
            (name.to_string(), ObjectId::from_hex(id.as_bytes()).unwrap())
        })
        .collect();
    let head = git(repo, &["symbolic-ref", "HEAD"]).trim().to_string();
    ArchiveRefs {
        refs,
        head: Some(head),
    }
}

/// Ours for `commit` with `prefix`, and git's.
fn both(
    db: &ObjectDb,
    repo: &Path,
    commit: &str,
    prefix: &str,
) -> (Vec<u8>, Vec<u8>, ArchiveSummary) {
    let id = ObjectId::from_hex(commit.as_bytes()).unwrap();
    let (tree, mtime) = commit_source(db, &id).unwrap();
    let options = ArchiveOptions {
        prefix: prefix.as_bytes().to_vec(),
        commit: Some(id),
        mtime,
        refs: refs_of(repo),
    };
    let mut ours = Vec::new();
    let summary = write_archive(db, tree, &options, ArchiveFormat::Tar, &mut ours).unwrap();
    let theirs = git_bytes(
        repo,
        &[
            "archive",
            "--format=tar",
            &format!("--prefix={prefix}"),
            commit,
        ],
        &[],
    );
    (ours, theirs, summary)
}

/// Where two archives first differ, for the failure message.
fn first_difference(a: &[u8], b: &[u8]) -> String {
    let at = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let record = at / 512 * 512;
    let show = |t: &[u8]| {
        String::from_utf8_lossy(&t[record.min(t.len())..(record + 512).min(t.len())]).into_owned()
    };
    format!(
        "lengths {} and {}, first difference at byte {at} (record at {record}):\nours:  {:?}\ngit's: {:?}",
        a.len(),
        b.len(),
        show(a),
        show(b)
    )
}

fn assert_same(db: &ObjectDb, repo: &Path, commit: &str, prefix: &str) -> ArchiveSummary {
    let (ours, theirs, summary) = both(db, repo, commit, prefix);
    assert!(
        ours == theirs,
        "prefix {prefix:?}: {}",
        first_difference(&ours, &theirs)
    );
    assert_eq!(summary.bytes, ours.len() as u64);
    summary
}

/// A commit of `tree` made at `date`.
fn commit_at(repo: &Path, tree: &str, date: &str) -> String {
    let env = [("GIT_COMMITTER_DATE", date), ("GIT_AUTHOR_DATE", date)];
    let out = git_bytes(repo, &["commit-tree", "-m", "archived", tree], &env);
    String::from_utf8(out).unwrap().trim().to_string()
}

#[test]
fn archives_are_git_archive_s_bytes() {
    let work = tempfile::tempdir().unwrap();
    let repo = new_repo(work.path());
    let write = |path: &str, data: &[u8]| write_file(&repo, path, data);
    // History, so some blobs are stored as deltas.
    for i in 0..3 {
        let text: String = (0..200)
            .map(|n| format!("line {n} of version {i}\n"))
            .collect();
        write("src/lib.rs", text.as_bytes());
        write("README.md", format!("readme {i}\n").as_bytes());
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", &format!("v{i}")]);
    }
    write("empty", b"");
    write("bin/run.sh", b"#!/bin/sh\necho hi\n");
    git(&repo, &["update-index", "--add", "bin/run.sh"]);
    write("a/b/c/deep.txt", b"deep\n");
    // A path over 100 bytes that splits into ustar's prefix and name...
    let split = format!("{}/{}/file.txt", "d".repeat(60), "e".repeat(60));
    write(&split, b"split\n");
    // ...one whose last component alone is over 100 (a pax path)...
    let long_name = format!("long/{}.txt", "n".repeat(120));
    write(&long_name, b"long name\n");
    // ...and a directory whose own entry is over 100 bytes.
    let long_dir = format!("{}/x", "D".repeat(130));
    write(&long_dir, b"in a long directory\n");
    // Not UTF-8.
    write("caf\u{e9}/na\u{ef}ve", b"accents\n");
    {
        use std::os::unix::ffi::OsStrExt;
        std::fs::write(
            repo.join(std::ffi::OsStr::from_bytes(b"latin1-\xe9.txt")),
            b"latin1\n",
        )
        .unwrap();
    }
    git(&repo, &["add", "-A"]);
    git(&repo, &["update-index", "--chmod=+x", "bin/run.sh"]);
    // Symbolic links: a short target and one over 100 bytes.
    let long_target = format!("../{}", "t".repeat(150));
    git(&repo, &["config", "core.symlinks", "true"]);
    std::os::unix::fs::symlink("README.md", repo.join("link")).unwrap();
    std::os::unix::fs::symlink(&long_target, repo.join("long-link")).unwrap();
    git(&repo, &["add", "link", "long-link"]);
    // A submodule: an empty directory in the archive.
    commit_submodule(&repo, "vendor/lib", "everything");
    let tree = git(&repo, &["rev-parse", "HEAD^{tree}"]).trim().to_string();

    // A subdirectory holding only an empty tree: no entry, in git's archive.
    let empty_tree = git(&repo, &["hash-object", "-t", "tree", "-w", "/dev/null"])
        .trim()
        .to_string();
    let hollow = {
        let listing = format!(
            "040000 tree {empty_tree}\thollow\n100644 blob {}\tz\n",
            git(&repo, &["rev-parse", "HEAD:README.md"]).trim()
        );
        let out = Command::new("git")
            .args(["mktree"])
            .current_dir(&repo)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(listing.as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let hollow_commit = commit_at(&repo, &hollow, "@1700000000 +0000");
    // A commit whose time ustar's 11 digits cannot hold (the year 2300).
    let late = commit_at(&repo, &tree, "@10413792000 +0000");
    let early = commit_at(&repo, &tree, "@0 +0000");
    git(&repo, &["branch", "hollow", &hollow_commit]);
    git(&repo, &["branch", "late", &late]);
    git(&repo, &["branch", "early", &early]);

    let db = db_of(&repo, work.path());
    let main = git(&repo, &["rev-parse", "main"]).trim().to_string();
    let files = git(&repo, &["ls-tree", "-r", "main"])
        .lines()
        .filter(|l| !l.starts_with("160000"))
        .count() as u64;
    for prefix in [
        "",
        "app/",
        "app//",
        "app-",
        &format!("{}/", "p".repeat(120)),
    ] {
        let summary = assert_same(&db, &repo, &main, prefix);
        assert_eq!(summary.files, files, "every file and link, once");
    }
    assert_same(&db, &repo, &hollow_commit, "h/");
    assert_same(&db, &repo, &late, "");
    assert_same(&db, &repo, &early, "x/");
    for commit in [&main, &late] {
        let (ours, _, _) = both(&db, &repo, commit, "check/");
        // tar itself reads it back: every file, with its content.
        let out = work.path().join(format!("extract-{commit}"));
        std::fs::create_dir(&out).unwrap();
        let mut tar = Command::new("tar")
            .args(["-x", "-C", out.to_str().unwrap()])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            tar.stdin.take().unwrap().write_all(&ours).unwrap();
        }
        assert!(tar.wait().unwrap().success());
        assert_eq!(
            std::fs::read(out.join("check").join(&long_name)).unwrap(),
            b"long name\n"
        );
        assert_eq!(
            std::fs::read_link(out.join("check/long-link"))
                .unwrap()
                .to_str()
                .unwrap(),
            long_target
        );
    }
}

/// A blob above [`STREAM_ABOVE`] stored whole is streamed into the archive.
#[test]
fn big_files_are_streamed_and_match_git() {
    let work = tempfile::tempdir().unwrap();
    let (repo, db, main) = big_file_repo(work.path());
    let summary = assert_same(&db, &repo, &main, "big/");
    assert_eq!(summary.files, 2);
}

/// `export-ignore` from the archived tree's `.gitattributes` files, at every
/// depth, with macros, unsetting and git's order of precedence.
#[test]
fn export_ignore_follows_the_tree_s_gitattributes() {
    let work = tempfile::tempdir().unwrap();
    let repo = new_repo(work.path());
    let write = |path: &str, data: &str| {
        let path = repo.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    };
    // A line longer than git reads: main.c stays.
    let long_line = format!("main.c{}export-ignore\n", " ".repeat(2100));
    write(
        ".gitattributes",
        &format!(
            "[attr]dist-skip export-ignore\n\
             *.md export-ignore\n\
             keep.md -export-ignore\n\
             /build export-ignore\n\
             docs/ export-ignore\n\
             *.tmp dist-skip\n\
             sub/deep/x.c export-ignore\n\
             vendor export-ignore\n\
             .gitattributes export-ignore\n\
             {long_line}\
             *.bin binary\n"
        ),
    );
    for file in [
        "README.md",
        "keep.md",
        "main.c",
        "build/out.o",
        "src/build/kept.c",
        "docs/guide.txt",
        "src/docs/also.txt",
        "scratch.tmp",
        "data.bin",
        "sub/deep/x.c",
        "sub/deep/y.c",
        "sub/notes.txt",
        "sub/important.md",
        "sub/more/readme.txt",
        "only-ignored/a.md",
        "only-ignored/b.tmp",
    ] {
        write(file, &format!("{file}\n"));
    }
    // A deeper file: its lines come before the top-level file's.
    write(
        "sub/.gitattributes",
        "*.txt export-ignore\nimportant.md !export-ignore\nmore/ -export-ignore\n",
    );
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "attributes"]);
    commit_submodule(&repo, "vendor", "vendor");

    let db = db_of(&repo, work.path());
    let main = git(&repo, &["rev-parse", "main"]).trim().to_string();
    for prefix in ["", "p/", "pre-"] {
        assert_same(&db, &repo, &main, prefix);
    }
    // What git left out, so the test shows the rules were in play: a
    // directory ignored with all it holds, anchored and unanchored patterns,
    // a macro, a deeper file's lines first, `!` and `-`, a submodule.
    let listing = git_bytes(&repo, &["archive", "--format=tar", "main"], &[]);
    let names = tar_names(&listing);
    for gone in [
        "README.md",
        "build/",
        "docs/",
        "src/docs/",
        "scratch.tmp",
        "sub/deep/x.c",
        "vendor/",
        "sub/notes.txt",
        "sub/more/readme.txt",
        "only-ignored/a.md",
        ".gitattributes",
        "sub/.gitattributes",
    ] {
        assert!(!names.iter().any(|n| n == gone), "{gone} in {names:?}");
    }
    for kept in [
        "main.c",
        "keep.md",
        "src/build/kept.c",
        "sub/important.md",
        "sub/deep/y.c",
        "data.bin",
        // Directories whose files are all left out, written on meeting them.
        "sub/more/",
        "only-ignored/",
    ] {
        assert!(names.iter().any(|n| n == kept), "{kept} not in {names:?}");
    }
}

/// The names in a tar (ustar name fields only: the test's names are short).
fn tar_names(tar: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() && tar[at] != 0 {
        let header = &tar[at..at + 512];
        let name_end = header[..100].iter().position(|&b| b == 0).unwrap_or(100);
        names.push(String::from_utf8_lossy(&header[..name_end]).into_owned());
        let size = u64::from_str_radix(
            std::str::from_utf8(&header[124..135])
                .unwrap()
                .trim_end_matches('\0'),
            8,
        )
        .unwrap();
        at += 512 + (size as usize).div_ceil(512) * 512;
    }
    names
}

/// What Python's `zipfile` reads of a zip, as JSON: the comment, and per
/// entry everything but where its bytes sit and how many they are once
/// deflated (zlib implementations differ there): name, time, method, flags
/// (`streamed` apart), versions, attributes, CRC, size, extra fields and a
/// hash of the content.
fn zip_listing(zip: &[u8], work: &Path, name: &str) -> serde_json::Value {
    let path = work.join(name);
    std::fs::write(&path, zip).unwrap();
    let script = r#"
import hashlib, json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
out = {"comment": z.comment.decode("latin-1"), "entries": []}
for i in z.infolist():
    out["entries"].append({
        "name": i.orig_filename, "date_time": list(i.date_time),
        "method": i.compress_type, "flags": i.flag_bits & ~8, "streamed": bool(i.flag_bits & 8),
        "create_system": i.create_system, "create_version": i.create_version,
        "extract_version": i.extract_version, "internal_attr": i.internal_attr,
        "external_attr": i.external_attr, "crc": i.CRC, "size": i.file_size,
        "extra": i.extra.hex(), "sha1": hashlib.sha1(z.read(i)).hexdigest(),
    })
print(json.dumps(out))
"#;
    let out = Command::new("python3")
        .args(["-c", script, path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python3 zipfile: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Ours and git's zip of `commit` with `prefix`, as [`zip_listing`] reads them.
fn zips(
    db: &ObjectDb,
    repo: &Path,
    work: &Path,
    commit: &str,
    prefix: &str,
) -> (serde_json::Value, serde_json::Value) {
    let id = ObjectId::from_hex(commit.as_bytes()).unwrap();
    let (tree, mtime) = commit_source(db, &id).unwrap();
    let options = ArchiveOptions {
        prefix: prefix.as_bytes().to_vec(),
        commit: Some(id),
        mtime,
        refs: refs_of(repo),
    };
    let mut ours = Vec::new();
    let summary = write_archive(db, tree, &options, ArchiveFormat::Zip, &mut ours).unwrap();
    assert_eq!(summary.bytes, ours.len() as u64);
    let theirs = git_bytes(
        repo,
        &[
            "archive",
            "--format=zip",
            &format!("--prefix={prefix}"),
            commit,
        ],
        &[("TZ", "UTC")],
    );
    (
        zip_listing(&ours, work, "ours.zip"),
        zip_listing(&theirs, work, "theirs.zip"),
    )
}

/// Zips hold what git's hold: the same entries, in the same order, with the
/// same names, times, modes, flags, text bits, CRCs, sizes, extra fields and
/// content, and the commit's id as the comment.
#[test]
fn zip_archives_are_git_archive_s() {
    let work = tempfile::tempdir().unwrap();
    let repo = new_repo(work.path());
    let write = |path: &str, data: &[u8]| write_file(&repo, path, data);
    let text: String = (0..300).map(|n| format!("line {n}\n")).collect();
    write("README.md", text.as_bytes());
    write("tiny", b"x");
    write("empty", b"");
    write("data.bin", &[0u8, 1, 2, 3, 0, 0, 7]);
    write("looks-binary.txt", b"text\0with a nul");
    write("marked.dat", b"plain text, but marked binary\n");
    write(".gitattributes", b"*.dat binary\n*.skip export-ignore\n");
    write("gone.skip", b"left out\n");
    write("caf\u{e9}/r\u{e9}sum\u{e9}.txt", b"utf-8 names\n");
    write("bin/run.sh", b"#!/bin/sh\necho hi\n");
    write(&format!("{}/deep.txt", "d".repeat(120)), b"long path\n");
    git(&repo, &["add", "-A"]);
    git(&repo, &["update-index", "--chmod=+x", "bin/run.sh"]);
    std::os::unix::fs::symlink("README.md", repo.join("link")).unwrap();
    git(&repo, &["add", "link"]);
    git(&repo, &["commit", "-q", "-m", "zip"]);
    commit_submodule(&repo, "vendor/lib", "submodule");
    let db = db_of(&repo, work.path());
    let main = git(&repo, &["rev-parse", "main"]).trim().to_string();
    for prefix in ["", "app/"] {
        let (ours, theirs) = zips(&db, &repo, work.path(), &main, prefix);
        assert_eq!(ours, theirs, "prefix {prefix:?}");
        assert_eq!(ours["comment"], main.as_str());
    }
    // What git decided, so the test shows each rule in play.
    let (listing, _) = zips(&db, &repo, work.path(), &main, "");
    let entry = |name: &str| {
        listing["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {listing}"))
            .clone()
    };
    assert_eq!(entry("README.md")["method"], 8, "deflated");
    assert_eq!(entry("README.md")["internal_attr"], 1, "text");
    assert_eq!(entry("data.bin")["internal_attr"], 0, "binary");
    assert_eq!(
        entry("marked.dat")["internal_attr"],
        0,
        "binary by attribute"
    );
    assert_eq!(entry("link")["external_attr"], 0o120777u64 << 16);
    assert_eq!(entry("bin/run.sh")["external_attr"], 0o100755u64 << 16);
    assert_eq!(entry("vendor/lib/")["external_attr"], 16);
    assert!(!listing.to_string().contains("gone.skip"));
}

/// A file above [`STREAM_ABOVE`] is streamed into the zip with a data
/// descriptor; what it unpacks to is git's.
#[test]
fn big_files_stream_into_zips() {
    let work = tempfile::tempdir().unwrap();
    let (repo, db, main) = big_file_repo(work.path());
    let (mut ours, theirs) = zips(&db, &repo, work.path(), &main, "");
    // git streams only above its core.bigFileThreshold (512 MiB).
    assert_eq!(ours["entries"][0]["name"], "big.bin");
    assert_eq!(ours["entries"][0]["streamed"], true);
    assert_eq!(theirs["entries"][0]["streamed"], false);
    ours["entries"][0]["streamed"] = false.into();
    assert_eq!(ours, theirs);
}

/// More than 65,535 entries: the ZIP64 end records, as git writes them.
#[test]
fn zips_of_more_than_65535_entries_have_git_s_zip64_end() {
    let work = tempfile::tempdir().unwrap();
    let repo = new_repo(work.path());
    let mut script = String::from(
        "blob\nmark :1\ndata 6\nsmall\n\
         commit refs/heads/main\ncommitter A <a@example.com> 1700000000 +0000\ndata 4\nmany\n",
    );
    for dir in 0..66 {
        for file in 0..1000 {
            script.push_str(&format!("M 100644 :1 d{dir:02}/f{file:03}\n"));
        }
    }
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(&repo)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
    }
    assert!(child.wait().unwrap().success());
    let db = db_of(&repo, work.path());
    let main = git(&repo, &["rev-parse", "main"]).trim().to_string();
    let (ours, theirs) = zips(&db, &repo, work.path(), &main, "");
    assert_eq!(ours["entries"].as_array().unwrap().len(), 66_066);
    assert_eq!(ours, theirs);
    // Every file is stored (deflating 6 bytes does not shrink them), so no
    // zlib stands between the two: the bytes are git's, end records included.
    let id = ObjectId::from_hex(main.as_bytes()).unwrap();
    let (tree, mtime) = commit_source(&db, &id).unwrap();
    let options = ArchiveOptions {
        prefix: Vec::new(),
        commit: Some(id),
        mtime,
        refs: refs_of(&repo),
    };
    let mut bytes = Vec::new();
    write_archive(&db, tree, &options, ArchiveFormat::Zip, &mut bytes).unwrap();
    let git_zip = git_bytes(&repo, &["archive", "--format=zip", &main], &[("TZ", "UTC")]);
    assert!(bytes == git_zip, "{}", first_difference(&bytes, &git_zip));
}

/// A tree whose entry names lead out of the archive's directory (pushed
/// with fsck off) is refused, not archived.
#[test]
fn entries_named_to_escape_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let repo = new_repo(work.path());
    for bad in ["..", "a/b", "."] {
        let blob_id = ObjectId::from_hex(
            String::from_utf8(git_bytes(&repo, &["hash-object", "-w", "/dev/null"], &[]))
                .unwrap()
                .trim()
                .as_bytes(),
        )
        .unwrap();
        let mut tree = format!("100644 {bad}\0").into_bytes();
        tree.extend_from_slice(blob_id.as_bytes());
        let path = work.path().join("tree");
        std::fs::write(&path, &tree).unwrap();
        let tree_id = String::from_utf8(git_bytes(
            &repo,
            &[
                "hash-object",
                "-t",
                "tree",
                "-w",
                "--literally",
                path.to_str().unwrap(),
            ],
            &[],
        ))
        .unwrap();
        let commit = commit_at(&repo, tree_id.trim(), "@1700000000 +0000");
        git(&repo, &["update-ref", "refs/heads/main", &commit]);
        let scratch = tempfile::tempdir().unwrap();
        // As a server with GITCLAW_FSCK_OBJECTS=off took it.
        let unchecked = IngestOptions {
            fsck: gitclaw_pack::fsck::FsckLevel::Off,
            ..IngestOptions::default()
        };
        let db = db_of_with(&repo, scratch.path(), &unchecked);
        let id = ObjectId::from_hex(commit.as_bytes()).unwrap();
        let (tree, mtime) = commit_source(&db, &id).unwrap();
        let options = ArchiveOptions {
            prefix: b"p/".to_vec(),
            commit: Some(id),
            mtime,
            ..Default::default()
        };
        for format in [ArchiveFormat::Tar, ArchiveFormat::Zip] {
            let err =
                write_archive(&db, tree, &options, format, &mut Vec::new()).expect_err("refused");
            assert!(
                err.to_string().contains("cannot be archived"),
                "{bad}: {err}"
            );
        }
    }
}

/// `ident`, `text`, `eol` and the older `crlf` attribute convert files as
/// `git archive` converts them: CRLF line ends where asked (for `auto` only
/// in text with no CR yet), `$Id$` expanded, links and unasked files left
/// alone; a streamed file (above 16 MiB) too. Tar and zip.
#[test]
fn line_ends_and_idents_are_converted_as_git_archive_converts_them() {
    let work = tempfile::tempdir().unwrap();
    let repo = new_repo(work.path());
    let write = |path: &str, data: &[u8]| write_file(&repo, path, data);
    write(
        ".gitattributes",
        b"*.crlf text eol=crlf\n*.auto text=auto eol=crlf\n*.eolonly eol=crlf\n*.lf text eol=lf\n\
          *.bin -text eol=crlf\n*.old crlf=input eol=crlf\n*.nocrlf -crlf eol=crlf\n*.text text\n\
          *.id ident\n*.both ident eol=crlf\n*.sh eol=crlf\n",
    );
    write("sub/.gitattributes", b"*.txt eol=crlf\n");
    // Long enough to deflate (tiny files may be stored by one zip and
    // deflated by the other: their compressors differ).
    write(
        "mixed.crlf",
        format!("{}last", "one\ntwo\r\nthree\n\n".repeat(4)).as_bytes(),
    );
    write("empty.crlf", b"");
    write("plain.auto", b"one\ntwo\n");
    write("has-crlf.auto", b"one\r\ntwo\n");
    write("has-cr.auto", b"one\rtwo\n");
    write("nul.auto", b"one\0two\n");
    write("controls.auto", &[1, 2, 3, 4, 5, b'\n', 6, 7]);
    write("eof.auto", b"one\ntwo\x1a");
    write("only.eolonly", b"a\nb\n");
    write("kept.lf", b"a\nb\r\n");
    write("kept.bin", b"a\nb\n");
    write("legacy.old", b"a\nb\n");
    write("legacy.nocrlf", b"a\nb\n");
    write("plain.text", b"a\nb\n");
    write("unasked.txt", b"a\nb\n");
    write("sub/nested.txt", b"a\nb\n");
    write(
        "ids.id",
        b"$Id$\n$Id: old $\n$Id: with spaces $\n$Id:\n$ line\n$Id:x$ $Id\n$Id: a b $\n$$Id$ $Id",
    );
    write("both.both", b"$Id$\nline\n");
    write("run.sh", b"#!/bin/sh\necho hi\n");
    let big: String = (0..1_700_000).map(|n| format!("line {n}\n")).collect();
    assert!(big.len() as u64 > STREAM_ABOVE);
    write("big.crlf", big.as_bytes());
    // Committed as written (`git add` would normalize line ends by the
    // same attributes).
    let files = git(&repo, &["ls-files", "-o"]);
    for path in files.lines() {
        let id = git(&repo, &["hash-object", "-w", "--no-filters", path]);
        let entry = format!("100644,{},{path}", id.trim());
        git(&repo, &["update-index", "--add", "--cacheinfo", &entry]);
    }
    git(&repo, &["update-index", "--chmod=+x", "run.sh"]);
    std::os::unix::fs::symlink("target\nwith lines", repo.join("link.crlf")).unwrap();
    git(&repo, &["add", "link.crlf"]);
    git(&repo, &["commit", "-q", "-m", "conversions"]);
    let db = db_of(&repo, work.path());
    let main = git(&repo, &["rev-parse", "main"]).trim().to_string();
    for prefix in ["", "app/"] {
        assert_same(&db, &repo, &main, prefix);
        let (mut ours, theirs) = zips(&db, &repo, work.path(), &main, prefix);
        // git streams only above its core.bigFileThreshold (512 MiB).
        let big = ours["entries"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|e| e["name"].as_str().unwrap().ends_with("big.crlf"))
            .unwrap();
        assert_eq!(big["streamed"], true);
        big["streamed"] = false.into();
        assert_eq!(ours, theirs, "prefix {prefix:?}");
    }
    // What git did, so the test shows each rule in play: some files
    // converted, some not.
    let tar = git_bytes(&repo, &["archive", "--format=tar", &main], &[]);
    let unpacked = work.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    let mut child = Command::new("tar")
        .args(["-x", "-C"])
        .arg(&unpacked)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&tar).unwrap();
    assert!(child.wait().unwrap().success());
    let read = |path: &str| std::fs::read(unpacked.join(path)).unwrap();
    assert_eq!(read("plain.auto"), b"one\r\ntwo\r\n");
    assert_eq!(read("has-crlf.auto"), b"one\r\ntwo\n");
    assert_eq!(read("mixed.crlf")[..13], *b"one\r\ntwo\r\nthr");
    assert_eq!(read("kept.bin"), b"a\nb\n");
    assert_eq!(read("sub/nested.txt"), b"a\r\nb\r\n");
    let blob = git(&repo, &["rev-parse", "main:both.both"])
        .trim()
        .to_string();
    assert_eq!(
        read("both.both"),
        format!("$Id: {blob} $\r\nline\r\n").into_bytes()
    );
    assert!(read("big.crlf").starts_with(b"line 0\r\nline 1\r\n"));
}

/// A commit of `tree` with `parents`, `message` and both dates `date`.
fn commit_with(repo: &Path, tree: &str, parents: &[&str], message: &str, date: &str) -> String {
    let mut args = vec!["commit-tree", tree, "-m", message];
    for parent in parents {
        args.extend(["-p", parent]);
    }
    let env = [
        ("GIT_COMMITTER_DATE", date),
        ("GIT_AUTHOR_DATE", date),
        ("GIT_AUTHOR_NAME", "A. U. Thor"),
        ("GIT_AUTHOR_EMAIL", "Author.Name@example.com"),
        ("GIT_COMMITTER_NAME", "C O Mitter"),
        ("GIT_COMMITTER_EMAIL", "<committer>"),
    ];
    let out = git_bytes(repo, &args, &env);
    String::from_utf8(out).unwrap().trim().to_string()
}

/// The index's tree after writing `files` into the work tree.
fn tree_with(repo: &Path, files: &[(&str, &str)]) -> String {
    for (path, data) in files {
        write_file(repo, path, data.as_bytes());
    }
    git(repo, &["add", "-A"]);
    git(repo, &["write-tree"]).trim().to_string()
}

/// `export-subst` files get `$Format:…$` replaced as `git archive` replaces
/// it: hashes, people, dates in their own zones, subjects and bodies,
/// decorations (branches, `HEAD -> main`, tags, tags of tags, other refs),
/// `%(describe)` with each option over a history with merges, skewed dates,
/// annotated, lightweight and misnamed tags (once per archive: a second is
/// left as written), the `%+`/`%-`/`% ` prefixes and placeholders git leaves
/// as written. Files without the attribute keep their text.
#[test]
fn export_subst_is_git_archive_s() {
    let work = tempfile::tempdir().unwrap();
    let repo = new_repo(work.path());
    let every = "$Format:%H %h %T %t [%P] [%p]$\n\
        $Format:%an|%ae|%al|%ad|%aD|%ai|%aI|%at|%as|%aN|%aE|%aL$\n\
        $Format:%cn|%ce|%cl|%cd|%cD|%ci|%cI|%ct|%cs|%cN|%cE|%cL$\n\
        $Format:%s|%f|%e$\nbody:$Format:%b$\nraw:$Format:%B$\n\
        $Format:%d|%D|%(decorate:prefix=[,suffix=],separator=%x3b,tag=T:,pointer=%x3e)|%(decorate)$\n\
        $Format:%m|%n|%%|%x41|%xZZ|%Cred%C(auto)%Cgreen%Creset%C(bold)|%Cx|%gd%gs$\n\
        line\n\n$Format:%-qa%+sb% sc%-d%+q%n%-d$\n\
        $Format:%N %S %q %(nothing) %(describe:tags)%(describe)$ tail %\n\
        $Format:%$ $Format:unterminated %H";
    let attributes = "*.subst export-subst\n*.crlf export-subst eol=crlf\n";
    // HEAD's `.mailmap` (git reads the work tree's here, the same file).
    let mailmap = "Proper Author <proper@example.com> <AUTHOR.NAME@example.com>\n\
        # a comment <x@example.com>\n\
        Right Committer <right@example.com> c o mitter <committer>\n\
        Other Name <committer>\n";
    let files = |describe: &str| {
        vec![
            (".gitattributes", attributes.to_string()),
            ("every.subst", every.to_string()),
            ("plain.txt", "$Format:%H$ stays\n".to_string()),
            ("lines.crlf", "$Format:%s%n%H$\nend\n".to_string()),
            ("describe.subst", describe.to_string()),
            (".mailmap", mailmap.to_string()),
        ]
    };
    let tree = |describe: &str| {
        let files = files(describe);
        let files: Vec<(&str, &str)> = files.iter().map(|(p, d)| (*p, d.as_str())).collect();
        tree_with(&repo, &files)
    };
    let base = tree("$Format:%(describe)$");
    // Main line in several zones, a side branch dated after it, a merge.
    let message =
        "Subject:  with... punctuation!\nsecond subject line  \n\n\nBody para one.\n\nBody two\n";
    let c1 = commit_with(&repo, &base, &[], message, "1700000000 +0530");
    let c2 = commit_with(&repo, &base, &[&c1], "two", "1700000100 -0800");
    let c3 = commit_with(&repo, &base, &[&c2], "three", "1700000200 +0000");
    let s1 = commit_with(&repo, &base, &[&c2], "side one", "1700009000 +0100");
    let s2 = commit_with(&repo, &base, &[&s1], "side two", "1700009100 +0100");
    let c4 = commit_with(&repo, &base, &[&c3], "four", "1700000300 +0000");
    let m = commit_with(&repo, &base, &[&c4, &s2], "merge", "1700010000 +0000");
    let c5 = commit_with(&repo, &base, &[&m], "five", "1700010100 +0000");
    let c6 = commit_with(&repo, &base, &[&c5], "six", "1700010200 -0330");
    let tag = |name: &str, target: &str, date: &str| {
        let env = [
            ("GIT_COMMITTER_DATE", date),
            ("GIT_COMMITTER_NAME", "T"),
            ("GIT_COMMITTER_EMAIL", "t@example.com"),
        ];
        git_bytes(&repo, &["tag", "-a", name, "-m", name, target], &env);
    };
    tag("v0.1", &c1, "1700000001 +0000");
    git(&repo, &["tag", "light1", &c3]);
    tag("v1.0-rc", &c4, "1700000301 +0000");
    tag("v1.0", &c4, "1700000302 +0000");
    tag("side-1.0", &s2, "1700009101 +0000");
    git(&repo, &["tag", "nomatch", &c5]);
    // A tag object whose own name is not its ref's, and a tag of a tag.
    let mktag = format!(
        "object {c5}\ntype commit\ntag original\ntagger T <t@example.com> 1700010150 +0000\n\nmisnamed\n"
    );
    let (ok, out, err) = common::git_stdin(&repo, &["mktag"], mktag.as_bytes());
    assert!(ok, "{err}");
    let misnamed = String::from_utf8(out).unwrap().trim().to_string();
    git(&repo, &["update-ref", "refs/tags/renamed", &misnamed]);
    git(&repo, &["tag", "-a", "outer", "-m", "outer", "v1.0"]);
    git(&repo, &["update-ref", "refs/heads/main", &c6]);
    git(&repo, &["update-ref", "refs/heads/other", &c6]);
    git(&repo, &["update-ref", "refs/remotes/origin/main", &c6]);
    git(&repo, &["update-ref", "refs/heads/side", &s2]);
    // One commit per `%(describe)` form on each commit of the history.
    let forms = [
        "%(describe)",
        "%(describe:tags)",
        "%(describe:tags=true,match=*[0-9]*)",
        "%(describe:abbrev=0)",
        "%(describe:abbrev=12)",
        "%(describe:abbrev=1)",
        "%(describe:match=side*)",
        "%(describe:exclude=v1*,tags=yes)",
        "%(describe:match=v0*,match=side*)",
        "%(describe:tags=no)",
        "%(describe:bad)",
        "%(describe:abbrev=)",
    ];
    let history = [&c1, &c2, &c3, &s1, &s2, &c4, &m, &c5, &c6];
    let mut archived: Vec<String> = history.iter().map(|c| c.to_string()).collect();
    for (n, form) in forms.iter().enumerate() {
        let tree = tree(&format!("$Format:{form}$ and $Format:{form}$\n"));
        for (k, parent) in history.iter().enumerate() {
            let date = format!("{} +0000", 1700020000 + n * 100 + k);
            let commit = commit_with(&repo, &tree, &[parent], "described", &date);
            // Kept by a ref (every object is packed), decorating it.
            git(
                &repo,
                &["update-ref", &format!("refs/keep/{n}/{k}"), &commit],
            );
            archived.push(commit);
        }
    }
    let db = db_of(&repo, work.path());
    for commit in &archived {
        let (ours, theirs, _) = both(&db, &repo, commit, "p/");
        assert!(
            ours == theirs,
            "commit {commit}: {}",
            first_difference(&ours, &theirs)
        );
    }
    // What the files say, to see the substitution is not vacuous.
    let out = git_bytes(&repo, &["archive", "--format=tar", &c6, "every.subst"], &[]);
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains(&format!("{c6} {}", &c6[..7])), "{text}");
    assert!(
        text.contains(" (HEAD -> main, origin/main, other)|"),
        "{text}"
    );
    assert!(
        text.contains("|Proper Author|proper@example.com|proper\n"),
        "{text}"
    );
    assert!(
        text.contains("|Right Committer|right@example.com|right\n"),
        "{text}"
    );
    // And as a bare repository reads it: from HEAD's tree.
    let bare = work.path().join("bare.git");
    let bare_arg = bare.to_str().unwrap();
    git(&repo, &["clone", "-q", "--bare", ".", bare_arg]);
    for commit in [&c1, &c6] {
        let id = ObjectId::from_hex(commit.as_bytes()).unwrap();
        let (tree, mtime) = commit_source(&db, &id).unwrap();
        let options = ArchiveOptions {
            commit: Some(id),
            mtime,
            refs: refs_of(&bare),
            ..Default::default()
        };
        let mut ours = Vec::new();
        write_archive(&db, tree, &options, ArchiveFormat::Tar, &mut ours).unwrap();
        let theirs = git_bytes(&bare, &["archive", "--format=tar", commit], &[]);
        assert!(ours == theirs, "{}", first_difference(&ours, &theirs));
    }
    let out = git_bytes(
        &repo,
        &["archive", "--format=tar", &c5, "describe.subst"],
        &[],
    );
    assert!(String::from_utf8_lossy(&out).contains("original-0-g"));
}

/// A file whose placeholders would expand past [`MAX_SUBSTITUTED_BYTES`] (a
/// long message repeated) fails the archive, naming the file's blob, rather
/// than being held in memory whole.
#[test]
fn export_subst_expansion_is_bounded() {
    let work = tempfile::tempdir().unwrap();
    let repo = new_repo(work.path());
    let file = "$Format:%B$".repeat(1000);
    let tree = tree_with(
        &repo,
        &[
            (".gitattributes", "*.subst export-subst\n"),
            ("big.subst", &file),
        ],
    );
    let message = "m".repeat(MAX_SUBSTITUTED_BYTES / 1000 + 1);
    let commit = commit_with(&repo, &tree, &[], &message, "1700000000 +0000");
    git(&repo, &["update-ref", "refs/heads/main", &commit]);
    let db = db_of(&repo, work.path());
    let id = ObjectId::from_hex(commit.as_bytes()).unwrap();
    let (tree, mtime) = commit_source(&db, &id).unwrap();
    let options = ArchiveOptions {
        commit: Some(id),
        mtime,
        refs: refs_of(&repo),
        ..Default::default()
    };
    let blob = git(&repo, &["rev-parse", "main:big.subst"]);
    let err = write_archive(
        &db,
        tree,
        &options,
        ArchiveFormat::Tar,
        &mut std::io::sink(),
    )
    .expect_err("too big to expand");
    let text = err.to_string();
    assert!(
        text.contains(blob.trim()) && text.contains("export-subst"),
        "{text}"
    );
    // Just under the bound, it is git's.
    let message = "m".repeat(MAX_SUBSTITUTED_BYTES / 1000 - 100);
    let commit = commit_with(&repo, &tree.to_string(), &[], &message, "1700000000 +0000");
    git(&repo, &["update-ref", "refs/heads/main", &commit]);
    let again = work.path().join("again");
    std::fs::create_dir(&again).unwrap();
    let db = db_of(&repo, &again);
    assert_same(&db, &repo, &commit, "");
}
