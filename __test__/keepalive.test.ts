import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

import { connect, type SshClient } from '../dist/cjs/index.js'
import { startSshd, type Sshd } from './fixtures/sshd.mjs'

let sshd: Sshd

beforeAll(async () => { sshd = await startSshd() })
afterAll(async () => { await sshd?.stop() })

/**
 * A TCP relay in front of sshd that can go silent: both sockets stay open but nothing
 * more is forwarded either way, as when a NAT or a firewall drops a connection's state.
 */
class Relay {
  readonly server: net.Server
  readonly sockets = new Set<net.Socket>()
  forwarding = true
  constructor(target: number) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(target, '127.0.0.1')
      for (const s of [client, upstream]) {
        this.sockets.add(s)
        s.on('error', () => {})
        s.on('close', () => this.sockets.delete(s))
      }
      client.on('data', (d) => { if (this.forwarding) upstream.write(d) })
      upstream.on('data', (d) => { if (this.forwarding) client.write(d) })
      client.on('end', () => { if (this.forwarding) upstream.end() })
      upstream.on('end', () => { if (this.forwarding) client.end() })
    })
  }
  listen(): Promise<number> {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => resolve((this.server.address() as net.AddressInfo).port)))
  }
  blackhole(): void { this.forwarding = false }
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise((r) => this.server.close(r))
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms) })
  return Promise.race([p, t]).finally(() => clearTimeout(timer))
}

const isLossError = (e: unknown): boolean =>
  e instanceof Error && ['ERR_SSH_TIMEOUT', 'ERR_SSH_DISCONNECTED'].includes((e as { code?: string }).code ?? '')

let relay: Relay | undefined
let ssh: SshClient | undefined
afterEach(async () => {
  await ssh?.close().catch(() => {})
  await relay?.close()
  ssh = relay = undefined
})

async function connectThroughRelay(): Promise<SshClient> {
  relay = new Relay(sshd.port)
  const port = await relay.listen()
  ssh = await connect({
    host: '127.0.0.1', port, username: sshd.user, privateKeyPath: sshd.userKey.path,
    // the relay's port is not the one in known_hosts: pin the key instead
    hostKey: { fingerprint: sshd.hostKeys.ed25519.fingerprint },
    keepaliveInterval: 500, keepaliveCountMax: 2,
  })
  return ssh
}

describe('keepalive', () => {
  it('a healthy idle connection survives many keepalive intervals', async () => {
    const conn = await connectThroughRelay()
    let closed = false
    conn.on('close', () => { closed = true })
    await sleep(3000)
    expect(closed).toBe(false)
    expect((await conn.exec('echo alive')).stdout.toString()).toBe('alive\n')
  }, 30_000)

  it('a silent peer ends the connection with an error; open work rejects, nothing is unhandled', async () => {
    const conn = await connectThroughRelay()
    const unhandled: unknown[] = []
    const onUnhandled = (e: unknown): void => { unhandled.push(e) }
    process.on('unhandledRejection', onUnhandled)
    try {
      const closeEvent = new Promise<Error | undefined>((r) => conn.once('close', r))
      const running = conn.spawn('sleep 60')
      const streamErr = new Promise<unknown>((r) => {
        running.stdout.once('error', r)
        running.stdout.once('end', () => r('end'))
        running.stdout.resume()
      })
      expect((await conn.exec('echo up')).stdout.toString()).toBe('up\n')

      relay!.blackhole()
      const t0 = Date.now()
      // opened after the peer went silent: its channel open is never answered
      const pending = conn.exec('echo never').then(() => null, (e: unknown) => e)

      const err = await withTimeout(closeEvent, 10_000, "'close' event")
      const elapsed = Date.now() - t0
      expect(isLossError(err), String(err)).toBe(true)
      // a keepalive timeout says what happened, not "after 0 ms"
      if ((err as { code?: string }).code === 'ERR_SSH_TIMEOUT') expect((err as Error).message).toMatch(/stopped answering keepalives/)
      // 2 unanswered keepalives 500 ms apart, plus scheduling slack
      expect(elapsed).toBeLessThan(5000)
      expect(await conn.closed).toBe(err)

      const pendingErr = await withTimeout(pending, 5000, 'pending exec')
      expect(isLossError(pendingErr), String(pendingErr)).toBe(true)
      const se = await withTimeout(streamErr, 5000, 'open stdout')
      expect(isLossError(se), String(se)).toBe(true)
      const exitErr = await running.exited.then(() => null, (e: unknown) => e)
      expect(isLossError(exitErr), String(exitErr)).toBe(true)

      await sleep(100)
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  }, 30_000)
})
