//! The OpenAPI document at /api/openapi.json matches the routes the server answers.

mod common;

use std::collections::BTreeSet;

use common::*;

#[test]
fn openapi_document_matches_the_real_routes() {
    let server = Server::start();
    server.create_repo("doc", "repo");
    let (status, body) = http(server.addr, "GET", "/api/openapi.json", &[], b"");
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));

    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let expected: BTreeSet<(String, String)> = [
        ("POST", "/api/v1/repos"),
        ("GET", "/api/v1/repos"),
        ("GET", "/api/v1/repos/{owner}/{name}"),
        ("PATCH", "/api/v1/repos/{owner}/{name}"),
        ("DELETE", "/api/v1/repos/{owner}/{name}"),
        ("POST", "/api/v1/repos/{owner}/{name}/fork"),
        ("GET", "/api/v1/repos/{owner}/{name}/stats"),
        ("GET", "/api/v1/repos/{owner}/{name}/audit"),
        ("GET", "/api/v1/repos/{owner}/{name}/archive/{file}"),
        ("GET", "/api/v1/repos/{owner}/{name}/raw/{path}"),
        ("GET", "/api/v1/repos/{owner}/{name}/refs"),
        ("POST", "/api/v1/repos/{owner}/{name}/refs"),
        ("GET", "/api/v1/repos/{owner}/{name}/tree"),
        ("GET", "/api/v1/repos/{owner}/{name}/tree/{path}"),
        ("GET", "/api/v1/repos/{owner}/{name}/commits"),
        ("GET", "/api/v1/repos/{owner}/{name}/commits/{revision}"),
        ("GET", "/api/v1/repos/{owner}/{name}/compare/{spec}"),
        ("POST", "/api/v1/repos/{owner}/{name}/hooks"),
        ("GET", "/api/v1/repos/{owner}/{name}/hooks"),
        ("DELETE", "/api/v1/repos/{owner}/{name}/hooks/{id}"),
        ("GET", "/api/v1/repos/{owner}/{name}/hooks/{id}/deliveries"),
        (
            "POST",
            "/api/v1/repos/{owner}/{name}/hooks/{id}/deliveries/{delivery}/redeliver",
        ),
        ("POST", "/api/v1/repos/{owner}/{name}/protected-refs"),
        ("GET", "/api/v1/repos/{owner}/{name}/protected-refs"),
        ("DELETE", "/api/v1/repos/{owner}/{name}/protected-refs/{id}"),
        ("POST", "/api/v1/tokens"),
        ("GET", "/api/v1/tokens"),
        ("DELETE", "/api/v1/tokens/{id}"),
        ("GET", "/api/v1/migrations"),
        ("GET", "/api/v1/migrations/{owner}/{name}"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    assert_eq!(
        documented, expected,
        "every API route is documented, and only those"
    );

    // Every documented route is really served: a route the router lacks answers
    // 404/405 with no JSON error body.
    for (method, path) in &documented {
        let concrete = path
            .replace("{owner}", "doc")
            .replace("{name}", "repo")
            .replace("{id}", "no-such-id")
            .replace("{delivery}", "1")
            .replace("{file}", "main.tar.gz")
            .replace("{path}", "README.md");
        let (status, body) = http(
            server.addr,
            method,
            &concrete,
            &[("Content-Type", "application/json")],
            b"{}",
        );
        assert_ne!(status, 405, "{method} {path} is not routed");
        let json: serde_json::Value =
            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        assert!(
            !(status == 404 && json.is_null()),
            "{method} {path} is not routed (404 without an API error body)"
        );
    }
}
