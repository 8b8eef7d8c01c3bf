// Bad peers against the embedded server: garbage instead of a banner, a 1 MiB banner line, a
// client that stalls after the version exchange, repeated wrong passwords, a flood of 500
// connections, and the connection limit. Throughout, a well-behaved client keeps being served
// and memory stays bounded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chmodSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

import { connect, type SshClient } from '../dist/cjs/index.js'
import { rejection, until, withTimeout } from './fixtures/helpers'
import { run, ssh, startServer, type TestServer } from './fixtures/server'

let t: TestServer
let passwordChecks = 0

beforeAll(async () => {
  t = await startServer({
    auth: {
      password: (_ctx, pw) => { passwordChecks++; return pw === 'secret' },
      publicKey: () => false,
    },
    exec: async (s) => { s.stdout.write('ok') },
    limits: { authTimeout: 1500, maxAuthTries: 3, maxStartups: 32 },
  })
})
afterAll(() => t?.stop())

/** The well-behaved client: connects, runs a command, disconnects. */
async function wellBehaved(): Promise<void> {
  const ssh = await connect({ host: t.host, port: t.port, username: 'good', password: 'secret', hostKey: 'insecure-accept-any', connectTimeout: 15_000 })
  try {
    expect((await ssh.exec('x')).stdout.toString()).toBe('ok')
  } finally {
    await ssh.close()
  }
}

interface Peer {
  sock: net.Socket
  /** Everything the server sent. */
  received: () => Buffer
  /** Resolves when the server has closed the connection. */
  closed: Promise<void>
}

function peer(port: number, send?: string | Buffer): Promise<Peer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    const closed = new Promise<void>((r) => sock.once('close', () => r()))
    sock.on('data', (d: Buffer) => { if (chunks.length < 64) chunks.push(d) })
    sock.on('error', () => {})
    sock.once('connect', () => {
      if (send !== undefined) sock.write(send)
      resolve({ sock, received: () => Buffer.concat(chunks), closed })
    })
    sock.once('error', reject)
  })
}

describe('bad peers', () => {
  it('drops a client that sends garbage instead of a banner', async () => {
    const p = await peer(t.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    await withTimeout(p.closed, 5000, 'garbage peer dropped')
    expect(p.received().toString()).toMatch(/^SSH-2\.0-ferrossh/)
    await wellBehaved()
  })

  it('drops a client whose banner line is 1 MiB long', async () => {
    const p = await peer(t.port, Buffer.alloc(1024 * 1024, 'A'))
    await withTimeout(p.closed, 5000, 'long banner dropped')
    await wellBehaved()
  })

  it('drops a client that stalls after the version exchange, or sends nothing (authTimeout)', async () => {
    const started = Date.now()
    const [p, silent] = await Promise.all([peer(t.port, 'SSH-2.0-Staller\r\n'), peer(t.port)])
    await until(() => p.received().toString().startsWith('SSH-2.0-'), 5000, 'server banner')
    await withTimeout(Promise.all([p.closed, silent.closed]), 5000, 'stallers dropped')
    const took = Date.now() - started
    expect(took).toBeGreaterThan(1000)
    expect(took).toBeLessThan(4000)
    await until(() => t.server.connections === 0, 5000, 'connection forgotten', () => t.server.connections)
  })

  it('drops a client after maxAuthTries wrong passwords', async () => {
    const askpass = join(t.dir, 'askpass.sh')
    writeFileSync(askpass, '#!/bin/sh\necho wrong-password\n')
    chmodSync(askpass, 0o755)
    const before = passwordChecks
    const opts = t.sshOptions.map((o) => (o === 'BatchMode=yes' ? 'BatchMode=no' : o))
    const r = await run('ssh', [
      '-p', String(t.port), ...opts, '-o', 'PreferredAuthentications=password', '-o', 'NumberOfPasswordPrompts=10',
      `bad@${t.host}`, 'true',
    ], { env: { ...process.env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' } })
    expect(r.status).toBe(255)
    expect(passwordChecks - before).toBe(3)
    // told why, in sshd's words, before the connection goes
    expect(r.stderr).toContain('Too many authentication failures')
    await wellBehaved()
  })

  it('keeps serving through a flood of 500 connections, with bounded memory', async () => {
    const rssBefore = process.memoryUsage().rss
    const peers: Peer[] = []
    const kinds = ['', 'SSH-2.0-Flood\r\n', 'garbage\r\n']
    const opening = (async () => {
      for (let i = 0; i < 500; i++) {
        const kind = kinds[i % kinds.length]
        peers.push(await peer(t.port, kind === '' ? undefined : kind))
      }
    })()
    // a well-behaved client while the flood opens, and again once it is all in place
    await wellBehaved()
    await opening
    for (let i = 0; i < 3; i++) await wellBehaved()
    // what stalls in the flood is dropped down to maxStartups a moment later
    await until(() => t.server.connections <= 32, 5000, 'stalled connections reaped', () => t.server.connections)
    await wellBehaved()
    const grown = (process.memoryUsage().rss - rssBefore) / (1024 * 1024)
    expect(grown).toBeLessThan(150)
    for (const p of peers) p.sock.destroy()
    await until(() => t.server.connections === 0, 10_000, 'flood gone', () => t.server.connections)
    await wellBehaved()
  })

  it('turns away connections past maxConnections until one leaves', async () => {
    const small = await startServer({ limits: { maxConnections: 2 }, exec: async (s) => { s.stdout.write('ok') } })
    const opts = { host: small.host, port: small.port, username: 'u', privateKeyPath: small.clientKey.path, hostKey: 'insecure-accept-any' as const }
    const held: SshClient[] = [await connect(opts), await connect(opts)]
    try {
      expect(small.server.connections).toBe(2)
      await rejection(connect({ ...opts, connectTimeout: 5000 }))
      await held.pop()!.close()
      await until(() => small.server.connections === 1, 5000, 'slot freed')
      const again = await connect(opts)
      expect((await again.exec('x')).stdout.toString()).toBe('ok')
      await again.close()
    } finally {
      for (const c of held) await c.close()
      await small.stop()
    }
  })

  it('leaves nothing behind after many connect/exec/close cycles', async () => {
    for (let i = 0; i < 30; i++) await wellBehaved()
    const rssBefore = process.memoryUsage().rss
    for (let i = 0; i < 300; i++) await wellBehaved()
    await until(() => t.server.connections === 0, 5000, 'all connections gone', () => t.server.connections)
    const grown = (process.memoryUsage().rss - rssBefore) / (1024 * 1024)
    expect(grown).toBeLessThan(40)
  })

  it('a stalled peer does not hold up the well-behaved client', async () => {
    const stalled = await Promise.all([peer(t.port, 'SSH-2.0-A\r\n'), peer(t.port)])
    const started = Date.now()
    await wellBehaved()
    expect(Date.now() - started).toBeLessThan(1000)
    for (const p of stalled) p.sock.destroy()
    await sleep(10)
  })
})

describe('callbacks that never answer, and handlers that answer oddly', () => {
  it('callbackTimeout bounds an authentication callback too, within authTimeout', async () => {
    const s = await startServer({
      auth: { password: () => new Promise<boolean>(() => {}) },
      exec: async () => 0,
      limits: { callbackTimeout: 300, authTimeout: 20_000 },
    })
    try {
      const t0 = Date.now()
      const e = await rejection(connect({ host: s.host, port: s.port, username: 'u', password: 'p', hostKey: 'insecure-accept-any', connectTimeout: 15_000 }))
      expect((e as { code?: string }).code).toBe('ERR_SSH_AUTH')
      expect(Date.now() - t0).toBeLessThan(5_000)
    } finally {
      await s.stop()
    }
  })

  it('close() cuts a connection whose authentication callback never answers, and the client hears it', async () => {
    let asked = 0
    const s = await startServer({
      auth: { password: () => { asked++; return new Promise<boolean>(() => {}) } },
      exec: async () => 0,
      limits: { callbackTimeout: 60_000, authTimeout: 60_000 },
    })
    try {
      const client = connect({ host: s.host, port: s.port, username: 'u', password: 'p', hostKey: 'insecure-accept-any', connectTimeout: 60_000 })
      client.catch(() => {})
      await until(() => asked > 0, 10_000, 'the callback asked')
      const t0 = Date.now()
      await withTimeout(s.server.close({ timeout: 200 }), 10_000, 'close')
      const e = await rejection(client, 10_000)
      // the socket went at close() (it stayed until close gave up waiting, seconds later)
      expect(Date.now() - t0).toBeLessThan(3_000)
      expect((e as { code?: string }).code).toBe('ERR_SSH_DISCONNECTED')
      expect(s.server.connections).toBe(0)
    } finally {
      await s.stop().catch(() => {})
    }
  })

  it('close() cuts a connection waiting on a session that reads no stdin, and its pending write settles', async () => {
    let written: Error | null | undefined
    let closed = false
    const s = await startServer({
      exec: (x) => {
        x.on('close', () => { closed = true })
        // stdin never read; the output goes unread too once the connection waits
        x.stdout.write(Buffer.alloc(8 << 20), (e) => { written = e ?? null })
      },
    })
    try {
      // more than the 4 MiB a session buffers: the connection then waits for the handler
      const client = ssh(s, 'ignore-stdin', { input: Buffer.alloc(20 << 20), timeout: 60_000 })
      await until(() => s.server.connections === 1, 10_000, 'connected')
      await sleep(1500)
      const t0 = Date.now()
      await withTimeout(s.server.close({ timeout: 300 }), 10_000, 'close')
      expect(s.server.connections).toBe(0)
      const r = await withTimeout(client, 10_000, 'the ssh client disconnected')
      expect(r.status).not.toBe(0)
      // cut after the timeout and the disconnect grace, not after close() gave up waiting
      expect(Date.now() - t0).toBeLessThan(3_500)
      await until(() => closed && written !== undefined, 5_000, "the session's close and the write's callback")
    } finally {
      await s.stop().catch(() => {})
    }
  })

  it('close() cuts a connection whose forwarding.remote hook is pending', async () => {
    let asked = 0
    const s = await startServer({
      auth: { password: (_c, pw) => pw === 'secret' },
      exec: async () => 0,
      forwarding: { remote: () => { asked++; return new Promise<boolean>(() => {}) } },
      limits: { callbackTimeout: 60_000 },
    })
    try {
      const client = await connect({ host: s.host, port: s.port, username: 'u', password: 'secret', hostKey: 'insecure-accept-any' })
      client.on('error', () => {})
      const fwd = client.forwardRemote({ remotePort: 0, localPort: 9 })
      fwd.catch(() => {})
      await until(() => asked > 0, 10_000, 'the hook asked')
      const t0 = Date.now()
      await withTimeout(s.server.close({ timeout: 0 }), 10_000, 'close')
      expect(s.server.connections).toBe(0)
      await rejection(fwd, 10_000)
      expect(Date.now() - t0).toBeLessThan(2_500)
      await client.close().catch(() => {})
    } finally {
      await s.stop().catch(() => {})
    }
  })

  it('a handler resolving to a number that is no exit status (2 ** 32) still ends the session', async () => {
    const s = await startServer({ auth: { none: true }, exec: async (x) => { x.stdout.write('done\n'); return 2 ** 32 } })
    try {
      const ssh = await connect({ host: s.host, port: s.port, username: 'u', hostKey: 'insecure-accept-any' })
      const r = await withTimeout(ssh.exec('x'), 5_000, 'exec')
      expect(r.stdout.toString()).toBe('done\n')
      expect(r.code).toBe(0)
      await ssh.close()
    } finally {
      await s.stop()
    }
  })
})
