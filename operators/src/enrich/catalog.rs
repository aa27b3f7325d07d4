//! Tenant and capsule metadata kept in files, for a node without Redis:
//! loaded from the tenants and capsules CSV files ([`super::files`]),
//! re-read when either file changes on disk, and changed through
//! [`MetadataCatalog::put_tenant`] / [`MetadataCatalog::put_capsule`], which
//! rewrite the file (atomically: a temporary file renamed over it) before
//! the new value is served, so a change survives a restart. Enrich reads it
//! directly on every batch: a change reaches the next batch.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;

use super::files::{CAPSULES, CsvKind, MetadataFileError, Record, TENANTS, parse_csv};
use super::meta::{CapsuleMeta, Metadata, TenantMeta, parse};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The new value breaks a rule of the file (the caller's to fix).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    File(#[from] MetadataFileError),
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One file's records, in file order, and what they parse to.
struct Table<V> {
    path: PathBuf,
    kind: &'static CsvKind,
    records: Vec<Record>,
    index: HashMap<String, usize>,
    values: HashMap<String, Arc<V>>,
    /// Modification time and length when last read or written.
    seen: Option<(SystemTime, u64)>,
}

impl<V: Metadata> Table<V> {
    fn empty(path: &Path, kind: &'static CsvKind) -> Self {
        Table {
            path: path.to_path_buf(),
            kind,
            records: Vec::new(),
            index: HashMap::new(),
            values: HashMap::new(),
            seen: None,
        }
    }

    /// The file's records; a file that does not exist is empty (the first
    /// change creates it).
    fn read(path: &Path, kind: &'static CsvKind) -> Result<Self, MetadataFileError> {
        let mut table = Table::empty(path, kind);
        let seen = stamp(path);
        if seen.is_none() {
            return Ok(table);
        }
        let text = std::fs::read_to_string(path).map_err(|source| MetadataFileError::Read {
            what: kind.what,
            path: path.to_path_buf(),
            source,
        })?;
        let records = parse_csv(&text, kind).map_err(|bad| {
            MetadataFileError::Invalid(
                bad.into_iter()
                    .map(|e| format!("{}:{}: {}", path.display(), e.line, e.reason))
                    .collect(),
            )
        })?;
        for record in records {
            table.insert(record);
        }
        table.seen = seen;
        Ok(table)
    }

    fn insert(&mut self, record: Record) {
        let id = self.kind.id(&record).to_string();
        let mut problems = Vec::new();
        if let Some(value) = parse::<V>(&record.hash(), &mut problems) {
            self.values.insert(id.clone(), Arc::new(value));
        }
        match self.index.get(&id) {
            Some(&i) => self.records[i] = record,
            None => {
                self.index.insert(id, self.records.len());
                self.records.push(record);
            }
        }
    }

    /// Checks `fields` (id first), writes the file with the row added or
    /// replaced, then serves it.
    fn put(&mut self, fields: &[&str]) -> Result<(), CatalogError> {
        self.kind.check_row(fields).map_err(CatalogError::Invalid)?;
        let record = self.kind.record(fields);
        let mut records = self.records.clone();
        match self.index.get(fields[0]) {
            Some(&i) => records[i] = record.clone(),
            None => records.push(record.clone()),
        }
        write_atomically(&self.path, &self.kind.render(&records))?;
        self.insert(record);
        self.seen = stamp(&self.path);
        Ok(())
    }
}

/// The file's modification time and length, `None` when it does not exist.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn write_atomically(path: &Path, text: &str) -> Result<(), CatalogError> {
    let fail = |source| CatalogError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("metadata");
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let file = std::fs::File::create(&tmp).map_err(fail)?;
    std::io::Write::write_all(&mut &file, text.as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)?;
    if let Some(dir) = dir
        && let Ok(d) = std::fs::File::open(dir)
    {
        // The rename is durable once the directory is.
        d.sync_all().map_err(fail)?;
    }
    Ok(())
}

/// Tenants and capsules from their files. Cheap to share (`Arc`).
pub struct MetadataCatalog {
    tenants: RwLock<Table<TenantMeta>>,
    capsules: RwLock<Table<CapsuleMeta>>,
    /// One writer at a time per catalog, so two changes never race a rename.
    writing: Mutex<()>,
}

fn read_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

impl MetadataCatalog {
    /// Loads both files (a missing one is empty); a bad line in either is
    /// an error naming it, so a node does not start on half its metadata.
    pub fn open(tenants: &Path, capsules: &Path) -> Result<Arc<Self>, MetadataFileError> {
        Ok(Arc::new(MetadataCatalog {
            tenants: RwLock::new(Table::read(tenants, &TENANTS)?),
            capsules: RwLock::new(Table::read(capsules, &CAPSULES)?),
            writing: Mutex::new(()),
        }))
    }

    pub fn tenant(&self, id: &str) -> Option<Arc<TenantMeta>> {
        read_lock(&self.tenants).values.get(id).cloned()
    }

    pub(crate) fn capsule(&self, id: &str) -> Option<Arc<CapsuleMeta>> {
        read_lock(&self.capsules).values.get(id).cloned()
    }

    /// Tenants and capsules known.
    pub fn len(&self) -> (usize, usize) {
        (
            read_lock(&self.tenants).records.len(),
            read_lock(&self.capsules).records.len(),
        )
    }

    /// Sets a tenant's metadata (`plan`, `region`, `monthly_budget_usd`),
    /// checked as a line of the tenants file is.
    pub fn put_tenant(
        &self,
        id: &str,
        plan: &str,
        region: &str,
        monthly_budget_usd: &str,
    ) -> Result<(), CatalogError> {
        let _one = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        write_lock(&self.tenants).put(&[id, plan, region, monthly_budget_usd])
    }

    /// Sets a capsule's metadata (`author_id`, `price_usd`).
    pub fn put_capsule(
        &self,
        id: &str,
        author_id: &str,
        price_usd: &str,
    ) -> Result<(), CatalogError> {
        let _one = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        write_lock(&self.capsules).put(&[id, author_id, price_usd])
    }

    /// A tenant's row as the file holds it (id first), for changing one
    /// field of it.
    pub fn tenant_row(&self, id: &str) -> Option<Vec<String>> {
        let tenants = read_lock(&self.tenants);
        let record = &tenants.records[*tenants.index.get(id)?];
        let mut row = vec![id.to_string()];
        row.extend(record.fields.iter().map(|(_, v)| v.clone()));
        Some(row)
    }

    /// Re-reads a file that changed on disk since it was last read or
    /// written here. A file that no longer parses is left as it was served,
    /// with a warning: a typo in an edit must not blank every tenant.
    pub fn reload_changed(&self) -> bool {
        let _one = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        reload(&self.tenants) | reload(&self.capsules)
    }

    /// Checks the files for changes every `every`, until aborted.
    pub fn spawn_watch(self: &Arc<Self>, every: Duration) -> JoinHandle<()> {
        let catalog = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                catalog.reload_changed();
            }
        })
    }
}

fn reload<V: Metadata>(table: &RwLock<Table<V>>) -> bool {
    let (path, kind, seen) = {
        let t = read_lock(table);
        (t.path.clone(), t.kind, t.seen)
    };
    let now = stamp(&path);
    if now == seen || now.is_none() {
        return false;
    }
    match Table::read(&path, kind) {
        Ok(fresh) => {
            tracing::info!(file = %path.display(), records = fresh.records.len(),
                "metadata file changed on disk: reloaded");
            *write_lock(table) = fresh;
            true
        }
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e,
                "metadata file changed on disk but does not parse; keeping what was loaded");
            write_lock(table).seen = now;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANTS_CSV: &str = "tenant_id,plan,region,monthly_budget_usd\nt1,pro,eu,250.00\n";
    const CAPSULES_CSV: &str = "capsule_id,author_id,price_usd\nc1,a1,1.99\n";

    fn catalog(dir: &Path) -> Arc<MetadataCatalog> {
        std::fs::write(dir.join("tenants.csv"), TENANTS_CSV).unwrap();
        std::fs::write(dir.join("capsules.csv"), CAPSULES_CSV).unwrap();
        MetadataCatalog::open(&dir.join("tenants.csv"), &dir.join("capsules.csv")).unwrap()
    }

    #[test]
    fn serves_the_files_and_writes_changes_back() {
        let dir = tempfile::tempdir().unwrap();
        let c = catalog(dir.path());
        let t1 = c.tenant("t1").unwrap();
        assert_eq!(t1.plan.as_deref(), Some("pro"));
        assert_eq!(t1.monthly_budget_usd, Some(250_000_000_000));
        assert_eq!(c.capsule("c1").unwrap().price_usd, Some(1_990_000_000));
        assert!(c.tenant("t2").is_none());

        c.put_tenant("t2", "free", "us", "5").unwrap();
        c.put_tenant("t1", "enterprise", "eu", "0").unwrap();
        assert_eq!(c.tenant("t1").unwrap().plan.as_deref(), Some("enterprise"));
        let text = std::fs::read_to_string(dir.path().join("tenants.csv")).unwrap();
        assert_eq!(
            text,
            "tenant_id,plan,region,monthly_budget_usd\nt1,enterprise,eu,0\nt2,free,us,5\n"
        );
        // What a restart reads.
        let again = MetadataCatalog::open(
            &dir.path().join("tenants.csv"),
            &dir.path().join("capsules.csv"),
        )
        .unwrap();
        assert_eq!(again.tenant("t2").unwrap().region.as_deref(), Some("us"));
        assert_eq!(
            again.tenant_row("t1").unwrap(),
            ["t1", "enterprise", "eu", "0"]
        );
    }

    #[test]
    fn a_bad_change_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let c = catalog(dir.path());
        let e = c
            .put_tenant("t1", "gold", "eu", "1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("plan \"gold\""), "{e}");
        let e = c.put_capsule("c 2", "a", "1").unwrap_err().to_string();
        assert!(e.contains("whitespace"), "{e}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("tenants.csv")).unwrap(),
            TENANTS_CSV
        );
    }

    #[test]
    fn an_edit_on_disk_is_reloaded_and_a_broken_one_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let c = catalog(dir.path());
        assert!(!c.reload_changed(), "nothing changed yet");
        let path = dir.path().join("tenants.csv");
        std::fs::write(&path, format!("{TENANTS_CSV}t3,free,apac,1\n")).unwrap();
        assert!(c.reload_changed());
        assert_eq!(c.tenant("t3").unwrap().region.as_deref(), Some("apac"));
        std::fs::write(&path, "tenant_id,plan,region,monthly_budget_usd\nt4,gold\n").unwrap();
        assert!(!c.reload_changed());
        assert!(c.tenant("t3").is_some(), "the last good contents stay");
    }

    #[test]
    fn missing_files_are_empty_until_the_first_change() {
        let dir = tempfile::tempdir().unwrap();
        let tenants = dir.path().join("meta/tenants.csv");
        let c = MetadataCatalog::open(&tenants, &dir.path().join("meta/capsules.csv")).unwrap();
        assert_eq!(c.len(), (0, 0));
        c.put_tenant("t1", "pro", "us", "1").unwrap();
        assert!(
            std::fs::read_to_string(&tenants)
                .unwrap()
                .ends_with("t1,pro,us,1\n")
        );
    }
}
