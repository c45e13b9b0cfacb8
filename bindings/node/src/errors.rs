//! The one mapping from core errors to JavaScript: a JSON reason that `index.js` turns into an
//! `Error` subclass with `code`, `field` (in the options' spelling), `cause` and the CA's problem
//! fields; and the id under which a JavaScript error travels through the engine as a cause.

use certmagic::Error;
use napi::Status;

/// An error crossing into JavaScript: the reason is JSON that `index.js` turns into an `Error`
/// subclass with `code`, `cause` and the CA's problem fields.
pub(crate) fn to_js(err: Error) -> napi::Error {
    let err = match err.config_field() {
        Some(field) => err.spelled(crate::config::option_name(field)),
        None => err,
    };
    let cause = cause_id(&err);
    let problem = err.problem();
    let reason = serde_json::json!({
        "certmagic": true,
        "kind": err.kind().as_str(),
        "message": err.to_string(),
        "field": err.field(),
        "problemType": problem.and_then(|p| p.problem_type.clone()),
        "detail": problem.and_then(|p| p.detail.clone()),
        "status": problem.and_then(|p| p.status),
        "causeId": cause,
    });
    napi::Error::new(Status::GenericFailure, reason.to_string())
}

/// A JavaScript error kept by `index.js` under an id while its failure travels through the engine.
#[derive(Debug)]
pub(crate) struct JsCause(pub(crate) u32);

impl std::fmt::Display for JsCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JavaScript error #{}", self.0)
    }
}

impl std::error::Error for JsCause {}

fn cause_id(err: &Error) -> Option<u32> {
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        if let Some(c) = s.downcast_ref::<JsCause>() {
            return Some(c.0);
        }
        source = s.source();
    }
    None
}

pub(crate) fn check<T>(res: certmagic::Result<T>) -> napi::Result<T> {
    res.map_err(to_js)
}
