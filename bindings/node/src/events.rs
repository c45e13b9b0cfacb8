//! Events to a JavaScript function, and the on-demand decision made by one.

use certmagic::{Error, ErrorKind};
use napi::Status;
use napi::bindgen_prelude::Promise;
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi_derive::napi;

use crate::Callback;
use crate::errors::JsCause;

/// What a JavaScript on-demand decision answered (normalised by `index.js`).
#[napi(object)]
#[derive(Debug)]
pub struct DecisionReply {
    pub allow: bool,
    pub error: Option<String>,
    pub cause_id: Option<u32>,
}

/// The on-demand decision implemented by a JavaScript function.
pub(crate) struct JsDecision {
    pub(crate) dispatch: Callback<String, Promise<DecisionReply>>,
}

#[certmagic::async_trait]
impl certmagic::DecisionHandler for JsDecision {
    async fn decide(&self, name: &str) -> std::result::Result<(), certmagic::HandlerError> {
        // The engine's callback deadline bounds the wait.
        let reply = async {
            let promise = self.dispatch.call_async(name.to_string()).await?;
            promise.await
        }
        .await
        .map_err(|e| e.reason.clone())?;
        if reply.allow {
            return Ok(());
        }
        let why = reply
            .error
            .unwrap_or_else(|| format!("the decision refused `{name}`"));
        Err(match reply.cause_id {
            Some(id) => Box::new(Error::new(ErrorKind::Aborted, why).with_source(JsCause(id))),
            None => why.into(),
        })
    }
}

/// Events to a JavaScript function `(name, payloadJson)`, without waiting for it.
pub(crate) struct JsEvents {
    pub(crate) emit: Callback<(String, String), ()>,
}

impl certmagic::EventHandler for JsEvents {
    fn handle(&self, event: &certmagic::Event) -> Result<(), certmagic::HandlerError> {
        let status = self.emit.call(
            (event.name().to_string(), event.payload().to_string()),
            ThreadsafeFunctionCallMode::NonBlocking,
        );
        if status != Status::Ok {
            tracing::debug!(
                event = event.name(),
                ?status,
                "event not delivered to JavaScript"
            );
        }
        Ok(())
    }

    /// It only queues the event for JavaScript's thread: no blocking thread needed.
    fn may_block(&self) -> bool {
        false
    }
}
