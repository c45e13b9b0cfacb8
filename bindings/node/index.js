'use strict'
// certmagic for Node.js: the engine of certmagic-rs (the native binding) behind an idiomatic,
// Promise-based API. Translation only; every behaviour lives in the Rust engine.

const { EventEmitter } = require('node:events')
const http = require('node:http')
const nodeHttps = require('node:https')
const net = require('node:net')
const tls = require('node:tls')

const binding = loadBinding()

// The addon comes prebuilt in one package per platform (an optional dependency each); the
// generated loader (binding.js) finds it. When it cannot, say which package is missing and why.
function loadBinding() {
  try {
    return require('./binding.js')
  } catch (error) {
    const { optionalDependencies = {}, version } = require('./package.json')
    let platform = `${process.platform}-${process.arch}`
    if (process.platform === 'linux') {
      const report = typeof process.report?.getReport === 'function' ? process.report.getReport() : null
      platform += report?.header?.glibcVersionRuntime ? '-gnu' : '-musl'
    } else if (process.platform === 'win32') {
      platform += '-msvc'
    }
    const name = `certmagic-${platform}`
    let message
    if (!(name in optionalDependencies)) {
      const prebuilt = Object.keys(optionalDependencies).map((n) => n.replace(/^certmagic-/, ''))
      message =
        `certmagic ${version} has no prebuilt native addon for ${platform} (prebuilt: ${prebuilt.join(', ')}). ` +
        'Build it from source with Rust installed: `npm run build` in bindings/node of a checkout.'
    } else {
      let installed = false
      try {
        require.resolve(`${name}/package.json`)
        installed = true
      } catch {}
      message = installed
        ? `certmagic: the native addon in ${name} could not be loaded (see the cause).`
        : `certmagic: the native addon for ${platform} comes in the package ${name}, which is not installed. ` +
          'npm installs it with certmagic unless optional dependencies are left out (--omit=optional, or a ' +
          `lockfile made on another platform): \`npm install ${name}@${version}\`.`
    }
    const failure = new Error(message)
    failure.code = 'ERR_CERTMAGIC_NATIVE_ADDON'
    failure.cause = error
    throw failure
  }
}

// ---------- errors ----------

const CODES = {
  invalid_config: 'ERR_CERTMAGIC_CONFIG',
  invalid_name: 'ERR_CERTMAGIC_INVALID_NAME',
  storage: 'ERR_CERTMAGIC_STORAGE',
  not_found: 'ERR_CERTMAGIC_NOT_FOUND',
  corrupt: 'ERR_CERTMAGIC_CORRUPT',
  acme: 'ERR_CERTMAGIC_ACME',
  challenge: 'ERR_CERTMAGIC_CHALLENGE',
  certificate: 'ERR_CERTMAGIC_CERTIFICATE',
  timeout: 'ERR_CERTMAGIC_TIMEOUT',
  cancelled: 'ERR_CERTMAGIC_CANCELLED',
  aborted: 'ERR_CERTMAGIC_ABORTED',
  shut_down: 'ERR_CERTMAGIC_SHUT_DOWN',
  reentrant: 'ERR_CERTMAGIC_REENTRANT',
  wrong_process: 'ERR_CERTMAGIC_WRONG_PROCESS',
  internal: 'ERR_CERTMAGIC_INTERNAL',
}

function decorate(error, info) {
  error.code = CODES[info.kind] || CODES.internal
  error.kind = info.kind
  error.field = info.field ?? null
  error.problemType = info.problemType ?? null
  error.detail = info.detail ?? null
  error.status = info.status ?? null
  return error
}

/** Every error of the engine (but configuration refusals, which are `RangeError`s). */
class CertMagicError extends Error {
  constructor(message, info = { kind: 'internal' }, cause) {
    super(message, cause === undefined ? undefined : { cause })
    this.name = new.target.name
    decorate(this, info)
  }
}
/** A configuration value was refused; `field` names it. */
class ConfigError extends RangeError {
  constructor(message, info = { kind: 'invalid_config' }, cause) {
    super(message, cause === undefined ? undefined : { cause })
    this.name = 'ConfigError'
    decorate(this, info)
  }
}
class InvalidNameError extends CertMagicError {}
class StorageError extends CertMagicError {}
class NotFoundError extends StorageError {}
class CorruptError extends StorageError {}
/** The CA refused: `problemType`, `detail` and `status` hold its problem document. */
class AcmeError extends CertMagicError {}
class ChallengeError extends AcmeError {}
class CertificateError extends CertMagicError {}
class TimeoutError extends CertMagicError {}
class AbortedError extends CertMagicError {}
class ShutDownError extends CertMagicError {}

const CLASSES = {
  invalid_config: ConfigError,
  invalid_name: InvalidNameError,
  storage: StorageError,
  not_found: NotFoundError,
  corrupt: CorruptError,
  acme: AcmeError,
  challenge: ChallengeError,
  certificate: CertificateError,
  timeout: TimeoutError,
  aborted: AbortedError,
  shut_down: ShutDownError,
}

// JavaScript errors thrown by callbacks wait here while their failure crosses the engine, then
// become the `cause` of the error the caller gets.
const causes = new Map()
let nextCause = 1
function keepCause(err) {
  const id = nextCause++
  causes.set(id, err)
  if (causes.size > 1000) causes.delete(causes.keys().next().value)
  return id
}

/** The `Error` subclass for an error of the native binding. */
function fromNative(err) {
  let info
  try {
    info = JSON.parse(err && err.message)
  } catch {
    return err
  }
  if (!info || info.certmagic !== true) return err
  let cause
  if (info.causeId != null) {
    cause = causes.get(info.causeId)
    causes.delete(info.causeId)
  }
  const Class = CLASSES[info.kind] || CertMagicError
  return new Class(info.message, info, cause)
}

async function call(promise) {
  try {
    return await promise
  } catch (err) {
    throw fromNative(err)
  }
}

function sync(fn) {
  try {
    return fn()
  } catch (err) {
    throw fromNative(err)
  }
}

// ---------- options ----------

const LOG_LEVELS = { error: 1, warn: 2, info: 3, debug: 4, trace: 5 }

/** Checks types (a TypeError names the field); the engine checks values (a ConfigError does). */
function nativeOptions(options) {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object')
  const out = {}
  const want = (field, type, convert = (v) => v) => {
    const value = options[field]
    if (value === undefined) return
    const ok = type === 'array' ? Array.isArray(value) : typeof value === type
    if (!ok) throw new TypeError(`options.${field} must be ${type === 'array' ? 'an array' : `a ${type}`}, got ${typeof value}`)
    out[field] = convert(value)
  }
  want('ca', 'string')
  want('email', 'string')
  want('agreed', 'boolean')
  want('trustedRootsPem', 'string')
  want('keyType', 'string')
  want('renewalWindowRatio', 'number')
  want('renewCheckInterval', 'number')
  want('disableHttpChallenge', 'boolean')
  want('disableTlsAlpnChallenge', 'boolean')
  want('altHttpPort', 'number')
  want('altTlsAlpnPort', 'number')
  want('listenHost', 'string')
  want('challengePreference', 'array', (v) => v.map(String))
  want('disableDistributedSolvers', 'boolean')
  want('eab', 'object', (v) => {
    if (typeof v.keyId !== 'string' || typeof v.hmacKey !== 'string') throw new TypeError('options.eab must be { keyId: string, hmacKey: string }')
    return { keyId: v.keyId, hmacKey: v.hmacKey }
  })
  want('preferredChain', 'object', (v) => ({
    rootCommonNames: v.rootCommonNames,
    issuerCommonNames: v.issuerCommonNames,
    smallest: v.smallest,
  }))
  want('profile', 'string')
  want('issuers', 'array', (v) =>
    v.map((spec) => {
      if (typeof spec === 'string') return spec
      if (spec !== null && typeof spec === 'object' && !Array.isArray(spec)) return JSON.stringify(spec)
      throw new TypeError('options.issuers must be an array of issuer names ("acme", "local") or issuer objects ({ type: "acme", … })')
    }),
  )
  want('issuerPolicy', 'string')
  want('mustStaple', 'boolean')
  want('disableOcspStapling', 'boolean')
  want('ocspResponderOverrides', 'object', (v) => {
    if (v === null || Array.isArray(v) || Object.values(v).some((u) => typeof u !== 'string')) {
      throw new TypeError('options.ocspResponderOverrides must be an object of responder URL → URL strings')
    }
    return { ...v }
  })
  want('ocspCheckInterval', 'number')
  want('reusePrivateKeys', 'boolean')
  want('orderTimeout', 'number')
  want('rateLimit', 'object', (v) => rateLimit('rateLimit', v))
  want('retryIntervals', 'array', (v) => {
    if (v.some((n) => typeof n !== 'number')) throw new TypeError('options.retryIntervals must be an array of numbers')
    return v
  })
  want('retryMaxTotal', 'number')
  if (options.storage !== undefined && typeof options.storage !== 'string' && (options.storage === null || typeof options.storage !== 'object')) {
    throw new TypeError('options.storage must be a folder path, a database URL or a storage object')
  }
  if (typeof options.storage === 'string') out.storageLocation = options.storage
  if (options.dns !== undefined) Object.assign(out, nativeDnsOptions(options.dns))
  if (options.onDemand !== undefined) Object.assign(out, nativeOnDemandOptions(options.onDemand))
  want('cacheCapacity', 'number')
  if (options.callbackTimeouts !== undefined) Object.assign(out, nativeCallbackTimeouts(options.callbackTimeouts))
  if (options.logger !== undefined && typeof options.logger !== 'function') throw new TypeError('options.logger must be a function')
  if (options.logLevel !== undefined && !(options.logLevel in LOG_LEVELS)) throw new TypeError(`options.logLevel must be one of ${Object.keys(LOG_LEVELS).join(', ')}`)
  return out
}

/** `options.callbackTimeouts` (milliseconds per kind of callback) in the engine's terms. */
function nativeCallbackTimeouts(t) {
  if (t === null || typeof t !== 'object') throw new TypeError('options.callbackTimeouts must be an object')
  const out = {}
  for (const [kind, key] of [['storage', 'callbackTimeoutStorage'], ['lock', 'callbackTimeoutLock'], ['dns', 'callbackTimeoutDns'], ['decision', 'callbackTimeoutDecision'], ['events', 'callbackTimeoutEvents']]) {
    const v = t[kind]
    if (v === undefined) continue
    if (typeof v !== 'number') throw new TypeError(`options.callbackTimeouts.${kind} must be a number of milliseconds, got ${typeof v}`)
    out[key] = v
  }
  return out
}

/** A `{ events, window }` limit, types checked. */
function rateLimit(field, r) {
  if (r === null || typeof r !== 'object' || typeof r.events !== 'number' || typeof r.window !== 'number') throw new TypeError(`options.${field} must be { events: number, window: number }`)
  return { events: r.events, window: r.window }
}

/** `options.onDemand` in the engine's terms (the decision function goes separately). */
function nativeOnDemandOptions(od) {
  if (od === null || typeof od !== 'object') throw new TypeError('options.onDemand must be an object')
  const out = {}
  if (od.decision !== undefined && typeof od.decision !== 'function') throw new TypeError('options.onDemand.decision must be a function')
  if (od.ask !== undefined) {
    if (typeof od.ask !== 'string') throw new TypeError('options.onDemand.ask must be a URL string')
    out.onDemandAsk = od.ask
  }
  if (od.allow !== undefined) {
    if (!Array.isArray(od.allow) || od.allow.some((n) => typeof n !== 'string')) throw new TypeError('options.onDemand.allow must be an array of names')
    out.onDemandAllow = od.allow
  }
  if (od.rateLimit !== undefined) out.onDemandRateLimit = rateLimit('onDemand.rateLimit', od.rateLimit)
  if (od.obtainTimeout !== undefined) {
    if (typeof od.obtainTimeout !== 'number') throw new TypeError('options.onDemand.obtainTimeout must be a number of milliseconds')
    out.onDemandObtainTimeout = od.obtainTimeout
  }
  return out
}

/** The engine's view of a decision function: `true`/`undefined` allows, `false` or a throw refuses. */
function decisionDispatcher(decision) {
  return async (name) => {
    try {
      const verdict = await decision(name)
      return verdict === false ? { allow: false } : { allow: true }
    } catch (err) {
      return { allow: false, error: String((err && err.message) || err) }
    }
  }
}

const DNS_METHODS = ['appendRecords', 'deleteRecords']

function isDnsProviderObject(p) {
  return p !== null && typeof p === 'object' && DNS_METHODS.some((m) => typeof p[m] === 'function')
}

/** `options.dns` in the engine's terms: the provider spec and each tuning option. */
function nativeDnsOptions(dns) {
  if (dns === null || typeof dns !== 'object') throw new TypeError('options.dns must be an object')
  const out = {}
  const p = dns.provider
  if (typeof p === 'string') out.dnsProvider = p
  else if (p !== null && typeof p === 'object' && !isDnsProviderObject(p)) out.dnsProvider = JSON.stringify(p)
  else if (!isDnsProviderObject(p)) {
    throw new TypeError('options.dns.provider must be a provider name, an object of its settings ({ provider: "rfc2136", … }), or an object with appendRecords() and deleteRecords()')
  }
  const number = (field, key) => {
    const v = dns[field]
    if (v === undefined) return
    if (typeof v !== 'number') throw new TypeError(`options.dns.${field} must be a number, got ${typeof v}`)
    out[key] = v
  }
  number('ttl', 'dnsTtl')
  number('propagationDelay', 'dnsPropagationDelay')
  number('propagationTimeout', 'dnsPropagationTimeout')
  number('pollInterval', 'dnsPollInterval')
  if (dns.resolvers !== undefined) {
    if (!Array.isArray(dns.resolvers) || dns.resolvers.some((r) => typeof r !== 'string')) throw new TypeError('options.dns.resolvers must be an array of strings')
    out.dnsResolvers = dns.resolvers
  }
  if (dns.overrideDomain !== undefined) {
    if (typeof dns.overrideDomain !== 'string') throw new TypeError('options.dns.overrideDomain must be a string')
    out.dnsOverrideDomain = dns.overrideDomain
  }
  if (dns.followCname !== undefined) {
    if (typeof dns.followCname !== 'boolean') throw new TypeError('options.dns.followCname must be a boolean')
    out.dnsFollowCname = dns.followCname
  }
  return out
}

/** One function through which the engine calls a DNS provider object. */
function dnsDispatcher(provider) {
  for (const m of DNS_METHODS) {
    if (typeof provider[m] !== 'function') throw new TypeError(`options.dns.provider has no ${m}() method (a DNS provider needs ${DNS_METHODS.join(' and ')})`)
  }
  return async ({ op, zone, recordsJson }) => {
    try {
      const records = JSON.parse(recordsJson)
      const result = await provider[op](zone, records)
      return Array.isArray(result) ? { ok: true, recordsJson: JSON.stringify(result) } : { ok: true }
    } catch (err) {
      return { ok: false, error: String((err && err.message) || err), causeId: keepCause(err) }
    }
  }
}

const STORAGE_METHODS = ['store', 'load', 'delete', 'exists', 'list', 'stat', 'lock', 'unlock']

/** One function through which the engine calls a storage object. */
function storageDispatcher(storage) {
  for (const m of STORAGE_METHODS) {
    if (typeof storage[m] !== 'function') throw new TypeError(`options.storage has no ${m}() method (a storage needs ${STORAGE_METHODS.join(', ')})`)
  }
  const notFound = { ok: false, notFound: true }
  return async (request) => {
    const { op, key } = request
    try {
      switch (op) {
        case 'store':
          await storage.store(key, request.value)
          return { ok: true }
        case 'load': {
          const value = await storage.load(key)
          if (value == null) return notFound
          return { ok: true, data: Buffer.from(value) }
        }
        case 'delete':
          await storage.delete(key)
          return { ok: true }
        case 'exists':
          return { ok: true, flag: Boolean(await storage.exists(key)) }
        case 'list': {
          const keys = await storage.list(key, Boolean(request.recursive))
          if (keys == null) return notFound
          return { ok: true, keys: Array.from(keys, String) }
        }
        case 'stat': {
          const info = await storage.stat(key)
          if (info == null) return notFound
          return { ok: true, modified: +new Date(info.modified), size: Number(info.size), flag: Boolean(info.isTerminal) }
        }
        case 'lock':
          await storage.lock(key)
          return { ok: true }
        case 'unlock':
          await storage.unlock(key)
          return { ok: true }
        default:
          return { ok: false, error: `unknown storage operation ${op}` }
      }
    } catch (err) {
      if (err && (err.code === 'ENOENT' || err.code === CODES.not_found)) return notFound
      return { ok: false, error: String((err && err.message) || err), causeId: keepCause(err) }
    }
  }
}

function toCertificate(data) {
  if (data == null) return null
  return {
    certPem: data.certPem,
    keyPem: data.keyPem,
    names: data.names,
    notBefore: new Date(data.notBefore),
    notAfter: new Date(data.notAfter),
    ocspStaple: data.ocspStaple ?? null,
    ocspStatus: data.ocspStatus ?? null,
    managed: data.managed,
    hash: data.hash,
    serial: data.serial,
  }
}

function checkNames(names) {
  if (!Array.isArray(names) || names.some((n) => typeof n !== 'string')) throw new TypeError('names must be an array of strings')
  return names
}

function checkName(name) {
  if (typeof name !== 'string') throw new TypeError('name must be a string')
  return name
}

// ---------- the manager ----------

/** Obtains, renews and serves certificates. Emits `cert_obtaining`, `cert_obtained`,
 * `cert_failed`, `cached_managed_cert`, `cached_unmanaged_cert` and `cert_ocsp_revoked` with
 * CertMagic's payloads, and `stored_cert_corrupt` when a stored certificate is replaced because
 * it is unusable. */
class CertMagic extends EventEmitter {
  #engine
  #contexts = new Map()
  #ownsLogger = false

  constructor(options = {}) {
    super()
    const native = nativeOptions(options)
    const dispatch = options.storage !== undefined && typeof options.storage !== 'string' ? storageDispatcher(options.storage) : null
    const onEvent = (a, b) => {
      const [name, payload] = Array.isArray(a) ? a : [a, b]
      try {
        this.emit(name, JSON.parse(payload))
      } catch (err) {
        process.emitWarning(`certmagic: a '${name}' listener threw: ${err && err.message}`)
      }
    }
    const dns = options.dns && isDnsProviderObject(options.dns.provider) ? dnsDispatcher(options.dns.provider) : null
    const decision = options.onDemand && typeof options.onDemand.decision === 'function' ? decisionDispatcher(options.onDemand.decision) : null
    this.#engine = sync(() => new binding.Engine(native, dispatch, onEvent, dns, decision))
    if (options.logger) {
      const logger = options.logger
      const names = Object.keys(LOG_LEVELS)
      sync(() =>
        binding.setLogger((a, b) => {
          const [level, message] = Array.isArray(a) ? a : [a, b]
          logger(names[level - 1] || 'info', message)
        }, LOG_LEVELS[options.logLevel || 'info']),
      )
      this.#ownsLogger = true
    }
  }

  /** Obtains or loads certificates for `names` now and keeps them renewed. */
  manage(names) {
    return call(this.#engine.manage(checkNames(names)))
  }

  /** Manages `names` in the background, retrying failures; returns at once. */
  manageInBackground(names) {
    sync(() => this.#engine.manageBackground(checkNames(names)))
  }

  async obtain(name) {
    return toCertificate(await call(this.#engine.obtain(checkName(name))))
  }

  async renew(name) {
    return toCertificate(await call(this.#engine.renew(checkName(name))))
  }

  /** Revokes at the CA, deletes the files, stops managing. `reason`: a name or RFC 5280 code. */
  revoke(name, reason = 'unspecified') {
    if (typeof reason !== 'string' && typeof reason !== 'number') return Promise.reject(new TypeError(`reason must be a name (keyCompromise, …) or an RFC 5280 code, got ${typeof reason}`))
    return call(this.#engine.revoke(checkName(name), String(reason)))
  }

  /** The certificate a handshake for `name` gets, or null. A memory lookup. */
  getCertificate(name) {
    return toCertificate(this.#engine.getCertificate(checkName(name)))
  }

  /** Adds a certificate obtained elsewhere: served for its names, never renewed. */
  addCertificate(certPem, keyPem) {
    if (typeof certPem !== 'string' && !Buffer.isBuffer(certPem)) throw new TypeError('certPem must be a string or Buffer')
    if (typeof keyPem !== 'string' && !Buffer.isBuffer(keyPem)) throw new TypeError('keyPem must be a string or Buffer')
    return toCertificate(sync(() => this.#engine.addCertificate(String(certPem), String(keyPem))))
  }

  /** The body answering an HTTP-01 request for `host` and `path`, or null. */
  httpChallengeAnswer(host, path) {
    return this.#engine.httpChallengeAnswer(String(host || ''), String(path || ''))
  }

  /** The certificate for a TLS handshake: cached, from storage, or with on-demand TLS decided
   * on and obtained (rejects with the reason otherwise). */
  async certificateForHandshake(serverName, alpn = []) {
    return toCertificate(await call(this.#engine.certificateForHandshake(serverName == null ? null : String(serverName), Array.from(alpn, String))))
  }

  /** The SecureContext for a certificate as the engine returned it, built once per certificate. */
  #contextForData(data) {
    let context = this.#contexts.get(data.hash)
    if (context === undefined) {
      context = tls.createSecureContext({ cert: data.certPem, key: data.keyPem })
      if (this.#contexts.size >= 10000) this.#contexts.clear()
      this.#contexts.set(data.hash, context)
    }
    return context
  }

  /** The SecureContext for `name`, asking the engine (storage, on-demand) when it is not cached. */
  async #contextFor(name, protocols) {
    const cached = this.secureContext(name)
    if (cached != null) return cached
    const data = await call(this.#engine.certificateForHandshake(name, protocols))
    return this.#contextForData(data)
  }

  /** The SecureContext for `name`'s current certificate, built once per certificate. */
  secureContext(name) {
    const hash = this.#engine.certificateHash(name)
    if (hash == null) return null
    let context = this.#contexts.get(hash)
    if (context === undefined) {
      const cert = this.#engine.getCertificate(name)
      if (cert == null) return null
      context = tls.createSecureContext({ cert: cert.certPem, key: cert.keyPem })
      if (this.#contexts.size >= 10000) this.#contexts.clear()
      this.#contexts.set(hash, context)
    }
    return context
  }

  /** Options for `https.createServer`, `tls.createServer` and `http2.createSecureServer`: an
   * `SNICallback` handing out a cached SecureContext per certificate, and an `ALPNCallback` that
   * answers TLS-ALPN-01 validations. Node's SNI callback cannot see ALPN, so while this process
   * validates a name over TLS-ALPN-01 (seconds), handshakes for that name get the challenge
   * certificate; prefer HTTP-01 (`httpChallengeHandler`), or `createTlsServer`, which reads the
   * ClientHello first. */
  tlsOptions({ alpnProtocols = ['http/1.1'] } = {}) {
    const engine = this.#engine
    return {
      SNICallback: (servername, cb) => {
        try {
          const challenge = engine.tlsAlpnChallengeCertificateLocal(servername)
          if (challenge != null) return cb(null, tls.createSecureContext({ cert: challenge.certPem, key: challenge.keyPem }))
          const context = this.secureContext(servername)
          if (context != null) return cb(null, context)
          // Not cached: storage, or an on-demand certificate, without blocking the event loop.
          this.#contextFor(servername, []).then((c) => cb(null, c), (err) => cb(err))
        } catch (err) {
          cb(err)
        }
      },
      ALPNCallback: ({ protocols }) => {
        if (protocols.length === 1 && protocols[0] === 'acme-tls/1') return 'acme-tls/1'
        return alpnProtocols.find((p) => protocols.includes(p))
      },
    }
  }

  /** A listener for the `OCSPRequest` event of a `tls`, `https` or `http2` server built with
   * `tlsOptions()`: staples the certificate's OCSP response when a good one is known
   * (`server.on('OCSPRequest', magic.ocspRequestHandler())`; `https()` and `createTlsServer`
   * do this themselves). A missing staple never fails a handshake. */
  ocspRequestHandler() {
    const engine = this.#engine
    return (certificate, _issuer, callback) => {
      let staple
      try {
        staple = engine.ocspStapleFor(certificate) ?? undefined
      } catch {}
      callback(null, staple)
    }
  }

  /** A request handler for `http.createServer` (or Express/Connect middleware): answers
   * HTTP-01 challenges; other requests go to `next` if given, else are redirected to HTTPS. */
  httpChallengeHandler(next, { httpsPort = 443 } = {}) {
    return (req, res, nextArg) => {
      const url = req.url || '/'
      const host = req.headers.host || ''
      const fallThrough = () => {
        const handler = typeof next === 'function' ? next : typeof nextArg === 'function' ? nextArg : null
        if (handler) return handler === nextArg ? nextArg() : handler(req, res)
        const location = binding.httpsRedirectLocation(host, httpsPort, url)
        if (location == null) {
          res.writeHead(400, { 'content-type': 'text/plain' }).end('certmagic: no Host header\n')
          return
        }
        res.writeHead(308, { location }).end()
      }
      if (req.method !== 'GET' || !url.startsWith('/.well-known/acme-challenge/')) return fallThrough()
      this.#engine.httpChallengeAnswer(host, url.split('?')[0]).then((answer) => {
        if (answer == null) return fallThrough()
        res.writeHead(200, { 'content-type': 'text/plain' }).end(answer)
      }, (err) => {
        res.writeHead(500).end()
        process.emitWarning(`certmagic: answering a challenge failed: ${err && err.message}`)
      })
    }
  }

  /** A `net.Server` that reads each ClientHello before TLS starts (parsed by the engine): it
   * answers TLS-ALPN-01 exactly, and hands other connections, as `tls.TLSSocket`s, to
   * `handler(socket)`. */
  createTlsServer(handler, { alpnProtocols = ['http/1.1'] } = {}) {
    const engine = this.#engine
    const ocspListener = this.ocspRequestHandler()
    return net.createServer((socket) => {
      let buffered = Buffer.alloc(0)
      const fail = () => socket.destroy()
      const timer = setTimeout(fail, 10000) // for the ClientHello; an on-demand obtain has its own limit
      const onData = (chunk) => {
        buffered = Buffer.concat([buffered, chunk])
        let hello
        try {
          hello = binding.peekClientHello(buffered)
        } catch {
          clearTimeout(timer)
          return fail()
        }
        if (hello == null) return
        socket.removeListener('data', onData)
        socket.pause()
        socket.unshift(buffered)
        clearTimeout(timer)
        const name = hello.serverName || ''
        const challenge = hello.protocols.length === 1 && hello.protocols[0] === 'acme-tls/1'
        const pick = challenge
          ? engine.tlsAlpnChallengeCertificate(name, hello.protocols).then((c) => c && tls.createSecureContext({ cert: c.certPem, key: c.keyPem }))
          : this.#contextFor(name, hello.protocols)
        pick.then((secureContext) => {
          if (secureContext == null) return fail()
          // Node staples through its server's `OCSPRequest` event; a bare TLSSocket gets a
          // stand-in server holding the chosen context and the listener.
          const stapler = new EventEmitter()
          stapler._sharedCreds = secureContext
          stapler.on('OCSPRequest', ocspListener)
          const secure = new tls.TLSSocket(socket, { isServer: true, secureContext, server: stapler, ALPNProtocols: challenge ? ['acme-tls/1'] : alpnProtocols })
          secure.on('error', () => secure.destroy())
          if (challenge) {
            secure.once('secure', () => secure.end())
            return
          }
          secure.once('secure', () => handler(secure))
        }, fail)
      }
      socket.on('data', onData)
      socket.on('error', () => socket.destroy())
    })
  }

  /** Stops background work and releases locks. The process can then exit on its own. */
  async close() {
    if (this.#ownsLogger) {
      binding.setLogger(null, 3)
      this.#ownsLogger = false
    }
    await call(this.#engine.close())
  }

  /** When failed background work is tried again: waits and total, milliseconds. */
  get retrySchedule() {
    return { intervals: this.#engine.retryIntervals, maxTotal: this.#engine.retryMaxTotal }
  }

  /** Every issuer's key, in configured order. */
  get issuerKeys() {
    return this.#engine.issuerKeys
  }

  /** The local CA's root certificate (PEM), for clients to trust. */
  localRootPem() {
    return call(this.#engine.localRootPem())
  }

  get issuerKey() {
    return this.#engine.issuerKey
  }
}

function listen(server, port, host) {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.removeListener('error', reject)
      resolve()
    })
  })
}

/** The one-liner: serves `handler` over HTTPS for `names` (port 443), answering HTTP-01 and
 * redirecting on port 80. Resolves once the certificates are ready, with the servers and a
 * `close()`. Options: `httpPort`, `httpsPort`, `host`, `magic` (a CertMagic of your own), or
 * CertMagic options (default: Let's Encrypt, terms agreed). */
async function https(names, handler, options = {}) {
  const { httpPort = 80, httpsPort = 443, host, magic: given, ...rest } = options
  const magic = given || new CertMagic({ agreed: true, altHttpPort: httpPort, disableTlsAlpnChallenge: true, ...rest })
  const httpServer = http.createServer(magic.httpChallengeHandler(undefined, { httpsPort }))
  const httpsServer = nodeHttps.createServer(magic.tlsOptions(), handler)
  httpsServer.on('OCSPRequest', magic.ocspRequestHandler())
  await listen(httpServer, httpPort, host)
  await listen(httpsServer, httpsPort, host)
  try {
    await magic.manage(names)
  } catch (err) {
    httpServer.close()
    httpsServer.close()
    throw err
  }
  return {
    magic,
    httpServer,
    httpsServer,
    async close() {
      await Promise.all([new Promise((r) => httpServer.close(() => r())), new Promise((r) => httpsServer.close(() => r()))])
      if (!given) await magic.close()
    },
  }
}

/** Parses the ClientHello at the start of `data`: `{ serverName, protocols }`, or null while
 * more bytes are needed. */
function peekClientHello(data) {
  return sync(() => binding.peekClientHello(data))
}

module.exports = {
  CertMagic,
  https,
  peekClientHello,
  httpsRedirectLocation: binding.httpsRedirectLocation,
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
  LETS_ENCRYPT_PRODUCTION: binding.LETS_ENCRYPT_PRODUCTION,
  LETS_ENCRYPT_STAGING: binding.LETS_ENCRYPT_STAGING,
  ZEROSSL: binding.ZEROSSL,
  GOOGLE_TRUST_SERVICES: binding.GOOGLE_TRUST_SERVICES,
}
