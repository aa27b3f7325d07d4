//! Tenant and capsule metadata files (`config/tenants.csv`,
//! `config/capsules.csv`): the simple CSV kind (a fixed header,
//! comma-separated fields, no quoting), every line validated before any is
//! used, errors naming `FILE:LINE`. `somaflow tenants import` writes them
//! to Redis; without Redis, enrich reads them directly.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use somaflow_pipeline::events::decimal::parse_decimal;
use somaflow_pipeline::rules;

use super::{CAPSULE_KEY_PREFIX, TENANT_KEY_PREFIX};

/// `(id, hash fields)` per tenant or capsule, as [`read_metadata`] returns them.
pub type OwnedHashes = Vec<(String, HashMap<String, String>)>;

/// Errors listed before the rest are only counted.
const MAX_LISTED_ERRORS: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum MetadataFileError {
    #[error("reading {what} metadata from {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Every bad line, as `FILE:LINE: reason`.
    #[error("{} invalid line(s):\n{}", .0.len(), listed(.0))]
    Invalid(Vec<String>),
}

pub const PLANS: [&str; 3] = ["free", "pro", "enterprise"];
pub const REGIONS: [&str; 3] = ["us", "eu", "apac"];

const TENANT_HEADER: [&str; 4] = ["tenant_id", "plan", "region", "monthly_budget_usd"];
const CAPSULE_HEADER: [&str; 3] = ["capsule_id", "author_id", "price_usd"];

/// One hash to write: its key and fields, in header order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: String,
    pub fields: Vec<(&'static str, String)>,
}

/// A line that cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub reason: String,
}

/// What a file holds: its header, key prefix and row rules.
pub struct CsvKind {
    header: &'static [&'static str],
    prefix: &'static str,
    /// What one row describes, for messages ("tenant").
    pub what: &'static str,
    check: fn(&[&str]) -> Result<(), String>,
}

impl CsvKind {
    /// The column names, id first.
    pub fn header(&self) -> &'static [&'static str] {
        self.header
    }

    /// Checks one row (id first, in header order) as a line of the file is.
    pub fn check_row(&self, fields: &[&str]) -> Result<(), String> {
        if fields.len() != self.header.len() {
            return Err(format!(
                "expected {} fields ({}), found {}",
                self.header.len(),
                self.header.join(","),
                fields.len()
            ));
        }
        if let Some(field) = fields.iter().find(|f| f.contains([',', '"', '\n', '\r'])) {
            return Err(format!(
                "{field:?} may not contain a comma, a quote or a line break"
            ));
        }
        (self.check)(fields)
    }

    /// The record of a checked row.
    pub fn record(&self, fields: &[&str]) -> Record {
        Record {
            key: format!("{}{}", self.prefix, fields[0]),
            fields: self.header[1..]
                .iter()
                .zip(&fields[1..])
                .map(|(name, value)| (*name, value.to_string()))
                .collect(),
        }
    }

    /// The id of one of this kind's records (its key without the prefix).
    pub fn id<'r>(&self, record: &'r Record) -> &'r str {
        record.key.strip_prefix(self.prefix).unwrap_or(&record.key)
    }

    /// A whole file of `records`, header first, as [`parse_csv`] reads it.
    pub fn render(&self, records: &[Record]) -> String {
        let mut text = self.header.join(",");
        text.push('\n');
        for r in records {
            text.push_str(self.id(r));
            for (_, value) in &r.fields {
                text.push(',');
                text.push_str(value);
            }
            text.push('\n');
        }
        text
    }
}

impl Record {
    /// The fields as the Redis hash `somaflow tenants import` writes.
    pub fn hash(&self) -> HashMap<String, String> {
        self.fields
            .iter()
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect()
    }
}

pub const TENANTS: CsvKind = CsvKind {
    header: &TENANT_HEADER,
    prefix: TENANT_KEY_PREFIX,
    what: "tenant",
    check: check_tenant,
};

pub const CAPSULES: CsvKind = CsvKind {
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

/// The API's id rule, so an id the API takes is one a file can hold.
fn check_id(name: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{name} is empty"));
    }
    if !rules::ID.matches(value) {
        return Err(format!("{name} {value:?} must be {}", rules::ID.words));
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
pub fn parse_csv(text: &str, kind: &CsvKind) -> Result<Vec<Record>, Vec<LineError>> {
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
        if let Err(reason) = kind.check_row(&fields) {
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
        records.push(kind.record(&fields));
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

/// Reads and validates one file; its bad lines are added to `errors` as
/// `FILE:LINE: reason` (and no record of it is returned).
pub fn load(
    path: &Path,
    kind: &CsvKind,
    errors: &mut Vec<String>,
) -> Result<Vec<Record>, MetadataFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| MetadataFileError::Read {
        what: kind.what,
        path: path.to_path_buf(),
        source,
    })?;
    Ok(parse_csv(&text, kind).unwrap_or_else(|bad| {
        errors.extend(
            bad.into_iter()
                .map(|e| format!("{}:{}: {}", path.display(), e.line, e.reason)),
        );
        Vec::new()
    }))
}

/// The first [`MAX_LISTED_ERRORS`] errors, one a line, and how many more.
pub fn listed(errors: &[String]) -> String {
    let more = errors.len().saturating_sub(MAX_LISTED_ERRORS);
    let mut listed = errors[..errors.len().min(MAX_LISTED_ERRORS)].join("\n");
    if more > 0 {
        listed.push_str(&format!("\n… and {more} more"));
    }
    listed
}

/// `(id, fields)` of every tenant and capsule of the two files, as the
/// Redis hashes `somaflow tenants import` writes would hold them, every
/// line validated first. `somaflow bench-chain` seeds enrich with it.
pub fn read_metadata(
    tenants: &Path,
    capsules: &Path,
) -> Result<(OwnedHashes, OwnedHashes), MetadataFileError> {
    let mut errors = Vec::new();
    let tenant_records = load(tenants, &TENANTS, &mut errors)?;
    let capsule_records = load(capsules, &CAPSULES, &mut errors)?;
    if !errors.is_empty() {
        return Err(MetadataFileError::Invalid(errors));
    }
    Ok((
        hashes(tenant_records, TENANT_KEY_PREFIX),
        hashes(capsule_records, CAPSULE_KEY_PREFIX),
    ))
}

/// Records as `(id, fields)`: the key without its prefix.
fn hashes(records: Vec<Record>, prefix: &str) -> OwnedHashes {
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
    fn a_rendered_file_reads_back_the_same() {
        let text = "tenant_id,plan,region,monthly_budget_usd\nt1,pro,eu,10.5\nt0,free,us,0\n";
        let records = parse_csv(text, &TENANTS).unwrap();
        assert_eq!(TENANTS.render(&records), text);
        assert_eq!(TENANTS.id(&records[1]), "t0");
        assert_eq!(records[0].hash()["region"], "eu");
        let e = TENANTS.check_row(&["t2", "pro", "eu,us", "1"]).unwrap_err();
        assert!(e.contains("comma"), "{e}");
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
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
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
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
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
}
