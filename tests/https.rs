//! HTTPS served by GitClaw itself (`GITCLAW_TLS_CERT`, `GITCLAW_TLS_KEY`):
//! git clones and pushes over it trusting the CA, refuses a server it cannot
//! verify, and a certificate replaced on disk is served from the next
//! handshake on without a restart, while a broken replacement is refused and
//! the certificate in use kept.

mod common;

use std::{path::Path, process::Output, time::Duration};

use common::{tls::Certs, *};

/// `git` with `args`, trusting only the CA in `ca` (the variable, which wins
/// over any `http.sslCAInfo`).
fn git_trusting(ca: &Path, dir: &Path, args: &[&str]) -> Output {
    git_cmd(dir)
        .env("GIT_SSL_CAINFO", ca)
        .args(args)
        .output()
        .expect("git runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "git failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Put `from`'s certificate and key where the server reads its own, each by
/// an atomic rename, as a renewal does.
fn install(from: &Certs, cert: &Path, key: &Path) {
    for (src, dst) in [(from.cert(), cert), (from.key(), key)] {
        let staged = dst.with_extension("new");
        std::fs::copy(src, &staged).unwrap();
        std::fs::rename(&staged, dst).unwrap();
    }
}

#[test]
fn git_clones_and_pushes_over_https_and_a_renewed_certificate_is_served_without_a_restart() {
    let first = Certs::new();
    let live = tempfile::tempdir().unwrap();
    let (cert, key) = (live.path().join("cert.pem"), live.path().join("key.pem"));
    install(&first, &cert, &key);
    let mut server = ServerProcess::start(&[
        ("GITCLAW_TLS_CERT", cert.to_string_lossy().into_owned()),
        ("GITCLAW_TLS_KEY", key.to_string_lossy().into_owned()),
    ]);
    let out = server.command(&["repo", "create", "sec/ure"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The clone URL a repository reports is an https one.
    let printed = String::from_utf8_lossy(&out.stdout);
    let clone_url = printed.lines().last().unwrap_or_default();
    assert!(
        clone_url.starts_with("https://") && clone_url.ends_with("/sec/ure.git"),
        "{printed}"
    );
    let url = format!("https://{}/sec/ure.git", server.addr);

    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 3);
    ok(&git_trusting(
        &first.ca(),
        &src,
        &["push", "-q", &url, "refs/heads/*:refs/heads/*"],
    ));
    let dest = work.path().join("clone");
    ok(&git_trusting(
        &first.ca(),
        work.path(),
        &["clone", "-q", &url, dest.to_str().unwrap()],
    ));
    assert_eq!(
        git(&dest, &["rev-parse", "HEAD"]),
        git(&src, &["rev-parse", "HEAD"])
    );

    // A client that does not trust the CA refuses the server.
    let stranger = Certs::new();
    let refused = git_trusting(&stranger.ca(), work.path(), &["ls-remote", &url]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("certificate"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // Plain HTTP on the TLS port gets nowhere, and the server goes on.
    let plain = git_output(
        work.path(),
        &["ls-remote", &format!("http://{}/sec/ure.git", server.addr)],
    );
    assert!(!plain.status.success());

    // When the certificate in use expires is exported.
    let expiry = |ca: &Path| -> i64 {
        let out = std::process::Command::new("curl")
            .args(["-sf", "--cacert"])
            .arg(ca)
            .arg(format!("https://{}/metrics", server.addr))
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("gitclaw_tls_certificate_expiry_timestamp_seconds "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(expiry(&first.ca()), first.server_not_after());

    // Renewal: new files in place; handshakes after the next look at them
    // present the new certificate, and the old CA no longer verifies it.
    let renewed = Certs::valid_for(90);
    install(&renewed, &cert, &key);
    wait_until(
        Duration::from_secs(20),
        "the renewed certificate is served",
        || {
            git_trusting(&renewed.ca(), work.path(), &["ls-remote", &url])
                .status
                .success()
        },
    );
    assert!(
        !git_trusting(&first.ca(), work.path(), &["ls-remote", &url])
            .status
            .success()
    );
    assert_eq!(
        expiry(&renewed.ca()),
        renewed.server_not_after(),
        "the renewed certificate's expiry, 90 days out"
    );

    // A broken replacement (a key that is not the certificate's): handshakes
    // go on with the renewed certificate while the server notices the files
    // changed, says they cannot be used, and keeps it.
    let other = Certs::new();
    let staged = key.with_extension("new");
    std::fs::copy(other.key(), &staged).unwrap();
    std::fs::rename(&staged, &key).unwrap();
    let head = git(&src, &["rev-parse", "HEAD"]).trim().to_string();
    wait_until(
        Duration::from_secs(20),
        "the refused replacement is logged",
        || {
            let listed = ok(&git_trusting(
                &renewed.ca(),
                work.path(),
                &["ls-remote", &url],
            ));
            assert!(listed.contains(&head), "{listed}");
            server
                .log
                .so_far()
                .iter()
                .any(|l| l.contains("cannot be used"))
        },
    );
    // And after it was seen, still the renewed certificate.
    ok(&git_trusting(
        &renewed.ca(),
        work.path(),
        &["ls-remote", &url],
    ));
}

#[test]
fn a_certificate_without_its_key_or_a_mismatched_pair_is_refused_at_start() {
    let certs = Certs::new();
    let other = Certs::new();
    let check = |vars: &[(&str, std::path::PathBuf)]| {
        let out = gitclaw_check(vars);
        assert_eq!(out.status.code(), Some(2), "a configuration error");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = check(&[("GITCLAW_TLS_CERT", certs.cert())]);
    assert!(err.contains("GITCLAW_TLS_KEY: is needed"), "{err}");
    let err = check(&[
        ("GITCLAW_TLS_CERT", certs.cert()),
        ("GITCLAW_TLS_KEY", other.key()),
    ]);
    assert!(
        err.contains("GITCLAW_TLS_KEY:") && err.contains("is not the key of the certificate"),
        "{err}"
    );
    let err = check(&[
        ("GITCLAW_TLS_CERT", certs.key()),
        ("GITCLAW_TLS_KEY", certs.key()),
    ]);
    assert!(
        err.contains("GITCLAW_TLS_CERT:") && err.contains("holds no PEM certificate"),
        "{err}"
    );
    // A key file that cannot be read names the key's setting.
    let err = check(&[
        ("GITCLAW_TLS_CERT", certs.cert()),
        (
            "GITCLAW_TLS_KEY",
            certs.cert().with_file_name("missing.key"),
        ),
    ]);
    assert!(
        err.contains("GITCLAW_TLS_KEY: cannot read") && err.contains("missing.key"),
        "{err}"
    );
}

#[test]
fn the_metrics_listener_serves_https_with_the_same_certificate_when_asked() {
    let certs = Certs::new();
    let tls = [
        (
            "GITCLAW_TLS_CERT",
            certs.cert().to_string_lossy().into_owned(),
        ),
        (
            "GITCLAW_TLS_KEY",
            certs.key().to_string_lossy().into_owned(),
        ),
    ];
    let mut server = ServerProcess::start(
        &[
            tls.to_vec(),
            vec![
                ("GITCLAW_METRICS_LISTEN", "127.0.0.1:0".into()),
                ("GITCLAW_METRICS_TLS", "true".into()),
            ],
        ]
        .concat(),
    );
    let line = server.log.wait_for(Duration::from_secs(30), |l| {
        l.contains("metrics are served")
    });
    assert!(line.contains("https"), "{line}");
    let metrics = line
        .split_once("listen=")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    let curl = |url: String| {
        std::process::Command::new("curl")
            .args(["-sf", "--cacert"])
            .arg(certs.ca())
            .arg(url)
            .output()
            .expect("curl runs")
    };
    let scraped = curl(format!("https://{metrics}/metrics"));
    assert!(
        String::from_utf8_lossy(&scraped.stdout).contains("gitclaw_build_info"),
        "{}",
        String::from_utf8_lossy(&scraped.stderr)
    );
    assert!(curl(format!("https://{metrics}/healthz")).status.success());
    assert!(
        !curl(format!("http://{metrics}/metrics")).status.success(),
        "no plain HTTP there"
    );

    // Without a metrics listener, or without a certificate, it is an error.
    let out = gitclaw_check(&[tls.to_vec(), vec![("GITCLAW_METRICS_TLS", "true".into())]].concat());
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("GITCLAW_METRICS_TLS: needs"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
