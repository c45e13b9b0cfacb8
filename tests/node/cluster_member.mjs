// @ts-check
// One Node instance of the fleet in tests/python/test_cluster.py: the one-liner `https()`
// (HTTP-01) over a shared storage.
//   node cluster_member.mjs <ca-directory-url> <ca-roots.pem> <http-port> <https-port> <storage> <name>...
// Prints `OBTAINED <name>` for each certificate this instance obtained and `READY` once every
// name has one; serves until stdin closes.
import fs from 'node:fs'

import { CertMagic, https } from 'certmagic'

const [ca, roots, httpPort, httpsPort, storage, ...names] = process.argv.slice(2)
if (!ca || !roots || !httpPort || !httpsPort || !storage || names.length === 0) {
  throw new Error('usage: cluster_member.mjs <ca-directory-url> <ca-roots.pem> <http-port> <https-port> <storage> <name>...')
}
const magic = new CertMagic({
  ca,
  trustedRootsPem: fs.readFileSync(roots, 'utf8'),
  agreed: true,
  altHttpPort: Number(httpPort),
  disableTlsAlpnChallenge: true,
  listenHost: '127.0.0.1',
  storage,
})
magic.on('cert_obtained', (event) => process.stdout.write(`OBTAINED ${event.identifier}\n`))
const serving = await https(names, (_req, res) => res.end('hello from certmagic-rs (node)\n'), {
  magic,
  httpPort: Number(httpPort),
  httpsPort: Number(httpsPort),
  host: '127.0.0.1',
})
process.stdout.write('READY\n')
process.stdin.resume()
process.stdin.on('end', async () => {
  await serving.close()
  await magic.close()
})
