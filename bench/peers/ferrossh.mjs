// ferrossh, the library under test, loaded from its built CommonJS entry exactly as a user's
// `require('ferrossh')` would load it.
import { createRequire } from 'node:module'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { countBytes, writeAll } from '../lib/streams.mjs'

export const label = 'ferrossh'
export const entry = fileURLToPath(new URL('../../dist/cjs/index.js', import.meta.url))

/** Why this peer cannot run, or null. */
export function unavailableReason() {
  if (!existsSync(entry)) return 'not built (dist/cjs/index.js is missing: run npm run build)'
  return null
}

/**
 * A warning when the native module next to the loader is a debug build (`npm run build:debug`):
 * its figures say nothing about the release. The release profile strips symbols, so a
 * `.debug_info` section marks a debug build.
 */
export function buildWarning() {
  const root = fileURLToPath(new URL('../../', import.meta.url))
  const debug = readdirSync(root)
    .filter((f) => f.startsWith('ferrossh.') && f.endsWith('.node'))
    .filter((f) => readFileSync(root + f).includes('.debug_info'))
  return debug.length ? `${debug.join(', ')} is a debug build; run npm run build for release figures` : null
}

let lib
const load = () => (lib ??= createRequire(import.meta.url)(entry))

export function connect(t) {
  return load().connect({
    host: t.host,
    port: t.port,
    username: t.user,
    privateKeyPath: t.keyPath,
    hostKey: { knownHosts: t.knownHostsFile },
    algorithms: { cipher: [t.cipher] },
  })
}

export async function execTrue(ssh) {
  const r = await ssh.exec('true')
  if (r.code !== 0) throw new Error(`true exited with ${r.code}`)
}

export async function download(ssh, cmd) {
  const p = ssh.spawn(cmd)
  p.stdin.end()
  const [n, exit] = await Promise.all([countBytes(p.stdout), p.exited])
  if (exit.code !== 0) throw new Error(`${cmd} exited with ${exit.code}`)
  return n
}

export async function upload(ssh, cmd, total, chunk) {
  const p = ssh.spawn(cmd)
  p.stdout.resume()
  await writeAll(p.stdin, total, chunk)
  const exit = await p.exited
  if (exit.code !== 0) throw new Error(`${cmd} exited with ${exit.code}`)
}

export async function openEcho(ssh, cmd) {
  const p = ssh.spawn(cmd)
  return {
    write: (buf) => p.stdin.write(buf),
    onData: (fn) => p.stdout.on('data', fn),
    end: async () => {
      p.stdin.end()
      await p.exited
    },
  }
}

export const close = (ssh) => ssh.close()
