//! An embedded node running the shipped default, `config/local.toml` (the
//! whole platform chain, no server), in a folder of its own: the config's
//! relative paths point at the repository, and the metadata files are
//! copies the node may rewrite.

use std::path::{Path, PathBuf};

use super::{FAST_CHECKPOINTS, Somaflow, repo};

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
