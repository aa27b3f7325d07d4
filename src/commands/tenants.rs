//! `somaflow tenants import FILE.csv [--capsules CAPSULES.csv]`: loads
//! tenant and capsule metadata into the Redis hashes the enrich operator
//! reads (`tenant:{id}`, `capsule:{id}`; see `somaflow_operators::enrich`).
//!
//! Every line of every file is validated before anything is written
//! (`somaflow_operators::enrich::files`), so a bad file changes nothing;
//! errors name `FILE:LINE`.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use somaflow_operators::enrich::files::{CAPSULES, Record, TENANTS, listed, load};

use crate::config::Config;

/// Hashes written per pipelined round trip.
const WRITE_BATCH: usize = 500;
/// Shortest time allowed per round trip: `[redis] timeout_ms` is sized for
/// the pipeline's lookups, not for writing 500 hashes.
const MIN_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// What an import wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub tenants: usize,
    pub capsules: usize,
    /// The Redis URL, password hidden.
    pub url: String,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "imported {} tenants and {} capsules into {}",
            self.tenants, self.capsules, self.url
        )
    }
}

/// The URL with any password replaced, for messages.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// Validates `tenants` (and `capsules`), then writes every hash with HSET
/// in pipelined batches. Writes nothing when any line is invalid.
pub async fn import(
    config: &Config,
    tenants: &Path,
    capsules: Option<&Path>,
) -> anyhow::Result<ImportReport> {
    let Some(url) = config.redis.url.as_deref() else {
        bail!("no Redis to import into: set [redis] url in the config or SOMAFLOW_REDIS__URL");
    };
    let shown = redacted(url);
    let mut errors = Vec::new();
    let tenant_records = load(tenants, &TENANTS, &mut errors)?;
    let capsule_records = match capsules {
        Some(path) => load(path, &CAPSULES, &mut errors)?,
        None => Vec::new(),
    };
    if !errors.is_empty() {
        bail!(
            "{} invalid line(s); nothing was written to {shown}:\n{}",
            errors.len(),
            listed(&errors)
        );
    }

    let timeout = Duration::from_millis(config.redis.timeout_ms).max(MIN_WRITE_TIMEOUT);
    let hint = "is it running? `scripts/services.sh start redis` starts one on port 16379";
    let client = redis::Client::open(url).with_context(|| format!("Redis URL {shown}"))?;
    let mut connection = tokio::time::timeout(timeout, client.get_multiplexed_async_connection())
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {} ms", timeout.as_millis()))
        .and_then(|r| r.map_err(anyhow::Error::from))
        .with_context(|| format!("connecting to Redis at {shown} ({hint})"))?;
    let all: Vec<&Record> = tenant_records.iter().chain(&capsule_records).collect();
    let mut written = 0;
    for chunk in all.chunks(WRITE_BATCH) {
        let mut pipe = redis::pipe();
        for record in chunk {
            let command = pipe.cmd("HSET").arg(&record.key);
            for (field, value) in &record.fields {
                command.arg(*field).arg(value);
            }
            command.ignore();
        }
        tokio::time::timeout(timeout, pipe.query_async::<()>(&mut connection))
            .await
            .map_err(|_| anyhow::anyhow!("no answer within {} ms", timeout.as_millis()))
            .and_then(|r| r.map_err(anyhow::Error::from))
            .with_context(|| {
                format!(
                    "writing metadata to Redis at {shown} ({written} of {} hashes written)",
                    all.len()
                )
            })?;
        written += chunk.len();
        tracing::debug!(written, total = all.len(), "tenants import");
    }
    Ok(ImportReport {
        tenants: tenant_records.len(),
        capsules: capsule_records.len(),
        url: shown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_passwords_in_urls() {
        assert_eq!(
            redacted("redis://127.0.0.1:16379"),
            "redis://127.0.0.1:16379"
        );
        assert_eq!(
            redacted("redis://:s3cret@host:6379/2"),
            "redis://***@host:6379/2"
        );
        assert_eq!(redacted("rediss://user:pw@h/0"), "rediss://***@h/0");
    }

    #[tokio::test]
    async fn needs_a_redis_url_and_writes_nothing_from_a_bad_file() {
        let dir = std::env::temp_dir().join(format!("somaflow-tenants-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.csv");
        std::fs::write(
            &bad,
            "tenant_id,plan,region,monthly_budget_usd\nt1,gold,us,1\n",
        )
        .unwrap();
        let err = import(&Config::default(), &bad, None).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("set [redis] url in the config or SOMAFLOW_REDIS__URL"),
            "{err:#}"
        );
        // Validation fails before any connection is tried (nothing listens here).
        let mut config = Config::default();
        config.redis.url = Some("redis://127.0.0.1:1".into());
        let err = format!("{:#}", import(&config, &bad, None).await.unwrap_err());
        assert!(
            err.contains(&format!("{}:2: plan \"gold\"", bad.display())),
            "{err}"
        );
        assert!(err.contains("nothing was written"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
