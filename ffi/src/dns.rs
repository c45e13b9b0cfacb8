//! DNS-01 from C: a built-in provider chosen by name or JSON, or a provider implemented by C
//! callbacks (`certmagic_dns_provider_callbacks`), each with optional JSON options.

use std::ffi::{CString, c_char, c_void};
use std::sync::Arc;

use certmagic::dns::providers;
use certmagic::runtime::CallbackGuard;
use certmagic::{DnsOptions, DnsProvider, DnsRecord, Error, ErrorKind};

use crate::boundary::{Failure, FfiResult, call};
use crate::config::{certmagic_config_builder, set, update};
use crate::handle::{Userdata, certmagic_userdata_free_cb};
use crate::result::certmagic_result;
use crate::slice::{certmagic_buffer, text};

/// A DNS provider implemented in C. `zone` is the zone's name with a trailing dot
/// (`example.com.`); `records_json` a JSON array of records
/// `{"name": "_acme-challenge.www", "type": "TXT", "value": "…", "ttl": 120, "id": "…"}` with
/// names relative to the zone (`@` for the apex) and `id` present only if the provider gave
/// one. Both are NUL-terminated and valid during the call.
///
/// `append_records` adds the records (never replacing other values at the same name: a name
/// and its wildcard are validated through two values at once) and may write the records as
/// created, with the provider's ids, to `out` as a JSON array (`certmagic_buffer_set`); those
/// are what `delete_records` later receives. `delete_records` removes exactly the given
/// records; one that is already gone is not an error. Each returns `CERTMAGIC_RESULT_OK` or
/// another code for a failure, which fails that challenge.
///
/// Thread-safety: as `certmagic_storage_callbacks` (library threads, several at once, may
/// block, must return normally, no blocking `certmagic_*` calls). `userdata_free` (may be NULL)
/// runs once when no config uses the provider any more.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct certmagic_dns_provider_callbacks {
    /// Passed to every callback.
    pub userdata: *mut c_void,
    /// Adds records to a zone.
    pub append_records: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            zone: *const c_char,
            records_json: *const c_char,
            out: *mut certmagic_buffer,
        ) -> u32,
    >,
    /// Removes records from a zone.
    pub delete_records: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            zone: *const c_char,
            records_json: *const c_char,
            out: *mut certmagic_buffer,
        ) -> u32,
    >,
    /// Frees `userdata`; may be NULL.
    pub userdata_free: certmagic_userdata_free_cb,
}

type RecordsCb =
    unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char, *mut certmagic_buffer) -> u32;

struct Table {
    append_records: RecordsCb,
    delete_records: RecordsCb,
    userdata: Userdata,
}

/// The core `DnsProvider` over a C table.
#[derive(Clone)]
struct CDnsProvider {
    table: Arc<Table>,
}

impl std::fmt::Debug for CDnsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CDnsProvider")
    }
}

impl CDnsProvider {
    async fn run(
        &self,
        op: &'static str,
        zone: &str,
        records: &[DnsRecord],
        pick: fn(&Table) -> RecordsCb,
    ) -> certmagic::Result<Vec<DnsRecord>> {
        let bad_text =
            |what: &str| Error::new(ErrorKind::Challenge, format!("DNS {what} holds a NUL byte"));
        let c_zone = CString::new(zone).map_err(|_| bad_text("zone"))?;
        let c_records =
            CString::new(serde_json::to_string(records)?).map_err(|_| bad_text("record"))?;
        let table = self.table.clone();
        let (rc, out) = certmagic::runtime::spawn_blocking(move || {
            let _in_callback = CallbackGuard::enter();
            let mut out = certmagic_buffer::default();
            // SAFETY: the table was checked at registration; the arguments live during the call.
            let rc = unsafe {
                (pick(&table))(
                    table.userdata.ptr,
                    c_zone.as_ptr(),
                    c_records.as_ptr(),
                    &mut out,
                )
            };
            (rc, out)
        })
        .await?;
        if rc != 0 {
            return Err(Error::new(
                ErrorKind::Challenge,
                format!(
                    "DNS provider callback `{op}` failed for zone `{zone}` ({})",
                    crate::result_name(rc)
                ),
            ));
        }
        if !out.set || out.data.is_empty() {
            return Ok(records.to_vec());
        }
        serde_json::from_slice(&out.data).map_err(|e| {
            Error::new(
                ErrorKind::Challenge,
                format!("DNS provider callback `{op}` wrote records that are not a JSON array of records: {e}"),
            )
        })
    }
}

#[certmagic::async_trait]
impl DnsProvider for CDnsProvider {
    async fn append_records(
        &self,
        zone: &str,
        records: &[DnsRecord],
    ) -> certmagic::Result<Vec<DnsRecord>> {
        self.run("append_records", zone, records, |t| t.append_records)
            .await
    }

    async fn delete_records(
        &self,
        zone: &str,
        records: &[DnsRecord],
    ) -> certmagic::Result<Vec<DnsRecord>> {
        self.run("delete_records", zone, records, |t| t.delete_records)
            .await
    }
}

/// # Safety
/// `options_json` NULL or NUL-terminated.
unsafe fn options(options_json: *const c_char) -> FfiResult<DnsOptions> {
    if options_json.is_null() {
        return Ok(DnsOptions::default());
    }
    // SAFETY: per the contract above.
    let json = unsafe { text(options_json, "options_json") }?;
    Ok(DnsOptions::from_json(json)?)
}

fn set_dns(
    b: &mut certmagic::ConfigBuilder,
    provider: Arc<dyn DnsProvider>,
    options: &DnsOptions,
) -> FfiResult {
    set(b, |i| i.dns_provider(provider).dns_options(options))
}

/// Solves every challenge with DNS-01 (and allows wildcard names) through a built-in provider:
/// `provider` is a provider's name configured from its environment variables (`"cloudflare"`,
/// `"rfc2136"`, …) or a JSON object with its settings
/// (`{"provider": "rfc2136", "server": "127.0.0.1:53", "key_name": "…", "key_secret": "…"}`).
/// `options_json` (may be NULL) tunes the solver: `{"ttl_secs", "propagation_delay_ms",
/// "propagation_timeout_ms" (negative: no checks), "poll_interval_ms", "resolvers": ["ip:port"],
/// "override_domain", "follow_cname"}`. An unknown provider, missing credentials or a bad option
/// give `CERTMAGIC_RESULT_INVALID_CONFIG` naming what is wrong (never a secret).
///
/// # Safety
/// `builder` live; `provider` NUL-terminated; `options_json` NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_dns_provider(
    builder: *mut certmagic_config_builder,
    provider: *const c_char,
    options_json: *const c_char,
) -> certmagic_result {
    unsafe {
        update(builder, |b| {
            let spec = text(provider, "provider")?;
            let options = options(options_json)?;
            let provider = providers::from_spec(spec)?;
            set_dns(b, provider, &options)
        })
    }
}

/// Solves every challenge with DNS-01 through a provider implemented by C callbacks (the table is
/// copied; both record callbacks must be set). `options_json` as for
/// `certmagic_config_builder_set_dns_provider`. The table's `userdata` is the library's from
/// this call on (see `certmagic_userdata_free_cb`), even if it fails.
///
/// # Safety
/// `builder` live; `callbacks` a valid table following its documented contract; `options_json`
/// NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn certmagic_config_builder_set_dns_provider_callbacks(
    builder: *mut certmagic_config_builder,
    callbacks: *const certmagic_dns_provider_callbacks,
    options_json: *const c_char,
) -> certmagic_result {
    // SAFETY: per the contract above.
    let Some(c) = (unsafe { callbacks.as_ref() }) else {
        return call(|| Err(Failure::null("callbacks")));
    };
    // Owned from here, so that userdata_free runs whatever fails next.
    let userdata = Userdata::new(c.userdata, c.userdata_free);
    unsafe {
        update(builder, |b| {
            let append_records = c
                .append_records
                .ok_or_else(|| Failure::null("callbacks->append_records"))?;
            let delete_records = c
                .delete_records
                .ok_or_else(|| Failure::null("callbacks->delete_records"))?;
            let options = options(options_json)?;
            let provider = CDnsProvider {
                table: Arc::new(Table {
                    append_records,
                    delete_records,
                    userdata,
                }),
            };
            set_dns(b, Arc::new(provider), &options)
        })
    }
}
