// @ts-check
// Handshakes per second through `magic.tlsOptions()` (SNICallback with a cached SecureContext per
// certificate) versus a TLS server with the same certificate loaded statically. Prints figures
// (target: within 10 %); asserts nothing about time.  node tests/node/bench_tls_options.mjs
import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import tls from 'node:tls'

import { CertMagic } from 'certmagic'

const NAME = 'bench.example.test'
const HANDSHAKES = 400
const ROUNDS = 5

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cm-bench-'))
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30', '-subj', `/CN=${NAME}`,
  '-addext', `subjectAltName=DNS:${NAME}`, '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem')], { stdio: 'ignore' })
const cert = fs.readFileSync(path.join(dir, 'c.pem'), 'utf8')
const key = fs.readFileSync(path.join(dir, 'k.pem'), 'utf8')

const magic = new CertMagic({ ca: 'https://127.0.0.1:1/dir', storage: path.join(dir, 'storage') })
magic.addCertificate(cert, key)

/** @param {tls.TlsOptions} options */
async function rate(options) {
  const server = tls.createServer(options, (s) => s.end())
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = /** @type {import('node:net').AddressInfo} */ (server.address()).port
  const start = performance.now()
  for (let i = 0; i < HANDSHAKES; i++) {
    await new Promise((resolve, reject) => {
      const s = tls.connect({ port, host: '127.0.0.1', servername: NAME, ca: cert }, () => s.end())
      s.on('close', resolve).on('error', reject).resume()
    })
  }
  const perSecond = HANDSHAKES / ((performance.now() - start) / 1000)
  server.close()
  return perSecond
}

/** @type {number[]} */ const ours = []
/** @type {number[]} */ const plain = []
for (let i = 0; i < ROUNDS; i++) {
  ours.push(await rate(magic.tlsOptions()))
  plain.push(await rate({ cert, key }))
}
const best = (/** @type {number[]} */ xs) => Math.max(...xs)
console.log(`tlsOptions() (SNI via certmagic): ${best(ours).toFixed(0).padStart(7)} handshakes/s   (runs: ${ours.map((x) => x.toFixed(0)).join(', ')})`)
console.log(`static cert/key, same certificate: ${best(plain).toFixed(0).padStart(7)} handshakes/s   (runs: ${plain.map((x) => x.toFixed(0)).join(', ')})`)
console.log(`ratio: ${(best(ours) / best(plain)).toFixed(3)} (target: >= 0.90)`)
await magic.close()
