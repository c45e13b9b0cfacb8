// @ts-check
// An Express app over automatic HTTPS with the one-liner.
//   npm install certmagic express
//   sudo node examples/node/express_app.mjs example.com you@example.com
import express from 'express'

import certmagic from 'certmagic'

const [name, email] = process.argv.slice(2)
if (!name) throw new Error('usage: express_app.mjs <domain> [email]')

const app = express()
app.get('/', (_req, res) => {
  res.send('Hello from Express over HTTPS, by certmagic-rs\n')
})

const serving = await certmagic.https([name], app, { email })
console.log(`serving https://${name}/ (Ctrl-C to stop)`)
process.once('SIGINT', () => void serving.close())
