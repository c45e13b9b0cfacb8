// Types of the `certmagic` package (hand-written over the generated binding.d.ts; checked by
// `tsc --noEmit --strict` against the tests and examples in CI).

import { EventEmitter } from 'node:events'
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http'
import type { Server as HttpsServer } from 'node:https'
import type { Server as NetServer } from 'node:net'
import type { SecureContext, TLSSocket } from 'node:tls'

export type KeyType = 'p256' | 'p384' | 'rsa2048' | 'rsa4096' | 'ed25519'
export type ChallengeType = 'http-01' | 'tls-alpn-01' | 'dns-01'
export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'trace'
export type RevocationReason = 'unspecified' | 'keyCompromise' | 'affiliationChanged' | 'superseded' | 'cessationOfOperation'

/** What `stat` answers about a key. */
export interface KeyInfo {
  modified: Date | number
  size: number
  isTerminal: boolean
}

/** A storage object: methods may be `async`. A missing key: resolve `null`/`undefined` (or
 * throw an error whose `code` is `ENOENT`). */
export interface Storage {
  store(key: string, value: Buffer): void | Promise<void>
  load(key: string): Buffer | Uint8Array | string | null | undefined | Promise<Buffer | Uint8Array | string | null | undefined>
  delete(key: string): void | Promise<void>
  exists(key: string): boolean | Promise<boolean>
  list(prefix: string, recursive: boolean): Iterable<string> | null | undefined | Promise<Iterable<string> | null | undefined>
  stat(key: string): KeyInfo | null | undefined | Promise<KeyInfo | null | undefined>
  lock(name: string): void | Promise<void>
  unlock(name: string): void | Promise<void>
}

/** A DNS record exchanged with a DNS provider; `name` is relative to the zone (`@` for the
 * apex), `ttl` in seconds, `id` the provider's own id when it gave one. */
export interface DnsRecord {
  name: string
  type: string
  value: string
  ttl: number
  id?: string
}

/** A DNS provider written in JavaScript (methods may be `async`). `zone` ends with a dot.
 * `appendRecords` adds values without replacing others at the same name and may return the
 * records as created (with ids), which `deleteRecords` later receives; `deleteRecords` removes
 * exactly those records (one already gone is not an error). A throw or rejection fails the
 * challenge and becomes the error's `cause`. */
export interface DnsProvider {
  appendRecords(zone: string, records: DnsRecord[]): void | DnsRecord[] | Promise<void | DnsRecord[]>
  deleteRecords(zone: string, records: DnsRecord[]): void | DnsRecord[] | Promise<void | DnsRecord[]>
}

/** DNS-01 for every name (and wildcard names). */
export interface DnsOptions {
  /** A built-in provider's name (settings from its usual environment variables: `cloudflare`,
   * `route53`, `digitalocean`, `hetzner`, `gandi`, `powerdns`, `rfc2136`, `exec`), its settings
   * (`{ provider: 'rfc2136', server: '127.0.0.1:53', key_name: '…', key_secret: '…' }`), or a
   * provider object. */
  provider: string | ({ provider: string } & Record<string, unknown>) | DnsProvider
  /** TTL of the TXT records, seconds (default 120). */
  ttl?: number
  /** Wait before the first propagation check (default 0). */
  propagationDelay?: number
  /** Give up waiting for the record after this long (default 120000); negative: no checks. */
  propagationTimeout?: number
  /** Pause between propagation checks (default 2000). */
  pollInterval?: number
  /** DNS servers (`ip` or `ip:port`) for zone lookups and propagation checks (default: the
   * system's resolvers for lookups, the zone's authoritative servers for checks). */
  resolvers?: string[]
  /** Put every record at this name instead of `_acme-challenge.<name>`. */
  overrideDomain?: string
  /** Follow a CNAME at `_acme-challenge.<name>` to where the record goes (default true). */
  followCname?: boolean
}

/** On-demand TLS: a certificate obtained during the first handshake for a name, when a gate
 * allows it (at least one of `decision`, `ask`, `allow` is required). */
export interface OnDemandOptions {
  /** Resolve `true` (or nothing) to allow `name`, `false` or throw to refuse. */
  decision?: (name: string) => boolean | void | Promise<boolean | void>
  /** `GET ask?domain=<name>`: a 2xx answer within 10 s allows. */
  ask?: string
  /** Exactly these names (used when neither `decision` nor `ask` is set). */
  allow?: string[]
  /** At most `events` on-demand certificates per `window` milliseconds. */
  rateLimit?: { events: number; window: number }
  /** How long a handshake may wait for its certificate (default 180000). */
  obtainTimeout?: number
}

/** Every engine setting; durations in milliseconds. */
/** An issuer: `"acme"` (the CA of the options' own `ca`, `email`, `eab`, …), `"local"` (the
 * library's own CA; its root from `localRootPem()`), `"zerossl"`, or an object in the engine's
 * JSON shape. */
export type IssuerSpec =
  | 'acme'
  | 'local'
  | {
      type: 'acme'
      /** Another CA: its EAB, profile and chain preference are its own; email and roots default to the options'. */
      ca?: string
      email?: string
      eab?: { key_id: string; hmac_key: string }
      trusted_roots_pem?: string
      profile?: string
      preferred_chain?: { root_common_names?: string[]; any_common_names?: string[]; smallest?: boolean }
    }
  | { type: 'local'; /** Default 12 hours. */ lifetime_secs?: number }
  | 'zerossl'
  | {
      /** ZeroSSL's CA, EAB credentials fetched from ZeroSSL's API for the email (or with the API key). */
      type: 'zerossl'
      email?: string
      api_key?: string
      ca?: string
      api_url?: string
    }

export interface CertMagicOptions {
  /** ACME directory URL (default: Let's Encrypt production). */
  ca?: string
  email?: string
  /** Agree to the CA's terms of service. */
  agreed?: boolean
  /** PEM roots to trust for the CA connection (private or test CAs). */
  trustedRootsPem?: string
  keyType?: KeyType
  /** Renew when less than this fraction of the lifetime remains (default 1/3). */
  renewalWindowRatio?: number
  renewCheckInterval?: number
  disableHttpChallenge?: boolean
  disableTlsAlpnChallenge?: boolean
  altHttpPort?: number
  altTlsAlpnPort?: number
  listenHost?: string
  challengePreference?: ChallengeType[]
  disableDistributedSolvers?: boolean
  eab?: { keyId: string; hmacKey: string }
  preferredChain?: { rootCommonNames?: string[]; issuerCommonNames?: string[]; smallest?: boolean }
  profile?: string
  /** Ask for OCSP Must-Staple in CSRs (needs stapling on, and a CA with an OCSP responder). */
  mustStaple?: boolean
  /** Turn OCSP stapling off (default on for certificates whose leaf names a responder). */
  disableOcspStapling?: boolean
  /** Responder URL → URL to ask instead ("" never asks that responder). */
  ocspResponderOverrides?: Record<string, string>
  /** How often (ms) staples past the midpoint of their validity are refreshed (default 1 h). */
  ocspCheckInterval?: number
  reusePrivateKeys?: boolean
  orderTimeout?: number
  rateLimit?: { events: number; window: number }
  /** Waits (ms) between attempts of failed background work, the last repeating (default:
   * CertMagic's, 1 minute rising to 6 hours). */
  retryIntervals?: number[]
  /** How long (ms) failed background work is retried in all (default 30 days; 0: never). */
  retryMaxTotal?: number
  /**
   * A folder (Caddy's layout), the URL of a database shared by a fleet (`redis://`, `rediss://`,
   * `postgres://`, `postgresql://`, in the layouts of Caddy's Redis and PostgreSQL storages, with
   * options in the query), or a storage object (default: ~/.local/share/certmagic).
   */
  storage?: string | Storage
  /** Solve DNS-01 through a DNS provider (required for wildcard names). */
  dns?: DnsOptions
  /** Obtain certificates during handshakes (served through `tlsOptions()`'s asynchronous
   * `SNICallback` or `createTlsServer`). */
  onDemand?: OnDemandOptions
  /** Keep at most this many certificates in memory; evicted ones come back from storage. */
  cacheCapacity?: number
  /** The issuers each certificate is obtained from: the first that succeeds (default: `["acme"]`). */
  issuers?: IssuerSpec[]
  /** `first` (the order given, the default) or `random` (shuffled for each new certificate). */
  issuerPolicy?: 'first' | 'random'
  /** How long (ms) each kind of callback may take before the engine goes on with a timeout
   * error (0: no deadline). Defaults: storage 60 s, lock none, dns 2 min, decision 60 s,
   * events 60 s. */
  callbackTimeouts?: { storage?: number; lock?: number; dns?: number; decision?: number; events?: number }
  /** Receives the engine's logs (process-wide; the last CertMagic given one wins). */
  logger?: (level: LogLevel, message: string) => void
  logLevel?: LogLevel
}

export interface Certificate {
  certPem: string
  keyPem: string
  names: string[]
  notBefore: Date
  notAfter: Date
  /** The good OCSP response stapled to handshakes, DER. */
  ocspStaple: Buffer | null
  /** The last checked OCSP response's status. */
  ocspStatus: 'good' | 'revoked' | 'unknown' | null
  managed: boolean
  /** SHA-256 of the DER chain, hex. */
  hash: string
  serial: string
}

export interface CertObtainingEvent {
  identifier: string
  renewal?: boolean
  forced?: boolean
  remaining?: number
  issuer?: string
  /** Started by a TLS handshake (on-demand TLS). */
  on_demand?: boolean
}
export interface CertObtainedEvent {
  renewal: boolean
  identifier: string
  issuer: string
  storage_path: string
  private_key_path: string
  certificate_path: string
  metadata_path: string
  csr_pem: string
  /** Issuers that failed before the one that succeeded. */
  failed_issuers?: { issuer: string; error: string }[]
  remaining?: number
  on_demand?: boolean
}
export interface CertFailedEvent {
  renewal: boolean
  identifier: string
  issuers: string[]
  error: string
  remaining?: number
  on_demand?: boolean
}
export interface CachedCertEvent {
  sans: string[]
}
/** The stored certificate of a name is unusable (torn or mismatched files); a new one replaces it. */
export interface StoredCertCorruptEvent {
  identifier: string
  error: string
  certificate_path: string
  private_key_path: string
  metadata_path: string
}
/** OCSP says a cached certificate is revoked; a managed one is replaced at once (with a new key
 * for keyCompromise, the old one moved to `<key>.compromised`). */
export interface CertOcspRevokedEvent {
  subjects: string[]
  /** The revoked chain, PEM. */
  certificate: string
  /** RFC 5280 reason code (1: keyCompromise). */
  reason: number
  /** RFC 3339. */
  revoked_at: string
}
/** A handshake asked for a certificate (asynchronous path). Informational in Node: listeners
 * cannot refuse it (use `onDemand.decision`). */
export interface TlsGetCertificateEvent {
  client_hello: { server_name: string | null; alpn: string[] }
}

export interface CertMagicEvents {
  cert_obtaining: [CertObtainingEvent]
  cert_obtained: [CertObtainedEvent]
  cert_failed: [CertFailedEvent]
  cached_managed_cert: [CachedCertEvent]
  cached_unmanaged_cert: [CachedCertEvent]
  stored_cert_corrupt: [StoredCertCorruptEvent]
  cert_ocsp_revoked: [CertOcspRevokedEvent]
  tls_get_certificate: [TlsGetCertificateEvent]
}

export interface TlsOptions {
  SNICallback: (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void
  ALPNCallback: (arg: { servername: string; protocols: string[] }) => string | undefined
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void

export declare class CertMagic extends EventEmitter<CertMagicEvents> {
  constructor(options?: CertMagicOptions)
  manage(names: string[]): Promise<void>
  manageInBackground(names: string[]): void
  obtain(name: string): Promise<Certificate>
  renew(name: string): Promise<Certificate>
  revoke(name: string, reason?: RevocationReason | number): Promise<void>
  getCertificate(name: string): Certificate | null
  /** The certificate for a TLS handshake: cached, from storage, or (on-demand TLS) obtained. */
  certificateForHandshake(serverName: string | null, alpn?: string[]): Promise<Certificate>
  addCertificate(certPem: string | Buffer, keyPem: string | Buffer): Certificate
  httpChallengeAnswer(host: string, path: string): Promise<string | null>
  secureContext(name: string): SecureContext | null
  tlsOptions(options?: { alpnProtocols?: string[] }): TlsOptions
  /** For `server.on('OCSPRequest', …)` of a server built with `tlsOptions()`. */
  ocspRequestHandler(): (certificate: Buffer, issuer: Buffer, callback: (err: Error | null, response?: Buffer) => void) => void
  httpChallengeHandler(
    next?: RequestHandler,
    options?: { httpsPort?: number },
  ): (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void
  createTlsServer(handler: (socket: TLSSocket) => void, options?: { alpnProtocols?: string[] }): NetServer
  close(): Promise<void>
  /** When failed background work is tried again: the waits (the last repeats) and the total, ms. */
  readonly retrySchedule: { intervals: number[]; maxTotal: number }
  readonly issuerKey: string
  /** Every issuer's key, in configured order. */
  readonly issuerKeys: string[]
  /** The local CA's root certificate (PEM), for clients to trust. */
  localRootPem(): Promise<string>
}

export interface HttpsOptions extends CertMagicOptions {
  httpPort?: number
  httpsPort?: number
  host?: string
  magic?: CertMagic
}

export interface Serving {
  magic: CertMagic
  httpServer: HttpServer
  httpsServer: HttpsServer
  close(): Promise<void>
}

export declare function https(names: string[], handler: RequestHandler, options?: HttpsOptions): Promise<Serving>
export declare function peekClientHello(data: Buffer): { serverName?: string; protocols: string[] } | null
export declare function httpsRedirectLocation(host: string, httpsPort: number, pathAndQuery: string): string | null

interface ErrorFields {
  readonly code: string
  readonly kind: string
  readonly field: string | null
  readonly problemType: string | null
  readonly detail: string | null
  readonly status: number | null
}
export declare class CertMagicError extends Error implements ErrorFields {
  readonly code: string
  readonly kind: string
  readonly field: string | null
  readonly problemType: string | null
  readonly detail: string | null
  readonly status: number | null
}
export declare class ConfigError extends RangeError implements ErrorFields {
  readonly code: string
  readonly kind: string
  readonly field: string | null
  readonly problemType: string | null
  readonly detail: string | null
  readonly status: number | null
}
export declare class InvalidNameError extends CertMagicError {}
export declare class StorageError extends CertMagicError {}
export declare class NotFoundError extends StorageError {}
export declare class CorruptError extends StorageError {}
export declare class AcmeError extends CertMagicError {}
export declare class ChallengeError extends AcmeError {}
export declare class CertificateError extends CertMagicError {}
export declare class TimeoutError extends CertMagicError {}
export declare class AbortedError extends CertMagicError {}
export declare class ShutDownError extends CertMagicError {}

export declare const LETS_ENCRYPT_PRODUCTION: string
export declare const LETS_ENCRYPT_STAGING: string
export declare const ZEROSSL: string
export declare const GOOGLE_TRUST_SERVICES: string
