//! `/api/v1/repos/{owner}/{name}/archive/{REVISION}.tar.gz`: a revision's
//! files as `git archive` makes them, for whoever may read the repository.

use axum::{
    extract::State,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{bad_query, caller, find_readable, if_none_match, ApiError};
use crate::{
    app::AppState,
    http::body::streamed_body,
    service::archive::{self, Format},
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveQuery {
    /// Put before every path instead of `NAME-REVISION/`; empty for none.
    pub prefix: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/repos/{owner}/{name}/archive/{file}", description = "The files of a revision as `git archive --format=tar` makes them, byte for byte (gzipped for `.tar.gz` and `.tgz`), or as `--format=zip` does (`.zip`: the same entries, attributes and comment; deflated by another zlib): every path under `NAME-REVISION/` unless `prefix` says otherwise, each file's time the commit's. The revision is a branch, tag or other ref name (as git resolves a short name: `refs/tags/` before `refs/heads/`), `HEAD`, or a full commit id that a ref reaches. `export-ignore` in the tree's `.gitattributes` files leaves paths out, and `ident`, `text`, `eol` and `crlf` convert files, as in git; `export-subst` and `working-tree-encoding` are not applied. Answers `ETag`, and `304` to a matching `If-None-Match`. An archive takes a pack-generation turn: `503` when too many wait.", params(("owner" = String, Path), ("name" = String, Path), ("file" = String, Path, description = "REVISION.tar.gz, REVISION.tgz, REVISION.tar or REVISION.zip; the revision may hold slashes"), ("prefix" = Option<String>, Query, description = "a relative path put before every path (end it with `/` for a directory); empty for none")), responses((status = 200, content_type = "application/gzip", description = "the archive, streamed"), (status = 304, description = "the archive the If-None-Match names"), (status = 400, body = ApiError, description = "not an archive name, or a bad revision or prefix"), (status = 401, body = ApiError), (status = 404, body = ApiError, description = "no such repository or revision"), (status = 503, body = ApiError, description = "too many packs and archives are being made")))]
pub async fn repo_archive(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path((owner, name, file)): axum::extract::Path<(String, String, String)>,
    query: Result<axum::extract::Query<ArchiveQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let axum::extract::Query(query) = query.map_err(bad_query)?;
    let caller = caller(&state, &headers).await?;
    let repo = find_readable(&state, &caller, &owner, &name).await?;
    let Some((revision, format)) = Format::split(&file) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            format!("'{file}' is not REVISION.tar.gz, REVISION.tgz, REVISION.tar or REVISION.zip"),
        ));
    };
    let made = archive::prepare(&state, &repo, revision, format, query.prefix.as_deref()).await?;
    let etag = made.etag();
    let matches = if_none_match(&headers, &etag);
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let disposition = content_disposition(&made.file_name);
        let source = source_of(&state, made).await?;
        let size = source.size();
        let (mut writer, body) = streamed_body();
        let metrics = state.metrics.clone();
        let label = format.label();
        crate::metrics::spawn_blocking(move || {
            let outcome = match source.write(&mut writer) {
                Ok(Some(summary)) => {
                    tracing::info!(files = summary.files, bytes = summary.bytes, "archive sent");
                    "sent"
                }
                Ok(None) => "cached",
                Err(err) => {
                    err.log("archive");
                    writer.fail("the archive could not be completed");
                    "failed"
                }
            };
            metrics.archives.with_label_values(&[label, outcome]).inc();
        });
        let mut response = Response::new(body);
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
        if let Ok(value) = HeaderValue::from_str(&disposition) {
            headers.insert(header::CONTENT_DISPOSITION, value);
        }
        if let Some(size) = size {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
        }
        response
    };
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    Ok(response)
}

/// Where the archive comes from; a refusal of a turn counted as such.
async fn source_of(state: &AppState, made: archive::Archive) -> Result<archive::Source, ApiError> {
    let label = made.format.label();
    made.source(state).await.map_err(|err| {
        if matches!(err, crate::error::GitError::Busy(_)) {
            state
                .metrics
                .archives
                .with_label_values(&[label, "refused"])
                .inc();
        }
        ApiError::from(err)
    })
}

/// `attachment` with `name`: as it is when it is plain ASCII, else an ASCII
/// stand-in (`_` for each other character) and the UTF-8 name (RFC 6266).
fn content_disposition(name: &str) -> String {
    let plain: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if plain == name {
        return format!("attachment; filename=\"{name}\"");
    }
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{plain}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_that_are_not_ascii_are_given_twice() {
        assert_eq!(
            content_disposition("app-v1.0.tar.gz"),
            "attachment; filename=\"app-v1.0.tar.gz\""
        );
        assert_eq!(
            content_disposition("app-caf\u{e9}.zip"),
            "attachment; filename=\"app-caf_.zip\"; filename*=UTF-8''app-caf%C3%A9.zip"
        );
        assert_eq!(
            content_disposition("a\"b.tar"),
            "attachment; filename=\"a_b.tar\"; filename*=UTF-8''a%22b.tar"
        );
    }
}
