//! Storage implemented by a JavaScript object.

use std::sync::Arc;

use certmagic::storage::foreign::{ReleaseFuture, lock_detached};
use certmagic::{Error, ErrorKind, KeyInfo, Storage, numbers};
use napi::bindgen_prelude::{Buffer, Promise};
use napi_derive::napi;

use crate::Callback;
use crate::errors::JsCause;

/// One call into a JavaScript storage object.
#[napi(object)]
#[allow(missing_debug_implementations)] // holds napi Buffers, which have no Debug
pub struct StorageRequest {
    pub op: String,
    pub key: String,
    pub value: Option<Buffer>,
    pub recursive: Option<bool>,
}

/// What a JavaScript storage call answered (normalised by `index.js`).
#[napi(object)]
#[allow(missing_debug_implementations)] // holds napi Buffers, which have no Debug
pub struct StorageReply {
    pub ok: bool,
    pub not_found: Option<bool>,
    pub data: Option<Buffer>,
    pub flag: Option<bool>,
    pub keys: Option<Vec<String>>,
    /// Milliseconds since the Unix epoch.
    pub modified: Option<f64>,
    pub size: Option<f64>,
    pub error: Option<String>,
    pub cause_id: Option<u32>,
}

/// Storage implemented by a JavaScript object, through one dispatch function.
#[derive(Clone)]
pub(crate) struct JsStorage {
    pub(crate) dispatch: Arc<Callback<StorageRequest, Promise<StorageReply>>>,
}

impl std::fmt::Debug for JsStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsStorage")
    }
}

impl JsStorage {
    async fn call(
        &self,
        op: &'static str,
        key: &str,
        value: Option<Vec<u8>>,
        recursive: Option<bool>,
    ) -> certmagic::Result<StorageReply> {
        let what = format!("storage.{op}({key:?})");
        let request = StorageRequest {
            op: op.to_string(),
            key: key.to_string(),
            value: value.map(Buffer::from),
            recursive,
        };
        let dispatch = self.dispatch.clone();
        // Awaited twice: the call (queued to the JavaScript thread) yields a promise, then its
        // result; the engine's callback deadlines bound the wait.
        let reply = async move {
            let promise = dispatch.call_async(request).await?;
            promise.await
        }
        .await
        .map_err(|e| Error::new(ErrorKind::Storage, format!("{what}: {}", e.reason)))?;
        if reply.ok {
            return Ok(reply);
        }
        if reply.not_found == Some(true) {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("{what}: not found"),
            ));
        }
        let message = reply.error.clone().unwrap_or_else(|| "failed".into());
        let err = Error::new(ErrorKind::Storage, format!("{what} failed: {message}"));
        Err(match reply.cause_id {
            Some(id) => err.with_source(JsCause(id)),
            None => err,
        })
    }
}

#[certmagic::async_trait]
impl Storage for JsStorage {
    async fn store(&self, key: &str, value: &[u8]) -> certmagic::Result<()> {
        self.call("store", key, Some(value.to_vec()), None)
            .await
            .map(|_| ())
    }

    async fn load(&self, key: &str) -> certmagic::Result<Vec<u8>> {
        let reply = self.call("load", key, None, None).await?;
        Ok(reply.data.map(|d| d.to_vec()).unwrap_or_default())
    }

    async fn delete(&self, key: &str) -> certmagic::Result<()> {
        self.call("delete", key, None, None).await.map(|_| ())
    }

    async fn exists(&self, key: &str) -> certmagic::Result<bool> {
        Ok(self
            .call("exists", key, None, None)
            .await?
            .flag
            .unwrap_or(false))
    }

    async fn list(&self, prefix: &str, recursive: bool) -> certmagic::Result<Vec<String>> {
        Ok(self
            .call("list", prefix, None, Some(recursive))
            .await?
            .keys
            .unwrap_or_default())
    }

    async fn stat(&self, key: &str) -> certmagic::Result<KeyInfo> {
        let reply = self.call("stat", key, None, None).await?;
        let what = format!("storage.stat({key:?}) modified");
        Ok(KeyInfo {
            key: key.to_string(),
            modified: numbers::unix_time(&what, reply.modified.unwrap_or(0.0) / 1000.0)?,
            size: reply.size.unwrap_or(0.0).max(0.0) as u64,
            is_terminal: reply.flag.unwrap_or(true),
        })
    }

    async fn lock(&self, name: &str) -> certmagic::Result<()> {
        // A promise cannot be cancelled: a lock it grants after this call was dropped is
        // given back at once.
        let (locker, unlocker) = (self.clone(), self.clone());
        let (n, nu) = (name.to_string(), name.to_string());
        lock_detached(
            async move { locker.call("lock", &n, None, None).await.map(|_| ()) },
            move || -> ReleaseFuture {
                Box::pin(async move { unlocker.call("unlock", &nu, None, None).await.map(|_| ()) })
            },
        )
        .await
    }

    async fn unlock(&self, name: &str) -> certmagic::Result<()> {
        self.call("unlock", name, None, None).await.map(|_| ())
    }
}
