// The npm `russh` package (Tabby's napi binding of an older russh): rxjs observables for
// channel data, one JS callback per SSH data packet, no exit status exposed (commands are
// waited for by their channel close).
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'

const require = createRequire(import.meta.url)

export const label = 'russh (npm)'

export function unavailableReason() {
  try {
    require('russh')
  } catch (e) {
    return `the russh package does not load here: ${e.message.split('\n')[0]}`
  }
  return null
}

export async function connect(t) {
  const { SSHClient, SshTransport, KeyPair, AuthenticatedSSHClient } = require('russh')
  const key = await KeyPair.parse(readFileSync(t.keyPath, 'utf8'))
  const transport = await SshTransport.newSocket(`${t.host}:${t.port}`)
  const client = await SSHClient.connect(
    transport,
    async (serverKey) => serverKey.base64() === t.hostKeyBase64,
    { preferred: { ciphers: [t.cipher] } },
  )
  const auth = await client.authenticateWithKeyPair(t.user, key, null)
  if (!(auth instanceof AuthenticatedSSHClient)) {
    throw new Error(`public key authentication failed (server allows ${auth.remainingMethods})`)
  }
  return auth
}

/** An exec channel; `closed` resolves when the server closes it (the only end signal exposed). */
async function exec(client, cmd, onData) {
  const ch = await client.activateChannel(await client.openSessionChannel())
  const subs = []
  if (onData) subs.push(ch.data$.subscribe(onData))
  const closed = new Promise((resolve, reject) => {
    subs.push(ch.closed$.subscribe({ next: resolve, complete: resolve, error: reject }))
  }).finally(() => subs.forEach((s) => s.unsubscribe()))
  await ch.requestExec(cmd)
  return { ch, closed }
}

export async function execTrue(client) {
  const { closed } = await exec(client, 'true')
  await closed
}

export async function download(client, cmd) {
  let n = 0
  const { closed } = await exec(client, cmd, (d) => { n += d.length })
  await closed
  return n
}

export async function upload(client, cmd, total, chunk) {
  const { ch, closed } = await exec(client, cmd)
  // write() resolves once the binding has handed the bytes to russh; one at a time keeps order
  for (let left = total; left > 0; left -= chunk.length) {
    await ch.write(left >= chunk.length ? chunk : chunk.subarray(0, left))
  }
  await ch.eof()
  await closed
}

export async function openEcho(client, cmd) {
  const listeners = []
  const { ch, closed } = await exec(client, cmd, (d) => listeners.forEach((fn) => fn(d)))
  return {
    write: (buf) => ch.write(buf),
    onData: (fn) => listeners.push(fn),
    end: async () => {
      await ch.eof()
      await closed
    },
  }
}

export const close = (client) => client.disconnect()

/** Workloads this peer sits out, with the reason shown in the table. */
export function unsupported(workload) {
  if (workload.startsWith('sftp-')) return 'its SFTP is a bare file-handle API (no path-to-path transfer, no read stream)'
  if (workload === 'forward') return 'it has no local port forward listener (only raw direct-tcpip channels)'
  if (workload.startsWith('jump')) return 'it cannot run a connection over a channel (no jump host support)'
  return null
}
