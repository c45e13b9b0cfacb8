// @ts-check
// Obtaining certificates from a real ACME CA (Pebble, validation on) through the Node API and
// serving them; every served chain is verified against Pebble's root.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import http from 'node:http'
import https from 'node:https'
import { test } from 'node:test'

import certmagic, { CertMagic, StorageError } from 'certmagic'

import { MapStorage, httpGet, httpsGet, pebbleOptions, startPebble } from './helpers.mjs'

/** @param {import('node:net').Server} server @param {number} port */
async function listen(server, port) {
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
}

test('HTTP-01 through httpChallengeHandler, Map storage, events, HTTPS with tlsOptions()', async () => {
  const pebble = await startPebble()
  const storage = new MapStorage()
  /** @type {Array<[string, any]>} */
  const events = []
  /** @type {string[]} */
  const logs = []
  const magic = new CertMagic(pebbleOptions(pebble, { storage, disableTlsAlpnChallenge: true, logger: (level, message) => logs.push(`${level} ${message}`) }))
  for (const name of ['cert_obtaining', 'cached_managed_cert', 'cert_obtained']) magic.on(/** @type {any} */ (name), (data) => events.push([name, data]))
  const httpServer = http.createServer(magic.httpChallengeHandler())
  await listen(httpServer, pebble.httpPort)
  const name = 'node-http.example.test'
  await magic.manage([name])
  const cert = magic.getCertificate(name)
  assert.ok(cert && cert.managed && cert.names[0] === name)

  const httpsServer = https.createServer(magic.tlsOptions(), (_req, res) => res.end('hello from node'))
  await listen(httpsServer, 0)
  const port = /** @type {import('node:net').AddressInfo} */ (httpsServer.address()).port
  const got = await httpsGet(port, name, pebble.rootPem)
  assert.equal(got.status, 200)
  assert.equal(got.body, 'hello from node')
  assert.equal(got.serial, cert.serial.padStart(got.serial.length, '0'))

  await new Promise((r) => setTimeout(r, 200)) // events are delivered without the engine waiting
  assert.deepEqual(events.map((e) => e[0]), ['cert_obtaining', 'cached_managed_cert', 'cert_obtained'])
  const obtained = events[2][1]
  assert.equal(obtained.identifier, name)
  assert.ok(storage.data.has(obtained.certificate_path))
  assert.ok([...storage.data.keys()].some((k) => k.endsWith('/users/node-tests@certmagic-rs.test/node-tests.key')))
  assert.ok(logs.some((l) => l.startsWith('info ') && l.includes('certificate obtained')), logs.join('\n'))
  httpServer.close()
  httpsServer.close()
  await magic.close()
  await pebble.stop()
})

test('TLS-ALPN-01 through tlsOptions() (SNI + ALPN callbacks) and through createTlsServer()', async () => {
  const pebble = await startPebble()
  const magic = new CertMagic(pebbleOptions(pebble, { disableHttpChallenge: true }))
  const viaOptions = https.createServer(magic.tlsOptions(), (_req, res) => res.end('options'))
  await listen(viaOptions, pebble.tlsPort)
  await magic.manage(['node-alpn.example.test'])
  viaOptions.close()
  await once(viaOptions, 'close')

  const exact = magic.createTlsServer((socket) => {
    socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nexact'))
  })
  await listen(exact, pebble.tlsPort)
  await magic.manage(['node-exact.example.test'])
  const got = await httpsGet(pebble.tlsPort, 'node-exact.example.test', pebble.rootPem)
  assert.equal(got.body, 'exact')
  const fs = await import('node:fs')
  assert.ok(!fs.readFileSync(pebble.logFile, 'utf8').includes('validate w/ HTTP'), 'TLS-ALPN-01 only')
  exact.close()
  await magic.close()
  await pebble.stop()
})

test('a rejecting storage fails the operation with the rejection as cause', async () => {
  const pebble = await startPebble()
  const magic = new CertMagic(pebbleOptions(pebble, { storage: new MapStorage((key) => key.startsWith('certificates/')) }))
  await assert.rejects(magic.manage(['node-fail.example.test']), (/** @type {any} */ e) => {
    assert.ok(e instanceof StorageError, String(e))
    assert.equal(e.code, 'ERR_CERTMAGIC_STORAGE')
    assert.ok(e.cause instanceof Error && e.cause.message === 'disk full', String(e.cause))
    return true
  })
  await magic.close()
  await pebble.stop()
})

test('the one-liner serves HTTPS and redirects HTTP; 100 concurrent handshakes do not stall', async () => {
  const pebble = await startPebble()
  const name = 'node-oneliner.example.test'
  const serving = await certmagic.https([name], (_req, res) => res.end('hello over https'), {
    ...pebbleOptions(pebble, { disableTlsAlpnChallenge: true }),
    httpPort: pebble.httpPort,
    httpsPort: pebble.tlsPort,
    host: '127.0.0.1',
  })
  const got = await httpsGet(pebble.tlsPort, name, pebble.rootPem, '/x')
  assert.equal(got.status, 200)
  assert.equal(got.body, 'hello over https')
  const plain = await httpGet(pebble.httpPort, name, '/x?y=1')
  assert.equal(plain.status, 308)
  assert.match(plain.head.toLowerCase(), new RegExp(`location: https://${name}:${pebble.tlsPort}/x\\?y=1`))

  const started = Date.now()
  const results = await Promise.all(Array.from({ length: 100 }, () => httpsGet(pebble.tlsPort, name, pebble.rootPem)))
  assert.ok(results.every((r) => r.status === 200 && r.body === 'hello over https'))
  assert.ok(Date.now() - started < 30000, 'handshakes completed')
  await serving.close()
  await pebble.stop()
})

test('obtain, renew, revoke', async () => {
  const pebble = await startPebble()
  const magic = new CertMagic(pebbleOptions(pebble, { storage: new MapStorage() }))
  const first = await magic.obtain('node-life.example.test')
  const second = await magic.renew('node-life.example.test')
  assert.notEqual(first.serial, second.serial)
  await magic.revoke('node-life.example.test', 'superseded')
  assert.equal(magic.getCertificate('node-life.example.test'), null)
  await magic.close()
  await pebble.stop()
})
