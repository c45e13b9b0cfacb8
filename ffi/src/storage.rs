//! Storage implemented by C callbacks: the table `certmagic_storage_callbacks`, adapted to the
//! core `BlockingStorage` trait: the engine calls each on a blocking thread, so it may block
//! (network stores, locks).

use std::ffi::{CString, c_char, c_void};

use certmagic::storage::foreign::BlockingStorage;
use certmagic::{Error, ErrorKind, KeyInfo};

use crate::boundary::{Failure, FfiResult};
use crate::handle::{Userdata, certmagic_userdata_free_cb};
use crate::result::certmagic_result;
use crate::slice::{certmagic_buffer, certmagic_string_list};

/// What a storage `stat` callback reports about a key.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct certmagic_key_info {
    /// Last modification, milliseconds since the Unix epoch.
    pub modified_unix_ms: i64,
    /// Size in bytes (0 for a "directory").
    pub size: u64,
    /// True for a value, false for a prefix of other keys.
    pub is_terminal: bool,
}

/// A storage implemented in C. Keys are `/`-separated UTF-8 (`certificates/<issuer>/<name>/…`),
/// given NUL-terminated and valid only during the call. Every member except `userdata_free`
/// must be set. Each returns `CERTMAGIC_RESULT_OK`, `CERTMAGIC_RESULT_NOT_FOUND` for a missing
/// key (`load`, `stat`, `list`), or another code for a failure (which fails that operation only).
///
/// The contract is the core `Storage` trait's: `store` replaces a value atomically; `delete_key`
/// removes a key and everything under it and succeeds if absent; `lock` blocks until the named
/// lock is held across every process sharing the store, `unlock` releases it.
///
/// Thread-safety: callbacks are called on library threads, several at once; they may block
/// (they run on blocking threads); must return normally; must not call blocking `certmagic_*`
/// functions. `userdata_free` (may be NULL) is called once, when the last manager using the
/// storage is gone, or before `certmagic_config_builder_set_storage_callbacks` returns if it
/// fails (the library owns `userdata` from the call on, as with every `userdata_free`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct certmagic_storage_callbacks {
    /// Passed to every callback.
    pub userdata: *mut c_void,
    /// Stores `value_len` bytes at `key`.
    pub store: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            key: *const c_char,
            value: *const u8,
            value_len: usize,
        ) -> u32,
    >,
    /// Loads `key` into `out` with `certmagic_buffer_set`.
    pub load: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            key: *const c_char,
            out: *mut certmagic_buffer,
        ) -> u32,
    >,
    /// Deletes `key` and everything under it.
    pub delete_key: Option<unsafe extern "C" fn(userdata: *mut c_void, key: *const c_char) -> u32>,
    /// Writes whether `key` exists (as a value or a prefix) to `out`.
    pub exists: Option<
        unsafe extern "C" fn(userdata: *mut c_void, key: *const c_char, out: *mut bool) -> u32,
    >,
    /// Pushes the keys under `prefix` onto `out` with `certmagic_string_list_push`: direct children
    /// only, or all keys below if `recursive`.
    pub list: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            prefix: *const c_char,
            recursive: bool,
            out: *mut certmagic_string_list,
        ) -> u32,
    >,
    /// Writes what is known about `key` to `out`.
    pub stat: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            key: *const c_char,
            out: *mut certmagic_key_info,
        ) -> u32,
    >,
    /// Blocks until the lock `name` is held.
    pub lock: Option<unsafe extern "C" fn(userdata: *mut c_void, name: *const c_char) -> u32>,
    /// Releases the lock `name`.
    pub unlock: Option<unsafe extern "C" fn(userdata: *mut c_void, name: *const c_char) -> u32>,
    /// Frees `userdata`; may be NULL.
    pub userdata_free: certmagic_userdata_free_cb,
}

/// The checked table.
struct Table {
    store: unsafe extern "C" fn(*mut c_void, *const c_char, *const u8, usize) -> u32,
    load: unsafe extern "C" fn(*mut c_void, *const c_char, *mut certmagic_buffer) -> u32,
    delete_key: unsafe extern "C" fn(*mut c_void, *const c_char) -> u32,
    exists: unsafe extern "C" fn(*mut c_void, *const c_char, *mut bool) -> u32,
    list: unsafe extern "C" fn(*mut c_void, *const c_char, bool, *mut certmagic_string_list) -> u32,
    stat: unsafe extern "C" fn(*mut c_void, *const c_char, *mut certmagic_key_info) -> u32,
    lock: unsafe extern "C" fn(*mut c_void, *const c_char) -> u32,
    unlock: unsafe extern "C" fn(*mut c_void, *const c_char) -> u32,
    userdata: Userdata,
}

/// A C table as a core `BlockingStorage` (wrapped in `Blocking` for the engine).
pub(crate) struct CStorage {
    table: Table,
}

impl std::fmt::Debug for CStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CStorage")
    }
}

impl CStorage {
    /// Checks that every required member is set (naming the first that is not). The userdata
    /// is owned from the start, so it is freed when the table is refused.
    pub fn new(c: &certmagic_storage_callbacks) -> FfiResult<Self> {
        fn need<T>(f: Option<T>, name: &str) -> FfiResult<T> {
            f.ok_or_else(|| Failure::null(&format!("callbacks->{name}")))
        }
        let userdata = Userdata::new(c.userdata, c.userdata_free);
        let table = Table {
            store: need(c.store, "store")?,
            load: need(c.load, "load")?,
            delete_key: need(c.delete_key, "delete_key")?,
            exists: need(c.exists, "exists")?,
            list: need(c.list, "list")?,
            stat: need(c.stat, "stat")?,
            lock: need(c.lock, "lock")?,
            unlock: need(c.unlock, "unlock")?,
            userdata,
        };
        Ok(Self { table })
    }

    /// Runs one callback (the caller is on a blocking thread).
    fn run<T>(
        &self,
        op: &'static str,
        key: &str,
        f: impl FnOnce(&Table, &CString) -> Result<T, u32>,
    ) -> certmagic::Result<T> {
        let c_key = CString::new(key).map_err(|_| {
            Error::new(
                ErrorKind::Storage,
                format!("storage key `{key}` holds a NUL byte"),
            )
        })?;
        f(&self.table, &c_key).map_err(|rc| {
            let code = certmagic_result::from_callback(rc);
            let kind = code.kind();
            let what = if kind == ErrorKind::NotFound {
                "reported not found"
            } else {
                "failed"
            };
            Error::new(
                kind,
                format!(
                    "storage callback `{op}` {what} for `{key}` ({})",
                    crate::result_name(rc)
                ),
            )
        })
    }
}

fn check(rc: u32) -> Result<(), u32> {
    if rc == 0 { Ok(()) } else { Err(rc) }
}

impl BlockingStorage for CStorage {
    fn store(&self, key: &str, value: &[u8]) -> certmagic::Result<()> {
        // SAFETY (all callbacks below): the table was checked at registration; the arguments
        // are valid for the duration of the call.
        self.run("store", key, move |t, k| {
            check(unsafe { (t.store)(t.userdata.ptr, k.as_ptr(), value.as_ptr(), value.len()) })
        })
    }

    fn load(&self, key: &str) -> certmagic::Result<Vec<u8>> {
        self.run("load", key, |t, k| {
            let mut out = certmagic_buffer::default();
            check(unsafe { (t.load)(t.userdata.ptr, k.as_ptr(), &mut out) })?;
            Ok(out.data)
        })
    }

    fn delete(&self, key: &str) -> certmagic::Result<()> {
        self.run("delete_key", key, |t, k| {
            check(unsafe { (t.delete_key)(t.userdata.ptr, k.as_ptr()) })
        })
    }

    fn exists(&self, key: &str) -> certmagic::Result<bool> {
        self.run("exists", key, |t, k| {
            let mut out = false;
            check(unsafe { (t.exists)(t.userdata.ptr, k.as_ptr(), &mut out) })?;
            Ok(out)
        })
    }

    fn list(&self, prefix: &str, recursive: bool) -> certmagic::Result<Vec<String>> {
        self.run("list", prefix, |t, k| {
            let mut out = certmagic_string_list::default();
            check(unsafe { (t.list)(t.userdata.ptr, k.as_ptr(), recursive, &mut out) })?;
            Ok(out.items)
        })
    }

    fn stat(&self, key: &str) -> certmagic::Result<KeyInfo> {
        self.run("stat", key, |t, k| {
            let mut out = certmagic_key_info::default();
            check(unsafe { (t.stat)(t.userdata.ptr, k.as_ptr(), &mut out) })?;
            let modified = certmagic::numbers::unix_time(
                "storage callback `stat`: modified_unix_ms",
                out.modified_unix_ms as f64 / 1000.0,
            )
            .map_err(|_| certmagic_result::InvalidParameter as u32)?;
            Ok(KeyInfo {
                key: key.to_string(),
                modified,
                size: out.size,
                is_terminal: out.is_terminal,
            })
        })
    }

    fn lock(&self, name: &str) -> certmagic::Result<()> {
        self.run("lock", name, |t, k| {
            check(unsafe { (t.lock)(t.userdata.ptr, k.as_ptr()) })
        })
    }

    fn unlock(&self, name: &str) -> certmagic::Result<()> {
        self.run("unlock", name, |t, k| {
            check(unsafe { (t.unlock)(t.userdata.ptr, k.as_ptr()) })
        })
    }
}
