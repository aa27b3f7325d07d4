//! Tenant and capsule metadata as enrich reads it from Redis hashes, and
//! how a hash becomes a value. A field that is missing stays null; a field
//! that is present but unusable (a budget that is not a decimal) is null
//! too and reported, so the caller can warn once per key.

use std::collections::HashMap;

use somaflow_pipeline::events::decimal::parse_decimal;

/// One kind of metadata: its Redis key prefix and how a hash parses.
pub(crate) trait Metadata: Sized + Send + Sync + 'static {
    /// `tenant:` or `capsule:`; the key is the prefix and the id.
    const PREFIX: &'static str;

    /// Parses a non-empty hash. Each unusable field becomes `None` and
    /// adds a line to `problems`.
    fn from_hash(hash: &HashMap<String, String>, problems: &mut Vec<String>) -> Self;
}

/// `tenant:{id}`: plan, region, monthly budget (scale-9 decimal).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantMeta {
    pub plan: Option<String>,
    pub region: Option<String>,
    pub monthly_budget_usd: Option<i128>,
}

/// `capsule:{id}`: author and list price (scale-9 decimal).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CapsuleMeta {
    pub author_id: Option<String>,
    pub price_usd: Option<i128>,
}

impl Metadata for TenantMeta {
    const PREFIX: &'static str = super::TENANT_KEY_PREFIX;

    fn from_hash(hash: &HashMap<String, String>, problems: &mut Vec<String>) -> Self {
        TenantMeta {
            plan: text(hash, "plan"),
            region: text(hash, "region"),
            monthly_budget_usd: amount(hash, "monthly_budget_usd", problems),
        }
    }
}

impl Metadata for CapsuleMeta {
    const PREFIX: &'static str = super::CAPSULE_KEY_PREFIX;

    fn from_hash(hash: &HashMap<String, String>, problems: &mut Vec<String>) -> Self {
        CapsuleMeta {
            author_id: text(hash, "author_id"),
            price_usd: amount(hash, "price_usd", problems),
        }
    }
}

/// A text field; blank counts as missing. Plan and region are not checked
/// against a list here: `tenants import` validates what it writes, and a
/// value this build does not know (a new plan) is still worth passing on.
fn text(hash: &HashMap<String, String>, field: &str) -> Option<String> {
    let value = hash.get(field)?.trim();
    (!value.is_empty()).then(|| value.to_string())
}

/// A non-negative decimal amount in USD, scaled by 10^9.
fn amount(hash: &HashMap<String, String>, field: &str, problems: &mut Vec<String>) -> Option<i128> {
    let value = hash.get(field)?.trim();
    if value.is_empty() {
        return None;
    }
    match parse_decimal(value) {
        Ok(v) if v >= 0 => Some(v),
        Ok(_) => {
            problems.push(format!("`{field}` {value:?} is negative"));
            None
        }
        Err(reason) => {
            problems.push(format!("`{field}`: {reason}"));
            None
        }
    }
}

/// Parses what HGETALL answered: an empty hash is a missing key (`None`,
/// "no metadata"), which is a value, not an error.
pub(crate) fn parse<V: Metadata>(
    hash: &HashMap<String, String>,
    problems: &mut Vec<String>,
) -> Option<V> {
    (!hash.is_empty()).then(|| V::from_hash(hash, problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_a_complete_tenant() {
        let mut problems = Vec::new();
        let t: Option<TenantMeta> = parse(
            &hash(&[
                ("plan", "pro"),
                ("region", "eu"),
                ("monthly_budget_usd", "250.00"),
            ]),
            &mut problems,
        );
        assert_eq!(
            t,
            Some(TenantMeta {
                plan: Some("pro".into()),
                region: Some("eu".into()),
                monthly_budget_usd: Some(250_000_000_000),
            })
        );
        assert!(problems.is_empty());
    }

    #[test]
    fn an_empty_hash_is_absent_not_an_error() {
        let mut problems = Vec::new();
        assert_eq!(parse::<CapsuleMeta>(&hash(&[]), &mut problems), None);
        assert!(problems.is_empty());
    }

    #[test]
    fn malformed_fields_are_null_and_reported() {
        let mut problems = Vec::new();
        let t: TenantMeta = parse(
            &hash(&[("plan", "free"), ("monthly_budget_usd", "lots")]),
            &mut problems,
        )
        .unwrap();
        assert_eq!(t.plan.as_deref(), Some("free"));
        assert_eq!(t.region, None, "missing is null, not a problem");
        assert_eq!(t.monthly_budget_usd, None);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("monthly_budget_usd"));

        let mut problems = Vec::new();
        let c: CapsuleMeta = parse(
            &hash(&[("author_id", " "), ("price_usd", "-1")]),
            &mut problems,
        )
        .unwrap();
        assert_eq!(c, CapsuleMeta::default());
        assert!(problems[0].contains("negative"), "{problems:?}");
    }
}
