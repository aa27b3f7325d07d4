//! `somaflow prices import MAP.json [--into config/prices.toml]`: adds the
//! LiteLLM price map's prices to a price file as new effective-dated
//! entries (`somaflow_operators::accounting::litellm`). The file's text is
//! kept as it is and only appended to, so every price an event was rated
//! with stays; a model whose newest list price already has the map's rates
//! gets nothing. The merged file is checked before it replaces the old one.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, bail};
use chrono::NaiveDate;
use somaflow_operators::accounting::litellm::{ImportOptions, ImportReport, merge};

/// Merges `map` into the price file `into` (`dry_run`: report only).
pub fn import(
    map: &Path,
    into: &Path,
    effective_from: Option<NaiveDate>,
    aliases: &[String],
    dry_run: bool,
) -> anyhow::Result<ImportReport> {
    let mut provider_aliases = HashMap::new();
    for alias in aliases {
        let Some((from, to)) = alias.split_once('=') else {
            bail!("--provider-alias {alias:?} is not FROM=TO (e.g. gemini=google)");
        };
        provider_aliases.insert(from.to_string(), to.to_string());
    }
    let options = ImportOptions {
        effective_from: effective_from.unwrap_or_else(|| chrono::Utc::now().date_naive()),
        provider_aliases,
    };
    let map_json = std::fs::read_to_string(map)
        .with_context(|| format!("cannot read the price map {}", map.display()))?;
    let existing = match std::fs::read_to_string(into) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", into.display())),
    };
    let (merged, report) = merge(&existing, &map_json, &options)
        .with_context(|| format!("cannot merge {} into {}", map.display(), into.display()))?;
    if !dry_run && merged != existing {
        // Written beside and renamed: a crash leaves the old file or the new.
        let partial = into.with_extension("toml.partial");
        std::fs::write(&partial, &merged)
            .with_context(|| format!("cannot write {}", partial.display()))?;
        std::fs::rename(&partial, into)
            .with_context(|| format!("cannot replace {}", into.display()))?;
    }
    Ok(report)
}

/// The report as the command prints it.
pub fn describe(report: &ImportReport, into: &Path, dry_run: bool) -> String {
    let mut text = format!(
        "{} entries read; {} text models priced: {} {} to {}, {} unchanged\n",
        report.read,
        report.priced,
        report.added,
        if dry_run { "would be added" } else { "added" },
        into.display(),
        report.unchanged,
    );
    if report.rounded > 0 {
        let _ = writeln!(
            text,
            "  {} rates had more than 9 decimal places per 1M tokens: rounded half to even",
            report.rounded
        );
    }
    for (reason, n) in &report.skipped {
        let _ = writeln!(text, "  skipped {n}: {reason}");
    }
    if !report.ignored_keys.is_empty() {
        let mut keys: Vec<(&String, &usize)> = report.ignored_keys.iter().collect();
        keys.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let top: Vec<String> = keys
            .iter()
            .take(8)
            .map(|(k, n)| format!("{k} ({n})"))
            .collect();
        let _ = writeln!(
            text,
            "  rates somaflow has no dimension for, not imported: {} keys, most often {}",
            keys.len(),
            top.join(", ")
        );
    }
    text
}
