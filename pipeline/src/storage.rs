//! Where the lake and checkpoints live: a local path or an object-store URL,
//! resolved once into a store and a key prefix.

use std::sync::Arc;

use datafusion::object_store::ObjectStore;
use datafusion::object_store::local::LocalFileSystem;
use datafusion::object_store::path::Path;
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{location:?} is not a usable location: {reason}")]
    Location { location: String, reason: String },
    #[error(transparent)]
    ObjectStore(#[from] datafusion::object_store::Error),
}

/// A root in an object store: `url` names the store (`file:///`,
/// `s3://bucket`), `prefix` the folder inside it.
#[derive(Clone, Debug)]
pub struct StorageLocation {
    pub store: Arc<dyn ObjectStore>,
    pub store_url: Url,
    pub prefix: Path,
}

impl StorageLocation {
    /// Accepts a local path (created if missing), `file://…` or `s3://bucket/prefix`
    /// (credentials and region from the usual `AWS_*` environment variables).
    pub fn parse(location: &str) -> Result<StorageLocation, StorageError> {
        let err = |reason: String| StorageError::Location {
            location: location.to_string(),
            reason,
        };
        if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(err("no bucket name".into()));
            }
            let store = datafusion::object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(|e| err(e.to_string()))?;
            let store_url =
                Url::parse(&format!("s3://{bucket}")).map_err(|e| err(e.to_string()))?;
            return Ok(StorageLocation {
                store: Arc::new(store),
                store_url,
                prefix: Path::from(prefix.trim_matches('/')),
            });
        }
        let path = match location.strip_prefix("file://") {
            Some(p) => std::path::PathBuf::from(p),
            None if location.contains("://") => {
                return Err(err(
                    "only local paths, file:// and s3:// are supported".into()
                ));
            }
            None => std::path::PathBuf::from(location),
        };
        std::fs::create_dir_all(&path).map_err(|e| err(format!("cannot create it: {e}")))?;
        let abs = path.canonicalize().map_err(|e| err(e.to_string()))?;
        let prefix = Path::from_absolute_path(&abs).map_err(|e| err(e.to_string()))?;
        let store_url = Url::parse("file:///").map_err(|e| err(e.to_string()))?;
        Ok(StorageLocation {
            store: Arc::new(LocalFileSystem::new()),
            store_url,
            prefix,
        })
    }

    /// A key below the prefix.
    pub fn path(&self, relative: &str) -> Path {
        let mut p = self.prefix.clone();
        for part in relative.split('/').filter(|s| !s.is_empty()) {
            p = p.clone().join(part);
        }
        p
    }

    /// URL of a folder below the prefix, as DataFusion's listing tables want it.
    pub fn folder_url(&self, relative: &str) -> String {
        let base = self.store_url.as_str();
        let sep = if base.ends_with('/') { "" } else { "/" };
        format!("{base}{sep}{}/", self.path(relative))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_become_absolute_file_urls() {
        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path().join("lake");
        let loc = StorageLocation::parse(lake.to_str().unwrap()).unwrap();
        assert!(lake.is_dir(), "a missing local folder is created");
        assert_eq!(loc.store_url.as_str(), "file:///");
        let expected = format!(
            "file://{}/conversations/",
            lake.canonicalize().unwrap().display()
        );
        assert_eq!(loc.folder_url("conversations"), expected);
        assert_eq!(
            loc.path("a/b").as_ref(),
            format!("{}/a/b", loc.prefix.as_ref())
        );
    }

    #[test]
    fn s3_urls_need_only_configuration() {
        // Building the client makes no request; region and credentials come
        // from the environment when it runs for real.
        let loc = StorageLocation::parse("s3://soma-lake/prod/events").unwrap();
        assert_eq!(loc.store_url.as_str(), "s3://soma-lake");
        assert_eq!(loc.prefix.as_ref(), "prod/events");
        assert_eq!(
            loc.folder_url("billing_events"),
            "s3://soma-lake/prod/events/billing_events/"
        );
        assert!(StorageLocation::parse("s3:///nobucket").is_err());
        assert!(
            StorageLocation::parse("gs://elsewhere/x")
                .unwrap_err()
                .to_string()
                .contains("s3://")
        );
    }
}
