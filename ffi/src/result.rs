//! `certmagic_result`: the one numbered result enum. Numbers are never reused or renumbered;
//! retired values stay here as comments.

use std::ffi::c_char;

use certmagic::ErrorKind;

use crate::enums::c_enum;

/// The result of every fallible call. `CERTMAGIC_RESULT_OK` is 0, so `if (rc)` tests for failure.
/// Codes come in blocks: 100s arguments and calling, 200s configuration, 300s storage, 400s the
/// ACME CA, 500s challenges, 600s certificates and PEM, 700s time-outs and cancellation.
/// `certmagic_result_str` names each; `certmagic_last_error_message` has the details.
#[repr(u32)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum certmagic_result {
    /// Success.
    Ok = 0,
    /// An argument has a value that is not allowed (e.g. an unknown enum value, an index out of range).
    InvalidParameter = 100,
    /// A required pointer argument was NULL.
    NullParameter = 101,
    /// A text argument is not valid UTF-8.
    InvalidUtf8 = 102,
    /// The library (or a callback) panicked; the call had no effect that can be relied on.
    Panic = 103,
    /// A blocking call was made from a callback or from inside the library's runtime.
    Reentrant = 104,
    /// The manager was shut down.
    ShutDown = 105,
    /// The manager was created in another process (used after `fork()`).
    WrongProcess = 106,
    /// The caller's buffer is too small; the needed size was reported.
    BufferTooSmall = 107,
    /// A subject name cannot have a certificate.
    InvalidName = 108,
    /// An unexpected failure inside the library.
    Internal = 109,
    /// A configuration value was refused; the message names the field.
    InvalidConfig = 200,
    /// The storage failed (I/O, permissions, a failing storage callback).
    Storage = 300,
    /// Nothing stored under that key, or no certificate for that name.
    NotFound = 301,
    /// Stored content (or given PEM/JSON) could not be decoded.
    Corrupt = 302,
    /// The ACME CA refused (its problem type and detail are in the message) or was unreachable.
    Acme = 400,
    /// No challenge could be solved.
    Challenge = 500,
    /// The request or handshake is not an ACME challenge this library knows of.
    NotAChallenge = 501,
    /// A certificate or private key is malformed or they do not match.
    Certificate = 600,
    /// An operation ran out of time.
    Timeout = 700,
    /// The operation was cancelled (e.g. by shutdown).
    Cancelled = 701,
    /// An event callback refused the operation (non-zero from `cert_obtaining`), or the
    /// on-demand policy refused a name.
    Aborted = 702,
    /// Not finished yet: poll again (`certmagic_pending_poll`).
    Pending = 703,
}

c_enum!(certmagic_result {
    Ok => "CERTMAGIC_RESULT_OK",
    InvalidParameter => "CERTMAGIC_RESULT_INVALID_PARAMETER",
    NullParameter => "CERTMAGIC_RESULT_NULL_PARAMETER",
    InvalidUtf8 => "CERTMAGIC_RESULT_INVALID_UTF8",
    Panic => "CERTMAGIC_RESULT_PANIC",
    Reentrant => "CERTMAGIC_RESULT_REENTRANT",
    ShutDown => "CERTMAGIC_RESULT_SHUT_DOWN",
    WrongProcess => "CERTMAGIC_RESULT_WRONG_PROCESS",
    BufferTooSmall => "CERTMAGIC_RESULT_BUFFER_TOO_SMALL",
    InvalidName => "CERTMAGIC_RESULT_INVALID_NAME",
    Internal => "CERTMAGIC_RESULT_INTERNAL",
    InvalidConfig => "CERTMAGIC_RESULT_INVALID_CONFIG",
    Storage => "CERTMAGIC_RESULT_STORAGE",
    NotFound => "CERTMAGIC_RESULT_NOT_FOUND",
    Corrupt => "CERTMAGIC_RESULT_CORRUPT",
    Acme => "CERTMAGIC_RESULT_ACME",
    Challenge => "CERTMAGIC_RESULT_CHALLENGE",
    NotAChallenge => "CERTMAGIC_RESULT_NOT_A_CHALLENGE",
    Certificate => "CERTMAGIC_RESULT_CERTIFICATE",
    Timeout => "CERTMAGIC_RESULT_TIMEOUT",
    Cancelled => "CERTMAGIC_RESULT_CANCELLED",
    Aborted => "CERTMAGIC_RESULT_ABORTED",
    Pending => "CERTMAGIC_RESULT_PENDING",
});

impl certmagic_result {
    /// The code for an error of the core library.
    pub(crate) fn from_kind(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidConfig => Self::InvalidConfig,
            ErrorKind::InvalidName => Self::InvalidName,
            ErrorKind::Storage => Self::Storage,
            ErrorKind::NotFound => Self::NotFound,
            ErrorKind::Corrupt => Self::Corrupt,
            ErrorKind::Acme => Self::Acme,
            ErrorKind::Challenge => Self::Challenge,
            ErrorKind::Certificate => Self::Certificate,
            ErrorKind::Timeout => Self::Timeout,
            ErrorKind::Cancelled => Self::Cancelled,
            ErrorKind::Aborted => Self::Aborted,
            ErrorKind::ShutDown => Self::ShutDown,
            ErrorKind::Reentrant => Self::Reentrant,
            ErrorKind::WrongProcess => Self::WrongProcess,
            _ => Self::Internal,
        }
    }

    /// The code a callback returned; unknown numbers become `InvalidParameter`.
    pub(crate) fn from_callback(code: u32) -> Self {
        Self::from_u32(code).unwrap_or(Self::InvalidParameter)
    }

    /// The core error kind a callback's non-OK code stands for.
    pub(crate) fn kind(self) -> ErrorKind {
        match self {
            Self::NotFound => ErrorKind::NotFound,
            Self::Corrupt => ErrorKind::Corrupt,
            Self::Timeout => ErrorKind::Timeout,
            Self::Cancelled => ErrorKind::Cancelled,
            Self::Aborted => ErrorKind::Aborted,
            Self::Reentrant => ErrorKind::Reentrant,
            Self::Panic | Self::Internal => ErrorKind::Internal,
            _ => ErrorKind::Storage,
        }
    }

    /// Static, NUL-terminated text naming the code.
    pub(crate) fn text(self) -> &'static [u8] {
        match self {
            Self::Ok => b"CERTMAGIC_RESULT_OK: success\0",
            Self::InvalidParameter => b"CERTMAGIC_RESULT_INVALID_PARAMETER: an argument has a value that is not allowed\0",
            Self::NullParameter => b"CERTMAGIC_RESULT_NULL_PARAMETER: a required pointer was NULL\0",
            Self::InvalidUtf8 => b"CERTMAGIC_RESULT_INVALID_UTF8: text is not valid UTF-8\0",
            Self::Panic => b"CERTMAGIC_RESULT_PANIC: the library panicked\0",
            Self::Reentrant => b"CERTMAGIC_RESULT_REENTRANT: blocking call from a callback or the library's runtime\0",
            Self::ShutDown => b"CERTMAGIC_RESULT_SHUT_DOWN: the manager was shut down\0",
            Self::WrongProcess => b"CERTMAGIC_RESULT_WRONG_PROCESS: the manager belongs to another process (fork)\0",
            Self::BufferTooSmall => b"CERTMAGIC_RESULT_BUFFER_TOO_SMALL: the buffer is too small\0",
            Self::InvalidName => b"CERTMAGIC_RESULT_INVALID_NAME: the name cannot have a certificate\0",
            Self::Internal => b"CERTMAGIC_RESULT_INTERNAL: unexpected internal failure\0",
            Self::InvalidConfig => b"CERTMAGIC_RESULT_INVALID_CONFIG: a configuration value was refused\0",
            Self::Storage => b"CERTMAGIC_RESULT_STORAGE: the storage failed\0",
            Self::NotFound => b"CERTMAGIC_RESULT_NOT_FOUND: not found\0",
            Self::Corrupt => b"CERTMAGIC_RESULT_CORRUPT: content could not be decoded\0",
            Self::Acme => b"CERTMAGIC_RESULT_ACME: the ACME CA refused or was unreachable\0",
            Self::Challenge => b"CERTMAGIC_RESULT_CHALLENGE: no challenge could be solved\0",
            Self::NotAChallenge => b"CERTMAGIC_RESULT_NOT_A_CHALLENGE: not an active ACME challenge\0",
            Self::Certificate => b"CERTMAGIC_RESULT_CERTIFICATE: malformed certificate or key, or they do not match\0",
            Self::Timeout => b"CERTMAGIC_RESULT_TIMEOUT: timed out\0",
            Self::Cancelled => b"CERTMAGIC_RESULT_CANCELLED: cancelled\0",
            Self::Aborted => b"CERTMAGIC_RESULT_ABORTED: an event callback or the on-demand policy refused the operation\0",
            Self::Pending => b"CERTMAGIC_RESULT_PENDING: not finished yet\0",
        }
    }
}

/// Static NUL-terminated text for a result code (any number); never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn certmagic_result_str(code: u32) -> *const c_char {
    match certmagic_result::from_u32(code) {
        Some(r) => r.text().as_ptr().cast(),
        None => c"certmagic: unknown result code".as_ptr(),
    }
}
