// The clean-room program for Node (make test-dist): with `certmagic` installed from its npm
// tarballs (no install script run), obtains a certificate through HTTP-01 and serves HTTPS with
// the one-liner until stdin closes. Prints READY once serving.
//
// Usage: node serve.mjs <ca-directory-url> <ca-roots.pem> <http-port> <https-port> <storage-dir> <name>
import fs from 'node:fs'

import { https } from 'certmagic'

const [ca, roots, httpPort, httpsPort, storage, name] = process.argv.slice(2)
const serving = await https([name], (_req, res) => res.end('hello from certmagic (node)'), {
  ca,
  trustedRootsPem: fs.readFileSync(roots, 'utf8'),
  email: 'dist@certmagic-rs.test',
  agreed: true,
  storage,
  altHttpPort: Number(httpPort),
  listenHost: '127.0.0.1',
  disableTlsAlpnChallenge: true,
  httpPort: Number(httpPort),
  httpsPort: Number(httpsPort),
  host: '127.0.0.1',
})
console.log('READY')
process.stdin.resume()
process.stdin.on('end', () => {
  serving.close().then(() => process.exit(0))
})
