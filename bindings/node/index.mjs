// ESM entry point: the same API as index.js.
import certmagic from './index.js'

export const {
  CertMagic,
  https,
  peekClientHello,
  httpsRedirectLocation,
  CertMagicError,
  ConfigError,
  InvalidNameError,
  StorageError,
  NotFoundError,
  CorruptError,
  AcmeError,
  ChallengeError,
  CertificateError,
  TimeoutError,
  AbortedError,
  ShutDownError,
  LETS_ENCRYPT_PRODUCTION,
  LETS_ENCRYPT_STAGING,
  ZEROSSL,
  GOOGLE_TRUST_SERVICES,
} = certmagic
export default certmagic
