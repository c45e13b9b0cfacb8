// @ts-check
// Shared by the Node tests: a real Pebble through the shared launcher, and TLS requests that
// verify the served chain against Pebble's root.
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'
import tls from 'node:tls'
import { fileURLToPath } from 'node:url'

const workspace = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

/**
 * BIND9 authoritative for `zone` (TSIG-signed updates allowed); Pebble resolves through it.
 * @typedef {{ port: number, zone: string, tsig_key: string, tsig_secret: string }} Bind
 */

/**
 * @typedef {{ directoryUrl: string, managementUrl: string, httpPort: number, tlsPort: number,
 *   apiCaPem: string, rootPem: string, logFile: string, orders: () => number, stop: () => Promise<void>,
 *   bind?: Bind, ocspUrl?: string, setOcsp: (serial: string, status: string) => Promise<void> }} Pebble
 */

/** @param {string[]} [args] pebble-env arguments (`--bind` for BIND9 as Pebble's DNS, `--ocsp`
 * for an OCSP responder named in its certificates) @returns {Promise<Pebble>} */
export async function startPebble(args = []) {
  const exe = process.env.CERTMAGIC_PEBBLE_ENV || path.join(workspace, 'target/debug/pebble-env')
  const child = spawn(exe, args, { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = readline.createInterface({ input: /** @type {import('node:stream').Readable} */ (child.stdout) })
  const [first] = /** @type {[string]} */ (await once(lines, 'line'))
  const info = JSON.parse(first)
  return {
    directoryUrl: info.directory_url,
    managementUrl: info.management_url,
    httpPort: info.http_port,
    tlsPort: info.tls_port,
    apiCaPem: info.api_ca_pem,
    rootPem: info.root_pem,
    logFile: info.log,
    bind: info.bind,
    ocspUrl: info.ocsp?.url,
    // `good`, or `revoked <reason>`: answered once the responder serves it.
    setOcsp: async (serial, status) => {
      child.stdin?.write(`ocsp ${serial} ${status}\n`)
      const [answer] = /** @type {[string]} */ (await once(lines, 'line'))
      if (answer !== 'ok') throw new Error(`pebble-env: ${answer}`)
    },
    orders: () => (fs.readFileSync(info.log, 'utf8').match(/Added order/g) || []).length,
    stop: async () => {
      child.stdin?.end()
      if (child.exitCode === null) await once(child, 'exit')
    },
  }
}

/**
 * The TXT values at `name` on BIND (`dig`).
 * @param {Bind} bind @param {string} name @returns {string[]}
 */
export function digTxt(bind, name) {
  const out = execFileSync('dig', ['+short', '+norecurse', '-p', String(bind.port), '@127.0.0.1', 'TXT', name], { encoding: 'utf8' })
  return out.split('\n').map((l) => l.trim().replace(/^"|"$/g, '')).filter(Boolean)
}

/**
 * CertMagic options pointed at `pebble`.
 * @param {Pebble} pebble
 * @param {import('certmagic').CertMagicOptions} [extra]
 * @returns {import('certmagic').CertMagicOptions}
 */
export function pebbleOptions(pebble, extra = {}) {
  return {
    ca: pebble.directoryUrl,
    trustedRootsPem: pebble.apiCaPem,
    email: 'node-tests@certmagic-rs.test',
    agreed: true,
    altHttpPort: pebble.httpPort,
    altTlsAlpnPort: pebble.tlsPort,
    listenHost: '127.0.0.1',
    rateLimit: { events: 0, window: 0 },
    storage: fs.mkdtempSync(path.join(os.tmpdir(), 'certmagic-node-')),
    ...extra,
  }
}

/**
 * GET over TLS on 127.0.0.1:`port` for `name`, verifying the chain against `ca`.
 * @param {number} port @param {string} name @param {string} ca @param {string} [urlPath]
 * @returns {Promise<{ status: number, body: string, serial: string }>}
 */
export function httpsGet(port, name, ca, urlPath = '/') {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: name, ca, ALPNProtocols: ['http/1.1'] }, () => {
      socket.write(`GET ${urlPath} HTTP/1.1\r\nHost: ${name}\r\nConnection: close\r\n\r\n`)
    })
    let data = ''
    socket.setEncoding('utf8')
    socket.on('data', (d) => (data += d))
    socket.on('error', reject)
    socket.on('end', () => {
      const peer = socket.getPeerCertificate()
      if (!peer || !data) return reject(new Error(`no TLS answer for ${name}`))
      const serial = peer.serialNumber || ''
      const [head, ...rest] = data.split('\r\n\r\n')
      resolve({ status: Number(head.split(' ')[1]), body: rest.join('\r\n\r\n'), serial: serial.toLowerCase() })
    })
  })
}

/**
 * What `openssl s_client -status` prints for a handshake with 127.0.0.1:`port` as `name`,
 * verifying against `caFile`.
 * @param {number} port @param {string} name @param {string} caFile @returns {Promise<string>}
 */
export function sClientStatus(port, name, caFile) {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', name, '-status', '-verify_return_error', '-CAfile', caFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d))
    child.stderr.setEncoding('utf8').on('data', (d) => (out += d))
    child.on('error', reject)
    child.on('exit', () => resolve(out))
  })
}

/**
 * A plain HTTP GET; returns the status and headers.
 * @param {number} port @param {string} host @param {string} urlPath
 * @returns {Promise<{ status: number, head: string }>}
 */
export function httpGet(port, host, urlPath) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(`GET ${urlPath} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`))
    let data = ''
    socket.setEncoding('utf8')
    socket.on('data', (d) => (data += d))
    socket.on('error', reject)
    socket.on('end', () => resolve({ status: Number(data.split(' ')[1]), head: data.split('\r\n\r\n')[0] }))
  })
}

/** A storage backed by a Map; `failOn(key)` makes `store` reject. */
export class MapStorage {
  /** @param {(key: string) => boolean} [failOn] */
  constructor(failOn) {
    /** @type {Map<string, Buffer>} */
    this.data = new Map()
    /** @type {Set<string>} */
    this.locks = new Set()
    this.failOn = failOn
  }
  /** @param {string} key @param {Buffer} value */
  async store(key, value) {
    if (this.failOn && this.failOn(key)) throw new Error('disk full')
    this.data.set(key, Buffer.from(value))
  }
  /** @param {string} key */
  async load(key) {
    return this.data.get(key) ?? null
  }
  /** @param {string} key */
  async delete(key) {
    for (const k of [...this.data.keys()]) if (k === key || k.startsWith(key + '/')) this.data.delete(k)
  }
  /** @param {string} key */
  async exists(key) {
    return [...this.data.keys()].some((k) => k === key || k.startsWith(key + '/'))
  }
  /** @param {string} prefix @param {boolean} recursive */
  async list(prefix, recursive) {
    const out = new Set()
    for (const k of this.data.keys()) {
      if (!k.startsWith(prefix + '/')) continue
      const rest = k.slice(prefix.length + 1)
      out.add(prefix + '/' + (recursive ? rest : rest.split('/')[0]))
    }
    return out.size ? [...out].sort() : null
  }
  /** @param {string} key */
  async stat(key) {
    const v = this.data.get(key)
    if (v) return { modified: Date.now(), size: v.length, isTerminal: true }
    return (await this.exists(key)) ? { modified: Date.now(), size: 0, isTerminal: false } : null
  }
  /** @param {string} name */
  async lock(name) {
    while (this.locks.has(name)) await new Promise((r) => setTimeout(r, 10))
    this.locks.add(name)
  }
  /** @param {string} name */
  async unlock(name) {
    this.locks.delete(name)
  }
}
