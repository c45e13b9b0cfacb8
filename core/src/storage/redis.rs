//! Storage in Redis, in the layout of Caddy's `pberkel/caddy-storage-redis` (v1.8.1, read at
//! its commit 230a328), so Caddy and this library share one database:
//!
//! - a value is a Redis string at `<key_prefix>/<key>` (prefix `caddy` by default) holding the
//!   plugin's JSON record (`record.rs`: base64 value, modification time, size, optional
//!   compression and AES-GCM encryption);
//! - every folder is a sorted set at `<key_prefix>/<folder>` whose members are its children,
//!   folders with a trailing `/`, scored by the Unix second they were added; the prefix itself
//!   is the top set. `List` reads these sets, never `KEYS`/`SCAN`;
//! - a lock is the string `<key_prefix>/locks/<name>` holding a 22-character token (16 random
//!   bytes, base64url), set with `NX` and an expiry, extended and deleted only by a script that
//!   compares the token first: redislock's protocol, which the plugin uses.
//!
//! A command whose connection dropped (the server restarted) is sent once more on a new one:
//! every command here may run twice (taking a lock again with the same token is a success).
//!
//! Where this differs from the plugin, for the storage contract (`storage.rs`):
//! - a store (value and every folder entry) and a delete (value, subtree, and the folder
//!   entries that became empty) are each one Lua script, so they are atomic; the plugin sends
//!   them as separate commands. A store over a folder, or under a value, is refused;
//! - delete of a folder removes its subtree (the plugin removes only the set);
//! - list and stat of a missing key are NotFound, stat of a folder says so (the plugin lists
//!   nothing and stats only values); list is sorted, and a recursive list names the folders
//!   too, as FileStorage's (the plugin's names only values);
//! - a lease lasts 10 s, extended every 3 s (the plugin: 5 s, every 3 s; see `lease.rs`).
//!   Either side waits for the other's token to be deleted or to expire.
//!
//! Options in the URL's query: `key_prefix` (default `caddy`), `encryption_key` (32 bytes or
//! more, as the plugin's), `compression` (`none`, `flate`, `zlib`), `tls_ca_file` (PEM roots
//! for `rediss://`, else the system's). The rest of the URL is the `redis` crate's:
//! `redis[s]://[user][:password@]host[:port][/db]`.

mod record;

use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use base64::Engine;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use time::OffsetDateTime;
use tokio::sync::OnceCell;

use super::lease::{LEASE_TTL, LeaseBackend, Leases};
use super::location::{DatabaseUrl, tls_client_config};
use super::{KeyInfo, Storage};
use crate::error::{Error, ErrorKind, Result};
pub use record::{Compression, EncryptionKey};

/// The plugin's default key prefix.
pub const DEFAULT_KEY_PREFIX: &str = "caddy";
const OPTIONS: &[&str] = &["key_prefix", "encryption_key", "compression", "tls_ca_file"];
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// A storage in one Redis server (or anything that speaks its protocol: Valkey, KeyDB).
pub struct RedisStorage {
    db: Arc<Db>,
    leases: Leases<Db>,
}

struct Db {
    url: DatabaseUrl,
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    prefix: String,
    compression: Compression,
    encryption: Option<EncryptionKey>,
}

impl std::fmt::Debug for RedisStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStorage")
            .field("url", &self.db.url)
            .field("key_prefix", &self.db.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStorage {
    /// A storage for the Redis at `url` (see the [module documentation](self) for its options).
    /// Connects on first use.
    pub fn open(url: &str) -> Result<Self> {
        let url = DatabaseUrl::parse(url, OPTIONS)?;
        let prefix = url
            .options
            .get("key_prefix")
            .map_or(DEFAULT_KEY_PREFIX, |p| p.trim().trim_matches('/'))
            .to_string();
        if !prefix.is_empty()
            && prefix
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(url.refuse(format!(
                "`key_prefix` `{prefix}` has an empty, `.` or `..` part"
            )));
        }
        let compression = match url.options.get("compression").map(String::as_str) {
            None | Some("none" | "false" | "") => Compression::None,
            Some("flate" | "true") => Compression::Flate,
            Some("zlib") => Compression::Zlib,
            Some(other) => {
                return Err(url.refuse(format!(
                    "`compression` must be none, flate or zlib, not `{other}`"
                )));
            }
        };
        let encryption = match url.options.get("encryption_key") {
            None => None,
            Some(k) => Some(
                EncryptionKey::from_text(k)
                    .ok_or_else(|| url.refuse("`encryption_key` must be at least 32 bytes"))?,
            ),
        };
        let refuse = |e: redis::RedisError| url.refuse(e.to_string());
        let client = if url.client_url.starts_with("rediss://") {
            // The redis crate builds its own rustls config from these (else the system's
            // roots); a file that holds no certificate is refused here, not at connect.
            let roots = url.roots_file("tls_ca_file")?;
            if let Some(pem) = &roots {
                tls_client_config(&url, Some(pem))?;
            }
            redis::Client::build_with_tls(
                url.client_url.as_str(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: roots,
                },
            )
            .map_err(refuse)?
        } else {
            if url.options.contains_key("tls_ca_file") {
                return Err(url.refuse("`tls_ca_file` needs a rediss:// URL"));
            }
            redis::Client::open(url.client_url.as_str()).map_err(refuse)?
        };
        let db = Arc::new(Db {
            url,
            client,
            connection: OnceCell::new(),
            prefix,
            compression,
            encryption,
        });
        Ok(Self {
            leases: Leases::new(db.clone()),
            db,
        })
    }

    /// The prefix of every Redis key this storage writes.
    pub fn key_prefix(&self) -> &str {
        &self.db.prefix
    }
}

impl Db {
    async fn connection(&self) -> Result<ConnectionManager> {
        let c = self
            .connection
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_number_of_retries(2);
                ConnectionManager::new_with_config(self.client.clone(), config)
                    .await
                    .map_err(|e| self.error("connect", "", e))
            })
            .await?;
        Ok(c.clone())
    }

    /// Sends `cmd`, once more if the connection dropped under it (a restarted server): every
    /// command this storage sends may safely run twice.
    async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
    ) -> Result<redis::RedisResult<T>> {
        let mut con = self.connection().await?;
        Ok(match cmd.query_async(&mut con).await {
            Err(e) if dropped(&e) => cmd.query_async(&mut con).await,
            r => r,
        })
    }

    /// As [`Db::query`], for a script.
    async fn invoke<T: redis::FromRedisValue>(
        &self,
        call: &redis::ScriptInvocation<'_>,
    ) -> Result<redis::RedisResult<T>> {
        let mut con = self.connection().await?;
        Ok(match call.invoke_async(&mut con).await {
            Err(e) if dropped(&e) => call.invoke_async(&mut con).await,
            r => r,
        })
    }

    fn error(&self, op: &str, key: &str, e: redis::RedisError) -> Error {
        Error::new(
            ErrorKind::Storage,
            format!("storage {op} `{key}` in Redis {:?}: {e}", self.url),
        )
        .with_source(e)
    }

    /// The Redis key of storage key `key` (Go's `path.Join(prefix, key)` for clean keys).
    fn redis_key(&self, key: &str) -> Result<String> {
        if !key.is_empty()
            && key
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(Error::new(
                ErrorKind::Storage,
                format!("storage key `{key}` has an empty, `.` or `..` part"),
            ));
        }
        Ok(match (self.prefix.is_empty(), key.is_empty()) {
            (true, _) => key.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{key}", self.prefix),
        })
    }

    /// The folder sets above `redis_key`, nearest first, each with the member naming its child
    /// on the way down (`name` for the value itself, `folder/` above it). The walk stops at the
    /// top (the prefix, or the first part of the key without one), as the plugin's does.
    fn parents(redis_key: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut child = redis_key;
        let mut is_value = true;
        while let Some((dir, name)) = child.rsplit_once('/') {
            let member = if is_value {
                name.to_string()
            } else {
                format!("{name}/")
            };
            out.push((dir.to_string(), member));
            child = dir;
            is_value = false;
        }
        out
    }

    fn lock_key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            format!("locks/{name}")
        } else {
            format!("{}/locks/{name}", self.prefix)
        }
    }

    async fn list_into(&self, prefix: &str, recursive: bool, out: &mut Vec<String>) -> Result<()> {
        let set = self.redis_key(prefix)?;
        let members: Vec<String> = match self
            .query(redis::cmd("ZRANGE").arg(&set).arg(0).arg(-1))
            .await?
        {
            Ok(m) => m,
            // A value, not a folder.
            Err(e) if is_wrong_type(&e) => return Err(not_found("list", prefix)),
            Err(e) => return Err(self.error("list", prefix, e)),
        };
        for m in members {
            let (name, is_dir) = match m.strip_suffix('/') {
                Some(n) => (n, true),
                None => (m.as_str(), false),
            };
            let key = if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}/{name}")
            };
            out.push(key.clone());
            if recursive && is_dir {
                Box::pin(self.list_into(&key, true, out)).await?;
            }
        }
        Ok(())
    }
}

// Every folder set is checked before anything is written, since a script is not rolled back.
const STORE_SCRIPT: &str = r#"
for i = 2, #KEYS do
  local t = redis.call('TYPE', KEYS[i]).ok
  if t ~= 'none' and t ~= 'zset' then return redis.error_reply('CERTMAGIC ' .. KEYS[i] .. ' is a value, not a folder') end
end
if redis.call('TYPE', KEYS[1]).ok == 'zset' then return redis.error_reply('CERTMAGIC ' .. KEYS[1] .. ' is a folder') end
if #KEYS >= 2 then redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3]) end
for i = 3, #KEYS do redis.call('ZADD', KEYS[i], 'NX', ARGV[2], ARGV[i + 1]) end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"#;

// KEYS[1] the key, KEYS[2..] its folders nearest first; ARGV[i] the member naming KEYS[i] in
// KEYS[i + 1] (ARGV[1]: the key's name without a trailing slash).
const DELETE_SCRIPT: &str = r#"
local function drop(k)
  if redis.call('TYPE', k).ok == 'zset' then
    for _, m in ipairs(redis.call('ZRANGE', k, 0, -1)) do
      local name = string.gsub(m, '/$', '')
      drop(k .. '/' .. name)
    end
  end
  redis.call('DEL', k)
end
drop(KEYS[1])
if #KEYS >= 2 then
  redis.call('ZREM', KEYS[2], ARGV[1], ARGV[1] .. '/')
  for i = 2, #KEYS - 1 do
    if redis.call('EXISTS', KEYS[i]) == 1 then break end
    redis.call('ZREM', KEYS[i + 1], ARGV[i])
  end
end
return 1
"#;

// redislock's scripts: take the lock unless someone else holds it (taking it again with the
// same token is fine: a retried attempt), and compare the token, then extend or delete.
const OBTAIN_SCRIPT: &str = r#"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
"#;
const EXTEND_SCRIPT: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end
"#;
const RELEASE_SCRIPT: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end
"#;

static STORE: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(STORE_SCRIPT));
static DELETE: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(DELETE_SCRIPT));
static OBTAIN: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(OBTAIN_SCRIPT));
static EXTEND: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(EXTEND_SCRIPT));
static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(RELEASE_SCRIPT));

fn dropped(e: &redis::RedisError) -> bool {
    e.is_connection_dropped() || e.is_io_error()
}

fn is_wrong_type(e: &redis::RedisError) -> bool {
    e.code() == Some("WRONGTYPE")
}

#[async_trait]
impl Storage for RedisStorage {
    async fn store(&self, key: &str, value: &[u8]) -> Result<()> {
        let db = &self.db;
        let rkey = db.redis_key(key)?;
        if key.is_empty() {
            return Err(Error::new(ErrorKind::Storage, "storage store: empty key"));
        }
        let now = OffsetDateTime::now_utc();
        let json = record::encode(value, now, db.compression, db.encryption.as_ref())?;
        let parents = Db::parents(&rkey);
        let mut call = STORE.prepare_invoke();
        call.key(&rkey).arg(json).arg(now.unix_timestamp());
        for (dir, member) in &parents {
            call.key(dir).arg(member);
        }
        db.invoke::<i64>(&call)
            .await?
            .map(drop)
            .map_err(|e| db.error("store", key, e))
    }

    async fn load(&self, key: &str) -> Result<Vec<u8>> {
        let db = &self.db;
        let rkey = db.redis_key(key)?;
        let raw: Option<Vec<u8>> = db
            .query(redis::cmd("GET").arg(&rkey))
            .await?
            .or_else(|e| if is_wrong_type(&e) { Ok(None) } else { Err(e) })
            .map_err(|e| db.error("load", key, e))?;
        let raw = raw.ok_or_else(|| not_found("load", key))?;
        Ok(record::decode(key, &raw, db.encryption.as_ref())?.value)
    }

    async fn load_many(&self, keys: &[&str]) -> Vec<Result<Vec<u8>>> {
        if keys.is_empty() {
            // MGET needs a key.
            return Vec::new();
        }
        let db = &self.db;
        let rkeys: Result<Vec<String>> = keys.iter().map(|k| db.redis_key(k)).collect();
        let fetched: Result<Vec<Option<Vec<u8>>>> = async {
            let rkeys = rkeys?;
            db.query(redis::cmd("MGET").arg(&rkeys))
                .await?
                .map_err(|e| db.error("load", keys.first().copied().unwrap_or(""), e))
        }
        .await;
        match fetched {
            Ok(values) if values.len() == keys.len() => keys
                .iter()
                .zip(values)
                .map(|(k, v)| {
                    let raw = v.ok_or_else(|| not_found("load", k))?;
                    Ok(record::decode(k, &raw, db.encryption.as_ref())?.value)
                })
                .collect(),
            Ok(_) => keys
                .iter()
                .map(|_| Err(Error::internal("Redis MGET answered a different count")))
                .collect(),
            Err(e) => keys.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let db = &self.db;
        let rkey = db.redis_key(key)?;
        let parents = Db::parents(&rkey);
        let mut call = DELETE.prepare_invoke();
        call.key(&rkey);
        call.arg(rkey.rsplit('/').next().unwrap_or(&rkey));
        for (i, (dir, _)) in parents.iter().enumerate() {
            call.key(dir);
            // The member naming this folder in the next one up.
            if let Some((_, member)) = parents.get(i + 1) {
                call.arg(member);
            }
        }
        db.invoke::<i64>(&call)
            .await?
            .map(drop)
            .map_err(|e| db.error("delete", key, e))
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let db = &self.db;
        let rkey = db.redis_key(key)?;
        let n: i64 = db
            .query(redis::cmd("EXISTS").arg(&rkey))
            .await?
            .map_err(|e| db.error("exists", key, e))?;
        Ok(n > 0)
    }

    async fn list(&self, prefix: &str, recursive: bool) -> Result<Vec<String>> {
        let mut out = Vec::new();
        self.db.list_into(prefix, recursive, &mut out).await?;
        if out.is_empty() {
            return Err(not_found("list", prefix));
        }
        out.sort();
        Ok(out)
    }

    async fn stat(&self, key: &str) -> Result<KeyInfo> {
        let db = &self.db;
        let rkey = db.redis_key(key)?;
        match db
            .query::<Option<Vec<u8>>>(redis::cmd("GET").arg(&rkey))
            .await?
        {
            Ok(Some(raw)) => {
                let r = record::decode(key, &raw, db.encryption.as_ref())?;
                Ok(KeyInfo {
                    key: key.to_string(),
                    modified: r.modified.into(),
                    size: r.size,
                    is_terminal: true,
                })
            }
            Ok(None) => Err(not_found("stat", key)),
            Err(e) if is_wrong_type(&e) => {
                // A folder: modified when its newest child was added.
                let scored: Vec<(String, f64)> = db
                    .query(
                        redis::cmd("ZRANGE")
                            .arg(&rkey)
                            .arg(0)
                            .arg(-1)
                            .arg("WITHSCORES"),
                    )
                    .await?
                    .map_err(|e| db.error("stat", key, e))?;
                let newest = scored.iter().map(|(_, s)| *s).fold(0.0, f64::max);
                Ok(KeyInfo {
                    key: key.to_string(),
                    modified: SystemTime::UNIX_EPOCH + Duration::from_secs_f64(newest.max(0.0)),
                    size: 0,
                    is_terminal: false,
                })
            }
            Err(e) => Err(db.error("stat", key, e)),
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

fn not_found(op: &str, key: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("storage {op} `{key}`: not found in Redis"),
    )
}

/// A new redislock token: 16 random bytes, base64url without padding (22 characters).
fn new_token() -> Result<String> {
    let mut raw = [0u8; 16];
    aws_lc_rs::rand::fill(&mut raw)
        .map_err(|_| Error::internal("no randomness for a lock token"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

#[async_trait]
impl LeaseBackend for Db {
    async fn try_acquire(&self, name: &str) -> Result<Option<String>> {
        let token = new_token()?;
        let taken: i64 = self
            .invoke(
                OBTAIN
                    .key(self.lock_key(name))
                    .arg(&token)
                    .arg(LEASE_TTL.as_millis() as u64),
            )
            .await?
            .map_err(|e| self.error("lock", name, e))?;
        Ok((taken == 1).then_some(token))
    }

    async fn extend(&self, name: &str, token: &str) -> Result<Option<String>> {
        let n: i64 = self
            .invoke(
                EXTEND
                    .key(self.lock_key(name))
                    .arg(token)
                    .arg(LEASE_TTL.as_millis() as u64),
            )
            .await?
            .map_err(|e| self.error("extend lock", name, e))?;
        Ok((n == 1).then(|| token.to_string()))
    }

    async fn release(&self, name: &str, token: &str) -> Result<bool> {
        let n: i64 = self
            .invoke(RELEASE.key(self.lock_key(name)).arg(token))
            .await?
            .map_err(|e| self.error("unlock", name, e))?;
        Ok(n == 1)
    }
}
