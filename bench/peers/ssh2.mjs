// ssh2 (pure JS protocol) at its fastest: the optional native crypto binding for AES-GCM (the
// bench refuses to run without it), aes128-gcm, TCP_NODELAY, and its channels' 2 MiB
// highWaterMark/window (fixed inside ssh2; exec takes no option to raise it).
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { once } from 'node:events'
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

export function connect(t) {
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
}
