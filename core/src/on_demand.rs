//! On-demand TLS: the decision hook that says whether a certificate may be obtained for a name
//! first seen in a TLS handshake. The hook is part of the configuration (and of every binding's
//! API) now; issuance during handshakes uses it once on-demand TLS lands.

use crate::events::HandlerError;

/// Allows or refuses on-demand issuance for a name. Called on a blocking thread; may block.
pub trait DecisionHandler: Send + Sync + 'static {
    /// `Ok(())` to allow a certificate for `name`, `Err(reason)` to refuse.
    fn decide(&self, name: &str) -> Result<(), HandlerError>;
}

impl<F, E> DecisionHandler for F
where
    F: Fn(&str) -> Result<(), E> + Send + Sync + 'static,
    E: Into<HandlerError>,
{
    fn decide(&self, name: &str) -> Result<(), HandlerError> {
        self(name).map_err(Into::into)
    }
}
