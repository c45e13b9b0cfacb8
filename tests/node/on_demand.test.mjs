// @ts-check
// On-demand TLS through the Node API against Pebble (validation on): tlsOptions()'s SNICallback
// awaits the certificate for a never-seen allowed name without blocking the event loop;
// refused names never reach the CA; twenty concurrent handshakes share one order; a throwing
// decision refuses with its reason.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import fs from 'node:fs'
import https from 'node:https'
import { test } from 'node:test'

import { CertMagic, ConfigError } from 'certmagic'

import { httpsGet, pebbleOptions, startPebble } from './helpers.mjs'

test('the first handshake obtains through the asynchronous SNICallback; refused names never reach the CA', async () => {
  const pebble = await startPebble()
  /** @type {string[]} */
  const asked = []
  /** @type {any[]} */
  const obtained = []
  const magic = new CertMagic(
    pebbleOptions(pebble, {
      onDemand: {
        decision: async (name) => {
          asked.push(name)
          return name.endsWith('.ok.test')
        },
      },
    }),
  )
  magic.on('cert_obtained', (e) => obtained.push(e))
  const server = https.createServer(magic.tlsOptions(), (_req, res) => res.end('on demand'))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = /** @type {import('node:net').AddressInfo} */ (server.address()).port

  let ticks = 0
  const ticker = setInterval(() => ticks++, 10)
  const start = Date.now()
  const got = await httpsGet(port, 'node-new.ok.test', pebble.rootPem)
  const elapsed = Date.now() - start
  clearInterval(ticker)
  assert.equal(got.status, 200)
  assert.equal(got.body, 'on demand')
  // A loop blocked by the handshake would not tick while it ran.
  // A blocked loop ticks at most once before and once after (a bound tied to the elapsed time
  // would be a bound on the machine's load).
  assert.ok(ticks >= 3, `the event loop kept running (${ticks} ticks in ${elapsed} ms)`)
  await assert.rejects(httpsGet(port, 'node-evil.example.test', pebble.rootPem))
  await assert.rejects(magic.certificateForHandshake('node-evil.example.test'), /refused/)
  assert.equal(pebble.orders(), 1)
  assert.ok(!fs.readFileSync(pebble.logFile, 'utf8').includes('node-evil'))
  await new Promise((r) => setTimeout(r, 100))
  assert.equal(obtained[0]?.on_demand, true)
  server.close()
  await magic.close()
  await pebble.stop()
})

test('concurrent handshakes share one order; a throwing decision refuses with its reason', async () => {
  const pebble = await startPebble()
  const magic = new CertMagic(
    pebbleOptions(pebble, {
      onDemand: {
        decision: (name) => {
          if (name.startsWith('broken.')) throw new Error('policy database down')
          return true
        },
      },
      cacheCapacity: 100,
    }),
  )
  const certs = await Promise.all(Array.from({ length: 20 }, () => magic.certificateForHandshake('node-crowd.ok.test', ['h2'])))
  assert.equal(new Set(certs.map((c) => c.hash)).size, 1)
  assert.deepEqual(certs[0].names, ['node-crowd.ok.test'])
  await assert.rejects(magic.certificateForHandshake('broken.ok.test'), /policy database down/)
  assert.equal(pebble.orders(), 1)
  await magic.close()
  await pebble.stop()

  assert.throws(() => new CertMagic({ onDemand: { rateLimit: { events: 1, window: 1000 } } }), (/** @type {any} */ e) => e instanceof ConfigError && e.field === 'onDemand.rateLimit.events')
  assert.throws(() => new CertMagic({ cacheCapacity: -1 }), ConfigError)
  assert.throws(() => new CertMagic({ onDemand: /** @type {any} */ ({ decision: 'yes' }) }), TypeError)
})
