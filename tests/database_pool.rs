//! The database pool's size is the operator's: `GITCLAW_DB_MAX_CONNECTIONS`
//! bounds the PostgreSQL connections a server holds while clones run side by
//! side, and every clone is still served.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use common::*;

#[test]
fn a_server_holds_no_more_database_connections_than_configured() {
    let database = postgres_database();
    let name = database.rsplit('/').next().unwrap().to_string();
    let server = ServerProcess::start(&[
        ("DATABASE_URL", database),
        ("GITCLAW_DB_MAX_CONNECTIONS", "2".into()),
    ]);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 3);
    let url = server.create_repo("pool", "busy");
    push_everything(&src, &url);

    // Sessions the server has open on its database, seen from another one.
    let held = || -> u32 {
        psql(
            &postgres_url(),
            &format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}'"),
        )
        .parse()
        .unwrap()
    };
    let done = AtomicBool::new(false);
    let most = AtomicU32::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            // Back to back: each look is a psql process of its own.
            while !done.load(Ordering::Relaxed) {
                most.fetch_max(held(), Ordering::Relaxed);
            }
        });
        let clones: Vec<_> = (0..8)
            .map(|i| {
                let (work, url) = (work.path(), url.as_str());
                s.spawn(move || clone_checked(work, url, &work.join(format!("clone{i}"))))
            })
            .collect();
        for clone in clones {
            clone.join().expect("every clone is served");
        }
        done.store(true, Ordering::Relaxed);
    });
    let most = most.into_inner();
    assert!(
        (1..=2).contains(&most),
        "at most 2 connections were to be held; seen {most}"
    );
}
