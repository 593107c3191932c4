//! Stand-in for the S3 backend's configuration until it is built into the server:
//! setting `S3_BUCKET` is refused with a clear message instead of silently using
//! the filesystem.

use std::sync::Arc;

use gitclaw_storage::{ObjectStorageBackend, StorageError};

/// S3 settings (none are accepted yet).
#[derive(Debug, Clone)]
pub struct S3Config {
    _private: (),
}

/// One problem with the S3 settings.
pub struct ConfigProblem {
    pub variable: &'static str,
    pub message: String,
}

impl S3Config {
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<S3Config>, Vec<ConfigProblem>> {
        match get("S3_BUCKET") {
            None => Ok(None),
            Some(_) => Err(vec![ConfigProblem {
                variable: "S3_BUCKET",
                message:
                    "this build has no S3 backend; unset S3_BUCKET to use the filesystem store"
                        .into(),
            }]),
        }
    }
}

pub async fn connect(_config: &S3Config) -> Result<Arc<dyn ObjectStorageBackend>, StorageError> {
    Err(StorageError::Other("this build has no S3 backend".into()))
}
