//! An embedded node running the shipped default, `config/local.toml` (the
//! whole platform chain, no server), in a folder of its own: the config's
//! relative paths point at the repository, and the metadata files are
//! copies the node may rewrite. What such a node must make of generated
//! traffic ([`expected`]), priced by the test itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use somaflow::generator::{Generated, RecordClass};

use super::{FAST_CHECKPOINTS, Somaflow, divide_half_even, list_prices, repo};

/// How long the stream must be quiet before windows close, in these tests.
pub const IDLE_TIMEOUT_MS: &str = "1000";

pub struct PlatformFiles {
    pub tenants: PathBuf,
    pub capsules: PathBuf,
}

/// Copies the shipped metadata files into `dir`.
pub fn platform_files(dir: &Path) -> PlatformFiles {
    let files = PlatformFiles {
        tenants: dir.join("tenants.csv"),
        capsules: dir.join("capsules.csv"),
    };
    std::fs::copy(repo().join("config/tenants.csv"), &files.tenants).expect("tenants.csv");
    std::fs::copy(repo().join("config/capsules.csv"), &files.capsules).expect("capsules.csv");
    files
}

/// Starts `config/local.toml` on `dir` (its data folder), with `extra`
/// overrides.
pub fn start_platform(dir: &Path, files: &PlatformFiles, extra: &[(&str, &str)]) -> Somaflow {
    let abs = |p: &str| repo().join(p).display().to_string();
    let (config, rules, prices) = (
        abs("config/local.toml"),
        abs("config/policies.toml"),
        abs("config/prices.toml"),
    );
    let (tenants, capsules) = (
        files.tenants.display().to_string(),
        files.capsules.display().to_string(),
    );
    let mut env = vec![
        ("SOMAFLOW_CONFIG", config.as_str()),
        ("SOMAFLOW_POLICY__RULES", rules.as_str()),
        ("SOMAFLOW_ACCOUNTING__PRICES", prices.as_str()),
        ("SOMAFLOW_ENRICH__TENANTS", tenants.as_str()),
        ("SOMAFLOW_ENRICH__CAPSULES", capsules.as_str()),
        ("SOMAFLOW_PIPELINE__IDLE_TIMEOUT_MS", IDLE_TIMEOUT_MS),
        FAST_CHECKPOINTS,
    ];
    env.extend_from_slice(extra);
    Somaflow::start(dir, &env)
}

/// What the test expects of one tenant, computed from the events it sent.
#[derive(Debug, Default)]
pub struct Tenant {
    /// Σ per-event rated cost (each event rounded once, half to even).
    pub rated: i128,
    /// Tokens by model and type (fresh input, cached, plain output,
    /// reasoning): what the ledger prices line by line.
    pub lines: BTreeMap<String, [i128; 4]>,
}

#[derive(Debug, Default)]
pub struct Expected {
    pub tenants: BTreeMap<String, Tenant>,
    pub conversations: i64,
    pub input: i64,
    pub output: i64,
}

/// The distinct valid conversations of `records`, priced by the test.
pub fn expected(records: &[Generated]) -> Expected {
    let prices = list_prices();
    let mut e = Expected::default();
    for r in records {
        if r.class != RecordClass::Valid || r.table != "conversations" {
            continue;
        }
        let event: Value = serde_json::from_slice(&r.bytes).expect("generated JSON");
        let d = &event["data"];
        let n = |k: &str| d[k].as_i64().expect(k);
        let (input, cached, output, reasoning) = (
            n("input_tokens"),
            n("cached_input_tokens"),
            n("output_tokens"),
            n("reasoning_tokens"),
        );
        let model = d["model"].as_str().expect("model");
        let price = prices[model];
        let typed = [input - cached, cached, output - reasoning, reasoning].map(i128::from);
        let cost = typed.iter().zip(price).map(|(q, p)| q * p).sum::<i128>();
        let tenant = e
            .tenants
            .entry(event["tenantid"].as_str().expect("tenantid").to_string())
            .or_default();
        tenant.rated += divide_half_even(cost, 1_000_000);
        let line = tenant.lines.entry(model.to_string()).or_default();
        for (slot, q) in line.iter_mut().zip(typed) {
            *slot += q;
        }
        e.conversations += 1;
        e.input += input;
        e.output += output;
    }
    e
}
