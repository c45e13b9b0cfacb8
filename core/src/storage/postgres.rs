//! Storage in PostgreSQL, in the tables of Caddy's `caddy.storage.postgres` module
//! (`yroc92/postgres-storage`, read at its commit 276797a), so Caddy and this library share one
//! database:
//!
//! - `certmagic_data (key text primary key, value bytea, modified timestamptz default
//!   current_timestamp)`: one row per value, `modified` set by the server on every store;
//! - `certmagic_locks (key text primary key, expires timestamptz default current_timestamp)`:
//!   one row per lock name, held while `expires` is later than the server's time.
//!
//! The tables are created with the module's own statements unless `disable_ddl=true`.
//!
//! Where this differs from the module, for the storage contract (`storage.rs`); a Caddy on
//! the same database keeps working, as it reads and writes the same rows:
//! - a lock waits (a poll with jitter) instead of failing at once; it is taken with one
//!   statement that inserts the row, or takes it over only if it expired, so two waiters never
//!   both get it (the module checks, then writes). A held lock's `expires` is pushed 10 s ahead
//!   every 3 s (the module writes now + 1 minute once and never extends it); the `expires`
//!   this holder wrote identifies it, so an unlock or extension leaves a row that expired and
//!   was taken over alone (the module deletes the row whoever holds it);
//! - "folders" are the `/`-separated prefixes of keys: list returns direct children (or every
//!   key below, recursive), delete removes the key and its subtree, exists and stat see
//!   folders; prefixes are matched with `starts_with`, never a `LIKE` built from the key (the
//!   module lists every key below, never recursively by name, and formats the prefix into its
//!   SQL);
//! - stat and list of a missing key are NotFound.
//!
//! Options in the URL's query: `data_table` and `locks_table` (default `certmagic_data`,
//! `certmagic_locks`; optionally `schema.table`), `disable_ddl` (`true` to check the tables
//! instead of creating them), `sslrootcert` (PEM roots). TLS is used when `sslmode` is
//! `prefer` or `require`, and the server's certificate is always verified (against
//! `sslrootcert`, else the system's roots): stricter than libpq, which verifies only with
//! `verify-ca`/`verify-full`. The rest of the URL is `tokio-postgres`'s.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use deadpool_postgres::{ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::OnceCell;
use tokio_postgres::types::ToSql;

use super::lease::{LEASE_TTL, LeaseBackend, Leases};
use super::location::{DatabaseUrl, tls_client_config};
use super::{KeyInfo, Storage};
use crate::error::{Error, ErrorKind, Result};

/// The module's table of values.
pub const DEFAULT_DATA_TABLE: &str = "certmagic_data";
/// The module's table of locks.
pub const DEFAULT_LOCKS_TABLE: &str = "certmagic_locks";
const OPTIONS: &[&str] = &["data_table", "locks_table", "disable_ddl", "sslrootcert"];
const POOL_SIZE: usize = 16;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// A storage in one PostgreSQL database.
pub struct PostgresStorage {
    db: Arc<Db>,
    leases: Leases<Db>,
}

struct Db {
    url: DatabaseUrl,
    pool: Pool,
    tables_ready: OnceCell<()>,
    disable_ddl: bool,
    sql: Statements,
}

/// Every statement, with the configured table names in place.
struct Statements {
    create: [String; 2],
    check: [String; 2],
    store: String,
    load: String,
    load_many: String,
    delete: String,
    exists: String,
    list: String,
    stat_value: String,
    stat_folder: String,
    lock: String,
    extend: String,
    release: String,
}

// The lock token: `expires` in microseconds since the epoch, as this holder last wrote it.
const EXPIRES_MICROS: &str = "(extract(epoch from expires) * 1000000)::int8";

impl Statements {
    fn new(data: &str, locks: &str) -> Self {
        Self {
            // The module's own statements, byte for byte but for the table names.
            create: [
                format!(
                    "create table if not exists {data} (\nkey text primary key,\nvalue bytea,\nmodified timestamptz default current_timestamp\n)"
                ),
                format!(
                    "create table if not exists {locks} (\nkey text primary key,\nexpires timestamptz default current_timestamp\n)"
                ),
            ],
            check: [
                format!("select key, value, modified from {data} limit 0"),
                format!("select key, expires from {locks} limit 0"),
            ],
            store: format!(
                "insert into {data} (key, value) values ($1, $2) on conflict (key) do update set value = $2, modified = current_timestamp"
            ),
            load: format!("select value from {data} where key = $1"),
            load_many: format!("select key, value from {data} where key = any($1)"),
            delete: format!("delete from {data} where key = $1 or starts_with(key, $2)"),
            exists: format!(
                "select exists(select 1 from {data} where key = $1 or starts_with(key, $2))"
            ),
            list: format!("select key from {data} where starts_with(key, $1)"),
            stat_value: format!(
                "select coalesce(length(value), 0)::int8, (extract(epoch from modified) * 1000000)::int8 from {data} where key = $1"
            ),
            stat_folder: format!(
                "select max((extract(epoch from modified) * 1000000)::int8) from {data} where starts_with(key, $1)"
            ),
            lock: format!(
                "insert into {locks} (key, expires) values ($1, now() + make_interval(secs => $2)) on conflict (key) do update set expires = excluded.expires where {locks}.expires <= now() returning {EXPIRES_MICROS}"
            ),
            extend: format!(
                "update {locks} set expires = now() + make_interval(secs => $3) where key = $1 and {EXPIRES_MICROS} = $2 returning {EXPIRES_MICROS}"
            ),
            release: format!("delete from {locks} where key = $1 and {EXPIRES_MICROS} = $2"),
        }
    }
}

impl std::fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStorage")
            .field("url", &self.db.url)
            .finish_non_exhaustive()
    }
}

/// A table name as SQL takes it unquoted: `name` or `schema.name`, letters, digits and `_`.
fn is_table_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() <= 2
        && parts.iter().all(|p| {
            p.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

impl PostgresStorage {
    /// A storage for the database at `url` (see the [module documentation](self) for its
    /// options). Connects on first use.
    pub fn open(url: &str) -> Result<Self> {
        let url = DatabaseUrl::parse(url, OPTIONS)?;
        let table = |option: &str, default: &str| -> Result<String> {
            let name = url.options.get(option).map_or(default, String::as_str);
            if is_table_name(name) {
                Ok(name.to_string())
            } else {
                Err(url.refuse(format!(
                    "`{option}` `{name}` is not a table name (letters, digits, `_`, one optional `schema.`)"
                )))
            }
        };
        let (data, locks) = (
            table("data_table", DEFAULT_DATA_TABLE)?,
            table("locks_table", DEFAULT_LOCKS_TABLE)?,
        );
        if data == locks {
            return Err(url.refuse("`data_table` and `locks_table` must differ"));
        }
        let disable_ddl = url.flag("disable_ddl")?;
        let mut config: tokio_postgres::Config = url
            .client_url
            .parse()
            .map_err(|e: tokio_postgres::Error| url.refuse(e))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("certmagic");
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let asks_tls =
            url.client_url.contains("sslmode=prefer") || url.client_url.contains("sslmode=require");
        let manager = if asks_tls {
            let roots = url.roots_file("sslrootcert")?;
            let tls = tls_client_config(&url, roots.as_deref())?;
            deadpool_postgres::Manager::from_config(
                config,
                tokio_postgres_rustls::MakeRustlsConnect::new(tls),
                manager_config,
            )
        } else {
            if url.options.contains_key("sslrootcert") {
                return Err(url.refuse("`sslrootcert` needs `sslmode=prefer` or `sslmode=require`"));
            }
            deadpool_postgres::Manager::from_config(config, tokio_postgres::NoTls, manager_config)
        };
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .wait_timeout(Some(WAIT_TIMEOUT))
            .build()
            .map_err(|e| url.refuse(e))?;
        let db = Arc::new(Db {
            sql: Statements::new(&data, &locks),
            url,
            pool,
            tables_ready: OnceCell::new(),
            disable_ddl,
        });
        Ok(Self {
            leases: Leases::new(db.clone()),
            db,
        })
    }
}

impl Db {
    fn error(&self, op: &str, key: &str, e: impl std::fmt::Display) -> Error {
        Error::new(
            ErrorKind::Storage,
            format!("storage {op} `{key}` in PostgreSQL {:?}: {e}", self.url),
        )
    }

    /// A connection from the pool, the tables made (or checked) once first.
    async fn client(&self, op: &str, key: &str) -> Result<deadpool_postgres::Object> {
        let client = self
            .pool
            .get()
            .await
            .map_err(|e| self.error(op, key, pg_message(&e)))?;
        self.tables_ready
            .get_or_try_init(|| async {
                let sql = if self.disable_ddl {
                    &self.sql.check
                } else {
                    &self.sql.create
                };
                let batch = format!("begin;\n{};\n{};\ncommit", sql[0], sql[1]);
                let r = client.batch_execute(&batch).await;
                if r.is_err() {
                    let _ = client.batch_execute("rollback").await;
                }
                r.map_err(|e| self.error("create tables for", key, pg_message(&e)))
            })
            .await?;
        Ok(client)
    }

    async fn query(
        &self,
        op: &str,
        key: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>> {
        let client = self.client(op, key).await?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|e| self.error(op, key, pg_message(&e)))?;
        client
            .query(&statement, params)
            .await
            .map_err(|e| self.error(op, key, pg_message(&e)))
    }
}

/// The server's message where there is one (tokio-postgres prints only "db error").
fn pg_message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(db) = s.downcast_ref::<tokio_postgres::error::DbError>() {
            return format!("{e}: {}: {}", db.severity(), db.message());
        }
        if let Some(pg) = s.downcast_ref::<tokio_postgres::Error>()
            && let Some(db) = pg.as_db_error()
        {
            return format!("{e}: {}: {}", db.severity(), db.message());
        }
        source = s.source();
    }
    match e.source() {
        Some(s) => format!("{e}: {s}"),
        None => e.to_string(),
    }
}

/// `key/`, the prefix of everything below `key` (everything for the root).
fn below(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}/")
    }
}

fn not_found(op: &str, key: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("storage {op} `{key}`: not found in PostgreSQL"),
    )
}

fn micros_to_time(micros: i64) -> SystemTime {
    if micros >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_micros(micros as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_micros(micros.unsigned_abs())
    }
}

#[async_trait]
impl Storage for PostgresStorage {
    async fn store(&self, key: &str, value: &[u8]) -> Result<()> {
        if key.is_empty() {
            return Err(Error::new(ErrorKind::Storage, "storage store: empty key"));
        }
        let db = &self.db;
        db.query("store", key, &db.sql.store, &[&key, &value])
            .await
            .map(drop)
    }

    async fn load(&self, key: &str) -> Result<Vec<u8>> {
        let db = &self.db;
        let rows = db.query("load", key, &db.sql.load, &[&key]).await?;
        let row = rows.first().ok_or_else(|| not_found("load", key))?;
        let value: Option<Vec<u8>> = row.try_get(0).map_err(|e| db.error("load", key, e))?;
        Ok(value.unwrap_or_default())
    }

    async fn load_many(&self, keys: &[&str]) -> Vec<Result<Vec<u8>>> {
        let db = &self.db;
        let first = keys.first().copied().unwrap_or("");
        let wanted: Vec<&str> = keys.to_vec();
        match db.query("load", first, &db.sql.load_many, &[&wanted]).await {
            Ok(rows) => {
                let mut found = std::collections::HashMap::new();
                for row in rows {
                    if let (Ok(k), Ok(v)) = (
                        row.try_get::<_, String>(0),
                        row.try_get::<_, Option<Vec<u8>>>(1),
                    ) {
                        found.insert(k, v.unwrap_or_default());
                    }
                }
                keys.iter()
                    .map(|k| found.remove(*k).ok_or_else(|| not_found("load", k)))
                    .collect()
            }
            Err(e) => keys.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let db = &self.db;
        db.query("delete", key, &db.sql.delete, &[&key, &below(key)])
            .await
            .map(drop)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let db = &self.db;
        let rows = db
            .query("exists", key, &db.sql.exists, &[&key, &below(key)])
            .await?;
        rows.first()
            .and_then(|r| r.try_get::<_, bool>(0).ok())
            .ok_or_else(|| db.error("exists", key, "no answer"))
    }

    async fn list(&self, prefix: &str, recursive: bool) -> Result<Vec<String>> {
        let db = &self.db;
        let start = below(prefix);
        let rows = db.query("list", prefix, &db.sql.list, &[&start]).await?;
        let mut out = Vec::new();
        for key in rows.iter().filter_map(|r| r.try_get::<_, String>(0).ok()) {
            // The folders between `prefix` and the key (only the first one unless recursive),
            // then the key itself when recursive or a direct child.
            let rest = &key[start.len()..];
            for (i, _) in rest.match_indices('/') {
                out.push(format!("{start}{}", &rest[..i]));
                if !recursive {
                    break;
                }
            }
            if recursive || !rest.contains('/') {
                out.push(key);
            }
        }
        out.sort();
        out.dedup();
        if out.is_empty() {
            return Err(not_found("list", prefix));
        }
        Ok(out)
    }

    async fn stat(&self, key: &str) -> Result<KeyInfo> {
        let db = &self.db;
        let rows = db.query("stat", key, &db.sql.stat_value, &[&key]).await?;
        if let Some(row) = rows.first() {
            let size: i64 = row.try_get(0).map_err(|e| db.error("stat", key, e))?;
            let micros: i64 = row.try_get(1).map_err(|e| db.error("stat", key, e))?;
            return Ok(KeyInfo {
                key: key.to_string(),
                modified: micros_to_time(micros),
                size: size.max(0) as u64,
                is_terminal: true,
            });
        }
        let rows = db
            .query("stat", key, &db.sql.stat_folder, &[&below(key)])
            .await?;
        let newest: Option<i64> = rows.first().and_then(|r| r.try_get(0).ok()).flatten();
        match newest {
            Some(micros) => Ok(KeyInfo {
                key: key.to_string(),
                modified: micros_to_time(micros),
                size: 0,
                is_terminal: false,
            }),
            None => Err(not_found("stat", key)),
        }
    }

    async fn lock(&self, name: &str) -> Result<()> {
        self.leases.lock(name).await
    }

    async fn unlock(&self, name: &str) -> Result<()> {
        self.leases.unlock(name).await
    }

    async fn release_own_locks(&self) -> Result<()> {
        self.leases.release_all().await
    }
}

#[async_trait]
impl LeaseBackend for Db {
    async fn try_acquire(&self, name: &str) -> Result<Option<String>> {
        let ttl = LEASE_TTL.as_secs_f64();
        let rows = self
            .query("lock", name, &self.sql.lock, &[&name, &ttl])
            .await?;
        Ok(rows
            .first()
            .and_then(|r| r.try_get::<_, i64>(0).ok())
            .map(|m| m.to_string()))
    }

    async fn extend(&self, name: &str, token: &str) -> Result<Option<String>> {
        let Ok(micros) = token.parse::<i64>() else {
            return Ok(None);
        };
        let ttl = LEASE_TTL.as_secs_f64();
        let rows = self
            .query(
                "extend lock",
                name,
                &self.sql.extend,
                &[&name, &micros, &ttl],
            )
            .await?;
        Ok(rows
            .first()
            .and_then(|r| r.try_get::<_, i64>(0).ok())
            .map(|m| m.to_string()))
    }

    async fn release(&self, name: &str, token: &str) -> Result<bool> {
        let Ok(micros) = token.parse::<i64>() else {
            return Ok(false);
        };
        let client = self.client("unlock", name).await?;
        let n = client
            .execute(&self.sql.release, &[&name, &micros])
            .await
            .map_err(|e| self.error("unlock", name, pg_message(&e)))?;
        Ok(n == 1)
    }
}
