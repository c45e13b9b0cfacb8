//! Every storage held to the one contract of `storage.rs` (the same test against folders,
//! memory, a real Redis and a real PostgreSQL), and the database storages checked against the
//! shapes Caddy's plugins write: records and folder sets as `pberkel/caddy-storage-redis`
//! stores them, rows and lock rows as `caddy.storage.postgres` does, read and written with
//! `redis-cli` and `psql` beside the library.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use certmagic::storage::postgres::PostgresStorage;
use certmagic::storage::redis::RedisStorage;
use certmagic::storage::{keys, location};
use certmagic::{ErrorKind, FileStorage, Manager, MemoryStorage, Storage};
use certmagic_testsupport::postgres::Postgres;
use certmagic_testsupport::redis::{self, Redis};

/// The contract, on a storage nobody else uses. `other` is a second storage value on the same
/// data (another process, for locks), when there is one.
/// Folders are kept when emptied (FileStorage, as Go's) unless `prunes`.
async fn contract(s: Arc<dyn Storage>, other: Option<Arc<dyn Storage>>, prunes: bool) {
    let what = format!("{s:?}");
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    s.store("certificates/ca/a.test/a.test.crt", b"crt")
        .await
        .unwrap();
    s.store("certificates/ca/a.test/a.test.key", &all_bytes)
        .await
        .unwrap();
    s.store("certificates/ca/b.test/b.test.crt", b"b")
        .await
        .unwrap();
    s.store("certificates/ca/a.testing", b"sibling")
        .await
        .unwrap();
    s.store("top", b"t").await.unwrap();
    // Replacing.
    s.store("certificates/ca/b.test/b.test.crt", b"b2")
        .await
        .unwrap();
    assert_eq!(
        s.load("certificates/ca/b.test/b.test.crt").await.unwrap(),
        b"b2",
        "{what}"
    );
    assert_eq!(
        s.load("certificates/ca/a.test/a.test.key").await.unwrap(),
        all_bytes
    );
    let many = s
        .load_many(&["certificates/ca/a.test/a.test.crt", "nope/x", "top"])
        .await;
    assert_eq!(many[0].as_ref().unwrap(), b"crt");
    assert_eq!(many[1].as_ref().unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(many[2].as_ref().unwrap(), b"t");
    assert!(s.load_many(&[]).await.is_empty());

    assert_eq!(
        s.list("certificates/ca", false).await.unwrap(),
        [
            "certificates/ca/a.test",
            "certificates/ca/a.testing",
            "certificates/ca/b.test"
        ],
        "{what}"
    );
    assert_eq!(
        s.list("certificates/ca", true).await.unwrap(),
        [
            "certificates/ca/a.test",
            "certificates/ca/a.test/a.test.crt",
            "certificates/ca/a.test/a.test.key",
            "certificates/ca/a.testing",
            "certificates/ca/b.test",
            "certificates/ca/b.test/b.test.crt",
        ],
        "{what}"
    );
    for missing in ["nope", "certificates/ca/a.test/a.test.crt/x"] {
        assert_eq!(
            s.list(missing, false).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            s.load(missing).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            s.stat(missing).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert!(!s.exists(missing).await.unwrap());
    }

    let info = s.stat("certificates/ca/a.test/a.test.key").await.unwrap();
    assert!(info.is_terminal);
    assert_eq!(info.size, 256);
    let age = SystemTime::now()
        .duration_since(info.modified)
        .unwrap_or_default();
    assert!(
        age < Duration::from_secs(60),
        "{what}: modified {age:?} ago"
    );
    let folder = s.stat("certificates/ca/a.test").await.unwrap();
    assert!(!folder.is_terminal, "{what}");
    assert!(s.exists("certificates/ca/a.test").await.unwrap());
    assert!(s.exists("certificates/ca/a.test/a.test.crt").await.unwrap());

    // Deleting a value, then a folder with its subtree; a missing key is fine.
    s.delete("certificates/ca/b.test/b.test.crt").await.unwrap();
    assert!(!s.exists("certificates/ca/b.test/b.test.crt").await.unwrap());
    s.delete("certificates/ca/a.test").await.unwrap();
    assert_eq!(
        s.load("certificates/ca/a.test/a.test.key")
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert!(!s.exists("certificates/ca/a.test").await.unwrap());
    let left = s.list("certificates/ca", false).await.unwrap();
    if prunes {
        assert_eq!(
            left,
            ["certificates/ca/a.testing"],
            "{what}: empty folders are gone"
        );
    } else {
        assert_eq!(
            left,
            ["certificates/ca/a.testing", "certificates/ca/b.test"],
            "{what}"
        );
    }
    s.delete("certificates/ca/never").await.unwrap();
    assert_eq!(
        s.load("certificates/ca/a.testing").await.unwrap(),
        b"sibling"
    );

    // Concurrent stores of one key: one whole value wins.
    let big_a = vec![b'a'; 64 * 1024];
    let big_b = vec![b'b'; 64 * 1024];
    let (ra, rb) = tokio::join!(s.store("race", &big_a), s.store("race", &big_b));
    ra.unwrap();
    rb.unwrap();
    let got = s.load("race").await.unwrap();
    assert!(got == big_a || got == big_b, "{what}: a torn value");

    // Locks exclude, within this storage value and across two.
    s.lock("issue_cert_a.test").await.unwrap();
    let contender = other.clone().unwrap_or_else(|| s.clone());
    let waiting = tokio::spawn({
        let c = contender.clone();
        async move { c.lock("issue_cert_a.test").await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!waiting.is_finished(), "{what}: a held lock was taken");
    // Another name is free.
    s.lock("issue_cert_b.test").await.unwrap();
    s.unlock("issue_cert_b.test").await.unwrap();
    s.unlock("issue_cert_a.test").await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the waiter gets the lock after unlock")
        .unwrap()
        .unwrap();
    contender.unlock("issue_cert_a.test").await.unwrap();
    s.release_own_locks().await.unwrap();
}

#[tokio::test]
async fn memory_and_folder_keep_the_contract() {
    contract(Arc::new(MemoryStorage::new()), None, true).await;
    let dir = tempfile::tempdir().unwrap();
    let a = Arc::new(FileStorage::new(dir.path()));
    let b = Arc::new(FileStorage::new(dir.path()));
    contract(a, Some(b), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keeps_the_contract() {
    let redis = Redis::start();
    let a = location::open(&redis.url()).unwrap();
    let b = location::open(&redis.url()).unwrap();
    contract(a, Some(b), true).await;
    // Everything it wrote is under the prefix, and nothing is left but what the test kept.
    let keys = redis.cli(&["--scan"]);
    let mut keys: Vec<&str> = keys.lines().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "caddy",
            "caddy/certificates",
            "caddy/certificates/ca",
            "caddy/certificates/ca/a.testing",
            "caddy/race",
            "caddy/top"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_the_contract() {
    let pg = Postgres::start();
    let a = location::open(&pg.url()).unwrap();
    let b = location::open(&pg.url()).unwrap();
    contract(a, Some(b), true).await;
    assert_eq!(
        pg.psql("certmagic", "select count(*) from certmagic_locks"),
        "0\n",
        "every lock row released"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_reads_and_writes_the_caddy_plugin_layout() {
    let redis = Redis::start();
    let s = RedisStorage::open(&redis.url()).unwrap();
    // As the plugin (Go) writes a certificate: the folder sets bottom-up, then the record.
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let record = r#"{"value":"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=","modified":"2026-07-21T11:57:45.123456789+10:00","size":59,"compression":0,"encryption":0}"#;
    for (set, member) in [
        ("caddy/certificates/acme/example.com", "example.com.crt"),
        ("caddy/certificates/acme", "example.com/"),
        ("caddy/certificates", "acme/"),
        ("caddy", "certificates/"),
    ] {
        redis.cli(&["ZADD", set, "1784599065", member]);
    }
    redis.cli(&[
        "SET",
        "caddy/certificates/acme/example.com/example.com.crt",
        record,
    ]);
    let key = "certificates/acme/example.com/example.com.crt";
    assert_eq!(s.load(key).await.unwrap(), pem.as_bytes());
    let info = s.stat(key).await.unwrap();
    assert_eq!(info.size, 59);
    assert_eq!(
        info.modified,
        SystemTime::UNIX_EPOCH + Duration::from_nanos(1_784_599_065_123_456_789)
    );
    assert_eq!(
        s.list("certificates", false).await.unwrap(),
        ["certificates/acme"]
    );
    assert_eq!(
        s.list("certificates/acme", true).await.unwrap(),
        ["certificates/acme/example.com", key]
    );

    // What this library writes, as the plugin reads it.
    let ours = "certificates/acme/example.org/example.org.key";
    s.store(ours, b"key bytes").await.unwrap();
    let raw = redis.cli(&["GET", "caddy/certificates/acme/example.org/example.org.key"]);
    let json: serde_json::Value = serde_json::from_str(raw.trim()).unwrap();
    let fields: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(
        fields,
        ["value", "modified", "size", "compression", "encryption"]
    );
    assert_eq!(json["value"], "a2V5IGJ5dGVz");
    assert_eq!(json["size"], 9);
    let modified = time::OffsetDateTime::parse(
        json["modified"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!((time::OffsetDateTime::now_utc() - modified).abs() < time::Duration::seconds(60));
    assert_eq!(
        redis.cli(&["ZRANGE", "caddy/certificates/acme", "0", "-1"]),
        "example.com/\nexample.org/\n"
    );
    assert_eq!(
        redis
            .cli(&[
                "ZRANGE",
                "caddy/certificates/acme/example.org",
                "0",
                "-1",
                "WITHSCORES"
            ])
            .lines()
            .next(),
        Some("example.org.key")
    );
    // The plugin's delete leaves no empty set and no dangling member; neither does ours.
    s.delete(ours).await.unwrap();
    assert_eq!(
        redis.cli(&["EXISTS", "caddy/certificates/acme/example.org"]),
        "0\n"
    );
    assert_eq!(
        redis.cli(&["ZRANGE", "caddy/certificates/acme", "0", "-1"]),
        "example.com/\n"
    );

    // A lock while held: redislock's key and token, an expiry, never indexed.
    s.lock("issue_cert_example.org").await.unwrap();
    let token = redis.cli(&["GET", "caddy/locks/issue_cert_example.org"]);
    let token = token.trim();
    assert_eq!(token.len(), 22, "{token}");
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    let ttl: i64 = redis
        .cli(&["PTTL", "caddy/locks/issue_cert_example.org"])
        .trim()
        .parse()
        .unwrap();
    assert!(ttl > 0 && ttl <= 10_000, "{ttl}");
    assert_eq!(redis.cli(&["EXISTS", "caddy/locks"]), "0\n");
    s.unlock("issue_cert_example.org").await.unwrap();
    assert_eq!(
        redis.cli(&["EXISTS", "caddy/locks/issue_cert_example.org"]),
        "0\n"
    );

    // A lock a Caddy holds (redislock: SET NX PX 5000, a token of its own) is waited for; one
    // that its holder stopped refreshing is taken once it expires.
    redis.cli(&[
        "SET",
        "caddy/locks/issue_cert_caddy.test",
        "CaddyHoldsThisToken000",
        "NX",
        "PX",
        "3000",
    ]);
    let started = Instant::now();
    s.lock("issue_cert_caddy.test").await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(2000),
        "took a held lock after {waited:?}"
    );
    assert_ne!(
        redis
            .cli(&["GET", "caddy/locks/issue_cert_caddy.test"])
            .trim(),
        "CaddyHoldsThisToken000"
    );
    // Our unlock of a lock someone else holds now leaves it alone.
    redis.cli(&[
        "SET",
        "caddy/locks/issue_cert_caddy.test",
        "SomeoneElse00000000000",
        "PX",
        "10000",
    ]);
    s.unlock("issue_cert_caddy.test").await.unwrap();
    assert_eq!(
        redis
            .cli(&["GET", "caddy/locks/issue_cert_caddy.test"])
            .trim(),
        "SomeoneElse00000000000"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_options_prefix_compression_encryption_and_tls() {
    let redis = Redis::start();
    let key = "0123456789abcdef0123456789abcdef";
    let url = format!(
        "{}?key_prefix=fleet/one&compression=zlib&encryption_key={key}",
        redis.url()
    );
    let s = RedisStorage::open(&url).unwrap();
    let value = "-----BEGIN CERTIFICATE-----\n".repeat(50);
    s.store("certificates/x/y.crt", value.as_bytes())
        .await
        .unwrap();
    assert_eq!(
        s.load("certificates/x/y.crt").await.unwrap(),
        value.as_bytes()
    );
    let raw = redis.cli(&["GET", "fleet/one/certificates/x/y.crt"]);
    let json: serde_json::Value = serde_json::from_str(raw.trim()).unwrap();
    assert_eq!(
        (json["compression"].as_u64(), json["encryption"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        redis.cli(&["ZRANGE", "fleet/one", "0", "-1"]),
        "certificates/\n"
    );
    // Without the key, a clear error; with another prefix, nothing there.
    let plain = RedisStorage::open(&format!("{}?key_prefix=fleet/one", redis.url())).unwrap();
    let e = plain.load("certificates/x/y.crt").await.unwrap_err();
    assert!(e.to_string().contains("encryption_key"), "{e}");
    let other = RedisStorage::open(&redis.url()).unwrap();
    assert_eq!(
        other.load("certificates/x/y.crt").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );

    // Bad options are refused when opened, naming the option, never showing the password.
    for bad in [
        format!("{}?compression=lz4", redis.url()),
        format!("{}?encryption_key=short", redis.url()),
        format!("{}?key_prefix=a//b", redis.url()),
        format!("{}?tls_ca_file=/nonexistent", redis.url()),
    ] {
        let e = location::open(&bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{bad}");
        assert!(!e.to_string().contains(redis::PASSWORD), "{e}");
    }

    // rediss:// with the server's CA.
    let tls = Redis::start_tls();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, tls.ca_pem.as_ref().unwrap()).unwrap();
    let s = location::open(&format!("{}?tls_ca_file={}", tls.url(), ca.display())).unwrap();
    s.store("over/tls", b"yes").await.unwrap();
    assert_eq!(s.load("over/tls").await.unwrap(), b"yes");
    // Without it the server's certificate is not trusted: an error, not a plain connection.
    let untrusted = location::open(&tls.url()).unwrap();
    let e = untrusted.load("over/tls").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
    assert!(!e.to_string().contains(redis::PASSWORD), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_reads_and_writes_the_caddy_module_tables() {
    let pg = Postgres::start();
    let s = PostgresStorage::open(&pg.url()).unwrap();
    assert!(!s.exists("x").await.unwrap());
    // The module's tables, column for column.
    assert_eq!(
        pg.psql(
            "certmagic",
            "select table_name, column_name, data_type, coalesce(column_default, '') from information_schema.columns where table_name like 'certmagic_%' order by table_name, ordinal_position"
        ),
        "certmagic_data|key|text|\ncertmagic_data|value|bytea|\ncertmagic_data|modified|timestamp with time zone|CURRENT_TIMESTAMP\ncertmagic_locks|key|text|\ncertmagic_locks|expires|timestamp with time zone|CURRENT_TIMESTAMP\n"
    );
    // Rows as the module writes them.
    pg.psql(
        "certmagic",
        "insert into certmagic_data (key, value) values ('certificates/acme/example.com/example.com.crt', 'PEM'::bytea), ('certificates/acme/example.com/example.com.json', NULL)",
    );
    assert_eq!(
        s.load("certificates/acme/example.com/example.com.crt")
            .await
            .unwrap(),
        b"PEM"
    );
    assert_eq!(
        s.load("certificates/acme/example.com/example.com.json")
            .await
            .unwrap(),
        b""
    );
    assert_eq!(
        s.list("certificates/acme", false).await.unwrap(),
        ["certificates/acme/example.com"]
    );
    // What this library writes, as the module reads it.
    s.store(
        "certificates/acme/example.org/example.org.key",
        b"\x00key\xff",
    )
    .await
    .unwrap();
    assert_eq!(
        pg.psql(
            "certmagic",
            "select encode(value, 'hex'), modified > now() - interval '1 minute' from certmagic_data where key = 'certificates/acme/example.org/example.org.key'"
        ),
        "006b6579ff|t\n"
    );
    // A prefix with LIKE's wildcards is only a prefix.
    s.store("a_b/x", b"1").await.unwrap();
    s.store("aXb/y", b"2").await.unwrap();
    assert_eq!(s.list("a_b", true).await.unwrap(), ["a_b/x"]);
    s.store("it's/x", b"q").await.unwrap();
    assert_eq!(s.list("it's", false).await.unwrap(), ["it's/x"]);

    // A lock row while held; one a Caddy holds (now + 1 minute, as the module writes) is
    // waited for; an expired one is taken over.
    s.lock("issue_cert_example.org").await.unwrap();
    assert_eq!(
        pg.psql(
            "certmagic",
            "select expires > now(), expires < now() + interval '11 seconds' from certmagic_locks where key = 'issue_cert_example.org'"
        ),
        "t|t\n"
    );
    s.unlock("issue_cert_example.org").await.unwrap();
    assert_eq!(
        pg.psql("certmagic", "select count(*) from certmagic_locks"),
        "0\n"
    );
    pg.psql(
        "certmagic",
        "insert into certmagic_locks (key, expires) values ('issue_cert_caddy.test', now() + interval '2 seconds'), ('issue_cert_dead.test', now() - interval '1 second')",
    );
    let started = Instant::now();
    s.lock("issue_cert_dead.test").await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    s.lock("issue_cert_caddy.test").await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "took a held lock"
    );
    // A row someone else holds now is left alone by our unlock.
    pg.psql(
        "certmagic",
        "update certmagic_locks set expires = now() + interval '1 minute' where key = 'issue_cert_caddy.test'",
    );
    s.unlock("issue_cert_caddy.test").await.unwrap();
    assert_eq!(
        pg.psql("certmagic", "select key from certmagic_locks order by key"),
        "issue_cert_caddy.test\nissue_cert_dead.test\n"
    );

    // Options: other tables, checked instead of created when DDL is off.
    let custom = format!(
        "{}?application_name=t&data_table=fleet_data&locks_table=fleet_locks",
        pg.url()
    );
    let c = location::open(&custom).unwrap();
    c.store("k", b"v").await.unwrap();
    assert_eq!(
        pg.psql("certmagic", "select count(*) from fleet_data"),
        "1\n"
    );
    let no_ddl = location::open(&format!(
        "{}?data_table=missing_data&disable_ddl=true",
        pg.url()
    ))
    .unwrap();
    let e = no_ddl.load("k").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage);
    assert!(e.to_string().contains("missing_data"), "{e}");
    for bad in [
        format!("{}?data_table=x;drop", pg.url()),
        format!("{}?disable_ddl=maybe", pg.url()),
        format!("{}?sslrootcert=/x", pg.url()),
        format!("{}?data_table=t&locks_table=t", pg.url()),
    ] {
        let e = location::open(&bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{bad}");
        assert!(
            !e.to_string()
                .contains(certmagic_testsupport::postgres::PASSWORD),
            "{e}"
        );
    }
}

/// A held lock survives the database restarting (its extension fails once, then resumes);
/// stored values are kept; calls during the outage fail with a storage error that names the
/// database without its password, and work again once it is back.
async fn survives_a_restart(s: Arc<dyn Storage>, restart: impl FnOnce(), password: &str) {
    s.store("kept/value", b"before").await.unwrap();
    s.lock("held").await.unwrap();
    restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    let value = loop {
        match s.load("kept/value").await {
            Ok(v) => break v,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
                assert!(!e.to_string().contains(password), "{e}");
                assert!(Instant::now() < deadline, "still failing: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(value, b"before");
    s.store("kept/after", b"after").await.unwrap();
    s.unlock("held").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_loses_nothing() {
    let mut redis = Redis::start();
    let s = location::open(&redis.url()).unwrap();
    survives_a_restart(s.clone(), || redis.restart(), redis::PASSWORD).await;
    assert_eq!(redis.cli(&["EXISTS", "caddy/locks/held"]), "0\n");
    // Down for good: a clear error, quickly.
    redis.stop();
    let started = Instant::now();
    let e = s.load("kept/value").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_loses_nothing() {
    let mut pg = Postgres::start();
    let s = location::open(&pg.url()).unwrap();
    survives_a_restart(
        s.clone(),
        || pg.restart(),
        certmagic_testsupport::postgres::PASSWORD,
    )
    .await;
    assert_eq!(
        pg.psql("certmagic", "select count(*) from certmagic_locks"),
        "0\n"
    );
    pg.stop();
    let e = s.load("kept/value").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage);
}

/// Renewals running while the database restarts (three times, two seconds apart): every
/// certificate is served from memory throughout, and every renewal completes once the database
/// is back, with the renewed certificate in storage.
async fn renewals_survive_restarts<D: Send + 'static>(
    url: String,
    db: D,
    restart: fn(&mut D),
) -> D {
    let pebble = common::Pebble::start(common::PebbleOptions {
        validity_secs: Some(60),
        ..Default::default()
    });
    let storage = location::open(&url).unwrap();
    let config = common::pebble_config(&pebble, storage.clone())
        // Due 1.8 s after issuance, so renewals run all through the restarts; failures retried
        // after 1 s.
        .renewal_window_ratio(0.97)
        .renew_check_interval(Duration::from_millis(500))
        .retry_intervals([Duration::from_secs(1)])
        .build()
        .unwrap();
    let manager = Manager::new(config).unwrap();
    let names = ["r1.restart.test", "r2.restart.test", "r3.restart.test"];
    manager.manage(&names).await.unwrap();
    let first: Vec<String> = names
        .iter()
        .map(|n| manager.get_certificate(n).unwrap().serial_hex())
        .collect();
    let restarts = tokio::task::spawn_blocking(move || {
        let mut db = db;
        for _ in 0..3 {
            std::thread::sleep(Duration::from_secs(2));
            restart(&mut db);
        }
        db
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let served: Vec<String> = names
            .iter()
            .map(|n| {
                manager
                    .get_certificate(n)
                    .expect("served throughout")
                    .serial_hex()
            })
            .collect();
        if restarts.is_finished() && served.iter().zip(&first).all(|(now, was)| now != was) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every certificate was renewed: {served:?} (first {first:?})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let db = restarts.await.unwrap();
    for (name, was) in names.iter().zip(&first) {
        let pem = storage
            .load(&keys::site_cert(manager.issuer_key(), name))
            .await
            .unwrap();
        let stored = certmagic::Certificate::from_pem(
            &pem,
            &storage
                .load(&keys::site_private_key(manager.issuer_key(), name))
                .await
                .unwrap(),
        )
        .unwrap();
        assert_ne!(&stored.serial_hex(), was, "{name}: the renewal is stored");
        common::assert_cert_verifies(&pebble, &stored, name);
    }
    manager.shutdown().await.unwrap();
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarts_during_renewals_lose_nothing() {
    let redis = Redis::start();
    let url = redis.url();
    renewals_survive_restarts(url, redis, Redis::restart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarts_during_renewals_lose_nothing() {
    let pg = Postgres::start();
    let url = pg.url();
    renewals_survive_restarts(url, pg, Postgres::restart).await;
}
