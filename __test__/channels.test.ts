import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { Readable } from 'node:stream'

import { AbortError, connect, type SshClient } from '../dist/cjs/index.js'
import { startSshd, type Sshd } from './fixtures/sshd.mjs'

let sshd: Sshd

const connectTest = (): Promise<SshClient> => connect({
  host: sshd.host, port: sshd.port, username: sshd.user,
  privateKeyPath: sshd.userKey.path, hostKey: { knownHosts: sshd.knownHostsFile },
})

beforeAll(async () => {
  // the server's own per-connection limit, which the client's queue must respect
  sshd = await startSshd({ config: ['MaxSessions 10'] })
})
afterAll(async () => {
  await sshd?.stop()
})

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms) })
  return Promise.race([p, t]).finally(() => clearTimeout(timer))
}

function errorOf(stream: Readable, ms = 5000): Promise<Error> {
  return withTimeout(new Promise((resolve, reject) => {
    stream.once('error', resolve)
    stream.once('end', () => reject(new Error('stream ended instead of failing')))
    stream.resume()
  }), ms, 'stream error')
}

function expectAbortError(e: unknown): void {
  expect(e).toBeInstanceOf(Error)
  expect((e as Error).name).toBe('AbortError')
  expect((e as { code?: string }).code).toBe('ABORT_ERR')
  expect(e).toBeInstanceOf(AbortError)
}

describe('concurrent channels', () => {
  let ssh: SshClient
  beforeAll(async () => { ssh = await connectTest() })
  afterAll(async () => { await ssh?.close() })

  it.each([1, 2, 3, 4, 5])('100 concurrent execs past MaxSessions 10 all succeed (round %i)', async () => {
    const results = await withTimeout(
      Promise.all(Array.from({ length: 100 }, (_, n) => ssh.exec(`echo ${n}`))),
      45_000, '100 execs',
    )
    results.forEach((r, n) => {
      expect(r.stdout.toString()).toBe(`${n}\n`)
      expect(r.stderr.length).toBe(0)
      expect(r.code).toBe(0)
      expect(r.signal).toBeNull()
    })
  }, 60_000)
})

describe('abort', () => {
  // An aborted command without a pty keeps running on the server and holds one of the
  // connection's MaxSessions slots until it exits, so each test gets its own connection.
  let ssh: SshClient
  beforeEach(async () => { ssh = await connectTest() })
  afterEach(async () => { await ssh?.close() })

  it('an exec aborted after 200 ms rejects with AbortError and the connection stays usable', async () => {
    const ac = new AbortController()
    setTimeout(() => ac.abort(), 200)
    const t0 = Date.now()
    const e = await ssh.exec('sleep 10; echo late', { signal: ac.signal }).then(() => null, (err: unknown) => err)
    expectAbortError(e)
    expect(Date.now() - t0).toBeLessThan(5000)
    expect((await withTimeout(ssh.exec('echo after'), 10_000, 'exec after abort')).stdout.toString()).toBe('after\n')
  })

  it('aborting as many execs as there are session slots frees every slot', async () => {
    const ac = new AbortController()
    // with a pty, sshd hangs up the command when its channel closes, so the server frees its
    // slots too and only the client's bookkeeping is under test
    const running = Array.from({ length: 10 }, () => ssh.exec('sleep 30', { pty: true, signal: ac.signal }).then(() => null, (err: unknown) => err))
    await new Promise((r) => setTimeout(r, 500))
    ac.abort()
    for (const e of await withTimeout(Promise.all(running), 10_000, 'aborted execs')) expectAbortError(e)
    // a leaked slot would leave these waiting for a channel forever
    const after = await withTimeout(Promise.all(Array.from({ length: 10 }, (_, n) => ssh.exec(`echo s${n}`))), 15_000, 'execs after abort')
    expect(after.map((r) => r.stdout.toString())).toEqual(Array.from({ length: 10 }, (_, n) => `s${n}\n`))
  }, 30_000)

  it('exec with an already-aborted signal rejects with AbortError without running', async () => {
    const e = await ssh.exec('echo never', { signal: AbortSignal.abort() }).then(() => null, (err: unknown) => err)
    expectAbortError(e)
  })

  it('spawn with an already-aborted signal fails its streams and exited with AbortError', async () => {
    const p = ssh.spawn('echo never', { signal: AbortSignal.abort() })
    const [outErr, exitErr] = await Promise.all([
      errorOf(p.stdout),
      withTimeout(p.exited.then(() => null, (err: unknown) => err), 5000, 'exited'),
    ])
    expectAbortError(outErr)
    expectAbortError(exitErr)
    expect((await ssh.exec('echo fine')).stdout.toString()).toBe('fine\n')
  })

  it('spawn aborted while running destroys its streams with AbortError', async () => {
    const ac = new AbortController()
    const p = ssh.spawn('echo started; sleep 30', { signal: ac.signal })
    const started = new Promise<void>((resolve) => p.stdout.once('data', () => resolve()))
    const failed = errorOf(p.stdout, 10_000)
    await withTimeout(started, 10_000, 'first output')
    ac.abort()
    expectAbortError(await failed)
    expect(p.stdin.destroyed).toBe(true)
    // the TERM it was sent ended it, and that is what exited says, as child_process's 'exit' does
    expect(await withTimeout(p.exited, 5000, 'exited')).toEqual({ code: null, signal: 'TERM' })
    expect((await ssh.exec('echo fine')).stdout.toString()).toBe('fine\n')
  })
})
