//! A DNS provider implemented by a JavaScript object.

use std::sync::Arc;

use certmagic::{DnsProvider, DnsRecord, Error, ErrorKind};
use napi::bindgen_prelude::Promise;
use napi_derive::napi;

use crate::Callback;
use crate::errors::JsCause;

/// One call into a JavaScript DNS provider object.
#[napi(object)]
#[derive(Debug)]
pub struct DnsRequest {
    /// `appendRecords` or `deleteRecords`.
    pub op: String,
    /// The zone, with a trailing dot.
    pub zone: String,
    /// The records, as JSON.
    pub records_json: String,
}

/// What a JavaScript DNS provider call answered (normalised by `index.js`).
#[napi(object)]
#[derive(Debug)]
pub struct DnsReply {
    pub ok: bool,
    /// The records as created (JSON), when the provider returned them.
    pub records_json: Option<String>,
    pub error: Option<String>,
    pub cause_id: Option<u32>,
}

/// A DNS provider implemented by a JavaScript object, through one dispatch function.
pub(crate) struct JsDnsProvider {
    pub(crate) dispatch: Arc<Callback<DnsRequest, Promise<DnsReply>>>,
}

impl std::fmt::Debug for JsDnsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsDnsProvider")
    }
}

impl JsDnsProvider {
    async fn call(
        &self,
        op: &'static str,
        zone: &str,
        records: &[DnsRecord],
    ) -> certmagic::Result<Vec<DnsRecord>> {
        let what = format!("dnsProvider.{op}({zone:?})");
        let request = DnsRequest {
            op: op.to_string(),
            zone: zone.to_string(),
            records_json: serde_json::to_string(records)?,
        };
        let dispatch = self.dispatch.clone();
        // The engine's callback deadline bounds the wait.
        let reply = async move {
            let promise = dispatch.call_async(request).await?;
            promise.await
        }
        .await
        .map_err(|e| Error::new(ErrorKind::Challenge, format!("{what}: {}", e.reason)))?;
        if !reply.ok {
            let message = reply.error.clone().unwrap_or_else(|| "failed".into());
            let err = Error::new(ErrorKind::Challenge, format!("{what} failed: {message}"));
            return Err(match reply.cause_id {
                Some(id) => err.with_source(JsCause(id)),
                None => err,
            });
        }
        match reply.records_json {
            None => Ok(records.to_vec()),
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                Error::new(
                    ErrorKind::Challenge,
                    format!("{what} returned something that is not an array of records: {e}"),
                )
            }),
        }
    }
}

#[certmagic::async_trait]
impl DnsProvider for JsDnsProvider {
    async fn append_records(
        &self,
        zone: &str,
        records: &[DnsRecord],
    ) -> certmagic::Result<Vec<DnsRecord>> {
        self.call("appendRecords", zone, records).await
    }

    async fn delete_records(
        &self,
        zone: &str,
        records: &[DnsRecord],
    ) -> certmagic::Result<Vec<DnsRecord>> {
        self.call("deleteRecords", zone, records).await
    }
}
