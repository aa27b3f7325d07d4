//! `somaflow sql "SELECT …"`: query the lake directly and print a table.

use anyhow::Context;
use somaflow_sql::LakeSql;

use crate::config::Config;

pub async fn run(config: &Config, query: &str, format: &str) -> anyhow::Result<()> {
    let lake = config.lake_url();
    let sql = LakeSql::open(&lake)
        .await
        .with_context(|| format!("opening the lake at {lake}"))?;
    let result = sql.query(query).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    match format {
        "csv" => print!("{}", String::from_utf8_lossy(&result.to_csv()?)),
        "json" => println!("{}", serde_json::to_string_pretty(&result.to_json()?)?),
        _ => println!("{}", result.to_table()?),
    }
    Ok(())
}
