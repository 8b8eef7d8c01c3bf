// ssh2 (pure JS protocol) at its fastest: the optional native crypto binding for AES-GCM (the
// bench refuses to run without it), aes128-gcm, TCP_NODELAY, and its channels' 2 MiB
// highWaterMark/window (fixed inside ssh2; exec takes no option to raise it).
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { once } from 'node:events'
import net from 'node:net'
import { countBytes, writeAll } from '../lib/streams.mjs'

const require = createRequire(import.meta.url)

export const label = 'ssh2'

export function unavailableReason() {
  try {
    if (!require('ssh2/lib/protocol/crypto.js').bindingAvailable) {
      return 'ssh2 native crypto binding not built (see bench/README.md)'
    }
  } catch (e) {
    return `ssh2 is not installed: ${e.message}`
  }
  return null
}

export function connect(t, extra = {}) {
  const { Client } = require('ssh2')
  const expected = Buffer.from(t.hostKeyBase64, 'base64')
  return new Promise((resolve, reject) => {
    const c = new Client()
    c.once('ready', () => {
      c.off('error', reject)
      // a late error (connection reset) must fail the run, not crash it
      c.on('error', (e) => { c.lastError = e })
      resolve(c)
    })
    c.once('error', reject)
    c.connect({
      host: t.host,
      port: t.port,
      username: t.user,
      privateKey: readFileSync(t.keyPath),
      // ssh2 accepts any host key unless told otherwise; compare with the known_hosts entry
      hostVerifier: (key) => expected.equals(key),
      algorithms: { cipher: [t.cipher] },
      readyTimeout: 60_000,
      ...extra,
    })
    c.setNoDelay(true)
  })
}

/**
 * Runs `cmd`; `done` resolves with the exit code once the channel has closed. The listeners are
 * attached inside ssh2's callback: ssh2 parses every packet of a socket read synchronously, so
 * the exit status and close of a short command can be emitted before a promise continuation runs.
 */
function exec(c, cmd) {
  return new Promise((resolve, reject) => {
    c.exec(cmd, (err, stream) => {
      if (err) return reject(err)
      let code = null
      stream.once('exit', (x) => { code = x })
      const done = new Promise((res, rej) => {
        stream.once('close', () => res(code))
        stream.once('error', rej)
      })
      resolve({ stream, done })
    })
  })
}

export async function execTrue(c) {
  const { stream, done } = await exec(c, 'true')
  stream.resume()
  const code = await done
  if (code !== 0) throw new Error(`true exited with ${code}`)
}

export async function download(c, cmd) {
  const { stream, done } = await exec(c, cmd)
  stream.end()
  const [n, code] = await Promise.all([countBytes(stream), done])
  if (code !== 0) throw new Error(`${cmd} exited with ${code}`)
  return n
}

export async function upload(c, cmd, total, chunk) {
  const { stream, done } = await exec(c, cmd)
  stream.resume()
  await writeAll(stream, total, chunk)
  const code = await done
  if (code !== 0) throw new Error(`${cmd} exited with ${code}`)
}

export async function openEcho(c, cmd) {
  const { stream, done } = await exec(c, cmd)
  return {
    write: (buf) => stream.write(buf),
    onData: (fn) => stream.on('data', fn),
    end: async () => {
      stream.end()
      await done
    },
  }
}

export async function close(c) {
  const closed = once(c, 'close')
  c.end()
  await closed
  if (c.lastError) throw c.lastError
  if (c.outer) await close(c.outer)
}

// SFTP at its best: fastGet/fastPut with many requests in flight. ssh2 reads the server's
// limits@openssh.com, so requests up to the server's 255 KiB are allowed; the defaults below are
// the fastest settings measured here (bench/README.md, "ssh2 SFTP settings").
const env = process.env
const SFTP_OPTS = {
  concurrency: Number(env.BENCH_SSH2_SFTP_CONCURRENCY) || 32,
  chunkSize: (Number(env.BENCH_SSH2_SFTP_CHUNK_KB) || 255) * 1024,
}
/** The larger highWaterMark of the second createReadStream row: ssh2's default is 64 KiB, ferrossh's 4 MiB. */
export const STREAM_HWM = (Number(env.BENCH_SSH2_STREAM_HWM_KB) || 4096) * 1024

export function sftpNote(workload, variant) {
  const fn = workload === 'sftp-upload' ? 'fastPut' : 'fastGet'
  if (variant?.defaults) return `${fn} with its defaults (concurrency 64, chunkSize 32 KiB)`
  return `${fn} with concurrency ${SFTP_OPTS.concurrency}, chunkSize ${SFTP_OPTS.chunkSize / 1024} KiB`
}

export function sftp(c) {
  return new Promise((resolve, reject) => c.sftp((err, s) => (err ? reject(err) : resolve(s))))
}

export async function sftpEnd(s) {
  const closed = once(s, 'close')
  s.end()
  await closed
}

// the `defaults` variant is fastGet/fastPut as most code calls them (concurrency 64 × 32 KiB)
const sftpOpts = (variant) => (variant?.defaults ? {} : SFTP_OPTS)

export function sftpDownload(s, remote, local, variant) {
  return new Promise((resolve, reject) => s.fastGet(remote, local, sftpOpts(variant), (err) => (err ? reject(err) : resolve())))
}

export function sftpUpload(s, local, remote, variant) {
  return new Promise((resolve, reject) => s.fastPut(local, remote, sftpOpts(variant), (err) => (err ? reject(err) : resolve())))
}

/**
 * Extra rows: ssh2's default read stream and one with a larger highWaterMark; fastGet/fastPut
 * at their best (the row ratios and targets use) and with their defaults.
 */
export function variants(workload) {
  if (workload === 'sftp-download' || workload === 'sftp-upload') {
    return [
      { label: 'ssh2', variant: null },
      { label: 'ssh2 defaults', variant: { defaults: true } },
    ]
  }
  if (workload !== 'sftp-stream') return null
  return [
    { label: 'ssh2', variant: null },
    { label: `ssh2 hwm ${STREAM_HWM / 1024} KiB`, variant: { highWaterMark: STREAM_HWM } },
  ]
}

export const sftpReadStream = (s, path, variant) => s.createReadStream(path, variant ?? undefined)

/**
 * What users write for `ssh -L` with ssh2: a local net.Server whose connections are piped to
 * forwardOut channels.
 */
export async function forwardLocal(c, remoteHost, remotePort) {
  const server = net.createServer((sock) => {
    c.forwardOut(sock.remoteAddress, sock.remotePort, remoteHost, remotePort, (err, stream) => {
      if (err) return sock.destroy(err)
      sock.pipe(stream).pipe(sock)
    })
  })
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  return { port: server.address().port, close: () => new Promise((resolve) => server.close(() => resolve())) }
}

/** ssh2's way through a jump host: a forwardOut channel of the outer client as the inner one's `sock`. */
export async function connectJump(t) {
  const outer = await connect(t)
  const stream = await new Promise((resolve, reject) => {
    outer.forwardOut('127.0.0.1', 0, t.host, t.port, (err, s) => (err ? reject(err) : resolve(s)))
  })
  const inner = await connect(t, { sock: stream })
  inner.outer = outer
  return inner
}
