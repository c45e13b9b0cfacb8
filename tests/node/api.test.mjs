// @ts-check
// The API without a CA: option checks, errors with codes, certificates added by PEM, the
// ClientHello parser, the HTTP handler, a clean exit after close().
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import tls from 'node:tls'
import http from 'node:http'
import { once } from 'node:events'

import { httpGet } from './helpers.mjs'
import { CertMagic, ConfigError, InvalidNameError, CertificateError, CertMagicError, NotFoundError, peekClientHello, httpsRedirectLocation, LETS_ENCRYPT_PRODUCTION } from 'certmagic'

function offline() {
  return new CertMagic({ ca: 'https://127.0.0.1:1/dir', storage: fs.mkdtempSync(path.join(os.tmpdir(), 'cm-')) })
}

function selfSigned(name = 'added.example.test') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cm-cert-'))
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30',
    '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`, '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem')], { stdio: 'ignore' })
  return { cert: fs.readFileSync(path.join(dir, 'c.pem'), 'utf8'), key: fs.readFileSync(path.join(dir, 'k.pem'), 'utf8') }
}

test('wrong types are TypeErrors naming the field', () => {
  for (const [options, field] of /** @type {const} */ ([[{ email: 5 }, 'email'], [{ agreed: 'yes' }, 'agreed'], [{ storage: 5 }, 'storage'], [{ challengePreference: 'http-01' }, 'challengePreference']])) {
    // @ts-expect-error deliberately wrong types
    assert.throws(() => new CertMagic(options), (/** @type {any} */ e) => e instanceof TypeError && e.message.includes(field))
  }
  assert.throws(() => new CertMagic({ storage: /** @type {any} */ ({ store() {} }) }), /no load\(\) method/)
})

test('every numeric option refuses bad numbers with a ConfigError or TypeError, never an abort', () => {
  const allow = { allow: ['a.example.test'] }
  /** @type {Array<[string, (v: any) => any]>} */
  const options = [
    ['renewalWindowRatio', (v) => ({ renewalWindowRatio: v })],
    ['renewCheckInterval', (v) => ({ renewCheckInterval: v })],
    ['altHttpPort', (v) => ({ altHttpPort: v })],
    ['altTlsAlpnPort', (v) => ({ altTlsAlpnPort: v })],
    ['orderTimeout', (v) => ({ orderTimeout: v })],
    ['rateLimit.events', (v) => ({ rateLimit: { events: v, window: 10 } })],
    ['rateLimit.window', (v) => ({ rateLimit: { events: 10, window: v } })],
    ['retryIntervals', (v) => ({ retryIntervals: [v] })],
    ['retryMaxTotal', (v) => ({ retryMaxTotal: v })],
    ['onDemand.rateLimit.events', (v) => ({ onDemand: { ...allow, rateLimit: { events: v, window: 10 } } })],
    ['onDemand.rateLimit.window', (v) => ({ onDemand: { ...allow, rateLimit: { events: 10, window: v } } })],
    ['onDemand.obtainTimeout', (v) => ({ onDemand: { ...allow, obtainTimeout: v } })],
    ['cacheCapacity', (v) => ({ cacheCapacity: v })],
    ['dns.ttl', (v) => ({ dns: { provider: 'exec', ttl: v } })],
    ['dns.propagationDelay', (v) => ({ dns: { provider: 'exec', propagationDelay: v } })],
    ['dns.propagationTimeout', (v) => ({ dns: { provider: 'exec', propagationTimeout: v } })],
    ['dns.pollInterval', (v) => ({ dns: { provider: 'exec', pollInterval: v } })],
  ]
  const bad = [NaN, Infinity, -Infinity, -1, 1e300, 2 ** 64, 'a string']
  const storage = fs.mkdtempSync(path.join(os.tmpdir(), 'cm-'))
  process.env.EXEC_PATH = '/bin/true'
  for (const [field, make] of options) {
    for (const value of bad) {
      if (field === 'dns.propagationTimeout' && value === -1) continue // negative: no checks
      assert.throws(
        () => new CertMagic({ storage, ...make(value) }),
        (/** @type {any} */ e) => {
          if (typeof value === 'string') return e instanceof TypeError
          assert.ok(e instanceof ConfigError, `${field} = ${value}: ${e}`)
          assert.equal(e.field, field, `${field} = ${value}: ${e.message}`)
          return true
        },
        `${field} = ${String(value)}`,
      )
    }
  }
})

test('every spelling of a failing on-demand name is one name; impossible names reach nothing', async () => {
  /** @type {string[]} */
  const asked = []
  const magic = new CertMagic({
    ca: 'https://127.0.0.1:1/dir', // down
    storage: fs.mkdtempSync(path.join(os.tmpdir(), 'cm-')),
    onDemand: { decision: (name) => { asked.push(name); return true } },
  })
  await assert.rejects(magic.certificateForHandshake('Spelled.DOWN.test.'))
  assert.deepEqual(asked, ['spelled.down.test'], 'the decision sees the canonical name')
  for (const variant of ['spelled.down.test', 'SPELLED.DOWN.TEST', 'spelled.down.test.', 'spel\u00ADled.down.test']) {
    await assert.rejects(magic.certificateForHandshake(variant), /next attempt/, variant)
  }
  for (const bad of ['..', '../x', 'spelled.down.test ', '*.down.test', 'a..down.test', '']) {
    await assert.rejects(magic.certificateForHandshake(bad), (/** @type {any} */ e) => e.code === 'ERR_CERTMAGIC_NOT_FOUND', JSON.stringify(bad))
  }
  assert.deepEqual(asked, ['spelled.down.test'], 'one decision for every spelling, none for impossible names')
  await magic.close()
})

test('a retry total alone keeps the default waits', async () => {
  const storage = fs.mkdtempSync(path.join(os.tmpdir(), 'cm-'))
  const totalOnly = new CertMagic({ storage, retryMaxTotal: 3_600_000 })
  assert.equal(totalOnly.retrySchedule.intervals[0], 60_000)
  assert.equal(totalOnly.retrySchedule.maxTotal, 3_600_000)
  const waitsOnly = new CertMagic({ storage, retryIntervals: [1000] })
  assert.deepEqual(waitsOnly.retrySchedule, { intervals: [1000], maxTotal: 30 * 24 * 3600 * 1000 })
  await totalOnly.close()
  await waitsOnly.close()
})

// A refused value for every option that has a value rule, and the option the error must name
// in this API's spelling (the engine checks; the addon only names the option).
/** @type {Array<[any, string]>} */
const REFUSALS = [
  [{ ca: 'http://insecure.example/dir' }, 'ca'],
  [{ email: 'not-an-email' }, 'email'],
  [{ trustedRootsPem: 'garbage' }, 'trustedRootsPem'],
  [{ keyType: 'dsa' }, 'keyType'],
  [{ renewalWindowRatio: 2 }, 'renewalWindowRatio'],
  [{ renewCheckInterval: 10 }, 'renewCheckInterval'],
  [{ mustStaple: true, disableOcspStapling: true }, 'mustStaple'],
  [{ ocspResponderOverrides: { 'ftp://ocsp.example': '' } }, 'ocspResponderOverrides'],
  [{ ocspResponderOverrides: { 'http://ocsp.example': 'not a url' } }, 'ocspResponderOverrides'],
  [{ ocspCheckInterval: 10 }, 'ocspCheckInterval'],
  [{ disableHttpChallenge: true, disableTlsAlpnChallenge: true }, 'disableTlsAlpnChallenge'],
  [{ altHttpPort: 70000 }, 'altHttpPort'],
  [{ altTlsAlpnPort: 0 }, 'altTlsAlpnPort'],
  [{ altHttpPort: 5002, altTlsAlpnPort: 5002 }, 'altTlsAlpnPort'],
  [{ listenHost: 'a b' }, 'listenHost'],
  [{ challengePreference: ['dns-01'] }, 'challengePreference'],
  [{ challengePreference: ['smtp-01'] }, 'challengePreference'],
  [{ eab: { keyId: '', hmacKey: 'a2V5' } }, 'eab.keyId'],
  [{ eab: { keyId: 'kid', hmacKey: '!!!' } }, 'eab.hmacKey'],
  [{ preferredChain: { rootCommonNames: [' '] } }, 'preferredChain.rootCommonNames'],
  [{ preferredChain: { issuerCommonNames: [''] } }, 'preferredChain.issuerCommonNames'],
  [{ profile: 'two words' }, 'profile'],
  [{ orderTimeout: 500 }, 'orderTimeout'],
  [{ rateLimit: { events: 1.5, window: 10 } }, 'rateLimit.events'],
  [{ rateLimit: { events: 1, window: 0 } }, 'rateLimit.window'],
  [{ retryIntervals: [1e12] }, 'retryIntervals'],
  [{ retryMaxTotal: 1e12 }, 'retryMaxTotal'],
  [{ onDemand: { ask: 'ftp://x' } }, 'onDemand.ask'],
  [{ onDemand: { obtainTimeout: 1000 } }, 'onDemand.obtainTimeout'],
  [{ onDemand: { rateLimit: { events: 1, window: 1000 } } }, 'onDemand.rateLimit.events'],
  [{ onDemand: { allow: ['a.example.test'], rateLimit: { events: 1, window: 0 } } }, 'onDemand.rateLimit.window'],
  [{ cacheCapacity: 0 }, 'cacheCapacity'],
  [{ issuers: [{ type: 'local', lifetime_secs: 1 }] }, 'issuers'],
  [{ issuerPolicy: /** @type {any} */ ('last') }, 'issuerPolicy'],
  [{ dns: { provider: 'nope' } }, 'dns.provider'],
  [{ dns: { provider: 'exec', ttl: 2 ** 31 + 10 } }, 'dns.ttl'],
  [{ dns: { provider: 'exec', propagationDelay: 1e9 } }, 'dns.propagationDelay'],
  [{ dns: { provider: 'exec', propagationTimeout: 1e9 } }, 'dns.propagationTimeout'],
  [{ dns: { provider: 'exec', pollInterval: 0 } }, 'dns.pollInterval'],
  [{ dns: { provider: 'exec', resolvers: ['ns1.example'] } }, 'dns.resolvers'],
  [{ dns: { provider: 'exec', overrideDomain: ' ' } }, 'dns.overrideDomain'],
  [{ callbackTimeouts: { storage: 1e9 } }, 'callbackTimeouts.storage'],
  [{ callbackTimeouts: { lock: -1 } }, 'callbackTimeouts.lock'],
  [{ callbackTimeouts: { dns: 1e9 } }, 'callbackTimeouts.dns'],
  [{ callbackTimeouts: { decision: NaN } }, 'callbackTimeouts.decision'],
  [{ callbackTimeouts: { events: 1e9 } }, 'callbackTimeouts.events'],
]
// Options without a refusal of their own: no rule beyond their type (a TypeError names them),
// a rule named by its partner (disableHttpChallenge), or not engine settings (logging).
const TYPE_ONLY = new Set(['disableHttpChallenge', 'agreed', 'disableDistributedSolvers', 'preferredChain.smallest', 'disableOcspStapling', 'reusePrivateKeys', 'storage', 'onDemand.decision', 'onDemand.allow', 'dns.followCname', 'logger', 'logLevel'])

test('refused values are RangeErrors (ConfigError) naming the option as written', () => {
  process.env.EXEC_PATH = '/bin/true'
  const storage = fs.mkdtempSync(path.join(os.tmpdir(), 'cm-'))
  for (const [options, field] of REFUSALS) {
    assert.throws(() => new CertMagic({ storage, ...options }), (/** @type {any} */ e) => {
      assert.ok(e instanceof ConfigError && e instanceof RangeError, `${field}: ${e}`)
      assert.equal(e.code, 'ERR_CERTMAGIC_CONFIG')
      assert.equal(e.field, field, e.message)
      assert.ok(e.message.includes(`\`${field}\``), e.message)
      return true
    }, field)
  }
})

test('every option is covered by a refusal or has no value rule', () => {
  // The options CertMagicOptions declares (index.d.ts), nested ones as `a.b`.
  const dts = fs.readFileSync(new URL('../../bindings/node/index.d.ts', import.meta.url), 'utf8')
  const block = (/** @type {string} */ name) => {
    const start = dts.indexOf(`export interface ${name} {`)
    assert.ok(start >= 0, name)
    return dts.slice(start, dts.indexOf('\n}', start))
  }
  const keys = (/** @type {string} */ name) => [...block(name).matchAll(/^ {2}(\w+)\??:/gm)].map((m) => m[1])
  const declared = new Set([
    ...keys('CertMagicOptions').filter((k) => !['onDemand', 'dns', 'eab', 'preferredChain', 'rateLimit', 'callbackTimeouts'].includes(k)),
    ...keys('OnDemandOptions').filter((k) => k !== 'rateLimit').map((k) => `onDemand.${k}`),
    ...keys('DnsOptions').map((k) => `dns.${k}`),
    'eab.keyId', 'eab.hmacKey', 'preferredChain.rootCommonNames', 'preferredChain.issuerCommonNames', 'preferredChain.smallest',
    'rateLimit.events', 'rateLimit.window', 'onDemand.rateLimit.events', 'onDemand.rateLimit.window',
    ...['storage', 'lock', 'dns', 'decision', 'events'].map((k) => `callbackTimeouts.${k}`),
  ])
  assert.ok(declared.size > 40, [...declared].join(' '))
  const refused = new Set(REFUSALS.map(([, field]) => field))
  assert.deepEqual([...declared].filter((k) => !refused.has(k) && !TYPE_ONLY.has(k)), [])
})

test('a storage call past its deadline is a timeout', async () => {
  const never = new Promise(() => {})
  const storage = { store: () => never, load: () => never, delete: () => never, exists: () => never, list: () => never, stat: () => never, lock: () => never, unlock: () => never }
  const magic = new CertMagic({ ca: 'https://127.0.0.1:1/dir', storage, callbackTimeouts: { storage: 100 } })
  await assert.rejects(magic.manage(['slow.example.test']), (/** @type {any} */ e) => e.code === 'ERR_CERTMAGIC_TIMEOUT' && /callback deadline/.test(e.message))
  await magic.close()
})

test('names, PEM and reasons are checked', async () => {
  const magic = offline()
  await assert.rejects(magic.manage(['bad name.example.test']), (/** @type {any} */ e) => e instanceof InvalidNameError && e.code === 'ERR_CERTMAGIC_INVALID_NAME' && e instanceof CertMagicError)
  await assert.rejects(magic.manage(['*.example.test']), /DNS-01/)
  // @ts-expect-error a string is not a list of names
  assert.throws(() => magic.manage('a.example.test'), TypeError)
  assert.throws(() => magic.addCertificate('junk', 'junk'), (/** @type {any} */ e) => e instanceof CertificateError && e.code === 'ERR_CERTMAGIC_CERTIFICATE')
  await assert.rejects(magic.revoke('a.example.test', /** @type {any} */ ('bored')), (/** @type {any} */ e) => e instanceof ConfigError && /keyCompromise/.test(e.message))
  await assert.rejects(magic.revoke('a.example.test', 2), ConfigError)
  await assert.rejects(magic.revoke('a.example.test', /** @type {any} */ (null)), TypeError)
  await assert.rejects(magic.revoke('nothing.example.test', 4), NotFoundError)
  await assert.rejects(magic.revoke('nothing.example.test', /** @type {any} */ ('key_compromise')), NotFoundError)
  await assert.rejects(magic.revoke('nothing.example.test', 'superseded'), NotFoundError)
  assert.equal(magic.getCertificate('nothing.example.test'), null)
  await magic.close()
  await assert.rejects(magic.manage(['after.example.test']), (/** @type {any} */ e) => e.code === 'ERR_CERTMAGIC_SHUT_DOWN')
})

test('added certificates: accessors, SecureContext, TLS options', async () => {
  const magic = offline()
  const { cert, key } = selfSigned()
  const added = magic.addCertificate(cert, key)
  assert.equal(added.managed, false)
  assert.deepEqual(added.names, ['added.example.test'])
  assert.ok(added.notBefore instanceof Date && added.notBefore < added.notAfter)
  assert.equal(added.ocspStaple, null)
  assert.match(added.keyPem, /PRIVATE KEY/)
  const again = magic.getCertificate('ADDED.example.test')
  assert.equal(again?.hash, added.hash)
  assert.equal(magic.secureContext('added.example.test'), magic.secureContext('added.example.test'), 'one context per certificate')

  const server = tls.createServer(magic.tlsOptions(), (s) => s.end('hi'))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = /** @type {import('node:net').AddressInfo} */ (server.address()).port
  const body = await new Promise((resolve, reject) => {
    const c = tls.connect({ port, host: '127.0.0.1', servername: 'added.example.test', ca: cert }, () => {})
    let d = ''
    c.setEncoding('utf8').on('data', (x) => (d += x)).on('end', () => resolve(d)).on('error', reject)
  })
  assert.equal(body, 'hi')
  server.close()
  await magic.close()
})

test('ClientHello parsing and redirects come from the engine', () => {
  assert.equal(peekClientHello(Buffer.from('GET / HTTP/1.1\r\n\r\n').subarray(0, 0)), null)
  assert.throws(() => peekClientHello(Buffer.from('GET / HTTP/1.1\r\n\r\n')), (/** @type {any} */ e) => e.code === 'ERR_CERTMAGIC_CORRUPT')
  assert.equal(httpsRedirectLocation('a.test:8080', 8443, '/x?y=1'), 'https://a.test:8443/x?y=1')
  assert.equal(httpsRedirectLocation('', 443, '/'), null)
  assert.ok(LETS_ENCRYPT_PRODUCTION.startsWith('https://acme-v02.api.letsencrypt.org'))
})

test('the HTTP handler redirects and falls through', async () => {
  const magic = offline()
  const server = http.createServer(magic.httpChallengeHandler(undefined, { httpsPort: 8443 }))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = /** @type {import('node:net').AddressInfo} */ (server.address()).port
  const res = await httpGet(port, 'h.example.test', '/page?x=1')
  assert.equal(res.status, 308)
  assert.match(res.head, /\r\nlocation: https:\/\/h\.example\.test:8443\/page\?x=1\r?$/im)
  server.close()
  await magic.close()
})

test('the process exits on its own after close()', () => {
  const script = `
    const { CertMagic } = require('certmagic')
    const m = new CertMagic({ ca: "https://127.0.0.1:1/dir",
      logger: () => {}, storage: { store(){}, load(){ return null }, delete(){}, exists(){ return false }, list(){ return null }, stat(){ return null }, lock(){}, unlock(){} } })
    m.on('cached_unmanaged_cert', () => {})
    m.close().then(() => console.log('closed'))
  `
  const started = Date.now()
  const out = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 })
  assert.equal(out.status, 0, out.stderr)
  assert.match(out.stdout, /closed/)
  assert.ok(Date.now() - started < 15000, 'no handle kept the process alive')
})

test('a storage URL is refused naming storage, never showing its password; opening connects to nothing', async () => {
  for (const bad of ['redis://:pw-secret@127.0.0.1:1/0?compression=lz4', 'mongodb://u:pw-secret@h/db']) {
    assert.throws(
      () => new CertMagic({ storage: bad }),
      (/** @type {any} */ e) => e instanceof ConfigError && e.field === 'storage' && !e.message.includes('pw-secret'),
    )
  }
  await new CertMagic({ storage: 'postgres://u:pw@127.0.0.1:1/db?data_table=fleet_data' }).close()
})
