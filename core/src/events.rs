//! Events: their wire names and JSON payloads, in one place, with Go CertMagic's payload keys.
//!
//! Durations in payloads (`remaining`) are seconds as a number; paths are storage keys.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::{Error, ErrorKind, Result};

/// Something that happened to a certificate.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// An obtain or renewal is about to start. An error from the handler cancels it.
    CertObtaining {
        /// The name.
        identifier: String,
        /// True for a renewal.
        renewal: bool,
        /// Renewal forced by the caller (not by the renewal window).
        forced: bool,
        /// Renewal: time left on the current certificate.
        remaining: Option<Duration>,
        /// Renewal: issuer key of the current certificate.
        issuer: Option<String>,
        /// Started by a TLS handshake (on-demand TLS).
        on_demand: bool,
    },
    /// A certificate was obtained and stored.
    CertObtained {
        /// The name.
        identifier: String,
        /// True for a renewal.
        renewal: bool,
        /// Renewal: time that was left on the previous certificate.
        remaining: Option<Duration>,
        /// Issuer key of the new certificate.
        issuer: String,
        /// Storage key of the certificate's folder.
        storage_path: String,
        /// Storage key of the private key.
        private_key_path: String,
        /// Storage key of the PEM chain.
        certificate_path: String,
        /// Storage key of the metadata JSON.
        metadata_path: String,
        /// The CSR that was sent, as PEM.
        csr_pem: String,
        /// Issuers tried before the one that succeeded, each with its error (in the payload
        /// only when there were any, as `failed_issuers: [{"issuer", "error"}]`).
        failed_issuers: Vec<(String, String)>,
        /// Started by a TLS handshake (on-demand TLS).
        on_demand: bool,
    },
    /// An obtain or renewal failed (it may be retried).
    CertFailed {
        /// The name.
        identifier: String,
        /// True for a renewal.
        renewal: bool,
        /// Renewal: time left on the current certificate.
        remaining: Option<Duration>,
        /// Issuer keys that were tried.
        issuers: Vec<String>,
        /// The error.
        error: String,
        /// Started by a TLS handshake (on-demand TLS).
        on_demand: bool,
    },
    /// A certificate obtained by the library was put in the cache.
    CachedManagedCert {
        /// Its names.
        sans: Vec<String>,
    },
    /// A certificate added by hand was put in the cache.
    CachedUnmanagedCert {
        /// Its names.
        sans: Vec<String>,
    },
    /// The stored certificate of a name cannot be used (a torn or empty file, a key that does
    /// not belong to the certificate, as a crash between the writes of a renewal leaves): a
    /// new certificate is obtained under the name's lock and replaces the files. Not an event
    /// of Go CertMagic, which fails such a name every time.
    StoredCertCorrupt {
        /// The name.
        identifier: String,
        /// What is wrong.
        error: String,
        /// Storage key of the PEM chain.
        certificate_path: String,
        /// Storage key of the private key.
        private_key_path: String,
        /// Storage key of the metadata JSON.
        metadata_path: String,
    },
    /// OCSP says a cached certificate is revoked. A managed one is replaced at once (with a new
    /// key if the reason is keyCompromise, the old key moved to `<key>.compromised`).
    CertOcspRevoked {
        /// Its names.
        subjects: Vec<String>,
        /// The revoked chain, PEM.
        certificate_pem: String,
        /// RFC 5280 CRLReason code, if the responder gave one (1: keyCompromise).
        reason: Option<u8>,
        /// When the CA revoked it.
        revoked_at: std::time::SystemTime,
    },
    /// A TLS handshake asks for a certificate (through the asynchronous handshake path). An
    /// error from the handler fails the handshake.
    TlsGetCertificate {
        /// The SNI, if any.
        server_name: Option<String>,
        /// The ALPN protocols offered.
        alpn: Vec<String>,
    },
}

impl Event {
    /// The wire name (`cert_obtaining`, `cert_obtained`, `cert_failed`, `cached_managed_cert`,
    /// `cached_unmanaged_cert`, `stored_cert_corrupt`, `cert_ocsp_revoked`,
    /// `tls_get_certificate`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::CertObtaining { .. } => "cert_obtaining",
            Self::CertObtained { .. } => "cert_obtained",
            Self::CertFailed { .. } => "cert_failed",
            Self::CachedManagedCert { .. } => "cached_managed_cert",
            Self::CachedUnmanagedCert { .. } => "cached_unmanaged_cert",
            Self::StoredCertCorrupt { .. } => "stored_cert_corrupt",
            Self::CertOcspRevoked { .. } => "cert_ocsp_revoked",
            Self::TlsGetCertificate { .. } => "tls_get_certificate",
        }
    }

    /// Whether an error from the handler cancels the operation the event announces.
    pub fn is_abortable(&self) -> bool {
        matches!(
            self,
            Self::CertObtaining { .. } | Self::TlsGetCertificate { .. }
        )
    }

    /// The JSON payload, with CertMagic's keys.
    pub fn payload(&self) -> Value {
        let mut v = match self {
            Self::CertObtaining {
                identifier,
                renewal,
                forced,
                issuer,
                ..
            } => {
                let mut v = json!({ "identifier": identifier });
                if *renewal {
                    v["renewal"] = json!(true);
                    v["forced"] = json!(forced);
                    if let Some(i) = issuer {
                        v["issuer"] = json!(i);
                    }
                }
                v
            }
            Self::CertObtained {
                identifier,
                renewal,
                issuer,
                storage_path,
                private_key_path,
                certificate_path,
                metadata_path,
                csr_pem,
                failed_issuers,
                ..
            } => {
                let mut v = json!({
                    "renewal": renewal,
                    "identifier": identifier,
                    "issuer": issuer,
                    "storage_path": storage_path,
                    "private_key_path": private_key_path,
                    "certificate_path": certificate_path,
                    "metadata_path": metadata_path,
                    "csr_pem": csr_pem,
                });
                if !failed_issuers.is_empty() {
                    v["failed_issuers"] = failed_issuers
                        .iter()
                        .map(|(issuer, error)| json!({"issuer": issuer, "error": error}))
                        .collect();
                }
                v
            }
            Self::CertFailed {
                identifier,
                renewal,
                issuers,
                error,
                ..
            } => json!({
                "renewal": renewal,
                "identifier": identifier,
                "issuers": issuers,
                "error": error,
            }),
            Self::CachedManagedCert { sans } | Self::CachedUnmanagedCert { sans } => {
                json!({ "sans": sans })
            }
            Self::StoredCertCorrupt {
                identifier,
                error,
                certificate_path,
                private_key_path,
                metadata_path,
            } => json!({
                "identifier": identifier,
                "error": error,
                "certificate_path": certificate_path,
                "private_key_path": private_key_path,
                "metadata_path": metadata_path,
            }),
            Self::CertOcspRevoked {
                subjects,
                certificate_pem,
                reason,
                revoked_at,
            } => json!({
                "subjects": subjects,
                "certificate": certificate_pem,
                // Go's zero value when the responder gave no reason: unspecified.
                "reason": reason.unwrap_or(0),
                "revoked_at": rfc3339(*revoked_at),
            }),
            Self::TlsGetCertificate { server_name, alpn } => {
                json!({ "client_hello": { "server_name": server_name, "alpn": alpn } })
            }
        };
        let on_demand = matches!(
            self,
            Self::CertObtaining {
                on_demand: true,
                ..
            } | Self::CertObtained {
                on_demand: true,
                ..
            } | Self::CertFailed {
                on_demand: true,
                ..
            }
        );
        if on_demand {
            v["on_demand"] = json!(true);
        }
        let remaining = match self {
            Self::CertObtaining { remaining, .. }
            | Self::CertObtained { remaining, .. }
            | Self::CertFailed { remaining, .. } => *remaining,
            _ => None,
        };
        if let Some(r) = remaining {
            v["remaining"] = json!(r.as_secs_f64());
        }
        v
    }
}

/// A time as RFC 3339 in UTC (Go's `time.Time` JSON form).
fn rfc3339(t: std::time::SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Why a handler refused an event (kept whole: bindings attach it as the cause of the error the
/// operation fails with).
pub type HandlerError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Receives every event it [wants](EventHandler::wants). Called on a blocking thread (it may
/// block) unless it says it [never blocks](EventHandler::may_block), possibly from several
/// threads at once. Returning an error from a [`Event::is_abortable`] event cancels the operation.
pub trait EventHandler: Send + Sync + 'static {
    /// Handles one event.
    fn handle(&self, event: &Event) -> std::result::Result<(), HandlerError>;

    /// Whether events named `name` ([`Event::name`]) reach this handler; default: all. An event
    /// nobody wants is not even built: `tls_get_certificate` comes with every handshake, and a
    /// handler that leaves it out spares each handshake a call and a thread hop.
    fn wants(&self, name: &str) -> bool {
        let _ = name;
        true
    }

    /// Whether [`handle`](EventHandler::handle) may block (the default), so that it runs on a
    /// blocking thread. A handler that only hands the event on (a queue, a channel) and returns
    /// at once says false and is called in place, on an engine thread: it must never wait.
    fn may_block(&self) -> bool {
        true
    }
}

impl<F, E> EventHandler for F
where
    F: Fn(&Event) -> std::result::Result<(), E> + Send + Sync + 'static,
    E: Into<HandlerError>,
{
    fn handle(&self, event: &Event) -> std::result::Result<(), HandlerError> {
        self(event).map_err(Into::into)
    }
}

/// Whether `handler` wants events named `name` (a missing handler wants none).
pub(crate) fn wanted(handler: Option<&Arc<dyn EventHandler>>, name: &str) -> bool {
    handler.is_some_and(|h| h.wants(name))
}

/// The one emit helper: runs the handler (on a blocking thread unless it never blocks),
/// contains its panics, and turns a refusal of an abortable event into an
/// [`ErrorKind::Aborted`] error whose source is the handler's error.
pub(crate) async fn emit(
    handler: Option<&Arc<dyn EventHandler>>,
    deadline: Option<std::time::Duration>,
    event: Event,
) -> Result<()> {
    let name = event.name();
    let Some(handler) = handler.filter(|h| h.wants(name)).cloned() else {
        return Ok(());
    };
    let abortable = event.is_abortable();
    let outcome = if handler.may_block() {
        let handling = tokio::task::spawn_blocking(move || handler.handle(&event));
        let joined = match deadline {
            None => handling.await,
            Some(limit) => match tokio::time::timeout(limit, handling).await {
                Ok(joined) => joined,
                Err(_) => Ok(Err(format!(
                    "the handler did not return within {limit:?} (the callback deadline)"
                )
                .into())),
            },
        };
        joined.map_err(|join| {
            if join.is_panic() {
                panic_refusal(&*join.into_panic())
            } else {
                format!("event handler did not finish: {join}")
            }
        })
    } else {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.handle(&event)))
            .map_err(|panic| panic_refusal(&*panic))
    };
    let (refusal, cause) = match outcome {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(cause)) => (cause.to_string(), Some(cause)),
        Err(refusal) => (refusal, None),
    };
    if abortable {
        tracing::info!(event = name, reason = %refusal, "event handler cancelled the operation");
        let error = Error::new(
            ErrorKind::Aborted,
            format!("`{name}` handler refused: {refusal}"),
        );
        Err(match cause {
            Some(cause) => error.with_boxed_source(cause),
            None => error,
        })
    } else {
        tracing::warn!(event = name, error = %refusal, "event handler failed");
        Ok(())
    }
}

fn panic_refusal(panic: &(dyn std::any::Any + Send)) -> String {
    format!(
        "event handler panicked: {}",
        crate::runtime::panic_text(panic)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_keys() {
        let e = Event::CertObtaining {
            identifier: "a.test".into(),
            renewal: true,
            forced: false,
            remaining: Some(Duration::from_secs(90)),
            issuer: Some("ca-dir".into()),
            on_demand: false,
        };
        assert_eq!(e.name(), "cert_obtaining");
        assert_eq!(
            e.payload(),
            json!({"identifier": "a.test", "renewal": true, "forced": false, "issuer": "ca-dir", "remaining": 90.0})
        );
        let f = Event::CertFailed {
            identifier: "a.test".into(),
            renewal: false,
            remaining: None,
            issuers: vec!["ca-dir".into()],
            error: "boom".into(),
            on_demand: true,
        };
        assert_eq!(
            f.payload(),
            json!({"renewal": false, "identifier": "a.test", "issuers": ["ca-dir"], "error": "boom", "on_demand": true})
        );
        let hello = Event::TlsGetCertificate {
            server_name: Some("a.test".into()),
            alpn: vec!["h2".into()],
        };
        assert_eq!(hello.name(), "tls_get_certificate");
        assert!(hello.is_abortable());
        assert_eq!(
            hello.payload(),
            json!({"client_hello": {"server_name": "a.test", "alpn": ["h2"]}})
        );
        assert_eq!(
            Event::CachedManagedCert {
                sans: vec!["x".into()]
            }
            .payload(),
            json!({"sans": ["x"]})
        );
    }

    #[tokio::test]
    async fn refusal_and_panic_abort_only_abortable_events() {
        let refuse: Arc<dyn EventHandler> =
            Arc::new(|_: &Event| -> std::result::Result<(), String> { Err("no".into()) });
        let panics: Arc<dyn EventHandler> =
            Arc::new(|_: &Event| -> std::result::Result<(), String> { panic!("handler bug") });
        let obtaining = || Event::CertObtaining {
            identifier: "a".into(),
            renewal: false,
            forced: false,
            remaining: None,
            issuer: None,
            on_demand: false,
        };
        let err = emit(Some(&refuse), None, obtaining()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Aborted);
        assert!(err.message().contains("no"));
        let err = emit(Some(&panics), None, obtaining()).await.unwrap_err();
        assert!(err.message().contains("handler bug"));
        emit(
            Some(&refuse),
            None,
            Event::CachedManagedCert { sans: vec![] },
        )
        .await
        .unwrap();
        emit(
            Some(&panics),
            None,
            Event::CachedManagedCert { sans: vec![] },
        )
        .await
        .unwrap();
        emit(None, None, obtaining()).await.unwrap();
    }

    #[tokio::test]
    async fn a_handler_past_its_deadline_aborts_only_abortable_events() {
        let slow: Arc<dyn EventHandler> =
            Arc::new(|_: &Event| -> std::result::Result<(), String> {
                std::thread::sleep(std::time::Duration::from_millis(500));
                Ok(())
            });
        let deadline = Some(std::time::Duration::from_millis(50));
        let obtaining = Event::CertObtaining {
            identifier: "a".into(),
            renewal: false,
            forced: false,
            remaining: None,
            issuer: None,
            on_demand: false,
        };
        let err = emit(Some(&slow), deadline, obtaining).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Aborted);
        assert!(err.message().contains("callback deadline"), "{err}");
        emit(
            Some(&slow),
            deadline,
            Event::CachedManagedCert { sans: vec![] },
        )
        .await
        .unwrap();
    }

    /// Refuses every event it gets, recording the thread it ran on.
    struct Picky {
        wants: &'static str,
        blocks: bool,
        ran_on: std::sync::Mutex<Vec<std::thread::ThreadId>>,
        panics: bool,
    }

    impl EventHandler for Picky {
        fn handle(&self, _: &Event) -> std::result::Result<(), HandlerError> {
            self.ran_on
                .lock()
                .unwrap()
                .push(std::thread::current().id());
            assert!(!self.panics, "picky handler bug");
            Err("refused".into())
        }
        fn wants(&self, name: &str) -> bool {
            name == self.wants
        }
        fn may_block(&self) -> bool {
            self.blocks
        }
    }

    fn hello() -> Event {
        Event::TlsGetCertificate {
            server_name: Some("a.test".into()),
            alpn: vec![],
        }
    }

    #[tokio::test]
    async fn unwanted_events_never_reach_the_handler() {
        let picky = Arc::new(Picky {
            wants: "cert_obtained",
            blocks: true,
            ran_on: Default::default(),
            panics: false,
        });
        let handler: Arc<dyn EventHandler> = picky.clone();
        assert!(!wanted(Some(&handler), "tls_get_certificate"));
        assert!(wanted(Some(&handler), "cert_obtained"));
        assert!(!wanted(None, "cert_obtained"));
        // An abortable event it would refuse goes through: it never saw it.
        emit(Some(&handler), None, hello()).await.unwrap();
        assert!(picky.ran_on.lock().unwrap().is_empty());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_handler_that_never_blocks_runs_in_place_with_its_panics_contained() {
        for panics in [false, true] {
            let picky = Arc::new(Picky {
                wants: "tls_get_certificate",
                blocks: false,
                ran_on: Default::default(),
                panics,
            });
            let handler: Arc<dyn EventHandler> = picky.clone();
            let err = emit(Some(&handler), None, hello()).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Aborted);
            let expected = if panics {
                "picky handler bug"
            } else {
                "refused"
            };
            assert!(err.message().contains(expected), "{err}");
            assert_eq!(
                *picky.ran_on.lock().unwrap(),
                vec![std::thread::current().id()]
            );
        }
        // One that may block runs elsewhere.
        let picky = Arc::new(Picky {
            wants: "tls_get_certificate",
            blocks: true,
            ran_on: Default::default(),
            panics: false,
        });
        let handler: Arc<dyn EventHandler> = picky.clone();
        emit(Some(&handler), None, hello()).await.unwrap_err();
        assert_ne!(
            *picky.ran_on.lock().unwrap(),
            vec![std::thread::current().id()]
        );
    }
}
