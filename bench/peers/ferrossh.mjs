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
  // napi-rs's loader (index.js) loads NAPI_RS_NATIVE_LIBRARY_PATH instead when it is set: a way to
  // measure another build (say a release build in its own target dir) without replacing the file
  const override = process.env.NAPI_RS_NATIVE_LIBRARY_PATH
  if (override) {
    const debug = hasDebugInfo(override) ? ', a debug build' : ''
    return `ferrossh's native module is ${override} (NAPI_RS_NATIVE_LIBRARY_PATH)${debug}`
  }
  const root = fileURLToPath(new URL('../../', import.meta.url))
  const debug = readdirSync(root)
    .filter((f) => f.startsWith('ferrossh.') && f.endsWith('.node'))
    .filter((f) => hasDebugInfo(root + f))
  return debug.length ? `${debug.join(', ')} is a debug build; run npm run build for release figures` : null
}

/**
 * True when the module has a `.debug_info` section. For ELF the section names are read from the
 * section header table: the bare string also occurs in release builds (std's backtrace
 * symbolizer names the section it looks for). Other formats fall back to the string.
 */
function hasDebugInfo(file) {
  const b = readFileSync(file)
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 || b[5] !== 1) return b.includes('.debug_info')
  const shoff = Number(b.readBigUInt64LE(0x28))
  const shentsize = b.readUInt16LE(0x3a)
  const shnum = b.readUInt16LE(0x3c)
  const shstrndx = b.readUInt16LE(0x3e)
  const header = (i) => shoff + i * shentsize
  if (shstrndx >= shnum || header(shnum) > b.length) return b.includes('.debug_info')
  const strtab = Number(b.readBigUInt64LE(header(shstrndx) + 0x18))
  for (let i = 0; i < shnum; i++) {
    const at = strtab + b.readUInt32LE(header(i))
    if (b.toString('latin1', at, at + 12) === '.debug_info\0') return true
  }
  return false
}

let lib
const load = () => (lib ??= createRequire(import.meta.url)(entry))

const options = (t) => ({
  host: t.host,
  port: t.port,
  username: t.user,
  privateKeyPath: t.keyPath,
  hostKey: { knownHosts: t.knownHostsFile },
  algorithms: { cipher: [t.cipher] },
})

export function connect(t) {
  return load().connect(options(t))
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

// SFTP, forwarding and jumps: the calls a user would make, with their defaults.
export const sftp = (ssh) => ssh.sftp()
export const sftpEnd = (sftp) => sftp.close()
export const sftpDownload = (sftp, remote, local) => sftp.download(remote, local)
export const sftpUpload = (sftp, local, remote) => sftp.upload(local, remote)
export const sftpReadStream = (sftp, path) => sftp.createReadStream(path)

export async function forwardLocal(ssh, remoteHost, remotePort) {
  const fwd = await ssh.forwardLocal({ localPort: 0, remoteHost, remotePort })
  return { port: fwd.localPort, close: () => fwd.close() }
}

/** Both hops are the same sshd: `proxyJump` as a spec string, the hop inheriting key and host key policy. */
export function connectJump(t) {
  return load().connect({ ...options(t), proxyJump: `${t.user}@${t.host}:${t.port}` })
}
