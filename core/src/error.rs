//! The one error type of the crate and its stable [`ErrorKind`] table.
//!
//! Every binding (C result codes, Python exception classes, Node error codes) maps from
//! [`ErrorKind`], so kinds are only ever added, never renumbered or repurposed.

use std::fmt;
use std::sync::Arc;

use crate::fields::ConfigField;

/// What went wrong, in a form that is stable across releases and bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A configuration value was refused; [`Error::field`] names it.
    InvalidConfig,
    /// A subject name (domain or IP) cannot have a certificate.
    InvalidName,
    /// The storage backend failed (I/O, permissions, a failing callback).
    Storage,
    /// The key does not exist in storage, or no certificate is known for a name.
    NotFound,
    /// Content in storage (or given by the caller) could not be decoded: torn JSON, bad PEM.
    Corrupt,
    /// The ACME CA answered with a problem document ([`Error::problem`] keeps it whole) or
    /// could not be reached.
    Acme,
    /// No challenge could be solved for a name.
    Challenge,
    /// A certificate or private key is malformed or does not match.
    Certificate,
    /// An operation ran past its deadline.
    Timeout,
    /// The operation was cancelled (shutdown, or the caller dropped it).
    Cancelled,
    /// An event handler refused the operation (e.g. `cert_obtaining` returned an error).
    Aborted,
    /// The manager was shut down.
    ShutDown,
    /// A blocking call was made from a context that would deadlock (inside the runtime or a
    /// callback of the same manager).
    Reentrant,
    /// The manager was created in another process (used after `fork()`).
    WrongProcess,
    /// A bug or a panic inside the library or a callback.
    Internal,
}

impl ErrorKind {
    /// A short, stable, lower-case name for the kind (used in logs and by bindings).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidConfig => "invalid_config",
            Self::InvalidName => "invalid_name",
            Self::Storage => "storage",
            Self::NotFound => "not_found",
            Self::Corrupt => "corrupt",
            Self::Acme => "acme",
            Self::Challenge => "challenge",
            Self::Certificate => "certificate",
            Self::Timeout => "timeout",
            Self::Cancelled => "cancelled",
            Self::Aborted => "aborted",
            Self::ShutDown => "shut_down",
            Self::Reentrant => "reentrant",
            Self::WrongProcess => "wrong_process",
            Self::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An RFC 7807 problem document from the CA, kept whole.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AcmeProblem {
    /// The problem type URN, e.g. `urn:ietf:params:acme:error:rejectedIdentifier`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub problem_type: Option<String>,
    /// Human-readable detail from the CA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// HTTP status the CA answered with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Per-identifier subproblems.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subproblems: Vec<AcmeProblem>,
    /// For subproblems: the identifier value they concern.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
}

impl AcmeProblem {
    /// True for `urn:ietf:params:acme:error:<short>`.
    pub fn is(&self, short: &str) -> bool {
        self.problem_type
            .as_deref()
            .and_then(|t| t.strip_prefix("urn:ietf:params:acme:error:"))
            == Some(short)
    }
}

impl fmt::Display for AcmeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.problem_type, &self.detail) {
            (Some(t), Some(d)) => write!(f, "{t}: {d}")?,
            (Some(t), None) => f.write_str(t)?,
            (None, Some(d)) => f.write_str(d)?,
            (None, None) => f.write_str("unspecified ACME problem")?,
        }
        for sub in &self.subproblems {
            write!(f, "; {}: {sub}", sub.identifier.as_deref().unwrap_or("?"))?;
        }
        Ok(())
    }
}

impl From<&instant_acme::Problem> for AcmeProblem {
    fn from(p: &instant_acme::Problem) -> Self {
        Self {
            problem_type: p.r#type.clone(),
            detail: p.detail.clone(),
            status: p.status,
            subproblems: p
                .subproblems
                .iter()
                .map(|s| AcmeProblem {
                    problem_type: s.r#type.clone(),
                    detail: s.detail.clone(),
                    status: None,
                    subproblems: Vec::new(),
                    identifier: s.identifier.as_ref().map(identifier_value),
                })
                .collect(),
            identifier: None,
        }
    }
}

fn identifier_value(id: &instant_acme::Identifier) -> String {
    match id {
        instant_acme::Identifier::Dns(d) => d.clone(),
        instant_acme::Identifier::Ip(ip) => ip.to_string(),
        other => format!("{other:?}"),
    }
}

/// The error type of every fallible operation in this crate.
///
/// Cheap to clone (the source is shared), so one failure can be reported to every waiter of a
/// de-duplicated job.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    field: Option<(ConfigField, &'static str)>,
    problem: Option<Box<AcmeProblem>>,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            field: None,
            problem: None,
            source: None,
        }
    }

    /// A refused configuration value; the message names the field.
    pub fn config(field: ConfigField, message: impl fmt::Display) -> Self {
        let name = field.name();
        let mut e = Self::new(
            ErrorKind::InvalidConfig,
            format!("config field `{name}`: {message}"),
        );
        e.field = Some((field, name));
        e
    }

    /// The same error naming its field as the caller wrote it (a binding's spelling of the
    /// setting, e.g. `renewCheckInterval`), in [`Error::field`] and in the message.
    pub fn spelled(mut self, spelling: &'static str) -> Self {
        if let Some((field, name)) = self.field {
            self.message = self
                .message
                .replacen(&format!("`{name}`"), &format!("`{spelling}`"), 1);
            self.field = Some((field, spelling));
        }
        self
    }

    /// An ACME problem document from the CA.
    pub fn acme_problem(context: impl fmt::Display, problem: AcmeProblem) -> Self {
        let mut e = Self::new(ErrorKind::Acme, format!("{context}: {problem}"));
        e.problem = Some(Box::new(problem));
        e
    }

    /// Attach the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Attach an already boxed cause (e.g. a callback's error from a binding).
    pub fn with_boxed_source(
        mut self,
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    ) -> Self {
        self.source = Some(Arc::from(source));
        self
    }

    /// Prefix the message with context (e.g. the name concerned), keeping kind and problem.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The stable kind of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable message (context included, source excluded).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// For [`ErrorKind::InvalidConfig`]: the name of the setting that was refused (its setter's
    /// name, or the caller's spelling once [`Error::spelled`]).
    pub fn field(&self) -> Option<&'static str> {
        self.field.map(|(_, name)| name)
    }

    /// For [`ErrorKind::InvalidConfig`]: the setting that was refused.
    pub fn config_field(&self) -> Option<ConfigField> {
        self.field.map(|(field, _)| field)
    }

    /// For [`ErrorKind::Acme`] (and challenge failures): the CA's problem document.
    pub fn problem(&self) -> Option<&AcmeProblem> {
        self.problem.as_deref()
    }

    pub(crate) fn with_problem(mut self, problem: Option<AcmeProblem>) -> Self {
        self.problem = problem.map(Box::new);
        self
    }

    /// The same error under another kind (for adapters that know what a failure means).
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    pub(crate) fn storage(op: &str, key: &str, err: std::io::Error) -> Self {
        // Under a value (`a/b` when `a` is a file) is missing too.
        let kind = if matches!(
            err.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
        ) {
            ErrorKind::NotFound
        } else {
            ErrorKind::Storage
        };
        Self::new(kind, format!("storage {op} `{key}`: {err}")).with_source(err)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// Whether an operation that failed with this error is worth trying again later.
    pub fn is_retryable(&self) -> bool {
        match self.kind {
            ErrorKind::InvalidConfig
            | ErrorKind::InvalidName
            | ErrorKind::Aborted
            | ErrorKind::Cancelled
            | ErrorKind::ShutDown
            | ErrorKind::Reentrant
            | ErrorKind::WrongProcess => false,
            ErrorKind::Acme => !self.problem().is_some_and(|p| {
                p.is("rejectedIdentifier")
                    || p.is("unsupportedIdentifier")
                    || p.is("caa")
                    || p.is("externalAccountRequired")
                    || p.is("unsupportedContact")
                    || p.is("invalidContact")
                    || p.is("userActionRequired")
            }),
            _ => true,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(src) = &self.source {
            let s = src.to_string();
            if !self.message.contains(&s) {
                write!(f, ": {s}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(field) = self.field {
            d.field("field", &field);
        }
        if let Some(p) = &self.problem {
            d.field("problem", p);
        }
        if let Some(s) = &self.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<instant_acme::Error> for Error {
    fn from(err: instant_acme::Error) -> Self {
        match err {
            instant_acme::Error::Api(p) => Error::acme_problem("ACME CA", AcmeProblem::from(&p)),
            instant_acme::Error::Timeout(_) => {
                Error::new(ErrorKind::Timeout, "timed out waiting for the ACME CA")
            }
            other => {
                let msg = format!("ACME request failed: {other}");
                Error::new(ErrorKind::Acme, msg).with_source(other)
            }
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::new(ErrorKind::Corrupt, format!("invalid JSON: {err}")).with_source(err)
    }
}
