//! [`LocalIssuer`]: a certificate authority of the library's own, for names no public CA will
//! certify (`localhost`, IP addresses, `.internal`) or as the last fallback. Its root and
//! intermediate live in storage where Caddy keeps its local CA (`pki/authorities/local/`), so
//! every instance sharing the storage issues under the same root, and users trust that one
//! root ([`LocalIssuer::root_pem`]). No ACME, no challenges: a certificate is signed at once.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::crypto::{self, KeyType};
use crate::error::{Error, ErrorKind, Result};
use crate::issuer::{IssuedCertificate, Issuer, RevocationReason};
use crate::runtime;
use crate::storage::{LockGuard, Storage, keys};
use crate::subject::Subject;

/// The issuer key of the local CA: its certificates live in `certificates/local/`, as those
/// of Caddy's `internal` issuer with its default CA.
pub const LOCAL_ISSUER_KEY: &str = "local";

/// Root lifetime (Caddy's too): about ten years.
const ROOT_LIFETIME: Duration = Duration::from_secs(3600 * 24 * 30 * 12 * 10);
/// Intermediate lifetime, at least (Caddy's: 7 days); longer for long-lived leaves.
const INTERMEDIATE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// Certificates start this far in the past, for clients whose clocks are a little behind
/// (a twentieth of a leaf's lifetime when that is shorter, so short-lived certificates are
/// not born already due for renewal).
const BACKDATE: Duration = Duration::from_secs(60);

/// Issues certificates from a local CA kept in storage.
pub struct LocalIssuer {
    storage: Arc<dyn Storage>,
    lifetime: Duration,
    authority: Mutex<Option<Arc<Authority>>>,
}

impl std::fmt::Debug for LocalIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalIssuer")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

/// What storage holds: a root, and its intermediate when one is there and matches its key.
struct Stored {
    root: CertificateDer<'static>,
    root_key: KeyPair,
    intermediate: Option<(CertificateDer<'static>, KeyPair, SystemTime)>,
}

impl Stored {
    /// The authority, unless its intermediate is missing or due.
    fn usable(self, issuer: &LocalIssuer) -> std::result::Result<Authority, Box<Stored>> {
        match self.intermediate {
            Some((intermediate, intermediate_key, not_after))
                if !issuer.intermediate_due(not_after) =>
            {
                Ok(Authority {
                    root: self.root,
                    intermediate,
                    intermediate_key,
                    intermediate_not_after: not_after,
                })
            }
            intermediate => Err(Box::new(Stored {
                intermediate,
                ..self
            })),
        }
    }
}

/// The root and the intermediate that signs.
struct Authority {
    root: CertificateDer<'static>,
    intermediate: CertificateDer<'static>,
    intermediate_key: KeyPair,
    intermediate_not_after: SystemTime,
}

impl LocalIssuer {
    /// A local CA in `storage` issuing certificates that live `lifetime`.
    pub fn new(storage: Arc<dyn Storage>, lifetime: Duration) -> Self {
        Self {
            storage,
            lifetime,
            authority: Mutex::new(None),
        }
    }

    /// The root certificate, PEM, for clients to trust. Creates the CA if storage has none.
    pub async fn root_pem(&self) -> Result<String> {
        let authority = self.authority().await?;
        Ok(crypto::encode_chain_pem(std::slice::from_ref(
            &authority.root,
        )))
    }

    fn intermediate_lifetime(&self) -> Duration {
        INTERMEDIATE_LIFETIME.max(self.lifetime * 3)
    }

    /// Whether a leaf issued now would outlive the intermediate, or nearly.
    fn intermediate_due(&self, not_after: SystemTime) -> bool {
        !matches!(not_after.duration_since(SystemTime::now()), Ok(left) if left > self.lifetime * 2)
    }

    /// The authority, from memory or storage; created, or its intermediate renewed, under the
    /// storage lock so that instances sharing the storage agree on one.
    async fn authority(&self) -> Result<Arc<Authority>> {
        let mut held = self.authority.lock().await;
        if let Some(a) = held.as_ref()
            && !self.intermediate_due(a.intermediate_not_after)
        {
            return Ok(a.clone());
        }
        if let Some(Ok(a)) = self.load().await?.map(|s| s.usable(self)) {
            let a = Arc::new(a);
            *held = Some(a.clone());
            return Ok(a);
        }
        let lock = LockGuard::acquire(
            self.storage.clone(),
            keys::lock_authority(LOCAL_ISSUER_KEY),
            &runtime::handle()?,
        )
        .await?;
        let made = self.load_or_make().await;
        lock.release().await;
        let a = Arc::new(made?);
        *held = Some(a.clone());
        Ok(a)
    }

    async fn load_or_make(&self) -> Result<Authority> {
        let (root, root_key) = match self.load().await?.map(|s| s.usable(self)) {
            Some(Ok(a)) => return Ok(a),
            Some(Err(stored)) => (stored.root, stored.root_key),
            None => {
                let (root, root_key) = make_root()?;
                self.store("root.key", crypto::encode_private_key_pem(&root_key)?)
                    .await?;
                self.store(
                    "root.crt",
                    crypto::encode_chain_pem(std::slice::from_ref(&root)),
                )
                .await?;
                tracing::info!("created the local certificate authority's root");
                (root, root_key)
            }
        };
        let (intermediate, intermediate_key, not_after) =
            make_intermediate(&root, &root_key, self.intermediate_lifetime())?;
        // Key first: an instance reading between the two writes then sees the old pair's
        // certificate with the new key, which fails to load and is read again under the lock.
        self.store(
            "intermediate.key",
            crypto::encode_private_key_pem(&intermediate_key)?,
        )
        .await?;
        self.store(
            "intermediate.crt",
            crypto::encode_chain_pem(std::slice::from_ref(&intermediate)),
        )
        .await?;
        tracing::info!("issued a new intermediate for the local certificate authority");
        Ok(Authority {
            root,
            intermediate,
            intermediate_key,
            intermediate_not_after: not_after,
        })
    }

    async fn store(&self, file: &str, pem: String) -> Result<()> {
        let key = keys::authority_file(LOCAL_ISSUER_KEY, file);
        self.storage
            .store(&key, pem.as_bytes())
            .await
            .map_err(|e| e.context(format!("storing `{key}`")))
    }

    /// The authority storage holds: `None` when it has no root; an error when its files are
    /// there but unusable (a root is never replaced silently: clients trust it).
    async fn load(&self) -> Result<Option<Stored>> {
        let names = [
            "root.crt",
            "root.key",
            "intermediate.crt",
            "intermediate.key",
        ]
        .map(|f| keys::authority_file(LOCAL_ISSUER_KEY, f));
        let loaded = self
            .storage
            .load_many(&names.iter().map(String::as_str).collect::<Vec<_>>())
            .await;
        let mut values = Vec::with_capacity(4);
        for (name, value) in names.iter().zip(loaded) {
            match value {
                Ok(v) => values.push(Some(v)),
                Err(e) if e.kind() == ErrorKind::NotFound => values.push(None),
                Err(e) => return Err(e.context(format!("`{name}`"))),
            }
        }
        let [root_crt, root_key, int_crt, int_key] = <[Option<Vec<u8>>; 4]>::try_from(values)
            .map_err(|_| Error::internal("storage returned too few values"))?;
        let corrupt = |name: &String, why: &str| {
            Error::new(
                ErrorKind::Corrupt,
                format!(
                    "`{name}`: {why} (the local CA's root is never replaced by itself: clients trust it; restore it, or remove both root files to make a new CA)"
                ),
            )
        };
        let (root_crt, root_key) = match (root_crt, root_key) {
            (Some(c), Some(k)) => (c, k),
            // The key is written first: a key alone is a creation that did not finish.
            (None, _) => return Ok(None),
            (Some(_), None) => return Err(corrupt(&names[1], "missing")),
        };
        let root = first_cert(&root_crt).map_err(|e| corrupt(&names[0], e.message()))?;
        let root_key = parse_key(&root_key).map_err(|e| corrupt(&names[1], e.message()))?;
        if !signs_with(&root, &root_key) {
            return Err(corrupt(&names[1], "not the key of root.crt"));
        }
        // A missing or unreadable intermediate, or one whose certificate and key are of
        // different pairs (read between two writes), is made anew: clients trust only the root.
        let intermediate = match (int_crt, int_key) {
            (Some(c), Some(k)) => match (first_cert(&c), parse_key(&k)) {
                (Ok(c), Ok(k)) => not_after(&c)
                    .filter(|_| signs_with(&c, &k))
                    .map(|t| (c, k, t)),
                _ => {
                    tracing::warn!(
                        "the local CA's intermediate in storage is unreadable; making a new one"
                    );
                    None
                }
            },
            _ => None,
        };
        Ok(Some(Stored {
            root,
            root_key,
            intermediate,
        }))
    }
}

#[async_trait]
impl Issuer for LocalIssuer {
    fn issuer_key(&self) -> &str {
        LOCAL_ISSUER_KEY
    }

    async fn issue(&self, subject: &Subject, csr_der: &[u8]) -> Result<IssuedCertificate> {
        let authority = self.authority().await?;
        let csr =
            CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(csr_der))
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Certificate,
                        format!("the local CA cannot sign this request for `{subject}`: {e}"),
                    )
                })?;
        let mut leaf = csr;
        let now = SystemTime::now();
        let not_after = (now + self.lifetime).min(authority.intermediate_not_after);
        let p = &mut leaf.params;
        p.distinguished_name = DistinguishedName::new();
        p.not_before = offset(now - BACKDATE.min(self.lifetime / 20));
        p.not_after = offset(not_after);
        p.serial_number = Some(random_serial());
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        p.use_authority_key_identifier_extension = true;
        let issuer =
            rcgen::Issuer::from_ca_cert_der(&authority.intermediate, &authority.intermediate_key)
                .map_err(|e| Error::internal(format!("local CA intermediate: {e}")))?;
        let cert = leaf
            .signed_by(&issuer)
            .map_err(|e| Error::internal(format!("signing for `{subject}`: {e}")))?;
        Ok(IssuedCertificate {
            chain_pem: crypto::encode_chain_pem(&[
                cert.der().clone(),
                authority.intermediate.clone(),
            ]),
            // As Caddy's internal issuer: no issuer data.
            metadata: serde_json::Value::Null,
        })
    }

    async fn revoke(
        &self,
        _leaf: &CertificateDer<'static>,
        _reason: RevocationReason,
    ) -> Result<()> {
        Err(Error::new(
            ErrorKind::Certificate,
            "the local CA keeps no revocation list: remove the certificate from storage instead \
             (its clients trust it only until it expires, within hours)",
        ))
    }
}

fn make_root() -> Result<(CertificateDer<'static>, KeyPair)> {
    let key = crypto::generate_key(KeyType::EcdsaP256)?;
    let now = SystemTime::now();
    let mut p = ca_params(
        format!(
            "certmagic-rs Local Authority - {} ECC Root",
            OffsetDateTime::now_utc().year()
        ),
        BasicConstraints::Unconstrained,
    );
    p.not_before = offset(now - BACKDATE);
    p.not_after = offset(now + ROOT_LIFETIME);
    let cert = p
        .self_signed(&key)
        .map_err(|e| Error::internal(format!("making the local CA root: {e}")))?;
    Ok((cert.der().clone(), key))
}

/// A new intermediate signed by the root, living `lifetime`.
fn make_intermediate(
    root: &CertificateDer<'static>,
    root_key: &KeyPair,
    lifetime: Duration,
) -> Result<(CertificateDer<'static>, KeyPair, SystemTime)> {
    let key = crypto::generate_key(KeyType::EcdsaP256)?;
    let now = SystemTime::now();
    let root_not_after = not_after(root).ok_or_else(|| {
        Error::new(
            ErrorKind::Corrupt,
            "the local CA root has no readable validity",
        )
    })?;
    let not_after = (now + lifetime).min(root_not_after);
    let mut p = ca_params(
        "certmagic-rs Local Authority - ECC Intermediate".into(),
        BasicConstraints::Constrained(0),
    );
    p.not_before = offset(now - BACKDATE);
    p.not_after = offset(not_after);
    let issuer = rcgen::Issuer::from_ca_cert_der(root, root_key)
        .map_err(|e| Error::internal(format!("local CA root: {e}")))?;
    let cert = p
        .signed_by(&key, &issuer)
        .map_err(|e| Error::internal(format!("making the local CA intermediate: {e}")))?;
    Ok((cert.der().clone(), key, not_after))
}

fn ca_params(common_name: String, constraints: BasicConstraints) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, common_name);
    p.is_ca = IsCa::Ca(constraints);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.serial_number = Some(random_serial());
    p.use_authority_key_identifier_extension = true;
    p
}

/// 128 random bits, positive.
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

fn offset(t: SystemTime) -> OffsetDateTime {
    OffsetDateTime::from(t)
}

fn first_cert(pem: &[u8]) -> Result<CertificateDer<'static>> {
    crypto::parse_pem_chain(pem)?
        .into_iter()
        .next()
        .ok_or_else(|| Error::new(ErrorKind::Corrupt, "no certificate"))
}

fn parse_key(pem: &[u8]) -> Result<KeyPair> {
    crypto::key_pair_from_der(&crypto::decode_private_key_pem(pem)?)
}

fn not_after(cert: &CertificateDer<'_>) -> Option<SystemTime> {
    let (_, c) = x509_parser::parse_x509_certificate(cert).ok()?;
    let secs = u64::try_from(c.validity().not_after.timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Whether `key` is the key of `cert`.
fn signs_with(cert: &CertificateDer<'_>, key: &KeyPair) -> bool {
    x509_parser::parse_x509_certificate(cert).is_ok_and(|(_, c)| {
        c.tbs_certificate
            .subject_pki
            .subject_public_key
            .data
            .as_ref()
            == key.public_key_raw()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStorage;

    #[tokio::test]
    async fn issues_under_one_root_kept_in_storage() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let a = LocalIssuer::new(storage.clone(), Duration::from_secs(3600));
        let root = a.root_pem().await.unwrap();
        // A second issuer on the same storage (another instance) uses the same root.
        let b = LocalIssuer::new(storage.clone(), Duration::from_secs(3600));
        assert_eq!(b.root_pem().await.unwrap(), root);
        for f in [
            "root.crt",
            "root.key",
            "intermediate.crt",
            "intermediate.key",
        ] {
            assert!(
                storage
                    .exists(&format!("pki/authorities/local/{f}"))
                    .await
                    .unwrap(),
                "{f}"
            );
        }
        let key = crypto::generate_key(KeyType::EcdsaP256).unwrap();
        let subject = Subject::parse("localhost").unwrap();
        let csr = crypto::csr_der("localhost", &key, false).unwrap();
        let issued = b.issue(&subject, &csr).await.unwrap();
        let chain = crypto::parse_pem_chain(issued.chain_pem.as_bytes()).unwrap();
        assert_eq!(chain.len(), 2);
        let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0]).unwrap();
        let (_, inter) = x509_parser::parse_x509_certificate(&chain[1]).unwrap();
        let roots = crypto::parse_pem_chain(root.as_bytes()).unwrap();
        let (_, root_cert) = x509_parser::parse_x509_certificate(&roots[0]).unwrap();
        leaf.verify_signature(Some(inter.public_key())).unwrap();
        inter
            .verify_signature(Some(root_cert.public_key()))
            .unwrap();
        let life = leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp();
        assert_eq!(life, 3600 + 60);
        assert!(
            leaf.validity().not_before.timestamp()
                <= OffsetDateTime::now_utc().unix_timestamp() - 59
        );
        assert!(issued.metadata.is_null());
    }

    #[tokio::test]
    async fn a_due_or_unreadable_intermediate_is_replaced_under_the_same_root() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let key = "pki/authorities/local/intermediate.crt";
        let short = LocalIssuer::new(storage.clone(), Duration::from_secs(60));
        let root = short.root_pem().await.unwrap();
        let first = storage.load(key).await.unwrap();
        // Four-day leaves need more than the 7-day intermediate has left: a new one, same root.
        let long = LocalIssuer::new(storage.clone(), Duration::from_secs(4 * 86400));
        assert_eq!(long.root_pem().await.unwrap(), root);
        let second = storage.load(key).await.unwrap();
        assert_ne!(second, first);
        // A torn intermediate is made anew too.
        storage.store(key, b"torn").await.unwrap();
        let again = LocalIssuer::new(storage.clone(), Duration::from_secs(60));
        assert_eq!(again.root_pem().await.unwrap(), root);
        assert!(
            storage
                .load(key)
                .await
                .unwrap()
                .starts_with(b"-----BEGIN CERTIFICATE-----")
        );
    }

    #[tokio::test]
    async fn an_unreadable_root_is_an_error_not_replaced() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        storage
            .store("pki/authorities/local/root.crt", b"not pem")
            .await
            .unwrap();
        storage
            .store("pki/authorities/local/root.key", b"not pem")
            .await
            .unwrap();
        let e = LocalIssuer::new(storage.clone(), Duration::from_secs(60))
            .root_pem()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
        assert!(e.message().contains("root.crt"), "{e}");
        storage
            .delete("pki/authorities/local/root.key")
            .await
            .unwrap();
        let e = LocalIssuer::new(storage.clone(), Duration::from_secs(60))
            .root_pem()
            .await
            .unwrap_err();
        assert!(e.message().contains("root.key`: missing"), "{e}");
        assert_eq!(
            storage
                .load("pki/authorities/local/root.crt")
                .await
                .unwrap(),
            b"not pem"
        );
    }
}
