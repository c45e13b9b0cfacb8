// @ts-check
// A plain `https` server with automatic certificates, HTTP-01 answered and HTTP redirected.
//   sudo node examples/node/https_server.mjs example.com you@example.com
import http from 'node:http'
import https from 'node:https'

import { CertMagic } from 'certmagic'

const [name, email] = process.argv.slice(2)
if (!name) throw new Error('usage: https_server.mjs <domain> [email]')

const magic = new CertMagic({ email, agreed: true, logger: (level, message) => console.log(`[${level}] ${message}`) })
magic.on('cert_obtained', (event) => console.log(`obtained ${event.identifier} (${event.certificate_path})`))

http.createServer(magic.httpChallengeHandler()).listen(80)
https.createServer(magic.tlsOptions(), (_req, res) => res.end(`Hello over HTTPS from certmagic-rs\n`)).listen(443)
await magic.manage([name])
console.log(`serving https://${name}/`)
