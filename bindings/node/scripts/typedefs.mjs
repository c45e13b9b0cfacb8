#!/usr/bin/env node
// Regenerates binding.d.ts from the Rust definitions (napi-derive's type definitions, assembled
// by @napi-rs/cli) using the workspace's ordinary host build, so no second build of the
// dependency tree is needed. `--check` fails if the committed file differs.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { generateTypeDef } from '@napi-rs/cli'

const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const check = process.argv.includes('--check')
const typeDefDir = fs.mkdtempSync(path.join(os.tmpdir(), 'certmagic-typedefs-'))
const profile = process.env.CERTMAGIC_NODE_PROFILE || 'dev'

// The macros write the definitions while they expand, so the crate must compile again.
const lib = path.join(here, 'src/lib.rs')
const now = new Date()
fs.utimesSync(lib, now, now)
execFileSync('cargo', ['build', '--profile', profile, '-p', 'certmagic-node'], {
  cwd: here,
  stdio: 'inherit',
  env: { ...process.env, NAPI_TYPE_DEF_TMP_FOLDER: typeDefDir },
})
const { dts, exports } = await generateTypeDef({ typeDefDir, cwd: here, declareBindingTarget: true })
fs.rmSync(typeDefDir, { recursive: true, force: true })

// binding.js (the loader the CLI generated, committed) must re-export every native export.
const loader = fs.readFileSync(path.join(here, 'binding.js'), 'utf8')
const missing = exports.filter((name) => !loader.includes(`module.exports.${name} = nativeBinding.${name}`))
if (missing.length) {
  console.error(`binding.js does not export ${missing.join(', ')}: regenerate it with \`npx napi build --platform --js binding.js --dts binding.d.ts\``)
  process.exit(1)
}

const file = path.join(here, 'binding.d.ts')
if (check) {
  const committed = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : ''
  if (committed !== dts) {
    console.error('bindings/node/binding.d.ts is not what the Rust definitions generate: run `make dts` and commit it')
    process.exit(1)
  }
  console.log('binding.d.ts is current')
} else {
  fs.writeFileSync(file, dts)
  console.log('wrote binding.d.ts')
}
