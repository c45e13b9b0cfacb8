// @ts-check
// OCSP stapling in Node against a real responder (`openssl ocsp` signing with Pebble's
// intermediate, named in Pebble's certificates): the engine fetches and checks the response,
// and `openssl s_client -status` sees it stapled by an `https` server built with `tlsOptions()`
// plus `ocspRequestHandler()`, and by `createTlsServer()`.
import assert from 'node:assert/strict'
import { once } from 'node:events'
import fs from 'node:fs'
import https from 'node:https'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'

import { CertMagic } from 'certmagic'

import { pebbleOptions, sClientStatus, startPebble } from './helpers.mjs'

/** @param {() => boolean} done @param {string} what */
async function waitFor(done, what, limitMs = 30000) {
  const deadline = Date.now() + limitMs
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

test('a good OCSP response is stapled by tlsOptions() servers and createTlsServer()', async () => {
  const pebble = await startPebble(['--ocsp'])
  assert.ok(pebble.ocspUrl)
  const magic = new CertMagic(pebbleOptions(pebble, { ocspCheckInterval: 200 }))
  /** @type {any[]} */
  const revoked = []
  magic.on('cert_ocsp_revoked', (e) => revoked.push(e))
  const name = 'node-ocsp.example.test'
  await magic.manage([name])
  const fresh = magic.getCertificate(name)
  assert.ok(fresh)
  // The responder does not know the new certificate yet.
  assert.equal(fresh.ocspStatus, 'unknown')
  assert.equal(fresh.ocspStaple, null)

  await pebble.setOcsp(fresh.serial, 'good')
  await waitFor(() => magic.getCertificate(name)?.ocspStatus === 'good', 'a good staple')
  const cert = magic.getCertificate(name)
  assert.ok(cert && cert.ocspStaple && cert.ocspStaple.length > 0)
  assert.equal(cert.hash, fresh.hash)

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'certmagic-node-ocsp-'))
  const root = path.join(dir, 'root.pem')
  fs.writeFileSync(root, pebble.rootPem)

  const viaOptions = https.createServer(magic.tlsOptions(), (_req, res) => res.end('ok'))
  viaOptions.on('OCSPRequest', magic.ocspRequestHandler())
  viaOptions.listen(0, '127.0.0.1')
  await once(viaOptions, 'listening')
  const viaServer = magic.createTlsServer((socket) => socket.end())
  viaServer.listen(0, '127.0.0.1')
  await once(viaServer, 'listening')
  for (const server of [viaOptions, viaServer]) {
    const port = /** @type {import('node:net').AddressInfo} */ (server.address()).port
    const seen = await sClientStatus(port, name, root)
    assert.match(seen, /Verify return code: 0 \(ok\)/)
    assert.match(seen, /OCSP Response Status: successful/)
    assert.match(seen, /Cert Status: good/)
  }
  viaOptions.close()
  viaServer.close()

  // Revoked: the event, and a new certificate.
  await pebble.setOcsp(cert.serial, 'revoked keyCompromise')
  await waitFor(() => magic.getCertificate(name)?.serial !== cert.serial, 'a replacement certificate', 60000)
  await waitFor(() => revoked.length > 0, 'the event')
  assert.equal(revoked.length, 1)
  assert.deepEqual(revoked[0].subjects, [name])
  assert.equal(revoked[0].reason, 1)
  assert.notEqual(magic.getCertificate(name)?.keyPem, cert.keyPem)
  await magic.close()
  await pebble.stop()
})
