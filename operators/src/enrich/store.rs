//! Where a node's tenant and capsule metadata lives, for what is done
//! with it outside the pipeline: reading one tenant now (budget answers)
//! and changing it (`PUT /v1/tenants/{id}`, `PUT /v1/capsules/{id}`,
//! `PUT /v1/budgets/{tenant}`). Redis when `[redis]` has a url, else the
//! metadata files (see [`MetadataCatalog`]); enrich reads the same place.

use std::sync::Arc;

use super::catalog::{CatalogError, MetadataCatalog};
use super::files::{CAPSULES, TENANTS};
use super::meta::TenantMeta;
use super::{CAPSULE_KEY_PREFIX, TENANT_KEY_PREFIX, read_tenant};
use crate::redis::{RedisLink, RedisLinkError};

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error(transparent)]
    Redis(#[from] RedisLinkError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A budget for a tenant the files do not know: its plan and region are
    /// needed first.
    #[error(
        "tenant {0:?} is not in the tenants file; create it with PUT /v1/tenants/{0} (plan, region, monthly_budget_usd)"
    )]
    UnknownTenant(String),
}

/// Cheap to clone.
#[derive(Clone)]
pub enum MetadataStore {
    Redis(RedisLink),
    Files(Arc<MetadataCatalog>),
}

impl MetadataStore {
    /// A tenant's metadata now (`None`: unknown tenant).
    pub async fn tenant(&self, node: &str, id: &str) -> Result<Option<TenantMeta>, MetadataError> {
        Ok(match self {
            MetadataStore::Redis(link) => read_tenant(link, node, id).await?,
            MetadataStore::Files(catalog) => catalog.tenant(id).map(|t| (*t).clone()),
        })
    }

    /// Sets a tenant's metadata; every field is checked as a line of the
    /// tenants file is (for Redis too, so both hold the same kind of data).
    pub async fn put_tenant(
        &self,
        node: &str,
        id: &str,
        plan: &str,
        region: &str,
        monthly_budget_usd: &str,
    ) -> Result<(), MetadataError> {
        let row = [id, plan, region, monthly_budget_usd];
        match self {
            MetadataStore::Files(catalog) => {
                catalog.put_tenant(id, plan, region, monthly_budget_usd)?
            }
            MetadataStore::Redis(link) => {
                TENANTS.check_row(&row).map_err(CatalogError::Invalid)?;
                hset(
                    link,
                    node,
                    format!("{TENANT_KEY_PREFIX}{id}"),
                    &row[1..],
                    &TENANTS,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Sets a capsule's metadata, checked as a line of the capsules file.
    pub async fn put_capsule(
        &self,
        node: &str,
        id: &str,
        author_id: &str,
        price_usd: &str,
    ) -> Result<(), MetadataError> {
        let row = [id, author_id, price_usd];
        match self {
            MetadataStore::Files(catalog) => catalog.put_capsule(id, author_id, price_usd)?,
            MetadataStore::Redis(link) => {
                CAPSULES.check_row(&row).map_err(CatalogError::Invalid)?;
                hset(
                    link,
                    node,
                    format!("{CAPSULE_KEY_PREFIX}{id}"),
                    &row[1..],
                    &CAPSULES,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Sets only a tenant's monthly budget (`amount` a checked decimal). In
    /// Redis a tenant without metadata gets a hash holding just the budget;
    /// the files need the tenant's row first.
    pub async fn set_monthly_budget(
        &self,
        node: &str,
        id: &str,
        amount: &str,
    ) -> Result<(), MetadataError> {
        match self {
            MetadataStore::Files(catalog) => {
                let row = catalog
                    .tenant_row(id)
                    .ok_or_else(|| MetadataError::UnknownTenant(id.to_string()))?;
                catalog.put_tenant(id, &row[1], &row[2], amount)?;
            }
            MetadataStore::Redis(link) => {
                let key = format!("{TENANT_KEY_PREFIX}{id}");
                let amount = amount.to_string();
                link.run(node, move |mut c| async move {
                    redis::cmd("HSET")
                        .arg(&key)
                        .arg("monthly_budget_usd")
                        .arg(&amount)
                        .query_async::<()>(&mut c)
                        .await
                })
                .await?;
            }
        }
        Ok(())
    }
}

/// Writes `values` (the header's fields after the id) into the hash `key`.
async fn hset(
    link: &RedisLink,
    node: &str,
    key: String,
    values: &[&str],
    kind: &super::files::CsvKind,
) -> Result<(), RedisLinkError> {
    let mut command = redis::cmd("HSET");
    command.arg(&key);
    for (field, value) in kind.header()[1..].iter().zip(values) {
        command.arg(*field).arg(*value);
    }
    link.run(node, move |mut c| async move {
        command.query_async::<()>(&mut c).await
    })
    .await
}
