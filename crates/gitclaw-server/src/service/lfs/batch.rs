//! The batch request (Git LFS API v1, `basic` transfer): for each object, what
//! the client must do to download or upload it, or why it cannot.
//!
//! A request is refused whole when it is not one (unknown operation, no
//! `basic` among the transfers offered, a hash other than SHA-256, more than
//! [`MAX_BATCH_OBJECTS`] objects); an object with a bad oid or size, over the
//! size limit, or (for a download) not recorded gets an error of its own and
//! the others are answered.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::{object_key, size_refusal, LfsError};
use crate::app::AppState;
use gitclaw_metadata::Repo;
use gitclaw_storage::LfsOid;

/// The most objects one batch may name (git-lfs sends 100 at a time).
pub const MAX_BATCH_OBJECTS: usize = 1000;

/// A batch request as the client sent it.
#[derive(Debug, Deserialize)]
pub struct BatchRequest {
    pub operation: String,
    #[serde(default)]
    pub transfers: Option<Vec<String>>,
    pub objects: Vec<RequestedObject>,
    #[serde(default)]
    pub hash_algo: Option<String>,
}

/// One object of a batch request. The size is read leniently so that a
/// negative, fractional or huge one is that object's error, not the request's.
#[derive(Debug, Deserialize)]
pub struct RequestedObject {
    pub oid: String,
    #[serde(default)]
    pub size: serde_json::Value,
}

/// The batch answer.
#[derive(Debug, Serialize)]
pub struct BatchResponse {
    pub transfer: &'static str,
    pub objects: Vec<ObjectAnswer>,
    pub hash_algo: &'static str,
}

/// The answer for one object: actions to take, none (already there), or an error.
#[derive(Debug, Serialize)]
pub struct ObjectAnswer {
    pub oid: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authenticated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actions: Option<Actions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ObjectError>,
}

#[derive(Debug, Default, Serialize)]
pub struct Actions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download: Option<Action>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload: Option<Action>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<Action>,
}

/// A request the client sends: where, with which headers, until when.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub href: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub header: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// A request to the store itself (presigned), not to this server.
    #[serde(skip)]
    pub presigned: bool,
}

#[derive(Debug, Serialize)]
pub struct ObjectError {
    pub code: u16,
    pub message: String,
}

/// Where the server's own LFS URLs of this repository are, and the credentials
/// a client sends to them.
#[derive(Debug, Clone)]
pub struct Links {
    /// `http(s)://host/{owner}/{repo}/info/lfs`, spelled as the client asked.
    pub base: String,
    /// The caller's `Authorization` header, repeated in actions on the
    /// server's own URLs so that they are authorized as the batch was.
    pub authorization: Option<String>,
}

impl Links {
    fn action(&self, href: String) -> Action {
        let mut header = BTreeMap::new();
        if let Some(value) = &self.authorization {
            header.insert("Authorization".to_string(), value.clone());
        }
        Action {
            href,
            header,
            expires_in: None,
            expires_at: None,
            presigned: false,
        }
    }

    /// GET (download) and PUT (upload) of the object's content.
    pub fn object(&self, oid: &LfsOid) -> Action {
        self.action(format!("{}/objects/{oid}", self.base))
    }

    /// POST `{oid, size}` once an upload is done.
    pub fn verify(&self) -> Action {
        self.action(format!("{}/verify", self.base))
    }
}

/// Which way the batch goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Download,
    Upload,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Download => "download",
            Operation::Upload => "upload",
        }
    }
}

/// Check the request as a whole; returns its operation.
pub fn check_request(request: &BatchRequest) -> Result<Operation, LfsError> {
    let operation = match request.operation.as_str() {
        "download" => Operation::Download,
        "upload" => Operation::Upload,
        other => {
            let shown: String = other.chars().take(40).collect();
            return Err(LfsError::Invalid(format!(
                "unknown operation {shown:?}: use \"download\" or \"upload\""
            )));
        }
    };
    if let Some(transfers) = &request.transfers {
        if !transfers.is_empty() && !transfers.iter().any(|t| t == "basic") {
            return Err(LfsError::Invalid(
                "no transfer adapter in common: this server offers only \"basic\"".into(),
            ));
        }
    }
    if let Some(algo) = &request.hash_algo {
        if algo != "sha256" {
            return Err(LfsError::Unsupported(
                "unsupported hash algorithm: this server uses \"sha256\"".into(),
            ));
        }
    }
    if request.objects.len() > MAX_BATCH_OBJECTS {
        return Err(LfsError::TooLarge(format!(
            "{} objects in one batch; at most {MAX_BATCH_OBJECTS} are accepted",
            request.objects.len()
        )));
    }
    Ok(operation)
}

/// One object of the request, checked.
enum Checked {
    Valid { oid: LfsOid, size: u64 },
    Refused(Box<ObjectAnswer>),
}

fn refused(oid: &str, size: u64, code: u16, message: String) -> ObjectAnswer {
    ObjectAnswer {
        oid: oid.chars().take(64).collect(),
        size,
        authenticated: None,
        actions: None,
        error: Some(ObjectError { code, message }),
    }
}

fn check_object(object: &RequestedObject) -> Checked {
    let size = object.size.as_u64();
    let Some(oid) = LfsOid::parse(&object.oid) else {
        return Checked::Refused(Box::new(refused(
            &object.oid,
            size.unwrap_or(0),
            422,
            super::bad_oid(&object.oid),
        )));
    };
    match size {
        Some(size) if size <= i64::MAX as u64 => Checked::Valid { oid, size },
        _ => Checked::Refused(Box::new(refused(
            &object.oid,
            0,
            422,
            "invalid size: an LFS object's size is a whole number of bytes, 0 or more".into(),
        ))),
    }
}

/// Answer a checked batch request for `repo` (the caller was authorized for
/// its operation).
pub async fn answer(
    state: &AppState,
    repo: &Repo,
    operation: Operation,
    objects: &[RequestedObject],
    links: &Links,
) -> Result<BatchResponse, LfsError> {
    let checked: Vec<Checked> = objects.iter().map(check_object).collect();
    let oids: Vec<String> = checked
        .iter()
        .filter_map(|c| match c {
            Checked::Valid { oid, .. } => Some(oid.to_hex()),
            Checked::Refused(_) => None,
        })
        .collect();
    let recorded = state.meta.lfs_objects(&repo.id, &oids).await?;
    let mut answers = Vec::with_capacity(checked.len());
    for item in checked {
        let answer = match item {
            Checked::Refused(answer) => *answer,
            Checked::Valid { oid, size } => match operation {
                Operation::Download => download(state, repo, &oid, &recorded, links).await?,
                Operation::Upload => upload(state, repo, &oid, size, &recorded, links).await?,
            },
        };
        let outcome = match (&answer.error, &answer.actions) {
            (Some(_), _) => "error",
            (None, None) => "present",
            (None, Some(actions)) => {
                let action = actions.download.as_ref().or(actions.upload.as_ref());
                if action.is_some_and(|a| a.presigned) {
                    "presigned"
                } else {
                    "server"
                }
            }
        };
        state
            .metrics
            .lfs_batch_objects
            .with_label_values(&[operation.as_str(), outcome])
            .inc();
        answers.push(answer);
    }
    Ok(BatchResponse {
        transfer: "basic",
        objects: answers,
        hash_algo: "sha256",
    })
}

/// When a presigned action expires: `expires_in` seconds and `expires_at`.
fn expiry(state: &AppState) -> (u64, String) {
    let secs = state.config.lfs.url_expiry.as_secs();
    let at = crate::auth::now_secs().saturating_add(i64::try_from(secs).unwrap_or(i64::MAX));
    (secs, crate::time::rfc3339(at))
}

fn presigned_action(state: &AppState, request: gitclaw_storage::PresignedRequest) -> Action {
    let (expires_in, expires_at) = expiry(state);
    Action {
        href: request.url,
        // Every header the signature covers must be sent as signed.
        header: request
            .headers
            .into_iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
            .collect(),
        expires_in: Some(expires_in),
        expires_at: Some(expires_at),
        presigned: true,
    }
}

async fn download(
    state: &AppState,
    repo: &Repo,
    oid: &LfsOid,
    recorded: &HashMap<String, u64>,
    links: &Links,
) -> Result<ObjectAnswer, LfsError> {
    let hex = oid.to_hex();
    let Some(&size) = recorded.get(&hex) else {
        return Ok(refused(&hex, 0, 404, "object not found".into()));
    };
    let key = object_key(&repo.id, oid)?;
    let action = match state
        .store
        .presign_get(&key, state.config.lfs.url_expiry)
        .await?
    {
        Some(request) => presigned_action(state, request),
        None => links.object(oid),
    };
    Ok(ObjectAnswer {
        oid: hex,
        size,
        authenticated: Some(true),
        actions: Some(Actions {
            download: Some(action),
            ..Default::default()
        }),
        error: None,
    })
}

async fn upload(
    state: &AppState,
    repo: &Repo,
    oid: &LfsOid,
    size: u64,
    recorded: &HashMap<String, u64>,
    links: &Links,
) -> Result<ObjectAnswer, LfsError> {
    let hex = oid.to_hex();
    if recorded.contains_key(&hex) {
        // Already there: nothing to do.
        return Ok(ObjectAnswer {
            oid: hex,
            size,
            authenticated: None,
            actions: None,
            error: None,
        });
    }
    let presigned = state.store.name() == "s3";
    if let Some(message) = size_refusal(size, state.config.lfs.max_object_bytes, presigned) {
        return Ok(refused(&hex, size, 422, message));
    }
    let key = object_key(&repo.id, oid)?;
    let action = match state
        .store
        .presign_put(&key, oid, size, state.config.lfs.url_expiry)
        .await?
    {
        Some(request) => presigned_action(state, request),
        None => links.object(oid),
    };
    Ok(ObjectAnswer {
        oid: hex,
        size,
        authenticated: Some(true),
        actions: Some(Actions {
            upload: Some(action),
            verify: Some(links.verify()),
            ..Default::default()
        }),
        error: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: &str) -> BatchRequest {
        serde_json::from_str(json).expect("a batch request")
    }

    #[test]
    fn requests_are_checked_as_a_whole() {
        let ok = request(r#"{"operation":"upload","objects":[]}"#);
        assert_eq!(check_request(&ok).unwrap(), Operation::Upload);
        let basic_offered =
            request(r#"{"operation":"download","transfers":["tus","basic"],"objects":[]}"#);
        assert_eq!(check_request(&basic_offered).unwrap(), Operation::Download);
        for (json, expect) in [
            (
                r#"{"operation":"delete","objects":[]}"#,
                "unknown operation",
            ),
            (
                r#"{"operation":"upload","transfers":["tus"],"objects":[]}"#,
                "basic",
            ),
            (
                r#"{"operation":"upload","hash_algo":"sha512","objects":[]}"#,
                "sha256",
            ),
        ] {
            let err = check_request(&request(json)).unwrap_err().to_string();
            assert!(err.contains(expect), "{json}: {err}");
        }
        let many = format!(
            r#"{{"operation":"upload","objects":[{}]}}"#,
            vec![r#"{"oid":"x","size":1}"#; MAX_BATCH_OBJECTS + 1].join(",")
        );
        assert!(matches!(
            check_request(&request(&many)),
            Err(LfsError::TooLarge(_))
        ));
    }

    #[test]
    fn a_bad_oid_or_size_is_that_objects_error() {
        let good = "a".repeat(64);
        let objects: Vec<RequestedObject> = serde_json::from_str(&format!(
            r#"[{{"oid":"{good}","size":3}},{{"oid":"{good}","size":-1}},
                {{"oid":"{good}","size":1e300}},{{"oid":"{good}","size":"3"}},
                {{"oid":"{good}"}},{{"oid":"{}","size":1}},{{"oid":"ABC","size":1}}]"#,
            good.to_uppercase()
        ))
        .unwrap();
        let verdicts: Vec<Option<u16>> = objects
            .iter()
            .map(|o| match check_object(o) {
                Checked::Valid { .. } => None,
                Checked::Refused(answer) => answer.error.map(|e| e.code),
            })
            .collect();
        assert_eq!(
            verdicts,
            [
                None,
                Some(422),
                Some(422),
                Some(422),
                Some(422),
                Some(422),
                Some(422)
            ]
        );
    }
}
