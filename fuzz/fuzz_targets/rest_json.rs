//! REST API request bodies and queries through the real router, on a server
//! with SQLite and the filesystem store: creating repositories, forks, tokens
//! and ref updates from arbitrary JSON, listing with arbitrary queries, and
//! arbitrary revisions, paths and compares. Bad input is a 4xx with a reason,
//! never a 5xx or a panic.
#![no_main]
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use axum::{body::Body, http::Request};
use gitclaw_server::{AppState, Config};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const ADMIN: &str = "fuzz-admin-token";

struct Server {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    _data: tempfile::TempDir,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let data = gitclaw_fuzz::scratch_dir();
        let mut config = Config::for_data_dir(data.path());
        config.admin_token = Some(ADMIN.to_string());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let router = runtime.block_on(async {
            let state = AppState::open(config).await.expect("the server opens");
            let router = gitclaw_server::http::router(state);
            // A repository to fork and to list.
            let seed = Request::post("/api/v1/repos")
                .header("authorization", format!("Bearer {ADMIN}"))
                .header("content-type", "application/json")
                .body(Body::from(r#"{"owner":"fuzz","name":"seed"}"#))
                .unwrap();
            let answer = router.clone().oneshot(seed).await.unwrap();
            assert!(answer.status().is_success());
            router
        });
        Server {
            runtime,
            router,
            _data: data,
        }
    })
}

#[derive(Arbitrary, Debug)]
struct Input {
    route: u8,
    body: Vec<u8>,
    query: String,
    json_content_type: bool,
}

fuzz_target!(|input: Input| {
    let server = server();
    let seed = "/api/v1/repos/fuzz/seed";
    let (method, path) = match input.route % 11 {
        0 => ("POST", "/api/v1/repos".to_string()),
        1 => ("POST", format!("{seed}/fork")),
        2 => ("POST", "/api/v1/tokens".to_string()),
        3 => ("GET", format!("/api/v1/repos?{}", input.query)),
        4 => ("GET", format!("{seed}/audit?{}", input.query)),
        5 => ("POST", format!("{seed}/refs")),
        6 => ("GET", format!("{seed}/commits?{}", input.query)),
        7 => ("GET", format!("{seed}/commits/{}", input.query)),
        8 => ("GET", format!("{seed}/compare/{}", input.query)),
        9 => ("GET", format!("{seed}/tree/{}", input.query)),
        _ => ("GET", format!("{seed}/raw/README.md?{}", input.query)),
    };
    let Ok(request) = Request::builder()
        .method(method)
        .uri(&path)
        .header("authorization", format!("Bearer {ADMIN}"))
        .header(
            "content-type",
            if input.json_content_type {
                "application/json"
            } else {
                "text/plain"
            },
        )
        .body(Body::from(input.body))
    else {
        return; // not a URI a client could send
    };
    let status = server
        .runtime
        .block_on(server.router.clone().oneshot(request))
        .expect("the router answers")
        .status();
    assert!(!status.is_server_error(), "{method} {path}: {status}");
});
