#!/usr/bin/env node
// Builds the native addon from source (the package's install script): `cargo build` of the
// certmagic-node crate, then the library copied to where binding.js looks for it. Needs Rust.
// CERTMAGIC_NODE_PROFILE=dev builds the (faster to compile) debug profile; default: release.
'use strict'

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const here = path.resolve(__dirname, '..')
const profile = process.env.CERTMAGIC_NODE_PROFILE || 'release'

function platformArchAbi() {
  const { platform, arch } = process
  if (platform === 'linux') {
    const report = typeof process.report?.getReport === 'function' ? process.report.getReport() : null
    const glibc = report && report.header && report.header.glibcVersionRuntime
    return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`
  }
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

function libraryName() {
  if (process.platform === 'win32') return 'certmagic_node.dll'
  if (process.platform === 'darwin') return 'libcertmagic_node.dylib'
  return 'libcertmagic_node.so'
}

const metadata = JSON.parse(
  execFileSync('cargo', ['metadata', '--format-version', '1', '--no-deps'], { cwd: here, encoding: 'utf8' }),
)
execFileSync('cargo', ['build', '--profile', profile, '-p', 'certmagic-node'], { cwd: here, stdio: 'inherit' })
const profileDir = profile === 'dev' ? 'debug' : profile
const built = path.join(metadata.target_directory, profileDir, libraryName())
const target = path.join(here, `certmagic.${platformArchAbi()}.node`)
fs.copyFileSync(built, target + '.tmp')
fs.renameSync(target + '.tmp', target)
console.log(`certmagic: built ${path.relative(process.cwd(), target)}`)
