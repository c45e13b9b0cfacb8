// @ts-check
// Issuers from Node: the local CA serves localhost (verified by `curl --cacert` with the exported
// root), a CA that is down is followed by the next one with events saying which, and bad issuer
// options are refused naming the option.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs'
import https from 'node:https'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'

import { CertMagic, ConfigError, NotFoundError } from 'certmagic'

import { MapStorage, httpsGet, pebbleOptions, startPebble } from './helpers.mjs'

/** A port nothing listens on. */
async function freePort() {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = /** @type {import('node:net').AddressInfo} */ (server.address()).port
  server.close()
  await once(server, 'close')
  return port
}

test('the local CA serves localhost; curl verifies it with the exported root', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'certmagic-local-'))
  const magic = new CertMagic({ issuers: ['local'], storage: path.join(dir, 'storage') })
  assert.deepEqual(magic.issuerKeys, ['local'])
  const rootFile = path.join(dir, 'root.pem')
  fs.writeFileSync(rootFile, await magic.localRootPem())
  await magic.manage(['localhost'])
  const server = https.createServer(magic.tlsOptions(), (_req, res) => res.end('from local'))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = /** @type {import('node:net').AddressInfo} */ (server.address()).port
  const { stdout } = await promisify(execFile)('curl', ['--silent', '--show-error', '--fail', '--cacert', rootFile, '--resolve', `localhost:${port}:127.0.0.1`, `https://localhost:${port}/`])
  assert.equal(stdout, 'from local')
  const got = await httpsGet(port, 'localhost', fs.readFileSync(rootFile, 'utf8'))
  assert.equal(got.body, 'from local')
  assert.equal(fs.readFileSync(path.join(dir, 'storage/pki/authorities/local/root.crt'), 'utf8'), fs.readFileSync(rootFile, 'utf8'))
  server.close()
  await magic.close()
  fs.rmSync(dir, { recursive: true, force: true })
})

test('a CA that is down is followed by the next; events name both', async () => {
  const pebble = await startPebble()
  const down = `https://127.0.0.1:${await freePort()}/dir`
  const magic = new CertMagic(pebbleOptions(pebble, { storage: new MapStorage(), issuers: [{ type: 'acme', ca: down }, 'acme'] }))
  /** @type {any[]} */
  const obtained = []
  magic.on('cert_obtained', (data) => obtained.push(data))
  const [first, second] = magic.issuerKeys
  const cert = await magic.obtain('node-fallback.example.test')
  assert.deepEqual(cert.names, ['node-fallback.example.test'])
  await new Promise((r) => setTimeout(r, 200)) // events are delivered without the engine waiting
  assert.equal(obtained[0].issuer, second)
  assert.deepEqual(obtained[0].failed_issuers.map((/** @type {any} */ f) => f.issuer), [first])
  await magic.close()
  await pebble.stop()
})

test('bad issuer options are refused naming the option', async () => {
  assert.throws(() => new CertMagic({ issuers: /** @type {any} */ (['zerossl-ish']) }), (e) => e instanceof ConfigError && /** @type {any} */ (e).field === 'issuers')
  assert.throws(() => new CertMagic({ issuers: [{ type: 'local', lifetime_secs: 1 }] }), (e) => e instanceof ConfigError && /issuer 1 \(local\)/.test(String(e)))
  assert.throws(() => new CertMagic({ issuers: /** @type {any} */ ([42]) }), TypeError)
  assert.throws(() => new CertMagic({ issuerPolicy: /** @type {any} */ ('last') }), (e) => e instanceof ConfigError && /** @type {any} */ (e).field === 'issuerPolicy')
  const magic = new CertMagic({ storage: new MapStorage() })
  await assert.rejects(magic.localRootPem(), NotFoundError)
  await magic.close()
})
