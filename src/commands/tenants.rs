//! `somaflow tenants import FILE.csv [--capsules CAPSULES.csv]`: loads
//! tenant and capsule metadata into the Redis hashes the enrich operator
//! reads (`tenant:{id}`, `capsule:{id}`; see `somaflow_operators::enrich`).
//!
//! Every line of every file is validated before anything is written, so a
//! bad file changes nothing; errors name `FILE:LINE`. The CSV is the simple
//! kind: a fixed header, comma-separated fields, no quoting.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use somaflow_operators::enrich::{CAPSULE_KEY_PREFIX, TENANT_KEY_PREFIX};
use somaflow_pipeline::events::decimal::parse_decimal;

use crate::config::Config;

/// `(id, hash fields)` per tenant or capsule, as [`read_metadata`] returns them.
pub type Hashes = Vec<(String, HashMap<String, String>)>;

/// Hashes written per pipelined round trip.
const WRITE_BATCH: usize = 500;
/// Shortest time allowed per round trip: `[redis] timeout_ms` is sized for
/// the pipeline's lookups, not for writing 500 hashes.
const MIN_WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Errors listed before the rest are only counted.
const MAX_LISTED_ERRORS: usize = 50;

pub const PLANS: [&str; 3] = ["free", "pro", "enterprise"];
pub const REGIONS: [&str; 3] = ["us", "eu", "apac"];

const TENANT_HEADER: [&str; 4] = ["tenant_id", "plan", "region", "monthly_budget_usd"];
const CAPSULE_HEADER: [&str; 3] = ["capsule_id", "author_id", "price_usd"];

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

/// One hash to write: its key and fields, in header order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    key: String,
    fields: Vec<(&'static str, String)>,
}

/// A line that cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LineError {
    line: usize,
    reason: String,
}

/// What a file holds: its header, key prefix and row rules.
struct CsvKind {
    header: &'static [&'static str],
    prefix: &'static str,
    /// What one row describes, for messages ("tenant").
    what: &'static str,
    check: fn(&[&str]) -> Result<(), String>,
}

const TENANTS: CsvKind = CsvKind {
    header: &TENANT_HEADER,
    prefix: TENANT_KEY_PREFIX,
    what: "tenant",
    check: check_tenant,
};

const CAPSULES: CsvKind = CsvKind {
    header: &CAPSULE_HEADER,
    prefix: CAPSULE_KEY_PREFIX,
    what: "capsule",
    check: check_capsule,
};

fn check_tenant(f: &[&str]) -> Result<(), String> {
    check_id("tenant_id", f[0])?;
    if !PLANS.contains(&f[1]) {
        return Err(format!(
            "plan {:?} is not one of {}",
            f[1],
            PLANS.join(", ")
        ));
    }
    if !REGIONS.contains(&f[2]) {
        return Err(format!(
            "region {:?} is not one of {}",
            f[2],
            REGIONS.join(", ")
        ));
    }
    check_amount("monthly_budget_usd", f[3])
}

fn check_capsule(f: &[&str]) -> Result<(), String> {
    check_id("capsule_id", f[0])?;
    check_id("author_id", f[1])?;
    check_amount("price_usd", f[2])
}

fn check_id(name: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{name} is empty"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{name} {value:?} contains whitespace"));
    }
    Ok(())
}

/// A USD amount as enrich reads it: a decimal, at most 9 places, ≥ 0.
fn check_amount(name: &str, value: &str) -> Result<(), String> {
    match parse_decimal(value) {
        Ok(v) if v >= 0 => Ok(()),
        Ok(_) => Err(format!("{name} {value:?} is negative")),
        Err(reason) => Err(format!("{name}: {reason}")),
    }
}

/// Parses and validates a whole file; every bad line is reported.
fn parse_csv(text: &str, kind: &CsvKind) -> Result<Vec<Record>, Vec<LineError>> {
    let mut errors = Vec::new();
    let mut records = Vec::new();
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let header = kind.header.join(",");
    match lines.next() {
        Some((_, l)) if split(l.trim_start_matches('\u{feff}')) == kind.header => {}
        Some((n, l)) => errors.push(LineError {
            line: n,
            reason: format!("expected the header `{header}`, found `{l}`"),
        }),
        None => errors.push(LineError {
            line: 1,
            reason: format!("the file is empty; expected the header `{header}`"),
        }),
    }
    for (n, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| LineError { line: n, reason };
        if line.contains('"') {
            errors.push(bad("quoted fields are not supported".into()));
            continue;
        }
        let fields = split(line);
        if fields.len() != kind.header.len() {
            errors.push(bad(format!(
                "expected {} fields ({header}), found {}",
                kind.header.len(),
                fields.len()
            )));
            continue;
        }
        if let Err(reason) = (kind.check)(&fields) {
            errors.push(bad(reason));
            continue;
        }
        if let Some(first) = first_seen.insert(fields[0], n) {
            errors.push(bad(format!(
                "{} {:?} is already defined on line {first}",
                kind.what, fields[0]
            )));
            continue;
        }
        records.push(Record {
            key: format!("{}{}", kind.prefix, fields[0]),
            fields: kind.header[1..]
                .iter()
                .zip(&fields[1..])
                .map(|(name, value)| (*name, value.to_string()))
                .collect(),
        });
    }
    if errors.is_empty() {
        Ok(records)
    } else {
        Err(errors)
    }
}

fn split(line: &str) -> Vec<&str> {
    line.split(',').map(str::trim).collect()
}

/// Reads and validates one file; errors come back as `FILE:LINE: reason`.
fn load(path: &Path, kind: &CsvKind, errors: &mut Vec<String>) -> anyhow::Result<Vec<Record>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {} metadata from {}", kind.what, path.display()))?;
    Ok(parse_csv(&text, kind).unwrap_or_else(|bad| {
        errors.extend(
            bad.into_iter()
                .map(|e| format!("{}:{}: {}", path.display(), e.line, e.reason)),
        );
        Vec::new()
    }))
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

/// The first [`MAX_LISTED_ERRORS`] errors, one a line, and how many more.
fn listed(errors: &[String]) -> String {
    let more = errors.len().saturating_sub(MAX_LISTED_ERRORS);
    let mut listed = errors[..errors.len().min(MAX_LISTED_ERRORS)].join("\n");
    if more > 0 {
        listed.push_str(&format!("\n… and {more} more"));
    }
    listed
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

/// What [`import`] would write, without Redis: `(id, fields)` of every
/// tenant and capsule, validated the same way. `somaflow bench-chain` seeds
/// enrich with it.
pub fn read_metadata(tenants: &Path, capsules: &Path) -> anyhow::Result<(Hashes, Hashes)> {
    let mut errors = Vec::new();
    let tenant_records = load(tenants, &TENANTS, &mut errors)?;
    let capsule_records = load(capsules, &CAPSULES, &mut errors)?;
    if !errors.is_empty() {
        bail!("{} invalid line(s):\n{}", errors.len(), listed(&errors));
    }
    Ok((
        hashes(tenant_records, TENANT_KEY_PREFIX),
        hashes(capsule_records, CAPSULE_KEY_PREFIX),
    ))
}

/// Records as `(id, fields)`: the key without its prefix.
fn hashes(records: Vec<Record>, prefix: &str) -> Hashes {
    records
        .into_iter()
        .map(|r| {
            let id = r.key.strip_prefix(prefix).unwrap_or(&r.key).to_string();
            let fields = r
                .fields
                .into_iter()
                .map(|(name, value)| (name.to_string(), value))
                .collect();
            (id, fields)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str, kind: &CsvKind) -> Vec<(usize, String)> {
        parse_csv(text, kind)
            .unwrap_err()
            .into_iter()
            .map(|e| (e.line, e.reason))
            .collect()
    }

    #[test]
    fn parses_valid_files_into_hashes() {
        let text = "tenant_id,plan,region,monthly_budget_usd\r\ntenant-0000, enterprise ,us,20000.00\n\ntenant-0001,free,apac,0\n";
        let records = parse_csv(text, &TENANTS).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].key, "tenant:tenant-0000");
        assert_eq!(
            records[0].fields,
            [
                ("plan", "enterprise".to_string()),
                ("region", "us".to_string()),
                ("monthly_budget_usd", "20000.00".to_string()),
            ]
        );
        let capsules = parse_csv(
            "capsule_id,author_id,price_usd\ncapsule-000,author-00,1.99\n",
            &CAPSULES,
        )
        .unwrap();
        assert_eq!(capsules[0].key, "capsule:capsule-000");
        assert_eq!(capsules[0].fields[1], ("price_usd", "1.99".to_string()));
    }

    #[test]
    fn reports_every_bad_line_with_its_number() {
        let text = "tenant_id,plan,region,monthly_budget_usd
t1,pro,us,10
t2,gold,us,10
,pro,us,10
t4,pro,mars,10
t5,pro,us,ten
t6,pro,us,-5
t7,pro,us
\"t8\",pro,us,1
t1,free,eu,1
t9,pro,us,0.0000000001
";
        let got = errors(text, &TENANTS);
        let lines: Vec<usize> = got.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7, 8, 9, 10, 11], "{got:#?}");
        let reason = |line: usize| &got.iter().find(|(l, _)| *l == line).unwrap().1;
        assert!(reason(3).contains("plan \"gold\""));
        assert!(reason(4).contains("tenant_id is empty"));
        assert!(reason(5).contains("region \"mars\""));
        assert!(reason(6).contains("not a decimal"));
        assert!(reason(7).contains("negative"));
        assert!(reason(8).contains("expected 4 fields"));
        assert!(reason(9).contains("quoted"));
        assert!(reason(10).contains("already defined on line 2"));
        assert!(reason(11).contains("9 decimal places"));
    }

    #[test]
    fn a_wrong_or_missing_header_is_line_one() {
        let got = errors("capsule_id,author_id,price_usd\n", &TENANTS);
        assert_eq!(got[0].0, 1);
        assert!(got[0].1.contains("expected the header"), "{got:?}");
        assert_eq!(errors("", &CAPSULES)[0].0, 1);
        let got = errors(
            "capsule_id,author_id,price_usd\nc1,,1\nc2 x,a,1\n",
            &CAPSULES,
        );
        assert_eq!(got[0], (2, "author_id is empty".to_string()));
        assert_eq!(got[1].0, 3);
    }

    #[test]
    fn the_shipped_demo_files_are_valid() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let tenants = std::fs::read_to_string(root.join("config/tenants.csv")).unwrap();
        let tenants = parse_csv(&tenants, &TENANTS).unwrap();
        assert_eq!(tenants.len(), 300);
        assert_eq!(tenants[0].key, "tenant:tenant-0000");
        assert_eq!(tenants[299].key, "tenant:tenant-0299");
        let capsules = std::fs::read_to_string(root.join("config/capsules.csv")).unwrap();
        let capsules = parse_csv(&capsules, &CAPSULES).unwrap();
        assert_eq!(capsules.len(), 60);
        assert_eq!(capsules[59].key, "capsule:capsule-059");
    }

    #[test]
    fn reads_the_shipped_files_as_hashes_by_id() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let (tenants, capsules) = read_metadata(
            &root.join("config/tenants.csv"),
            &root.join("config/capsules.csv"),
        )
        .unwrap();
        assert_eq!(tenants.len(), 300);
        assert_eq!(tenants[0].0, "tenant-0000");
        assert_eq!(tenants[0].1["plan"], "enterprise");
        assert_eq!(tenants[0].1["monthly_budget_usd"], "20000.00");
        assert_eq!(capsules[1].0, "capsule-001");
        assert_eq!(capsules[1].1["price_usd"], "9.99");
    }

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
