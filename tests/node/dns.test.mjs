// @ts-check
// DNS-01 through the Node API against a real BIND9 that Pebble resolves through: a built-in
// provider given as settings (RFC 2136 with TSIG) for a wildcard served by tlsOptions(), a
// provider written in JavaScript (async methods running nsupdate) whose ids come back on
// delete, and the errors.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import https from 'node:https'
import { test } from 'node:test'

import { CertMagic, ConfigError } from 'certmagic'

import { digTxt, httpsGet, pebbleOptions, startPebble } from './helpers.mjs'

/** @param {import('./helpers.mjs').Bind} bind */
function dnsTuning(bind) {
  return { resolvers: [`127.0.0.1:${bind.port}`], pollInterval: 200, propagationTimeout: 20000 }
}

test('wildcard through the built-in RFC 2136 provider, served for one label only', async () => {
  const pebble = await startPebble(['--bind'])
  const bind = /** @type {import('./helpers.mjs').Bind} */ (pebble.bind)
  const provider = { provider: 'rfc2136', server: `127.0.0.1:${bind.port}`, key_name: bind.tsig_key, key_secret: bind.tsig_secret }
  const magic = new CertMagic(pebbleOptions(pebble, { dns: { provider, ...dnsTuning(bind) } }))
  const cert = await magic.obtain('*.node.bind.test')
  assert.deepEqual(cert.names, ['*.node.bind.test'])
  const server = https.createServer(magic.tlsOptions(), (_req, res) => res.end('wild'))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = /** @type {import('node:net').AddressInfo} */ (server.address()).port
  for (const name of ['a.node.bind.test', 'b.node.bind.test']) {
    const got = await httpsGet(port, name, pebble.rootPem)
    assert.equal(got.body, 'wild')
  }
  assert.equal(magic.getCertificate('a.b.node.bind.test'), null)
  assert.deepEqual(digTxt(bind, '_acme-challenge.node.bind.test'), [])
  server.close()
  await magic.close()
  await pebble.stop()
})

test('a DNS provider written in JavaScript', async () => {
  const pebble = await startPebble(['--bind'])
  const bind = /** @type {import('./helpers.mjs').Bind} */ (pebble.bind)
  /** @param {string} zone @param {string} change */
  const nsupdate = (zone, change) =>
    new Promise((resolve, reject) => {
      const child = execFile('nsupdate', ['-y', `hmac-sha256:${bind.tsig_key}:${bind.tsig_secret}`], (err) => (err ? reject(err) : resolve(undefined)))
      child.stdin?.end(`server 127.0.0.1 ${bind.port}\nzone ${zone}\n${change}\nsend\n`)
    })
  /** @type {import('certmagic').DnsRecord[]} */
  const appended = []
  /** @type {import('certmagic').DnsRecord[]} */
  const deleted = []
  /** @type {import('certmagic').DnsProvider} */
  const provider = {
    async appendRecords(zone, records) {
      for (const r of records) await nsupdate(zone, `update add ${r.name}.${zone} ${r.ttl} TXT "${r.value}"`)
      appended.push(...records)
      return records.map((r, i) => ({ ...r, id: `js-${i}` }))
    },
    async deleteRecords(zone, records) {
      for (const r of records) await nsupdate(zone, `update delete ${r.name}.${zone} TXT "${r.value}"`)
      deleted.push(...records)
    },
  }
  const magic = new CertMagic(pebbleOptions(pebble, { dns: { provider, ...dnsTuning(bind) } }))
  const cert = await magic.obtain('jsprov.bind.test')
  assert.deepEqual(cert.names, ['jsprov.bind.test'])
  assert.deepEqual(appended.map((r) => [r.name, r.type, r.value.length]), [['_acme-challenge.jsprov', 'TXT', 43]])
  assert.deepEqual(deleted.map((r) => r.id), ['js-0'], 'the provider id comes back')
  assert.deepEqual(digTxt(bind, '_acme-challenge.jsprov.bind.test'), [])
  await magic.close()
  await pebble.stop()
})

test('a rejecting provider is the cause; bad DNS settings name the field', async () => {
  const pebble = await startPebble(['--bind'])
  const bind = /** @type {import('./helpers.mjs').Bind} */ (pebble.bind)
  const boom = new Error('zone is read-only')
  const provider = {
    async appendRecords() {
      throw boom
    },
    async deleteRecords() {},
  }
  const magic = new CertMagic(pebbleOptions(pebble, { dns: { provider, ...dnsTuning(bind) } }))
  await assert.rejects(magic.obtain('broken.bind.test'), (/** @type {any} */ err) => {
    assert.match(err.message, /appendRecords/)
    let cause = err.cause
    while (cause && cause !== boom) cause = cause.cause
    assert.equal(cause, boom)
    return true
  })
  await magic.close()
  await pebble.stop()

  assert.throws(() => new CertMagic({ dns: { provider: 'nope' } }), (/** @type {any} */ err) => err instanceof ConfigError && /unknown DNS provider `nope`/.test(err.message))
  assert.throws(() => new CertMagic({ dns: { provider: { provider: 'rfc2136', server: '127.0.0.1' }, resolvers: ['ns1.example'] } }), (/** @type {any} */ err) => err instanceof ConfigError && /dns\.resolvers/.test(err.message))
  assert.throws(() => new CertMagic({ dns: /** @type {any} */ ({ provider: 42 }) }), TypeError)
  assert.throws(() => new CertMagic({ dns: /** @type {any} */ ({ provider: 'rfc2136', ttl: 'x' }) }), TypeError)
  const plain = new CertMagic({})
  await assert.rejects(plain.obtain('*.example.com'), /DNS-01/)
  await plain.close()
})
