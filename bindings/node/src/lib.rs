//! The native addon of the `certmagic` npm package: translation only, every behaviour lives in
//! the `certmagic` crate. `index.js` wraps it in the documented API (`CertMagic`, an
//! EventEmitter; errors with codes; `tlsOptions()`; the one-liner).
//!
//! JavaScript callbacks (storage, events, logs) are weak thread-safe functions: the engine calls
//! them from its threads without ever waiting synchronously on JavaScript, and they never keep
//! the process alive after `close()`.
//!
//! One file per concept, as in `ffi/src` and `bindings/python/src`.

mod certificate;
mod config;
mod dns;
mod errors;
mod events;
// Public: their exports are free functions, which only napi's registration (absent from unit
// test builds) would otherwise use.
pub mod log;
mod manager;
pub mod serve;
mod storage;

use napi::Status;
use napi::bindgen_prelude::Function;
use napi::threadsafe_function::ThreadsafeFunction;
use napi_derive::napi;

/// A weak thread-safe function taking `T`, returning `R`, called as `fn(value)`.
type Callback<T, R> = ThreadsafeFunction<T, R, T, Status, false, true>;

fn weak<T, R>(f: &Function<'_, T, R>) -> napi::Result<Callback<T, R>>
where
    T: 'static + napi::bindgen_prelude::JsValuesTupleIntoVec,
    R: 'static + napi::bindgen_prelude::FromNapiValue,
{
    f.build_threadsafe_function()
        .callee_handled::<false>()
        .weak::<true>()
        .build()
}

/// Let's Encrypt's production directory (the default CA).
#[napi]
pub const LETS_ENCRYPT_PRODUCTION: &str = certmagic::LETS_ENCRYPT_PRODUCTION;
/// Let's Encrypt's staging directory.
#[napi]
pub const LETS_ENCRYPT_STAGING: &str = certmagic::LETS_ENCRYPT_STAGING;
/// ZeroSSL's ACME directory.
#[napi]
pub const ZEROSSL: &str = certmagic::ZEROSSL;
/// Google Trust Services' directory.
#[napi]
pub const GOOGLE_TRUST_SERVICES: &str = certmagic::GOOGLE_TRUST_SERVICES;
